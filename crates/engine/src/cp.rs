//! The archive API behind `docker cp`: stat a path, read a path as a tar, extract a tar into a
//! directory, on running and stopped containers alike.
//!
//! Every container path is resolved with `openat2(RESOLVE_IN_ROOT)` and the work then goes
//! through the opened descriptor (`/proc/self/fd/N`), so symlinks in the container can never
//! lead outside its root. A running container is frozen for the duration (the fix Docker
//! adopted for CVE-2018-15664): nothing inside can swap a directory for a symlink while a copy
//! walks it. Nothing from the container is ever executed or loaded by the daemon (the
//! CVE-2019-14271 class): the tar is written and read by this process.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::archive::TarStream;
use crate::error::{Context, EngineError, Result};
use crate::types::Status;
use crate::Engine;

/// Docker's `PathStat` (the `X-Docker-Container-Path-Stat` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits: permissions plus type flags.
    pub mode: u32,
    pub mtime: DateTime<Utc>,
    pub link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

fn go_mode(meta: &std::fs::Metadata) -> u32 {
    let perm = meta.mode() & 0o7777;
    let ft = meta.file_type();
    if ft.is_dir() {
        perm | GO_MODE_DIR
    } else if ft.is_symlink() {
        perm | GO_MODE_SYMLINK
    } else {
        perm
    }
}

/// A container's root filesystem made available for a copy, and put back afterwards.
struct Rootfs {
    path: PathBuf,
    view: Option<tempfile::TempDir>,
    mounted_rw: bool,
    frozen: Option<String>,
    id: String,
}

fn not_found(path: &str, id: &str) -> EngineError {
    EngineError::not_found(format!("Could not find the file {path} in container {id}"))
}

impl Engine {
    async fn open_rootfs(&self, id: &str, writable: bool) -> Result<Rootfs> {
        let c = self.inspect_container(id)?;
        let paths = self
            .inner
            .snapshots
            .paths(&c.id)
            .ctx(|| format!("snapshot of {}", c.id))?;
        match c.state.status {
            Status::Running | Status::Paused => {
                let frozen = if c.state.status == Status::Running {
                    self.set_frozen(&c.id, true).await?;
                    Some(c.id.clone())
                } else {
                    None
                };
                Ok(Rootfs {
                    path: paths.merged,
                    view: None,
                    mounted_rw: false,
                    frozen,
                    id: c.id,
                })
            }
            _ if writable => {
                let merged = self
                    .inner
                    .snapshots
                    .mount(&c.id)
                    .ctx(|| format!("mount {}", c.id))?;
                Ok(Rootfs {
                    path: merged,
                    view: None,
                    mounted_rw: true,
                    frozen: None,
                    id: c.id,
                })
            }
            _ => {
                let views = self.inner.config.exec_root.join("views");
                std::fs::create_dir_all(&views).ctx(|| format!("create {}", views.display()))?;
                let dir = tempfile::Builder::new()
                    .prefix("cp-")
                    .tempdir_in(&views)
                    .ctx(|| "create view".into())?;
                self.inner
                    .snapshots
                    .mount_view(&c.id, dir.path())
                    .ctx(|| format!("mount {}", c.id))?;
                Ok(Rootfs {
                    path: dir.path().to_path_buf(),
                    view: Some(dir),
                    mounted_rw: false,
                    frozen: None,
                    id: c.id,
                })
            }
        }
    }

