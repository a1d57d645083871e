//! `run`, `create` and `start`: creating containers (pulling a missing
//! image), attaching to them and relaying their output, stdin and signals.
//!
//! The order matters and is docker's: attach and wait are set up *before*
//! the container starts, so no output is lost and a fast exit is not missed.

use std::io::{IsTerminal, Read};

use berth_reference::Reference;
use hyper::Method;
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{progress, seg};
use crate::args::{ContainerFlags, CreateArgs, RunArgs, StartArgs};
use crate::client::{empty_body, ApiError, Client, Hijacked, Query};
use crate::config::ConfigFile;
use crate::error::CliError;
use crate::opts::{self, ContainerConfig};
use crate::stdcopy::{self, Sinks};
use crate::{output, Ctx};

pub async fn run(ctx: &mut Ctx, a: RunArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 1)?;
    validate_pull(ctx, &a.container.pull)?;
    if a.detach && !a.container.attach.is_empty() {
        return Err(CliError::new(
            "conflicting options: cannot specify both --attach and --detach",
        ));
    }
    let client = ctx
        .client()
        .await
        .map_err(|e| ctx.with_help(&e.to_string(), 125))?;
    let cfg = build_config(ctx, &a.container, &a.args, a.rm, a.detach)?;
    if !a.detach && cfg.attach_stdin && cfg.tty && !std::io::stdin().is_terminal() {
        return Err(CliError::new("the input device is not a TTY"));
    }
    let id = create_container(&client, &cfg, a.name.as_deref(), &a.container, ctx.config())
        .await
        .map_err(|e| start_error(ctx, &e))?;

    let attach = cfg.attach_stdin || cfg.attach_stdout || cfg.attach_stderr;
    let signals = (a.sig_proxy && !cfg.tty).then(|| SignalProxy::start(client.clone(), id.clone()));
    if !attach {
        // Detached: the ID is printed before the start, as docker does.
        output::outln(&id);
    }
    let stream = if attach {
        Some(
            client
                .hijack(&attach_path(
                    &id,
                    cfg.attach_stdin,
                    cfg.attach_stdout,
                    cfg.attach_stderr,
                ))
                .await?,
        )
    } else {
        None
    };
    let waiter = Waiter::start(&client, &id, a.rm).await;

    if let Err(e) = client
        .post(&format!("/containers/{}/start", seg(&id)), None)
        .await
    {
        drop(stream);
        if a.rm {
            // Wait for the removal so a retry can reuse the name.
            let _ = waiter.status().await;
        }
        return Err(start_error(ctx, &e));
    }
    let Some(stream) = stream else {
        return Ok(());
    };
    let tty = super::term::TtySession::start(
        &client,
        format!("/containers/{}/resize", seg(&id)),
        cfg.tty,
        cfg.attach_stdin,
    );
    let status = relay(&client, &id, stream, waiter, &cfg).await;
    drop(tty);
    let status = status?;
    drop(signals);
    if status != 0 {
        return Err(CliError::status(status));
    }
    Ok(())
}

pub async fn create(ctx: &mut Ctx, a: CreateArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 1)?;
    validate_pull(ctx, &a.container.pull)?;
    let client = ctx.client().await?;
    let cfg = build_config(ctx, &a.container, &a.args, a.rm, false)?;
    let id = create_container(&client, &cfg, a.name.as_deref(), &a.container, ctx.config()).await?;
    output::outln(&id);
    Ok(())
}

