//! The engine's error type. Every error carries a kind; the API layer maps kinds to HTTP status
//! codes, the engine never thinks in status codes.

use std::fmt;

/// What went wrong, in the terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with the current state (HTTP 409).
    Conflict,
    /// The request is malformed or names something invalid (HTTP 400).
    InvalidArgument,
    /// The operation was a no-op because the object is already in the wanted state (HTTP 304).
    NotModified,
    /// A registry refused the credentials (HTTP 401).
    Unauthorized,
    /// The operation is never allowed on this object, e.g. removing a predefined network
    /// (HTTP 403).
    Forbidden,
    /// A real fault of the engine or the host (HTTP 500).
    Internal,
}

/// An engine error: a kind and a Docker-style message (lowercase first word, no period).
#[derive(Debug, Clone, thiserror::Error)]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "not modified")
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn no_such_container(id: &str) -> Self {
        Self::not_found(format!("No such container: {id}"))
    }
    pub fn no_such_image(name: &str) -> Self {
        Self::not_found(format!("No such image: {name}"))
    }
}

/// Wraps any internal failure (I/O, store, runtime) with context, as a 500.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, EngineError>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::internal(format!("{}: {e}", what())))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
