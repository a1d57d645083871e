//! The context tar of a local directory, as the docker CLI makes it for its legacy builder
//! (`build.GetContextFromLocalDir`, `archive.TarWithOptions`, `AddDockerfileToBuildContext`).
//!
//! - Entries are visited depth first, each directory's entries in byte order of their names
//!   (Go's `fs.WalkDir`), with paths relative to the root, directories ending in `/`.
//! - Each entry keeps its mode (permissions with setuid/setgid/sticky), owner and mtime (whole
//!   seconds) as on disk, unless an owner is forced with [`LocalContext::chown`] (the docker
//!   CLI sends everything as 0:0). Symlinks are stored as symlinks and never followed; a
//!   regular file seen again through another hard link is stored as a hard link to the first
//!   path; sockets, FIFOs and devices are left out.
//! - `.dockerignore` decides what is left out, as the walk of `TarWithOptions` does: a
//!   pattern matching a directory leaves out all of it, unless an exception names something
//!   inside it, in which case the walk goes in (without an entry for the directory itself).
//!   `.dockerignore` and the Dockerfile are always sent: the daemon needs them and drops them
//!   itself when they are ignored.
//! - A Dockerfile from outside the directory (or from stdin) is added at the end under a
//!   hidden name (`.dockerfile.<20 hex>`, mode 0600), and that name is appended to the
//!   `.dockerignore` sent, so the daemon removes it from the context before building.
//!
//! [`LocalContext::write_tar`] writes into any `Write` as it walks; nothing but the two files
//! above is held in memory. A file that changes size while being read is sent with the size
//! it had when listed (cut or padded with zeros), so the archive stays well-formed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tar::{EntryType, Header};

use crate::pattern::{parse_ignore, MatchInfo, PatternError, PatternMatcher};
use crate::{ErrorKind, DOCKERIGNORE};

