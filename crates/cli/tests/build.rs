//! `berth build` against a scripted fake daemon on a Unix socket: the `POST /build` query,
//! headers and uploaded context (with `.dockerignore` in effect), the output of the message
//! stream, `-q`, `--iidfile`, and the exit codes of failures, in the style of
//! `fake_daemon.rs`.

use std::convert::Infallible;
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

type Body = BoxBody<Bytes, Infallible>;

const IMAGE_ID: &str = "sha256:6f1d5a2e3c1f0e8b7a9d4c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29";

/// How the fake daemon answers `POST /build`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Answer {
    /// The legacy builder's output, ending with the image ID.
    #[default]
    Built,
    /// A RUN step fails with status 3.
    RunFails,
    /// The Dockerfile is refused before the stream starts.
    Rejected,
}

/// One request as the daemon saw it.
#[derive(Clone, Debug)]
struct Recorded {
    call: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

struct State {
    answer: Answer,
    requests: Mutex<Vec<Recorded>>,
}

fn full(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("valid header"),
    );
    r
}

fn build_answer(answer: Answer, quiet: bool) -> Response<Body> {
    let msg = |text: &str| format!("{}\n", serde_json::json!({ "stream": text }));
    let mut out = String::new();
    match answer {
        Answer::Rejected => {
            return full(
                StatusCode::BAD_REQUEST,
                r#"{"message":"dockerfile parse error line 1: unknown instruction: FOO"}"#.into(),
            )
        }
        Answer::RunFails => {
            out.push_str(&msg("Step 1/2 : FROM busybox\n"));
            out.push_str(&msg(" ---> 3f57d9401f8d\n"));
            out.push_str(&msg("Step 2/2 : RUN exit 3\n"));
            out.push_str(
                "{\"errorDetail\":{\"code\":3,\"message\":\"The command '/bin/sh -c exit 3' returned a non-zero code: 3\"},\"error\":\"The command '/bin/sh -c exit 3' returned a non-zero code: 3\"}\n",
            );
        }
        Answer::Built if quiet => {
            out.push_str(&format!("{{\"aux\":{{\"ID\":\"{IMAGE_ID}\"}}}}\n"));
            out.push_str(&msg(&format!("{IMAGE_ID}\n")));
        }
        Answer::Built => {
            out.push_str(&msg("Step 1/2 : FROM busybox\n"));
            out.push_str(&msg(" ---> 3f57d9401f8d\n"));
            out.push_str(&msg("Step 2/2 : COPY . /app\n"));
            out.push_str(&format!("{{\"aux\":{{\"ID\":\"{IMAGE_ID}\"}}}}\n"));
            out.push_str(&msg(&format!(" ---> {}\n", &IMAGE_ID[7..19])));
            out.push_str(&msg(&format!("Successfully built {}\n", &IMAGE_ID[7..19])));
        }
    }
    full(StatusCode::OK, out)
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let unversioned = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest
            .find('/')
            .map_or(path.clone(), |i| rest[i..].to_string()),
        _ => path.clone(),
    };
    let query = req.uri().query().unwrap_or_default().to_string();
    let call = if query.is_empty() {
        format!("{} {unversioned}", req.method())
    } else {
        format!("{} {unversioned}?{query}", req.method())
    };
    let headers = req.headers().clone();
    // The whole context first, as dockerd reads it before it starts building.
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
        let mut r = full(StatusCode::OK, "OK".into());
        r.headers_mut()
            .insert("api-version", "1.45".parse().expect("valid header"));
        return Ok(r);
    }
    if path.ends_with("/build") {
        let quiet = query.split('&').any(|kv| kv == "q=1");
        return Ok(build_answer(state.answer, quiet));
    }
    Ok(full(
        StatusCode::NOT_FOUND,
        r#"{"message":"page not found"}"#.into(),
    ))
}

