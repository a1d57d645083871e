//! Images and containers as tar streams: `save` and `load` (through `berth-archive`) and
//! `export` of a container's filesystem.
//!
//! Archives are produced on a blocking thread and handed out as a stream of chunks, so a
//! multi-gigabyte save never sits in memory and the caller (the API) stays free of file I/O.
//! Names are resolved before the stream starts: an unknown image is a plain error, not a
//! truncated archive.

use std::io::{self, Write};
use std::path::Path;

use berth_archive::{Format, LoadedImage, SaveImage, SaveLayer};
use berth_reference::{Digest, Reference};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::{Context, EngineError, Result};
use crate::images::{self, Descriptor, ImageRecord, Manifest};
use crate::progress::ProgressSink;
use crate::pull::{decompressed, IMAGE_UNPACK};
use crate::{lock, Engine};

/// Chunks handed to the consumer; a few in flight keep the disk and the socket both busy.
const CHUNK: usize = 256 * 1024;

/// A stream of archive bytes; an error mid-way ends it with that error.
pub type TarStream = mpsc::Receiver<io::Result<Bytes>>;

/// Writes into a channel from a blocking thread; fails once the reader is gone.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "archive reader went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// Runs `produce` on a blocking thread, streaming what it writes; its error (if the reader is
/// still there) is the stream's last item.
fn spawn_producer<F>(produce: F) -> TarStream
where
    F: FnOnce(&mut ChannelWriter) -> Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let r = produce(&mut w).and_then(|()| w.flush().ctx(|| "write archive".into()));
        if let Err(e) = r {
            tracing::warn!(error = %e, "archive stream failed");
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    rx
}

/// Streams a finished file (a tar written to a temporary file) in chunks.
pub(crate) fn stream_file(mut file: std::fs::File) -> TarStream {
    spawn_producer(move |w| {
        io::copy(&mut file, w).ctx(|| "read copy buffer".into())?;
        Ok(())
    })
}

#[derive(Deserialize)]
struct StoredManifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

impl Engine {
    /// `docker save`: the images named (references, IDs), each with the tags it was asked by;
    /// a repository name without tag saves every tag of it.
    pub fn save_images(&self, names: &[String], format: Format) -> Result<TarStream> {
        if names.is_empty() {
            return Err(EngineError::invalid("no images to save"));
        }
        let mut images: Vec<SaveImage> = Vec::new();
        {
            let db = lock(&self.inner.images);
            for name in names {
                let rec = db.resolve(name)?;
                let refs = save_refs(&db, rec, name);
                match images.iter_mut().find(|i| i.config_digest == rec.id) {
                    Some(existing) => {
                        for r in refs {
                            if !existing.refs.contains(&r) {
                                existing.refs.push(r);
                            }
                        }
                    }
                    None => images.push(self.save_image(rec, refs)?),
                }
            }
        }
        let content = self.inner.content.clone();
        Ok(spawn_producer(move |w| {
            berth_archive::save(&content, &images, format, w)
                .map_err(|e| EngineError::internal(format!("save: {e}")))
        }))
    }

    fn save_image(&self, rec: &ImageRecord, refs: Vec<Reference>) -> Result<SaveImage> {
        let raw = self
            .inner
            .content
            .read(&rec.manifest.digest)
            .ctx(|| format!("read manifest {}", rec.manifest.digest))?;
        let manifest: StoredManifest = serde_json::from_slice(&raw).map_err(|e| {
            EngineError::internal(format!("invalid manifest {}: {e}", rec.manifest.digest))
        })?;
        let layers = manifest
            .layers
            .into_iter()
            .zip(rec.config.rootfs.diff_ids.iter())
            .map(|(l, diff_id)| SaveLayer {
                digest: l.digest,
                media_type: l.media_type,
                size: l.size,
                diff_id: diff_id.clone(),
            })
            .collect();
        Ok(SaveImage {
            refs,
            manifest_digest: rec.manifest.digest.clone(),
            manifest_media_type: rec.manifest.media_type.clone(),
            config_digest: rec.id.clone(),
            layers,
        })
    }

