//! A context tar unpacked into a directory the daemon owns, strictly.
//!
//! The stream may be plain, gzip or zstd (docker's `--compress` sends gzip); bzip2 and xz are
//! refused. Each entry is checked before anything is written, and the whole extraction fails
//! at the first refused entry, so a hostile context is an error and not a partial tree:
//!
//! - its path must stay inside the destination: absolute paths and `..` components are
//!   refused (`./a`, `a//b` are fine);
//! - every parent directory on the way must be a real directory: a parent that is a symlink
//!   (from an earlier entry) is refused, never followed, and missing parents are created
//!   (mode 0755);
//! - an existing entry at the path is removed first (a directory over a directory is merged,
//!   as tar does), and files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing is
//!   ever written through a symlink;
//! - a hard link must name a regular file already extracted, by a path that passes the same
//!   checks; symlinks are created as they are, whatever they point to: they are data, and
//!   only [`crate::resolve_in_root`] follows them, inside the root;
//! - FIFOs and devices are skipped (a build cannot use them and the daemon should not create
//!   device nodes from uploads); other unknown entry types are refused.
//!
//! Modes, mtimes and (with [`ExtractOptions::same_owner`]) owners are those of the headers,
//! PAX records included. Directories get theirs last, deepest first, so a read-only directory
//! does not block its own entries. The destination must not be written by anyone else while
//! this runs (the checks are by path).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use tar::EntryType;

use crate::ErrorKind;

/// How to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Give entries the owners their headers name (needs root). By default, whether the
    /// process runs as root.
    pub same_owner: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            same_owner: nix::unistd::geteuid().is_root(),
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries created (skipped FIFOs and devices not counted).
    pub entries: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

