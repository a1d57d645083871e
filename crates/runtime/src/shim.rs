//! The per-container shim: `berth shim <bundle>`.
//!
//! One small single-threaded process per running container. It owns the container's stdio
//! pipes, writes the json-file log, reaps the container's init and records its exit status, so
//! that the container outlives the daemon (live restore). The daemon binds the shim's socket and
//! passes the listening descriptor as fd 3, so it can connect and send `start` before the shim
//! has even run, and no output can be produced before a subscriber exists.
//!
//! libcontainer runs in a forked "creator" child, never in the shim itself: the pages it touches
//! stay out of the long-lived shim's RSS (target: under 3 MiB per container).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::logfile::LogWriter;
use crate::proto::*;

/// The descriptor on which the daemon hands over the listening socket.
pub const LISTEN_FD: RawFd = 3;

enum Role {
    Subscriber,
    Stdin,
}

struct Client {
    stream: UnixStream,
    role: Role,
}

/// One process the shim watches: the container's init, or an exec.
#[derive(Default)]
struct Proc {
    pid: Option<i32>,
    /// The terminal's master end when the process has one (then `stdout` reads from it and
    /// `stdin` writes into it).
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    /// The pty master, kept for resizes.
    tty: Option<File>,
    exit: Option<ExitInfo>,
    exited_at: Option<Instant>,
}

impl Proc {
    fn record_exit(&mut self, code: i32) {
        if self.exit.is_none() {
            self.exit = Some(ExitInfo {
                exit_code: code,
                exited_at: Utc::now(),
                oom_killed: false,
            });
            self.exited_at = Some(Instant::now());
            // Nobody can write to stdin any more.
            self.stdin = None;
        }
    }

    /// Exited, and its output drained (or a second has passed: a background child may hold
    /// the pipes open forever).
    fn drained(&self) -> bool {
        match self.exited_at {
            Some(at) => {
                (self.stdout.is_none() && self.stderr.is_none())
                    || at.elapsed() > Duration::from_secs(1)
            }
            None => false,
        }
    }

    fn pipe_mut(&mut self, kind: u8) -> &mut Option<File> {
        if kind == FRAME_STDOUT {
            &mut self.stdout
        } else {
            &mut self.stderr
        }
    }
}

/// A process started by `exec`, and the connection that asked for it.
struct Exec {
    id: String,
    proc: Proc,
    conn: UnixStream,
    /// The connection may still send stdin bytes (cleared at its half-close).
    reading: bool,
    /// Frames can still be written (cleared once a write fails).
    alive: bool,
}

impl Exec {
    fn send(&mut self, kind: u8, payload: &[u8]) {
        if self.alive && self.conn.write_all(&frame(kind, payload)).is_err() {
            self.alive = false;
        }
    }
}

/// What each polled descriptor is, in the order they were polled.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Signals,
    /// Output of init (`None`) or of the exec at that index.
    Output(Option<usize>, u8),
    Client(usize),
    ExecConn(usize),
}

struct Shim {
    config: ShimConfig,
    log: LogWriter,
    clients: Vec<Client>,
    init: Proc,
    execs: Vec<Exec>,
    /// Children reaped before we knew which process they were.
    reaped: HashMap<i32, i32>,
    /// `close_stdin` arrived while stdin connections still had bytes to deliver: init's
    /// stdin closes once the last of them has ended.
    stdin_close_pending: bool,
}

/// What the creator child starts.
enum Spawn<'a> {
    Init,
    Exec { process: &'a Path },
}

/// Entry point of `berth shim <bundle>`; returns the process exit code.
pub fn main(bundle: &Path) -> i32 {
    match run(bundle) {
        Ok(()) => 0,
        Err(e) => {
            // stderr is the shim's log file (shim.log in the bundle).
            let _ = writeln!(io::stderr(), "berth-shim: {e}");
            1
        }
    }
}

