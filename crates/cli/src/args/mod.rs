//! Command-line definitions (clap), kept apart from the command code.
//! Flags follow docker's names, shorthands and defaults; positional argument
//! counts are checked by the commands so they can word errors as docker does.

pub mod build;
pub mod container;
pub mod image;
pub mod network;
pub mod registry;
pub mod system;
pub mod volume;

use clap::{Parser, Subcommand};

pub use build::*;
pub use container::*;
pub use image::*;
pub use network::*;
pub use registry::*;
pub use system::*;
pub use volume::*;

/// The default daemon address.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    override_usage = "berth [OPTIONS] COMMAND",
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_value_name = "COMMAND"
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub host: Option<String>,

    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level", value_name = "string")]
    pub log_level: Option<String>,

    /// Location of client config files
    #[arg(long, value_name = "string", hide = true)]
    pub config: Option<String>,

    /// Name of the context to use to connect to the daemon
    #[arg(short = 'c', long, value_name = "string", hide = true)]
    pub context: Option<String>,

    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    #[command(
        override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Run(RunArgs),
    /// Create a new container
    #[command(
        override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Create(CreateArgs),
    /// Start one or more stopped containers
    #[command(override_usage = "berth start [OPTIONS] CONTAINER [CONTAINER...]")]
    Start(StartArgs),
    /// Stop one or more running containers
    #[command(override_usage = "berth stop [OPTIONS] CONTAINER [CONTAINER...]")]
    Stop(StopArgs),
    /// Restart one or more containers
    #[command(override_usage = "berth restart [OPTIONS] CONTAINER [CONTAINER...]")]
    Restart(StopArgs),
    /// Kill one or more running containers
    #[command(override_usage = "berth kill [OPTIONS] CONTAINER [CONTAINER...]")]
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    #[command(override_usage = "berth wait CONTAINER [CONTAINER...]")]
    Wait(WaitArgs),
    /// Execute a command in a running container
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    #[command(override_usage = "berth attach [OPTIONS] CONTAINER")]
    Attach(AttachArgs),
    /// Rename a container
    #[command(override_usage = "berth rename CONTAINER NEW_NAME")]
    Rename(RenameArgs),
    /// Display the running processes of a container
    #[command(override_usage = "berth top CONTAINER [ps OPTIONS]")]
    Top(TopArgs),
    /// Get real time events from the server
    #[command(override_usage = "berth events [OPTIONS]")]
    Events(EventsArgs),
    /// Update configuration of one or more containers
    #[command(override_usage = "berth update [OPTIONS] CONTAINER [CONTAINER...]")]
    Update(UpdateArgs),
    /// Copy files/folders between a container and the local filesystem
    #[command(
        override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
    )]
    Cp(CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    #[command(override_usage = "berth stats [OPTIONS] [CONTAINER...]")]
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    #[command(override_usage = "berth pause CONTAINER [CONTAINER...]")]
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    #[command(override_usage = "berth unpause CONTAINER [CONTAINER...]")]
    Unpause(PauseArgs),
    /// Inspect changes to files or directories on a container's filesystem
    #[command(override_usage = "berth diff CONTAINER")]
    Diff(DiffArgs),
    /// List port mappings or a specific mapping for the container
    #[command(override_usage = "berth port CONTAINER [PRIVATE_PORT[/PROTO]]")]
    Port(PortArgs),
    /// Remove one or more containers
    #[command(override_usage = "berth rm [OPTIONS] CONTAINER [CONTAINER...]")]
    Rm(RmArgs),
    /// List containers
    #[command(override_usage = "berth ps [OPTIONS]")]
    Ps(PsArgs),
    /// Fetch the logs of a container
    #[command(override_usage = "berth logs [OPTIONS] CONTAINER")]
    Logs(LogsArgs),
    /// Return low-level information on objects
    #[command(override_usage = "berth inspect [OPTIONS] NAME|ID [NAME|ID...]")]
    Inspect(InspectArgs),
    /// List images
    #[command(override_usage = "berth images [OPTIONS] [REPOSITORY[:TAG]]")]
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(override_usage = "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
    Tag(TagArgs),
    /// Remove one or more images
    #[command(override_usage = "berth rmi [OPTIONS] IMAGE [IMAGE...]")]
    Rmi(RmiArgs),
    /// Show the history of an image
    #[command(override_usage = "berth history [OPTIONS] IMAGE")]
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    #[command(override_usage = "berth import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
    Import(ImportArgs),
    /// Download an image from a registry
    #[command(override_usage = "berth pull [OPTIONS] NAME[:TAG|@DIGEST]")]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(override_usage = "berth push [OPTIONS] NAME[:TAG]")]
    Push(PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    #[command(override_usage = "berth save [OPTIONS] IMAGE [IMAGE...]")]
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    #[command(override_usage = "berth load [OPTIONS]")]
    Load(LoadArgs),
    /// Export a container's filesystem as a tar archive
    #[command(override_usage = "berth export [OPTIONS] CONTAINER")]
    Export(ExportArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(CommitArgs),
    /// Build an image from a Dockerfile
    #[command(override_usage = "berth build [OPTIONS] PATH | URL | -")]
    Build(BuildArgs),
    /// Authenticate to a registry
    #[command(override_usage = "berth login [OPTIONS] [SERVER]")]
    Login(LoginArgs),
    /// Log out from a registry
    #[command(override_usage = "berth logout [SERVER]")]
    Logout(LogoutArgs),
    /// Search Docker Hub for images
    #[command(override_usage = "berth search [OPTIONS] TERM")]
    Search(SearchArgs),
    /// Show the berth version information
    #[command(override_usage = "berth version [OPTIONS]")]
    Version(VersionArgs),
    /// Display system-wide information
    #[command(override_usage = "berth info [OPTIONS]")]
    Info(InfoArgs),
    /// Manage containers
    #[command(
        override_usage = "berth container COMMAND",
        subcommand_value_name = "COMMAND"
    )]
    Container {
        #[command(subcommand)]
        command: Option<ContainerCommand>,
    },
    /// Manage images
    #[command(
        override_usage = "berth image COMMAND",
        subcommand_value_name = "COMMAND"
    )]
    Image {
        #[command(subcommand)]
        command: Option<ImageCommand>,
    },
    /// Manage networks
    #[command(
        override_usage = "berth network COMMAND",
        subcommand_value_name = "COMMAND"
    )]
    Network {
        #[command(subcommand)]
        command: Option<NetworkCommand>,
    },
    /// Manage volumes
    #[command(
        override_usage = "berth volume COMMAND",
        subcommand_value_name = "COMMAND"
    )]
    Volume {
        #[command(subcommand)]
        command: Option<VolumeCommand>,
    },
    /// Manage berth
    #[command(
        override_usage = "berth system COMMAND",
        subcommand_value_name = "COMMAND"
    )]
    System {
        #[command(subcommand)]
        command: Option<SystemCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"], override_usage = "berth container ls [OPTIONS]")]
    Ls(PsArgs),
    /// Create and run a new container from an image
    #[command(
        override_usage = "berth container run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Run(RunArgs),
    /// Create a new container
    #[command(
        override_usage = "berth container create [OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Create(CreateArgs),
    /// Start one or more stopped containers
    #[command(override_usage = "berth container start [OPTIONS] CONTAINER [CONTAINER...]")]
    Start(StartArgs),
    /// Stop one or more running containers
    #[command(override_usage = "berth container stop [OPTIONS] CONTAINER [CONTAINER...]")]
    Stop(StopArgs),
    /// Restart one or more containers
    #[command(override_usage = "berth container restart [OPTIONS] CONTAINER [CONTAINER...]")]
    Restart(StopArgs),
    /// Kill one or more running containers
    #[command(override_usage = "berth container kill [OPTIONS] CONTAINER [CONTAINER...]")]
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    #[command(override_usage = "berth container wait CONTAINER [CONTAINER...]")]
    Wait(WaitArgs),
    /// Execute a command in a running container
    #[command(override_usage = "berth container exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    #[command(override_usage = "berth container attach [OPTIONS] CONTAINER")]
    Attach(AttachArgs),
    /// Rename a container
    #[command(override_usage = "berth container rename CONTAINER NEW_NAME")]
    Rename(RenameArgs),
    /// Display the running processes of a container
    #[command(override_usage = "berth container top CONTAINER [ps OPTIONS]")]
    Top(TopArgs),
    /// Copy files/folders between a container and the local filesystem
    #[command(override_usage = "berth container cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-")]
    Cp(CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    #[command(override_usage = "berth container stats [OPTIONS] [CONTAINER...]")]
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    #[command(override_usage = "berth container pause CONTAINER [CONTAINER...]")]
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    #[command(override_usage = "berth container unpause CONTAINER [CONTAINER...]")]
    Unpause(PauseArgs),
    /// Inspect changes to files or directories on a container's filesystem
    #[command(override_usage = "berth container diff CONTAINER")]
    Diff(DiffArgs),
    /// List port mappings or a specific mapping for the container
    #[command(override_usage = "berth container port CONTAINER [PRIVATE_PORT[/PROTO]]")]
    Port(PortArgs),
    /// Remove all stopped containers
    #[command(override_usage = "berth container prune [OPTIONS]")]
    Prune(PruneArgs),
    /// Remove one or more containers
    #[command(
        visible_alias = "remove",
        override_usage = "berth container rm [OPTIONS] CONTAINER [CONTAINER...]"
    )]
    Rm(RmArgs),
    /// Fetch the logs of a container
    #[command(override_usage = "berth container logs [OPTIONS] CONTAINER")]
    Logs(LogsArgs),
    /// Display detailed information on one or more containers
    #[command(override_usage = "berth container inspect [OPTIONS] CONTAINER [CONTAINER...]")]
    Inspect(ContainerInspectArgs),
    /// Export a container's filesystem as a tar archive
    #[command(override_usage = "berth container export [OPTIONS] CONTAINER")]
    Export(ExportArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "berth container commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(CommitArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile
    #[command(override_usage = "berth image build [OPTIONS] PATH | URL | -")]
    Build(Box<BuildArgs>),
    /// List images
    #[command(
        visible_alias = "list",
        override_usage = "berth image ls [OPTIONS] [REPOSITORY[:TAG]]"
    )]
    Ls(ImagesArgs),
    /// Remove unused images
    #[command(override_usage = "berth image prune [OPTIONS]")]
    Prune(ImagePruneArgs),
    /// Remove one or more images
    #[command(
        visible_alias = "remove",
        alias = "rmi",
        override_usage = "berth image rm [OPTIONS] IMAGE [IMAGE...]"
    )]
    Rm(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(override_usage = "berth image tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
    Tag(TagArgs),
    /// Show the history of an image
    #[command(override_usage = "berth image history [OPTIONS] IMAGE")]
    History(HistoryArgs),
    /// Display detailed information on one or more images
    #[command(override_usage = "berth image inspect [OPTIONS] IMAGE [IMAGE...]")]
    Inspect(ImageInspectArgs),
    /// Import the contents from a tarball to create a filesystem image
    #[command(override_usage = "berth image import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
    Import(ImportArgs),
    /// Download an image from a registry
    #[command(override_usage = "berth image pull [OPTIONS] NAME[:TAG|@DIGEST]")]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(override_usage = "berth image push [OPTIONS] NAME[:TAG]")]
    Push(PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    #[command(override_usage = "berth image save [OPTIONS] IMAGE [IMAGE...]")]
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    #[command(override_usage = "berth image load [OPTIONS]")]
    Load(LoadArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Display system-wide information
    #[command(override_usage = "berth system info [OPTIONS]")]
    Info(InfoArgs),
}

// ------------------------------------------------------------ value parsers

/// Go's `strconv.ParseBool`, for `--flag=false` forms.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.ParseInt`, worded like pflag's errors.
pub fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("strconv.ParseInt: parsing {s:?}: value out of range")
        }
        _ => format!("strconv.ParseInt: parsing {s:?}: invalid syntax"),
    })
}

