//! Container housekeeping: `rename`, `diff` (the changes in the overlay upper directory) and
//! `container prune`.

use std::path::{Path, PathBuf};

use crate::error::{Context, EngineError, Result};
use crate::types::Filters;
use crate::{lock, names, Engine};

/// One line of `docker diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// `docker top`: `ps` columns and the rows of the container's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Keeps the rows of `ps` output whose PID column is one of `pids` (moby's `parsePSOutput`).
fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may contain spaces: it takes the rest of the line.
        let mut row: Vec<String> = fields
            .iter()
            .take(titles.len().saturating_sub(1))
            .map(|s| s.to_string())
            .collect();
        row.push(
            fields
                .get(titles.len().saturating_sub(1)..)
                .map(|r| r.join(" "))
                .unwrap_or_default(),
        );
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

/// One sample of a container's resource use (`docker stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub read: chrono::DateTime<chrono::Utc>,
    pub id: String,
    pub name: String,
    pub usage: berth_runtime::cgroup::Usage,
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub running: bool,
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `docker update`: the resources and restart policy to change; `None` keeps the current.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<crate::types::RestartPolicy>,
}

/// What `container prune` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The cgroup the runtime gives container `id` (see `lifecycle`'s spec input).
pub(crate) fn cgroups_path(id: &str) -> String {
    format!("/berth/{id}")
}