/// The digest the build cache keys a file's contents by (BLAKE3: it is only compared with
/// itself, and hashes several times faster than SHA-256), read in large blocks so that its
/// SIMD lanes are kept busy (`io::copy` would hand it 8 KiB at a time).
pub fn content_digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(*h.finalize().as_bytes()),
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The [`content_digest`] of each regular file, taken while the file was written, so that a
/// builder's cache keys need not read the context a second time. The context is the daemon's
/// private directory, which nothing writes after the extraction; still, a digest is given out
/// only while its file looks unchanged: same inode, size, mode, mtime and ctime as right after
/// extraction.
#[derive(Debug, Default)]
pub struct FileDigests(HashMap<(u64, u64), (Stamp, [u8; 32])>);

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            size: m.size(),
            mode: m.mode(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl FileDigests {
    /// The content digest of the file `meta` describes, if it was extracted and is unchanged.
    pub fn get(&self, meta: &fs::Metadata) -> Option<[u8; 32]> {
        match self.0.get(&(meta.dev(), meta.ino())) {
            Some((stamp, digest)) if *stamp == Stamp::of(meta) => Some(*digest),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn insert(&mut self, meta: &fs::Metadata, digest: [u8; 32]) {
        self.0
            .insert((meta.dev(), meta.ino()), (Stamp::of(meta), digest));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry this module will not create.
    #[error("refusing {path:?} in the build context: {reason}")]
    Refused { path: String, reason: &'static str },
    #[error("unsupported compression of the build context: {0}")]
    Compression(&'static str),
    /// The stream is not a readable tar.
    #[error("reading the build context: {0}")]
    Read(io::Error),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl ExtractError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExtractError::Io { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn refuse(path: &[u8], reason: &'static str) -> ExtractError {
    ExtractError::Refused {
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    }
}

/// A directory's metadata, applied once everything is written.
struct DirMeta {
    path: PathBuf,
    owner: Owner,
}

#[derive(Clone, Copy)]
struct Owner {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// Unpacks the context tar `src` into the existing directory `dest`.
pub fn extract<R: Read>(
    src: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, ExtractError> {
    extract_inner(src, dest, opts, None)
}

/// [`extract`], hashing every regular file on the way (a build context).
pub fn extract_with_digests<R: Read>(
    src: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<(ExtractStats, FileDigests), ExtractError> {
    let mut digests = FileDigests::default();
    let stats = extract_inner(src, dest, opts, Some(&mut digests))?;
    Ok((stats, digests))
}

fn extract_inner<R: Read>(
    src: R,
    dest: &Path,
    opts: &ExtractOptions,
    mut digests: Option<&mut FileDigests>,
) -> Result<ExtractStats, ExtractError> {
    let meta = fs::symlink_metadata(dest).map_err(io_at(dest))?;
    if !meta.is_dir() {
        return Err(io_at(dest)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a directory",
        )));
    }
    let reader = decompress(src)?;
    let mut archive = tar::Archive::new(reader);
    let mut stats = ExtractStats::default();
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) = safe_rel(&raw) else {
            return Err(refuse(&raw, "the path leaves the context"));
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::Fifo | EntryType::Char | EntryType::Block
        ) {
            continue;
        }
        if rel.as_os_str().is_empty() {
            // The root itself: its metadata belongs to the daemon's directory.
            if kind == EntryType::Directory {
                continue;
            }
            return Err(refuse(&raw, "only a directory can be the context root"));
        }
        let owner = owner_of(&mut entry, &raw)?;
        let target = dest.join(&rel);
        make_parents(dest, &rel, &raw)?;
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove(&target)?;
                        mkdir(&target, 0o700)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => mkdir(&target, 0o700)?,
                    Err(e) => return Err(io_at(&target)(e)),
                }
                dirs.push(DirMeta {
                    path: target,
                    owner,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove(&target)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(io_at(&target))?;
                let mut hasher = digests.as_ref().map(|_| blake3::Hasher::new());
                stats.bytes += copy(&mut entry, &mut file, &target, hasher.as_mut())?;
                apply(&file, &target, owner, opts)?;
                if let (Some(d), Some(h)) = (digests.as_deref_mut(), hasher) {
                    let meta = file.metadata().map_err(io_at(&target))?;
                    d.insert(&meta, *h.finalize().as_bytes());
                }
            }
            EntryType::Symlink => {
                let link = entry.link_name_bytes().map(|l| l.into_owned());
                let Some(link) = link.filter(|l| !l.is_empty()) else {
                    return Err(refuse(&raw, "a symlink without a target"));
                };
                remove(&target)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .map_err(io_at(&target))?;
                if opts.same_owner {
                    std::os::unix::fs::lchown(&target, Some(owner.uid), Some(owner.gid))
                        .map_err(io_at(&target))?;
                }
            }
            EntryType::Link => {
                let link = entry.link_name_bytes().map(|l| l.into_owned());
                let link = link.unwrap_or_default();
                let Some(source_rel) = safe_rel(&link).filter(|r| !r.as_os_str().is_empty()) else {
                    return Err(refuse(&raw, "a hard link to outside the context"));
                };
                if source_rel == rel {
                    return Err(refuse(&raw, "a hard link to itself"));
                }
                let source = dest.join(&source_rel);
                let is_file = parents_are_dirs(dest, &source_rel)
                    && fs::symlink_metadata(&source).is_ok_and(|m| m.is_file());
                if !is_file {
                    return Err(refuse(
                        &raw,
                        "a hard link to no regular file in the context",
                    ));
                }
                remove(&target)?;
                fs::hard_link(&source, &target).map_err(io_at(&target))?;
            }
            _ => return Err(refuse(&raw, "an unsupported entry type")),
        }
        stats.entries += 1;
    }
    for dir in dirs.iter().rev() {
        // O_NOFOLLOW | O_DIRECTORY: a directory replaced by a later entry is left alone.
        match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
            .open(&dir.path)
        {
            Ok(f) => apply(&f, &dir.path, dir.owner, opts)?,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ELOOP)
                    || e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return Err(io_at(&dir.path)(e)),
        }
    }
    Ok(stats)
}

/// The stream, decompressed according to its first bytes (docker's `DecompressStream`).
fn decompress<'a, R: Read + 'a>(mut src: R) -> Result<Box<dyn Read + 'a>, ExtractError> {
    let mut head = Vec::with_capacity(6);
    while head.len() < 6 {
        let mut byte = [0u8; 6];
        let want = 6 - head.len();
        match src.read(&mut byte[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&byte[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ExtractError::Read(e)),
        }
    }
    let gzip = head.starts_with(&[0x1f, 0x8b, 0x08]);
    let zstd = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if head.starts_with(b"BZh") {
        return Err(ExtractError::Compression("bzip2"));
    }
    if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        return Err(ExtractError::Compression("xz"));
    }
    let stream = io::Cursor::new(head).chain(src);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else if zstd {
        Box::new(zstd::stream::read::Decoder::new(stream).map_err(ExtractError::Read)?)
    } else {
        Box::new(stream)
    })
}

/// The entry path as a relative path of plain components, or `None` when it is absolute or
/// has a `..` component. The root is the empty path.
fn safe_rel(raw: &[u8]) -> Option<PathBuf> {
    if raw.starts_with(b"/") {
        return None;
    }
    let mut rel = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            _ => rel.push(OsStr::from_bytes(part)),
        }
    }
    Some(rel)
}

/// Mode, owner and mtime from the header, with the PAX records that override them.
fn owner_of<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Owner, ExtractError> {
    let h = entry.header();
    let bad = |_| refuse(raw, "a malformed header");
    let mut uid = h.uid().map_err(bad)?;
    let mut gid = h.gid().map_err(bad)?;
    let mut mtime = h.mtime().map_err(bad)?;
    let mode = h.mode().map_err(bad)? & 0o7777;
    if let Ok(Some(pax)) = entry.pax_extensions() {
        for ext in pax.flatten() {
            let value = ext.value().unwrap_or_default();
            // PAX mtimes may have a fraction; whole seconds are kept.
            let number = || value.split('.').next().and_then(|v| v.parse::<u64>().ok());
            match ext.key() {
                Ok("uid") => uid = number().ok_or_else(|| refuse(raw, "a malformed uid"))?,
                Ok("gid") => gid = number().ok_or_else(|| refuse(raw, "a malformed gid"))?,
                Ok("mtime") => mtime = number().unwrap_or(mtime),
                _ => {}
            }
        }
    }
    Ok(Owner {
        mode,
        uid: u32::try_from(uid).map_err(|_| refuse(raw, "a uid out of range"))?,
        gid: u32::try_from(gid).map_err(|_| refuse(raw, "a gid out of range"))?,
        mtime,
    })
}

/// Creates the missing parents of `rel` under `dest`; refuses a parent that is anything but
/// a directory (a symlink above all).
fn make_parents(dest: &Path, rel: &Path, raw: &[u8]) -> Result<(), ExtractError> {
    let mut dir = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(raw, "a parent directory is a symlink"));
            }
            Ok(_) => return Err(refuse(raw, "a parent is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => mkdir(&dir, 0o755)?,
            Err(e) => return Err(io_at(&dir)(e)),
        }
    }
    Ok(())
}

