//! The OCI runtime spec of a container, generated from the engine's view of it. Defaults follow
//! moby's `oci/defaults.go` so containers see what they would see under Docker.
//!
//! The spec is assembled as JSON and parsed into `oci_spec::runtime::Spec`: the JSON reads like
//! the spec documents and the parse is what validates it (a malformed spec fails here, not in the
//! middle of container creation).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// What the runtime creates in a container's root filesystem to mount over (relative paths):
/// its standard mounts, the engine's /etc files and `--init`'s binary. A commit leaves them
/// out when they are still empty placeholders, as Docker keeps them in a separate "init" layer.
pub const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "proc",
    "dev",
    "dev/pts",
    "dev/shm",
    "dev/mqueue",
    "dev/console",
    "sys",
    "sys/fs/cgroup",
    "etc",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "sbin",
    "sbin/docker-init",
];

/// Where `--init` mounts the init binary and runs it, as Docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's default capability set (moby `caps.DefaultCapabilities`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel headers know, for `--privileged` and `--cap-add ALL`.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A file or directory of the host bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// cgroup limits; zero/None means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub oom_kill_disable: bool,
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A new, empty namespace with only loopback.
    #[default]
    New,
    /// The host's namespace.
    Host,
    /// An existing namespace (a path such as `/proc/<pid>/ns/net` or a bind-mounted netns).
    Path(String),
}

/// Everything needed to write a container's `config.json`.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub tty: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    pub mounts: Vec<BindMount>,
    /// tmpfs mounts: destination and options (`size=…`, `mode=…`).
    pub tmpfs: Vec<(String, String)>,
    /// e.g. `/berth/<id>`: relative to each controller's (or the unified) hierarchy.
    pub cgroups_path: String,
    pub resources: Resources,
    pub network: NetworkNamespace,
    /// Size of /dev/shm in bytes; 0 means Docker's default of 64 MiB.
    pub shm_size: i64,
    /// Process resource limits, by Docker name (`nofile`); -1 means unlimited.
    pub rlimits: Vec<(String, i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid capability {0:?}")]
    BadCapability(String),
    #[error("invalid runtime spec: {0}")]
    Invalid(String),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Docker's ulimit names (go-units `ulimitNameMapping`, which leaves out `as`), each an
/// `RLIMIT_*` of setrlimit(2).
const RLIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The OCI `rlimits[].type` of a Docker ulimit name, e.g. `nofile` → `RLIMIT_NOFILE`.
pub fn rlimit_type(name: &str) -> Result<String, SpecError> {
    if RLIMIT_NAMES.contains(&name) {
        Ok(format!("RLIMIT_{}", name.to_ascii_uppercase()))
    } else {
        Err(SpecError::Invalid(format!("invalid ulimit type: {name}")))
    }
}

/// Normalises `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` to `CAP_NET_ADMIN`.
fn normalize_cap(name: &str) -> Result<String, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if full == "CAP_ALL" || ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::BadCapability(name.to_string()))
    }
}

/// Applies Docker's `--cap-add`/`--cap-drop` rules (ALL on either side, drop wins over default,
/// add wins over drop of the same cap as moby's `TweakCapabilities` does).
pub fn effective_caps(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(ALL_CAPS.iter().map(|c| c.to_string()).collect());
    }
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "CAP_ALL") {
        ALL_CAPS.iter().map(|c| c.to_string()).collect()
    } else if drop.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for cap in add {
        if cap != "CAP_ALL" && !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok(caps)
}