/// `key=value` filters (`--filter status=running`).
pub fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_lowercase(), v.trim().to_string())),
        None => Err("bad format of filter (expected name=value)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_stop_at_image() {
        let cli = parse(&[
            "-H",
            "unix:///x.sock",
            "run",
            "--rm",
            "-it",
            "-e",
            "A=1",
            "--name",
            "n",
            "busybox",
            "ls",
            "-la",
            "--rm",
        ])
        .expect("parses");
        assert_eq!(cli.host.as_deref(), Some("unix:///x.sock"));
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert!(run.rm && run.container.interactive && run.container.tty);
        assert_eq!(run.container.env, ["A=1"]);
        assert_eq!(run.name.as_deref(), Some("n"));
        assert_eq!(run.args, ["busybox", "ls", "-la", "--rm"]);
    }

    #[test]
    fn bool_flags_take_explicit_values() {
        let cli = parse(&[
            "run",
            "--sig-proxy=false",
            "--init",
            "--rm=true",
            "-d",
            "img",
        ])
        .expect("parses");
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert!(!run.sig_proxy);
        assert_eq!(run.container.init, Some(true));
        assert!(run.rm && run.detach);
        let cli = parse(&["run", "--init=false", "img"]).expect("parses");
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.container.init, Some(false));
        assert!(run.sig_proxy);
    }

    #[test]
    fn run_hostname_short_flag_is_not_help() {
        let cli = parse(&["run", "-h", "box", "img"]).expect("parses");
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.container.hostname.as_deref(), Some("box"));
    }

    #[test]
    fn attach_values_are_validated() {
        let cli = parse(&["run", "-a", "STDOUT", "-a", "stderr", "img"]).expect("parses");
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.container.attach, ["stdout", "stderr"]);
        let err = parse(&["run", "-a", "foo", "img"]).expect_err("invalid stream");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let err = parse(&["ps", "--bogus"]).expect_err("unknown flag");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let err = parse(&["run", "--bogus", "img"]).expect_err("unknown flag before the image");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let cli = parse(&["run", "img", "--bogus", "-x"])
            .expect("flags after the image belong to the command");
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.args, ["img", "--bogus", "-x"]);
    }

    #[test]
    fn ps_flags() {
        let cli = parse(&[
            "container",
            "list",
            "-aq",
            "-n",
            "3",
            "--filter",
            "status=running",
            "-f",
            "name=web",
            "--format",
            "{{.ID}}",
        ])
        .expect("parses");
        let Some(Command::Container {
            command: Some(ContainerCommand::Ls(ps)),
        }) = cli.command
        else {
            panic!("not container ls")
        };
        assert!(ps.all && ps.quiet);
        assert_eq!(ps.last, 3);
        assert_eq!(
            ps.filter,
            [
                ("status".to_string(), "running".to_string()),
                ("name".to_string(), "web".to_string())
            ]
        );
        assert_eq!(ps.format.as_deref(), Some("{{.ID}}"));
        let err = parse(&["ps", "-f", "bad"]).expect_err("bad filter");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn stop_timeout_and_signal() {
        let cli = parse(&["stop", "-t", "3", "-s", "SIGINT", "a", "b"]).expect("parses");
        let Some(Command::Stop(s)) = cli.command else {
            panic!("not stop")
        };
        assert_eq!((s.timeout, s.signal.as_deref()), (Some(3), Some("SIGINT")));
        assert_eq!(s.containers, ["a", "b"]);
        assert!(parse(&["stop", "-t", "x", "a"]).is_err());
    }

    #[test]
    fn logs_and_history_flags() {
        let cli =
            parse(&["logs", "-f", "-t", "--tail", "5", "--since", "10m", "c"]).expect("parses");
        let Some(Command::Logs(l)) = cli.command else {
            panic!("not logs")
        };
        assert!(l.follow && l.timestamps);
        assert_eq!((l.tail.as_str(), l.since.as_deref()), ("5", Some("10m")));

        let cli = parse(&["history", "-H=false", "--no-trunc", "img"]).expect("parses");
        let Some(Command::History(h)) = cli.command else {
            panic!("not history")
        };
        assert!(!h.human && h.no_trunc);
    }

    #[test]
    fn image_aliases() {
        assert!(matches!(
            parse(&["image", "rm", "x"]).map(|c| c.command),
            Ok(Some(Command::Image {
                command: Some(ImageCommand::Rm(_))
            }))
        ));
        assert!(matches!(
            parse(&["image", "list"]).map(|c| c.command),
            Ok(Some(Command::Image {
                command: Some(ImageCommand::Ls(_))
            }))
        ));
        assert!(matches!(
            parse(&["container", "remove", "x"]).map(|c| c.command),
            Ok(Some(Command::Container {
                command: Some(ContainerCommand::Rm(_))
            }))
        ));
        let cli =
            parse(&["import", "-c", "CMD [\"sh\"]", "-m", "msg", "-", "repo:tag"]).expect("parses");
        let Some(Command::Import(i)) = cli.command else {
            panic!("not import")
        };
        assert_eq!(i.change, ["CMD [\"sh\"]"]);
        assert_eq!(i.args, ["-", "repo:tag"]);
    }

    #[test]
    fn shipping_commands_parse() {
        let cli = parse(&["push", "-aq", "me/app"]).expect("parses");
        let Some(Command::Push(p)) = cli.command else {
            panic!("not push")
        };
        assert!(p.all_tags && p.quiet);
        assert_eq!(p.names, ["me/app"]);
        assert!(matches!(
            parse(&["image", "push", "x"]).map(|c| c.command),
            Ok(Some(Command::Image {
                command: Some(ImageCommand::Push(_))
            }))
        ));

        let cli = parse(&[
            "save",
            "-o",
            "out.tar",
            "--platform",
            "linux/arm64",
            "a",
            "b",
        ])
        .expect("parses");
        let Some(Command::Save(sv)) = cli.command else {
            panic!("not save")
        };
        assert_eq!(sv.output.as_deref(), Some("out.tar"));
        assert_eq!(sv.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(sv.images, ["a", "b"]);

        let cli = parse(&["image", "load", "-qi", "in.tar"]).expect("parses");
        let Some(Command::Image {
            command: Some(ImageCommand::Load(l)),
        }) = cli.command
        else {
            panic!("not image load")
        };
        assert!(l.quiet);
        assert_eq!(l.input.as_deref(), Some("in.tar"));

        let cli = parse(&["container", "export", "-o", "c.tar", "web"]).expect("parses");
        let Some(Command::Container {
            command: Some(ContainerCommand::Export(e)),
        }) = cli.command
        else {
            panic!("not container export")
        };
        assert_eq!(
            (e.output.as_deref(), e.containers.as_slice()),
            (Some("c.tar"), &["web".to_string()][..])
        );

        let cli = parse(&["login", "-u", "me", "--password-stdin", "r.example"]).expect("parses");
        let Some(Command::Login(l)) = cli.command else {
            panic!("not login")
        };
        assert_eq!(l.username.as_deref(), Some("me"));
        assert_eq!(
            (l.password.as_deref(), l.password_stdin),
            (None, Some(true))
        );
        assert_eq!(l.server, ["r.example"]);
        let cli = parse(&["login"]).expect("parses");
        let Some(Command::Login(l)) = cli.command else {
            panic!("not login")
        };
        assert_eq!(l.password_stdin, None, "absent, not false");

        let cli = parse(&[
            "search",
            "--limit",
            "3",
            "-f",
            "stars=3",
            "--no-trunc",
            "redis",
        ])
        .expect("parses");
        let Some(Command::Search(sr)) = cli.command else {
            panic!("not search")
        };
        assert_eq!((sr.limit, sr.no_trunc), (3, true));
        assert_eq!(sr.filter, [("stars".to_string(), "3".to_string())]);
        let err = parse(&["search", "--limit", "many", "redis"]).expect_err("bad limit");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert_eq!(parse_int("-3"), Ok(-3));
        assert_eq!(
            parse_int("x"),
            Err("strconv.ParseInt: parsing \"x\": invalid syntax".to_string())
        );
        assert_eq!(
            parse_filter(" Status = running "),
            Ok(("status".into(), "running".into()))
        );
    }
}
