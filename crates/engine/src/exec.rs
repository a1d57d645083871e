//! `exec`: more processes in a running container.
//!
//! An exec is created (a record, like dockerd's exec config), then started: the container's
//! shim runs it through libcontainer's tenant builder, so it joins every namespace and the
//! cgroup of the container, and the shim reaps it and reports its exit. Records live in memory
//! only, as in dockerd: an exec does not outlive the daemon's knowledge of it.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use berth_runtime::{ShimError, ShimEvent};

use crate::error::Context;
use crate::types::{LogRecord, Status, StdStream};
use crate::{lock, Engine, EngineError, Result};

/// What `POST /containers/{id}/exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    /// The terminal's initial (height, width).
    pub console_size: Option<(u32, u32)>,
}

/// An exec as `GET /exec/{id}/json` shows it.
#[derive(Debug, Clone)]
pub struct ExecInspect {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    /// None until the process has exited.
    pub exit_code: Option<i32>,
    pub pid: i32,
}

/// The live ends of a started exec: its output until it exits, and its stdin when attached
/// (an empty chunk is the end of input; dropping the sender without one is a detach).
pub struct ExecAttachment {
    pub output: mpsc::Receiver<LogRecord>,
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub tty: bool,
}

#[derive(Default)]
pub(crate) struct ExecDb {
    by_id: HashMap<String, ExecEntry>,
}

struct ExecEntry {
    info: ExecInspect,
    started: bool,
    /// Set once the exit is known.
    done: watch::Sender<bool>,
}

/// Finished execs kept per container for `exec inspect`; dockerd keeps them until the
/// container stops. Beyond this many the oldest finished ones go first.
const KEEP_FINISHED: usize = 128;

