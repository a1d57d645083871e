//! The `berth` command line: a Docker Engine API client that behaves like the
//! docker CLI (same commands, flags, output and exit codes), against berth's
//! daemon or a real dockerd.
//!
//! Code map: `args` holds the clap definitions, `cmd` the command code (one
//! file per group), `client` the HTTP client, `config` the docker-compatible
//! `config.json` with its registry credentials, `opts` the `run`/`create`
//! request body with `netopts` for its port, DNS and address flags,
//! `formatter`/`template`/`tabwriter`/`units`/`timefmt`/`jsonfmt` reproduce
//! docker's output.

mod args;
mod client;
mod cmd;
mod config;
mod error;
mod formatter;
mod jsonfmt;
mod netopts;
mod opts;
mod output;
mod stdcopy;
mod tabwriter;
mod template;
mod timefmt;
mod units;

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, DEFAULT_HOST};
use crate::client::{Client, Host};
use crate::error::CliError;

/// Runs the CLI with the given argv (argv[0] included); returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    run_main(args)
}

/// Runs the CLI in this thread with `stdin` as its standard input, and
/// returns the exit code with what it printed on stdout and stderr. For
/// tests; `terminal` makes stdin and stdout claim to be terminals.
#[doc(hidden)]
pub fn main_captured(args: Vec<OsString>, stdin: &[u8], terminal: bool) -> (i32, Vec<u8>, Vec<u8>) {
    let (code, out) = output::capture(stdin, terminal, || run_main(args));
    (code, out.stdout, out.stderr)
}

fn run_main(args: Vec<OsString>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::errln(&format!("failed to start the runtime: {e}"));
            return 1;
        }
    };
    let code = runtime.block_on(run(args));
    // Nothing outlives the command: a blocked stdin reader must not hold us up.
    runtime.shutdown_background();
    code
}

async fn run(args: Vec<OsString>) -> i32 {
    let path = command_path(&args);
    let matches = match cli_command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return report_clap_error(&e, &path, &args),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return report_clap_error(&e, &path, &args),
    };
    if cli.version {
        output::outln(&format!("berth version {}", env!("CARGO_PKG_VERSION")));
        return 0;
    }
    let host_str = cli
        .host
        .clone()
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let host = match Host::parse(&host_str) {
        Ok(h) => h,
        Err(e) => {
            output::errln(&e);
            return 1;
        }
    };
    let mut ctx = Ctx {
        host,
        client: None,
        path,
        config_dir: config::config_dir(cli.config.as_deref()),
        config: None,
    };
    match cmd::dispatch(&mut ctx, cli).await {
        Ok(()) => 0,
        Err(e) => {
            if !e.message.is_empty() {
                output::errln(&e.message);
            }
            e.code
        }
    }
}

/// The clap command tree, with help output trimmed toward docker's: the
/// positional operands are in the usage line already, and `--flag[=bool]`
/// switches need no "[default: false]".
pub(crate) fn cli_command() -> clap::Command {
    fn polish(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|a| {
            let optional_value = a
                .get_num_args()
                .is_some_and(|r| r.min_values() == 0 && r.max_values() == 1);
            if a.is_positional() {
                a.hide(true)
            } else if optional_value {
                a.hide_default_value(true)
            } else {
                a
            }
        })
        .mut_subcommands(polish)
    }
    polish(Cli::command())
}

/// What every command gets: the daemon connection (made on first use) and
/// the command's path for docker-style usage errors.
pub(crate) struct Ctx {
    host: Host,
    client: Option<Client>,
    path: CommandPath,
    config_dir: std::path::PathBuf,
    config: Option<config::ConfigFile>,
}

impl Ctx {
    /// The API client, connected and version-negotiated on first use.
    pub async fn client(&mut self) -> Result<Client, client::ApiError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut c = Client::new(self.host.clone());
        c.negotiate().await?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// The client configuration (credentials), read on first use. A file
    /// that cannot be read is reported and treated as empty, as docker does.
    pub fn config(&mut self) -> &mut config::ConfigFile {
        let dir = &self.config_dir;
        self.config.get_or_insert_with(|| {
            let cfg = config::ConfigFile::load(dir);
            if let Some(e) = cfg.load_error() {
                output::errln(&format!("WARNING: Error {e}"));
            }
            cfg
        })
    }

    /// The `X-Registry-Auth` value for pulling or pushing `image`.
    pub fn registry_auth(&mut self, image: &str) -> Result<String, CliError> {
        self.config()
            .registry_auth_for_image(image)
            .map_err(CliError::new)
    }

    /// A client that has not talked to the daemon yet (for `version`).
    pub fn unnegotiated_client(&self) -> Client {
        Client::new(self.host.clone())
    }

