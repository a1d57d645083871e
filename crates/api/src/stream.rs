//! Container output on the wire: Docker's multiplexed framing, `timestamps=1` prefixes, streamed
//! bodies, the hijacked attach connection with its detach keys, and JSON-lines progress.
//!
//! The multiplexed framing is an 8-byte header per frame — the stream byte (1 stdout, 2 stderr),
//! three zero bytes, the payload length as a big-endian u32 — followed by the payload. TTY
//! containers have a single stream and are sent raw.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::types::{LogRecord, StdStream};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::convert::rfc3339_nano_fixed;
use crate::server::ApiVersion;

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Docker's default detach sequence for TTY attaches (ctrl-p ctrl-q).
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// The content type of container output: multiplexed output is announced as such from API 1.42
/// on; older clients expect the raw-stream type for both.
pub fn content_type(tty: bool, version: &ApiVersion) -> &'static str {
    if !tty && version.at_least("1.42") {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// Appends one multiplexed frame (or several, for a payload beyond the u32 length field); an
/// empty payload appends nothing.
pub fn put_frame(out: &mut BytesMut, stream: StdStream, payload: &[u8]) {
    for chunk in payload.chunks(u32::MAX as usize) {
        out.reserve(8 + chunk.len());
        out.put_u8(stream.frame_byte());
        out.put_bytes(0, 3);
        // The chunk is at most u32::MAX bytes long by construction.
        out.put_u32(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        out.put_slice(chunk);
    }
}

/// Turns log records into the bytes of a logs or attach stream.
#[derive(Debug, Clone, Copy)]
pub struct OutputEncoder {
    /// Frame each record (non-TTY containers); TTY output is sent as is.
    pub multiplexed: bool,
    /// Prefix each record with its time, as `docker logs -t` shows it.
    pub timestamps: bool,
}

impl OutputEncoder {
    /// The wire bytes of one record; nothing for an empty record.
    pub fn encode(&self, rec: &LogRecord) -> Bytes {
        if rec.data.is_empty() {
            return Bytes::new();
        }
        let prefix = if self.timestamps {
            format!("{} ", rfc3339_nano_fixed(&rec.time))
        } else {
            String::new()
        };
        if self.multiplexed {
            let mut payload = Vec::with_capacity(prefix.len() + rec.data.len());
            payload.extend_from_slice(prefix.as_bytes());
            payload.extend_from_slice(&rec.data);
            let mut out = BytesMut::with_capacity(8 + payload.len());
            put_frame(&mut out, rec.stream, &payload);
            out.freeze()
        } else if prefix.is_empty() {
            rec.data.clone()
        } else {
            let mut out = BytesMut::with_capacity(prefix.len() + rec.data.len());
            out.put_slice(prefix.as_bytes());
            out.put_slice(&rec.data);
            out.freeze()
        }
    }
}

/// A response body that streams records as they arrive and ends with the channel. When the
/// client goes away hyper drops the body, and with it the receiver, which tells the engine to
/// stop producing.
pub fn records_body(rx: mpsc::Receiver<LogRecord>, enc: OutputEncoder) -> Body {
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let rec = rx.recv().await?;
        Some((Ok::<_, Infallible>(enc.encode(&rec)), rx))
    })
    // An empty chunk would be taken by hyper as nothing, but skipping it is clearer.
    .filter(|chunk| futures_util::future::ready(chunk.as_ref().map_or(true, |c| !c.is_empty())));
    Body::from_stream(stream)
}

/// Parses a detach sequence such as `ctrl-p,ctrl-q` or `ctrl-a,x` (dockerd's `term.ToBytes`).
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    const CTRL: [&str; 32] = [
        "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
        "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
        "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
        "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
    ];
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        match CTRL.iter().position(|c| c.eq_ignore_ascii_case(key)) {
            // The table has 32 entries, so the position always fits in a byte.
            Some(code) => out.push(u8::try_from(code).unwrap_or(0)),
            None => return Err(format!("Unknown character: '{key}'")),
        }
    }
    Ok(out)
}

/// Watches stdin for the detach sequence. Bytes that start the sequence are held back until it
/// either completes (they are swallowed, the attach ends) or breaks (they are passed on).
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Returns the bytes to forward to the container and whether the sequence completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                self.matched = 0;
                out.push(b);
            }
        }
        (out, false)
    }
}

