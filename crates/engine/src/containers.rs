//! The container database and the operations that do not run anything: create, list, inspect,
//! remove. Starting and stopping live in `lifecycle`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::{mpsc, watch};

use crate::error::{Context, EngineError, Result};
use crate::names;
use crate::types::*;
use crate::{lock, Engine, Waiters};

/// What the engine holds for a container besides its record: the channels to whoever is
/// attached or waiting. Shared with the container's monitor task.
pub(crate) struct Live {
    /// Attached output streams with the streams they want (stdout, stderr).
    pub subscribers: Vec<(mpsc::Sender<LogRecord>, bool, bool)>,
    /// Stdin of attaches made before the container started, connected at start.
    pub pending_stdin: Vec<(mpsc::Receiver<Bytes>, bool)>,
    /// Resolved at the next exit.
    pub exit_waiters: Waiters,
    /// Resolved when the container is removed.
    pub removal_waiters: Waiters,
    pub shim: Option<berth_runtime::ShimClient>,
    /// true while running; `logs -f` watches it to know when to stop following.
    pub running: watch::Sender<bool>,
    /// The restart policy's current backoff (Docker's: 100 ms, doubling, reset after 10 s up).
    pub restart_delay: std::time::Duration,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            subscribers: Vec::new(),
            pending_stdin: Vec::new(),
            exit_waiters: Vec::new(),
            removal_waiters: Vec::new(),
            shim: None,
            running: watch::channel(false).0,
            restart_delay: std::time::Duration::ZERO,
        }
    }
}

/// A container's full ID, its operation lock and its live channels.
pub(crate) type Handles = (String, Arc<tokio::sync::Mutex<()>>, Arc<Mutex<Live>>);

pub(crate) struct Slot {
    pub c: Container,
    /// Serialises start/stop/remove of one container.
    pub op: Arc<tokio::sync::Mutex<()>>,
    pub live: Arc<Mutex<Live>>,
}

#[derive(Default)]
pub(crate) struct ContainerDb {
    pub by_id: HashMap<String, Slot>,
    /// Name (without slash) → ID.
    pub names: HashMap<String, String>,
}

const RECORD: &str = "config.v2.json";

impl ContainerDb {
    pub fn load(dir: &Path) -> Result<Self> {
        let mut db = ContainerDb::default();
        let entries = std::fs::read_dir(dir).ctx(|| format!("read {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path().join(RECORD);
            match berth_store::atomic::read_json::<Container>(&path) {
                Ok(Some(c)) => {
                    db.names.insert(c.name.clone(), c.id.clone());
                    db.by_id.insert(
                        c.id.clone(),
                        Slot {
                            c,
                            op: Arc::default(),
                            live: Arc::default(),
                        },
                    );
                }
                // A directory without a record is a create that crashed before committing.
                Ok(None) => {
                    tracing::warn!(dir = %entry.path().display(), "removing incomplete container");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable container record")
                }
            }
        }
        Ok(db)
    }

    /// Docker's lookup: full ID, then exact name, then unique ID prefix.
    pub fn resolve(&self, id_or_name: &str) -> Result<&Slot> {
        if let Some(s) = self.by_id.get(id_or_name) {
            return Ok(s);
        }
        let name = id_or_name.strip_prefix('/').unwrap_or(id_or_name);
        if let Some(s) = self.names.get(name).and_then(|id| self.by_id.get(id)) {
            return Ok(s);
        }
        if !id_or_name.is_empty() && id_or_name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = self
                .by_id
                .values()
                .filter(|s| s.c.id.starts_with(id_or_name));
            if let Some(first) = found.next() {
                if found.next().is_some() {
                    return Err(EngineError::invalid(format!(
                        "multiple IDs found with provided prefix: {id_or_name}"
                    )));
                }
                return Ok(first);
            }
        }
        Err(EngineError::no_such_container(id_or_name))
    }
}

