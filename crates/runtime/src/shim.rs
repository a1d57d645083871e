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
    Stdin { close_on_eof: bool },
}

struct Client {
    stream: UnixStream,
    role: Role,
}

struct Shim {
    config: ShimConfig,
    log: LogWriter,
    clients: Vec<Client>,
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    init_pid: Option<i32>,
    /// Children reaped before we knew which one was init.
    reaped: HashMap<i32, i32>,
    exit: Option<ExitInfo>,
    exited_at: Option<Instant>,
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
        stdout: None,
        stderr: None,
        stdin: None,
        init_pid: None,
        reaped: HashMap::new(),
        exit: None,
        exited_at: None,
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
            if self.finished() {
                return self.finish();
            }
            // Indices into `fds`: 0 listener, 1 signals, then stdout, stderr, then clients.
            let mut fds = vec![
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            let out_fd = self.stdout.as_ref().map(|f| f.as_fd());
            let err_fd = self.stderr.as_ref().map(|f| f.as_fd());
            for f in [out_fd, err_fd].into_iter().flatten() {
                fds.push(PollFd::new(f, PollFlags::POLLIN));
            }
            let first_client = fds.len();
            for c in &self.clients {
                // Subscribers are polled too, to notice when they hang up.
                fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            // After init exits, wait at most a second for the pipes to drain.
            let timeout = if self.exit.is_some() {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = |i: usize| {
                fds[i].revents().is_some_and(|r| {
                    !(r & (PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)).is_empty()
                })
            };
            let listener_ready = ready(0);
            let signals_ready = ready(1);
            let mut pipe_ready = Vec::new();
            let mut idx = 2;
            if out_fd.is_some() {
                pipe_ready.push((FRAME_STDOUT, ready(idx)));
                idx += 1;
            }
            if err_fd.is_some() {
                pipe_ready.push((FRAME_STDERR, ready(idx)));
            }
            let client_ready: Vec<bool> = (first_client..fds.len()).map(ready).collect();
            drop(fds);

            if signals_ready {
                while let Ok(Some(_)) = sigfd.read_signal() {}
                self.reap();
            }
            for (kind, is_ready) in pipe_ready {
                if is_ready {
                    self.pump(kind, &mut buf);
                }
            }
            // Walk clients backwards so removals keep earlier indices valid.
            for i in (0..client_ready.len()).rev() {
                if client_ready[i] {
                    self.service_client(i, &mut buf);
                }
            }
            if listener_ready {
                if let Ok((stream, _)) = listener.accept() {
                    self.accept(stream);
                }
            }
        }
    }

    /// Done when init has exited and its output is drained (or a second has passed).
    fn finished(&self) -> bool {
        match self.exited_at {
            Some(at) => {
                (self.stdout.is_none() && self.stderr.is_none())
                    || at.elapsed() > Duration::from_secs(1)
            }
            None => false,
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
        if self.init_pid == Some(pid) {
            self.record_exit(code);
        } else {
            self.reaped.insert(pid, code);
        }
    }

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

    /// Moves container output to the log and to every subscriber.
    fn pump(&mut self, kind: u8, buf: &mut [u8]) {
        let pipe = if kind == FRAME_STDOUT {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let Some(file) = pipe.as_mut() else { return };
        match file.read(buf) {
            Ok(0) | Err(_) => *pipe = None,
            Ok(n) => {
                let data = &buf[..n];
                let _ = self.log.write(kind, data);
                self.broadcast(kind, data);
            }
        }
    }

    fn broadcast(&mut self, kind: u8, payload: &[u8]) {
        let frame = frame(kind, payload);
        self.clients.retain_mut(|c| match c.role {
            // A subscriber that cannot keep up for the send timeout is dropped rather than
            // stalling the container's output.
            Role::Subscriber => c.stream.write_all(&frame).is_ok(),
            Role::Stdin { .. } => true,
        });
    }

    fn service_client(&mut self, i: usize, buf: &mut [u8]) {
        let close_on_eof = match self.clients[i].role {
            Role::Subscriber => {
                // Subscribers never send after their request: readable means hung up.
                let mut probe = [0u8; 1];
                if matches!(self.clients[i].stream.read(&mut probe), Ok(0) | Err(_)) {
                    self.clients.remove(i);
                }
                return;
            }
            Role::Stdin { close_on_eof } => close_on_eof,
        };
        match self.clients[i].stream.read(buf) {
            Ok(0) | Err(_) => {
                self.clients.remove(i);
                if close_on_eof {
                    self.stdin = None;
                }
            }
            Ok(n) => {
                if let Some(stdin) = self.stdin.as_mut() {
                    if stdin.write_all(&buf[..n]).is_err() {
                        self.stdin = None;
                    }
                }
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
                if self.init_pid.is_some() || self.exit.is_some() {
                    let _ =
                        stream.write_all(&frame(FRAME_START_FAILED, b"container already started"));
                    return;
                }
                match self.start() {
                    Ok(pid) => {
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
                        self.record_exit(
                            if msg.contains("not found") || msg.contains("no such file") {
                                127
                            } else if msg.contains("permission denied")
                                || msg.contains("is a directory")
                            {
                                126
                            } else {
                                128
                            },
                        );
                        self.stdout = None;
                        self.stderr = None;
                    }
                }
            }
            Request::Subscribe => {
                if let Some(pid) = self.init_pid {
                    let started = serde_json::to_vec(&Started { pid }).unwrap_or_default();
                    if stream.write_all(&frame(FRAME_STARTED, &started)).is_ok() {
                        self.clients.push(Client {
                            stream,
                            role: Role::Subscriber,
                        });
                    }
                } else {
                    self.clients.push(Client {
                        stream,
                        role: Role::Subscriber,
                    });
                }
            }
            Request::Kill { signal } => {
                let err = match (self.init_pid, &self.exit) {
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
                    pid: self.init_pid.unwrap_or(0),
                    exited: self.exit.clone(),
                };
                let mut line = serde_json::to_vec(&r).unwrap_or_default();
                line.push(b'\n');
                let _ = stream.write_all(&line);
            }
            Request::Stdin { close_on_eof } => {
                self.clients.push(Client {
                    stream,
                    role: Role::Stdin { close_on_eof },
                });
            }
        }
    }

    /// Forks the creator, which builds and starts the container through libcontainer.
    fn start(&mut self) -> Result<i32, String> {
        let (out_r, out_w) = pipe().map_err(|e| e.to_string())?;
        let (err_r, err_w) = pipe().map_err(|e| e.to_string())?;
        let (in_r, in_w) = if self.config.stdin {
            let (r, w) = pipe().map_err(|e| e.to_string())?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let (status_r, status_w) = pipe().map_err(|e| e.to_string())?;

        // SAFETY: the shim is single-threaded, so the child may run arbitrary code after fork.
        match unsafe { fork() }.map_err(|e| e.to_string())? {
            ForkResult::Child => {
                drop((out_r, err_r, status_r, in_w));
                let code = creator(&self.config, in_r, out_w, err_w, status_w);
                // SAFETY: _exit ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop((out_w, err_w, status_w, in_r));
                let mut msg = Vec::new();
                let mut status_r = status_r;
                let _ = status_r.read_to_end(&mut msg);
                // Reap the creator now; init has been re-parented to us by then.
                let _ = waitpid(child, None);
                let text = String::from_utf8_lossy(&msg).to_string();
                match text
                    .strip_prefix("ok ")
                    .and_then(|p| p.trim().parse::<i32>().ok())
                {
                    Some(pid) => {
                        self.init_pid = Some(pid);
                        self.stdout = Some(out_r);
                        self.stderr = Some(err_r);
                        self.stdin = in_w;
                        if let Some(code) = self.reaped.remove(&pid) {
                            self.record_exit(code);
                        }
                        release_startup_pages();
                        Ok(pid)
                    }
                    None => Err(text
                        .strip_prefix("error ")
                        .unwrap_or("container creation failed")
                        .trim()
                        .to_string()),
                }
            }
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let _ = self.log.flush_partial();
        let mut exit = self.exit.clone().unwrap_or(ExitInfo {
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
        delete_container(&self.config);
        let _ = std::fs::remove_file(&self.config.socket);
        Ok(())
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

/// Runs in the forked creator: builds and starts the container, reports `ok <pid>` or
/// `error <message>` on the status pipe, and exits.
fn creator(
    config: &ShimConfig,
    stdin: Option<File>,
    stdout: File,
    stderr: File,
    mut status: File,
) -> i32 {
    // The shim blocks and ignores signals for itself; the container must not inherit that.
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring the default disposition installs no handler code.
    let _ = unsafe { signal::signal(Signal::SIGPIPE, signal::SigHandler::SigDfl) };
    let result = (|| -> Result<i32, libcontainer::error::LibcontainerError> {
        use libcontainer::container::builder::ContainerBuilder;
        use libcontainer::syscall::syscall::SyscallType;
        let stdin: OwnedFd = match stdin {
            Some(f) => f.into(),
            None => File::open("/dev/null")
                .map_err(libcontainer::error::LibcontainerError::OtherIO)?
                .into(),
        };
        let mut container = ContainerBuilder::new(config.id.clone(), SyscallType::Linux)
            .with_root_path(&config.runtime_root)?
            .with_executor(crate::executor::DockerExecutor)
            .with_stdin(stdin)
            .with_stdout(OwnedFd::from(stdout))
            .with_stderr(OwnedFd::from(stderr))
            .validate_id()?
            .as_init(&config.bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()?;
        container.start()?;
        Ok(container.pid().map(|p| p.as_raw()).unwrap_or(0))
    })();
    match result {
        Ok(pid) => {
            let _ = write!(status, "ok {pid}");
            0
        }
        Err(e) => {
            let _ = write!(status, "error {}", error_chain(&e));
            // A failed create leaves libcontainer state behind; clean it like `delete --force`.
            delete_container(config);
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
