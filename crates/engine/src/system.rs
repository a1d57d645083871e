//! `/version` and `/info`: facts about the engine and the host.

use crate::types::{Status, SystemInfo, VersionInfo};
use crate::{lock, Engine};

fn uname() -> (String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.nodename().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// "2" when /sys/fs/cgroup is the unified hierarchy, else "1" (legacy or hybrid).
pub fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

impl Engine {
    pub fn version(&self) -> VersionInfo {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("BERTH_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            os: "linux".into(),
            arch: crate::imageconfig::host_arch().into(),
            kernel_version: uname().0,
            build_time: String::new(),
        }
    }

    pub fn info(&self) -> SystemInfo {
        let (kernel, host) = uname();
        let (mut running, mut paused, mut stopped, mut total) = (0, 0, 0, 0);
        for slot in lock(&self.inner.containers).by_id.values() {
            total += 1;
            match slot.c.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let images = lock(&self.inner.images).images.len() as i64;
        let cfg = &self.inner.config;
        SystemInfo {
            id: self.inner.engine_id.clone(),
            containers: total,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: stopped,
            images,
            driver: "overlay2".into(),
            driver_status: vec![
                ("Backing Filesystem".into(), "extfs".into()),
                ("Supports d_type".into(), "true".into()),
                ("Using metacopy".into(), "false".into()),
                ("Native Overlay Diff".into(), "true".into()),
            ],
            docker_root_dir: cfg.data_root.display().to_string(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version().into(),
            kernel_version: kernel,
            operating_system: os_release(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            name: host,
            server_version: env!("CARGO_PKG_VERSION").into(),
            live_restore_enabled: cfg.live_restore,
            registry_mirrors: cfg.registry_mirrors.clone(),
            insecure_registries: cfg.insecure_registries.clone(),
            security_options: Vec::new(),
            default_runtime: "libcontainer".into(),
            logging_driver: "json-file".into(),
            debug: cfg.debug,
            system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            init_binary: String::new(),
        }
    }
}
