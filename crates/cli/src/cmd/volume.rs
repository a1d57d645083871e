//! `berth volume create|ls|inspect|rm|prune`, as docker/cli prints them.

use serde_json::{json, Value as Json};

use super::inspect::{get_raw, run_inspect};
use super::seg;
use crate::args::{
    VolumeCommand, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::client::Query;
use crate::cmd::container::filters_json;
use crate::error::{self, CliError};
use crate::template::{ExecOptions, Template};
use crate::{output, Ctx};

pub async fn run(ctx: &mut Ctx, c: VolumeCommand) -> Result<(), CliError> {
    match c {
        VolumeCommand::Create(a) => create(ctx, a).await,
        VolumeCommand::Ls(a) => ls(ctx, a).await,
        VolumeCommand::Inspect(a) => inspect(ctx, a).await,
        VolumeCommand::Rm(a) => rm(ctx, a).await,
        VolumeCommand::Prune(a) => prune(ctx, a).await,
    }
}

/// `k=v` list flags (`--label`, `-o`) as a JSON object; a bare `k` has an empty value.
pub(super) fn pairs(list: &[String]) -> Json {
    let m: serde_json::Map<String, Json> = list
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), Json::String(v.to_string())),
            None => (kv.clone(), Json::String(String::new())),
        })
        .collect();
    Json::Object(m)
}

async fn create(ctx: &mut Ctx, a: VolumeCreateArgs) -> Result<(), CliError> {
    ctx.require_max_args(a.args.len(), 1)?;
    let name =
        match (a.name.as_deref(), a.args.first()) {
            (Some(n), Some(arg)) if n != arg => return Err(CliError::new(
                "conflicting options: either specify --name or provide positional arg, not both",
            )),
            (Some(n), _) => n.to_string(),
            (None, Some(arg)) => arg.clone(),
            (None, None) => String::new(),
        };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": pairs(&a.opt),
        "Labels": pairs(&a.label),
    });
    let resp = ctx
        .client()
        .await?
        .post("/volumes/create", Some(&body))
        .await?;
    let v: Json = serde_json::from_slice(&resp).map_err(|e| CliError::new(e.to_string()))?;
    output::outln(v["Name"].as_str().unwrap_or_default());
    Ok(())
}

async fn ls(ctx: &mut Ctx, a: VolumeLsArgs) -> Result<(), CliError> {
    let path = Query::new()
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .to_path("/volumes");
    let list: Json = ctx.client().await?.get_json(&path).await?;
    let vols = list["Volumes"].as_array().cloned().unwrap_or_default();
    if a.quiet {
        for v in &vols {
            output::outln(v["Name"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    if let Some(src) = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "table")
    {
        let tmpl = Template::parse(src.trim_start_matches("table "))
            .map_err(|e| CliError::new(format!("failed to parse template: {e}")))?;
        for v in &vols {
            let text = tmpl
                .execute(&crate::template::Value::from(v), &ExecOptions::default())
                .map_err(|e| CliError::new(format!("failed to execute template: {e}")))?;
            output::outln(&text);
        }
        return Ok(());
    }
    // docker/cli's tabwriter: minimum width 10, padding 3.
    let width = vols
        .iter()
        .map(|v| v["Driver"].as_str().unwrap_or_default().len() + 3)
        .chain([10])
        .max()
        .unwrap_or(10);
    output::outln(&format!("{:<width$}VOLUME NAME", "DRIVER"));
    for v in &vols {
        output::outln(&format!(
            "{:<width$}{}",
            v["Driver"].as_str().unwrap_or_default(),
            v["Name"].as_str().unwrap_or_default()
        ));
    }
    Ok(())
}

async fn inspect(ctx: &mut Ctx, a: VolumeInspectArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.volumes.len(), 1)?;
    let client = ctx.client().await?;
    run_inspect(&a.volumes, a.format.as_deref(), |name| {
        let client = client.clone();
        async move {
            get_raw(&client, &format!("/volumes/{}", seg(&name)))
                .await
                .map_err(CliError::from)
        }
    })
    .await
}

async fn rm(ctx: &mut Ctx, a: VolumeRmArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.volumes.len(), 1)?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for name in &a.volumes {
        let path = Query::new()
            .set_if(a.force, "force", "1")
            .to_path(&format!("/volumes/{}", seg(name)));
        match client.delete(&path).await {
            Ok(_) => output::outln(name),
            Err(e) => errors.push(CliError::from(e)),
        }
    }
    error::join(errors)
}

async fn prune(ctx: &mut Ctx, a: VolumePruneArgs) -> Result<(), CliError> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    };
    if !a.force && !output::confirm(warning) {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push(("all".into(), "true".into()));
    }
    let path = Query::new()
        .set_if(!filters.is_empty(), "filters", filters_json(&filters))
        .to_path("/volumes/prune");
    let body = ctx.client().await?.post(&path, None).await?;
    let v: Json = serde_json::from_slice(&body).map_err(|e| CliError::new(e.to_string()))?;
    let deleted: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        output::outln("Deleted Volumes:");
        for n in &deleted {
            output::outln(n);
        }
        output::outln("");
    }
    output::outln(&format!(
        "Total reclaimed space: {}",
        crate::units::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    ));
    Ok(())
}
