//! IP address management: subnets for networks and addresses for endpoints, with Docker's rules.
//!
//! - A network without a subnet gets the first free subnet of the address pools
//!   ([`default_pools`]: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 … 192.168.240.0/20,
//!   so the default bridge, created first, gets 172.17.0.0/16). A pool subnet overlapping another
//!   network's or one of the caller's `avoid` prefixes (the host's routes) is skipped.
//! - The gateway is the subnet's first host address unless given; the network address, the IPv4
//!   broadcast, the gateway and the auxiliary addresses are never handed out.
//! - Dynamic addresses come from `ip_range` (or the whole subnet), serially: the next free after
//!   the last one handed out, wrapping around, so a released address is not reused at once.
//!   A static address may be anywhere in the subnet.
//!
//! The allocator is plain data: it serializes with serde, and [`Ipam::rebuild`] makes it again
//! from the networks' subnets and their endpoints' addresses (what the engine's records hold).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network {0} already has an address allocation")]
    NetworkExists(String),
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    PoolsExhausted,
    #[error("Pool overlaps with other one on this address space")]
    Overlap { subnet: IpNet, other: String },
    #[error("invalid pool request: {0}")]
    InvalidRequest(String),
    #[error("no matching subnet for gateway {0}")]
    GatewayOutside(IpAddr),
    #[error("no matching subnet for range {0}")]
    RangeOutside(IpNet),
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    AddressOutside(IpAddr),
    #[error("Address already in use")]
    AddressInUse(IpAddr),
    #[error("no available addresses on this pool")]
    NoAvailableAddress,
    #[error("no {family} subnet on network {network}")]
    NoSubnetForFamily {
        network: String,
        family: &'static str,
    },
}

impl IpamError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            IpamError::NetworkNotFound(_) => ErrorKind::NotFound,
            IpamError::NetworkExists(_)
            | IpamError::Overlap { .. }
            | IpamError::AddressInUse(_)
            | IpamError::PoolsExhausted
            | IpamError::NoAvailableAddress => ErrorKind::Conflict,
            IpamError::InvalidRequest(_)
            | IpamError::GatewayOutside(_)
            | IpamError::RangeOutside(_)
            | IpamError::AddressOutside(_)
            | IpamError::NoSubnetForFamily { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// An address pool: `base` is cut into subnets of prefix length `size`
/// (dockerd's `default-address-pools` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub base: IpNet,
    pub size: u8,
}

/// Docker's local-scope default pools, in order.
pub fn default_pools() -> Vec<Pool> {
    let v4 = |a, b, len, size| Pool {
        base: IpNet::V4(Ipv4Net::new(Ipv4Addr::new(a, b, 0, 0), len).unwrap_or_default()),
        size,
    };
    vec![
        v4(172, 17, 16, 16),
        v4(172, 18, 16, 16),
        v4(172, 19, 16, 16),
        v4(172, 20, 14, 16),
        v4(172, 24, 14, 16),
        v4(172, 28, 14, 16),
        v4(192, 168, 16, 20),
    ]
}

