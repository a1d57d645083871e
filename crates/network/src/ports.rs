//! Published ports: Docker's `-p` syntax, `-P` from `EXPOSE`, the API's `PortBindings`, and the
//! host port allocator with Docker's "port is already allocated" rule.
//!
//! Parsing follows go-connections' `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`,
//! IPv6 host addresses in brackets, ranges on either side (equal lengths, or a host range with a
//! single container port: one host port is then picked from the range), `tcp`, `udp` or `sctp`.
//! The CLI's long form (`target=80,published=8080,protocol=udp`) is accepted too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch { container: String, host: String },
    #[error("invalid proto: {0}")]
    InvalidProto(String),
    #[error("invalid publish option: {0}")]
    InvalidLongSyntax(String),
    /// Another mapping of berth holds the port.
    #[error("Bind for {}:{port} failed: port is already allocated", fmt_ip(.ip))]
    AlreadyAllocated { ip: IpAddr, port: u16 },
    /// No free port in the dynamic range (or the requested host range).
    #[error("all ports are allocated")]
    AllAllocated,
}

impl PortError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PortError::AlreadyAllocated { .. } | PortError::AllAllocated => ErrorKind::Conflict,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Go's `net.IP.String()` spelling, as in Docker's messages (no brackets around IPv6).
fn fmt_ip(ip: &IpAddr) -> String {
    ip.to_string()
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = PortError;

    fn from_str(s: &str) -> Result<Protocol, PortError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(PortError::InvalidProto(s.to_owned())),
        }
    }
}

/// Which host port a mapping asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostPort {
    /// Any free port of the dynamic range (`-p 80`, `-P`, an empty `HostPort`).
    Any,
    Port(u16),
    /// Any free port of this inclusive range (`-p 8000-8010:80`).
    Range(u16, u16),
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPort::Any => Ok(()),
            HostPort::Port(p) => write!(f, "{p}"),
            HostPort::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// One container port to publish, as requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRequest {
    pub container_port: u16,
    pub protocol: Protocol,
    /// `None` is every address (`0.0.0.0`).
    pub host_ip: Option<IpAddr>,
    pub host_port: HostPort,
}

impl PortRequest {
    /// The host address to bind: the requested one, or `0.0.0.0`.
    pub fn bind_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The API's `PortBindings` key, e.g. `80/tcp`.
    pub fn port_key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

/// Parses one `-p`/`--publish` value into one request per container port.
pub fn parse_publish(raw: &str) -> Result<Vec<PortRequest>, PortError> {
    if raw.contains('=') {
        return parse_long(raw);
    }
    let (ip, host, container) = split_parts(raw);
    let (container, proto) = match container.split_once('/') {
        Some((port, proto)) => (port, proto),
        None => (container, "tcp"),
    };
    let host_ip = parse_host_ip(ip)?;
    if container.is_empty() {
        return Err(PortError::NoPort(raw.to_owned()));
    }
    let (start, end) = parse_range(container)
        .ok_or_else(|| PortError::InvalidContainerPort(container.to_owned()))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| PortError::InvalidHostPort(host.to_owned()))?)
    };
    if let Some((hs, he)) = host_range {
        if end - start != he - hs && end != start {
            return Err(PortError::RangeMismatch {
                container: container.to_owned(),
                host: host.to_owned(),
            });
        }
    }
    let protocol: Protocol = proto.parse()?;
    Ok((start..=end)
        .map(|port| {
            let host_port = match host_range {
                None => HostPort::Any,
                Some((hs, he)) if start == end && hs != he => HostPort::Range(hs, he),
                Some((hs, _)) => HostPort::Port(hs + (port - start)),
            };
            PortRequest {
                container_port: port,
                protocol,
                host_ip,
                host_port,
            }
        })
        .collect())
}

