//! `GET /containers/{id}/stats`: Docker's stats JSON, one sample (`stream=false`) or one a
//! second (`stream=true`), each with the previous one as `precpu_stats`.
//!
//! `stream=false` takes its two samples 100 ms apart (dockerd waits a full collection cycle),
//! enough for a CPU percentage and short enough for `docker stats --no-stream` over many
//! containers; `one-shot=true` answers with a single sample and empty `precpu_stats`.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::{Engine, Stats};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::convert::rfc3339_nano;
use crate::error::ApiResult;
use crate::query::Query;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn cpu(s: &Stats) -> Value {
    let u = &s.usage;
    let mut usage = json!({
        "total_usage": u.cpu_total_ns,
        "usage_in_kernelmode": u.cpu_kernel_ns,
        "usage_in_usermode": u.cpu_user_ns,
    });
    if !u.percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(u.percpu_ns);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn empty_cpu() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// A sample as dockerd writes it; `pre` is the previous sample, when there is one.
pub(crate) fn to_wire(s: &Stats, pre: Option<&Stats>) -> Value {
    let u = &s.usage;
    let memory = if s.running {
        json!({
            "usage": u.memory_usage,
            "max_usage": u.memory_max_usage,
            "stats": u.memory_stats,
            "limit": u.memory_limit,
        })
    } else {
        json!({})
    };
    json!({
        "name": format!("/{}", s.name),
        "id": s.id,
        "read": if s.running { rfc3339_nano(&s.read) } else { ZERO_TIME.to_string() },
        "preread": pre.filter(|_| s.running).map(|p| rfc3339_nano(&p.read)).unwrap_or_else(|| ZERO_TIME.to_string()),
        "pids_stats": if s.running {
            let mut p = json!({"current": u.pids_current});
            if u.pids_limit > 0 {
                p["limit"] = json!(u.pids_limit);
            }
            p
        } else {
            json!({})
        },
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": if s.running { cpu(s) } else { empty_cpu() },
        "precpu_stats": pre.filter(|_| s.running).map(cpu).unwrap_or_else(empty_cpu),
        "memory_stats": memory,
    })
}

fn json_line(v: &Value) -> Bytes {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    Bytes::from(b)
}

pub(crate) async fn stats(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult {
    let stream = q.get("stream").is_none_or(crate::query::parse_bool);
    let one_shot = q.bool("one-shot");
    let first = engine.container_stats(&id).await?;
    if !stream {
        let body = if one_shot || !first.running {
            to_wire(&first, None)
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let second = engine.container_stats(&id).await?;
            to_wire(&second, Some(&first))
        };
        let mut resp = (StatusCode::OK, json_line(&body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    // A sample a second until the client goes away or the container is removed.
    let state = (engine, id, None::<Stats>, Some(first));
    let body = futures_util::stream::unfold(state, |(engine, id, pre, next)| async move {
        let cur = match next {
            Some(s) => s,
            None => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                engine.container_stats(&id).await.ok()?
            }
        };
        let line = json_line(&to_wire(&cur, pre.as_ref()));
        Some((Ok::<_, Infallible>(line), (engine, id, Some(cur), None)))
    });
    let mut resp: Response = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
