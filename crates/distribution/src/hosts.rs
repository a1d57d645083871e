//! Per-host settings: which registries are insecure, and one HTTP client per host built from
//! `certs.d/<host[:port]>/` (extra CAs, client identity), like Docker's `registry` package.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing::debug;

use crate::error::Error;

/// A parsed `insecure-registries` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InsecureEntry {
    /// `10.0.0.0/8`, `fd00::/8`
    Cidr(IpAddr, u8),
    /// `myregistry:5000` or `myregistry` (the latter matches any port).
    Host(String),
}

/// The insecure-registries list, matched like Docker's `isSecureIndex`, except that host names
/// are not resolved through DNS for CIDR matching: only IP literals and `localhost` are.
/// Resolving would put blocking lookups in the synchronous `Registry::repository`.
#[derive(Debug, Clone, Default)]
pub struct InsecureList {
    entries: Vec<InsecureEntry>,
}

impl InsecureList {
    pub fn new<S: AsRef<str>>(items: &[S], loopback: bool) -> Result<InsecureList, Error> {
        let mut entries = Vec::new();
        if loopback {
            // Docker always treats 127.0.0.0/8 as insecure: a stop-gap for local registries.
            entries.push(InsecureEntry::Cidr(IpAddr::from([127, 0, 0, 0]), 8));
            entries.push(InsecureEntry::Cidr(
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                128,
            ));
        }
        for item in items {
            let s = item.as_ref().trim();
            let s = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"))
                .unwrap_or(s)
                .trim_end_matches('/');
            if s.is_empty() {
                continue;
            }
            if let Some((addr, len)) = s.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| Error::invalid(format!("invalid insecure registry CIDR {s}")))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len: u8 =
                    len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                        Error::invalid(format!("invalid insecure registry CIDR {s}"))
                    })?;
                entries.push(InsecureEntry::Cidr(ip, len));
            } else {
                entries.push(InsecureEntry::Host(s.to_ascii_lowercase()));
            }
        }
        Ok(InsecureList { entries })
    }

    /// Whether `host_port` (`host`, `host:port`, `[v6]:port`) is an insecure registry.
    pub fn is_insecure(&self, host_port: &str) -> bool {
        let host_port = host_port.to_ascii_lowercase();
        let (host, _port) = split_host_port(&host_port);
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) if host == "localhost" => {
                vec![
                    IpAddr::from([127, 0, 0, 1]),
                    IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                ]
            }
            Err(_) => Vec::new(),
        };
        self.entries.iter().any(|e| match e {
            InsecureEntry::Host(h) => *h == host_port || *h == host,
            InsecureEntry::Cidr(net, len) => ips.iter().any(|ip| cidr_contains(*net, *len, *ip)),
        })
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, `host`; the host keeps no brackets.
pub fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':'));
        }
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    // An IPv4-mapped IPv6 address matches IPv4 networks, as Go's net.IPNet does.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Builds and caches one `reqwest::Client` per (host, skip-verify): the TLS configuration is
/// per host, and a client holds its connection pool. Like dockerd, which reads `certs.d` for
/// every new connection, a change in the host's directory (a CA or client certificate added
/// while the daemon runs) is picked up: each client remembers the state of the directory it
/// was built from, and one stat of the directory per request tells whether it still holds.
pub struct Clients {
    certs_dir: PathBuf,
    cache: Mutex<HashMap<(String, bool), (CertsStamp, reqwest::Client)>>,
}

/// What identifies the content of a `certs.d/<host>` directory cheaply: its files' names,
/// sizes and modification times (none when it does not exist).
type CertsStamp = Option<Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>)>>;

fn certs_stamp(dir: &Path) -> CertsStamp {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut stamp: Vec<_> = entries
        .flatten()
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    stamp.sort();
    Some(stamp)
}

/// The system's trust store, read once: reading and parsing ~150 certificates per host client
/// is wasted work. Empty when the system has none, in which case webpki-roots is used.
fn native_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let res = rustls_native_certs::load_native_certs();
        for e in &res.errors {
            debug!("loading system root certificates: {e}");
        }
        res.certs
            .iter()
            .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok())
            .collect()
    })
}

impl Clients {
    pub fn new(certs_dir: PathBuf) -> Clients {
        Clients {
            certs_dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `host_port` (as in a reference or URL authority). `skip_verify` is for
    /// insecure registries: TLS is still used, the certificate is not checked (Docker's
    /// `InsecureSkipVerify`).
    pub fn get(&self, host_port: &str, skip_verify: bool) -> Result<reqwest::Client, Error> {
        let key = (host_port.to_ascii_lowercase(), skip_verify);
        let stamp = certs_stamp(&self.certs_dir.join(&key.0));
        if let Some((built_from, c)) = self.lock().get(&key) {
            if *built_from == stamp {
                return Ok(c.clone());
            }
        }
        let client = self.build(&key.0, skip_verify)?;
        self.lock().insert(key, (stamp, client.clone()));
        Ok(client)
    }

    #[allow(clippy::type_complexity)]
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, bool), (CertsStamp, reqwest::Client)>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn build(&self, host_port: &str, skip_verify: bool) -> Result<reqwest::Client, Error> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // Per read, not per request: a large layer may take many minutes.
            .read_timeout(Duration::from_secs(120))
            .tls_built_in_root_certs(false);
        let roots = native_roots();
        if roots.is_empty() {
            b = b.tls_built_in_webpki_certs(true);
        }
        for c in roots {
            b = b.add_root_certificate(c.clone());
        }
        let dir = self.certs_dir.join(host_port);
        let (cas, identity) = read_certs_dir(&dir)?;
        for ca in cas {
            b = b.add_root_certificate(ca);
        }
        if let Some(id) = identity {
            b = b.identity(id);
        }
        if skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        debug!(host = host_port, skip_verify, "new HTTP client");
        b.build()
            .map_err(|e| Error::invalid(format!("TLS configuration for {host_port}: {e}")))
    }
}

