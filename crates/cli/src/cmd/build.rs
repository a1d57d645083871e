//! `build`: the client of docker's legacy builder (`docker build` with `DOCKER_BUILDKIT=0`).
//!
//! The context is one of:
//! - a directory: tarred by `berth-context` while it is uploaded (`.dockerignore` applied,
//!   owners written as 0:0 as docker does); a Dockerfile outside it, or `-f -`, is added under
//!   a hidden name;
//! - `-`: stdin, a tar (possibly compressed) sent as it is, or a plain Dockerfile, which is
//!   wrapped into a tar of its own;
//! - a URL (http(s), git): the daemon fetches it (`remote=`); nothing is uploaded.
//!
//! The body is produced on a blocking thread into a bounded channel, so the upload streams and
//! a slow daemon slows the walk down rather than filling memory. `Sending build context to
//! Docker daemon  2.048kB` is printed as docker prints it once the upload is complete (and
//! redrawn along the way on terminals). The answer is a JSON message stream: `stream` text is
//! printed as it arrives, the image ID comes in an `aux` message, an `errorDetail` ends the
//! command with its message and code (a failed `RUN` exits with the command's status).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use berth_context::{
    dockerfile_tar, is_archive, is_git_url, is_url, LocalContext, DEFAULT_DOCKERFILE,
};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use serde_json::Value as Json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::image::require_api;
use super::progress;
use crate::args::BuildArgs;
use crate::client::{empty_body, Body, ByteStream, Query};
use crate::config::AuthConfig;
use crate::error::{go_io_error, CliError};
use crate::{output, Ctx};

/// What docker peeks at on stdin to tell a tar from a Dockerfile.
const PEEK: usize = 1024;
/// Upload chunks.
const CHUNK: usize = 64 * 1024;
/// docker's progress reader redraws at most every 512 kB and 100 ms.
const REDRAW_BYTES: u64 = 512 * 1024;
const REDRAW_EVERY: Duration = Duration::from_millis(100);

type Chunks = mpsc::Sender<Result<Bytes, io::Error>>;

/// Where the body comes from.
enum Source {
    Dir(Box<LocalContext>),
    /// The bytes already peeked at, then the rest of stdin.
    Stdin {
        head: Vec<u8>,
        rest: Box<dyn AsyncRead + Send + Unpin>,
    },
    /// A context made in memory (a lone Dockerfile).
    Bytes(Vec<u8>),
    /// The daemon fetches the context.
    Remote(String),
}

