//! Applying one layer tar to an empty directory that becomes an overlayfs layer.
//!
//! The tar is untrusted. Every entry is resolved from a descriptor of `dest`, one path
//! component at a time with `O_NOFOLLOW`, so a symlink planted by an earlier entry can never
//! redirect a later write, and every call on the entry itself uses the `*at` form that does not
//! follow a symlink in its place. Paths are cleaned lexically first; one that still climbs above
//! the root after cleaning is refused rather than clamped, because a layer that tries it is
//! either broken or hostile and Docker-built layers never contain one.
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.<name>` turns into a 0:0 character device
//! called `<name>`, and `.wh..wh..opq` marks its directory with `trusted.overlay.opaque=y`.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use tar::EntryType;
use tracing::debug;

use crate::{sys, ErrorKind};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// What follows [`WHITEOUT_PREFIX`] in the opaque-directory marker `.wh..wh..opq`.
const OPAQUE_SUFFIX: &[u8] = b".wh..opq";
const OVERLAY_OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
/// Overlayfs reads its own state (opaque, redirect, origin, metacopy) from these attributes, so
/// a layer must not be able to set them directly; only the whiteout conversion writes one.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
const COPY_BUFFER: usize = 64 * 1024;

/// How much of the tar to trust beyond its paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Create character and block devices. Image layers unpacked by a root engine need this
    /// (`/dev/null` in a base image); anything else refuses them.
    pub allow_devices: bool,
    /// Give entries the tar's uid/gid. Needs `CAP_CHOWN`; otherwise everything belongs to the
    /// caller.
    pub same_owner: bool,
}

impl UnpackOptions {
    /// The options for image layers unpacked by an engine running as root.
    pub fn image_layer() -> Self {
        Self {
            allow_devices: true,
            same_owner: true,
        }
    }
}

/// What an unpack produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Bytes of regular file content written.
    pub size: u64,
    /// Tar entries processed, whiteouts included.
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry would write outside the destination or create something not allowed.
    #[error("refusing layer entry {entry:?}: {reason}")]
    Hostile { entry: String, reason: &'static str },
    /// The entry is malformed or contradicts the tree built so far.
    #[error("invalid layer entry {entry:?}: {reason}")]
    Invalid { entry: String, reason: String },
    #[error("reading layer tar: {0}")]
    Read(#[source] io::Error),
    #[error("unpacking {entry:?}: {op}: {source}")]
    Io {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Hostile { .. } | Self::Invalid { .. } => ErrorKind::InvalidArgument,
            // The tar crate reports malformed archives as `Other`/`InvalidData`, and a short
            // stream as `UnexpectedEof`: all three mean the input is bad, not the host.
            Self::Read(err) => match err.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::Other => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Unpacks the layer tar `tar` into `dest`, an existing directory that should be empty.
///
/// Refuses (with [`UnpackError::Hostile`]) any entry that would write outside `dest`. On error
/// `dest` is left partly filled; the caller owns it and discards it.
pub fn unpack_layer<R: Read>(
    tar: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let root = File::open(dest).map_err(|source| UnpackError::Io {
        entry: String::new(),
        op: "open destination",
        source,
    })?;
    let mut unpacker = Unpacker {
        root: OwnedFd::from(root),
        opts: *opts,
        stats: UnpackStats::default(),
        dir_times: Vec::new(),
        buf: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.date_directories()?;
    debug!(dest = %dest.display(), size = unpacker.stats.size, entries = unpacker.stats.entries, "unpacked layer");
    Ok(unpacker.stats)
}

/// Why a tar path cannot be placed under the root.
#[derive(Debug, PartialEq, Eq)]
enum BadPath {
    Escapes,
    Nul,
}

/// Cleans `raw` lexically (`//`, `.` and `..` resolved, a leading `/` dropped) into components
/// relative to the root. Empty means the root itself.
fn clean_path(raw: &[u8]) -> Result<Vec<&[u8]>, BadPath> {
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(BadPath::Escapes);
                }
            }
            _ if comp.contains(&0) => return Err(BadPath::Nul),
            _ => out.push(comp),
        }
    }
    Ok(out)
}

/// Why walking to a directory inside the root stopped.
enum WalkError {
    Symlink,
    NotDir,
    Missing,
    Io(io::Error),
}

