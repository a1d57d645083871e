//! `/version` and `/info` on the wire.

use std::collections::HashMap;

use berth_engine::types::{SystemInfo, VersionInfo};
use bollard_stubs::models::{
    self as wire, IndexInfo, LocalNodeState, PluginsInfo, RegistryServiceConfig, Runtime,
    SwarmInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};

use crate::{API_VERSION, MIN_API_VERSION};

/// What `docker version` shows under "Server", including the "Engine" component the CLI reads
/// its details from.
pub fn version(v: &VersionInfo) -> SystemVersion {
    let details: HashMap<String, String> = [
        ("ApiVersion", API_VERSION),
        ("MinAPIVersion", MIN_API_VERSION),
        ("GitCommit", v.git_commit.as_str()),
        ("GoVersion", "n/a"),
        ("Os", v.os.as_str()),
        ("Arch", v.arch.as_str()),
        ("KernelVersion", v.kernel_version.as_str()),
        ("BuildTime", v.build_time.as_str()),
        ("Experimental", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "Berth".into(),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: v.version.clone(),
            details: Some(details),
        }]),
        version: Some(v.version.clone()),
        api_version: Some(API_VERSION.into()),
        min_api_version: Some(MIN_API_VERSION.into()),
        git_commit: Some(v.git_commit.clone()),
        go_version: Some("n/a".into()),
        os: Some(v.os.clone()),
        arch: Some(v.arch.clone()),
        kernel_version: Some(v.kernel_version.clone()),
        experimental: Some(false),
        build_time: Some(v.build_time.clone()),
    }
}

fn cgroup_driver(s: &str) -> SystemInfoCgroupDriverEnum {
    match s {
        "systemd" => SystemInfoCgroupDriverEnum::SYSTEMD,
        "cgroupfs" => SystemInfoCgroupDriverEnum::CGROUPFS,
        _ => SystemInfoCgroupDriverEnum::EMPTY,
    }
}

fn cgroup_version(s: &str) -> SystemInfoCgroupVersionEnum {
    match s {
        "1" => SystemInfoCgroupVersionEnum::_1,
        "2" => SystemInfoCgroupVersionEnum::_2,
        _ => SystemInfoCgroupVersionEnum::EMPTY,
    }
}

/// True for `10.0.0.0/8`-style entries: dockerd keeps insecure CIDRs apart from host names.
fn is_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(addr, bits)| {
        bits.parse::<u8>().is_ok() && addr.parse::<std::net::IpAddr>().is_ok()
    })
}

/// The registry section of `/info`, as dockerd builds it from its configuration: loopback is
/// always insecure, Docker Hub is the official secure index carrying the mirrors.
fn registry_config(mirrors: &[String], insecure: &[String]) -> RegistryServiceConfig {
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mut indexes = HashMap::new();
    indexes.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: Some("docker.io".into()),
            mirrors: Some(mirrors.to_vec()),
            secure: Some(true),
            official: Some(true),
        },
    );
    for entry in insecure {
        if is_cidr(entry) {
            if !cidrs.contains(entry) {
                cidrs.push(entry.clone());
            }
        } else {
            indexes.insert(
                entry.clone(),
                IndexInfo {
                    name: Some(entry.clone()),
                    mirrors: Some(Vec::new()),
                    secure: Some(false),
                    official: Some(false),
                },
            );
        }
    }
    RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(indexes),
        mirrors: Some(mirrors.to_vec()),
    }
}

