//! The content store: blobs under `blobs/sha256/<hex>` of an OCI image layout. A blob is
//! written to `ingest/` while its digest is computed, fsynced, verified against what the caller
//! expected, and only then renamed into place; reads re-hash and refuse corrupted blobs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_reference::{Digest, Sha256Writer};

use crate::atomic::{fsync_dir, write_atomic};
use crate::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl ContentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => {
                ErrorKind::InvalidArgument
            }
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
    let context = context.into();
    move |source| ContentError::Io { context, source }
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io_err("write oci-layout"))?;
        }
        // Whatever is in ingest/ was being written when the process died.
        if let Ok(entries) = std::fs::read_dir(root.join("ingest")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm()).join(d.hex())
    }

    pub fn writer(&self) -> Result<BlobWriter, ContentError> {
        let path = self
            .root
            .join("ingest")
            .join(format!("{:016x}", rand::random::<u64>()));
        let file = File::create(&path).map_err(io_err(format!("create {}", path.display())))?;
        Ok(BlobWriter {
            store: self.clone(),
            path,
            file: Some(file),
            hasher: Sha256Writer::new(),
        })
    }

    /// Stores `bytes` (idempotent) and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let d = Digest::sha256_of(bytes);
        if !self.exists(&d) {
            let mut w = self.writer()?;
            w.write_all(bytes).map_err(io_err("write blob"))?;
            w.commit(Some(&d), Some(bytes.len() as u64))?;
        }
        Ok(d)
    }

    pub fn put_verified(&self, bytes: &[u8], expected: &Digest) -> Result<(), ContentError> {
        let actual = Digest::sha256_of(bytes);
        if &actual != expected {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.put(bytes).map(|_| ())
    }

    /// Reads a blob whole, verifying its digest.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut data = Vec::new();
        self.open_blob(d)?.read_to_end(&mut data).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<Mismatch>()) {
                Some(m) => ContentError::DigestMismatch {
                    expected: d.clone(),
                    actual: m.0.clone(),
                },
                None => ContentError::Io {
                    context: format!("read blob {d}"),
                    source: e,
                },
            }
        })?;
        Ok(data)
    }

    /// A streaming reader that fails at EOF if the content does not hash to `d`.
    pub fn open_blob(&self, d: &Digest) -> Result<VerifyingReader<File>, ContentError> {
        let path = self.blob_path(d);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound(d.clone())
            } else {
                ContentError::Io {
                    context: format!("open {}", path.display()),
                    source: e,
                }
            }
        })?;
        Ok(VerifyingReader {
            inner: file,
            expected: d.clone(),
            hasher: Some(Sha256Writer::new()),
        })
    }

    pub fn info(&self, d: &Digest) -> Result<Option<u64>, ContentError> {
        match std::fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("stat blob {d}"))(e)),
        }
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        match std::fs::remove_file(self.blob_path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("delete blob {d}"))(e)),
        }
    }

    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err(format!("read {}", dir.display())))? {
            let e = e.map_err(io_err("read blobs"))?;
            if let Ok(d) = Digest::from_sha256_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written. Dropping it without `commit` removes the temp file.
pub struct BlobWriter {
    store: ContentStore,
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256Writer,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = file.write(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.hasher.written()
    }

    /// The digest the blob will have if nothing more is written: lets a caller protect it
    /// (a lease) before [`commit`](Self::commit) makes it visible.
    pub fn digest(&self) -> Digest {
        self.hasher.peek()
    }

    /// Makes the blob durable under its digest, after checking it against expectations.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), ContentError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io_err("commit blob")(io::Error::other("already committed")))?;
        let hasher = std::mem::take(&mut self.hasher);
        let (digest, size) = hasher.finish();
        if let Some(want) = expected_size {
            if want != size {
                return Err(ContentError::SizeMismatch {
                    expected: want,
                    actual: size,
                });
            }
        }
        if let Some(want) = expected {
            if want != &digest {
                return Err(ContentError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        file.sync_all().map_err(io_err("sync blob"))?;
        drop(file);
        let target = self.store.blob_path(&digest);
        std::fs::rename(&self.path, &target).map_err(io_err(format!("store blob {digest}")))?;
        if let Some(dir) = target.parent() {
            fsync_dir(dir).map_err(io_err("sync blob directory"))?;
        }
        Ok((digest, size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temp path no longer exists; this is then a no-op.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug)]
struct Mismatch(Digest);
impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "content hashes to {}", self.0)
    }
}
impl std::error::Error for Mismatch {}

/// Hashes while reading; at EOF returns `InvalidData` if the content was not what was expected.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    hasher: Option<Sha256Writer>,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if let Some(h) = self.hasher.take() {
                let (actual, _) = h.finish();
                if actual != self.expected {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, Mismatch(actual)));
                }
            }
            return Ok(0);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let d = store.put(b"hello").expect("put");
        assert_eq!(store.put(b"hello").expect("again"), d);
        assert_eq!(store.read(&d).expect("read"), b"hello");
        assert_eq!(store.info(&d).expect("info"), Some(5));
        assert_eq!(store.list().expect("list"), vec![d.clone()]);
        std::fs::write(store.blob_path(&d), b"jello").expect("corrupt");
        assert!(matches!(
            store.read(&d),
            Err(ContentError::DigestMismatch { .. })
        ));
        store.delete(&d).expect("delete");
        assert!(matches!(store.read(&d), Err(ContentError::NotFound(_))));
    }

    #[test]
    fn failed_or_dropped_writes_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let mut w = store.writer().expect("writer");
        w.write_all(b"abc").expect("write");
        let wrong = Digest::sha256_of(b"xyz");
        assert!(matches!(
            w.commit(Some(&wrong), None),
            Err(ContentError::DigestMismatch { .. })
        ));
        let mut w = store.writer().expect("writer");
        w.write_all(b"abc").expect("write");
        drop(w);
        let mut w = store.writer().expect("writer");
        w.write_all(b"abc").expect("write");
        assert!(matches!(
            w.commit(None, Some(4)),
            Err(ContentError::SizeMismatch { .. })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .expect("ls")
                .count(),
            0
        );
        assert!(store.list().expect("list").is_empty());
        assert!(store.put_verified(b"abc", &wrong).is_err());
    }

    #[test]
    fn concurrent_puts_of_the_same_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = store.clone();
                std::thread::spawn(move || s.put(&[7u8; 100_000]).expect("put"))
            })
            .collect();
        let digests: Vec<Digest> = handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect();
        assert!(digests.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(store.read(&digests[0]).expect("read").len(), 100_000);
    }
}
