//! Crash-safe state on disk: atomic file writes (`atomic`), the content-addressed blob store of
//! an OCI image layout (`content`) and its `index.json` (`index`).

pub mod atomic;
pub mod content;
pub mod index;

/// What kind of failure an error is, for callers that map errors to protocol codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Internal,
}
