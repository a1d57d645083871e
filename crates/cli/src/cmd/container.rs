//! Container commands other than the run family: `ps`, `stop`, `restart`,
//! `kill`, `wait`, `rm`, `logs`, `port`, …

use futures_util::future::join_all;
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value as Json;

use super::seg;
use crate::args::{
    DiffArgs, KillArgs, LogsArgs, PauseArgs, PortArgs, PruneArgs, PsArgs, RenameArgs, RmArgs,
    StopArgs, TopArgs, UpdateArgs, WaitArgs,
};
use crate::client::{empty_body, Query};
use crate::error::{self, CliError};
use crate::formatter::{self, container as fmt, Format};
use crate::stdcopy::{self, Demux, Sinks};
use crate::template::{ExecOptions, Template};
use crate::{output, timefmt, Ctx};

/// `stop` (or `restart` when `restart` is set).
pub async fn stop(ctx: &mut Ctx, a: StopArgs, restart: bool) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    if a.time.is_some() && a.timeout.is_some() {
        return Err(CliError::new(
            "conflicting options: cannot specify both --timeout and --time",
        ));
    }
    let client = ctx.client().await?;
    let timeout = a.timeout.or(a.time);
    // The signal parameter exists since API 1.42; older daemons reject unknown ones.
    let signal = a.signal.filter(|_| client.version_at_least("1.42"));
    let verb = if restart { "restart" } else { "stop" };
    let query = Query::new()
        .set_if(
            timeout.is_some(),
            "t",
            timeout.unwrap_or_default().to_string(),
        )
        .set_if(
            signal.is_some(),
            "signal",
            signal.clone().unwrap_or_default(),
        );
    let results = if restart {
        // docker restarts one after the other.
        let mut r = Vec::new();
        for name in &a.containers {
            r.push(
                client
                    .post(
                        &query.to_path(&format!("/containers/{}/{verb}", seg(name))),
                        None,
                    )
                    .await,
            );
        }
        r
    } else {
        join_all(a.containers.iter().map(|name| {
            let path = query.to_path(&format!("/containers/{}/{verb}", seg(name)));
            let client = client.clone();
            async move { client.post(&path, None).await }
        }))
        .await
    };
    report_each(&a.containers, results)
}

/// Prints each name that succeeded, in argument order; joins the errors.
fn report_each<T>(
    names: &[String],
    results: Vec<Result<T, crate::client::ApiError>>,
) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(_) => output::outln(name),
            Err(e) => errors.push(e.into()),
        }
    }
    error::join(errors)
}

pub async fn kill(ctx: &mut Ctx, a: KillArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let query = Query::new().set_if(
        a.signal.is_some(),
        "signal",
        a.signal.clone().unwrap_or_default(),
    );
    let results = join_all(a.containers.iter().map(|name| {
        let path = query.to_path(&format!("/containers/{}/kill", seg(name)));
        let client = client.clone();
        async move { client.post(&path, None).await }
    }))
    .await;
    report_each(&a.containers, results)
}

/// `pause`/`unpause`: each container in turn, its name printed when done, errors at the end
/// (docker/cli's loop).
pub async fn pause(ctx: &mut Ctx, a: PauseArgs, pause: bool) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let verb = if pause { "pause" } else { "unpause" };
    let mut errors = Vec::new();
    for name in &a.containers {
        match client
            .post(&format!("/containers/{}/{verb}", seg(name)), None)
            .await
        {
            Ok(_) => output::outln(name),
            Err(e) => errors.push(CliError::from(e)),
        }
    }
    error::join(errors)
}

