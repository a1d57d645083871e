//! `berth network create|ls|inspect|rm|prune|connect|disconnect`, as docker 28 prints them.

use serde_json::{json, Map, Value as Json};

use super::container::filters_json;
use super::inspect::{get_raw, run_inspect};
use super::seg;
use super::volume::pairs;
use crate::args::{
    NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs,
    NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::client::Query;
use crate::error::CliError;
use crate::formatter::{self, natural_cmp, network as fmt, Format};
use crate::{netopts, output, Ctx};

pub async fn run(ctx: &mut Ctx, c: NetworkCommand) -> Result<(), CliError> {
    match c {
        NetworkCommand::Connect(a) => connect(ctx, a).await,
        NetworkCommand::Create(a) => create(ctx, a).await,
        NetworkCommand::Disconnect(a) => disconnect(ctx, a).await,
        NetworkCommand::Inspect(a) => inspect(ctx, a).await,
        NetworkCommand::Ls(a) => ls(ctx, a).await,
        NetworkCommand::Prune(a) => prune(ctx, a).await,
        NetworkCommand::Rm(a) => rm(ctx, a).await,
    }
}

/// The `POST /networks/create` body; IPAM errors come before any request, as in docker.
fn create_body(name: &str, a: &NetworkCreateArgs) -> Result<Json, String> {
    let config = netopts::ipam_config(&a.subnet, &a.ip_range, &a.gateway)?;
    let mut body = Map::new();
    body.insert("Name".into(), json!(name));
    body.insert("Driver".into(), json!(a.driver));
    body.insert(
        "IPAM".into(),
        json!({"Driver": a.ipam_driver, "Options": {}, "Config": config}),
    );
    body.insert("Internal".into(), json!(a.internal));
    body.insert("Attachable".into(), json!(a.attachable));
    // Only a flag given on the command line is sent: the daemon has its own defaults.
    if let Some(v) = a.ipv4 {
        body.insert("EnableIPv4".into(), json!(v));
    }
    if let Some(v) = a.ipv6 {
        body.insert("EnableIPv6".into(), json!(v));
    }
    body.insert("Options".into(), pairs(&a.opt));
    body.insert("Labels".into(), pairs(&a.label));
    Ok(Json::Object(body))
}

async fn create(ctx: &mut Ctx, a: NetworkCreateArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 1)?;
    let body = create_body(&a.args[0], &a).map_err(CliError::new)?;
    let resp = ctx
        .client()
        .await?
        .post("/networks/create", Some(&body))
        .await?;
    let v: Json = serde_json::from_slice(&resp)
        .map_err(|e| CliError::new(format!("error decoding response from daemon: {e}")))?;
    output::outln(v["Id"].as_str().unwrap_or_default());
    Ok(())
}

async fn ls(ctx: &mut Ctx, a: NetworkLsArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    let path = Query::new()
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .to_path("/networks");
    let mut list: Vec<Json> = ctx.client().await?.get_json(&path).await?;
    list.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or_default(),
            y["Name"].as_str().unwrap_or_default(),
        )
    });
    let format = Format(fmt::format_for(
        a.format.as_deref().unwrap_or_default(),
        a.quiet,
    ));
    let rows: Vec<_> = list.iter().map(|n| fmt::row(n, !a.no_trunc)).collect();
    let text = formatter::render(&format, &fmt::header(), &rows).map_err(CliError::new)?;
    output::out(&text);
    Ok(())
}

async fn inspect(ctx: &mut Ctx, a: NetworkInspectArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.networks.len(), 1)?;
    let client = ctx.client().await?;
    let verbose = a.verbose;
    run_inspect(&a.networks, a.format.as_deref(), |name| {
        let client = client.clone();
        async move {
            let path = Query::new()
                .set_if(verbose, "verbose", "true")
                .to_path(&format!("/networks/{}", seg(&name)));
            get_raw(&client, &path).await.map_err(CliError::from)
        }
    })
    .await
}

/// docker prints each failure as it happens and ends with its status line.
async fn rm(ctx: &mut Ctx, a: NetworkRmArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.networks.len(), 1)?;
    let client = ctx.client().await?;
    let mut failed = false;
    // docker inspects each network first to warn before removing swarm's ingress network;
    // berth has no swarm, so there is nothing to warn about.
    for name in &a.networks {
        match client.delete(&format!("/networks/{}", seg(name))).await {
            Ok(_) => output::outln(name),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                output::errln(&e.to_string());
                failed = true;
            }
        }
    }
    if failed {
        return Err(CliError::new("exit status 1"));
    }
    Ok(())
}

async fn prune(ctx: &mut Ctx, a: NetworkPruneArgs) -> Result<(), CliError> {
    ctx.require_no_args(a.extra.len())?;
    if !a.force
        && !output::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ",
        )
    {
        return Ok(());
    }
    let path = Query::new()
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .to_path("/networks/prune");
    let body = ctx.client().await?.post(&path, None).await?;
    let v: Json = serde_json::from_slice(&body)
        .map_err(|e| CliError::new(format!("error decoding response from daemon: {e}")))?;
    let deleted: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        output::outln("Deleted Networks:");
        for name in &deleted {
            output::outln(name);
        }
        output::outln("");
    }
    Ok(())
}

