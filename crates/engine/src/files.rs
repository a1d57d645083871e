//! The per-container files Docker bind-mounts over the image's: /etc/hostname, /etc/hosts and
//! /etc/resolv.conf. Written under the container's directory in the data root.

use std::path::Path;

/// Loopback-only /etc/hosts, as Docker writes it for a container without a network address.
pub fn hosts(extra: &[String]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra {
        // `--add-host name:ip` (or name=ip).
        if let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) {
            s.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    s
}

/// The host's resolv.conf minus loopback nameservers (unreachable from the container's network
/// namespace), falling back to Google's public resolvers as Docker does when none remain.
pub fn resolv_conf(host: &str, dns: &[String], search: &[String], options: &[String]) -> String {
    let mut out = String::new();
    let mut servers: Vec<String> = dns.to_vec();
    if servers.is_empty() {
        for line in host.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("nameserver") {
                if let Some(ip) = words.next() {
                    if !ip.starts_with("127.") && ip != "::1" {
                        servers.push(ip.to_string());
                    }
                }
            }
        }
        if servers.is_empty() {
            servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    let host_search = host
        .lines()
        .find(|l| l.starts_with("search ") || l.starts_with("domain "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let search = if search.is_empty() {
        host_search
    } else {
        search.to_vec()
    };
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// resolv.conf for a container on user-defined networks: the embedded DNS server, with the
/// host's search domains unless the container has its own.
pub fn embedded_resolv_conf(host: &str, search: &[String], options: &[String]) -> String {
    let host_search: Vec<String> = host
        .lines()
        .find(|l| l.starts_with("search ") || l.starts_with("domain "))
        .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
        .unwrap_or_default();
    let search = if search.is_empty() {
        host_search
    } else {
        search.to_vec()
    };
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out.push_str("nameserver 127.0.0.11\n");
    let mut opts = vec!["ndots:0".to_string()];
    opts.extend(options.iter().filter(|o| !o.starts_with("ndots:")).cloned());
    if let Some(n) = options.iter().find(|o| o.starts_with("ndots:")) {
        opts[0] = n.clone();
    }
    out.push_str(&format!("options {}\n", opts.join(" ")));
    out
}

pub fn write(dir: &Path, name: &str, content: &str) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join(name);
    berth_store::atomic::write_atomic(&path, content.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback() {
        let host = "search example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n";
        assert_eq!(
            resolv_conf(host, &[], &[], &[]),
            "search example.com\nnameserver 10.0.0.2\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", &[], &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf(
                "",
                &["1.1.1.1".into()],
                &["a.b".into()],
                &["ndots:2".into()]
            ),
            "search a.b\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_has_localhost_and_extras() {
        let h = hosts(&["db:10.0.0.5".into()]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n"));
    }
}
