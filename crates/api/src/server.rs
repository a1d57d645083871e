//! The HTTP edge: the Unix-socket listener, the router, API version negotiation, the headers
//! dockerd puts on every response, and per-request tracing.
//!
//! Every route is served both bare (`/containers/json`) and under a version prefix
//! (`/v1.51/containers/json`). The prefix is handled before routing: [`edge`] checks the version,
//! stores it in the request as an [`ApiVersion`] and strips it from the path, so each route is
//! registered once.

use std::cmp::Ordering;
use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_engine::Engine;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{ApiError, ApiResult};
use crate::{build, containers, images, registry, system, volumes, API_VERSION, MIN_API_VERSION};

/// How long connections get to finish their requests after shutdown is signalled. Streams that
/// never end on their own (`logs -f`, hijacked attach) are cut after this.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The API version a request was made with (the `/v1.xx` prefix, or ours when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    /// The highest version we serve, used for requests without a prefix.
    pub fn current() -> Self {
        Self(API_VERSION.to_string())
    }

    pub fn new(v: impl Into<String>) -> Self {
        Self(v.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the request's version is `v` or later (behaviour gates like dockerd's
    /// `versions.GreaterThanOrEqualTo`).
    pub fn at_least(&self, v: &str) -> bool {
        compare_versions(&self.0, v) != Ordering::Less
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .cloned()
            .unwrap_or_else(ApiVersion::current))
    }
}

/// Compares dotted versions numerically, part by part, missing or non-numeric parts counting
/// as 0 (dockerd's `versions.compare`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let pa: Vec<&str> = a.split('.').collect();
    let pb: Vec<&str> = b.split('.').collect();
    for i in 0..pa.len().max(pb.len()) {
        let x: u64 = pa.get(i).and_then(|s| s.parse().ok()).unwrap_or(0);
        let y: u64 = pb.get(i).and_then(|s| s.parse().ok()).unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// Splits `/v1.51/containers/json` into `("1.51", "/containers/json")`. Like dockerd's
/// `/v{version:[0-9.]+}` matcher; anything else is not a version prefix.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    if version.is_empty() || !tail.starts_with('/') {
        return None;
    }
    Some((version, tail))
}

/// Accepts a client's version or explains, in dockerd's words, why not.
pub fn negotiate(version: &str) -> Result<ApiVersion, ApiError> {
    if compare_versions(version, MIN_API_VERSION) == Ordering::Less {
        let err = ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version"
        ));
        // Clients that old predate JSON errors; dockerd answers them in plain text.
        return Err(err.into_plain_text());
    }
    if compare_versions(version, API_VERSION) == Ordering::Greater {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok(ApiVersion::new(version))
}