impl Engine {
    pub fn create_exec(&self, container: &str, config: ExecConfig) -> Result<String> {
        let c = self.inspect_container(container)?;
        check_can_exec(&c)?;
        if config.cmd.is_empty() {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let id = crate::names::random_id();
        let (done, _) = watch::channel(false);
        let mut db = lock(&self.inner.execs);
        prune_finished(&mut db, &c.id);
        db.by_id.insert(
            id.clone(),
            ExecEntry {
                info: ExecInspect {
                    id: id.clone(),
                    container_id: c.id.clone(),
                    config: config.clone(),
                    running: false,
                    exit_code: None,
                    pid: 0,
                },
                started: false,
                done,
            },
        );
        drop(db);
        self.emit_container(
            &c.id,
            &format!("exec_create: {}", config.cmd.join(" ")),
            &[("execID", &id)],
        );
        Ok(id)
    }

    pub fn inspect_exec(&self, id: &str) -> Result<ExecInspect> {
        lock(&self.inner.execs)
            .by_id
            .get(id)
            .map(|e| e.info.clone())
            .ok_or_else(|| no_such_exec(id))
    }

    /// The execs of a container, for its inspect's `ExecIDs`.
    pub fn container_exec_ids(&self, container_id: &str) -> Vec<String> {
        lock(&self.inner.execs)
            .by_id
            .values()
            .filter(|e| e.info.container_id == container_id)
            .map(|e| e.info.id.clone())
            .collect()
    }

    /// Starts the exec. Detached (`attach` false), the output is discarded and the call returns
    /// once the process runs; attached, the output streams until the process exits, and its
    /// exit code is recorded before the output ends.
    pub async fn start_exec(&self, id: &str, attach: bool) -> Result<ExecAttachment> {
        let info = {
            let mut db = lock(&self.inner.execs);
            let e = db.by_id.get_mut(id).ok_or_else(|| no_such_exec(id))?;
            if e.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            e.started = true;
            e.info.clone()
        };
        match self.run_exec(&info, attach).await {
            Ok(a) => Ok(a),
            Err((err, code)) => {
                self.finish_exec(id, code);
                Err(err)
            }
        }
    }

    async fn run_exec(
        &self,
        info: &ExecInspect,
        attach: bool,
    ) -> std::result::Result<ExecAttachment, (EngineError, i32)> {
        let refuse = |e: EngineError| (e, 126);
        let (cid, _op, live) = self.lookup(&info.container_id).map_err(refuse)?;
        let c = self.inspect_container(&cid).map_err(refuse)?;
        check_can_exec(&c).map_err(refuse)?;
        let shim = lock(&live)
            .shim
            .clone()
            .ok_or_else(|| refuse(not_running(&cid)))?;
        let engine = self.clone();
        let cfg = info.config.clone();
        let process = tokio::task::spawn_blocking(move || engine.exec_process(&c, &cfg))
            .await
            .map_err(|e| refuse(EngineError::internal(e.to_string())))?
            .map_err(refuse)?;
        let cfg = &info.config;
        let session = shim
            .exec(
                &info.id,
                process,
                attach && cfg.attach_stdin,
                cfg.console_size.map(|(h, w)| (clamp(h), clamp(w))),
            )
            .await
            .map_err(|e| match e {
                ShimError::StartFailed(m) => {
                    let msg = crate::lifecycle::start_error_message(&m);
                    let code = if msg.contains("executable file not found")
                        || msg.contains("no such file or directory")
                    {
                        127
                    } else {
                        126
                    };
                    (
                        EngineError::invalid(format!(
                            "OCI runtime exec failed: exec failed: unable to start container \
                             process: {msg}: unknown"
                        )),
                        code,
                    )
                }
                other => (EngineError::internal(other.to_string()), 126),
            })?;
        {
            let mut db = lock(&self.inner.execs);
            if let Some(e) = db.by_id.get_mut(&info.id) {
                e.info.running = true;
                e.info.pid = session.pid;
            }
        }
        self.emit_container(
            &cid,
            &format!("exec_start: {}", cfg.cmd.join(" ")),
            &[("execID", &info.id)],
        );

        let (out_tx, out_rx) = mpsc::channel(256);
        let stdin = if attach && cfg.attach_stdin {
            let (tx, mut rx) = mpsc::channel::<Bytes>(64);
            let mut w = session.stdin;
            let mut done = self.exec_done(&info.id);
            let tty = cfg.tty;
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if chunk.is_empty() {
                        // The client's input ended: the process sees EOF, unless it reads a
                        // terminal (dockerd never closes those).
                        if !tty {
                            let _ = w.shutdown().await;
                        }
                        break;
                    }
                    if w.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // A detach leaves the process's stdin open; the shim reads the connection's
                // end as the daemon going away, so it stays until the process is done.
                let _ = done.wait_for(|d| *d).await;
                drop(w);
            });
            Some(tx)
        } else {
            // Kept open until the process ends: closing it would not matter to a process
            // without stdin, but the shim reads a hang-up as the daemon going away.
            let w = session.stdin;
            let mut done = self.exec_done(&info.id);
            tokio::spawn(async move {
                let _ = done.wait_for(|d| *d).await;
                drop(w);
            });
            None
        };
        let (want_out, want_err) = (attach && cfg.attach_stdout, attach && cfg.attach_stderr);
        let engine = self.clone();
        let id = info.id.clone();
        let mut events = session.events;
        tokio::spawn(async move {
            let code = loop {
                match events.next().await {
                    Ok(Some(ShimEvent::Output { stream, data })) => {
                        let (wanted, stream) = if stream == 2 {
                            (want_err, StdStream::Stderr)
                        } else {
                            (want_out, StdStream::Stdout)
                        };
                        if wanted {
                            let record = LogRecord {
                                stream,
                                time: Utc::now(),
                                data,
                            };
                            // A reader that went away does not stop the process.
                            let _ = out_tx.send(record).await;
                        }
                    }
                    Ok(Some(ShimEvent::Exited(exit))) => break exit.exit_code,
                    Ok(Some(ShimEvent::Started { .. })) => {}
                    // The shim went away with the container.
                    Ok(None) | Err(_) => break 137,
                }
            };
            // Recorded before the output ends: a client inspects right after its stream closes.
            engine.finish_exec(&id, code);
            drop(out_tx);
        });
        Ok(ExecAttachment {
            output: out_rx,
            stdin,
            tty: cfg.tty,
        })
    }

    fn exec_done(&self, id: &str) -> watch::Receiver<bool> {
        match lock(&self.inner.execs).by_id.get(id) {
            Some(e) => e.done.subscribe(),
            None => watch::channel(true).1,
        }
    }

    fn finish_exec(&self, id: &str, code: i32) {
        let container = {
            let mut db = lock(&self.inner.execs);
            let Some(e) = db.by_id.get_mut(id) else {
                return;
            };
            e.info.running = false;
            e.info.exit_code = Some(code);
            e.done.send_replace(true);
            e.info.container_id.clone()
        };
        let code = code.to_string();
        self.emit_container(
            &container,
            "exec_die",
            &[("execID", id), ("exitCode", code.as_str())],
        );
    }

    /// Runs `cmd` in the container and collects its output, for health checks; the process
    /// is killed with the container's PID namespace only, so a `timeout` leaves it running
    /// but stops waiting (dockerd does the same).
    pub(crate) async fn exec_collect(
        &self,
        container: &str,
        cmd: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<(Option<i32>, String)> {
        let id = self.create_exec(
            container,
            ExecConfig {
                cmd,
                attach_stdout: true,
                attach_stderr: true,
                ..ExecConfig::default()
            },
        )?;
        let mut a = self.start_exec(&id, true).await?;
        let mut output = Vec::new();
        let collect = async {
            while let Some(r) = a.output.recv().await {
                // dockerd keeps the first 4 KiB of a probe's output.
                if output.len() < 4096 {
                    output.extend_from_slice(&r.data);
                }
            }
        };
        let finished = tokio::time::timeout(timeout, collect).await.is_ok();
        output.truncate(4096);
        let text = String::from_utf8_lossy(&output).into_owned();
        let code = if finished {
            self.inspect_exec(&id)?.exit_code
        } else {
            None
        };
        Ok((code, text))
    }

    pub async fn resize_exec(&self, id: &str, height: u32, width: u32) -> Result<()> {
        let info = self.inspect_exec(id)?;
        if !info.running || !info.config.tty {
            // dockerd only resizes a running exec's terminal.
            return Err(EngineError::conflict(format!("exec {id} is not running")));
        }
        let (_, _, live) = self.lookup(&info.container_id)?;
        let shim = lock(&live).shim.clone();
        let shim = shim.ok_or_else(|| not_running(&info.container_id))?;
        shim.resize(Some(id), clamp(height), clamp(width))
            .await
            .map_err(|e| EngineError::internal(format!("resize exec: {e}")))
    }

    pub async fn resize_container_tty(&self, id: &str, height: u32, width: u32) -> Result<()> {
        let (cid, _, live) = self.lookup(id)?;
        let c = self.inspect_container(&cid)?;
        if !c.state.is_running() {
            return Err(not_running(&cid));
        }
        if !c.config.tty {
            // Nothing to resize; dockerd's runtime call is a no-op for pipes as well.
            return Ok(());
        }
        let shim = lock(&live).shim.clone();
        let shim = shim.ok_or_else(|| not_running(&cid))?;
        shim.resize(None, clamp(height), clamp(width))
            .await
            .map_err(|e| EngineError::internal(format!("resize tty: {e}")))
    }

    /// The OCI process of an exec: the container's, with the exec's command, environment,
    /// user and working directory. Blocking (reads the bundle and the container's passwd).
    fn exec_process(
        &self,
        c: &crate::types::Container,
        cfg: &ExecConfig,
    ) -> Result<serde_json::Value> {
        let bundle = self.bundle_dir(&c.id);
        let spec_bytes =
            std::fs::read(bundle.join("config.json")).ctx(|| "read the container's spec".into())?;
        let spec: serde_json::Value = serde_json::from_slice(&spec_bytes)
            .map_err(|e| EngineError::internal(format!("the container's spec: {e}")))?;
        let rootfs = spec["root"]["path"]
            .as_str()
            .map(std::path::PathBuf::from)
            .ok_or_else(|| EngineError::internal("the container's spec has no root"))?;
        let user_spec = if cfg.user.is_empty() {
            &c.config.user
        } else {
            &cfg.user
        };
        let user = berth_runtime::user::resolve(&rootfs, user_spec)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let env = exec_env(&c.config.env, &c.config.hostname, cfg, &user.home);
        let input = berth_runtime::spec::ExecInput {
            args: cfg.cmd.clone(),
            env,
            cwd: if cfg.working_dir.is_empty() {
                c.config.working_dir.clone()
            } else {
                cfg.working_dir.clone()
            },
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            tty: cfg.tty,
            privileged: cfg.privileged,
        };
        berth_runtime::spec::exec_process(&spec, &input)
            .map_err(|e| EngineError::invalid(e.to_string()))
    }
}

