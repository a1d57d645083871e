//! Bridge networking end to end, each daemon in a network namespace of its own: the default
//! bridge, published ports reached from the host side with curl, user-defined networks with
//! names served by the embedded DNS, live connect/disconnect, and a clean namespace afterwards.

mod common;

use std::time::{Duration, Instant};

use common::{ok, Daemon};

/// A busybox image with a web root that serves `body`.
fn web_image(d: &Daemon, body: &str) {
    d.import_busybox("busybox:latest");
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("index.html"), body).expect("index");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY index.html /www/index.html\nEXPOSE 80\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
    )
    .expect("Dockerfile");
    ok(
        &d.berth(&[
            "build",
            "-q",
            "-t",
            "web",
            ctx.path().to_str().expect("path"),
        ]),
        "build web",
    );
}

/// curl from the daemon's namespace (where published ports live), retried while the server
/// starts.
fn fetch(d: &Daemon, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = d.in_netns(&["curl", "-s", "--max-time", "2", url]);
        if out.code == 0 || Instant::now() > deadline {
            return out.stdout;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn links_now(d: &Daemon, kind: &str) -> Vec<String> {
    let out = d.in_netns(&["ip", "-o", "link", "show", "type", kind]);
    out.stdout
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

/// The links of `kind` once the kernel has finished destroying the namespaces of stopped
/// containers (it takes their veths with them, in the background).
fn links(d: &Daemon, kind: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = links_now(d, kind);
        if kind != "veth" || now.is_empty() || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn default_bridge_publishes_ports() {
    let d = Daemon::start_networked("");
    web_image(&d, "hello from web\n");
    ok(
        &d.docker(&["run", "-d", "--name", "w1", "-p", "18080:80", "web"]),
        "docker run -p",
    );
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "w2",
            "-p",
            "127.0.0.1:18081:80",
            "web",
        ]),
        "berth run -p",
    );
    assert_eq!(fetch(&d, "http://127.0.0.1:18080/"), "hello from web\n");
    assert_eq!(fetch(&d, "http://127.0.0.1:18081/"), "hello from web\n");
    // The container's own address, on the default bridge, from the host side.
    let ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "w1"]);
    let ip = ip.stdout.trim().to_string();
    assert!(ip.starts_with("172.17."), "{ip}");
    assert_eq!(fetch(&d, &format!("http://{ip}/")), "hello from web\n");
    let port = d.docker(&["port", "w1"]);
    assert_eq!(port.stdout.trim(), "80/tcp -> 0.0.0.0:18080", "{port:?}");
    let ps = d.docker(&["ps", "--filter", "name=w2", "--format", "{{.Ports}}"]);
    assert_eq!(ps.stdout.trim(), "127.0.0.1:18081->80/tcp");
    // -P: every exposed port to an ephemeral host port.
    ok(
        &d.docker(&["run", "-d", "--name", "w3", "-P", "web"]),
        "run -P",
    );
    let mapped = d.docker(&[
        "inspect",
        "-f",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        "w3",
    ]);
    let host_port: u16 = mapped.stdout.trim().parse().expect("an ephemeral port");
    assert!(host_port >= 1024, "{host_port}");
    assert_eq!(
        fetch(&d, &format!("http://127.0.0.1:{host_port}/")),
        "hello from web\n"
    );
    // A taken host port fails the start with dockerd's words, and leaves nothing behind.
    let clash = d.docker(&["run", "-d", "--name", "w4", "-p", "18080:80", "web"]);
    assert_ne!(clash.code, 0);
    assert!(clash.stderr.contains("18080"), "{clash:?}");
    assert!(
        clash.stderr.contains("already allocated") || clash.stderr.contains("in use"),
        "{clash:?}"
    );
    // Outbound from a container: the gateway answers.
    let gw = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "172.17.0.1",
    ]);
    ok(&gw, "ping the gateway");
    // Stop takes the port away; start brings it back.
    ok(&d.berth(&["stop", "-t", "1", "w1"]), "stop");
    let gone = d.in_netns(&["curl", "-s", "--max-time", "1", "http://127.0.0.1:18080/"]);
    assert_ne!(gone.code, 0, "port still served after stop");
    ok(&d.berth(&["start", "w1"]), "start");
    assert_eq!(fetch(&d, "http://127.0.0.1:18080/"), "hello from web\n");
    ok(&d.berth(&["rm", "-f", "w1", "w2", "w3", "w4"]), "rm");
    assert!(links(&d, "veth").is_empty(), "{:?}", links(&d, "veth"));
    let table = d.in_netns(&["nft", "list", "chain", "inet", "berth", "published"]);
    assert!(!table.stdout.contains("dnat"), "{}", table.stdout);
}

