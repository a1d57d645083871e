//! The sending side of a progress stream. Status lines wait for room in the channel (a slow
//! client slows the stream, never loses a line); byte counts are dropped when the channel is
//! full or when they come too often, since the next one supersedes them. A client that went
//! away makes every send a no-op: the operation itself goes on to completion, so that what it
//! fetched is kept and the next attempt finds it.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::types::{Progress, ProgressDetail};

/// Byte counts are sent at most this often per item.
const DETAIL_INTERVAL: Duration = Duration::from_millis(100);

pub type ProgressTx = mpsc::Sender<Progress>;

/// A cheap handle to report progress; `ProgressSink::none()` reports nothing.
#[derive(Clone, Default)]
pub struct ProgressSink {
    tx: Option<ProgressTx>,
}

impl ProgressSink {
    pub fn new(tx: ProgressTx) -> Self {
        Self { tx: Some(tx) }
    }

    pub fn none() -> Self {
        Self { tx: None }
    }

    pub async fn send(&self, p: Progress) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(p).await;
        }
    }

    /// A status line about `id` (or about the whole operation when `id` is empty).
    pub async fn status(&self, id: &str, status: impl Into<String>) {
        self.send(Progress::Status {
            id: (!id.is_empty()).then(|| id.to_string()),
            status: status.into(),
            detail: None,
        })
        .await
    }

    /// A status line that never waits: for blocking threads and for the ends of byte counts.
    pub fn status_now(&self, id: &str, status: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Progress::Status {
                id: (!id.is_empty()).then(|| id.to_string()),
                status: status.into(),
                detail: None,
            });
        }
    }

    pub async fn stream(&self, text: impl Into<String>) {
        self.send(Progress::Stream(text.into())).await
    }

    /// A byte counter for one item: `status` with `current`/`total`, throttled.
    pub fn counter(&self, id: &str, status: &'static str, total: Option<u64>) -> Counter {
        Counter {
            sink: self.clone(),
            id: id.to_string(),
            status,
            total,
            current: 0,
            last: None,
        }
    }
}

/// See [`ProgressSink::counter`].
pub struct Counter {
    sink: ProgressSink,
    id: String,
    status: &'static str,
    total: Option<u64>,
    current: u64,
    last: Option<Instant>,
}

impl Counter {
    pub fn add(&mut self, n: u64) {
        self.current += n;
        let Some(tx) = &self.sink.tx else { return };
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < DETAIL_INTERVAL)
        {
            return;
        }
        self.last = Some(now);
        let _ = tx.try_send(Progress::Status {
            id: Some(self.id.clone()),
            status: self.status.to_string(),
            detail: Some(ProgressDetail {
                current: self.current,
                total: self.total,
            }),
        });
    }
}

/// Counts bytes read through it.
pub struct CountingReader<R> {
    pub inner: R,
    pub counter: Counter,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_are_throttled_statuses_are_not() {
        let (tx, mut rx) = mpsc::channel(64);
        let sink = ProgressSink::new(tx);
        let mut c = sink.counter("abc", "Downloading", Some(10));
        for _ in 0..10 {
            c.add(1);
        }
        sink.status("abc", "Download complete").await;
        drop(c);
        drop(sink);
        let mut got = Vec::new();
        while let Some(p) = rx.recv().await {
            got.push(p);
        }
        // The first count goes out at once; the rest fall within the interval.
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(
            &got[0],
            Progress::Status {
                detail: Some(ProgressDetail {
                    current: 1,
                    total: Some(10)
                }),
                ..
            }
        ));
        assert!(
            matches!(&got[1], Progress::Status { status, .. } if status == "Download complete")
        );
    }

    #[tokio::test]
    async fn a_gone_client_does_not_block() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let sink = ProgressSink::new(tx);
        sink.status("", "x").await;
        sink.status("", "y").await;
    }
}
