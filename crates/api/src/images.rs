//! Image endpoints: list, inspect, history, tag, remove, and `POST /images/create` (import from
//! the request body; pull is a stub until the engine can pull).
//!
//! Image names contain slashes (`registry:5000/team/app:v1`) and digests, so like dockerd's
//! router every image route is one wildcard (`/images/{*rest}`) dispatched on its suffix.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::types::ImportOptions;
use berth_engine::Engine;
use berth_reference::Reference;
use bollard_stubs::models::{ImageDeleteResponseItem, ImageHistoryResponseItem};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::server::{empty, ok_json, ApiVersion};
use crate::stream::{progress_error, progress_status};

pub(crate) fn routes() -> Router<Engine> {
    Router::new().route(
        "/images/{*rest}",
        get(get_dispatch).post(post_dispatch).delete(remove),
    )
}

async fn get_dispatch(
    State(engine): State<Engine>,
    Path(rest): Path<String>,
    version: ApiVersion,
    q: Query,
) -> ApiResult {
    if rest == "json" {
        return list(&engine, &version, &q);
    }
    if let Some(name) = rest.strip_suffix("/json") {
        let img = engine.inspect_image(name)?;
        return ok_json(&convert::image::inspect(&img, &version)?);
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let items: Vec<ImageHistoryResponseItem> = engine
            .image_history(name)?
            .iter()
            .map(convert::image::history_item)
            .collect();
        return ok_json(&items);
    }
    Err(ApiError::page_not_found())
}

async fn post_dispatch(
    State(engine): State<Engine>,
    Path(rest): Path<String>,
    version: ApiVersion,
    q: Query,
    body: Body,
) -> ApiResult {
    if rest == "create" {
        return create(engine, version, q, body).await;
    }
    if let Some(name) = rest.strip_suffix("/tag") {
        return tag(&engine, name, &q);
    }
    Err(ApiError::page_not_found())
}

fn list(engine: &Engine, version: &ApiVersion, q: &Query) -> ApiResult {
    let images = engine.list_images(q.bool("all"), &q.filters()?)?;
    let out = images
        .iter()
        .map(|img| convert::image::summary(img, version))
        .collect::<Result<Vec<_>, _>>()?;
    ok_json(&out)
}

fn tag(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let Some(repo) = q.non_empty("repo") else {
        return Err(ApiError::bad_request(
            "repository name must not be empty (missing \"repo\")",
        ));
    };
    engine.tag_image(name, repo, q.non_empty("tag"))?;
    Ok(empty(StatusCode::CREATED))
}

async fn remove(State(engine): State<Engine>, Path(name): Path<String>, q: Query) -> ApiResult {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("image name cannot be blank"));
    }
    let items: Vec<ImageDeleteResponseItem> = engine
        .remove_image(&name, q.bool("force"), q.bool("noprune"))?
        .iter()
        .map(convert::image::delete_item)
        .collect();
    ok_json(&items)
}

/// A `200 application/json` response whose body is a progress stream (one JSON object a line).
fn progress_response(body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn create(engine: Engine, version: ApiVersion, q: Query, body: Body) -> ApiResult {
    // `platform` exists from API 1.32 on.
    let platform = version
        .at_least("1.32")
        .then(|| q.non_empty("platform").map(str::to_string))
        .flatten();
    if let Some(image) = q.non_empty("fromImage") {
        return pull(image, q.get("tag").unwrap_or(""), platform);
    }
    let src = q.get("fromSrc").unwrap_or("");
    match src {
        "-" => {}
        "" => {
            return Err(ApiError::bad_request(
                "one of \"fromImage\" or \"fromSrc\" must be given",
            ))
        }
        _ => {
            return Err(ApiError::not_implemented(
                "importing from a URL is not supported; send the archive in the request body with fromSrc=-",
            ))
        }
    }
    let reference = q.non_empty("repo").map(|repo| match q.non_empty("tag") {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_string(),
    });
    let opts = ImportOptions {
        reference,
        changes: q.all("changes").into_iter().map(str::to_string).collect(),
        message: q
            .non_empty("message")
            .map(str::to_string)
            .unwrap_or_else(|| format!("Imported from {src}")),
        platform,
    };
    // The archive is streamed into the engine as it arrives, never buffered whole.
    let tar = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    // Like dockerd, an import that fails before anything was written answers with a plain
    // error status; only then is the progress stream started.
    let id = engine.import_image(tar, opts).await?;
    Ok(progress_response(Body::from(progress_status(
        &id.to_string(),
    ))))
}

/// The image a pull asks for, in familiar form (`alpine:latest`): the CLI sends the full name
/// in `fromImage` and the tag, or a digest, in `tag`.
fn pull_reference(image: &str, tag: &str) -> ApiResult<String> {
    // "pull -a" may send a trailing colon.
    let image = image.trim_end_matches(':');
    let full = if tag.is_empty() {
        image.to_string()
    } else if tag.contains(':') {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    Reference::parse_normalized(&full)
        .map(|r| r.familiar_string())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Pull answers with a progress stream. The engine cannot pull yet, so the stream carries a
/// single error; the producer task is where `Engine::pull_image` will report its progress.
fn pull(image: &str, tag: &str, platform: Option<String>) -> ApiResult {
    // A malformed name is refused before the stream starts, with a real status.
    let reference = pull_reference(image, tag)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        // NEEDS-ENGINE: `Engine::pull_image(reference, platform, progress: mpsc::Sender<..>)`;
        // its progress lines go to `tx`, an error becomes `progress_error`.
        let _ = platform;
        let msg = format!("cannot pull {reference}: pulling images is not supported yet");
        let _ = tx.send(progress_error(&msg)).await;
    });
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok::<_, Infallible>(line), rx))
    });
    Ok(progress_response(Body::from_stream(lines)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            pull_reference("docker.io/library/busybox", "latest").ok(),
            Some("busybox:latest".to_string())
        );
        assert_eq!(
            pull_reference("busybox:", "").ok(),
            Some("busybox".to_string())
        );
        assert_eq!(
            pull_reference("me/app", &d).ok(),
            Some(format!("me/app@{d}"))
        );
        let bad = pull_reference("not a name!", "").err().map(|e| e.status());
        assert_eq!(bad, Some(StatusCode::BAD_REQUEST));
    }
}