#[test]
fn user_networks_resolve_names_and_stay_apart() {
    let d = Daemon::start_networked("");
    web_image(&d, "db says hi\n");
    ok(&d.docker(&["network", "create", "app"]), "network create");
    ok(
        &d.docker(&[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--label",
            "k=v",
            "other",
        ]),
        "network create --subnet",
    );
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "app",
            "--network-alias",
            "database",
            "web",
        ]),
        "run db",
    );
    for host in ["db", "database"] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{host}/"),
        ]);
        ok(&out, host);
        assert_eq!(out.stdout, "db says hi\n");
    }
    let resolv = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        resolv.stdout.contains("nameserver 127.0.0.11"),
        "{resolv:?}"
    );
    // A static address inside the subnet.
    let fixed = d.docker(&[
        "run",
        "--rm",
        "--network",
        "other",
        "--ip",
        "10.77.0.50",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(fixed.stdout.contains("10.77.0.50/24"), "{fixed:?}");
    // Names do not cross networks, and neither do packets.
    let db_ip = d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
        "db",
    ]);
    let db_ip = db_ip.stdout.trim().to_string();
    assert!(!db_ip.is_empty());
    let across = d.berth(&[
        "run",
        "--rm",
        "--network",
        "other",
        "busybox",
        "sh",
        "-c",
        &format!("timeout 2 wget -qO- http://{db_ip}/; exit $?"),
    ]);
    // Dropped packets: wget waits until `timeout` ends it (busybox's own `wget -T` crashes;
    // under `sh`, wget is not the namespace's init, which would ignore the signal).
    assert_ne!(across.code, 0, "reached another network: {across:?}");
    assert_eq!(across.stdout, "");
    // connect/disconnect while running.
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "client",
            "--network",
            "other",
            "busybox",
            "sleep",
            "1000",
        ]),
        "client",
    );
    ok(
        &d.docker(&["network", "connect", "app", "client"]),
        "connect",
    );
    let via = d.docker(&["exec", "client", "wget", "-qO-", "http://db/"]);
    assert_eq!(via.stdout, "db says hi\n", "{via:?}");
    let inspect = d.docker(&["network", "inspect", "-f", "{{len .Containers}}", "app"]);
    assert_eq!(inspect.stdout.trim(), "2");
    ok(
        &d.docker(&["network", "disconnect", "app", "client"]),
        "disconnect",
    );
    let eth1 = d.docker(&["exec", "client", "ip", "link", "show", "eth1"]);
    assert_ne!(eth1.code, 0, "eth1 gone after disconnect");
    // In use: not removable; predefined: never.
    let busy = d.docker(&["network", "rm", "app"]);
    assert_ne!(busy.code, 0);
    assert!(busy.stderr.contains("has active endpoints"), "{busy:?}");
    let builtin = d.docker(&["network", "rm", "bridge"]);
    assert!(
        builtin.stderr.contains("pre-defined network"),
        "{builtin:?}"
    );
    let ls = d.docker(&[
        "network",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}} {{.Driver}}",
    ]);
    assert_eq!(ls.stdout.trim(), "other bridge");
    ok(&d.berth(&["rm", "-f", "db", "client"]), "rm");
    let pruned = d.docker(&["network", "prune", "-f"]);
    ok(&pruned, "prune");
    assert!(
        pruned.stdout.contains("app") && pruned.stdout.contains("other"),
        "{pruned:?}"
    );
    let left = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = left.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "none"]);
    assert!(links(&d, "veth").is_empty());
    assert_eq!(links(&d, "bridge"), ["berth0"]);
}

#[test]
fn networks_survive_a_daemon_kill() {
    let mut d = Daemon::start_networked("");
    web_image(&d, "still serving\n");
    ok(&d.docker(&["network", "create", "keep"]), "network create");
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "keep",
            "-p",
            "18090:80",
            "web",
        ]),
        "run",
    );
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "peer",
            "--network",
            "keep",
            "busybox",
            "sleep",
            "1000",
        ]),
        "peer",
    );
    assert_eq!(fetch(&d, "http://127.0.0.1:18090/"), "still serving\n");
    d.kill9();
    d.spawn();
    assert_eq!(fetch(&d, "http://127.0.0.1:18090/"), "still serving\n");
    let by_name = d.docker(&["exec", "peer", "wget", "-qO-", "http://srv/"]);
    assert_eq!(by_name.stdout, "still serving\n", "{by_name:?}");
    ok(&d.berth(&["rm", "-f", "srv", "peer"]), "rm");
    ok(&d.docker(&["network", "rm", "keep"]), "network rm");
    assert!(links(&d, "veth").is_empty());
    assert_eq!(links(&d, "bridge"), ["berth0"]);
}

