//! Turns `run`/`create` flags into the `POST /containers/create` body, as
//! docker's `parse()` in cli/command/container/opts.go does.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::args::ContainerFlags;
use crate::error::go_io_error;
use crate::netopts;

/// Looks a variable up in the client's environment.
type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What `run`/`create` send, plus the attach choices the CLI acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerConfig {
    /// The request body.
    pub body: Value,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
}

/// Builds the create request. `detach` clears the attach settings as `run -d` does.
pub fn build(
    flags: &ContainerFlags,
    image: &str,
    cmd: &[String],
    auto_remove: bool,
    detach: bool,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerConfig, String> {
    // docker checks the MAC address before anything else.
    if let Some(mac) = flags.mac_address.as_deref().filter(|m| !m.is_empty()) {
        if !netopts::is_valid_mac(mac.trim()) {
            return Err(format!("{mac} is not a valid mac address"));
        }
    }
    let has = |s: &str| flags.attach.iter().any(|a| a == s);
    let mut attach_stdin = has("stdin") || flags.interactive;
    let mut attach_stdout = has("stdout");
    let mut attach_stderr = has("stderr");
    if flags.attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    if detach {
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
    }

    let env = env_list(&flags.env_file, &flags.env, lookup_env)?;
    let mut label_lines = Vec::new();
    for file in &flags.label_file {
        label_lines.extend(parse_kv_file(file, None)?);
    }
    label_lines.extend(flags.label.iter().cloned());
    let labels: BTreeMap<String, String> = label_lines
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();

    if auto_remove
        && flags
            .restart
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r != "no")
    {
        return Err("conflicting options: cannot specify both --restart and --rm".to_string());
    }
    for opt in &flags.security_opt {
        validate_security_opt(opt)?;
    }

    let mut config = Map::new();
    config.insert(
        "Hostname".into(),
        json!(flags.hostname.clone().unwrap_or_default()),
    );
    config.insert("User".into(), json!(flags.user.clone().unwrap_or_default()));
    config.insert("AttachStdin".into(), json!(attach_stdin));
    config.insert("AttachStdout".into(), json!(attach_stdout));
    config.insert("AttachStderr".into(), json!(attach_stderr));
    config.insert("Tty".into(), json!(flags.tty));
    config.insert("OpenStdin".into(), json!(flags.interactive));
    // Closing stdin at client disconnect only makes sense when it is attached.
    config.insert("StdinOnce".into(), json!(flags.interactive && attach_stdin));
    config.insert("Env".into(), json!(env));
    config.insert(
        "Cmd".into(),
        if cmd.is_empty() {
            Value::Null
        } else {
            json!(cmd)
        },
    );
    config.insert("Image".into(), json!(image));
    config.insert(
        "WorkingDir".into(),
        json!(flags.workdir.clone().unwrap_or_default()),
    );
    config.insert("Labels".into(), json!(labels));
    // `--entrypoint ""` resets the image's entrypoint, which the API spells [""].
    if let Some(ep) = &flags.entrypoint {
        config.insert("Entrypoint".into(), json!([ep]));
    }
    if let Some(sig) = &flags.stop_signal {
        config.insert("StopSignal".into(), json!(sig));
    }
    if let Some(t) = flags.stop_timeout {
        config.insert("StopTimeout".into(), json!(t));
    }

    let (binds, volumes) = split_volumes(&flags.volume)?;
    if !volumes.is_empty() {
        let v: Map<String, Value> = volumes.into_iter().map(|v| (v, json!({}))).collect();
        config.insert("Volumes".into(), Value::Object(v));
    }
    let (exposed, port_bindings) = netopts::ports(&flags.publish, &flags.expose)?;
    if exposed.as_object().is_some_and(|m| !m.is_empty()) {
        config.insert("ExposedPorts".into(), exposed);
    }

    let mut host = Map::new();
    host.insert("AutoRemove".into(), json!(auto_remove));
    host.insert("Privileged".into(), json!(flags.privileged));
    host.insert("ReadonlyRootfs".into(), json!(flags.read_only));
    host.insert(
        "NetworkMode".into(),
        json!(flags.network.clone().unwrap_or_else(|| "default".into())),
    );
    host.insert("PortBindings".into(), port_bindings);
    host.insert("PublishAllPorts".into(), json!(flags.publish_all));
    // Always lists, never null: docker's daemon tells "not set" from "set to nothing" here.
    host.insert("Dns".into(), json!(flags.dns));
    host.insert("DnsSearch".into(), json!(flags.dns_search));
    host.insert("DnsOptions".into(), json!(flags.dns_option));
    if !flags.add_host.is_empty() {
        host.insert("ExtraHosts".into(), json!(flags.add_host));
    }
    if !binds.is_empty() {
        host.insert("Binds".into(), json!(binds));
    }
    if !flags.mount.is_empty() {
        let mounts = flags
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>, _>>()?;
        host.insert("Mounts".into(), json!(mounts));
    }
    if !flags.tmpfs.is_empty() {
        let t: Map<String, Value> = flags
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((d, o)) => (d.to_string(), json!(o)),
                None => (t.clone(), json!("")),
            })
            .collect();
        host.insert("Tmpfs".into(), Value::Object(t));
    }
    if !flags.volumes_from.is_empty() {
        host.insert("VolumesFrom".into(), json!(flags.volumes_from));
    }
    if !flags.cap_add.is_empty() {
        host.insert("CapAdd".into(), json!(flags.cap_add));
    }
    if !flags.cap_drop.is_empty() {
        host.insert("CapDrop".into(), json!(flags.cap_drop));
    }
    if !flags.security_opt.is_empty() {
        host.insert("SecurityOpt".into(), json!(flags.security_opt));
    }
    if let Some(init) = flags.init {
        host.insert("Init".into(), json!(init));
    }
    if let Some(m) = flags.memory {
        host.insert("Memory".into(), json!(m));
    }
    if let Some(c) = flags.cpus {
        host.insert("NanoCpus".into(), json!(c));
    }
    if let Some(s) = flags.memory_swap {
        host.insert("MemorySwap".into(), json!(s));
    }
    if let Some(s) = flags.cpu_shares {
        host.insert("CpuShares".into(), json!(s));
    }
    if let Some(c) = &flags.cpuset_cpus {
        host.insert("CpusetCpus".into(), json!(c));
    }
    if let Some(m) = &flags.cpuset_mems {
        host.insert("CpusetMems".into(), json!(m));
    }
    if flags.oom_kill_disable {
        host.insert("OomKillDisable".into(), json!(true));
    }
    if let Some(p) = flags.pids_limit {
        host.insert("PidsLimit".into(), json!(p));
    }
    if !flags.ulimit.is_empty() {
        let ulimits: Vec<Value> = flags
            .ulimit
            .iter()
            .map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
            .collect();
        host.insert("Ulimits".into(), Value::Array(ulimits));
    }
    if let Some(r) = &flags.restart {
        host.insert("RestartPolicy".into(), parse_restart_policy(r)?);
    }
    if let Some(check) = healthcheck(flags)? {
        config.insert("Healthcheck".into(), check);
    }
    if let Some(action) = &flags.health_on_failure {
        let labels = config.entry("Labels").or_insert_with(|| json!({}));
        labels["berth.health-on-failure"] = json!(action);
    }

    let endpoints = endpoints_config(flags)?;
    let mut body = Map::new();
    body.extend(config);
    body.insert("HostConfig".into(), Value::Object(host));
    body.insert(
        "NetworkingConfig".into(),
        json!({ "EndpointsConfig": endpoints }),
    );
    Ok(ContainerConfig {
        body: Value::Object(body),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        tty: flags.tty,
    })
}

