//! The embedded DNS server: `127.0.0.11:53` inside each container on a user network, as
//! dockerd's.
//!
//! Container names and aliases are answered from a [`Names`] table the engine keeps up to date
//! (per network; a container sees the names of the networks it is attached to). Everything
//! else is forwarded to the host's resolvers (`/etc/resolv.conf` of the daemon, see
//! [`upstreams_from_resolv_conf`]) from the daemon's own namespace, so a host resolver on
//! loopback (systemd-resolved's 127.0.0.53) works too.
//!
//! The server's sockets are bound inside the container's namespace (UDP and TCP; all of
//! 127.0.0.0/8 is local as soon as `lo` is up) and served by the daemon's runtime. Answers for
//! local names have TTL 600 and are authoritative-free (`ra` set, as dockerd); a known name
//! without records of the asked type gets an empty NOERROR answer, an unknown one is
//! forwarded; when no upstream answers the client gets SERVFAIL. PTR queries for a local
//! address are answered with its names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::netns::{NetNs, NetNsError};
use crate::ErrorKind;

/// Where containers find the server.
pub const DNS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);
/// TTL of local answers (dockerd's).
pub const LOCAL_TTL: u32 = 600;
/// How long one upstream gets to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Error)]
pub enum DnsError {
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    #[error("embedded dns: bind {addr} in {ns}: {source}")]
    Bind {
        addr: SocketAddr,
        ns: String,
        source: std::io::Error,
    },
}

impl DnsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DnsError::NetNs(e) => e.kind(),
            DnsError::Bind { .. } => ErrorKind::Internal,
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The names of every network: network id → name → addresses. Shared by all the servers.
#[derive(Debug, Default)]
pub struct Names {
    inner: RwLock<BTreeMap<String, BTreeMap<String, BTreeSet<IpAddr>>>>,
}

