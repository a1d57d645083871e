//! `berth cp`: files between a container and the host through the archive API, with
//! docker/cli's rules for the common cases: into an existing directory the source keeps its
//! name; otherwise the destination names it. `-` stands for a tar on stdin or stdout.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value as Json;

use super::seg;
use crate::args::CpArgs;
use crate::client::{body_stream, empty_body, reader_body, Client, Query};
use crate::error::CliError;
use crate::{output, Ctx};

/// `container:path`, unless the part before the colon looks like a local path.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty()).then_some((c, p))
}

/// The container path's stat, or none when it does not exist.
async fn stat(client: &Client, container: &str, path: &str) -> Result<Option<Json>, CliError> {
    let p = Query::new()
        .set("path", path)
        .to_path(&format!("/containers/{}/archive", seg(container)));
    match client.send(Method::HEAD, &p, empty_body(), &[]).await {
        Ok(resp) => {
            let raw = resp
                .headers()
                .get("x-docker-container-path-stat")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|b| serde_json::from_slice(&b).ok());
            Ok(raw)
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_dir(stat: &Json) -> bool {
    stat["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0)
}

fn base_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(".")
        .to_string()
}

pub async fn cp(ctx: &mut Ctx, a: CpArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 2)?;
    let (src, dst) = (a.args[0].as_str(), a.args[1].as_str());
    let client = ctx.client().await?;
    match (split(src), split(dst)) {
        (Some((c, p)), None) => copy_from(&client, c, p, dst, a.quiet).await,
        (None, Some((c, p))) => copy_to(&client, src, c, p, a.quiet).await,
        (Some(_), Some(_)) => Err(CliError::new("copying between containers is not supported")),
        (None, None) => Err(CliError::new("must specify at least one container source")),
    }
}

async fn copy_from(
    client: &Client,
    container: &str,
    path: &str,
    dest: &str,
    quiet: bool,
) -> Result<(), CliError> {
    let p = Query::new()
        .set("path", path)
        .to_path(&format!("/containers/{}/archive", seg(container)));
    let resp = client.send(Method::GET, &p, empty_body(), &[]).await?;
    let mut stream = body_stream(resp.into_body());
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk?);
    }
    if dest == "-" {
        output::out_bytes(&tar);
        return Ok(());
    }
    let dest = PathBuf::from(dest);
    let name = base_name(path);
    let (parent, final_name) = if dest.is_dir() {
        (dest.clone(), name.clone())
    } else {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let n = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone());
        (parent, n)
    };
    // The container's tar is extracted strictly (nothing may land outside the staging
    // directory or through a symlink), then moved into place.
    let staging = tempfile::Builder::new()
        .prefix(".berth-cp-")
        .tempdir_in(&parent)
        .map_err(|e| CliError::new(format!("{}: {e}", parent.display())))?;
    let opts = berth_context::ExtractOptions::default();
    berth_context::extract(tar.as_slice(), staging.path(), &opts)
        .map_err(|e| CliError::new(format!("extract: {e}")))?;
    let from = staging.path().join(&name);
    let to = parent.join(&final_name);
    std::fs::rename(&from, &to).map_err(|e| CliError::new(format!("{}: {e}", to.display())))?;
    if !quiet && output::stderr_is_terminal() {
        output::errln(&format!(
            "Successfully copied {} to {}",
            tar.len(),
            to.display()
        ));
    }
    Ok(())
}

async fn copy_to(
    client: &Client,
    src: &str,
    container: &str,
    path: &str,
    quiet: bool,
) -> Result<(), CliError> {
    let target = stat(client, container, path).await?;
    let (dir, name) = match &target {
        Some(s) if is_dir(s) => (path.to_string(), None),
        _ => {
            let trimmed = path.trim_end_matches('/');
            let parent = match trimmed.rsplit_once('/') {
                Some(("", _)) | None => "/".to_string(),
                Some((p, _)) => p.to_string(),
            };
            (parent, Some(base_name(path)))
        }
    };
    let body = if src == "-" {
        output::read_stdin().map_err(|e| CliError::new(e.to_string()))?
    } else {
        let src_path = PathBuf::from(src);
        let meta = std::fs::symlink_metadata(&src_path)
            .map_err(|e| CliError::new(format!("lstat {src}: {e}")))?;
        let entry = name.unwrap_or_else(|| base_name(src));
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        let r = if meta.is_dir() {
            b.append_dir_all(&entry, &src_path)
        } else {
            b.append_path_with_name(&src_path, &entry)
        };
        r.and_then(|()| b.into_inner())
            .map_err(|e| CliError::new(format!("archive {src}: {e}")))?
    };
    let size = body.len();
    let p = Query::new()
        .set("path", dir)
        .set("noOverwriteDirNonDir", "true")
        .to_path(&format!("/containers/{}/archive", seg(container)));
    client
        .send(
            Method::PUT,
            &p,
            reader_body(std::io::Cursor::new(body)),
            &[("content-type", "application/x-tar")],
        )
        .await?;
    if !quiet && output::stderr_is_terminal() {
        output::errln(&format!("Successfully copied {size} to {container}:{path}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(split("web:/etc/passwd"), Some(("web", "/etc/passwd")));
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("/abs/path"), None);
        assert_eq!(split("plain"), None);
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/"), ".");
    }
}