    /// `docker load`: stores every image of the archive (layers unpacked once, as for a
    /// pull) and gives it the names the archive carries, reporting each as dockerd does.
    pub async fn load_images<R>(&self, input: R, progress: ProgressSink) -> Result<Vec<Digest>>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let engine = self.clone();
        let lease = self.lease();
        let sync_input = tokio_util::io::SyncIoBridge::new(input);
        let loaded = tokio::task::spawn_blocking(move || -> Result<Vec<LoadedImage>> {
            let mut input = sync_input;
            let loaded =
                berth_archive::load(&engine.inner.content, &mut input).map_err(|e| {
                    match e.kind() {
                        berth_store::ErrorKind::InvalidArgument
                        | berth_store::ErrorKind::NotFound => EngineError::invalid(e.to_string()),
                        _ => EngineError::internal(e.to_string()),
                    }
                })?;
            // The client may send more after the tar's end (padding); read it so the request
            // completes cleanly.
            let _ = io::copy(&mut input, &mut io::sink());
            Ok(loaded)
        })
        .await
        .map_err(|e| EngineError::internal(format!("load task: {e}")))??;
        if loaded.is_empty() {
            return Err(EngineError::invalid("no images found in the archive"));
        }
        let mut ids = Vec::new();
        for img in loaded {
            lease.hold(&img.config_digest);
            for l in &img.layers {
                lease.hold(&l.digest);
            }
            let id = self.store_loaded(img.clone(), &lease).await?;
            for r in &img.refs {
                let old = {
                    let mut db = lock(&self.inner.images);
                    let old = db.names.get(r).filter(|old| *old != &id).cloned();
                    db.set_name(r.clone(), &id);
                    db.save(&self.inner.config.data_root.join("content"))?;
                    old
                };
                if let Some(old) = old {
                    progress
                        .stream(format!(
                            "The image {} already exists, renaming the old one with ID {old} to empty string\n",
                            r.familiar_string()
                        ))
                        .await;
                }
                progress
                    .stream(format!("Loaded image: {}\n", r.familiar_string()))
                    .await;
            }
            if img.refs.is_empty() {
                progress.stream(format!("Loaded image ID: {id}\n")).await;
            }
            self.emit("image", "load", &id.to_string(), &[]);
            ids.push(id);
        }
        Ok(ids)
    }

    /// Unpacks the layers of a loaded image and records it (without names).
    async fn store_loaded(&self, img: LoadedImage, lease: &crate::leases::Lease) -> Result<Digest> {
        let mut parent: Option<Digest> = None;
        for l in &img.layers {
            let chain = berth_snapshot::layer::chain_id(parent.as_ref(), &l.diff_id);
            lease.hold(&chain);
            if self
                .inner
                .layers
                .get(&chain)
                .ctx(|| format!("layer {chain}"))?
                .is_none()
            {
                let engine = self.clone();
                let (blob, diff_id, p) = (l.digest.clone(), l.diff_id.clone(), parent.clone());
                tokio::task::spawn_blocking(move || -> Result<()> {
                    let file = engine
                        .inner
                        .content
                        .open_blob(&blob)
                        .ctx(|| format!("open blob {blob}"))?;
                    let tar = decompressed(file).ctx(|| format!("read layer {blob}"))?;
                    engine
                        .inner
                        .layers
                        .create_with_diff_id(p.as_ref(), &diff_id, tar, &IMAGE_UNPACK)
                        .map_err(|e| match e.kind() {
                            berth_snapshot::ErrorKind::InvalidArgument => {
                                EngineError::invalid(format!("layer {blob}: {e}"))
                            }
                            _ => EngineError::internal(format!("layer {blob}: {e}")),
                        })?;
                    Ok(())
                })
                .await
                .map_err(|e| EngineError::internal(format!("unpack task: {e}")))??;
            }
            parent = Some(chain);
        }
        let manifest_digest = match &img.manifest {
            Some((d, _)) if self.inner.content.exists(d) => d.clone(),
            _ => self.store_manifest(&img)?,
        };
        lease.hold(&manifest_digest);
        let rec = images::load_record(&self.inner.content, &self.inner.layers, &manifest_digest)?;
        if rec.id != img.config_digest {
            return Err(EngineError::invalid(format!(
                "manifest {manifest_digest} in the archive is for image {}, not {}",
                rec.id, img.config_digest
            )));
        }
        let id = rec.id.clone();
        let mut db = lock(&self.inner.images);
        db.images.entry(id.clone()).or_insert(rec);
        db.save(&self.inner.config.data_root.join("content"))?;
        Ok(id)
    }

    /// An OCI manifest for an archive that carried none (old `docker save` layouts).
    fn store_manifest(&self, img: &LoadedImage) -> Result<Digest> {
        let config_size = self
            .inner
            .content
            .info(&img.config_digest)
            .ctx(|| format!("image config {}", img.config_digest))?
            .ok_or_else(|| {
                EngineError::invalid(format!("image config {} is missing", img.config_digest))
            })?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(images::MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: images::MEDIA_OCI_CONFIG.into(),
                digest: img.config_digest.clone(),
                size: config_size,
            },
            layers: img
                .layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest.clone(),
                    size: l.size,
                })
                .collect(),
        };
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| EngineError::internal(e.to_string()))?;
        self.inner
            .content
            .put(&bytes)
            .ctx(|| "store manifest".into())
    }

    /// `docker export`: the container's filesystem as a tar stream (its image's layers with
    /// its changes applied), running or not.
    pub fn export_container(&self, name: &str) -> Result<TarStream> {
        let c = self.inspect_container(name)?;
        let id = c.id.clone();
        let running = c.state.is_running();
        // A view of a stopped container goes in a private directory: mounting its own merged
        // directory would race with a start.
        let view = if running {
            None
        } else {
            let views = self.inner.config.exec_root.join("views");
            std::fs::create_dir_all(&views).ctx(|| format!("create {}", views.display()))?;
            let dir = tempfile::Builder::new()
                .prefix("export-")
                .tempdir_in(&views)
                .ctx(|| "create export directory".into())?;
            self.inner
                .snapshots
                .mount_view(&id, dir.path())
                .ctx(|| format!("mount {id}"))?;
            Some(dir)
        };
        let root = match &view {
            Some(dir) => dir.path().to_path_buf(),
            None => {
                self.inner
                    .snapshots
                    .paths(&id)
                    .ctx(|| format!("snapshot of {id}"))?
                    .merged
            }
        };
        Ok(spawn_producer(move |w| {
            let r = write_tree(&root, w);
            if let Some(dir) = view {
                if let Err(e) = berth_snapshot::overlay::unmount(dir.path()) {
                    tracing::warn!(error = %e, "unmount export view");
                }
            }
            r
        }))
    }
}

/// The names a save records for `rec` when asked for it by `asked`: that reference, every tag
/// of the repository for a bare repository name, none for an ID.
fn save_refs(db: &images::ImageDb, rec: &ImageRecord, asked: &str) -> Vec<Reference> {
    let Ok(r) = Reference::parse_normalized(asked) else {
        return Vec::new();
    };
    if r.digest().is_some() {
        return Vec::new();
    }
    if r.tag().is_some() {
        return vec![r];
    }
    let tagged = r.clone().with_default_tag();
    if rec.names.contains_key(&tagged) {
        let all: Vec<Reference> = db
            .names
            .iter()
            .filter(|(n, id)| n.name() == r.name() && n.tag().is_some() && **id == rec.id)
            .map(|(n, _)| n.clone())
            .collect();
        return all;
    }
    // Found as an ID prefix that happens to parse as a name.
    Vec::new()
}

/// A directory tree as a tar, entries relative to `root`, symlinks stored as links.
fn write_tree(root: &Path, w: &mut dyn Write) -> Result<()> {
    let mut tar = tar::Builder::new(w);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    tar.append_dir_all("", root)
        .and_then(|()| tar.finish())
        .ctx(|| "export".into())
}