#[test]
fn berth_cli_drives_networks_and_ports() {
    // Published ports through the userland proxy here (off by default, DNAT elsewhere).
    let d = Daemon::start_networked(r#""userland-proxy": true"#);
    web_image(&d, "via berth\n");
    let id = d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.88.0.0/24",
        "--gateway",
        "10.88.0.254",
        "mine",
    ]);
    ok(&id, "berth network create");
    assert_eq!(id.stdout.trim().len(), 64, "{id:?}");
    let ls = d.berth(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "mine", "none"]);
    let gw = d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "mine",
    ]);
    assert_eq!(gw.stdout.trim(), "10.88.0.254");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "mine",
            "--ip",
            "10.88.0.9",
            "-p",
            "18100:80",
            "--add-host",
            "extra.example:10.1.2.3",
            "web",
        ]),
        "berth run on mine",
    );
    assert_eq!(fetch(&d, "http://127.0.0.1:18100/"), "via berth\n");
    let port = d.berth(&["port", "srv"]);
    assert_eq!(port.stdout.trim(), "80/tcp -> 0.0.0.0:18100", "{port:?}");
    let one = d.berth(&["port", "srv", "80"]);
    assert_eq!(one.stdout.trim(), "0.0.0.0:18100");
    let hosts = d.berth(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(
        hosts.stdout.contains("10.1.2.3\textra.example"),
        "{hosts:?}"
    );
    assert!(hosts.stdout.contains("10.88.0.9\t"), "{hosts:?}");
    ok(
        &d.berth(&["run", "-d", "--name", "cli", "busybox", "sleep", "1000"]),
        "client",
    );
    ok(
        &d.berth(&["network", "connect", "--alias", "front", "mine", "cli"]),
        "connect",
    );
    let by_alias = d.berth(&["exec", "srv", "nslookup", "front", "127.0.0.11"]);
    ok(&by_alias, "alias resolves");
    ok(
        &d.berth(&["network", "disconnect", "mine", "cli"]),
        "disconnect",
    );
    ok(&d.berth(&["rm", "-f", "srv", "cli"]), "rm");
    ok(&d.berth(&["network", "rm", "mine"]), "network rm");
    assert!(links(&d, "veth").is_empty());
}

/// RUN steps of a build are containers on the default bridge: they reach the network.
#[test]
fn build_steps_have_the_network() {
    let d = Daemon::start_networked("");
    web_image(&d, "fetched during the build\n");
    ok(
        &d.berth(&["run", "-d", "--name", "source", "web"]),
        "run source",
    );
    let ip = d.berth(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "source"]);
    let ip = ip.stdout.trim().to_string();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nRUN wget -qO /got http://{ip}/\nCMD [\"cat\", \"/got\"]\n"),
    )
    .expect("Dockerfile");
    ok(
        &d.docker(&[
            "build",
            "-q",
            "-t",
            "fetched",
            ctx.path().to_str().expect("path"),
        ]),
        "docker build with a networked RUN",
    );
    let out = d.berth(&["run", "--rm", "fetched"]);
    assert_eq!(out.stdout, "fetched during the build\n", "{out:?}");
    ok(&d.berth(&["rm", "-f", "source"]), "rm");
}

/// The host's Python (mounted read-only with its libraries over the busybox image): busybox has
/// no UDP server, and its `nc` has no `-u`.
const PY_MOUNTS: [&str; 6] = [
    "-v",
    "/usr:/usr:ro",
    "-v",
    "/usr/lib:/lib:ro",
    "-v",
    "/usr/lib64:/lib64:ro",
];

/// A UDP echo server: every datagram comes back prefixed with `echo:`.
const UDP_ECHO: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)
"#;

/// Sends `ping` to argv[1]:argv[2] until an answer comes (the server may still be starting),
/// and prints it.
const UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
for _ in range(50):
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(2048)[0].decode())
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"#;