/// Which metadata calls apply to a node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    /// Mode is meaningless on a symlink (and `chmod` would follow it).
    Symlink,
    /// Times wait until the end: creating children would change them again.
    Dir,
    Other,
}

/// Ownership, mode, times and extended attributes of an entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: Mode,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    opts: UnpackOptions,
    stats: UnpackStats,
    /// Directories whose mtime is set once everything is in place, in tar order.
    dir_times: Vec<(Vec<Vec<u8>>, TimeSpec)>,
    buf: Vec<u8>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let mut kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Archive-wide defaults (usually just a comment); nothing a layer needs.
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        self.stats.entries += 1;

        let comps = clean_path(&raw).map_err(|bad| match bad {
            BadPath::Escapes => hostile(&name, "path escapes the layer root"),
            BadPath::Nul => invalid(&name, "path contains a nul byte"),
        })?;
        // Pre-POSIX tars mark directories only by a trailing slash on a regular entry.
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let Some((last, parents)) = comps.split_last() else {
            // The root's own metadata belongs to whoever created `dest` (Docker skips it too).
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(invalid(
                    &name,
                    "entry for the layer root is not a directory",
                ))
            };
        };
        let leaf = cstring(last, &name)?;

        if let Some(hidden) = last.strip_prefix(WHITEOUT_PREFIX) {
            let parent = self.open_parent(parents, &name)?;
            let (uid, gid) = header_owner(entry.header(), &name)?;
            return self.whiteout(&parent, hidden, uid, gid, &name);
        }

        let meta = read_meta(entry, &name)?;
        let parent = self.open_parent(parents, &name)?;
        let dir = parent.as_raw_fd();
        match kind {
            EntryType::Directory => {
                let kept = self.clear(dir, &leaf, true, &name)?;
                if !kept {
                    stat::mkdirat(Some(dir), leaf.as_c_str(), Mode::S_IRWXU)
                        .map_err(|e| io_err(&name, "create directory", e))?;
                }
                self.apply_meta(dir, &leaf, &meta, Node::Dir, &name)?;
                let owned = comps.iter().map(|c| c.to_vec()).collect();
                self.dir_times.push((owned, meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.clear(dir, &leaf, false, &name)?;
                let written = self.write_file(dir, &leaf, entry, &name)?;
                if kind != EntryType::GNUSparse && written != entry.size() {
                    return Err(UnpackError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{name:?} ends after {written} of {} bytes", entry.size()),
                    )));
                }
                self.stats.size += written;
                self.apply_meta(dir, &leaf, &meta, Node::Other, &name)?;
            }
            EntryType::Symlink => {
                let target = match entry.link_name_bytes() {
                    Some(t) if !t.is_empty() => cstring(&t, &name)?,
                    _ => return Err(invalid(&name, "symlink has no target")),
                };
                self.clear(dir, &leaf, false, &name)?;
                unistd::symlinkat(target.as_c_str(), Some(dir), leaf.as_c_str())
                    .map_err(|e| io_err(&name, "create symlink", e))?;
                self.apply_meta(dir, &leaf, &meta, Node::Symlink, &name)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hard_link(dir, &leaf, &comps, &target, &name)?;
            }
            EntryType::Fifo => self.node(dir, &leaf, SFlag::S_IFIFO, 0, &meta, &name)?,
            EntryType::Char | EntryType::Block => {
                if !self.opts.allow_devices {
                    return Err(hostile(&name, "device nodes are not allowed"));
                }
                let header = entry.header();
                let major = header
                    .device_major()
                    .map_err(|e| invalid(&name, format!("device major: {e}")))?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(|e| invalid(&name, format!("device minor: {e}")))?
                    .unwrap_or(0);
                let flag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let dev = stat::makedev(u64::from(major), u64::from(minor));
                self.node(dir, &leaf, flag, dev, &meta, &name)?;
            }
            other => return Err(invalid(&name, format!("unsupported entry type {other:?}"))),
        }
        Ok(())
    }

    /// Opens the entry's parent directory, creating missing ones (tars often omit them).
    fn open_parent(&self, parents: &[&[u8]], entry: &str) -> Result<OwnedFd, UnpackError> {
        self.walk(parents, true).map_err(|err| match err {
            WalkError::Symlink => hostile(entry, "parent path traverses a symlink"),
            WalkError::NotDir => invalid(entry, "parent path is not a directory"),
            WalkError::Missing => invalid(entry, "parent directory vanished"),
            WalkError::Io(source) => UnpackError::Io {
                entry: entry.to_owned(),
                op: "open parent directory",
                source,
            },
        })
    }

    /// Opens the directory `comps` below the root without following any symlink.
    fn walk(&self, comps: &[&[u8]], create: bool) -> Result<OwnedFd, WalkError> {
        let mut cur = self.root.try_clone().map_err(WalkError::Io)?;
        for comp in comps {
            let name = CString::new(*comp)
                .map_err(|_| WalkError::Io(io::Error::from(io::ErrorKind::InvalidInput)))?;
            let next = match sys::open_dir_nofollow(cur.as_raw_fd(), &name) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        name.as_c_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(WalkError::Io(e.into())),
                    }
                    sys::open_dir_nofollow(cur.as_raw_fd(), &name)
                        .map_err(|e| classify(cur.as_raw_fd(), &name, e))?
                }
                Err(e) => return Err(classify(cur.as_raw_fd(), &name, e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Makes room for a new entry `leaf` in `dir`. An existing directory is kept (and `true`
    /// returned) when the new entry is a directory too, so its contents survive; anything else
    /// is removed, never followed.
    fn clear(
        &self,
        dir: RawFd,
        leaf: &CStr,
        keep_dir: bool,
        entry: &str,
    ) -> Result<bool, UnpackError> {
        let st = match stat::fstatat(Some(dir), leaf, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(io_err(entry, "inspect existing entry", e)),
        };
        if is_dir(&st) {
            if keep_dir {
                return Ok(true);
            }
            std::fs::remove_dir_all(sys::fd_path(dir, leaf)).map_err(|source| UnpackError::Io {
                entry: entry.to_owned(),
                op: "replace existing directory",
                source,
            })?;
        } else {
            unistd::unlinkat(Some(dir), leaf, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io_err(entry, "replace existing entry", e))?;
        }
        Ok(false)
    }

    fn write_file<R: Read>(
        &mut self,
        dir: RawFd,
        leaf: &CStr,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<u64, UnpackError> {
        let fd = sys::openat(
            dir,
            leaf,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| io_err(name, "create file", e))?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::Read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|source| UnpackError::Io {
                    entry: name.to_owned(),
                    op: "write file",
                    source,
                })?;
            written += n as u64;
        }
        Ok(written)
    }

    fn hard_link(
        &self,
        dir: RawFd,
        leaf: &CStr,
        comps: &[&[u8]],
        target: &[u8],
        name: &str,
    ) -> Result<(), UnpackError> {
        let tcomps = clean_path(target).map_err(|bad| match bad {
            BadPath::Escapes => hostile(name, "hard link target escapes the layer root"),
            BadPath::Nul => invalid(name, "hard link target contains a nul byte"),
        })?;
        let Some((tlast, tparents)) = tcomps.split_last() else {
            return Err(invalid(name, "hard link to the layer root"));
        };
        if tcomps == comps {
            // A link to itself: the file is already there.
            return Ok(());
        }
        let tdir = self.walk(tparents, false).map_err(|err| match err {
            WalkError::Symlink => hostile(name, "hard link target traverses a symlink"),
            WalkError::NotDir | WalkError::Missing => {
                invalid(name, "hard link target does not exist")
            }
            WalkError::Io(source) => UnpackError::Io {
                entry: name.to_owned(),
                op: "open hard link target directory",
                source,
            },
        })?;
        let tleaf = cstring(tlast, name)?;
        match stat::fstatat(
            Some(tdir.as_raw_fd()),
            tleaf.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if is_dir(&st) => return Err(invalid(name, "hard link target is a directory")),
            Ok(_) => {}
            Err(Errno::ENOENT) => return Err(invalid(name, "hard link target does not exist")),
            Err(e) => return Err(io_err(name, "inspect hard link target", e)),
        }
        self.clear(dir, leaf, false, name)?;
        // No AT_SYMLINK_FOLLOW: a target that is a symlink is linked as the symlink itself.
        unistd::linkat(
            Some(tdir.as_raw_fd()),
            tleaf.as_c_str(),
            Some(dir),
            leaf,
            AtFlags::empty(),
        )
        .map_err(|e| io_err(name, "create hard link", e))
    }

    fn node(
        &self,
        dir: RawFd,
        leaf: &CStr,
        kind: SFlag,
        dev: libc::dev_t,
        meta: &Meta,
        name: &str,
    ) -> Result<(), UnpackError> {
        self.clear(dir, leaf, false, name)?;
        stat::mknodat(Some(dir), leaf, kind, Mode::S_IRUSR | Mode::S_IWUSR, dev)
            .map_err(|e| io_err(name, "create node", e))?;
        self.apply_meta(dir, leaf, meta, Node::Other, name)
    }

    fn whiteout(
        &self,
        parent: &OwnedFd,
        hidden: &[u8],
        uid: u32,
        gid: u32,
        name: &str,
    ) -> Result<(), UnpackError> {
        if hidden == OPAQUE_SUFFIX {
            return sys::fsetxattr(parent, OVERLAY_OPAQUE_XATTR, b"y").map_err(|source| {
                UnpackError::Io {
                    entry: name.to_owned(),
                    op: "mark directory opaque",
                    source,
                }
            });
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless to overlayfs.
            debug!(entry = name, "ignoring aufs metadata entry");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(name, "whiteout names no file"));
        }
        let dir = parent.as_raw_fd();
        let leaf = cstring(hidden, name)?;
        self.clear(dir, &leaf, false, name)?;
        stat::mknodat(Some(dir), leaf.as_c_str(), SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| io_err(name, "create whiteout", e))?;
        if self.opts.same_owner {
            unistd::fchownat(
                Some(dir),
                leaf.as_c_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err(name, "chown whiteout", e))?;
        }
        Ok(())
    }

    /// Applies ownership, then mode (chown clears setuid bits), then xattrs (chown also clears
    /// `security.capability`), then times; none of them follows a symlink at `leaf`.
    fn apply_meta(
        &self,
        dir: RawFd,
        leaf: &CStr,
        meta: &Meta,
        node: Node,
        name: &str,
    ) -> Result<(), UnpackError> {
        if self.opts.same_owner {
            unistd::fchownat(
                Some(dir),
                leaf,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err(name, "chown", e))?;
        }
        if node != Node::Symlink {
            stat::fchmodat(Some(dir), leaf, meta.mode, FchmodatFlags::NoFollowSymlink)
                .map_err(|e| io_err(name, "chmod", e))?;
        }
        if !meta.xattrs.is_empty() {
            let path = sys::fd_path(dir, leaf);
            for (key, value) in &meta.xattrs {
                match sys::lsetxattr(&path, key, value) {
                    Ok(()) => {}
                    // Not every filesystem takes every namespace (`user.*` is refused on
                    // symlinks and devices); Docker skips these the same way.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) => {
                        debug!(entry = name, xattr = ?key, error = %e, "skipping xattr");
                    }
                    Err(source) => {
                        return Err(UnpackError::Io {
                            entry: name.to_owned(),
                            op: "set xattr",
                            source,
                        })
                    }
                }
            }
        }
        if node != Node::Dir {
            stat::utimensat(
                Some(dir),
                leaf,
                &meta.mtime,
                &meta.mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| io_err(name, "set times", e))?;
        }
        Ok(())
    }

    /// Sets directory times last, since creating entries inside a directory bumps its mtime.
    fn date_directories(&mut self) -> Result<(), UnpackError> {
        for (comps, mtime) in std::mem::take(&mut self.dir_times) {
            let borrowed: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
            let Some((last, parents)) = borrowed.split_last() else {
                continue;
            };
            let name = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            let parent = match self.walk(parents, false) {
                Ok(fd) => fd,
                // A later entry replaced the directory (or a parent) with something else.
                Err(WalkError::Symlink | WalkError::NotDir | WalkError::Missing) => continue,
                Err(WalkError::Io(source)) => {
                    return Err(UnpackError::Io {
                        entry: name,
                        op: "open directory",
                        source,
                    })
                }
            };
            let leaf = cstring(last, &name)?;
            let dir = parent.as_raw_fd();
            match stat::fstatat(Some(dir), leaf.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_dir(&st) => {}
                Ok(_) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(io_err(&name, "inspect directory", e)),
            }
            stat::utimensat(
                Some(dir),
                leaf.as_c_str(),
                &mtime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| io_err(&name, "set directory times", e))?;
        }
        Ok(())
    }
}

