//! Image endpoints: list, inspect, history, tag, remove, `POST /images/create` (pull, or
//! import from the body or a URL), push, save (`/images/get`), load and search.
//!
//! Image names contain slashes (`registry:5000/team/app:v1`) and digests, so like dockerd's
//! router every image route is one wildcard (`/images/{*rest}`) dispatched on its suffix.

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::types::{ImportOptions, PullOptions};
use berth_engine::{ArchiveFormat, CommitOptions, Engine, TarStream};
use berth_reference::Reference;
use bollard_stubs::models::{ImageDeleteResponseItem, ImageHistoryResponseItem};
use futures_util::TryStreamExt;
use tokio_util::io::StreamReader;

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::progress::{progress_response, run_with_progress};
use crate::query::Query;
use crate::registry::{registry_auth, search};
use crate::server::{empty, json_response, ok_json, parse_json, ApiVersion};
use crate::stream::progress_status;

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route(
            "/images/{*rest}",
            get(get_dispatch).post(post_dispatch).delete(remove),
        )
        .route("/commit", post(commit))
}

/// `POST /commit`: the body, when present, is a container config whose set fields replace
/// the container's own in the new image.
async fn commit(State(engine): State<Engine>, q: Query, body: Bytes) -> ApiResult {
    let Some(container) = q.non_empty("container") else {
        return Err(ApiError::bad_request(
            "container name or ID is required (missing \"container\")",
        ));
    };
    let config = if body.iter().all(u8::is_ascii_whitespace) || body.as_ref() == b"null" {
        None
    } else {
        let wire: bollard_stubs::models::ContainerCreateBody = parse_json(&body)?;
        Some(
            convert::container::create_request(wire, None, None)?
                .request
                .config,
        )
    };
    let reference = q.non_empty("repo").map(|repo| match q.non_empty("tag") {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_string(),
    });
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        changes: q.all("changes").into_iter().map(str::to_string).collect(),
        config,
        // dockerd pauses unless told not to.
        pause: q.get("pause").is_none_or(crate::query::parse_bool),
        ..Default::default()
    };
    let id = engine.commit_container(container, opts).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id.to_string() }),
    ))
}

async fn get_dispatch(
    State(engine): State<Engine>,
    Path(rest): Path<String>,
    version: ApiVersion,
    headers: HeaderMap,
    q: Query,
) -> ApiResult {
    if rest == "json" {
        return list(&engine, &version, &q);
    }
    if rest == "search" {
        return search(&engine, &headers, &q).await;
    }
    if rest == "get" {
        let names: Vec<String> = q.all("names").into_iter().map(str::to_string).collect();
        return save(&engine, &names, &q);
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(&engine, &[name.to_string()], &q);
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
    headers: HeaderMap,
    q: Query,
    body: Body,
) -> ApiResult {
    if rest == "create" {
        return create(engine, version, &headers, q, body).await;
    }
    if rest == "prune" {
        let filters = q.filters()?;
        // dangling=false means "all unused images" (docker image prune -a).
        let all = filters
            .get("dangling")
            .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
        let (items, freed) = engine.prune_images(all)?;
        let deleted: Vec<ImageDeleteResponseItem> =
            items.iter().map(convert::image::delete_item).collect();
        return ok_json(&serde_json::json!({
            "ImagesDeleted": deleted,
            "SpaceReclaimed": freed,
        }));
    }
    if rest == "load" {
        return load(engine, body).await;
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return push(engine, name, &headers, &q).await;
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

async fn create(
    engine: Engine,
    version: ApiVersion,
    headers: &HeaderMap,
    q: Query,
    body: Body,
) -> ApiResult {
    // `platform` exists from API 1.32 on.
    let platform = version
        .at_least("1.32")
        .then(|| q.non_empty("platform").map(str::to_string))
        .flatten();
    if let Some(image) = q.non_empty("fromImage") {
        let opts = PullOptions {
            platform,
            auth: registry_auth(headers)?,
        };
        return pull(engine, image, q.get("tag").unwrap_or(""), opts).await;
    }
    let src = q.get("fromSrc").unwrap_or("");
    if src.is_empty() {
        return Err(ApiError::bad_request(
            "one of \"fromImage\" or \"fromSrc\" must be given",
        ));
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
    // Like dockerd, an import that fails before anything was written answers with a plain
    // error status; only then is the progress stream started.
    let id = if src == "-" {
        // The archive is streamed into the engine as it arrives, never buffered whole.
        let tar = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
        engine.import_image(tar, opts).await?
    } else {
        engine.import_url(src, opts).await?
    };
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

/// Pull answers with a progress stream once the image's manifest is found.
async fn pull(engine: Engine, image: &str, tag: &str, opts: PullOptions) -> ApiResult {
    // A malformed name is refused before the stream starts, with a real status.
    let reference = pull_reference(image, tag)?;
    run_with_progress(move |sink| async move {
        engine.pull_image(&reference, opts, sink).await.map(|_| ())
    })
    .await
}

async fn push(engine: Engine, name: &str, headers: &HeaderMap, q: &Query) -> ApiResult {
    let auth = registry_auth(headers)?;
    let name = name.to_string();
    let tag = q.non_empty("tag").map(str::to_string);
    run_with_progress(move |sink| async move {
        engine.push_image(&name, tag.as_deref(), &auth, sink).await
    })
    .await
}

async fn load(engine: Engine, body: Body) -> ApiResult {
    let tar = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    run_with_progress(move |sink| async move { engine.load_images(tar, sink).await.map(|_| ()) })
        .await
}

/// `docker save`: `format=oci` (API 1.48's `platform` aside) selects the bare OCI layout.
fn save(engine: &Engine, names: &[String], q: &Query) -> ApiResult {
    let format = match q.get("format").unwrap_or("") {
        "" | "docker" => ArchiveFormat::Docker,
        "oci" => ArchiveFormat::Oci,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid archive format {other:?}: use docker or oci"
            )))
        }
    };
    let stream = engine.save_images(names, format)?;
    Ok(tar_response(stream))
}

/// A tar stream response; an error mid-stream cuts the connection, as with dockerd.
pub(crate) fn tar_response(stream: TarStream) -> Response {
    let body = futures_util::stream::unfold(stream, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    });
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    resp
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
