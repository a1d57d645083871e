//! `pull`: manifest (and platform choice from an index), config, then layers fetched a few at
//! a time, each streamed into the content store while hashed and unpacked into layer staging
//! as soon as it is complete; staged layers are stored in order, bottom first, since a layer's
//! chain ID needs its parent's.
//!
//! Nothing half-done survives: a blob only enters the content store whole and verified, a
//! layer only enters the layer store unpacked and verified against the config's diff ID, and
//! the image only enters the index when all of it is there. What did complete stays (held by a
//! lease while the pull runs, so a concurrent `rmi` cannot collect it), so a pull interrupted by
//! a dropped connection or a daemon crash resumes without fetching finished layers again.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;

use berth_distribution::{select_platform, Platform, Repository};
use berth_reference::{Digest, Reference};
use berth_snapshot::layer::{chain_id, StagedLayer};
use berth_snapshot::unpack::UnpackOptions;
use berth_store::content::BlobWriter;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{Context, EngineError, Result};
use crate::imageconfig::ImageConfigBlob;
use crate::images;
use crate::leases::Lease;
use crate::progress::{CountingReader, ProgressSink};
use crate::registry::{credential, parse_digest, registry_error, with_digest};
use crate::types::PullOptions;
use crate::{lock, Engine};

/// dockerd's `max-concurrent-downloads` default.
const CONCURRENT_DOWNLOADS: usize = 3;

/// The parts of an image manifest (Docker schema 2 or OCI) a pull needs.
#[derive(Debug, Deserialize)]
struct ImageManifest {
    config: BlobRef,
    #[serde(default)]
    layers: Vec<BlobRef>,
}

#[derive(Debug, Clone, Deserialize)]
struct BlobRef {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
}

/// Docker's short layer ID in progress messages: 12 hex digits of the blob digest.
pub(crate) fn short_id(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// A layer blob's content as a plain tar: gzip and zstd are recognised by their magic bytes
/// (media types lie in the wild, e.g. `tar.gzip` layers that are plain tar).
pub(crate) fn decompressed<'a, R: Read + 'a>(input: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(
            buffered,
        )?))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Feeds everything read through it into a blob writer, so that a layer is stored and
/// unpacked in one pass over the stream. With a limit, more bytes than that are an error (a
/// registry sending more than the manifest says).
pub(crate) struct Tee<R> {
    inner: R,
    pub blob: BlobWriter,
    limit: Option<u64>,
}

impl<R> Tee<R> {
    pub fn new(inner: R, blob: BlobWriter, limit: Option<u64>) -> Self {
        Self { inner, blob, limit }
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(limit) = self.limit {
            if self.blob.written() + n as u64 > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("blob is larger than the {limit} bytes its manifest says"),
                ));
            }
        }
        self.blob.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub(crate) const IMAGE_UNPACK: UnpackOptions = UnpackOptions {
    allow_devices: true,
    same_owner: true,
};

impl Engine {
    /// Pulls `name` (tag defaults to `latest`), reporting progress as dockerd does; returns
    /// the image ID.
    pub async fn pull_image(
        &self,
        name: &str,
        opts: PullOptions,
        progress: ProgressSink,
    ) -> Result<Digest> {
        let reference =
            Reference::parse_normalized(name).map_err(|e| EngineError::invalid(e.to_string()))?;
        let reference = if reference.digest().is_some() {
            reference
        } else {
            reference.with_default_tag()
        };
        let platform = match &opts.platform {
            Some(p) if !p.is_empty() => Platform::parse(p).map_err(registry_error)?,
            _ => Platform::host(),
        };
        let tag_or_digest = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let repo = self
            .registry()
            .repository(&reference, &credential(&opts.auth), false);
        // Like dockerd, nothing is reported before the manifest is found, so that a wrong name
        // is answered with a plain error status rather than an error inside a stream.
        let top = repo
            .get_manifest(&tag_or_digest)
            .await
            .map_err(registry_error)?;
        progress
            .status(&tag_or_digest, format!("Pulling from {}", reference.path()))
            .await;
        let lease = self.lease();
        let manifest = if top.is_index() {
            let desc = select_platform(&top.bytes, &platform).map_err(registry_error)?;
            let d = parse_digest(desc.digest().as_ref())?;
            repo.get_manifest(&d.to_string())
                .await
                .map_err(registry_error)?
        } else {
            top.clone()
        };
        if manifest.is_index() {
            return Err(EngineError::invalid(format!(
                "{} is a nested image index, which is not supported",
                manifest.digest
            )));
        }
        let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).map_err(|e| {
            EngineError::invalid(format!("invalid manifest {}: {e}", manifest.digest))
        })?;

