//! The userland proxy behind published ports (dockerd's `docker-proxy`).
//!
//! DNAT in the `prerouting`/`output` chains serves traffic from other hosts and to the host's
//! non-loopback addresses; what DNAT cannot reach without `route_localnet` — `127.0.0.1:port`
//! on the host, and a container calling a published port through its own bridge — arrives
//! here: the proxy listens on `host_ip:host_port` in the host namespace and relays each TCP
//! connection, or each UDP client's datagrams, to `container_ip:container_port`. The listening
//! socket also holds the port, so a port another program has bound is refused at publish time.
//!
//! Sockets are made in the host namespace (see [`crate::netns`]) and served by the caller's
//! tokio runtime. Stopping a proxy (or dropping it) closes the listener and every relayed
//! connection, as killing docker-proxy does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::netns::{NetNs, NetNsError};
use crate::ports::Protocol;
use crate::ErrorKind;

/// How long a UDP flow lives without traffic (docker-proxy's `UDPConnTrackTimeout`).
pub const UDP_IDLE: Duration = Duration::from_secs(90);
/// At most this many UDP clients are relayed at once per port (docker-proxy's limit).
pub const UDP_MAX_FLOWS: usize = 1024;
const UDP_BUF: usize = 65_535;

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// dockerd's wording when the port is taken by another program.
    #[error("Error starting userland proxy: listen {net} {addr}: bind: {source}")]
    Bind {
        net: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("userland proxy does not support {0}")]
    Unsupported(Protocol),
}

impl ProxyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                ErrorKind::Conflict
            }
            ProxyError::Unsupported(_) => ErrorKind::InvalidArgument,
            ProxyError::NetNs(e) => e.kind(),
            ProxyError::Bind { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the port was in use (a dynamic port is then retried with another).
    pub fn addr_in_use(&self) -> bool {
        matches!(self, ProxyError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
    }
}

/// Go's network names in docker-proxy's messages.
fn net_name(proto: Protocol, addr: &SocketAddr) -> String {
    format!("{}{}", proto, if addr.is_ipv4() { "4" } else { "6" })
}

/// Makes sockets in one namespace: directly when it is the process's own, else on a
/// throwaway thread inside it.
#[derive(Clone, Debug)]
struct SocketFactory {
    ns: NetNs,
    direct: bool,
}

impl SocketFactory {
    fn new(ns: &NetNs) -> SocketFactory {
        SocketFactory {
            ns: ns.clone(),
            direct: ns.is_process_namespace(),
        }
    }

    async fn make<R, F>(&self, f: F) -> Result<R, NetNsError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.direct {
            Ok(f())
        } else {
            self.ns.run_async(f).await
        }
    }

    async fn tcp_connect(&self, target: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = self
            .make(move || {
                if target.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
            })
            .await
            .map_err(std::io::Error::other)??;
        socket.set_nodelay(true)?;
        socket.connect(target).await
    }

    async fn udp_bind(&self, local: SocketAddr) -> std::io::Result<UdpSocket> {
        let std_socket = self
            .make(move || std::net::UdpSocket::bind(local))
            .await
            .map_err(std::io::Error::other)??;
        std_socket.set_nonblocking(true)?;
        UdpSocket::from_std(std_socket)
    }
}

