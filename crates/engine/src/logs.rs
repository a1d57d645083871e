//! `logs`: reading a container's json-file log (rotated files included), with `--tail`,
//! `--since`, `--until`, and `--follow` driven by inotify rather than polling, so an idle
//! follower costs nothing.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_runtime::logfile::{self, Record};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::types::*;
use crate::{lock, Engine};

fn to_log_record(r: Record) -> LogRecord {
    LogRecord {
        stream: if r.stream == 2 {
            StdStream::Stderr
        } else {
            StdStream::Stdout
        },
        time: r.time,
        data: Bytes::from(r.data),
    }
}

struct Filter {
    stdout: bool,
    stderr: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Filter {
    fn keep(&self, r: &Record) -> bool {
        (if r.stream == 2 {
            self.stderr
        } else {
            self.stdout
        }) && self.since.is_none_or(|s| r.time >= s)
            && self.until.is_none_or(|u| r.time <= u)
    }
}

/// Reads complete lines from `file` from its current position; keeps a torn last line in
/// `partial` for the next call.
fn read_new(file: &mut File, partial: &mut Vec<u8>, out: &mut Vec<Record>) {
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).is_err() {
        return;
    }
    partial.extend_from_slice(&buf);
    let mut start = 0;
    while let Some(pos) = partial[start..].iter().position(|&b| b == b'\n') {
        if let Some(r) = logfile::decode_record(&partial[start..start + pos]) {
            out.push(r);
        }
        start += pos + 1;
    }
    partial.drain(..start);
}

/// Rotated files oldest first, then the live file.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut n = 1;
    while logfile::rotated(path, n).exists() {
        files.push(logfile::rotated(path, n));
        n += 1;
    }
    files.reverse();
    files.push(path.to_path_buf());
    files
}

impl Engine {
    /// Streams log records; ends at the end of the log, or with `follow` when the container
    /// stops.
    pub async fn container_logs(
        &self,
        id: &str,
        opts: LogOptions,
    ) -> Result<mpsc::Receiver<LogRecord>> {
        let (id, _op, live) = self.lookup(id)?;
        let c = self.inspect_container(&id)?;
        let mut running = lock(&live).running.subscribe();
        let path = PathBuf::from(&c.log_path);
        let filter = Filter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since: opts.since,
            until: opts.until,
        };
        let (tx, rx) = mpsc::channel(256);
        let follow = opts.follow && *running.borrow() && opts.until.is_none();
        // Set up the watch before reading, so nothing written in between is missed.
        let watcher = if follow {
            inotify::Inotify::init().ok().and_then(|ino| {
                ino.watches()
                    .add(
                        &path,
                        inotify::WatchMask::MODIFY | inotify::WatchMask::MOVE_SELF,
                    )
                    .ok()
                    .map(|_| ino)
            })
        } else {
            None
        };
        let tail = opts.tail;
        tokio::spawn(async move {
            let backlog = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut records = Vec::new();
                    let mut last: Option<(File, Vec<u8>)> = None;
                    for f in log_files(&path) {
                        let Ok(mut file) = File::open(&f) else {
                            continue;
                        };
                        let mut partial = Vec::new();
                        read_new(&mut file, &mut partial, &mut records);
                        last = Some((file, partial));
                    }
                    (records, last)
                })
                .await
            };
            let Ok((records, mut last)) = backlog else {
                return;
            };
            let mut kept: VecDeque<Record> = VecDeque::new();
            for r in records.into_iter().filter(|r| filter.keep(r)) {
                kept.push_back(r);
                if let Some(n) = tail {
                    if kept.len() > n {
                        kept.pop_front();
                    }
                }
            }
            if tail == Some(0) {
                kept.clear();
            }
            for r in kept {
                if tx.send(to_log_record(r)).await.is_err() {
                    return;
                }
            }
            let Some(ino) = watcher else { return };
            let Ok(mut events) = ino.into_event_stream(vec![0u8; 4096]) else {
                return;
            };
            use futures_util::StreamExt;
            loop {
                let stopped = !*running.borrow();
                // Drain whatever was appended, following a rotation to the new file.
                let mut fresh = Vec::new();
                if let Some((file, partial)) = last.as_mut() {
                    read_new(file, partial, &mut fresh);
                    let rotated = match (file.metadata(), std::fs::metadata(&path)) {
                        (Ok(a), Ok(b)) => a.ino() != b.ino(),
                        _ => false,
                    };
                    if rotated {
                        if let Ok(mut f) = File::open(&path) {
                            let _ = f.seek(SeekFrom::Start(0));
                            let mut p = Vec::new();
                            read_new(&mut f, &mut p, &mut fresh);
                            last = Some((f, p));
                        }
                    }
                }
                for r in fresh.into_iter().filter(|r| filter.keep(r)) {
                    if tx.send(to_log_record(r)).await.is_err() {
                        return;
                    }
                }
                if stopped {
                    return;
                }
                tokio::select! {
                    ev = events.next() => if ev.is_none() { return },
                    changed = running.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}
