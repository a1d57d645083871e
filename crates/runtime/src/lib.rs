//! Running containers: the OCI spec generated from the engine's view of a container, the
//! per-container shim that runs it through youki's libcontainer, the protocol between daemon and
//! shim, and the json-file log both of them use.

pub mod cgroup;
pub mod client;
pub mod console;
pub mod executor;
pub mod freezer;
pub mod logfile;
pub mod proto;
pub mod rootfs;
pub mod shim;
pub mod spec;
pub mod user;

pub use client::{spawn_and_start, EventStream, ExecSession, ShimClient, ShimError, ShimEvent};
pub use proto::{ExitInfo, ShimConfig};
