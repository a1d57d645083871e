//! Fixtures for the real-kernel tests: private network namespaces (never the process's own),
//! removed when dropped, and small TCP/UDP peers that run inside them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use berth_network::netns::NetNs;

/// Whether the kernel tests can run here (root, `ip` and `nft`). Tests return early, saying
/// so, where they cannot.
pub fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["ip", "nft"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if !root || !tools {
        eprintln!("skipped: needs root, ip and nft");
    }
    root && tools
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[usize::from(rand::random::<u8>() & 15)]))
        .collect()
}

/// A named network namespace of our own (`ip netns add berth-test-<random>-<role>`).
pub struct TestNs {
    pub name: String,
    pub ns: NetNs,
}

impl TestNs {
    pub fn new(role: &str) -> TestNs {
        let name = format!("berth-test-{}-{role}", random_hex(8));
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = NetNs::from_path(format!("/run/netns/{name}")).expect("open test netns");
        assert!(
            !ns.is_process_namespace(),
            "a test namespace must never be the host's"
        );
        TestNs { name, ns }
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.ns.run(f).expect("enter test netns")
    }

    /// `ip -n <ns> <args>` output, for assertions and setup of the test topology.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The names of the namespace's links.
    pub fn links(&self) -> Vec<String> {
        self.ip(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .collect()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Namespaces named like ours that still exist.
pub fn leftover_namespaces(names: &[&str]) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| names.contains(n))
        .map(str::to_owned)
        .collect()
}

/// Links in the process's own namespace that berth made: there must never be any.
pub fn berth_links_in_host() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("alias berth"))
        .map(str::to_owned)
        .collect()
}

/// A TCP server inside `ns` on `addr`: each connection first gets `peer=<ip>\n`, then an echo
/// of what it sends. Runs until the process ends (its namespace's deletion closes nothing
/// while the socket is open, so tests don't wait on it).
pub fn tcp_server(ns: &TestNs, addr: SocketAddr) -> SocketAddr {
    let listener = ns
        .run(|| TcpListener::bind(addr))
        .expect("bind test server");
    let local = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let peer = conn
                    .peer_addr()
                    .map(|p| p.ip().to_string())
                    .unwrap_or_default();
                if conn.write_all(format!("peer={peer}\n").as_bytes()).is_err() {
                    return;
                }
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    local
}

/// A TCP sink inside `ns`: reads everything, then answers with the byte count.
pub fn tcp_sink(ns: &TestNs, addr: SocketAddr) -> SocketAddr {
    let listener = ns.run(|| TcpListener::bind(addr)).expect("bind sink");
    let local = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total: u64 = 0;
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(_) => return,
                    }
                }
                let _ = conn.write_all(total.to_string().as_bytes());
            });
        }
    });
    local
}

/// Connects from inside `ns` to `target`, reads the peer line, checks an echo. Returns the
/// address the server saw.
pub fn tcp_hello(ns: &NetNs, target: SocketAddr) -> std::io::Result<String> {
    ns.run(|| -> std::io::Result<String> {
        let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        conn.write_all(b"hello")?;
        let mut echo = [0u8; 5];
        reader.read_exact(&mut echo)?;
        if &echo != b"hello" {
            return Err(std::io::Error::other("bad echo"));
        }
        Ok(line.trim().trim_start_matches("peer=").to_owned())
    })
    .map_err(std::io::Error::other)?
}

/// A UDP echo server inside `ns` on `addr`.
pub fn udp_echo(ns: &TestNs, addr: SocketAddr) -> SocketAddr {
    let socket = ns.run(|| UdpSocket::bind(addr)).expect("bind udp echo");
    let local = socket.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    local
}

/// Sends a datagram from inside `ns` and waits for the echo.
pub fn udp_roundtrip(ns: &NetNs, target: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    ns.run(|| -> std::io::Result<Vec<u8>> {
        let local: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::]:0".parse().map_err(std::io::Error::other)?
        };
        let s = UdpSocket::bind(local)?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut buf = [0u8; 2048];
        // UDP may lose the first datagram while ARP resolves: retry a few times.
        for _ in 0..6 {
            s.send_to(payload, target)?;
            match s.recv_from(&mut buf) {
                Ok((n, _)) => return Ok(buf[..n].to_vec()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no udp reply",
        ))
    })
    .map_err(std::io::Error::other)?
}

/// Sends `bytes` from inside `ns` to a [`tcp_sink`] at `target`; returns MiB/s.
pub fn tcp_throughput(ns: &NetNs, target: SocketAddr, bytes: u64) -> std::io::Result<f64> {
    ns.run(|| -> std::io::Result<f64> {
        let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        let buf = vec![0x5au8; 256 * 1024];
        let start = std::time::Instant::now();
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(buf.len() as u64) as usize;
            conn.write_all(&buf[..n])?;
            sent += n as u64;
        }
        conn.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let secs = start.elapsed().as_secs_f64();
        if answer.trim() != bytes.to_string() {
            return Err(std::io::Error::other(format!(
                "sink got {answer}, sent {bytes}"
            )));
        }
        Ok(bytes as f64 / (1024.0 * 1024.0) / secs)
    })
    .map_err(std::io::Error::other)?
}
