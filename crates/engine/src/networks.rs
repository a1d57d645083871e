//! Networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks, and the
//! endpoints of containers on them.
//!
//! Records live in `networks/<id>.json` (crash-safe writes); IPAM state is never stored: it is
//! rebuilt at start from the network records and the endpoints of running containers. The
//! host side (bridges, veths, the nftables table, port holders) is `berth_network`'s bridge
//! driver; at start it is reconciled to the records, so a crash leaves nothing behind.
//!
//! A running container on a bridge network gets a network namespace bind-mounted at
//! `<exec-root>/netns/<id>` before its process starts (so its network is up when its command
//! runs), a veth per network, its published ports, and on user-defined networks the embedded
//! DNS server at 127.0.0.11 that answers the names of containers sharing a network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_network::bridge::{
    new_veth_name, user_bridge_name, BridgeDriver, DriverConfig, EndpointSpec, NetworkSpec,
};
use berth_network::dns::{DnsServer, Names};
use berth_network::ipam::{
    AddressRequest, Family, Ipam, NetworkRecord, SubnetConfig, SubnetRequest,
};
use berth_network::netns::{remove_persistent, NetNs};
use berth_network::ports::{parse_api_binding, parse_port_key, HostPort, PortRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Context;
use crate::types::{Container, ContainerNetwork, Endpoint, EndpointRequest};
use crate::{lock, Engine, EngineError, ErrorKind, Result};

/// Daemon settings for networking (daemon.json `bridge`, `bip`, `userland-proxy`, …).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The Linux bridge of the default `bridge` network; None turns the default network off
    /// (`"bridge": "none"`): containers then get only loopback unless they name a network.
    pub default_bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. `172.17.0.1/16`.
    pub bip: Option<String>,
    pub userland_proxy: bool,
    pub ip_forward: bool,
    pub iptables: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            default_bridge: Some("berth0".into()),
            bip: None,
            userland_proxy: false,
            ip_forward: true,
            iptables: true,
        }
    }
}

/// A network as recorded (and as `network inspect` shows it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub subnets: Vec<SubnetConfig>,
    /// The Linux bridge; empty for `host` and `none`.
    #[serde(default)]
    pub bridge: String,
}

impl Network {
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    fn spec(&self) -> NetworkSpec {
        let mtu = self
            .options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok());
        let masquerade = self
            .options
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false");
        let icc = self
            .options
            .get("com.docker.network.bridge.enable_icc")
            .is_none_or(|v| v != "false");
        NetworkSpec {
            id: self.id.clone(),
            bridge: self.bridge.clone(),
            subnets: self.subnets.clone(),
            mtu,
            internal: self.internal,
            icc,
            masquerade,
        }
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub ipam: Vec<IpamRequest>,
}

/// One `IPAM.Config` entry of `network create`, as text (`--subnet`, `--ip-range`,
/// `--gateway`, `--aux-address`).
#[derive(Debug, Clone, Default)]
pub struct IpamRequest {
    pub subnet: String,
    pub ip_range: String,
    pub gateway: String,
    pub aux_addresses: BTreeMap<String, String>,
}