impl Engine {
    /// Writes a container's record crash-safely; the in-memory copy is updated by the caller.
    pub(crate) fn save_container(&self, c: &Container) -> Result<()> {
        berth_store::atomic::write_json_atomic(&self.container_dir(&c.id).join(RECORD), c)
            .ctx(|| format!("save container {}", c.id))
    }

    pub(crate) fn lookup(&self, id_or_name: &str) -> Result<Handles> {
        let db = lock(&self.inner.containers);
        let s = db.resolve(id_or_name)?;
        Ok((s.c.id.clone(), s.op.clone(), s.live.clone()))
    }

    /// Applies `f` to the record in memory and on disk, in that order under the lock.
    pub(crate) fn update_container<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> T,
    ) -> Result<T> {
        let mut db = lock(&self.inner.containers);
        let slot = db
            .by_id
            .get_mut(id)
            .ok_or_else(|| EngineError::no_such_container(id))?;
        let mut next = slot.c.clone();
        let out = f(&mut next);
        self.save_container(&next)?;
        slot.c = next;
        Ok(out)
    }

    pub async fn create_container(&self, req: CreateRequest) -> Result<CreateResponse> {
        let mut config = req.config;
        if config.image.is_empty() {
            return Err(EngineError::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        let image = self.resolve_image(&config.image).map_err(|e| {
            if e.kind() == crate::ErrorKind::NotFound {
                let shown = berth_reference::Reference::parse_normalized(&config.image)
                    .map(|r| {
                        if r.digest().is_none() {
                            r.with_default_tag().familiar_string()
                        } else {
                            r.familiar_string()
                        }
                    })
                    .unwrap_or_else(|_| config.image.clone());
                EngineError::no_such_image(&shown)
            } else {
                e
            }
        })?;
        if let Some(name) = &req.name {
            if !name.is_empty() && !names::valid_name(name) {
                return Err(EngineError::invalid(format!(
                    "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let mut host_config = req.host_config;
        let image_config = image.config.to_domain();
        merge_image_config(&mut config, &image_config)?;
        let network = self.plan_endpoints(&host_config.network_mode, &req.endpoints)?;
        crate::networks::check_port_bindings(&host_config)?;
        let (path, args) = {
            let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
            argv.extend(config.cmd.clone().unwrap_or_default());
            let mut it = argv.into_iter();
            match it.next() {
                Some(p) if !p.is_empty() => (p, it.collect::<Vec<_>>()),
                _ => return Err(EngineError::invalid("no command specified")),
            }
        };
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(EngineError::invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        berth_runtime::spec::effective_caps(
            host_config.privileged,
            &host_config.cap_add,
            &host_config.cap_drop,
        )
        .map_err(|e| EngineError::invalid(e.to_string()))?;
        validate_ulimits(&host_config.ulimits)?;
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "default".into();
        }
        if host_config.log_type.is_empty() {
            host_config.log_type = "json-file".into();
        }

        let id = names::random_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let dir = self.container_dir(&id);
        let top = image.top_layer();
        let lowers = match &top {
            Some(t) => self
                .inner
                .layers
                .lowers(t)
                .ctx(|| format!("layers of image {}", image.id))?,
            None => Vec::new(),
        };

        // Reserve the name first so that concurrent creates cannot both take it.
        let name = {
            let mut db = lock(&self.inner.containers);
            let name = match req.name.as_deref().map(|n| n.trim_start_matches('/')) {
                Some(n) if !n.is_empty() => {
                    if let Some(owner) = db.names.get(n) {
                        return Err(EngineError::conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n.to_string()
                }
                _ => {
                    let mut retry = 0;
                    loop {
                        let n = names::random_name(retry);
                        if !db.names.contains_key(&n) {
                            break n;
                        }
                        retry += 1;
                    }
                }
            };
            db.names.insert(name.clone(), id.clone());
            name
        };
        let release_name = |engine: &Engine| {
            lock(&engine.inner.containers).names.remove(&name);
        };

        let result = (|| -> Result<Container> {
            std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
            let snap = self
                .inner
                .snapshots
                .prepare(&id, lowers)
                .ctx(|| format!("prepare filesystem of {id}"))?;
            let mounts = self.resolve_mounts(&host_config, &config.volumes, &image.id)?;
            let mut graph = std::collections::BTreeMap::new();
            graph.insert("UpperDir".to_string(), snap.upper.display().to_string());
            graph.insert("WorkDir".to_string(), snap.work.display().to_string());
            graph.insert("MergedDir".to_string(), snap.merged.display().to_string());
            let c = Container {
                id: id.clone(),
                name: name.clone(),
                created: Utc::now(),
                image_id: image.id.clone(),
                image_top_layer: top.clone(),
                path,
                args,
                config,
                host_config,
                state: ContainerState::default(),
                restart_count: 0,
                log_path: dir.join(format!("{id}-json.log")).display().to_string(),
                hostname_path: dir.join("hostname").display().to_string(),
                hosts_path: dir.join("hosts").display().to_string(),
                resolv_conf_path: dir.join("resolv.conf").display().to_string(),
                platform: "linux".into(),
                driver: "overlay2".into(),
                graph_driver: graph,
                mounts,
                network,
            };
            // The record is the commit point: without it the directory is garbage at restart.
            self.save_container(&c)?;
            Ok(c)
        })();
        let c = match result {
            Ok(c) => c,
            Err(e) => {
                release_name(self);
                let _ = self.inner.snapshots.remove(&id);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        lock(&self.inner.containers).by_id.insert(
            id.clone(),
            Slot {
                c,
                op: Arc::default(),
                live: Arc::default(),
            },
        );
        self.emit_container(&id, "create", &[]);
        Ok(CreateResponse {
            id,
            warnings: Vec::new(),
        })
    }

    pub fn list_containers(&self, opts: &ListContainersOptions) -> Result<Vec<Container>> {
        for key in opts.filters.keys() {
            if !matches!(
                key.as_str(),
                "status"
                    | "name"
                    | "id"
                    | "label"
                    | "ancestor"
                    | "exited"
                    | "before"
                    | "since"
                    | "health"
                    | "network"
                    | "volume"
                    | "publish"
                    | "expose"
                    | "isolation"
                    | "is-task"
            ) {
                return Err(EngineError::invalid(format!("invalid filter '{key}'")));
            }
        }
        if let Some(statuses) = opts.filters.get("status") {
            for s in statuses {
                if !matches!(
                    s.as_str(),
                    "created"
                        | "restarting"
                        | "running"
                        | "removing"
                        | "paused"
                        | "exited"
                        | "dead"
                ) {
                    return Err(EngineError::invalid(format!("invalid filter 'status={s}'")));
                }
            }
        }
        let ancestors: Vec<berth_reference::Digest> = opts
            .filters
            .get("ancestor")
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| self.resolve_image(n).ok().map(|r| r.id))
                    .collect()
            })
            .unwrap_or_default();
        let db = lock(&self.inner.containers);
        let mut all: Vec<Container> = db.by_id.values().map(|s| s.c.clone()).collect();
        drop(db);
        all.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        let has_status_filter = opts.filters.contains_key("status");
        let before = opts.filters.get("before").and_then(|v| v.first()).cloned();
        let since = opts.filters.get("since").and_then(|v| v.first()).cloned();
        let created_of = |r: &str| {
            all.iter()
                .find(|c| c.id == r || c.name == r.trim_start_matches('/') || c.id.starts_with(r))
                .map(|c| c.created)
        };
        let before = before.and_then(|b| created_of(&b));
        let since = since.and_then(|s| created_of(&s));
        let mut out: Vec<Container> = all
            .iter()
            .filter(|c| opts.all || has_status_filter || c.state.is_running() || opts.limit > 0)
            .filter(|c| before.is_none_or(|b| c.created < b))
            .filter(|c| since.is_none_or(|s| c.created > s))
            .filter(|c| container_matches(c, &opts.filters, &ancestors))
            .cloned()
            .collect();
        if opts.limit > 0 {
            out.truncate(opts.limit as usize);
        }
        Ok(out)
    }

    /// Accepts a full ID, a unique ID prefix or a name (with or without leading `/`).
    pub fn inspect_container(&self, id: &str) -> Result<Container> {
        Ok(lock(&self.inner.containers).resolve(id)?.c.clone())
    }

    pub async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let (id, op, live) = self.lookup(id)?;
        let _guard = op.lock().await;
        let c = self.inspect_container(&id)?;
        if c.state.is_running() {
            if !force {
                return Err(EngineError::conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.kill_and_wait(&id, &live).await?;
        }
        self.remove_stopped(&id).await?;
        if volumes {
            self.remove_anonymous_volumes(&c.mounts);
        }
        Ok(())
    }

    /// Deletes a stopped container: filesystem, record, name; then wakes removal waiters.
    pub(crate) async fn remove_stopped(&self, id: &str) -> Result<()> {
        self.emit_container(id, "destroy", &[]);
        let engine = self.clone();
        let id_owned = id.to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            engine
                .inner
                .snapshots
                .remove(&id_owned)
                .ctx(|| format!("remove filesystem of {id_owned}"))?;
            let _ = std::fs::remove_dir_all(engine.bundle_dir(&id_owned));
            // Removing the record first makes the removal atomic for a restarting daemon.
            let dir = engine.container_dir(&id_owned);
            let _ = std::fs::remove_file(dir.join(RECORD));
            std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))?;
            Ok(())
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))??;
        let slot = {
            let mut db = lock(&self.inner.containers);
            let slot = db.by_id.remove(id);
            if let Some(s) = &slot {
                db.names.remove(&s.c.name);
            }
            slot
        };
        crate::exec::forget_container(&self.inner.execs, id);
        if let Some(slot) = slot {
            let code = slot.c.state.exit_code as i64;
            let waiters = std::mem::take(&mut lock(&slot.live).removal_waiters);
            for w in waiters {
                let _ = w.send(WaitResult {
                    status_code: code,
                    error: None,
                });
            }
        }
        // Layers of an image deleted while this container used it can go now.
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.gc())
            .await
            .map_err(|e| EngineError::internal(e.to_string()))??;
        Ok(())
    }
}

/// Docker's rules for combining the user's config with the image's (moby `merge`).
fn merge_image_config(c: &mut ContainerConfig, img: &ImageConfig) -> Result<()> {
    if c.user.is_empty() {
        c.user = img.user.clone();
    }
    let mut env = img.env.clone();
    for e in std::mem::take(&mut c.env) {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(&e).to_string();
        env.retain(|x| x.split_once('=').map(|(k, _)| k).unwrap_or(x) != key);
        env.push(e);
    }
    c.env = env;
    let user_cmd = c.cmd.take().filter(|v| !v.is_empty());
    match c.entrypoint.take() {
        None => {
            c.entrypoint = img.entrypoint.clone();
            c.cmd = user_cmd.or_else(|| img.cmd.clone());
        }
        Some(ep) if ep.is_empty() => {
            c.entrypoint = img.entrypoint.clone();
            c.cmd = user_cmd.or_else(|| img.cmd.clone());
        }
        // `--entrypoint ""` clears the image's entrypoint and, as in Docker, its CMD too.
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => {
            c.entrypoint = None;
            c.cmd = user_cmd;
        }
        Some(ep) => {
            c.entrypoint = Some(ep);
            c.cmd = user_cmd;
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir.clone();
    }
    for (k, v) in &img.labels {
        c.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for p in &img.exposed_ports {
        if !c.exposed_ports.contains(p) {
            c.exposed_ports.push(p.clone());
        }
    }
    for v in &img.volumes {
        if !c.volumes.contains(v) {
            c.volumes.push(v.clone());
        }
    }
    if c.stop_signal.is_none() {
        c.stop_signal = img.stop_signal.clone();
    }
    let image_check = img
        .passthrough
        .get("Healthcheck")
        .and_then(crate::health::HealthConfig::from_image_json);
    let own = c.healthcheck.take().unwrap_or_default();
    own.validate()?;
    c.healthcheck = own.merged_over(image_check.as_ref());
    crate::health::validate_on_failure(
        c.labels
            .get(crate::health::ON_FAILURE_LABEL)
            .map(String::as_str)
            .unwrap_or(""),
    )?;
    Ok(())
}

fn container_matches(
    c: &Container,
    filters: &Filters,
    ancestors: &[berth_reference::Digest],
) -> bool {
    filters.iter().all(|(key, values)| {
        values.iter().any(|v| match key.as_str() {
            "status" => c.state.status.as_str() == v,
            "name" => {
                let v = v.trim_start_matches('/');
                match regex::Regex::new(v) {
                    Ok(re) => re.is_match(&c.name),
                    Err(_) => c.name.contains(v),
                }
            }
            "id" => c.id.starts_with(v.as_str()),
            "label" => match v.split_once('=') {
                Some((k, val)) => c.config.labels.get(k).map(String::as_str) == Some(val),
                None => c.config.labels.contains_key(v),
            },
            "ancestor" => ancestors.contains(&c.image_id) || c.config.image == *v,
            "exited" => {
                c.state.status == Status::Exited && v.parse::<i32>().ok() == Some(c.state.exit_code)
            }
            "health" => {
                let status = match (&c.state.health, &c.config.healthcheck) {
                    (Some(h), _) if c.state.is_running() => h.status.as_str(),
                    (_, Some(check)) if !check.disabled() => "starting",
                    _ => "none",
                };
                status == v
            }
            _ => true,
        })
    })
}

/// Rejects what setrlimit(2) would refuse only at start: unknown names, soft above hard.
pub(crate) fn validate_ulimits(ulimits: &[Ulimit]) -> Result<()> {
    for u in ulimits {
        berth_runtime::spec::rlimit_type(&u.name)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        // -1 is unlimited, the largest value of all.
        let (soft, hard) = (u.soft as u64, u.hard as u64);
        if soft > hard {
            return Err(EngineError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            working_dir: "/w".into(),
            ..Default::default()
        }
    }

    #[test]
    fn merge_rules() {
        let mut c = ContainerConfig {
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        merge_image_config(&mut c, &img()).expect("merge");
        assert_eq!(c.env, vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.working_dir, "/w");

        let mut c = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &img()).expect("merge");
        assert_eq!(c.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));

        let mut c = ContainerConfig {
            entrypoint: Some(vec!["/bin/true".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &img()).expect("merge");
        assert_eq!(c.cmd, None, "an entrypoint override drops the image CMD");

        let mut c = ContainerConfig {
            entrypoint: Some(vec!["".into()]),
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &img()).expect("merge");
        assert_eq!((c.entrypoint, c.cmd), (None, Some(vec!["ls".to_string()])));
    }

    fn u(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn ulimits_are_checked_as_dockerd_would_fail_them() {
        assert!(validate_ulimits(&[u("nofile", 10, 20), u("core", 0, -1)]).is_ok());
        let err = |l: Ulimit| validate_ulimits(&[l]).err().map(|e| e.to_string());
        assert!(err(u("bogus", 1, 1)).is_some_and(|e| e.contains("invalid ulimit type: bogus")));
        assert!(err(u("nofile", 30, 20)).is_some_and(|e| e.contains("30 > 20")));
        assert!(err(u("nofile", -1, 20)).is_some());
    }
}
