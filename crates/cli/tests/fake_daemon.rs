//! Runs the CLI against a scripted fake daemon on a Unix socket and checks
//! the API calls it makes, their order and the exit status: attach and wait
//! must be set up before start, a missing image is pulled, start errors map
//! to docker's exit codes; the shapes of the image-shipping requests
//! (push, login, save, load, export, search) with their `X-Registry-Auth`;
//! and the network commands, `port` and `run -p` as docker 28 sends and prints them.

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
    /// `POST /auth` fails with this status and message.
    auth_error: Option<(StatusCode, String)>,
    /// `POST /auth` returns this identity token.
    identity_token: Option<String>,
    /// The push stream ends with an error message.
    push_error: Option<String>,
}

/// One request as the daemon saw it (attach requests keep no body).
#[derive(Clone, Debug)]
struct Recorded {
    call: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

struct State {
    script: Script,
    calls: Mutex<Vec<String>>,
    requests: Mutex<Vec<Recorded>>,
    pulled: Mutex<bool>,
    started: watch::Sender<bool>,
}

const SAVED_TAR: &[u8] = b"pretend this is a docker-archive tar\0\0\0";
const EXPORTED_TAR: &[u8] = b"pretend this is a rootfs tar";
const DIGEST: &str = "sha256:5b0f33c83a97f5f7d12698df6732098b0cdb860d377f6307b68efe2c6821296f";

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

/// A hijacked attach: output flows once the container runs.
fn attach(state: &State, req: Request<Incoming>) -> Response<Body> {
    let mut started = state.started.subscribe();
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
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
    r
}

/// The shipping endpoints: push, /auth, save, load, export, search.
fn ship(state: &State, path: &str) -> Option<Response<Body>> {
    if path.ends_with("/push") {
        let mut body = String::from(concat!(
            "{\"status\":\"The push refers to repository [docker.io/library/busybox]\"}\n",
            "{\"status\":\"Preparing\",\"progressDetail\":{},\"id\":\"aaaaaaaaaaaa\"}\n",
            "{\"status\":\"Pushing\",\"progressDetail\":{\"current\":512,\"total\":1024},\"id\":\"aaaaaaaaaaaa\"}\n",
        ));
        match &state.script.push_error {
            Some(e) => body.push_str(&format!(
                "{{\"errorDetail\":{{\"message\":{e:?}}},\"error\":{e:?}}}\n"
            )),
            None => body.push_str(&format!(
                "{{\"status\":\"Pushed\",\"progressDetail\":{{}},\"id\":\"aaaaaaaaaaaa\"}}\n{{\"status\":\"latest: digest: {DIGEST} size: 527\"}}\n{{\"progressDetail\":{{}},\"aux\":{{\"Tag\":\"latest\",\"Digest\":\"{DIGEST}\",\"Size\":527}}}}\n"
            )),
        }
        return Some(full(StatusCode::OK, &body));
    }
    if path.ends_with("/auth") {
        if let Some((status, msg)) = &state.script.auth_error {
            return Some(full(*status, &format!("{{\"message\":{msg:?}}}")));
        }
        let token = state.script.identity_token.clone().unwrap_or_default();
        return Some(full(
            StatusCode::OK,
            &format!("{{\"Status\":\"Login Succeeded\",\"IdentityToken\":{token:?}}}"),
        ));
    }
    if path.ends_with("/images/get") {
        return Some(raw(SAVED_TAR, "application/x-tar"));
    }
    if path.ends_with("/export") {
        return Some(raw(EXPORTED_TAR, "application/x-tar"));
    }
    if path.ends_with("/images/load") {
        return Some(full(
            StatusCode::OK,
            "{\"stream\":\"Loaded image: busybox:latest\\n\"}\n",
        ));
    }
    if path.ends_with("/images/search") {
        return Some(full(
            StatusCode::OK,
            r#"[{"name":"busybox","description":"Busybox base image.","star_count":3300,"is_official":true,"is_automated":false},{"name":"me/busybox-tools","description":"Tools on top of busybox, described at a length that docker truncates","star_count":7,"is_official":false,"is_automated":false}]"#,
        ));
    }
    None
}

/// The network endpoints and the container inspect `port` reads.
fn networks(method: &hyper::Method, path: &str) -> Option<Response<Body>> {
    let unversioned = path.find("/networks").map(|i| &path[i..]);
    if path.ends_with("/containers/web/json") {
        return Some(full(
            StatusCode::OK,
            r#"{"Id":"c0ffee","NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],"443/tcp":null,"9/udp":[{"HostIp":"127.0.0.1","HostPort":"10"}]}}}"#,
        ));
    }
    let r = match (method.as_str(), unversioned?) {
        ("POST", "/networks/create") => full(
            StatusCode::CREATED,
            r#"{"Id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","Warning":""}"#,
        ),
        ("GET", "/networks") => full(
            StatusCode::OK,
            r#"[{"Name":"net10","Id":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","Scope":"local","Driver":"bridge"},{"Name":"net9","Id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Scope":"local","Driver":"bridge"},{"Name":"host","Id":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","Scope":"local","Driver":"host"}]"#,
        ),
        ("POST", "/networks/prune") => full(StatusCode::OK, r#"{"NetworksDeleted":["n1","n2"]}"#),
        ("DELETE", "/networks/missing") => full(
            StatusCode::NOT_FOUND,
            r#"{"message":"network missing not found"}"#,
        ),
        ("DELETE", _) => full(StatusCode::NO_CONTENT, ""),
        ("POST", p) if p.ends_with("/connect") || p.ends_with("/disconnect") => {
            full(StatusCode::OK, "")
        }
        _ => return None,
    };
    Some(r)
}

fn raw(data: &'static [u8], content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(data)).boxed());
    r.headers_mut()
        .insert("content-type", content_type.parse().expect("valid header"));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    // Record the call without the version prefix, with the query.
    let unversioned = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest
            .find('/')
            .map_or(path.clone(), |i| rest[i..].to_string()),
        _ => path.clone(),
    };
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let call = format!("{} {unversioned}{query}", req.method());
    state.calls.lock().expect("lock").push(call.clone());
    if path.ends_with("/attach") {
        return Ok(attach(&state, req));
    }
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.requests.lock().expect("lock").push(Recorded {
        call,
        headers,
        body,
    });

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
    if let Some(r) = ship(&state, &path) {
        return Ok(r);
    }
    if let Some(r) = networks(&method, &path) {
        return Ok(r);
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
        requests: Mutex::new(Vec::new()),
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

// ------------------------------------------------------------ shipping images

/// A run's exit code and what it printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the CLI in-process with its output captured and `--config dir`.
fn berth_in(
    host: &str,
    config: &std::path::Path,
    args: &[&str],
    stdin: &[u8],
    terminal: bool,
) -> Run {
    let config = config.to_string_lossy().into_owned();
    let argv: Vec<OsString> = ["berth", "-H", host, "--config", &config]
        .iter()
        .chain(args.iter())
        .map(OsString::from)
        .collect();
    let (code, stdout, stderr) = berth_cli::main_captured(argv, stdin, terminal);
    Run {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn requests(state: &State) -> Vec<Recorded> {
    state.requests.lock().expect("lock").clone()
}

/// The request whose call starts with `prefix`.
fn request(state: &State, prefix: &str) -> Recorded {
    requests(state)
        .into_iter()
        .find(|r| r.call.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {:?}", calls(state)))
}

/// The JSON inside an `X-Registry-Auth` header (base64url, padded).
fn registry_auth(r: &Recorded) -> serde_json::Value {
    use base64::Engine as _;
    let header = r
        .headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no X-Registry-Auth on {}", r.call));
    let json = base64::engine::general_purpose::URL_SAFE
        .decode(header)
        .expect("base64url header");
    serde_json::from_slice(&json).expect("JSON auth")
}

fn config_dir(config_json: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(text) = config_json {
        std::fs::write(dir.path().join("config.json"), text).expect("write config");
    }
    dir
}

fn read_config(dir: &std::path::Path) -> serde_json::Value {
    let data = std::fs::read(dir.join("config.json")).expect("config.json");
    serde_json::from_slice(&data).expect("valid config.json")
}

/// `me:secret` for Docker Hub, `reg:pw` for localhost:5000.
const LOGGED_IN: &str = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"bWU6c2VjcmV0"},"localhost:5000":{"auth":"cmVnOnB3"}}}"#;

#[test]
fn push_tags_latest_and_sends_credentials() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(Some(LOGGED_IN));
    let run = berth_in(&host, cfg.path(), &["push", "busybox"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("Using default tag: latest\nThe push refers to repository [docker.io/library/busybox]\naaaaaaaaaaaa: Preparing\naaaaaaaaaaaa: Pushed\nlatest: digest: {DIGEST} size: 527\n")
    );
    let push = request(&state, "POST /images/");
    assert_eq!(
        push.call,
        "POST /images/docker.io/library/busybox/push?tag=latest"
    );
    assert_eq!(
        registry_auth(&push),
        serde_json::json!({"username": "me", "password": "secret", "serveraddress": "https://index.docker.io/v1/"})
    );

    let run = berth_in(
        &host,
        cfg.path(),
        &["image", "push", "-q", "localhost:5000/app:v1"],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "localhost:5000/app:v1\n");
    let push = request(&state, "POST /images/localhost:5000");
    assert_eq!(push.call, "POST /images/localhost:5000/app/push?tag=v1");
    assert_eq!(registry_auth(&push)["username"], "reg");

    let run = berth_in(
        &host,
        cfg.path(),
        &["push", "--all-tags", "me/app"],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("Using default tag"));
    assert!(calls(&state).contains(&"POST /images/docker.io/me/app/push".to_string()));
}

#[test]
fn push_without_credentials_sends_an_empty_auth() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let run = berth_in(&host, cfg.path(), &["push", "r.example/x:1"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let push = request(&state, "POST /images/");
    assert_eq!(
        push.headers
            .get("x-registry-auth")
            .and_then(|v| v.to_str().ok()),
        Some("e30=")
    );
}

#[test]
fn push_argument_and_stream_errors() {
    let (host, state, _cleanup) = serve(Script {
        push_error: Some("denied: requested access to the resource is denied".into()),
        ..Script::default()
    });
    let cfg = config_dir(None);
    let run = berth_in(&host, cfg.path(), &["push", "-a", "busybox:1"], b"", false);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "tag can't be used with --all-tags/-a\n")
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &[
            "push",
            "busybox@sha256:5b0f33c83a97f5f7d12698df6732098b0cdb860d377f6307b68efe2c6821296f",
        ],
        b"",
        false,
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "cannot push a digest reference\n")
    );
    let run = berth_in(&host, cfg.path(), &["push"], b"", false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("berth: 'berth push' requires 1 argument"),
        "{}",
        run.stderr
    );
    assert!(calls(&state).is_empty(), "{:?}", calls(&state));

    let run = berth_in(&host, cfg.path(), &["push", "busybox:latest"], b"", false);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "denied: requested access to the resource is denied\n"
    );
    assert!(
        run.stdout.contains("aaaaaaaaaaaa: Preparing\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn pull_and_run_send_credentials() {
    let (host, state, _cleanup) = serve(Script {
        image_missing: true,
        ..Script::default()
    });
    let cfg = config_dir(Some(LOGGED_IN));
    let run = berth_in(
        &host,
        cfg.path(),
        &["pull", "localhost:5000/app"],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pull = request(&state, "POST /images/create");
    assert_eq!(
        registry_auth(&pull),
        serde_json::json!({"username": "reg", "password": "pw", "serveraddress": "localhost:5000"})
    );
    // A fresh daemon, still missing the image.
    let (host, state, _cleanup) = serve(Script {
        image_missing: true,
        ..Script::default()
    });
    let run = berth_in(&host, cfg.path(), &["run", "-d", "busybox"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("Unable to find image 'busybox:latest' locally\n"),
        "{}",
        run.stderr
    );
    let pulls: Vec<_> = requests(&state)
        .into_iter()
        .filter(|r| r.call.starts_with("POST /images/create"))
        .collect();
    assert_eq!(pulls.len(), 1);
    assert_eq!(registry_auth(&pulls[0])["username"], "me");
}

#[test]
fn login_stores_credentials() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(Some(r#"{"psFormat":"table {{.ID}}"}"#));
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "-u", "me", "--password-stdin"],
        b"s3cret\n",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Login Succeeded\n");
    assert!(
        run.stderr
            .contains("WARNING! Your credentials are stored unencrypted"),
        "{}",
        run.stderr
    );
    let auth = request(&state, "POST /auth");
    assert_eq!(
        String::from_utf8_lossy(&auth.body),
        r#"{"username":"me","password":"s3cret","serveraddress":"https://index.docker.io/v1/"}"#
    );
    let doc = read_config(cfg.path());
    assert_eq!(doc["psFormat"], "table {{.ID}}");
    assert_eq!(
        doc["auths"]["https://index.docker.io/v1/"]["auth"],
        "bWU6czNjcmV0"
    );

    // A registry given as a URL is stored under its host; -p warns.
    let run = berth_in(
        &host,
        cfg.path(),
        &[
            "login",
            "-u",
            "reg",
            "-p",
            "pw",
            "https://r.example:5000/v2/",
        ],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        ),
        "{}",
        run.stderr
    );
    let doc = read_config(cfg.path());
    assert_eq!(doc["auths"]["r.example:5000"]["auth"], "cmVnOnB3");

    // Stored credentials are tried when none are given.
    let run = berth_in(&host, cfg.path(), &["login", "r.example:5000"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("Authenticating with existing credentials... [Username: reg]\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "Login Succeeded\n");
    let last = requests(&state).pop().expect("a request");
    let body: serde_json::Value = serde_json::from_slice(&last.body).expect("JSON body");
    assert_eq!(body["serveraddress"], "r.example:5000");
}

#[test]
fn login_keeps_identity_tokens_not_passwords() {
    let (host, _state, _cleanup) = serve(Script {
        identity_token: Some("idtok".into()),
        ..Script::default()
    });
    let cfg = config_dir(None);
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "-u", "me", "--password-stdin", "localhost:5000"],
        b"pw",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("unencrypted"), "{}", run.stderr);
    assert_eq!(
        read_config(cfg.path())["auths"]["localhost:5000"],
        serde_json::json!({"auth": "bWU6", "identitytoken": "idtok"})
    );
}

#[test]
fn login_failures() {
    let (host, state, _cleanup) = serve(Script {
        auth_error: Some((
            StatusCode::UNAUTHORIZED,
            "login attempt to https://r.example/v2/ failed with status: 401 Unauthorized".into(),
        )),
        ..Script::default()
    });
    let cfg = config_dir(None);
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "-u", "me", "--password-stdin", "r.example"],
        b"bad\n",
        false,
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr, "Error response from daemon: login attempt to https://r.example/v2/ failed with status: 401 Unauthorized\n");
    assert!(!cfg.path().join("config.json").exists());

    let run = berth_in(&host, cfg.path(), &["login", "r.example"], b"", false);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "Error: Cannot perform an interactive login from a non TTY device\n"
        )
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "--password-stdin"],
        b"",
        false,
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "the --password-stdin option requires --username to be set\n"
        )
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "-u", "me", "-p", "x", "--password-stdin"],
        b"",
        false,
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("conflicting options"),
        "{}",
        run.stderr
    );
    let run = berth_in(&host, cfg.path(), &["login", "a", "b"], b"", false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("berth: 'berth login' requires at most 1 argument"),
        "{}",
        run.stderr
    );
    // Only the first attempt reached the daemon.
    assert_eq!(calls(&state), ["GET /_ping", "POST /auth"]);

    // Prompts read from the terminal.
    let run = berth_in(
        &host,
        cfg.path(),
        &["login", "r.example"],
        b"me\npw\n",
        true,
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "Username: Password: \n");
}

