//! A request body read on a blocking thread (a build context or an archive being unpacked).
//!
//! `SyncIoBridge` over the body would ask hyper for each frame only when the reader wants it,
//! so every frame costs a round trip: the reader parks, the connection task reads the socket
//! and wakes it. Here a task reads ahead into a bounded channel, gathering the frames that are
//! already there into one batch, so the socket is drained while the reader hashes and writes,
//! and a 6 MB context crosses threads in a few dozen handoffs instead of hundreds.

use std::collections::VecDeque;
use std::io::{self, Read};

use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

/// How much one batch gathers at most, and how many batches may wait: the read-ahead is
/// bounded to `BATCH * QUEUED` bytes per upload.
const BATCH: usize = 512 * 1024;
const QUEUED: usize = 4;

/// A blocking [`Read`] over `body`. Must be created inside the runtime; reading it on a
/// runtime thread would block that thread, so read it in `spawn_blocking`.
pub(crate) fn blocking_reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel::<io::Result<Vec<Bytes>>>(QUEUED);
    tokio::spawn(async move {
        let mut frames = body.into_data_stream();
        while let Some(first) = frames.next().await {
            let first = match first {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(e))).await;
                    return;
                }
            };
            let mut size = first.len();
            let mut batch = vec![first];
            let mut failed = None;
            let mut ended = false;
            while size < BATCH {
                match frames.next().now_or_never() {
                    Some(Some(Ok(b))) => {
                        size += b.len();
                        batch.push(b);
                    }
                    Some(Some(Err(e))) => {
                        failed = Some(io::Error::other(e));
                        break;
                    }
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            // A reader that stopped (a bad archive) has dropped its end: stop reading too.
            if tx.send(Ok(batch)).await.is_err() {
                return;
            }
            if let Some(e) = failed {
                let _ = tx.send(Err(e)).await;
                return;
            }
            if ended {
                return;
            }
        }
    });
    BodyReader {
        rx,
        pending: VecDeque::new(),
        ended: false,
    }
}

pub(crate) struct BodyReader {
    rx: mpsc::Receiver<io::Result<Vec<Bytes>>>,
    pending: VecDeque<Bytes>,
    ended: bool,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Fill as much of `buf` as is at hand: the tar reader asks for 64 KiB at a time.
            let mut n = 0;
            while n < buf.len() {
                let Some(front) = self.pending.front_mut() else {
                    break;
                };
                let take = front.len().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&front[..take]);
                front.advance(take);
                if front.is_empty() {
                    self.pending.pop_front();
                }
                n += take;
            }
            if n > 0 || self.ended {
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(batch)) => self.pending.extend(batch),
                Some(Err(e)) => return Err(e),
                None => self.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(body: Body) -> io::Result<Vec<u8>> {
        let mut r = blocking_reader(body);
        std::thread::spawn(move || {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        })
        .join()
        .expect("reader thread")
    }

    #[tokio::test]
    async fn reads_every_frame_in_order() {
        let frames: Vec<Result<Bytes, io::Error>> = (0u8..200)
            .map(|i| Ok(Bytes::from(vec![i; 10_000 + usize::from(i)])))
            .collect();
        let want: Vec<u8> = (0u8..200)
            .flat_map(|i| vec![i; 10_000 + usize::from(i)])
            .collect();
        let body = Body::from_stream(futures_util::stream::iter(frames));
        let got = tokio::task::spawn_blocking(move || read_all(body))
            .await
            .expect("join")
            .expect("read");
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    #[tokio::test]
    async fn a_broken_body_is_an_error_after_what_came_first() {
        let frames: Vec<Result<Bytes, io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("connection reset")),
        ];
        let body = Body::from_stream(futures_util::stream::iter(frames));
        let err = tokio::task::spawn_blocking(move || read_all(body))
            .await
            .expect("join")
            .expect_err("broken");
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    #[tokio::test]
    async fn a_reader_that_stops_early_stops_the_task() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let frames = futures_util::stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, io::Error>(Bytes::from(vec![0u8; 4096]))
        })
        .take(100_000);
        let mut r = blocking_reader(Body::from_stream(frames));
        tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 100];
            r.read_exact(&mut buf).expect("first bytes");
        })
        .await
        .expect("join");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let after_stop = pulled.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // Bounded read-ahead, then nothing more once the reader is gone.
        assert!(after_stop <= (BATCH * (QUEUED + 2)) / 4096, "{after_stop}");
        assert_eq!(pulled.load(Ordering::SeqCst), after_stop);
    }
}
