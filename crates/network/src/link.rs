//! Links over rtnetlink: bridges, veth pairs, addresses and routes, in any network namespace.
//!
//! A [`Netlink`] is a netlink socket opened inside one namespace (on a throwaway thread, see
//! [`crate::netns`]); every request on it acts on that namespace, from any tokio task. Links
//! berth creates on the host side carry the alias [`ALIAS_TAG`]`:…`, which is how
//! [`Netlink::leftovers`] tells them from the host's own links after a crash, whatever their
//! names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::netns::{NetNs, NetNsError};
use crate::ErrorKind;

/// Prefix of the `ifalias` of every host-side link berth creates.
pub const ALIAS_TAG: &str = "berth";

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    #[error("open netlink socket in {ns}: {source}")]
    Socket { ns: String, source: std::io::Error },
    #[error("{op} {name}: {source}")]
    Netlink {
        op: &'static str,
        name: String,
        source: rtnetlink::Error,
    },
    #[error("link {0} not found")]
    NotFound(String),
    #[error("invalid interface name {0:?}: 1 to 15 characters, no '/', ':' or whitespace")]
    InvalidName(String),
    #[error("link {name} exists and is a {kind}, not a bridge")]
    NotABridge { name: String, kind: String },
}

impl LinkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LinkError::NetNs(e) => e.kind(),
            LinkError::NotFound(_) => ErrorKind::NotFound,
            LinkError::InvalidName(_) => ErrorKind::InvalidArgument,
            LinkError::NotABridge { .. } => ErrorKind::Conflict,
            LinkError::Netlink { source, .. } if errno(source) == Some(libc::EEXIST) => {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Internal,
        }
    }

    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LinkError::Netlink { source, .. } => errno(source),
            _ => None,
        }
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(op: &'static str, name: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let name = name.into();
    move |source| LinkError::Netlink { op, name, source }
}

/// Checks an interface name as the kernel's `dev_valid_name` does.
pub fn check_ifname(name: &str) -> Result<(), LinkError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(LinkError::InvalidName(name.to_owned()))
    }
}

/// What a link is, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, … ; empty for links without a kind (`lo`, physical devices).
    pub kind: String,
    pub alias: Option<String>,
    /// The bridge this link is a port of.
    pub controller: Option<u32>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: String::new(),
            alias: None,
            controller: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            mac: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
                LinkAttribute::Controller(c) => link.controller = Some(*c),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = match kind {
                                InfoKind::Bridge => "bridge".into(),
                                InfoKind::Veth => "veth".into(),
                                other => other.to_string(),
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }

    /// Whether berth created this link (its alias carries [`ALIAS_TAG`]).
    pub fn is_berths(&self) -> bool {
        self.alias
            .as_deref()
            .is_some_and(|a| a == ALIAS_TAG || a.starts_with(&format!("{ALIAS_TAG}:")))
    }
}