impl IpamRequest {
    fn parse(&self) -> Result<SubnetRequest> {
        let net = |what: &str, v: &str| -> Result<Option<ipnet::IpNet>> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<ipnet::IpNet>()
                .map(Some)
                .map_err(|_| EngineError::invalid(format!("invalid {what}: {v}")))
        };
        let ip = |what: &str, v: &str| -> Result<IpAddr> {
            v.parse::<IpAddr>()
                .map_err(|_| EngineError::invalid(format!("invalid {what}: {v}")))
        };
        let subnet = net("subnet", &self.subnet)?;
        if let Some(s) = subnet {
            if s.trunc() != s {
                return Err(EngineError::invalid(format!(
                    "invalid subnet {s}: it should be {}",
                    s.trunc()
                )));
            }
        }
        Ok(SubnetRequest {
            subnet,
            ip_range: net("ip-range", &self.ip_range)?,
            gateway: if self.gateway.is_empty() {
                None
            } else {
                Some(ip("gateway", &self.gateway)?)
            },
            aux_addresses: self
                .aux_addresses
                .iter()
                .map(|(k, v)| Ok((k.clone(), ip("aux-address", v)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// A running container's endpoint, for `network inspect`'s `Containers`.
#[derive(Debug, Clone)]
pub struct AttachedContainer {
    pub id: String,
    pub name: String,
    pub endpoint: Endpoint,
}

#[derive(Default)]
pub(crate) struct NetDb {
    by_id: BTreeMap<String, Network>,
    ipam: Ipam,
}

/// The engine's networking state.
#[derive(Default)]
pub(crate) struct NetState {
    db: Mutex<NetDb>,
    driver: Mutex<Option<Arc<BridgeDriver>>>,
    names: Arc<Names>,
    dns: Mutex<HashMap<String, DnsServer>>,
    upstreams: Mutex<Vec<SocketAddr>>,
}

/// The namespace and files a starting container gets from its networks.
pub(crate) struct NetPlan {
    pub namespace: berth_runtime::spec::NetworkNamespace,
    /// Lines for /etc/hosts: (address, names).
    pub hosts: Vec<(String, String)>,
    /// The embedded DNS server answers for this container (user-defined networks).
    pub embedded_dns: bool,
}

fn net_error(e: impl std::fmt::Display, kind: berth_network::ErrorKind) -> EngineError {
    let kind = match kind {
        berth_network::ErrorKind::NotFound => ErrorKind::NotFound,
        berth_network::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
        berth_network::ErrorKind::Conflict => ErrorKind::Conflict,
        berth_network::ErrorKind::Internal => ErrorKind::Internal,
    };
    EngineError::new(kind, e.to_string())
}

macro_rules! net_err {
    ($e:expr) => {{
        let e = $e;
        let kind = e.kind();
        net_error(e, kind)
    }};
}

/// A MAC address from an IPv4 address, as Docker derives them (02:42 + the address).
fn mac_for(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [0x02, 0x42, o[12], o[13], o[14], o[15]]
        }
    }
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn record_path(engine: &Engine, id: &str) -> PathBuf {
    engine
        .data_root()
        .join("networks")
        .join(format!("{id}.json"))
}

impl Engine {
    fn driver(&self) -> Option<Arc<BridgeDriver>> {
        lock(&self.inner.net.driver).clone()
    }

    fn save_network(&self, n: &Network) -> Result<()> {
        berth_store::atomic::write_json_atomic(&record_path(self, &n.id), n)
            .ctx(|| format!("write network {}", n.name))
    }

    /// Loads the records, creates the predefined networks, starts the bridge driver and makes
    /// the host match the records. Runs once at open, before containers are restored.
    pub(crate) async fn open_networks(&self) -> Result<()> {
        let dir = self.data_root().join("networks");
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        let mut records: BTreeMap<String, Network> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)
            .ctx(|| "read networks".into())?
            .flatten()
        {
            match berth_store::atomic::read_json::<Network>(&entry.path()) {
                Ok(Some(n)) => {
                    records.insert(n.id.clone(), n);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "unreadable network record")
                }
            }
        }
        let cfg = self.inner.config.network.clone();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !records.values().any(|n| n.name == name) {
                let n = Network {
                    id: crate::names::random_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: Utc::now(),
                    internal: false,
                    attachable: false,
                    ipv6: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    subnets: Vec::new(),
                    bridge: String::new(),
                };
                self.save_network(&n)?;
                records.insert(n.id.clone(), n);
            }
        }
        // The default bridge follows daemon.json: made when enabled, dropped when not.
        let default = records.values().find(|n| n.name == "bridge").cloned();
        match (&cfg.default_bridge, default) {
            (None, Some(n)) => {
                let _ = std::fs::remove_file(record_path(self, &n.id));
                records.remove(&n.id);
            }
            (Some(bridge), Some(mut n)) if &n.bridge != bridge => {
                n.bridge = bridge.clone();
                self.save_network(&n)?;
                records.insert(n.id.clone(), n);
            }
            _ => {}
        }
        let wants_driver =
            records.values().any(|n| n.driver == "bridge") || cfg.default_bridge.is_some();
        if wants_driver {
            let dcfg = DriverConfig {
                ip_forward: cfg.ip_forward,
                firewall: berth_network::firewall::FirewallConfig {
                    userland_proxy: cfg.userland_proxy,
                    ..Default::default()
                },
                ..DriverConfig::default()
            };
            let made = match NetNs::current() {
                Ok(host) => BridgeDriver::new(host, dcfg)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match made {
                Ok(d) => *lock(&self.inner.net.driver) = Some(Arc::new(d)),
                Err(e) => tracing::warn!(error = %e, "bridge networking unavailable"),
            }
        }
        let host_routes = match self.driver() {
            Some(d) => d.host_routes().await.unwrap_or_default(),
            None => Vec::new(),
        };
        // IPAM from the records and the addresses of running containers.
        let containers: Vec<Container> = lock(&self.inner.containers)
            .by_id
            .values()
            .map(|s| s.c.clone())
            .collect();
        let mut addresses: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for c in containers.iter().filter(|c| c.state.is_running()) {
            for ep in c.network.endpoints.values() {
                if let Ok(net) = ep.ip.parse::<ipnet::IpNet>() {
                    addresses
                        .entry(ep.network_id.clone())
                        .or_default()
                        .push(net.addr());
                }
            }
        }
        let bridge_records: Vec<NetworkRecord> = records
            .values()
            .filter(|n| n.driver == "bridge" && !n.subnets.is_empty())
            .map(|n| NetworkRecord {
                id: n.id.clone(),
                subnets: n.subnets.clone(),
                addresses: addresses.remove(&n.id).unwrap_or_default(),
            })
            .collect();
        let mut ipam = Ipam::rebuild(berth_network::ipam::default_pools(), bridge_records)
            .map_err(|e| EngineError::internal(format!("rebuild IPAM: {e}")))?;
        if let (Some(bridge), false) = (
            &cfg.default_bridge,
            records.values().any(|n| n.name == "bridge"),
        ) {
            let id = crate::names::random_id();
            let request = match &cfg.bip {
                Some(bip) => {
                    let net: ipnet::IpNet = bip.parse().map_err(|_| {
                        EngineError::invalid(format!("invalid bip {bip:?}: expected an address with a prefix, e.g. 172.17.0.1/16"))
                    })?;
                    vec![SubnetRequest {
                        subnet: Some(net.trunc()),
                        gateway: Some(net.addr()),
                        ..Default::default()
                    }]
                }
                None => Vec::new(),
            };
            let subnets = ipam
                .create_network(&id, &request, &host_routes)
                .map_err(|e| net_err!(e))?;
            let n = Network {
                id: id.clone(),
                name: "bridge".into(),
                driver: "bridge".into(),
                created: Utc::now(),
                internal: false,
                attachable: false,
                ipv6: false,
                labels: BTreeMap::new(),
                options: [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.name", bridge.as_str()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                subnets,
                bridge: bridge.clone(),
            };
            self.save_network(&n)?;
            records.insert(id, n);
        }
        if let Some(driver) = self.driver() {
            let specs: Vec<NetworkSpec> = records
                .values()
                .filter(|n| n.driver == "bridge")
                .map(Network::spec)
                .collect();
            let mut keep = BTreeSet::new();
            let mut ports = Vec::new();
            for c in containers.iter().filter(|c| c.state.is_running()) {
                let mut bridge_of_first = None;
                for ep in c.network.endpoints.values() {
                    if !ep.host_veth.is_empty() {
                        keep.insert(ep.host_veth.clone());
                    }
                    if bridge_of_first.is_none() {
                        bridge_of_first = records.get(&ep.network_id).map(|n| n.bridge.clone());
                    }
                }
                if let Some(bridge) = bridge_of_first {
                    ports.extend(c.network.ports.iter().map(|p| (bridge.clone(), *p)));
                }
            }
            driver
                .reconcile(&specs, &keep, &ports, &[])
                .await
                .map_err(|e| net_err!(e))?;
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        *lock(&self.inner.net.upstreams) = berth_network::dns::upstreams_from_resolv_conf(&resolv);
        let mut db = lock(&self.inner.net.db);
        db.by_id = records;
        db.ipam = ipam;
        Ok(())
    }

    /// Stops the host side of networking (daemon shutdown without live restore).
    pub(crate) async fn close_networks(&self) {
        if let Some(d) = self.driver() {
            if let Err(e) = d.teardown().await {
                tracing::warn!(error = %e, "network teardown");
            }
        }
    }

    /// Finds a network by full ID, exact name, or unique ID prefix (dockerd's order).
    pub fn inspect_network(&self, key: &str) -> Result<Network> {
        let db = lock(&self.inner.net.db);
        if let Some(n) = db.by_id.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = db.by_id.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let found: Vec<&Network> = db
            .by_id
            .values()
            .filter(|n| n.id.starts_with(key))
            .collect();
        match found[..] {
            [one] if !key.is_empty() => Ok(one.clone()),
            [] | [_] => Err(EngineError::not_found(format!("network {key} not found"))),
            _ => Err(EngineError::not_found(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                found.len()
            ))),
        }
    }

    pub fn list_networks(&self) -> Vec<Network> {
        let mut all: Vec<Network> = lock(&self.inner.net.db).by_id.values().cloned().collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        all
    }

    /// The running containers attached to `network_id`.
    pub fn network_containers(&self, network_id: &str) -> Vec<AttachedContainer> {
        lock(&self.inner.containers)
            .by_id
            .values()
            .filter(|s| s.c.state.is_running())
            .flat_map(|s| {
                s.c.network
                    .endpoints
                    .values()
                    .filter(|e| e.network_id == network_id && !e.ip.is_empty())
                    .map(|e| AttachedContainer {
                        id: s.c.id.clone(),
                        name: s.c.name.clone(),
                        endpoint: e.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub async fn create_network(&self, req: NetworkCreate) -> Result<Network> {
        if req.name.is_empty() {
            return Err(EngineError::invalid("network name is empty"));
        }
        if !crate::names::valid_name(&req.name) {
            return Err(EngineError::invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        match driver {
            "bridge" => {}
            "host" | "null" => {
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    format!("only one instance of \"{driver}\" network is allowed"),
                ))
            }
            other => {
                return Err(EngineError::not_found(format!(
                    "plugin \"{other}\" not found"
                )))
            }
        }
        let Some(bridge_driver) = self.driver() else {
            return Err(EngineError::internal(
                "bridge networking is unavailable on this host (see the daemon log)",
            ));
        };
        let requests: Vec<SubnetRequest> = req
            .ipam
            .iter()
            .map(IpamRequest::parse)
            .collect::<Result<_>>()?;
        let host_routes = bridge_driver.host_routes().await.unwrap_or_default();
        let id = crate::names::random_id();
        let bridge = req
            .options_bridge_name()
            .unwrap_or_else(|| user_bridge_name(&id));
        let n = {
            let mut db = lock(&self.inner.net.db);
            if db.by_id.values().any(|n| n.name == req.name) {
                return Err(EngineError::conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            let subnets = db
                .ipam
                .create_network(&id, &requests, &host_routes)
                .map_err(|e| net_err!(e))?;
            Network {
                id: id.clone(),
                name: req.name.clone(),
                driver: driver.into(),
                created: Utc::now(),
                internal: req.internal,
                attachable: req.attachable,
                ipv6: req.ipv6,
                labels: req.labels,
                options: req.options,
                subnets,
                bridge,
            }
        };
        let undo = |engine: &Engine| {
            let _ = lock(&engine.inner.net.db).ipam.delete_network(&id);
        };
        if let Err(e) = bridge_driver.create_network(&n.spec()).await {
            undo(self);
            return Err(net_err!(e));
        }
        if let Err(e) = self.save_network(&n) {
            let _ = bridge_driver.delete_network(&n.bridge).await;
            undo(self);
            return Err(e);
        }
        lock(&self.inner.net.db).by_id.insert(id.clone(), n.clone());
        self.emit_network(&n, "create", &[]);
        Ok(n)
    }

    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let n = self.inspect_network(key)?;
        if n.is_predefined() {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!("{} is a pre-defined network and cannot be removed", n.name),
            ));
        }
        if !self.network_containers(&n.id).is_empty() {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                ),
            ));
        }
        if let Some(d) = self.driver() {
            d.delete_network(&n.bridge).await.map_err(|e| net_err!(e))?;
        }
        // The record goes first: a crash after it leaves a bridge that reconcile deletes.
        std::fs::remove_file(record_path(self, &n.id))
            .ctx(|| format!("remove network {}", n.name))?;
        {
            let mut db = lock(&self.inner.net.db);
            db.by_id.remove(&n.id);
            let _ = db.ipam.delete_network(&n.id);
        }
        self.inner.net.names.remove_network(&n.id);
        self.emit_network(&n, "destroy", &[]);
        Ok(())
    }

    /// `network prune`: user-defined networks without running containers.
    pub async fn prune_networks(&self, keep: impl Fn(&Network) -> bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in self.list_networks() {
            if n.is_predefined() || keep(&n) || !self.network_containers(&n.id).is_empty() {
                continue;
            }
            // A network used by a stopped container is still pruned, as in dockerd.
            if self.remove_network(&n.id).await.is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    fn emit_network(&self, n: &Network, action: &str, extra: &[(&str, &str)]) {
        let mut attrs = vec![("name", n.name.as_str()), ("type", n.driver.as_str())];
        attrs.extend_from_slice(extra);
        self.emit("network", action, &n.id, &attrs);
    }

    /// The endpoints a new container asks for: its network mode's network, plus the other
    /// networks of `NetworkingConfig` (which dockerd connects at start too).
    pub(crate) fn plan_endpoints(
        &self,
        mode: &str,
        requests: &BTreeMap<String, EndpointRequest>,
    ) -> Result<ContainerNetwork> {
        let mut out = ContainerNetwork::default();
        let primary = match mode {
            "" | "default" => {
                if self.inner.config.network.default_bridge.is_some() {
                    Some("bridge".to_string())
                } else {
                    None
                }
            }
            "host" | "none" => None,
            m if m.starts_with("container:") => None,
            other => Some(other.to_string()),
        };
        // The docker CLI names the mode's network as given (`default` included).
        let is_primary = |name: &str| name == mode || Some(name) == primary.as_deref();
        let mut wanted: Vec<(String, EndpointRequest)> = Vec::new();
        if let Some(p) = &primary {
            let req = requests
                .iter()
                .find(|(name, _)| is_primary(name))
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            wanted.push((p.clone(), req));
        }
        if primary.is_some() {
            for (name, req) in requests {
                if !is_primary(name) && name != "default" {
                    wanted.push((name.clone(), req.clone()));
                }
            }
        }
        for (key, req) in wanted {
            let n = self.inspect_network(&key)?;
            if n.driver != "bridge" {
                continue;
            }
            check_request(&n, &req)?;
            out.endpoints.insert(
                n.name.clone(),
                Endpoint {
                    network_id: n.id.clone(),
                    request: req,
                    ..Endpoint::default()
                },
            );
        }
        Ok(out)
    }

    /// Brings a starting container's networks up: its namespace, an address and a veth per
    /// network, its published ports and, on user-defined networks, its names in the embedded
    /// DNS. Undone by [`Engine::teardown_network`] (also on failure here).
    pub(crate) async fn setup_network(&self, c: &Container) -> Result<NetPlan> {
        use berth_runtime::spec::NetworkNamespace;
        let mode = c.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok(NetPlan {
                namespace: NetworkNamespace::Host,
                hosts: Vec::new(),
                embedded_dns: false,
            });
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let target = self.inspect_container(other)?;
            if !target.state.is_running() {
                return Err(EngineError::conflict(format!(
                    "cannot join network namespace of a non running container: container {} is exited",
                    target.id
                )));
            }
            let path = if target.network.sandbox.is_empty() {
                format!("/proc/{}/ns/net", target.state.pid)
            } else {
                target.network.sandbox.clone()
            };
            return Ok(NetPlan {
                namespace: NetworkNamespace::Path(path),
                hosts: Vec::new(),
                embedded_dns: false,
            });
        }
        if c.network.endpoints.is_empty() {
            return Ok(NetPlan {
                namespace: NetworkNamespace::New,
                hosts: Vec::new(),
                embedded_dns: false,
            });
        }
        let began = std::time::Instant::now();
        let result = self.connect_all(c).await;
        tracing::debug!(
            id = c.id,
            ms = began.elapsed().as_secs_f64() * 1e3,
            "network setup"
        );
        if result.is_err() {
            self.teardown_network(&c.id).await;
        }
        result
    }

    async fn connect_all(&self, c: &Container) -> Result<NetPlan> {
        let driver = self.driver().ok_or_else(|| {
            EngineError::internal(
                "bridge networking is unavailable on this host (see the daemon log)",
            )
        })?;
        let path = self.inner.config.exec_root.join("netns").join(&c.id);
        let p2 = path.clone();
        let t = std::time::Instant::now();
        let ns = tokio::task::spawn_blocking(move || NetNs::create_persistent(&p2))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| EngineError::internal(format!("create network namespace: {e}")))?;
        tracing::debug!(
            id = c.id,
            ms = t.elapsed().as_secs_f64() * 1e3,
            "netns created"
        );
        self.update_container(&c.id, |r| r.network.sandbox = path.display().to_string())?;
        // Loopback is up in every container, as runc's netns setup leaves it.
        ns.run_async(set_loopback_up)
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| EngineError::internal(format!("bring up loopback: {e}")))?;
        let mut hosts = Vec::new();
        let mut user_networks = Vec::new();
        let mut first: Option<(Network, IpAddr, String)> = None;
        for (i, (name, ep)) in c.network.endpoints.iter().enumerate() {
            let (n, ip, endpoint_id) = self.attach_endpoint(&driver, c, name, ep, i, &ns).await?;
            hosts.push((ip.to_string(), hosts_names(c)));
            if n.name != "bridge" {
                user_networks.push(n.id.clone());
            }
            if first.is_none() {
                first = Some((n, ip, endpoint_id));
            }
        }
        if let Some((n, ip, endpoint_id)) = first {
            let requests = port_requests(c)?;
            if !requests.is_empty() {
                let published = driver
                    .publish(&endpoint_id, &n.bridge, ip, &requests)
                    .await
                    .map_err(|e| {
                        let kind = e.kind();
                        net_error(
                            format!(
                                "driver failed programming external connectivity on endpoint {} ({endpoint_id}): {e}",
                                c.name
                            ),
                            kind,
                        )
                    })?;
                self.update_container(&c.id, |r| r.network.ports = published)?;
            }
        }
        let embedded_dns = !user_networks.is_empty();
        if embedded_dns {
            let upstreams = lock(&self.inner.net.upstreams).clone();
            let server =
                DnsServer::start(&ns, self.inner.net.names.clone(), user_networks, upstreams)
                    .await
                    .map_err(|e| net_err!(e))?;
            lock(&self.inner.net.dns).insert(c.id.clone(), server);
        }
        Ok(NetPlan {
            namespace: berth_runtime::spec::NetworkNamespace::Path(path.display().to_string()),
            hosts,
            embedded_dns,
        })
    }

    /// Gives a running container (its namespace `ns`) an address and a veth `eth<index>` on
    /// one network, records them, and adds its names to the embedded DNS.
    async fn attach_endpoint(
        &self,
        driver: &BridgeDriver,
        c: &Container,
        name: &str,
        ep: &Endpoint,
        index: usize,
        ns: &NetNs,
    ) -> Result<(Network, IpAddr, String)> {
        let n = self
            .inspect_network(&ep.network_id)
            .map_err(|_| EngineError::not_found(format!("network {name} not found")))?;
        let (ip, subnet) = {
            let mut db = lock(&self.inner.net.db);
            let request = match ep.request.ipv4.parse::<IpAddr>() {
                Ok(ip) => AddressRequest::Static(ip),
                Err(_) => AddressRequest::Any(Family::V4),
            };
            db.ipam.allocate(&n.id, request).map_err(|e| net_err!(e))?
        };
        let mac = parse_mac(&ep.request.mac).unwrap_or_else(|| mac_for(ip));
        let spec = EndpointSpec {
            bridge: n.bridge.clone(),
            host_veth: new_veth_name(),
            ifname: format!("eth{index}"),
            addresses: vec![subnet.with_prefix(ip)],
            // The first network is the default route, as in dockerd.
            gateways: if index == 0 {
                vec![subnet.gateway]
            } else {
                Vec::new()
            },
            mac: Some(mac),
            mtu: n.spec().mtu,
        };
        let endpoint_id = crate::names::random_id();
        let ip_text = subnet.with_prefix(ip).to_string();
        let recorded = self.update_container(&c.id, |r| {
            let e = r
                .network
                .endpoints
                .entry(name.to_string())
                .or_insert_with(|| ep.clone());
            e.endpoint_id = endpoint_id.clone();
            e.ip = ip_text.clone();
            e.gateway = subnet.gateway.to_string();
            e.mac = mac_text(mac);
            e.host_veth = spec.host_veth.clone();
        });
        if let Err(e) = recorded {
            let _ = lock(&self.inner.net.db).ipam.release(&n.id, ip);
            return Err(e);
        }
        // Recorded first: a failure from here on is undone by teardown from the record.
        driver.connect(&spec, ns).await.map_err(|e| net_err!(e))?;
        if n.name != "bridge" {
            for alias in dns_names(c, &ep.request.aliases) {
                self.inner.net.names.add(&n.id, &alias, ip);
            }
        }
        Ok((n, ip, endpoint_id))
    }

    /// `network connect`: a stopped container gets the endpoint at its next start, a running
    /// one at once (a new interface, its names in the embedded DNS).
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        req: EndpointRequest,
    ) -> Result<()> {
        let n = self.inspect_network(network)?;
        let c = self.inspect_container(container)?;
        let mode = c.host_config.network_mode.as_str();
        if n.driver != "bridge" || mode == "host" || mode.starts_with("container:") {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if c.network.endpoints.values().any(|e| e.network_id == n.id) {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!(
                    "endpoint with name {} already exists in network {}",
                    c.name, n.name
                ),
            ));
        }
        check_request(&n, &req)?;
        let ep = Endpoint {
            network_id: n.id.clone(),
            request: req,
            ..Endpoint::default()
        };
        if !c.state.is_running() {
            self.update_container(&c.id, |r| {
                r.network.endpoints.insert(n.name.clone(), ep);
            })?;
            self.emit_network(&n, "connect", &[("container", &c.id)]);
            return Ok(());
        }
        if c.network.sandbox.is_empty() {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                "container cannot be connected to multiple networks with one of the networks in private (none) mode",
            ));
        }
        let driver = self.driver().ok_or_else(|| {
            EngineError::internal(
                "bridge networking is unavailable on this host (see the daemon log)",
            )
        })?;
        let ns = NetNs::from_path(&c.network.sandbox)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let index = c.network.endpoints.len();
        let (_, ip, _) = match self
            .attach_endpoint(&driver, &c, &n.name, &ep, index, &ns)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.detach_endpoint(&c.id, &n.name).await;
                return Err(e);
            }
        };
        self.refresh_dns(&c.id, &ns).await;
        tracing::debug!(container = c.id, network = n.name, %ip, "connected");
        self.emit_network(&n, "connect", &[("container", &c.id)]);
        Ok(())
    }

    /// `network disconnect`.
    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let n = self.inspect_network(network)?;
        let c = self.inspect_container(container)?;
        let Some(name) = c
            .network
            .endpoints
            .iter()
            .find(|(_, e)| e.network_id == n.id)
            .map(|(k, _)| k.clone())
        else {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!("container {} is not connected to network {}", c.id, n.name),
            ));
        };
        self.detach_endpoint(&c.id, &name).await;
        self.update_container(&c.id, |r| {
            r.network.endpoints.remove(&name);
        })?;
        if let (true, Ok(ns)) = (c.state.is_running(), NetNs::from_path(&c.network.sandbox)) {
            self.refresh_dns(&c.id, &ns).await;
        }
        self.emit_network(&n, "disconnect", &[("container", &c.id)]);
        Ok(())
    }

    /// Undoes [`Engine::attach_endpoint`] for one network (the request stays recorded).
    async fn detach_endpoint(&self, id: &str, name: &str) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        let Some(ep) = c.network.endpoints.get(name) else {
            return;
        };
        if let (Some(d), false) = (self.driver(), ep.host_veth.is_empty()) {
            if let Err(e) = d.disconnect(&ep.host_veth).await {
                tracing::warn!(id, error = %e, "disconnect endpoint");
            }
        }
        if let Ok(net) = ep.ip.parse::<ipnet::IpNet>() {
            let _ = lock(&self.inner.net.db)
                .ipam
                .release(&ep.network_id, net.addr());
            self.inner
                .net
                .names
                .remove_address(&ep.network_id, net.addr());
        }
        let _ = self.update_container(id, |r| {
            if let Some(e) = r.network.endpoints.get_mut(name) {
                e.endpoint_id.clear();
                e.ip.clear();
                e.gateway.clear();
                e.mac.clear();
                e.host_veth.clear();
            }
        });
    }

    /// Points a running container's embedded DNS at its current user-defined networks,
    /// starting the server if it had none.
    async fn refresh_dns(&self, id: &str, ns: &NetNs) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        let networks: Vec<String> = c
            .network
            .endpoints
            .iter()
            .filter(|(name, e)| name.as_str() != "bridge" && !e.ip.is_empty())
            .map(|(_, e)| e.network_id.clone())
            .collect();
        let existing = lock(&self.inner.net.dns)
            .get(id)
            .map(|s| s.set_networks(networks.clone()));
        if existing.is_some() || networks.is_empty() {
            return;
        }
        let upstreams = lock(&self.inner.net.upstreams).clone();
        match DnsServer::start(ns, self.inner.net.names.clone(), networks, upstreams).await {
            Ok(s) => {
                lock(&self.inner.net.dns).insert(id.to_string(), s);
                // The container now resolves through the embedded server, as libnetwork's
                // rebuildDNS does. The file is bind-mounted, so it is rewritten in place.
                let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                let text = crate::files::embedded_resolv_conf(
                    &host,
                    &c.host_config.dns_search,
                    &c.host_config.dns_options,
                );
                if let Err(e) = std::fs::write(&c.resolv_conf_path, text) {
                    tracing::warn!(id, error = %e, "rewrite resolv.conf");
                }
            }
            Err(e) => tracing::warn!(id, error = %e, "start embedded dns"),
        }
    }

    /// Takes a stopped (or failed) container off its networks: ports, veths, addresses,
    /// names, DNS server and namespace. Idempotent; the requests stay for the next start.
    pub(crate) async fn teardown_network(&self, id: &str) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        lock(&self.inner.net.dns).remove(id);
        let driver = self.driver();
        let mut first_bridge = None;
        for ep in c.network.endpoints.values() {
            let Ok(n) = self.inspect_network(&ep.network_id) else {
                continue;
            };
            if first_bridge.is_none() {
                first_bridge = Some(n.bridge.clone());
            }
            // With the namespace gone (below) the kernel destroys its veths, host ends
            // included, in the background; deleting them here would wait for an RCU grace
            // period each (~20 ms) on the container's exit path.
            if let (Some(d), false, true) = (
                &driver,
                ep.host_veth.is_empty(),
                c.network.sandbox.is_empty(),
            ) {
                if let Err(e) = d.disconnect(&ep.host_veth).await {
                    tracing::warn!(id, error = %e, "disconnect endpoint");
                }
            }
            if let Ok(net) = ep.ip.parse::<ipnet::IpNet>() {
                let _ = lock(&self.inner.net.db).ipam.release(&n.id, net.addr());
                self.inner.net.names.remove_address(&n.id, net.addr());
            }
        }
        if let (Some(d), Some(bridge)) = (&driver, first_bridge) {
            if !c.network.ports.is_empty() {
                if let Err(e) = d.unpublish(&bridge, &c.network.ports).await {
                    tracing::warn!(id, error = %e, "unpublish ports");
                }
            }
        }
        if !c.network.sandbox.is_empty() {
            let path = PathBuf::from(&c.network.sandbox);
            let _ = tokio::task::spawn_blocking(move || remove_persistent(&path)).await;
        }
        let _ = self.update_container(id, |r| {
            r.network.sandbox.clear();
            r.network.ports.clear();
            for e in r.network.endpoints.values_mut() {
                e.endpoint_id.clear();
                e.ip.clear();
                e.gateway.clear();
                e.mac.clear();
                e.host_veth.clear();
            }
        });
    }

    /// After a daemon restart: the DNS server of a running container on user networks.
    pub(crate) async fn restore_network(&self, c: &Container) {
        let user: Vec<(String, IpAddr, Vec<String>)> = c
            .network
            .endpoints
            .iter()
            .filter(|(name, _)| name.as_str() != "bridge")
            .filter_map(|(_, e)| {
                let ip = e.ip.parse::<ipnet::IpNet>().ok()?.addr();
                Some((e.network_id.clone(), ip, e.request.aliases.clone()))
            })
            .collect();
        if user.is_empty() || c.network.sandbox.is_empty() {
            return;
        }
        for (net, ip, aliases) in &user {
            for name in dns_names(c, aliases) {
                self.inner.net.names.add(net, &name, *ip);
            }
        }
        let Ok(ns) = NetNs::from_path(&c.network.sandbox) else {
            return;
        };
        let upstreams = lock(&self.inner.net.upstreams).clone();
        let networks = user.iter().map(|(n, _, _)| n.clone()).collect();
        match DnsServer::start(&ns, self.inner.net.names.clone(), networks, upstreams).await {
            Ok(s) => {
                lock(&self.inner.net.dns).insert(c.id.clone(), s);
            }
            Err(e) => tracing::warn!(id = c.id, error = %e, "restart embedded dns"),
        }
    }
}

