//! The bridge driver: Docker's `bridge` networks from the pieces of this crate.
//!
//! The driver acts on one host namespace (the daemon's own in production, a private one in
//! tests) and keeps no records: the engine tells it what exists ([`BridgeDriver::reconcile`] at
//! start) and what changes. Its in-memory state — the firewall rules, the port holders
//! (proxies) and the host ports in use — follows from those calls.
//!
//! ```text
//! create_network  bridge br-… with the gateway addresses, up; ip_forward; table rules
//! connect         veth pair, host end on the bridge, peer moved into the container's netns,
//!                 renamed eth0 there, addresses, MTU, lo and eth0 up, default route
//! publish         host ports allocated and held (userland proxy), DNAT rules
//! unpublish       proxies stopped, rules and ports released
//! disconnect      host end deleted (the peer goes with it)
//! delete_network  table rules, bridge deleted
//! reconcile       leftover berth links deleted, bridges ensured, table replaced, proxies
//!                 started again for the recorded ports
//! ```

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use thiserror::Error;
use tracing::{debug, warn};

use crate::firewall::{
    BridgeRules, Firewall, FirewallConfig, FirewallError, NftCommand, NftRunner, PortMapping, Rules,
};
use crate::ipam::SubnetConfig;
use crate::link::{random_ifname, LinkError, Netlink, ALIAS_TAG};
use crate::netns::{NetNs, NetNsError};
use crate::ports::{HostPort, PortAllocator, PortError, PortRequest, Protocol};
use crate::proxy::{Proxy, ProxyError};
use crate::sysctl::{self, SysctlError};
use crate::ErrorKind;

/// Prefix of host-side veth names (`bveth` + 10 hex digits).
pub const VETH_PREFIX: &str = "bveth";
/// Prefix of the temporary name of a veth's container end, before it is renamed.
pub const PEER_PREFIX: &str = "bvtmp";

#[derive(Debug, Error)]
pub enum BridgeError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("driver failed programming external connectivity on endpoint {endpoint}: {source}")]
    Proxy {
        endpoint: String,
        source: ProxyError,
    },
    #[error("network bridge {0} not found")]
    UnknownBridge(String),
}

impl BridgeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BridgeError::Link(e) => e.kind(),
            BridgeError::Firewall(e) => e.kind(),
            BridgeError::Sysctl(e) => e.kind(),
            BridgeError::NetNs(e) => e.kind(),
            BridgeError::Port(e) => e.kind(),
            BridgeError::Proxy { source, .. } => source.kind(),
            BridgeError::UnknownBridge(_) => ErrorKind::NotFound,
        }
    }
}

/// How the driver works, for all networks (dockerd's daemon-wide flags).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub firewall: FirewallConfig,
    /// Set `net.ipv4.ip_forward=1` (and IPv6 forwarding for IPv6 networks) in the host
    /// namespace (dockerd's `--ip-forward`, default true).
    pub ip_forward: bool,
    /// The `nft` program.
    pub nft: std::path::PathBuf,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            firewall: FirewallConfig::default(),
            ip_forward: true,
            nft: "nft".into(),
        }
    }
}

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The engine's network id, recorded in the bridge's alias.
    pub id: String,
    /// The bridge's name: `br-<id[..12]>` for user networks ([`user_bridge_name`]), `berth0`
    /// for the default one, or `com.docker.network.bridge.name`.
    pub bridge: String,
    pub subnets: Vec<SubnetConfig>,
    pub mtu: Option<u32>,
    pub internal: bool,
    pub icc: bool,
    pub masquerade: bool,
}

impl NetworkSpec {
    fn rules(&self) -> BridgeRules {
        BridgeRules {
            bridge: self.bridge.clone(),
            subnets: self.subnets.iter().map(|s| s.subnet).collect(),
            internal: self.internal,
            icc: self.icc,
            masquerade: self.masquerade,
        }
    }
}

/// dockerd's bridge name for a user network.
pub fn user_bridge_name(network_id: &str) -> String {
    let short: String = network_id.chars().take(12).collect();
    format!("br-{short}")
}

