//! The edge without an engine: version negotiation, headers, errors, and the real socket
//! server (streamed bodies, hijacked connections, shutdown).

use std::time::Duration;

use axum::routing::{get, post};
use berth_engine::types::{LogRecord, StdStream};
use berth_engine::EngineError;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::stream::{AttachStreams, OutputEncoder};
use crate::system;

/// Routes that exercise the edge without needing an engine.
fn test_app() -> Router {
    let routes = Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route(
            "/version-echo",
            get(|v: ApiVersion| async move { v.as_str().to_string() }),
        )
        .route(
            "/fail/{kind}",
            get(
                |axum::extract::Path(kind): axum::extract::Path<String>| async move {
                    let e = match kind.as_str() {
                        "notfound" => EngineError::no_such_container("abc"),
                        "conflict" => EngineError::conflict("is running"),
                        "invalid" => EngineError::invalid("bad thing"),
                        "notmodified" => EngineError::not_modified(),
                        _ => EngineError::internal("disk on fire"),
                    };
                    ApiError::from(e)
                },
            ),
        )
        .route("/post-only", post(|| async { "posted" }))
        .route(
            "/json-body",
            post(|headers: HeaderMap, body: Bytes| async move {
                check_json_content_type(&headers, body.len())?;
                let v: serde_json::Value = parse_json(&body)?;
                ok_json(&v)
            }),
        );
    with_edge(routes)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn call_with(app: &Router, req: Request) -> Answer {
    let svc = TowerToHyperService::new(app.clone());
    let resp = match svc.call(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn call(app: &Router, method: &str, uri: &str) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request");
    call_with(app, req).await
}

#[test]
fn versions_compare_like_docker() {
    assert_eq!(compare_versions("1.24", "1.24"), Ordering::Equal);
    assert_eq!(compare_versions("1.9", "1.24"), Ordering::Less);
    assert_eq!(compare_versions("1.51", "1.51.0"), Ordering::Equal);
    assert_eq!(compare_versions("1.51.1", "1.51"), Ordering::Greater);
    assert_eq!(compare_versions("2", "1.99"), Ordering::Greater);
    assert!(ApiVersion::new("1.42").at_least("1.42"));
    assert!(!ApiVersion::new("1.41").at_least("1.42"));
}

#[test]
fn version_prefixes() {
    assert_eq!(
        split_version("/v1.51/containers/json"),
        Some(("1.51", "/containers/json"))
    );
    assert_eq!(split_version("/v1/x"), Some(("1", "/x")));
    assert_eq!(split_version("/containers/json"), None);
    assert_eq!(split_version("/v1.51"), None);
    assert_eq!(split_version("/version"), None);
    assert_eq!(split_version("/vx/containers"), None);
}

#[tokio::test]
async fn bare_and_prefixed_paths_negotiate_the_version() {
    let app = test_app();
    let bare = call(&app, "GET", "/version-echo").await;
    assert_eq!(bare.status, StatusCode::OK);
    assert_eq!(bare.body.as_ref(), API_VERSION.as_bytes());
    for v in ["1.24", "1.40", "1.51"] {
        let a = call(&app, "GET", &format!("/v{v}/version-echo?x=1")).await;
        assert_eq!(a.status, StatusCode::OK, "v{v}");
        assert_eq!(a.body.as_ref(), v.as_bytes());
    }
}

#[tokio::test]
async fn too_old_and_too_new_versions_are_refused() {
    let app = test_app();
    let old = call(&app, "GET", "/v1.12/version-echo").await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8_lossy(&old.body).trim_end(),
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade \
         your client to a newer version"
    );
    assert_eq!(old.header("api-version"), API_VERSION);

    let new = call(&app, "GET", "/v9.99/version-echo").await;
    assert_eq!(new.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        new.json()["message"],
        "client version 9.99 is too new. Maximum supported API version is 1.51"
    );
    assert_eq!(new.header("content-type"), "application/json");
    let new = call(&app, "GET", "/v1.99/_ping").await;
    assert_eq!(new.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_response_carries_the_daemon_headers() {
    let app = test_app();
    for uri in ["/_ping", "/v1.51/_ping", "/nope", "/v1.12/_ping"] {
        let a = call(&app, "GET", uri).await;
        assert_eq!(a.header("api-version"), "1.51", "{uri}");
        assert_eq!(a.header("docker-experimental"), "false", "{uri}");
        assert_eq!(a.header("ostype"), "linux", "{uri}");
        assert!(a.header("server").starts_with("Berth/"), "{uri}");
        assert!(a.header("server").ends_with(" (linux)"), "{uri}");
    }
}

#[tokio::test]
async fn ping_answers_ok() {
    let app = test_app();
    let a = call(&app, "GET", "/_ping").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body.as_ref(), b"OK");
    assert_eq!(a.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(a.header("builder-version"), "1");
    assert_eq!(
        a.header("cache-control"),
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(a.header("pragma"), "no-cache");
    let h = call(&app, "HEAD", "/_ping").await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.is_empty());
    assert_eq!(h.header("builder-version"), "1");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_docker_404s() {
    let app = test_app();
    for (method, uri) in [
        ("GET", "/nope"),
        ("GET", "/v1.51/nope"),
        ("GET", "/v1.51"),
        ("GET", "/post-only"),
        ("DELETE", "/_ping"),
    ] {
        let a = call(&app, method, uri).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(a.json(), serde_json::json!({"message": "page not found"}));
    }
}

#[tokio::test]
async fn engine_error_kinds_map_to_statuses() {
    let app = test_app();
    let cases = [
        ("notfound", StatusCode::NOT_FOUND, "No such container: abc"),
        ("conflict", StatusCode::CONFLICT, "is running"),
        ("invalid", StatusCode::BAD_REQUEST, "bad thing"),
        (
            "internal",
            StatusCode::INTERNAL_SERVER_ERROR,
            "disk on fire",
        ),
    ];
    for (kind, status, message) in cases {
        let a = call(&app, "GET", &format!("/fail/{kind}")).await;
        assert_eq!(a.status, status, "{kind}");
        assert_eq!(
            a.json(),
            serde_json::json!({ "message": message }),
            "{kind}"
        );
        assert_eq!(a.header("content-type"), "application/json");
        assert!(a.body.ends_with(b"\n"));
    }
    let nm = call(&app, "GET", "/fail/notmodified").await;
    assert_eq!(nm.status, StatusCode::NOT_MODIFIED);
    assert!(nm.body.is_empty());
}

#[tokio::test]
async fn json_bodies_are_checked() {
    let app = test_app();
    let post = |ct: Option<&str>, body: &'static str| {
        let mut b = Request::builder().method("POST").uri("/json-body");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body)).expect("valid request")
    };
    let ok = call_with(&app, post(Some("application/json"), r#"{"a":1}"#)).await;
    assert_eq!(ok.status, StatusCode::OK);
    let charset = call_with(&app, post(Some("application/json; charset=utf-8"), "{}")).await;
    assert_eq!(charset.status, StatusCode::OK);
    let bad = call_with(&app, post(Some("application/json"), r#"{"a":"#)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let msg = bad.json()["message"].as_str().unwrap_or("").to_string();
    assert!(msg.starts_with("invalid JSON: "), "{msg}");
    let text = call_with(&app, post(Some("text/plain"), "{}")).await;
    assert_eq!(text.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text.json()["message"],
        "unsupported Content-Type header (text/plain): must be 'application/json'"
    );
    let none = call_with(&app, post(None, "{}")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
}

// ---- the real server over a Unix socket ----

/// A hijackable echo: whatever the client writes comes back as stdout frames; the connection
/// closes once the client half-closes and the echo drained.
async fn echo_attach(mut req: Request) -> Response {
    let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(8);
    let (out_tx, out_rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(data) = in_rx.recv().await {
            let rec = LogRecord {
                stream: StdStream::Stdout,
                time: chrono::Utc::now(),
                data,
            };
            if out_tx.send(rec).await.is_err() {
                break;
            }
        }
    });
    let streams = AttachStreams {
        output: out_rx,
        stdin: Some(in_tx),
        encoder: OutputEncoder {
            multiplexed: true,
            timestamps: false,
        },
        detach_keys: None,
    };
    crate::stream::hijack(&mut req, streams, crate::stream::MULTIPLEXED_STREAM)
}

struct TestServer {
    path: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start_server(release: mpsc::Receiver<()>) -> TestServer {
    let release = std::sync::Arc::new(tokio::sync::Mutex::new(release));
    let routes = Router::new()
        .route("/_ping", get(system::ping))
        .route(
            "/slow",
            post(move || {
                let release = release.clone();
                async move {
                    // Like wait: headers now, body when released.
                    let body = futures_util::stream::once(async move {
                        release.lock().await.recv().await;
                        Ok::<_, Infallible>(Bytes::from_static(b"{\"StatusCode\":0}\n"))
                    });
                    (StatusCode::OK, Body::from_stream(body))
                }
            }),
        )
        .route("/attach", post(echo_attach));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_router(with_edge(routes), listener, async move {
        let _ = stop_rx.await;
    }));
    TestServer {
        path,
        stop: Some(stop_tx),
        task,
        _dir: dir,
    }
}

/// Sends a raw HTTP/1.1 request and reads until the end of the response head.
async fn raw_request(stream: &mut UnixStream, request: &str) -> String {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("response head in time")
            .expect("read");
        assert!(n > 0, "connection closed before the response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn served_over_a_unix_socket() {
    let (_release_tx, release_rx) = mpsc::channel(1);
    let mut server = start_server(release_rx).await;
    let mut conn = UnixStream::connect(&server.path).await.expect("connect");
    let head = raw_request(
        &mut conn,
        "GET /v1.51/_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // Go's canonical header names.
    assert!(head.contains("\r\nApi-Version: 1.51\r\n"), "{head}");
    assert!(head.contains("\r\nOstype: linux\r\n"), "{head}");
    assert!(
        head.contains("\r\nDocker-Experimental: false\r\n"),
        "{head}"
    );

    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    drop(conn);
    let done = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve returns after shutdown"
    );
}

#[tokio::test]
async fn streamed_bodies_send_headers_first() {
    let (release_tx, release_rx) = mpsc::channel(1);
    let server = start_server(release_rx).await;
    let mut conn = UnixStream::connect(&server.path).await.expect("connect");
    // The head must arrive while the body is still pending (docker run relies on it for wait).
    let head = raw_request(
        &mut conn,
        "POST /slow HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    release_tx.send(()).await.expect("release");
    let mut rest = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut rest))
        .await
        .expect("body in time")
        .expect("read body");
    assert!(
        String::from_utf8_lossy(&rest[..n]).contains("{\"StatusCode\":0}"),
        "{:?}",
        String::from_utf8_lossy(&rest[..n])
    );
}

#[tokio::test]
async fn hijacked_attach_streams_both_ways() {
    let (_release_tx, release_rx) = mpsc::channel(1);
    let server = start_server(release_rx).await;
    let mut conn = UnixStream::connect(&server.path).await.expect("connect");
    let head = raw_request(
        &mut conn,
        "POST /v1.51/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    .await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: tcp\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: Upgrade\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"),
        "{head}"
    );
    conn.write_all(b"hello").await.expect("write stdin");
    let mut frame = [0u8; 13];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut frame))
        .await
        .expect("echo in time")
        .expect("read frame");
    assert_eq!(&frame, b"\x01\x00\x00\x00\x00\x00\x00\x05hello");
    // End of stdin: the output ends and the server closes the connection.
    conn.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("read to end");
    assert!(rest.is_empty());
}