/// Docker's `ReadCertsDirectory`: `*.crt` are CAs, `x.cert` + `x.key` a client identity.
fn read_certs_dir(
    dir: &Path,
) -> Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>), Error> {
    let mut cas = Vec::new();
    let mut identity = None;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((cas, identity)),
        Err(e) => return Err(Error::invalid(format!("reading {}: {e}", dir.display()))),
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::invalid(format!("reading {}: {e}", p.display())))
    };
    for p in names {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = read(&p)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::invalid(format!("invalid CA certificate {}: {e}", p.display()))
                })?;
                debug!(file = %p.display(), n = certs.len(), "extra CA");
                cas.extend(certs);
            }
            Some("cert") => {
                let key = p.with_extension("key");
                if !key.exists() {
                    return Err(Error::invalid(format!(
                        "missing key {} for client certificate {}. CA certificates must use the extension .crt",
                        key.display(),
                        p.display()
                    )));
                }
                let mut pem = read(&p)?;
                pem.push(b'\n');
                pem.extend(read(&key)?);
                identity = Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::invalid(format!("invalid client certificate {}: {e}", p.display()))
                })?);
            }
            Some("key") if !p.with_extension("cert").exists() => {
                return Err(Error::invalid(format!(
                    "missing client certificate {} for key {}",
                    p.with_extension("cert").display(),
                    p.display()
                )));
            }
            _ => {}
        }
    }
    Ok((cas, identity))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loopback_is_insecure_by_default() {
        let l = InsecureList::new::<&str>(&[], true).unwrap();
        assert!(l.is_insecure("127.0.0.1:5000"));
        assert!(l.is_insecure("127.1.2.3"));
        assert!(l.is_insecure("localhost:5000"));
        assert!(l.is_insecure("[::1]:5000"));
        assert!(!l.is_insecure("10.1.2.3:5000"));
        assert!(!l.is_insecure("registry-1.docker.io"));
        let strict = InsecureList::new::<&str>(&[], false).unwrap();
        assert!(!strict.is_insecure("127.0.0.1:5000"));
    }

    #[test]
    fn cidr_and_host_entries() {
        let l = InsecureList::new(
            &[
                "10.0.0.0/8",
                "myreg:5000",
                "other",
                "fd00::/8",
                "http://withscheme:1/",
            ],
            false,
        )
        .unwrap();
        assert!(l.is_insecure("10.200.3.4:443"));
        assert!(l.is_insecure("10.0.0.1"));
        assert!(!l.is_insecure("11.0.0.1"));
        assert!(l.is_insecure("myreg:5000"));
        assert!(l.is_insecure("MyReg:5000"));
        assert!(!l.is_insecure("myreg:5001"));
        assert!(!l.is_insecure("myreg"));
        assert!(l.is_insecure("other:1234"));
        assert!(l.is_insecure("other"));
        assert!(l.is_insecure("[fd12::1]:5000"));
        assert!(!l.is_insecure("[fe80::1]:5000"));
        assert!(l.is_insecure("withscheme:1"));
        // IPv4-mapped IPv6 matches an IPv4 network.
        assert!(l.is_insecure("[::ffff:10.1.1.1]:5000"));
    }

    #[test]
    fn cidr_edges_and_errors() {
        assert!(cidr_contains(
            "0.0.0.0".parse().unwrap(),
            0,
            "8.8.8.8".parse().unwrap()
        ));
        assert!(cidr_contains(
            "192.168.1.7".parse().unwrap(),
            32,
            "192.168.1.7".parse().unwrap()
        ));
        assert!(!cidr_contains(
            "192.168.1.7".parse().unwrap(),
            32,
            "192.168.1.8".parse().unwrap()
        ));
        assert!(cidr_contains(
            "192.168.1.0".parse().unwrap(),
            23,
            "192.168.0.9".parse().unwrap()
        ));
        assert!(InsecureList::new(&["10.0.0.0/33"], false).is_err());
        assert!(InsecureList::new(&["nothost/8"], false).is_err());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("h:5000"), ("h", Some("5000")));
        assert_eq!(split_host_port("h"), ("h", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some("5000")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }

    #[test]
    fn certs_dir_missing_key_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("client.cert"), "x").unwrap();
        let e = read_certs_dir(d.path()).unwrap_err();
        assert!(e.to_string().contains("missing key"), "{e}");
        let none = read_certs_dir(&d.path().join("absent")).unwrap();
        assert!(none.0.is_empty() && none.1.is_none());
    }
}
