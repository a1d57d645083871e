//! What the builder asks of an extracted context: where a COPY/ADD source path leads, a
//! checksum of what it would copy (the content part of a build-cache key), the Dockerfile,
//! and the removal of the build files `.dockerignore` names, as dockerd does before a build.
//!
//! Paths are resolved the way moby's `FollowSymlinkInScope` resolves them: symlinks are
//! followed, but as if the context root were `/`, so `..` and absolute targets stay inside.
//! A COPY source that is a symlink is therefore checksummed (and copied) as what it points
//! to; symlinks found inside a copied directory are copied, and checksummed, as symlinks.
//!
//! The checksums (version 1). Every record is hashed with SHA-256; `meta(e)` is the text
//! `type NUL mode NUL uid NUL gid`, with type `f` (regular file), `l` (symlink), `d`
//! (directory) or `o` (anything else), mode the permission bits with setuid/setgid/sticky in
//! octal (`0` for symlinks, whose mode means nothing on Linux), uid and gid in decimal.
//! mtimes are left out, as in moby's tarsum: touching a file must not miss the cache.
//!
//! - `payload(e)`: for a file SHA-256 of its contents, for a symlink SHA-256 of its target's
//!   bytes, for a directory `listing(e)`, for anything else SHA-256 of nothing;
//! - `listing(d)`: SHA-256 over the entries of `d` in byte order of their names, each as
//!   `name NUL meta(entry) NUL hex(payload(entry)) LF`;
//! - a file source: `file:` + hex of SHA-256 of `meta(f) NUL hex(payload(f))`;
//! - a directory source: `dir:` + hex of `listing(d)`: its own mode and owner are not part of
//!   it, since COPY copies what is inside a directory, not the directory.
//!
//! Names are bytes (no NUL can occur in them), lengths are implied by the fixed-size hex
//! digests, so no two trees give the same text. Hard links are hashed as the files they are.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::pattern::{parse_ignore, PatternMatcher};
use crate::{ErrorKind, DEFAULT_DOCKERFILE, DOCKERIGNORE};

/// How many symlinks one resolution may follow (Linux's own limit for a path is 40; moby's
/// is 255).
const MAX_LINKS: u32 = 255;

#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// dockerd's wording for a COPY source that is not there.
    #[error("file not found in build context or excluded by .dockerignore: stat {path}: file does not exist")]
    NotFound { path: String },
    /// dockerd's wording, kept for compatibility.
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("too many levels of symbolic links: {path}")]
    TooManyLinks { path: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl ChecksumError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ChecksumError::NotFound { .. } | ChecksumError::NoDockerfile(_) => ErrorKind::NotFound,
            ChecksumError::TooManyLinks { .. } => ErrorKind::InvalidArgument,
            ChecksumError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ChecksumError + '_ {
    move |source| ChecksumError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A regular file (or anything else that is not a directory).
    File,
    Dir,
}

/// The checksum of a COPY/ADD source; displayed as dockerd's cache keys are, `file:<hex>` or
/// `dir:<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    pub kind: SourceKind,
    pub digest: [u8; 32],
}

impl Checksum {
    /// The digest in lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.digest)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind {
            SourceKind::File => "file",
            SourceKind::Dir => "dir",
        };
        write!(f, "{prefix}:{}", self.hex())
    }
}

/// The plain components of a `/`-separated path, `..` kept (for the resolver to apply).
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(|p| OsString::from_vec(p.to_vec()))
}

