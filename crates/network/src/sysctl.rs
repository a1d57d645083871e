//! `net.*` sysctls of one network namespace (`ip_forward`, a bridge's `route_localnet`, …).
//!
//! `/proc/sys/net` shows the namespace of the thread that looks, so reads and writes run on a
//! thread inside the namespace ([`NetNs::run`]).

use std::path::PathBuf;

use thiserror::Error;

use crate::netns::{NetNs, NetNsError};
use crate::ErrorKind;

#[derive(Debug, Error)]
pub enum SysctlError {
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    #[error("invalid sysctl key {0:?}: only net.* keys without '..' or '/'")]
    InvalidKey(String),
    #[error("sysctl {key} in {ns}: {source}")]
    Io {
        key: String,
        ns: String,
        source: std::io::Error,
    },
}

impl SysctlError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SysctlError::NetNs(e) => e.kind(),
            SysctlError::InvalidKey(_) => ErrorKind::InvalidArgument,
            SysctlError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            SysctlError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`. Interface names may contain dots
/// (`net.ipv4.conf.br-x.route_localnet` is meant as written), so the key is split on the dots
/// that separate the fixed parts only: `net.ipv4.conf.<ifname>.<name>`.
fn path_of(key: &str) -> Result<PathBuf, SysctlError> {
    let invalid = || SysctlError::InvalidKey(key.to_owned());
    if !key.starts_with("net.") || key.contains('/') || key.contains("..") {
        return Err(invalid());
    }
    let parts: Vec<&str> = key.split('.').collect();
    let rel = if parts.len() >= 5 && (parts[2] == "conf" || parts[2] == "neigh") {
        // net.<family>.conf.<ifname with dots>.<name>
        let ifname = parts[3..parts.len() - 1].join(".");
        format!(
            "{}/{}/{}/{}/{}",
            parts[0],
            parts[1],
            parts[2],
            ifname,
            parts[parts.len() - 1]
        )
    } else {
        parts.join("/")
    };
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Reads a sysctl inside `ns`, trimmed.
pub fn get(ns: &NetNs, key: &str) -> Result<String, SysctlError> {
    let path = path_of(key)?;
    let result = ns.run(|| std::fs::read_to_string(&path))?;
    result
        .map(|s| s.trim().to_owned())
        .map_err(|source| SysctlError::Io {
            key: key.to_owned(),
            ns: ns.label().to_owned(),
            source,
        })
}

/// Writes a sysctl inside `ns`, unless it already has that value.
pub fn set(ns: &NetNs, key: &str, value: &str) -> Result<(), SysctlError> {
    let path = path_of(key)?;
    let result = ns.run(|| -> std::io::Result<()> {
        if std::fs::read_to_string(&path)?.trim() == value {
            return Ok(());
        }
        tracing::debug!(key = %path.display(), value, "set sysctl");
        std::fs::write(&path, value)
    })?;
    result.map_err(|source| SysctlError::Io {
        key: key.to_owned(),
        ns: ns.label().to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_to_paths() {
        let cases = [
            ("net.ipv4.ip_forward", Some("/proc/sys/net/ipv4/ip_forward")),
            (
                "net.ipv4.conf.br-1.route_localnet",
                Some("/proc/sys/net/ipv4/conf/br-1/route_localnet"),
            ),
            (
                "net.ipv4.conf.eth0.100.rp_filter",
                Some("/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),
            ),
            (
                "net.ipv6.conf.all.forwarding",
                Some("/proc/sys/net/ipv6/conf/all/forwarding"),
            ),
            ("kernel.hostname", None),
            ("net.ipv4/../../x", None),
            ("net..x", None),
        ];
        for (key, want) in cases {
            let got = path_of(key).ok().map(|p| p.display().to_string());
            assert_eq!(got.as_deref(), want, "{key}");
        }
    }

    #[test]
    fn reads_in_own_namespace() -> Result<(), SysctlError> {
        let ns = NetNs::current()?;
        let v = get(&ns, "net.ipv4.ip_forward")?;
        assert!(v == "0" || v == "1", "{v}");
        Ok(())
    }
}
