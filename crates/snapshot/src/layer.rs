//! The layer store: unpacked image layers, one immutable directory per chain id.
//!
//! Layout under the root:
//! ```text
//! <chain-id hex>/diff/         the unpacked layer, an overlayfs lower directory
//! <chain-id hex>/layer.json    {"chain_id", "diff_id", "parent", "size"}
//! tmp/                         staging for create and remove; emptied by `open`
//! ```
//! A layer directory appears under its name only complete (unpacked, synced, described) and
//! leaves it in one rename, so readers never see a partial layer and a crash never leaves one.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use berth_reference::{Digest, Sha256Writer};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::unpack::{unpack_layer, UnpackError, UnpackOptions};
use crate::{sys, ErrorKind};

const STAGING: &str = "tmp";
const DIFF_DIR: &str = "diff";
const LAYER_FILE: &str = "layer.json";
/// Longer parent chains than this can only come from a corrupt store (images have < 128).
const MAX_DEPTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {0} not found")]
    NotFound(Digest),
    #[error("parent layer {0} not found")]
    ParentNotFound(Digest),
    #[error("layer diff id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("layer {layer} is the parent of layer {child}")]
    InUse { layer: Digest, child: Digest },
    #[error("invalid layer digest {0}")]
    InvalidDigest(Digest),
    #[error("unpack layer: {0}")]
    Unpack(#[from] UnpackError),
    #[error("corrupt layer store at {path:?}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) | Self::ParentNotFound(_) => ErrorKind::NotFound,
            Self::DiffIdMismatch { .. } | Self::InvalidDigest(_) => ErrorKind::InvalidArgument,
            Self::InUse { .. } => ErrorKind::Conflict,
            Self::Unpack(err) => err.kind(),
            Self::Corrupt { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// A stored layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub chain_id: Digest,
    /// Digest of the uncompressed layer tar.
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of regular file content in the layer.
    pub size: u64,
    /// The unpacked layer, for use as an overlayfs lower directory.
    pub diff_dir: PathBuf,
}

/// `layer.json`.
#[derive(Debug, Serialize, Deserialize)]
struct LayerRecord {
    chain_id: Digest,
    diff_id: Digest,
    parent: Option<Digest>,
    size: u64,
}

/// The OCI chain id of a layer: its diff id for a base layer, otherwise the SHA-256 of
/// `"<parent chain id> <diff id>"`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => Digest::sha256_of(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// Unpacked layers under one root directory.
#[derive(Debug)]
pub struct LayerStore {
    root: PathBuf,
}

impl LayerStore {
    /// Opens (creating) the store and discards what an interrupted create or remove left in
    /// staging. Must not run while another process uses the same root.
    pub fn open(root: &Path) -> Result<Self, LayerError> {
        let staging = root.join(STAGING);
        fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
        let entries = fs::read_dir(&staging).map_err(io_err("read", &staging))?;
        for entry in entries {
            let path = entry.map_err(io_err("read", &staging))?.path();
            debug!(path = %path.display(), "removing leftover layer staging");
            fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The layer with `chain_id`, if stored.
    pub fn get(&self, chain_id: &Digest) -> Result<Option<LayerInfo>, LayerError> {
        let dir = self.layer_dir(chain_id)?;
        let path = dir.join(LAYER_FILE);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let record: LayerRecord =
            serde_json::from_slice(&data).map_err(|e| LayerError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.chain_id != *chain_id {
            return Err(LayerError::Corrupt {
                path,
                reason: format!("records chain id {}", record.chain_id),
            });
        }
        Ok(Some(LayerInfo {
            chain_id: record.chain_id,
            diff_id: record.diff_id,
            parent: record.parent,
            size: record.size,
            diff_dir: dir.join(DIFF_DIR),
        }))
    }

    /// Unpacks the uncompressed layer tar `tar` on top of `parent` and stores it under its
    /// chain id, computing the diff id from the stream. Returns the stored layer, which may be
    /// one that already existed or that a concurrent create stored first.
    pub fn create<R: Read>(
        &self,
        parent: Option<&Digest>,
        tar: R,
        opts: &UnpackOptions,
    ) -> Result<LayerInfo, LayerError> {
        self.create_inner(parent, None, tar, opts)
    }

    /// Like [`create`](Self::create), but fails, storing nothing, unless the tar's digest is
    /// `expected_diff_id`. If the layer is already stored, returns it without reading `tar`.
    pub fn create_with_diff_id<R: Read>(
        &self,
        parent: Option<&Digest>,
        expected_diff_id: &Digest,
        tar: R,
        opts: &UnpackOptions,
    ) -> Result<LayerInfo, LayerError> {
        if let Some(existing) = self.get(&chain_id(parent, expected_diff_id))? {
            return Ok(existing);
        }
        self.create_inner(parent, Some(expected_diff_id), tar, opts)
    }

    /// Deletes a layer. Refuses while another stored layer has it as parent; callers remove
    /// layers top down.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), LayerError> {
        let dir = self.layer_dir(chain_id)?;
        if self.get(chain_id)?.is_none() {
            return Err(LayerError::NotFound(chain_id.clone()));
        }
        if let Some(child) = self
            .list()?
            .into_iter()
            .find(|l| l.parent.as_ref() == Some(chain_id))
        {
            return Err(LayerError::InUse {
                layer: chain_id.clone(),
                child: child.chain_id,
            });
        }
        // Renaming over an empty staging directory is atomic: after a crash the layer is
        // either whole under its name or in staging, where `open` finishes deleting it.
        let grave = self.staging("remove-")?;
        match fs::rename(&dir, grave.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayerError::NotFound(chain_id.clone()))
            }
            Err(e) => return Err(io_err("rename", &dir)(e)),
        }
        sys::fsync_dir(&self.root).map_err(io_err("sync", &self.root))?;
        let grave = grave.keep();
        if let Err(e) = fs::remove_dir_all(&grave) {
            warn!(layer = %chain_id, path = %grave.display(), error = %e, "could not delete removed layer");
        }
        debug!(layer = %chain_id, "removed layer");
        Ok(())
    }

    /// All stored layers, sorted by chain id. Unreadable layers are logged and skipped so one
    /// corrupt directory cannot hide the rest.
    pub fn list(&self) -> Result<Vec<LayerInfo>, LayerError> {
        let entries = fs::read_dir(&self.root).map_err(io_err("read", &self.root))?;
        let mut layers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_hex_digest(&name) {
                continue;
            }
            let Ok(chain_id) = Digest::parse(&format!("sha256:{name}")) else {
                continue;
            };
            match self.get(&chain_id) {
                Ok(Some(layer)) => layers.push(layer),
                Ok(None) => warn!(layer = %chain_id, "layer directory without layer.json"),
                Err(e) => warn!(layer = %chain_id, error = %e, "skipping unreadable layer"),
            }
        }
        layers.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
        Ok(layers)
    }

    /// The diff directories of `top` and its ancestors, top first: overlayfs `lowerdir` order.
    pub fn lowers(&self, top: &Digest) -> Result<Vec<PathBuf>, LayerError> {
        let mut dirs = Vec::new();
        let mut next = Some(top.clone());
        while let Some(id) = next {
            if dirs.len() >= MAX_DEPTH {
                return Err(LayerError::Corrupt {
                    path: self.root.clone(),
                    reason: format!("parent chain of {top} is longer than {MAX_DEPTH}"),
                });
            }
            let layer = self.get(&id)?.ok_or(LayerError::NotFound(id))?;
            dirs.push(layer.diff_dir);
            next = layer.parent;
        }
        Ok(dirs)
    }

    fn create_inner<R: Read>(
        &self,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
        tar: R,
        opts: &UnpackOptions,
    ) -> Result<LayerInfo, LayerError> {
        if let Some(parent) = parent {
            if self.get(parent)?.is_none() {
                return Err(LayerError::ParentNotFound(parent.clone()));
            }
        }
        let staged = self.stage(tar, opts)?;
        self.commit(parent, expected, staged)
    }

    /// Unpacks a layer tar into staging without knowing its parent yet, so that the layers of
    /// an image can be unpacked concurrently as they arrive: overlay lowers are independent
    /// directories. [`commit`](Self::commit) then stores them in order. Dropping the returned
    /// value deletes what was unpacked.
    pub fn stage<R: Read>(&self, tar: R, opts: &UnpackOptions) -> Result<StagedLayer, LayerError> {
        // Dropping the guard on any early return deletes everything unpacked so far.
        let staging = self.staging("create-")?;
        let diff = staging.path().join(DIFF_DIR);
        DirBuilder::new()
            .mode(0o755)
            .create(&diff)
            .map_err(io_err("create", &diff))?;

        let mut tee = HashingReader {
            inner: tar,
            hasher: Sha256Writer::new(),
        };
        let stats = unpack_layer(&mut tee, &diff, opts)?;
        // The diff id covers the whole stream, including the end-of-archive blocks and any
        // padding after them, which the tar reader stops short of.
        io::copy(&mut tee, &mut io::sink())
            .map_err(|e| LayerError::Unpack(UnpackError::Read(e)))?;
        let (diff_id, _) = tee.hasher.finish();
        Ok(StagedLayer {
            dir: staging,
            diff_id,
            size: stats.size,
            entries: stats.entries,
        })
    }

    /// Stores a staged layer on top of `parent` (which must be stored), failing and storing
    /// nothing unless its diff id is `expected` (when given). Returns the stored layer, which
    /// may be one that already existed or that a concurrent create stored first.
    pub fn commit(
        &self,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
        staged: StagedLayer,
    ) -> Result<LayerInfo, LayerError> {
        let StagedLayer {
            dir: staging,
            diff_id,
            size,
            entries,
        } = staged;
        if let Some(expected) = expected {
            if *expected != diff_id {
                return Err(LayerError::DiffIdMismatch {
                    expected: expected.clone(),
                    actual: diff_id,
                });
            }
        }
        if let Some(parent) = parent {
            if self.get(parent)?.is_none() {
                return Err(LayerError::ParentNotFound(parent.clone()));
            }
        }

        let chain = chain_id(parent, &diff_id);
        if let Some(existing) = self.get(&chain)? {
            return Ok(existing);
        }
        let record = LayerRecord {
            chain_id: chain.clone(),
            diff_id,
            parent: parent.cloned(),
            size,
        };
        let json = serde_json::to_vec(&record).map_err(|e| LayerError::Corrupt {
            path: staging.path().join(LAYER_FILE),
            reason: e.to_string(),
        })?;
        write_synced(&staging.path().join(LAYER_FILE), &json)?;
        sys::syncfs(staging.path()).map_err(io_err("sync", staging.path()))?;

        let dir = self.layer_dir(&chain)?;
        match fs::rename(staging.path(), &dir) {
            Ok(()) => {
                // Renamed away: nothing left for the guard to delete.
                let _ = staging.keep();
            }
            Err(e) if sys::is_not_empty(&e) => {
                // A concurrent create of the same layer won; ours is dropped with the guard.
                debug!(layer = %chain, "layer created concurrently");
                return self.get(&chain)?.ok_or_else(|| LayerError::Corrupt {
                    path: dir.clone(),
                    reason: "layer directory without layer.json".into(),
                });
            }
            Err(e) => return Err(io_err("rename", &dir)(e)),
        }
        sys::fsync_dir(&self.root).map_err(io_err("sync", &self.root))?;
        debug!(layer = %chain, size, entries, "stored layer");
        Ok(LayerInfo {
            chain_id: record.chain_id,
            diff_id: record.diff_id,
            parent: record.parent,
            size: record.size,
            diff_dir: dir.join(DIFF_DIR),
        })
    }

    fn layer_dir(&self, chain_id: &Digest) -> Result<PathBuf, LayerError> {
        let hex = chain_id.hex();
        // The digest names a directory: make sure it cannot name anything else.
        if !is_hex_digest(hex) {
            return Err(LayerError::InvalidDigest(chain_id.clone()));
        }
        Ok(self.root.join(hex))
    }

    fn staging(&self, prefix: &str) -> Result<tempfile::TempDir, LayerError> {
        let staging = self.root.join(STAGING);
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&staging)
            .map_err(io_err("create", &staging))
    }
}

/// A layer unpacked in staging, not yet stored; see [`LayerStore::stage`].
#[derive(Debug)]
pub struct StagedLayer {
    dir: tempfile::TempDir,
    diff_id: Digest,
    size: u64,
    entries: u64,
}

impl StagedLayer {
    /// The digest of the uncompressed tar that was unpacked.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }
}

/// Passes a reader through while hashing everything read.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn is_hex_digest(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), LayerError> {
    let mut file = File::create(path).map_err(io_err("create", path))?;
    file.write_all(data).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}