/// `update`: docker/cli refuses a call that changes nothing, then prints each name updated.
pub async fn update(ctx: &mut Ctx, a: UpdateArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: Option<i64>| {
        if let Some(v) = v {
            body.insert(k.into(), serde_json::json!(v));
        }
    };
    set("Memory", a.memory);
    set("MemorySwap", a.memory_swap);
    set("NanoCpus", a.cpus);
    set("CpuShares", a.cpu_shares);
    set("PidsLimit", a.pids_limit);
    if let Some(r) = &a.restart {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (
                n,
                c.parse::<i64>()
                    .map_err(|_| CliError::new(format!("invalid restart policy {r}")))?,
            ),
            None => (r.as_str(), 0),
        };
        body.insert(
            "RestartPolicy".into(),
            serde_json::json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    if body.is_empty() {
        return Err(CliError::new(
            "you must provide one or more flags when using this command",
        ));
    }
    let client = ctx.client().await?;
    let body = Json::Object(body);
    let mut errors = Vec::new();
    for name in &a.containers {
        match client
            .post(&format!("/containers/{}/update", seg(name)), Some(&body))
            .await
        {
            Ok(_) => output::outln(name),
            Err(e) => errors.push(CliError::from(e)),
        }
    }
    error::join(errors)
}

/// `top`: docker/cli prints the table through a tabwriter of minimum width 20, padding 3.
pub async fn top(ctx: &mut Ctx, a: TopArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 1)?;
    let path = Query::new()
        .set_if(a.args.len() > 1, "ps_args", a.args[1..].join(" "))
        .to_path(&format!("/containers/{}/top", seg(&a.args[0])));
    let v: Json = ctx.client().await?.get_json(&path).await?;
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = v["Processes"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|c| {
                            c.iter()
                                .filter_map(|s| s.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let widths: Vec<usize> = (0..titles.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(titles.get(i))
                .map(|c| c.chars().count() + 3)
                .chain([20])
                .max()
                .unwrap_or(20)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let w = widths.get(i).copied().unwrap_or(20);
                s.push_str(&format!("{c:<w$}"));
            }
        }
        s
    };
    output::outln(&line(&titles));
    for r in &rows {
        output::outln(&line(r));
    }
    Ok(())
}

pub async fn rename(ctx: &mut Ctx, a: RenameArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 2)?;
    let (old, new) = (a.args[0].trim(), a.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(CliError::new(
            "Error: Neither old nor new names may be empty",
        ));
    }
    let path = Query::new()
        .set("name", new)
        .to_path(&format!("/containers/{}/rename", seg(old)));
    ctx.client().await?.post(&path, None).await?;
    Ok(())
}

pub async fn diff(ctx: &mut Ctx, a: DiffArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.containers.len(), 1)?;
    let changes: Vec<Json> = ctx
        .client()
        .await?
        .get_json(&format!("/containers/{}/changes", seg(&a.containers[0])))
        .await?;
    for c in changes {
        let kind = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        output::outln(&format!(
            "{kind} {}",
            c["Path"].as_str().unwrap_or_default()
        ));
    }
    Ok(())
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host sides of `NetworkSettings.Ports` (`{"80/tcp": [{"HostIp":…,"HostPort":…}]}`) as
/// docker 28's `port` prints them: every mapping, or those of one `PRIVATE_PORT[/PROTO]`.
fn port_lines(ports: &Json, container: &str, private: Option<&str>) -> Result<String, CliError> {
    let frontends = |bindings: &Json| -> Vec<String> {
        bindings
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|b| {
                        join_host_port(
                            b["HostIp"].as_str().unwrap_or_default(),
                            b["HostPort"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    match private {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(e) = crate::netopts::parse_uint16(port) {
                return Err(CliError::new(format!("Error: invalid port ({port}): {e}")));
            }
            // The key is looked up as typed: "80/TCP" finds nothing, as in docker.
            out = frontends(&ports[format!("{port}/{proto}")]);
            if out.is_empty() {
                return Err(CliError::new(format!(
                    "Error: No public port '{spec}' published for {container}"
                )));
            }
        }
        None => {
            if let Some(map) = ports.as_object() {
                for (from, bindings) in map {
                    out.extend(frontends(bindings).iter().map(|f| format!("{from} -> {f}")));
                }
            }
        }
    }
    out.sort_by(|a, b| formatter::natural_cmp(a, b));
    Ok(out.iter().map(|l| format!("{l}\n")).collect())
}

pub async fn port(ctx: &mut Ctx, a: PortArgs) -> Result<(), CliError> {
    ctx.require_range_args(a.args.len(), 1, 2)?;
    let container = &a.args[0];
    let info: Json = ctx
        .client()
        .await?
        .get_json(&format!("/containers/{}/json", seg(container)))
        .await?;
    let text = port_lines(
        &info["NetworkSettings"]["Ports"],
        container,
        a.args.get(1).map(String::as_str),
    )?;
    output::out(&text);
    Ok(())
}

pub async fn prune(ctx: &mut Ctx, a: PruneArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    if !a.force
        && !output::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
        )
    {
        return Ok(());
    }
    let path = Query::new()
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .to_path("/containers/prune");
    let body = ctx.client().await?.post(&path, None).await?;
    let v: Json = serde_json::from_slice(&body).map_err(|e| CliError::new(e.to_string()))?;
    let deleted: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        output::outln("Deleted Containers:");
        for id in &deleted {
            output::outln(id);
        }
        output::outln("");
    }
    let space = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    output::outln(&format!(
        "Total reclaimed space: {}",
        crate::units::human_size(space)
    ));
    Ok(())
}

pub async fn wait(ctx: &mut Ctx, a: WaitArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for name in &a.containers {
        let result = async {
            let body = client
                .post(&format!("/containers/{}/wait", seg(name)), None)
                .await?;
            let v: Json =
                serde_json::from_slice(&body).map_err(|e| CliError::new(e.to_string()))?;
            if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
                return Err(CliError::new(msg));
            }
            Ok::<i64, CliError>(v["StatusCode"].as_i64().unwrap_or(0))
        }
        .await;
        match result {
            Ok(code) => output::outln(&code.to_string()),
            Err(e) => errors.push(e),
        }
    }
    error::join(errors)
}

