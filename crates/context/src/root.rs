//! What the builder asks of an extracted context besides its files' digests (which
//! [`crate::extract_with_digests`] takes): where a COPY/ADD source path leads, the Dockerfile,
//! and the removal of the build files `.dockerignore` names, as dockerd does before a build.
//!
//! Paths are resolved the way moby's `FollowSymlinkInScope` resolves them: symlinks are
//! followed, but as if the context root were `/`, so `..` and absolute targets stay inside.
//! A COPY source that is a symlink is therefore copied as what it points to; symlinks found
//! inside a copied directory are copied as symlinks.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::pattern::{parse_ignore, PatternMatcher};
use crate::{ErrorKind, DEFAULT_DOCKERFILE, DOCKERIGNORE};

/// How many symlinks one resolution may follow (Linux's own limit for a path is 40; moby's
/// is 255).
const MAX_LINKS: u32 = 255;

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// dockerd's wording, kept for compatibility.
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("too many levels of symbolic links: {path}")]
    TooManyLinks { path: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl RootError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RootError::NoDockerfile(_) => ErrorKind::NotFound,
            RootError::TooManyLinks { .. } => ErrorKind::InvalidArgument,
            RootError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RootError + '_ {
    move |source| RootError::Io {
        path: path.to_path_buf(),
        source,
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
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, RootError> {
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
                    return Err(RootError::TooManyLinks {
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
pub fn locate_dockerfile(root: &Path, name: &str) -> Result<LocatedDockerfile, RootError> {
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
    Err(RootError::NoDockerfile(name.to_string()))
}

/// dockerd's `removeDockerfile`: removes `.dockerignore` and the Dockerfile (`dockerfile`, its
/// name as found) from the context when `.dockerignore` excludes them, so that `COPY .` does
/// not copy them. The CLI sends them regardless, because the daemon needs them first.
pub fn remove_build_files(root: &Path, dockerfile: &str) -> Result<(), RootError> {
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
    use std::os::unix::fs::symlink;

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
            Err(RootError::TooManyLinks { .. })
        ));
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
            Err(RootError::NoDockerfile(n)) if n == "other/Dockerfile"
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