/// The `POST /networks/{id}/connect` body.
fn connect_body(container: &str, a: &NetworkConnectArgs) -> Json {
    let mut ipam = Map::new();
    if let Some(ip) = a.ip.as_deref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = a.ip6.as_deref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    json!({
        "Container": container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Aliases": a.alias,
            "DriverOpts": {},
        },
    })
}

async fn connect(ctx: &mut Ctx, a: NetworkConnectArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 2)?;
    let body = connect_body(&a.args[1], &a);
    ctx.client()
        .await?
        .post(
            &format!("/networks/{}/connect", seg(&a.args[0])),
            Some(&body),
        )
        .await?;
    Ok(())
}

async fn disconnect(ctx: &mut Ctx, a: NetworkDisconnectArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 2)?;
    let body = json!({"Container": a.args[1], "Force": a.force});
    ctx.client()
        .await?
        .post(
            &format!("/networks/{}/disconnect", seg(&a.args[0])),
            Some(&body),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn network(args: &[&str]) -> NetworkCommand {
        let argv = ["berth", "network"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Some(Command::Network { command: Some(c) })) => c,
            other => panic!("not a network command: {other:?}"),
        }
    }

    #[test]
    fn create_bodies() {
        let NetworkCommand::Create(a) = network(&["create", "n"]) else {
            panic!("not create")
        };
        assert_eq!(
            create_body("n", &a),
            Ok(json!({
                "Name": "n", "Driver": "bridge",
                "IPAM": {"Driver": "default", "Options": {}, "Config": []},
                "Internal": false, "Attachable": false, "Options": {}, "Labels": {}
            }))
        );
        let NetworkCommand::Create(a) = network(&[
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.1.0.0/16,fd00::/64",
            "--gateway",
            "10.1.0.1",
            "--ip-range",
            "10.1.2.0/24",
            "--internal",
            "--attachable",
            "--label",
            "x=y",
            "--label",
            "z",
            "-o",
            "a=b",
            "--ipv6",
            "n",
        ]) else {
            panic!("not create")
        };
        assert_eq!(
            create_body("n", &a),
            Ok(json!({
                "Name": "n", "Driver": "macvlan",
                "IPAM": {"Driver": "default", "Options": {}, "Config": [
                    {"Subnet": "10.1.0.0/16", "IPRange": "10.1.2.0/24", "Gateway": "10.1.0.1"},
                    {"Subnet": "fd00::/64"}
                ]},
                "Internal": true, "Attachable": true, "EnableIPv6": true,
                "Options": {"a": "b"}, "Labels": {"x": "y", "z": ""}
            }))
        );
        let NetworkCommand::Create(a) = network(&[
            "create",
            "--subnet",
            "10.1.0.0/16",
            "--gateway",
            "10.2.0.1",
            "n",
        ]) else {
            panic!("not create")
        };
        assert_eq!(
            create_body("n", &a),
            Err("no matching subnet for gateway 10.2.0.1".to_string())
        );
    }

    #[test]
    fn connect_bodies() {
        let NetworkCommand::Connect(a) = network(&[
            "connect", "--alias", "a1", "--alias", "a2,a3", "--ip", "10.0.0.2", "--ip6", "fd00::2",
            "n", "c",
        ]) else {
            panic!("not connect")
        };
        assert_eq!(
            connect_body("c", &a),
            json!({"Container": "c", "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.0.0.2", "IPv6Address": "fd00::2"},
                "Aliases": ["a1", "a2", "a3"], "DriverOpts": {}
            }})
        );
        let NetworkCommand::Connect(a) = network(&["connect", "n", "c"]) else {
            panic!("not connect")
        };
        assert_eq!(
            connect_body("c", &a),
            json!({"Container": "c", "EndpointConfig": {"IPAMConfig": {}, "Aliases": [], "DriverOpts": {}}})
        );
    }

    #[test]
    fn aliases_and_flags() {
        assert!(matches!(network(&["list", "-q"]), NetworkCommand::Ls(l) if l.quiet));
        assert!(
            matches!(network(&["remove", "-f", "a", "b"]), NetworkCommand::Rm(r) if r.force && r.networks == ["a", "b"])
        );
        assert!(
            matches!(network(&["disconnect", "-f", "n", "c"]), NetworkCommand::Disconnect(d) if d.force)
        );
        assert!(
            matches!(network(&["inspect", "-v", "n"]), NetworkCommand::Inspect(i) if i.verbose)
        );
        assert!(
            matches!(network(&["prune", "-f", "--filter", "until=1h"]), NetworkCommand::Prune(p) if p.force && p.filter.len() == 1)
        );
    }
}