/// One container's attachment to a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub bridge: String,
    /// The host end's name; [`new_veth_name`] makes one.
    pub host_veth: String,
    /// The name inside the container: `eth0`, `eth1`, …
    pub ifname: String,
    /// The container's addresses with their prefix lengths.
    pub addresses: Vec<IpNet>,
    /// Default routes through these gateways (one per family; empty for a network that is not
    /// the container's gateway network, or an internal one).
    pub gateways: Vec<IpAddr>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
}

/// A fresh host-side veth name.
pub fn new_veth_name() -> String {
    random_ifname(VETH_PREFIX)
}

/// A published port as set up: what the engine records (`NetworkSettings.Ports`).
pub type PublishedPort = PortMapping;

type HolderKey = (Protocol, IpAddr, u16);

/// What keeps a published host port while it lives: the proxy, or (without it) a plain bound
/// socket; neither for SCTP (DNAT only).
#[derive(Default)]
struct Holder {
    _proxy: Option<Proxy>,
    _socket: Option<std::os::fd::OwnedFd>,
}

pub struct BridgeDriver {
    host: NetNs,
    nl: Netlink,
    firewall: Firewall,
    cfg: DriverConfig,
    ports: Mutex<PortAllocator>,
    holders: tokio::sync::Mutex<HashMap<HolderKey, Holder>>,
}

impl BridgeDriver {
    /// A driver for the host namespace `host`. Nothing is changed until a call says so.
    pub async fn new(host: NetNs, cfg: DriverConfig) -> Result<BridgeDriver, BridgeError> {
        let runner: Arc<dyn NftRunner> =
            Arc::new(NftCommand::with_program(host.clone(), cfg.nft.clone()));
        BridgeDriver::with_runner(host, cfg, runner).await
    }

