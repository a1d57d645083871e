//! Writing to the process's stdout and stderr.
//!
//! A closed pipe (`berth ps | head -1`) must not panic the way `println!`
//! does, so write errors are ignored: the reader is gone anyway.

use std::io::Write;

/// Writes `s` to stdout as is.
pub fn out(s: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(s.as_bytes());
    let _ = stdout.flush();
}

/// Writes `s` and a newline to stdout.
pub fn outln(s: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(s.as_bytes());
    let _ = stdout.write_all(b"\n");
    let _ = stdout.flush();
}

/// Writes `s` and a newline to stderr.
pub fn errln(s: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(s.as_bytes());
    let _ = stderr.write_all(b"\n");
    let _ = stderr.flush();
}
