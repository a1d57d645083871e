//! `push`: each layer blob the registry lacks is mounted from another repository of the same
//! registry that has it (when one is known) or uploaded; then the config and the manifest,
//! the very bytes stored locally so that the image keeps its digest. Pushing what the registry
//! already has transfers nothing but HEAD requests.
//!
//! Where a blob came from or went to is remembered per blob under `distribution/` (Docker
//! keeps the same "v2 metadata" to find mount sources); it is only a hint, so it is written
//! crash-safely but losing it costs an upload, never correctness.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use berth_distribution::Repository;
use berth_reference::{Digest, Reference};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;

use crate::error::{Context, EngineError, Result};
use crate::images::ImageRecord;
use crate::progress::ProgressSink;
use crate::pull::short_id;
use crate::registry::{credential, registry_error, with_digest};
use crate::types::{Progress, RegistryAuth};
use crate::{lock, Engine};

/// dockerd's `max-concurrent-uploads` default.
const CONCURRENT_UPLOADS: usize = 5;
/// Repositories remembered per blob as mount sources.
const MAX_SOURCES: usize = 8;

#[derive(Debug, Deserialize)]
struct StoredManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: StoredBlob,
    #[serde(default)]
    layers: Vec<StoredBlob>,
}

#[derive(Debug, Clone, Deserialize)]
struct StoredBlob {
    digest: Digest,
    size: u64,
}

impl Engine {
    /// Pushes `name` with `tag`, or every tag of the repository when neither the name nor
    /// `tag` has one (dockerd's rule).
    pub async fn push_image(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: &RegistryAuth,
        progress: ProgressSink,
    ) -> Result<()> {
        let named =
            Reference::parse_normalized(name).map_err(|e| EngineError::invalid(e.to_string()))?;
        if named.digest().is_some() {
            return Err(EngineError::invalid("cannot push a digest reference"));
        }
        let named = match tag.filter(|t| !t.is_empty()) {
            Some(t) => named
                .with_tag(t)
                .map_err(|e| EngineError::invalid(e.to_string()))?,
            None => named,
        };
        let targets: Vec<(Reference, ImageRecord)> = {
            let db = lock(&self.inner.images);
            if named.tag().is_some() {
                let rec = db
                    .names
                    .get(&named)
                    .and_then(|id| db.images.get(id))
                    .ok_or_else(|| {
                        EngineError::not_found(format!(
                            "An image does not exist locally with the tag: {}",
                            named.familiar_name()
                        ))
                    })?;
                vec![(named.clone(), rec.clone())]
            } else {
                let all: Vec<_> = db
                    .names
                    .iter()
                    .filter(|(r, _)| r.name() == named.name() && r.tag().is_some())
                    .filter_map(|(r, id)| Some((r.clone(), db.images.get(id)?.clone())))
                    .collect();
                if all.is_empty() {
                    return Err(EngineError::not_found(format!(
                        "An image does not exist locally with the tag: {}",
                        named.familiar_name()
                    )));
                }
                all
            }
        };
        progress
            .status(
                "",
                format!("The push refers to repository [{}]", named.name()),
            )
            .await;
        let cred = credential(auth);
        for (target, rec) in targets {
            let repo = self.registry().repository(&target, &cred, true);
            self.push_one(&repo, &target, &rec, &progress).await?;
        }
        Ok(())
    }