/// dockerd's exec environment: the container's (with HOSTNAME, and TERM for a terminal), then
/// the exec's own variables replacing or appended; HOME from the user when nobody set it.
fn exec_env(container: &[String], hostname: &str, cfg: &ExecConfig, home: &str) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut env: Vec<String> = Vec::new();
    let set = |env: &mut Vec<String>, var: String| {
        let k = key(&var);
        match env.iter_mut().find(|e| key(e) == k) {
            Some(slot) => *slot = var,
            None => env.push(var),
        }
    };
    if !container.iter().any(|e| key(e) == "PATH") {
        set(&mut env, format!("PATH={}", DEFAULT_PATH));
    }
    set(&mut env, format!("HOSTNAME={hostname}"));
    if cfg.tty {
        set(&mut env, "TERM=xterm".into());
    }
    for e in container.iter().chain(&cfg.env) {
        set(&mut env, e.clone());
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The PATH a container gets when neither it nor its image sets one (moby's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn clamp(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn check_can_exec(c: &crate::types::Container) -> Result<()> {
    match c.state.status {
        Status::Paused => Err(EngineError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        ))),
        Status::Running => Ok(()),
        Status::Restarting => Err(EngineError::conflict(format!(
            "Container {} is restarting, wait until the container is running",
            c.id
        ))),
        _ => Err(not_running(&c.id)),
    }
}

