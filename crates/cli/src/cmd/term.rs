//! The client's terminal for `run -it`, `exec -it` and `attach`: raw mode while attached, the
//! window size sent to the daemon at the start and at every SIGWINCH, and the relay of a
//! hijacked stream that ends when the daemon closes it.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::AsyncWriteExt;

use crate::client::{Client, Hijacked, Query};
use crate::stdcopy::{self, Sinks};

/// Puts the client's terminal in raw mode (keys go to the container as typed, Ctrl-C
/// included) and restores it when dropped.
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Raw mode on stdin when it is a terminal; otherwise nothing happens.
    pub fn enable() -> RawTerminal {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        // What moby/term's MakeRaw does; the container's own terminal turns \n into \r\n.
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The window size of the client's terminal (stdout), as (height, width).
pub fn size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct that lives for the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends the terminal's size to `path` (`/containers/{id}/resize` or `/exec/{id}/resize`) now
/// and whenever the window changes, until dropped.
pub struct Resizer {
    task: tokio::task::JoinHandle<()>,
}

impl Resizer {
    pub fn start(client: Client, path: String) -> Resizer {
        let task = tokio::spawn(async move {
            let send = |h: u16, w: u16| {
                let q = Query::new()
                    .set("h", h.to_string())
                    .set("w", w.to_string())
                    .to_path(&path);
                let client = client.clone();
                async move {
                    // docker only warns when a resize fails, and not about a process that
                    // has already ended; the session goes on.
                    if let Err(e) = client.post(&q, None).await {
                        let text = e.to_string();
                        if !text.contains("is not running") {
                            crate::output::errln(&format!(
                                "failed to resize tty, using default size: {text}"
                            ));
                        }
                    }
                }
            };
            let Some((h, w)) = size() else { return };
            send(h, w).await;
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((h, w)) = size() {
                    send(h, w).await;
                }
            }
        });
        Resizer { task }
    }
}

impl Drop for Resizer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays a hijacked stream until the daemon ends it: output to stdout/stderr (demultiplexed
/// unless `tty`), and, with `stdin`, the client's input the other way, half-closed at its end.
pub async fn relay(stream: Hijacked, tty: bool, stdin: bool) -> std::io::Result<()> {
    let Hijacked {
        mut reader,
        mut writer,
    } = stream;
    let output = async move {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let mut sinks = Sinks {
            stdout: &mut out,
            stderr: &mut err,
        };
        stdcopy::copy_output(&mut reader, tty, &mut sinks).await
    };
    let input = async move {
        if stdin {
            let mut rx = super::run::stdin_reader();
            while let Some(chunk) = rx.recv().await {
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
        // Half-close: the daemon sees stdin's EOF (docker's CloseWrite).
        let _ = writer.shutdown().await;
        // Keep the write half alive until the output ends.
        std::future::pending::<()>().await;
    };
    tokio::pin!(output, input);
    tokio::select! {
        r = &mut output => r,
        _ = &mut input => Ok(()),
    }
}

/// Raw mode and window-size updates for the length of an attached TTY session.
pub struct TtySession {
    _raw: Option<RawTerminal>,
    _resizer: Option<Resizer>,
}

impl TtySession {
    /// Nothing unless `tty`; raw mode only when stdin is attached too.
    pub fn start(client: &Client, resize_path: String, tty: bool, stdin: bool) -> TtySession {
        TtySession {
            _raw: (tty && stdin).then(RawTerminal::enable),
            _resizer: tty.then(|| Resizer::start(client.clone(), resize_path)),
        }
    }
}