    fn usage_error(&self, what: &str, verb: &str) -> CliError {
        CliError::new(format!(
            "berth: '{}' {what}\n\nUsage:  {}\n\n{verb} '{} --help' for more information",
            self.path.full(),
            self.path.usage,
            self.path.full()
        ))
    }

    /// cobra's `RequiresMinArgs`.
    pub fn require_min_args(&self, got: usize, min: usize) -> Result<(), CliError> {
        if got >= min {
            return Ok(());
        }
        Err(self.usage_error(
            &format!("requires at least {min} {}", plural("argument", min)),
            "See",
        ))
    }

    /// cobra's `ExactArgs`.
    pub fn require_exact_args(&self, got: usize, n: usize) -> Result<(), CliError> {
        if got == n {
            return Ok(());
        }
        Err(self.usage_error(&format!("requires {n} {}", plural("argument", n)), "Run"))
    }

    /// cobra's `RequiresMaxArgs`.
    pub fn require_max_args(&self, got: usize, max: usize) -> Result<(), CliError> {
        if got <= max {
            return Ok(());
        }
        Err(self.usage_error(
            &format!("requires at most {max} {}", plural("argument", max)),
            "Run",
        ))
    }

    /// cobra's `RequiresRangeArgs`.
    pub fn require_range_args(&self, got: usize, min: usize, max: usize) -> Result<(), CliError> {
        if (min..=max).contains(&got) {
            return Ok(());
        }
        Err(self.usage_error(
            &format!(
                "requires at least {min} and at most {max} {}",
                plural("argument", max)
            ),
            "Run",
        ))
    }

    /// cobra's `NoArgs`.
    pub fn require_no_args(&self, got: usize) -> Result<(), CliError> {
        if got == 0 {
            return Ok(());
        }
        Err(self.usage_error("accepts no arguments", "Run"))
    }

    /// docker's `withHelp`: "berth: <err>\n\nRun 'berth run --help' ...".
    pub fn with_help(&self, message: &str, code: i32) -> CliError {
        CliError::with_code(
            format!(
                "berth: {message}\n\nRun '{} --help' for more information",
                self.path.full()
            ),
            code,
        )
    }
}

fn plural(word: &str, n: usize) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// The canonical names of the command being run ("container ls") and its usage line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CommandPath {
    names: Vec<String>,
    usage: String,
}

impl CommandPath {
    /// "berth container ls"
    fn full(&self) -> String {
        std::iter::once("berth")
            .chain(self.names.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Finds which (sub)command argv names, resolving aliases, without parsing
/// flags: clap's errors do not say in which command they happened.
fn command_path(args: &[OsString]) -> CommandPath {
    let mut cmd = cli_command();
    let mut names = Vec::new();
    let root_value_flags = [
        "-H",
        "--host",
        "-l",
        "--log-level",
        "--config",
        "-c",
        "--context",
    ];
    let mut iter = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let mut at_root = true;
    while let Some(a) = iter.next() {
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            if at_root && root_value_flags.contains(&a.as_str()) {
                iter.next();
            }
            continue;
        }
        let Some(sub) = cmd.find_subcommand(&a).cloned() else {
            break;
        };
        names.push(sub.get_name().to_string());
        at_root = false;
        let has_children = sub.has_subcommands();
        cmd = sub;
        if !has_children {
            break;
        }
    }
    let usage = cmd
        .get_overridden_usage()
        .map(|u| u.to_string())
        .unwrap_or_else(|| "berth [OPTIONS] COMMAND".to_string());
    CommandPath { names, usage }
}

/// Prints a clap parse failure the way docker (cobra/pflag) words it and
/// returns the exit status: 125 for flag errors, 1 for unknown commands.
fn report_clap_error(err: &clap::Error, path: &CommandPath, args: &[OsString]) -> i32 {
    let context_str = |kind: ContextKind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let usage_tail = format!(
        "\n\nUsage:  {}\n\nRun '{} --help' for more information",
        path.usage,
        path.full()
    );
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            output::out(&err.render().to_string());
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            output::out(&err.render().to_string());
            0
        }
        ErrorKind::InvalidSubcommand => {
            let sub = context_str(ContextKind::InvalidSubcommand).unwrap_or_default();
            let mut msg = format!("berth: unknown command: {} {sub}", path.full());
            // A command group's usage line is just its path in docker.
            if !path.names.is_empty() {
                msg.push_str(&format!("\n\nUsage:  {}", path.full()));
            }
            msg.push_str(&format!(
                "\n\nRun '{} --help' for more information",
                path.full()
            ));
            output::errln(&msg);
            1
        }
        ErrorKind::UnknownArgument => {
            let arg = context_str(ContextKind::InvalidArg).unwrap_or_default();
            let flag = arg.split(['=', ' ']).next().unwrap_or(&arg).to_string();
            let msg = if flag.starts_with("--") || flag.len() <= 1 {
                format!("unknown flag: {flag}")
            } else {
                let short = flag.trim_start_matches('-').chars().next().unwrap_or('-');
                format!("unknown shorthand flag: '{short}' in {flag}")
            };
            output::errln(&format!("{msg}{usage_tail}"));
            125
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::NoEquals => {
            let arg = context_str(ContextKind::InvalidArg).unwrap_or_default();
            let flag = flag_description(&arg, path);
            let value = context_str(ContextKind::InvalidValue).unwrap_or_default();
            let msg = if value.is_empty() && err.kind() == ErrorKind::InvalidValue {
                format!("flag needs an argument: {}", flag_as_typed(&flag, args))
            } else {
                let reason = std::error::Error::source(err)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "invalid value".to_string());
                format!("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")
            };
            output::errln(&format!("{msg}{usage_tail}"));
            125
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            output::errln(&format!("{first}{usage_tail}"));
            125
        }
    }
}

