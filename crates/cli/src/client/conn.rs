//! Daemon addresses and the byte stream to them.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to.sock`
    Unix(String),
    /// `tcp://host:port`
    Tcp(String),
}

impl Host {
    /// Parses `unix://`, `tcp://` or `http://` addresses, as `-H` accepts them.
    pub fn parse(s: &str) -> Result<Host, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("invalid host: {s}"));
            }
            return Ok(Host::Unix(path.to_string()));
        }
        if let Some(addr) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                return Err(format!("invalid host: {s}"));
            }
            // docker's default TCP port when none is given.
            let addr = if addr
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                addr.to_string()
            } else {
                format!("{addr}:2375")
            };
            return Ok(Host::Tcp(addr));
        }
        Err(format!(
            "invalid host: {s}: only unix:// and tcp:// are supported"
        ))
    }

    /// The `Host` header: docker sends this placeholder for socket connections.
    pub fn http_host(&self) -> &str {
        match self {
            Host::Unix(_) => "api.moby.localhost",
            Host::Tcp(addr) => addr,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{p}"),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A connected stream to the daemon.
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    pub async fn connect(host: &Host) -> io::Result<Conn> {
        Ok(match host {
            Host::Unix(path) => Conn::Unix(UnixStream::connect(path).await?),
            Host::Tcp(addr) => Conn::Tcp(TcpStream::connect(addr.as_str()).await?),
        })
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    /// Half-closes the write side, which tells the daemon stdin reached EOF.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hosts() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock"),
            Ok(Host::Unix("/run/berth/berth.sock".into()))
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375"),
            Ok(Host::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            Host::parse("tcp://localhost"),
            Ok(Host::Tcp("localhost:2375".into()))
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert_eq!(Host::Unix("/x.sock".into()).to_string(), "unix:///x.sock");
    }
}
