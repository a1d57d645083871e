//! Docker's JSON progress stream (pull, push, load, import): one JSON object a line, with
//! `status`/`id`/`progressDetail`/`progress`, free text in `stream`, results in `aux`, and a
//! failure after the stream started as `errorDetail` + `error`.
//!
//! The response starts only when the operation reports its first message: an operation that
//! fails before (an unknown image, refused credentials) is answered with a plain error status,
//! as dockerd does, so clients print "Error response from daemon: …" with the right code.

use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::types::{Progress, ProgressDetail};
use berth_engine::{EngineError, ProgressSink};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiResult;
use crate::stream::progress_error;

/// Width of the text bar in the legacy `progress` field, as dockerd draws it.
const BAR_WIDTH: u64 = 50;

/// A `200 application/json` response whose body is a progress stream.
pub(crate) fn progress_response(body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Runs `op` with a progress sink and answers with its stream (see the module docs).
pub(crate) async fn run_with_progress<F, Fut>(op: F) -> ApiResult
where
    F: FnOnce(ProgressSink) -> Fut,
    Fut: Future<Output = Result<(), EngineError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Progress>(64);
    let (done_tx, done_rx) = oneshot::channel();
    let fut = op(ProgressSink::new(tx));
    tokio::spawn(async move {
        let _ = done_tx.send(fut.await);
    });
    // Every sender is gone once the operation is over, so this ends either way.
    let Some(first) = rx.recv().await else {
        return match done_rx.await {
            Ok(Err(e)) => Err(e.into()),
            _ => Ok(progress_response(Body::empty())),
        };
    };
    enum State {
        Messages(
            mpsc::Receiver<Progress>,
            oneshot::Receiver<Result<(), EngineError>>,
        ),
        Done,
    }
    let head = futures_util::stream::once(async move { Ok::<_, Infallible>(encode(&first)) });
    let rest = futures_util::stream::unfold(State::Messages(rx, done_rx), |state| async move {
        let State::Messages(mut rx, done) = state else {
            return None;
        };
        match rx.recv().await {
            Some(p) => Some((Ok(encode(&p)), State::Messages(rx, done))),
            None => match done.await {
                Ok(Err(e)) => Some((Ok(progress_error(e.message())), State::Done)),
                Ok(Ok(())) => None,
                Err(_) => Some((
                    Ok(progress_error("the operation ended unexpectedly")),
                    State::Done,
                )),
            },
        }
    });
    use futures_util::StreamExt;
    Ok(progress_response(Body::from_stream(head.chain(rest))))
}

/// One message as a JSON line.
pub(crate) fn encode(p: &Progress) -> Bytes {
    let v = match p {
        Progress::Status { id, status, detail } => {
            let mut m = serde_json::Map::new();
            m.insert("status".into(), Value::String(status.clone()));
            if let Some(d) = detail {
                let mut pd = serde_json::Map::new();
                pd.insert("current".into(), json!(d.current));
                if let Some(t) = d.total {
                    pd.insert("total".into(), json!(t));
                }
                m.insert("progressDetail".into(), Value::Object(pd));
                m.insert("progress".into(), Value::String(bar(d)));
            } else if id.is_some() {
                m.insert("progressDetail".into(), json!({}));
            }
            if let Some(id) = id {
                m.insert("id".into(), Value::String(id.clone()));
            }
            Value::Object(m)
        }
        Progress::Stream(text) => json!({ "stream": text }),
        Progress::Aux(v) => json!({ "aux": v }),
    };
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

/// dockerd's text bar: `[=====>      ]  1.05MB/2.1MB`, or just the count without a total.
fn bar(d: &ProgressDetail) -> String {
    let Some(total) = d.total.filter(|t| *t > 0) else {
        return human(d.current);
    };
    let done = (d.current.min(total) * BAR_WIDTH / total) as usize;
    let width = BAR_WIDTH as usize;
    let mut s = String::with_capacity(width + 24);
    s.push('[');
    if done >= width {
        s.push_str(&"=".repeat(width));
    } else {
        s.push_str(&"=".repeat(done));
        s.push('>');
        s.push_str(&" ".repeat(width - done - 1));
    }
    s.push_str(&format!("] {:>8}/{}", human(d.current), human(total)));
    s
}

/// go-units' `HumanSize`: decimal units, four significant digits.
fn human(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: Progress) -> Value {
        serde_json::from_slice(&encode(&p)).expect("valid JSON")
    }

    #[test]
    fn status_lines_as_dockerd() {
        assert_eq!(
            line(Progress::Status {
                id: Some("latest".into()),
                status: "Pulling from library/busybox".into(),
                detail: None
            }),
            json!({"status": "Pulling from library/busybox", "progressDetail": {}, "id": "latest"})
        );
        assert_eq!(
            line(Progress::Status {
                id: None,
                status: "Digest: sha256:x".into(),
                detail: None
            }),
            json!({"status": "Digest: sha256:x"})
        );
        let v = line(Progress::Status {
            id: Some("abc".into()),
            status: "Downloading".into(),
            detail: Some(ProgressDetail {
                current: 1_050_000,
                total: Some(2_100_000),
            }),
        });
        assert_eq!(
            v["progressDetail"],
            json!({"current": 1_050_000, "total": 2_100_000})
        );
        let bar = v["progress"].as_str().unwrap_or_default();
        assert!(bar.starts_with("[=========================>"), "{bar}");
        assert!(bar.ends_with("1.05MB/2.1MB"), "{bar}");
        assert_eq!(
            line(Progress::Stream("Loaded image: busybox:latest\n".into())),
            json!({"stream": "Loaded image: busybox:latest\n"})
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(1000), "1kB");
        assert_eq!(human(2_155_000), "2.155MB");
        assert_eq!(human(123_456_789), "123.5MB");
    }

    #[tokio::test]
    async fn early_failures_are_plain_errors() {
        let r = run_with_progress(|_sink| async {
            Err(EngineError::not_found("manifest for x:y not found"))
        })
        .await;
        let status = r.err().map(|e| e.status());
        assert_eq!(status, Some(StatusCode::NOT_FOUND));
    }

    #[tokio::test]
    async fn late_failures_end_the_stream() {
        use http_body_util::BodyExt;
        let r = run_with_progress(|sink| async move {
            sink.status("", "Pulling").await;
            Err(EngineError::internal("connection reset"))
        })
        .await;
        let Ok(resp) = r else {
            panic!("expected a stream");
        };
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        let text = String::from_utf8(body.unwrap_or_default().to_vec()).unwrap_or_default();
        assert_eq!(
            text,
            "{\"status\":\"Pulling\"}\n{\"error\":\"connection reset\",\"errorDetail\":{\"message\":\"connection reset\"}}\n"
        );
    }
}