        let config_digest = parse_digest(&parsed.config.digest)?;
        lease.hold(&config_digest);
        let config_bytes = self
            .fetch_small_blob(&repo, &config_digest, parsed.config.size)
            .await?;
        let config = ImageConfigBlob::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != parsed.layers.len() {
            return Err(EngineError::invalid(format!(
                "image config {config_digest} lists {} layers, its manifest {}",
                config.rootfs.diff_ids.len(),
                parsed.layers.len()
            )));
        }
        if !config.os.is_empty() && config.os != platform.os {
            return Err(EngineError::invalid(format!(
                "image with reference {} was found but does not provide the specified platform ({platform})",
                reference.familiar_string()
            )));
        }

        self.pull_layers(&repo, &parsed, &config, &lease, &progress)
            .await?;

        lease.hold(&manifest.digest);
        self.inner
            .content
            .put_verified(&manifest.bytes, &manifest.digest)
            .ctx(|| format!("store manifest {}", manifest.digest))?;
        let rec = images::load_record(&self.inner.content, &self.inner.layers, &manifest.digest)?;
        let id = rec.id.clone();
        // dockerd's "up to date": the name already pointed at this very image.
        let unchanged = {
            let mut db = lock(&self.inner.images);
            let unchanged = match reference.tag() {
                Some(_) => db.names.get(&reference) == Some(&id),
                None => db.images.contains_key(&id),
            };
            db.images.entry(id.clone()).or_insert(rec);
            if reference.tag().is_some() {
                db.set_name(reference.clone(), &id);
            }
            db.set_name(with_digest(&reference, &top.digest)?, &id);
            db.save(&self.inner.config.data_root.join("content"))?;
            unchanged
        };
        drop(lease);
        for l in &parsed.layers {
            if let Ok(d) = parse_digest(&l.digest) {
                self.remember_source(&d, reference.domain(), reference.path());
            }
        }

