//! Exec endpoints: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked like
//! attach), `POST /exec/{id}/resize` and `GET /exec/{id}/json`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_engine::types::{LogRecord, StdStream};
use berth_engine::{Engine, ExecConfig, ExecInspect};
use bollard_stubs::models::{ExecConfig as WireExecConfig, ExecStartConfig};
use serde_json::json;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::server::{
    check_json_content_type, empty, json_body, json_response, ok_json, parse_json, ApiVersion,
};
use crate::stream::{self, AttachStreams, OutputEncoder};

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// The wire config in engine terms, with dockerd's checks.
fn exec_config(wire: WireExecConfig) -> ApiResult<ExecConfig> {
    let detach_keys = wire.detach_keys.unwrap_or_default();
    if !detach_keys.is_empty() {
        stream::parse_detach_keys(&detach_keys).map_err(|_| {
            ApiError::bad_request(format!("Invalid detach keys ({detach_keys}) provided"))
        })?;
    }
    let cmd = wire.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    Ok(ExecConfig {
        cmd,
        env: wire.env.unwrap_or_default(),
        working_dir: wire.working_dir.unwrap_or_default(),
        user: wire.user.unwrap_or_default(),
        privileged: wire.privileged.unwrap_or(false),
        tty: wire.tty.unwrap_or(false),
        attach_stdin: wire.attach_stdin.unwrap_or(false),
        attach_stdout: wire.attach_stdout.unwrap_or(false),
        attach_stderr: wire.attach_stderr.unwrap_or(false),
        detach_keys,
        console_size: console_size(wire.console_size.as_deref())?,
    })
}

/// `ConsoleSize`: `[height, width]`, both or neither.
fn console_size(v: Option<&[usize]>) -> ApiResult<Option<(u32, u32)>> {
    match v {
        None | Some([]) => Ok(None),
        Some([0, 0]) => Ok(None),
        Some([h, w]) => Ok(Some((
            u32::try_from(*h).unwrap_or(u32::MAX),
            u32::try_from(*w).unwrap_or(u32::MAX),
        ))),
        Some(_) => Err(ApiError::bad_request(
            "invalid console size: expected [height, width]",
        )),
    }
}

async fn create(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let wire: WireExecConfig = json_body(&headers, body)?;
    let config = exec_config(wire)?;
    let exec_id = engine.create_exec(&id, config)?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": exec_id }),
    ))
}

async fn start(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    version: ApiVersion,
    mut req: Request,
) -> ApiResult {
    // The request itself is needed for the upgrade, so its body is read by hand.
    let body = std::mem::replace(req.body_mut(), axum::body::Body::empty());
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("read request body: {e}")))?;
    let headers = req.headers().clone();
    let start: ExecStartConfig = if body.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        check_json_content_type(&headers, body.len())?;
        parse_json(&body)?
    };
    // An unknown exec is a plain 404, before anything is hijacked (as in dockerd).
    let info = engine.inspect_exec(&id)?;
    let size = console_size(start.console_size.as_deref())?;
    let detach = start.detach.unwrap_or(false);
    let tty = info.config.tty;
    if detach {
        engine.start_exec(&id, false).await?;
        if let Some((h, w)) = size {
            let _ = engine.resize_exec(&id, h, w).await;
        }
        return Ok(empty(StatusCode::OK));
    }
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let (output, stdin) = match engine.start_exec(&id, true).await {
        Ok(a) => {
            if let Some((h, w)) = size {
                let _ = engine.resize_exec(&id, h, w).await;
            }
            (a.output, a.stdin)
        }
        // Like dockerd, a failure to start (after the exec was found) is told on the stream's
        // stdout; the client then reads the exit code (126/127) from `exec inspect`.
        Err(e) if upgrade && e.kind() != berth_engine::ErrorKind::Conflict => {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(LogRecord {
                stream: StdStream::Stdout,
                time: chrono::Utc::now(),
                data: Bytes::from(format!("{e}\r\n")),
            });
            (rx, None)
        }
        Err(e) => return Err(e.into()),
    };
    let encoder = OutputEncoder {
        multiplexed: !tty,
        timestamps: false,
    };
    let content_type = stream::content_type(tty, &version);
    if !upgrade {
        let mut resp = (StatusCode::OK, stream::records_body(output, encoder)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return Ok(resp);
    }
    let detach_keys = if info.config.detach_keys.is_empty() {
        stream::DEFAULT_DETACH_KEYS.to_vec()
    } else {
        stream::parse_detach_keys(&info.config.detach_keys).unwrap_or_default()
    };
    let streams = AttachStreams {
        output,
        stdin,
        encoder,
        detach_keys: tty.then_some(detach_keys),
    };
    Ok(stream::hijack(&mut req, streams, content_type))
}

async fn resize(State(engine): State<Engine>, Path(id): Path<String>, q: Query) -> ApiResult {
    let height = crate::containers::tty_dimension(&q, "h", "height")?;
    let width = crate::containers::tty_dimension(&q, "w", "width")?;
    engine.resize_exec(&id, height, width).await?;
    Ok(empty(StatusCode::OK))
}

async fn inspect(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    let info = engine.inspect_exec(&id)?;
    ok_json(&inspect_json(&info))
}

/// dockerd's `ExecInspect`: `ExitCode` is null until the process has exited.
fn inspect_json(e: &ExecInspect) -> serde_json::Value {
    let (entrypoint, arguments) = match e.config.cmd.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.config.tty,
            "entrypoint": entrypoint,
            "arguments": arguments,
            "privileged": e.config.privileged,
            "user": e.config.user,
        },
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "Pid": e.pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked_like_dockerd() {
        let no_cmd = exec_config(WireExecConfig::default()).err();
        assert_eq!(
            no_cmd.map(|e| (e.status(), e.message().to_string())),
            Some((StatusCode::BAD_REQUEST, "No exec command specified".into()))
        );
        let bad_keys = exec_config(WireExecConfig {
            cmd: Some(vec!["true".into()]),
            detach_keys: Some("ctrl-".into()),
            ..Default::default()
        })
        .err();
        assert_eq!(
            bad_keys.map(|e| e.message().to_string()),
            Some("Invalid detach keys (ctrl-) provided".into())
        );
        let ok = exec_config(WireExecConfig {
            cmd: Some(vec!["sh".into(), "-c".into(), "exit 3".into()]),
            tty: Some(true),
            console_size: Some(vec![40, 120]),
            ..Default::default()
        });
        let ok = ok.ok();
        assert_eq!(ok.as_ref().map(|c| c.console_size), Some(Some((40, 120))));
        assert!(console_size(Some(&[1])).is_err());
    }

    #[test]
    fn inspect_shows_null_exit_code_while_running() {
        let e = ExecInspect {
            id: "e1".into(),
            container_id: "c1".into(),
            config: ExecConfig {
                cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
                ..Default::default()
            },
            running: true,
            exit_code: None,
            pid: 42,
        };
        let v = inspect_json(&e);
        assert!(v["ExitCode"].is_null());
        assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
        assert_eq!(v["ProcessConfig"]["arguments"], json!(["-c", "exit 3"]));
    }
}
