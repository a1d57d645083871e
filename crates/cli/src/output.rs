//! Writing to the process's stdout and stderr, and reading its stdin.
//!
//! A closed pipe (`berth ps | head -1`) must not panic the way `println!`
//! does, so write errors are ignored: the reader is gone anyway.
//!
//! The standard streams can be replaced for the current thread by
//! [`capture`], so that in-process tests see what a command printed (the
//! CLI runs on a current-thread runtime, so its tasks share that thread).

use std::cell::RefCell;
use std::io::{IsTerminal, Read, Write};

use tokio::io::AsyncRead;

/// The stand-in streams of a captured run.
#[derive(Debug, Default)]
struct Captured {
    stdin: Vec<u8>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Whether stdin and stdout claim to be terminals.
    terminal: bool,
}

thread_local! {
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// What a captured run printed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `f` with stdin replaced by `stdin` and stdout/stderr collected.
/// `terminal` makes stdin and stdout report being terminals (so the
/// "refusing to write to a terminal" paths can be tested).
pub fn capture<R>(stdin: &[u8], terminal: bool, f: impl FnOnce() -> R) -> (R, Output) {
    CAPTURE.with(|c| {
        *c.borrow_mut() = Some(Captured {
            stdin: stdin.to_vec(),
            terminal,
            ..Captured::default()
        })
    });
    let r = f();
    let captured = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (
        r,
        Output {
            stdout: captured.stdout,
            stderr: captured.stderr,
        },
    )
}

fn with_capture<R>(f: impl FnOnce(&mut Captured) -> R) -> Option<R> {
    CAPTURE.with(|c| c.borrow_mut().as_mut().map(f))
}

/// Whether output is being captured (no real terminal behind it).
pub fn is_captured() -> bool {
    with_capture(|_| ()).is_some()
}

/// The process's stdout (or the capture buffer).
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match with_capture(|c| c.stdout.extend_from_slice(buf)) {
            Some(()) => Ok(buf.len()),
            None => std::io::stdout().lock().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match with_capture(|_| ()) {
            Some(()) => Ok(()),
            None => std::io::stdout().lock().flush(),
        }
    }
}

/// The process's stderr (or the capture buffer).
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match with_capture(|c| c.stderr.extend_from_slice(buf)) {
            Some(()) => Ok(buf.len()),
            None => std::io::stderr().lock().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match with_capture(|_| ()) {
            Some(()) => Ok(()),
            None => std::io::stderr().lock().flush(),
        }
    }
}

pub fn stdout_is_terminal() -> bool {
    with_capture(|c| c.terminal).unwrap_or_else(|| std::io::stdout().is_terminal())
}

pub fn stderr_is_terminal() -> bool {
    with_capture(|_| false).unwrap_or_else(|| std::io::stderr().is_terminal())
}

pub fn stdin_is_terminal() -> bool {
    with_capture(|c| c.terminal).unwrap_or_else(|| std::io::stdin().is_terminal())
}

/// Reads all of stdin.
pub fn read_stdin() -> std::io::Result<Vec<u8>> {
    if let Some(data) = with_capture(|c| std::mem::take(&mut c.stdin)) {
        return Ok(data);
    }
    let mut data = Vec::new();
    std::io::stdin().lock().read_to_end(&mut data)?;
    Ok(data)
}

/// Reads one line of stdin, without its line ending.
pub fn read_stdin_line() -> std::io::Result<String> {
    if let Some(line) = with_capture(|c| {
        let end = c
            .stdin
            .iter()
            .position(|&b| b == b'\n')
            .map_or(c.stdin.len(), |i| i + 1);
        let line: Vec<u8> = c.stdin.drain(..end).collect();
        String::from_utf8_lossy(&line).into_owned()
    }) {
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// docker/cli's `PromptForConfirmation`: prints `message`, true only for "y" or "yes".
pub fn confirm(message: &str) -> bool {
    out(message);
    match read_stdin_line() {
        Ok(answer) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}

/// Stdin for streaming into a request body.
pub fn stdin_async() -> Box<dyn AsyncRead + Send + Unpin> {
    match with_capture(|c| std::mem::take(&mut c.stdin)) {
        Some(data) => Box::new(std::io::Cursor::new(data)),
        None => Box::new(tokio::io::stdin()),
    }
}

/// Writes `s` to stdout as is.
pub fn out(s: &str) {
    out_bytes(s.as_bytes());
}

/// Writes raw bytes to stdout.
pub fn out_bytes(b: &[u8]) {
    let _ = Stdout.write_all(b);
    let _ = Stdout.flush();
}

/// Writes `s` and a newline to stdout.
pub fn outln(s: &str) {
    let mut line = String::with_capacity(s.len() + 1);
    line.push_str(s);
    line.push('\n');
    out_bytes(line.as_bytes());
}

/// Writes `s` to stderr as is.
pub fn err(s: &str) {
    let _ = Stderr.write_all(s.as_bytes());
    let _ = Stderr.flush();
}

/// Writes `s` and a newline to stderr.
pub fn errln(s: &str) {
    let mut line = String::with_capacity(s.len() + 1);
    line.push_str(s);
    line.push('\n');
    err(&line);
}

/// docker's `tui.Output.PrintNote` without colours: a blank line, then the
/// note under an " Info -> " header, continuation lines indented to match.
pub fn note(out: &mut dyn Write, text: &str) {
    const HEADER: &str = " Info -> ";
    let mut s = String::from("\n");
    s.push_str(HEADER);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            s.push_str(&" ".repeat(HEADER.len()));
        }
        s.push_str(line);
        s.push('\n');
    }
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_streams() {
        let ((), out) = capture(b"line one\r\nrest", true, || {
            outln("hello");
            errln("oops");
            assert!(stdout_is_terminal() && stdin_is_terminal() && !stderr_is_terminal());
            assert_eq!(read_stdin_line().ok().as_deref(), Some("line one"));
            assert_eq!(read_stdin().ok().as_deref(), Some(&b"rest"[..]));
        });
        assert_eq!(out.stdout, b"hello\n");
        assert_eq!(out.stderr, b"oops\n");
        assert!(!is_captured());
    }

    #[test]
    fn notes() {
        let mut buf = Vec::new();
        note(&mut buf, "first\nsecond\n");
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "\n Info -> first\n         second\n         \n"
        );
    }
}
