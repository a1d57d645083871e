//! The engine operations an image builder composes: an image whose config changes without a
//! new layer, files copied into a (created, not started) container, and the build cache.
//! RUN steps need nothing more than create/attach/start/wait/commit/remove, which the engine
//! already offers.
//!
//! The cache maps a step's key (its parent image, its instruction with variables expanded,
//! the build arguments in effect and, for COPY/ADD, the content hash of its sources) to the
//! image it produced. It lives under `build-cache/` in the data root, one small file per key
//! written crash-safely, so it survives restarts; an entry whose image is gone is a miss.

use std::path::PathBuf;

use berth_reference::Digest;
use chrono::Utc;

use crate::error::{Context, EngineError, Result};
use crate::imageconfig::{History, ImageConfigBlob, RunConfig};
use crate::images::Descriptor;
use crate::{lock, Engine};

pub use berth_runtime::rootfs::CopyOptions;

/// One history line of a derived image.
#[derive(Debug, Clone, Default)]
pub struct StepHistory {
    pub created_by: String,
    pub comment: String,
    /// `MAINTAINER`: the image's author from this step on.
    pub author: Option<String>,
    /// The creation time to record (SOURCE_DATE_EPOCH); now when absent.
    pub created: Option<chrono::DateTime<Utc>>,
}

impl Engine {
    /// An image with `parent`'s layers (none for `scratch`) and its config changed by `edit`,
    /// recorded with an empty-layer history entry. Returns its ID.
    pub fn derive_image(
        &self,
        parent: Option<&Digest>,
        edit: impl FnOnce(&mut RunConfig),
        history: StepHistory,
    ) -> Result<Digest> {
        let (mut config, layers) = match parent {
            Some(id) => {
                let rec = lock(&self.inner.images)
                    .images
                    .get(id)
                    .cloned()
                    .ok_or_else(|| EngineError::no_such_image(&id.to_string()))?;
                (
                    rec.config.clone(),
                    self.manifest_layers(&rec.manifest.digest)?,
                )
            }
            None => (scratch_config(), Vec::new()),
        };
        edit(&mut config.config);
        if let Some(author) = &history.author {
            config.author = author.clone();
        }
        let now = history.created.unwrap_or_else(Utc::now);
        config.created = Some(now);
        config.history.push(History {
            created: Some(now),
            created_by: history.created_by,
            comment: history.comment,
            author: history.author.unwrap_or_default(),
            empty_layer: true,
        });
        self.register_image(config, layers, None)
    }

