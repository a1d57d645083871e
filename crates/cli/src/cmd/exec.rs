//! `exec` and `attach`: joining a running container's processes from the terminal.

use std::io::IsTerminal;

use serde_json::{json, Value as Json};

use super::{seg, term};
use crate::args::{AttachArgs, ExecArgs};
use crate::client::Query;
use crate::error::CliError;
use crate::{opts, Ctx};

pub async fn exec(ctx: &mut Ctx, a: ExecArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 2)?;
    let container = &a.args[0];
    let lookup = |k: &str| std::env::var(k).ok();
    let env = opts::env_list(&a.env_file, &a.env, &lookup).map_err(CliError::new)?;
    let client = ctx.client().await?;
    if a.tty && a.interactive && !a.detach && !std::io::stdin().is_terminal() {
        return Err(CliError::new("the input device is not a TTY"));
    }
    let attach = !a.detach;
    let mut config = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": attach && a.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": &a.args[1..],
    });
    let size = if a.tty { term::size() } else { None };
    if let Some((h, w)) = size {
        config["ConsoleSize"] = json!([h, w]);
    }
    let created: Json = serde_json::from_slice(
        &client
            .post(
                &format!("/containers/{}/exec", seg(container)),
                Some(&config),
            )
            .await?,
    )
    .map_err(|e| CliError::new(format!("error decoding response from daemon: {e}")))?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| CliError::new("the daemon returned no exec ID"))?
        .to_string();
    let start_path = format!("/exec/{}/start", seg(&id));
    if a.detach {
        client
            .post(&start_path, Some(&json!({"Detach": true, "Tty": a.tty})))
            .await?;
        return Ok(());
    }
    let mut start = json!({"Detach": false, "Tty": a.tty});
    if let Some((h, w)) = size {
        start["ConsoleSize"] = json!([h, w]);
    }
    let stream = client.hijack_with(&start_path, Some(&start)).await?;
    let session = term::TtySession::start(
        &client,
        format!("/exec/{}/resize", seg(&id)),
        a.tty,
        a.interactive,
    );
    let relayed = term::relay(stream, a.tty, a.interactive).await;
    drop(session);
    relayed?;
    let info: Json = client.get_json(&format!("/exec/{}/json", seg(&id))).await?;
    // Still running means the client detached: that is a success, as with docker.
    match info["ExitCode"].as_i64() {
        Some(code) if code != 0 && info["Running"] != json!(true) => {
            Err(CliError::status(i32::try_from(code).unwrap_or(1)))
        }
        _ => Ok(()),
    }
}

pub async fn attach(ctx: &mut Ctx, a: AttachArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.containers.len(), 1)?;
    let client = ctx.client().await?;
    let info: Json = client
        .get_json(&format!("/containers/{}/json", seg(&a.containers[0])))
        .await?;
    let id = info["Id"].as_str().unwrap_or(&a.containers[0]).to_string();
    if info["State"]["Paused"] == json!(true) {
        return Err(CliError::new(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if info["State"]["Running"] != json!(true) {
        return Err(CliError::new(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::new("the input device is not a TTY"));
    }
    let path = Query::new()
        .set("stream", "1")
        .set_if(stdin, "stdin", "1")
        .set("stdout", "1")
        .set("stderr", "1")
        .set_if(
            a.detach_keys.is_some(),
            "detachKeys",
            a.detach_keys.as_deref().unwrap_or(""),
        )
        .to_path(&format!("/containers/{}/attach", seg(&id)));
    let stream = client.hijack(&path).await?;
    let signals =
        (a.sig_proxy && !tty).then(|| super::run::SignalProxy::start(client.clone(), id.clone()));
    let session = term::TtySession::start(
        &client,
        format!("/containers/{}/resize", seg(&id)),
        tty,
        stdin,
    );
    let relayed = term::relay(stream, tty, stdin).await;
    drop(session);
    drop(signals);
    relayed?;
    // The stream ends when the container exits or the client detaches; only an exit has a
    // status to pass on.
    let after: Json = client
        .get_json(&format!("/containers/{}/json", seg(&id)))
        .await?;
    if after["State"]["Running"] == json!(true) {
        // What the docker CLI says (and how it exits) when the user detached.
        return Err(CliError::new("read escape sequence"));
    }
    match after["State"]["ExitCode"].as_i64() {
        Some(code) if code != 0 => Err(CliError::status(i32::try_from(code).unwrap_or(1))),
        _ => Ok(()),
    }
}
