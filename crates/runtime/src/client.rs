//! The daemon's side of the shim protocol (async, tokio).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::proto::*;
use crate::shim::LISTEN_FD;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The container could not be created or started; the message is the runtime's.
    #[error("{0}")]
    StartFailed(String),
    #[error("shim {socket}: {source}")]
    Io { socket: PathBuf, source: io::Error },
    #[error("shim protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}

/// Something that happened to a running container.
#[derive(Debug, Clone, PartialEq)]
pub enum ShimEvent {
    Started {
        pid: i32,
    },
    /// `stream` is 1 for stdout, 2 for stderr.
    Output {
        stream: u8,
        data: Bytes,
    },
    Exited(ExitInfo),
}

/// The stream of events on a `start`, `subscribe` or `exec` connection.
pub struct EventStream {
    conn: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    socket: PathBuf,
}

/// A process started by `exec`: its events, and the way to its stdin. Dropping `stdin` (or
/// shutting it down) is the process's stdin EOF.
pub struct ExecSession {
    pub pid: i32,
    pub events: EventStream,
    pub stdin: tokio::net::unix::OwnedWriteHalf,
}

impl EventStream {
    /// The next event, or None when the shim closed the connection (it exited).
    pub async fn next(&mut self) -> Result<Option<ShimEvent>, ShimError> {
        let mut header = [0u8; 5];
        match self.conn.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(source) => {
                return Err(ShimError::Io {
                    socket: self.socket.clone(),
                    source,
                })
            }
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(ShimError::Protocol(format!("frame of {len} bytes")));
        }
        let mut payload = vec![0u8; len];
        self.conn
            .read_exact(&mut payload)
            .await
            .map_err(|source| ShimError::Io {
                socket: self.socket.clone(),
                source,
            })?;
        let json = |p: &[u8]| ShimError::Protocol(String::from_utf8_lossy(p).into_owned());
        Ok(Some(match header[0] {
            FRAME_STDOUT | FRAME_STDERR => ShimEvent::Output {
                stream: header[0],
                data: Bytes::from(payload),
            },
            FRAME_STARTED => {
                let s: Started = serde_json::from_slice(&payload).map_err(|_| json(&payload))?;
                ShimEvent::Started { pid: s.pid }
            }
            FRAME_START_FAILED => {
                return Err(ShimError::StartFailed(
                    String::from_utf8_lossy(&payload).into_owned(),
                ))
            }
            FRAME_EXITED => {
                ShimEvent::Exited(serde_json::from_slice(&payload).map_err(|_| json(&payload))?)
            }
            other => return Err(ShimError::Protocol(format!("unknown frame kind {other}"))),
        }))
    }
}