    async fn close_rootfs(&self, r: Rootfs) {
        if let Some(dir) = &r.view {
            if let Err(e) = berth_snapshot::overlay::unmount(dir.path()) {
                tracing::warn!(error = %e, "unmount copy view");
            }
        }
        if r.mounted_rw {
            // A start may have taken the mount meanwhile: then it stays.
            if !self
                .inspect_container(&r.id)
                .is_ok_and(|c| c.state.is_running())
            {
                let _ = self.inner.snapshots.unmount(&r.id);
            }
        }
        if let Some(id) = &r.frozen {
            if let Err(e) = self.set_frozen(id, false).await {
                tracing::warn!(error = %e, "thaw after copy");
            }
        }
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn stat_container_path(&self, id: &str, path: &str) -> Result<PathStat> {
        let root = self.open_rootfs(id, false).await?;
        let r = stat_in(&root.path, path).map_err(|_| not_found(path, &root.id));
        self.close_rootfs(root).await;
        r
    }

    /// `GET /containers/{id}/archive`: the path (a file or a directory tree) as a tar whose
    /// top entry is named after the path's last component.
    pub async fn read_container_path(&self, id: &str, path: &str) -> Result<(PathStat, TarStream)> {
        let root = self.open_rootfs(id, false).await?;
        let opened = stat_in(&root.path, path).and_then(|stat| {
            let file = berth_runtime::user::open_in_root(&root.path, path)?;
            Ok((stat, file))
        });
        let (stat, file) = match opened {
            Ok(v) => v,
            Err(_) => {
                let id = root.id.clone();
                self.close_rootfs(root).await;
                return Err(not_found(path, &id));
            }
        };
        // The whole tar is written while the container is frozen or its view mounted, into
        // a temporary file, so that the copy holds neither for as long as the client reads.
        let tmp = tempfile::tempfile().ctx(|| "create copy buffer".into());
        let name = stat.name.clone();
        let written = match tmp {
            Ok(mut tmp) => tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
                let src = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                write_path_tar(&src, &name, &mut tmp)?;
                drop(file);
                use std::io::Seek;
                tmp.seek(std::io::SeekFrom::Start(0))
                    .ctx(|| "rewind copy buffer".into())?;
                Ok(tmp)
            })
            .await
            .map_err(|e| EngineError::internal(format!("copy task: {e}")))
            .and_then(|r| r),
            Err(e) => Err(e),
        };
        self.close_rootfs(root).await;
        let tmp = written?;
        Ok((stat, crate::archive::stream_file(tmp)))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar into the directory `path`.
    pub async fn write_container_path<R>(&self, id: &str, path: &str, input: R) -> Result<()>
    where
        R: Read + Send + 'static,
    {
        let root = self.open_rootfs(id, true).await?;
        let dir = berth_runtime::user::open_in_root(&root.path, path);
        let dir = match dir {
            Ok(d) if d.metadata().is_ok_and(|m| m.is_dir()) => d,
            Ok(_) => {
                self.close_rootfs(root).await;
                return Err(EngineError::invalid(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            Err(_) => {
                let id = root.id.clone();
                self.close_rootfs(root).await;
                return Err(not_found(path, &id));
            }
        };
        let r = tokio::task::spawn_blocking(move || -> Result<()> {
            let _held = &dir;
            // The resolved directory's own path (the kernel's name for the descriptor): the
            // extraction refuses symlinks below it, and nothing in the container runs to
            // change the path meanwhile (frozen, or stopped).
            let fd_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            let dest =
                std::fs::read_link(&fd_path).ctx(|| format!("resolve {}", fd_path.display()))?;
            let opts = berth_context::ExtractOptions::default();
            berth_context::extract(input, &dest, &opts)
                .map(|_| ())
                .map_err(|e| EngineError::invalid(format!("extract: {e}")))
        })
        .await
        .map_err(|e| EngineError::internal(format!("copy task: {e}")))
        .and_then(|r| r);
        self.close_rootfs(root).await;
        r
    }
}

fn stat_in(root: &Path, path: &str) -> std::io::Result<PathStat> {
    // lstat semantics for the last component, as Docker's stat: resolve the parent inside
    // the root, then look at the entry itself.
    let trimmed = path.trim_end_matches('/');
    let (parent, leaf) = match trimmed.rsplit_once('/') {
        Some((p, l)) if !l.is_empty() => (if p.is_empty() { "/" } else { p }, l),
        _ => ("/", ""),
    };
    let (meta, name) = if leaf.is_empty() || leaf == "." {
        let f = berth_runtime::user::open_in_root(root, path)?;
        (f.metadata()?, "/".to_string())
    } else {
        let dir = berth_runtime::user::open_in_root(root, parent)?;
        let p = PathBuf::from(format!("/proc/self/fd/{}/{leaf}", dir.as_raw_fd()));
        let meta = if path.ends_with('/') {
            std::fs::metadata(&p)?
        } else {
            std::fs::symlink_metadata(&p)?
        };
        (meta, leaf.to_string())
    };
    let link_target = if meta.file_type().is_symlink() {
        let dir = berth_runtime::user::open_in_root(root, parent)?;
        std::fs::read_link(format!("/proc/self/fd/{}/{leaf}", dir.as_raw_fd()))
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(PathStat {
        name,
        size: meta.len() as i64,
        mode: go_mode(&meta),
        mtime: DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32).unwrap_or_default(),
        link_target,
    })
}

/// A tar of `src` (already resolved) with its top entry named `name`.
fn write_path_tar(src: &Path, name: &str, out: &mut std::fs::File) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let meta = std::fs::metadata(src).ctx(|| format!("stat {name}"))?;
    let name = if name == "/" { "." } else { name };
    let r = if meta.is_dir() {
        tar.append_dir_all(name, src)
    } else {
        std::fs::File::open(src).and_then(|mut f| tar.append_file(name, &mut f))
    };
    r.and_then(|()| tar.finish())
        .ctx(|| format!("archive {name}"))
}