/// Resolves `path` (relative to the context root, `/`-separated; a leading `/` means the
/// root too) inside `root`, following symlinks as if `root` were `/`. Returns the resolved
/// path relative to `root` (empty for the root itself); parts that do not exist are kept as
/// written, so the result may name nothing.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, ChecksumError> {
    let mut resolved: Vec<OsString> = Vec::new();
    // A stack: the next component to look at is last.
    let mut pending: Vec<OsString> = components(path.as_bytes()).rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ChecksumError::TooManyLinks {
                        path: path.to_string(),
                    });
                }
                let target = fs::read_link(&candidate).map_err(io_at(&candidate))?;
                let target = target.as_os_str().as_bytes();
                if target.starts_with(b"/") {
                    resolved.clear();
                }
                pending.extend(components(target).rev());
            }
            Ok(_) => resolved.push(part),
            // What does not exist cannot be a symlink: the rest is taken as written.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                resolved.push(part)
            }
            Err(e) => return Err(io_at(&candidate)(e)),
        }
    }
    Ok(resolved.iter().collect())
}

/// The checksum of the COPY/ADD source `path` of the context at `root` (see the module
/// documentation for what it covers).
pub fn checksum(root: &Path, path: &str) -> Result<Checksum, ChecksumError> {
    let full = root.join(resolve_in_root(root, path)?);
    let meta = match fs::symlink_metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ChecksumError::NotFound {
                path: path.to_string(),
            })
        }
        Err(e) => return Err(io_at(&full)(e)),
    };
    if meta.is_dir() {
        return Ok(Checksum {
            kind: SourceKind::Dir,
            digest: listing(&full)?,
        });
    }
    let (meta_text, payload) = record(&full, &meta)?;
    let mut h = Sha256::new();
    h.update(meta_text.as_bytes());
    h.update([0]);
    h.update(hex::encode(payload).as_bytes());
    Ok(Checksum {
        kind: SourceKind::File,
        digest: h.finalize().into(),
    })
}

/// `meta(e)` and `payload(e)` of one entry.
fn record(path: &Path, meta: &fs::Metadata) -> Result<(String, [u8; 32]), ChecksumError> {
    let ft = meta.file_type();
    let perms = meta.mode() & 0o7777;
    let (kind, mode, payload) = if ft.is_dir() {
        ('d', perms, listing(path)?)
    } else if ft.is_symlink() {
        let target = fs::read_link(path).map_err(io_at(path))?;
        ('l', 0, Sha256::digest(target.as_os_str().as_bytes()).into())
    } else if ft.is_file() {
        ('f', perms, file_digest(path)?)
    } else {
        ('o', perms, Sha256::digest(b"").into())
    };
    let text = format!("{kind}\0{mode:o}\0{}\0{}", meta.uid(), meta.gid());
    Ok((text, payload))
}

fn file_digest(path: &Path) -> Result<[u8; 32], ChecksumError> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_at(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_at(path)(e)),
        }
    }
    Ok(h.finalize().into())
}

/// `listing(d)`.
fn listing(dir: &Path) -> Result<[u8; 32], ChecksumError> {
    let mut names = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_at(dir))?;
    names.sort();
    let mut h = Sha256::new();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        let (meta_text, payload) = record(&path, &meta)?;
        h.update(name.as_bytes());
        h.update([0]);
        h.update(meta_text.as_bytes());
        h.update([0]);
        h.update(hex::encode(payload).as_bytes());
        h.update(b"\n");
    }
    Ok(h.finalize().into())
}

/// The Dockerfile of an extracted context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedDockerfile {
    /// The name it was found under: the one asked for, or `dockerfile` when `Dockerfile` was
    /// asked for and only that exists (dockerd's fallback). Pass it to [`remove_build_files`].
    pub name: String,
    /// Where it is, inside the root.
    pub path: PathBuf,
}

