//! The few raw libc calls nix 0.29 does not wrap in a safe, owned form.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// `openat(2)` returning an owned descriptor, so every exit path closes it.
pub(crate) fn openat(dir: RawFd, name: &CStr, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir), name, flags | OFlag::O_CLOEXEC, mode)?;
    // SAFETY: `openat` just returned this descriptor and nothing else has seen it, so taking
    // sole ownership of it cannot double-close.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` under `dir` without following a symlink in its place.
pub(crate) fn open_dir_nofollow(dir: RawFd, name: &CStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
}

/// A path naming `name` inside the directory open as `dir`.
///
/// Used for the calls that have no `*at` form (`lsetxattr`, recursive removal): the kernel
/// resolves the `/proc/self/fd/N` magic link straight to the directory we already hold, so no
/// component of the original path is looked up again.
pub(crate) fn fd_path(dir: RawFd, name: &CStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{dir}"));
    path.push(OsStr::from_bytes(name.to_bytes()));
    path
}

/// `lsetxattr(2)`: sets an extended attribute on `path` itself, never on a symlink's target.
pub(crate) fn lsetxattr(path: &Path, name: &CStr, value: &[u8]) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; `value` is valid for
    // `value.len()` bytes and the kernel only reads it.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// `fsetxattr(2)` on an open descriptor.
pub(crate) fn fsetxattr(fd: &OwnedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor we own for the duration of the call, `name` is
    // NUL-terminated and `value` is valid for `value.len()` bytes; the kernel only reads them.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// The extended attributes of `path` itself (never a symlink's target), names with values.
pub(crate) fn lxattrs(path: &Path) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut names = vec![0u8; 4096];
    let len = loop {
        // SAFETY: `cpath` is NUL-terminated; `names` is valid for writes of `names.len()`
        // bytes, and the kernel writes at most that many.
        let rc =
            unsafe { libc::llistxattr(cpath.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        match Errno::result(rc) {
            Ok(n) => break n as usize,
            Err(Errno::ERANGE) if names.len() < 1 << 20 => names.resize(names.len() * 4, 0),
            Err(Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        let mut value = vec![0u8; 256];
        let found = loop {
            // SAFETY: both strings are NUL-terminated; `value` is valid for writes of
            // `value.len()` bytes, and the kernel writes at most that many.
            let rc = unsafe {
                libc::lgetxattr(
                    cpath.as_ptr(),
                    cname.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            match Errno::result(rc) {
                Ok(n) => {
                    value.truncate(n as usize);
                    break true;
                }
                Err(Errno::ERANGE) if value.len() < 1 << 20 => value.resize(value.len() * 4, 0),
                // Removed between the listing and the read.
                Err(Errno::ENODATA) => break false,
                Err(e) => return Err(e.into()),
            }
        };
        if found {
            out.push((cname, value));
        }
    }
    Ok(out)
}

/// Makes a rename or creation inside `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every dirty page of the filesystem holding `dir`.
///
/// One `syncfs` is far cheaper than an `fsync` per unpacked file and gives the guarantee we
/// need: the data is on disk before the rename that publishes it.
pub(crate) fn syncfs(dir: &Path) -> io::Result<()> {
    let file = File::open(dir)?;
    nix::unistd::syncfs(file.as_raw_fd()).map_err(io::Error::from)
}

/// `true` when the error means "the destination directory already has contents".
pub(crate) fn is_not_empty(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
    )
}