#[test]
fn logout_removes_credentials() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(Some(
        r#"{"auths":{"https://index.docker.io/v1/":{"auth":"bWU6c2VjcmV0"},"https://r.example:5000":{"auth":"cmVnOnB3"}},"detachKeys":"ctrl-x"}"#,
    ));
    let run = berth_in(&host, cfg.path(), &["logout"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Removing login credentials for https://index.docker.io/v1/\n"
    );
    let doc = read_config(cfg.path());
    assert!(
        doc["auths"].get("https://index.docker.io/v1/").is_none(),
        "{doc}"
    );
    assert_eq!(doc["detachKeys"], "ctrl-x");

    // Legacy keys with a scheme are found from the host name.
    let run = berth_in(&host, cfg.path(), &["logout", "r.example:5000"], b"", false);
    assert_eq!(
        run.stdout,
        "Removing login credentials for r.example:5000\n"
    );
    assert_eq!(read_config(cfg.path())["auths"], serde_json::json!({}));
    // Logging out twice is fine.
    let run = berth_in(&host, cfg.path(), &["logout", "r.example:5000"], b"", false);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(calls(&state).is_empty(), "logout does not need the daemon");
}

#[test]
fn save_writes_files_atomically_and_refuses_terminals() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let out = cfg.path().join("images.tar");
    let out_str = out.to_string_lossy().into_owned();
    let run = berth_in(
        &host,
        cfg.path(),
        &["save", "-o", &out_str, "busybox", "alpine:3"],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).ok().as_deref(), Some(SAVED_TAR));
    assert!(calls(&state).contains(&"GET /images/get?names=busybox&names=alpine%3A3".to_string()));

    let run = berth_in(&host, cfg.path(), &["image", "save", "busybox"], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), SAVED_TAR);

    let before = calls(&state).len();
    let run = berth_in(&host, cfg.path(), &["save", "busybox"], b"", true);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
        )
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &["save", "-o", "/nonexistent/dir/x.tar", "busybox"],
        b"",
        false,
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr, "failed to save image: invalid output path: stat /nonexistent/dir: no such file or directory\n");
    let run = berth_in(&host, cfg.path(), &["save"], b"", false);
    assert_eq!(run.code, 1);
    assert_eq!(calls(&state).len(), before, "nothing asked of the daemon");

    // API 1.45 lacks save --platform.
    let run = berth_in(
        &host,
        cfg.path(),
        &[
            "save",
            "--platform",
            "linux/amd64",
            "-o",
            &out_str,
            "busybox",
        ],
        b"",
        false,
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "\"platform\" requires API version 1.48, but the Docker daemon API version is 1.45\n"
    );
}