/// The engine side of an attach, ready to be pumped over a hijacked connection.
pub struct AttachStreams {
    pub output: mpsc::Receiver<LogRecord>,
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub encoder: OutputEncoder,
    /// The detach sequence to watch for on stdin (TTY attaches only, as in dockerd).
    pub detach_keys: Option<Vec<u8>>,
}

/// Copies container output to the connection and the client's bytes to the container's stdin
/// until the output ends (the container exited), the client detaches or goes away. A client
/// that half-closes its side (end of stdin) keeps receiving output.
pub async fn pump<IO>(io: IO, streams: AttachStreams)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let AttachStreams {
        mut output,
        stdin,
        encoder,
        detach_keys,
    } = streams;
    let (mut rd, mut wr) = tokio::io::split(io);
    let detached = CancellationToken::new();
    let reader = stdin.map(|tx| {
        let detached = detached.clone();
        tokio::spawn(async move {
            let mut scanner = detach_keys.map(DetachScanner::new);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        // The end of the client's input (a detach sends no such marker).
                        let _ = tx.send(Bytes::new()).await;
                        break;
                    }
                    Ok(n) => n,
                };
                let (data, detach) = match scanner.as_mut() {
                    Some(s) => s.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                // Once the process's stdin is gone, the client's bytes are read and dropped:
                // closing a Unix socket with unread data resets the peer, which would lose
                // the end of the output on its side.
                if !data.is_empty() {
                    let _ = tx.send(Bytes::from(data)).await;
                }
                if detach {
                    detached.cancel();
                    break;
                }
            }
            // Returning drops `tx`.
        })
    });
    loop {
        tokio::select! {
            rec = output.recv() => {
                let Some(rec) = rec else { break };
                let bytes = encoder.encode(&rec);
                if bytes.is_empty() {
                    continue;
                }
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
            () = detached.cancelled() => break,
        }
    }
    let _ = wr.shutdown().await;
    if let Some(mut reader) = reader {
        // The client closes its end once it has read ours; until then keep reading (see
        // above), but not forever.
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
}

/// Answers `101 Switching Protocols` and, once hyper hands over the connection, pumps the
/// streams over it (see [`pump`]). The caller has already done everything that can fail, so
/// that errors still get a normal HTTP answer.
pub fn hijack(req: &mut Request, streams: AttachStreams, content_type: &'static str) -> Response {
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => pump(TokioIo::new(upgraded), streams).await,
            Err(e) => tracing::debug!(error = %e, "attach: connection upgrade failed"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// One line of a JSON progress stream (`docker import`, `docker pull`).
pub fn progress_status(status: &str) -> Bytes {
    json_line(&serde_json::json!({ "status": status }))
}

/// An error inside a progress stream, in both the current and the legacy field.
pub fn progress_error(message: &str) -> Bytes {
    json_line(&serde_json::json!({
        "errorDetail": { "message": message },
        "error": message,
    }))
}

fn json_line(v: &serde_json::Value) -> Bytes {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn rec(stream: StdStream, data: &'static [u8]) -> LogRecord {
        LogRecord {
            stream,
            time: DateTime::<Utc>::from_timestamp(1_700_000_000, 5).unwrap_or_default(),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn frames_have_docker_headers() {
        let enc = OutputEncoder {
            multiplexed: true,
            timestamps: false,
        };
        assert_eq!(
            enc.encode(&rec(StdStream::Stdout, b"hello\n")).as_ref(),
            b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
        );
        assert_eq!(
            enc.encode(&rec(StdStream::Stderr, b"x")).as_ref(),
            b"\x02\x00\x00\x00\x00\x00\x00\x01x"
        );
        // Nothing to say, nothing sent (not even an empty frame).
        assert!(enc.encode(&rec(StdStream::Stderr, b"")).is_empty());
        let mut big = BytesMut::new();
        put_frame(&mut big, StdStream::Stdout, &[7u8; 300]);
        assert_eq!(&big[..8], &[1, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(big.len(), 308);
    }

    #[test]
    fn timestamps_go_inside_the_frame() {
        let enc = OutputEncoder {
            multiplexed: true,
            timestamps: true,
        };
        let out = enc.encode(&rec(StdStream::Stdout, b"hi\n"));
        let payload = b"2023-11-14T22:13:20.000000005Z hi\n";
        assert_eq!(&out[..4], &[1, 0, 0, 0]);
        assert_eq!(
            &out[4..8],
            &u32::try_from(payload.len()).unwrap_or(0).to_be_bytes()
        );
        assert_eq!(&out[8..], payload);
        let raw = OutputEncoder {
            multiplexed: false,
            timestamps: true,
        };
        assert_eq!(
            raw.encode(&rec(StdStream::Stdout, b"hi\n")).as_ref(),
            payload
        );
        let plain = OutputEncoder {
            multiplexed: false,
            timestamps: false,
        };
        assert_eq!(
            plain.encode(&rec(StdStream::Stdout, b"hi\n")).as_ref(),
            b"hi\n"
        );
    }

    #[test]
    fn content_types_follow_the_version() {
        assert_eq!(
            content_type(false, &ApiVersion::new("1.42")),
            MULTIPLEXED_STREAM
        );
        assert_eq!(content_type(false, &ApiVersion::new("1.41")), RAW_STREAM);
        assert_eq!(content_type(true, &ApiVersion::new("1.51")), RAW_STREAM);
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("CTRL-A,x"), Ok(vec![1, b'x']));
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_"), Ok(vec![0, 31]));
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn detach_scanner_holds_partial_sequences() {
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
        // A lone ctrl-p is held back ...
        assert_eq!(s.feed(&[16]), (vec![], false));
        // ... and released when the sequence breaks.
        assert_eq!(s.feed(b"c"), (vec![16, b'c'], false));
        assert_eq!(s.feed(&[16, 16]), (vec![16], false));
        assert_eq!(s.feed(&[17, b'z']), (vec![], true));
        let mut s = DetachScanner::new(vec![]);
        assert_eq!(s.feed(&[16, 17]), (vec![16, 17], false));
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress_status("sha256:abc").as_ref(),
            b"{\"status\":\"sha256:abc\"}\n"
        );
        let e: serde_json::Value =
            serde_json::from_slice(&progress_error("boom")).unwrap_or_default();
        assert_eq!(e["errorDetail"]["message"], "boom");
        assert_eq!(e["error"], "boom");
    }

    #[tokio::test]
    async fn pump_forwards_both_ways_and_closes_at_the_end() {
        let (client, server) = tokio::io::duplex(1024);
        let (out_tx, out_rx) = mpsc::channel(4);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let task = tokio::spawn(pump(
            server,
            AttachStreams {
                output: out_rx,
                stdin: Some(in_tx),
                encoder: OutputEncoder {
                    multiplexed: true,
                    timestamps: false,
                },
                detach_keys: None,
            },
        ));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"input").await.ok();
        assert_eq!(in_rx.recv().await, Some(Bytes::from_static(b"input")));
        // Half-close: stdin ends (an empty chunk says so), output continues.
        cwr.shutdown().await.ok();
        assert_eq!(in_rx.recv().await, Some(Bytes::new()));
        assert_eq!(in_rx.recv().await, None);
        out_tx.send(rec(StdStream::Stdout, b"out")).await.ok();
        drop(out_tx);
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.ok();
        assert_eq!(got, b"\x01\x00\x00\x00\x00\x00\x00\x03out");
        task.await.ok();
    }

    #[tokio::test]
    async fn pump_ends_on_detach() {
        let (client, server) = tokio::io::duplex(1024);
        let (_out_tx, out_rx) = mpsc::channel::<LogRecord>(4);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let task = tokio::spawn(pump(
            server,
            AttachStreams {
                output: out_rx,
                stdin: Some(in_tx),
                encoder: OutputEncoder {
                    multiplexed: false,
                    timestamps: false,
                },
                detach_keys: Some(DEFAULT_DETACH_KEYS.to_vec()),
            },
        ));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(&[b'l', b's', 16, 17]).await.ok();
        assert_eq!(in_rx.recv().await, Some(Bytes::from_static(b"ls")));
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.ok();
        assert!(got.is_empty());
        // A detach is no end of input: no empty chunk.
        assert_eq!(in_rx.recv().await, None);
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        assert!(done.is_ok(), "pump returned after detach");
    }
}
