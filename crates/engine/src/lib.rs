//! The engine: containers and images as plain domain services. It knows nothing of HTTP; the
//! `api` crate converts requests into calls on [`Engine`] and results back into Docker's JSON.
//!
//! State lives in two in-memory databases (images, containers) rebuilt at start from the data
//! root, where every change is written crash-safely before it is acknowledged.

mod archive;
mod buildops;
mod commit;
mod containers;
mod cp;
mod error;
pub mod events;
mod exec;
mod files;
pub mod health;
mod imageconfig;
mod images;
mod import;
mod leases;
mod lifecycle;
mod logs;
mod manage;
mod names;
pub mod networks;
pub mod progress;
mod pull;
mod push;
mod registry;
mod system;
pub mod types;
mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use archive::TarStream;
pub use berth_archive::Format as ArchiveFormat;
use berth_snapshot::layer::LayerStore;
use berth_snapshot::snapshot::Snapshots;
use berth_store::content::ContentStore;
pub use buildops::{CopyOptions, ImageView, StepHistory};
pub use commit::CommitOptions;
pub use cp::PathStat;
pub use error::{EngineError, ErrorKind, Result};
pub use exec::{ExecAttachment, ExecConfig, ExecInspect};
pub use imageconfig::RunConfig;
pub use manage::{Change, ChangeKind, PruneReport, Stats, Top, UpdateRequest};
pub use progress::ProgressSink;
use types::*;
pub use volumes::VolumePrune;

/// Static configuration of an engine instance (from flags and daemon.json).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// Keep containers running when the daemon stops (Docker's `live-restore`; our default).
    pub live_restore: bool,
    /// The binary spawned as each container's shim (`<binary> shim ...`).
    pub shim_binary: PathBuf,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Docker's `certs.d` layout: per-registry CAs and client certificates.
    pub certs_dir: PathBuf,
    /// Default `log-opts` from daemon.json.
    pub log_opts: BTreeMap<String, String>,
    /// `default-ulimits` from daemon.json; a container's own `--ulimit` of a name wins.
    pub default_ulimits: Vec<types::Ulimit>,
    /// daemon.json `init`: every container without its own `--init` setting gets one.
    pub init: bool,
    /// daemon.json `init-path`; otherwise `docker-init` (or `tini-static`) from PATH.
    pub init_path: Option<PathBuf>,
    /// daemon.json `bridge`, `bip`, `userland-proxy`, `ip-forward`, `iptables`.
    pub network: networks::NetworkConfig,
    pub debug: bool,
}

/// The engine handle; cheap to clone, shared by every API request.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: EngineConfig,
    content: ContentStore,
    layers: LayerStore,
    snapshots: Snapshots,
    images: Mutex<images::ImageDb>,
    containers: Mutex<containers::ContainerDb>,
    engine_id: String,
    registry: berth_distribution::Registry,
    leases: Arc<Mutex<leases::Leases>>,
    /// Serialises volume creation, so that two containers naming a new volume share it.
    volumes_lock: Mutex<()>,
    events: events::Events,
    execs: Mutex<exec::ExecDb>,
    net: networks::NetState,
}

/// Locks a std mutex, recovering from poisoning: a panic elsewhere must not wedge the daemon,
/// and the databases are kept consistent by writing disk state before memory state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// Opens (or initialises) the state under the data root and re-attaches to running shims.
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        use error::Context;
        use std::os::unix::fs::PermissionsExt;
        containers::validate_ulimits(&config.default_ulimits)?;
        let root = &config.data_root;
        std::fs::create_dir_all(root).ctx(|| format!("create {}", root.display()))?;
        // 0710 like Docker's since CVE-2021-41091: unprivileged users cannot reach into
        // container filesystems through the data root.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o710))
            .ctx(|| format!("chmod {}", root.display()))?;
        for dir in ["containers", "snapshots", "layers"] {
            std::fs::create_dir_all(root.join(dir)).ctx(|| format!("create {dir}"))?;
        }
        // Scratch space of operations in progress (build contexts); nothing there survives a
        // restart.
        let _ = std::fs::remove_dir_all(root.join("tmp"));
        for dir in ["containers", "shims", "runtime"] {
            std::fs::create_dir_all(config.exec_root.join(dir))
                .ctx(|| format!("create {}", config.exec_root.join(dir).display()))?;
        }
        let content =
            ContentStore::open(&root.join("content")).ctx(|| "open content store".into())?;
        let layers = LayerStore::open(&root.join("layers")).ctx(|| "open layer store".into())?;
        let snapshots = Snapshots::open(&root.join("snapshots")).ctx(|| "open snapshots".into())?;
        let image_db = images::ImageDb::load(&content, &layers, &root.join("content"))?;
        let engine_id = engine_id(root)?;
        let container_db = containers::ContainerDb::load(&root.join("containers"))?;
        let registry = registry::build_registry(&config)?;

        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                content,
                layers,
                snapshots,
                images: Mutex::new(image_db),
                containers: Mutex::new(container_db),
                engine_id,
                registry,
                leases: Arc::default(),
                volumes_lock: Mutex::new(()),
                events: events::Events::default(),
                execs: Mutex::default(),
                net: networks::NetState::default(),
            }),
        };
        engine.open_volumes()?;
        engine.open_networks().await?;
        engine.restore().await;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub(crate) fn data_root(&self) -> &Path {
        &self.inner.config.data_root
    }

    /// Stops containers first unless live restore is on (Docker's `live-restore: false`).
    pub async fn shutdown(&self) {
        if self.inner.config.live_restore {
            return;
        }
        let running: Vec<String> = lock(&self.inner.containers)
            .by_id
            .values()
            .filter(|s| s.c.state.is_running())
            .map(|s| s.c.id.clone())
            .collect();
        let stops = running.iter().map(|id| self.stop_container(id, None, None));
        for r in futures_util::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "stop at shutdown");
            }
        }
        self.close_networks().await;
    }
}

/// A stable ID for `/info`, created once per data root.
fn engine_id(root: &Path) -> Result<String> {
    use error::Context;
    let path = root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = uuid_like();
    berth_store::atomic::write_atomic(&path, id.as_bytes()).ctx(|| "write engine-id".into())?;
    Ok(id)
}

fn uuid_like() -> String {
    let h = names::random_id();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Helpers shared by the modules.
impl Engine {
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.data_root().join("containers").join(id)
    }
    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.inner.config.exec_root.join("containers").join(id)
    }
    /// Short on purpose: Unix socket paths are limited to 108 bytes.
    pub(crate) fn shim_socket(&self, id: &str) -> PathBuf {
        self.inner
            .config
            .exec_root
            .join("shims")
            .join(format!("{}.sock", &id[..id.len().min(24)]))
    }
    pub(crate) fn exit_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exit.json")
    }
}

pub(crate) type Waiters = Vec<tokio::sync::oneshot::Sender<WaitResult>>;