fn not_running(id: &str) -> EngineError {
    EngineError::conflict(format!("container {id} is not running"))
}

fn no_such_exec(id: &str) -> EngineError {
    EngineError::not_found(format!("No such exec instance: {id}"))
}

fn prune_finished(db: &mut ExecDb, container: &str) {
    let finished: Vec<String> = db
        .by_id
        .values()
        .filter(|e| e.info.container_id == container && e.info.exit_code.is_some())
        .map(|e| e.info.id.clone())
        .collect();
    if finished.len() >= KEEP_FINISHED {
        for id in finished.iter().take(finished.len() + 1 - KEEP_FINISHED) {
            db.by_id.remove(id);
        }
    }
}

/// Forgets the execs of a removed container.
pub(crate) fn forget_container(db: &Mutex<ExecDb>, container: &str) {
    lock(db)
        .by_id
        .retain(|_, e| e.info.container_id != container);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_dockerds() {
        let cfg = ExecConfig {
            env: vec!["A=1".into(), "PATH=/x".into()],
            tty: true,
            ..ExecConfig::default()
        };
        let env = exec_env(&["PATH=/usr/bin".into(), "B=2".into()], "h1", &cfg, "/root");
        assert_eq!(
            env,
            [
                "HOSTNAME=h1",
                "TERM=xterm",
                "PATH=/x",
                "B=2",
                "A=1",
                "HOME=/root"
            ]
        );
        let plain = exec_env(&[], "h", &ExecConfig::default(), "/home/u");
        assert!(plain[0].starts_with("PATH=/usr/local/sbin"));
        assert!(!plain.iter().any(|e| e.starts_with("TERM=")));
        assert_eq!(plain.last().map(String::as_str), Some("HOME=/home/u"));
    }
}