/// Finds the Dockerfile `name` (the `dockerfile` build parameter, `Dockerfile` when empty) in
/// the context at `root`, as dockerd does. Read it before [`remove_build_files`], which may
/// remove it.
pub fn locate_dockerfile(root: &Path, name: &str) -> Result<LocatedDockerfile, ChecksumError> {
    let name = if name.is_empty() {
        DEFAULT_DOCKERFILE
    } else {
        name
    };
    let lowercase = DEFAULT_DOCKERFILE.to_lowercase();
    let fallback = (name == DEFAULT_DOCKERFILE).then_some(lowercase.as_str());
    for candidate in std::iter::once(name).chain(fallback) {
        let path = root.join(resolve_in_root(root, candidate)?);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {
                return Ok(LocatedDockerfile {
                    name: candidate.to_string(),
                    path,
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
    }
    Err(ChecksumError::NoDockerfile(name.to_string()))
}

/// dockerd's `removeDockerfile`: removes `.dockerignore` and the Dockerfile (`dockerfile`, its
/// name as found) from the context when `.dockerignore` excludes them, so that `COPY .` does
/// not copy them. The CLI sends them regardless, because the daemon needs them first.
pub fn remove_build_files(root: &Path, dockerfile: &str) -> Result<(), ChecksumError> {
    let ignore = root.join(resolve_in_root(root, DOCKERIGNORE)?);
    let data = match File::open(&ignore).and_then(|mut f| {
        let mut data = Vec::new();
        f.read_to_end(&mut data).map(|_| data)
    }) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(&ignore)(e)),
    };
    // dockerd ignores a pattern error here (nothing is removed); the CLI reported it already.
    let Ok(matcher) = PatternMatcher::new(parse_ignore(&data)) else {
        return Ok(());
    };
    let doomed: Vec<&str> = [DOCKERIGNORE, dockerfile]
        .into_iter()
        .filter(|f| matcher.matches(f))
        .collect();
    for name in doomed {
        let rel = resolve_in_root(root, name)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let path = root.join(rel);
        let removed = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("dir");
        let r = dir.path();
        fs::create_dir_all(r.join("app/sub")).expect("mkdir");
        fs::write(r.join("app/a.txt"), b"alpha").expect("write");
        fs::write(r.join("app/sub/b.txt"), b"beta").expect("write");
        symlink("a.txt", r.join("app/link")).expect("symlink");
        symlink("../../../../etc/passwd", r.join("escape")).expect("symlink");
        symlink("/app", r.join("abs")).expect("symlink");
        symlink("loop2", r.join("loop1")).expect("symlink");
        symlink("loop1", r.join("loop2")).expect("symlink");
        dir
    }

    #[test]
    fn resolves_inside_the_root() {
        let dir = tree();
        let r = dir.path();
        let cases = [
            ("app/a.txt", "app/a.txt"),
            ("/app/./sub/../a.txt", "app/a.txt"),
            ("app/link", "app/a.txt"),
            // Out-of-root targets are clamped to the root, like a chroot.
            ("escape", "etc/passwd"),
            ("../../app", "app"),
            ("abs/sub/b.txt", "app/sub/b.txt"),
            ("abs/link", "app/a.txt"),
            ("missing/../app", "app"),
            (".", ""),
        ];
        for (path, want) in cases {
            assert_eq!(
                resolve_in_root(r, path).expect(path),
                Path::new(want),
                "{path}"
            );
        }
        assert!(matches!(
            resolve_in_root(r, "loop1"),
            Err(ChecksumError::TooManyLinks { .. })
        ));
    }

    #[test]
    fn checksums_are_deterministic_and_cover_what_matters() {
        let one = tree();
        let two = tree();
        let sum = |d: &tempfile::TempDir, p: &str| checksum(d.path(), p).expect(p);
        let app = sum(&one, "app");
        assert_eq!(app.kind, SourceKind::Dir);
        assert_eq!(app, sum(&two, "app/"));
        assert!(app.to_string().starts_with("dir:") && app.to_string().len() == 68);
        // A symlinked source is what it points to.
        assert_eq!(sum(&one, "app/link"), sum(&one, "app/a.txt"));
        assert_eq!(sum(&one, "abs"), app);
        assert!(sum(&one, "app/a.txt").to_string().starts_with("file:"));

        // mtimes do not count; content, mode, owner and link targets do.
        let t = two.path();
        let f = File::options()
            .write(true)
            .open(t.join("app/a.txt"))
            .expect("open");
        f.set_modified(std::time::UNIX_EPOCH).expect("touch");
        assert_eq!(sum(&two, "app"), app);
        fs::write(t.join("app/sub/b.txt"), b"BETA").expect("write");
        assert_ne!(sum(&two, "app"), app);
        fs::write(t.join("app/sub/b.txt"), b"beta").expect("write");
        assert_eq!(sum(&two, "app"), app);
        fs::set_permissions(t.join("app/a.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_ne!(sum(&two, "app"), app);
        assert_ne!(sum(&two, "app/a.txt"), sum(&one, "app/a.txt"));
        fs::set_permissions(t.join("app/a.txt"), fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(t.join("app/sub"), fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_ne!(sum(&two, "app"), app, "a subdirectory's mode counts");
        // The source directory's own mode does not.
        fs::set_permissions(t.join("app/sub"), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(t.join("app"), fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(sum(&two, "app"), app);
        std::os::unix::fs::lchown(t.join("app/sub/b.txt"), Some(4242), None).ok();
        if nix::unistd::geteuid().is_root() {
            assert_ne!(sum(&two, "app"), app, "owners count");
        }
        fs::remove_file(t.join("app/link")).expect("rm");
        symlink("sub/b.txt", t.join("app/link")).expect("symlink");
        assert_ne!(sum(&one, "app"), sum(&two, "app"));

        assert!(matches!(
            checksum(one.path(), "nope/x"),
            Err(ChecksumError::NotFound { .. })
        ));
        assert_eq!(
            ChecksumError::NotFound { path: "x".into() }.to_string(),
            "file not found in build context or excluded by .dockerignore: stat x: file does not exist"
        );
    }

    /// A fixed tree hashes to a fixed value: changing the definition must be deliberate.
    #[test]
    fn the_definition_is_stable() {
        let dir = tempfile::tempdir().expect("dir");
        let r = dir.path();
        fs::create_dir(r.join("d")).expect("mkdir");
        fs::write(r.join("d/f"), b"x").expect("write");
        fs::set_permissions(r.join("d/f"), fs::Permissions::from_mode(0o644)).expect("chmod");
        let meta = fs::metadata(r.join("d/f")).expect("stat");
        let (uid, gid) = (meta.uid(), meta.gid());
        let content = hex::encode(Sha256::digest(b"x"));
        let file_record = format!("f\0644\0{uid}\0{gid}\0{content}");
        assert_eq!(
            checksum(r, "d/f").expect("file").hex(),
            hex::encode(Sha256::digest(file_record.as_bytes()))
        );
        let listing = format!("f\0f\0644\0{uid}\0{gid}\0{content}\n");
        assert_eq!(
            checksum(r, "d").expect("dir").hex(),
            hex::encode(Sha256::digest(listing.as_bytes()))
        );
    }

    #[test]
    fn dockerfile_and_build_files() {
        let dir = tempfile::tempdir().expect("dir");
        let r = dir.path();
        fs::write(r.join("dockerfile"), b"FROM scratch\n").expect("write");
        let found = locate_dockerfile(r, "").expect("fallback");
        assert_eq!(found.name, "dockerfile");
        assert!(matches!(
            locate_dockerfile(r, "other/Dockerfile"),
            Err(ChecksumError::NoDockerfile(n)) if n == "other/Dockerfile"
        ));
        fs::write(r.join("Dockerfile"), b"FROM busybox\n").expect("write");
        assert_eq!(
            locate_dockerfile(r, "Dockerfile").expect("found").path,
            r.join("Dockerfile")
        );

        // Without a .dockerignore nothing is removed; with one, what it names.
        remove_build_files(r, "Dockerfile").expect("remove");
        assert!(r.join("Dockerfile").exists());
        fs::write(r.join(".dockerignore"), b"Dockerfile\n.dockerignore\n").expect("write");
        fs::write(r.join("keep"), b"k").expect("write");
        remove_build_files(r, "Dockerfile").expect("remove");
        assert!(!r.join("Dockerfile").exists() && !r.join(".dockerignore").exists());
        assert!(r.join("dockerfile").exists() && r.join("keep").exists());
    }
}
