//! Demultiplexes the daemon's stdout/stderr stream for non-TTY containers:
//! frames of an 8-byte header (`[stream, 0, 0, 0, len as u32 big-endian]`)
//! followed by `len` bytes, as docker's `stdcopy.StdCopy` reads them.

use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt};

const HEADER_LEN: usize = 8;

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
    /// The daemon reports an error in-band (stream type 3).
    System,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DemuxError {
    #[error("Unrecognized input header: {0}")]
    BadHeader(u8),
    #[error("error from daemon in stream: {0}")]
    System(String),
}

/// Incremental frame parser: push bytes in, get complete frames out.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    pub fn new() -> Demux {
        Demux::default()
    }

    /// Adds `data` and returns every frame completed by it.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(Stream, Vec<u8>)>, DemuxError> {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut off = 0;
        while self.buf.len() - off >= HEADER_LEN {
            let h = &self.buf[off..off + HEADER_LEN];
            let stream = match h[0] {
                0 => Stream::Stdin,
                1 => Stream::Stdout,
                2 => Stream::Stderr,
                3 => Stream::System,
                other => return Err(DemuxError::BadHeader(other)),
            };
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - off - HEADER_LEN < len {
                break;
            }
            let start = off + HEADER_LEN;
            let payload = self.buf[start..start + len].to_vec();
            off = start + len;
            if stream == Stream::System {
                return Err(DemuxError::System(
                    String::from_utf8_lossy(&payload).into_owned(),
                ));
            }
            frames.push((stream, payload));
        }
        self.buf.drain(..off);
        Ok(frames)
    }
}

/// Where output goes; `stdout`/`stderr` of the process in real use.
pub struct Sinks<'a> {
    pub stdout: &'a mut (dyn Write + Send),
    pub stderr: &'a mut (dyn Write + Send),
}

/// Copies a container output stream to the sinks until EOF. With `tty` the
/// stream is raw (everything goes to stdout); otherwise it is demultiplexed.
pub async fn copy_output<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    tty: bool,
    sinks: &mut Sinks<'_>,
) -> std::io::Result<()> {
    let mut demux = Demux::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        write_chunk(&mut demux, &buf[..n], tty, sinks)?;
    }
}

/// Writes one chunk of a (possibly multiplexed) output stream.
pub fn write_chunk(
    demux: &mut Demux,
    chunk: &[u8],
    tty: bool,
    sinks: &mut Sinks<'_>,
) -> std::io::Result<()> {
    if tty {
        sinks.stdout.write_all(chunk)?;
        return sinks.stdout.flush();
    }
    let frames = demux.push(chunk).map_err(std::io::Error::other)?;
    for (stream, payload) in frames {
        // Stdin frames never come from the daemon; docker prints them to stdout.
        let out: &mut (dyn Write + Send) = match stream {
            Stream::Stderr => &mut *sinks.stderr,
            _ => &mut *sinks.stdout,
        };
        out.write_all(&payload)?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn splits_frames_across_chunks() {
        let mut all = frame(1, b"hello\n");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b""));
        let mut d = Demux::new();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            got.extend(d.push(chunk).expect("valid frames"));
        }
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, b"hello\n".to_vec()),
                (Stream::Stderr, b"oops\n".to_vec()),
                (Stream::Stdout, Vec::new()),
            ]
        );
    }

    #[test]
    fn errors() {
        let mut d = Demux::new();
        assert_eq!(
            d.push(&[9, 0, 0, 0, 0, 0, 0, 0]),
            Err(DemuxError::BadHeader(9))
        );
        let mut d = Demux::new();
        assert_eq!(
            d.push(&frame(3, b"boom")),
            Err(DemuxError::System("boom".to_string()))
        );
    }

    #[tokio::test]
    async fn copies_to_sinks() {
        let mut input = frame(1, b"out");
        input.extend(frame(2, b"err"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut sinks = Sinks {
            stdout: &mut out,
            stderr: &mut err,
        };
        copy_output(&mut input.as_slice(), false, &mut sinks)
            .await
            .expect("copy");
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out"[..], &b"err"[..]));

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut sinks = Sinks {
            stdout: &mut out,
            stderr: &mut err,
        };
        copy_output(&mut &b"raw tty bytes"[..], true, &mut sinks)
            .await
            .expect("copy");
        assert_eq!(out, b"raw tty bytes");
    }
}
