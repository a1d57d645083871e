//! `commit`: a container's changes become a new image on top of its image.
//!
//! The new layer is read from the container's overlay upper directory only
//! (`berth_snapshot::diff`), and in one pass over that tar it is compressed once into the
//! content store (the blob that push and save will send as is) and unpacked into layer
//! staging (the directory containers will mount). An empty diff adds no layer, only a history
//! entry marked `empty_layer`, as dockerd does.

use std::io::{self, Write};

use berth_reference::Digest;
use berth_snapshot::diff::{write_diff, DiffOptions};
use chrono::Utc;

use crate::error::{Context, EngineError, Result};
use crate::imageconfig::{apply_changes, History, RunConfig};
use crate::images::Descriptor;
use crate::pull::IMAGE_UNPACK;
use crate::types::ContainerConfig;
use crate::{lock, Engine};

/// The OCI media type of the gzip layers commit writes.
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What `commit` needs besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]` for the new image, or none for a dangling one.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Dockerfile-like changes (`CMD ["sh"]`, `ENV A=b`, …) applied to the new config.
    pub changes: Vec<String>,
    /// Settings from the request body: those set (a command, a non-empty list) replace the
    /// container's own, the rest are kept (moby's `merge`).
    pub config: Option<ContainerConfig>,
    /// The history's `created_by`; the container's command when absent.
    pub created_by: Option<String>,
    /// Clamp file times in the layer (SOURCE_DATE_EPOCH): reproducible layers.
    pub mtime_clamp: Option<u64>,
    /// Keep the image's config as it is instead of taking the container's settings: a build
    /// step's RUN command must not become the image's CMD.
    pub keep_image_config: bool,
    /// The creation time to record (SOURCE_DATE_EPOCH); now when absent.
    pub created: Option<chrono::DateTime<Utc>>,
    /// Freeze a running container while its changes are read (`docker commit`'s default),
    /// so that the layer is a consistent snapshot.
    pub pause: bool,
}

/// Docker's layer media types inside the OCI manifest commit writes: same bytes, OCI names.
pub(crate) fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MEDIA_OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => crate::images::MEDIA_OCI_LAYER_TAR.into(),
        other => other.into(),
    }
}

/// Writes to both: the compressed blob and the pipe the unpacker reads.
struct Both<A, B> {
    a: A,
    b: B,
}

impl<A: Write, B: Write> Write for Both<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

impl Engine {
    /// Commits container `name`; returns the new image's ID.
    pub async fn commit_container(&self, name: &str, opts: CommitOptions) -> Result<Digest> {
        let target = match opts.reference.as_deref() {
            Some(r) if !r.is_empty() => Some(crate::import::parse_tag_target(r, None)?),
            _ => None,
        };
        let c = self.inspect_container(name)?;
        let parent = lock(&self.inner.images)
            .images
            .get(&c.image_id)
            .cloned()
            .ok_or_else(|| EngineError::no_such_image(&c.image_id.to_string()))?;
        let upper = self
            .inner
            .snapshots
            .paths(&c.id)
            .ctx(|| format!("snapshot of {}", c.id))?
            .upper;
        let diff_opts = DiffOptions {
            mtime_clamp: opts.mtime_clamp,
            lowers: self
                .inner
                .snapshots
                .lowers(&c.id)
                .ctx(|| format!("snapshot of {}", c.id))?,
            mount_points: berth_runtime::spec::RUNTIME_MOUNT_POINTS
                .iter()
                .map(std::path::PathBuf::from)
                .collect(),
        };
        let freeze = opts.pause && c.state.status == crate::types::Status::Running;
        if freeze {
            self.set_frozen(&c.id, true).await?;
        }
        let lease = self.lease();
        let engine = self.clone();
        let parent_top = parent.top_layer();
        let layer = tokio::task::spawn_blocking(move || {
            let layer = engine.diff_layer(&upper, parent_top, diff_opts, &lease);
            (layer, lease)
        })
        .await
        .map_err(|e| EngineError::internal(format!("commit task: {e}")));
        if freeze {
            self.set_frozen(&c.id, false).await?;
        }
        let (layer, lease) = layer?;
        let layer = layer?;

        let now = opts.created.unwrap_or_else(Utc::now);
        let mut config = parent.config.clone();
        config.created = Some(now);
        if !opts.keep_image_config {
            config.author = opts.author.clone();
            let mut settings = c.config.clone();
            if let Some(body) = &opts.config {
                overlay(&mut settings, body);
            }
            merge_container_config(&mut config.config, &settings);
        }
        apply_changes(&mut config.config, &opts.changes)?;
        let created_by = opts.created_by.clone().unwrap_or_else(|| {
            std::iter::once(c.path.as_str())
                .chain(c.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        });
        config.history.push(History {
            created: Some(now),
            created_by,
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: layer.is_none(),
        });
        let mut layers = self.manifest_layers(&parent.manifest.digest)?;
        if let Some((diff_id, blob)) = layer {
            config.rootfs.diff_ids.push(diff_id);
            layers.push(blob);
        }
        let id = self.register_image(config, layers, target);
        drop(lease);
        if id.is_ok() && !opts.keep_image_config {
            self.emit_container(&c.id, "commit", &[]);
        }
        id
    }

    /// The diff of `upper` stored as a layer on `parent` and as a gzip blob; none when empty.
    fn diff_layer(
        &self,
        upper: &std::path::Path,
        parent: Option<Digest>,
        diff_opts: DiffOptions,
        lease: &crate::leases::Lease,
    ) -> Result<Option<(Digest, Descriptor)>> {
        let (reader, writer) = io::pipe().ctx(|| "pipe".into())?;
        let blob = self
            .inner
            .content
            .writer()
            .ctx(|| "open blob writer".into())?;
        let upper_owned = upper.to_owned();
        // Level 1: most of gzip's size win at a fraction of its time; the blob is made once
        // and kept, so this is the only compression the layer ever gets.
        let producer =
            std::thread::spawn(move || -> io::Result<berth_store::content::BlobWriter> {
                let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
                let mut both = Both { a: gz, b: writer };
                write_diff(&upper_owned, &mut both, diff_opts).map_err(io::Error::other)?;
                let Both { a: gz, b: writer } = both;
                drop(writer);
                gz.finish()
            });
        let staged = self.inner.layers.stage(reader, &IMAGE_UNPACK);
        let blob = producer
            .join()
            .map_err(|_| EngineError::internal("commit: diff writer panicked"))?
            .ctx(|| format!("diff {}", upper.display()))?;
        let staged = staged.map_err(|e| EngineError::internal(format!("commit: {e}")))?;
        let empty = Digest::sha256_of(&[0u8; 1024]);
        if staged.diff_id() == &empty {
            return Ok(None);
        }
        let diff_id = staged.diff_id().clone();
        lease.hold(&berth_snapshot::layer::chain_id(parent.as_ref(), &diff_id));
        // Leased before it becomes visible, so a collection running now cannot take it.
        lease.hold(&blob.digest());
        let (digest, size) = blob.commit(None, None).ctx(|| "store layer blob".into())?;
        let stored = self
            .inner
            .layers
            .commit(parent.as_ref(), Some(&diff_id), staged)
            .ctx(|| "store layer".into())?;
        tracing::debug!(layer = %stored.chain_id, %digest, size, "committed layer");
        Ok(Some((
            diff_id,
            Descriptor {
                media_type: MEDIA_OCI_LAYER_GZIP.into(),
                digest,
                size,
            },
        )))
    }
}

fn overlay(base: &mut ContainerConfig, set: &ContainerConfig) {
    if !set.user.is_empty() {
        base.user = set.user.clone();
    }
    if !set.env.is_empty() {
        base.env = set.env.clone();
    }
    if set.cmd.is_some() {
        base.cmd = set.cmd.clone();
    }
    if set.entrypoint.is_some() {
        base.entrypoint = set.entrypoint.clone();
    }
    if !set.working_dir.is_empty() {
        base.working_dir = set.working_dir.clone();
    }
    base.labels
        .extend(set.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    for p in &set.exposed_ports {
        if !base.exposed_ports.contains(p) {
            base.exposed_ports.push(p.clone());
        }
    }
    for v in &set.volumes {
        if !base.volumes.contains(v) {
            base.volumes.push(v.clone());
        }
    }
    if set.stop_signal.is_some() {
        base.stop_signal = set.stop_signal.clone();
    }
}

/// Docker's commit takes the container's settings as the new image's config.
fn merge_container_config(run: &mut RunConfig, c: &ContainerConfig) {
    run.user = c.user.clone();
    run.env = c.env.clone();
    run.cmd = c.cmd.clone();
    run.entrypoint = c.entrypoint.clone();
    run.working_dir = c.working_dir.clone();
    run.labels = c.labels.clone();
    run.exposed_ports = c
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), serde_json::json!({})))
        .collect();
    run.volumes = c
        .volumes
        .iter()
        .map(|v| (v.clone(), serde_json::json!({})))
        .collect();
    if c.stop_signal.is_some() {
        run.stop_signal = c.stop_signal.clone();
    }
}
