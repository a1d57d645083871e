//! Writing archives: blobs streamed from the content store, metadata generated.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, Read, Write};

use berth_reference::{Digest, Reference};
use berth_store::content::{ContentError, ContentStore};

use crate::error::{io_err, ArchiveError};
use crate::json::{
    Descriptor, DockerManifestEntry, Index, Manifest, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};
use crate::media::{
    detect_layer_type, is_manifest, oci_layer_type, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};
use crate::{Format, SaveImage};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Large enough that copying a layer costs few syscalls; one buffer per save, not per blob.
const COPY_BUFFER: usize = 1 << 20;

/// Writes a tar of `images` to `out`, streaming blobs (never buffering a layer in memory),
/// each blob once even if shared. See the crate documentation for the layouts.
pub fn save<W: Write>(
    store: &ContentStore,
    images: &[SaveImage],
    format: Format,
    out: W,
) -> Result<(), ArchiveError> {
    let mut tar = TarWriter::new(BufWriter::with_capacity(COPY_BUFFER, out));
    let mut written: HashSet<Digest> = HashSet::new();
    let mut blob_dirs: HashSet<String> = HashSet::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_OCI_INDEX.to_string()),
        manifests: Vec::new(),
    };
    let mut index_seen: HashSet<(Digest, Option<String>)> = HashSet::new();
    let mut docker_manifest: Vec<DockerManifestEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    tar.dir("blobs/")?;
    for img in images {
        let manifest = manifest_for(store, img)?;
        let mut put = |tar: &mut TarWriter<_>, digest: &Digest, bytes: Option<&[u8]>| {
            if !written.insert(digest.clone()) {
                return Ok::<_, ArchiveError>(());
            }
            if blob_dirs.insert(digest.algorithm().to_string()) {
                tar.dir(&format!("blobs/{}/", digest.algorithm()))?;
            }
            match bytes {
                Some(b) => tar.file(&blob_path(digest), b.len() as u64, b, None),
                None => tar.blob(store, digest, &blob_path(digest)),
            }
        };
        put(&mut tar, &manifest.digest, manifest.generated.as_deref())?;
        put(&mut tar, &img.config_digest, None)?;
        for layer in &img.layers {
            put(&mut tar, &layer.digest, None)?;
        }

        let refs: Vec<Reference> = img
            .refs
            .iter()
            .map(|r| r.clone().with_default_tag())
            .collect();
        let descriptor = Descriptor {
            media_type: manifest.media_type.clone(),
            digest: manifest.digest.clone(),
            size: manifest.size,
            annotations: BTreeMap::new(),
            platform: None,
        };
        if refs.is_empty() && index_seen.insert((manifest.digest.clone(), None)) {
            index.manifests.push(descriptor.clone());
        }
        for r in &refs {
            if !index_seen.insert((manifest.digest.clone(), Some(r.to_string()))) {
                continue;
            }
            let mut d = descriptor.clone();
            d.annotations
                .insert(ANNOTATION_IMAGE_NAME.into(), r.to_string());
            if let Some(tag) = r.tag() {
                d.annotations.insert(ANNOTATION_REF_NAME.into(), tag.into());
            }
            index.manifests.push(d);
        }

        let repo_tags: Vec<String> = refs
            .iter()
            .filter(|r| r.digest().is_none())
            .map(Reference::familiar_string)
            .collect();
        if let Some(top) = img.layers.last() {
            for r in refs.iter().filter(|r| r.digest().is_none()) {
                if let Some(tag) = r.tag() {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.digest.hex().to_string());
                }
            }
        }
        let config = blob_path(&img.config_digest);
        // One manifest.json entry per image, as docker writes it, however it was asked for.
        match docker_manifest.iter_mut().find(|e| e.config == config) {
            Some(e) => {
                let tags = e.repo_tags.get_or_insert_with(Vec::new);
                for t in repo_tags {
                    if !tags.contains(&t) {
                        tags.push(t);
                    }
                }
            }
            None => docker_manifest.push(DockerManifestEntry {
                config,
                repo_tags: (!repo_tags.is_empty()).then_some(repo_tags),
                layers: img.layers.iter().map(|l| blob_path(&l.digest)).collect(),
            }),
        }
    }

    // Names in the order docker 25 writes them (sorted), after the blobs they describe.
    tar.json("index.json", &index)?;
    if format == Format::Docker {
        tar.json("manifest.json", &docker_manifest)?;
    }
    tar.file("oci-layout", OCI_LAYOUT.len() as u64, OCI_LAYOUT, None)?;
    if format == Format::Docker {
        tar.json("repositories", &repositories)?;
    }
    tar.finish()
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// The manifest an image is saved with.
struct ManifestChoice {
    digest: Digest,
    media_type: String,
    size: u64,
    /// The bytes of a generated manifest, which the store does not have.
    generated: Option<Vec<u8>>,
}

