//! Plain domain types of the engine. They mirror Docker's concepts (so conversion at the API edge
//! is mechanical) but carry no HTTP or wire-format concerns. The persisted records use these
//! types too, so changing a field here changes the on-disk format: add fields with
//! `#[serde(default)]`.

use std::collections::BTreeMap;

use berth_reference::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The process-and-image part of a container's configuration (Docker's `Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// The image as the user named it (e.g. `busybox`), shown by `ps` and inspect.
    pub image: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub network_disabled: bool,
    /// The health check in effect (the image's merged with the container's own).
    #[serde(default)]
    pub healthcheck: Option<crate::health::HealthConfig>,
}

/// Restart policy names as Docker spells them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RestartPolicy {
    /// "", "no", "always", "unless-stopped" or "on-failure".
    pub name: String,
    pub maximum_retry_count: i64,
}

/// The host-side part of a container's configuration (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HostConfig {
    pub auto_remove: bool,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub init: Option<bool>,
    /// Bytes; 0 means unlimited.
    pub memory: i64,
    pub memory_swap: i64,
    /// CPU quota in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub pids_limit: Option<i64>,
    /// `--cpuset-cpus` / `--cpuset-mems` (e.g. `0-1`, `0,2`); empty means all.
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// `--oom-kill-disable`: the OOM killer spares the container (it waits for memory).
    #[serde(default)]
    pub oom_kill_disable: bool,
    pub shm_size: i64,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub binds: Vec<String>,
    /// Binds from `--mount type=bind`: unlike `-v`, a missing source is an error.
    pub strict_binds: Vec<String>,
    /// `--tmpfs` and `--mount type=tmpfs`: destination → mount options (`size=64m,mode=1777`).
    pub tmpfs: BTreeMap<String, String>,
    /// `--volumes-from container[:ro|rw]`.
    pub volumes_from: Vec<String>,
    pub log_type: String,
    pub log_config: BTreeMap<String, String>,
    /// `--ulimit`: process resource limits, applied over the daemon's `default-ulimits`.
    pub ulimits: Vec<Ulimit>,
    /// The terminal's initial (height, width) for a TTY container (`ConsoleSize`).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// `-p`: container port key (`80/tcp`) → host bindings, as the API carries them.
    #[serde(default)]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port to an ephemeral host port.
    #[serde(default)]
    pub publish_all_ports: bool,
}

/// One host side of a published port; empty strings mean any address or any port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// What a container asks of one network (`NetworkingConfig.EndpointsConfig`, `network
/// connect`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointRequest {
    pub aliases: Vec<String>,
    /// `--ip`: a static IPv4 address (empty: any).
    pub ipv4: String,
    pub mac: String,
}

/// A container's place on one network. The request is kept for the container's life; the
/// address, gateway, MAC and host veth exist only while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub request: EndpointRequest,
    /// With its prefix, e.g. `172.18.0.2/16`.
    pub ip: String,
    pub gateway: String,
    pub mac: String,
    pub host_veth: String,
}

/// A container's networking: its endpoints by network name, and while it runs its network
/// namespace and published ports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerNetwork {
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The bind-mounted namespace file (`SandboxKey`).
    pub sandbox: String,
    pub ports: Vec<berth_network::bridge::PublishedPort>,
}

/// One process resource limit, named as Docker names it (`nofile`, `nproc`, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Everything `POST /containers/create` carries, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// Requested platform (`os[/arch[/variant]]`), checked against the image.
    pub platform: Option<String>,
    /// `NetworkingConfig.EndpointsConfig`: network name → what the container asks of it.
    pub endpoints: BTreeMap<String, EndpointRequest>,
}

#[derive(Debug, Clone)]
pub struct CreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// Docker's container states, spelled as Docker spells them in `State.Status`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A container's runtime state (Docker's `State`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerState {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Set by `stop`/`kill` so that a restart policy does not bring the container back.
    pub has_been_manually_stopped: bool,
    /// Present for containers with a health check, from their first start on.
    #[serde(default)]
    pub health: Option<crate::health::Health>,
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

/// A container as the engine knows it: identity, configuration and state. This is both the
/// persisted record and what inspect/list return.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Container {
    pub id: String,
    /// Without the leading slash; the API adds it where Docker shows one.
    pub name: String,
    pub created: DateTime<Utc>,
    /// The resolved image ID (config digest).
    pub image_id: Digest,
    /// Top layer chain ID of the image (None for an image with no layers).
    pub image_top_layer: Option<Digest>,
    /// The process the container runs: `path` then `args`.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: ContainerState,
    #[serde(default)]
    pub restart_count: i64,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub driver: String,
    /// overlay paths, for GraphDriver.Data in inspect.
    #[serde(default)]
    pub graph_driver: BTreeMap<String, String>,
    /// Binds and volumes, resolved at create.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    #[serde(default)]
    pub network: ContainerNetwork,
}

/// Which exit `wait` waits for (Docker's `condition` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