/// A handle on one container's shim, addressed by its socket path.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn io(&self) -> impl Fn(io::Error) -> ShimError + '_ {
        move |source| ShimError::Io {
            socket: self.socket.clone(),
            source,
        }
    }

    async fn request(&self, req: &Request) -> Result<UnixStream, ShimError> {
        let mut conn = UnixStream::connect(&self.socket).await.map_err(self.io())?;
        let mut line = serde_json::to_vec(req).map_err(|e| ShimError::Protocol(e.to_string()))?;
        line.push(b'\n');
        conn.write_all(&line).await.map_err(self.io())?;
        Ok(conn)
    }

    async fn simple(&self, req: &Request) -> Result<Reply, ShimError> {
        let mut conn = self.request(req).await?;
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.map_err(self.io())?;
        let reply: Reply =
            serde_json::from_slice(&buf).map_err(|e| ShimError::Protocol(e.to_string()))?;
        match reply.error {
            Some(e) => Err(ShimError::Refused(e)),
            None => Ok(reply),
        }
    }

    /// Sends `signal` to the container's init.
    pub async fn kill(&self, signal: i32) -> Result<(), ShimError> {
        self.simple(&Request::Kill { signal }).await.map(|_| ())
    }

    pub async fn state(&self) -> Result<Reply, ShimError> {
        self.simple(&Request::State).await
    }

    /// Output and exit events of a running container.
    pub async fn subscribe(&self) -> Result<EventStream, ShimError> {
        let conn = self.request(&Request::Subscribe).await?;
        Ok(EventStream {
            conn: Box::new(conn),
            socket: self.socket.clone(),
        })
    }

    /// Starts `process` (an OCI `process` object) in the running container.
    pub async fn exec(
        &self,
        exec_id: &str,
        process: serde_json::Value,
        stdin: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<ExecSession, ShimError> {
        let conn = self
            .request(&Request::Exec {
                exec_id: exec_id.to_string(),
                process,
                stdin,
                console_size,
            })
            .await?;
        let (read, write) = conn.into_split();
        let mut events = EventStream {
            conn: Box::new(read),
            socket: self.socket.clone(),
        };
        match events.next().await? {
            Some(ShimEvent::Started { pid }) => Ok(ExecSession {
                pid,
                events,
                stdin: write,
            }),
            Some(other) => Err(ShimError::Protocol(format!("unexpected {other:?}"))),
            None => Err(ShimError::StartFailed(
                "the container's shim went away".into(),
            )),
        }
    }

    /// Sets the window size of the container's terminal (`exec_id` None) or of an exec's.
    pub async fn resize(
        &self,
        exec_id: Option<&str>,
        height: u16,
        width: u16,
    ) -> Result<(), ShimError> {
        let req = Request::Resize {
            exec_id: exec_id.map(str::to_string),
            height,
            width,
        };
        self.simple(&req).await.map(|_| ())
    }

    /// A connection whose writes go to the container's stdin.
    pub async fn stdin(&self) -> Result<UnixStream, ShimError> {
        self.request(&Request::Stdin).await
    }

    /// Closes the container's stdin (its process reads EOF).
    pub async fn close_stdin(&self) -> Result<(), ShimError> {
        self.simple(&Request::CloseStdin).await.map(|_| ())
    }
}

/// Spawns the shim for `config` and starts the container. Returns the init pid and the event
/// stream, which carries every byte of output from the first one on.
pub async fn spawn_and_start(
    shim_binary: &Path,
    config: &ShimConfig,
) -> Result<(i32, EventStream), ShimError> {
    let io_err = |source| ShimError::Io {
        socket: config.socket.clone(),
        source,
    };
    let json = serde_json::to_vec(config).map_err(|e| ShimError::Protocol(e.to_string()))?;
    std::fs::write(config.bundle.join("shim.json"), json).map_err(io_err)?;
    let _ = std::fs::remove_file(&config.socket);
    let listener = std::os::unix::net::UnixListener::bind(&config.socket).map_err(io_err)?;
    std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err)?;
    let log = std::fs::File::create(config.bundle.join("shim.log")).map_err(io_err)?;

    let listen_fd = listener.as_raw_fd();
    let mut cmd = tokio::process::Command::new(shim_binary);
    cmd.arg("shim")
        .arg(&config.bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .env_clear()
        .kill_on_drop(false);
    // SAFETY: the closure only calls async-signal-safe functions (setsid, dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: the shim must not die with the daemon's terminal or group.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if listen_fd == LISTEN_FD {
                // dup2 onto itself keeps CLOEXEC; clear it instead.
                if libc::fcntl(listen_fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(listen_fd, LISTEN_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io_err)?;
    drop(listener);
    // Reap the shim whenever it exits, so no zombie is left while the daemon lives.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });

    let client = ShimClient::new(&config.socket);
    let conn = client.request(&Request::Start).await?;
    let mut events = EventStream {
        conn: Box::new(conn),
        socket: config.socket.clone(),
    };
    match events.next().await? {
        Some(ShimEvent::Started { pid }) => Ok((pid, events)),
        Some(other) => Err(ShimError::Protocol(format!("unexpected {other:?}"))),
        None => {
            let log = std::fs::read_to_string(config.bundle.join("shim.log")).unwrap_or_default();
            Err(ShimError::StartFailed(format!(
                "shim exited before starting the container: {}",
                log.trim()
            )))
        }
    }
}