pub async fn start(ctx: &mut Ctx, a: StartArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    if !(a.attach || a.interactive) {
        let mut failed = Vec::new();
        for name in &a.containers {
            match client
                .post(&format!("/containers/{}/start", seg(name)), None)
                .await
            {
                Ok(_) => output::outln(name),
                Err(e) => {
                    output::errln(&e.to_string());
                    failed.push(name.as_str());
                }
            }
        }
        if !failed.is_empty() {
            return Err(CliError::new(format!(
                "Error: failed to start containers: {}",
                failed.join(", ")
            )));
        }
        return Ok(());
    }
    if a.containers.len() > 1 {
        return Err(CliError::new(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let info: Json = client
        .get_json(&format!("/containers/{}/json", seg(&a.containers[0])))
        .await?;
    let id = info["Id"].as_str().unwrap_or(&a.containers[0]).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let signals = (!tty).then(|| SignalProxy::start(client.clone(), id.clone()));
    let stdin = a.interactive && open_stdin;
    let stream = client.hijack(&attach_path(&id, stdin, true, true)).await?;
    let waiter = Waiter::start(&client, &id, auto_remove).await;
    if let Err(e) = client
        .post(&format!("/containers/{}/start", seg(&id)), None)
        .await
    {
        drop(stream);
        if auto_remove {
            let _ = waiter.status().await;
        }
        return Err(e.into());
    }
    let cfg = ContainerConfig {
        body: Json::Null,
        attach_stdin: stdin,
        attach_stdout: true,
        attach_stderr: true,
        tty,
    };
    let session = super::term::TtySession::start(
        &client,
        format!("/containers/{}/resize", seg(&id)),
        tty,
        stdin,
    );
    let status = relay(&client, &id, stream, waiter, &cfg).await;
    drop(session);
    let status = status?;
    drop(signals);
    if status != 0 {
        return Err(CliError::status(status));
    }
    Ok(())
}

fn validate_pull(ctx: &Ctx, pull: &str) -> Result<(), CliError> {
    match pull {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(ctx.with_help(
            &format!("invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""),
            125,
        )),
    }
}

fn build_config(
    ctx: &Ctx,
    flags: &ContainerFlags,
    args: &[String],
    rm: bool,
    detach: bool,
) -> Result<ContainerConfig, CliError> {
    let lookup = |k: &str| std::env::var(k).ok();
    let mut cfg = opts::build(flags, &args[0], &args[1..], rm, detach, &lookup)
        .map_err(|e| ctx.with_help(&e, 125))?;
    // As docker does: the terminal starts at the client's size, before the first resize.
    if let (true, Some((h, w))) = (cfg.tty, super::term::size()) {
        cfg.body["HostConfig"]["ConsoleSize"] = serde_json::json!([h, w]);
    }
    Ok(cfg)
}

fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool) -> String {
    Query::new()
        .set("stream", "1")
        .set_if(stdin, "stdin", "1")
        .set_if(stdout, "stdout", "1")
        .set_if(stderr, "stderr", "1")
        .to_path(&format!("/containers/{}/attach", seg(id)))
}

/// docker's `toStatusError`: the exit status says whether the command could
/// not be found (127) or run (126), or something else failed (125).
fn start_error(ctx: &Ctx, e: &ApiError) -> CliError {
    ctx.with_help(&e.to_string(), start_error_code(&e.to_string()))
}

fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Creates the container, pulling its image first when missing (or always).
async fn create_container(
    client: &Client,
    cfg: &ContainerConfig,
    name: Option<&str>,
    flags: &ContainerFlags,
    config: &ConfigFile,
) -> Result<String, ApiError> {
    let image = cfg.body["Image"].as_str().unwrap_or_default().to_string();
    // docker's ParseAnyReference: a full image ID is valid, but only names can be pulled.
    let reference = if is_full_image_id(&image) {
        None
    } else {
        Some(Reference::parse_normalized(&image).map_err(|e| ApiError::Protocol(e.to_string()))?)
    };
    if flags.pull == "always" {
        pull_image(
            client,
            &image,
            flags.quiet,
            flags.platform.as_deref(),
            config,
        )
        .await?;
    }
    let path = Query::new()
        .set_if(name.is_some(), "name", name.unwrap_or_default())
        .set_if(
            flags.platform.is_some(),
            "platform",
            flags.platform.clone().unwrap_or_default(),
        )
        .to_path("/containers/create");
    let resp = match client.post(&path, Some(&cfg.body)).await {
        Err(e) if e.is_not_found() && flags.pull == "missing" && reference.is_some() => {
            if !flags.quiet {
                // stdout is reserved for the container ID.
                output::errln(&format!(
                    "Unable to find image '{}' locally",
                    reference
                        .clone()
                        .map(|r| r.with_default_tag().familiar_string())
                        .unwrap_or_default()
                ));
            }
            pull_image(
                client,
                &image,
                flags.quiet,
                flags.platform.as_deref(),
                config,
            )
            .await?;
            client.post(&path, Some(&cfg.body)).await?
        }
        other => other?,
    };
    let created: Json = serde_json::from_slice(&resp)
        .map_err(|e| ApiError::Protocol(format!("error decoding response from daemon: {e}")))?;
    if let Some(warnings) = created["Warnings"].as_array() {
        for w in warnings.iter().filter_map(Json::as_str) {
            output::errln(&format!("WARNING: {w}"));
        }
    }
    Ok(created["Id"].as_str().unwrap_or_default().to_string())
}

/// A full image ID ("sha256:<64 hex>" or 64 hex characters).
fn is_full_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Pulls `image`, printing progress on stderr (stdout belongs to the ID).
async fn pull_image(
    client: &Client,
    image: &str,
    quiet: bool,
    platform: Option<&str>,
    config: &ConfigFile,
) -> Result<(), ApiError> {
    let path = pull_path(image, false, platform).map_err(ApiError::Protocol)?;
    let auth = config
        .registry_auth_for_image(image)
        .map_err(ApiError::Protocol)?;
    let stream = client
        .stream(
            Method::POST,
            &path,
            empty_body(),
            &[("x-registry-auth", &auth)],
        )
        .await?;
    let out = if quiet {
        progress::Out::Discard
    } else {
        progress::Out::Stderr
    };
    progress::display(stream, out)
        .await
        .map_err(|e| ApiError::Protocol(e.message))
}

/// `POST /images/create?fromImage=…&tag=…` for a reference, as docker's
/// client splits it (a digest goes in `tag`).
pub fn pull_path(image: &str, all_tags: bool, platform: Option<&str>) -> Result<String, String> {
    let r = Reference::parse_normalized(image).map_err(|e| e.to_string())?;
    let tag = if all_tags {
        None
    } else {
        let r = r.clone().with_default_tag();
        r.digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
    };
    Ok(Query::new()
        .set("fromImage", r.name())
        .set_if(tag.is_some(), "tag", tag.unwrap_or_default())
        .set_if(platform.is_some(), "platform", platform.unwrap_or_default())
        .to_path("/images/create"))
}

/// A wait request the daemon has already accepted (its headers arrived).
struct Waiter {
    resp: Result<hyper::Response<hyper::body::Incoming>, ApiError>,
}

impl Waiter {
    /// Registers the wait: `next-exit`, or `removed` with `--rm` so that the
    /// CLI only returns once the container is gone.
    async fn start(client: &Client, id: &str, removed: bool) -> Waiter {
        let path = Query::new()
            .set("condition", if removed { "removed" } else { "next-exit" })
            .to_path(&format!("/containers/{}/wait", seg(id)));
        Waiter {
            resp: client.send(Method::POST, &path, empty_body(), &[]).await,
        }
    }

    /// The container's exit status; 125 when waiting failed, as docker does.
    async fn status(self) -> i32 {
        use http_body_util::BodyExt;
        let result = async {
            let body = self
                .resp?
                .into_body()
                .collect()
                .await
                .map_err(|e| ApiError::Protocol(e.to_string()))?;
            let v: Json = serde_json::from_slice(&body.to_bytes())
                .map_err(|e| ApiError::Protocol(e.to_string()))?;
            if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
                return Err(ApiError::Protocol(msg.to_string()));
            }
            Ok(v["StatusCode"].as_i64().unwrap_or(0))
        }
        .await;
        match result {
            Ok(code) => i32::try_from(code).unwrap_or(125),
            Err(e) => {
                output::errln(&format!("Error waiting for container: {e}"));
                125
            }
        }
    }
}

/// Relays an attached container's streams until it exits; returns its status.
async fn relay(
    client: &Client,
    id: &str,
    stream: Hijacked,
    waiter: Waiter,
    cfg: &ContainerConfig,
) -> Result<i32, CliError> {
    let Hijacked {
        mut reader,
        mut writer,
    } = stream;
    let attach_output = cfg.attach_stdout || cfg.attach_stderr;
    let tty = cfg.tty;
    let output = async move {
        if !attach_output {
            return Ok(());
        }
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let mut sinks = Sinks {
            stdout: &mut out,
            stderr: &mut err,
        };
        stdcopy::copy_output(&mut reader, tty, &mut sinks).await
    };
    let stdin_attached = cfg.attach_stdin;
    let input = async move {
        if stdin_attached {
            let mut rx = stdin_reader();
            while let Some(chunk) = rx.recv().await {
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
        // Half-close: the daemon sees stdin's EOF (docker's CloseWrite).
        let _ = writer.shutdown().await;
        // Keep the write half alive until the output ends.
        std::future::pending::<()>().await;
    };
    let status = waiter.status();
    tokio::pin!(output, status, input);
    enum First {
        Output(std::io::Result<()>),
        Exited(i32),
    }
    // The input side never finishes on its own (it parks after EOF), so it
    // is polled alongside whatever is awaited.
    let first = tokio::select! {
        r = &mut output => First::Output(r),
        code = &mut status => First::Exited(code),
        _ = &mut input => First::Output(Ok(())),
    };
    match first {
        First::Output(Err(e)) => Err(CliError::new(e.to_string())),
        First::Output(Ok(())) => {
            // The output also ends when the daemon saw the detach keys: then the container
            // goes on and there is no exit to wait for.
            let exit = tokio::time::timeout(std::time::Duration::from_millis(500), &mut status);
            if let Ok(code) = exit.await {
                return Ok(code);
            }
            let info: Result<Json, _> = client
                .get_json(&format!("/containers/{}/json", seg(id)))
                .await;
            if info.is_ok_and(|i| i["State"]["Running"] == Json::Bool(true)) {
                return Ok(0);
            }
            Ok(tokio::select! {
                code = &mut status => code,
                _ = &mut input => 0,
            })
        }
        First::Exited(code) => {
            // The container is done, but its last output may still be in flight.
            if attach_output {
                tokio::select! {
                    _ = &mut output => {}
                    _ = &mut input => {}
                }
            }
            Ok(code)
        }
    }
}

/// Reads the process's stdin on a thread (blocking reads cannot be
/// cancelled; the thread simply dies with the process).
pub(crate) fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Forwards the signals the CLI receives to the container (docker's
/// `--sig-proxy`), until dropped.
pub(crate) struct SignalProxy {
    task: tokio::task::JoinHandle<()>,
}

impl SignalProxy {
    pub(crate) fn start(client: Client, id: String) -> SignalProxy {
        use tokio::signal::unix::{signal, SignalKind};
        let task = tokio::spawn(async move {
            let kinds = [
                (SignalKind::interrupt(), "INT"),
                (SignalKind::terminate(), "TERM"),
                (SignalKind::hangup(), "HUP"),
                (SignalKind::quit(), "QUIT"),
                (SignalKind::user_defined1(), "USR1"),
                (SignalKind::user_defined2(), "USR2"),
            ];
            let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
            for (kind, name) in kinds {
                let Ok(mut s) = signal(kind) else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(name).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            while let Some(name) = rx.recv().await {
                let path = Query::new()
                    .set("signal", name)
                    .to_path(&format!("/containers/{}/kill", seg(&id)));
                // Like docker, a failed forward is not fatal.
                let _ = client.post(&path, None).await;
            }
        });
        SignalProxy { task }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_error_codes() {
        assert_eq!(
            start_error_code("exec: \"nonexist\": executable file not found in $PATH: unknown"),
            127
        );
        assert_eq!(start_error_code("open /x: no such file or directory"), 127);
        assert_eq!(
            start_error_code("exec: \"/etc\": permission denied: unknown"),
            126
        );
        assert_eq!(start_error_code("exec /etc: is a directory"), 126);
        assert_eq!(
            start_error_code("Conflict. The container name is already in use"),
            125
        );
    }

    #[test]
    fn pull_paths() {
        assert_eq!(
            pull_path("busybox", false, None),
            Ok("/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest".to_string())
        );
        assert_eq!(
            pull_path("localhost:5000/a/b:v1", false, Some("linux/amd64")),
            Ok(
                "/images/create?fromImage=localhost%3A5000%2Fa%2Fb&tag=v1&platform=linux%2Famd64"
                    .to_string()
            )
        );
        assert_eq!(
            pull_path("busybox", true, None),
            Ok("/images/create?fromImage=docker.io%2Flibrary%2Fbusybox".to_string())
        );
        assert!(pull_path("Bad", false, None).is_err());
    }

    #[test]
    fn image_ids_are_not_pulled() {
        assert!(is_full_image_id(
            "sha256:d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8"
        ));
        assert!(is_full_image_id(
            "d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8"
        ));
        assert!(!is_full_image_id("d644867353d2"));
        assert!(!is_full_image_id("busybox"));
    }

    #[test]
    fn attach_paths() {
        assert_eq!(
            attach_path("abc", false, true, true),
            "/containers/abc/attach?stream=1&stdout=1&stderr=1"
        );
        assert_eq!(
            attach_path("abc", true, true, false),
            "/containers/abc/attach?stream=1&stdin=1&stdout=1"
        );
    }
}