impl Engine {
    /// `docker top`: the host's `ps` with `ps_args` (default `-ef`), rows of the container's
    /// processes only, as dockerd does it.
    pub async fn top_container(&self, id: &str, ps_args: &str) -> Result<Top> {
        let c = self.inspect_container(id)?;
        if !c.state.is_running() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let path = cgroups_path(&c.id);
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(str::to_string).collect()
        };
        tokio::task::spawn_blocking(move || -> Result<Top> {
            let pids = berth_runtime::cgroup::pids(&path).ctx(|| format!("processes of {path}"))?;
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .ctx(|| "run ps".into())?;
            if !out.status.success() {
                return Err(EngineError::invalid(format!(
                    "ps: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
        })
        .await
        .map_err(|e| EngineError::internal(format!("top task: {e}")))?
    }

    /// One sample of the container's cgroup counters; zeros for a container not running.
    pub async fn container_stats(&self, id: &str) -> Result<Stats> {
        let c = self.inspect_container(id)?;
        let running = c.state.is_running();
        let path = cgroups_path(&c.id);
        let (usage, system_cpu_ns) = tokio::task::spawn_blocking(move || {
            let mut usage = if running {
                berth_runtime::cgroup::usage(&path).unwrap_or_default()
            } else {
                Default::default()
            };
            if running && usage.memory_limit == 0 {
                // Docker shows the host's memory as the limit of an unlimited container.
                usage.memory_limit = host_memory();
            }
            (usage, berth_runtime::cgroup::system_cpu_ns().unwrap_or(0))
        })
        .await
        .map_err(|e| EngineError::internal(format!("stats task: {e}")))?;
        Ok(Stats {
            read: chrono::Utc::now(),
            id: c.id,
            name: c.name,
            usage,
            system_cpu_ns,
            online_cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            running,
        })
    }

    /// `docker update`: records the new settings and, on a running container, writes them into
    /// its cgroup at once.
    pub async fn update_resources(&self, id: &str, req: UpdateRequest) -> Result<()> {
        let (id, op, _live) = self.lookup(id)?;
        let _guard = op.lock().await;
        let c = self.inspect_container(&id)?;
        if let (Some(m), Some(s)) = (req.memory, req.memory_swap) {
            if m > 0 && s > 0 && s < m {
                return Err(EngineError::invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
        }
        if let Some(m) = req.memory.filter(|m| *m > 0 && *m < 6 * 1024 * 1024) {
            return Err(EngineError::invalid(format!(
                "Minimum memory limit allowed is 6MB (asked for {m} bytes)"
            )));
        }
        if c.state.is_running() {
            let limits = berth_runtime::cgroup::Limits {
                memory: req.memory,
                memory_swap: req
                    .memory_swap
                    .or(req.memory.map(|m| if m > 0 { m * 2 } else { 0 })),
                nano_cpus: req.nano_cpus,
                cpu_shares: req.cpu_shares,
                pids: req.pids_limit,
            };
            let path = cgroups_path(&id);
            tokio::task::spawn_blocking(move || berth_runtime::cgroup::set_limits(&path, &limits))
                .await
                .map_err(|e| EngineError::internal(format!("update task: {e}")))?
                .map_err(|e| EngineError::internal(format!("Cannot update container {id}: {e}")))?;
        }
        self.update_container(&id, |c| {
            let h = &mut c.host_config;
            if let Some(m) = req.memory {
                h.memory = m;
            }
            if let Some(s) = req.memory_swap {
                h.memory_swap = s;
            }
            if let Some(n) = req.nano_cpus {
                h.nano_cpus = n;
            }
            if let Some(s) = req.cpu_shares {
                h.cpu_shares = s;
            }
            if let Some(p) = req.pids_limit {
                h.pids_limit = (p > 0).then_some(p);
            }
            if let Some(r) = req.restart_policy.clone() {
                h.restart_policy = r;
            }
        })
    }

    /// `docker pause`: freezes every process of the container.
    pub async fn pause_container(&self, id: &str) -> Result<()> {
        let (id, op, _live) = self.lookup(id)?;
        let _guard = op.lock().await;
        let c = self.inspect_container(&id)?;
        match c.state.status {
            crate::types::Status::Running => {}
            crate::types::Status::Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {id} is already paused"
                )))
            }
            _ => {
                return Err(EngineError::conflict(format!(
                    "Container {id} is not running"
                )))
            }
        }
        self.set_frozen(&id, true).await?;
        self.update_container(&id, |c| c.state.status = crate::types::Status::Paused)?;
        self.emit_container(&id, "pause", &[]);
        Ok(())
    }

    /// `docker unpause`.
    pub async fn unpause_container(&self, id: &str) -> Result<()> {
        let (id, op, _live) = self.lookup(id)?;
        let _guard = op.lock().await;
        let c = self.inspect_container(&id)?;
        if c.state.status != crate::types::Status::Paused {
            return Err(EngineError::conflict(format!(
                "Container {id} is not paused"
            )));
        }
        self.thaw(&id).await?;
        self.emit_container(&id, "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container and records it running again (before a stop or kill, whose
    /// signals a frozen process would not act on).
    pub(crate) async fn thaw(&self, id: &str) -> Result<()> {
        self.set_frozen(id, false).await?;
        self.update_container(id, |c| {
            if c.state.status == crate::types::Status::Paused {
                c.state.status = crate::types::Status::Running;
            }
        })
    }

    pub(crate) async fn set_frozen(&self, id: &str, frozen: bool) -> Result<()> {
        let path = cgroups_path(id);
        tokio::task::spawn_blocking(move || berth_runtime::freezer::set_frozen(&path, frozen))
            .await
            .map_err(|e| EngineError::internal(format!("freezer task: {e}")))?
            .map_err(|e| {
                EngineError::internal(format!(
                    "{} container {id}: {e}",
                    if frozen { "pause" } else { "unpause" }
                ))
            })
    }

    /// Docker's rename: a name free for the taking, and never the same name again.
    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if new_name.is_empty() {
            return Err(EngineError::invalid(
                "Neither old nor new names may be empty",
            ));
        }
        if !names::valid_name(new_name) {
            return Err(EngineError::invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let mut db = lock(&self.inner.containers);
        let (cid, old) = {
            let s = db.resolve(id)?;
            (s.c.id.clone(), s.c.name.clone())
        };
        if old == new_name {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(owner) = db.names.get(new_name) {
            return Err(EngineError::conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        let slot = db
            .by_id
            .get_mut(&cid)
            .ok_or_else(|| EngineError::no_such_container(id))?;
        let mut next = slot.c.clone();
        next.name = new_name.to_string();
        // Disk first: a crash leaves the old name or the new one, never neither.
        self.save_container(&next)?;
        slot.c = next;
        db.names.remove(&old);
        db.names.insert(new_name.to_string(), cid.clone());
        drop(db);
        self.emit_container(&cid, "rename", &[("oldName", &format!("/{old}"))]);
        Ok(())
    }

    /// `docker diff`: what the container changed, read from its upper directory only.
    pub async fn container_changes(&self, id: &str) -> Result<Vec<Change>> {
        let c = self.inspect_container(id)?;
        let paths = self
            .inner
            .snapshots
            .paths(&c.id)
            .ctx(|| format!("snapshot of {}", c.id))?;
        let lowers = self
            .inner
            .snapshots
            .lowers(&c.id)
            .ctx(|| format!("snapshot of {}", c.id))?;
        tokio::task::spawn_blocking(move || -> Result<Vec<Change>> {
            let mut out = Vec::new();
            walk_changes(&paths.upper, Path::new("/"), &lowers, &mut out)
                .ctx(|| format!("read changes of {}", c.id))?;
            Ok(out)
        })
        .await
        .map_err(|e| EngineError::internal(format!("diff task: {e}")))?
    }

    /// Removes every stopped container created before `until` (when given) whose labels the
    /// `label`/`label!` filters keep.
    pub async fn prune_containers(
        &self,
        filters: &Filters,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<PruneReport> {
        for key in filters.keys() {
            if !matches!(key.as_str(), "until" | "label" | "label!") {
                return Err(EngineError::invalid(format!("invalid filter '{key}'")));
            }
        }
        let candidates: Vec<String> = lock(&self.inner.containers)
            .by_id
            .values()
            .filter(|s| !s.c.state.is_running())
            .filter(|s| until.is_none_or(|u| s.c.created < u))
            .filter(|s| labels_match(&s.c.config.labels, filters))
            .map(|s| s.c.id.clone())
            .collect();
        let mut report = PruneReport::default();
        for id in candidates {
            let size = self
                .inner
                .snapshots
                .paths(&id)
                .map(|p| crate::volumes::dir_size(&p.upper))
                .unwrap_or(0);
            match self.remove_container(&id, false, false).await {
                Ok(()) => {
                    report.deleted.push(id);
                    report.space_reclaimed += size;
                }
                // Started meanwhile: not ours to remove any more.
                Err(e) => tracing::debug!(%id, error = %e, "prune skipped a container"),
            }
        }
        Ok(report)
    }
}

fn labels_match(labels: &std::collections::BTreeMap<String, String>, filters: &Filters) -> bool {
    let has = |want: &str| match want.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(want),
    };
    filters
        .get("label")
        .is_none_or(|wants| wants.iter().all(|w| has(w)))
        && filters
            .get("label!")
            .is_none_or(|wants| wants.iter().all(|w| !has(w)))
}

/// Empty placeholders the runtime creates to mount over are no change (Docker keeps them in
/// its "init" layer).
fn is_placeholder(rel: &Path, meta: &std::fs::Metadata) -> bool {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let listed = berth_runtime::spec::RUNTIME_MOUNT_POINTS
        .iter()
        .any(|m| Path::new(m) == rel);
    listed && ((meta.is_file() && meta.len() == 0) || meta.is_dir())
}

fn walk_changes(
    dir: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let child = rel.join(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        let shown = child.display().to_string();
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            out.push(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let below = child.strip_prefix("/").unwrap_or(&child);
        let in_lower = lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(below)).is_ok());
        let placeholder = is_placeholder(&child, &meta);
        if meta.is_dir() {
            let start = out.len();
            walk_changes(&path, &child, lowers, out)?;
            let changed_inside = out.len() > start;
            // A copied-up parent shows as changed only when something inside it changed.
            if (!in_lower && !placeholder) || (in_lower && changed_inside) {
                out.insert(
                    start,
                    Change {
                        path: shown,
                        kind: if in_lower {
                            ChangeKind::Modified
                        } else {
                            ChangeKind::Added
                        },
                    },
                );
            }
            continue;
        }
        if placeholder {
            continue;
        }
        out.push(Change {
            path: shown,
            kind: if in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container_only() {
        let out = "UID  PID  PPID  C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sh -c sleep 100\n";
        let top = parse_ps(out, &[42]).expect("parses");
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][1], "42");
        assert_eq!(top.processes[0][7], "sh -c sleep 100");
        assert!(parse_ps("USER COMMAND\n", &[1]).is_err());
    }
}
