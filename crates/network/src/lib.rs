//! Host-side networking for Docker-style bridge networks.
//!
//! Plain building blocks the engine composes; nothing here knows HTTP or the engine's records.
//!
//! - [`ipam`]: subnets and addresses (Docker's default pools, static requests, serial allocation),
//!   serializable and rebuildable from the engine's records;
//! - [`ports`]: `-p`/`-P`/`PortBindings` parsing and the host port allocator;
//! - [`netns`]: namespace handles and running code inside one on a throwaway thread;
//! - [`link`]: bridges and veth pairs over rtnetlink, in any namespace;
//! - [`firewall`]: the engine's own nftables table (`inet berth`), rendered whole from the
//!   desired state and replaced atomically;
//! - [`proxy`]: the userland TCP/UDP proxy that makes published ports reachable on loopback;
//! - [`sysctl`]: per-namespace `net.*` switches;
//! - [`bridge`]: the bridge driver tying these together (create network, connect, publish,
//!   disconnect, delete, reconcile);
//! - [`dns`]: the embedded DNS server at 127.0.0.11 inside containers.

pub mod bridge;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;
pub mod proxy;
pub mod sysctl;

/// What kind of failure an error is, for callers that map errors to protocol codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Internal,
}