/// Parses several `-p` values; duplicates (same container port, protocol, host address and
/// host port) collapse into one, as Docker's map does.
pub fn parse_publish_all<'a>(
    raws: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PortRequest>, PortError> {
    let mut out: Vec<PortRequest> = Vec::new();
    for raw in raws {
        for r in parse_publish(raw)? {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// `-P`: every exposed port (`EXPOSE 80`, `80/tcp`, `8000-8010/udp`) to a dynamic host port.
pub fn publish_exposed<'a>(
    exposed: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PortRequest>, PortError> {
    let mut out = Vec::new();
    for key in exposed {
        for (port, protocol) in parse_port_key(key)? {
            let r = PortRequest {
                container_port: port,
                protocol,
                host_ip: None,
                host_port: HostPort::Any,
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// A key of `ExposedPorts`/`PortBindings`: `80`, `80/udp`, `8000-8010/tcp`.
pub fn parse_port_key(key: &str) -> Result<Vec<(u16, Protocol)>, PortError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol: Protocol = proto.parse()?;
    let (start, end) =
        parse_range(port).ok_or_else(|| PortError::InvalidContainerPort(port.to_owned()))?;
    Ok((start..=end).map(|p| (p, protocol)).collect())
}

/// One entry of the API's `HostConfig.PortBindings`: key `80/tcp`, `HostIp`, `HostPort`
/// (empty strings mean any).
pub fn parse_api_binding(
    key: &str,
    host_ip: &str,
    host_port: &str,
) -> Result<PortRequest, PortError> {
    let ports = parse_port_key(key)?;
    let [(container_port, protocol)] = ports[..] else {
        return Err(PortError::InvalidContainerPort(key.to_owned()));
    };
    let host_ip = parse_host_ip(host_ip)?;
    let host_port = match host_port {
        "" | "0" => HostPort::Any,
        p => match parse_range(p) {
            Some((a, b)) if a == b => HostPort::Port(a),
            Some((a, b)) => HostPort::Range(a, b),
            None => return Err(PortError::InvalidHostPort(p.to_owned())),
        },
    };
    Ok(PortRequest {
        container_port,
        protocol,
        host_ip,
        host_port,
    })
}

fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    match n {
        1 => ("", "", container),
        2 => ("", parts[0], container),
        3 => (parts[0], parts[1], container),
        _ => {
            // An IPv6 address without brackets: everything before the last two parts.
            let cut = raw.len() - container.len() - parts[n - 2].len() - 2;
            (&raw[..cut], parts[n - 2], container)
        }
    }
}

fn parse_host_ip(ip: &str) -> Result<Option<IpAddr>, PortError> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = ip
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(ip);
    bare.parse()
        .map(Some)
        .map_err(|_| PortError::InvalidIp(ip.to_owned()))
}

/// `80` or `8000-8010` (start <= end).
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (parse_port(a)?, parse_port(b)?);
    (a <= b).then_some((a, b))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The CLI's long syntax: `target=80,published=8080,protocol=udp,mode=host,host_ip=127.0.0.1`.
fn parse_long(raw: &str) -> Result<Vec<PortRequest>, PortError> {
    let mut target = None;
    let mut published = HostPort::Any;
    let mut protocol = Protocol::Tcp;
    let mut host_ip = None;
    for field in raw.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| PortError::InvalidLongSyntax(field.to_owned()))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "target" => {
                target =
                    Some(parse_port(v).ok_or_else(|| PortError::InvalidContainerPort(v.into()))?)
            }
            "published" => {
                published = match parse_range(v) {
                    Some((a, b)) if a == b => HostPort::Port(a),
                    Some((a, b)) => HostPort::Range(a, b),
                    None => return Err(PortError::InvalidHostPort(v.into())),
                }
            }
            "protocol" => protocol = v.parse()?,
            "mode" if v == "host" || v == "ingress" => {}
            "host_ip" => host_ip = parse_host_ip(v)?,
            _ => return Err(PortError::InvalidLongSyntax(field.to_owned())),
        }
    }
    let container_port = target
        .ok_or_else(|| PortError::InvalidLongSyntax("missing mandatory field 'target'".into()))?;
    Ok(vec![PortRequest {
        container_port,
        protocol,
        host_ip,
        host_port: published,
    }])
}

/// Host ports held by berth's mappings. A port on the unspecified address conflicts with the
/// same port on any address, and the other way round (both would bind it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortAllocator {
    dynamic: (u16, u16),
    used: BTreeSet<(Protocol, IpAddr, u16)>,
    /// Per protocol, where the next dynamic search starts (Docker's serial allocation).
    next: BTreeMap<Protocol, u16>,
}

