//! The build context on the daemon's side: the tar the client sent, unpacked into a private
//! directory, and paths inside it resolved without ever leaving it.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_context::FileDigests;
use berth_engine::EngineError;

use crate::Result;

/// Dockerfiles are small; a huge one is refused rather than read into memory.
const MAX_DOCKERFILE: u64 = 16 << 20;

/// A build context on the daemon's side: its directory, and the content digests of the files
/// unpacked into it (empty for a context that was not unpacked here, such as a git checkout).
#[derive(Debug)]
pub struct Context {
    pub root: PathBuf,
    pub digests: FileDigests,
}

impl Context {
    /// A directory whose files are hashed when a step needs them.
    pub fn dir(root: PathBuf) -> Context {
        Context {
            root,
            digests: FileDigests::default(),
        }
    }
}

/// Unpacks a context tar (plain, gzip or zstd) into `dest` with `berth-context`'s strict
/// extraction: nothing lands outside `dest` or is written through a symlink. Files are hashed
/// as they are written: a cached step's key then needs no second read of them.
pub fn unpack_context<R: Read>(input: R, dest: &Path) -> Result<Context> {
    berth_context::extract_with_digests(input, dest, &berth_context::ExtractOptions::default())
        .map(|(_, digests)| Context {
            root: dest.to_path_buf(),
            digests,
        })
        .map_err(|e| EngineError::invalid(format!("invalid build context: {e}")))
}

/// Reads the Dockerfile at `name` (dockerd's lookup, `dockerfile` as a fallback), then takes
/// it and `.dockerignore` out of the context when `.dockerignore` excludes them, as dockerd
/// does, so that `COPY .` does not copy them.
pub(crate) fn read_dockerfile(context: &Path, name: &str) -> Result<String> {
    let located = berth_context::locate_dockerfile(context, name).map_err(|_| {
        EngineError::invalid(format!(
            "Cannot locate specified Dockerfile: {}",
            name.trim_start_matches("./")
        ))
    })?;
    let file = std::fs::File::open(&located.path)
        .map_err(|e| EngineError::invalid(format!("read Dockerfile {name}: {e}")))?;
    let mut text = String::new();
    file.take(MAX_DOCKERFILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| EngineError::invalid(format!("read Dockerfile {name}: {e}")))?;
    if text.len() as u64 > MAX_DOCKERFILE {
        return Err(EngineError::invalid(format!(
            "the Dockerfile {name} is larger than {MAX_DOCKERFILE} bytes"
        )));
    }
    berth_context::remove_build_files(context, &located.name)
        .map_err(|e| EngineError::invalid(format!("build context: {e}")))?;
    Ok(text)
}

/// A source resolved inside its root: the open file or directory keeps it reachable through
/// `/proc/self/fd`, whatever symlinks the path went through (followed inside the root only).
pub(crate) struct Resolved {
    _file: std::fs::File,
    pub path: PathBuf,
    /// The name a file takes when copied into a directory: the source path's last part.
    pub name: String,
    pub is_dir: bool,
}

pub(crate) fn resolve_in(root: &Path, rel: &str) -> std::io::Result<Resolved> {
    use std::os::fd::AsRawFd;
    let clean = rel.trim_start_matches("./");
    let file = berth_runtime::user::open_in_root(root, &format!("/{clean}"))?;
    let is_dir = file.metadata()?.is_dir();
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let name = clean
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    Ok(Resolved {
        _file: file,
        path,
        name,
        is_dir,
    })
}

/// Expands a `COPY` source pattern (`*`, `?`, `[…]` in any component) against `root`.
/// Matches are sorted; a pattern without wildcards is returned as is.
pub(crate) fn expand_pattern(root: &Path, pattern: &str) -> Vec<String> {
    let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
    if !pattern.contains(['*', '?', '[']) {
        return vec![pattern.to_string()];
    }
    let mut found = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for base in &found {
            if !comp.contains(['*', '?', '[']) {
                next.push(join(base, comp));
                continue;
            }
            // Listing is done through the root-confined open, so a symlinked directory in the
            // context cannot make the match read the host.
            let Ok(dir) = resolve_in(root, if base.is_empty() { "." } else { base }) else {
                continue;
            };
            if !dir.is_dir {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir.path) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| glob_match(comp, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| join(base, &n)));
        }
        found = next;
    }
    found
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Go's `filepath.Match` for one path component: `*`, `?`, `[a-z]`, `[!x]`, `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = matches!(p.get(i), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|h| *h != ']') {
                let hi = p[i + 2];
                if lo <= c && c <= hi {
                    matched = true;
                }
                i += 3;
            } else {
                if lo == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| rec(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && rec(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, used))) => rec(&p[used..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && rec(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Bounded: a component is short, and `*` backtracking is at most |n| per star.
    p.len() <= 256 && n.len() <= 4096 && rec(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        for (p, n, want) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("a?c", "abc", true),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[!a-c]x", "dx", true),
            ("\\*", "*", true),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} ~ {n}");
        }
    }

    #[test]
    fn hostile_context_entries_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "escape", "/").expect("link");
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "escape/tmp/pwned", &b"x"[..])
            .expect("file");
        let tar = b.into_inner().expect("tar");
        let r = unpack_context(tar.as_slice(), dir.path());
        assert!(r.is_err(), "{r:?}");
        assert!(!Path::new("/tmp/pwned").exists());
    }

    #[test]
    fn sources_resolve_inside_the_context() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("a.txt"), b"a").expect("write");
        std::fs::write(dir.path().join("b.txt"), b"b").expect("write");
        std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).expect("link");
        assert_eq!(expand_pattern(dir.path(), "*.txt"), vec!["a.txt", "b.txt"]);
        // The absolute link resolves to <context>/etc, which does not exist.
        assert!(resolve_in(dir.path(), "etc-link/passwd").is_err());
        let r = resolve_in(dir.path(), "./a.txt").expect("resolve");
        assert_eq!((r.name.as_str(), r.is_dir), ("a.txt", false));
    }
}
