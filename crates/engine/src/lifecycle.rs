//! Running containers: start (through a shim), stop, kill, restart, wait, attach, the monitor
//! task that follows each running container, and re-attachment after a daemon restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_runtime::spec::{self, BindMount, NetworkNamespace, Resources, SpecInput};
use berth_runtime::{ExitInfo, ShimClient, ShimConfig, ShimError, ShimEvent};
use bytes::Bytes;
use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::containers::Live;
use crate::error::{Context, EngineError, Result};
use crate::types::*;
use crate::{files, lock, Engine};

/// Default cap of a container's json-file log when daemon.json sets none: Docker's unbounded
/// default fills disks (moby#27957), so we keep at most 3 × 10 MiB.
const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
const DEFAULT_LOG_MAX_FILES: u32 = 3;

/// Parses `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n <= 64 {
            return Ok(n);
        }
        return Err(EngineError::invalid(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| EngineError::invalid(format!("Invalid signal: {s}")))
}

/// Parses a size such as `10m`, `1g`, `512k` or a plain byte count (docker's log-opt format).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        'b' => (&s[..s.len() - 1], 1),
        _ => (s.as_str(), 1),
    };
    num.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

/// Keeps the actionable part of a runtime error (`exec: "x": executable file not found ...`).
/// Whether a container's restart policy brings it back after exiting with `code`.
fn should_restart(c: &crate::types::Container, code: i32) -> bool {
    let p = &c.host_config.restart_policy;
    if c.state.has_been_manually_stopped {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (p.maximum_retry_count <= 0 || c.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

pub(crate) fn start_error_message(msg: &str) -> String {
    match msg.find("exec: \"") {
        Some(i) => msg[i..].to_string(),
        None => msg.to_string(),
    }
}

impl Engine {
    /// The binary `--init` runs: daemon.json's `init-path`, else what dockerd would find.
    fn init_binary(&self) -> Result<std::path::PathBuf> {
        if let Some(p) = &self.inner.config.init_path {
            return Ok(p.clone());
        }
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin".into());
        // Debian's docker-init is tini-static; only a static one runs in any rootfs.
        for name in ["docker-init", "tini-static"] {
            if let Some(found) = std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
            {
                return Ok(found);
            }
        }
        Err(EngineError::invalid(
            "exec: \"docker-init\": executable file not found in $PATH",
        ))
    }

    /// The daemon's `default-ulimits` with the container's own limits of the same name
    /// replacing them, as dockerd merges them.
    fn effective_ulimits(&self, own: &[crate::types::Ulimit]) -> Vec<(String, i64, i64)> {
        let defaults = self.inner.config.default_ulimits.iter();
        defaults
            .filter(|d| !own.iter().any(|u| u.name == d.name))
            .chain(own)
            .map(|u| (u.name.clone(), u.soft, u.hard))
            .collect()
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        let (id, op, live) = self.lookup(id)?;
        let _guard = op.lock().await;
        let result = self.start_locked(&id, &live).await;
        if let Err(e) = &result {
            // Like Docker, a `--rm` container that cannot start is removed: `docker run --rm`
            // waits for the removal before it reports the error.
            let auto_remove = self
                .inspect_container(&id)
                .map(|c| c.host_config.auto_remove && !c.state.is_running())
                .unwrap_or(false);
            if auto_remove && e.kind() != crate::ErrorKind::NotModified {
                if let Err(rm) = self.remove_stopped(&id).await {
                    tracing::warn!(id, error = %rm, "remove after failed start");
                }
            }
        }
        result
    }

    async fn start_locked(&self, id: &str, live: &Arc<Mutex<Live>>) -> Result<()> {
        let c = self.inspect_container(id)?;
        match c.state.status {
            Status::Running => return Err(EngineError::not_modified()),
            Status::Paused => {
                return Err(EngineError::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        // The network comes first: the container's command finds it up.
        let plan = match self.setup_network(&c).await {
            Ok(plan) => plan,
            Err(e) => {
                self.record_start_failure(id, &e.to_string(), 128);
                return Err(e);
            }
        };
        let engine = self.clone();
        let c2 = self.inspect_container(id)?;
        let prepared = tokio::task::spawn_blocking(move || engine.prepare_start(&c2, plan))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let shim_config = match prepared {
            Ok(cfg) => cfg,
            Err(e) => {
                self.teardown_network(id).await;
                self.record_start_failure(id, &e.to_string(), 128);
                return Err(e);
            }
        };
        match berth_runtime::spawn_and_start(&self.inner.config.shim_binary, &shim_config).await {
            Ok((pid, events)) => {
                let now = Utc::now();
                self.update_container(id, |c| {
                    c.state.status = Status::Running;
                    c.state.pid = pid;
                    c.state.started_at = Some(now);
                    c.state.exit_code = 0;
                    c.state.error.clear();
                    c.state.oom_killed = false;
                    c.state.has_been_manually_stopped = false;
                })?;
                self.emit_container(id, "start", &[]);
                let client = ShimClient::new(&shim_config.socket);
                let pending = {
                    let mut l = lock(live);
                    l.shim = Some(client.clone());
                    l.running.send_replace(true);
                    std::mem::take(&mut l.pending_stdin)
                };
                for (rx, close_on_eof) in pending {
                    self.forward_stdin(client.clone(), rx, close_on_eof);
                }
                self.spawn_monitor(id.to_string(), live.clone(), events);
                self.start_health_monitor(id);
                Ok(())
            }
            Err(e) => {
                let msg = match &e {
                    ShimError::StartFailed(m) => start_error_message(m),
                    other => other.to_string(),
                };
                let (code, kind) = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                {
                    (127, crate::ErrorKind::InvalidArgument)
                } else if msg.contains("permission denied") || msg.contains("is a directory") {
                    (126, crate::ErrorKind::InvalidArgument)
                } else {
                    (128, crate::ErrorKind::Internal)
                };
                let _ = self.inner.snapshots.unmount(id);
                let _ = std::fs::remove_dir_all(self.bundle_dir(id));
                let _ = std::fs::remove_file(self.exit_file(id));
                self.teardown_network(id).await;
                self.record_start_failure(id, &msg, code);
                Err(EngineError::new(
                    kind,
                    format!("failed to create task for container: {msg}"),
                ))
            }
        }
    }

    fn record_start_failure(&self, id: &str, msg: &str, code: i32) {
        let _ = self.update_container(id, |c| {
            c.state.error = msg.to_string();
            c.state.exit_code = code;
        });
    }

    /// Everything before the shim: rootfs mount, /etc files, user, spec, bundle. Blocking.
    fn prepare_start(&self, c: &Container, plan: crate::networks::NetPlan) -> Result<ShimConfig> {
        let rootfs = self
            .inner
            .snapshots
            .mount(&c.id)
            .ctx(|| format!("mount filesystem of {}", c.id))?;
        let dir = self.container_dir(&c.id);
        files::write(&dir, "hostname", &format!("{}\n", c.config.hostname))
            .ctx(|| "write hostname".into())?;
        let mut hosts = files::hosts(&c.host_config.extra_hosts);
        for (ip, names) in &plan.hosts {
            hosts.push_str(&format!("{ip}\t{names}\n"));
        }
        files::write(&dir, "hosts", &hosts).ctx(|| "write hosts".into())?;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = if plan.embedded_dns {
            // The embedded server answers container names and forwards the rest to the
            // host's resolvers (or the container's --dns).
            files::embedded_resolv_conf(
                &host_resolv,
                &c.host_config.dns_search,
                &c.host_config.dns_options,
            )
        } else {
            files::resolv_conf(
                &host_resolv,
                &c.host_config.dns,
                &c.host_config.dns_search,
                &c.host_config.dns_options,
            )
        };
        files::write(&dir, "resolv.conf", &resolv).ctx(|| "write resolv.conf".into())?;

        let user = berth_runtime::user::resolve(&rootfs, &c.config.user)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        if !c.config.working_dir.is_empty() {
            berth_runtime::user::mkdir_in_root(&rootfs, &c.config.working_dir, user.uid, user.gid)
                .ctx(|| format!("create working directory {}", c.config.working_dir))?;
        }
        let mut env = c.config.env.clone();
        let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        if !has(&env, "HOSTNAME") {
            env.push(format!("HOSTNAME={}", c.config.hostname));
        }
        if c.config.tty && !has(&env, "TERM") {
            env.push("TERM=xterm".into());
        }
        if !has(&env, "HOME") {
            env.push(format!("HOME={}", user.home));
        }
        let network = plan.namespace;
        let mut mounts = vec![
            BindMount {
                source: dir.join("resolv.conf"),
                destination: "/etc/resolv.conf".into(),
                readonly: false,
            },
            BindMount {
                source: dir.join("hostname"),
                destination: "/etc/hostname".into(),
                readonly: false,
            },
            BindMount {
                source: dir.join("hosts"),
                destination: "/etc/hosts".into(),
                readonly: false,
            },
        ];
        if network == NetworkNamespace::Host {
            mounts.retain(|m| m.destination != "/etc/hostname");
        }
        for m in &c.mounts {
            mounts.push(BindMount {
                source: std::path::PathBuf::from(&m.source),
                destination: m.destination.clone(),
                readonly: !m.rw,
            });
        }
        let mut argv = vec![c.path.clone()];
        argv.extend(c.args.iter().cloned());
        if c.host_config.init.unwrap_or(self.inner.config.init) {
            // A static init reaps zombies and forwards signals as PID 1; the rootfs need not
            // have a libc for it.
            mounts.push(BindMount {
                source: self.init_binary()?,
                destination: spec::INIT_PATH.into(),
                readonly: true,
            });
            argv.splice(0..0, [spec::INIT_PATH.to_string(), "--".to_string()]);
        }
        let input = SpecInput {
            rootfs: rootfs.clone(),
            readonly_rootfs: c.host_config.readonly_rootfs,
            args: argv,
            env,
            cwd: c.config.working_dir.clone(),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            hostname: if network == NetworkNamespace::Host {
                String::new()
            } else {
                c.config.hostname.clone()
            },
            tty: c.config.tty,
            privileged: c.host_config.privileged,
            cap_add: c.host_config.cap_add.clone(),
            cap_drop: c.host_config.cap_drop.clone(),
            no_new_privileges: c.host_config.security_opt.iter().any(|o| {
                o == "no-new-privileges"
                    || o == "no-new-privileges:true"
                    || o == "no-new-privileges=true"
            }),
            mounts,
            tmpfs: c
                .host_config
                .tmpfs
                .iter()
                .map(|(d, o)| (d.clone(), o.clone()))
                .collect(),
            cgroups_path: crate::manage::cgroups_path(&c.id),
            resources: Resources {
                memory: c.host_config.memory,
                memory_swap: c.host_config.memory_swap,
                nano_cpus: c.host_config.nano_cpus,
                cpu_shares: c.host_config.cpu_shares,
                pids_limit: c.host_config.pids_limit,
                cpuset_cpus: c.host_config.cpuset_cpus.clone(),
                cpuset_mems: c.host_config.cpuset_mems.clone(),
                oom_kill_disable: c.host_config.oom_kill_disable,
            },
            network,
            shm_size: c.host_config.shm_size,
            rlimits: self.effective_ulimits(&c.host_config.ulimits),
        };
        let spec = spec::build(&input).map_err(|e| EngineError::invalid(e.to_string()))?;
        let bundle = self.bundle_dir(&c.id);
        std::fs::create_dir_all(&bundle).ctx(|| format!("create {}", bundle.display()))?;
        spec::write(&bundle, &spec).ctx(|| "write runtime spec".into())?;
        let opt = |k: &str| {
            c.host_config
                .log_config
                .get(k)
                .or_else(|| self.inner.config.log_opts.get(k))
                .cloned()
        };
        let log_max_size = opt("max-size")
            .and_then(|s| parse_size(&s))
            .unwrap_or(DEFAULT_LOG_MAX_SIZE);
        let log_max_files = opt("max-file")
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_LOG_MAX_FILES);
        let _ = std::fs::remove_file(self.exit_file(&c.id));
        Ok(ShimConfig {
            id: c.id.clone(),
            bundle,
            runtime_root: self.inner.config.exec_root.join("runtime"),
            socket: self.shim_socket(&c.id),
            log_path: c.log_path.clone().into(),
            log_max_size,
            log_max_files,
            exit_file: self.exit_file(&c.id),
            stdin: c.config.open_stdin,
            tty: c.config.tty,
            console_size: c.host_config.console_size,
        })
    }

    /// Copies an attach's input to the container's stdin. An empty chunk is the end of the
    /// client's input, which closes stdin with `StdinOnce`; a sender dropped without one is a
    /// detach, which leaves stdin open for the next attach (as in dockerd).
    fn forward_stdin(&self, client: ShimClient, mut rx: mpsc::Receiver<Bytes>, close_on_eof: bool) {
        tokio::spawn(async move {
            let Ok(mut conn) = client.stdin().await else {
                return;
            };
            let mut eof = false;
            while let Some(chunk) = rx.recv().await {
                if chunk.is_empty() {
                    eof = true;
                    break;
                }
                if conn.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // Whatever was written is in the shim before stdin is closed.
            let _ = conn.shutdown().await;
            drop(conn);
            if eof && close_on_eof {
                let _ = client.close_stdin().await;
            }
        });
    }

    fn spawn_monitor(
        &self,
        id: String,
        live: Arc<Mutex<Live>>,
        mut events: berth_runtime::EventStream,
    ) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match events.next().await {
                    Ok(Some(ShimEvent::Output { stream, data })) => {
                        let record = LogRecord {
                            stream: if stream == 2 {
                                StdStream::Stderr
                            } else {
                                StdStream::Stdout
                            },
                            time: Utc::now(),
                            data,
                        };
                        let subs: Vec<_> = lock(&live)
                            .subscribers
                            .iter()
                            .filter(|(_, o, e)| if stream == 2 { *e } else { *o })
                            .map(|(tx, _, _)| tx.clone())
                            .collect();
                        for tx in subs {
                            // Back-pressure like Docker's attach: a slow reader slows the
                            // container's output rather than losing it.
                            let _ = tx.send(record.clone()).await;
                        }
                    }
                    Ok(Some(ShimEvent::Started { .. })) => {}
                    Ok(Some(ShimEvent::Exited(info))) => {
                        engine.handle_exit(&id, info).await;
                        return;
                    }
                    Ok(None) | Err(_) => {
                        // The shim is gone; its exit file says how the container ended.
                        let info = engine.read_exit_file(&id).unwrap_or(ExitInfo {
                            exit_code: 255,
                            exited_at: Utc::now(),
                            oom_killed: false,
                        });
                        engine.handle_exit(&id, info).await;
                        return;
                    }
                }
            }
        });
    }

    fn read_exit_file(&self, id: &str) -> Option<ExitInfo> {
        berth_store::atomic::read_json::<ExitInfo>(&self.exit_file(id))
            .ok()
            .flatten()
    }

    /// Records an exit (once per run), releases the rootfs, wakes waiters, and removes the
    /// container when it was created with `--rm`.
    pub(crate) async fn handle_exit(&self, id: &str, info: ExitInfo) {
        let Ok((_, op, live)) = self.lookup(id) else {
            return;
        };
        let updated = self.update_container(id, |c| {
            if !c.state.is_running() {
                return None;
            }
            c.state.status = Status::Exited;
            c.state.pid = 0;
            c.state.exit_code = info.exit_code;
            c.state.finished_at = Some(info.exited_at);
            c.state.oom_killed = info.oom_killed;
            Some(c.host_config.auto_remove)
        });
        let auto_remove = match updated {
            Ok(Some(auto_remove)) => auto_remove,
            _ => return,
        };
        let _ = std::fs::remove_file(self.exit_file(id));
        self.teardown_network(id).await;
        let engine = self.clone();
        let id_owned = id.to_string();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.inner.snapshots.unmount(&id_owned) {
                tracing::warn!(id = %id_owned, error = %e, "unmount rootfs");
            }
            let _ = std::fs::remove_dir_all(engine.bundle_dir(&id_owned));
        })
        .await;
        let waiters = {
            let mut l = lock(&live);
            l.subscribers.clear();
            l.shim = None;
            l.running.send_replace(false);
            std::mem::take(&mut l.exit_waiters)
        };
        for w in waiters {
            let _ = w.send(WaitResult {
                status_code: info.exit_code as i64,
                error: None,
            });
        }
        tracing::debug!(id, code = info.exit_code, "container exited");
        let code = info.exit_code.to_string();
        if info.oom_killed {
            self.emit_container(id, "oom", &[]);
        }
        self.emit_container(id, "die", &[("exitCode", code.as_str())]);
        if !auto_remove {
            self.maybe_restart(id, &info, &live, op.clone());
        }
        if auto_remove {
            let engine = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let _guard = op.lock().await;
                let stopped = engine
                    .inspect_container(&id)
                    .ok()
                    .filter(|c| !c.state.is_running());
                if let Some(c) = stopped {
                    match engine.remove_stopped(&id).await {
                        // `--rm` takes the container's anonymous volumes along, as Docker does.
                        Ok(()) => engine.remove_anonymous_volumes(&c.mounts),
                        Err(e) => tracing::warn!(id, error = %e, "auto-remove"),
                    }
                }
            });
        }
    }

    /// Applies the restart policy after an exit: `always` and `unless-stopped` unless stopped
    /// by hand, `on-failure[:N]` for a non-zero code up to N times; after Docker's backoff.
    fn maybe_restart(
        &self,
        id: &str,
        info: &ExitInfo,
        live: &Arc<Mutex<Live>>,
        op: Arc<tokio::sync::Mutex<()>>,
    ) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        if !should_restart(&c, info.exit_code) {
            return;
        }
        let ran = c
            .state
            .started_at
            .map(|s| info.exited_at - s)
            .unwrap_or_default();
        let delay = {
            let mut l = lock(live);
            l.restart_delay = if ran >= chrono::Duration::seconds(10) || l.restart_delay.is_zero() {
                Duration::from_millis(100)
            } else {
                (l.restart_delay * 2).min(Duration::from_secs(60))
            };
            l.restart_delay
        };
        let engine = self.clone();
        let id = id.to_string();
        let live = live.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _guard = op.lock().await;
            // Stopped by hand, removed or started meanwhile: the policy no longer applies.
            let Ok(c) = engine.inspect_container(&id) else {
                return;
            };
            if c.state.is_running() || !should_restart(&c, c.state.exit_code) {
                return;
            }
            if engine
                .update_container(&id, |c| c.restart_count += 1)
                .is_err()
            {
                return;
            }
            if let Err(e) = engine.start_locked(&id, &live).await {
                tracing::warn!(id, error = %e, "restart by policy");
            }
        });
    }

    /// Registers for the next exit before anything can cause it.
    fn exit_waiter(&self, live: &Arc<Mutex<Live>>) -> oneshot::Receiver<WaitResult> {
        let (tx, rx) = oneshot::channel();
        lock(live).exit_waiters.push(tx);
        rx
    }

    fn shim_of(&self, live: &Arc<Mutex<Live>>) -> Option<ShimClient> {
        lock(live).shim.clone()
    }

    pub(crate) async fn kill_and_wait(&self, id: &str, live: &Arc<Mutex<Live>>) -> Result<()> {
        if self.inspect_container(id)?.state.status == crate::types::Status::Paused {
            self.thaw(id).await?;
        }
        let rx = self.exit_waiter(live);
        if let Some(shim) = self.shim_of(live) {
            let _ = shim.kill(libc::SIGKILL).await;
        }
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(_) => Ok(()),
            Err(_) => Err(EngineError::internal(format!(
                "container {id} did not exit after SIGKILL"
            ))),
        }
    }

    /// Sends the stop signal, then SIGKILL after `timeout` seconds (None: the container's
    /// StopTimeout or 10 s; negative: wait forever).
    pub async fn stop_container(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let (id, op, live) = self.lookup(id)?;
        let _guard = op.lock().await;
        self.stop_locked(&id, &live, timeout, signal).await
    }

    async fn stop_locked(
        &self,
        id: &str,
        live: &Arc<Mutex<Live>>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let c = self.inspect_container(id)?;
        if !c.state.is_running() {
            return Err(EngineError::not_modified());
        }
        if c.state.status == crate::types::Status::Paused {
            self.thaw(id).await?;
        }
        let sig = parse_signal(
            signal
                .as_deref()
                .filter(|s| !s.is_empty())
                .or(c.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        self.update_container(id, |c| c.state.has_been_manually_stopped = true)?;
        let mut rx = self.exit_waiter(live);
        let shim = self.shim_of(live);
        if let Some(shim) = &shim {
            let _ = shim.kill(sig).await;
        }
        let secs = timeout.or(c.config.stop_timeout).unwrap_or(10);
        if secs >= 0 {
            if tokio::time::timeout(Duration::from_secs(secs as u64), &mut rx)
                .await
                .is_ok()
            {
                self.emit_container(id, "stop", &[]);
                return Ok(());
            }
            if let Some(shim) = &shim {
                let _ = shim.kill(libc::SIGKILL).await;
            }
        }
        let _ = rx.await;
        self.emit_container(id, "stop", &[]);
        Ok(())
    }

    pub async fn restart_container(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let (id, op, live) = self.lookup(id)?;
        let _guard = op.lock().await;
        match self.stop_locked(&id, &live, timeout, signal).await {
            Ok(()) => {}
            Err(e) if e.kind() == crate::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&id, &live).await
    }

    /// Signal by name (`KILL`, `SIGTERM`) or number; default SIGKILL.
    pub async fn kill_container(&self, id: &str, signal: Option<String>) -> Result<()> {
        let (id, _op, live) = self.lookup(id)?;
        let c = self.inspect_container(&id)?;
        let sig = parse_signal(
            signal
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("SIGKILL"),
        )?;
        if c.state.status == crate::types::Status::Paused {
            // A frozen process acts on no signal; Docker thaws a paused container it kills.
            self.thaw(&id).await?;
        }
        let shim = self.shim_of(&live);
        match (c.state.is_running(), shim) {
            (true, Some(shim)) => {
                if sig == libc::SIGKILL {
                    self.update_container(&id, |c| c.state.has_been_manually_stopped = true)?;
                }
                let signal = sig.to_string();
                self.emit_container(&id, "kill", &[("signal", signal.as_str())]);
                shim.kill(sig).await.map_err(|e| match e {
                    ShimError::Refused(m) if m.contains("not running") => EngineError::conflict(
                        format!("Cannot kill container: {id}: Container {id} is not running"),
                    ),
                    other => EngineError::internal(other.to_string()),
                })
            }
            _ => Err(EngineError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                c.name, c.id
            ))),
        }
    }

    /// Registers the waiter immediately and returns a receiver for the result, so that a caller
    /// can wait first and start afterwards without missing the exit (as `docker run` does).
    pub async fn wait_container(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<oneshot::Receiver<WaitResult>> {
        let (id, _op, live) = self.lookup(id)?;
        let c = self.inspect_container(&id)?;
        let (tx, rx) = oneshot::channel();
        let mut l = lock(&live);
        match condition {
            WaitCondition::NotRunning if !c.state.is_running() => {
                let _ = tx.send(WaitResult {
                    status_code: c.state.exit_code as i64,
                    error: None,
                });
            }
            WaitCondition::NotRunning | WaitCondition::NextExit => l.exit_waiters.push(tx),
            WaitCondition::Removed => l.removal_waiters.push(tx),
        }
        Ok(rx)
    }

    pub async fn attach_container(&self, id: &str, opts: AttachOptions) -> Result<Attachment> {
        let (id, _op, live) = self.lookup(id)?;
        let c = self.inspect_container(&id)?;
        let (tx, rx) = mpsc::channel(256);
        if opts.logs {
            let mut replay = self
                .container_logs(
                    &id,
                    LogOptions {
                        stdout: opts.stdout,
                        stderr: opts.stderr,
                        ..Default::default()
                    },
                )
                .await?;
            let (live_tx, mut live_rx) = mpsc::channel::<LogRecord>(256);
            let out = tx.clone();
            tokio::spawn(async move {
                while let Some(r) = replay.recv().await {
                    if out.send(r).await.is_err() {
                        return;
                    }
                }
                while let Some(r) = live_rx.recv().await {
                    if out.send(r).await.is_err() {
                        return;
                    }
                }
            });
            if opts.stream {
                lock(&live)
                    .subscribers
                    .push((live_tx, opts.stdout, opts.stderr));
            }
        } else if opts.stream {
            lock(&live)
                .subscribers
                .push((tx.clone(), opts.stdout, opts.stderr));
        }
        drop(tx);
        let stdin = if opts.stdin && c.config.open_stdin {
            let (stx, srx) = mpsc::channel::<Bytes>(64);
            let shim = self.shim_of(&live);
            // As in dockerd, a terminal's input never closes: the end of a client's input
            // only ends that client's attach.
            let close_on_eof = c.config.stdin_once && !c.config.tty;
            match shim {
                Some(shim) if c.state.is_running() => self.forward_stdin(shim, srx, close_on_eof),
                _ => lock(&live).pending_stdin.push((srx, close_on_eof)),
            }
            Some(stx)
        } else {
            None
        };
        Ok(Attachment {
            output: rx,
            stdin,
            tty: c.config.tty,
        })
    }

    /// After a daemon restart: re-attach to live shims, record exits that happened meanwhile.
    /// Containers a restart policy brings back when the daemon starts.
    async fn start_by_policy(&self) {
        let due: Vec<String> = lock(&self.inner.containers)
            .by_id
            .values()
            .filter(|s| !s.c.state.is_running())
            .filter(|s| match s.c.host_config.restart_policy.name.as_str() {
                "always" => true,
                "unless-stopped" => !s.c.state.has_been_manually_stopped,
                _ => false,
            })
            .map(|s| s.c.id.clone())
            .collect();
        for id in due {
            if let Err(e) = self.start_container(&id).await {
                tracing::warn!(id, error = %e, "start by restart policy");
            }
        }
    }

    pub(crate) async fn restore(&self) {
        let all: Vec<(String, bool)> = lock(&self.inner.containers)
            .by_id
            .values()
            .map(|s| (s.c.id.clone(), s.c.state.is_running()))
            .collect();
        for (id, running) in all {
            if !running {
                // A crash may have left the rootfs mounted after the container stopped.
                let _ = self.inner.snapshots.unmount(&id);
                continue;
            }
            let Ok((_, _, live)) = self.lookup(&id) else {
                continue;
            };
            if let Some(info) = self.read_exit_file(&id) {
                self.handle_exit(&id, info).await;
                continue;
            }
            let client = ShimClient::new(self.shim_socket(&id));
            match client.subscribe().await {
                Ok(events) => {
                    {
                        let mut l = lock(&live);
                        l.shim = Some(client);
                        l.running.send_replace(true);
                    }
                    self.spawn_monitor(id.clone(), live, events);
                    self.start_health_monitor(&id);
                    if let Ok(c) = self.inspect_container(&id) {
                        self.restore_network(&c).await;
                    }
                    tracing::info!(id, "re-attached to running container");
                }
                Err(e) => {
                    tracing::warn!(id, error = %e, "shim gone, marking container exited");
                    let info = self.read_exit_file(&id).unwrap_or(ExitInfo {
                        exit_code: 255,
                        exited_at: Utc::now(),
                        oom_killed: false,
                    });
                    self.handle_exit(&id, info).await;
                }
            }
        }
        self.start_by_policy().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").ok(), Some(9));
        assert_eq!(parse_signal("sigterm").ok(), Some(15));
        assert_eq!(parse_signal("2").ok(), Some(2));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("512k"), Some(512 * 1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn start_errors_keep_docker_words() {
        assert_eq!(
            start_error_message("failed to create: error in init: exec: \"nope\": executable file not found in $PATH"),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }
}
