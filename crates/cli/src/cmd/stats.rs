//! `berth stats`: docker/cli's table of CPU, memory and PIDs per container, computed from the
//! API's samples as docker/cli computes it (CPU% from the delta to `precpu_stats`, memory
//! without the inactive file cache).

use futures_util::future::join_all;
use serde_json::{json, Value as Json};

use super::seg;
use crate::args::StatsArgs;
use crate::client::{Client, Query};
use crate::error::CliError;
use crate::template::{ExecOptions, Template, Value};
use crate::units::{bytes_size, human_size_with_precision};
use crate::{output, Ctx};

/// One row, with docker/cli's `stats --format` field names.
fn row(id: &str, s: &Json, no_trunc: bool) -> Json {
    let cpu_delta = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys_delta = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let cpus = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let cache = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| mem["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let usage = (mem["usage"].as_f64().unwrap_or(0.0) - cache).max(0.0);
    let limit = mem["limit"].as_f64().unwrap_or(0.0);
    let mem_perc = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let short: String = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    let zero = format!(
        "{} / {}",
        human_size_with_precision(0.0, 3),
        human_size_with_precision(0.0, 3)
    );
    json!({
        "Container": short,
        "ID": short,
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": zero,
        "BlockIO": zero,
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

fn table(rows: &[Json]) -> String {
    let cols = [
        ("CONTAINER ID", "Container"),
        ("NAME", "Name"),
        ("CPU %", "CPUPerc"),
        ("MEM USAGE / LIMIT", "MemUsage"),
        ("MEM %", "MemPerc"),
        ("NET I/O", "NetIO"),
        ("BLOCK I/O", "BlockIO"),
        ("PIDS", "PIDs"),
    ];
    // docker/cli's tabwriter: padding 3.
    let widths: Vec<usize> = cols
        .iter()
        .map(|(h, k)| {
            rows.iter()
                .map(|r| r[*k].as_str().unwrap_or_default().len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
                + 3
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(cols.iter().map(|(h, _)| h.to_string()).collect());
    for r in rows {
        line(
            cols.iter()
                .map(|(_, k)| r[*k].as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    out
}

async fn sample(client: &Client, ids: &[String], no_trunc: bool) -> Result<Vec<Json>, CliError> {
    let gets = ids.iter().map(|id| async move {
        let path = Query::new()
            .set("stream", "0")
            .to_path(&format!("/containers/{}/stats", seg(id)));
        let s: Json = client.get_json(&path).await?;
        let full = s["id"].as_str().unwrap_or(id).to_string();
        Ok::<_, CliError>(row(&full, &s, no_trunc))
    });
    join_all(gets).await.into_iter().collect()
}

pub async fn stats(ctx: &mut Ctx, a: StatsArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let ids: Vec<String> = if a.containers.is_empty() {
        let path = Query::new()
            .set_if(a.all, "all", "1")
            .to_path("/containers/json");
        let list: Vec<Json> = client.get_json(&path).await?;
        list.iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let template = match a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "table")
    {
        Some(f) => Some(
            Template::parse(f.trim_start_matches("table "))
                .map_err(|e| CliError::new(format!("failed to parse template: {e}")))?,
        ),
        None => None,
    };
    let render = |rows: &[Json]| -> Result<String, CliError> {
        match &template {
            None => Ok(table(rows)),
            Some(t) => {
                let mut out = String::new();
                for r in rows {
                    let line = t
                        .execute(&Value::from(r), &ExecOptions::default())
                        .map_err(|e| CliError::new(format!("failed to execute template: {e}")))?;
                    out.push_str(&line);
                    out.push('\n');
                }
                Ok(out)
            }
        }
    };
    loop {
        let rows = sample(&client, &ids, a.no_trunc).await?;
        let text = render(&rows)?;
        if a.no_stream {
            output::out(&text);
            return Ok(());
        }
        if output::stdout_is_terminal() {
            // Redraw in place, as docker/cli does on a terminal.
            output::out("\x1b[2J\x1b[H");
        }
        output::out(&text);
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    }
}
