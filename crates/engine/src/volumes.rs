//! Local volumes and the mounts of a container.
//!
//! A volume is a directory `volumes/<name>/_data` with a record `volumes/<name>/volume.json`
//! beside it. The record is written last (crash-safely): a directory without one is an
//! interrupted create and is removed when the daemon opens the store. There is no in-memory
//! table: the directory is the truth, and which containers use a volume is derived from their
//! records, never stored.
//!
//! Mount specifications follow Docker's rules: `-v /host:/ctr[:opts]` is a bind (a missing
//! host directory is created), `-v name:/ctr` a named volume (created on first use),
//! `-v /ctr` and an image's `VOLUME` an anonymous volume (64 hex digits). A new volume mounted
//! over image content is first filled with that content (copy-up) unless `nocopy` is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_reference::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Context, EngineError, Result};
use crate::types::{Filters, HostConfig, MountPoint, Volume};
use crate::{lock, names, Engine};

const RECORD: &str = "volume.json";
const DATA: &str = "_data";

#[derive(Debug, Serialize, Deserialize)]
struct VolumeRecord {
    name: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumePrune {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// Docker's local volume names.
fn valid_volume_name(name: &str) -> bool {
    names::valid_name(name)
}

/// One `-v`/`--mount` request before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    Bind { source: PathBuf },
    Named { name: String },
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    spec: Spec,
    destination: String,
    rw: bool,
    mode: String,
    propagation: String,
    nocopy: bool,
}

/// Parses Docker's `-v` syntax: `[source:]destination[:options]`.
fn parse_bind(raw: &str) -> Result<Parsed> {
    let invalid = || EngineError::invalid(format!("invalid volume specification: '{raw}'"));
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, destination, opts) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] if d.starts_with('/') => (Some(*s), *d, ""),
        [d, o] if d.starts_with('/') => (None, *d, *o),
        [s, d, o] => (Some(*s), *d, *o),
        _ => return Err(invalid()),
    };
    if destination.is_empty() || source.is_some_and(str::is_empty) {
        return Err(invalid());
    }
    if !destination.starts_with('/') {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type \"volume\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" => {}
            "nocopy" => nocopy = true,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                propagation = o.to_string()
            }
            _ => return Err(invalid()),
        }
    }
    let spec = match source {
        None => Spec::Anonymous,
        Some(s) if s.starts_with('/') => Spec::Bind {
            source: PathBuf::from(s),
        },
        Some(s) => {
            if !valid_volume_name(s) {
                return Err(EngineError::invalid(format!(
                    "create {s}: \"{s}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )));
            }
            Spec::Named {
                name: s.to_string(),
            }
        }
    };
    if matches!(spec, Spec::Bind { .. }) && nocopy {
        return Err(invalid());
    }
    Ok(Parsed {
        spec,
        destination: clean_destination(destination),
        rw,
        mode: opts.to_string(),
        propagation,
        nocopy,
    })
}

fn clean_destination(d: &str) -> String {
    let parts: Vec<&str> = d
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.data_root().join("volumes")
    }

    /// Removes what an interrupted create left (a directory without a record).
    pub(crate) fn open_volumes(&self) -> Result<()> {
        let dir = self.volumes_dir();
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        for e in std::fs::read_dir(&dir)
            .ctx(|| format!("read {}", dir.display()))?
            .flatten()
        {
            if !e.path().join(RECORD).exists() {
                tracing::warn!(path = %e.path().display(), "removing incomplete volume");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    fn read_volume(&self, name: &str) -> Result<Option<Volume>> {
        if !valid_volume_name(name) {
            return Ok(None);
        }
        let dir = self.volumes_dir().join(name);
        let rec: Option<VolumeRecord> = berth_store::atomic::read_json(&dir.join(RECORD))
            .ctx(|| format!("read volume {name}"))?;
        Ok(rec.map(|r| Volume {
            name: r.name,
            driver: "local".into(),
            mountpoint: dir.join(DATA).display().to_string(),
            created_at: r.created_at,
            labels: r.labels,
            options: r.options,
            anonymous: r.anonymous,
        }))
    }

    /// `docker volume create`: an existing volume of that name is returned as it is.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (names::random_id(), true),
        };
        self.create_volume_as(&name, anonymous, labels, options)
            .map(|(v, _)| v)
    }

    /// Creates (or finds) a volume; true when it was created now.
    fn create_volume_as(
        &self,
        name: &str,
        anonymous: bool,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        if !valid_volume_name(name) {
            return Err(EngineError::invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        if let Some(driver) = options.get("type") {
            return Err(EngineError::invalid(format!(
                "volume driver options are not supported (type={driver})"
            )));
        }
        let _guard = lock(&self.inner.volumes_lock);
        if let Some(v) = self.read_volume(name)? {
            return Ok((v, false));
        }
        let dir = self.volumes_dir().join(name);
        std::fs::create_dir_all(dir.join(DATA)).ctx(|| format!("create volume {name}"))?;
        let rec = VolumeRecord {
            name: name.to_string(),
            created_at: Utc::now(),
            labels,
            options,
            anonymous,
        };
        berth_store::atomic::write_json_atomic(&dir.join(RECORD), &rec)
            .ctx(|| format!("create volume {name}"))?;
        let v = self
            .read_volume(name)?
            .ok_or_else(|| EngineError::internal(format!("volume {name} vanished")))?;
        self.emit("volume", "create", name, &[("driver", "local")]);
        Ok((v, true))
    }

    pub fn inspect_volume(&self, name: &str) -> Result<Volume> {
        self.read_volume(name)?
            .ok_or_else(|| EngineError::not_found(format!("get {name}: no such volume")))
    }

    /// Containers (IDs) that mount `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        lock(&self.inner.containers)
            .by_id
            .values()
            .filter(|s| {
                s.c.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|s| s.c.id.clone())
            .collect()
    }

    /// `docker volume ls`, with the `dangling`, `name` and `label` filters.
    pub fn list_volumes(&self, filters: &Filters) -> Result<Vec<Volume>> {
        for key in filters.keys() {
            if !matches!(key.as_str(), "dangling" | "name" | "label" | "driver") {
                return Err(EngineError::invalid(format!("invalid filter '{key}'")));
            }
        }
        let mut out = Vec::new();
        let entries = std::fs::read_dir(self.volumes_dir()).ctx(|| "read volumes".to_string())?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(v) = self.read_volume(&name)? else {
                continue;
            };
            let used = !self.volume_users(&v.name).is_empty();
            let keep = filters.iter().all(|(k, vals)| {
                vals.iter().any(|val| match k.as_str() {
                    "dangling" => (val == "true" || val == "1") != used,
                    "name" => v.name.contains(val.as_str()),
                    "driver" => val == "local",
                    _ => match val.split_once('=') {
                        Some((lk, lv)) => v.labels.get(lk).map(String::as_str) == Some(lv),
                        None => v.labels.contains_key(val),
                    },
                })
            });
            if keep {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `docker volume rm`: refused while a container uses it, even with force (as Docker).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        if self.read_volume(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(EngineError::not_found(format!(
                "get {name}: no such volume"
            )));
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.volumes_dir().join(name);
        // The record goes first: a crash half-way leaves an incomplete volume, removed at the
        // next start, never a record without its data.
        std::fs::remove_file(dir.join(RECORD)).ctx(|| format!("remove volume {name}"))?;
        std::fs::remove_dir_all(&dir).ctx(|| format!("remove volume {name}"))?;
        self.emit("volume", "destroy", name, &[("driver", "local")]);
        Ok(())
    }

    /// `docker volume prune`: unused anonymous volumes, or all unused ones with `all=true`.
    pub fn prune_volumes(&self, filters: &Filters) -> Result<VolumePrune> {
        let all = filters
            .get("all")
            .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        let mut label_filters = filters.clone();
        label_filters.remove("all");
        let mut report = VolumePrune::default();
        for v in self.list_volumes(&label_filters)? {
            if (!v.anonymous && !all) || !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = dir_size(Path::new(&v.mountpoint));
            if self.remove_volume(&v.name, false).is_ok() {
                report.deleted.push(v.name);
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }

    /// Removes the anonymous volumes of a removed container (`rm -v`, `--rm`).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            if let Ok(Some(v)) = self.read_volume(&m.name) {
                if v.anonymous {
                    if let Err(e) = self.remove_volume(&m.name, false) {
                        tracing::debug!(volume = %m.name, error = %e, "keeping volume");
                    }
                }
            }
        }
    }

    /// Resolves a new container's binds and volumes (creating volumes and bind sources as
    /// Docker does) and fills new volumes with the image's content at their destination.
    pub(crate) fn resolve_mounts(
        &self,
        host: &HostConfig,
        volumes: &[String],
        image: &Digest,
    ) -> Result<Vec<MountPoint>> {
        let mut parsed = Vec::new();
        for b in &host.binds {
            parsed.push(parse_bind(b)?);
        }
        for b in &host.strict_binds {
            let p = parse_bind(b)?;
            if let Spec::Bind { source } = &p.spec {
                if !source.exists() {
                    return Err(EngineError::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        source.display()
                    )));
                }
            }
            parsed.push(p);
        }
        // tmpfs destinations are taken: no image VOLUME is made under them.
        let taken: Vec<&String> = host.tmpfs.keys().collect();
        let inherited = self.volumes_from(&host.volumes_from)?;
        for v in volumes {
            let dest = clean_destination(v);
            if taken.contains(&&dest) || inherited.iter().any(|m| m.destination == dest) {
                continue;
            }
            let dest = clean_destination(v);
            if !parsed.iter().any(|p: &Parsed| p.destination == dest) {
                parsed.push(parse_bind(&dest)?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &parsed {
            if !seen.insert(p.destination.clone()) {
                return Err(EngineError::invalid(format!(
                    "Duplicate mount point: {}",
                    p.destination
                )));
            }
        }
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        for p in parsed {
            let (kind, name, source) = match &p.spec {
                Spec::Bind { source } => {
                    std::fs::create_dir_all(source)
                        .ctx(|| format!("create bind source {}", source.display()))?;
                    ("bind", String::new(), source.display().to_string())
                }
                Spec::Named { name } => {
                    let (v, created) =
                        self.create_volume_as(name, false, BTreeMap::new(), BTreeMap::new())?;
                    if created && !p.nocopy {
                        fresh.push((v.mountpoint.clone(), p.destination.clone()));
                    }
                    ("volume", v.name, v.mountpoint)
                }
                Spec::Anonymous => {
                    let (v, _) = self.create_volume_as(
                        &names::random_id(),
                        true,
                        BTreeMap::new(),
                        BTreeMap::new(),
                    )?;
                    if !p.nocopy {
                        fresh.push((v.mountpoint.clone(), p.destination.clone()));
                    }
                    ("volume", v.name, v.mountpoint)
                }
            };
            out.push(MountPoint {
                kind: kind.into(),
                name,
                source,
                destination: p.destination,
                rw: p.rw,
                mode: p.mode,
                propagation: p.propagation,
            });
        }
        if !fresh.is_empty() {
            self.copy_up(image, &fresh)?;
        }
        // `--volumes-from` mounts come last and yield to the container's own.
        for m in inherited {
            if !out.iter().any(|o| o.destination == m.destination) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// The mounts of `--volumes-from container[:ro|rw]`, with the mode given (or theirs).
    fn volumes_from(&self, specs: &[String]) -> Result<Vec<MountPoint>> {
        let mut out = Vec::new();
        for spec in specs {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                _ => (spec.as_str(), None),
            };
            let c = self.inspect_container(name)?;
            for mut m in c.mounts {
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                    m.mode = mode.to_string();
                }
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Docker's volume copy-up: what the image has at each destination, with its owners and
    /// modes, goes into the new volume.
    fn copy_up(&self, image: &Digest, targets: &[(String, String)]) -> Result<()> {
        let view = self.image_view(image)?;
        for (volume_dir, dest) in targets {
            let Ok(src) = berth_runtime::user::open_in_root(view.path(), dest) else {
                continue;
            };
            if !src.metadata().is_ok_and(|m| m.is_dir()) {
                continue;
            }
            use std::os::fd::AsRawFd;
            let path = PathBuf::from(format!("/proc/self/fd/{}", src.as_raw_fd()));
            berth_runtime::rootfs::copy_into(
                Path::new(volume_dir),
                &path,
                "",
                "/",
                berth_runtime::rootfs::CopyOptions {
                    preserve: true,
                    ..Default::default()
                },
            )
            .ctx(|| format!("copy image content into the volume at {dest}"))?;
        }
        Ok(())
    }
}

/// Bytes of the regular files under `dir` (prune's `SpaceReclaimed`).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_v_syntax() {
        let p = parse_bind("/host/dir:/data:ro").expect("bind");
        assert_eq!(
            (p.spec, p.destination.as_str(), p.rw),
            (
                Spec::Bind {
                    source: "/host/dir".into()
                },
                "/data",
                false
            )
        );
        let p = parse_bind("cache:/var/cache/").expect("named");
        assert_eq!(
            (p.spec, p.destination.as_str()),
            (
                Spec::Named {
                    name: "cache".into()
                },
                "/var/cache"
            )
        );
        assert_eq!(
            parse_bind("/etc/nginx").expect("anonymous").spec,
            Spec::Anonymous
        );
        let p = parse_bind("data:/d:nocopy,rshared").expect("options");
        assert!(p.nocopy && p.propagation == "rshared");
        assert!(parse_bind("data:relative").is_err());
        assert!(parse_bind("bad name:/d").is_err());
        assert!(parse_bind("/a:/b:rw:extra").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
    }
}
