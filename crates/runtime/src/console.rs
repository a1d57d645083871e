//! The receiving end of an OCI console socket, and terminal window sizes.
//!
//! For a process with `terminal: true`, libcontainer creates the pty inside the container and
//! sends its master end over a Unix socket whose path it is given (runc's `--console-socket`
//! protocol: one `SCM_RIGHTS` message). The shim listens on such a socket, receives the master
//! and then owns the terminal: it reads the screen from it and writes typed input into it.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening console socket in a directory of the caller's, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `dir/name`. The socket is bound by a relative name from inside `dir`,
    /// because a bundle path may be longer than `sun_path` allows (108 bytes); the caller must
    /// be single-threaded (the working directory is process-wide) — the shim is.
    pub fn bind(dir: &Path, name: &str) -> io::Result<Self> {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let previous = std::env::current_dir().ok();
        std::env::set_current_dir(dir)?;
        let bound = UnixListener::bind(name);
        if let Some(p) = previous {
            let _ = std::env::set_current_dir(p);
        }
        Ok(Self {
            listener: bound?,
            path,
        })
    }

    /// The absolute path to hand to libcontainer (it connects through a symlink, so the length
    /// of this path does not matter).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listening socket, to poll for the process's connection.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.listener.as_fd()
    }

    /// Takes the pty master sent by the container's process. By the time the runtime reports
    /// the process started, the message is already queued, so the wait is only a safety net.
    pub fn receive_master(&self, timeout: Duration) -> io::Result<File> {
        self.listener.set_nonblocking(false)?;
        let mut pfd = libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, owned by this frame.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no terminal was received from the container",
            ));
        }
        let (conn, _) = self.listener.accept()?;
        receive_fd(conn.as_raw_fd())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn receive_fd(sock: RawFd) -> io::Result<File> {
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(io::Error::from)?;
    let mut received: Vec<RawFd> = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received.extend(fds);
        }
    }
    // SAFETY: SCM_RIGHTS installed these descriptors in this process; each is owned once here.
    let mut owned: Vec<OwnedFd> = received
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    match owned.len() {
        1 => Ok(File::from(owned.remove(0))),
        n => Err(io::Error::other(format!(
            "console socket: expected one descriptor, got {n}"
        ))),
    }
}

/// Sets a terminal's window size; the kernel sends SIGWINCH to its foreground process group.
pub fn set_window_size(tty: &impl AsRawFd, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct that lives for the call.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size as (height, width).
pub fn window_size(tty: &impl AsRawFd) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct that lives for the call.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    #[test]
    fn receives_a_pty_master_and_resizes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A long directory name: binding must not depend on the path's length.
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).expect("mkdir");
        let console = ConsoleSocket::bind(&deep, "console.sock").expect("bind");

        let pty = nix::pty::openpty(None, None).expect("openpty");
        // Connect the way libcontainer does: through a short symlink to the real path.
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(console.path(), &link).expect("symlink");
        let sender = UnixStream::connect(&link).expect("connect");
        let fds = [pty.master.as_raw_fd()];
        sendmsg::<()>(
            sender.as_raw_fd(),
            &[IoSlice::new(b"/dev/pts/x")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");

        let master = console
            .receive_master(Duration::from_secs(2))
            .expect("receive");
        set_window_size(&master, 33, 101).expect("resize");
        assert_eq!(window_size(&pty.slave).expect("size"), (33, 101));
        let path = console.path().to_path_buf();
        drop(console);
        assert!(!path.exists());
    }

    #[test]
    fn no_sender_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = ConsoleSocket::bind(dir.path(), "c.sock").expect("bind");
        let err = console
            .receive_master(Duration::from_millis(50))
            .expect_err("nothing was sent");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
