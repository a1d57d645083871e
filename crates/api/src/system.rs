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
        .route("/events", get(events))
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

/// `GET /events`: past events from `since` (the engine's ring), then live ones, until `until`
/// when given; each as Docker's JSON message.
pub(crate) async fn events(
    axum::extract::State(engine): axum::extract::State<Engine>,
    q: crate::query::Query,
) -> ApiResult {
    use std::convert::Infallible;

    use berth_engine::events::{event_matches, Event};

    let time = |key: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::ApiError> {
        match q.non_empty(key) {
            None | Some("0") => Ok(None),
            Some(v) => crate::query::parse_time_filter(v).map(Some).map_err(|e| {
                crate::ApiError::bad_request(format!("invalid value for {key:?}: {e}"))
            }),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    let filters = q.filters()?;
    for key in filters.keys() {
        if !matches!(
            key.as_str(),
            "type" | "event" | "container" | "image" | "volume" | "label" | "network" | "daemon"
        ) {
            return Err(crate::ApiError::bad_request(format!(
                "invalid filter '{key}'"
            )));
        }
    }
    let (past, rx) = engine.subscribe_events(since);
    let wire = |e: &Event| -> axum::body::Bytes {
        let nanos = e.time.timestamp_nanos_opt().unwrap_or(0);
        let mut v = serde_json::json!({
            "Type": e.kind,
            "Action": e.action,
            "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
            "scope": "local",
            "time": e.time.timestamp(),
            "timeNano": nanos,
        });
        // The legacy fields dockerd still sends for container and image events.
        if e.kind == "container" || e.kind == "image" {
            v["status"] = serde_json::json!(e.action);
            v["id"] = serde_json::json!(e.actor_id);
            if let Some(img) = e.attributes.get("image") {
                v["from"] = serde_json::json!(img);
            }
        }
        let mut b = v.to_string().into_bytes();
        b.push(b'\n');
        axum::body::Bytes::from(b)
    };
    let keep = move |e: &Event| event_matches(e, &filters) && until.is_none_or(|u| e.time <= u);
    let head: Vec<axum::body::Bytes> = past.iter().filter(|e| keep(e)).map(&wire).collect();
    let deadline = until.map(|u| {
        let left = (u - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    let live = futures_util::stream::unfold(rx, move |mut rx| {
        let keep = keep.clone();
        async move {
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => return None,
                    },
                    None => rx.recv().await,
                };
                match next {
                    Ok(e) if keep(&e) => return Some((wire(&e), rx)),
                    Ok(_) => continue,
                    // A slow reader missed some; go on with what comes next.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        }
    });
    use futures_util::StreamExt;
    let body = futures_util::stream::iter(head)
        .chain(live)
        .map(Ok::<_, Infallible>);
    let mut resp = (StatusCode::OK, axum::body::Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
