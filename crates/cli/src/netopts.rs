//! The networking flags of `run`/`create` and `network create`, parsed and worded as docker 28
//! does: go-connections' `nat` port specs (`-p`, `--expose`), the validators of docker/cli's
//! `opts` package (`--dns`, `--dns-search`, `--add-host`, `--label`), Go's `net.ParseMAC` and
//! the IPAM consolidation of `network create` (`--subnet`, `--ip-range`, `--gateway`).
//!
//! Go's parsers differ from Rust's in small ways that show in the request or the error text
//! (`strconv.ParseUint` refuses a sign, `net.IP.String` prints IPv4-mapped addresses dotted),
//! so they are reproduced here rather than approximated with `str::parse`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::formatter::go_quote;

/// One container port and one host side of it, as `nat.ParsePortSpec` yields them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// "80/tcp"
    pub port: String,
    pub host_ip: String,
    /// "8080", "8000-8010" (a range to pick from) or "" (any).
    pub host_port: String,
}

/// `strconv.ParseUint(s, 10, 16)` with its error text.
pub fn parse_uint16(s: &str) -> Result<u16, String> {
    let syntax = || format!("strconv.ParseUint: parsing {}: invalid syntax", go_quote(s));
    if s.is_empty() {
        return Err(syntax());
    }
    let mut n: u32 = 0;
    for c in s.chars() {
        let d = c.to_digit(10).ok_or_else(syntax)?;
        n = n * 10 + d;
        // Go reports the overflow where it happens, before looking at later characters.
        if n > u32::from(u16::MAX) {
            return Err(format!(
                "strconv.ParseUint: parsing {}: value out of range",
                go_quote(s)
            ));
        }
    }
    u16::try_from(n).map_err(|_| syntax())
}

/// `nat.ParsePortRange`: "80" or "8000-9000" (a third part is ignored, as in Go).
fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_string());
    }
    if !ports.contains('-') {
        let p = parse_uint16(ports)?;
        return Ok((p, p));
    }
    let mut parts = ports.split('-');
    let start = parse_uint16(parts.next().unwrap_or_default())?;
    let end = parse_uint16(parts.next().unwrap_or_default())?;
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// `nat.SplitProtoPort`: "80/udp" → ("udp", "80"); no protocol is tcp; no port is ("", "").
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    match parts.as_slice() {
        [] | ["", ..] => ("", ""),
        [_] => ("tcp", raw),
        [port, "", ..] => ("tcp", port),
        [port, proto, ..] => (proto, port),
    }
}

/// `nat.splitParts`: `[ip:][hostPort:]containerPort`, where the IP may itself hold colons.
fn split_parts(raw: &str) -> (String, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [c] => (String::new(), "", c),
        [h, c] => (String::new(), h, c),
        [ip, h, c] => (ip.to_string(), h, c),
        _ => {
            let n = parts.len();
            (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1])
        }
    }
}