/// Why a context could not be made. The messages are the docker CLI's.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("context must be a directory: {}", .0.display())]
    NotADirectory(PathBuf),
    #[error("{0}")]
    Pattern(#[from] PatternError),
    #[error("can't stat '{}'", .0.display())]
    CantStat(PathBuf),
    #[error("file ('{}') not found or excluded by .dockerignore", .0.display())]
    Missing(PathBuf),
    #[error("no permission to read from '{}'", .0.display())]
    NoPermission(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The consumer of the tar went away or failed.
    #[error("writing the build context: {0}")]
    Write(io::Error),
}

impl ContextError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContextError::Missing(_) => ErrorKind::NotFound,
            ContextError::NotADirectory(_) | ContextError::Pattern(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`LocalContext::write_tar`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarStats {
    /// Entries in the archive.
    pub entries: u64,
    /// Bytes of file contents (not counting headers and padding).
    pub content_bytes: u64,
}

/// A directory to send as a build context.
#[derive(Debug, Clone)]
pub struct LocalContext {
    root: PathBuf,
    matcher: PatternMatcher,
    chown: Option<(u32, u32)>,
    /// A Dockerfile that is not in the directory: its hidden name and contents.
    extra_dockerfile: Option<(String, Vec<u8>)>,
    /// The mtime of the entries the context adds itself.
    now: u64,
}

impl LocalContext {
    /// The directory `root` with its `.dockerignore`. `dockerfile` is the Dockerfile's path
    /// relative to `root` (`/`-separated) when it lies inside it; it is then always sent.
    pub fn open(root: &Path, dockerfile: Option<&str>) -> Result<LocalContext, ContextError> {
        let meta = fs::metadata(root).map_err(io_at(root))?;
        if !meta.is_dir() {
            return Err(ContextError::NotADirectory(root.to_path_buf()));
        }
        let ignore = root.join(DOCKERIGNORE);
        let patterns = match fs::read(&ignore) {
            Ok(data) => parse_ignore(&data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_at(&ignore)(e)),
        };
        Self::with_patterns(root, patterns, dockerfile)
    }

    /// Like [`LocalContext::open`] with the ignore patterns given.
    pub fn with_patterns(
        root: &Path,
        mut patterns: Vec<String>,
        dockerfile: Option<&str>,
    ) -> Result<LocalContext, ContextError> {
        // docker's TrimBuildFilesFromExcludes: re-include the build files when ignored. (It
        // asks the deprecated one-parent matcher, which misses a Dockerfile under a deeper
        // excluded directory; every parent is checked here, so the file is always sent.)
        let plain = PatternMatcher::new(&patterns)?;
        let keep: Vec<String> = std::iter::once(DOCKERIGNORE)
            .chain(dockerfile)
            .filter(|f| plain.matches(f))
            .map(|f| format!("!{f}"))
            .collect();
        patterns.extend(keep);
        Ok(LocalContext {
            root: root.to_path_buf(),
            matcher: PatternMatcher::new(&patterns)?,
            chown: None,
            extra_dockerfile: None,
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
    }

    /// Writes every entry with this owner (the docker CLI uses 0:0).
    pub fn chown(mut self, uid: u32, gid: u32) -> LocalContext {
        self.chown = Some((uid, gid));
        self
    }

    /// The mtime (seconds since the epoch) of the entries the context adds itself: the hidden
    /// Dockerfile and a `.dockerignore` made for it. Now, unless set.
    pub fn mtime(mut self, secs: u64) -> LocalContext {
        self.now = secs;
        self
    }

    /// Adds a Dockerfile that is not inside the directory (or came from stdin) under a hidden
    /// name, and returns that name: the `dockerfile` parameter of the build.
    pub fn add_dockerfile(&mut self, contents: Vec<u8>) -> String {
        let name = hidden_dockerfile_name();
        self.extra_dockerfile = Some((name.clone(), contents));
        name
    }

    /// The patterns in effect, the build files' exceptions included.
    pub fn matcher(&self) -> &PatternMatcher {
        &self.matcher
    }

    /// docker's `ValidateContextDirectory`: every file that will be sent can be read. Run it
    /// before sending, so an unreadable file is an error and not a broken upload.
    pub fn validate(&self) -> Result<(), ContextError> {
        self.validate_dir(Path::new(""), "")
    }

    fn validate_dir(&self, rel: &Path, rel_str: &str) -> Result<(), ContextError> {
        let dir = self.root.join(rel);
        for name in sorted_names(&dir).map_err(|e| walk_error(&dir, e))? {
            let (child, child_str) = child_paths(rel, rel_str, &name);
            let full = self.root.join(&child);
            let meta = fs::symlink_metadata(&full).map_err(|e| walk_error(&full, e))?;
            // This check skips ignored directories whole, exceptions or not, as docker's does.
            if self.matcher.matches(&child_str) {
                continue;
            }
            if meta.is_dir() {
                self.validate_dir(&child, &child_str)?;
            } else if meta.is_file() {
                if let Err(e) = File::open(&full) {
                    if e.kind() == io::ErrorKind::PermissionDenied {
                        return Err(ContextError::NoPermission(full));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the context tar into `out`, then the end-of-archive blocks, and flushes it.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<TarStats, ContextError> {
        let mut w = Writer {
            tar: tar::Builder::new(Watched {
                inner: out,
                failed: false,
            }),
            links: HashMap::new(),
            stats: TarStats::default(),
            wrote_ignore: false,
        };
        let result = self.write_all(&mut w);
        let failed = w.tar.get_ref().failed;
        match result {
            Err(ContextError::Io { source, .. }) if failed => Err(ContextError::Write(source)),
            Err(e) => Err(e),
            Ok(()) => {
                let mut out = w.tar.into_inner().map_err(ContextError::Write)?;
                out.flush().map_err(ContextError::Write)?;
                Ok(w.stats)
            }
        }
    }

    fn write_all<W: Write>(&self, w: &mut Writer<W>) -> Result<(), ContextError> {
        self.write_dir(w, Path::new(""), "", &MatchInfo::default())?;
        if let Some((name, contents)) = &self.extra_dockerfile {
            if !w.wrote_ignore {
                let mut h = self.added_header();
                let mut data = DOCKERIGNORE.as_bytes().to_vec();
                data.extend_from_slice(format!("\n{name}\n").as_bytes());
                w.append_bytes(&mut h, Path::new(DOCKERIGNORE), &data)?;
            }
            let mut h = self.added_header();
            w.append_bytes(&mut h, Path::new(name), contents)?;
        }
        Ok(())
    }

    /// The header of an entry the context adds: a 0600 regular file owned by 0:0.
    fn added_header(&self) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.now);
        h
    }

    fn write_dir<W: Write>(
        &self,
        w: &mut Writer<W>,
        rel: &Path,
        rel_str: &str,
        info: &MatchInfo,
    ) -> Result<(), ContextError> {
        let dir = self.root.join(rel);
        for name in sorted_names(&dir).map_err(io_at(&dir))? {
            let (child, child_str) = child_paths(rel, rel_str, &name);
            let full = self.root.join(&child);
            let meta = match fs::symlink_metadata(&full) {
                Ok(m) => m,
                // Gone since the directory was listed: it is not part of the context.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_at(&full)(e)),
            };
            let (skip, child_info) = self.matcher.matches_with_parent(&child_str, info);
            if skip {
                if meta.is_dir()
                    && self.matcher.has_exclusions()
                    && self.matcher.may_include_inside(&child_str)
                {
                    self.write_dir(w, &child, &child_str, &child_info)?;
                }
                continue;
            }
            if child_str == DOCKERIGNORE && meta.is_file() {
                if let Some((name, _)) = &self.extra_dockerfile {
                    let mut data = fs::read(&full).map_err(io_at(&full))?;
                    data.extend_from_slice(format!("\n{name}\n").as_bytes());
                    let mut h = self.header(&meta, EntryType::Regular);
                    w.append_bytes(&mut h, &child, &data)?;
                    w.wrote_ignore = true;
                    continue;
                }
            }
            self.write_entry(w, &full, &child, &meta)?;
            if meta.is_dir() {
                self.write_dir(w, &child, &child_str, &child_info)?;
            }
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        let (uid, gid) = self.chown.unwrap_or((meta.uid(), meta.gid()));
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        // Before the epoch cannot be written in a header field; such files get the epoch.
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn write_entry<W: Write>(
        &self,
        w: &mut Writer<W>,
        full: &Path,
        rel: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), ContextError> {
        let ft = meta.file_type();
        let fail = io_at(full);
        if ft.is_dir() {
            let mut h = self.header(meta, EntryType::Directory);
            let mut name = rel.as_os_str().to_os_string();
            name.push("/");
            w.stats.entries += 1;
            return w
                .tar
                .append_data(&mut h, Path::new(&name), io::empty())
                .map_err(fail);
        }
        if ft.is_symlink() {
            let target = fs::read_link(full).map_err(io_at(full))?;
            let mut h = self.header(meta, EntryType::Symlink);
            w.stats.entries += 1;
            return w.tar.append_link(&mut h, rel, target).map_err(fail);
        }
        if !ft.is_file() {
            // Sockets, FIFOs and devices have no place in a build context.
            return Ok(());
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = w.links.get(&key) {
                let mut h = self.header(meta, EntryType::Link);
                let first = first.clone();
                w.stats.entries += 1;
                return w.tar.append_link(&mut h, rel, first).map_err(fail);
            }
            w.links.insert(key, rel.to_path_buf());
        }
        // O_NOFOLLOW: a file swapped for a symlink since it was listed is not followed.
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(full)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                w.links.remove(&(meta.dev(), meta.ino()));
                return Ok(());
            }
            Err(e) => return Err(io_at(full)(e)),
        };
        let mut h = self.header(meta, EntryType::Regular);
        h.set_size(meta.len());
        w.stats.entries += 1;
        w.stats.content_bytes += meta.len();
        w.tar
            .append_data(&mut h, rel, exact(file, meta.len()))
            .map_err(fail)
    }
}

/// The state of one [`LocalContext::write_tar`].
struct Writer<W: Write> {
    tar: tar::Builder<Watched<W>>,
    /// The first path written for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), PathBuf>,
    stats: TarStats,
    wrote_ignore: bool,
}

impl<W: Write> Writer<W> {
    fn append_bytes(
        &mut self,
        h: &mut Header,
        path: &Path,
        data: &[u8],
    ) -> Result<(), ContextError> {
        h.set_size(data.len() as u64);
        self.stats.entries += 1;
        self.stats.content_bytes += data.len() as u64;
        self.tar.append_data(h, path, data).map_err(io_at(path))
    }
}

/// The output, remembering whether it failed: the tar builder reports reading a file and
/// writing the archive through the same `io::Error`.
struct Watched<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// Exactly `size` bytes of `inner`: cut where it is longer, zeros where it ended early.
fn exact<R: Read>(inner: R, size: u64) -> impl Read {
    struct Exact<R> {
        inner: R,
        left: u64,
        ended: bool,
    }
    impl<R: Read> Read for Exact<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let max = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if max == 0 {
                return Ok(0);
            }
            let mut n = 0;
            if !self.ended {
                n = self.inner.read(&mut buf[..max])?;
                self.ended = n == 0;
            }
            if self.ended {
                buf[..max].fill(0);
                n = max;
            }
            self.left -= n as u64;
            Ok(n)
        }
    }
    Exact {
        inner,
        left: size,
        ended: false,
    }
}

fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    // OsString orders by bytes on Unix, as Go sorts names.
    names.sort();
    Ok(names)
}

/// The child's path as a path (exact bytes) and as the `/`-separated text patterns see.
fn child_paths(rel: &Path, rel_str: &str, name: &OsString) -> (PathBuf, String) {
    let name_str = name.to_string_lossy();
    let text = if rel_str.is_empty() {
        name_str.into_owned()
    } else {
        format!("{rel_str}/{name_str}")
    };
    (rel.join(name), text)
}

/// docker's wording of walk failures.
fn walk_error(path: &Path, e: io::Error) -> ContextError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => ContextError::CantStat(path.to_path_buf()),
        io::ErrorKind::NotFound => ContextError::Missing(path.to_path_buf()),
        _ => io_at(path)(e),
    }
}

/// The name docker gives a Dockerfile from outside the context: `.dockerfile.` and 20 random
/// hex digits.
pub fn hidden_dockerfile_name() -> String {
    let mut bytes = [0u8; 10];
    let random = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // No /dev/urandom (a chroot): the clock and pid are unique enough for one name.
        use sha2::Digest as _;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = sha2::Sha256::digest(format!("{now}-{}", std::process::id()));
        bytes.copy_from_slice(&seed[..10]);
    }
    format!(".dockerfile.{}", hex::encode(bytes))
}

/// The context `docker build - < Dockerfile` sends: a tar with the Dockerfile alone (mode
/// 0644, owner 0:0, mtime `mtime`).
pub fn dockerfile_tar<W: Write>(contents: &[u8], out: W, mtime: u64) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(contents.len() as u64);
    tar.append_data(&mut h, crate::DEFAULT_DOCKERFILE, contents)?;
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(out)
}

