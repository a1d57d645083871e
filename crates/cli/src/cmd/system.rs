//! `version` and `info`.

use serde_json::Value as Json;

use crate::args::{InfoArgs, VersionArgs};
use crate::client::API_VERSION;
use crate::error::CliError;
use crate::template::{ExecOptions, Template, Value};
use crate::{output, tabwriter, units, Ctx};

const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

fn s<'a>(v: &'a Json, k: &str) -> &'a str {
    v.get(k).and_then(Json::as_str).unwrap_or("")
}

/// Go's `%v` of a JSON scalar ("true", "3", "text").
fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn version(ctx: &mut Ctx, a: VersionArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")),
        Some(f) => Some(Template::parse(f)),
    }
    .transpose()
    .map_err(|e| CliError::with_code(format!("template parsing error: {e}"), 64))?;

    // The client part prints even when the daemon is unreachable.
    let (api_version, server) = match ctx.client().await {
        Ok(client) => (
            client.version().to_string(),
            client.get_bytes("/version").await,
        ),
        Err(e) => (ctx.unnegotiated_client().version().to_string(), Err(e)),
    };
    let server_json = match &server {
        Ok(raw) => Some(normalize_server_version(
            &serde_json::from_slice(raw)
                .map_err(|e| CliError::new(format!("error decoding version: {e}")))?,
        )),
        Err(_) => None,
    };
    let text = match &tmpl {
        Some(t) => {
            // Templates see the daemon's fields in the daemon's order.
            let ordered = match (&server, &server_json) {
                (Ok(raw), Some(sv))
                    if sv["Components"]
                        == serde_json::from_slice::<Json>(raw).unwrap_or_default()
                            ["Components"] =>
                {
                    Value::from_json(&String::from_utf8_lossy(raw)).ok()
                }
                (_, Some(sv)) => Some(Value::from(sv)),
                _ => None,
            };
            let data = version_value(&api_version, ordered);
            t.execute(&data, &ExecOptions::default())
                .map_err(|e| CliError::new(format!("template: {e}")))?
                + "\n"
        }
        None => version_text(&api_version, server_json.as_ref()),
    };
    output::out(&tabwriter::align(&text, 20, 1));
    server.map(|_| ()).map_err(CliError::from)
}

/// docker's `newServerVersion`: always an "Engine" component.
fn normalize_server_version(v: &Json) -> Json {
    let mut v = v.clone();
    let has_engine = v["Components"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["Name"] == "Engine"));
    if !has_engine {
        let engine = serde_json::json!({
            "Name": "Engine",
            "Version": v["Version"],
            "Details": {
                "ApiVersion": v["ApiVersion"],
                "MinAPIVersion": v["MinAPIVersion"],
                "Os": v["Os"],
                "Arch": v["Arch"],
            }
        });
        match v["Components"].as_array_mut() {
            Some(c) => c.push(engine),
            None => v["Components"] = Json::Array(vec![engine]),
        }
    }
    v
}

fn version_text(api_version: &str, server: Option<&Json>) -> String {
    let mut t = String::from("Client:\n");
    t.push_str(&format!(" Version:\t{CLIENT_VERSION}\n"));
    t.push_str(&format!(" API version:\t{api_version}"));
    if api_version != API_VERSION {
        t.push_str(&format!(" (downgraded from {API_VERSION})"));
    }
    t.push('\n');
    t.push_str(&format!(" OS/Arch:\t{}\n", os_arch()));
    t.push_str(" Context:\tdefault\n");
    let Some(sv) = server else {
        return t;
    };
    let platform = sv["Platform"]["Name"].as_str().unwrap_or("");
    t.push_str("\nServer:");
    if !platform.is_empty() {
        t.push(' ');
        t.push_str(platform);
    }
    t.push('\n');
    for c in sv["Components"].as_array().into_iter().flatten() {
        let name = s(c, "Name");
        let details = &c["Details"];
        let d = |k: &str| details.get(k).map(scalar).unwrap_or_default();
        t.push_str(&format!(" {name}:\n"));
        if name == "Engine" {
            t.push_str(&format!("  Version:\t{}\n", s(c, "Version")));
            t.push_str(&format!(
                "  API version:\t{} (minimum version {})\n",
                d("ApiVersion"),
                d("MinAPIVersion")
            ));
            t.push_str(&format!("  Go version:\t{}\n", d("GoVersion")));
            t.push_str(&format!("  Git commit:\t{}\n", d("GitCommit")));
            t.push_str(&format!(
                "  Built:\t{}\n",
                crate::timefmt::ansic(&d("BuildTime"))
            ));
            t.push_str(&format!("  OS/Arch:\t{}/{}\n", d("Os"), d("Arch")));
            t.push_str(&format!("  Experimental:\t{}\n", d("Experimental")));
        } else {
            t.push_str(&format!("  Version:\t{}\n", s(c, "Version")));
            let mut keys: Vec<&String> = details
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            keys.sort();
            for k in keys {
                t.push_str(&format!("  {k}:\t{}\n", d(k)));
            }
        }
    }
    t
}

