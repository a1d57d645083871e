//! Flags of the container commands.

use clap::{ArgAction, Args};

use super::{parse_bool, parse_filter, parse_int};

/// `-a/--attach` accepts stdin, stdout or stderr in any case.
fn parse_attach(s: &str) -> Result<String, String> {
    let lower = s.to_lowercase();
    if matches!(lower.as_str(), "stdin" | "stdout" | "stderr") {
        Ok(lower)
    } else {
        Err("valid streams are STDIN, STDOUT and STDERR".to_string())
    }
}

/// `-e/--env`: a variable needs a name.
fn parse_env(s: &str) -> Result<String, String> {
    if s.split('=').next().is_none_or(str::is_empty) {
        return Err(format!("invalid environment variable: {s}"));
    }
    Ok(s.to_string())
}

/// `-m/--memory`: a size with binary units ("512m").
fn parse_memory(s: &str) -> Result<i64, String> {
    crate::units::ram_in_bytes(s).map_err(|e| e.to_string())
}

/// `--cpus`: a decimal number of CPUs, sent as nano-CPUs.
fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let v: f64 = s.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(bad());
    }
    let nanos = v * 1e9;
    if nanos.fract() != 0.0 {
        return Err("value is too precise".to_string());
    }
    Ok(nanos as i64)
}

/// Container configuration flags shared by `run` and `create`.
#[derive(Debug, Args, Default)]
pub struct ContainerFlags {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list", value_parser = parse_attach)]
    pub attach: Vec<String>,

    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub tty: bool,

    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list", value_parser = parse_env)]
    pub env: Vec<String>,

    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,

    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,

    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,

    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,

    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,

    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,

    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Option<String>,

    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,

    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,

    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,

    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,

    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list")]
    pub publish: Vec<String>,

    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub publish_all: bool,

    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,

    /// Set custom DNS servers
    #[arg(long, value_name = "list", value_parser = crate::netopts::validate_ip_address)]
    pub dns: Vec<String>,

    /// Set custom DNS search domains
    // pflag takes the next word as the value even when it starts with "-", as here.
    #[arg(long = "dns-search", value_name = "list", allow_hyphen_values = true, value_parser = crate::netopts::validate_dns_search)]
    pub dns_search: Vec<String>,

    /// Set DNS options
    #[arg(
        long = "dns-option",
        alias = "dns-opt",
        value_name = "list",
        allow_hyphen_values = true
    )]
    pub dns_option: Vec<String>,

    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list", value_parser = crate::netopts::validate_extra_host)]
    pub add_host: Vec<String>,

    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", value_parser = parse_int, allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,

    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,

    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,

    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,

    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,

    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int", value_parser = parse_int, allow_negative_numbers = true)]
    pub health_retries: Option<i64>,

    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,

    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,

    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_healthcheck: bool,

    /// Action when the container turns unhealthy: none, restart, stop or kill (berth's own)
    #[arg(long = "health-on-failure", value_name = "string")]
    pub health_on_failure: Option<String>,

    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub init: Option<bool>,

    /// Give extended privileges to this container
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub privileged: bool,

    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub read_only: bool,

    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,

    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,

    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,

    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_memory)]
    pub memory: Option<i64>,

    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse_cpus)]
    pub cpus: Option<i64>,

    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse_memory_swap, allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,

    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = parse_int)]
    pub cpu_shares: Option<i64>,

    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,

    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,

    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub oom_kill_disable: bool,

    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", value_parser = parse_int, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,

    /// Ulimit options
    #[arg(long, value_name = "ulimit", value_parser = super::build::parse_ulimit)]
    pub ulimit: Vec<super::build::Ulimit>,

    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,

    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,

    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,

    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,

    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,

    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,

    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub pull: String,

    /// Suppress the pull output
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,

    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,

    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub detach: bool,

    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub sig_proxy: bool,

    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,

    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub rm: bool,

    #[command(flatten)]
    pub container: ContainerFlags,

    /// IMAGE [COMMAND] [ARG...]; everything after IMAGE goes to the container.
    #[arg(value_name = "IMAGE", trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,

    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub rm: bool,

    #[command(flatten)]
    pub container: ContainerFlags,

    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub attach: bool,

    /// Attach container's STDIN
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub interactive: bool,

    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `stop` and `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,

    /// Seconds to wait before killing the container
    #[arg(short = 't', long, value_name = "int", value_parser = parse_int, allow_negative_numbers = true)]
    pub timeout: Option<i64>,

    /// Seconds to wait before killing the container (deprecated: use --timeout)
    #[arg(long, value_name = "int", value_parser = parse_int, allow_negative_numbers = true, hide = true)]
    pub time: Option<i64>,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub archive: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,
    #[arg(value_name = "SRC_PATH", allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_memory)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse_memory_swap, allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse_cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = parse_int)]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", value_parser = parse_int, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn parse_memory_swap(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_memory(s)
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container, then options passed to ps
    #[arg(
        value_name = "CONTAINER",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,

    /// Do not prompt for confirmation
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force: bool,

    #[arg(value_name = "ARG", hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force: bool,

    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub volumes: bool,

    /// Remove the specified link
    #[arg(short = 'l', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub link: bool,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub all: bool,

    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,

    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,

    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int", default_value = "-1", value_parser = parse_int, allow_negative_numbers = true)]
    pub last: i64,

    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub latest: bool,

    /// Don't truncate output
    #[arg(long = "no-trunc", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_trunc: bool,

    /// Only display container IDs
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,

    /// Display total file sizes
    #[arg(short = 's', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub size: Option<bool>,

    /// Extra arguments are an error ("accepts no arguments").
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub details: bool,

    /// Follow log output
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub follow: bool,

    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,

    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,

    /// Show timestamps
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub timestamps: bool,

    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth inspect`: any object type.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,

    /// Display total file sizes if the type is container
    #[arg(short = 's', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub size: bool,

    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub object_type: Option<String>,

    #[arg(value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,

    /// Display total file sizes
    #[arg(short = 's', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub size: bool,

    #[arg(value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub detach: bool,

    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,

    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list", value_parser = parse_env)]
    pub env: Vec<String>,

    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,

    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub interactive: bool,

    /// Give extended privileges to the command
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub privileged: bool,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub tty: bool,

    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,

    /// CONTAINER COMMAND [ARG...]; everything after CONTAINER goes to the command.
    #[arg(value_name = "CONTAINER", trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,

    /// Do not attach STDIN
    #[arg(long = "no-stdin", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_stdin: bool,

    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub sig_proxy: bool,

    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// CONTAINER [PRIVATE_PORT[/PROTO]]
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}