/// Serves on a fresh socket in a background thread; the guard removes the socket's directory.
fn serve(answer: Answer) -> (String, Arc<State>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("d.sock");
    let state = Arc::new(State {
        answer,
        requests: Mutex::new(Vec::new()),
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
                        .await;
                });
            }
        });
    });
    ready_rx.recv().expect("server ready");
    (format!("unix://{}", sock.display()), state, dir)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn berth(host: &str, config: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let config = config.to_string_lossy().into_owned();
    let argv: Vec<OsString> = ["berth", "-H", host, "--config", &config]
        .iter()
        .chain(args.iter())
        .map(OsString::from)
        .collect();
    let (code, stdout, stderr) = berth_cli::main_captured(argv, stdin, false);
    Run {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn requests(state: &State) -> Vec<Recorded> {
    state.requests.lock().expect("lock").clone()
}

fn calls(state: &State) -> Vec<String> {
    requests(state).into_iter().map(|r| r.call).collect()
}

fn build_request(state: &State) -> Recorded {
    requests(state)
        .into_iter()
        .find(|r| r.call.starts_with("POST /build"))
        .unwrap_or_else(|| panic!("no build request in {:?}", calls(state)))
}

/// (path, type, uid, gid, contents) of each uploaded entry.
fn entries(tar: &[u8]) -> Vec<(String, char, u64, u64, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .expect("a tar")
        .map(|e| {
            let mut e = e.expect("an entry");
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("entry data");
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                h.entry_type().as_byte() as char,
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                data,
            )
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|e| e.0).collect()
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

/// A context directory with a `.dockerignore` that leaves out logs and a secret directory,
/// except one file in it.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let r = dir.path();
    write(r, "Dockerfile", "FROM busybox\nCOPY . /app\n");
    write(r, ".dockerignore", "# junk\n*.log\nsecret\n!secret/keep\n");
    write(r, "a.txt", "a");
    write(r, "debug.log", "noise");
    write(r, "secret/key", "hunter2");
    write(r, "secret/keep", "kept");
    write(r, "sub/b.txt", "b");
    write(r, "sub/trace.log", "kept: *.log is for the root only");
    dir
}

/// `me:secret` for Docker Hub, `reg:pw` for localhost:5000.
const LOGGED_IN: &str = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"bWU6c2VjcmV0"},"localhost:5000":{"auth":"cmVnOnB3"}}}"#;

/// go-units `HumanSize` ("%.4g" and a decimal unit) for the sizes of these small contexts.
fn human(n: usize) -> String {
    if n < 1000 {
        return format!("{n}B");
    }
    let v = n as f64 / 1000.0;
    let decimals = if v < 10.0 {
        3
    } else if v < 100.0 {
        2
    } else {
        1
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}kB")
}

#[test]
fn directory_context_is_uploaded_with_dockerignore_applied() {
    let (host, state, _guard) = serve(Answer::Built);
    let ctx = context();
    let cfg = tempfile::tempdir().expect("dir");
    std::fs::write(cfg.path().join("config.json"), LOGGED_IN).expect("config");
    let dir = ctx.path().to_str().expect("utf8");
    let run = berth(
        &host,
        cfg.path(),
        &[
            "build",
            "-t",
            "app:1",
            "-t",
            "app",
            "--build-arg",
            "V=1",
            "--label",
            "l=x",
            "--target",
            "final",
            "--no-cache",
            dir,
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    assert_eq!(
        calls(&state),
        [
            "GET /_ping".to_string(),
            "POST /build?buildargs=%7B%22V%22%3A%221%22%7D&dockerfile=Dockerfile&labels=%7B%22l%22%3A%22x%22%7D&nocache=1&t=app%3A1&t=app&target=final&version=1".to_string(),
        ]
    );
    assert_eq!(
        req.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-tar")
    );
    let config = {
        use base64::Engine as _;
        let header = req
            .headers
            .get("x-registry-config")
            .and_then(|v| v.to_str().ok())
            .expect("X-Registry-Config");
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(header)
            .expect("base64url");
        serde_json::from_slice::<serde_json::Value>(&json).expect("JSON")
    };
    assert_eq!(
        config,
        serde_json::json!({
            "https://index.docker.io/v1/": {"username": "me", "password": "secret", "serveraddress": "https://index.docker.io/v1/"},
            "localhost:5000": {"username": "reg", "password": "pw", "serveraddress": "localhost:5000"},
        })
    );

    let uploaded = entries(&req.body);
    assert_eq!(
        uploaded.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [
            ".dockerignore",
            "Dockerfile",
            "a.txt",
            "secret/keep",
            "sub/",
            "sub/b.txt",
            "sub/trace.log",
        ]
    );
    assert!(uploaded.iter().all(|e| e.2 == 0 && e.3 == 0), "sent as 0:0");
    assert_eq!(uploaded[3].4, b"kept");

    let id = &IMAGE_ID[7..19];
    assert_eq!(
        run.stdout,
        format!(
            "Sending build context to Docker daemon {:>8}\r\r\nStep 1/2 : FROM busybox\n ---> 3f57d9401f8d\nStep 2/2 : COPY . /app\n ---> {id}\nSuccessfully built {id}\n",
            human(req.body.len())
        )
    );
}

#[test]
fn quiet_prints_only_the_image_id_and_iidfile_keeps_it() {
    let (host, state, _guard) = serve(Answer::Built);
    let ctx = context();
    let cfg = tempfile::tempdir().expect("dir");
    let iid = cfg.path().join("iid");
    std::fs::write(&iid, "stale").expect("stale file");
    let dir = ctx.path().to_str().expect("utf8");
    let run = berth(&host, cfg.path(), &["build", "-q", dir], b"");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, &*format!("{IMAGE_ID}\n"))
    );
    assert!(build_request(&state).call.contains("&q=1&"));

    let iid_arg = iid.to_str().expect("utf8");
    let run = berth(
        &host,
        cfg.path(),
        &["build", "--iidfile", iid_arg, dir],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), IMAGE_ID);
}

