//! The API's error: an HTTP status and a Docker-style message. Engine errors are turned into
//! statuses here and nowhere else, by their kind, never by their text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::{EngineError, ErrorKind};

/// An error answered as Docker does: `{"message":"..."}` with a status code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Old clients (API < 1.24) get plain text, as dockerd does for them, so that the "too old"
    /// message is readable instead of being printed as raw JSON.
    plain_text: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            plain_text: false,
        }
    }

    /// A malformed request: bad JSON, bad query parameter, unknown option (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A feature of the Docker API that berth does not have (yet).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    /// The answer to any path or method no route serves, worded as dockerd's.
    pub fn page_not_found() -> Self {
        Self::not_found("page not found")
    }

    pub(crate) fn into_plain_text(mut self) -> Self {
        self.plain_text = true;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The status code of each engine error kind (the table in ARCHITECTURE.md).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        Self::new(status_of(e.kind()), e.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = %self.message, "request failed");
        }
        // A 304 has no body by definition (Go's net/http drops it too).
        if self.status == StatusCode::NOT_MODIFIED {
            return self.status.into_response();
        }
        if self.plain_text {
            let mut resp = (self.status, format!("{}\n", self.message)).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
        crate::server::json_response(self.status, &serde_json::json!({ "message": self.message }))
    }
}

/// Handler results: a response or a Docker-style error.
pub type ApiResult<T = Response> = Result<T, ApiError>;