/// A netlink connection bound to one network namespace.
pub struct Netlink {
    handle: rtnetlink::Handle,
    ns: NetNs,
    conn: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Netlink {
    /// Opens a netlink socket inside `ns`. Must be called within a tokio runtime.
    pub async fn connect(ns: &NetNs) -> Result<Netlink, LinkError> {
        let socket_err = |source| LinkError::Socket {
            ns: ns.label().to_owned(),
            source,
        };
        let (conn, handle, _) = if ns.is_process_namespace() {
            rtnetlink::new_connection().map_err(socket_err)?
        } else {
            let rt = tokio::runtime::Handle::current();
            // The socket is created (and registered with the reactor) on a thread inside `ns`;
            // it stays in `ns` when used from the runtime's threads afterwards.
            ns.run_async(move || {
                let _guard = rt.enter();
                rtnetlink::new_connection()
            })
            .await?
            .map_err(socket_err)?
        };
        let conn = tokio::spawn(conn);
        Ok(Netlink {
            handle,
            ns: ns.clone(),
            conn,
        })
    }

    /// The namespace this connection acts on.
    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    pub async fn links(&self) -> Result<Vec<Link>, LinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list links in", self.ns.label()))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    }

    /// The link called `name`, if there is one.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, LinkError> {
        check_ifname(name)?;
        let mut stream = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(Link::from_message(&msg))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl("get link", name)(e)),
        }
    }

    async fn require(&self, name: &str) -> Result<Link, LinkError> {
        self.link(name)
            .await?
            .ok_or_else(|| LinkError::NotFound(name.to_owned()))
    }

    /// Makes sure a bridge `name` exists with `mtu` and `addresses`, and is up. Idempotent:
    /// an existing bridge keeps its other addresses. Returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        mtu: Option<u32>,
        addresses: &[IpNet],
        alias: &str,
    ) -> Result<u32, LinkError> {
        check_ifname(name)?;
        let link = match self.link(name).await? {
            Some(link) if link.kind != "bridge" => {
                return Err(LinkError::NotABridge {
                    name: name.to_owned(),
                    kind: link.kind,
                })
            }
            Some(link) => link,
            None => {
                debug!(bridge = name, ns = self.ns.label(), "create bridge");
                // A fixed MAC keeps the bridge's address from changing as ports come and go.
                let mac = random_mac();
                let msg = LinkBridge::new(name).address(mac.to_vec()).build();
                match self.handle.link().add(msg).execute().await {
                    Ok(()) => {}
                    // Created concurrently: fine, it is checked below.
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(nl("create bridge", name)(e)),
                }
                self.require(name).await?
            }
        };
        self.set_alias_mtu(link.index, alias, mtu, "configure bridge", name)
            .await?;
        for addr in addresses {
            self.add_address(link.index, name, *addr).await?;
        }
        self.set_up(link.index, name).await?;
        Ok(link.index)
    }

    /// Adds an address; an address already there is fine. IPv6 addresses skip duplicate
    /// address detection (`nodad`, as dockerd): IPAM made them unique, and DAD would leave them
    /// unusable ("tentative") for a second or two after the container starts.
    pub async fn add_address(&self, index: u32, name: &str, addr: IpNet) -> Result<(), LinkError> {
        debug!(link = name, %addr, ns = self.ns.label(), "add address");
        let mut req = self
            .handle
            .address()
            .add(index, addr.addr(), addr.prefix_len());
        if addr.addr().is_ipv6() {
            let msg = req.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl("add address to", name)(e)),
        }
    }

    /// The addresses on a link, with prefix lengths.
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNet>, LinkError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list addresses of", index.to_string()))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => IpNet::new(*ip, m.header.prefix_len).ok(),
                    _ => None,
                })
            })
            .collect())
    }

    async fn set_alias_mtu(
        &self,
        index: u32,
        alias: &str,
        mtu: Option<u32>,
        op: &'static str,
        name: &str,
    ) -> Result<(), LinkError> {
        let mut set = LinkUnspec::new_with_index(index).alias(alias);
        if let Some(mtu) = mtu {
            set = set.mtu(mtu);
        }
        self.handle
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(nl(op, name))
    }

    pub async fn set_up(&self, index: u32, name: &str) -> Result<(), LinkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl("bring up", name))
    }

    /// Creates a veth pair whose `peer` end is born inside `target`, and returns the `host`
    /// end (here, with `alias`). Unlike creating both ends here and moving one, this costs
    /// the kernel no RCU grace period (a move to another namespace waits for one, ~15 ms).
    pub async fn add_veth_into(
        &self,
        host: &str,
        peer: &str,
        target: &NetNs,
        mtu: Option<u32>,
        alias: &str,
    ) -> Result<Link, LinkError> {
        check_ifname(host)?;
        check_ifname(peer)?;
        debug!(
            host,
            peer,
            ns = self.ns.label(),
            to = target.label(),
            "create veth pair"
        );
        let mut peer_msg = LinkUnspec::new_with_name(peer);
        if let Some(mtu) = mtu {
            peer_msg = peer_msg.mtu(mtu);
        }
        let peer_msg = peer_msg.setns_by_fd(target.as_fd().as_raw_fd()).build();
        let mut msg =
            LinkVeth::new(host, peer).set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)));
        if let Some(mtu) = mtu {
            msg = msg.mtu(mtu);
        }
        self.handle
            .link()
            .add(msg.build())
            .execute()
            .await
            .map_err(nl("create veth", host))?;
        let host_link = self.require(host).await?;
        self.set_alias_mtu(host_link.index, alias, mtu, "configure veth", host)
            .await?;
        Ok(host_link)
    }

    /// Makes link `index` a port of bridge `bridge`.
    pub async fn set_controller(
        &self,
        index: u32,
        bridge: u32,
        name: &str,
    ) -> Result<(), LinkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).controller(bridge).build())
            .execute()
            .await
            .map_err(nl("attach to bridge", name))
    }

    /// Sets hairpin mode on a bridge port: frames may leave through the port they came in by
    /// (a container reaching itself through a DNATed host address).
    pub async fn set_hairpin(&self, index: u32, name: &str, on: bool) -> Result<(), LinkError> {
        self.handle
            .link()
            .set_port(LinkBridgePort::new(index).hairpin(on).build())
            .execute()
            .await
            .map_err(nl("set hairpin mode of", name))
    }

    /// Renames a (down) link and sets its MAC address and MTU.
    pub async fn configure(
        &self,
        index: u32,
        new_name: &str,
        mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<(), LinkError> {
        check_ifname(new_name)?;
        let mut set = LinkUnspec::new_with_index(index).name(new_name.to_owned());
        if let Some(mac) = mac {
            set = set.address(mac.to_vec());
        }
        if let Some(mtu) = mtu {
            set = set.mtu(mtu);
        }
        self.handle
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(nl("rename and configure", new_name))
    }

    /// Adds a default route through `gateway` on link `index`; one already there is fine.
    pub async fn add_default_route(&self, index: u32, gateway: IpAddr) -> Result<(), LinkError> {
        let msg = match gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build(),
        };
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl("add default route via", gateway.to_string())(e)),
        }
    }

    /// The destinations of this namespace's routes other than default routes: prefixes a new
    /// network's pool subnet must not overlap.
    pub async fn route_prefixes(&self) -> Result<Vec<IpNet>, LinkError> {
        let mut out = Vec::new();
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        for msg in [v4, v6] {
            let routes: Vec<_> = self
                .handle
                .route()
                .get(msg)
                .execute()
                .try_collect()
                .await
                .map_err(nl("list routes in", self.ns.label()))?;
            for r in routes {
                let len = r.header.destination_prefix_length;
                if len == 0 {
                    continue;
                }
                for attr in &r.attributes {
                    let ip = match attr {
                        RouteAttribute::Destination(RouteAddress::Inet(a)) => IpAddr::V4(*a),
                        RouteAttribute::Destination(RouteAddress::Inet6(a)) => IpAddr::V6(*a),
                        _ => continue,
                    };
                    if let Ok(net) = IpNet::new(ip, len) {
                        if !ip.is_loopback() && !net.addr().is_multicast() && !is_link_local(ip) {
                            out.push(net.trunc());
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Deletes link `name`. Returns whether it existed (deleting is idempotent).
    pub async fn delete(&self, name: &str) -> Result<bool, LinkError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        debug!(link = name, ns = self.ns.label(), "delete link");
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(nl("delete link", name)(e)),
        }
    }

    /// Links that berth created (alias [`ALIAS_TAG`]) or whose name starts with one of
    /// `prefixes`, except those named in `keep`: what a crashed daemon left behind.
    pub async fn leftovers(
        &self,
        prefixes: &[&str],
        keep: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<Link>, LinkError> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .filter(|l| l.is_berths() || prefixes.iter().any(|p| l.name.starts_with(p)))
            .filter(|l| !keep.contains(&l.name))
            .filter(|l| l.kind == "bridge" || l.kind == "veth")
            .collect())
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// A random locally administered unicast MAC address.
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// Docker's classic container MAC for an IPv4 address: `02:42:` and the address's bytes.
pub fn mac_for_ipv4(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A random name `prefix` + hex, `MAX_IFNAME` characters at most.
pub fn random_ifname(prefix: &str) -> String {
    let n = MAX_IFNAME.saturating_sub(prefix.len()).min(12);
    let hex: String = (0..n)
        .map(|_| char::from(b"0123456789abcdef"[usize::from(rand::random::<u8>() & 15)]))
        .collect();
    format!("{prefix}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        for ok in ["eth0", "br-0123456789ab", "veth1234567"] {
            assert!(check_ifname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a:b",
            "with space",
            "0123456789abcdef",
            ".",
            "..",
        ] {
            assert!(check_ifname(bad).is_err(), "{bad}");
        }
        let name = random_ifname("bveth");
        assert_eq!(name.len(), 15);
        assert!(check_ifname(&name).is_ok());
        assert_ne!(random_ifname("x"), random_ifname("x"));
    }

    #[test]
    fn macs() {
        let m = random_mac();
        assert_eq!(m[0] & 1, 0, "unicast");
        assert_eq!(m[0] & 2, 2, "locally administered");
        assert_eq!(
            mac_for_ipv4(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 172, 17, 0, 2]
        );
    }
}
