//! System endpoints: `/_ping`, `/version`, `/info`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::Engine;

use crate::convert;
use crate::error::ApiResult;
use crate::server::ok_json;

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// The headers clients read from a ping: no caching (the CLI pings before each command), the
/// builder to use and the swarm state.
fn ping_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
}

pub(crate) async fn ping() -> Response {
    let mut resp = (StatusCode::OK, "OK").into_response();
    ping_headers(&mut resp);
    resp
}

pub(crate) async fn ping_head() -> Response {
    let mut resp = StatusCode::OK.into_response();
    ping_headers(&mut resp);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

async fn version(State(engine): State<Engine>) -> ApiResult {
    ok_json(&convert::system::version(&engine.version()))
}

async fn info(State(engine): State<Engine>) -> ApiResult {
    // Reading /proc and statfs is blocking work; keep it off the async workers.
    let info = tokio::task::spawn_blocking(move || engine.info())
        .await
        .map_err(|e| crate::error::ApiError::internal(format!("collect system info: {e}")))?;
    ok_json(&convert::system::info(&info))
}
