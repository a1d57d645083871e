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