/// A running proxy for one published port.
#[derive(Debug)]
pub struct Proxy {
    protocol: Protocol,
    listen: SocketAddr,
    target: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Binds `listen` in `host` and relays to `target`. Port 0 binds a free port
    /// ([`Proxy::listen_addr`] tells which).
    pub async fn start(
        host: &NetNs,
        protocol: Protocol,
        listen: SocketAddr,
        target: SocketAddr,
    ) -> Result<Proxy, ProxyError> {
        let factory = SocketFactory::new(host);
        let bind_err = |source| ProxyError::Bind {
            net: net_name(protocol, &listen),
            addr: listen,
            source,
        };
        let (task, bound) = match protocol {
            Protocol::Tcp => {
                let std_listener = factory
                    .make(move || -> std::io::Result<std::net::TcpListener> {
                        let l = std::net::TcpListener::bind(listen)?;
                        l.set_nonblocking(true)?;
                        Ok(l)
                    })
                    .await?
                    .map_err(bind_err)?;
                let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
                let bound = listener.local_addr().map_err(bind_err)?;
                (tokio::spawn(serve_tcp(listener, target, factory)), bound)
            }
            Protocol::Udp => {
                let socket = factory.udp_bind(listen).await.map_err(bind_err)?;
                let bound = socket.local_addr().map_err(bind_err)?;
                (tokio::spawn(serve_udp(socket, target, factory)), bound)
            }
            Protocol::Sctp => return Err(ProxyError::Unsupported(protocol)),
        };
        debug!(%protocol, listen = %bound, %target, "userland proxy started");
        Ok(Proxy {
            protocol,
            listen: bound,
            target,
            task,
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Stops the proxy and closes its connections.
    pub fn stop(self) {
        drop(self)
    }
}

async fn serve_tcp(listener: TcpListener, target: SocketAddr, factory: SocketFactory) {
    // Connections live in the set, so aborting this task (Proxy::drop) ends them too.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((client, peer)) => {
                        let factory = factory.clone();
                        conns.spawn(async move {
                            if let Err(e) = relay_tcp(client, target, &factory).await {
                                debug!(%peer, %target, error = %e, "proxied connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        debug!(error = %e, "userland proxy accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn relay_tcp(
    mut client: TcpStream,
    target: SocketAddr,
    factory: &SocketFactory,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let upstream = match factory.tcp_connect(target).await {
        Ok(s) => s,
        Err(e) => {
            let _ = client.shutdown().await;
            return Err(e);
        }
    };
    tokio::try_join!(
        splice_half(&client, &upstream),
        splice_half(&upstream, &client)
    )?;
    Ok(())
}

/// Moves one direction of a proxied connection through a pipe with splice(2): the bytes stay
/// in the kernel instead of being copied into and out of a userland buffer. At the end of
/// `from`, `to` is half-closed, as a TCP proxy must.
async fn splice_half(from: &TcpStream, to: &TcpStream) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    const CHUNK: usize = 1 << 20;
    let (pipe_r, pipe_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(std::io::Error::from)?;
    // A bigger pipe moves more per call; the default 64 KiB still works if refused.
    // SAFETY: fcntl on a pipe this function owns, integer arguments.
    unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let splice = |src: i32, dst: i32, len: usize| -> std::io::Result<usize> {
        // SAFETY: splice(2) between descriptors that stay open for the call; no pointers.
        let n = unsafe {
            libc::splice(
                src,
                std::ptr::null_mut(),
                dst,
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    };
    let mut total = 0u64;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                splice(from.as_raw_fd(), pipe_w.as_raw_fd(), CHUNK)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            break;
        }
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe_r.as_raw_fd(), to.as_raw_fd(), left)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
    }
    // SAFETY: shutdown(2) of the write side of a socket that stays open.
    unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
    Ok(total)
}

struct Flow {
    socket: Arc<UdpSocket>,
    last: tokio::time::Instant,
    task: JoinHandle<()>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_udp(listener: UdpSocket, target: SocketAddr, factory: SocketFactory) {
    let listener = Arc::new(listener);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; UDP_BUF];
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            received = listener.recv_from(&mut buf) => {
                let (n, client) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(error = %e, "userland proxy udp receive");
                        continue;
                    }
                };
                if !flows.contains_key(&client) {
                    if flows.len() >= UDP_MAX_FLOWS {
                        continue;
                    }
                    let unspecified: IpAddr = if target.is_ipv4() {
                        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                    };
                    let upstream = match factory.udp_bind(SocketAddr::new(unspecified, 0)).await {
                        Ok(s) => s,
                        Err(e) => {
                            debug!(error = %e, "userland proxy udp socket");
                            continue;
                        }
                    };
                    if let Err(e) = upstream.connect(target).await {
                        debug!(error = %e, %target, "userland proxy udp connect");
                        continue;
                    }
                    let upstream = Arc::new(upstream);
                    let task = tokio::spawn(udp_replies(upstream.clone(), listener.clone(), client));
                    flows.insert(client, Flow { socket: upstream, last: tokio::time::Instant::now(), task });
                }
                if let Some(flow) = flows.get_mut(&client) {
                    flow.last = tokio::time::Instant::now();
                    if let Err(e) = flow.socket.send(&buf[..n]).await {
                        debug!(error = %e, %target, "userland proxy udp send");
                    }
                }
            }
            _ = sweep.tick() => {
                let now = tokio::time::Instant::now();
                flows.retain(|_, f| now.duration_since(f.last) < UDP_IDLE && !f.task.is_finished());
            }
        }
    }
}

async fn udp_replies(upstream: Arc<UdpSocket>, listener: Arc<UdpSocket>, client: SocketAddr) {
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        match upstream.recv(&mut buf).await {
            Ok(n) => {
                if let Err(e) = listener.send_to(&buf[..n], client).await {
                    debug!(error = %e, %client, "userland proxy udp reply");
                }
            }
            // ECONNREFUSED from an ICMP port unreachable: the container is not listening yet.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[tokio::test]
    async fn tcp_and_udp_relay_on_loopback() -> Result<(), Box<dyn std::error::Error>> {
        let ns = NetNs::current()?;
        // An echo server as the "container".
        let echo = std::net::TcpListener::bind("127.0.0.1:0")?;
        let echo_addr = echo.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = echo.accept() {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        let proxy = Proxy::start(&ns, Protocol::Tcp, "127.0.0.1:0".parse()?, echo_addr).await?;
        let addr = proxy.listen_addr();
        let reply = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut c = std::net::TcpStream::connect(addr)?;
            c.write_all(b"ping")?;
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf)?;
            Ok(buf.to_vec())
        })
        .await??;
        assert_eq!(reply, b"ping");

        // The port is held: binding it again is "address already in use".
        let again = Proxy::start(&ns, Protocol::Tcp, addr, echo_addr).await;
        let err = again.err().ok_or("second bind succeeded")?;
        assert!(err.addr_in_use(), "{err}");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(
            err.to_string(),
            format!("Error starting userland proxy: listen tcp4 {addr}: bind: Address already in use (os error 98)")
        );
        proxy.stop();

        let uecho = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let uecho_addr = uecho.local_addr()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            if let Ok((n, from)) = uecho.recv_from(&mut buf) {
                let _ = uecho.send_to(&buf[..n], from);
            }
        });
        let uproxy = Proxy::start(&ns, Protocol::Udp, "127.0.0.1:0".parse()?, uecho_addr).await?;
        let uaddr = uproxy.listen_addr();
        let reply = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let c = std::net::UdpSocket::bind("127.0.0.1:0")?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.send_to(b"dns?", uaddr)?;
            let mut buf = [0u8; 16];
            let (n, from) = c.recv_from(&mut buf)?;
            assert_eq!(from, uaddr, "replies come from the published address");
            Ok(buf[..n].to_vec())
        })
        .await??;
        assert_eq!(reply, b"dns?");
        Ok(())
    }
}