#[test]
fn export_writes_the_container_filesystem() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let out = cfg.path().join("rootfs.tar");
    let out_str = out.to_string_lossy().into_owned();
    let run = berth_in(
        &host,
        cfg.path(),
        &["container", "export", "--output", &out_str, "web"],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).ok().as_deref(), Some(EXPORTED_TAR));
    assert!(calls(&state).contains(&"GET /containers/web/export".to_string()));
    let run = berth_in(&host, cfg.path(), &["export", "web"], b"", true);
    assert_eq!(run.code, 1);
    assert!(run
        .stderr
        .starts_with("cowardly refusing to save to a terminal"));
}

#[test]
fn load_streams_the_tar_and_prints_the_result() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let input = cfg.path().join("in.tar");
    std::fs::write(&input, SAVED_TAR).expect("write tar");
    let input_str = input.to_string_lossy().into_owned();
    let run = berth_in(&host, cfg.path(), &["load", "-i", &input_str], b"", false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Loaded image: busybox:latest\n");
    // Not a terminal: no progress asked for.
    let load = request(&state, "POST /images/load");
    assert_eq!(load.call, "POST /images/load?quiet=1");
    assert_eq!(
        load.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-tar")
    );
    assert_eq!(&load.body[..], SAVED_TAR);

    let run = berth_in(
        &host,
        cfg.path(),
        &["image", "load"],
        b"tar from stdin",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let last = requests(&state).pop().expect("a request");
    assert_eq!(&last.body[..], b"tar from stdin");

    let run = berth_in(&host, cfg.path(), &["load"], b"", true);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "requested load from stdin, but stdin is empty\n")
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &["load", "-i", "/nonexistent.tar"],
        b"",
        false,
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "open /nonexistent.tar: no such file or directory\n")
    );
    let run = berth_in(&host, cfg.path(), &["load", "extra"], b"", false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("berth: 'berth load' accepts no arguments"),
        "{}",
        run.stderr
    );
}