/// The host of `net.SplitHostPort(hostport)` for a bracketed host, or Go's error text.
fn bracketed_host(hostport: &str) -> Result<&str, String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    let last_colon = hostport
        .rfind(':')
        .ok_or_else(|| err("missing port in address"))?;
    let end = hostport
        .find(']')
        .ok_or_else(|| err("missing ']' in address"))?;
    if end + 1 == hostport.len() {
        return Err(err("missing port in address"));
    }
    if end + 1 != last_colon {
        if hostport.as_bytes().get(end + 1) == Some(&b':') {
            return Err(err("too many colons in address"));
        }
        return Err(err("missing port in address"));
    }
    if hostport[1..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[end + 1..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok(&hostport[1..end])
}

/// Go's `net.ParseIP`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Go's `net.IP.String`: like Rust's, except that IPv4-mapped addresses print dotted.
fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`, ranges allowed on both sides.
pub fn parse_port_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let (mut ip, host_port, container_port) = split_parts(raw);
    let (proto, container_port) = split_proto_port(container_port);
    if ip.starts_with('[') {
        let with_port = format!("{ip}:");
        ip = bracketed_host(&with_port)
            .map_err(|e| format!("invalid IP address {ip}: {e}"))?
            .to_string();
    }
    if !ip.is_empty() && parse_ip(&ip).is_none() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    // A host range with a single container port is a range to allocate the host port from.
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        ));
    }
    let proto_lower = proto.to_lowercase();
    if !matches!(proto_lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=u32::from(end - start) {
        let mut host = if host_port.is_empty() {
            String::new()
        } else {
            (u32::from(host_start) + i).to_string()
        };
        if start == end && host_start != host_end {
            host = format!("{host}-{host_end}");
        }
        out.push(PortMapping {
            port: format!("{}/{proto_lower}", u32::from(start) + i),
            host_ip: ip.clone(),
            host_port: host,
        });
    }
    Ok(out)
}

/// docker/cli's `convertToStandardNotation`: the long `-p` syntax
/// (`published=8080,target=80,protocol=udp`) as a short spec.
fn standard_notation(publish: &str) -> Result<String, String> {
    if !publish.contains('=') {
        return Ok(publish.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in publish.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                params.insert(k, v);
            }
            _ => {
                return Err(format!(
                    "invalid publish opts format (should be name=value but got '{param}')"
                ))
            }
        }
    }
    let get = |k: &str| params.get(k).copied().unwrap_or_default();
    Ok(format!(
        "{}:{}/{}",
        get("published"),
        get("target"),
        get("protocol")
    ))
}

/// `-p` and `--expose` as the create body's `Config.ExposedPorts` and `HostConfig.PortBindings`.
pub fn ports(publish: &[String], expose: &[String]) -> Result<(Value, Value), String> {
    let mut exposed = Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let specs = publish
        .iter()
        .map(|p| standard_notation(p))
        .collect::<Result<Vec<_>, _>>()?;
    for spec in &specs {
        for m in parse_port_spec(spec)? {
            exposed.insert(m.port.clone(), json!({}));
            bindings
                .entry(m.port)
                .or_default()
                .push(json!({"HostIp": m.host_ip, "HostPort": m.host_port}));
        }
    }
    for e in expose {
        if e.contains(':') {
            return Err(format!("invalid port format for --expose: {e}"));
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) = parse_port_range(port)
            .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
        // docker neither lowercases nor checks the protocol of --expose.
        for p in start..=end {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }
    let bindings: Map<String, Value> = bindings
        .into_iter()
        .map(|(k, v)| (k, Value::Array(v)))
        .collect();
    Ok((Value::Object(exposed), Value::Object(bindings)))
}

/// docker's `opts.ValidateIPAddress` (`--dns`): the address in Go's canonical form.
pub fn validate_ip_address(val: &str) -> Result<String, String> {
    parse_ip(val.trim())
        .map(go_ip_string)
        .ok_or_else(|| format!("IP address is not correctly formatted: {val}"))
}

/// One label of docker's domain pattern: alphanumerics and inner hyphens.
fn is_domain_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// docker's `opts.ValidateDNSSearch` (`--dns-search`): "." or a domain, returned without its
/// trailing dot.
pub fn validate_dns_search(val: &str) -> Result<String, String> {
    let val = val.trim_matches(' ');
    if val == "." {
        return Ok(val.to_string());
    }
    let invalid = || format!("{val} is not a valid domain");
    if !val.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    // docker's pattern is `^(:?(:?L|(:?L))(:?\.(:?L|(:?L)))*)\.?\s*$`: its `(:?` groups were
    // meant to be non-capturing, so they accept a colon before each label and each dot. What
    // it accepts is reproduced, colons included; the first group is the value kept.
    let body = val.trim_end_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    let body = body.strip_suffix('.').unwrap_or(body);
    let pieces: Vec<&str> = body.split('.').collect();
    let last = pieces.len() - 1;
    let valid = pieces.iter().enumerate().all(|(i, piece)| {
        let mut p = *piece;
        let leading = if i == 0 { 2 } else { 1 };
        for _ in 0..leading {
            p = p.strip_prefix(':').unwrap_or(p);
        }
        if i < last {
            p = p.strip_suffix(':').unwrap_or(p);
        }
        is_domain_label(p)
    });
    if valid && body.len() < 255 {
        Ok(body.to_string())
    } else {
        Err(invalid())
    }
}

/// docker's `opts.ValidateExtraHost` (`--add-host host:ip`, `host=ip`, `host:[ipv6]`), in the
/// `host:ip` form the daemon understands.
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=').or_else(|| val.split_once(':')) {
        Some((k, v)) if !k.is_empty() && !k.contains(':') => (k, v),
        _ => return Err(format!("bad format for add-host: {}", go_quote(val))),
    };
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if validate_ip_address(v).is_err() {
            return Err(format!("invalid IP address in add-host: {}", go_quote(v)));
        }
    }
    // The address is kept as given (not canonical), as docker does.
    Ok(format!("{k}:{v}"))
}

/// docker's `opts.ValidateLabel` (`network create --label`).
pub fn validate_label(val: &str) -> Result<String, String> {
    let key = val.split_once('=').map_or(val, |(k, _)| k);
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{val}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(val.to_string())
}

/// Go's `xtoi2`: two hex digits, followed by `sep` (or the end) when `sep` is given.
fn hex_pair(s: &[u8], sep: Option<u8>) -> bool {
    if s.len() < 2 || !s[0].is_ascii_hexdigit() || !s[1].is_ascii_hexdigit() {
        return false;
    }
    match (sep, s.get(2)) {
        (Some(sep), Some(&c)) => c == sep,
        _ => true,
    }
}

/// Go's `net.ParseMAC`: EUI-48, EUI-64 or 20-octet InfiniBand addresses, with `:` or `-`
/// between octets or `.` between groups of four hex digits.
pub fn is_valid_mac(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 14 {
        return false;
    }
    let valid_len = |n: usize| matches!(n, 6 | 8 | 20);
    if b[2] == b':' || b[2] == b'-' {
        if !(b.len() + 1).is_multiple_of(3) || !valid_len((b.len() + 1) / 3) {
            return false;
        }
        let n = (b.len() + 1) / 3;
        (0..n).all(|i| hex_pair(&b[i * 3..], Some(b[2])))
    } else if b[4] == b'.' {
        if !(b.len() + 1).is_multiple_of(5) || !valid_len(2 * (b.len() + 1) / 5) {
            return false;
        }
        let groups = (b.len() + 1) / 5;
        (0..groups).all(|g| {
            let x = g * 5;
            hex_pair(&b[x..x + 2], None) && hex_pair(&b[x + 2..], Some(b[4]))
        })
    } else {
        false
    }
}

/// Go's `net.ParseCIDR`: the address (not the network) and the prefix length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let ip = parse_ip(addr)?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Go's `IPNet.Contains`: IPv4-mapped addresses count as IPv4.
fn cidr_contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    let unmap = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (unmap(net.0), unmap(ip)) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(net.1)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(net.1)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// docker/cli's `subnetMatches`: whether `data` (an address or a CIDR) lies in `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let net = parse_cidr(subnet)
        .ok_or_else(|| format!("invalid subnet: invalid CIDR address: {subnet}"))?;
    let ip = if data.contains('/') {
        Some(
            parse_cidr(data)
                .ok_or_else(|| format!("invalid CIDR address: {data}"))?
                .0,
        )
    } else {
        parse_ip(data)
    };
    Ok(ip.is_some_and(|ip| cidr_contains(net, ip)))
}

/// docker/cli's `createIPAMConfig`: each `--ip-range` and `--gateway` joined to the
/// `--subnet` it falls in, as `IPAM.Config` (in `--subnet` order; docker's is random).
pub fn ipam_config(
    subnets: &[String],
    ip_ranges: &[String],
    gateways: &[String],
) -> Result<Vec<Value>, String> {
    if subnets.len() < ip_ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".to_string());
    }
    // (subnet, ip range, gateway)
    let mut pools: Vec<(String, String, String)> = Vec::new();
    for s in subnets {
        for (k, _, _) in &pools {
            // A subnet that is only checked against others; a lone bad one is the daemon's to refuse.
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                return Err(
                    "multiple overlapping subnet configuration is not supported".to_string()
                );
            }
        }
        pools.push((s.clone(), String::new(), String::new()));
    }
    for r in ip_ranges {
        let mut matched = false;
        for (s, range, _) in pools.iter_mut() {
            if parse_cidr(r).is_none() {
                return Err(format!("invalid CIDR address: {r}"));
            }
            if !subnet_matches(s, r)? {
                continue;
            }
            if !range.is_empty() {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {range}) on the same subnet ({s})"
                ));
            }
            *range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for (s, _, gateway) in pools.iter_mut() {
            if !subnet_matches(s, g)? {
                continue;
            }
            if !gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {gateway}) for the same subnet ({s})"
                ));
            }
            *gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    Ok(pools
        .into_iter()
        .map(|(subnet, range, gateway)| {
            let mut m = Map::new();
            m.insert("Subnet".into(), json!(subnet));
            if !range.is_empty() {
                m.insert("IPRange".into(), json!(range));
            }
            if !gateway.is_empty() {
                m.insert("Gateway".into(), json!(gateway));
            }
            Value::Object(m)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(port: &str, ip: &str, host: &str) -> PortMapping {
        PortMapping {
            port: port.into(),
            host_ip: ip.into(),
            host_port: host.into(),
        }
    }

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_spec("80"), Ok(vec![mapping("80/tcp", "", "")]));
        assert_eq!(
            parse_port_spec("8080:80/UDP"),
            Ok(vec![mapping("80/udp", "", "8080")])
        );
        assert_eq!(
            parse_port_spec("127.0.0.1::53"),
            Ok(vec![mapping("53/tcp", "127.0.0.1", "")])
        );
        assert_eq!(
            parse_port_spec("8000-8001:80-81"),
            Ok(vec![
                mapping("80/tcp", "", "8000"),
                mapping("81/tcp", "", "8001")
            ])
        );
        // A host range for one container port is where the daemon picks the host port.
        assert_eq!(
            parse_port_spec("8000-8010:80"),
            Ok(vec![mapping("80/tcp", "", "8000-8010")])
        );
        assert_eq!(
            parse_port_spec("[::1]:9000-9001:90-91/udp"),
            Ok(vec![
                mapping("90/udp", "::1", "9000"),
                mapping("91/udp", "::1", "9001")
            ])
        );
        assert_eq!(
            parse_port_spec("::1:8080:80"),
            Ok(vec![mapping("80/tcp", "::1", "8080")])
        );
        assert_eq!(
            parse_port_spec("80/tcp/x"),
            Ok(vec![mapping("80/tcp", "", "")])
        );
    }

    #[test]
    fn port_spec_errors_are_dockers() {
        let err = |s: &str| parse_port_spec(s).err().unwrap_or_default();
        assert_eq!(err("abc"), "invalid containerPort: abc");
        assert_eq!(err("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(err("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(
            err("[::1:80:80"),
            "invalid IP address [::1: address [::1:: missing ']' in address"
        );
        assert_eq!(
            err("80-81:90-95"),
            "invalid ranges specified for container and host Ports: 90-95 and 80-81"
        );
        assert_eq!(err("70000:80"), "invalid hostPort: 70000");
        assert_eq!(err("80/Foo"), "invalid proto: Foo");
        assert_eq!(err("80:-1"), "invalid containerPort: -1");
        assert_eq!(err("+80"), "invalid containerPort: +80");
        assert_eq!(err("81-80"), "invalid containerPort: 81-80");
    }

    #[test]
    fn published_and_exposed_ports() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (exposed, bindings) = ports(
            &s(&[
                "8080:80",
                "1.2.3.4:81:80",
                "published=5353,target=53,protocol=udp",
            ]),
            &s(&["7000-7001", "443/udp", "80/Foo"]),
        )
        .expect("valid");
        assert_eq!(
            exposed,
            json!({"80/tcp": {}, "53/udp": {}, "7000/tcp": {}, "7001/tcp": {}, "443/udp": {}, "80/Foo": {}})
        );
        assert_eq!(
            bindings,
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "1.2.3.4", "HostPort": "81"}],
                "53/udp": [{"HostIp": "", "HostPort": "5353"}]
            })
        );
        let err = |p: &[&str], e: &[&str]| ports(&s(p), &s(e)).err().unwrap_or_default();
        assert_eq!(err(&[], &["1:2"]), "invalid port format for --expose: 1:2");
        assert_eq!(
            err(&[], &["abc"]),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err(&[], &["90-80"]),
            "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
        );
        assert_eq!(
            err(&[], &["99999"]),
            "invalid range format for --expose: 99999, error: strconv.ParseUint: parsing \"99999\": value out of range"
        );
        assert_eq!(
            err(&["published=1,target"], &[]),
            "invalid publish opts format (should be name=value but got 'target')"
        );
    }

    #[test]
    fn dns_and_hosts() {
        assert_eq!(validate_ip_address("8.8.8.8"), Ok("8.8.8.8".into()));
        assert_eq!(validate_ip_address("0:0::1"), Ok("::1".into()));
        assert_eq!(validate_ip_address("::ffff:1.2.3.4"), Ok("1.2.3.4".into()));
        assert_eq!(
            validate_ip_address("foo"),
            Err("IP address is not correctly formatted: foo".into())
        );
        assert_eq!(
            validate_dns_search("example.com."),
            Ok("example.com".into())
        );
        assert_eq!(validate_dns_search(" . "), Ok(".".into()));
        assert_eq!(validate_dns_search(":a:.:b."), Ok(":a:.:b".into()));
        for bad in ["-bad", "a..b", "123", "a_b", "a.-b"] {
            assert_eq!(
                validate_dns_search(bad),
                Err(format!("{bad} is not a valid domain"))
            );
        }
        assert_eq!(validate_extra_host("a=::1"), Ok("a:::1".into()));
        assert_eq!(validate_extra_host("b:[1.2.3.4]"), Ok("b:1.2.3.4".into()));
        assert_eq!(
            validate_extra_host("x:::ffff:1.2.3.4"),
            Ok("x:::ffff:1.2.3.4".into())
        );
        assert_eq!(
            validate_extra_host("gw:host-gateway"),
            Ok("gw:host-gateway".into())
        );
        assert_eq!(
            validate_extra_host("foo"),
            Err("bad format for add-host: \"foo\"".into())
        );
        assert_eq!(
            validate_extra_host(":1.2.3.4"),
            Err("bad format for add-host: \":1.2.3.4\"".into())
        );
        assert_eq!(
            validate_extra_host("a:b"),
            Err("invalid IP address in add-host: \"b\"".into())
        );
    }

    #[test]
    fn mac_addresses() {
        for good in [
            "92:d0:c6:0a:29:33",
            "92-D0-C6-0A-29-33",
            "92d0.c60a.2933",
            "02:00:5e:10:00:00:00:01",
        ] {
            assert!(is_valid_mac(good), "{good}");
        }
        for bad in [
            "xx",
            "92:d0:c6:0a:29",
            "92:d0-c6:0a:29:33",
            "92:d0:c6:0a:29:3g",
            "92d0.c60a:2933",
        ] {
            assert!(!is_valid_mac(bad), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(validate_label("a=b"), Ok("a=b".into()));
        assert_eq!(
            validate_label("=x"),
            Err("invalid label '=x': empty name".into())
        );
        assert_eq!(
            validate_label(" a b=x"),
            Err("label 'a b' contains whitespaces".into())
        );
    }

    #[test]
    fn ipam() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ipam_config(
                &s(&["10.1.0.0/16", "fd00::/64"]),
                &s(&["10.1.2.0/24"]),
                &s(&["10.1.0.1"])
            ),
            Ok(vec![
                json!({"Subnet": "10.1.0.0/16", "IPRange": "10.1.2.0/24", "Gateway": "10.1.0.1"}),
                json!({"Subnet": "fd00::/64"}),
            ])
        );
        // A lone invalid subnet goes to the daemon, as docker sends it.
        assert_eq!(
            ipam_config(&s(&["foo"]), &[], &[]),
            Ok(vec![json!({"Subnet": "foo"})])
        );
        let err = |sn: &[&str], r: &[&str], g: &[&str]| {
            ipam_config(&s(sn), &s(r), &s(g)).err().unwrap_or_default()
        };
        assert_eq!(
            err(&["10.1.0.0/16"], &[], &["10.2.0.1"]),
            "no matching subnet for gateway 10.2.0.1"
        );
        assert_eq!(
            err(&[], &["10.0.0.0/24"], &[]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["10.0.0.0/8", "10.1.0.0/16"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err(&["10.0.0.0/8", "11.0.0.0/8"], &["12.0.0.0/24"], &[]),
            "no matching subnet for range 12.0.0.0/24"
        );
        assert_eq!(
            err(&["10.0.0.0/8"], &["10.1.0.0"], &[]),
            "invalid CIDR address: 10.1.0.0"
        );
    }
}
