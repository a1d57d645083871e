//! The error a command ends with: the text docker would print on stderr and
//! the process exit status.

use crate::client::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Printed on stderr when non-empty.
    pub message: String,
    pub code: i32,
}

impl CliError {
    /// A plain failure (exit status 1).
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// A failure with a specific exit status.
    pub fn with_code(message: impl Into<String>, code: i32) -> CliError {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// Exit with `code` and print nothing (a container's exit status).
    pub fn status(code: i32) -> CliError {
        CliError {
            message: String::new(),
            code,
        }
    }
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(go_io_error(&e))
    }
}

/// Words an I/O error the way Go prints errno values ("no such file or directory").
pub fn go_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Joins several errors one per line, like Go's `errors.Join`.
pub fn join(errors: Vec<CliError>) -> Result<(), CliError> {
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors
        .into_iter()
        .map(|e| e.message)
        .collect::<Vec<_>>()
        .join("\n");
    Err(CliError::new(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(go_io_error(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(13);
        assert_eq!(go_io_error(&e), "permission denied");
    }

    #[test]
    fn joins_errors() {
        assert_eq!(join(vec![]), Ok(()));
        assert_eq!(
            join(vec![CliError::new("a"), CliError::new("b")]),
            Err(CliError::new("a\nb"))
        );
    }
}