/// The headers dockerd sets on every response.
fn add_daemon_headers(headers: &mut HeaderMap) {
    headers.insert("api-version", HeaderValue::from_static(API_VERSION));
    headers.insert("docker-experimental", HeaderValue::from_static("false"));
    headers.insert("ostype", HeaderValue::from_static("linux"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
}

/// Runs before routing: version negotiation, path rewriting, daemon headers, tracing.
async fn edge(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let span = tracing::debug_span!(
        "api",
        method = %req.method(),
        path = %req.uri().path(),
    );
    async move {
        let mut resp = match prepare(&mut req) {
            Ok(()) => next.run(req).await,
            Err(e) => e.into_response(),
        };
        add_daemon_headers(resp.headers_mut());
        tracing::debug!(
            status = resp.status().as_u16(),
            duration_ms = start.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        resp
    }
    .instrument(span)
    .await
}

/// Negotiates the version of a request and strips its prefix from the URI.
fn prepare(req: &mut Request) -> Result<(), ApiError> {
    let Some((version, rest)) = split_version(req.uri().path()) else {
        req.extensions_mut().insert(ApiVersion::current());
        return Ok(());
    };
    let version = negotiate(version)?;
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let uri = Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| ApiError::bad_request(format!("invalid request path: {e}")))?;
    *req.uri_mut() = uri;
    req.extensions_mut().insert(version);
    Ok(())
}

async fn not_found() -> ApiError {
    ApiError::page_not_found()
}

/// Wraps resource routes with the edge: unknown paths and methods answer dockerd's 404, and the
/// version prefix is handled before the inner router sees the path.
pub(crate) fn with_edge(inner: Router) -> Router {
    let inner = inner
        .fallback(not_found)
        .method_not_allowed_fallback(not_found);
    // The outer router has no routes: every request reaches the fallback through the edge
    // layer, which can therefore rewrite the path before the inner router matches it.
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(edge))
}

/// The complete API as an axum router (the daemon serves it; tests call it directly).
pub fn router(engine: Engine) -> Router {
    let routes = Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(crate::exec::routes())
        .merge(crate::networks::routes())
        .merge(images::routes())
        .merge(registry::routes())
        .merge(build::routes())
        .merge(volumes::routes())
        .with_state(engine);
    with_edge(routes)
}

/// Serves the API on a Unix socket until `shutdown` completes, then lets open connections
/// finish their current request for a short grace period.
pub async fn serve(
    engine: Engine,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(router(engine), listener, shutdown).await
}

/// [`serve`] for any router (used by tests with routes that need no engine).
pub(crate) async fn serve_router(
    app: Router,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(app.clone(), stream, stop_rx.clone()));
                }
                Err(e) if is_transient_accept_error(&e) => {
                    // Out of descriptors or memory: back off instead of spinning; the
                    // listener stays usable once connections close.
                    tracing::warn!(error = %e, "accept on API socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "API socket failed");
                    drain(conns, stop_tx).await;
                    return Err(e);
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    drain(conns, stop_tx).await;
    Ok(())
}

/// Asks every connection to finish its current request, then cuts the ones still busy after
/// the grace period.
async fn drain(mut conns: JoinSet<()>, stop_tx: watch::Sender<bool>) {
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = conns.len(),
            "closing API connections still busy at shutdown"
        );
        conns.abort_all();
    }
}

/// Accept errors that pass: a connection aborted before it was accepted, or exhausted
/// descriptors/memory (EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux, the only
/// platform berth runs on).
fn is_transient_accept_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
            | std::io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(12 | 23 | 24 | 105))
}

/// One HTTP/1.1 connection, with upgrades enabled for hijacked attach streams.
async fn serve_connection(
    app: Router,
    stream: tokio::net::UnixStream,
    mut stop: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Go's net/http writes canonical header names (`Api-Version`, `Ostype`); some clients
    // compare them case-sensitively, so write them the same way.
    builder.title_case_headers(true);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "API connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A JSON response as dockerd writes it (Go's encoder ends the document with a newline).
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            let mut resp = (status, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "encode response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to encode response",
            )
                .into_response()
        }
    }
}

/// `200 OK` with a JSON body.
pub(crate) fn ok_json<T: Serialize + ?Sized>(body: &T) -> ApiResult {
    Ok(json_response(StatusCode::OK, body))
}

/// An empty response with the given status (204, 201, ...).
pub(crate) fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

/// dockerd's `CheckForJSON`: a body must be declared as JSON; no body needs no declaration.
pub(crate) fn check_json_content_type(headers: &HeaderMap, body_len: usize) -> ApiResult<()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.is_empty() && body_len == 0 {
        return Ok(());
    }
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )))
    }
}

/// Decodes a JSON request body; unknown fields are ignored (clients send fields of newer or
/// older API versions), malformed JSON is a 400 that says where.
/// A JSON request body as an extractor delivers it: its read error, its content type and its
/// JSON are checked in that order, each with dockerd's status.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<T> {
    let body = body.map_err(|rej| ApiError::new(rej.status(), rej.body_text()))?;
    check_json_content_type(headers, body.len())?;
    parse_json(&body)
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests;