#[test]
fn search_prints_docker_columns() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(Some(LOGGED_IN));
    let run = berth_in(
        &host,
        cfg.path(),
        &[
            "search",
            "--limit",
            "5",
            "-f",
            "is-official=true",
            "busybox",
        ],
        b"",
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "NAME               DESCRIPTION                                     STARS     OFFICIAL\n\
         busybox            Busybox base image.                             3300      [OK]\n\
         me/busybox-tools   Tools on top of busybox, described at a leng…   7         \n"
    );
    let search = request(&state, "GET /images/search");
    assert_eq!(
        search.call,
        "GET /images/search?filters=%7B%22is-official%22%3A%5B%22true%22%5D%7D&limit=5&term=busybox"
    );
    assert_eq!(registry_auth(&search)["username"], "me");

    let run = berth_in(
        &host,
        cfg.path(),
        &[
            "search",
            "--no-trunc",
            "--format",
            "{{.Name}}|{{.Description}}|{{.IsOfficial}}",
            "busybox",
        ],
        b"",
        false,
    );
    assert_eq!(
        run.stdout,
        "busybox|Busybox base image.|[OK]\nme/busybox-tools|Tools on top of busybox, described at a length that docker truncates|\n"
    );
    let run = berth_in(
        &host,
        cfg.path(),
        &["search", "--format", "json", "localhost:5000/busybox"],
        b"",
        false,
    );
    assert!(run.stdout.starts_with("{\"Description\":\"Busybox base image.\",\"IsOfficial\":\"true\",\"Name\":\"busybox\",\"StarCount\":\"3300\"}\n"), "{}", run.stdout);
    let last = requests(&state).pop().expect("a request");
    assert_eq!(registry_auth(&last)["serveraddress"], "localhost:5000");
    let run = berth_in(
        &host,
        cfg.path(),
        &["search", "--limit", "x", "busybox"],
        b"",
        false,
    );
    assert_eq!(run.code, 125);
}