/// With the userland proxy (off by default): it serves 127.0.0.1, DNAT the rest.
#[test]
fn udp_ports_are_published() {
    let d = Daemon::start_networked(r#""userland-proxy": true"#);
    d.import_busybox("busybox:latest");
    let mut run = vec!["run", "-d", "--name", "echo", "-p", "19999:9999/udp"];
    run.extend(PY_MOUNTS);
    run.extend(["busybox", "/usr/bin/python3", "-c", UDP_ECHO]);
    ok(&d.docker(&run), "run the UDP echo server");
    let port = d.docker(&["port", "echo"]);
    assert_eq!(port.stdout.trim(), "9999/udp -> 0.0.0.0:19999", "{port:?}");
    // 127.0.0.1 goes through the userland proxy, the bridge's address through DNAT.
    for host in ["127.0.0.1", "172.17.0.1"] {
        let out = d.in_netns(&["/usr/bin/python3", "-c", UDP_CLIENT, host, "19999"]);
        assert_eq!(out.stdout.trim(), "echo:ping", "via {host}: {out:?}");
    }
    // From another container, to the published port on the host's address.
    let mut peer = vec!["run", "--rm"];
    peer.extend(PY_MOUNTS);
    peer.extend([
        "busybox",
        "/usr/bin/python3",
        "-c",
        UDP_CLIENT,
        "172.17.0.1",
        "19999",
    ]);
    let out = d.berth(&peer);
    assert_eq!(out.stdout.trim(), "echo:ping", "from a container: {out:?}");
    ok(&d.berth(&["rm", "-f", "echo"]), "rm");
    let table = d.in_netns(&["nft", "list", "chain", "inet", "berth", "published"]);
    assert!(!table.stdout.contains("dnat"), "{}", table.stdout);
    assert!(links(&d, "veth").is_empty());
}

/// A second namespace standing for the world outside the host, joined to the daemon's by a
/// veth (198.51.100.1 on the daemon's side, .2 outside), with a web server; removed on drop.
struct Outside {
    name: String,
    server: std::process::Child,
    _root: tempfile::TempDir,
}

impl Outside {
    fn new(d: &Daemon) -> Outside {
        let name = format!("{}-out", d.netns_name());
        let sh = |argv: &[&str]| {
            let st = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .status()
                .expect("spawn");
            assert!(st.success(), "{argv:?}");
        };
        sh(&["ip", "netns", "add", &name]);
        let ns_path = format!("/run/netns/{}", d.netns_name());
        sh(&[
            "nsenter",
            &format!("--net={ns_path}"),
            "ip",
            "link",
            "add",
            "bt-world",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &name,
        ]);
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("index.html"), "the world\n").expect("index");
        let in_ns = |cmd: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", &name];
            v.extend(cmd);
            sh(&v);
        };
        in_ns(&["ip", "addr", "add", "198.51.100.2/24", "dev", "eth0"]);
        in_ns(&["ip", "link", "set", "eth0", "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        d.in_netns(&["ip", "addr", "add", "198.51.100.1/24", "dev", "bt-world"]);
        d.in_netns(&["ip", "link", "set", "bt-world", "up"]);
        let server = std::process::Command::new("ip")
            .args([
                "netns", "exec", &name, "busybox", "httpd", "-f", "-p", "80", "-h",
            ])
            .arg(root.path())
            .spawn()
            .expect("httpd outside");
        Outside {
            name,
            server,
            _root: root,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Outbound traffic leaves through the host (masqueraded) from bridge networks, but not from
/// `--internal` ones, whose containers still reach each other.
#[test]
fn internal_networks_have_no_way_out() {
    let d = Daemon::start_networked("");
    web_image(&d, "inside\n");
    let _world = Outside::new(&d);
    ok(&d.docker(&["network", "create", "open"]), "network create");
    ok(
        &d.docker(&["network", "create", "--internal", "sealed"]),
        "network create --internal",
    );
    let internal = d.docker(&["network", "inspect", "-f", "{{.Internal}}", "sealed"]);
    assert_eq!(internal.stdout.trim(), "true");
    // As in user_networks_resolve_names_and_stay_apart: `timeout` ends a wget that waits on
    // dropped packets.
    let wget = |net: &str, url: &str| {
        let script = format!("timeout 2 wget -qO- {url}; exit $?");
        d.berth(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            &script,
        ])
    };
    let out = wget("open", "http://198.51.100.2/");
    assert_eq!(out.stdout, "the world\n", "{out:?}");
    let out = wget("bridge", "http://198.51.100.2/");
    assert_eq!(out.stdout, "the world\n", "{out:?}");
    let out = wget("sealed", "http://198.51.100.2/");
    assert_ne!(out.code, 0, "an internal network reached outside: {out:?}");
    ok(
        &d.docker(&["run", "-d", "--name", "inner", "--network", "sealed", "web"]),
        "run on the internal network",
    );
    let mut by_name = wget("sealed", "http://inner/");
    for _ in 0..20 {
        if by_name.code == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        by_name = wget("sealed", "http://inner/");
    }
    assert_eq!(by_name.stdout, "inside\n", "{by_name:?}");
    ok(&d.berth(&["rm", "-f", "inner"]), "rm");
    ok(
        &d.docker(&["network", "rm", "open", "sealed"]),
        "network rm",
    );
    assert!(
        common::eventually(5, || links_now(&d, "veth") == ["bt-world"]),
        "{:?}",
        links_now(&d, "veth")
    );
}
