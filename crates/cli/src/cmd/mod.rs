//! Command code, one file per command group. Each command validates its
//! positional arguments, talks to the daemon through [`crate::client`] and
//! prints docker's output.

mod archive;
mod build;
mod container;
mod cp;
mod exec;
mod image;
mod inspect;
mod network;
mod progress;
mod registry;
mod run;
mod stats;
mod system;
mod term;
mod volume;

use crate::args::{Cli, Command, ContainerCommand, ImageCommand, SystemCommand};
use crate::error::CliError;
use crate::Ctx;

/// Runs the parsed command line.
pub async fn dispatch(ctx: &mut Ctx, cli: Cli) -> Result<(), CliError> {
    let Some(command) = cli.command else {
        return help(&[]);
    };
    match command {
        Command::Run(a) => run::run(ctx, a).await,
        Command::Create(a) => run::create(ctx, a).await,
        Command::Start(a) => run::start(ctx, a).await,
        Command::Stop(a) => container::stop(ctx, a, false).await,
        Command::Restart(a) => container::stop(ctx, a, true).await,
        Command::Kill(a) => container::kill(ctx, a).await,
        Command::Wait(a) => container::wait(ctx, a).await,
        Command::Rm(a) => container::rm(ctx, a).await,
        Command::Ps(a) => container::ps(ctx, a).await,
        Command::Logs(a) => container::logs(ctx, a).await,
        Command::Inspect(a) => inspect::inspect(ctx, a).await,
        Command::Images(a) => image::images(ctx, a, true).await,
        Command::Tag(a) => image::tag(ctx, a).await,
        Command::Rmi(a) => image::rmi(ctx, a).await,
        Command::History(a) => image::history(ctx, a).await,
        Command::Import(a) => image::import(ctx, a).await,
        Command::Pull(a) => image::pull(ctx, a).await,
        Command::Push(a) => image::push(ctx, a).await,
        Command::Save(a) => archive::save(ctx, a).await,
        Command::Load(a) => archive::load(ctx, a).await,
        Command::Export(a) => archive::export(ctx, a).await,
        Command::Commit(a) => image::commit(ctx, a).await,
        Command::Build(a) => build::build(ctx, a).await,
        Command::Rename(a) => container::rename(ctx, a).await,
        Command::Exec(a) => exec::exec(ctx, a).await,
        Command::Attach(a) => exec::attach(ctx, a).await,
        Command::Top(a) => container::top(ctx, a).await,
        Command::Events(a) => system::events(ctx, a).await,
        Command::Update(a) => container::update(ctx, a).await,
        Command::Cp(a) => cp::cp(ctx, a).await,
        Command::Stats(a) => stats::stats(ctx, a).await,
        Command::Pause(a) => container::pause(ctx, a, true).await,
        Command::Unpause(a) => container::pause(ctx, a, false).await,
        Command::Diff(a) => container::diff(ctx, a).await,
        Command::Port(a) => container::port(ctx, a).await,
        Command::Login(a) => registry::login(ctx, a).await,
        Command::Logout(a) => registry::logout(ctx, a).await,
        Command::Search(a) => registry::search(ctx, a).await,
        Command::Version(a) => system::version(ctx, a).await,
        Command::Info(a) => system::info(ctx, a).await,
        Command::Container { command } => match command {
            None => help(&["container"]),
            Some(ContainerCommand::Ls(a)) => container::ps(ctx, a).await,
            Some(ContainerCommand::Run(a)) => run::run(ctx, a).await,
            Some(ContainerCommand::Create(a)) => run::create(ctx, a).await,
            Some(ContainerCommand::Start(a)) => run::start(ctx, a).await,
            Some(ContainerCommand::Stop(a)) => container::stop(ctx, a, false).await,
            Some(ContainerCommand::Restart(a)) => container::stop(ctx, a, true).await,
            Some(ContainerCommand::Kill(a)) => container::kill(ctx, a).await,
            Some(ContainerCommand::Wait(a)) => container::wait(ctx, a).await,
            Some(ContainerCommand::Rm(a)) => container::rm(ctx, a).await,
            Some(ContainerCommand::Logs(a)) => container::logs(ctx, a).await,
            Some(ContainerCommand::Inspect(a)) => inspect::container_inspect(ctx, a).await,
            Some(ContainerCommand::Export(a)) => archive::export(ctx, a).await,
            Some(ContainerCommand::Commit(a)) => image::commit(ctx, a).await,
            Some(ContainerCommand::Rename(a)) => container::rename(ctx, a).await,
            Some(ContainerCommand::Exec(a)) => exec::exec(ctx, a).await,
            Some(ContainerCommand::Attach(a)) => exec::attach(ctx, a).await,
            Some(ContainerCommand::Top(a)) => container::top(ctx, a).await,
            Some(ContainerCommand::Cp(a)) => cp::cp(ctx, a).await,
            Some(ContainerCommand::Stats(a)) => stats::stats(ctx, a).await,
            Some(ContainerCommand::Pause(a)) => container::pause(ctx, a, true).await,
            Some(ContainerCommand::Unpause(a)) => container::pause(ctx, a, false).await,
            Some(ContainerCommand::Diff(a)) => container::diff(ctx, a).await,
            Some(ContainerCommand::Port(a)) => container::port(ctx, a).await,
            Some(ContainerCommand::Prune(a)) => container::prune(ctx, a).await,
        },
        Command::Network { command } => match command {
            None => help(&["network"]),
            Some(c) => network::run(ctx, c).await,
        },
        Command::Volume { command } => match command {
            None => help(&["volume"]),
            Some(c) => volume::run(ctx, c).await,
        },
        Command::Image { command } => match command {
            None => help(&["image"]),
            Some(ImageCommand::Build(a)) => build::build(ctx, *a).await,
            Some(ImageCommand::Ls(a)) => image::images(ctx, a, false).await,
            Some(ImageCommand::Prune(a)) => image::prune(ctx, a).await,
            Some(ImageCommand::Rm(a)) => image::rmi(ctx, a).await,
            Some(ImageCommand::Tag(a)) => image::tag(ctx, a).await,
            Some(ImageCommand::History(a)) => image::history(ctx, a).await,
            Some(ImageCommand::Inspect(a)) => inspect::image_inspect(ctx, a).await,
            Some(ImageCommand::Import(a)) => image::import(ctx, a).await,
            Some(ImageCommand::Pull(a)) => image::pull(ctx, a).await,
            Some(ImageCommand::Push(a)) => image::push(ctx, a).await,
            Some(ImageCommand::Save(a)) => archive::save(ctx, a).await,
            Some(ImageCommand::Load(a)) => archive::load(ctx, a).await,
        },
        Command::System { command } => match command {
            None => help(&["system"]),
            Some(SystemCommand::Info(a)) => system::info(ctx, a).await,
        },
    }
}

/// Prints the help of a command group, as docker does when it is given no subcommand.
fn help(path: &[&str]) -> Result<(), CliError> {
    let mut cmd = crate::cli_command();
    for name in path {
        match cmd.find_subcommand(name).cloned() {
            Some(sub) => cmd = sub,
            None => break,
        }
    }
    crate::output::out(&cmd.render_help().to_string());
    Ok(())
}

/// Percent-encodes a container or image name for use in a URL path.
fn seg(s: &str) -> String {
    crate::client::path_escape(s)
}
