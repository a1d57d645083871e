//! Containers on the wire: `ContainerCreateBody` in, `ContainerSummary` and
//! `ContainerInspectResponse` out.

use std::collections::{BTreeMap, HashMap};

use berth_engine::types::{
    Container, ContainerConfig, ContainerState, CreateRequest, HostConfig, RestartPolicy, Status,
    Ulimit,
};
use bollard_stubs::models::{
    self as wire, ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummary, ContainerSummaryHostConfig, ContainerSummaryNetworkSettings,
    ContainerSummaryStateEnum, DriverData, HostConfigLogConfig, MountType, NetworkSettings,
    RestartPolicyNameEnum,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{ensure, human_duration, object_at, rfc3339_nano, set, time_or_zero, to_value};
use crate::error::ApiError;

/// Docker's `State.Running`: true while running, paused or restarting.
fn is_running(s: &ContainerState) -> bool {
    matches!(
        s.status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

/// The `Status` column of `docker ps`, worded as dockerd's `State.String()`.
pub fn status_text(s: &ContainerState, now: DateTime<Utc>) -> String {
    let since = |t: Option<&DateTime<Utc>>| human_duration(now - t.copied().unwrap_or(now));
    match s.status {
        Status::Paused => format!("Up {} (Paused)", since(s.started_at.as_ref())),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            since(s.finished_at.as_ref())
        ),
        Status::Running => {
            let health = match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(s.started_at.as_ref()))
        }
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created | Status::Exited => match (&s.started_at, &s.finished_at) {
            (None, _) => "Created".into(),
            (Some(_), None) => String::new(),
            (Some(_), Some(f)) => {
                format!("Exited ({}) {} ago", s.exit_code, human_duration(now - *f))
            }
        },
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn inspect_state(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

/// Docker's `Command` column: the path and its arguments joined by spaces.
pub fn command_line(c: &Container) -> String {
    if c.args.is_empty() {
        c.path.clone()
    } else {
        format!("{} {}", c.path, c.args.join(" "))
    }
}

fn hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One row of `GET /containers/json`. `image` is what the `Image` column shows: the name the
/// container was created from, or the image ID when that name now points elsewhere (as dockerd
/// does after a re-tag).
pub fn summary(c: &Container, image: String, now: DateTime<Utc>) -> ContainerSummary {
    ContainerSummary {
        id: Some(c.id.clone()),
        names: Some(vec![format!("/{}", c.name)]),
        image: Some(image),
        image_id: Some(c.image_id.to_string()),
        command: Some(command_line(c)),
        created: Some(c.created.timestamp()),
        ports: Some(summary_ports(c)),
        labels: Some(hash_map(&c.config.labels)),
        state: Some(summary_state(c.state.status)),
        status: Some(status_text(&c.state, now)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(c.host_config.network_mode.clone()),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(endpoints_to_wire(c)),
        }),
        mounts: Some(c.mounts.iter().map(mount_to_wire).collect()),
        ..Default::default()
    }
}

/// The `Ports` of a `ps` row: published ports with their host side, other exposed ports bare.
fn summary_ports(c: &Container) -> Vec<wire::PortSummary> {
    let proto = |p: &str| match p {
        "udp" => wire::PortSummaryTypeEnum::UDP,
        "sctp" => wire::PortSummaryTypeEnum::SCTP,
        _ => wire::PortSummaryTypeEnum::TCP,
    };
    let mut out: Vec<wire::PortSummary> = c
        .network
        .ports
        .iter()
        .map(|p| wire::PortSummary {
            ip: Some(p.host_ip.to_string()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            typ: Some(proto(p.protocol.as_str())),
        })
        .collect();
    for key in &c.config.exposed_ports {
        let (port, p) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !out
            .iter()
            .any(|x| x.private_port == port && x.typ == Some(proto(p)))
        {
            out.push(wire::PortSummary {
                ip: None,
                private_port: port,
                public_port: None,
                typ: Some(proto(p)),
            });
        }
    }
    out
}

/// `NetworkSettings.Ports`: each exposed port, with its host bindings while published.
fn ports_map(c: &Container) -> HashMap<String, Option<Vec<wire::PortBinding>>> {
    let mut map: HashMap<String, Option<Vec<wire::PortBinding>>> = c
        .config
        .exposed_ports
        .iter()
        .map(|k| (k.clone(), None))
        .collect();
    for p in &c.network.ports {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        map.entry(key)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(wire::PortBinding {
                host_ip: Some(p.host_ip.to_string()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    map
}

/// `NetworkSettings.Networks`: one entry per network, with addresses while running.
pub fn endpoints_to_wire(c: &Container) -> HashMap<String, wire::EndpointSettings> {
    let mut out: HashMap<String, wire::EndpointSettings> = c
        .network
        .endpoints
        .iter()
        .map(|(name, e)| (name.clone(), endpoint_to_wire(c, e)))
        .collect();
    // Containers on `host` or `none` show that network, as dockerd does.
    if out.is_empty() {
        let mode = c.host_config.network_mode.as_str();
        if matches!(mode, "host" | "none") {
            out.insert(mode.to_string(), wire::EndpointSettings::default());
        }
    }
    out
}

fn endpoint_to_wire(c: &Container, e: &berth_engine::types::Endpoint) -> wire::EndpointSettings {
    let (ip, prefix) = match e.ip.split_once('/') {
        Some((ip, p)) => (ip.to_string(), p.parse::<i64>().unwrap_or(0)),
        None => (String::new(), 0),
    };
    let mut dns_names = Vec::new();
    if !e.ip.is_empty() {
        dns_names.push(c.name.clone());
        dns_names.push(c.id[..12.min(c.id.len())].to_string());
        dns_names.extend(e.request.aliases.iter().cloned());
    }
    wire::EndpointSettings {
        ipam_config: (!e.request.ipv4.is_empty()).then(|| wire::EndpointIpamConfig {
            ipv4_address: Some(e.request.ipv4.clone()),
            ..Default::default()
        }),
        links: None,
        mac_address: Some(e.mac.clone()),
        aliases: (!e.request.aliases.is_empty()).then(|| e.request.aliases.clone()),
        network_id: Some(e.network_id.clone()),
        endpoint_id: Some(e.endpoint_id.clone()),
        gateway: Some(e.gateway.clone()),
        ip_address: Some(ip),
        ip_prefix_len: Some(prefix),
        ipv6_gateway: Some(String::new()),
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        dns_names: (!dns_names.is_empty()).then_some(dns_names),
        ..Default::default()
    }
}

/// A mount as `docker inspect` shows it: volumes carry their driver, binds their propagation.
pub fn mount_to_wire(m: &berth_engine::types::MountPoint) -> wire::MountPoint {
    let volume = m.kind == "volume";
    wire::MountPoint {
        typ: Some(m.kind.clone()),
        name: volume.then(|| m.name.clone()),
        source: Some(m.source.clone()),
        destination: Some(m.destination.clone()),
        driver: volume.then(|| "local".to_string()),
        mode: Some(m.mode.clone()),
        rw: Some(m.rw),
        propagation: Some(if volume || !m.propagation.is_empty() {
            m.propagation.clone()
        } else {
            "rprivate".into()
        }),
    }
}

/// The engine's container configuration as Docker's `Config`.
pub fn config_to_wire(c: &ContainerConfig) -> wire::ContainerConfig {
    // Docker omits empty port and volume sets rather than sending `{}`.
    let non_empty = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    wire::ContainerConfig {
        hostname: Some(c.hostname.clone()),
        domainname: Some(c.domainname.clone()),
        user: Some(c.user.clone()),
        attach_stdin: Some(c.attach_stdin),
        attach_stdout: Some(c.attach_stdout),
        attach_stderr: Some(c.attach_stderr),
        exposed_ports: non_empty(&c.exposed_ports),
        tty: Some(c.tty),
        open_stdin: Some(c.open_stdin),
        stdin_once: Some(c.stdin_once),
        env: Some(c.env.clone()),
        cmd: c.cmd.clone(),
        image: Some(c.image.clone()),
        volumes: non_empty(&c.volumes),
        working_dir: Some(c.working_dir.clone()),
        entrypoint: c.entrypoint.clone(),
        network_disabled: c.network_disabled.then_some(true),
        labels: Some(hash_map(&c.labels)),
        stop_signal: c.stop_signal.clone(),
        stop_timeout: c.stop_timeout,
        healthcheck: c.healthcheck.as_ref().map(|h| wire::HealthConfig {
            test: Some(h.test.clone()),
            interval: (h.interval != 0).then_some(h.interval),
            timeout: (h.timeout != 0).then_some(h.timeout),
            retries: (h.retries != 0).then_some(h.retries),
            start_period: (h.start_period != 0).then_some(h.start_period),
            start_interval: (h.start_interval != 0).then_some(h.start_interval),
        }),
        ..Default::default()
    }
}

fn restart_name_to_wire(name: &str) -> RestartPolicyNameEnum {
    match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        // Docker shows an unset policy as "no".
        _ => RestartPolicyNameEnum::NO,
    }
}

/// The engine's host configuration as Docker's `HostConfig`, with the defaults dockerd shows
/// for everything berth does not model.
pub fn host_config_to_wire(h: &HostConfig) -> wire::HostConfig {
    let list = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    wire::HostConfig {
        binds: list(&h.binds),
        container_id_file: Some(String::new()),
        log_config: Some(HostConfigLogConfig {
            typ: Some(h.log_type.clone()),
            config: Some(hash_map(&h.log_config)),
        }),
        network_mode: Some(h.network_mode.clone()),
        port_bindings: Some(HashMap::new()),
        restart_policy: Some(wire::RestartPolicy {
            name: Some(restart_name_to_wire(&h.restart_policy.name)),
            maximum_retry_count: Some(h.restart_policy.maximum_retry_count),
        }),
        auto_remove: Some(h.auto_remove),
        volume_driver: Some(String::new()),
        console_size: Some(match h.console_size {
            Some((hh, ww)) => vec![usize::from(hh), usize::from(ww)],
            None => vec![0, 0],
        }),
        cap_add: list(&h.cap_add),
        cap_drop: list(&h.cap_drop),
        cgroupns_mode: Some(wire::HostConfigCgroupnsModeEnum::PRIVATE),
        dns: Some(h.dns.clone()),
        dns_options: Some(h.dns_options.clone()),
        dns_search: Some(h.dns_search.clone()),
        extra_hosts: list(&h.extra_hosts),
        ipc_mode: Some("private".into()),
        cgroup: Some(String::new()),
        oom_score_adj: Some(0),
        pid_mode: Some(String::new()),
        privileged: Some(h.privileged),
        publish_all_ports: Some(false),
        readonly_rootfs: Some(h.readonly_rootfs),
        security_opt: list(&h.security_opt),
        uts_mode: Some(String::new()),
        userns_mode: Some(String::new()),
        shm_size: Some(h.shm_size),
        runtime: Some("runc".into()),
        isolation: Some(wire::HostConfigIsolationEnum::EMPTY),
        cpu_shares: Some(h.cpu_shares),
        memory: Some(h.memory),
        nano_cpus: Some(h.nano_cpus),
        cgroup_parent: Some(String::new()),
        blkio_weight: Some(0),
        blkio_weight_device: Some(Vec::new()),
        blkio_device_read_bps: Some(Vec::new()),
        blkio_device_write_bps: Some(Vec::new()),
        blkio_device_read_iops: Some(Vec::new()),
        blkio_device_write_iops: Some(Vec::new()),
        cpu_period: Some(0),
        cpu_quota: Some(0),
        cpu_realtime_period: Some(0),
        cpu_realtime_runtime: Some(0),
        cpuset_cpus: Some(h.cpuset_cpus.clone()),
        cpuset_mems: Some(h.cpuset_mems.clone()),
        oom_kill_disable: Some(h.oom_kill_disable),
        devices: Some(Vec::new()),
        memory_reservation: Some(0),
        memory_swap: Some(h.memory_swap),
        init: h.init,
        pids_limit: h.pids_limit,
        ulimits: Some(
            h.ulimits
                .iter()
                .map(|u| wire::ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect(),
        ),
        cpu_count: Some(0),
        cpu_percent: Some(0),
        io_maximum_iops: Some(0),
        io_maximum_bandwidth: Some(0),
        ..Default::default()
    }
}

/// `GET /containers/{id}/json`, shaped as dockerd shows it (fields Docker sends as `null` are
/// present as `null`; times in Go's format).
pub fn inspect(c: &Container) -> Result<Value, ApiError> {
    let s = &c.state;
    let resp = ContainerInspectResponse {
        id: Some(c.id.clone()),
        path: Some(c.path.clone()),
        args: Some(c.args.clone()),
        state: Some(wire::ContainerState {
            status: Some(inspect_state(s.status)),
            running: Some(is_running(s)),
            paused: Some(s.status == Status::Paused),
            restarting: Some(s.status == Status::Restarting),
            oom_killed: Some(s.oom_killed),
            dead: Some(s.status == Status::Dead),
            pid: Some(i64::from(s.pid)),
            exit_code: Some(i64::from(s.exit_code)),
            error: Some(s.error.clone()),
            started_at: Some(time_or_zero(s.started_at.as_ref())),
            finished_at: Some(time_or_zero(s.finished_at.as_ref())),
            health: None,
        }),
        image: Some(c.image_id.to_string()),
        resolv_conf_path: Some(c.resolv_conf_path.clone()),
        hostname_path: Some(c.hostname_path.clone()),
        hosts_path: Some(c.hosts_path.clone()),
        log_path: Some(c.log_path.clone()),
        name: Some(format!("/{}", c.name)),
        restart_count: Some(c.restart_count),
        driver: Some(non_empty_or(&c.driver, "overlay2")),
        platform: Some(non_empty_or(&c.platform, "linux")),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        host_config: Some(host_config_to_wire(&c.host_config)),
        graph_driver: Some(DriverData {
            name: non_empty_or(&c.driver, "overlay2"),
            data: hash_map(&c.graph_driver),
        }),
        mounts: Some(c.mounts.iter().map(mount_to_wire).collect()),
        config: Some(config_to_wire(&c.config)),
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(String::new()),
            sandbox_key: Some(c.network.sandbox.clone()),
            ports: Some(ports_map(c)),
            networks: Some(endpoints_to_wire(c)),
        }),
        ..Default::default()
    };
    let mut v = to_value(&resp)?;
    // The legacy top-level fields (still read by `docker inspect -f '{{.NetworkSettings.IPAddress}}'`)
    // describe the default bridge endpoint.
    if let Some(ns) = object_at(&mut v, "NetworkSettings") {
        let bridge = c.network.endpoints.get("bridge");
        let (ip, prefix) = bridge
            .and_then(|e| e.ip.split_once('/'))
            .map(|(ip, p)| (ip.to_string(), p.parse::<i64>().unwrap_or(0)))
            .unwrap_or_default();
        ns["IPAddress"] = Value::from(ip);
        ns["IPPrefixLen"] = Value::from(prefix);
        ns["Gateway"] = Value::from(bridge.map(|e| e.gateway.clone()).unwrap_or_default());
        ns["MacAddress"] = Value::from(bridge.map(|e| e.mac.clone()).unwrap_or_default());
        ns["EndpointID"] = Value::from(bridge.map(|e| e.endpoint_id.clone()).unwrap_or_default());
    }
    // bollard-stubs would print chrono's format; Docker prints Go's RFC3339Nano.
    set(&mut v, "Created", Value::from(rfc3339_nano(&c.created)));
    if let (Some(h), Some(state)) = (&s.health, object_at(&mut v, "State")) {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|l| {
                serde_json::json!({
                    "Start": rfc3339_nano(&l.start),
                    "End": rfc3339_nano(&l.end),
                    "ExitCode": l.exit_code,
                    "Output": l.output,
                })
            })
            .collect();
        state["Health"] = serde_json::json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": log,
        });
    }
    ensure(&mut v, "ExecIDs", Value::Null);
    if let Some(config) = object_at(&mut v, "Config") {
        for key in ["Cmd", "Entrypoint", "Volumes", "OnBuild"] {
            ensure(config, key, Value::Null);
        }
    }
    if let Some(hc) = object_at(&mut v, "HostConfig") {
        for key in [
            "Binds",
            "VolumesFrom",
            "CapAdd",
            "CapDrop",
            "ExtraHosts",
            "GroupAdd",
            "Links",
            "SecurityOpt",
            "DeviceCgroupRules",
            "DeviceRequests",
            "MemorySwappiness",
            "OomKillDisable",
            "PidsLimit",
            "MaskedPaths",
            "ReadonlyPaths",
        ] {
            ensure(hc, key, Value::Null);
        }
    }
    if let Some(ns) = object_at(&mut v, "NetworkSettings") {
        // Deprecated top-level fields API <= 1.51 still carries; scripts read
        // `{{.NetworkSettings.IPAddress}}`.
        let legacy = json!({
            "Bridge": "",
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
        });
        if let Value::Object(fields) = legacy {
            for (k, val) in fields {
                ensure(ns, &k, val);
            }
        }
    }
    Ok(v)
}

fn non_empty_or(s: &str, default: &str) -> String {
    if s.is_empty() {
        default.to_string()
    } else {
        s.to_string()
    }
}

/// What `POST /containers/create` asks for, converted: the engine request plus warnings about
/// options berth accepts but does not apply (the docker CLI prints them).
#[derive(Debug)]
pub struct Create {
    pub request: CreateRequest,
    pub warnings: Vec<String>,
}

/// Converts the body of `POST /containers/create` into the engine's request. Unknown fields were
/// already ignored by deserialization; fields berth cannot honour produce a warning, or an error
/// where ignoring them would silently change what the container sees on disk.
pub fn create_request(
    body: ContainerCreateBody,
    name: Option<String>,
    platform: Option<String>,
) -> Result<Create, ApiError> {
    let mut warnings = Vec::new();
    // Sets arrive as JSON objects (hash maps): sort them so records are deterministic.
    let sorted = |v: Option<Vec<String>>| {
        let mut v = v.unwrap_or_default();
        v.sort();
        v
    };
    let labels: BTreeMap<String, String> = body.labels.unwrap_or_default().into_iter().collect();
    let mut config = ContainerConfig {
        hostname: body.hostname.unwrap_or_default(),
        domainname: body.domainname.unwrap_or_default(),
        user: body.user.unwrap_or_default(),
        attach_stdin: body.attach_stdin.unwrap_or(false),
        attach_stdout: body.attach_stdout.unwrap_or(false),
        attach_stderr: body.attach_stderr.unwrap_or(false),
        tty: body.tty.unwrap_or(false),
        open_stdin: body.open_stdin.unwrap_or(false),
        stdin_once: body.stdin_once.unwrap_or(false),
        env: body.env.unwrap_or_default(),
        cmd: body.cmd,
        entrypoint: body.entrypoint,
        image: body.image.unwrap_or_default(),
        working_dir: body.working_dir.unwrap_or_default(),
        labels,
        exposed_ports: sorted(body.exposed_ports),
        volumes: sorted(body.volumes),
        stop_signal: body.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: body.stop_timeout,
        network_disabled: body.network_disabled.unwrap_or(false),
        healthcheck: body
            .healthcheck
            .map(|h| berth_engine::health::HealthConfig {
                test: h.test.unwrap_or_default(),
                interval: h.interval.unwrap_or(0),
                timeout: h.timeout.unwrap_or(0),
                start_period: h.start_period.unwrap_or(0),
                start_interval: h.start_interval.unwrap_or(0),
                retries: h.retries.unwrap_or(0),
            }),
    };
    let host_config = match body.host_config {
        Some(h) => host_config_from_wire(h, &mut config, &mut warnings)?,
        None => HostConfig::default(),
    };
    let endpoints = body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, e)| (name, endpoint_request_from_wire(e)))
        .collect();
    Ok(Create {
        request: CreateRequest {
            name: name.filter(|n| !n.is_empty()),
            config,
            host_config,
            platform: platform.filter(|p| !p.is_empty()),
            endpoints,
        },
        warnings,
    })
}

/// An endpoint's settings as asked for at create or `network connect`.
pub fn endpoint_request_from_wire(
    e: wire::EndpointSettings,
) -> berth_engine::types::EndpointRequest {
    berth_engine::types::EndpointRequest {
        aliases: e.aliases.unwrap_or_default(),
        ipv4: e
            .ipam_config
            .and_then(|i| i.ipv4_address)
            .unwrap_or_default(),
        mac: e.mac_address.unwrap_or_default(),
    }
}

/// `PortBindings`; each bound port is also exposed, as dockerd does.
fn port_bindings_from_wire(
    map: HashMap<String, Option<Vec<wire::PortBinding>>>,
    config: &mut ContainerConfig,
) -> BTreeMap<String, Vec<berth_engine::types::PortBinding>> {
    let mut out = BTreeMap::new();
    for (key, bindings) in map {
        let bindings: Vec<berth_engine::types::PortBinding> = bindings
            .unwrap_or_default()
            .into_iter()
            .map(|b| berth_engine::types::PortBinding {
                host_ip: b.host_ip.unwrap_or_default(),
                host_port: b.host_port.unwrap_or_default(),
            })
            .collect();
        // The engine checks the specs at create (dockerd's messages).
        let normalized = if key.contains('/') {
            key.clone()
        } else {
            format!("{key}/tcp")
        };
        if !config.exposed_ports.contains(&normalized) {
            config.exposed_ports.push(normalized.clone());
            config.exposed_ports.sort();
        }
        out.insert(normalized, bindings);
    }
    out
}

fn host_config_from_wire(
    h: wire::HostConfig,
    config: &mut ContainerConfig,
    warnings: &mut Vec<String>,
) -> Result<HostConfig, ApiError> {
    let nano_cpus = nano_cpus(&h)?;
    let binds = h.binds.unwrap_or_default();
    let mut mounts = MountRequests {
        strict_binds: Vec::new(),
        tmpfs: h.tmpfs.clone().unwrap_or_default().into_iter().collect(),
    };
    for m in h.mounts.unwrap_or_default() {
        mount_from_wire(m, &mut mounts, config)?;
    }
    let (log_type, log_config) = match h.log_config {
        Some(l) => (
            l.typ.unwrap_or_default(),
            l.config.unwrap_or_default().into_iter().collect(),
        ),
        None => (String::new(), BTreeMap::new()),
    };
    let restart_policy = h
        .restart_policy
        .map(|r| RestartPolicy {
            name: r.name.map(|n| n.as_ref().to_string()).unwrap_or_default(),
            maximum_retry_count: r.maximum_retry_count.unwrap_or(0),
        })
        .unwrap_or_default();

    let mut ignored = Vec::new();
    if h.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        ignored.push("devices");
    }
    if h.sysctls.as_ref().is_some_and(|s| !s.is_empty()) {
        ignored.push("sysctls");
    }
    if h.links.as_ref().is_some_and(|l| !l.is_empty()) {
        ignored.push("links");
    }
    if h.group_add.as_ref().is_some_and(|g| !g.is_empty()) {
        ignored.push("additional groups");
    }
    for (what, mode) in [
        ("pid", &h.pid_mode),
        ("ipc", &h.ipc_mode),
        ("uts", &h.uts_mode),
        ("userns", &h.userns_mode),
    ] {
        if mode.as_deref() == Some("host") {
            warnings.push(format!(
                "--{what}=host is not supported yet; the container gets its own namespace"
            ));
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "not supported yet and ignored: {}",
            ignored.join(", ")
        ));
    }

    Ok(HostConfig {
        auto_remove: h.auto_remove.unwrap_or(false),
        privileged: h.privileged.unwrap_or(false),
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        security_opt: h.security_opt.unwrap_or_default(),
        network_mode: h.network_mode.unwrap_or_default(),
        restart_policy,
        init: h.init,
        memory: h.memory.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        nano_cpus,
        cpu_shares: h.cpu_shares.unwrap_or(0),
        // 0 and -1 both mean "unlimited" on the wire (dockerd normalises them the same way).
        pids_limit: h.pids_limit.filter(|&n| n > 0),
        cpuset_cpus: h.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: h.cpuset_mems.clone().unwrap_or_default(),
        oom_kill_disable: h.oom_kill_disable.unwrap_or(false),
        shm_size: h.shm_size.unwrap_or(0),
        extra_hosts: h.extra_hosts.unwrap_or_default(),
        dns: h.dns.unwrap_or_default(),
        dns_search: h.dns_search.unwrap_or_default(),
        dns_options: h.dns_options.unwrap_or_default(),
        binds,
        strict_binds: mounts.strict_binds,
        tmpfs: mounts.tmpfs,
        volumes_from: h.volumes_from.unwrap_or_default(),
        log_type,
        log_config,
        ulimits: ulimits_from_wire(h.ulimits.unwrap_or_default()),
        port_bindings: port_bindings_from_wire(h.port_bindings.unwrap_or_default(), config),
        publish_all_ports: h.publish_all_ports.unwrap_or(false),
        console_size: match h.console_size.as_deref() {
            Some(&[hh, ww]) if hh > 0 && ww > 0 => Some((
                u16::try_from(hh).unwrap_or(u16::MAX),
                u16::try_from(ww).unwrap_or(u16::MAX),
            )),
            _ => None,
        },
    })
}