pub async fn rm(ctx: &mut Ctx, a: RmArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let query = Query::new()
        .set_if(a.volumes, "v", "1")
        .set_if(a.link, "link", "1")
        .set_if(a.force, "force", "1");
    let results = join_all(a.containers.iter().map(|name| {
        let client = client.clone();
        let name = name.trim_matches('/').to_string();
        let path = query.to_path(&format!("/containers/{}", seg(&name)));
        async move {
            if name.is_empty() {
                return Err((false, CliError::new("container name cannot be empty")));
            }
            client
                .delete(&path)
                .await
                .map(|_| ())
                .map_err(|e| (e.is_not_found(), CliError::from(e)))
        }
    }))
    .await;
    let mut errors = Vec::new();
    for (name, r) in a.containers.iter().zip(results) {
        match r {
            Ok(()) => output::outln(name),
            // `rm -f` of something already gone is not an error.
            Err((true, _)) if a.force => {}
            Err((_, e)) => errors.push(e),
        }
    }
    error::join(errors)
}

pub async fn ps(ctx: &mut Ctx, a: PsArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    let source = a.format.clone().unwrap_or_default();
    if !source.is_empty() && a.quiet {
        output::errln(
            "WARNING: Ignoring custom format, because both --format and --quiet are set.",
        );
    }
    // docker parses the user's template up front to know whether it shows sizes.
    let mut size = a.size.unwrap_or(false);
    if !source.is_empty() {
        let tmpl = Template::parse(&source)
            .map_err(|e| CliError::new(format!("failed to parse template: {e}")))?;
        tmpl.execute(
            &fmt::row(&Json::Object(Default::default()), true),
            &ExecOptions::default(),
        )
        .map_err(|e| CliError::new(format!("failed to execute template: {e}")))?;
        if !a.quiet && a.size.is_none() && tmpl.reads_field("Size") {
            size = true;
        }
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    let path = Query::new()
        .set_if(a.all, "all", "1")
        .set_if(limit > 0, "limit", limit.to_string())
        .set_if(size, "size", "1")
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .to_path("/containers/json");
    let client = ctx.client().await?;
    let list: Vec<Json> = client.get_json(&path).await?;
    let format = Format(fmt::format_for(&source, a.quiet, size));
    let rows: Vec<_> = list.iter().map(|c| fmt::row(c, !a.no_trunc)).collect();
    let text = formatter::render(&format, &fmt::header(), &rows).map_err(CliError::new)?;
    output::out(&text);
    Ok(())
}

/// `{"status":["running","exited"],"name":["web"]}`, values in flag order.
pub fn filters_json(filters: &[(String, String)]) -> String {
    let mut map: serde_json::Map<String, Json> = serde_json::Map::new();
    for (k, v) in filters {
        let entry = map
            .entry(k.clone())
            .or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(values) = entry {
            if !values.iter().any(|x| x == v) {
                values.push(Json::String(v.clone()));
            }
        }
    }
    Json::Object(map).to_string()
}

pub async fn logs(ctx: &mut Ctx, a: LogsArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let info: Json = client
        .get_json(&format!("/containers/{}/json", seg(&a.containers[0])))
        .await?;
    let id = info["Id"].as_str().unwrap_or(&a.containers[0]).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = chrono::Local::now();
    let since = match &a.since {
        Some(s) if !s.is_empty() => Some(
            timefmt::get_timestamp(s, now)
                .map_err(|e| CliError::new(format!("invalid value for \"since\": {e}")))?,
        ),
        _ => None,
    };
    let until = match &a.until {
        Some(s) if !s.is_empty() => Some(
            timefmt::get_timestamp(s, now)
                .map_err(|e| CliError::new(format!("invalid value for \"until\": {e}")))?,
        ),
        _ => None,
    };
    let path = Query::new()
        .set("stdout", "1")
        .set("stderr", "1")
        .set_if(since.is_some(), "since", since.unwrap_or_default())
        .set_if(until.is_some(), "until", until.unwrap_or_default())
        .set_if(a.timestamps, "timestamps", "1")
        .set_if(a.details, "details", "1")
        .set_if(a.follow, "follow", "1")
        .set("tail", a.tail.clone())
        .to_path(&format!("/containers/{}/logs", seg(&id)));
    let mut stream = client.stream(Method::GET, &path, empty_body(), &[]).await?;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut sinks = Sinks {
        stdout: &mut out,
        stderr: &mut err,
    };
    let mut demux = Demux::new();
    while let Some(chunk) = stream.next().await {
        stdcopy::write_chunk(&mut demux, &chunk?, tty, &mut sinks)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_output() {
        let ports = serde_json::json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "443/tcp": null,
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9/tcp": [{"HostIp": "0.0.0.0", "HostPort": "10"}]
        });
        assert_eq!(
            port_lines(&ports, "c", None),
            Ok("9/tcp -> 0.0.0.0:10\n53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n".to_string())
        );
        assert_eq!(
            port_lines(&ports, "c", Some("80")),
            Ok("0.0.0.0:8080\n[::]:8080\n".to_string())
        );
        assert_eq!(
            port_lines(&ports, "c", Some("53/udp")),
            Ok("127.0.0.1:5353\n".to_string())
        );
        let err = |p: &str| port_lines(&ports, "c", Some(p)).err().map(|e| e.message);
        assert_eq!(
            err("81/tcp").as_deref(),
            Some("Error: No public port '81/tcp' published for c")
        );
        assert_eq!(
            err("443").as_deref(),
            Some("Error: No public port '443' published for c")
        );
        assert_eq!(
            err("80/TCP").as_deref(),
            Some("Error: No public port '80/TCP' published for c")
        );
        assert_eq!(
            err("abc").as_deref(),
            Some("Error: invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax")
        );
        assert_eq!(port_lines(&Json::Null, "c", None), Ok(String::new()));
    }

    #[test]
    fn filters_group_by_key() {
        let f = vec![
            ("status".to_string(), "running".to_string()),
            ("name".to_string(), "web".to_string()),
            ("status".to_string(), "exited".to_string()),
            ("status".to_string(), "running".to_string()),
        ];
        assert_eq!(
            filters_json(&f),
            r#"{"name":["web"],"status":["running","exited"]}"#
        );
    }
}