fn body_json(r: &Recorded) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{}: {e}", r.call))
}

#[test]
fn network_commands_send_and_print_as_docker() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let run = |args: &[&str], stdin: &[u8]| berth_in(&host, cfg.path(), args, stdin, false);

    let r = run(
        &[
            "network",
            "create",
            "--subnet",
            "10.1.0.0/16",
            "--gateway",
            "10.1.0.1",
            "--label",
            "a=b",
            "n",
        ],
        b"",
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        body_json(&request(&state, "POST /networks/create")),
        serde_json::json!({
            "Name": "n", "Driver": "bridge",
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1"}]},
            "Internal": false, "Attachable": false, "Options": {}, "Labels": {"a": "b"}
        })
    );
    let r = run(&["network", "create", "--label", "=x", "n"], b"");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.starts_with(
            "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': empty name"
        ),
        "{}",
        r.stderr
    );

    // Sorted by name the way docker sorts: net9 before net10.
    let r = run(&["network", "ls"], b"");
    assert_eq!(
        r.stdout,
        "NETWORK ID     NAME      DRIVER    SCOPE\n\
         cccccccccccc   host      host      local\n\
         aaaaaaaaaaaa   net9      bridge    local\n\
         bbbbbbbbbbbb   net10     bridge    local\n"
    );
    let r = run(&["network", "list", "-q", "-f", "driver=bridge"], b"");
    assert_eq!(r.stdout, "cccccccccccc\naaaaaaaaaaaa\nbbbbbbbbbbbb\n");
    assert_eq!(
        requests(&state).pop().map(|r| r.call),
        Some("GET /networks?filters=%7B%22driver%22%3A%5B%22bridge%22%5D%7D".to_string())
    );

    // One failure: the others are still removed, the error printed, docker's status line last.
    let r = run(&["network", "rm", "a", "missing", "b"], b"");
    assert_eq!((r.code, r.stdout.as_str()), (1, "a\nb\n"));
    assert_eq!(
        r.stderr,
        "Error response from daemon: network missing not found\nexit status 1\n"
    );
    let r = run(&["network", "rm", "-f", "missing"], b"");
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));

    let r = run(&["network", "prune"], b"n\n");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
    );
    assert!(!calls(&state)
        .iter()
        .any(|c| c.starts_with("POST /networks/prune")));
    let r = run(&["network", "prune", "-f"], b"");
    assert_eq!(r.stdout, "Deleted Networks:\nn1\nn2\n\n");

    let r = run(
        &[
            "network", "connect", "--alias", "x,y", "--ip", "10.1.0.5", "n", "web",
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        body_json(&request(&state, "POST /networks/n/connect")),
        serde_json::json!({"Container": "web", "EndpointConfig": {
            "IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["x", "y"], "DriverOpts": {}
        }})
    );
    let r = run(&["network", "disconnect", "-f", "n", "web"], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        body_json(&request(&state, "POST /networks/n/disconnect")),
        serde_json::json!({"Container": "web", "Force": true})
    );
    let r = run(&["network", "connect", "n"], b"");
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .starts_with("berth: 'berth network connect' requires 2 arguments"));
}