    /// As [`BridgeDriver::new`], with another `nft` runner.
    pub async fn with_runner(
        host: NetNs,
        cfg: DriverConfig,
        runner: Arc<dyn NftRunner>,
    ) -> Result<BridgeDriver, BridgeError> {
        let nl = Netlink::connect(&host).await?;
        let dynamic = host.run_async(PortAllocator::from_system).await?;
        Ok(BridgeDriver {
            firewall: Firewall::new(cfg.firewall.clone(), runner),
            host,
            nl,
            cfg,
            ports: Mutex::new(dynamic),
            holders: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn host(&self) -> &NetNs {
        &self.host
    }

    pub fn netlink(&self) -> &Netlink {
        &self.nl
    }

    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    fn alloc(&self) -> std::sync::MutexGuard<'_, PortAllocator> {
        // Plain data left consistent by every path.
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prefixes routed in the host namespace: IPAM's `avoid` list for pool subnets.
    pub async fn host_routes(&self) -> Result<Vec<IpNet>, BridgeError> {
        Ok(self.nl.route_prefixes().await?)
    }

    /// Creates (or completes) a network's bridge and its rules. Idempotent.
    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<(), BridgeError> {
        let existed = self.nl.link(&spec.bridge).await?.is_some();
        match self.setup_network(spec).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if !existed {
                    if let Err(cleanup) = self.nl.delete(&spec.bridge).await {
                        warn!(bridge = spec.bridge, error = %cleanup, "remove half-created bridge");
                    }
                }
                Err(e)
            }
        }
    }

    async fn setup_network(&self, spec: &NetworkSpec) -> Result<(), BridgeError> {
        let addrs: Vec<IpNet> = spec.subnets.iter().map(|s| s.gateway_net()).collect();
        let has_v6 = addrs.iter().any(|a| matches!(a, IpNet::V6(_)));
        let alias = format!("{ALIAS_TAG}:network:{}", spec.id);
        if has_v6 {
            // Before the bridge exists its per-device key is missing; set the default so the
            // new device starts with IPv6 enabled.
            let ns = self.host.clone();
            sysctl::set(&ns, "net.ipv6.conf.default.disable_ipv6", "0").ok();
        }
        self.nl
            .ensure_bridge(&spec.bridge, spec.mtu, &addrs, &alias)
            .await?;
        if self.cfg.ip_forward && !spec.internal {
            sysctl::set(&self.host, "net.ipv4.ip_forward", "1")?;
            if has_v6 {
                sysctl::set(&self.host, "net.ipv6.conf.all.forwarding", "1")?;
            }
        }
        if !self.cfg.firewall.userland_proxy {
            sysctl::set(
                &self.host,
                &format!("net.ipv4.conf.{}.route_localnet", spec.bridge),
                "1",
            )?;
        }
        self.firewall.add_bridge(spec.rules()).await?;
        Ok(())
    }

    /// Removes a network's rules, published ports and bridge. Idempotent.
    pub async fn delete_network(&self, bridge: &str) -> Result<(), BridgeError> {
        let ports: Vec<PortMapping> = self
            .firewall
            .rules()
            .ports
            .iter()
            .filter(|(b, _)| b == bridge)
            .map(|(_, p)| *p)
            .collect();
        self.release_holders(&ports).await;
        self.firewall.remove_bridge(bridge).await?;
        self.nl.delete(bridge).await?;
        Ok(())
    }

    /// Attaches the container whose network namespace is `container` to `spec.bridge`.
    /// On failure nothing is left behind.
    pub async fn connect(&self, spec: &EndpointSpec, container: &NetNs) -> Result<(), BridgeError> {
        let bridge = self
            .nl
            .link(&spec.bridge)
            .await?
            .ok_or_else(|| BridgeError::UnknownBridge(spec.bridge.clone()))?;
        let peer = random_ifname(PEER_PREFIX);
        let mtu = spec.mtu.or(bridge.mtu);
        let alias = format!("{ALIAS_TAG}:endpoint:{}", spec.ifname);
        let host_link = self
            .nl
            .add_veth_into(&spec.host_veth, &peer, container, mtu, &alias)
            .await?;
        let result = async {
            self.nl
                .set_controller(host_link.index, bridge.index, &spec.host_veth)
                .await?;
            if !self.cfg.firewall.userland_proxy {
                self.nl
                    .set_hairpin(host_link.index, &spec.host_veth, true)
                    .await?;
            }
            self.nl.set_up(host_link.index, &spec.host_veth).await?;
            let inner = Netlink::connect(container).await?;
            let moved = inner
                .link(&peer)
                .await?
                .ok_or_else(|| LinkError::NotFound(peer.clone()))?;
            inner
                .configure(moved.index, &spec.ifname, spec.mac, mtu)
                .await?;
            for addr in &spec.addresses {
                inner.add_address(moved.index, &spec.ifname, *addr).await?;
            }
            if let Some(lo) = inner.link("lo").await? {
                inner.set_up(lo.index, "lo").await?;
            }
            inner.set_up(moved.index, &spec.ifname).await?;
            for gw in &spec.gateways {
                inner.add_default_route(moved.index, *gw).await?;
            }
            debug!(
                bridge = spec.bridge,
                veth = spec.host_veth,
                ns = container.label(),
                "endpoint connected"
            );
            Ok::<(), BridgeError>(())
        }
        .await;
        if let Err(e) = result {
            // The peer, wherever it is now, goes with the host end.
            if let Err(cleanup) = self.nl.delete(&spec.host_veth).await {
                warn!(veth = spec.host_veth, error = %cleanup, "remove half-connected veth");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Detaches an endpoint by its host veth. Returns whether it was there (idempotent).
    pub async fn disconnect(&self, host_veth: &str) -> Result<bool, BridgeError> {
        Ok(self.nl.delete(host_veth).await?)
    }

    /// Publishes `requests` of a container at `container_ip` on `bridge`: allocates host ports,
    /// holds them (userland proxy, or a bound socket without it) and adds DNAT rules. All or
    /// nothing. `endpoint` names the endpoint in error messages, as dockerd does.
    pub async fn publish(
        &self,
        endpoint: &str,
        bridge: &str,
        container_ip: IpAddr,
        requests: &[PortRequest],
    ) -> Result<Vec<PublishedPort>, BridgeError> {
        if !self.firewall.rules().bridges.contains_key(bridge) {
            return Err(BridgeError::UnknownBridge(bridge.to_owned()));
        }
        let mut done: Vec<PortMapping> = Vec::new();
        let result = async {
            for req in requests {
                let mapping = self.hold_port(endpoint, req, container_ip).await?;
                done.push(mapping);
            }
            self.firewall.add_ports(bridge, &done).await?;
            Ok::<(), BridgeError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(done),
            Err(e) => {
                self.release_holders(&done).await;
                Err(e)
            }
        }
    }

    /// Allocates and holds one host port; a dynamic port that turns out to be taken by another
    /// program is given up and the next one tried.
    async fn hold_port(
        &self,
        endpoint: &str,
        req: &PortRequest,
        container_ip: IpAddr,
    ) -> Result<PortMapping, BridgeError> {
        let host_ip = req.bind_ip();
        let dynamic = !matches!(req.host_port, HostPort::Port(p) if p != 0);
        let mut skipped: Vec<u16> = Vec::new();
        let outcome = loop {
            let port = match self.alloc().allocate(req.protocol, host_ip, req.host_port) {
                Ok(p) => p,
                Err(e) => break Err(BridgeError::Port(e)),
            };
            let mapping = PortMapping {
                protocol: req.protocol,
                host_ip,
                host_port: port,
                container_ip,
                container_port: req.container_port,
            };
            match self.start_holder(&mapping).await {
                Ok(holder) => {
                    self.holders
                        .lock()
                        .await
                        .insert((req.protocol, host_ip, port), holder);
                    break Ok(mapping);
                }
                Err(e) if dynamic && e.addr_in_use() && skipped.len() < 64 => {
                    // Keep it allocated while looking further, so it is not picked again.
                    skipped.push(port);
                }
                Err(e) => {
                    self.alloc().release(req.protocol, host_ip, port);
                    break Err(BridgeError::Proxy {
                        endpoint: endpoint.to_owned(),
                        source: e,
                    });
                }
            }
        };
        let mut alloc = self.alloc();
        for port in skipped {
            alloc.release(req.protocol, host_ip, port);
        }
        outcome
    }

    async fn start_holder(&self, m: &PortMapping) -> Result<Holder, ProxyError> {
        let listen = SocketAddr::new(m.host_ip, m.host_port);
        let target = SocketAddr::new(m.container_ip, m.container_port);
        if m.protocol == Protocol::Sctp {
            return Ok(Holder::default());
        }
        if self.cfg.firewall.userland_proxy {
            return Ok(Holder {
                _proxy: Some(Proxy::start(&self.host, m.protocol, listen, target).await?),
                _socket: None,
            });
        }
        let proto = m.protocol;
        let held = self
            .host
            .run_async(move || -> std::io::Result<std::os::fd::OwnedFd> {
                Ok(match proto {
                    // Bound and listening without accepting: connections are DNATed before
                    // they reach it; the listener only keeps other programs off the port.
                    Protocol::Tcp => std::net::TcpListener::bind(listen)?.into(),
                    _ => std::net::UdpSocket::bind(listen)?.into(),
                })
            })
            .await?
            .map_err(|source| ProxyError::Bind {
                net: format!("{}{}", proto, if listen.is_ipv4() { "4" } else { "6" }),
                addr: listen,
                source,
            })?;
        Ok(Holder {
            _proxy: None,
            _socket: Some(held),
        })
    }

    async fn release_holders(&self, ports: &[PortMapping]) {
        let mut holders = self.holders.lock().await;
        let mut alloc = self.alloc();
        for p in ports {
            holders.remove(&(p.protocol, p.host_ip, p.host_port));
            alloc.release(p.protocol, p.host_ip, p.host_port);
        }
    }

    /// Stops publishing `ports` (as [`BridgeDriver::publish`] returned them).
    pub async fn unpublish(
        &self,
        bridge: &str,
        ports: &[PublishedPort],
    ) -> Result<(), BridgeError> {
        self.firewall.remove_ports(bridge, ports).await?;
        self.release_holders(ports).await;
        Ok(())
    }

    /// Makes the host namespace match the engine's records after a (re)start: deletes berth's
    /// links (alias [`ALIAS_TAG`], or a name starting with one of `extra_prefixes`) that are
    /// neither a recorded bridge nor in `keep_veths`, ensures every recorded bridge, replaces
    /// the table with the recorded networks and ports, and holds those ports again.
    /// Returns the names of the links deleted.
    pub async fn reconcile(
        &self,
        networks: &[NetworkSpec],
        keep_veths: &BTreeSet<String>,
        ports: &[(String, PublishedPort)],
        extra_prefixes: &[&str],
    ) -> Result<Vec<String>, BridgeError> {
        let mut keep: BTreeSet<String> = keep_veths.clone();
        keep.extend(networks.iter().map(|n| n.bridge.clone()));
        let mut deleted = Vec::new();
        // veths first: deleting a bridge leaves its ports behind.
        let mut leftovers = self.nl.leftovers(extra_prefixes, &keep).await?;
        leftovers.sort_by_key(|l| l.kind == "bridge");
        for link in leftovers {
            if self.nl.delete(&link.name).await? {
                debug!(link = link.name, kind = link.kind, "deleted leftover link");
                deleted.push(link.name);
            }
        }
        let mut rules = Rules::default();
        for n in networks {
            let addrs: Vec<IpNet> = n.subnets.iter().map(|s| s.gateway_net()).collect();
            let alias = format!("{ALIAS_TAG}:network:{}", n.id);
            self.nl
                .ensure_bridge(&n.bridge, n.mtu, &addrs, &alias)
                .await?;
            // Loopback DNAT needs it on every bridge, including ones made before this start.
            if !self.cfg.firewall.userland_proxy {
                sysctl::set(
                    &self.host,
                    &format!("net.ipv4.conf.{}.route_localnet", n.bridge),
                    "1",
                )?;
            }
            rules.bridges.insert(n.bridge.clone(), n.rules());
        }
        // Hold the recorded ports again; one that can't be held any more is dropped, with a
        // warning, rather than failing the daemon's start.
        let mut held: Vec<(String, PortMapping)> = Vec::new();
        {
            let mut holders = self.holders.lock().await;
            holders.clear();
        }
        let fresh = self.host.run_async(PortAllocator::from_system).await?;
        *self.alloc() = fresh;
        for (bridge, p) in ports {
            if !rules.bridges.contains_key(bridge) {
                continue;
            }
            if let Err(e) =
                self.alloc()
                    .allocate(p.protocol, p.host_ip, HostPort::Port(p.host_port))
            {
                warn!(error = %e, "published port not restored");
                continue;
            }
            match self.start_holder(p).await {
                Ok(h) => {
                    self.holders
                        .lock()
                        .await
                        .insert((p.protocol, p.host_ip, p.host_port), h);
                    held.push((bridge.clone(), *p));
                }
                Err(e) => {
                    self.alloc().release(p.protocol, p.host_ip, p.host_port);
                    warn!(error = %e, "published port not restored");
                }
            }
        }
        rules.ports = held.into_iter().collect();
        if self.cfg.ip_forward && networks.iter().any(|n| !n.internal) {
            sysctl::set(&self.host, "net.ipv4.ip_forward", "1")?;
        }
        self.firewall.replace(rules).await?;
        Ok(deleted)
    }

    /// Removes everything the driver made in the host namespace: published ports, berth's
    /// links, the table (daemon shutdown without live restore, and tests).
    pub async fn teardown(&self) -> Result<(), BridgeError> {
        self.holders.lock().await.clear();
        let mut links = self.nl.leftovers(&[], &BTreeSet::new()).await?;
        links.sort_by_key(|l| l.kind == "bridge");
        for link in links {
            self.nl.delete(&link.name).await?;
        }
        self.firewall.delete_table().await?;
        Ok(())
    }
}