/// The stored manifest if it describes exactly this config and these layers (or, for a stored
/// index, the child manifest that does); otherwise a generated OCI manifest. Saving must never
/// produce an archive whose manifest points at blobs it does not contain.
fn manifest_for(store: &ContentStore, img: &SaveImage) -> Result<ManifestChoice, ArchiveError> {
    if store.exists(&img.manifest_digest) {
        let bytes = store.read(&img.manifest_digest)?;
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
            if describes(&m, img) {
                let media_type = [
                    Some(img.manifest_media_type.as_str()),
                    m.media_type.as_deref(),
                ]
                .into_iter()
                .flatten()
                .find(|t| !t.is_empty())
                .unwrap_or(MEDIA_TYPE_OCI_MANIFEST)
                .to_string();
                return Ok(ManifestChoice {
                    digest: img.manifest_digest.clone(),
                    media_type,
                    size: bytes.len() as u64,
                    generated: None,
                });
            }
        } else if let Ok(index) = serde_json::from_slice::<Index>(&bytes) {
            for child in &index.manifests {
                if !store.exists(&child.digest) {
                    continue;
                }
                let child_bytes = store.read(&child.digest)?;
                match serde_json::from_slice::<Manifest>(&child_bytes) {
                    Ok(m) if describes(&m, img) => {
                        let media_type = if is_manifest(&child.media_type) {
                            child.media_type.clone()
                        } else {
                            m.media_type
                                .unwrap_or_else(|| MEDIA_TYPE_OCI_MANIFEST.into())
                        };
                        return Ok(ManifestChoice {
                            digest: child.digest.clone(),
                            media_type,
                            size: child_bytes.len() as u64,
                            generated: None,
                        });
                    }
                    _ => continue,
                }
            }
        }
    }
    generate_manifest(store, img)
}

fn describes(m: &Manifest, img: &SaveImage) -> bool {
    m.config.digest == img.config_digest
        && m.layers.len() == img.layers.len()
        && m.layers
            .iter()
            .zip(&img.layers)
            .all(|(a, b)| a.digest == b.digest)
}

fn generate_manifest(
    store: &ContentStore,
    img: &SaveImage,
) -> Result<ManifestChoice, ArchiveError> {
    let stored_size = |d: &Digest| -> Result<u64, ArchiveError> {
        store
            .info(d)?
            .ok_or_else(|| ContentError::NotFound(d.clone()).into())
    };
    let mut layers = Vec::with_capacity(img.layers.len());
    for l in &img.layers {
        let media_type = match oci_layer_type(&l.media_type) {
            Some(t) => t.to_string(),
            None if l.media_type.is_empty() => detect_layer_type(store, &l.digest)?.to_string(),
            None => l.media_type.clone(),
        };
        layers.push(Descriptor {
            media_type,
            digest: l.digest.clone(),
            size: stored_size(&l.digest)?,
            annotations: BTreeMap::new(),
            platform: None,
        });
    }
    let m = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: MEDIA_TYPE_OCI_CONFIG.into(),
            digest: img.config_digest.clone(),
            size: stored_size(&img.config_digest)?,
            annotations: BTreeMap::new(),
            platform: None,
        },
        layers,
    };
    let bytes = serde_json::to_vec(&m)
        .map_err(|e| ArchiveError::invalid(format!("encode manifest: {e}")))?;
    Ok(ManifestChoice {
        digest: Digest::sha256_of(&bytes),
        media_type: MEDIA_TYPE_OCI_MANIFEST.into(),
        size: bytes.len() as u64,
        generated: Some(bytes),
    })
}