#[test]
fn port_prints_mappings_as_docker() {
    let (host, _state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let run = |args: &[&str]| berth_in(&host, cfg.path(), args, b"", false);
    let r = run(&["port", "web"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "9/udp -> 127.0.0.1:10\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n"
        ),
        "{}",
        r.stderr
    );
    let r = run(&["container", "port", "web", "80"]);
    assert_eq!(r.stdout, "0.0.0.0:8080\n[::]:8080\n");
    let r = run(&["port", "web", "81/tcp"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error: No public port '81/tcp' published for web\n")
    );
    let r = run(&["port", "web", "1", "2"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .starts_with("berth: 'berth port' requires at least 1 and at most 2 arguments"));
}

#[test]
fn run_sends_published_ports_and_network_settings() {
    let (host, state, _cleanup) = serve(Script::default());
    let cfg = config_dir(None);
    let r = berth_in(
        &host,
        cfg.path(),
        &[
            "run",
            "-d",
            "-p",
            "127.0.0.1:8080:80",
            "--expose",
            "443",
            "--network",
            "mynet",
            "--network-alias",
            "web",
            "--dns",
            "1.1.1.1",
            "--add-host",
            "db=10.0.0.9",
            "busybox",
        ],
        b"",
        false,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let body = body_json(&request(&state, "POST /containers/create"));
    assert_eq!(
        body["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "443/tcp": {}})
    );
    let h = &body["HostConfig"];
    assert_eq!(
        h["PortBindings"],
        serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
    );
    assert_eq!(
        (&h["Dns"], &h["ExtraHosts"]),
        (
            &serde_json::json!(["1.1.1.1"]),
            &serde_json::json!(["db:10.0.0.9"])
        )
    );
    assert_eq!(
        body["NetworkingConfig"],
        serde_json::json!({"EndpointsConfig": {"mynet": {"Aliases": ["web"]}}})
    );

    // Invalid specs are refused before anything is created, with run's help line.
    let r = berth_in(
        &host,
        cfg.path(),
        &["run", "-p", "8080:", "busybox"],
        b"",
        false,
    );
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "berth: no port specified: 8080:<empty>\n\nRun 'berth run --help' for more information\n"
    );
}
