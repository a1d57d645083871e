//! The bridge driver against the real kernel, inside private network namespaces only: a "host"
//! namespace with the bridges, "container" namespaces attached by veths, and an "outside"
//! namespace behind an uplink veth standing for the rest of the world.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use berth_network::bridge::{
    new_veth_name, user_bridge_name, BridgeDriver, DriverConfig, EndpointSpec, NetworkSpec,
};
use berth_network::firewall::FirewallConfig;
use berth_network::ipam::{AddressRequest, Family, Ipam, SubnetRequest};
use berth_network::ports::parse_publish;
use berth_network::sysctl;
use berth_network::ErrorKind;
use common::*;

const HOST_UPLINK: &str = "198.18.0.1";
const OUTSIDE: &str = "198.18.0.2";

struct World {
    host: TestNs,
    outside: TestNs,
    driver: BridgeDriver,
    ipam: Ipam,
    containers: Vec<TestNs>,
}

impl World {
    async fn new(cfg: DriverConfig) -> World {
        let host = TestNs::new("host");
        let outside = TestNs::new("out");
        host.ip(&["link", "set", "lo", "up"]);
        outside.ip(&["link", "set", "lo", "up"]);
        host.ip(&[
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "o0",
            "netns",
            &outside.name,
        ]);
        host.ip(&["addr", "add", "198.18.0.1/24", "dev", "up0"]);
        host.ip(&["link", "set", "up0", "up"]);
        outside.ip(&["addr", "add", "198.18.0.2/24", "dev", "o0"]);
        outside.ip(&["link", "set", "o0", "up"]);
        let driver = BridgeDriver::new(host.ns.clone(), cfg)
            .await
            .expect("driver");
        World {
            host,
            outside,
            driver,
            ipam: Ipam::default(),
            containers: Vec::new(),
        }
    }

    async fn network(&mut self, id: &str, internal: bool) -> NetworkSpec {
        let avoid = self.driver.host_routes().await.expect("routes");
        let subnets = self
            .ipam
            .create_network(id, &[SubnetRequest::default()], &avoid)
            .expect("ipam");
        let spec = NetworkSpec {
            id: id.to_owned(),
            bridge: user_bridge_name(id),
            subnets,
            mtu: Some(1450),
            internal,
            icc: true,
            masquerade: true,
        };
        self.driver
            .create_network(&spec)
            .await
            .expect("create network");
        spec
    }

    /// A new container namespace attached to `net`; returns (index, address, host veth).
    async fn container(&mut self, net: &NetworkSpec) -> (usize, IpAddr, String) {
        let c = TestNs::new(&format!("c{}", self.containers.len()));
        let (ip, subnet) = self
            .ipam
            .allocate(&net.id, AddressRequest::Any(Family::V4))
            .expect("allocate");
        let veth = new_veth_name();
        let spec = EndpointSpec {
            bridge: net.bridge.clone(),
            host_veth: veth.clone(),
            ifname: "eth0".into(),
            addresses: vec![subnet.with_prefix(ip)],
            gateways: vec![subnet.gateway],
            mac: None,
            mtu: None,
        };
        self.driver.connect(&spec, &c.ns).await.expect("connect");
        self.containers.push(c);
        (self.containers.len() - 1, ip, veth)
    }

    fn c(&self, i: usize) -> &TestNs {
        &self.containers[i]
    }