/// Tells a symlink from another non-directory after `open(O_DIRECTORY|O_NOFOLLOW)` failed:
/// Linux reports `ENOTDIR` for both.
fn classify(dir: RawFd, name: &CStr, err: Errno) -> WalkError {
    match err {
        Errno::ENOENT => WalkError::Missing,
        Errno::ELOOP => WalkError::Symlink,
        Errno::ENOTDIR => match stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => WalkError::Symlink,
            _ => WalkError::NotDir,
        },
        e => WalkError::Io(e.into()),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, UnpackError> {
    let header = entry.header();
    let (uid, gid) = header_owner(header, name)?;
    let mode = header
        .mode()
        .map_err(|e| invalid(name, format!("mode: {e}")))?;
    let secs = header
        .mtime()
        .map_err(|e| invalid(name, format!("mtime: {e}")))?;
    let secs = i64::try_from(secs).map_err(|_| invalid(name, "mtime out of range"))?;
    let mut mtime = TimeSpec::new(secs, 0);
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Read)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Read)?;
            let key = ext.key_bytes();
            if let Some(attr) = key.strip_prefix(PAX_XATTR_PREFIX) {
                if attr.starts_with(OVERLAY_XATTR_PREFIX) {
                    debug!(entry = name, "dropping overlayfs xattr from layer");
                    continue;
                }
                let attr = CString::new(attr)
                    .map_err(|_| invalid(name, "xattr name contains a nul byte"))?;
                xattrs.push((attr, ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                // PAX carries sub-second precision the ustar field cannot.
                if let Some(precise) = parse_pax_time(ext.value_bytes()) {
                    mtime = precise;
                }
            }
        }
    }
    Ok(Meta {
        uid,
        gid,
        mode: Mode::from_bits_truncate(mode & 0o7777),
        mtime,
        xattrs,
    })
}

