//! Tar archives in and out: `save`, `load`, `export`.
//!
//! An archive written with `-o` goes to a temporary file beside the target
//! and is renamed over it only once the daemon sent all of it, so a failed
//! or interrupted save never leaves a truncated tar under the real name.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use hyper::Method;

use super::image::{parse_platform, require_api};
use super::{progress, seg};
use crate::args::{ExportArgs, LoadArgs, SaveArgs};
use crate::client::{body_stream, empty_body, reader_body, Body, ByteStream, Query};
use crate::error::{go_io_error, CliError};
use crate::{output, Ctx};

const TERMINAL_REFUSAL: &str =
    "cowardly refusing to save to a terminal. Use the -o flag or redirect";

pub async fn save(ctx: &mut Ctx, a: SaveArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.images.len(), 1)?;
    let platform = match a.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            parse_platform(p)
                .map_err(|e| CliError::new(format!("invalid platform: {}", e.message)))?,
        ),
        None => None,
    };
    // A berth extension (docker's save has no choice of layout); the daemon checks it too.
    let format = match a.format.as_deref() {
        None | Some("") | Some("docker") => None,
        Some("oci") => Some("oci"),
        Some(other) => {
            return Err(CliError::new(format!(
                "invalid --format {other:?}: use \"docker\" or \"oci\""
            )))
        }
    };
    let mut dest = Destination::open(a.output.as_deref(), "failed to save image")?;
    let client = ctx.client().await?;
    if platform.is_some() {
        require_api(&client, "1.48", "platform")?;
    }
    let mut query = Query::new();
    for image in &a.images {
        query = query.set("names", image.clone());
    }
    let path = query
        .set_if(platform.is_some(), "platform", platform.unwrap_or_default())
        .set_if(
            format.is_some(),
            "format",
            format.unwrap_or_default().to_string(),
        )
        .to_path("/images/get");
    let stream = client.stream(Method::GET, &path, empty_body(), &[]).await?;
    dest.copy_from(stream).await?;
    dest.commit()
}

pub async fn export(ctx: &mut Ctx, a: ExportArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.containers.len(), 1)?;
    let mut dest = Destination::open(a.output.as_deref(), "failed to export container")?;
    let client = ctx.client().await?;
    let path = format!("/containers/{}/export", seg(&a.containers[0]));
    let stream = client.stream(Method::GET, &path, empty_body(), &[]).await?;
    dest.copy_from(stream).await?;
    dest.commit()
}

pub async fn load(ctx: &mut Ctx, a: LoadArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    let body: Body = match a.input.as_deref() {
        None | Some("") => {
            // A terminal would block forever waiting for a tar.
            if output::stdin_is_terminal() {
                return Err(CliError::new(
                    "requested load from stdin, but stdin is empty",
                ));
            }
            reader_body(output::stdin_async())
        }
        Some(file) => {
            let f = tokio::fs::File::open(file)
                .await
                .map_err(|e| CliError::new(format!("open {file}: {}", go_io_error(&e))))?;
            reader_body(f)
        }
    };
    let platform = match a.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            parse_platform(p)
                .map_err(|e| CliError::new(format!("invalid platform: {}", e.message)))?,
        ),
        None => None,
    };
    // Progress bars only make sense on a terminal; docker asks for none otherwise.
    let quiet = a.quiet || !output::stdout_is_terminal();
    let client = ctx.client().await?;
    if platform.is_some() {
        require_api(&client, "1.48", "platform")?;
    }
    let path = Query::new()
        .set_if(platform.is_some(), "platform", platform.unwrap_or_default())
        .set("quiet", if quiet { "1" } else { "0" })
        .to_path("/images/load");
    let resp = client
        .send(
            Method::POST,
            &path,
            body,
            &[("content-type", "application/x-tar")],
        )
        .await?;
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    let stream = body_stream(resp.into_body());
    if is_json {
        return progress::display(stream, progress::Out::Stdout).await;
    }
    let mut dest = Destination::Stdout;
    dest.copy_from(stream).await
}

/// Where an archive goes: stdout, or a file replaced atomically.
enum Destination {
    Stdout,
    File {
        tmp: tempfile::NamedTempFile,
        target: PathBuf,
    },
}

