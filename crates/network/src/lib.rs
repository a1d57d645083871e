//! Host-side networking for Docker-style bridge networks.
//!
//! Plain building blocks the engine composes; nothing here knows HTTP or the engine's records.
//!
//! - [`ipam`]: subnets and addresses (Docker's default pools, static requests, serial
//!   allocation), serializable and rebuildable from the engine's records;
//! - [`ports`]: `-p`/`-P`/`PortBindings` parsing and the host port allocator;
//! - [`netns`]: namespace handles, and running code inside one on a throwaway thread;
//! - [`link`]: bridges and veth pairs over rtnetlink, in any namespace;
//! - [`firewall`]: the engine's own nftables table (`inet berth`), rendered whole from the
//!   desired state and replaced atomically;
//! - [`proxy`]: the userland TCP/UDP proxy that makes published ports reachable on loopback;
//! - [`sysctl`]: per-namespace `net.*` switches;
//! - [`bridge`]: the bridge driver tying these together (create network, connect, publish,
//!   disconnect, delete, reconcile);
//! - [`dns`]: the embedded DNS server at 127.0.0.11 inside containers.
//!
//! # Invariants
//!
//! - No thread of the caller ever changes its network namespace: work inside another one runs
//!   on a thread made for it, and sockets made there keep their namespace.
//! - Everything berth adds to the host is findable: links carry the alias `berth:…`, rules live
//!   in `table inet berth` only. Reconciling is "delete what the records don't name, render
//!   the table from the records".
//! - The driver keeps no state on disk: the engine records networks (with their IPAM
//!   subnets), endpoints (host veth name, addresses) and published ports, and hands them back
//!   at start.
//!
//! # Use from the engine
//!
//! ```no_run
//! use std::collections::BTreeSet;
//! use berth_network::bridge::{
//!     new_veth_name, user_bridge_name, BridgeDriver, DriverConfig, EndpointSpec, NetworkSpec,
//! };
//! use berth_network::ipam::{AddressRequest, Family, Ipam};
//! use berth_network::netns::NetNs;
//! use berth_network::ports::parse_publish;
//!
//! # async fn sketch(pid: u32) -> Result<(), Box<dyn std::error::Error>> {
//! let driver = BridgeDriver::new(NetNs::current()?, DriverConfig::default()).await?;
//! let mut ipam = Ipam::default(); // or Ipam::rebuild(pools, records), or serde
//! // At start: what the records say exists (nothing yet, here).
//! driver.reconcile(&[], &BTreeSet::new(), &[], &[]).await?;
//!
//! // docker network create app
//! let id = "0123456789abcdef";
//! let subnets = ipam.create_network(id, &[], &driver.host_routes().await?)?;
//! let net = NetworkSpec {
//!     id: id.into(),
//!     bridge: user_bridge_name(id),
//!     subnets,
//!     mtu: None,
//!     internal: false,
//!     icc: true,
//!     masquerade: true,
//! };
//! driver.create_network(&net).await?;
//!
//! // docker run --network app -p 8080:80 … : after the runtime made the container's netns
//! let (ip, subnet) = ipam.allocate(id, AddressRequest::Any(Family::V4))?;
//! let ep = EndpointSpec {
//!     bridge: net.bridge.clone(),
//!     host_veth: new_veth_name(),
//!     ifname: "eth0".into(),
//!     addresses: vec![subnet.with_prefix(ip)],
//!     gateways: vec![subnet.gateway],
//!     mac: None,
//!     mtu: None,
//! };
//! driver.connect(&ep, &NetNs::from_pid(pid)?).await?;
//! let published = driver
//!     .publish("endpoint-id", &net.bridge, ip, &parse_publish("8080:80")?)
//!     .await?;
//!
//! // container stops
//! driver.unpublish(&net.bridge, &published).await?;
//! driver.disconnect(&ep.host_veth).await?;
//! ipam.release(id, ip)?;
//!
//! // docker network rm app
//! driver.delete_network(&net.bridge).await?;
//! ipam.delete_network(id)?;
//! # Ok(())
//! # }
//! ```

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