#[test]
fn failures_exit_like_docker() {
    let ctx = context();
    let dir = ctx.path().to_str().expect("utf8");
    let cfg = tempfile::tempdir().expect("dir");

    // A failed RUN: the stream so far, then its message and status.
    let (host, _state, _guard) = serve(Answer::RunFails);
    let iid = cfg.path().join("iid");
    std::fs::write(&iid, "stale").expect("stale file");
    let iid_arg = iid.to_str().expect("utf8");
    let run = berth(
        &host,
        cfg.path(),
        &["build", "--iidfile", iid_arg, dir],
        b"",
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.ends_with("Step 2/2 : RUN exit 3\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"
    );
    assert!(!iid.exists(), "no stale image ID after a failure");
    let run = berth(&host, cfg.path(), &["build", "-q", dir], b"");
    assert_eq!((run.code, run.stdout.as_str()), (3, ""));
    assert!(
        run.stderr
            .starts_with("Sending build context to Docker daemon")
            && run.stderr.ends_with("returned a non-zero code: 3\n"),
        "{}",
        run.stderr
    );

    // Refused before streaming.
    let (host, _state, _guard) = serve(Answer::Rejected);
    let run = berth(&host, cfg.path(), &["build", dir], b"");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "Error response from daemon: dockerfile parse error line 1: unknown instruction: FOO\n"
    );
}

#[test]
fn context_errors_are_found_before_the_daemon_is_asked() {
    let (host, state, _guard) = serve(Answer::Built);
    let cfg = tempfile::tempdir().expect("dir");
    let empty = tempfile::tempdir().expect("dir");
    let empty_dir = empty.path().to_str().expect("utf8");
    let canonical = std::fs::canonicalize(empty.path()).expect("canonical");
    let bad = context();
    std::fs::write(bad.path().join(".dockerignore"), "[\n").expect("write");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["build", "/nonexistent/ctx"],
            "unable to prepare context: path \"/nonexistent/ctx\" not found\n".into(),
        ),
        (
            vec!["build", empty_dir],
            format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/Dockerfile: no such file or directory\n",
                canonical.display()
            ),
        ),
        (
            vec!["build", "-f", "-", "-"],
            "invalid argument: can't use stdin for both build context and dockerfile\n".into(),
        ),
        (
            vec!["build", bad.path().to_str().expect("utf8")],
            "error checking context: syntax error in pattern\n".into(),
        ),
    ];
    for (args, want) in cases {
        let run = berth(&host, cfg.path(), &args, b"FROM x\n");
        assert_eq!((run.code, run.stderr), (1, want), "{args:?}");
    }
    let run = berth(&host, cfg.path(), &["build"], b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("berth: 'berth build' requires 1 argument"),
        "{}",
        run.stderr
    );
    assert!(calls(&state).is_empty(), "{:?}", calls(&state));
}

#[test]
fn stdin_contexts() {
    let (host, state, _guard) = serve(Answer::Built);
    let cfg = tempfile::tempdir().expect("dir");

    // A plain Dockerfile becomes a one-file context.
    let run = berth(
        &host,
        cfg.path(),
        &["build", "-t", "x", "-"],
        b"FROM busybox\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    assert!(req.call.contains("dockerfile=Dockerfile&"), "{}", req.call);
    let uploaded = entries(&req.body);
    assert_eq!(uploaded.len(), 1);
    assert_eq!(
        (uploaded[0].0.as_str(), uploaded[0].4.as_slice()),
        ("Dockerfile", &b"FROM busybox\n"[..])
    );

    // A tar is sent byte for byte, with the -f given.
    let mut tar = Vec::new();
    berth_context::dockerfile_tar(b"FROM scratch\n", &mut tar, 1_700_000_000).expect("tar");
    state.requests.lock().expect("lock").clear();
    let run = berth(&host, cfg.path(), &["build", "-f", "Dockerfile", "-"], &tar);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(build_request(&state).body, tar);

    // A Dockerfile on stdin together with -f is ambiguous.
    let run = berth(
        &host,
        cfg.path(),
        &["build", "-f", "Dockerfile", "-"],
        b"FROM x\n",
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "unable to prepare context: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles\n")
    );
}