/// A minimal tar writer: ustar headers with reproducible metadata (uid/gid 0, mtime 0), data
/// copied through one large buffer. `tar::Builder` copies through `&mut dyn Read` with an
/// 8 KiB buffer, which makes multi-gigabyte saves needlessly syscall-bound.
struct TarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::new(),
        }
    }

    fn header(
        &mut self,
        path: &str,
        size: u64,
        kind: tar::EntryType,
        mode: u32,
    ) -> Result<(), ArchiveError> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)
            .map_err(|e| ArchiveError::invalid(format!("tar path {path}: {e}")))?;
        if kind == tar::EntryType::Directory && !path.ends_with('/') {
            return Err(ArchiveError::invalid(format!("directory {path} without /")));
        }
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .map_err(io_err("write archive"))
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.header(path, 0, tar::EntryType::Directory, 0o755)
    }

    fn json<T: serde::Serialize>(&mut self, path: &str, value: &T) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ArchiveError::invalid(format!("encode {path}: {e}")))?;
        self.file(path, bytes.len() as u64, &bytes[..], None)
    }

    fn blob(
        &mut self,
        store: &ContentStore,
        digest: &Digest,
        path: &str,
    ) -> Result<(), ArchiveError> {
        let size = store
            .info(digest)?
            .ok_or_else(|| ContentError::NotFound(digest.clone()))?;
        // The verifying reader re-hashes while copying: a blob corrupted on disk fails the
        // save instead of producing an archive that fails on load elsewhere.
        let reader = store.open_blob(digest)?;
        self.file(path, size, reader, Some(digest))
    }

    /// Writes a regular file of exactly `size` bytes read from `data`.
    fn file<R: Read>(
        &mut self,
        path: &str,
        size: u64,
        mut data: R,
        digest: Option<&Digest>,
    ) -> Result<(), ArchiveError> {
        self.header(path, size, tar::EntryType::Regular, 0o644)?;
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let what = || match digest {
            Some(d) => format!("blob {d}"),
            None => path.to_string(),
        };
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io_err(format!("read {}", what()))(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "shorter than its recorded size",
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(format!("read {}", what()))(e)),
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(io_err("write archive"))?;
            left -= n as u64;
        }
        // Reading to EOF is what makes the verifying reader check the digest; it also catches
        // a blob longer than its header says.
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(io_err(format!("read {}", what()))(std::io::Error::other(
                        "longer than its recorded size",
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(format!("read {}", what()))(e)),
            }
        }
        let pad = (512 - (size % 512) as usize) % 512;
        self.out
            .write_all(&[0u8; 512][..pad])
            .map_err(io_err("write archive"))
    }

    /// Two zero blocks end a tar archive.
    fn finish(mut self) -> Result<(), ArchiveError> {
        self.out
            .write_all(&[0u8; 1024])
            .map_err(io_err("write archive"))?;
        self.out.flush().map_err(io_err("write archive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_writer_produces_a_readable_reproducible_tar() {
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out);
        w.dir("blobs/").expect("dir");
        w.file("a", 3, &b"abc"[..], None).expect("file");
        w.file("big", 1000, &[7u8; 1000][..], None).expect("file");
        assert!(w.file("short", 10, &b"abc"[..], None).is_err());
        let mut out2 = Vec::new();
        let mut w = TarWriter::new(&mut out2);
        assert!(w.file("long", 1, &b"abc"[..], None).is_err());

        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out);
        w.dir("blobs/").expect("dir");
        w.file("a", 3, &b"abc"[..], None).expect("file");
        w.finish().expect("finish");
        assert_eq!(out.len() % 512, 0);
        let mut ar = tar::Archive::new(&out[..]);
        let mut names = Vec::new();
        for e in ar.entries().expect("entries") {
            let e = e.expect("entry");
            let h = e.header();
            assert_eq!(h.mtime().expect("mtime"), 0);
            assert_eq!(h.uid().expect("uid"), 0);
            let mode = h.mode().expect("mode");
            names.push((e.path().expect("path").display().to_string(), mode));
        }
        assert_eq!(
            names,
            vec![("blobs/".to_string(), 0o755), ("a".to_string(), 0o644)]
        );
    }
}