/// The data `version --format` sees: docker's `versionInfo`.
fn version_value(api_version: &str, server: Option<Value>) -> Value {
    let field = |k: &str, v: &str| (k.to_string(), Value::from(v));
    let client = Value::Object(vec![
        field("Version", CLIENT_VERSION),
        field("ApiVersion", api_version),
        field("DefaultAPIVersion", API_VERSION),
        field("Os", std::env::consts::OS),
        field("Arch", os_arch().split('/').nth(1).unwrap_or_default()),
        field("Context", "default"),
    ]);
    Value::Object(vec![
        ("Client".to_string(), client),
        ("Server".to_string(), server.unwrap_or(Value::Null)),
    ])
}

pub async fn info(ctx: &mut Ctx, a: InfoArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")),
        Some(f) => Some(Template::parse(f)),
    }
    .transpose()
    .map_err(|e| CliError::with_code(format!("template parsing error: {e}"), 64))?;

    let raw: Result<String, CliError> = match ctx.client().await {
        Ok(client) => client
            .get_bytes("/info")
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(CliError::from),
        Err(e) => Err(e.into()),
    };
    let decode_err = |e: serde_json::Error| CliError::new(format!("error decoding info: {e}"));
    if let Some(t) = tmpl {
        // Templates see the daemon's fields in the daemon's order, plus docker's ClientInfo.
        let mut data = Value::from_json(&raw?).map_err(decode_err)?;
        if let Value::Object(fields) = &mut data {
            let client_info = Value::Object(vec![
                ("Debug".to_string(), Value::Bool(false)),
                ("Version".to_string(), Value::from(CLIENT_VERSION)),
                ("Context".to_string(), Value::from("default")),
                ("Plugins".to_string(), Value::Array(Vec::new())),
                ("Warnings".to_string(), Value::Null),
            ]);
            fields.push(("ClientInfo".to_string(), client_info));
        }
        let text = t
            .execute(&data, &ExecOptions::default())
            .map_err(|e| CliError::new(format!("template: {e}")))?;
        output::outln(&text);
        return Ok(());
    }
    let server: Result<Json, CliError> =
        raw.and_then(|r| serde_json::from_str(&r).map_err(decode_err));
    output::out(&format!(
        "Client:\n Version:    {CLIENT_VERSION}\n Context:    default\n Debug Mode: false\n\nServer:\n"
    ));
    let info = server?;
    output::out(&server_info_text(&info));
    for w in info["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        output::errln(w);
    }
    Ok(())
}