/// What a network asks for, per subnet (`docker network create --subnet --ip-range --gateway
/// --aux-address`). An empty list of requests means one IPv4 subnet from the pools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRequest {
    pub subnet: Option<IpNet>,
    pub ip_range: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// A network's subnet as allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: IpNet,
    pub ip_range: Option<IpNet>,
    pub gateway: IpAddr,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl SubnetConfig {
    /// The gateway with the subnet's prefix length: the bridge's address.
    pub fn gateway_net(&self) -> IpNet {
        // The prefix length comes from a valid subnet of the same family.
        IpNet::new(self.gateway, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    /// `addr` with the subnet's prefix length: an endpoint's address.
    pub fn with_prefix(&self, addr: IpAddr) -> IpNet {
        IpNet::new(addr, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }
}

/// Which address an endpoint asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRequest {
    /// The next free address of the network's first subnet of this family.
    Any(Family),
    /// This exact address (`--ip`, `--ip6`).
    Static(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SubnetState {
    config: SubnetConfig,
    allocated: BTreeSet<IpAddr>,
    /// The last address handed out dynamically: the next search starts after it.
    last: Option<IpAddr>,
}

/// The allocator: pools plus every network's subnets and allocated addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    pools: Vec<Pool>,
    networks: BTreeMap<String, Vec<SubnetState>>,
}

impl Default for Ipam {
    fn default() -> Self {
        Ipam::new(default_pools())
    }
}

/// One network as recorded by the caller, to [`Ipam::rebuild`] from.
#[derive(Debug, Clone)]
pub struct NetworkRecord {
    pub id: String,
    pub subnets: Vec<SubnetConfig>,
    pub addresses: Vec<IpAddr>,
}

impl Ipam {
    pub fn new(pools: Vec<Pool>) -> Ipam {
        Ipam {
            pools,
            networks: BTreeMap::new(),
        }
    }

    /// The allocator again from the caller's records. Conflicting records (overlapping subnets,
    /// an address outside its network or given twice) are errors: the records are corrupt.
    pub fn rebuild(
        pools: Vec<Pool>,
        records: impl IntoIterator<Item = NetworkRecord>,
    ) -> Result<Ipam, IpamError> {
        let mut ipam = Ipam::new(pools);
        for record in records {
            let requests: Vec<SubnetRequest> = record
                .subnets
                .iter()
                .map(|s| SubnetRequest {
                    subnet: Some(s.subnet),
                    ip_range: s.ip_range,
                    gateway: Some(s.gateway),
                    aux_addresses: s.aux_addresses.clone(),
                })
                .collect();
            ipam.create_network(&record.id, &requests, &[])?;
            for addr in record.addresses {
                ipam.allocate(&record.id, AddressRequest::Static(addr))?;
            }
        }
        Ok(ipam)
    }

    /// Allocates the subnets of a new network. `avoid` holds prefixes a pool subnet must not
    /// overlap (the host's routes); explicit subnets are not checked against it, as in Docker.
    pub fn create_network(
        &mut self,
        id: &str,
        requests: &[SubnetRequest],
        avoid: &[IpNet],
    ) -> Result<Vec<SubnetConfig>, IpamError> {
        if self.networks.contains_key(id) {
            return Err(IpamError::NetworkExists(id.to_owned()));
        }
        let default_request = [SubnetRequest::default()];
        let requests = if requests.is_empty() {
            &default_request[..]
        } else {
            requests
        };
        let mut states: Vec<SubnetState> = Vec::new();
        for request in requests {
            let subnet = match request.subnet {
                Some(subnet) => {
                    let subnet = subnet.trunc();
                    if let Some(other) = self.overlapping(&subnet) {
                        return Err(IpamError::Overlap { subnet, other });
                    }
                    if states.iter().any(|s| overlaps(&s.config.subnet, &subnet)) {
                        return Err(IpamError::Overlap {
                            subnet,
                            other: id.to_owned(),
                        });
                    }
                    subnet
                }
                None => {
                    if request.ip_range.is_some() || request.gateway.is_some() {
                        return Err(IpamError::InvalidRequest(
                            "ip-range and gateway need a subnet".into(),
                        ));
                    }
                    let taken: Vec<IpNet> = states.iter().map(|s| s.config.subnet).collect();
                    self.pick_from_pools(avoid, &taken)?
                }
            };
            states.push(SubnetState::new(subnet, request)?);
        }
        let configs = states.iter().map(|s| s.config.clone()).collect();
        self.networks.insert(id.to_owned(), states);
        Ok(configs)
    }

    /// Forgets a network and its addresses; its pool subnet is free again.
    pub fn delete_network(&mut self, id: &str) -> Result<(), IpamError> {
        self.networks
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| IpamError::NetworkNotFound(id.to_owned()))
    }

    /// A network's subnets.
    pub fn network(&self, id: &str) -> Option<Vec<SubnetConfig>> {
        self.networks
            .get(id)
            .map(|s| s.iter().map(|s| s.config.clone()).collect())
    }

    /// The addresses allocated on a network, sorted.
    pub fn addresses(&self, id: &str) -> Vec<IpAddr> {
        self.networks
            .get(id)
            .map(|s| s.iter().flat_map(|s| s.allocated.iter().copied()).collect())
            .unwrap_or_default()
    }

    /// Hands out an address. The returned [`SubnetConfig`] is the subnet it belongs to (its
    /// prefix length and gateway are the endpoint's).
    pub fn allocate(
        &mut self,
        id: &str,
        request: AddressRequest,
    ) -> Result<(IpAddr, SubnetConfig), IpamError> {
        let subnets = self
            .networks
            .get_mut(id)
            .ok_or_else(|| IpamError::NetworkNotFound(id.to_owned()))?;
        match request {
            AddressRequest::Static(addr) => {
                let state = subnets
                    .iter_mut()
                    .find(|s| s.config.subnet.contains(&addr))
                    .ok_or(IpamError::AddressOutside(addr))?;
                state.take_static(addr)?;
                Ok((addr, state.config.clone()))
            }
            AddressRequest::Any(family) => {
                let state = subnets
                    .iter_mut()
                    .find(|s| Family::of(&s.config.subnet) == family)
                    .ok_or_else(|| IpamError::NoSubnetForFamily {
                        network: id.to_owned(),
                        family: family.name(),
                    })?;
                let addr = state.take_next()?;
                Ok((addr, state.config.clone()))
            }
        }
    }

    /// Gives an address back. Releasing an address that is not allocated is not an error
    /// (teardown after a crash may release twice).
    pub fn release(&mut self, id: &str, addr: IpAddr) -> Result<(), IpamError> {
        let subnets = self
            .networks
            .get_mut(id)
            .ok_or_else(|| IpamError::NetworkNotFound(id.to_owned()))?;
        for state in subnets {
            state.allocated.remove(&addr);
        }
        Ok(())
    }

    fn overlapping(&self, subnet: &IpNet) -> Option<String> {
        self.networks.iter().find_map(|(id, states)| {
            states
                .iter()
                .any(|s| overlaps(&s.config.subnet, subnet))
                .then(|| id.clone())
        })
    }

    fn pick_from_pools(&self, avoid: &[IpNet], taken: &[IpNet]) -> Result<IpNet, IpamError> {
        for pool in &self.pools {
            let Ok(subnets) = pool.base.subnets(pool.size) else {
                continue;
            };
            for subnet in subnets {
                if self.overlapping(&subnet).is_none()
                    && !avoid.iter().any(|a| overlaps(a, &subnet))
                    && !taken.iter().any(|t| overlaps(t, &subnet))
                {
                    return Ok(subnet);
                }
            }
        }
        Err(IpamError::PoolsExhausted)
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(family: Family, n: u128) -> IpAddr {
    match family {
        // Only called with values inside an IPv4 subnet.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(0))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

impl SubnetState {
    fn new(subnet: IpNet, request: &SubnetRequest) -> Result<SubnetState, IpamError> {
        let family = Family::of(&subnet);
        let (first, last) = (to_u128(subnet.network()), to_u128(subnet.broadcast()));
        if last.saturating_sub(first) < 2 {
            return Err(IpamError::InvalidRequest(format!(
                "subnet {subnet} has no room for a gateway and endpoints"
            )));
        }
        let gateway = match request.gateway {
            Some(gw) => {
                if !subnet.contains(&gw) || gw == subnet.network() {
                    return Err(IpamError::GatewayOutside(gw));
                }
                gw
            }
            None => from_u128(family, first + 1),
        };
        let ip_range = match request.ip_range {
            Some(range) => {
                let range = range.trunc();
                if !subnet.contains(&range) {
                    return Err(IpamError::RangeOutside(range));
                }
                Some(range)
            }
            None => None,
        };
        for addr in request.aux_addresses.values() {
            if !subnet.contains(addr) {
                return Err(IpamError::InvalidRequest(format!(
                    "auxiliary address {addr} is outside subnet {subnet}"
                )));
            }
        }
        Ok(SubnetState {
            config: SubnetConfig {
                subnet,
                ip_range,
                gateway,
                aux_addresses: request.aux_addresses.clone(),
            },
            allocated: BTreeSet::new(),
            last: None,
        })
    }

    fn reserved(&self, addr: IpAddr) -> bool {
        let subnet = &self.config.subnet;
        addr == subnet.network()
            || (matches!(subnet, IpNet::V4(_)) && addr == subnet.broadcast())
            || addr == self.config.gateway
            || self.config.aux_addresses.values().any(|a| *a == addr)
    }

    fn take_static(&mut self, addr: IpAddr) -> Result<(), IpamError> {
        if self.reserved(addr) || self.allocated.contains(&addr) {
            return Err(IpamError::AddressInUse(addr));
        }
        self.allocated.insert(addr);
        Ok(())
    }

    fn take_next(&mut self) -> Result<IpAddr, IpamError> {
        let family = Family::of(&self.config.subnet);
        let range = self.config.ip_range.unwrap_or(self.config.subnet);
        let (lo, hi) = (to_u128(range.network()), to_u128(range.broadcast()));
        let size = hi - lo + 1;
        let start = match self.last.map(to_u128) {
            Some(last) if (lo..=hi).contains(&last) => last + 1,
            _ => lo,
        };
        // Every taken address in the range is allocated or reserved, so a free one is found
        // within that many steps, or there is none.
        let reserved = 3 + self.config.aux_addresses.len() as u128;
        let steps = size.min(self.allocated.len() as u128 + reserved + 1);
        for i in 0..steps {
            let n = lo + (start - lo + i) % size;
            let addr = from_u128(family, n);
            if !self.reserved(addr) && !self.allocated.contains(&addr) {
                self.allocated.insert(addr);
                self.last = Some(addr);
                return Ok(addr);
            }
        }
        Err(IpamError::NoAvailableAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn req(subnet: &str, range: &str, gw: &str) -> SubnetRequest {
        SubnetRequest {
            subnet: (!subnet.is_empty()).then(|| net(subnet)),
            ip_range: (!range.is_empty()).then(|| net(range)),
            gateway: (!gw.is_empty()).then(|| ip(gw)),
            aux_addresses: BTreeMap::new(),
        }
    }

    #[test]
    fn pools_in_docker_order() {
        let mut ipam = Ipam::default();
        let mut got = Vec::new();
        for i in 0..17 {
            let cfg = ipam.create_network(&format!("n{i}"), &[], &[]).expect("ok");
            got.push(cfg[0].subnet.to_string());
        }
        assert_eq!(got[0], "172.17.0.0/16");
        assert_eq!(got[1], "172.18.0.0/16");
        assert_eq!(got[14], "172.31.0.0/16");
        assert_eq!(got[15], "192.168.0.0/20");
        assert_eq!(got[16], "192.168.16.0/20");
        // A deleted network's subnet is the first free one again.
        ipam.delete_network("n1").expect("ok");
        let cfg = ipam.create_network("again", &[], &[]).expect("ok");
        assert_eq!(cfg[0].subnet, net("172.18.0.0/16"));
        assert_eq!(cfg[0].gateway, ip("172.18.0.1"));
    }

    #[test]
    fn pools_skip_avoided_and_explicit_subnets() {
        let mut ipam = Ipam::default();
        ipam.create_network("a", &[req("172.17.5.0/24", "", "")], &[])
            .expect("ok");
        let cfg = ipam
            .create_network("b", &[], &[net("172.18.0.0/24")])
            .expect("ok");
        assert_eq!(cfg[0].subnet, net("172.19.0.0/16"));
    }

    #[test]
    fn pools_exhausted() {
        let mut ipam = Ipam::new(vec![Pool {
            base: net("10.99.0.0/23"),
            size: 24,
        }]);
        assert!(ipam.create_network("a", &[], &[]).is_ok());
        assert!(ipam.create_network("b", &[], &[]).is_ok());
        assert_eq!(
            ipam.create_network("c", &[], &[]),
            Err(IpamError::PoolsExhausted)
        );
    }

    /// (requests, expected (subnet, range, gateway) or error)
    #[test]
    fn create_table() {
        type Case = (
            Vec<SubnetRequest>,
            Result<Vec<(&'static str, &'static str)>, IpamError>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![req("10.1.0.0/24", "", "")],
                Ok(vec![("10.1.0.0/24", "10.1.0.1")]),
            ),
            (
                vec![req("10.1.0.7/24", "", "")],
                Ok(vec![("10.1.0.0/24", "10.1.0.1")]),
            ),
            (
                vec![req("10.1.0.0/24", "10.1.0.128/25", "10.1.0.254")],
                Ok(vec![("10.1.0.0/24", "10.1.0.254")]),
            ),
            (
                vec![req("10.1.0.0/24", "", ""), req("fd00:1::/64", "", "")],
                Ok(vec![
                    ("10.1.0.0/24", "10.1.0.1"),
                    ("fd00:1::/64", "fd00:1::1"),
                ]),
            ),
            (
                vec![req("10.1.0.0/24", "", "10.2.0.1")],
                Err(IpamError::GatewayOutside(ip("10.2.0.1"))),
            ),
            (
                vec![req("10.1.0.0/24", "10.1.1.0/25", "")],
                Err(IpamError::RangeOutside(net("10.1.1.0/25"))),
            ),
            (
                vec![req("", "", "10.2.0.1")],
                Err(IpamError::InvalidRequest(
                    "ip-range and gateway need a subnet".into(),
                )),
            ),
            (
                vec![req("10.1.0.0/31", "", "")],
                Err(IpamError::InvalidRequest(
                    "subnet 10.1.0.0/31 has no room for a gateway and endpoints".into(),
                )),
            ),
            (
                vec![req("10.1.0.0/16", "", ""), req("10.1.2.0/24", "", "")],
                Err(IpamError::Overlap {
                    subnet: net("10.1.2.0/24"),
                    other: "x".into(),
                }),
            ),
        ];
        for (requests, want) in cases {
            let mut ipam = Ipam::default();
            let got = ipam.create_network("x", &requests, &[]).map(|cfgs| {
                cfgs.iter()
                    .map(|c| (c.subnet.to_string(), c.gateway.to_string()))
                    .collect::<Vec<_>>()
            });
            let want = want.map(|v| {
                v.iter()
                    .map(|(s, g)| (s.to_string(), g.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, want, "{requests:?}");
            if got.is_err() {
                assert!(ipam.network("x").is_none(), "failed create leaves nothing");
            }
        }
    }

    #[test]
    fn overlap_with_other_network_is_conflict() {
        let mut ipam = Ipam::default();
        ipam.create_network("a", &[req("10.1.0.0/16", "", "")], &[])
            .expect("ok");
        let err = ipam
            .create_network("b", &[req("10.1.2.0/24", "", "")], &[])
            .err();
        assert_eq!(
            err,
            Some(IpamError::Overlap {
                subnet: net("10.1.2.0/24"),
                other: "a".into()
            })
        );
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::Conflict));
        assert_eq!(
            ipam.create_network("a", &[], &[]),
            Err(IpamError::NetworkExists("a".into()))
        );
    }

    fn alloc(ipam: &mut Ipam, id: &str, r: AddressRequest) -> Result<String, IpamError> {
        ipam.allocate(id, r).map(|(a, _)| a.to_string())
    }

    #[test]
    fn serial_allocation_skips_reserved_and_wraps() {
        let mut ipam = Ipam::default();
        let mut aux = req("10.1.0.0/29", "", "10.1.0.3");
        aux.aux_addresses.insert("printer".into(), ip("10.1.0.5"));
        ipam.create_network("n", &[aux], &[]).expect("ok");
        let any = AddressRequest::Any(Family::V4);
        // .0 network, .3 gateway, .5 aux, .7 broadcast
        let got: Vec<_> = (0..4).map(|_| alloc(&mut ipam, "n", any)).collect();
        assert_eq!(
            got,
            vec![
                Ok("10.1.0.1".into()),
                Ok("10.1.0.2".into()),
                Ok("10.1.0.4".into()),
                Ok("10.1.0.6".into())
            ]
        );
        assert_eq!(
            alloc(&mut ipam, "n", any),
            Err(IpamError::NoAvailableAddress)
        );
        // Released addresses come back only after the others: serial, wrapping.
        ipam.release("n", ip("10.1.0.2")).expect("ok");
        ipam.release("n", ip("10.1.0.1")).expect("ok");
        assert_eq!(alloc(&mut ipam, "n", any), Ok("10.1.0.1".into()));
        assert_eq!(alloc(&mut ipam, "n", any), Ok("10.1.0.2".into()));
        ipam.release("n", ip("10.1.0.4")).expect("ok");
        ipam.release("n", ip("10.1.0.4")).expect("ok");
        assert_eq!(alloc(&mut ipam, "n", any), Ok("10.1.0.4".into()));
    }

    #[test]
    fn ip_range_limits_dynamic_not_static() {
        let mut ipam = Ipam::default();
        ipam.create_network("n", &[req("10.1.0.0/24", "10.1.0.128/30", "")], &[])
            .expect("ok");
        let any = AddressRequest::Any(Family::V4);
        assert_eq!(alloc(&mut ipam, "n", any), Ok("10.1.0.128".into()));
        assert_eq!(
            alloc(&mut ipam, "n", AddressRequest::Static(ip("10.1.0.9"))),
            Ok("10.1.0.9".into())
        );
        assert_eq!(alloc(&mut ipam, "n", any), Ok("10.1.0.129".into()));
    }

    #[test]
    fn static_requests() {
        let mut ipam = Ipam::default();
        ipam.create_network(
            "n",
            &[req("10.1.0.0/24", "", ""), req("fd00::/64", "", "")],
            &[],
        )
        .expect("ok");
        let st = |s: &str| AddressRequest::Static(ip(s));
        let cases = [
            ("10.1.0.20", Ok("10.1.0.20".to_string())),
            ("10.1.0.20", Err(IpamError::AddressInUse(ip("10.1.0.20")))),
            ("10.1.0.1", Err(IpamError::AddressInUse(ip("10.1.0.1")))),
            ("10.1.0.0", Err(IpamError::AddressInUse(ip("10.1.0.0")))),
            ("10.1.0.255", Err(IpamError::AddressInUse(ip("10.1.0.255")))),
            ("10.2.0.5", Err(IpamError::AddressOutside(ip("10.2.0.5")))),
            ("fd00::42", Ok("fd00::42".to_string())),
        ];
        for (addr, want) in cases {
            assert_eq!(alloc(&mut ipam, "n", st(addr)), want, "{addr}");
        }
        assert_eq!(
            alloc(&mut ipam, "n", AddressRequest::Any(Family::V6)),
            Ok("fd00::2".into())
        );
        assert_eq!(
            alloc(&mut ipam, "missing", st("10.1.0.3")),
            Err(IpamError::NetworkNotFound("missing".into()))
        );
    }

    #[test]
    fn no_subnet_of_family() {
        let mut ipam = Ipam::default();
        ipam.create_network("n", &[], &[]).expect("ok");
        let err = ipam.allocate("n", AddressRequest::Any(Family::V6)).err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidArgument));
    }

    #[test]
    fn serde_round_trip_and_rebuild() -> Result<(), Box<dyn std::error::Error>> {
        let mut ipam = Ipam::default();
        let cfgs = ipam.create_network("bridge", &[], &[])?;
        let user = ipam.create_network("user", &[req("10.5.0.0/24", "10.5.0.64/26", "")], &[])?;
        let any = AddressRequest::Any(Family::V4);
        let a = ipam.allocate("bridge", any)?.0;
        let b = ipam.allocate("bridge", any)?.0;
        let c = ipam.allocate("user", any)?.0;

        let json = serde_json::to_string(&ipam)?;
        let back: Ipam = serde_json::from_str(&json)?;
        assert_eq!(back, ipam);

        let mut rebuilt = Ipam::rebuild(
            default_pools(),
            [
                NetworkRecord {
                    id: "bridge".into(),
                    subnets: cfgs,
                    addresses: vec![a, b],
                },
                NetworkRecord {
                    id: "user".into(),
                    subnets: user,
                    addresses: vec![c],
                },
            ],
        )?;
        assert_eq!(rebuilt.addresses("bridge"), vec![a, b]);
        // The next network still gets the next pool, and taken addresses stay taken.
        let next = rebuilt.create_network("third", &[], &[])?;
        assert_eq!(next[0].subnet, net("172.18.0.0/16"));
        assert_eq!(
            rebuilt.allocate("bridge", AddressRequest::Static(a)).err(),
            Some(IpamError::AddressInUse(a))
        );
        let d = rebuilt.allocate("bridge", any)?.0;
        assert!(d != a && d != b);
        Ok(())
    }
}