    async fn push_one(
        &self,
        repo: &Repository,
        target: &Reference,
        rec: &ImageRecord,
        progress: &ProgressSink,
    ) -> Result<()> {
        let manifest_bytes = self
            .inner
            .content
            .read(&rec.manifest.digest)
            .ctx(|| format!("read manifest {}", rec.manifest.digest))?;
        let manifest: StoredManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            EngineError::internal(format!("invalid manifest {}: {e}", rec.manifest.digest))
        })?;
        // Top layer first, as dockerd lists them.
        for l in manifest.layers.iter().rev() {
            progress.status(&short_id(&l.digest), "Preparing").await;
        }
        let permits = Arc::new(Semaphore::new(CONCURRENT_UPLOADS));
        let mut tasks = Vec::new();
        for l in manifest.layers.iter().rev() {
            let engine = self.clone();
            let repo = repo.clone();
            let blob = l.clone();
            let permits = permits.clone();
            let progress = progress.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                engine.push_layer(&repo, &blob, &progress).await
            }));
        }
        let mut result = Ok(());
        for t in tasks.iter_mut() {
            let r = match t.await {
                Ok(r) => r,
                Err(e) => Err(EngineError::internal(format!("upload task: {e}"))),
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        if result.is_err() {
            for t in &tasks {
                t.abort();
            }
        }
        result?;

        let config = &manifest.config;
        if repo
            .blob_exists(&config.digest)
            .await
            .map_err(registry_error)?
            .is_none()
        {
            self.upload_blob(repo, config, None).await?;
        }
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| rec.manifest.media_type.clone());
        let tag = target.tag().unwrap_or("latest");
        let digest = repo
            .put_manifest(tag, &media_type, &manifest_bytes)
            .await
            .map_err(registry_error)?;
        {
            let mut db = lock(&self.inner.images);
            if db.images.contains_key(&rec.id) {
                db.set_name(with_digest(target, &digest)?, &rec.id);
                db.save(&self.inner.config.data_root.join("content"))?;
            }
        }
        progress
            .status(
                "",
                format!("{tag}: digest: {digest} size: {}", manifest_bytes.len()),
            )
            .await;
        let shown = target.familiar_string();
        self.emit("image", "push", &shown, &[("name", shown.as_str())]);
        progress
            .send(Progress::Aux(serde_json::json!({
                "Tag": tag,
                "Digest": digest.to_string(),
                "Size": manifest_bytes.len(),
            })))
            .await;
        Ok(())
    }

    async fn push_layer(
        &self,
        repo: &Repository,
        blob: &StoredBlob,
        progress: &ProgressSink,
    ) -> Result<()> {
        let id = short_id(&blob.digest);
        let here = repo.reference().path().to_string();
        let domain = repo.reference().domain().to_string();
        if repo
            .blob_exists(&blob.digest)
            .await
            .map_err(registry_error)?
            .is_some()
        {
            progress.status(&id, "Layer already exists").await;
            self.remember_source(&blob.digest, &domain, &here);
            return Ok(());
        }
        for source in self.sources(&blob.digest, &domain) {
            if source == here {
                continue;
            }
            match repo.mount_blob(&blob.digest, &source).await {
                Ok(true) => {
                    progress.status(&id, format!("Mounted from {source}")).await;
                    self.remember_source(&blob.digest, &domain, &here);
                    return Ok(());
                }
                Ok(false) => {}
                // A source that is gone or forbidden is only a missed shortcut.
                Err(e) => tracing::debug!(%source, error = %e, "mount failed"),
            }
        }
        self.upload_blob(repo, blob, Some((&id, progress))).await?;
        progress.status(&id, "Pushed").await;
        self.remember_source(&blob.digest, &domain, &here);
        Ok(())
    }

    async fn upload_blob(
        &self,
        repo: &Repository,
        blob: &StoredBlob,
        progress: Option<(&str, &ProgressSink)>,
    ) -> Result<()> {
        let path = self.inner.content.blob_path(&blob.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .ctx(|| format!("open blob {}", blob.digest))?;
        let mut counter = progress.map(|(id, sink)| sink.counter(id, "Pushing", Some(blob.size)));
        let body = ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let (Ok(c), Some(counter)) = (&chunk, counter.as_mut()) {
                counter.add(c.len() as u64);
            }
            chunk
        });
        repo.push_blob(&blob.digest, blob.size, body)
            .await
            .map_err(registry_error)
    }

    fn sources_path(&self, d: &Digest) -> PathBuf {
        self.data_root()
            .join("distribution")
            .join(format!("{}.json", d.hex()))
    }

    /// Repositories of `domain` known to hold blob `d`, most recent first.
    fn sources(&self, d: &Digest, domain: &str) -> Vec<String> {
        let known: Vec<(String, String)> = berth_store::atomic::read_json(&self.sources_path(d))
            .ok()
            .flatten()
            .unwrap_or_default();
        known
            .into_iter()
            .filter(|(dom, _)| dom == domain)
            .map(|(_, repo)| repo)
            .collect()
    }

    /// Records that `domain/repo` holds blob `d` (best effort: see the module docs).
    pub(crate) fn remember_source(&self, d: &Digest, domain: &str, repo: &str) {
        let path = self.sources_path(d);
        let mut known: Vec<(String, String)> = berth_store::atomic::read_json(&path)
            .ok()
            .flatten()
            .unwrap_or_default();
        let entry = (domain.to_string(), repo.to_string());
        if known.first() == Some(&entry) {
            return;
        }
        known.retain(|e| e != &entry);
        known.insert(0, entry);
        known.truncate(MAX_SOURCES);
        let write = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| berth_store::atomic::write_json_atomic(&path, &known));
        if let Err(e) = write {
            tracing::debug!(path = %path.display(), error = %e, "remember blob source");
        }
    }

    /// Drops source hints of blobs that are gone.
    pub(crate) fn prune_sources(&self, live: &BTreeSet<Digest>) {
        let dir = self.data_root().join("distribution");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if Digest::from_sha256_hex(hex).is_ok_and(|d| !live.contains(&d)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
