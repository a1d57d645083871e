//! `berth daemon`: reads flags and daemon.json, takes the data root's lock, prepares the shim
//! binary, opens the engine and serves the Docker Engine API until SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(name = "berth daemon", about = "Run the berth daemon")]
struct Args {
    /// Daemon socket(s) to connect to
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root directory of persistent berth state
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root directory for execution state files
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Daemon configuration file
    #[arg(long, default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// Enable live restore of containers when the daemon stops
    #[arg(long)]
    live_restore: Option<bool>,
}

/// daemon.json, with Docker's key names. Keys that belong to later features are accepted so a
/// Docker configuration file works unchanged; unknown keys are an error, as in dockerd.
#[derive(Deserialize, Debug, Default)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    hosts: Vec<String>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    debug: bool,
    log_level: Option<String>,
    live_restore: Option<bool>,
    registry_mirrors: Vec<String>,
    insecure_registries: Vec<String>,
    log_driver: Option<String>,
    log_opts: BTreeMap<String, String>,
    /// The default network's Linux bridge, or "none" for no default network.
    bridge: Option<String>,
    bip: Option<String>,
    userland_proxy: Option<bool>,
    // Accepted for compatibility; used by later features.
    default_address_pools: Option<serde_json::Value>,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_opts: Option<Vec<String>>,
    storage_driver: Option<String>,
    features: Option<serde_json::Value>,
    experimental: Option<bool>,
    group: Option<String>,
    iptables: Option<bool>,
    ip_forward: Option<bool>,
    default_ulimits: BTreeMap<String, FileUlimit>,
    init: bool,
    init_path: Option<PathBuf>,
    max_concurrent_downloads: Option<u32>,
    max_concurrent_uploads: Option<u32>,
}

/// One `default-ulimits` entry, keyed by name: `{"Name": "nofile", "Soft": 1024, "Hard": 2048}`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct FileUlimit {
    name: Option<String>,
    soft: i64,
    hard: i64,
}