/// Whether every parent of `rel` under `dest` is a real directory.
fn parents_are_dirs(dest: &Path, rel: &Path) -> bool {
    let mut dir = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    parts[..parts.len().saturating_sub(1)].iter().all(|part| {
        dir.push(part);
        fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
    })
}

fn mkdir(path: &Path, mode: u32) -> Result<(), ExtractError> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(io_at(path))
}

/// Removes whatever is at `path` (a directory with its contents; a symlink, not its target).
fn remove(path: &Path) -> Result<(), ExtractError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_at(path)),
        Ok(_) => fs::remove_file(path).map_err(io_at(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Copies an entry's data, telling a broken stream from a failing disk.
fn copy<R: Read>(
    entry: &mut R,
    file: &mut File,
    path: &Path,
    mut hasher: Option<&mut blake3::Hasher>,
) -> Result<u64, ExtractError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ExtractError::Read(e)),
        };
        io::Write::write_all(file, &buf[..n]).map_err(io_at(path))?;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[..n]);
        }
        total += n as u64;
    }
}

/// Owner (first: chown clears setuid bits), then mode, then mtime, through the open file.
fn apply(file: &File, path: &Path, o: Owner, opts: &ExtractOptions) -> Result<(), ExtractError> {
    if opts.same_owner {
        std::os::unix::fs::fchown(file, Some(o.uid), Some(o.gid)).map_err(io_at(path))?;
    }
    file.set_permissions(fs::Permissions::from_mode(o.mode))
        .map_err(io_at(path))?;
    file.set_modified(UNIX_EPOCH + Duration::from_secs(o.mtime))
        .map_err(io_at(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    use tar::Header;

    use super::*;
    use crate::send::LocalContext;

    /// A tar built entry by entry, with names and links exactly as given (tar-rs's own
    /// helpers refuse `..`, which is what these tests need to send).
    #[derive(Default)]
    struct RawTar(Vec<u8>);

    impl RawTar {
        fn entry(mut self, kind: EntryType, path: &str, link: &str, data: &[u8]) -> RawTar {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            h.set_mtime(1_600_000_000);
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            let linkname = &mut h.as_old_mut().linkname;
            linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.extend(std::iter::repeat_n(0u8, pad));
            self
        }
        fn file(self, path: &str, data: &[u8]) -> RawTar {
            self.entry(EntryType::Regular, path, "", data)
        }
        fn dir(self, path: &str) -> RawTar {
            self.entry(EntryType::Directory, path, "", b"")
        }
        fn symlink(self, path: &str, target: &str) -> RawTar {
            self.entry(EntryType::Symlink, path, target, b"")
        }
        fn hardlink(self, path: &str, target: &str) -> RawTar {
            self.entry(EntryType::Link, path, target, b"")
        }
        fn done(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0u8; 1024]);
            self.0
        }
    }

    fn opts() -> ExtractOptions {
        ExtractOptions { same_owner: false }
    }

    #[test]
    fn hostile_tars_are_refused() {
        const OUT: &str = "the path leaves the context";
        const SYMLINK: &str = "a parent directory is a symlink";
        const LINK_OUT: &str = "a hard link to outside the context";
        const LINK_NO_FILE: &str = "a hard link to no regular file in the context";
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "dot-dot",
                RawTar::default().file("../evil", b"x").done(),
                OUT,
            ),
            (
                "nested dot-dot",
                RawTar::default().file("a/../../evil", b"x").done(),
                OUT,
            ),
            (
                "absolute",
                RawTar::default().file("/tmp/evil", b"x").done(),
                OUT,
            ),
            (
                "through a symlink to a directory",
                RawTar::default()
                    .symlink("link", "/tmp")
                    .file("link/evil", b"x")
                    .done(),
                SYMLINK,
            ),
            (
                "through a relative symlink",
                RawTar::default()
                    .dir("d/")
                    .symlink("d/up", "../..")
                    .file("d/up/evil", b"x")
                    .done(),
                SYMLINK,
            ),
            (
                "a directory through a symlink",
                RawTar::default().symlink("up", "..").dir("up/evil/").done(),
                SYMLINK,
            ),
            (
                "hard link out of the context",
                RawTar::default().hardlink("h", "../../etc/passwd").done(),
                LINK_OUT,
            ),
            (
                "hard link to an absolute path",
                RawTar::default().hardlink("h", "/etc/passwd").done(),
                LINK_OUT,
            ),
            (
                "hard link to a symlink",
                RawTar::default()
                    .symlink("s", "/etc/passwd")
                    .hardlink("h", "s")
                    .done(),
                LINK_NO_FILE,
            ),
            (
                "hard link through a symlinked parent",
                RawTar::default()
                    .symlink("etc", "/etc")
                    .hardlink("h", "etc/passwd")
                    .done(),
                LINK_NO_FILE,
            ),
            (
                "a file as the root",
                RawTar::default().file("./", b"x").done(),
                "only a directory can be the context root",
            ),
            (
                "an unknown entry type",
                RawTar::default()
                    .entry(EntryType::new(b'Z'), "z", "", b"")
                    .done(),
                "an unsupported entry type",
            ),
        ];
        for (what, tar, why) in cases {
            let outer = tempfile::tempdir().expect("dir");
            let dest = outer.path().join("ctx");
            fs::create_dir(&dest).expect("mkdir");
            let e = extract(&tar[..], &dest, &opts()).expect_err(what);
            match &e {
                ExtractError::Refused { reason, .. } => assert_eq!(*reason, why, "{what}"),
                _ => panic!("{what}: {e}"),
            }
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(!outer.path().join("evil").exists(), "{what}");
        }
        assert!(!Path::new("/tmp/evil").exists());
    }

    #[test]
    fn a_later_entry_replaces_a_symlink_instead_of_writing_through_it() {
        let outer = tempfile::tempdir().expect("dir");
        let victim = outer.path().join("victim");
        fs::write(&victim, b"untouched").expect("write");
        let dest = outer.path().join("ctx");
        fs::create_dir(&dest).expect("mkdir");
        let tar = RawTar::default()
            .symlink("f", &victim.display().to_string())
            .file("f", b"new")
            .symlink("d", outer.path().to_str().expect("utf8"))
            .dir("d/")
            .done();
        extract(&tar[..], &dest, &opts()).expect("extract");
        assert_eq!(fs::read(&victim).expect("read"), b"untouched");
        assert_eq!(fs::read(dest.join("f")).expect("read"), b"new");
        assert!(fs::symlink_metadata(dest.join("d")).expect("stat").is_dir());
    }

    #[test]
    fn digests_are_taken_on_the_way_and_dropped_on_change() {
        let dest = tempfile::tempdir().expect("dir");
        let tar = RawTar::default()
            .file("a", b"alpha")
            .dir("sub/")
            .file("sub/b", b"beta")
            .symlink("l", "a")
            .done();
        let (stats, digests) = extract_with_digests(&tar[..], dest.path(), &opts()).expect("x");
        assert_eq!(stats.bytes, 9);
        assert_eq!(digests.len(), 2);
        let meta = |p: &str| fs::symlink_metadata(dest.path().join(p)).expect("stat");
        let want = *blake3::hash(b"beta").as_bytes();
        assert_eq!(digests.get(&meta("sub/b")), Some(want));
        assert_eq!(digests.get(&meta("l")), None);
        assert_eq!(digests.get(&meta("sub")), None);
        // Any change after the extraction makes the digest unknown, never wrong.
        fs::write(dest.path().join("a"), b"changed!").expect("write");
        assert_eq!(digests.get(&meta("a")), None);
        fs::set_permissions(dest.path().join("sub/b"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        assert_eq!(digests.get(&meta("sub/b")), None);
    }

    #[test]
    fn round_trip_keeps_the_tree() {
        let src = tempfile::tempdir().expect("dir");
        let root = src.path();
        fs::create_dir_all(root.join("app/ro")).expect("mkdir");
        fs::write(root.join("app/main.sh"), b"#!/bin/sh\necho hi\n").expect("write");
        fs::set_permissions(root.join("app/main.sh"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        fs::write(root.join("app/ro/data"), vec![7u8; 100_000]).expect("write");
        fs::hard_link(root.join("app/ro/data"), root.join("app/data-link")).expect("link");
        std::os::unix::fs::symlink("../etc/missing", root.join("app/dangling")).expect("ln");
        fs::set_permissions(root.join("app/ro"), fs::Permissions::from_mode(0o555)).expect("chmod");
        let mut tar = Vec::new();
        LocalContext::open(root, None)
            .expect("open")
            .write_tar(&mut tar)
            .expect("tar");

        // Plain, gzip and zstd streams unpack to the same tree.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = zstd::encode_all(&tar[..], 1).expect("zstd");
        for (what, stream) in [("plain", &tar), ("gzip", &gz), ("zstd", &zst)] {
            let dest = tempfile::tempdir().expect("dir");
            let stats = extract(&stream[..], dest.path(), &opts()).expect(what);
            assert_eq!(stats.entries, 6, "{what}");
            assert_eq!(stats.bytes, 100_000 + 18, "{what}");
            let d = dest.path();
            for (rel, mode) in [("app/main.sh", 0o755), ("app/ro", 0o555)] {
                let m = fs::symlink_metadata(d.join(rel)).expect("stat");
                let want = fs::symlink_metadata(root.join(rel)).expect("stat");
                assert_eq!(m.mode() & 0o7777, mode, "{what} {rel}");
                assert_eq!(m.mtime(), want.mtime(), "{what} {rel}");
            }
            assert_eq!(
                fs::read_link(d.join("app/dangling")).expect("link"),
                Path::new("../etc/missing")
            );
            let a = fs::metadata(d.join("app/ro/data")).expect("stat");
            let b = fs::metadata(d.join("app/data-link")).expect("stat");
            assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "{what}");
            assert_eq!(
                fs::read(d.join("app/ro/data")).expect("read"),
                vec![7u8; 100_000]
            );
            // Let the temp dir go despite the read-only directory.
            fs::set_permissions(d.join("app/ro"), fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        fs::set_permissions(root.join("app/ro"), fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn special_entries_and_bad_streams() {
        let dest = tempfile::tempdir().expect("dir");
        let tar = RawTar::default()
            .dir("./")
            .entry(EntryType::Fifo, "fifo", "", b"")
            .entry(EntryType::Char, "null", "", b"")
            .file("./a//b", b"ok")
            .done();
        let stats = extract(&tar[..], dest.path(), &opts()).expect("extract");
        assert_eq!(stats.entries, 1);
        assert!(!dest.path().join("fifo").exists() && !dest.path().join("null").exists());
        assert_eq!(fs::read(dest.path().join("a/b")).expect("read"), b"ok");
        assert_eq!(
            fs::metadata(dest.path().join("a/b"))
                .expect("stat")
                .modified()
                .expect("mtime"),
            UNIX_EPOCH + Duration::from_secs(1_600_000_000)
        );

        let e = extract(&b"BZh91AY"[..], dest.path(), &opts()).expect_err("bzip2");
        assert!(matches!(e, ExtractError::Compression("bzip2")));
        let mut truncated = RawTar::default().file("big", &[1u8; 2000]).done();
        truncated.truncate(1024);
        let e = extract(&truncated[..], dest.path(), &opts()).expect_err("truncated");
        assert!(matches!(e, ExtractError::Read(_)), "{e}");
        let e = extract(&b""[..], &dest.path().join("a/b"), &opts()).expect_err("not a dir");
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