    /// The layer descriptors of a stored manifest, with Docker media types named as OCI's
    /// (new manifests are OCI manifests; the blobs are the same bytes).
    pub(crate) fn manifest_layers(&self, manifest: &Digest) -> Result<Vec<Descriptor>> {
        #[derive(serde::Deserialize)]
        struct Layers {
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        let raw = self
            .inner
            .content
            .read(manifest)
            .ctx(|| format!("read manifest {manifest}"))?;
        let m: Layers = serde_json::from_slice(&raw)
            .map_err(|e| EngineError::internal(format!("invalid manifest {manifest}: {e}")))?;
        Ok(m.layers
            .into_iter()
            .map(|mut d| {
                d.media_type = crate::commit::oci_layer_type(&d.media_type);
                d
            })
            .collect())
    }

    /// The run config of an image (for a builder that needs its Env, WorkingDir, Shell...).
    pub fn image_run_config(&self, id: &Digest) -> Result<RunConfig> {
        lock(&self.inner.images)
            .images
            .get(id)
            .map(|r| r.config.config.clone())
            .ok_or_else(|| EngineError::no_such_image(&id.to_string()))
    }

    /// Copies host paths into a container that is not running, resolving `dest` inside its
    /// root filesystem (Docker's COPY rules, see `berth_runtime::rootfs`). Each source comes
    /// with the name a file takes when copied into a directory.
    pub async fn copy_into_container(
        &self,
        id: &str,
        sources: Vec<(PathBuf, String)>,
        dest: String,
        opts: CopyOptions,
    ) -> Result<u64> {
        let c = self.inspect_container(id)?;
        if c.state.is_running() {
            return Err(EngineError::conflict(format!(
                "container {} is running: copying a build step's files needs it stopped",
                c.id
            )));
        }
        let engine = self.clone();
        let cid = c.id.clone();
        tokio::task::spawn_blocking(move || -> Result<u64> {
            let merged = engine
                .inner
                .snapshots
                .mount(&cid)
                .ctx(|| format!("mount {cid}"))?;
            let into_dir = sources.len() > 1;
            let dest = if into_dir && !dest.ends_with('/') {
                format!("{dest}/")
            } else {
                dest
            };
            let mut n = 0;
            let mut result = Ok(());
            for (src, name) in &sources {
                match berth_runtime::rootfs::copy_into(&merged, src, name, &dest, opts) {
                    Ok(k) => n += k,
                    Err(e) => {
                        result = Err(EngineError::internal(format!(
                            "copy {} to {dest}: {e}",
                            src.display()
                        )));
                        break;
                    }
                }
            }
            let unmounted = engine.inner.snapshots.unmount(&cid);
            result?;
            unmounted.ctx(|| format!("unmount {cid}"))?;
            Ok(n)
        })
        .await
        .map_err(|e| EngineError::internal(format!("copy task: {e}")))?
    }

    /// A private directory under the data root (build contexts: too big for the exec root's
    /// tmpfs), deleted when dropped; what a crash leaves is removed at the next start.
    pub fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let dir = self.data_root().join("tmp");
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&dir)
            .ctx(|| "create temporary directory".into())
    }

    /// Downloads `url` into the file `dest` (ADD of a URL), through the registry client's TLS
    /// settings and retries.
    pub async fn download(&self, url: &str, dest: &std::path::Path) -> Result<u64> {
        use futures_util::StreamExt;
        use std::io::Write;
        let mut stream = self
            .registry()
            .fetch_url(url)
            .await
            .map_err(crate::registry::registry_error)?;
        let mut file = std::fs::File::create(dest).ctx(|| format!("create {}", dest.display()))?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(crate::registry::registry_error)?;
            file.write_all(&chunk)
                .ctx(|| format!("write {}", dest.display()))?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// A read-only view of an image's filesystem (`COPY --from`), unmounted when dropped.
    pub fn image_view(&self, id: &Digest) -> Result<ImageView> {
        let top = lock(&self.inner.images)
            .images
            .get(id)
            .map(|r| r.top_layer())
            .ok_or_else(|| EngineError::no_such_image(&id.to_string()))?;
        let views = self.inner.config.exec_root.join("views");
        std::fs::create_dir_all(&views).ctx(|| format!("create {}", views.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("image-")
            .tempdir_in(&views)
            .ctx(|| "create image view".into())?;
        let Some(top) = top else {
            // No layers (FROM scratch): the empty directory is the whole filesystem.
            return Ok(ImageView {
                dir,
                mounted: false,
            });
        };
        let lowers = self
            .inner
            .layers
            .lowers(&top)
            .ctx(|| format!("layers of {id}"))?;
        berth_snapshot::overlay::mount_overlay_readonly(&lowers, dir.path())
            .ctx(|| format!("mount image {id}"))?;
        Ok(ImageView { dir, mounted: true })
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        let hex = Digest::sha256_of(key.as_bytes()).hex().to_string();
        self.data_root().join("build-cache").join(hex)
    }

    /// The image a build step with this key produced before, if it still exists.
    pub fn build_cache_get(&self, key: &str) -> Option<Digest> {
        let path = self.cache_path(key);
        let text = std::fs::read_to_string(&path).ok()?;
        let id = Digest::parse(text.trim()).ok()?;
        lock(&self.inner.images)
            .images
            .contains_key(&id)
            .then_some(id)
    }

    /// Images the build cache refers to: the intermediate images `images` hides without `-a`.
    pub(crate) fn build_cache_ids(&self) -> std::collections::HashSet<Digest> {
        let dir = self.data_root().join("build-cache");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Default::default();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| Digest::parse(t.trim()).ok())
            .collect()
    }

    /// Drops cache entries whose image is gone.
    pub(crate) fn prune_build_cache(&self) {
        let dir = self.data_root().join("build-cache");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let live = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| Digest::parse(t.trim()).ok())
                .is_some_and(|id| lock(&self.inner.images).images.contains_key(&id));
            if !live {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    pub fn build_cache_put(&self, key: &str, id: &Digest) -> Result<()> {
        let path = self.cache_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        }
        berth_store::atomic::write_atomic(&path, id.to_string().as_bytes())
            .ctx(|| "write build cache".into())
    }
}

/// See [`Engine::image_view`].
pub struct ImageView {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ImageView {
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for ImageView {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = berth_snapshot::overlay::unmount(self.dir.path()) {
                tracing::warn!(error = %e, "unmount image view");
            }
        }
    }
}

/// The config `FROM scratch` starts from.
fn scratch_config() -> ImageConfigBlob {
    ImageConfigBlob {
        architecture: crate::imageconfig::host_arch().into(),
        os: "linux".into(),
        rootfs: crate::imageconfig::RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        },
        ..Default::default()
    }
}
