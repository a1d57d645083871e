//! Container snapshots: a writable `upper` (with overlayfs' `work`) over store layers, mounted
//! on `merged`.
//!
//! Layout under the root:
//! ```text
//! <id>/upper/        the container's changes
//! <id>/work/         overlayfs scratch space, same filesystem as upper
//! <id>/merged/       mount point of the overlay
//! <id>/lowers.json   the lower directories, top first
//! .tmp/              staging for prepare and remove; emptied by `open`
//! ```
//! Ids cannot start with `.`, so `.tmp` never collides with a snapshot.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tracing::{debug, warn};

use crate::overlay::{self, MountError};
use crate::{sys, ErrorKind};

const STAGING: &str = ".tmp";
const LOWERS_FILE: &str = "lowers.json";
const MAX_ID_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid snapshot id {0:?}")]
    InvalidId(String),
    #[error("snapshot {0} not found")]
    NotFound(String),
    #[error("snapshot {0} already exists")]
    Exists(String),
    #[error("snapshot {0} is still mounted")]
    StillMounted(String),
    #[error("snapshot {id}: {source}")]
    Mount {
        id: String,
        #[source]
        source: MountError,
    },
    #[error("snapshot {id}: corrupt {file}: {reason}")]
    Corrupt {
        id: String,
        file: &'static str,
        reason: String,
    },
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SnapshotError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidId(_) => ErrorKind::InvalidArgument,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Exists(_) | Self::StillMounted(_) => ErrorKind::Conflict,
            Self::Mount { source, .. } => source.kind(),
            Self::Corrupt { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// The directories of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPaths {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

/// The container snapshots under one root directory.
#[derive(Debug)]
pub struct Snapshots {
    root: PathBuf,
    /// Serialises mount, unmount and remove so two callers cannot both see "not mounted" and
    /// stack two overlays on one `merged`.
    lock: Mutex<()>,
}

impl Snapshots {
    /// Opens (creating) the snapshot root and discards what an interrupted prepare or remove
    /// left in staging.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let staging = root.join(STAGING);
        fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
        let entries = fs::read_dir(&staging).map_err(io_err("read", &staging))?;
        for entry in entries {
            let path = entry.map_err(io_err("read", &staging))?.path();
            debug!(path = %path.display(), "removing leftover snapshot staging");
            fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
        }
        Ok(Self {
            root: root.to_owned(),
            lock: Mutex::new(()),
        })
    }

    /// Creates the directories of snapshot `id` over `lowers` (top first; may be empty).
    pub fn prepare(&self, id: &str, lowers: Vec<PathBuf>) -> Result<SnapshotPaths, SnapshotError> {
        let dir = self.dir(id)?;
        if dir.symlink_metadata().is_ok() {
            return Err(SnapshotError::Exists(id.to_owned()));
        }
        let staging = self.staging("prepare-")?;
        let base = staging.path();
        let mut builder = DirBuilder::new();
        for (name, mode) in [("upper", 0o755), ("work", 0o700), ("merged", 0o755)] {
            let path = base.join(name);
            builder
                .mode(mode)
                .create(&path)
                .map_err(io_err("create", &path))?;
        }
        // The merged root takes its owner from upper; match the image's root like containerd,
        // so images built for a remapped uid keep an owned `/`.
        if let Some(top) = lowers.first() {
            let meta = fs::metadata(top).map_err(io_err("stat", top))?;
            let upper = base.join("upper");
            std::os::unix::fs::lchown(&upper, Some(meta.uid()), Some(meta.gid()))
                .map_err(io_err("chown", &upper))?;
        }
        let json = serde_json::to_vec(&lowers).map_err(|e| SnapshotError::Corrupt {
            id: id.to_owned(),
            file: LOWERS_FILE,
            reason: e.to_string(),
        })?;
        let lowers_path = base.join(LOWERS_FILE);
        write_synced(&lowers_path, &json)?;
        sys::fsync_dir(base).map_err(io_err("sync", base))?;

        match fs::rename(base, &dir) {
            Ok(()) => {
                // Renamed away: nothing left for the guard to delete.
                let _ = staging.keep();
            }
            Err(e) if sys::is_not_empty(&e) => return Err(SnapshotError::Exists(id.to_owned())),
            Err(e) => return Err(io_err("rename", &dir)(e)),
        }
        sys::fsync_dir(&self.root).map_err(io_err("sync", &self.root))?;
        debug!(id, "prepared snapshot");
        Ok(paths_in(&dir))
    }

    /// Mounts snapshot `id` and returns its `merged` directory; already mounted is fine.
    pub fn mount(&self, id: &str) -> Result<PathBuf, SnapshotError> {
        let _guard = self.lock();
        let paths = self.paths(id)?;
        if overlay::is_mounted(&paths.merged) {
            return Ok(paths.merged);
        }
        let lowers = self.lowers(id)?;
        overlay::mount_overlay(&lowers, &paths.upper, &paths.work, &paths.merged).map_err(
            |source| SnapshotError::Mount {
                id: id.to_owned(),
                source,
            },
        )?;
        Ok(paths.merged)
    }

    /// Mounts a read-only view of snapshot `id` (its upper over its layers) on `target`, for
    /// reading a container's files while it is stopped (export, copy) without taking its
    /// work directory. Unmount with [`overlay::unmount`].
    pub fn mount_view(&self, id: &str, target: &Path) -> Result<(), SnapshotError> {
        let paths = self.paths(id)?;
        let mut lowers = vec![paths.upper.clone()];
        lowers.extend(self.lowers(id)?);
        overlay::mount_overlay_readonly(&lowers, target).map_err(|source| SnapshotError::Mount {
            id: id.to_owned(),
            source,
        })
    }

    /// Unmounts snapshot `id`; not mounted is fine.
    pub fn unmount(&self, id: &str) -> Result<(), SnapshotError> {
        let _guard = self.lock();
        let paths = self.paths(id)?;
        self.unmount_locked(id, &paths)
    }

    /// Unmounts and deletes snapshot `id`.
    pub fn remove(&self, id: &str) -> Result<(), SnapshotError> {
        let _guard = self.lock();
        let dir = self.dir(id)?;
        let paths = self.paths(id)?;
        self.unmount_locked(id, &paths)?;
        // Deleting through a live mount would walk into the merged view; never do that.
        if overlay::is_mounted(&paths.merged) {
            return Err(SnapshotError::StillMounted(id.to_owned()));
        }
        // Renaming over an empty staging directory is atomic, so a crash leaves the snapshot
        // either whole under its name or in staging, where `open` finishes the job.
        let grave = self.staging("remove-")?;
        fs::rename(&dir, grave.path()).map_err(io_err("rename", &dir))?;
        sys::fsync_dir(&self.root).map_err(io_err("sync", &self.root))?;
        let grave = grave.keep();
        if let Err(e) = fs::remove_dir_all(&grave) {
            // The snapshot is gone from its name; the next `open` deletes the rest.
            warn!(id, path = %grave.display(), error = %e, "could not delete removed snapshot");
        }
        debug!(id, "removed snapshot");
        Ok(())
    }

    /// The directories of snapshot `id`.
    pub fn paths(&self, id: &str) -> Result<SnapshotPaths, SnapshotError> {
        let dir = self.dir(id)?;
        match dir.symlink_metadata() {
            Ok(meta) if meta.is_dir() => Ok(paths_in(&dir)),
            Ok(_) => Err(SnapshotError::Corrupt {
                id: id.to_owned(),
                file: "snapshot directory",
                reason: "not a directory".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(SnapshotError::NotFound(id.to_owned()))
            }
            Err(e) => Err(io_err("stat", &dir)(e)),
        }
    }

    /// The lower directories snapshot `id` was prepared with, top first.
    pub fn lowers(&self, id: &str) -> Result<Vec<PathBuf>, SnapshotError> {
        let path = self.dir(id)?.join(LOWERS_FILE);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound(id.to_owned()))
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|e| SnapshotError::Corrupt {
            id: id.to_owned(),
            file: LOWERS_FILE,
            reason: e.to_string(),
        })
    }

    /// Ids of all snapshots, sorted.
    pub fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let entries = fs::read_dir(&self.root).map_err(io_err("read", &self.root))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.root))?;
            if let Some(name) = entry.file_name().to_str() {
                if valid_id(name) {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn unmount_locked(&self, id: &str, paths: &SnapshotPaths) -> Result<(), SnapshotError> {
        overlay::unmount(&paths.merged).map_err(|source| SnapshotError::Mount {
            id: id.to_owned(),
            source,
        })
    }

    fn dir(&self, id: &str) -> Result<PathBuf, SnapshotError> {
        if valid_id(id) {
            Ok(self.root.join(id))
        } else {
            Err(SnapshotError::InvalidId(id.to_owned()))
        }
    }

    fn staging(&self, prefix: &str) -> Result<tempfile::TempDir, SnapshotError> {
        let staging = self.root.join(STAGING);
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&staging)
            .map_err(io_err("create", &staging))
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic while holding it leaves nothing inconsistent.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ids name directories: letters, digits, `_`, `-` and `.`, not starting with `.`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn paths_in(dir: &Path) -> SnapshotPaths {
    SnapshotPaths {
        upper: dir.join("upper"),
        work: dir.join("work"),
        merged: dir.join("merged"),
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), SnapshotError> {
    let mut file = File::create(path).map_err(io_err("create", path))?;
    file.write_all(data).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["abc", "0123abcdef", "build-1.step_2"] {
            assert!(valid_id(ok), "{ok}");
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", ".", "..", ".tmp", "a/b", "a b", long.as_str()] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
