//! A small Docker Engine API client over HTTP/1.1 on a Unix socket or TCP.
//!
//! bollard hides what the CLI needs to see: the raw JSON of inspect responses
//! (docker prints it re-indented, byte for byte), the moment the daemon has
//! *accepted* a wait request (its headers arrive before the container starts,
//! which `run` relies on), hijacked attach streams with half-close, and
//! request bodies streamed from files. So the CLI speaks HTTP itself through
//! hyper, one connection per request, which is what a short-lived CLI needs.

mod conn;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use conn::Conn;
pub use conn::Host;

/// The newest API version this client speaks; lowered to the daemon's.
pub const API_VERSION: &str = "1.51";

/// What the daemon uses when `/_ping` carries no version (as docker assumes).
const FALLBACK_API_VERSION: &str = "1.24";

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket could not be reached.
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect { host: String },
    #[error(
        "permission denied while trying to connect to the berth daemon socket at {host}: {source}"
    )]
    Permission {
        host: String,
        source: std::io::Error,
    },
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The exchange broke down (I/O, bad JSON, unexpected status).
    #[error("{0}")]
    Protocol(String),
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Daemon { status: 404, .. })
    }
}

fn protocol(e: impl std::fmt::Display) -> ApiError {
    ApiError::Protocol(e.to_string())
}

/// A request body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn json_body(v: &serde_json::Value) -> Body {
    Full::new(Bytes::from(v.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body of bytes already in memory.
pub fn bytes_body(data: Vec<u8>) -> Body {
    Full::new(Bytes::from(data))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Streams `reader` as the request body (chunked), without buffering it all.
pub fn reader_body<R: AsyncRead + Send + Unpin + 'static>(reader: R) -> Body {
    let stream = futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

/// A hijacked attach connection: raw bytes both ways.
pub struct Hijacked {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    pub writer: Pin<Box<dyn AsyncWrite + Send>>,
}

/// A connection to one daemon at one API version.
#[derive(Clone)]
pub struct Client {
    host: Host,
    version: String,
}

impl Client {
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: API_VERSION.to_string(),
        }
    }

    /// The negotiated API version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Pings the daemon and lowers our API version to the daemon's if older,
    /// as docker's client does before its first request.
    pub async fn negotiate(&mut self) -> Result<(), ApiError> {
        let resp = self.send(Method::GET, "/_ping", empty_body(), &[]).await?;
        let server = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(FALLBACK_API_VERSION)
            .to_string();
        if version_less(&server, &self.version) {
            self.version = server;
        }
        Ok(())
    }

    /// Whether the negotiated API version is at least `v`.
    pub fn version_at_least(&self, v: &str) -> bool {
        !version_less(&self.version, v)
    }

    async fn connect(&self) -> Result<Conn, ApiError> {
        Conn::connect(&self.host).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                ApiError::Permission {
                    host: self.host.to_string(),
                    source: e,
                }
            } else {
                ApiError::Connect {
                    host: self.host.to_string(),
                }
            }
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Request<Body>, ApiError> {
        // `/_ping` is unversioned; everything else goes to `/v1.xx/...`.
        let uri = if path == "/_ping" {
            path.to_string()
        } else {
            format!("/v{}{path}", self.version)
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", self.host.http_host())
            .header(
                "user-agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).map_err(protocol)
    }

    /// Sends a request and returns the response once its headers arrived.
    /// Error statuses are turned into [`ApiError::Daemon`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ApiError> {
        let req = self.build(method, path, body, headers)?;
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(protocol)?;
        tokio::spawn(async move {
            // Connection errors surface through the response future.
            let _ = conn.await;
        });
        let resp = sender.send_request(req).await.map_err(protocol)?;
        check_status(resp).await
    }

    /// GET returning the whole body.
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes, ApiError> {
        let resp = self.send(Method::GET, path, empty_body(), &[]).await?;
        collect(resp).await
    }

    /// GET decoding a JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let bytes = self.get_bytes(path).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Protocol(format!("error decoding response from daemon: {e}")))
    }

    /// GET with extra headers, decoding a JSON body.
    pub async fn get_json_with<T: DeserializeOwned>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let resp = self.send(Method::GET, path, empty_body(), headers).await?;
        let bytes = collect(resp).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Protocol(format!("error decoding response from daemon: {e}")))
    }

    /// POST with an optional JSON body, returning the whole response body.
    pub async fn post(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, ApiError> {
        let (body, headers): (Body, &[(&str, &str)]) = match body {
            Some(v) => (json_body(v), &[("content-type", "application/json")]),
            None => (empty_body(), &[]),
        };
        let resp = self.send(Method::POST, path, body, headers).await?;
        collect(resp).await
    }

    pub async fn delete(&self, path: &str) -> Result<Bytes, ApiError> {
        let resp = self.send(Method::DELETE, path, empty_body(), &[]).await?;
        collect(resp).await
    }

    /// Sends a request and returns its body as a stream of chunks.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<ByteStream, ApiError> {
        let resp = self.send(method, path, body, headers).await?;
        Ok(body_stream(resp.into_body()))
    }

    /// POSTs an attach-style request and takes over the connection once the
    /// daemon switched protocols (HTTP 101).
    pub async fn hijack(&self, path: &str) -> Result<Hijacked, ApiError> {
        self.hijack_with(path, None).await
    }

    /// [`Client::hijack`] with a JSON body (`POST /exec/{id}/start` takes one).
    pub async fn hijack_with(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, ApiError> {
        let (body, content_type) = match body {
            Some(v) => (json_body(v), "application/json"),
            None => (empty_body(), "text/plain"),
        };
        let req = self.build(
            Method::POST,
            path,
            body,
            &[
                ("connection", "Upgrade"),
                ("upgrade", "tcp"),
                ("content-type", content_type),
            ],
        )?;
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(protocol)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let resp = sender.send_request(req).await.map_err(protocol)?;
        let resp = check_status(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // Old daemons answer 200 and just stream; output still works, stdin does not.
            let stream = body_stream(resp.into_body());
            return Ok(Hijacked {
                reader: Box::pin(tokio_reader(stream)),
                writer: Box::pin(tokio::io::sink()),
            });
        }
        let upgraded = hyper::upgrade::on(resp).await.map_err(protocol)?;
        let parts = upgraded
            .downcast::<TokioIo<Conn>>()
            .map_err(|_| ApiError::Protocol("unexpected connection type after upgrade".into()))?;
        let (read, write) = tokio::io::split(parts.io.into_inner());
        // Bytes the HTTP parser read past the response headers belong to the stream.
        let leftover = std::io::Cursor::new(parts.read_buf);
        Ok(Hijacked {
            reader: Box::pin(AsyncReadExt::chain(leftover, read)),
            writer: Box::pin(write),
        })
    }
}