fn run(bundle: &Path) -> io::Result<()> {
    let config: ShimConfig = serde_json::from_slice(&std::fs::read(bundle.join("shim.json"))?)
        .map_err(io::Error::other)?;
    // SAFETY: fd 3 was set up by the daemon as our listening socket and nothing else owns it.
    let listener = unsafe { UnixListener::from_raw_fd(LISTEN_FD) };
    set_cloexec(listener.as_raw_fd())?;

    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block().map_err(io::Error::from)?;
    // SAFETY: ignoring SIGPIPE installs no handler code; writes to a closed peer return EPIPE.
    unsafe { signal::signal(Signal::SIGPIPE, signal::SigHandler::SigIgn) }
        .map_err(io::Error::from)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(io::Error::from)?;

    let log = LogWriter::open(&config.log_path, config.log_max_size, config.log_max_files)?;
    let mut shim = Shim {
        config,
        log,
        clients: Vec::new(),
        init: Proc::default(),
        execs: Vec::new(),
        reaped: HashMap::new(),
        stdin_close_pending: false,
    };
    shim.event_loop(&listener, &sigfd)
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

impl Shim {
    fn event_loop(&mut self, listener: &UnixListener, sigfd: &SignalFd) -> io::Result<()> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if self.init.drained() {
                return self.finish();
            }
            let mut slots = vec![Slot::Listener, Slot::Signals];
            let mut fds = vec![
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            let procs = std::iter::once((None, &self.init)).chain(
                self.execs
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Some(i), &e.proc)),
            );
            for (which, p) in procs {
                for (kind, f) in [(FRAME_STDOUT, &p.stdout), (FRAME_STDERR, &p.stderr)] {
                    if let Some(f) = f {
                        slots.push(Slot::Output(which, kind));
                        fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    }
                }
            }
            for (i, c) in self.clients.iter().enumerate() {
                // Subscribers are polled too, to notice when they hang up.
                slots.push(Slot::Client(i));
                fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            for (i, e) in self.execs.iter().enumerate().filter(|(_, e)| e.alive) {
                // After the half-close only a hang-up (always reported) is of interest.
                let events = if e.reading {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                };
                slots.push(Slot::ExecConn(i));
                fds.push(PollFd::new(e.conn.as_fd(), events));
            }
            // While an exited process drains, wake up to enforce its one-second limit.
            let draining =
                self.init.exit.is_some() || self.execs.iter().any(|e| e.proc.exit.is_some());
            let timeout = if draining {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<(Slot, bool)> = fds
                .iter()
                .zip(&slots)
                .map(|(fd, slot)| {
                    let r = fd.revents().unwrap_or(PollFlags::empty());
                    let hit = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
                    (*slot, !(r & hit).is_empty())
                })
                .collect();
            drop(fds);

            let mut accept = false;
            let mut clients_ready = Vec::new();
            for &(slot, is_ready) in &ready {
                if !is_ready {
                    continue;
                }
                match slot {
                    Slot::Listener => accept = true,
                    Slot::Signals => {
                        while let Ok(Some(_)) = sigfd.read_signal() {}
                        self.reap();
                    }
                    Slot::Output(which, kind) => self.pump(which, kind, &mut buf),
                    Slot::Client(i) => clients_ready.push(i),
                    Slot::ExecConn(i) => self.service_exec_conn(i, &mut buf),
                }
            }
            // Backwards, so removals keep earlier indices valid.
            for i in clients_ready.into_iter().rev() {
                self.service_client(i, &mut buf);
            }
            self.finish_execs();
            if accept {
                if let Ok((stream, _)) = listener.accept() {
                    self.accept(stream);
                }
            }
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(
                Pid::from_raw(-1),
                Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
            ) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_exited(pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.child_exited(pid.as_raw(), 128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    fn child_exited(&mut self, pid: i32, code: i32) {
        if self.init.pid == Some(pid) {
            self.init.record_exit(code);
        } else if let Some(e) = self.execs.iter_mut().find(|e| e.proc.pid == Some(pid)) {
            e.proc.record_exit(code);
        } else {
            self.reaped.insert(pid, code);
        }
    }

    /// Moves output of init to the log and every subscriber, and of an exec to its connection.
    fn pump(&mut self, which: Option<usize>, kind: u8, buf: &mut [u8]) {
        let proc = match which {
            None => &mut self.init,
            Some(i) => &mut self.execs[i].proc,
        };
        let pipe = proc.pipe_mut(kind);
        let Some(file) = pipe.as_mut() else { return };
        match file.read(buf) {
            // A terminal's master reads EIO once every slave end is closed: that is its EOF.
            Ok(0) | Err(_) => *pipe = None,
            Ok(n) => {
                let data = &buf[..n];
                match which {
                    None => {
                        let _ = self.log.write(kind, data);
                        self.broadcast(kind, data);
                    }
                    Some(i) => self.execs[i].send(kind, data),
                }
            }
        }
    }

    fn broadcast(&mut self, kind: u8, payload: &[u8]) {
        let frame = frame(kind, payload);
        self.clients.retain_mut(|c| match c.role {
            // A subscriber that cannot keep up for the send timeout is dropped rather than
            // stalling the container's output.
            Role::Subscriber => c.stream.write_all(&frame).is_ok(),
            Role::Stdin => true,
        });
    }

    fn service_client(&mut self, i: usize, buf: &mut [u8]) {
        if let Role::Subscriber = self.clients[i].role {
            // Subscribers never send after their request: readable means hung up.
            let mut probe = [0u8; 1];
            if matches!(self.clients[i].stream.read(&mut probe), Ok(0) | Err(_)) {
                self.clients.remove(i);
            }
            return;
        }
        match self.clients[i].stream.read(buf) {
            Ok(0) | Err(_) => {
                self.clients.remove(i);
                if self.stdin_close_pending && !self.has_stdin_clients() {
                    self.stdin_close_pending = false;
                    self.init.stdin = None;
                }
            }
            Ok(n) => {
                if let Some(stdin) = self.init.stdin.as_mut() {
                    if stdin.write_all(&buf[..n]).is_err() {
                        self.init.stdin = None;
                    }
                }
            }
        }
    }

    fn has_stdin_clients(&self) -> bool {
        self.clients.iter().any(|c| matches!(c.role, Role::Stdin))
    }

    /// Stdin bytes from an exec's connection, or its half-close or hang-up.
    fn service_exec_conn(&mut self, i: usize, buf: &mut [u8]) {
        let e = &mut self.execs[i];
        if !e.reading {
            // Polled for nothing but a hang-up: the daemon is gone; the process goes on, as a
            // detached exec does.
            e.alive = false;
            return;
        }
        match e.conn.read(buf) {
            Ok(0) | Err(_) => {
                e.reading = false;
                e.proc.stdin = None;
            }
            Ok(n) => {
                if let Some(stdin) = e.proc.stdin.as_mut() {
                    if stdin.write_all(&buf[..n]).is_err() {
                        e.proc.stdin = None;
                    }
                }
            }
        }
    }

    /// Reports the exit of every drained exec and forgets it.
    fn finish_execs(&mut self) {
        let mut i = 0;
        while i < self.execs.len() {
            if self.execs[i].proc.drained() {
                let mut e = self.execs.remove(i);
                let data = serde_json::to_vec(&e.proc.exit).unwrap_or_default();
                e.send(FRAME_EXITED, &data);
            } else {
                i += 1;
            }
        }
    }

    fn accept(&mut self, mut stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let request = match read_line(&mut stream)
            .and_then(|l| serde_json::from_slice::<Request>(&l).map_err(io::Error::other))
        {
            Ok(r) => r,
            Err(e) => {
                let _ = reply(&mut stream, Some(e.to_string()));
                return;
            }
        };
        let _ = stream.set_read_timeout(None);
        match request {
            Request::Start => {
                if self.init.pid.is_some() || self.init.exit.is_some() {
                    let _ =
                        stream.write_all(&frame(FRAME_START_FAILED, b"container already started"));
                    return;
                }
                let (stdin, tty) = (self.config.stdin, self.config.tty);
                let size = self.config.console_size;
                match self.spawn(Spawn::Init, stdin, tty.then_some(size)) {
                    Ok(proc) => {
                        let pid = proc.pid.unwrap_or(0);
                        self.init = proc;
                        if let Some(code) = self.reaped.remove(&pid) {
                            self.init.record_exit(code);
                        }
                        release_startup_pages();
                        let started = serde_json::to_vec(&Started { pid }).unwrap_or_default();
                        if stream.write_all(&frame(FRAME_STARTED, &started)).is_ok() {
                            self.clients.push(Client {
                                stream,
                                role: Role::Subscriber,
                            });
                        }
                    }
                    Err(msg) => {
                        let _ = stream.write_all(&frame(FRAME_START_FAILED, msg.as_bytes()));
                        // Nothing runs: leave with a recorded failure so the daemon can clean up.
                        self.init.record_exit(start_failure_code(&msg));
                    }
                }
            }
            Request::Subscribe => {
                if let Some(pid) = self.init.pid {
                    let started = serde_json::to_vec(&Started { pid }).unwrap_or_default();
                    if stream.write_all(&frame(FRAME_STARTED, &started)).is_err() {
                        return;
                    }
                }
                self.clients.push(Client {
                    stream,
                    role: Role::Subscriber,
                });
            }
            Request::Kill { signal } => {
                let err = match (self.init.pid, &self.init.exit) {
                    (Some(pid), None) => {
                        // The shim is init's parent and has not reaped it, so the pid cannot
                        // have been reused by another process.
                        // SAFETY: kill(2) with integer arguments.
                        if unsafe { libc::kill(pid, signal) } == 0 {
                            None
                        } else {
                            Some(io::Error::last_os_error().to_string())
                        }
                    }
                    _ => Some("container is not running".to_string()),
                };
                let _ = reply(&mut stream, err);
            }
            Request::State => {
                let r = Reply {
                    error: None,
                    pid: self.init.pid.unwrap_or(0),
                    exited: self.init.exit.clone(),
                };
                let mut line = serde_json::to_vec(&r).unwrap_or_default();
                line.push(b'\n');
                let _ = stream.write_all(&line);
            }
            Request::Stdin => {
                self.clients.push(Client {
                    stream,
                    role: Role::Stdin,
                });
            }
            Request::CloseStdin => {
                // The closing client's bytes may still sit in its connection: they go first.
                if self.has_stdin_clients() {
                    self.stdin_close_pending = true;
                } else {
                    self.init.stdin = None;
                }
                let _ = reply(&mut stream, None);
            }
            Request::Exec {
                exec_id,
                process,
                stdin,
                console_size,
            } => self.exec(stream, exec_id, &process, stdin, console_size),
            Request::Resize {
                exec_id,
                height,
                width,
            } => {
                let tty = match &exec_id {
                    None => self.init.tty.as_ref(),
                    Some(id) => self
                        .execs
                        .iter()
                        .find(|e| &e.id == id)
                        .and_then(|e| e.proc.tty.as_ref()),
                };
                let err = match tty {
                    Some(t) => crate::console::set_window_size(t, height, width)
                        .err()
                        .map(|e| e.to_string()),
                    None => Some("no such terminal".to_string()),
                };
                let _ = reply(&mut stream, err);
            }
        }
    }

    fn exec(
        &mut self,
        mut stream: UnixStream,
        id: String,
        process: &serde_json::Value,
        stdin: bool,
        size: Option<(u16, u16)>,
    ) {
        if self.init.pid.is_none() || self.init.exit.is_some() {
            let _ = stream.write_all(&frame(FRAME_START_FAILED, b"container is not running"));
            return;
        }
        let tty = process["terminal"].as_bool().unwrap_or(false);
        // The runtime reads the process from a file; the id is the daemon's random hex.
        let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let path = self.config.bundle.join(format!("exec-{safe}.json"));
        let written = serde_json::to_vec(process)
            .map_err(io::Error::other)
            .and_then(|data| std::fs::write(&path, data));
        let result = match written {
            Ok(()) => self.spawn(Spawn::Exec { process: &path }, stdin, tty.then_some(size)),
            Err(e) => Err(format!("write exec process: {e}")),
        };
        let _ = std::fs::remove_file(&path);
        match result {
            Ok(mut proc) => {
                let pid = proc.pid.unwrap_or(0);
                if let Some(code) = self.reaped.remove(&pid) {
                    proc.record_exit(code);
                }
                let started = serde_json::to_vec(&Started { pid }).unwrap_or_default();
                let mut e = Exec {
                    id,
                    proc,
                    conn: stream,
                    reading: stdin,
                    alive: true,
                };
                e.send(FRAME_STARTED, &started);
                self.execs.push(e);
            }
            Err(msg) => {
                let _ = stream.write_all(&frame(FRAME_START_FAILED, msg.as_bytes()));
            }
        }
    }

    /// Forks the creator, which builds and starts the process through libcontainer, and takes
    /// the process's ends of its stdio, or of its terminal when `tty` is given (with the
    /// terminal's initial size, if known).
    fn spawn(
        &mut self,
        what: Spawn<'_>,
        with_stdin: bool,
        tty: Option<Option<(u16, u16)>>,
    ) -> Result<Proc, String> {
        let e = |e: io::Error| e.to_string();
        let size = tty.flatten();
        let tty = tty.is_some();
        let console = if tty {
            let name = format!("console-{}.sock", self.execs.len());
            Some(crate::console::ConsoleSocket::bind(&self.config.bundle, &name).map_err(e)?)
        } else {
            None
        };
        // With a terminal the process's stdio is the pty slave; the pipes stay unused.
        let (out_r, out_w) = pipe().map_err(e)?;
        let (err_r, err_w) = pipe().map_err(e)?;
        let (in_r, in_w) = if with_stdin && !tty {
            let (r, w) = pipe().map_err(e)?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let (status_r, status_w) = pipe().map_err(e)?;

        // SAFETY: the shim is single-threaded, so the child may run arbitrary code after fork.
        match unsafe { fork() }.map_err(|e| e.to_string())? {
            ForkResult::Child => {
                drop((out_r, err_r, status_r, in_w));
                let io = CreatorIo {
                    stdin: in_r,
                    stdout: out_w,
                    stderr: err_w,
                    console: console.as_ref().map(|c| c.path().to_path_buf()),
                };
                let code = creator(&self.config, &what, io, status_w);
                // SAFETY: _exit ends the forked child without running the parent's destructors
                // (the console socket's Drop would unlink the parent's socket).
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop((out_w, err_w, status_w, in_r));
                let (msg, early) = wait_for_creator(status_r, console.as_ref(), size);
                // Reap the creator now; the process has been re-parented to us by then.
                let _ = waitpid(child, None);
                let text = String::from_utf8_lossy(&msg).to_string();
                let Some(pid) = text
                    .strip_prefix("ok ")
                    .and_then(|p| p.trim().parse::<i32>().ok())
                else {
                    return Err(text
                        .strip_prefix("error ")
                        .unwrap_or("container creation failed")
                        .trim()
                        .to_string());
                };
                let mut proc = Proc {
                    pid: Some(pid),
                    ..Proc::default()
                };
                match console {
                    Some(console) => {
                        let master = match early {
                            Some(m) => m,
                            None => {
                                let m = console
                                    .receive_master(Duration::from_secs(5))
                                    .map_err(|e| format!("terminal: {e}"))?;
                                if let Some((h, w)) = size {
                                    let _ = crate::console::set_window_size(&m, h, w);
                                }
                                m
                            }
                        };
                        let input = if with_stdin {
                            Some(master.try_clone().map_err(e)?)
                        } else {
                            None
                        };
                        proc.stdin = input;
                        proc.tty = Some(master.try_clone().map_err(e)?);
                        proc.stdout = Some(master);
                    }
                    None => {
                        proc.stdout = Some(out_r);
                        proc.stderr = Some(err_r);
                        proc.stdin = in_w;
                    }
                }
                Ok(proc)
            }
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let _ = self.log.flush_partial();
        let mut exit = self.init.exit.clone().unwrap_or(ExitInfo {
            exit_code: 255,
            exited_at: Utc::now(),
            oom_killed: false,
        });
        // Read before the delete below removes the cgroup and its counters.
        exit.oom_killed = oom_killed(&self.config.bundle);
        let data = serde_json::to_vec(&exit).map_err(io::Error::other)?;
        write_atomic(&self.config.exit_file, &data)?;
        let payload = data.clone();
        self.broadcast(FRAME_EXITED, &payload);
        self.clients.clear();
        // Execs die with the container's PID namespace; whatever they had not reported yet
        // ends as killed.
        self.reap();
        for mut e in std::mem::take(&mut self.execs) {
            let info = e.proc.exit.clone().unwrap_or(ExitInfo {
                exit_code: 137,
                exited_at: Utc::now(),
                oom_killed: false,
            });
            let data = serde_json::to_vec(&info).unwrap_or_default();
            e.send(FRAME_EXITED, &data);
        }
        delete_container(&self.config);
        let _ = std::fs::remove_file(&self.config.socket);
        Ok(())
    }
}

/// Reads the creator's status to its end. Meanwhile, the pty master is taken as soon as the
/// container's process sends it and given its size at once: libcontainer applies no
/// `consoleSize`, and the process runs its first instructions only a moment later, so a
/// program that asks for its window size at start sees the client's.
fn wait_for_creator(
    mut status: File,
    console: Option<&crate::console::ConsoleSocket>,
    size: Option<(u16, u16)>,
) -> (Vec<u8>, Option<File>) {
    let mut msg = Vec::new();
    let mut master: Option<File> = None;
    let mut chunk = [0u8; 4096];
    loop {
        let listen = console.filter(|_| master.is_none());
        let mut fds = vec![PollFd::new(status.as_fd(), PollFlags::POLLIN)];
        if let Some(c) = listen {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let hit = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| r.intersects(hit));
        let status_ready = ready(&fds[0]);
        let console_ready = fds.get(1).is_some_and(ready);
        drop(fds);
        if let (true, Some(c)) = (console_ready, listen) {
            if let Ok(m) = c.receive_master(Duration::from_secs(1)) {
                if let Some((h, w)) = size {
                    let _ = crate::console::set_window_size(&m, h, w);
                }
                master = Some(m);
            }
        }
        if status_ready {
            match status.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => msg.extend_from_slice(&chunk[..n]),
            }
        }
    }
    (msg, master)
}

/// The exit code Docker gives a process that could not be started.
fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("not found") || msg.contains("no such file") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        128
    }
}

/// Drops the shim's startup working set once the container runs.
///
/// A shim lives as long as its container, and hundreds may run at once, so its resident size
/// matters. Parsing the config, logging setup and forking the creator touch code and read-only
/// data all over the binary and libc, and the kernel's fault-around maps 64 KiB per fault, so
/// several MiB stay mapped although the poll loop needs a few pages. Clean, read-only file
/// pages stay in the page cache (shared with the daemon): unmapping them from this process
/// costs nothing, and the loop faults back in only what it uses. A mapping qualifies only when
/// it is file-backed, not writable and has no anonymous (copied-on-write) pages, such as RELRO
/// data after relocation: dropping those would lose their contents.
fn release_startup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            candidate = (perms.starts_with('r')
                && perms.as_bytes().get(1) == Some(&b'-')
                && perms.ends_with('p')
                && path.starts_with('/'))
            .then_some((start, end));
        } else if first == "Anonymous:" {
            let anon = fields.next().unwrap_or("1");
            if let (Some((start, end)), "0") = (candidate.take(), anon) {
                // SAFETY: the range is a whole private, non-writable, file-backed mapping of
                // this process without copied-on-write pages; MADV_DONTNEED only drops
                // page-table entries, and later accesses refault the identical bytes.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
            }
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's ends of its stdio, handed to the creator.
struct CreatorIo {
    stdin: Option<File>,
    stdout: File,
    stderr: File,
    /// The console socket to send the pty master to, when the process has a terminal.
    console: Option<std::path::PathBuf>,
}

/// Runs in the forked creator: builds and starts the container's init, or an exec in it,
/// reports `ok <pid>` or `error <message>` on the status pipe, and exits.
fn creator(config: &ShimConfig, what: &Spawn<'_>, io: CreatorIo, mut status: File) -> i32 {
    // The shim blocks and ignores signals for itself; the container must not inherit that.
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring the default disposition installs no handler code.
    let _ = unsafe { signal::signal(Signal::SIGPIPE, signal::SigHandler::SigDfl) };
    let result = (|| -> Result<i32, libcontainer::error::LibcontainerError> {
        use libcontainer::container::builder::ContainerBuilder;
        use libcontainer::syscall::syscall::SyscallType;
        let stdin: OwnedFd = match io.stdin {
            Some(f) => f.into(),
            None => File::open("/dev/null")
                .map_err(libcontainer::error::LibcontainerError::OtherIO)?
                .into(),
        };
        let builder = ContainerBuilder::new(config.id.clone(), SyscallType::Linux)
            .with_root_path(&config.runtime_root)?
            .with_executor(crate::executor::DockerExecutor)
            .with_console_socket(io.console.as_deref())
            .with_stdin(stdin)
            .with_stdout(OwnedFd::from(io.stdout))
            .with_stderr(OwnedFd::from(io.stderr))
            .validate_id()?;
        match what {
            Spawn::Init => {
                let mut container = builder
                    .as_init(&config.bundle)
                    .with_systemd(false)
                    .with_detach(true)
                    .build()?;
                // The init waits for `start`: settings libcontainer leaves out go in now.
                apply_oom_killer_setting(&config.bundle)
                    .map_err(libcontainer::error::LibcontainerError::OtherIO)?;
                container.start()?;
                Ok(container.pid().map(|p| p.as_raw()).unwrap_or(0))
            }
            Spawn::Exec { process } => {
                let pid = builder
                    .as_tenant()
                    .with_process(Some(*process))
                    .with_detach(true)
                    .build()?;
                Ok(pid.as_raw())
            }
        }
    })();
    match result {
        Ok(pid) => {
            let _ = write!(status, "ok {pid}");
            0
        }
        Err(e) => {
            let _ = write!(status, "error {}", error_chain(&e));
            if matches!(what, Spawn::Init) {
                // A failed create leaves libcontainer state behind; clean it like
                // `delete --force`. A failed exec leaves the running container alone.
                delete_container(config);
            }
            1
        }
    }
}

/// libcontainer nests the cause (e.g. our executor's message) several levels deep.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// `linux.resources.memory.disableOOMKiller` of the bundle's spec, applied to its cgroup.
fn apply_oom_killer_setting(bundle: &Path) -> io::Result<()> {
    let spec =
        oci_spec::runtime::Spec::load(bundle.join("config.json")).map_err(io::Error::other)?;
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let disabled = linux
        .resources()
        .as_ref()
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    match (
        disabled,
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
    ) {
        (true, Some(path)) => crate::cgroup::disable_oom_killer(path),
        _ => Ok(()),
    }
}

/// Whether the OOM killer struck in the container's cgroup (Docker's `State.OOMKilled`).
fn oom_killed(bundle: &Path) -> bool {
    let Ok(spec) = oci_spec::runtime::Spec::load(bundle.join("config.json")) else {
        return false;
    };
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .and_then(|p| p.to_str().map(crate::cgroup::oom_kills))
        .is_some_and(|n| n > 0)
}

fn delete_container(config: &ShimConfig) {
    use libcontainer::container::Container;
    let root = config.runtime_root.join(&config.id);
    if let Ok(mut c) = Container::load(root.clone()) {
        let _ = c.delete(true);
    }
    let _ = std::fs::remove_dir_all(root);
}

fn read_line(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte on purpose: anything after the newline belongs to the next phase (stdin).
    while line.len() < 64 * 1024 {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => return Ok(line),
            _ => line.push(byte[0]),
        }
    }
    Ok(line)
}

fn reply(stream: &mut UnixStream, error: Option<String>) -> io::Result<()> {
    let r = Reply {
        error,
        pid: 0,
        exited: None,
    };
    let mut line = serde_json::to_vec(&r).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Crash-safe write: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}