/// The entry's owner; the tar crate already applied PAX `uid`/`gid` overrides to the header.
fn header_owner(header: &tar::Header, name: &str) -> Result<(u32, u32), UnpackError> {
    let uid = header
        .uid()
        .map_err(|e| invalid(name, format!("uid: {e}")))?;
    let gid = header
        .gid()
        .map_err(|e| invalid(name, format!("gid: {e}")))?;
    let uid = u32::try_from(uid).map_err(|_| invalid(name, "uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| invalid(name, "gid out of range"))?;
    Ok((uid, gid))
}

/// Parses a PAX time such as `1700000000.123456789`; `None` leaves the header's value.
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    if secs < 0 && nanos > 0 {
        // -1.5 is one and a half seconds before the epoch: -2 s + 0.5 s.
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn cstring(bytes: &[u8], entry: &str) -> Result<CString, UnpackError> {
    CString::new(bytes).map_err(|_| invalid(entry, "name contains a nul byte"))
}

fn hostile(entry: &str, reason: &'static str) -> UnpackError {
    UnpackError::Hostile {
        entry: entry.to_owned(),
        reason,
    }
}

fn invalid(entry: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Invalid {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

fn io_err(entry: &str, op: &'static str, errno: Errno) -> UnpackError {
    UnpackError::Io {
        entry: entry.to_owned(),
        op,
        source: errno.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_normalises_and_refuses_escapes() {
        let ok: &[(&str, &[&str])] = &[
            ("a/b", &["a", "b"]),
            ("/a/b", &["a", "b"]),
            ("./a//b/", &["a", "b"]),
            ("a/../b", &["b"]),
            ("a/./b/..", &["a"]),
            ("./", &[]),
            ("/", &[]),
        ];
        for (raw, want) in ok {
            let got = clean_path(raw.as_bytes()).unwrap();
            let want: Vec<&[u8]> = want.iter().map(|s| s.as_bytes()).collect();
            assert_eq!(got, want, "{raw}");
        }
        for raw in ["..", "../x", "a/../../x", "/../x", "./a/../../../b"] {
            assert_eq!(clean_path(raw.as_bytes()), Err(BadPath::Escapes), "{raw}");
        }
        assert_eq!(clean_path(b"a\0b"), Err(BadPath::Nul));
    }

    #[test]
    fn pax_times() {
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("1700000000", Some((1_700_000_000, 0))),
            ("1700000000.5", Some((1_700_000_000, 500_000_000))),
            ("1.123456789123", Some((1, 123_456_789))),
            ("-1.5", Some((-2, 500_000_000))),
            ("abc", None),
            ("1.x", None),
        ];
        for (raw, want) in cases {
            let got = parse_pax_time(raw.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
            assert_eq!(got, *want, "{raw}");
        }
    }
}