/// A response body as chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>;

/// The body of a response from [`Client::send`], as chunks.
pub fn body_stream(body: Incoming) -> ByteStream {
    Box::pin(
        http_body_util::BodyStream::new(body).filter_map(|frame| async move {
            match frame {
                Ok(f) => f.into_data().ok().map(Ok),
                Err(e) => Some(Err(protocol(e))),
            }
        }),
    )
}

/// Adapts a chunk stream to `AsyncRead`.
fn tokio_reader(stream: ByteStream) -> impl AsyncRead + Send {
    let stream = stream.map(|r| r.map_err(std::io::Error::other));
    tokio_util_reader(stream)
}

/// A minimal `StreamReader`: yields the chunks of `stream` as bytes.
fn tokio_util_reader<S>(stream: S) -> impl AsyncRead + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    struct Reader<S> {
        stream: S,
        chunk: Bytes,
    }
    impl<S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin> AsyncRead for Reader<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            use std::task::Poll;
            loop {
                if !self.chunk.is_empty() {
                    let n = self.chunk.len().min(buf.remaining());
                    let part = self.chunk.split_to(n);
                    buf.put_slice(&part);
                    return Poll::Ready(Ok(()));
                }
                match self.stream.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(chunk))) => self.chunk = chunk,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }
    Reader {
        stream,
        chunk: Bytes::new(),
    }
}

async fn collect(resp: Response<Incoming>) -> Result<Bytes, ApiError> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(protocol)?
        .to_bytes())
}

/// Turns an error status into [`ApiError::Daemon`] with the daemon's message.
async fn check_status(resp: Response<Incoming>) -> Result<Response<Incoming>, ApiError> {
    let status = resp.status();
    if status.is_success() || status.is_informational() || status.is_redirection() {
        return Ok(resp);
    }
    let body = collect(resp).await.unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("unknown error")
                .to_string()
        } else {
            text
        }
    });
    Err(ApiError::Daemon {
        status: status.as_u16(),
        message,
    })
}

fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("message")?.as_str().map(str::to_string)
}

/// Compares dotted API versions numerically ("1.9" < "1.41").
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a path segment (container names, image references).
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'@'
            | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds a query string from present parameters.
#[derive(Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Query {
        Query::default()
    }

    pub fn set(mut self, k: &str, v: impl Into<String>) -> Query {
        self.0.push((k.to_string(), v.into()));
        self
    }

    pub fn set_if(self, cond: bool, k: &str, v: impl Into<String>) -> Query {
        if cond {
            self.set(k, v)
        } else {
            self
        }
    }

    /// Sets `k` only when there is a value.
    pub fn set_opt<V: Into<String>>(self, k: &str, v: Option<V>) -> Query {
        match v {
            Some(v) => self.set(k, v),
            None => self,
        }
    }

    /// `path?k=v&...`, or just `path` when empty.
    pub fn to_path(&self, path: &str) -> String {
        if self.0.is_empty() {
            return path.to_string();
        }
        let qs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect();
        format!("{path}?{}", qs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_less("1.41", "1.51"));
        assert!(version_less("1.9", "1.41"));
        assert!(!version_less("1.51", "1.51"));
        assert!(!version_less("2.0", "1.99"));
    }

    #[test]
    fn queries() {
        let q = Query::new()
            .set("all", "1")
            .set_if(false, "size", "1")
            .set("filters", r#"{"status":["running"]}"#);
        assert_eq!(
            q.to_path("/containers/json"),
            "/containers/json?all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D"
        );
        assert_eq!(Query::new().to_path("/x"), "/x");
        assert_eq!(path_escape("my image:1 #"), "my%20image:1%20%23");
    }

    #[test]
    fn daemon_error_message() {
        assert_eq!(
            error_message(br#"{"message":"No such container: x"}"#).as_deref(),
            Some("No such container: x")
        );
        assert_eq!(error_message(b"not json"), None);
    }
}