    async fn nft_json(&self) -> String {
        self.driver
            .firewall()
            .list()
            .await
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// Tears down and checks that nothing is left: no berth links or table in the host
    /// namespace, no namespace of ours, nothing in the process's own namespace.
    async fn finish(self) {
        self.driver.teardown().await.expect("teardown");
        let links = self.host.links();
        assert!(
            links.iter().all(|l| l == "lo" || l == "up0"),
            "links left in host ns: {links:?}"
        );
        assert!(
            self.driver.firewall().list().await.is_err(),
            "table still there"
        );
        let mut names: Vec<String> = vec![self.host.name.clone(), self.outside.name.clone()];
        names.extend(self.containers.iter().map(|c| c.name.clone()));
        drop(self.containers);
        drop(self.driver);
        drop(self.host);
        drop(self.outside);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(leftover_namespaces(&refs), Vec::<String>::new());
        assert_eq!(berth_links_in_host(), Vec::<String>::new());
    }
}

fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_a_bridge_talk_and_leave_nothing() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let net = w.network("n1aaaaaaaaaaaaaa", false).await;
    assert_eq!(net.subnets[0].subnet.to_string(), "172.17.0.0/16");
    let gw = net.subnets[0].gateway;
    let (c1, ip1, veth1) = w.container(&net).await;
    let (c2, ip2, _veth2) = w.container(&net).await;

