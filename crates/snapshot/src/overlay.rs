//! Overlayfs mounts: the `mount(2)` call, unmounting, and the mount-table check.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{self, MntFlags, MsFlags};
use nix::unistd::{sysconf, SysconfVar};
use tracing::{debug, warn};

use crate::ErrorKind;

/// Name of the empty lower directory made next to `upper` when a snapshot has no layers.
const EMPTY_LOWER: &str = "empty";
/// Present when the running kernel understands the `index=` mount option.
const INDEX_PARAM: &str = "/sys/module/overlay/parameters/index";
const BUSY_RETRIES: u32 = 10;
const BUSY_DELAY: Duration = Duration::from_millis(50);
/// Bound on how many mounts stacked on one target `unmount` peels off.
const MAX_STACKED: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid overlay path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("too many lower layers for one overlay mount ({0})")]
    TooManyLowers(usize),
    #[error("mount overlay on {target:?}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmount {target:?}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl MountError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidPath { .. } | Self::TooManyLowers(_) => ErrorKind::InvalidArgument,
            Self::Mount { .. } | Self::Unmount { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Mounts an overlay of `lowers` (top first) under the writable `upper` on `target`.
///
/// With no lowers an empty directory next to `upper` stands in, since overlayfs needs at least
/// one lower layer.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), MountError> {
    mount_layers(lowers, Some((upper, work)), target)
}

/// Mounts a read-only overlay of `lowers` (top first, at least one) on `target`: a view that
/// needs no work directory, so it can be mounted beside a container's own writable mount of
/// the same layers.
pub fn mount_overlay_readonly(lowers: &[PathBuf], target: &Path) -> Result<(), MountError> {
    let Some(top) = lowers.first() else {
        return Err(MountError::InvalidPath {
            path: target.to_owned(),
            reason: "a read-only overlay needs a layer",
        });
    };
    let mut lowers = lowers.to_vec();
    // Without an upper directory the kernel wants two lowers; an empty one changes nothing.
    if lowers.len() == 1 {
        let parent = top.parent().ok_or_else(|| MountError::InvalidPath {
            path: top.clone(),
            reason: "layer directory has no parent",
        })?;
        lowers.push(ensure_empty_dir(parent)?);
    }
    mount_layers(&lowers, None, target)
}

fn ensure_empty_dir(parent: &Path) -> Result<PathBuf, MountError> {
    let empty = parent.join(EMPTY_LOWER);
    match std::fs::create_dir(&empty) {
        Ok(()) => Ok(empty),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(empty),
        Err(source) => Err(MountError::Io {
            op: "create empty lower",
            path: empty,
            source,
        }),
    }
}

fn mount_layers(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), MountError> {
    let mut lowers = lowers.to_vec();
    if let (true, Some((upper, _))) = (lowers.is_empty(), upper_work) {
        let parent = upper.parent().ok_or_else(|| MountError::InvalidPath {
            path: upper.to_owned(),
            reason: "upper directory has no parent",
        })?;
        lowers.push(ensure_empty_dir(parent)?);
    }
    let extra: Vec<&Path> = upper_work.map(|(u, w)| vec![u, w]).unwrap_or_default();
    for path in lowers.iter().map(PathBuf::as_path).chain(extra) {
        check_path(path)?;
    }

    // Docker turns the inode index off too: with it on, a layer re-created with new inodes (a
    // re-pull after removal) makes later mounts of old uppers fail with ESTALE.
    let index = if Path::new(INDEX_PARAM).exists() {
        ",index=off"
    } else {
        ""
    };
    let upper_opts = match upper_work {
        Some((upper, work)) => format!(
            ",upperdir={},workdir={}{index}",
            upper.display(),
            work.display()
        ),
        None => String::new(),
    };
    let flags = if upper_work.is_some() {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let limit = page_size();
    let data = format!("lowerdir={}{upper_opts}", join_paths(&lowers));
    // The kernel copies at most one page of mount data, NUL included. Past that, each lower is
    // named by `/proc/self/fd/N` of a descriptor we hold open across the call: about 17 bytes
    // per layer, enough for well over the 127 layers an image may have. The alternative,
    // `chdir` to a common parent and pass relative paths, changes the cwd of the whole
    // (multithreaded) engine, or needs a forked helper, which is unsafe to do from a process
    // with other threads running; the overlay resolves the paths during `mount(2)` and keeps
    // its own references, so the descriptors can close right after.
    let (data, _held) = if data.len() < limit {
        (data, Vec::new())
    } else {
        let mut held = Vec::with_capacity(lowers.len());
        let mut fd_paths = Vec::with_capacity(lowers.len());
        for lower in &lowers {
            let dir = File::open(lower).map_err(|source| MountError::Io {
                op: "open lower",
                path: lower.clone(),
                source,
            })?;
            fd_paths.push(PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())));
            held.push(dir);
        }
        let data = format!("lowerdir={}{upper_opts}", join_paths(&fd_paths));
        if data.len() >= limit {
            return Err(MountError::TooManyLowers(lowers.len()));
        }
        (data, held)
    };

    debug!(target = %target.display(), lowers = lowers.len(), "mounting overlay");
    mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| MountError::Mount {
        target: target.to_owned(),
        source: e.into(),
    })
}