/// Builds the spec for `input`.
pub fn build(input: &SpecInput) -> Result<Spec, SpecError> {
    let caps = effective_caps(input.privileged, &input.cap_add, &input.cap_drop)?;
    let shm_size = if input.shm_size > 0 {
        input.shm_size
    } else {
        64 * 1024 * 1024
    };

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if input.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", if input.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];
    // The user's mounts, parents before children whatever their kind, so that a volume at
    // /app/node_modules lands on top of a bind at /app (Docker sorts them the same way).
    let mut user: Vec<(usize, Value)> = Vec::new();
    let depth = |d: &str| d.split('/').filter(|c| !c.is_empty()).count();
    for (dest, opts) in &input.tmpfs {
        // Docker's defaults for --tmpfs, before the user's options.
        let mut options: Vec<String> = ["nosuid", "nodev", "noexec"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        options.extend(
            opts.split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        user.push((
            depth(dest),
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
        ));
    }
    for m in &input.mounts {
        let mut options = vec!["rbind", "rprivate"];
        options.push(if m.readonly { "ro" } else { "rw" });
        user.push((
            depth(&m.destination),
            json!({
                "destination": m.destination,
                "type": "bind",
                "source": m.source,
                "options": options,
            }),
        ));
    }
    user.sort_by_key(|(d, _)| *d);
    mounts.extend(user.into_iter().map(|(_, m)| m));

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &input.network {
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }

    let mut env = input.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources_json(&input.resources, input.privileged),
    });
    if !input.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }

    let rlimits = input
        .rlimits
        .iter()
        .map(|(name, soft, hard)| {
            // -1 is RLIM_INFINITY, as moby converts it (`uint64(-1)`).
            Ok(json!({"type": rlimit_type(name)?, "soft": *soft as u64, "hard": *hard as u64}))
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    let spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": input.rootfs, "readonly": input.readonly_rootfs},
        "hostname": input.hostname,
        "mounts": mounts,
        "process": {
            "terminal": input.tty,
            "user": {
                "uid": input.uid,
                "gid": input.gid,
                "additionalGids": input.additional_gids,
            },
            "args": input.args,
            "env": env,
            "cwd": if input.cwd.is_empty() { "/" } else { input.cwd.as_str() },
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                // Empty on purpose: an inheritable set lets a file with inheritable caps regain
                // them across execve (CVE-2022-24769).
                "inheritable": [],
                "ambient": [],
            },
            "noNewPrivileges": input.no_new_privileges,
            "rlimits": rlimits,
        },
        "linux": linux,
    });
    serde_json::from_value(spec).map_err(|e| SpecError::Invalid(e.to_string()))
}

/// What an exec asks for on top of the container's own process.
#[derive(Debug, Clone, Default)]
pub struct ExecInput {
    pub args: Vec<String>,
    /// The whole environment: the container's, with the exec's own replacing or appended.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub privileged: bool,
}

/// The OCI `process` of an exec, derived from the container's (`spec` is its `config.json`):
/// it keeps the container's capabilities, rlimits, no-new-privileges and AppArmor settings, as
/// dockerd's exec does, and replaces what the exec sets. `--privileged` gives every capability.
pub fn exec_process(spec: &Value, input: &ExecInput) -> Result<Value, SpecError> {
    let mut process = spec
        .get("process")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| SpecError::Invalid("the container's spec has no process".into()))?;
    if input.args.is_empty() {
        return Err(SpecError::Invalid("no command specified".into()));
    }
    process["args"] = json!(input.args);
    process["env"] = json!(input.env);
    process["cwd"] = json!(if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    });
    process["terminal"] = json!(input.tty);
    process["user"] = json!({
        "uid": input.uid,
        "gid": input.gid,
        "additionalGids": input.additional_gids,
    });
    if let Some(p) = process.as_object_mut() {
        // A size for the init's console makes no sense for another terminal.
        p.remove("consoleSize");
    }
    if input.privileged {
        let all = json!(ALL_CAPS);
        process["capabilities"] = json!({
            "bounding": all, "effective": all, "permitted": all,
            "inheritable": [], "ambient": [],
        });
    }
    Ok(process)
}

