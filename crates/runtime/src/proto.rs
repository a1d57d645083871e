//! The daemon ↔ shim protocol, over the shim's Unix socket.
//!
//! A connection starts with one JSON request line. `kill` and `state` get one JSON reply line.
//! `start` and `subscribe` turn the connection into a stream of frames from the shim:
//! `[kind: u8][len: u32 big-endian][payload]`, where kind 1/2 carry stdout/stderr bytes (the
//! same numbering as Docker's multiplexed stream) and the others carry JSON. `stdin` turns the
//! connection into a raw byte pipe to the container's stdin, which only `close_stdin` closes. `exec` starts another process in
//! the container: the connection streams that process's frames (started, output, exited) from
//! the shim, and carries its stdin the other way; a half-close is stdin's EOF.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
/// Payload: [`Started`].
pub const FRAME_STARTED: u8 = 10;
/// Payload: the error message, as text.
pub const FRAME_START_FAILED: u8 = 11;
/// Payload: [`ExitInfo`].
pub const FRAME_EXITED: u8 = 12;

/// Largest frame payload the shim sends; readers reject anything bigger as corruption.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Create and start the container; the connection then streams output and the exit.
    Start,
    /// Stream output and the exit of an already started container.
    Subscribe,
    Kill {
        signal: i32,
    },
    State,
    /// The rest of the connection is written to the container's stdin. Its end leaves stdin
    /// open (a client may detach and attach again); `close_stdin` closes it.
    Stdin,
    /// Closes the container's stdin: the end of an attached client's input, with `StdinOnce`.
    CloseStdin,
    /// Runs `process` (an OCI runtime-spec `process` object) in the running container.
    Exec {
        exec_id: String,
        process: serde_json::Value,
        /// Give the process a stdin fed from this connection.
        stdin: bool,
        /// The terminal's initial (height, width), when `process.terminal` is set.
        #[serde(default)]
        console_size: Option<(u16, u16)>,
    },
    /// Sets the window size of the container's terminal, or of an exec's.
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        height: u16,
        width: u16,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exited: Option<ExitInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Started {
    pub pid: i32,
}

/// How the container's init ended; also the content of the exit file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub exited_at: DateTime<Utc>,
    #[serde(default)]
    pub oom_killed: bool,
}

/// What the shim needs to know, written by the daemon as `shim.json` in the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    pub id: String,
    pub bundle: PathBuf,
    /// libcontainer's state root.
    pub runtime_root: PathBuf,
    pub socket: PathBuf,
    pub log_path: PathBuf,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Written crash-safely when the container exits, so a daemon that was down learns of it.
    pub exit_file: PathBuf,
    /// Give the container a stdin pipe (Docker's OpenStdin).
    pub stdin: bool,
    /// The container's process has a terminal (`process.terminal` in the bundle's spec); its
    /// output is the terminal's screen, logged as stdout.
    #[serde(default)]
    pub tty: bool,
    /// The terminal's initial (height, width), set before the process can ask for it.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}