pub async fn build(ctx: &mut Ctx, a: BuildArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 1)?;
    let spec = a.args[0].clone();
    let file = a.file.clone().unwrap_or_default();
    if file == "-" && spec == "-" {
        return Err(CliError::new(
            "invalid argument: can't use stdin for both build context and dockerfile",
        ));
    }
    if let Some(f) = &a.iidfile {
        // A stale ID must not survive a failed build.
        if let Err(e) = std::fs::remove_file(f) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(CliError::new(format!(
                    "Removing image ID file: remove {f}: {}",
                    go_io_error(&e)
                )));
            }
        }
    }
    let (source, dockerfile) = prepare(&spec, &file).await?;

    let client = ctx.client().await?;
    let platform = a
        .platform
        .clone()
        .filter(|p| !p.is_empty())
        .map(|p| p.to_lowercase());
    if platform.is_some() {
        require_api(&client, "1.32", "platform")?;
    }
    let remote = match &source {
        Source::Remote(url) => Some(url.as_str()),
        _ => None,
    };
    let path = build_path(&a, &dockerfile, remote, platform.as_deref());
    let registry_config = registry_config(ctx);

    let shown = Arc::new(Mutex::new(String::new()));
    let (body, producer) = match source {
        Source::Remote(_) => (empty_body(), None),
        source => {
            let (tx, rx) = mpsc::channel(8);
            let producer = produce(source, a.compress, tx);
            let upload = Upload::new(a.quiet, shown.clone());
            (upload_body(rx, upload), Some(producer))
        }
    };
    let headers = [
        ("content-type", "application/x-tar"),
        ("x-registry-config", registry_config.as_str()),
    ];
    let quiet_dump = |tap: &Tap| {
        if a.quiet {
            let progress = lock(&shown).clone();
            output::err(&format!("{progress}{}", tap.text));
        }
    };
    let stream = match client.stream(Method::POST, &path, body, &headers).await {
        Ok(s) => s,
        Err(e) => {
            quiet_dump(&Tap::default());
            // A body that broke off says more than the HTTP error it caused.
            if let Some(Err(msg)) = finished(producer).await {
                return Err(CliError::new(msg));
            }
            return Err(e.into());
        }
    };

    let tap = Arc::new(Mutex::new(Tap::default()));
    let seen = tap.clone();
    let tapped: ByteStream = Box::pin(stream.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            lock(&seen).feed(bytes);
        }
        chunk
    }));
    let out = if a.quiet {
        progress::Out::Discard
    } else {
        progress::Out::Stdout
    };
    let result = progress::display(tapped, out).await;
    let tap = lock(&tap).clone();
    if let Err(mut e) = result {
        quiet_dump(&tap);
        if let Some(Err(msg)) = finished(producer).await {
            return Err(CliError::new(msg));
        }
        // docker exits with the error's code (a failed RUN's status), 1 when it has none.
        if let Some(code) = tap.code.filter(|c| *c != 0) {
            e.code = i32::try_from(code).unwrap_or(1);
        }
        return Err(e);
    }

    // With -q the daemon sends the ID as the only output, which docker prints as it came.
    let image_id = match (&tap.id, a.quiet) {
        (_, true) if !tap.text.is_empty() => tap.text.clone(),
        (Some(id), true) => format!("{id}\n"),
        (id, _) => id.clone().unwrap_or_default(),
    };
    if a.quiet {
        output::out(&image_id);
    }
    if let Some(f) = &a.iidfile {
        if image_id.is_empty() {
            return Err(CliError::new(format!(
                "Server did not provide an image ID. Cannot write {f}"
            )));
        }
        std::fs::write(f, &image_id)
            .map_err(|e| CliError::new(format!("open {f}: {}", go_io_error(&e))))?;
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these plain buffers inconsistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The producer's outcome, if it has finished (an unfinished one is still sending and so
/// did not cause the failure).
async fn finished(producer: Option<JoinHandle<Result<(), String>>>) -> Option<Result<(), String>> {
    let handle = producer?;
    if !handle.is_finished() {
        return None;
    }
    handle.await.ok()
}

// ------------------------------------------------------------------ the context

fn prepare_error(e: impl std::fmt::Display) -> CliError {
    CliError::new(format!("unable to prepare context: {e}"))
}

/// The body's source and the `dockerfile` parameter (docker's `RunBuild` up to `ImageBuild`).
async fn prepare(spec: &str, file: &str) -> Result<(Source, String), CliError> {
    if spec == "-" {
        return from_stdin(file).await;
    }
    if std::fs::metadata(spec).is_ok() {
        return from_dir(spec, file).await;
    }
    if is_git_url(spec) || is_url(spec) {
        if file == "-" {
            return Err(prepare_error(format!(
                "a Dockerfile from stdin needs a local or stdin context, not {spec}"
            )));
        }
        return Ok((Source::Remote(spec.to_string()), file.to_string()));
    }
    Err(prepare_error(format!("path {spec:?} not found")))
}

async fn from_stdin(file: &str) -> Result<(Source, String), CliError> {
    let mut stdin = output::stdin_async();
    let head = read_up_to(&mut stdin, PEEK)
        .await
        .map_err(|e| prepare_error(format!("failed to peek context header from STDIN: {e}")))?;
    if is_archive(&head) {
        return Ok((Source::Stdin { head, rest: stdin }, file.to_string()));
    }
    if !file.is_empty() {
        return Err(prepare_error(
            "ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles",
        ));
    }
    let mut dockerfile = head;
    stdin
        .read_to_end(&mut dockerfile)
        .await
        .map_err(|e| prepare_error(go_io_error(&e)))?;
    let tar = dockerfile_tar(&dockerfile, Vec::new(), now()).map_err(prepare_error)?;
    Ok((Source::Bytes(tar), DEFAULT_DOCKERFILE.to_string()))
}

async fn from_dir(spec: &str, file: &str) -> Result<(Source, String), CliError> {
    let root = std::path::absolute(spec).map_err(prepare_error)?;
    let root = std::fs::canonicalize(&root).map_err(|e| {
        prepare_error(format!(
            "unable to evaluate symlinks in context path: lstat {}: {}",
            root.display(),
            go_io_error(&e)
        ))
    })?;
    if !root.is_dir() {
        return Err(prepare_error(format!(
            "context must be a directory: {}",
            root.display()
        )));
    }
    // With a directory context, -f is relative to the current directory.
    let (in_context, outside): (Option<String>, Option<Vec<u8>>) = if file == "-" {
        let mut text = Vec::new();
        output::stdin_async()
            .read_to_end(&mut text)
            .await
            .map_err(|e| CliError::new(go_io_error(&e)))?;
        (None, Some(text))
    } else {
        let wanted = if file.is_empty() {
            default_dockerfile(&root)
        } else {
            std::path::absolute(file).map_err(prepare_error)?
        };
        let resolved = std::fs::canonicalize(&wanted).map_err(|e| {
            prepare_error(format!(
                "unable to evaluate symlinks in Dockerfile path: lstat {}: {}",
                wanted.display(),
                go_io_error(&e)
            ))
        })?;
        let rel = relative(&root, &resolved);
        if rel.starts_with("..") {
            let text = std::fs::read(file).map_err(|e| {
                CliError::new(format!(
                    "unable to open Dockerfile: open {file}: {}",
                    go_io_error(&e)
                ))
            })?;
            (None, Some(text))
        } else {
            (Some(rel.to_string_lossy().into_owned()), None)
        }
    };
    let checking = |e: berth_context::ContextError| match e {
        berth_context::ContextError::Io { .. } => CliError::new(e.to_string()),
        e => CliError::new(format!("error checking context: {e}")),
    };
    let mut context = LocalContext::open(&root, in_context.as_deref())
        .map_err(checking)?
        .chown(0, 0);
    context.validate().map_err(checking)?;
    let dockerfile = match outside {
        Some(text) => context.add_dockerfile(text),
        None => in_context.unwrap_or_default(),
    };
    Ok((Source::Dir(Box::new(context)), dockerfile))
}

/// `PATH/Dockerfile`, or `PATH/dockerfile` when only that exists (docker's courtesy).
fn default_dockerfile(root: &Path) -> PathBuf {
    let upper = root.join(DEFAULT_DOCKERFILE);
    let lower = root.join(DEFAULT_DOCKERFILE.to_lowercase());
    let missing = |p: &Path| std::fs::symlink_metadata(p).is_err();
    if missing(&upper) && !missing(&lower) {
        lower
    } else {
        upper
    }
}

/// Go's `filepath.Rel` for two clean absolute paths.
fn relative(base: &Path, target: &Path) -> PathBuf {
    let b: Vec<Component> = base.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

async fn read_up_to<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; max];
    let mut len = 0;
    while len < max {
        let n = r.read(&mut head[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    head.truncate(len);
    Ok(head)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ------------------------------------------------------------------ the request

/// Go's `json.Marshal`: `<`, `>`, `&`, U+2028 and U+2029 escaped (they can only occur inside
/// strings, so replacing them in the text is safe).
fn go_json(v: &Json) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `/build?…` with docker's parameters, in the order Go's `url.Values.Encode` sorts them.
fn build_path(
    a: &BuildArgs,
    dockerfile: &str,
    remote: Option<&str>,
    platform: Option<&str>,
) -> String {
    // `KEY` alone (not in the environment either) is sent as null: the daemon then takes the
    // Dockerfile's default.
    let build_args: BTreeMap<String, Option<String>> = a
        .build_arg
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (s.clone(), None),
        })
        .collect();
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let some = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let mut q = Query::new()
        .set_if(
            !build_args.is_empty(),
            "buildargs",
            go_json(&serde_json::json!(build_args)),
        )
        .set_if(
            !a.cache_from.is_empty(),
            "cachefrom",
            go_json(&serde_json::json!(a.cache_from)),
        );
    if let Some(v) = some(&a.cgroup_parent) {
        q = q.set("cgroupparent", v);
    }
    q = q
        .set_if(a.cpu_period != 0, "cpuperiod", a.cpu_period.to_string())
        .set_if(a.cpu_quota != 0, "cpuquota", a.cpu_quota.to_string());
    if let Some(v) = some(&a.cpuset_cpus) {
        q = q.set("cpusetcpus", v);
    }
    if let Some(v) = some(&a.cpuset_mems) {
        q = q.set("cpusetmems", v);
    }
    q = q
        .set_if(a.cpu_shares != 0, "cpushares", a.cpu_shares.to_string())
        .set_if(!dockerfile.is_empty(), "dockerfile", dockerfile);
    for host in &a.add_host {
        q = q.set("extrahosts", host.clone());
    }
    q = q.set_if(a.force_rm, "forcerm", "1");
    if let Some(v) = some(&a.isolation).filter(|i| !i.eq_ignore_ascii_case("default")) {
        q = q.set("isolation", v);
    }
    q = q
        .set_if(
            !labels.is_empty(),
            "labels",
            go_json(&serde_json::json!(labels)),
        )
        .set_if(
            a.memory.is_some_and(|m| m != 0),
            "memory",
            a.memory.unwrap_or_default().to_string(),
        )
        .set_if(
            a.memory_swap.is_some_and(|m| m != 0),
            "memswap",
            a.memory_swap.unwrap_or_default().to_string(),
        )
        .set_if(
            !a.network.is_empty() && a.network != "default",
            "networkmode",
            a.network.clone(),
        )
        .set_if(a.no_cache, "nocache", "1")
        .set_if(platform.is_some(), "platform", platform.unwrap_or_default())
        .set_if(a.pull, "pull", "1")
        .set_if(a.quiet, "q", "1")
        .set_if(remote.is_some(), "remote", remote.unwrap_or_default())
        // The daemon removes intermediate containers by default; only opting out is sent.
        .set_if(!a.rm, "rm", "0");
    for opt in &a.security_opt {
        q = q.set("securityopt", opt.clone());
    }
    q = q.set_if(
        a.shm_size.is_some_and(|s| s != 0),
        "shmsize",
        a.shm_size.unwrap_or_default().to_string(),
    );
    for tag in &a.tag {
        q = q.set("t", tag.clone());
    }
    if let Some(t) = some(&a.target) {
        q = q.set("target", t);
    }
    if !a.ulimit.is_empty() {
        let mut limits: Vec<_> = a.ulimit.iter().collect();
        limits.sort_by(|x, y| x.name.cmp(&y.name));
        // Go's field order (Name, Hard, Soft), which a JSON map would not keep.
        let text = limits
            .iter()
            .map(|u| {
                format!(
                    "{{\"Name\":{},\"Hard\":{},\"Soft\":{}}}",
                    Json::String(u.name.clone()),
                    u.hard,
                    u.soft
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        q = q.set("ulimits", format!("[{text}]"));
    }
    // The legacy builder ("1"); "2" would ask for BuildKit.
    q.set("version", "1").to_path("/build")
}

/// `X-Registry-Config`: every credential the configuration knows, for the daemon to pull
/// base images with (docker's `GetAllCredentials`): each `auths` entry and each `credHelpers`
/// registry, looked up through [`crate::config::ConfigFile::get_auth`] so helpers answer for
/// their registries. One that fails is left out, as docker leaves it out.
fn registry_config(ctx: &mut Ctx) -> String {
    let doc: Json = std::fs::read(ctx.config_dir.join("config.json"))
        .ok()
        .and_then(|data| serde_json::from_slice(&data).ok())
        .unwrap_or(Json::Null);
    let mut servers: Vec<String> = Vec::new();
    for section in ["auths", "credHelpers"] {
        if let Some(map) = doc.get(section).and_then(Json::as_object) {
            servers.extend(map.keys().cloned());
        }
    }
    let config = ctx.config();
    let creds: BTreeMap<String, AuthConfig> = servers
        .into_iter()
        .filter_map(|s| config.get_auth(&s).ok().map(|a| (s, a)))
        .collect();
    let json = serde_json::to_vec(&creds).unwrap_or_else(|_| b"{}".to_vec());
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

// ------------------------------------------------------------------ the upload

/// Starts filling `tx` with the (maybe gzipped) context; the result says why it stopped
/// early. A failure is also sent down the channel, so the body ends in an error rather than
/// looking complete.
fn produce(source: Source, compress: bool, tx: Chunks) -> JoinHandle<Result<(), String>> {
    match source {
        Source::Dir(context) => tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result = if compress {
                let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::default());
                context
                    .write_tar(&mut gz)
                    .map_err(|e| e.to_string())
                    .and_then(|_| gz.finish().map(|_| ()).map_err(|e| e.to_string()))
            } else {
                context
                    .write_tar(&mut w)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            .and_then(|()| w.flush().map_err(|e| e.to_string()));
            if let Err(msg) = &result {
                let _ = tx.blocking_send(Err(io::Error::other(msg.clone())));
            }
            result
        }),
        Source::Stdin { head, rest } => tokio::spawn(forward(head, Some(rest), compress, tx)),
        Source::Bytes(data) => tokio::spawn(forward(data, None, compress, tx)),
        Source::Remote(_) => tokio::spawn(async { Ok(()) }),
    }
}

/// Sends `head` and then `rest`, gzipped when asked.
async fn forward(
    head: Vec<u8>,
    rest: Option<Box<dyn AsyncRead + Send + Unpin>>,
    compress: bool,
    tx: Chunks,
) -> Result<(), String> {
    let mut gz =
        compress.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let send =
        |gz: &mut Option<flate2::write::GzEncoder<Vec<u8>>>, data: &[u8]| -> io::Result<Vec<u8>> {
            match gz {
                Some(gz) => {
                    gz.write_all(data)?;
                    Ok(std::mem::take(gz.get_mut()))
                }
                None => Ok(data.to_vec()),
            }
        };
    let result: Result<(), String> = async {
        let gone = |_| "the daemon stopped reading the build context".to_string();
        let first = send(&mut gz, &head).map_err(|e| e.to_string())?;
        if !first.is_empty() {
            tx.send(Ok(Bytes::from(first))).await.map_err(gone)?;
        }
        if let Some(mut rest) = rest {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = rest.read(&mut buf).await.map_err(|e| go_io_error(&e))?;
                if n == 0 {
                    break;
                }
                let chunk = send(&mut gz, &buf[..n]).map_err(|e| e.to_string())?;
                if !chunk.is_empty() {
                    tx.send(Ok(Bytes::from(chunk))).await.map_err(gone)?;
                }
            }
        }
        if let Some(gz) = gz.take() {
            let tail = gz.finish().map_err(|e| e.to_string())?;
            tx.send(Ok(Bytes::from(tail))).await.map_err(gone)?;
        }
        Ok(())
    }
    .await;
    if let Err(msg) = &result {
        let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
    }
    result
}

/// A blocking `Write` into the upload channel, in chunks.
struct ChannelWriter {
    tx: Chunks,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

/// docker's "Sending build context" progress for the upload.
struct Upload {
    sent: u64,
    drawn_at: u64,
    drawn: Option<Instant>,
    /// Redraw while sending (docker does on terminals only).
    live: bool,
    quiet: bool,
    /// What -q kept from the screen, for an error.
    shown: Arc<Mutex<String>>,
}

impl Upload {
    fn new(quiet: bool, shown: Arc<Mutex<String>>) -> Upload {
        Upload {
            sent: 0,
            drawn_at: 0,
            drawn: None,
            live: !quiet && output::stdout_is_terminal() && !output::is_captured(),
            quiet,
            shown,
        }
    }

    fn line(&self) -> String {
        sending_line(self.sent)
    }

    fn show(&self, text: &str) {
        if self.quiet {
            lock(&self.shown).push_str(text);
        } else {
            output::out(text);
        }
    }

    fn add(&mut self, n: usize) {
        self.sent += n as u64;
        let due = self.drawn.is_none_or(|t| t.elapsed() >= REDRAW_EVERY);
        if self.live && self.sent - self.drawn_at > REDRAW_BYTES && due {
            self.show(&format!("{}\r", self.line()));
            self.drawn_at = self.sent;
            self.drawn = Some(Instant::now());
        }
    }

    fn finish(&self) {
        self.show(&format!("{}\r\r\n", self.line()));
    }
}

/// `Sending build context to Docker daemon  2.048kB`: the action, a space, the size padded to
/// eight columns (docker's `JSONProgress.String()` without a total).
fn sending_line(bytes: u64) -> String {
    format!(
        "Sending build context to Docker daemon {:>8}",
        crate::units::human_size(bytes as f64)
    )
}

/// The request body: the channel's chunks, counted as they go.
fn upload_body(rx: mpsc::Receiver<Result<Bytes, io::Error>>, upload: Upload) -> Body {
    let stream = futures_util::stream::unfold(
        (rx, upload, false),
        |(mut rx, mut upload, failed)| async move {
            if failed {
                return None;
            }
            match rx.recv().await {
                Some(Ok(chunk)) => {
                    upload.add(chunk.len());
                    Some((Ok(Frame::data(chunk)), (rx, upload, false)))
                }
                Some(Err(e)) => Some((Err(e), (rx, upload, true))),
                None => {
                    upload.finish();
                    None
                }
            }
        },
    );
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

// ------------------------------------------------------------------ the answer

/// What the build's message stream said besides what it shows: the image ID (`aux`), the
/// text (kept for -q) and the error's code.
#[derive(Debug, Clone, Default)]
struct Tap {
    buf: Vec<u8>,
    id: Option<String>,
    text: String,
    code: Option<i64>,
}

impl Tap {
    fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        let mut consumed = 0;
        let mut found = Vec::new();
        {
            let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Json>();
            // A message cut by the chunk boundary waits for the next chunk; a broken one is
            // the display's to report.
            while let Some(Ok(v)) = it.next() {
                consumed = it.byte_offset();
                found.push(v);
            }
        }
        self.buf.drain(..consumed);
        for v in found {
            self.note(&v);
        }
    }

    fn note(&mut self, v: &Json) {
        if let Some(id) = v.pointer("/aux/ID").and_then(Json::as_str) {
            self.id = Some(id.to_string());
        }
        if let Some(s) = v.get("stream").and_then(Json::as_str) {
            self.text.push_str(s);
        } else if let Some(status) = v.get("status").and_then(Json::as_str) {
            let progressing = v
                .get("progressDetail")
                .is_some_and(|p| p.get("current").is_some() || p.get("total").is_some());
            if !progressing {
                match v.get("id").and_then(Json::as_str).filter(|i| !i.is_empty()) {
                    Some(id) => self.text.push_str(&format!("{id}: {status}\n")),
                    None => self.text.push_str(&format!("{status}\n")),
                }
            }
        }
        if let Some(code) = v.pointer("/errorDetail/code").and_then(Json::as_i64) {
            self.code = Some(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn args(argv: &[&str]) -> BuildArgs {
        let cli = Cli::try_parse_from(["berth", "build"].iter().chain(argv.iter()).copied())
            .expect("parses");
        match cli.command {
            Some(Command::Build(b)) => b,
            other => panic!("not build: {other:?}"),
        }
    }

    #[test]
    fn query_parameters_are_dockers_in_go_order() {
        let a = args(&[
            "-t",
            "b:1",
            "-t",
            "a",
            "--build-arg",
            "Z=<&>",
            "--build-arg",
            "A",
            "--label",
            "x=1",
            "--label",
            "solo",
            "--target",
            "final",
            "--no-cache",
            "--pull",
            "-q",
            "--rm=false",
            "--force-rm",
            "--network",
            "host",
            "--cache-from",
            "c1,c2",
            "--add-host",
            "h:1.2.3.4",
            "-m",
            "1k",
            "--memory-swap",
            "-1",
            "--cpu-shares",
            "2",
            "--ulimit",
            "nproc=3",
            "--ulimit",
            "core=1:2",
            "--security-opt",
            "seccomp=x",
            ".",
        ]);
        let path = build_path(&a, "sub/Dockerfile", None, Some("linux/arm64"));
        let query = path.strip_prefix("/build?").expect("query");
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("k=v");
                (k.to_string(), percent_decode(v))
            })
            .collect();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "Go sorts the keys");
        let get = |k: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("t"), ["b:1", "a"]);
        assert_eq!(get("buildargs"), [r#"{"A":null,"Z":"\u003c\u0026\u003e"}"#]);
        assert_eq!(get("labels"), [r#"{"solo":"","x":"1"}"#]);
        assert_eq!(get("cachefrom"), [r#"["c1","c2"]"#]);
        assert_eq!(get("dockerfile"), ["sub/Dockerfile"]);
        assert_eq!(
            get("ulimits"),
            [r#"[{"Name":"core","Hard":2,"Soft":1},{"Name":"nproc","Hard":3,"Soft":3}]"#]
        );
        for (k, v) in [
            ("target", "final"),
            ("nocache", "1"),
            ("pull", "1"),
            ("q", "1"),
            ("rm", "0"),
            ("forcerm", "1"),
            ("networkmode", "host"),
            ("platform", "linux/arm64"),
            ("extrahosts", "h:1.2.3.4"),
            ("memory", "1024"),
            ("memswap", "-1"),
            ("cpushares", "2"),
            ("securityopt", "seccomp=x"),
            ("version", "1"),
        ] {
            assert_eq!(get(k), [v], "{k}");
        }

        // Defaults send almost nothing.
        assert_eq!(
            build_path(&args(&["."]), "Dockerfile", None, None),
            "/build?dockerfile=Dockerfile&version=1"
        );
        assert_eq!(
            build_path(&args(&["x"]), "", Some("https://h/c.tar"), None),
            "/build?remote=https%3A%2F%2Fh%2Fc.tar&version=1"
        );
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex"));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn urls_and_paths() {
        assert!(is_url("https://example.com/ctx.tar.gz"));
        assert!(is_git_url("https://github.com/docker/cli.git"));
        assert!(is_git_url("https://github.com/docker/cli.git#v1:sub"));
        assert!(is_git_url("git@github.com:docker/cli"));
        assert!(is_git_url("github.com/docker/cli"));
        assert!(!is_git_url("https://example.com/ctx.tar"));
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b/c/D")),
            Path::new("c/D")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/x")),
            Path::new("../x")
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a")), Path::new("."));
    }

    #[test]
    fn progress_and_messages() {
        assert_eq!(
            sending_line(2048),
            "Sending build context to Docker daemon  2.048kB"
        );
        assert_eq!(
            sending_line(112_600_000),
            "Sending build context to Docker daemon  112.6MB"
        );
        assert_eq!(
            sending_line(3),
            "Sending build context to Docker daemon       3B"
        );
        let mut tap = Tap::default();
        tap.feed(b"{\"stream\":\"Step 1/1 : FROM busybox\\n\"}\r\n{\"aux\":{\"ID\":\"sha256:ab");
        assert_eq!(tap.text, "Step 1/1 : FROM busybox\n");
        assert_eq!(tap.id, None);
        tap.feed(b"c\"}}\n{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1},\"id\":\"l\"}\n{\"status\":\"Pull complete\",\"id\":\"l\"}\n{\"errorDetail\":{\"code\":3,\"message\":\"boom\"},\"error\":\"boom\"}");
        assert_eq!(tap.id.as_deref(), Some("sha256:abc"));
        assert_eq!(tap.text, "Step 1/1 : FROM busybox\nl: Pull complete\n");
        assert_eq!(tap.code, Some(3));
        assert_eq!(
            go_json(&serde_json::json!({"a": "<x>&\u{2028}"})),
            r#"{"a":"\u003cx\u003e\u0026\u2028"}"#
        );
    }
}