/// `--health-*` and `--no-healthcheck` as the docker CLI turns them into `Healthcheck`.
fn healthcheck(flags: &ContainerFlags) -> Result<Option<Value>, String> {
    let duration = |flag: &str, v: &Option<String>| -> Result<i64, String> {
        match v {
            None => Ok(0),
            Some(s) => {
                let ns = crate::timefmt::parse_go_duration(s)
                    .ok_or_else(|| format!("invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}"))?;
                if ns < 0 {
                    return Err(format!("--{flag} cannot be negative"));
                }
                i64::try_from(ns).map_err(|_| format!("--{flag} is too long"))
            }
        }
    };
    let interval = duration("health-interval", &flags.health_interval)?;
    let timeout = duration("health-timeout", &flags.health_timeout)?;
    let start_period = duration("health-start-period", &flags.health_start_period)?;
    let start_interval = duration("health-start-interval", &flags.health_start_interval)?;
    let retries = flags.health_retries.unwrap_or(0);
    if retries < 0 {
        return Err("--health-retries cannot be negative".into());
    }
    let any = flags.health_cmd.is_some()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if flags.no_healthcheck {
        if any {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !any {
        return Ok(None);
    }
    let test: Vec<String> = match &flags.health_cmd {
        Some(cmd) if !cmd.is_empty() => vec!["CMD-SHELL".into(), cmd.clone()],
        _ => Vec::new(),
    };
    Ok(Some(json!({
        "Test": test,
        "Interval": interval,
        "Timeout": timeout,
        "StartPeriod": start_period,
        "StartInterval": start_interval,
        "Retries": retries,
    })))
}

/// `--env-file` contents, then `-e` variables, as `run` and `exec` take them.
pub fn env_list(
    files: &[String],
    vars: &[String],
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut env = Vec::new();
    for file in files {
        env.extend(parse_kv_file(file, Some(lookup_env))?);
    }
    for e in vars {
        env.push(expand_env(e, lookup_env));
    }
    Ok(env)
}

/// `-e KEY` without a value takes KEY from the client's environment.
fn expand_env(e: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match lookup_env(e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }
}

/// Reads an env or label file: `KEY=value` lines, `#` comments, blank lines.
/// For env files a bare `KEY` is taken from the environment (or dropped).
pub fn parse_kv_file(path: &str, lookup_env: Option<EnvLookup<'_>>) -> Result<Vec<String>, String> {
    let data = std::fs::read(path).map_err(|e| format!("open {path}: {}", go_io_error(&e)))?;
    parse_kv_text(path, &data, lookup_env)
}

fn parse_kv_text(
    path: &str,
    data: &[u8],
    lookup_env: Option<EnvLookup<'_>>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw).map_err(|_| {
            format!(
                "env file {path} contains invalid utf8 bytes at line {}",
                n + 1
            )
        })?;
        let line = if n == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.contains(char::is_whitespace) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => match lookup_env {
                Some(lookup) => {
                    if let Some(v) = lookup(key) {
                        out.push(format!("{}={v}", key.trim()));
                    }
                }
                None => out.push(key.to_string()),
            },
        }
    }
    Ok(out)
}

