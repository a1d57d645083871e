//! Errors, their kinds, and the registry's JSON error bodies.

use std::fmt;

use serde::Deserialize;

/// What went wrong, coarsely: the engine maps this to an API status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Manifest, blob or repository unknown to the registry.
    NotFound,
    /// No or bad credentials (401), or the credentials lack access (403 / `DENIED`).
    Unauthorized,
    /// The caller asked for something malformed (bad reference, bad URL, bad platform).
    InvalidArgument,
    /// The registry answered with something berth does not handle (schema 1 manifests, …).
    Unsupported,
    /// Network, TLS or server failure, after retries.
    Transport,
    /// Content did not hash to the digest it was fetched by.
    DigestMismatch,
}

/// A registry client error. `Display` is worded like Docker's, since the engine passes it through
/// to `docker pull`/`push`/`login` users.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The registry's error codes (e.g. `MANIFEST_UNKNOWN`), when it sent a JSON body.
    codes: Vec<String>,
    status: Option<u16>,
    /// The token server refused the credentials: the message is final, not a pull denial.
    credentials_rejected: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            codes: Vec::new(),
            status: None,
            credentials_rejected: false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The registry's error codes, upper case as sent (`BLOB_UNKNOWN`, `DENIED`, …).
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// The HTTP status that caused this error, if it came from a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn not_found(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, m)
    }
    pub(crate) fn unauthorized(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unauthorized, m)
    }
    pub(crate) fn invalid(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, m)
    }
    pub(crate) fn unsupported(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, m)
    }
    pub(crate) fn transport(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Transport, m)
    }

    /// Whether the token server rejected the credentials (bad password, revoked identity
    /// token), as opposed to the registry denying access to a repository.
    pub fn credentials_rejected(&self) -> bool {
        self.credentials_rejected
    }

    pub(crate) fn mark_credentials_rejected(mut self) -> Error {
        self.credentials_rejected = true;
        self
    }

    /// Same kind and codes, message prefixed (Docker wraps errors as `context: cause`).
    pub(crate) fn context(mut self, prefix: impl fmt::Display) -> Error {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Builds the error for a non-success response from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Error {
        let parsed = parse_error_body(body);
        let codes: Vec<String> = parsed.iter().map(|e| e.code.clone()).collect();
        let kind = kind_for(status, &codes);
        let message = if parsed.is_empty() {
            // No JSON: fall back to what Docker prints for bare statuses.
            match status {
                401 => "unauthorized: authentication required".to_string(),
                403 => "denied: requested access to the resource is denied".to_string(),
                404 => "not found".to_string(),
                _ => {
                    let text = String::from_utf8_lossy(body);
                    let text = text.trim();
                    let reason = reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("");
                    if text.is_empty() || text.len() > 512 {
                        format!("received unexpected HTTP status: {status} {reason}")
                    } else {
                        format!("received unexpected HTTP status: {status} {reason}: {text}")
                    }
                }
            }
        } else {
            parsed
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Error {
            kind,
            message,
            codes,
            status: Some(status),
            credentials_rejected: false,
        }
    }
}

fn kind_for(status: u16, codes: &[String]) -> ErrorKind {
    for c in codes {
        match c.as_str() {
            "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN" => {
                return ErrorKind::NotFound
            }
            "UNAUTHORIZED" | "DENIED" => return ErrorKind::Unauthorized,
            "UNSUPPORTED" => return ErrorKind::Unsupported,
            "DIGEST_INVALID" => return ErrorKind::DigestMismatch,
            "NAME_INVALID"
            | "TAG_INVALID"
            | "MANIFEST_INVALID"
            | "MANIFEST_BLOB_UNKNOWN"
            | "SIZE_INVALID"
            | "BLOB_UPLOAD_INVALID"
            | "RANGE_INVALID" => return ErrorKind::InvalidArgument,
            _ => {}
        }
    }
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        400 | 405 | 413 | 416 => ErrorKind::InvalidArgument,
        _ => ErrorKind::Transport,
    }
}

/// One entry of the distribution spec's `{"errors": [...]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub code: String,
    pub message: String,
    /// `detail` re-serialised as JSON; it is free-form.
    pub detail: Option<String>,
}

impl fmt::Display for RegistryError {
    /// Docker's `errcode.Error.Error()`: the code lowercased with spaces, then the message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.to_ascii_lowercase().replace('_', " ");
        if self.message.is_empty() {
            write!(f, "{code}")
        } else {
            write!(f, "{code}: {}", self.message)
        }
    }
}

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<RawError>,
    /// Docker Hub's token server sends `{"details": "incorrect username or password"}`.
    #[serde(default)]
    details: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// Parses a registry error body; empty when it is not one.
pub fn parse_error_body(body: &[u8]) -> Vec<RegistryError> {
    let Ok(b) = serde_json::from_slice::<ErrorsBody>(body) else {
        return Vec::new();
    };
    let mut out: Vec<RegistryError> = b
        .errors
        .into_iter()
        .filter(|e| !e.code.is_empty() || !e.message.is_empty())
        .map(|e| RegistryError {
            code: if e.code.is_empty() {
                "UNKNOWN".to_string()
            } else {
                e.code.to_ascii_uppercase()
            },
            message: e.message,
            detail: e.detail.filter(|d| !d.is_null()).map(|d| d.to_string()),
        })
        .collect();
    if out.is_empty() {
        if let Some(d) = b.details.filter(|d| !d.is_empty()) {
            out.push(RegistryError {
                code: "UNAUTHORIZED".to_string(),
                message: d,
                detail: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_distribution_errors() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        let e = parse_error_body(body);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].code, "MANIFEST_UNKNOWN");
        assert_eq!(e[0].detail.as_deref(), Some(r#"{"Tag":"nope"}"#));
        assert_eq!(e[0].to_string(), "manifest unknown: manifest unknown");
        let err = Error::from_response(404, body);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "manifest unknown: manifest unknown");
        assert_eq!(err.codes(), ["MANIFEST_UNKNOWN"]);
    }

    #[test]
    fn several_errors_and_null_detail() {
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null},{"code":"unauthorized","message":"x"}]}"#;
        let err = Error::from_response(403, body);
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert_eq!(
            err.to_string(),
            "denied: requested access to the resource is denied, unauthorized: x"
        );
    }

    #[test]
    fn docker_hub_details_and_non_json() {
        let err = Error::from_response(401, br#"{"details":"incorrect username or password"}"#);
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert_eq!(
            err.to_string(),
            "unauthorized: incorrect username or password"
        );
        let err = Error::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
        assert!(parse_error_body(b"not json").is_empty());
        assert!(parse_error_body(b"{}").is_empty());
        assert_eq!(Error::from_response(404, b"").kind(), ErrorKind::NotFound);
    }

    #[test]
    fn codes_win_over_status() {
        // Some registries answer 400 for an unknown blob, or 404 for a denied repository.
        let err = Error::from_response(
            400,
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = Error::from_response(404, br#"{"errors":[{"code":"DENIED","message":"no"}]}"#);
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
    }
}