    // Inside the container: eth0 with address, MTU, default route; lo up.
    let addr = w.c(c1).ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("{ip1}/16")), "{addr}");
    let link = w.c(c1).ip(&["link", "show", "eth0"]);
    assert!(
        link.contains("mtu 1450") && link.contains("state UP"),
        "{link}"
    );
    let route = w.c(c1).ip(&["route", "show", "default"]);
    assert!(route.contains(&format!("via {gw} dev eth0")), "{route}");
    assert!(w.c(c1).ip(&["link", "show", "lo"]).contains("UP"));
    // On the host: the veth is a port of the bridge and is berth's.
    let hostlink = w.host.ip(&["-d", "link", "show", &veth1]);
    assert!(
        hostlink.contains(&format!("master {}", net.bridge)),
        "{hostlink}"
    );
    assert!(hostlink.contains("alias berth:endpoint:eth0"), "{hostlink}");
    let bridge = w.host.ip(&["-d", "addr", "show", &net.bridge]);
    assert!(
        bridge.contains(&format!("{gw}/16")) && bridge.contains("mtu 1450"),
        "{bridge}"
    );

    // Container to container, container to gateway.
    let server = tcp_server(w.c(c2), sa(ip2, 7000));
    let ns1 = w.c(c1).ns.clone();
    let seen = blocking(move || tcp_hello(&ns1, server))
        .await
        .expect("c1 -> c2");
    assert_eq!(seen, ip1.to_string(), "no NAT on the bridge");
    let gw_server = tcp_server(&w.host, sa(gw, 7001));
    let ns1 = w.c(c1).ns.clone();
    blocking(move || tcp_hello(&ns1, gw_server))
        .await
        .expect("c1 -> gateway");

    // Connecting twice with the same veth name is a conflict, and leaves the first alone.
    let again = EndpointSpec {
        bridge: net.bridge.clone(),
        host_veth: veth1.clone(),
        ifname: "eth1".into(),
        addresses: vec![],
        gateways: vec![],
        mac: None,
        mtu: None,
    };
    let err = w
        .driver
        .connect(&again, &w.c(c2).ns)
        .await
        .expect_err("duplicate veth");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(w.host.links().contains(&veth1));

    // A connect that fails half-way (a gateway off the subnet: no route to it) leaves no veth.
    let bad_veth = new_veth_name();
    let bad = EndpointSpec {
        bridge: net.bridge.clone(),
        host_veth: bad_veth.clone(),
        ifname: "eth1".into(),
        addresses: vec!["10.255.0.2/24".parse().expect("net")],
        gateways: vec!["10.254.0.1".parse().expect("ip")],
        mac: None,
        mtu: None,
    };
    let err = w
        .driver
        .connect(&bad, &w.c(c2).ns)
        .await
        .expect_err("bad gateway");
    assert!(err.to_string().contains("default route"), "{err}");
    assert!(!w.host.links().contains(&bad_veth));
    assert!(!w.c(c2).links().contains(&"eth1".to_string()));
    let unknown = EndpointSpec {
        bridge: "br-nonexistent".into(),
        ..bad
    };
    let err = w
        .driver
        .connect(&unknown, &w.c(c2).ns)
        .await
        .expect_err("no bridge");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // Disconnect removes both ends; twice is fine.
    assert!(w.driver.disconnect(&veth1).await.expect("disconnect"));
    assert!(!w.driver.disconnect(&veth1).await.expect("disconnect again"));
    assert!(!w.host.links().contains(&veth1));
    assert!(!w.c(c1).links().contains(&"eth0".to_string()));

    w.driver
        .delete_network(&net.bridge)
        .await
        .expect("delete network");
    w.driver
        .delete_network(&net.bridge)
        .await
        .expect("delete network again");
    assert!(!w.host.links().contains(&net.bridge));
    assert!(!w.nft_json().await.contains(&net.bridge));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masquerade_isolation_and_internal_networks() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let a = w.network("aaaaaaaaaaaaaaaa", false).await;
    let b = w.network("bbbbbbbbbbbbbbbb", true).await;
    let (ca, ip_a, _) = w.container(&a).await;
    let (cb, ip_b, _) = w.container(&b).await;
    assert_eq!(
        sysctl::get(&w.host.ns, "net.ipv4.ip_forward").expect("sysctl"),
        "1"
    );

    // The rules, as the kernel lists them.
    let table = w.nft_json().await;
    let subnet_a = a.subnets[0].subnet;
    assert!(
        table.contains(&format!(
            r#""right":{{"prefix":{{"addr":"{}","len":16}}}}"#,
            subnet_a.network()
        )) && table.contains(r#"{"masquerade":null}"#),
        "{table}"
    );
    assert!(
        !table.contains(&format!(r#""addr":"{}""#, b.subnets[0].subnet.network())),
        "internal networks are not masqueraded: {table}"
    );
    assert!(table.contains(&format!("isolate {}", a.bridge)), "{table}");
    assert!(table.contains(&format!("internal {}", b.bridge)), "{table}");

    // Outbound from a regular network is masqueraded behind the host's uplink address.
    let out = tcp_server(&w.outside, sa(OUTSIDE.parse().expect("ip"), 7100));
    let ns_a = w.c(ca).ns.clone();
    let seen = blocking(move || tcp_hello(&ns_a, out))
        .await
        .expect("a -> outside");
    assert_eq!(seen, HOST_UPLINK);

    // An internal network reaches nothing beyond its bridge.
    let ns_b = w.c(cb).ns.clone();
    let err = blocking(move || tcp_hello(&ns_b, out)).await;
    assert!(err.is_err(), "internal network reached outside: {err:?}");

    // Two bridges are isolated from each other, both ways.
    let srv_b = tcp_server(w.c(cb), sa(ip_b, 7200));
    let ns_a = w.c(ca).ns.clone();
    let err = blocking(move || tcp_hello(&ns_a, srv_b)).await;
    assert!(err.is_err(), "crossed bridges: {err:?}");
    let srv_a = tcp_server(w.c(ca), sa(ip_a, 7201));
    let ns_b = w.c(cb).ns.clone();
    let err = blocking(move || tcp_hello(&ns_b, srv_a)).await;
    assert!(err.is_err(), "crossed bridges: {err:?}");

    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_through_dnat_and_proxy() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let net = w.network("pppppppppppppppp", false).await;
    let (c, ip, _) = w.container(&net).await;
    let (other, _, _) = w.container(&net).await;
    tcp_server(w.c(c), sa(ip, 80));
    udp_echo(w.c(c), sa(ip, 53));

    let mut requests = parse_publish("8080:80").expect("parse");
    requests.extend(parse_publish("127.0.0.1:5353:53/udp").expect("parse"));
    requests.extend(parse_publish("80").expect("parse"));
    let published = w
        .driver
        .publish("ep1", &net.bridge, ip, &requests)
        .await
        .expect("publish");
    assert_eq!(published.len(), 3);
    assert_eq!(published[0].host_port, 8080);
    let dynamic = published[2].host_port;
    let range = berth_network::ports::PortAllocator::from_system().dynamic_range();
    assert!(
        (range.0..=range.1).contains(&dynamic),
        "{dynamic} in {range:?}"
    );

    let table = w.nft_json().await;
    assert!(
        table.contains(&format!(
            r#"{{"dnat":{{"addr":"{ip}","family":"ip","port":80}}}}"#
        )),
        "{table}"
    );

    // From the host's loopback: the proxy.
    let host = w.host.ns.clone();
    let seen = blocking(move || tcp_hello(&host, "127.0.0.1:8080".parse().expect("addr")))
        .await
        .expect("127.0.0.1:8080");
    assert_eq!(
        seen,
        net.subnets[0].gateway.to_string(),
        "the proxy connects from the bridge"
    );
    let host = w.host.ns.clone();
    let port = dynamic;
    blocking(move || tcp_hello(&host, sa("127.0.0.1".parse().expect("ip"), port)))
        .await
        .expect("dynamic port");
    let host = w.host.ns.clone();
    let echo =
        blocking(move || udp_roundtrip(&host, "127.0.0.1:5353".parse().expect("addr"), b"query"))
            .await
            .expect("udp through proxy");
    assert_eq!(echo, b"query");

    // From outside: DNAT, with the client's address preserved.
    let out = w.outside.ns.clone();
    let seen = blocking(move || tcp_hello(&out, sa(HOST_UPLINK.parse().expect("ip"), 8080)))
        .await
        .expect("outside -> 8080");
    assert_eq!(seen, OUTSIDE);
    // 127.0.0.1-only ports are not reachable from outside.
    let out = w.outside.ns.clone();
    let err =
        blocking(move || udp_roundtrip(&out, sa(HOST_UPLINK.parse().expect("ip"), 5353), b"x"))
            .await;
    assert!(err.is_err(), "127.0.0.1 port reachable from outside");

    // Another container on the same bridge reaches the published port via the host address.
    let ns_other = w.c(other).ns.clone();
    blocking(move || tcp_hello(&ns_other, sa(HOST_UPLINK.parse().expect("ip"), 8080)))
        .await
        .expect("container -> host:8080");

    // Docker's errors: ours, and another program's.
    let again = w
        .driver
        .publish(
            "ep2",
            &net.bridge,
            ip,
            &parse_publish("8080:80").expect("parse"),
        )
        .await
        .expect_err("8080 twice");
    assert_eq!(
        again.to_string(),
        "Bind for 0.0.0.0:8080 failed: port is already allocated"
    );
    assert_eq!(again.kind(), ErrorKind::Conflict);
    let squatter = w
        .host
        .run(|| std::net::TcpListener::bind("127.0.0.1:9099"))
        .expect("squat");
    let taken = w
        .driver
        .publish(
            "ep2",
            &net.bridge,
            ip,
            &parse_publish("127.0.0.1:9099:80").expect("parse"),
        )
        .await
        .expect_err("taken by another program");
    assert_eq!(taken.kind(), ErrorKind::Conflict);
    assert!(
        taken.to_string().starts_with("driver failed programming external connectivity on endpoint ep2: Error starting userland proxy: listen tcp4 127.0.0.1:9099: bind:"),
        "{taken}"
    );
    drop(squatter);

    // Unpublish: the proxy is gone and the rules too.
    w.driver
        .unpublish(&net.bridge, &published)
        .await
        .expect("unpublish");
    let host = w.host.ns.clone();
    let err = blocking(move || tcp_hello(&host, "127.0.0.1:8080".parse().expect("addr"))).await;
    assert!(err.is_err());
    assert!(!w.nft_json().await.contains(r#"{"dnat":"#));
    // And the port can be published again.
    let back = w
        .driver
        .publish(
            "ep1",
            &net.bridge,
            ip,
            &parse_publish("8080:80").expect("parse"),
        )
        .await
        .expect("publish again");
    assert_eq!(back[0].host_port, 8080);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_userland_proxy_loopback_is_dnated() {
    if !can_run() {
        return;
    }
    let cfg = DriverConfig {
        firewall: FirewallConfig {
            userland_proxy: false,
            ..FirewallConfig::default()
        },
        ..DriverConfig::default()
    };
    let mut w = World::new(cfg).await;
    let net = w.network("llllllllllllllll", false).await;
    let (c, ip, _) = w.container(&net).await;
    tcp_server(w.c(c), sa(ip, 80));
    let key = format!("net.ipv4.conf.{}.route_localnet", net.bridge);
    assert_eq!(sysctl::get(&w.host.ns, &key).expect("sysctl"), "1");
    w.driver
        .publish(
            "ep",
            &net.bridge,
            ip,
            &parse_publish("8081:80").expect("parse"),
        )
        .await
        .expect("publish");
    let host = w.host.ns.clone();
    blocking(move || tcp_hello(&host, "127.0.0.1:8081".parse().expect("addr")))
        .await
        .expect("127.0.0.1:8081 via DNAT");
    // The port is still held against other programs.
    let bind = w.host.run(|| std::net::TcpListener::bind("0.0.0.0:8081"));
    assert!(bind.is_err());
    // Hairpin: the container reaches its own published port through the host address.
    let ns_c = w.c(c).ns.clone();
    blocking(move || tcp_hello(&ns_c, sa(HOST_UPLINK.parse().expect("ip"), 8081)))
        .await
        .expect("hairpin");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_removes_what_a_crash_left() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let keep = w.network("kkkkkkkkkkkkkkkk", false).await;
    let gone = w.network("gggggggggggggggg", false).await;
    let (_, ip_keep, veth_keep) = w.container(&keep).await;
    let (_, ip_gone, veth_gone) = w.container(&keep).await;
    let (_, _, veth_gone2) = w.container(&gone).await;
    let published = w
        .driver
        .publish(
            "ep",
            &keep.bridge,
            ip_keep,
            &parse_publish("8082:80").expect("parse"),
        )
        .await
        .expect("publish");
    w.driver
        .publish(
            "ep",
            &keep.bridge,
            ip_gone,
            &parse_publish("8083:80").expect("parse"),
        )
        .await
        .expect("publish");
    // A bridge of the host's own, which must survive.
    w.host.ip(&["link", "add", "hostbr0", "type", "bridge"]);

    // "Crash": a new driver on the same namespace, told that only `keep` and one endpoint and
    // one port exist.
    let records = vec![keep.clone()];
    let keep_veths: BTreeSet<String> = [veth_keep.clone()].into();
    let ports = vec![(keep.bridge.clone(), published[0])];
    let old = std::mem::replace(
        &mut w.driver,
        BridgeDriver::new(w.host.ns.clone(), DriverConfig::default())
            .await
            .expect("driver"),
    );
    drop(old);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut deleted = w
        .driver
        .reconcile(&records, &keep_veths, &ports, &[])
        .await
        .expect("reconcile");
    deleted.sort();
    let mut want = vec![veth_gone.clone(), veth_gone2.clone(), gone.bridge.clone()];
    want.sort();
    assert_eq!(deleted, want);
    let links = w.host.links();
    assert!(
        links.contains(&keep.bridge)
            && links.contains(&veth_keep)
            && links.contains(&"hostbr0".to_string()),
        "{links:?}"
    );
    let table = w.nft_json().await;
    assert!(!table.contains(&gone.bridge), "{table}");
    assert!(table.contains("8082") && !table.contains("8083"), "{table}");
    // The recorded port is served again.
    let host = w.host.ns.clone();
    let err = blocking(move || tcp_hello(&host, "127.0.0.1:8082".parse().expect("addr"))).await;
    // No server in the container: the proxy accepts and closes, so the hello fails, but not
    // with "connection refused" from the host.
    match err {
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("no server was running"),
    }
    // Idempotent.
    let again = w
        .driver
        .reconcile(&records, &keep_veths, &ports, &[])
        .await
        .expect("reconcile again");
    assert_eq!(again, Vec::<String>::new());
    w.host.ip(&["link", "del", "hostbr0"]);
    w.finish().await;
}

/// Throughput of a published port on loopback: through the userland proxy and through DNAT,
/// against a direct connection. Run by hand:
/// `cargo test -p berth-network --release --test bridge -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput_of_published_ports() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let net = w.network("tttttttttttttttt", false).await;
    let (c, ip, _) = w.container(&net).await;
    let sink = tcp_sink(w.c(c), sa(ip, 80));
    let local_sink = tcp_sink(&w.host, "127.0.0.1:0".parse().expect("addr"));
    w.driver
        .publish(
            "ep",
            &net.bridge,
            ip,
            &parse_publish("8090:80").expect("parse"),
        )
        .await
        .expect("publish");
    let bytes: u64 = std::env::var("BERTH_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        * 1024
        * 1024;
    let cases: Vec<(&str, berth_network::netns::NetNs, SocketAddr)> = vec![
        ("loopback, no container", w.host.ns.clone(), local_sink),
        ("host -> container ip (bridge)", w.host.ns.clone(), sink),
        (
            "host 127.0.0.1:8090 (userland proxy)",
            w.host.ns.clone(),
            "127.0.0.1:8090".parse().expect("addr"),
        ),
        (
            "outside -> host:8090 (DNAT, forwarded)",
            w.outside.ns.clone(),
            sa(HOST_UPLINK.parse().expect("ip"), 8090),
        ),
    ];
    for (name, ns, target) in cases {
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            let ns = ns.clone();
            let mibs = blocking(move || tcp_throughput(&ns, target, bytes))
                .await
                .expect(name);
            best = best.max(mibs);
        }
        println!("{name:40} {best:8.0} MiB/s");
    }
    w.finish().await;
}

/// A DNS query from inside `ns` to the embedded server; returns the A answers.
fn dns_a(ns: &berth_network::netns::NetNs, name: &str) -> std::io::Result<Vec<String>> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(
        Name::from_ascii(name).map_err(std::io::Error::other)?,
        RecordType::A,
    ));
    let bytes = q.to_vec().map_err(std::io::Error::other)?;
    let reply = udp_roundtrip(ns, berth_network::dns::DNS_ADDR, &bytes)?;
    let reply = Message::from_vec(&reply).map_err(std::io::Error::other)?;
    Ok(reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_dns_inside_a_container() {
    use berth_network::dns::{DnsServer, Names};
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let net = w.network("dddddddddddddddd", false).await;
    let (c1, ip1, _) = w.container(&net).await;
    let (c2, ip2, _) = w.container(&net).await;
    let names = Names::new();
    names.add(&net.id, "web", ip1);
    names.add(&net.id, "db", ip2);
    names.add(&net.id, "database", ip2);
    // The "host's resolver": a fake on the process's own loopback, reached from the daemon's
    // namespace as a real /etc/resolv.conf nameserver would be.
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
    let upstream_addr = upstream.local_addr().expect("addr");
    std::thread::spawn(move || {
        use hickory_proto::op::{Message, OpCode};
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{RData, Record};
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = upstream.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.queries = q.queries.clone();
            if let Some(first) = q.queries.first() {
                r.answers.push(Record::from_rdata(
                    first.name.clone(),
                    30,
                    RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, 7))),
                ));
            }
            if let Ok(bytes) = r.to_vec() {
                let _ = upstream.send_to(&bytes, from);
            }
        }
    });
    let server = DnsServer::start(
        &w.c(c1).ns,
        names.clone(),
        vec![net.id.clone()],
        vec![upstream_addr],
    )
    .await
    .expect("start dns in container");
    let ns1 = w.c(c1).ns.clone();
    let got = blocking(move || {
        (
            dns_a(&ns1, "db."),
            dns_a(&ns1, "WEB."),
            dns_a(&ns1, "example.com."),
        )
    })
    .await;
    assert_eq!(got.0.expect("db"), vec![ip2.to_string()]);
    assert_eq!(got.1.expect("web"), vec![ip1.to_string()]);
    assert_eq!(got.2.expect("forwarded"), vec!["192.0.2.7".to_string()]);
    // The server lives only in c1's namespace.
    let ns2 = w.c(c2).ns.clone();
    let other = blocking(move || dns_a(&ns2, "db.")).await;
    assert!(other.is_err(), "{other:?}");
    // The engine's updates are seen at once.
    names.remove_address(&net.id, ip2);
    names.add(&net.id, "db", ip1);
    let ns1 = w.c(c1).ns.clone();
    let moved = blocking(move || dns_a(&ns1, "db."))
        .await
        .expect("db again");
    assert_eq!(moved, vec![ip1.to_string()]);
    drop(server);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_network() {
    if !can_run() {
        return;
    }
    let mut w = World::new(DriverConfig::default()).await;
    let requests = [
        SubnetRequest::default(),
        SubnetRequest {
            subnet: Some("fd42:beef::/64".parse().expect("net")),
            ..SubnetRequest::default()
        },
    ];
    let subnets = w.ipam.create_network("v6", &requests, &[]).expect("ipam");
    let spec = NetworkSpec {
        id: "v6".into(),
        bridge: user_bridge_name("v6v6v6v6v6v6"),
        subnets: subnets.clone(),
        mtu: None,
        internal: false,
        icc: true,
        masquerade: true,
    };
    w.driver.create_network(&spec).await.expect("create");
    let mut ends = Vec::new();
    for i in 0..2 {
        let c = TestNs::new(&format!("v6c{i}"));
        let (ip4, s4) = w
            .ipam
            .allocate("v6", AddressRequest::Any(Family::V4))
            .expect("v4");
        let (ip6, s6) = w
            .ipam
            .allocate("v6", AddressRequest::Any(Family::V6))
            .expect("v6");
        let ep = EndpointSpec {
            bridge: spec.bridge.clone(),
            host_veth: new_veth_name(),
            ifname: "eth0".into(),
            addresses: vec![s4.with_prefix(ip4), s6.with_prefix(ip6)],
            gateways: vec![s4.gateway, s6.gateway],
            mac: None,
            mtu: None,
        };
        w.driver.connect(&ep, &c.ns).await.expect("connect");
        let route = c.ip(&["-6", "route", "show", "default"]);
        assert!(route.contains(&format!("via {}", s6.gateway)), "{route}");
        w.containers.push(c);
        ends.push(ip6);
    }
    assert_eq!(ends[0].to_string(), "fd42:beef::2");
    let server = tcp_server(w.c(1), sa(ends[1], 7300));
    let ns0 = w.c(0).ns.clone();
    let seen = blocking(move || tcp_hello(&ns0, server))
        .await
        .expect("v6 c0 -> c1");
    assert_eq!(seen, ends[0].to_string());
    let gw6 = subnets[1].gateway;
    let gw_server = tcp_server(&w.host, sa(gw6, 7301));
    let ns0 = w.c(0).ns.clone();
    blocking(move || tcp_hello(&ns0, gw_server))
        .await
        .expect("v6 c0 -> gateway");
    let table = w.nft_json().await;
    assert!(
        table.contains(r#""protocol":"ip6""#) && table.contains("fd42:beef::"),
        "{table}"
    );
    w.finish().await;
}