fn resources_json(r: &Resources, privileged: bool) -> Value {
    let devices = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        // moby's DefaultLinuxSpec device allow list.
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        ])
    };
    let mut res = json!({ "devices": devices });
    if r.memory > 0 || r.oom_kill_disable {
        let mut mem = json!({});
        if r.memory > 0 {
            mem["limit"] = json!(r.memory);
            if r.memory_swap != 0 {
                mem["swap"] = json!(r.memory_swap);
            }
        }
        if r.oom_kill_disable {
            mem["disableOOMKiller"] = json!(true);
        }
        res["memory"] = mem;
    }
    if r.nano_cpus > 0 || r.cpu_shares > 0 || !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()
    {
        let mut cpu = json!({});
        if !r.cpuset_cpus.is_empty() {
            cpu["cpus"] = json!(r.cpuset_cpus);
        }
        if !r.cpuset_mems.is_empty() {
            cpu["mems"] = json!(r.cpuset_mems);
        }
        if r.nano_cpus > 0 {
            // Docker converts --cpus to a CFS quota over a 100 ms period.
            let period: i64 = 100_000;
            cpu["period"] = json!(period);
            cpu["quota"] = json!(r.nano_cpus * period / 1_000_000_000);
        }
        if r.cpu_shares > 0 {
            cpu["shares"] = json!(r.cpu_shares);
        }
        res["cpu"] = cpu;
    }
    if let Some(limit) = r.pids_limit {
        if limit != 0 {
            res["pids"] = json!({ "limit": limit });
        }
    }
    res
}

/// Writes `config.json` into `bundle`, crash-safety not needed: the bundle lives on the exec
/// root (tmpfs) and is regenerated at every start.
pub fn write(bundle: &Path, spec: &Spec) -> Result<(), SpecError> {
    let path = bundle.join("config.json");
    let data = serde_json::to_vec(spec).map_err(|e| SpecError::Invalid(e.to_string()))?;
    std::fs::write(&path, data).map_err(|source| SpecError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            rootfs: "/tmp/rootfs".into(),
            args: vec!["sh".into()],
            env: vec!["A=b".into()],
            hostname: "abc".into(),
            cgroups_path: "/berth/abc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_spec_is_dockers() {
        let spec = build(&input()).expect("spec");
        let v = serde_json::to_value(&spec).expect("json");
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["bounding"].as_array().map(|a| a.len()), Some(14));
        assert_eq!(caps["inheritable"], json!([]));
        assert_eq!(
            v["process"]["env"][0],
            json!("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        );
        assert_eq!(v["process"]["cwd"], json!("/"));
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("/proc/kcore"))));
        assert!(v["linux"]["readonlyPaths"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("/proc/sys"))));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["type"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    }

    #[test]
    fn caps_add_drop_rules() {
        let add = |a: &[&str], d: &[&str]| {
            effective_caps(
                false,
                &a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &d.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        let caps = add(&["net_admin"], &["chown"]).expect("caps");
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(add(&[], &["ALL"]).expect("caps"), Vec::<String>::new());
        assert_eq!(add(&["ALL"], &[]).expect("caps").len(), ALL_CAPS.len());
        assert!(add(&["bogus"], &[]).is_err());
    }

    #[test]
    fn ulimits_become_rlimits() {
        let mut i = input();
        i.rlimits = vec![("nofile".into(), 512, 1024), ("core".into(), -1, -1)];
        let v = serde_json::to_value(build(&i).expect("spec")).expect("json");
        assert_eq!(
            v["process"]["rlimits"],
            json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX},
            ])
        );
        i.rlimits = vec![("files".into(), 1, 1)];
        assert!(build(&i)
            .err()
            .is_some_and(|e| e.to_string().contains("invalid ulimit type: files")));
    }

    #[test]
    fn limits_and_network_modes() {
        let mut i = input();
        i.resources = Resources {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(20),
            ..Default::default()
        };
        i.network = NetworkNamespace::Host;
        let v = serde_json::to_value(build(&i).expect("spec")).expect("json");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], json!(64 << 20));
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], json!(50_000));
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], json!(20));
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["type"] == "network")));
    }
}
