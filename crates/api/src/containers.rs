//! Container endpoints: list, create, inspect, start/stop/restart/kill, wait, remove, logs and
//! the hijacked attach.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use berth_engine::types::{
    AttachOptions, Container, ListContainersOptions, LogOptions, WaitCondition, WaitResult,
};
use berth_engine::Engine;
use berth_reference::Digest;
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse, ContainerSummary};
use chrono::Utc;
use serde_json::json;
use tokio::sync::oneshot;

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::query::{parse_unix_timestamp, Query};
use crate::server::{
    check_json_content_type, empty, json_response, ok_json, parse_json, ApiVersion,
};
use crate::stream::{self, AttachStreams, OutputEncoder};

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/update", post(update))
        .route(
            "/containers/{id}/archive",
            get(archive_get).put(archive_put).head(archive_head),
        )
        .route("/containers/{id}/stats", get(crate::stats::stats))
        .route("/containers/prune", post(prune))
}

async fn pause(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    engine.pause_container(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn unpause(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    engine.unpause_container(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn rename(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let name = q.get("name").unwrap_or("");
    engine.rename_container(&id, name)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `X-Docker-Container-Path-Stat`: base64 of the path's JSON stat.
fn path_stat_header(s: &berth_engine::PathStat) -> Result<HeaderValue, ApiError> {
    use base64::Engine as _;
    let json = serde_json::json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": crate::convert::rfc3339_nano(&s.mtime),
        "linkTarget": s.link_target,
    });
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json.to_string()))
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn archive_path(q: &Query) -> Result<String, ApiError> {
    match q.non_empty("path") {
        Some(p) => Ok(p.to_string()),
        None => Err(ApiError::bad_request("path is required")),
    }
}

async fn archive_head(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let stat = engine.stat_container_path(&id, &archive_path(&q)?).await?;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut()
        .insert("x-docker-container-path-stat", path_stat_header(&stat)?);
    Ok(resp)
}

async fn archive_get(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let (stat, tar) = engine.read_container_path(&id, &archive_path(&q)?).await?;
    let mut resp = crate::images::tar_response(tar);
    resp.headers_mut()
        .insert("x-docker-container-path-stat", path_stat_header(&stat)?);
    Ok(resp)
}

async fn archive_put(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    q: Query,
    body: axum::body::Body,
) -> ApiResult {
    let path = archive_path(&q)?;
    let reader = crate::upload::blocking_reader(body);
    engine.write_container_path(&id, &path, reader).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /containers/{id}/update`: resources and the restart policy.
async fn update(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body.map_err(body_error)?;
    let v: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        parse_json(&body)?
    };
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
    let nano = match (num("NanoCpus"), num("CpuQuota"), num("CpuPeriod")) {
        (Some(n), _, _) => Some(n),
        (None, Some(q), p) if q > 0 => {
            Some(q * 1_000_000_000 / p.filter(|p| *p > 0).unwrap_or(100_000))
        }
        _ => None,
    };
    let restart_policy = v.get("RestartPolicy").and_then(|r| {
        let name = r.get("Name")?.as_str()?.to_string();
        Some(berth_engine::types::RestartPolicy {
            name,
            maximum_retry_count: r
                .get("MaximumRetryCount")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        })
    });
    let req = berth_engine::UpdateRequest {
        memory: num("Memory").filter(|m| *m != 0),
        memory_swap: num("MemorySwap").filter(|m| *m != 0),
        nano_cpus: nano.filter(|n| *n != 0),
        cpu_shares: num("CpuShares").filter(|n| *n != 0),
        pids_limit: num("PidsLimit").filter(|n| *n != 0),
        restart_policy,
    };
    engine.update_resources(&id, req).await?;
    ok_json(&serde_json::json!({ "Warnings": [] }))
}

async fn top(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let t = engine
        .top_container(&id, q.get("ps_args").unwrap_or(""))
        .await?;
    ok_json(&serde_json::json!({ "Titles": t.titles, "Processes": t.processes }))
}

async fn changes(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    let out: Vec<serde_json::Value> = engine
        .container_changes(&id)
        .await?
        .iter()
        .map(|c| {
            // The API's FilesystemChange kinds: 0 modified, 1 added, 2 deleted.
            let kind = match c.kind {
                berth_engine::ChangeKind::Modified => 0,
                berth_engine::ChangeKind::Added => 1,
                berth_engine::ChangeKind::Deleted => 2,
            };
            serde_json::json!({ "Path": c.path, "Kind": kind })
        })
        .collect();
    ok_json(&out)
}

async fn prune(State(engine): State<Engine>, q: Query) -> ApiResult {
    let filters = q.filters()?;
    let until = match filters.get("until").and_then(|v| v.first()) {
        Some(v) => Some(
            crate::query::parse_time_filter(v)
                .map_err(|e| ApiError::bad_request(format!("invalid filter 'until={v}': {e}")))?,
        ),
        None => None,
    };
    let report = engine.prune_containers(&filters, until).await?;
    ok_json(&serde_json::json!({
        "ContainersDeleted": report.deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
}

fn body_error(rej: BytesRejection) -> ApiError {
    ApiError::new(rej.status(), rej.body_text())
}

async fn list(State(engine): State<Engine>, q: Query) -> ApiResult {
    let opts = ListContainersOptions {
        all: q.bool("all"),
        limit: q.int("limit")?.unwrap_or(0),
        // NEEDS-ENGINE: SizeRw/SizeRootFs per container for `size=1` (docker ps -s).
        size: q.bool("size"),
        filters: q.filters()?,
    };
    let containers = engine.list_containers(&opts)?;
    let now = Utc::now();
    let mut resolved = HashMap::new();
    let out: Vec<ContainerSummary> = containers
        .iter()
        .map(|c| {
            let image = image_column(&engine, c, &mut resolved);
            convert::container::summary(c, image, now)
        })
        .collect();
    ok_json(&out)
}

/// What `docker ps` shows as IMAGE: the name the container was created from while that name
/// still resolves to the container's image, else the image ID (dockerd does the same, so a
/// re-tagged name does not misattribute old containers).
fn image_column(
    engine: &Engine,
    c: &Container,
    resolved: &mut HashMap<String, Option<Digest>>,
) -> String {
    let name = &c.config.image;
    if name.is_empty() || *name == c.image_id.to_string() {
        return c.image_id.to_string();
    }
    let id = resolved
        .entry(name.clone())
        .or_insert_with(|| engine.inspect_image(name).ok().map(|i| i.id));
    if id.as_ref() == Some(&c.image_id) {
        name.clone()
    } else {
        c.image_id.to_string()
    }
}

async fn create(
    State(engine): State<Engine>,
    version: ApiVersion,
    q: Query,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body.map_err(body_error)?;
    check_json_content_type(&headers, body.len())?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid JSON: got EOF while reading request body",
        ));
    }
    let wire: ContainerCreateBody = parse_json(&body)?;
    // The platform parameter exists from API 1.41 on; older clients never meant it.
    let platform = version
        .at_least("1.41")
        .then(|| q.non_empty("platform").map(str::to_string))
        .flatten();
    let create =
        convert::container::create_request(wire, q.get("name").map(str::to_string), platform)?;
    let resp = engine.create_container(create.request).await?;
    let mut warnings = resp.warnings;
    warnings.extend(create.warnings);
    Ok(json_response(
        StatusCode::CREATED,
        &ContainerCreateResponse {
            id: resp.id,
            warnings,
        },
    ))
}

async fn inspect(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    // NEEDS-ENGINE: SizeRw/SizeRootFs for `size=1` (docker inspect -s).
    let c = engine.inspect_container(&id)?;
    let mut v = convert::container::inspect(&c)?;
    let execs = engine.container_exec_ids(&c.id);
    if !execs.is_empty() {
        v["ExecIDs"] = json!(execs);
    }
    ok_json(&v)
}

async fn export(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    Ok(crate::images::tar_response(engine.export_container(&id)?))
}

async fn start(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    // A start body (HostConfig) was removed in API 1.24; a non-trivial one means a client
    // expecting settings to be applied, so refuse it as dockerd does. `{}`/`null` still pass.
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if len > 7 {
        return Err(ApiError::bad_request(
            "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24",
        ));
    }
    engine.start_container(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `t` and, from API 1.42 on, `signal`: the parameters of stop and restart.
fn stop_params(q: &Query, version: &ApiVersion) -> ApiResult<(Option<i64>, Option<String>)> {
    let timeout = q.int("t")?;
    let signal = version
        .at_least("1.42")
        .then(|| q.non_empty("signal").map(str::to_string))
        .flatten();
    Ok((timeout, signal))
}

async fn stop(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    q: Query,
) -> ApiResult {
    let (timeout, signal) = stop_params(&q, &version)?;
    engine.stop_container(&id, timeout, signal).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn restart(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    q: Query,
) -> ApiResult {
    let (timeout, signal) = stop_params(&q, &version)?;
    engine.restart_container(&id, timeout, signal).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn kill(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let signal = q.non_empty("signal").map(str::to_string);
    engine.kill_container(&id, signal).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn remove(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    engine
        .remove_container(&id, q.bool("force"), q.bool("v"))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// A TTY dimension (`h`, `w`): required, an unsigned 32-bit number (dockerd's `Uint32Value`).
pub(crate) fn tty_dimension(q: &Query, key: &str, what: &str) -> ApiResult<u32> {
    let v = q.get(key).unwrap_or("");
    v.parse::<u32>()
        .map_err(|_| ApiError::bad_request(format!("invalid resize {what} {v:?}: invalid syntax")))
}

/// Sets the window size of a TTY container's terminal (`docker run -it` does it right after the
/// start, and again at every SIGWINCH).
async fn resize(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let height = tty_dimension(&q, "h", "height")?;
    let width = tty_dimension(&q, "w", "width")?;
    engine.resize_container_tty(&id, height, width).await?;
    Ok(empty(StatusCode::OK))
}

/// Docker's wait `condition` parameter; empty means the default, `not-running`.
pub fn parse_wait_condition(v: &str) -> ApiResult<WaitCondition> {
    match v {
        "" | "not-running" => Ok(WaitCondition::NotRunning),
        "next-exit" => Ok(WaitCondition::NextExit),
        "removed" => Ok(WaitCondition::Removed),
        other => Err(ApiError::bad_request(format!(
            "invalid condition: {other:?}"
        ))),
    }
}

/// The body of a wait answer. A receiver closed without a result means the engine gave up
/// waiting (the daemon is shutting down): that is reported in `Error`, not as a fake exit code.
pub fn wait_body(result: Result<WaitResult, oneshot::error::RecvError>) -> serde_json::Value {
    match result {
        Ok(r) => json!({
            "StatusCode": r.status_code,
            "Error": r.error.map(|m| json!({ "Message": m })),
        }),
        Err(_) => json!({
            "StatusCode": -1,
            "Error": { "Message": "the daemon stopped waiting for the container" },
        }),
    }
}

async fn wait(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    q: Query,
) -> ApiResult {
    // Before 1.30 there was no condition and the answer came only at the end.
    let legacy = !version.at_least("1.30");
    let condition = if legacy {
        WaitCondition::NotRunning
    } else {
        parse_wait_condition(q.get("condition").unwrap_or(""))?
    };
    // Registering the waiter happens here, before any header is sent, so an unknown container
    // is still a proper 404.
    let rx = engine.wait_container(&id, condition).await?;
    if legacy {
        return ok_json(&wait_body(rx.await));
    }
    // Headers go out now, the body when the container exits: `docker run` waits for the
    // headers before it starts the container.
    let body = futures_util::stream::once(async move {
        let mut line = wait_body(rx.await).to_string().into_bytes();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `tail`: a line count or `all`. Like dockerd, anything that is not a non-negative number means
/// all lines rather than an error (the CLI passes the user's text through).
pub fn parse_tail(v: Option<&str>) -> Option<usize> {
    v.and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|&n| n >= 0)
        .and_then(|n| usize::try_from(n).ok())
}

fn time_param(q: &Query, key: &str) -> ApiResult<Option<chrono::DateTime<Utc>>> {
    match q.non_empty(key) {
        // `0` is what clients send for "no bound".
        None | Some("0") => Ok(None),
        Some(v) => parse_unix_timestamp(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key:?}: {e}"))),
    }
}

async fn logs(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    q: Query,
) -> ApiResult {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "must specify at least one of 'stdout' or 'stderr'",
        ));
    }
    let opts = LogOptions {
        stdout,
        stderr,
        follow: q.bool("follow"),
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
        tail: parse_tail(q.get("tail")),
    };
    let tty = engine.inspect_container(&id)?.config.tty;
    let records = engine.container_logs(&id, opts).await?;
    let encoder = OutputEncoder {
        multiplexed: !tty,
        timestamps: q.bool("timestamps"),
    };
    let mut resp = (StatusCode::OK, stream::records_body(records, encoder)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stream::content_type(tty, &version)),
    );
    Ok(resp)
}

async fn attach(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    q: Query,
    mut req: Request,
) -> ApiResult {
    let detach_keys = match q.non_empty("detachKeys") {
        Some(keys) => Some(stream::parse_detach_keys(keys).map_err(|_| {
            ApiError::bad_request(format!("Invalid detach keys ({keys}) provided"))
        })?),
        None => None,
    };
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        stream: q.bool("stream"),
        logs: q.bool("logs"),
    };
    // Attaching first means errors (unknown container) still get a proper status, and the
    // output subscription exists before the client can start the container.
    let attachment = engine.attach_container(&id, opts).await?;
    let tty = attachment.tty;
    let encoder = OutputEncoder {
        multiplexed: !tty,
        timestamps: false,
    };
    // dockerd hijacks whenever the client sent an Upgrade header.
    if !req.headers().contains_key(header::UPGRADE) {
        // Without an upgrade there is no way to read stdin: output only.
        drop(attachment.stdin);
        let mut resp = (
            StatusCode::OK,
            stream::records_body(attachment.output, encoder),
        )
            .into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(stream::RAW_STREAM),
        );
        return Ok(resp);
    }
    let streams = AttachStreams {
        output: attachment.output,
        stdin: attachment.stdin,
        encoder,
        // As in dockerd, the detach sequence is only watched for on TTYs.
        detach_keys: tty
            .then(|| detach_keys.unwrap_or_else(|| stream::DEFAULT_DETACH_KEYS.to_vec())),
    };
    let content_type = stream::content_type(tty, &version);
    Ok(stream::hijack(&mut req, streams, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_conditions() {
        assert_eq!(
            parse_wait_condition("").ok(),
            Some(WaitCondition::NotRunning)
        );
        assert_eq!(
            parse_wait_condition("not-running").ok(),
            Some(WaitCondition::NotRunning)
        );
        assert_eq!(
            parse_wait_condition("next-exit").ok(),
            Some(WaitCondition::NextExit)
        );
        assert_eq!(
            parse_wait_condition("removed").ok(),
            Some(WaitCondition::Removed)
        );
        let e = parse_wait_condition("bogus").err();
        assert_eq!(
            e.map(|e| (e.status(), e.message().to_string())),
            Some((
                StatusCode::BAD_REQUEST,
                "invalid condition: \"bogus\"".into()
            ))
        );
    }

    #[test]
    fn wait_bodies() {
        let ok = wait_body(Ok(WaitResult {
            status_code: 3,
            error: None,
        }));
        assert_eq!(ok.to_string(), r#"{"Error":null,"StatusCode":3}"#);
        let err = wait_body(Ok(WaitResult {
            status_code: 1,
            error: Some("boom".into()),
        }));
        assert_eq!(err["Error"]["Message"], "boom");
        assert_eq!(err["StatusCode"], 1);
    }

    #[test]
    fn tty_dimensions() {
        let q = Query::parse(Some("h=40&w=120&bad=-1&big=4294967296"));
        assert_eq!(tty_dimension(&q, "h", "height").ok(), Some(40));
        assert_eq!(tty_dimension(&q, "w", "width").ok(), Some(120));
        for key in ["bad", "big", "missing"] {
            let e = tty_dimension(&q, key, "height").err().map(|e| e.status());
            assert_eq!(e, Some(StatusCode::BAD_REQUEST), "{key}");
        }
    }

    #[test]
    fn tails() {
        assert_eq!(parse_tail(None), None);
        assert_eq!(parse_tail(Some("all")), None);
        assert_eq!(parse_tail(Some("")), None);
        assert_eq!(parse_tail(Some("10")), Some(10));
        assert_eq!(parse_tail(Some("0")), Some(0));
        assert_eq!(parse_tail(Some("-1")), None);
        assert_eq!(parse_tail(Some("abc")), None);
    }

    #[test]
    fn log_time_bounds() {
        let q = Query::parse(Some("since=1700000000.5&until=0"));
        let since = time_param(&q, "since").ok().flatten();
        assert_eq!(since.map(|t| t.timestamp_millis()), Some(1_700_000_000_500));
        assert_eq!(time_param(&q, "until").ok(), Some(None));
        assert_eq!(time_param(&q, "missing").ok(), Some(None));
        let bad = Query::parse(Some("since=yesterday"));
        assert_eq!(
            time_param(&bad, "since").err().map(|e| e.status()),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