        progress.status("", format!("Digest: {}", top.digest)).await;
        let shown = reference.familiar_string();
        let status = if unchanged {
            format!("Status: Image is up to date for {shown}")
        } else {
            format!("Status: Downloaded newer image for {shown}")
        };
        progress.status("", status).await;
        self.emit("image", "pull", &shown, &[("name", shown.as_str())]);
        Ok(id)
    }

    /// A config blob: from the store when present, else fetched whole and verified.
    async fn fetch_small_blob(&self, repo: &Repository, d: &Digest, size: u64) -> Result<Vec<u8>> {
        if let Ok(bytes) = self.inner.content.read(d) {
            return Ok(bytes);
        }
        // Configs are small; a huge one is a hostile registry.
        if size > 64 << 20 {
            return Err(EngineError::invalid(format!(
                "image config {d} is too large ({size} bytes)"
            )));
        }
        let mut stream = repo.blob_stream(d, 0).await.map_err(registry_error)?;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(registry_error)?);
            if bytes.len() as u64 > size {
                break;
            }
        }
        self.inner
            .content
            .put_verified(&bytes, d)
            .map_err(|e| EngineError::invalid(format!("image config {d}: {e}")))?;
        Ok(bytes)
    }

    /// Fetches and stores every layer not stored yet.
    async fn pull_layers(
        &self,
        repo: &Repository,
        manifest: &ImageManifest,
        config: &ImageConfigBlob,
        lease: &Lease,
        progress: &ProgressSink,
    ) -> Result<()> {
        let mut chains = Vec::new();
        let mut parent: Option<Digest> = None;
        for diff_id in &config.rootfs.diff_ids {
            let c = chain_id(parent.as_ref(), diff_id);
            lease.hold(&c);
            chains.push(c.clone());
            parent = Some(c);
        }
        let mut blobs = Vec::new();
        for l in &manifest.layers {
            if l.media_type.contains(".foreign.") {
                return Err(EngineError::invalid(format!(
                    "layer {} is a foreign (Windows) layer, which cannot run here",
                    l.digest
                )));
            }
            let d = parse_digest(&l.digest)?;
            lease.hold(&d);
            blobs.push(d);
        }
        // The first missing layer and everything above it must be stored (a stored chain ID
        // implies its parents are stored).
        let mut first_missing = chains.len();
        for (i, c) in chains.iter().enumerate().rev() {
            if self
                .inner
                .layers
                .get(c)
                .ctx(|| format!("layer {c}"))?
                .is_some()
            {
                break;
            }
            first_missing = i;
        }
        // A stored layer may lack this manifest's blob (the layer came from another image,
        // or from an import): the blob is fetched anyway, without unpacking, because push and
        // save send the image's own blobs, as containerd keeps them all.
        let mut work = Vec::new();
        for (i, blob) in blobs.iter().enumerate() {
            let have_blob = self
                .inner
                .content
                .info(blob)
                .ctx(|| format!("blob {blob}"))?
                == Some(manifest.layers[i].size);
            if i < first_missing && have_blob {
                progress.status(&short_id(blob), "Already exists").await;
            } else {
                work.push(i);
            }
        }
        if work.is_empty() {
            return Ok(());
        }
        for &i in &work {
            progress
                .status(&short_id(&blobs[i]), "Pulling fs layer")
                .await;
        }

        let permits = Arc::new(Semaphore::new(CONCURRENT_DOWNLOADS));
        let mut tasks = Vec::new();
        for &i in &work {
            let engine = self.clone();
            let repo = repo.clone();
            let layer = manifest.layers[i].clone();
            let blob = blobs[i].clone();
            let diff_id = config.rootfs.diff_ids[i].clone();
            let permits = permits.clone();
            let progress = progress.clone();
            let unpack = i >= first_missing;
            tasks.push((
                i,
                tokio::spawn(async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .map_err(|e| EngineError::internal(e.to_string()))?;
                    engine
                        .fetch_layer(&repo, &layer, &blob, &diff_id, unpack, &progress)
                        .await
                }),
            ));
        }
        // Store in order as each completes; an error aborts the rest (their staging is
        // dropped, and blobs already complete stay for the next attempt).
        let mut parent = first_missing.checked_sub(1).map(|i| chains[i].clone());
        let mut result = Ok(());
        for (i, task) in tasks.iter_mut() {
            let i = *i;
            let staged = match task.await {
                Ok(Ok(Some(s))) => s,
                Ok(Ok(None)) => {
                    progress.status(&short_id(&blobs[i]), "Pull complete").await;
                    continue;
                }
                Ok(Err(e)) => {
                    result = Err(e);
                    break;
                }
                Err(e) => {
                    result = Err(EngineError::internal(format!("layer task: {e}")));
                    break;
                }
            };
            let engine = self.clone();
            let p = parent.clone();
            let stored = tokio::task::spawn_blocking(move || {
                engine.inner.layers.commit(p.as_ref(), None, staged)
            })
            .await
            .map_err(|e| EngineError::internal(format!("layer task: {e}")))?
            .ctx(|| format!("store layer {}", chains[i]))?;
            if stored.chain_id != chains[i] {
                result = Err(EngineError::internal(format!(
                    "layer stored as {}, expected {}",
                    stored.chain_id, chains[i]
                )));
                break;
            }
            progress.status(&short_id(&blobs[i]), "Pull complete").await;
            parent = Some(stored.chain_id);
        }
        if result.is_err() {
            for (_, t) in &tasks {
                t.abort();
            }
        }
        result
    }

    /// Fetches one layer: streamed from the registry into the content store and, in the same
    /// pass, decompressed and unpacked into staging (or unpacked from the store when an
    /// earlier attempt left the blob there). The blob's digest and size and the layer's diff
    /// ID are checked before anything is kept. Without `unpack`, only the blob is fetched.
    async fn fetch_layer(
        &self,
        repo: &Repository,
        layer: &BlobRef,
        blob: &Digest,
        diff_id: &Digest,
        unpack: bool,
        progress: &ProgressSink,
    ) -> Result<Option<StagedLayer>> {
        let id = short_id(blob);
        let size = layer.size;
        let stored = self
            .inner
            .content
            .info(blob)
            .ctx(|| format!("blob {blob}"))?
            == Some(size);
        let download = if stored {
            None
        } else {
            let stream = repo.blob_stream(blob, 0).await.map_err(registry_error)?;
            let mut counter = progress.counter(&id, "Downloading", Some(size));
            let counted = stream.map(move |chunk| {
                if let Ok(c) = &chunk {
                    counter.add(c.len() as u64);
                }
                chunk.map_err(|e| io::Error::other(registry_error(e).to_string()))
            });
            Some(tokio_util::io::SyncIoBridge::new(
                tokio_util::io::StreamReader::new(counted),
            ))
        };

        let engine = self.clone();
        let blob = blob.clone();
        let expected = diff_id.clone();
        let sink = progress.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<StagedLayer>> {
            let unpack_err = |e: berth_snapshot::layer::LayerError| match e.kind() {
                berth_snapshot::ErrorKind::InvalidArgument => {
                    EngineError::invalid(format!("layer {blob}: {e}"))
                }
                _ => EngineError::internal(format!("layer {blob}: {e}")),
            };
            let staged = match download {
                Some(input) => {
                    let writer = engine
                        .inner
                        .content
                        .writer()
                        .ctx(|| "open blob writer".into())?;
                    let mut tee = Tee::new(input, writer, Some(size));
                    let staged = if unpack {
                        let tar = decompressed(&mut tee).ctx(|| format!("read layer {blob}"))?;
                        Some(engine.inner.layers.stage(tar, &IMAGE_UNPACK))
                    } else {
                        None
                    };
                    // Whatever the unpacker did not need (compression trailer, padding) still
                    // belongs to the blob and its digest.
                    io::copy(&mut tee, &mut io::sink())
                        .map_err(|e| EngineError::internal(format!("blob {blob}: {e}")))?;
                    sink.status_now(&short_id(&blob), "Verifying Checksum");
                    // A corrupted blob often fails to unpack too; its digest is the better
                    // reason to give.
                    tee.blob
                        .commit(Some(&blob), Some(size))
                        .map_err(|e| EngineError::invalid(format!("blob {blob}: {e}")))?;
                    sink.status_now(&short_id(&blob), "Download complete");
                    match staged.transpose().map_err(unpack_err)? {
                        Some(s) => s,
                        None => return Ok(None),
                    }
                }
                None if !unpack => return Ok(None),
                None => {
                    sink.status_now(&short_id(&blob), "Download complete");
                    let file = engine
                        .inner
                        .content
                        .open_blob(&blob)
                        .ctx(|| format!("open blob {blob}"))?;
                    let counted = CountingReader {
                        inner: file,
                        counter: sink.counter(&short_id(&blob), "Extracting", Some(size)),
                    };
                    let tar = decompressed(counted).ctx(|| format!("read layer {blob}"))?;
                    let staged = engine.inner.layers.stage(tar, &IMAGE_UNPACK);
                    // A stored blob that does not unpack to its layer was damaged on disk
                    // (a power loss before its sync): drop it, so the next pull fetches it.
                    let bad = match &staged {
                        Ok(s) => s.diff_id() != &expected,
                        Err(e) => e.kind() == berth_snapshot::ErrorKind::InvalidArgument,
                    };
                    if bad {
                        let _ = engine.inner.content.delete(&blob);
                    }
                    staged.map_err(unpack_err)?
                }
            };
            if staged.diff_id() != &expected {
                return Err(EngineError::invalid(format!(
                    "layer {blob} unpacks to {}, but the image config says {expected}",
                    staged.diff_id()
                )));
            }
            Ok(Some(staged))
        })
        .await
        .map_err(|e| EngineError::internal(format!("unpack task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::decompressed;

    #[test]
    fn layers_are_decompressed_by_their_magic_bytes() {
        let tar = b"not really a tar, but bytes to round-trip".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = zstd::stream::encode_all(tar.as_slice(), 3).expect("zstd");
        for input in [tar.clone(), gz, zst] {
            let mut out = Vec::new();
            decompressed(input.as_slice())
                .and_then(|mut r| r.read_to_end(&mut out))
                .expect("decompress");
            assert_eq!(out, tar);
        }
    }
}