/// Filters for listing, already parsed from Docker's JSON `filters` map.
pub type Filters = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    pub all: bool,
    /// Show only the last N created (Docker's `limit`; 0 or negative means no limit).
    pub limit: i64,
    pub size: bool,
    pub filters: Filters,
}

/// Which output stream a chunk of container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdStream {
    Stdin,
    Stdout,
    Stderr,
}

impl StdStream {
    /// The stream byte of Docker's multiplexed framing.
    pub fn frame_byte(self) -> u8 {
        match self {
            StdStream::Stdin => 0,
            StdStream::Stdout => 1,
            StdStream::Stderr => 2,
        }
    }
}

/// One record of a container's log or live output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub stream: StdStream,
    pub time: DateTime<Utc>,
    pub data: bytes::Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Number of lines from the end; None means all.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Keep streaming live output (Docker's `stream=1`).
    pub stream: bool,
    /// Replay the log first (Docker's `logs=1`).
    pub logs: bool,
}

/// The live ends of an attach: output until the container exits, and (when asked) stdin.
/// Sending an empty chunk on `stdin` is the end of the client's input: it closes the
/// container's stdin when the container was created with `StdinOnce`. Dropping `stdin` without
/// one is a detach and leaves the container's stdin open.
pub struct Attachment {
    pub output: tokio::sync::mpsc::Receiver<LogRecord>,
    pub stdin: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    pub tty: bool,
}

/// An image's configuration as stored in its OCI config blob, in domain terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// Docker's config fields the engine carries without interpreting them here:
    /// `Healthcheck`, `OnBuild`, `Shell`, as stored.
    pub passthrough: BTreeMap<String, serde_json::Value>,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The image ID for the top row of each image, else None (`<missing>` in the CLI).
    pub id: Option<Digest>,
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
    pub empty_layer: bool,
}

/// An image as inspect and list show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: Digest,
    pub manifest_digest: Digest,
    /// Familiar-form tags, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub author: String,
    pub created: Option<DateTime<Utc>>,
    pub config: ImageConfig,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    /// Unpacked size of all layers in bytes.
    pub size: i64,
    /// Layer diff IDs, bottom first.
    pub layers: Vec<Digest>,
    pub top_layer: Option<Digest>,
    /// Number of containers using the image.
    pub containers: i64,
    pub last_tag_time: Option<DateTime<Utc>>,
}

/// One line of `DELETE /images/{name}`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}

/// What `import` needs besides the tar stream.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the result with, or None for a dangling image.
    pub reference: Option<String>,
    /// Dockerfile-like changes: `CMD ["sh"]`, `ENV A=b`, `WORKDIR /x`, ...
    pub changes: Vec<String>,
    pub message: String,
    pub platform: Option<String>,
}

/// Facts about the engine for `/version`.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub version: String,
    pub git_commit: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

/// Facts about the host and engine for `/info`.
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    pub driver_status: Vec<(String, String)>,
    pub docker_root_dir: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub os_type: String,
    pub architecture: String,
    pub ncpu: i64,
    pub mem_total: i64,
    pub name: String,
    pub server_version: String,
    pub live_restore_enabled: bool,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub security_options: Vec<String>,
    pub default_runtime: String,
    pub logging_driver: String,
    pub debug: bool,
    pub system_time: String,
    pub init_binary: String,
}

/// Registry credentials as a client sent them (the API's `X-Registry-Auth`); all empty means
/// anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// A refresh token from an earlier `login` (`IdentityToken`).
    pub identity_token: String,
    /// A bearer token to send as is.
    pub registry_token: String,
    pub server_address: String,
}

/// What `pull` needs besides the image name.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `os[/arch[/variant]]`; the host's platform when absent.
    pub platform: Option<String>,
    pub auth: RegistryAuth,
}

/// One message of a long operation's progress (pull, push, load), in the shape of Docker's
/// JSON progress stream but without its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A status line, optionally about one item (a layer's short ID, a tag) and with a byte
    /// count (`current` of `total`).
    Status {
        id: Option<String>,
        status: String,
        detail: Option<ProgressDetail>,
    },
    /// Free text (`Loaded image: busybox:latest\n`).
    Stream(String),
    /// Machine-readable results (a push's tag, digest and size).
    Aux(serde_json::Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: Option<u64>,
}

/// A registry answer to `login`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginResult {
    pub identity_token: Option<String>,
}

/// One hit of `search`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchHit {
    pub name: String,
    pub description: String,
    pub star_count: u64,
    pub is_official: bool,
    pub is_automated: bool,
}

/// A bind or volume mounted into a container (Docker's `MountPoint`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountPoint {
    /// `bind` or `volume`.
    pub kind: String,
    /// The volume's name; empty for binds.
    pub name: String,
    /// The host path mounted.
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// The options as given (`ro`, `z`, `nocopy`, …).
    pub mode: String,
    pub propagation: String,
}

/// A local volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Made for a container's `-v /path` or an image VOLUME, not by name.
    pub anonymous: bool,
}