/// docker's `prettyPrintServerInfo`, minus swarm and plugin details berth lacks.
fn server_info_text(i: &Json) -> String {
    let mut o = String::new();
    let mut line = |k: &str, v: String| o.push_str(&format!("{k} {v}\n"));
    let n = |k: &str| i.get(k).map(scalar).unwrap_or_else(|| "0".to_string());
    line(" Containers:", n("Containers"));
    line("  Running:", n("ContainersRunning"));
    line("  Paused:", n("ContainersPaused"));
    line("  Stopped:", n("ContainersStopped"));
    line(" Images:", n("Images"));
    let mut out = o;
    let non_empty = |out: &mut String, k: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("{k} {v}\n"));
        }
    };
    non_empty(&mut out, " Server Version:", s(i, "ServerVersion"));
    non_empty(&mut out, " Storage Driver:", s(i, "Driver"));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}: {}\n", scalar(&pair[0]), scalar(&pair[1])));
    }
    for pair in i["SystemStatus"].as_array().into_iter().flatten() {
        out.push_str(&format!(" {}: {}\n", scalar(&pair[0]), scalar(&pair[1])));
    }
    non_empty(&mut out, " Logging Driver:", s(i, "LoggingDriver"));
    non_empty(&mut out, " Cgroup Driver:", s(i, "CgroupDriver"));
    non_empty(&mut out, " Cgroup Version:", s(i, "CgroupVersion"));
    let plugins = |k: &str| -> String {
        i["Plugins"][k]
            .as_array()
            .map(|a| a.iter().map(scalar).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    out.push_str(" Plugins:\n");
    out.push_str(&format!("  Volume: {}\n", plugins("Volume")));
    out.push_str(&format!("  Network: {}\n", plugins("Network")));
    let authz = plugins("Authorization");
    if !authz.is_empty() {
        out.push_str(&format!("  Authorization: {authz}\n"));
    }
    out.push_str(&format!("  Log: {}\n", plugins("Log")));
    let swarm = i["Swarm"]["LocalNodeState"].as_str().unwrap_or("");
    out.push_str(&format!(" Swarm: {swarm}\n"));
    if let Some(runtimes) = i["Runtimes"].as_object().filter(|r| !r.is_empty()) {
        let mut names: Vec<&String> = runtimes.keys().collect();
        names.sort();
        out.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        out.push_str(&format!(" Default Runtime: {}\n", s(i, "DefaultRuntime")));
    }
    if s(i, "OSType") == "linux" {
        out.push_str(&format!(" Init Binary: {}\n", s(i, "InitBinary")));
        out.push_str(&format!(
            " containerd version: {}\n",
            s(&i["ContainerdCommit"], "ID")
        ));
        out.push_str(&format!(" runc version: {}\n", s(&i["RuncCommit"], "ID")));
        out.push_str(&format!(" init version: {}\n", s(&i["InitCommit"], "ID")));
        let secopts: Vec<&str> = i["SecurityOptions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        if !secopts.is_empty() {
            out.push_str(" Security Options:\n");
            for so in secopts {
                // "name=seccomp,profile=builtin"
                let mut name = "";
                let mut profile = None;
                for kv in so.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v,
                        Some(("profile", v)) => profile = Some(v),
                        _ => {}
                    }
                }
                out.push_str(&format!("  {name}\n"));
                if let Some(p) = profile {
                    out.push_str(&format!("   Profile: {p}\n"));
                }
            }
        }
    }
    non_empty(&mut out, " Kernel Version:", s(i, "KernelVersion"));
    non_empty(&mut out, " Operating System:", s(i, "OperatingSystem"));
    non_empty(&mut out, " OSType:", s(i, "OSType"));
    non_empty(&mut out, " Architecture:", s(i, "Architecture"));
    out.push_str(&format!(" CPUs: {}\n", n("NCPU")));
    out.push_str(&format!(
        " Total Memory: {}\n",
        units::bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    non_empty(&mut out, " Name:", s(i, "Name"));
    non_empty(&mut out, " ID:", s(i, "ID"));
    out.push_str(&format!(" Docker Root Dir: {}\n", s(i, "DockerRootDir")));
    let debug = i["Debug"].as_bool().unwrap_or(false);
    out.push_str(&format!(" Debug Mode: {debug}\n"));
    if debug {
        out.push_str(&format!("  File Descriptors: {}\n", n("NFd")));
        out.push_str(&format!("  Goroutines: {}\n", n("NGoroutines")));
        out.push_str(&format!("  System Time: {}\n", s(i, "SystemTime")));
        out.push_str(&format!("  EventsListeners: {}\n", n("NEventsListener")));
    }
    non_empty(&mut out, " HTTP Proxy:", s(i, "HttpProxy"));
    non_empty(&mut out, " HTTPS Proxy:", s(i, "HttpsProxy"));
    non_empty(&mut out, " No Proxy:", s(i, "NoProxy"));
    if let Some(labels) = i["Labels"].as_array().filter(|l| !l.is_empty()) {
        out.push_str(" Labels:\n");
        for l in labels {
            out.push_str(&format!("  {}\n", scalar(l)));
        }
    }
    out.push_str(&format!(
        " Experimental: {}\n",
        i["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    let reg = &i["RegistryConfig"];
    let cidrs: Vec<String> = reg["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(scalar)
        .collect();
    let index_configs = reg["IndexConfigs"].as_object();
    if !cidrs.is_empty() || index_configs.is_some_and(|c| !c.is_empty()) {
        out.push_str(" Insecure Registries:\n");
        for (name, cfg) in index_configs.into_iter().flatten() {
            if !cfg["Secure"].as_bool().unwrap_or(false) {
                out.push_str(&format!("  {name}\n"));
            }
        }
        for c in cidrs {
            out.push_str(&format!("  {c}\n"));
        }
    }
    if let Some(mirrors) = reg["Mirrors"].as_array().filter(|m| !m.is_empty()) {
        out.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            out.push_str(&format!("  {}\n", scalar(m)));
        }
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        i["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    if let Some(pools) = i["DefaultAddressPools"]
        .as_array()
        .filter(|p| !p.is_empty())
    {
        out.push_str(" Default Address Pools:\n");
        for p in pools {
            out.push_str(&format!(
                "   Base: {}, Size: {}\n",
                s(p, "Base"),
                scalar(&p["Size"])
            ));
        }
    }
    out.push('\n');
    out
}

/// `berth events`: docker/cli's line per event, `<time> <type> <action> <id> (<attrs>)`.
pub async fn events(ctx: &mut Ctx, a: crate::args::EventsArgs) -> Result<(), CliError> {
    use futures_util::StreamExt;
    let path = crate::client::Query::new()
        .set_if(
            a.since.is_some(),
            "since",
            a.since.clone().unwrap_or_default(),
        )
        .set_if(
            a.until.is_some(),
            "until",
            a.until.clone().unwrap_or_default(),
        )
        .set_if(
            !a.filter.is_empty(),
            "filters",
            crate::cmd::container::filters_json(&a.filter),
        )
        .to_path("/events");
    let template = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(
            crate::template::Template::parse(f)
                .map_err(|e| CliError::new(format!("failed to parse template: {e}")))?,
        ),
        None => None,
    };
    let client = ctx.client().await?;
    let mut stream = client
        .stream(hyper::Method::GET, &path, crate::client::empty_body(), &[])
        .await?;
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            let text = match &template {
                Some(t) => t
                    .execute(
                        &crate::template::Value::from(&v),
                        &crate::template::ExecOptions::default(),
                    )
                    .map_err(|e| CliError::new(format!("failed to execute template: {e}")))?,
                None => event_line(&v),
            };
            output::outln(&text);
        }
    }
    Ok(())
}

fn event_line(v: &serde_json::Value) -> String {
    let nanos = v["timeNano"].as_i64().unwrap_or(0);
    let time =
        chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
            .unwrap_or_default();
    let attrs: Vec<String> = v["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut line = format!(
        "{time} {} {} {}",
        v["Type"].as_str().unwrap_or_default(),
        v["Action"].as_str().unwrap_or_default(),
        v["Actor"]["ID"].as_str().unwrap_or_default()
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn version_layout() {
        let sv = normalize_server_version(&json!({
            "Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
            "Components": [
                {"Name": "Engine", "Version": "20.10.24", "Details": {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "GoVersion": "go1.19.8", "GitCommit": "5d6db84", "BuildTime": "2026-05-07T21:09:36.000000000+00:00", "Os": "linux", "Arch": "amd64", "Experimental": "false"}},
                {"Name": "runc", "Version": "1.1.5", "Details": {"GitCommit": "abc"}}
            ]
        }));
        let text = tabwriter::align(&version_text("1.41", Some(&sv)), 20, 1);
        let want_server = "\nServer:\n Engine:\n  Version:          20.10.24\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n  Git commit:       5d6db84\n  Built:            Thu May  7 21:09:36 2026\n  OS/Arch:          linux/amd64\n  Experimental:     false\n runc:\n  Version:          1.1.5\n  GitCommit:        abc\n";
        assert!(text.ends_with(want_server), "{text}");
        assert!(text.starts_with("Client:\n Version:           "), "{text}");
        assert!(
            text.contains(&format!(
                " API version:       1.41 (downgraded from {API_VERSION})\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn version_without_components_gets_an_engine() {
        let sv = normalize_server_version(
            &json!({"Version": "0.1.0", "ApiVersion": "1.51", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"}),
        );
        assert_eq!(sv["Components"][0]["Name"], "Engine");
        assert_eq!(sv["Components"][0]["Details"]["ApiVersion"], "1.51");
    }

    #[test]
    fn info_layout() {
        let info = json!({
            "Containers": 4, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 3, "Images": 1,
            "ServerVersion": "20.10.24", "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "2",
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host"], "Log": ["json-file"]},
            "Swarm": {"LocalNodeState": "inactive"}, "Runtimes": {"runc": {}}, "DefaultRuntime": "runc",
            "OSType": "linux", "InitBinary": "docker-init", "ContainerdCommit": {"ID": "c1"}, "RuncCommit": {"ID": "r1"},
            "InitCommit": {"ID": ""}, "SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
            "KernelVersion": "6.1", "OperatingSystem": "Debian", "Architecture": "x86_64", "NCPU": 2,
            "MemTotal": 2_087_235_584i64, "Name": "host", "ID": "id1", "DockerRootDir": "/var/lib/docker",
            "Debug": false, "ExperimentalBuild": false,
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {"docker.io": {"Secure": true}}},
            "LiveRestoreEnabled": false
        });
        let text = server_info_text(&info);
        assert!(text.starts_with(" Containers: 4\n  Running: 1\n  Paused: 0\n  Stopped: 3\n Images: 1\n Server Version: 20.10.24\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n"), "{text}");
        assert!(
            text.contains(" Security Options:\n  seccomp\n   Profile: default\n  cgroupns\n"),
            "{text}"
        );
        assert!(text.contains(" Total Memory: 1.944GiB\n"), "{text}");
        assert!(
            text.contains(" Insecure Registries:\n  127.0.0.0/8\n"),
            "{text}"
        );
        assert!(text.ends_with(" Live Restore Enabled: false\n\n"), "{text}");
    }
}