/// `HostConfig.Ulimits`, and `docker build`'s `ulimits` query parameter.
pub fn ulimits_from_wire(wire: Vec<wire::ResourcesUlimits>) -> Vec<Ulimit> {
    wire.into_iter()
        .map(|u| Ulimit {
            name: u.name.unwrap_or_default(),
            soft: u.soft.unwrap_or(0),
            hard: u.hard.unwrap_or(0),
        })
        .collect()
}

/// What `--mount` adds besides `-v` binds.
struct MountRequests {
    strict_binds: Vec<String>,
    tmpfs: BTreeMap<String, String>,
}

/// `--cpus` arrives as NanoCpus; `--cpu-quota`/`--cpu-period` express the same limit as a
/// quota per period, so they are folded into NanoCpus (quota/period CPUs).
fn nano_cpus(h: &wire::HostConfig) -> Result<i64, ApiError> {
    let nano = h.nano_cpus.unwrap_or(0);
    let quota = h.cpu_quota.unwrap_or(0);
    let period = h.cpu_period.unwrap_or(0);
    if nano > 0 && period > 0 {
        return Err(ApiError::bad_request(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(ApiError::bad_request(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano > 0 || quota <= 0 {
        return Ok(nano);
    }
    // The kernel's default CFS period is 100ms.
    let period = if period > 0 { period } else { 100_000 };
    Ok(quota.saturating_mul(1_000_000_000) / period)
}

/// `--mount` in the engine's terms: a bind (whose source must exist, unlike `-v`), a named or
/// anonymous volume, or a tmpfs with its size and mode.
fn mount_from_wire(
    m: wire::Mount,
    out: &mut MountRequests,
    config: &mut ContainerConfig,
) -> Result<(), ApiError> {
    let target = m.target.unwrap_or_default();
    if target.is_empty() {
        return Err(ApiError::bad_request(
            "invalid mount config: Target must not be empty",
        ));
    }
    let mut opts = Vec::new();
    if m.read_only == Some(true) {
        opts.push("ro".to_string());
    }
    let with_opts = |spec: String, opts: &[String]| {
        if opts.is_empty() {
            spec
        } else {
            format!("{spec}:{}", opts.join(","))
        }
    };
    match m.typ {
        Some(MountType::BIND) => {
            let source = m.source.unwrap_or_default();
            if source.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if let Some(p) = m.bind_options.and_then(|b| b.propagation) {
                if !p.as_ref().is_empty() {
                    opts.push(p.as_ref().to_string());
                }
            }
            out.strict_binds
                .push(with_opts(format!("{source}:{target}"), &opts));
            Ok(())
        }
        Some(MountType::VOLUME) => {
            if m.volume_options.and_then(|v| v.no_copy) == Some(true) {
                opts.push("nocopy".into());
            }
            match m.source.as_deref().filter(|s| !s.is_empty()) {
                Some(name) => out
                    .strict_binds
                    .push(with_opts(format!("{name}:{target}"), &opts)),
                None if opts.is_empty() => {
                    if !config.volumes.contains(&target) {
                        config.volumes.push(target);
                    }
                }
                None => {
                    // An anonymous volume with options: a random name says "anonymous".
                    out.strict_binds.push(with_opts(target, &opts));
                }
            }
            Ok(())
        }
        Some(MountType::TMPFS) => {
            let mut topts = Vec::new();
            if let Some(t) = m.tmpfs_options {
                if let Some(size) = t.size_bytes.filter(|s| *s > 0) {
                    topts.push(format!("size={size}"));
                }
                if let Some(mode) = t.mode.filter(|m| *m > 0) {
                    topts.push(format!("mode={mode:o}"));
                }
            }
            if m.read_only == Some(true) {
                topts.push("ro".into());
            }
            out.tmpfs.insert(target, topts.join(","));
            Ok(())
        }
        other => Err(ApiError::bad_request(format!(
            "mounts of type \"{}\" are not supported yet",
            other.map(|t| t.to_string()).unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests;