/// Unmounts whatever is mounted on `target`; a target that is not mounted (or does not exist)
/// is fine. A busy mount is retried briefly, then detached lazily so it goes away once its
/// last user does.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let mut busy = 0;
    let mut peeled = 0;
    loop {
        match mount::umount2(target, MntFlags::empty()) {
            // Mounts can be stacked on one target: keep going until nothing is left.
            Ok(()) => peeled += 1,
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) if busy < BUSY_RETRIES => {
                busy += 1;
                thread::sleep(BUSY_DELAY);
            }
            Err(Errno::EBUSY) => {
                warn!(target = %target.display(), "mount still busy, detaching");
                mount::umount2(target, MntFlags::MNT_DETACH).map_err(|e| MountError::Unmount {
                    target: target.to_owned(),
                    source: e.into(),
                })?;
                busy = 0;
                peeled += 1;
            }
            Err(e) => {
                return Err(MountError::Unmount {
                    target: target.to_owned(),
                    source: e.into(),
                })
            }
        }
        if peeled > MAX_STACKED {
            return Err(MountError::Unmount {
                target: target.to_owned(),
                source: io::Error::other("too many mounts stacked on target"),
            });
        }
    }
}

/// Whether something is mounted on `target`, according to `/proc/self/mountinfo`.
pub fn is_mounted(target: &Path) -> bool {
    // The mount table holds resolved paths.
    let Ok(target) = target.canonicalize() else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = target.as_os_str().as_bytes();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| unescape_mountinfo(point) == want)
}

/// Undoes the octal escapes (`\040` for a space) the kernel uses in mountinfo paths.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(digits) = bytes.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Refuses paths overlayfs would misparse: `,` separates options, `:` separates lowers, and
/// rather than rely on the kernel's backslash escaping, which differs between versions, we only
/// pass paths that need none. Store paths are hex digests and ids, so this never bites.
fn check_path(path: &Path) -> Result<(), MountError> {
    let bytes = path.as_os_str().as_bytes();
    let reason = if !path.is_absolute() {
        "not absolute"
    } else if bytes
        .iter()
        .any(|b| matches!(b, b',' | b':' | b'\\' | b'\0'))
    {
        "contains ',', ':', '\\' or a nul byte"
    } else {
        return Ok(());
    };
    Err(MountError::InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn page_size() -> usize {
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), b"/a b");
        assert_eq!(unescape_mountinfo(r"/tab\011x\134"), b"/tab\tx\\");
        assert_eq!(unescape_mountinfo(r"/short\04"), br"/short\04");
        assert_eq!(unescape_mountinfo("/plain"), b"/plain");
    }

    #[test]
    fn refuses_paths_overlay_would_split() {
        for bad in ["relative", "/a,b", "/a:b", r"/a\b"] {
            assert!(check_path(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(check_path(Path::new("/var/lib/berth/layers/abc/diff")).is_ok());
    }
}
