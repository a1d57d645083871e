//! Flags of `build` (docker's legacy builder, `DOCKER_BUILDKIT=0`), with docker's validators:
//! tags must be references, `--build-arg KEY` takes KEY's value from the environment, labels
//! need a name.

use clap::{ArgAction, Args};

use super::parse_bool;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,

    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list", value_parser = parse_build_arg)]
    pub build_arg: Vec<String>,

    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings", value_delimiter = ',')]
    pub cache_from: Vec<String>,

    /// Set the parent cgroup for the "RUN" instructions during build
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,

    /// Compress the build context using gzip
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub compress: bool,

    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", value_parser = super::parse_int, default_value = "0", hide_default_value = true)]
    pub cpu_period: i64,

    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", value_parser = super::parse_int, default_value = "0", hide_default_value = true)]
    pub cpu_quota: i64,

    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = super::parse_int, default_value = "0", hide_default_value = true)]
    pub cpu_shares: i64,

    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,

    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,

    /// Skip image verification (default true)
    #[arg(long = "disable-content-trust", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub disable_content_trust: bool,

    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long, value_name = "string")]
    pub file: Option<String>,

    /// Always remove intermediate containers
    #[arg(long = "force-rm", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force_rm: bool,

    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    pub iidfile: Option<String>,

    /// Container isolation technology
    #[arg(long, value_name = "string")]
    pub isolation: Option<String>,

    /// Set metadata for an image
    #[arg(long, value_name = "list", value_parser = parse_label)]
    pub label: Vec<String>,

    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_bytes)]
    pub memory: Option<i64>,

    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,

    /// Set the networking mode for the RUN instructions during build (default "default")
    #[arg(
        long,
        value_name = "string",
        default_value = "default",
        hide_default_value = true
    )]
    pub network: String,

    /// Do not use cache when building the image
    #[arg(long = "no-cache", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_cache: bool,

    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        hide_env = true
    )]
    pub platform: Option<String>,

    /// Always attempt to pull a newer version of the image
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub pull: bool,

    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,

    /// Remove intermediate containers after a successful build (default true)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub rm: bool,

    /// Security options
    #[arg(long = "security-opt", value_name = "strings", value_delimiter = ',')]
    pub security_opt: Vec<String>,

    /// Size of "/dev/shm"
    #[arg(long = "shm-size", value_name = "bytes", value_parser = parse_bytes)]
    pub shm_size: Option<i64>,

    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long, value_name = "list", value_parser = parse_tag)]
    pub tag: Vec<String>,

    /// Set the target build stage to build.
    #[arg(long, value_name = "string")]
    pub target: Option<String>,

    /// Ulimit options
    #[arg(long, value_name = "ulimit", value_parser = parse_ulimit)]
    pub ulimit: Vec<Ulimit>,

    #[arg(value_name = "PATH | URL | -")]
    pub args: Vec<String>,
}

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// docker's `validateTag`: the tag must parse as a reference; it is sent as typed.
fn parse_tag(s: &str) -> Result<String, String> {
    berth_reference::Reference::parse_normalized(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// docker's `ValidateEnv`: `KEY=value`, or `KEY` alone, which takes KEY's value from the
/// environment when it is set there (and is sent without a value otherwise).
fn parse_build_arg(s: &str) -> Result<String, String> {
    let (key, has_value) = match s.split_once('=') {
        Some((k, _)) => (k, true),
        None => (s, false),
    };
    if key.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if has_value {
        return Ok(s.to_string());
    }
    Ok(match std::env::var(key) {
        Ok(v) => format!("{key}={v}"),
        Err(_) => s.to_string(),
    })
}

/// docker's `ValidateLabel`.
fn parse_label(s: &str) -> Result<String, String> {
    let key = s.split_once('=').map_or(s, |(k, _)| k).trim();
    if key.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(s.to_string())
}

fn parse_bytes(s: &str) -> Result<i64, String> {
    crate::units::ram_in_bytes(s).map_err(|e| e.to_string())
}

/// docker's `MemSwapBytes`: a size, or -1 for unlimited.
fn parse_swap(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_bytes(s)
}

/// go-units `ParseUlimit`.
pub(crate) fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let number = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let v = number(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command, ImageCommand};

    fn parse(args: &[&str]) -> Result<BuildArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))?;
        match cli.command {
            Some(Command::Build(b)) => Ok(b),
            Some(Command::Image {
                command: Some(ImageCommand::Build(b)),
            }) => Ok(*b),
            other => panic!("not build: {other:?}"),
        }
    }

    #[test]
    fn flags_and_defaults() {
        let b = parse(&["build", "."]).expect("parses");
        assert!(b.rm && !b.quiet && !b.no_cache && !b.pull && !b.force_rm);
        assert_eq!(
            (b.network.as_str(), b.args.as_slice()),
            ("default", &[".".to_string()][..])
        );
        let b = parse(&[
            "image",
            "build",
            "-t",
            "a",
            "--tag",
            "me/b:1",
            "-f",
            "-",
            "--build-arg",
            "X=1",
            "--label",
            "k=v",
            "--label",
            "flag",
            "--target",
            "t",
            "--no-cache",
            "--pull",
            "-q",
            "--iidfile",
            "id",
            "--platform",
            "linux/amd64",
            "--network",
            "host",
            "--rm=false",
            "--force-rm",
            "--cache-from",
            "x,y",
            "--cache-from",
            "z",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--ulimit",
            "nofile=1024:2048",
            "-",
        ])
        .expect("parses");
        assert_eq!(b.tag, ["a", "me/b:1"]);
        assert_eq!(b.file.as_deref(), Some("-"));
        assert_eq!(b.build_arg, ["X=1"]);
        assert_eq!(b.label, ["k=v", "flag"]);
        assert!(b.no_cache && b.pull && b.quiet && !b.rm && b.force_rm);
        assert_eq!(b.cache_from, ["x", "y", "z"]);
        assert_eq!((b.memory, b.memory_swap), (Some(64 << 20), Some(-1)));
        assert_eq!(
            b.ulimit,
            [Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }]
        );
        assert_eq!(b.args, ["-"]);
    }

    #[test]
    fn validators_word_errors_like_docker() {
        // The wording is berth-reference's (docker names it "library/Bad").
        assert!(parse_tag("Bad").is_err_and(|e| e.starts_with("invalid reference format")));
        assert_eq!(parse_tag("me/app:1.0"), Ok("me/app:1.0".into()));
        assert_eq!(
            parse_build_arg("=x"),
            Err("invalid environment variable: =x".into())
        );
        assert_eq!(
            parse_build_arg("BERTH_SURELY_UNSET_VAR"),
            Ok("BERTH_SURELY_UNSET_VAR".into())
        );
        assert_eq!(
            parse_label("=v"),
            Err("invalid label '=v': empty name".into())
        );
        assert_eq!(
            parse_label("a b=v"),
            Err("label 'a b' contains whitespaces".into())
        );
        assert_eq!(
            parse_ulimit("bogus=1"),
            Err("invalid ulimit type: bogus".into())
        );
        assert!(parse_ulimit("nofile=2:1").is_err());
        let err = parse(&["build", "-t", "Bad", "."]).expect_err("bad tag");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