/// docker's `build.IsArchive`: whether the first bytes of a stream (docker looks at 1024) are
/// a compressed stream (gzip, bzip2, xz, zstd) or a tar header with a valid checksum. Used to
/// tell a context tar on stdin from a Dockerfile.
pub fn is_archive(header: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b, 0x08],
        b"BZh",
        &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGICS.iter().any(|m| header.starts_with(m)) {
        return true;
    }
    let Some(block) = header.get(..512) else {
        return false;
    };
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .take_while(|c| *c != '\0')
        .collect();
    let Ok(want) = i64::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    // The checksum counts its own field as spaces; old tars summed signed bytes.
    let unsigned: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| i64::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            i64::from(if (148..156).contains(&i) {
                b' ' as i8
            } else {
                b as i8
            })
        })
        .sum();
    want == unsigned || want == signed
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    /// (path, type, mode, uid, gid, size, link target, contents) of each entry.
    type Row = (String, char, u32, u64, u64, u64, String, Vec<u8>);

    fn entries(tar: &[u8]) -> Vec<Row> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read");
                let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (
                    path,
                    h.entry_type().as_byte() as char,
                    h.mode().expect("mode"),
                    h.uid().expect("uid"),
                    h.gid().expect("gid"),
                    h.size().expect("size"),
                    link,
                    data,
                )
            })
            .collect()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        entries(tar).into_iter().map(|r| r.0).collect()
    }

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, data).expect("write");
    }

    fn tar_of(ctx: &LocalContext) -> Vec<u8> {
        let mut out = Vec::new();
        ctx.write_tar(&mut out).expect("tar");
        out
    }

    #[test]
    fn sorted_relative_entries_with_metadata() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        write(root, "b.txt", b"bee");
        write(root, "a/z", b"zed");
        write(root, "a.txt", b"ay");
        fs::set_permissions(root.join("b.txt"), fs::Permissions::from_mode(0o4751)).expect("chmod");
        symlink("/etc/passwd", root.join("abs-link")).expect("symlink");
        symlink("../../outside", root.join("a/rel-link")).expect("symlink");
        fs::hard_link(root.join("b.txt"), root.join("c-hard")).expect("link");
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("socket");

        let ctx = LocalContext::open(root, Some("Dockerfile")).expect("open");
        let tar = tar_of(&ctx);
        let rows = entries(&tar);
        let summary: Vec<(&str, char, &str)> = rows
            .iter()
            .map(|r| (r.0.as_str(), r.1, r.6.as_str()))
            .collect();
        // Go's WalkDir order: "a" before "a.txt", its entries before "a.txt".
        assert_eq!(
            summary,
            [
                ("a/", '5', ""),
                ("a/rel-link", '2', "../../outside"),
                ("a/z", '0', ""),
                ("a.txt", '0', ""),
                ("abs-link", '2', "/etc/passwd"),
                ("b.txt", '0', ""),
                ("c-hard", '1', "b.txt"),
            ]
        );
        let b = &rows[5];
        assert_eq!((b.2, b.5, b.7.as_slice()), (0o4751, 3, &b"bee"[..]));
        let meta = fs::metadata(root.join("b.txt")).expect("stat");
        assert_eq!((b.3, b.4), (u64::from(meta.uid()), u64::from(meta.gid())));
        let mut h = tar::Archive::new(&tar[..]);
        let first = h
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("ok");
        assert_eq!(
            first.header().mtime().expect("mtime"),
            fs::metadata(root.join("a"))
                .expect("stat")
                .mtime()
                .unsigned_abs()
        );

        // The same tree gives the same bytes; a forced owner shows on every entry.
        assert_eq!(tar_of(&ctx), tar);
        let owned = tar_of(&ctx.clone().chown(0, 0));
        assert!(entries(&owned).iter().all(|r| r.3 == 0 && r.4 == 0));
        assert_eq!(entries(&owned).len(), 7);
    }

    #[test]
    fn dockerignore_excludes_and_exceptions() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        for f in [
            "Dockerfile",
            "app/main.go",
            "app/main_test.go",
            "app/debug.log",
            "node_modules/x/index.js",
            "secret/key",
            "secret/keep/me",
            "docs/README.md",
            "docs/guide.md",
            "build/Dockerfile",
        ] {
            write(root, f, f.as_bytes());
        }
        write(
            root,
            ".dockerignore",
            b"# build junk\n*/*.log\nnode_modules\n/secret\n!secret/keep\ndocs\n!docs/README.md\n**/*_test.go\n.dockerignore\nDockerfile\nbuild\n",
        );
        let ctx = LocalContext::open(root, Some("build/Dockerfile")).expect("open");
        assert_eq!(
            names(&tar_of(&ctx)),
            [
                // The Dockerfile at the root is ignored; the one being used is not.
                ".dockerignore",
                "app/",
                "app/main.go",
                // build/ is excluded; the Dockerfile in it is sent without its directory.
                "build/Dockerfile",
                // docs/ is excluded and walked into for the exception, without an entry.
                "docs/README.md",
                "secret/keep/",
                "secret/keep/me",
            ]
        );
        assert!(ctx.validate().is_ok());
    }

    #[test]
    fn outside_dockerfile_gets_a_hidden_name_listed_in_dockerignore() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        write(root, "f", b"x");
        let mut ctx = LocalContext::open(root, None)
            .expect("open")
            .mtime(1_700_000_000);
        let name = ctx.add_dockerfile(b"FROM busybox\n".to_vec());
        assert!(
            name.starts_with(".dockerfile.") && name.len() == 32,
            "{name}"
        );
        let rows = entries(&tar_of(&ctx));
        assert_eq!(
            rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ["f", ".dockerignore", name.as_str()]
        );
        assert_eq!(
            String::from_utf8_lossy(&rows[1].7),
            format!(".dockerignore\n{name}\n")
        );
        assert_eq!((rows[2].2, rows[2].3), (0o600, 0));
        assert_eq!(rows[2].7, b"FROM busybox\n");

        // An existing .dockerignore keeps its place and gets the name appended.
        write(root, ".dockerignore", b"f");
        let mut ctx = LocalContext::open(root, None).expect("open");
        let name = ctx.add_dockerfile(b"FROM scratch\n".to_vec());
        let rows = entries(&tar_of(&ctx));
        assert_eq!(
            rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            [".dockerignore", name.as_str()]
        );
        assert_eq!(String::from_utf8_lossy(&rows[0].7), format!("f\n{name}\n"));
    }

    #[test]
    fn validation_finds_unreadable_files() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        write(root, "secret", b"x");
        write(root, "ok", b"x");
        fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o000)).expect("chmod");
        let ctx = LocalContext::open(root, None).expect("open");
        // root reads everything; the check only means something for other users.
        if !nix::unistd::geteuid().is_root() {
            let e = ctx.validate().expect_err("unreadable");
            assert_eq!(
                e.to_string(),
                format!(
                    "no permission to read from '{}'",
                    root.join("secret").display()
                )
            );
        }
        let ignored =
            LocalContext::with_patterns(root, vec!["secret".into()], None).expect("patterns");
        assert!(ignored.validate().is_ok());
        let e = LocalContext::with_patterns(root, vec!["[".into()], None).expect_err("bad");
        assert_eq!(e.to_string(), "syntax error in pattern");
        let e = LocalContext::open(&root.join("ok"), None).expect_err("a file");
        assert!(matches!(e, ContextError::NotADirectory(_)));
    }

    #[test]
    fn long_names_and_broken_consumers() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        write(root, &long, b"deep");
        let ctx = LocalContext::open(root, None).expect("open");
        let tar = tar_of(&ctx);
        assert_eq!(names(&tar), [format!("{}/", "d".repeat(120)), long.clone()]);

        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(ctx.write_tar(Closed), Err(ContextError::Write(_))));
    }

    #[test]
    fn exact_size_reader_pads_and_cuts() {
        let mut out = Vec::new();
        exact(&b"abc"[..], 5).read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abc\0\0");
        out.clear();
        exact(&b"abcdef"[..], 2)
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"ab");
    }

    #[test]
    fn detects_archives() {
        let mut tar = Vec::new();
        dockerfile_tar(b"FROM busybox\n", &mut tar, 0).expect("tar");
        assert!(is_archive(&tar[..1024]));
        assert_eq!(names(&tar), ["Dockerfile"]);
        assert_eq!(entries(&tar)[0].2, 0o644);
        assert!(is_archive(&[0x1f, 0x8b, 0x08, 0]));
        assert!(!is_archive(b"FROM busybox\nRUN true\n"));
        assert!(!is_archive(&[0u8; 1024]));
        let mut broken = tar.clone();
        broken[0] ^= 1;
        assert!(!is_archive(&broken));
        assert!(hidden_dockerfile_name() != hidden_dockerfile_name());
    }
}