impl Names {
    pub fn new() -> Arc<Names> {
        Arc::new(Names::default())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, BTreeMap<String, BTreeSet<IpAddr>>>> {
        // Plain data, consistent after every write.
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BTreeMap<String, BTreeSet<IpAddr>>>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `name` → `ip` on `network` (a container's name, an alias, a short id).
    pub fn add(&self, network: &str, name: &str, ip: IpAddr) {
        self.write()
            .entry(network.to_owned())
            .or_default()
            .entry(normalize(name))
            .or_default()
            .insert(ip);
    }

    /// Removes `name` → `ip` on `network`.
    pub fn remove(&self, network: &str, name: &str, ip: IpAddr) {
        let mut all = self.write();
        if let Some(names) = all.get_mut(network) {
            let key = normalize(name);
            if let Some(ips) = names.get_mut(&key) {
                ips.remove(&ip);
                if ips.is_empty() {
                    names.remove(&key);
                }
            }
        }
    }

    /// Removes every name of `ip` on `network` (an endpoint leaving).
    pub fn remove_address(&self, network: &str, ip: IpAddr) {
        if let Some(names) = self.write().get_mut(network) {
            names.retain(|_, ips| {
                ips.remove(&ip);
                !ips.is_empty()
            });
        }
    }

    pub fn remove_network(&self, network: &str) {
        self.write().remove(network);
    }

    /// The addresses of `name` on any of `networks`; `None` when the name is unknown there.
    pub fn lookup(&self, networks: &[String], name: &str) -> Option<Vec<IpAddr>> {
        let key = normalize(name);
        let all = self.read();
        let mut found: Option<BTreeSet<IpAddr>> = None;
        for n in networks {
            if let Some(ips) = all.get(n).and_then(|names| names.get(&key)) {
                found.get_or_insert_with(BTreeSet::new).extend(ips);
            }
        }
        found.map(|s| s.into_iter().collect())
    }

    /// The names of `ip` on any of `networks`.
    pub fn reverse(&self, networks: &[String], ip: IpAddr) -> Vec<String> {
        let all = self.read();
        let mut out = BTreeSet::new();
        for n in networks {
            if let Some(names) = all.get(n) {
                out.extend(
                    names
                        .iter()
                        .filter(|(_, ips)| ips.contains(&ip))
                        .map(|(name, _)| name.clone()),
                );
            }
        }
        out.into_iter().collect()
    }
}

/// The `nameserver` lines of a resolv.conf, as port-53 socket addresses, without the embedded
/// server itself.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        // A zone index (fe80::1%eth0) can't be used from another namespace's view; skip it.
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .filter(|ip| *ip != DNS_ADDR.ip())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The answer to one query message, or `None` to forward it.
fn answer_locally(query: &Message, names: &Names, networks: &[String]) -> Option<Message> {
    let q = query.queries.first()?;
    if query.metadata.op_code != OpCode::Query || query.queries.len() != 1 {
        return None;
    }
    let qname = q.name.to_ascii();
    let mut answers: Vec<Record> = Vec::new();
    match q.query_type {
        RecordType::PTR => {
            let ip = q.name.parse_arpa_name().ok()?;
            let owners = names.reverse(networks, ip.addr());
            if owners.is_empty() || ip.prefix_len() != ip.max_prefix_len() {
                return None;
            }
            for owner in owners {
                let target = Name::from_ascii(format!("{owner}.")).ok()?;
                answers.push(Record::from_rdata(
                    q.name.clone(),
                    LOCAL_TTL,
                    RData::PTR(PTR(target)),
                ));
            }
        }
        RecordType::A | RecordType::AAAA | RecordType::ANY => {
            let ips = names.lookup(networks, &qname)?;
            for ip in ips {
                let rdata = match (ip, q.query_type) {
                    (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(v4)),
                    (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                answers.push(Record::from_rdata(q.name.clone(), LOCAL_TTL, rdata));
            }
        }
        _ => {
            // A local name has only addresses: other types get an empty answer.
            names.lookup(networks, &qname)?;
        }
    }
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = ResponseCode::NoError;
    reply.queries = query.queries.clone();
    reply.answers = answers;
    Some(reply)
}

fn servfail(query: &Message) -> Option<Vec<u8>> {
    let mut reply = Message::error_msg(
        query.metadata.id,
        query.metadata.op_code,
        ResponseCode::ServFail,
    );
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = query.queries.clone();
    reply.to_vec().ok()
}

struct Resolver {
    names: Arc<Names>,
    networks: Arc<RwLock<Vec<String>>>,
    upstreams: Vec<SocketAddr>,
}

impl Resolver {
    /// The reply bytes for one query, or `None` to drop it (unparseable).
    async fn handle(&self, packet: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let query = Message::from_vec(packet).ok()?;
        if query.metadata.message_type != MessageType::Query {
            return None;
        }
        let networks = self
            .networks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(reply) = answer_locally(&query, &self.names, &networks) {
            return reply.to_vec().ok();
        }
        for upstream in &self.upstreams {
            let result = if tcp {
                forward_tcp(packet, *upstream).await
            } else {
                forward_udp(packet, *upstream, query.metadata.id).await
            };
            match result {
                Ok(reply) => return Some(reply),
                Err(e) => debug!(%upstream, error = %e, "embedded dns: upstream failed"),
            }
        }
        servfail(&query)
    }
}

/// Forwards over UDP from the daemon's namespace (the calling runtime's threads).
async fn forward_udp(packet: &[u8], upstream: SocketAddr, id: u16) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(packet).await?;
    let mut buf = vec![0u8; 65_535];
    tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        loop {
            let n = socket.recv(&mut buf).await?;
            // Only the answer to this query (same id) counts.
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Ok(buf[..n].to_vec());
            }
        }
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream timed out"))?
}

async fn forward_tcp(packet: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        let mut s = TcpStream::connect(upstream).await?;
        let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(packet).await?;
        read_tcp_message(&mut s).await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream timed out"))?
}

async fn read_tcp_message(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

/// One container's embedded DNS server. Dropping it stops it.
pub struct DnsServer {
    networks: Arc<RwLock<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Starts a server on [`DNS_ADDR`] inside `container`, answering the names of `networks`.
    pub async fn start(
        container: &NetNs,
        names: Arc<Names>,
        networks: Vec<String>,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer, DnsError> {
        DnsServer::start_on(container, DNS_ADDR, names, networks, upstreams).await
    }

    /// As [`DnsServer::start`], on another address (tests; port 0 picks one).
    pub async fn start_on(
        container: &NetNs,
        addr: SocketAddr,
        names: Arc<Names>,
        networks: Vec<String>,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer, DnsError> {
        let bind_err = |source| DnsError::Bind {
            addr,
            ns: container.label().to_owned(),
            source,
        };
        let (udp, tcp) = container
            .run_async(
                move || -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
                    // UDP and TCP share one port. With port 0 the kernel picks a free UDP port
                    // whose TCP twin may be taken (a busy namespace, such as the host's in
                    // tests): then pick again.
                    let mut attempts = 0;
                    loop {
                        let udp = std::net::UdpSocket::bind(addr)?;
                        match std::net::TcpListener::bind(udp.local_addr()?) {
                            Ok(tcp) => {
                                udp.set_nonblocking(true)?;
                                tcp.set_nonblocking(true)?;
                                return Ok((udp, tcp));
                            }
                            Err(e)
                                if addr.port() == 0
                                    && e.kind() == std::io::ErrorKind::AddrInUse
                                    && attempts < 16 =>
                            {
                                attempts += 1;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                },
            )
            .await?
            .map_err(bind_err)?;
        let bound = udp.local_addr().map_err(bind_err)?;
        let udp = UdpSocket::from_std(udp).map_err(bind_err)?;
        let tcp = TcpListener::from_std(tcp).map_err(bind_err)?;
        let networks = Arc::new(RwLock::new(networks));
        let resolver = Arc::new(Resolver {
            names,
            networks: networks.clone(),
            upstreams,
        });
        let tasks = vec![
            tokio::spawn(serve_udp(Arc::new(udp), resolver.clone())),
            tokio::spawn(serve_tcp(tcp, resolver)),
        ];
        debug!(addr = %bound, ns = container.label(), "embedded dns started");
        Ok(DnsServer {
            networks,
            tasks,
            addr: bound,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The networks whose names this container sees (it connected or disconnected).
    pub fn set_networks(&self, networks: Vec<String>) {
        *self.networks.write().unwrap_or_else(|p| p.into_inner()) = networks;
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, resolver: Arc<Resolver>) {
    let mut buf = vec![0u8; 65_535];
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                if inflight.len() >= 256 {
                    continue;
                }
                let packet = buf[..n].to_vec();
                let (socket, resolver) = (socket.clone(), resolver.clone());
                inflight.spawn(async move {
                    if let Some(reply) = resolver.handle(&packet, false).await {
                        let reply = truncate_for_udp(reply);
                        let _ = socket.send_to(&reply, client).await;
                    }
                });
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
}

/// A reply too long for plain UDP (512 bytes without EDNS) gets the TC bit and no records,
/// so the client asks again over TCP.
fn truncate_for_udp(reply: Vec<u8>) -> Vec<u8> {
    if reply.len() <= 4096 {
        return reply;
    }
    match Message::from_vec(&reply) {
        Ok(msg) => msg.truncate().to_vec().unwrap_or(reply),
        Err(_) => reply,
    }
}

async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let resolver = resolver.clone();
                conns.spawn(async move {
                    while let Ok(Ok(packet)) =
                        tokio::time::timeout(Duration::from_secs(10), read_tcp_message(&mut stream)).await
                    {
                        let Some(reply) = resolver.handle(&packet, true).await else { return };
                        let Ok(len) = u16::try_from(reply.len()) else { return };
                        if stream.write_all(&len.to_be_bytes()).await.is_err()
                            || stream.write_all(&reply).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::*;

    fn query(name: &str, ty: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
        m
    }

    fn ips(reply: &Message) -> Vec<String> {
        reply
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                RData::PTR(p) => p.0.to_ascii(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn names_table() {
        let names = Names::new();
        let web4: IpAddr = "172.18.0.2".parse().expect("ip");
        let web6: IpAddr = "fd00::2".parse().expect("ip");
        names.add("n1", "Web", web4);
        names.add("n1", "web", web6);
        names.add("n1", "alias", web4);
        names.add("n2", "db", "172.19.0.2".parse().expect("ip"));
        let n1 = vec!["n1".to_string()];
        let both = vec!["n1".to_string(), "n2".to_string()];

        type Case<'a> = (&'a str, RecordType, &'a [String], Option<Vec<&'a str>>);
        let cases: Vec<Case> = vec![
            ("web.", RecordType::A, &n1, Some(vec!["172.18.0.2"])),
            ("WEB", RecordType::AAAA, &n1, Some(vec!["fd00::2"])),
            ("alias.", RecordType::A, &n1, Some(vec!["172.18.0.2"])),
            ("web.", RecordType::MX, &n1, Some(vec![])),
            ("db.", RecordType::A, &n1, None),
            ("db.", RecordType::A, &both, Some(vec!["172.19.0.2"])),
            ("example.com.", RecordType::A, &both, None),
            (
                "2.0.18.172.in-addr.arpa.",
                RecordType::PTR,
                &n1,
                Some(vec!["alias.", "web."]),
            ),
            ("9.0.18.172.in-addr.arpa.", RecordType::PTR, &n1, None),
        ];
        for (name, ty, nets, want) in cases {
            let reply = answer_locally(&query(name, ty), &names, nets);
            let got = reply.as_ref().map(ips);
            let want = want.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{name} {ty:?}");
            if let Some(r) = reply {
                assert_eq!(r.metadata.response_code, ResponseCode::NoError);
                assert!(r.metadata.recursion_available);
                assert!(r.answers.iter().all(|a| a.ttl == LOCAL_TTL));
            }
        }
        names.remove_address("n1", web4);
        assert_eq!(names.lookup(&n1, "alias"), None);
        assert_eq!(names.lookup(&n1, "web"), Some(vec![web6]));
        names.remove("n1", "web", web6);
        assert_eq!(names.lookup(&n1, "web"), None);
        names.remove_network("n2");
        assert_eq!(names.lookup(&both, "db"), None);
    }

    #[test]
    fn resolv_conf_upstreams() {
        let conf = "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver 127.0.0.11\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:0\n";
        assert_eq!(
            upstreams_from_resolv_conf(conf),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().expect("addr"),
                "[::1]:53".parse().expect("addr")
            ]
        );
    }

    /// A fake upstream on loopback answering every A query with 192.0.2.1.
    async fn fake_upstream() -> Result<SocketAddr, Box<dyn std::error::Error>> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, OpCode::Query);
                r.queries = q.queries.clone();
                if let Some(first) = q.queries.first() {
                    r.answers.push(Record::from_rdata(
                        first.name.clone(),
                        30,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                    ));
                }
                if let Ok(bytes) = r.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn serves_and_forwards_on_loopback() -> Result<(), Box<dyn std::error::Error>> {
        let names = Names::new();
        names.add("n1", "web", "172.18.0.2".parse()?);
        let upstream = fake_upstream().await?;
        let server = DnsServer::start_on(
            &NetNs::current()?,
            "127.0.0.1:0".parse()?,
            names.clone(),
            vec!["n1".into()],
            vec![upstream],
        )
        .await?;
        let addr = server.local_addr();
        let client = UdpSocket::bind("127.0.0.1:0").await?;
        let ask = |name: &'static str| {
            let client = &client;
            async move {
                let bytes = query(name, RecordType::A).to_vec()?;
                client.send_to(&bytes, addr).await?;
                let mut buf = vec![0u8; 1500];
                let (n, _) =
                    tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                        .await??;
                Ok::<Message, Box<dyn std::error::Error>>(Message::from_vec(&buf[..n])?)
            }
        };
        assert_eq!(ips(&ask("web.").await?), vec!["172.18.0.2"]);
        assert_eq!(ips(&ask("example.com.").await?), vec!["192.0.2.1"]);

        // Over TCP too.
        let mut tcp = TcpStream::connect(addr).await?;
        let bytes = query("web.", RecordType::A).to_vec()?;
        tcp.write_all(&u16::try_from(bytes.len())?.to_be_bytes())
            .await?;
        tcp.write_all(&bytes).await?;
        let reply = Message::from_vec(&read_tcp_message(&mut tcp).await?)?;
        assert_eq!(ips(&reply), vec!["172.18.0.2"]);

        // Names follow the table and the container's networks.
        server.set_networks(vec![]);
        assert_eq!(ips(&ask("web.").await?), vec!["192.0.2.1"], "forwarded now");

        // No upstream: SERVFAIL.
        let lonely = DnsServer::start_on(
            &NetNs::current()?,
            "127.0.0.1:0".parse()?,
            names,
            vec![],
            vec![],
        )
        .await?;
        let bytes = query("example.com.", RecordType::A).to_vec()?;
        client.send_to(&bytes, lonely.local_addr()).await?;
        let mut buf = vec![0u8; 1500];
        let (n, _) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await??;
        assert_eq!(
            Message::from_vec(&buf[..n])?.metadata.response_code,
            ResponseCode::ServFail
        );
        Ok(())
    }
}