/// "-a, --attach" from clap's "--attach <list>" or "-a <list>", looked up
/// in the command that failed.
fn flag_description(arg: &str, path: &CommandPath) -> String {
    let spec = arg
        .split([' ', '<'])
        .next()
        .unwrap_or(arg)
        .trim_end_matches('=');
    let mut cmd = cli_command();
    for name in &path.names {
        match cmd.find_subcommand(name).cloned() {
            Some(sub) => cmd = sub,
            None => break,
        }
    }
    let found = cmd
        .get_arguments()
        .find(|a| {
            a.get_long().is_some_and(|l| spec == format!("--{l}"))
                || a.get_short().is_some_and(|s| spec == format!("-{s}"))
        })
        .map(|a| (a.get_short(), a.get_long().map(str::to_string)));
    match found {
        Some((Some(s), Some(l))) => format!("-{s}, --{l}"),
        Some((None, Some(l))) => format!("--{l}"),
        _ => spec.to_string(),
    }
}

/// pflag names a flag missing its value as the user typed it: "--format",
/// or "'f' in -f" for a shorthand. `flag` is "-f, --format" or "--format".
fn flag_as_typed(flag: &str, args: &[OsString]) -> String {
    let (short, long) = match flag.split_once(", ") {
        Some((s, l)) => (s.trim_start_matches('-').chars().next(), l),
        None => (None, flag),
    };
    for a in args.iter().rev().map(|a| a.to_string_lossy()) {
        if a == long {
            return long.to_string();
        }
        if let Some(c) = short {
            if !a.starts_with("--") && a.starts_with('-') && a.ends_with(c) {
                return format!("'{c}' in {a}");
            }
        }
    }
    long.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(args: &[&str]) -> CommandPath {
        let argv: Vec<OsString> = std::iter::once("berth")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        command_path(&argv)
    }

    #[test]
    fn finds_command_paths() {
        let p = path(&["-H", "unix:///x", "container", "ps", "-a"]);
        assert_eq!(p.full(), "berth container ls");
        assert_eq!(p.usage, "berth container ls [OPTIONS]");
        let p = path(&["run", "--rm", "busybox", "ps"]);
        assert_eq!(p.full(), "berth run");
        assert_eq!(p.usage, "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]");
        assert_eq!(path(&["image", "nope"]).full(), "berth image");
        assert_eq!(path(&["nope"]).full(), "berth");
    }

    #[test]
    fn flag_descriptions() {
        let run = path(&["run"]);
        assert_eq!(flag_description("--attach <list>", &run), "-a, --attach");
        assert_eq!(flag_description("-a <list>", &run), "-a, --attach");
        assert_eq!(flag_description("--cpus <decimal>", &run), "--cpus");
        assert_eq!(flag_description("-a", &path(&["ps"])), "-a, --all");
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            flag_as_typed("--format", &argv(&["berth", "ps", "--format"])),
            "--format"
        );
        assert_eq!(
            flag_as_typed("-n, --last", &argv(&["berth", "ps", "-an"])),
            "'n' in -an"
        );
        assert_eq!(
            flag_as_typed("-n, --last", &argv(&["berth", "ps", "--last"])),
            "--last"
        );
    }

    #[test]
    fn usage_errors() {
        let ctx = Ctx {
            host: Host::Unix("/x".into()),
            client: None,
            path: path(&["stop"]),
            config_dir: "/nonexistent".into(),
            config: None,
        };
        assert_eq!(
            ctx.require_min_args(0, 1).map_err(|e| e.message),
            Err("berth: 'berth stop' requires at least 1 argument\n\nUsage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth stop --help' for more information".to_string())
        );
        assert!(ctx.require_min_args(2, 1).is_ok());
        assert_eq!(
            ctx.with_help("boom", 125),
            CliError::with_code(
                "berth: boom\n\nRun 'berth stop --help' for more information",
                125
            )
        );
    }
}
