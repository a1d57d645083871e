//! A CLI run on a real pseudo-terminal, driven like a person at a keyboard: type, wait for
//! text on the screen, resize the window.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    child: Child,
    /// Everything read from the screen so far.
    pub screen: Vec<u8>,
}

impl Pty {
    /// Starts `cmd` as the session leader of a new terminal of `rows`×`cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Pty {
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup slave"));
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        drop(slave);
        let master = File::from(pty.master);
        // SAFETY: fcntl on our own descriptor with integer arguments.
        unsafe {
            let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Pty {
            master,
            child,
            screen: Vec::new(),
        }
    }

    /// Types `keys` (raw bytes: "\r" is Enter, "\x03" Ctrl-C).
    pub fn send(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type on pty");
    }

    /// Waits until `text` appears on the screen after what was already `consume`d; panics with
    /// the screen after `timeout`.
    pub fn expect(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.screen).contains(text) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {text:?}; screen: {:?}",
                    String::from_utf8_lossy(&self.screen)
                );
            }
            self.pump(Duration::from_millis(50));
        }
    }

    /// Forgets the screen read so far, so the next `expect` only sees new output.
    pub fn consume(&mut self) {
        self.pump(Duration::from_millis(10));
        self.screen.clear();
    }

    fn pump(&mut self, wait: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.screen.extend_from_slice(&buf[..n]);
        }
    }

    /// Changes the window size, as a terminal emulator does (the CLI gets SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize that lives for the call.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0, "resize the pty");
    }

    /// Waits for the CLI to exit and returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump(Duration::from_millis(20));
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the CLI did not exit; screen: {:?}",
                    String::from_utf8_lossy(&self.screen)
                );
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
