use std::io;

use berth_store::content::ContentError;
use berth_store::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive (or a saved image's description) is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// A local I/O failure: the store, the output stream.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error(transparent)]
    Content(#[from] ContentError),
}

impl ArchiveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Invalid(_) => ErrorKind::InvalidArgument,
            ArchiveError::Io { .. } => ErrorKind::Internal,
            ArchiveError::Content(e) => e.kind(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        ArchiveError::Invalid(msg.into())
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            ArchiveError::invalid("manifest.json: bad").kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            io_err("write")(io::Error::other("disk full")).kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            io_err("write")(io::Error::other("disk full")).to_string(),
            "write: disk full"
        );
    }
}
