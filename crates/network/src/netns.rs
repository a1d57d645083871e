//! Network namespaces as handles, and running code inside one without moving the caller.
//!
//! A [`NetNs`] holds an open descriptor of a namespace (`/proc/<pid>/ns/net`, a bind mount such
//! as `/run/netns/<name>`, or the caller's own). [`NetNs::run`] executes a closure on a fresh
//! thread that enters the namespace with `setns(2)` and ends when the closure returns, so no
//! thread of the caller (and no thread of tokio's pools) ever changes its namespace. Sockets keep
//! the namespace they were created in: a netlink socket, a listener or an unconnected
//! [`tokio::net::TcpSocket`] made by the closure can be used from any thread afterwards, which is
//! how the rest of this crate works in other namespaces.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error)]
pub enum NetNsError {
    #[error("network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network namespace {path} is not a network namespace")]
    NotNetNs { path: PathBuf },
    #[error("enter network namespace {label}: {source}")]
    Enter { label: String, source: nix::Error },
    #[error("thread for network namespace {label}: {source}")]
    Thread {
        label: String,
        source: std::io::Error,
    },
    #[error("thread in network namespace {label} panicked")]
    Panicked { label: String },
}

impl NetNsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetNsError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            NetNsError::NotNetNs { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

/// An open network namespace. Cheap to clone (the descriptor is shared).
#[derive(Clone)]
pub struct NetNs {
    fd: Arc<OwnedFd>,
    label: Arc<str>,
    /// (st_dev, st_ino) of the namespace: equal ids mean the same namespace.
    id: (u64, u64),
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNs")
            .field("label", &self.label)
            .field("inode", &self.id.1)
            .finish()
    }
}

impl PartialEq for NetNs {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for NetNs {}

impl NetNs {
    /// The namespace of the process (its main thread's): the daemon's host namespace.
    pub fn current() -> Result<NetNs, NetNsError> {
        NetNs::from_path("/proc/self/ns/net")
    }

    /// The namespace of a process, e.g. a container's init.
    pub fn from_pid(pid: u32) -> Result<NetNs, NetNsError> {
        NetNs::from_path(format!("/proc/{pid}/ns/net"))
    }

    /// A namespace file: `/proc/<pid>/ns/net`, `/run/netns/<name>`, or any bind mount of one.
    pub fn from_path(path: impl AsRef<Path>) -> Result<NetNs, NetNsError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| NetNsError::Open {
            path: path.to_owned(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| NetNsError::Open {
            path: path.to_owned(),
            source,
        })?;
        let is_nsfs = nix::sys::statfs::fstatfs(&file)
            .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
            .unwrap_or(false);
        if !is_nsfs {
            return Err(NetNsError::NotNetNs {
                path: path.to_owned(),
            });
        }
        Ok(NetNs {
            fd: Arc::new(OwnedFd::from(file)),
            label: path.display().to_string().into(),
            id: (meta.dev(), meta.ino()),
        })
    }

    /// Creates a new, empty network namespace kept alive by a bind mount at `path` (as `ip netns
    /// add` does), so it exists before any process joins it and outlives them. The namespace
    /// is made on a throwaway thread: no thread of the caller changes namespace.
    pub fn create_persistent(path: &Path) -> Result<NetNs, NetNsError> {
        let open_err = |source| NetNsError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        // A leftover of a crash is replaced.
        let _ = remove_persistent(path);
        File::create(path).map_err(open_err)?;
        let target = path.to_owned();
        let made = std::thread::Builder::new()
            .name("berth-netns-new".into())
            .spawn(move || -> std::io::Result<()> {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(std::io::Error::from)
            })
            .map_err(|source| NetNsError::Thread {
                label: path.display().to_string(),
                source,
            })?
            .join()
            .map_err(|_| NetNsError::Panicked {
                label: path.display().to_string(),
            })?;
        if let Err(e) = made {
            let _ = std::fs::remove_file(path);
            return Err(open_err(e));
        }
        NetNs::from_path(path)
    }

    /// What the namespace was opened from, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The namespace's inode number (what `ip netns identify` and `/proc/*/ns/net` show).
    pub fn inode(&self) -> u64 {
        self.id.1
    }

    /// Whether this is the namespace the process itself lives in.
    pub fn is_process_namespace(&self) -> bool {
        match std::fs::metadata("/proc/self/ns/net") {
            Ok(m) => (m.dev(), m.ino()) == self.id,
            Err(_) => false,
        }
    }

    /// Runs `f` on a new thread inside this namespace and returns its result. Blocks the caller
    /// until `f` returns; use [`NetNs::run_async`] from async code.
    pub fn run<R, F>(&self, f: F) -> Result<R, NetNsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("berth-netns".into())
                .spawn_scoped(scope, || {
                    self.enter()?;
                    Ok(f())
                })
                .map_err(|source| NetNsError::Thread {
                    label: self.label.to_string(),
                    source,
                })?;
            handle.join().map_err(|_| NetNsError::Panicked {
                label: self.label.to_string(),
            })?
        })
    }

    /// Runs `f` on a new thread inside this namespace without blocking the async caller.
    pub async fn run_async<R, F>(&self, f: F) -> Result<R, NetNsError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ns = self.clone();
        std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || {
                let result = ns.enter().map(|()| f());
                let _ = tx.send(result);
            })
            .map_err(|source| NetNsError::Thread {
                label: self.label.to_string(),
                source,
            })?;
        rx.await.map_err(|_| NetNsError::Panicked {
            label: self.label.to_string(),
        })?
    }

    /// Moves the calling thread into this namespace. Private: only threads this module spawned,
    /// and that end afterwards, call it.
    fn enter(&self) -> Result<(), NetNsError> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetNsError::Enter {
            label: self.label.to_string(),
            source,
        })
    }

    /// The descriptor, for netlink's `IFLA_NET_NS_FD` (moving a link into this namespace).
    pub(crate) fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Unmounts and deletes a namespace made by [`NetNs::create_persistent`]; the namespace itself
/// goes when nothing else holds it. Missing is fine (idempotent).
pub fn remove_persistent(path: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_process_namespace() -> Result<(), NetNsError> {
        let ns = NetNs::current()?;
        assert!(ns.is_process_namespace());
        assert_eq!(ns, NetNs::from_pid(std::process::id())?);
        Ok(())
    }

    #[test]
    fn a_regular_file_is_refused() {
        let err = NetNs::from_path("/proc/self/status");
        assert!(matches!(err, Err(NetNsError::NotNetNs { .. })), "{err:?}");
        let err = NetNs::from_path("/nonexistent/ns");
        assert!(matches!(
            err.map_err(|e| e.kind()),
            Err(ErrorKind::NotFound)
        ));
    }

    #[test]
    fn run_returns_the_closure_result() -> Result<(), NetNsError> {
        let ns = NetNs::current()?;
        assert_eq!(ns.run(|| 41 + 1)?, 42);
        Ok(())
    }
}
