//! Docker's `json-file` log format: one JSON object per line,
//! `{"log":"tick\n","stream":"stdout","time":"2026-11-24T11:00:00.123456789Z"}`.
//!
//! The shim writes it (synchronously, from its poll loop); the engine reads it for `logs`.
//! Writing is by hand rather than through serde because it is on the shim's hot path and the
//! shim must stay tiny; reading uses serde.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// Docker splits lines longer than this into several records.
const MAX_RECORD: usize = 16 * 1024;

/// Appends records to a json-file log, one line per record, rotating by size when asked.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    max_files: u32,
    /// Partial lines per stream (stdout, stderr), held until their newline arrives.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes raw output of `stream` (1 stdout, 2 stderr) and writes every complete line.
    pub fn write(&mut self, stream: u8, data: &[u8]) -> io::Result<()> {
        let idx = if stream == 2 { 1 } else { 0 };
        let mut rest = data;
        while !rest.is_empty() {
            let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = tail;
            self.partial[idx].extend_from_slice(line);
            let complete = line.last() == Some(&b'\n');
            if complete || self.partial[idx].len() >= MAX_RECORD {
                let record = std::mem::take(&mut self.partial[idx]);
                self.write_record(stream, &record)?;
            }
        }
        Ok(())
    }

    /// Writes out partial lines (at exit: the last line may lack its newline).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            if !self.partial[idx].is_empty() {
                let record = std::mem::take(&mut self.partial[idx]);
                self.write_record(stream, &record)?;
            }
        }
        Ok(())
    }

    fn write_record(&mut self, stream: u8, data: &[u8]) -> io::Result<()> {
        let line = encode_record(stream, data, Utc::now());
        if self.max_size > 0 && self.size + line.len() as u64 > self.max_size && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `x.log` → `x.log.1` → ... → `x.log.<max_files-1>`, as Docker's json-file driver does.
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The path of the n-th rotated file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One line of the log, newline included.
pub fn encode_record(stream: u8, data: &[u8], time: DateTime<Utc>) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::with_capacity(data.len() + 80);
    out.extend_from_slice(b"{\"log\":");
    // serde_json's string escaping is exactly JSON's; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, text.as_ref());
    out.extend_from_slice(if stream == 2 {
        b",\"stream\":\"stderr\",\"time\":\""
    } else {
        b",\"stream\":\"stdout\",\"time\":\""
    });
    out.extend_from_slice(time.to_rfc3339_opts(SecondsFormat::Nanos, true).as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

#[derive(Debug, Deserialize)]
struct RawRecord {
    log: String,
    stream: String,
    time: DateTime<Utc>,
}

/// A decoded record: stream (1 stdout, 2 stderr), time, bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stream: u8,
    pub time: DateTime<Utc>,
    pub data: Vec<u8>,
}

/// Parses one line; None for a torn or foreign line (a crash can leave a partial last line).
pub fn decode_record(line: &[u8]) -> Option<Record> {
    let raw: RawRecord = serde_json::from_slice(line).ok()?;
    Some(Record {
        stream: if raw.stream == "stderr" { 2 } else { 1 },
        time: raw.time,
        data: raw.log.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partials_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, 0, 1).expect("open");
        w.write(1, b"hel").expect("write");
        w.write(2, b"oops\n").expect("write");
        w.write(1, b"lo\nworld\npart").expect("write");
        w.flush_partial().expect("flush");
        let text = std::fs::read(&path).expect("read");
        let recs: Vec<Record> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(decode_record)
            .collect();
        let got: Vec<(u8, &[u8])> = recs.iter().map(|r| (r.stream, r.data.as_slice())).collect();
        assert_eq!(
            got,
            vec![
                (2, &b"oops\n"[..]),
                (1, &b"hello\n"[..]),
                (1, &b"world\n"[..]),
                (1, &b"part"[..])
            ]
        );
    }

    #[test]
    fn record_format_is_dockers() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T11:00:00.5Z")
            .expect("time")
            .with_timezone(&Utc);
        let line = encode_record(1, b"a \"q\"\n", t);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "{\"log\":\"a \\\"q\\\"\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-24T11:00:00.500000000Z\"}\n"
        );
    }

    #[test]
    fn rotation_bounds_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, 1000, 3).expect("open");
        for _ in 0..200 {
            w.write(1, b"0123456789012345678901234567890123456789\n")
                .expect("write");
        }
        let total: u64 = [path.clone(), rotated(&path, 1), rotated(&path, 2)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        assert!(total <= 3000, "total {total}");
        assert!(!rotated(&path, 3).exists());
    }
}