/// docker/cli's `--mount` CSV: `type=bind,source=/a,target=/b,readonly,…` as an API `Mount`.
fn parse_mount(spec: &str) -> Result<Value, String> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        let flag = |v: &Option<String>| -> Result<bool, String> {
            match v.as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(other) => Err(format!("invalid value for {k}: {other}")),
            }
        };
        let value = || {
            v.clone()
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => kind = value()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(value()?));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(value()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(flag(&v)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(value()?));
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(flag(&v)?));
            }
            "tmpfs-size" => {
                let raw = value()?;
                let bytes = crate::units::ram_in_bytes(&raw)
                    .map_err(|_| format!("invalid value for tmpfs-size: {raw}"))?;
                tmpfs.insert("SizeBytes".into(), json!(bytes));
            }
            "tmpfs-mode" => {
                let raw = value()?;
                let mode = u32::from_str_radix(&raw, 8)
                    .map_err(|_| format!("invalid value for tmpfs-mode: {raw}"))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    if !m.contains_key("Target") {
        return Err("target is required".to_string());
    }
    m.insert("Type".into(), json!(kind));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !volume.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

/// Splits `-v` values into bind mounts (`src:dst[:opts]`) and anonymous volumes (`/dst`); a
/// relative host path (`./data:/data`) is made absolute, as docker/cli does since 23.0.
fn split_volumes(volumes: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for v in volumes {
        if v.is_empty() {
            return Err("invalid empty volume spec".to_string());
        }
        if v.contains(':') {
            let relative =
                v == "." || v.starts_with("./") || v.starts_with("../") || v.starts_with(".:");
            if relative {
                let (src, rest) = v.split_once(':').unwrap_or((v.as_str(), ""));
                let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
                let abs = cwd.join(src);
                binds.push(format!("{}:{rest}", abs.display()));
            } else {
                binds.push(v.clone());
            }
        } else {
            if !v.starts_with('/') {
                return Err(format!("invalid volume specification: '{v}'"));
            }
            anonymous.push(v.clone());
        }
    }
    Ok((binds, anonymous))
}

/// `--restart no|always|unless-stopped|on-failure[:max-retries]`.
fn parse_restart_policy(policy: &str) -> Result<Value, String> {
    if policy.is_empty() {
        return Ok(json!({"Name": "no", "MaximumRetryCount": 0}));
    }
    let (name, count) = match policy.split_once(':') {
        Some((n, c)) => {
            let c: i64 = c.parse().map_err(|_| {
                format!(
                    "invalid restart policy format: maximum retry count must be an integer: {c}"
                )
            })?;
            (n, c)
        }
        None => (policy, 0),
    };
    match name {
        "no" | "always" | "unless-stopped" if count != 0 => {
            Err("invalid restart policy format: maximum retry count can only be used with 'on-failure'".to_string())
        }
        "no" | "always" | "unless-stopped" | "on-failure" => {
            Ok(json!({"Name": name, "MaximumRetryCount": count}))
        }
        _ => Err(format!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")),
    }
}

fn validate_security_opt(opt: &str) -> Result<(), String> {
    if opt == "no-new-privileges" {
        return Ok(());
    }
    let value = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .map(|(_, v)| v);
    match value {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(format!("Invalid --security-opt: {opt:?}")),
    }
}

/// docker's `parseNetworkOpts` for one network: `--network-alias`, `--ip`, `--ip6` and
/// `--mac-address` as the endpoint settings of the `--network` named (or of "default", which
/// the daemon reads as its default network).
///
/// docker omits the endpoint of a lone `--network` without settings, and sends an empty one for
/// "default"; both mean the same to the daemon, so an endpoint without settings is never sent.
/// An address on a network that takes none (`--ip` on the default bridge) is the daemon's to
/// refuse, as with docker; aliases are refused here, as docker's CLI does.
fn endpoints_config(flags: &ContainerFlags) -> Result<Value, String> {
    let target = flags.network.as_deref().unwrap_or("default");
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if !flags.network_alias.is_empty() && !is_user_defined_network(target) {
        return Err(
            "network-scoped aliases are only supported for user-defined networks".to_string(),
        );
    }
    let mut ep = Map::new();
    let mut ipam = Map::new();
    if let Some(ip) = given(&flags.ip) {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = given(&flags.ip6) {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    if !ipam.is_empty() {
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    if !flags.network_alias.is_empty() {
        ep.insert("Aliases".into(), json!(flags.network_alias));
    }
    // Sent as typed, as docker 28 does; the daemon normalises it.
    if let Some(mac) = given(&flags.mac_address) {
        ep.insert("MacAddress".into(), json!(mac));
    }
    let mut endpoints = Map::new();
    if !ep.is_empty() {
        endpoints.insert(target.to_string(), Value::Object(ep));
    }
    Ok(Value::Object(endpoints))
}

fn is_user_defined_network(n: &str) -> bool {
    !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Wrap {
        #[command(flatten)]
        flags: ContainerFlags,
    }

    fn flags(args: &[&str]) -> ContainerFlags {
        Wrap::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .expect("valid flags")
            .flags
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_attach_stdout_and_stderr() {
        let c = build(&flags(&[]), "busybox", &[], false, false, &no_env).expect("builds");
        assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
        assert_eq!(c.body["Image"], "busybox");
        assert_eq!(c.body["Cmd"], Value::Null);
        assert_eq!(c.body["HostConfig"]["NetworkMode"], "default");
        assert_eq!(c.body["StdinOnce"], false);
        assert!(c.body.get("Entrypoint").is_none());
    }

    #[test]
    fn interactive_attaches_stdin() {
        let c = build(
            &flags(&["-i", "-t"]),
            "img",
            &["sh".into()],
            true,
            false,
            &no_env,
        )
        .expect("builds");
        assert!(c.attach_stdin && c.tty);
        assert_eq!(c.body["OpenStdin"], true);
        assert_eq!(c.body["StdinOnce"], true);
        assert_eq!(c.body["Tty"], true);
        assert_eq!(c.body["Cmd"], json!(["sh"]));
        assert_eq!(c.body["HostConfig"]["AutoRemove"], true);
    }

    #[test]
    fn explicit_attach_and_detach() {
        let c =
            build(&flags(&["-a", "stderr"]), "img", &[], false, false, &no_env).expect("builds");
        assert!(!c.attach_stdout && c.attach_stderr);
        let c = build(&flags(&["-i"]), "img", &[], false, true, &no_env).expect("builds");
        assert!(!c.attach_stdin && !c.attach_stdout && !c.attach_stderr);
        assert_eq!(c.body["StdinOnce"], false);
    }

    #[test]
    fn maps_resource_and_security_flags() {
        let f = flags(&[
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "100",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--privileged",
            "--read-only",
            "--init",
            "--stop-timeout",
            "5",
            "--stop-signal",
            "SIGINT",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-h",
            "box",
            "--entrypoint",
            "",
            "-l",
            "a=b",
            "-l",
            "c",
            "--network",
            "mynet",
            "-v",
            "/data",
            "-v",
            "/h:/c:ro",
            "--restart",
            "on-failure:3",
            "--ulimit",
            "nofile=512:1024",
        ]);
        let c = build(&f, "img", &[], false, false, &no_env).expect("builds");
        let h = &c.body["HostConfig"];
        assert_eq!(
            h["Ulimits"],
            json!([{"Name": "nofile", "Soft": 512, "Hard": 1024}])
        );
        assert_eq!(h["Memory"], 512 * 1024 * 1024);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["PidsLimit"], 100);
        assert_eq!(h["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        assert_eq!(h["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(
            (
                h["Privileged"].clone(),
                h["ReadonlyRootfs"].clone(),
                h["Init"].clone()
            ),
            (json!(true), json!(true), json!(true))
        );
        assert_eq!(h["NetworkMode"], "mynet");
        assert_eq!(h["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(c.body["Volumes"], json!({"/data": {}}));
        assert_eq!(c.body["StopTimeout"], 5);
        assert_eq!(c.body["StopSignal"], "SIGINT");
        assert_eq!(c.body["WorkingDir"], "/tmp");
        assert_eq!(c.body["User"], "1000:1000");
        assert_eq!(c.body["Hostname"], "box");
        assert_eq!(c.body["Entrypoint"], json!([""]));
        assert_eq!(c.body["Labels"], json!({"a": "b", "c": ""}));
        // A lone --network without endpoint settings sends none, as docker does.
        assert_eq!(c.body["NetworkingConfig"], json!({"EndpointsConfig": {}}));
    }

    fn body(args: &[&str]) -> Result<Value, String> {
        build(&flags(args), "img", &[], false, false, &no_env).map(|c| c.body)
    }

    #[test]
    fn publishes_and_exposes_ports() {
        let b = body(&[
            "-p",
            "8080:80",
            "-p",
            "[::1]:9000-9001:90-91/UDP",
            "-p",
            "127.0.0.1::53",
            "--expose",
            "7000-7001",
            "--expose",
            "443/udp",
            "-P",
        ])
        .expect("builds");
        assert_eq!(
            b["ExposedPorts"],
            json!({"443/udp": {}, "53/tcp": {}, "7000/tcp": {}, "7001/tcp": {}, "80/tcp": {}, "90/udp": {}, "91/udp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({
                "53/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "90/udp": [{"HostIp": "::1", "HostPort": "9000"}],
                "91/udp": [{"HostIp": "::1", "HostPort": "9001"}]
            })
        );
        assert_eq!(b["HostConfig"]["PublishAllPorts"], true);

        // Without ports: docker sends empty bindings and no ExposedPorts.
        let b = body(&[]).expect("builds");
        assert!(b.get("ExposedPorts").is_none());
        assert_eq!(b["HostConfig"]["PortBindings"], json!({}));
        assert_eq!(b["HostConfig"]["PublishAllPorts"], false);

        assert_eq!(
            body(&["-p", "abc"]).map(|_| ()),
            Err("invalid containerPort: abc".to_string())
        );
        assert_eq!(
            body(&["--expose", "1:2"]).map(|_| ()),
            Err("invalid port format for --expose: 1:2".to_string())
        );
    }

    #[test]
    fn dns_and_extra_hosts() {
        let b = body(&[
            "--dns",
            "8.8.8.8",
            "--dns",
            "0:0::1",
            "--dns-search",
            "example.com.",
            "--dns-option",
            "ndots:2",
            "--dns-opt",
            "edns0",
            "--add-host",
            "a=::1",
            "--add-host",
            "b:[1.2.3.4]",
        ])
        .expect("builds");
        let h = &b["HostConfig"];
        assert_eq!(h["Dns"], json!(["8.8.8.8", "::1"]));
        assert_eq!(h["DnsSearch"], json!(["example.com"]));
        assert_eq!(h["DnsOptions"], json!(["ndots:2", "edns0"]));
        assert_eq!(h["ExtraHosts"], json!(["a:::1", "b:1.2.3.4"]));
        // docker never sends the DNS lists as null.
        let b = body(&[]).expect("builds");
        let h = &b["HostConfig"];
        assert_eq!(
            (&h["Dns"], &h["DnsSearch"], &h["DnsOptions"]),
            (&json!([]), &json!([]), &json!([]))
        );
        assert!(h.get("ExtraHosts").is_none());
        // Invalid values are flag errors, refused while parsing.
        for bad in [
            &["--dns", "foo"][..],
            &["--dns-search", "-bad"],
            &["--add-host", "foo"],
        ] {
            assert!(
                Wrap::try_parse_from(std::iter::once("x").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn endpoint_settings() {
        let b = body(&[
            "--network",
            "mynet",
            "--network-alias",
            "web",
            "--net-alias",
            "www",
            "--ip",
            "172.30.100.104",
            "--ip6",
            "2001:db8::33",
            "--mac-address",
            "92:d0:c6:0a:29:33",
        ])
        .expect("builds");
        assert_eq!(
            b["NetworkingConfig"],
            json!({"EndpointsConfig": {"mynet": {
                "IPAMConfig": {"IPv4Address": "172.30.100.104", "IPv6Address": "2001:db8::33"},
                "Aliases": ["web", "www"],
                "MacAddress": "92:d0:c6:0a:29:33"
            }}})
        );
        assert_eq!(b["HostConfig"]["NetworkMode"], "mynet");
        // Without --network the settings go to "default", the daemon's default network.
        let b = body(&["--ip", "10.0.0.5", "--mac-address", "92-D0-C6-0A-29-33"]).expect("builds");
        assert_eq!(
            b["NetworkingConfig"],
            json!({"EndpointsConfig": {"default": {
                "IPAMConfig": {"IPv4Address": "10.0.0.5"},
                "MacAddress": "92-D0-C6-0A-29-33"
            }}})
        );
        assert_eq!(
            b["NetworkingConfig"],
            body(&[
                "--ip",
                "10.0.0.5",
                "--mac-address",
                "92-D0-C6-0A-29-33",
                "--ip6",
                ""
            ])
            .expect("builds")["NetworkingConfig"]
        );
        assert_eq!(
            body(&[]).expect("builds")["NetworkingConfig"],
            json!({"EndpointsConfig": {}})
        );
        // The daemon refuses an address on the default bridge; the CLI refuses aliases.
        assert!(body(&["--network", "bridge", "--ip", "1.2.3.4"]).is_ok());
        for net in [None, Some("bridge"), Some("host"), Some("container:web")] {
            let mut args = vec!["--network-alias", "x"];
            if let Some(n) = net {
                args.extend(["--network", n]);
            }
            assert_eq!(
                body(&args).map(|_| ()),
                Err(
                    "network-scoped aliases are only supported for user-defined networks"
                        .to_string()
                ),
                "{net:?}"
            );
        }
        assert_eq!(
            body(&["--mac-address", "xx", "-p", "abc"]).map(|_| ()),
            Err("xx is not a valid mac address".to_string())
        );
    }

    #[test]
    fn env_from_flags_and_environment() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let c = build(
            &flags(&["-e", "A=1", "-e", "HOME", "-e", "MISSING"]),
            "img",
            &[],
            false,
            false,
            &lookup,
        )
        .expect("builds");
        assert_eq!(c.body["Env"], json!(["A=1", "HOME=/root", "MISSING"]));
    }

    #[test]
    fn kv_files() {
        let lookup = |k: &str| (k == "USER").then(|| "me".to_string());
        let text = b"\xef\xbb\xbf# comment\n\n  A=1\nB= spaced \nUSER\nNOPE\r\n";
        assert_eq!(
            parse_kv_text("f", text, Some(&lookup)),
            Ok(vec![
                "A=1".to_string(),
                "B= spaced ".to_string(),
                "USER=me".to_string()
            ])
        );
        assert_eq!(
            parse_kv_text("f", b"label\n", None),
            Ok(vec!["label".to_string()])
        );
        assert_eq!(
            parse_kv_text("f", b"BAD KEY=1\n", None),
            Err("variable 'BAD KEY' contains whitespaces".to_string())
        );
        assert_eq!(
            parse_kv_file("/nonexistent/env", None),
            Err("open /nonexistent/env: no such file or directory".to_string())
        );
    }

    #[test]
    fn conflicting_and_invalid_options() {
        assert_eq!(
            build(
                &flags(&["--restart", "always"]),
                "img",
                &[],
                true,
                false,
                &no_env
            )
            .map(|_| ()),
            Err("conflicting options: cannot specify both --restart and --rm".to_string())
        );
        assert!(build(
            &flags(&["--security-opt", "label"]),
            "img",
            &[],
            false,
            false,
            &no_env
        )
        .is_err());
        assert!(build(
            &flags(&["--restart", "sometimes"]),
            "img",
            &[],
            false,
            false,
            &no_env
        )
        .is_err());
        assert!(build(
            &flags(&["-v", "relative"]),
            "img",
            &[],
            false,
            false,
            &no_env
        )
        .is_err());
    }
}