/// `GET /info`: every fact the engine gives, and Docker's defaults for what berth does not have
/// (no swarm, no plugins beyond the built-in ones) so that `docker info` renders all sections.
pub fn info(i: &SystemInfo) -> wire::SystemInfo {
    let mut runtimes = HashMap::new();
    runtimes.insert(
        i.default_runtime.clone(),
        Runtime {
            path: Some(i.default_runtime.clone()),
            runtime_args: None,
            status: None,
        },
    );
    wire::SystemInfo {
        id: Some(i.id.clone()),
        containers: Some(i.containers),
        containers_running: Some(i.containers_running),
        containers_paused: Some(i.containers_paused),
        containers_stopped: Some(i.containers_stopped),
        images: Some(i.images),
        driver: Some(i.driver.clone()),
        driver_status: Some(
            i.driver_status
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect(),
        ),
        docker_root_dir: Some(i.docker_root_dir.clone()),
        plugins: Some(PluginsInfo {
            volume: Some(vec!["local".into()]),
            network: Some(vec!["bridge".into(), "host".into(), "none".into()]),
            authorization: None,
            log: Some(vec![i.logging_driver.clone()]),
        }),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(false),
        ipv4_forwarding: Some(true),
        debug: Some(i.debug),
        nfd: Some(0),
        n_goroutines: Some(0),
        system_time: Some(i.system_time.clone()),
        logging_driver: Some(i.logging_driver.clone()),
        cgroup_driver: Some(cgroup_driver(&i.cgroup_driver)),
        cgroup_version: Some(cgroup_version(&i.cgroup_version)),
        n_events_listener: Some(0),
        kernel_version: Some(i.kernel_version.clone()),
        operating_system: Some(i.operating_system.clone()),
        os_version: Some(String::new()),
        os_type: Some(i.os_type.clone()),
        architecture: Some(i.architecture.clone()),
        ncpu: Some(i.ncpu),
        mem_total: Some(i.mem_total),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        registry_config: Some(registry_config(&i.registry_mirrors, &i.insecure_registries)),
        generic_resources: None,
        http_proxy: Some(String::new()),
        https_proxy: Some(String::new()),
        no_proxy: Some(String::new()),
        name: Some(i.name.clone()),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(i.server_version.clone()),
        runtimes: Some(runtimes),
        default_runtime: Some(i.default_runtime.clone()),
        swarm: Some(SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            remote_managers: None,
            ..Default::default()
        }),
        live_restore_enabled: Some(i.live_restore_enabled),
        isolation: None,
        init_binary: Some(i.init_binary.clone()),
        containerd_commit: Some(wire::Commit {
            id: Some(String::new()),
        }),
        runc_commit: Some(wire::Commit {
            id: Some(String::new()),
        }),
        init_commit: Some(wire::Commit {
            id: Some(String::new()),
        }),
        security_options: Some(i.security_options.clone()),
        warnings: Some(Vec::new()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_told_from_hosts() {
        assert!(is_cidr("10.0.0.0/8"));
        assert!(is_cidr("fd00::/8"));
        assert!(!is_cidr("myregistry:5000"));
        assert!(!is_cidr("host/path"));
        let rc = registry_config(
            &["https://m".into()],
            &["10.0.0.0/8".into(), "r:5000".into()],
        );
        assert_eq!(
            rc.insecure_registry_cidrs,
            Some(vec![
                "::1/128".into(),
                "127.0.0.0/8".into(),
                "10.0.0.0/8".into()
            ])
        );
        let idx = rc.index_configs.unwrap_or_default();
        assert_eq!(idx.get("r:5000").and_then(|i| i.secure), Some(false));
        assert_eq!(
            idx.get("docker.io").and_then(|i| i.mirrors.clone()),
            Some(vec!["https://m".to_string()])
        );
    }

    #[test]
    fn info_has_the_keys_docker_info_reads() {
        let info = info(&SystemInfo {
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: "2".into(),
            default_runtime: "libcontainer".into(),
            logging_driver: "json-file".into(),
            driver_status: vec![("Backing Filesystem".into(), "extfs".into())],
            ..Default::default()
        });
        let v = serde_json::to_value(&info).unwrap_or_default();
        assert_eq!(v["CgroupDriver"], "cgroupfs");
        assert_eq!(v["CgroupVersion"], "2");
        assert_eq!(v["DriverStatus"][0][0], "Backing Filesystem");
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(v["Runtimes"]["libcontainer"]["path"], "libcontainer");
        assert_eq!(v["Plugins"]["Log"][0], "json-file");
        assert_eq!(
            v["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"],
            true
        );
        for key in [
            "ID",
            "Containers",
            "ContainersRunning",
            "ContainersPaused",
            "ContainersStopped",
            "Images",
            "Driver",
            "DockerRootDir",
            "MemoryLimit",
            "SwapLimit",
            "KernelVersion",
            "OperatingSystem",
            "OSType",
            "Architecture",
            "NCPU",
            "MemTotal",
            "Name",
            "ServerVersion",
            "LiveRestoreEnabled",
            "SecurityOptions",
            "DefaultRuntime",
            "LoggingDriver",
            "SystemTime",
            "IndexServerAddress",
            "ContainerdCommit",
            "RuncCommit",
            "InitCommit",
            "Warnings",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn version_has_an_engine_component() {
        let v = version(&VersionInfo {
            version: "0.1.0".into(),
            git_commit: "abc".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: "6.1".into(),
            build_time: String::new(),
        });
        let v = serde_json::to_value(&v).unwrap_or_default();
        assert_eq!(v["ApiVersion"], API_VERSION);
        assert_eq!(v["MinAPIVersion"], MIN_API_VERSION);
        assert_eq!(v["Components"][0]["Name"], "Engine");
        assert_eq!(v["Components"][0]["Details"]["ApiVersion"], API_VERSION);
        assert_eq!(v["Platform"]["Name"], "Berth");
        assert_eq!(v["Os"], "linux");
    }
}