fn load_file_config(path: &Path, explicit: bool) -> Result<FileConfig> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| {
            anyhow!(
                "unable to configure the berth daemon with file {}: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(anyhow!("unable to read {}: {e}", path.display())),
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    // argv[0] is `berth`, argv[1] is `daemon`.
    let args = match Args::try_parse_from(args.into_iter().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(args: Args) -> Result<()> {
    let explicit_config = args.config_file != Path::new("/etc/berth/daemon.json");
    let file = load_file_config(&args.config_file, explicit_config)?;
    let debug = args.debug || file.debug;
    let level = args
        .log_level
        .clone()
        .or(file.log_level.clone())
        .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
    init_tracing(&level);

    let data_root = args
        .data_root
        .or(file.data_root)
        .unwrap_or_else(|| "/var/lib/berth".into());
    let exec_root = args
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| "/run/berth".into());
    let mut hosts = if args.hosts.is_empty() {
        file.hosts
    } else {
        args.hosts
    };
    if hosts.is_empty() {
        hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
    }
    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("create data root {}", data_root.display()))?;
    std::fs::create_dir_all(&exec_root)
        .with_context(|| format!("create exec root {}", exec_root.display()))?;
    let _lock = lock_data_root(&data_root)?;
    write_pid_file(&exec_root)?;
    let shim_binary = prepare_shim_binary(&exec_root)?;

    let config = berth_engine::EngineConfig {
        data_root: data_root.clone(),
        exec_root: exec_root.clone(),
        live_restore: args.live_restore.or(file.live_restore).unwrap_or(true),
        shim_binary,
        registry_mirrors: file.registry_mirrors,
        insecure_registries: file.insecure_registries,
        // Beside daemon.json, as Docker keeps certs.d beside its own (/etc/docker/certs.d).
        certs_dir: args
            .config_file
            .parent()
            .unwrap_or(Path::new("/etc/berth"))
            .join("certs.d"),
        log_opts: file.log_opts,
        default_ulimits: file
            .default_ulimits
            .into_iter()
            .map(|(key, u)| berth_engine::types::Ulimit {
                name: u.name.unwrap_or(key),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        init: file.init,
        init_path: file.init_path,
        network: berth_engine::networks::NetworkConfig {
            default_bridge: match file.bridge.as_deref() {
                Some("none") => None,
                Some(name) if !name.is_empty() => Some(name.to_string()),
                _ => Some("berth0".into()),
            },
            bip: file.bip,
            // Off by default, unlike dockerd 20.10–28 (moby is turning it off too, moby#14856,
            // moby#50652): the kernel's DNAT serves 127.0.0.1 at 99% of a direct connection's
            // throughput here, the proxy (a second TCP connection per client) at 67–76%.
            // `"userland-proxy": true` brings it back.
            userland_proxy: file.userland_proxy.unwrap_or(false),
            ip_forward: file.ip_forward.unwrap_or(true),
            iptables: file.iptables.unwrap_or(true),
        },
        debug,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start async runtime")?;
    runtime.block_on(async move {
        let engine = berth_engine::Engine::open(config)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let mut servers = Vec::new();
        let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
        for host in &hosts {
            let path = host.strip_prefix("unix://").ok_or_else(|| {
                anyhow!("unsupported host {host:?}: only unix:// sockets are served")
            })?;
            let listener = bind_socket(Path::new(path))?;
            tracing::info!(socket = path, "API listening");
            let mut stop = stop_tx.subscribe();
            servers.push(tokio::spawn(berth_api::serve(
                engine.clone(),
                listener,
                async move {
                    let _ = stop.recv().await;
                },
            )));
        }
        tracing::info!(data_root = %data_root.display(), "berth daemon started");
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(());
        engine.shutdown().await;
        for s in servers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
        }
        for host in &hosts {
            if let Some(path) = host.strip_prefix("unix://") {
                let _ = std::fs::remove_file(path);
            }
        }
        let _ = std::fs::remove_file(exec_root.join("berth.pid"));
        // Running shims keep the detached mount alive for as long as they need it.
        let _ = nix::mount::umount2(
            &exec_root.join("berth-shim"),
            nix::mount::MntFlags::MNT_DETACH,
        );
        Ok::<(), anyhow::Error>(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon can only be killed; keep serving.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One daemon per data root: an exclusive, non-blocking flock held for the daemon's lifetime.
fn lock_data_root(root: &Path) -> Result<File> {
    let path = root.join("berth.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no pointers involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "another berth daemon (pid {}) is already using the data root {}",
            holder.trim(),
            root.display()
        );
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

fn write_pid_file(exec_root: &Path) -> Result<()> {
    let path = exec_root.join("berth.pid");
    std::fs::write(&path, std::process::id().to_string())
        .with_context(|| format!("write {}", path.display()))
}

/// Copies our own binary to the exec root and bind-mounts it read-only onto itself; shims (and
/// so container init processes before their exec) run from that copy. A container process that
/// reaches the shim's executable through /proc/<pid>/exe finds a read-only file that is not the
/// host's berth binary (the CVE-2019-5736 class of attack).
fn prepare_shim_binary(exec_root: &Path) -> Result<PathBuf> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let exe = std::env::current_exe().context("locate own executable")?;
    let target = exec_root.join("berth-shim");
    // A mount from a previous daemon: detach it (running shims keep their own reference).
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    let tmp = exec_root.join(".berth-shim.tmp");
    std::fs::copy(&exe, &tmp)
        .with_context(|| format!("copy {} to {}", exe.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    std::fs::rename(&tmp, &target)?;
    mount(
        Some(&target),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind mount {}", target.display()))?;
    mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .with_context(|| format!("remount {} read-only", target.display()))?;
    Ok(target)
}

/// Binds the API socket: mode 0660, group `berth` when that group exists (as Docker's socket
/// belongs to group `docker`).
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Ok(Some(group)) = nix::unistd::Group::from_name("berth") {
        nix::unistd::chown(path, None, Some(group.gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(listener)
}