#[test]
fn dockerfile_outside_the_context_gets_a_hidden_name() {
    let (host, state, _guard) = serve(Answer::Built);
    let cfg = tempfile::tempdir().expect("dir");
    let ctx = context();
    let other = tempfile::tempdir().expect("dir");
    write(other.path(), "build.Dockerfile", "FROM busybox\nRUN true\n");
    let file = other.path().join("build.Dockerfile");
    let run = berth(
        &host,
        cfg.path(),
        &[
            "build",
            "-f",
            file.to_str().expect("utf8"),
            ctx.path().to_str().expect("utf8"),
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    let (_, query) = req.call.split_once('?').expect("a query");
    let name = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("dockerfile="))
        .expect("dockerfile parameter")
        .to_string();
    assert!(
        name.starts_with(".dockerfile.") && name.len() == 32,
        "{name}"
    );
    let uploaded = entries(&req.body);
    let find = |n: &str| {
        uploaded
            .iter()
            .find(|e| e.0 == n)
            .unwrap_or_else(|| panic!("no {n} in {:?}", names(&req.body)))
    };
    assert_eq!(find(&name).4, b"FROM busybox\nRUN true\n");
    assert_eq!(
        String::from_utf8_lossy(&find(".dockerignore").4),
        format!("# junk\n*.log\nsecret\n!secret/keep\n\n{name}\n")
    );

    // -f - with a directory: the Dockerfile comes from stdin, the context from the directory.
    state.requests.lock().expect("lock").clear();
    let run = berth(
        &host,
        cfg.path(),
        &["build", "-f", "-", ctx.path().to_str().expect("utf8")],
        b"FROM scratch\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    assert!(req.call.contains("dockerfile=.dockerfile."), "{}", req.call);
    assert!(entries(&req.body).iter().any(|e| e.4 == b"FROM scratch\n"));
}

#[test]
fn remote_contexts_build_args_from_the_environment_and_compression() {
    let (host, state, _guard) = serve(Answer::Built);
    let cfg = tempfile::tempdir().expect("dir");
    let run = berth(
        &host,
        cfg.path(),
        &["build", "https://example.com/ctx.tar.gz"],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    assert_eq!(
        req.call,
        "POST /build?remote=https%3A%2F%2Fexample.com%2Fctx.tar.gz&version=1"
    );
    assert!(req.body.is_empty());
    assert!(
        !run.stdout.contains("Sending build context"),
        "{}",
        run.stdout
    );

    // `--build-arg KEY` takes KEY from the environment, or is sent as null.
    std::env::set_var("BERTH_BUILD_TEST_FROM_ENV", "from env");
    state.requests.lock().expect("lock").clear();
    let ctx = context();
    let dir = ctx.path().to_str().expect("utf8");
    let run = berth(
        &host,
        cfg.path(),
        &[
            "build",
            "--build-arg",
            "BERTH_BUILD_TEST_FROM_ENV",
            "--build-arg",
            "BERTH_BUILD_TEST_UNSET",
            "--compress",
            dir,
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    assert!(
        req.call.starts_with("POST /build?buildargs=%7B%22BERTH_BUILD_TEST_FROM_ENV%22%3A%22from+env%22%2C%22BERTH_BUILD_TEST_UNSET%22%3Anull%7D&"),
        "{}",
        req.call
    );
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&req.body[..])
        .read_to_end(&mut tar)
        .expect("gzip body");
    assert_eq!(names(&tar).len(), 7);
}

#[test]
fn large_contexts_stream_through() {
    let (host, state, _guard) = serve(Answer::Built);
    let cfg = tempfile::tempdir().expect("dir");
    let ctx = tempfile::tempdir().expect("dir");
    write(ctx.path(), "Dockerfile", "FROM scratch\nCOPY big /\n");
    // Bigger than the upload channel holds many times over.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(ctx.path().join("big"), &big).expect("write");
    let run = berth(
        &host,
        cfg.path(),
        &["build", ctx.path().to_str().expect("utf8")],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let req = build_request(&state);
    let uploaded = entries(&req.body);
    assert_eq!(uploaded[1].0, "big");
    assert!(uploaded[1].4 == big, "contents arrive intact");
    assert!(
        run.stdout
            .starts_with("Sending build context to Docker daemon  3.003MB\r\r\n"),
        "{}",
        run.stdout
    );
}