impl NetworkCreate {
    /// `-o com.docker.network.bridge.name=…` names the Linux bridge.
    fn options_bridge_name(&self) -> Option<String> {
        self.options
            .get("com.docker.network.bridge.name")
            .filter(|n| !n.is_empty())
            .cloned()
    }
}

/// dockerd's checks of an endpoint request against its network.
fn check_request(n: &Network, req: &EndpointRequest) -> Result<()> {
    if n.name == "bridge" && !req.aliases.is_empty() {
        return Err(EngineError::invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if !req.ipv4.is_empty() {
        let ip: IpAddr = req
            .ipv4
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid IPv4 address: {}", req.ipv4)))?;
        if n.name == "bridge" {
            return Err(EngineError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !n.subnets.iter().any(|s| s.subnet.contains(&ip)) {
            return Err(EngineError::invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    if !req.mac.is_empty() && parse_mac(&req.mac).is_none() {
        return Err(EngineError::invalid(format!(
            "invalid MAC address: {}",
            req.mac
        )));
    }
    Ok(())
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    // dockerd accepts both separators (`92-D0-C6-0A-29-33` as typed on the command line).
    let parts: Vec<u8> = s
        .split([':', '-'])
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    parts.try_into().ok()
}

/// The names a container answers to on a user-defined network: its name, its short ID, its
/// hostname and its aliases.
fn dns_names(c: &Container, aliases: &[String]) -> Vec<String> {
    let mut names = vec![c.name.clone(), c.id[..12.min(c.id.len())].to_string()];
    if !c.config.hostname.is_empty() {
        names.push(c.config.hostname.clone());
    }
    names.extend(aliases.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// The names of the container's own line in /etc/hosts.
fn hosts_names(c: &Container) -> String {
    c.config.hostname.clone()
}

/// Checks `PortBindings` at create, with the parser's (dockerd's) messages.
pub(crate) fn check_port_bindings(h: &crate::types::HostConfig) -> Result<()> {
    for (key, bindings) in &h.port_bindings {
        parse_port_key(key).map_err(|e| net_err!(e))?;
        for b in bindings {
            parse_api_binding(key, &b.host_ip, &b.host_port).map_err(|e| net_err!(e))?;
        }
    }
    Ok(())
}

/// `-p` and `-P` as port requests: bindings first, then every exposed port without one.
fn port_requests(c: &Container) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for (key, bindings) in &c.host_config.port_bindings {
        if bindings.is_empty() {
            out.push(parse_api_binding(key, "", "").map_err(|e| net_err!(e))?);
        }
        for b in bindings {
            out.push(parse_api_binding(key, &b.host_ip, &b.host_port).map_err(|e| net_err!(e))?);
        }
    }
    if c.host_config.publish_all_ports {
        for key in &c.config.exposed_ports {
            if c.host_config.port_bindings.contains_key(key) {
                continue;
            }
            for (port, proto) in parse_port_key(key).map_err(|e| net_err!(e))? {
                out.push(PortRequest {
                    container_port: port,
                    protocol: proto,
                    host_ip: None,
                    host_port: HostPort::Any,
                });
            }
        }
    }
    Ok(out)
}

fn set_loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain ioctl on a socket this function owns, with a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc < 0 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_follow_the_address_like_dockerd() {
        let ip: IpAddr = "172.17.0.2".parse().expect("ip");
        assert_eq!(mac_text(mac_for(ip)), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(mac_for(ip)));
        assert_eq!(parse_mac("zz:42"), None);
    }

    #[test]
    fn endpoint_requests_are_checked() {
        let subnet: ipnet::IpNet = "10.5.0.0/16".parse().expect("net");
        let n = Network {
            id: "n1".into(),
            name: "app".into(),
            driver: "bridge".into(),
            created: Utc::now(),
            internal: false,
            attachable: false,
            ipv6: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            subnets: vec![SubnetConfig {
                subnet,
                ip_range: None,
                gateway: "10.5.0.1".parse().expect("gw"),
                aux_addresses: BTreeMap::new(),
            }],
            bridge: "br-n1".into(),
        };
        let ok = EndpointRequest {
            ipv4: "10.5.0.9".into(),
            ..Default::default()
        };
        assert!(check_request(&n, &ok).is_ok());
        let outside = EndpointRequest {
            ipv4: "10.6.0.9".into(),
            ..Default::default()
        };
        assert!(check_request(&n, &outside).is_err());
        let default_bridge = Network {
            name: "bridge".into(),
            ..n.clone()
        };
        let alias = EndpointRequest {
            aliases: vec!["db".into()],
            ..Default::default()
        };
        assert!(check_request(&default_bridge, &alias).is_err());
    }
}