impl Destination {
    /// Checks the destination before anything is asked of the daemon, as docker does.
    fn open(output: Option<&str>, context: &str) -> Result<Destination, CliError> {
        match output.filter(|o| !o.is_empty()) {
            None => {
                if output::stdout_is_terminal() {
                    return Err(CliError::new(TERMINAL_REFUSAL));
                }
                Ok(Destination::Stdout)
            }
            Some(file) => {
                let wrap = |e: String| CliError::new(format!("{context}: {e}"));
                validate_destination(Path::new(file)).map_err(wrap)?;
                let target = std::path::absolute(file).map_err(|e| wrap(go_io_error(&e)))?;
                let dir = target
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                let base = target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".tmp-{base}"))
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        wrap(format!(
                            "open {}: {}",
                            dir.join(&base).display(),
                            go_io_error(&e)
                        ))
                    })?;
                Ok(Destination::File { tmp, target })
            }
        }
    }

    async fn copy_from(&mut self, mut stream: ByteStream) -> Result<(), CliError> {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            match self {
                Destination::Stdout => output::Stdout.write_all(&chunk),
                Destination::File { tmp, .. } => tmp.write_all(&chunk),
            }
            .map_err(write_error)?;
        }
        if let Destination::Stdout = self {
            output::Stdout.flush().map_err(write_error)?;
        }
        Ok(())
    }

    /// Makes a complete file visible under its name (mode 0600, as docker's).
    fn commit(self) -> Result<(), CliError> {
        let Destination::File { tmp, target } = self else {
            return Ok(());
        };
        let io = |e: std::io::Error| CliError::new(go_io_error(&e));
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&target).map_err(|e| io(e.error))?;
        if let Some(dir) = target.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// A reader that went away (`berth save img | head -c1`) ends the command
/// the way docker's SIGPIPE death looks to a shell: status 141, no message.
fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return CliError::status(141);
    }
    CliError::new(go_io_error(&e))
}

/// moby's `atomicwriter` checks: the directory must exist, and the target
/// must be absent or a regular file (a rename would replace a symlink or
/// device node, not write through it).
fn validate_destination(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent().filter(|d| {
        let d = d.as_os_str();
        !d.is_empty() && d != "." && d != ".."
    }) {
        match std::fs::metadata(dir) {
            Err(e) => {
                return Err(format!(
                    "invalid output path: stat {}: {}",
                    dir.display(),
                    go_io_error(&e)
                ))
            }
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "invalid output path: stat {}: not a directory",
                    dir.display()
                ))
            }
            Ok(_) => {}
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "failed to stat output path: lstat {}: {}",
                path.display(),
                go_io_error(&e)
            ))
        }
    };
    let t = meta.file_type();
    let refusal = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "cannot write to a directory"
    } else if t.is_symlink() {
        "cannot write to a symbolic link directly"
    } else if t.is_fifo() {
        "cannot write to a named pipe (FIFO)"
    } else if t.is_socket() {
        "cannot write to a socket"
    } else if t.is_char_device() {
        "cannot write to a character device file"
    } else if t.is_block_device() {
        "cannot write to a block device file"
    } else {
        "unknown file mode"
    };
    Err(refusal.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_validated_like_docker() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        assert_eq!(validate_destination(&d.join("new.tar")), Ok(()));
        std::fs::write(d.join("old.tar"), b"x").expect("write");
        assert_eq!(validate_destination(&d.join("old.tar")), Ok(()));
        assert_eq!(
            validate_destination(d),
            Err("cannot write to a directory".to_string())
        );
        std::os::unix::fs::symlink("old.tar", d.join("link.tar")).expect("symlink");
        assert_eq!(
            validate_destination(&d.join("link.tar")),
            Err("cannot write to a symbolic link directly".to_string())
        );
        assert_eq!(
            validate_destination(Path::new("/dev/null")),
            Err("cannot write to a character device file".to_string())
        );
        let missing = d.join("nope/x.tar");
        assert_eq!(
            validate_destination(&missing),
            Err(format!(
                "invalid output path: stat {}: no such file or directory",
                d.join("nope").display()
            ))
        );
        assert_eq!(validate_destination(Path::new("x.tar")), Ok(()));
    }

    #[test]
    fn files_appear_only_when_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out.tar");
        std::fs::write(&target, b"previous").expect("write");
        let target_str = target.to_string_lossy().into_owned();
        let dest = Destination::open(Some(&target_str), "failed").expect("open");
        if let Destination::File { tmp, .. } = &dest {
            let name = tmp
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            assert!(name.is_some_and(|n| n.starts_with(".tmp-out.tar")));
        }
        // Abandoned (an error): the old file stays, no temporary is left.
        drop(dest);
        assert_eq!(
            std::fs::read(&target).ok().as_deref(),
            Some(&b"previous"[..])
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).map(|d| d.count()).ok(),
            Some(1)
        );

        let mut dest = Destination::open(Some(&target_str), "failed").expect("open");
        if let Destination::File { tmp, .. } = &mut dest {
            tmp.write_all(b"new tar").expect("write");
        }
        dest.commit().expect("commit");
        assert_eq!(
            std::fs::read(&target).ok().as_deref(),
            Some(&b"new tar"[..])
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
    }
}