/// dockerd's fallback when `ip_local_port_range` can't be read.
pub const DEFAULT_DYNAMIC_RANGE: (u16, u16) = (49153, 65535);

impl PortAllocator {
    pub fn new(dynamic: (u16, u16)) -> PortAllocator {
        PortAllocator {
            dynamic,
            used: BTreeSet::new(),
            next: BTreeMap::new(),
        }
    }

    /// The dynamic range of the calling namespace's `net.ipv4.ip_local_port_range`, as dockerd.
    pub fn from_system() -> PortAllocator {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|p| p.parse::<u16>());
                match (it.next(), it.next()) {
                    (Some(Ok(a)), Some(Ok(b))) if a <= b && a > 0 => Some((a, b)),
                    _ => None,
                }
            })
            .unwrap_or(DEFAULT_DYNAMIC_RANGE);
        PortAllocator::new(range)
    }

    pub fn dynamic_range(&self) -> (u16, u16) {
        self.dynamic
    }

    fn conflicts(&self, proto: Protocol, ip: IpAddr, port: u16) -> bool {
        self.used.iter().any(|&(p, i, n)| {
            p == proto && n == port && (i == ip || i.is_unspecified() || ip.is_unspecified())
        })
    }

    /// Reserves a host port for `ip`. Returns the port (the requested one, or the one picked).
    pub fn allocate(
        &mut self,
        proto: Protocol,
        ip: IpAddr,
        want: HostPort,
    ) -> Result<u16, PortError> {
        match want {
            HostPort::Port(port) if port != 0 => {
                if self.conflicts(proto, ip, port) {
                    return Err(PortError::AlreadyAllocated { ip, port });
                }
                self.used.insert((proto, ip, port));
                Ok(port)
            }
            HostPort::Port(_) | HostPort::Any => {
                let (lo, hi) = self.dynamic;
                self.allocate_in(proto, ip, lo, hi, true)
            }
            HostPort::Range(lo, hi) => self.allocate_in(proto, ip, lo, hi, false),
        }
    }

    fn allocate_in(
        &mut self,
        proto: Protocol,
        ip: IpAddr,
        lo: u16,
        hi: u16,
        serial: bool,
    ) -> Result<u16, PortError> {
        let size = u32::from(hi - lo) + 1;
        let start = match self.next.get(&proto) {
            Some(&n) if serial && (lo..=hi).contains(&n) => n,
            _ => lo,
        };
        for i in 0..size {
            let off = (u32::from(start - lo) + i) % size;
            // off < size <= 65536 and lo + off <= hi.
            let port = lo + u16::try_from(off).unwrap_or(0);
            if port != 0 && !self.conflicts(proto, ip, port) {
                self.used.insert((proto, ip, port));
                if serial {
                    self.next
                        .insert(proto, if port == hi { lo } else { port + 1 });
                }
                return Ok(port);
            }
        }
        Err(PortError::AllAllocated)
    }

    /// Frees a port; freeing one not held is not an error.
    pub fn release(&mut self, proto: Protocol, ip: IpAddr, port: u16) {
        self.used.remove(&(proto, ip, port));
    }

    /// Whether berth holds this exact (protocol, address, port).
    pub fn is_allocated(&self, proto: Protocol, ip: IpAddr, port: u16) -> bool {
        self.used.contains(&(proto, ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(port: u16, proto: Protocol, ip: Option<&str>, host: HostPort) -> PortRequest {
        PortRequest {
            container_port: port,
            protocol: proto,
            host_ip: ip.map(|s| s.parse().expect("ip")),
            host_port: host,
        }
    }

    use HostPort::{Any, Port, Range};
    use Protocol::{Sctp, Tcp, Udp};

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Result<Vec<PortRequest>, PortError>)> = vec![
            ("80", Ok(vec![r(80, Tcp, None, Any)])),
            ("8080:80", Ok(vec![r(80, Tcp, None, Port(8080))])),
            ("8080:80/udp", Ok(vec![r(80, Udp, None, Port(8080))])),
            ("8080:80/UDP", Ok(vec![r(80, Udp, None, Port(8080))])),
            ("9:9/sctp", Ok(vec![r(9, Sctp, None, Port(9))])),
            (
                "127.0.0.1:8080:80/udp",
                Ok(vec![r(80, Udp, Some("127.0.0.1"), Port(8080))]),
            ),
            (
                "127.0.0.1::80",
                Ok(vec![r(80, Tcp, Some("127.0.0.1"), Any)]),
            ),
            (
                "[::1]:8080:80",
                Ok(vec![r(80, Tcp, Some("::1"), Port(8080))]),
            ),
            ("::1:8080:80", Ok(vec![r(80, Tcp, Some("::1"), Port(8080))])),
            (
                "8000-8002:80-82",
                Ok(vec![
                    r(80, Tcp, None, Port(8000)),
                    r(81, Tcp, None, Port(8001)),
                    r(82, Tcp, None, Port(8002)),
                ]),
            ),
            (
                "8000-8010:80",
                Ok(vec![r(80, Tcp, None, Range(8000, 8010))]),
            ),
            (
                "80-81/udp",
                Ok(vec![r(80, Udp, None, Any), r(81, Udp, None, Any)]),
            ),
            (
                "0.0.0.0:80:80",
                Ok(vec![r(80, Tcp, Some("0.0.0.0"), Port(80))]),
            ),
            (
                "8000-8005:80-90",
                Err(PortError::RangeMismatch {
                    container: "80-90".into(),
                    host: "8000-8005".into(),
                }),
            ),
            ("8080:", Err(PortError::NoPort("8080:".into()))),
            (
                "8080:http",
                Err(PortError::InvalidContainerPort("http".into())),
            ),
            (
                "8080:70000",
                Err(PortError::InvalidContainerPort("70000".into())),
            ),
            (
                "90-80",
                Err(PortError::InvalidContainerPort("90-80".into())),
            ),
            ("x:80", Err(PortError::InvalidHostPort("x".into()))),
            ("8080:80/icmp", Err(PortError::InvalidProto("icmp".into()))),
            ("1.2.3:80:80", Err(PortError::InvalidIp("1.2.3".into()))),
            (
                "target=80,published=8080,protocol=udp",
                Ok(vec![r(80, Udp, None, Port(8080))]),
            ),
            (
                "target=80,published=8000-8010,mode=host",
                Ok(vec![r(80, Tcp, None, Range(8000, 8010))]),
            ),
            (
                "published=8080",
                Err(PortError::InvalidLongSyntax(
                    "missing mandatory field 'target'".into(),
                )),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_publish(raw), want, "{raw}");
        }
    }

    #[test]
    fn errors_read_like_docker() {
        let cases = [
            ("8080:http", "invalid containerPort: http"),
            ("x:80", "invalid hostPort: x"),
            ("8080:80/icmp", "invalid proto: icmp"),
            ("bad:8080:80", "invalid IP address: bad"),
            (
                "8000-8005:80-90",
                "invalid ranges specified for container and host Ports: 80-90 and 8000-8005",
            ),
        ];
        for (raw, want) in cases {
            let got = parse_publish(raw).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want), "{raw}");
        }
        let e = PortError::AlreadyAllocated {
            ip: "0.0.0.0".parse().expect("ip"),
            port: 8080,
        };
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn exposed_and_api_bindings() {
        assert_eq!(
            publish_exposed(["80/tcp", "53/udp", "80", "9000-9001"]),
            Ok(vec![
                r(80, Tcp, None, Any),
                r(53, Udp, None, Any),
                r(9000, Tcp, None, Any),
                r(9001, Tcp, None, Any),
            ])
        );
        let cases = [
            (("80/tcp", "", ""), Ok(r(80, Tcp, None, Any))),
            (("80/tcp", "", "8080"), Ok(r(80, Tcp, None, Port(8080)))),
            (
                ("53/udp", "127.0.0.1", "5353"),
                Ok(r(53, Udp, Some("127.0.0.1"), Port(5353))),
            ),
            (
                ("80", "", "8000-8010"),
                Ok(r(80, Tcp, None, Range(8000, 8010))),
            ),
            (
                ("80/tcp", "", "x"),
                Err(PortError::InvalidHostPort("x".into())),
            ),
            (
                ("80/tcp", "nope", ""),
                Err(PortError::InvalidIp("nope".into())),
            ),
        ];
        for ((k, ip, hp), want) in cases {
            assert_eq!(parse_api_binding(k, ip, hp), want, "{k} {ip} {hp}");
        }
        assert_eq!(r(80, Udp, None, Any).port_key(), "80/udp");
        assert_eq!(
            parse_publish_all(["80", "80", "8080:80"]).map(|v| v.len()),
            Ok(2)
        );
    }

    #[test]
    fn allocator_conflicts() {
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        let mut a = PortAllocator::new((40000, 40002));
        assert_eq!(a.allocate(Tcp, any, Port(8080)), Ok(8080));
        assert_eq!(
            a.allocate(Tcp, any, Port(8080)),
            Err(PortError::AlreadyAllocated {
                ip: any,
                port: 8080
            })
        );
        assert_eq!(
            a.allocate(Tcp, lo, Port(8080)),
            Err(PortError::AlreadyAllocated { ip: lo, port: 8080 })
        );
        assert_eq!(a.allocate(Udp, any, Port(8080)), Ok(8080));
        a.release(Tcp, any, 8080);
        assert_eq!(a.allocate(Tcp, lo, Port(8080)), Ok(8080));
        assert_eq!(a.allocate(Tcp, other, Port(8080)), Ok(8080));
        assert_eq!(
            a.allocate(Tcp, any, Port(8080)),
            Err(PortError::AlreadyAllocated {
                ip: any,
                port: 8080
            })
        );
    }

    #[test]
    fn allocator_dynamic_is_serial_and_bounded() {
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        let mut a = PortAllocator::new((40000, 40002));
        assert_eq!(a.allocate(Tcp, any, Any), Ok(40000));
        assert_eq!(a.allocate(Tcp, any, Any), Ok(40001));
        a.release(Tcp, any, 40000);
        assert_eq!(a.allocate(Tcp, any, Any), Ok(40002));
        assert_eq!(a.allocate(Tcp, any, Any), Ok(40000));
        assert_eq!(a.allocate(Tcp, any, Any), Err(PortError::AllAllocated));
        // A host range picks the first free port of the range.
        assert_eq!(a.allocate(Tcp, any, Range(8000, 8001)), Ok(8000));
        assert_eq!(a.allocate(Tcp, any, Range(8000, 8001)), Ok(8001));
        assert_eq!(
            a.allocate(Tcp, any, Range(8000, 8001)),
            Err(PortError::AllAllocated)
        );
        let sys = PortAllocator::from_system();
        assert!(sys.dynamic_range().0 <= sys.dynamic_range().1);
    }
}
