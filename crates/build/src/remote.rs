//! Remote build contexts (`POST /build?remote=…`), taken as dockerd takes them:
//!
//! - a git repository — `https://…/repo.git`, `git://…`, `git@host:repo`, `github.com/…` —
//!   with an optional `#ref:subdir` fragment: the ref is fetched and checked out (with its
//!   submodules) and the subdirectory is the context;
//! - any other http(s) URL: an archive (tar, gzip, zstd) is the context, anything else is the
//!   Dockerfile itself, with an empty context (dockerd's `text/plain` case).
//!
//! Repositories are fetched with the `git` program, as dockerd does: it brings every
//! transport (smart and dumb HTTP, ssh, git), submodules, and the credential helpers and
//! proxies of the daemon's git configuration, which no maintained Rust crate covers together.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_engine::{Engine, EngineError};

use crate::{Context, Result};

/// A repository, the ref to check out (empty: the remote's HEAD) and the context's
/// subdirectory in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GitRemote {
    pub url: String,
    pub reference: String,
    pub subdir: String,
}

pub(crate) fn parse_git(remote: &str) -> Result<GitRemote> {
    let (url, fragment) = remote.split_once('#').unwrap_or((remote, ""));
    let url = match url.strip_prefix("github.com/") {
        Some(rest) => format!("https://github.com/{rest}"),
        None => url.to_string(),
    };
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    // Both reach git's command line: an option there would change what git does.
    if reference.starts_with('-') {
        return Err(EngineError::invalid(format!(
            "invalid git reference {reference:?}"
        )));
    }
    let subdir = subdir.trim_matches('/');
    if subdir.split('/').any(|c| c == "..") {
        return Err(EngineError::invalid(format!(
            "subdirectory {subdir:?} of the git context leaves the repository"
        )));
    }
    Ok(GitRemote {
        url,
        reference: reference.to_string(),
        subdir: subdir.to_string(),
    })
}

/// Fetches `remote` into the empty directory `dest` and returns the context: `dest`, or a
/// subdirectory of a repository. `dockerfile` names the file a plain-text remote becomes.
pub async fn fetch_remote(
    engine: &Engine,
    remote: &str,
    dest: &Path,
    dockerfile: &str,
) -> Result<Context> {
    if berth_context::is_git_url(remote) {
        let git = parse_git(remote)?;
        let dest = dest.to_path_buf();
        return tokio::task::spawn_blocking(move || clone(&git, &dest).map(Context::dir))
            .await
            .map_err(|e| EngineError::internal(format!("git task: {e}")))?;
    }
    let download = dest.join(".remote-context");
    engine.download(remote, &download).await?;
    let dest = dest.to_path_buf();
    let dockerfile = dockerfile.trim_start_matches("./").to_string();
    tokio::task::spawn_blocking(move || -> Result<Context> {
        let r = place_download(&download, &dest, &dockerfile);
        let _ = std::fs::remove_file(&download);
        r
    })
    .await
    .map_err(|e| EngineError::internal(format!("context task: {e}")))?
}

fn place_download(download: &Path, dest: &Path, dockerfile: &str) -> Result<Context> {
    let io = |e: std::io::Error| EngineError::invalid(format!("remote context: {e}"));
    // docker looks at the first 1024 bytes too.
    let mut head = [0u8; 1024];
    let mut f = std::fs::File::open(download).map_err(io)?;
    let n = read_up_to(&mut f, &mut head).map_err(io)?;
    if berth_context::is_archive(&head[..n]) {
        let f = std::fs::File::open(download).map_err(io)?;
        return crate::unpack_context(f, dest);
    }
    if dockerfile.contains('/') || dockerfile.is_empty() || dockerfile == ".." {
        return Err(EngineError::invalid(format!(
            "a Dockerfile URL is built as {dockerfile:?}, which must be a plain file name"
        )));
    }
    std::fs::rename(download, dest.join(dockerfile)).map_err(io)?;
    Ok(Context::dir(dest.to_path_buf()))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn clone(git: &GitRemote, dest: &Path) -> Result<PathBuf> {
    run_git(dest, &["init", "-q"])?;
    run_git(dest, &["remote", "add", "origin", &git.url])?;
    let reference = if git.reference.is_empty() {
        "HEAD"
    } else {
        &git.reference
    };
    // A shallow fetch when the server allows it; dumb HTTP and some servers do not, and a
    // commit ID may not be fetchable by name: then everything is fetched.
    let fetched = run_git(dest, &["fetch", "-q", "--depth", "1", "origin", reference])
        .and_then(|_| run_git(dest, &["checkout", "-q", "FETCH_HEAD"]));
    if fetched.is_err() {
        run_git(dest, &["fetch", "-q", "--tags", "origin"])?;
        if reference == "HEAD" {
            // The remote's default branch, as `git clone` would take it.
            run_git(dest, &["remote", "set-head", "origin", "--auto"])?;
            run_git(dest, &["checkout", "-q", "origin/HEAD"])?;
        } else {
            // A tag or commit by itself, a branch as the remote's.
            run_git(dest, &["checkout", "-q", reference])
                .or_else(|_| run_git(dest, &["checkout", "-q", &format!("origin/{reference}")]))?;
        }
    }
    run_git(
        dest,
        &[
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            "--depth",
            "1",
        ],
    )
    .or_else(|_| {
        run_git(
            dest,
            &["submodule", "update", "-q", "--init", "--recursive"],
        )
    })?;
    if git.subdir.is_empty() {
        return Ok(dest.to_path_buf());
    }
    // The subdirectory may be a symlink in the repository: it must still end inside it.
    let root = dest
        .canonicalize()
        .map_err(|e| EngineError::internal(format!("git context: {e}")))?;
    let sub = root.join(&git.subdir).canonicalize().map_err(|e| {
        EngineError::invalid(format!(
            "subdirectory {} of the git context: {e}",
            git.subdir
        ))
    })?;
    if !sub.starts_with(&root) || !sub.is_dir() {
        return Err(EngineError::invalid(format!(
            "subdirectory {} of the git context is not a directory of the repository",
            git.subdir
        )));
    }
    Ok(sub)
}

/// One git command in the repository, never prompting (a daemon has no terminal to ask a
/// password on); its own words make the error.
fn run_git(repo: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EngineError::internal(format!("run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let words = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(EngineError::invalid(format!(
        "error fetching the git context (git {}): {words}",
        args.first().copied().unwrap_or("")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_give_ref_and_subdirectory() {
        let g = parse_git("github.com/team/app#v1.2:docker/web/").expect("parse");
        assert_eq!(
            g,
            GitRemote {
                url: "https://github.com/team/app".into(),
                reference: "v1.2".into(),
                subdir: "docker/web".into(),
            }
        );
        let g = parse_git("https://h/app.git").expect("parse");
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("", ""));
        assert!(parse_git("https://h/app.git#--upload-pack=x").is_err());
        assert!(parse_git("https://h/app.git#main:../../etc").is_err());
    }
}
