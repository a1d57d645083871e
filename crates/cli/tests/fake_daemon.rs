//! Runs the CLI against a scripted fake daemon on a Unix socket and checks
//! the API calls it makes, their order and the exit status: attach and wait
//! must be set up before start, a missing image is pulled, start errors map
//! to docker's exit codes.

use std::convert::Infallible;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};

type Body = BoxBody<Bytes, Infallible>;

/// How the fake daemon behaves.
#[derive(Clone, Default)]
struct Script {
    /// `POST /containers/create` answers 404 until the image was pulled.
    image_missing: bool,
    /// `POST /containers/{id}/start` fails with this message (500).
    start_error: Option<String>,
    exit_code: i64,
}

struct State {
    script: Script,
    calls: Mutex<Vec<String>>,
    pulled: Mutex<bool>,
    started: watch::Sender<bool>,
}

fn full(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("valid header"),
    );
    r
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    // Record the call without the version prefix, with the query.
    let unversioned = path.split_once("/containers").map_or_else(
        || {
            path.split_once("/images")
                .map_or(path.clone(), |(_, rest)| format!("/images{rest}"))
        },
        |(_, rest)| format!("/containers{rest}"),
    );
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    state
        .calls
        .lock()
        .expect("lock")
        .push(format!("{} {unversioned}{query}", req.method()));

    if path == "/_ping" {
        let mut r = full(StatusCode::OK, "OK");
        r.headers_mut()
            .insert("api-version", "1.45".parse().expect("valid header"));
        return Ok(r);
    }
    if path.ends_with("/containers/create") {
        if state.script.image_missing && !*state.pulled.lock().expect("lock") {
            return Ok(full(
                StatusCode::NOT_FOUND,
                r#"{"message":"No such image: busybox:latest"}"#,
            ));
        }
        return Ok(full(
            StatusCode::CREATED,
            r#"{"Id":"c0ffee","Warnings":[]}"#,
        ));
    }
    if path.ends_with("/images/create") {
        *state.pulled.lock().expect("lock") = true;
        return Ok(full(StatusCode::OK, "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\n{\"status\":\"Status: Downloaded newer image for busybox:latest\"}\n"));
    }
    if path.ends_with("/start") {
        if let Some(msg) = &state.script.start_error {
            return Ok(full(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("{{\"message\":{msg:?}}}"),
            ));
        }
        let _ = state.started.send(true);
        return Ok(full(StatusCode::NO_CONTENT, ""));
    }
    if path.ends_with("/attach") {
        let mut started = state.started.subscribe();
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            // Output only flows once the container runs.
            let _ = started.wait_for(|s| *s).await;
            let _ = io.write_all(&frame(1, b"hello from fake\n")).await;
            let _ = io.write_all(&frame(2, b"to stderr\n")).await;
            let _ = io.shutdown().await;
        });
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "Upgrade".parse().expect("valid header"));
        r.headers_mut()
            .insert("upgrade", "tcp".parse().expect("valid header"));
        return Ok(r);
    }
    if path.ends_with("/wait") {
        // Headers now, the status once the container ran: like dockerd.
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        let mut started = state.started.subscribe();
        let code = state.script.exit_code;
        let fails = state.script.start_error.is_some();
        tokio::spawn(async move {
            if !fails {
                let _ = started.wait_for(|s| *s).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let body = format!("{{\"StatusCode\":{code},\"Error\":null}}\n");
            let _ = tx.send(Ok(Frame::data(Bytes::from(body)))).await;
        });
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        r.headers_mut().insert(
            "content-type",
            "application/json".parse().expect("valid header"),
        );
        return Ok(r);
    }
    if path.ends_with("/containers/json") {
        return Ok(full(StatusCode::OK, "[]"));
    }
    Ok(full(
        StatusCode::NOT_FOUND,
        r#"{"message":"page not found"}"#,
    ))
}

/// Serves `script` on a fresh socket in a background thread; returns the
/// socket path, the recorded calls and the cleanup guard.
fn serve(script: Script) -> (String, Arc<State>, Cleanup) {
    let dir = std::env::temp_dir().join(format!(
        "berth-cli-fake-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("d.sock");
    let (started, _) = watch::channel(false);
    let state = Arc::new(State {
        script,
        calls: Mutex::new(Vec::new()),
        pulled: Mutex::new(false),
        started,
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sock_path = sock.clone();
    let st = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = UnixListener::bind(&sock_path).expect("bind");
            let _ = ready_tx.send(());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
    });
    ready_rx.recv().expect("server ready");
    (format!("unix://{}", sock.display()), state, Cleanup(dir))
}

/// Removes the socket's directory when a test ends (the server thread lives on).
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn berth(host: &str, args: &[&str]) -> i32 {
    let argv: Vec<OsString> = ["berth", "-H", host]
        .iter()
        .chain(args.iter())
        .map(OsString::from)
        .collect();
    berth_cli::main(argv)
}

fn calls(state: &State) -> Vec<String> {
    state.calls.lock().expect("lock").clone()
}

#[test]
fn run_attaches_and_waits_before_start() {
    let (host, state, _cleanup) = serve(Script {
        exit_code: 3,
        ..Script::default()
    });
    assert_eq!(
        berth(&host, &["run", "--name", "web", "busybox", "echo", "hi"]),
        3
    );
    assert_eq!(
        calls(&state),
        [
            "GET /_ping",
            "POST /containers/create?name=web",
            "POST /containers/c0ffee/attach?stream=1&stdout=1&stderr=1",
            "POST /containers/c0ffee/wait?condition=next-exit",
            "POST /containers/c0ffee/start",
        ]
    );
}

#[test]
fn run_rm_waits_for_removal() {
    let (host, state, _cleanup) = serve(Script::default());
    assert_eq!(berth(&host, &["run", "--rm", "busybox"]), 0);
    assert!(calls(&state).contains(&"POST /containers/c0ffee/wait?condition=removed".to_string()));
}

#[test]
fn run_pulls_a_missing_image_and_retries() {
    let (host, state, _cleanup) = serve(Script {
        image_missing: true,
        ..Script::default()
    });
    assert_eq!(berth(&host, &["run", "-d", "busybox"]), 0);
    let c = calls(&state);
    assert_eq!(
        &c[..4],
        [
            "GET /_ping",
            "POST /containers/create",
            "POST /images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest",
            "POST /containers/create",
        ]
    );
    // Detached: no attach, but the wait is still registered before start.
    assert_eq!(
        &c[4..],
        [
            "POST /containers/c0ffee/wait?condition=next-exit",
            "POST /containers/c0ffee/start"
        ]
    );
}

#[test]
fn start_errors_map_to_docker_exit_codes() {
    let cases = [
        ("exec: \"nope\": executable file not found in $PATH", 127),
        ("exec: \"/etc\": permission denied", 126),
        ("something else broke", 125),
    ];
    for (msg, code) in cases {
        let (host, _, _cleanup) = serve(Script {
            start_error: Some(msg.to_string()),
            ..Script::default()
        });
        assert_eq!(berth(&host, &["run", "busybox"]), code, "{msg}");
    }
}

#[test]
fn unreachable_daemon() {
    let host = "unix:///nonexistent/berth-test.sock";
    assert_eq!(berth(host, &["ps"]), 1);
    assert_eq!(berth(host, &["run", "busybox"]), 125);
}

#[test]
fn usage_errors_exit_codes() {
    let (host, state, _cleanup) = serve(Script::default());
    assert_eq!(berth(&host, &["ps", "--bogus"]), 125);
    assert_eq!(berth(&host, &["stop"]), 1);
    assert_eq!(berth(&host, &["nosuchcommand"]), 1);
    assert_eq!(berth(&host, &["ps"]), 0);
    // Argument errors are found before the daemon is contacted.
    assert_eq!(calls(&state), ["GET /_ping", "GET /containers/json"]);
}
