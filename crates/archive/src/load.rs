//! Reading archives in one pass: every regular file goes into the content store as it streams
//! (its digest computed on the way), metadata stays in memory, and images are assembled at
//! the end, when `manifest.json` — which old `docker save` writes last — has been seen.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};

use berth_reference::{Digest, Reference};
use berth_store::content::{ContentError, ContentStore};

use crate::error::{io_err, ArchiveError};
use crate::json::{
    Descriptor, DockerManifestEntry, ImageConfig, Index, Manifest, ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
};
use crate::media::{detect_layer_type, is_index, is_manifest, MEDIA_TYPE_OCI_LAYER};
use crate::{LoadedImage, LoadedLayer};

/// Reads are this large; `BufReader` passes larger reads straight through, so tar headers
/// (512 bytes each) are batched without copying layer data twice.
const READ_BUFFER: usize = 1 << 20;
/// `manifest.json` and `index.json` are kept in memory; a hostile archive must not make that
/// unbounded. Real ones are a few kilobytes per image.
const MAX_METADATA: u64 = 64 << 20;
/// Symlink chains longer than this are loops (Linux's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// Loads an archive written by `docker save` (dockerd 20.10's layer directories or Docker
/// 25+'s OCI layout), by `skopeo copy … docker-archive:`/`oci-archive:`, or by [`crate::save`].
/// The input may be gzip-compressed, as `docker load` accepts. All blobs of the returned images
/// are in `store` when this returns.
pub fn load<R: Read>(store: &ContentStore, input: R) -> Result<Vec<LoadedImage>, ArchiveError> {
    let mut input = BufReader::with_capacity(READ_BUFFER, input);
    let head = input
        .fill_buf()
        .map_err(|e| ArchiveError::invalid(format!("read archive: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(input);
        return load_tar(store, BufReader::with_capacity(READ_BUFFER, gz));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
    {
        return Err(ArchiveError::invalid(
            "unsupported compression of the archive (use plain tar or gzip)",
        ));
    }
    load_tar(store, input)
}

/// A regular file of the archive, now a blob in the store.
#[derive(Debug, Clone)]
struct FileInfo {
    digest: Digest,
    size: u64,
}

/// Everything recorded while streaming.
struct Loaded<'s> {
    store: &'s ContentStore,
    /// Cleaned archive path → stored blob.
    files: HashMap<String, FileInfo>,
    /// Blobs seen in the archive, by digest → size.
    blobs: HashMap<Digest, u64>,
    /// Symlinks and hard links: cleaned path → cleaned archive path they point at.
    links: HashMap<String, String>,
    manifest_json: Option<Vec<u8>>,
    index_json: Option<Vec<u8>>,
}

fn tar_err(e: io::Error) -> ArchiveError {
    ArchiveError::invalid(format!("invalid tar header: {e}"))
}

fn load_tar<R: Read>(store: &ContentStore, input: R) -> Result<Vec<LoadedImage>, ArchiveError> {
    let mut loaded = Loaded {
        store,
        files: HashMap::new(),
        blobs: HashMap::new(),
        links: HashMap::new(),
        manifest_json: None,
        index_json: None,
    };
    let mut buf = vec![0u8; READ_BUFFER];
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = clean_path(&raw).map_err(|why| {
            ArchiveError::invalid(format!("invalid archive entry {raw:?}: {why}"))
        })?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if kind == tar::EntryType::Symlink {
                    // Relative to the link's directory, like the kernel would resolve it, but
                    // never beyond the archive's root.
                    resolve_symlink_target(&path, &target)
                } else {
                    // Hard link names are archive paths.
                    clean_path(&target)
                }
                .map_err(|why| {
                    ArchiveError::invalid(format!("invalid link {raw:?} -> {target:?}: {why}"))
                })?;
                if path.is_empty() {
                    return Err(ArchiveError::invalid(format!(
                        "invalid link {raw:?}: the archive root cannot be a link"
                    )));
                }
                loaded.links.insert(path, resolved);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if path.is_empty() {
                    return Err(ArchiveError::invalid(format!(
                        "invalid archive entry {raw:?}: a file without a name"
                    )));
                }
                loaded.file(&path, &mut entry, &mut buf)?;
            }
            // Directories carry nothing; devices, fifos and PAX global headers have no meaning
            // in an image archive, and are never materialised, so they are harmless to skip.
            _ => {}
        }
    }
    loaded.images()
}

/// The archive-relative form of an entry name: no leading `./`, no empty components, no
/// trailing slash. Absolute names and `..` are refused rather than cleaned: an archive that
/// has them was built to escape an extraction directory.
fn clean_path(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path escapes the archive (..)"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Where a symlink at `link` (a cleaned path) pointing at `target` leads, as an archive path.
/// `..` may climb within the archive (old `docker save` links `<id>/layer.tar` to
/// `../<other-id>/layer.tar`) but not above it; absolute targets would be host paths.
fn resolve_symlink_target(link: &str, target: &str) -> Result<String, &'static str> {
    if target.starts_with('/') {
        return Err("absolute symlink target");
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("symlink target outside the archive");
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// `blobs/sha256/<hex>` names its own digest.
fn blob_path_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

fn read_entry<R: Read>(entry: &mut R, buf: &mut [u8], path: &str) -> Result<usize, ArchiveError> {
    loop {
        match entry.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ArchiveError::invalid(format!(
                    "read {path} in archive: {e}"
                )))
            }
        }
    }
}

impl Loaded<'_> {
    fn file<R: Read>(
        &mut self,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
        buf: &mut [u8],
    ) -> Result<(), ArchiveError> {
        let size = entry.size();
        match path {
            "manifest.json" | "index.json" => {
                if size > MAX_METADATA {
                    return Err(ArchiveError::invalid(format!(
                        "{path}: {size} bytes is too large"
                    )));
                }
                let mut data = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| ArchiveError::invalid(format!("read {path} in archive: {e}")))?;
                if path == "manifest.json" {
                    self.manifest_json = Some(data);
                } else {
                    self.index_json = Some(data);
                }
                return Ok(());
            }
            // Metadata this loader does not need: the legacy per-layer `json`/`VERSION` files
            // and `repositories` (both superseded by manifest.json), and `oci-layout`. Not
            // reading them lets the tar reader skip their data.
            "repositories" | "oci-layout" => return Ok(()),
            _ => {}
        }
        if let Some((dir, name)) = path.split_once('/') {
            if dir != "blobs" && (name == "json" || name == "VERSION") {
                return Ok(());
            }
        }

        let claimed = blob_path_digest(path);
        if let Some(d) = &claimed {
            // Loading what is already there (say, `docker save | docker load` on one host)
            // costs no writes: the stored copy was verified when written.
            if self.store.info(d)? == Some(size) {
                self.record(path, d.clone(), size);
                return Ok(());
            }
        }
        let mut w = self.store.writer()?;
        loop {
            let n = read_entry(entry, buf, path)?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).map_err(io_err("write blob"))?;
        }
        let (digest, size) = w
            .commit(claimed.as_ref(), Some(size))
            .map_err(|e| match e {
                ContentError::DigestMismatch { expected, actual } => ArchiveError::invalid(
                    format!("{path}: content has digest {actual}, not {expected}"),
                ),
                ContentError::SizeMismatch { expected, actual } => ArchiveError::invalid(format!(
                    "{path}: {actual} bytes where the tar header says {expected}"
                )),
                e => e.into(),
            })?;
        self.record(path, digest, size);
        Ok(())
    }

    fn record(&mut self, path: &str, digest: Digest, size: u64) {
        self.blobs.insert(digest.clone(), size);
        self.files
            .insert(path.to_string(), FileInfo { digest, size });
        // A file replaces a link of the same name, as extraction would.
        self.links.remove(path);
    }

    /// Finds the file at an archive path, following symlinks (of the file or of its parent
    /// directories) and hard links within the archive.
    fn resolve(&self, path: &str) -> Result<&FileInfo, ArchiveError> {
        let mut cur = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(&cur) {
                return Ok(f);
            }
            let parts: Vec<&str> = cur.split('/').collect();
            let mut next = None;
            for i in (1..=parts.len()).rev() {
                let prefix = parts[..i].join("/");
                if let Some(target) = self.links.get(&prefix) {
                    let mut n = target.clone();
                    for p in &parts[i..] {
                        if !n.is_empty() {
                            n.push('/');
                        }
                        n.push_str(p);
                    }
                    next = Some(n);
                    break;
                }
            }
            match next {
                Some(n) => cur = n,
                None => {
                    return Err(ArchiveError::invalid(format!(
                        "open {path}: no such file in archive"
                    )))
                }
            }
        }
        Err(ArchiveError::invalid(format!(
            "open {path}: too many levels of symbolic links"
        )))
    }

    /// Reads a small blob named by a descriptor: it must be in the archive or already stored,
    /// with the size the descriptor claims.
    fn read_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        what: &str,
    ) -> Result<Vec<u8>, ArchiveError> {
        let actual = self.blob_size(digest, what)?;
        if let Some(want) = size {
            if want != actual {
                return Err(ArchiveError::invalid(format!(
                    "{what} {digest}: size {actual}, descriptor says {want}"
                )));
            }
        }
        if actual > MAX_METADATA {
            return Err(ArchiveError::invalid(format!(
                "{what} {digest}: {actual} bytes is too large"
            )));
        }
        Ok(self.store.read(digest)?)
    }

    fn blob_size(&self, digest: &Digest, what: &str) -> Result<u64, ArchiveError> {
        if let Some(s) = self.blobs.get(digest) {
            return Ok(*s);
        }
        // Blobs an archive omits because the target already has them are fine to use: they
        // are verified content all the same.
        self.store.info(digest)?.ok_or_else(|| {
            ArchiveError::invalid(format!("{what} {digest}: blob not found in archive"))
        })
    }

    fn images(&self) -> Result<Vec<LoadedImage>, ArchiveError> {
        let oci = self.index_json.as_deref().map(|b| self.oci_images(b));
        if let Some(m) = &self.manifest_json {
            // index.json only tells which manifest blob goes with which image here; a part of
            // it this loader cannot follow must not stop an otherwise loadable archive.
            let known: Vec<OciImage> = match oci {
                Some(Ok(list)) => list.into_iter().filter_map(Result::ok).collect(),
                _ => Vec::new(),
            };
            return self.docker_images(m, &known);
        }
        match oci {
            Some(list) => {
                let mut out = Vec::new();
                for img in list? {
                    let img = img?;
                    let what = format!("image {}", img.manifest_digest);
                    let layers: Vec<(Digest, Option<u64>)> = img
                        .manifest
                        .layers
                        .iter()
                        .map(|l| (l.digest.clone(), Some(l.size)))
                        .collect();
                    let (config_digest, layers) = self.assemble(
                        &img.manifest.config.digest,
                        Some(img.manifest.config.size),
                        &layers,
                        &what,
                    )?;
                    out.push(LoadedImage {
                        refs: img.refs,
                        config_digest,
                        layers,
                        manifest: Some((img.manifest_digest, img.media_type)),
                    });
                }
                if out.is_empty() {
                    return Err(ArchiveError::invalid(
                        "index.json: no images in the archive",
                    ));
                }
                Ok(out)
            }
            None => Err(ArchiveError::invalid(
                "not an image archive: neither manifest.json nor index.json found",
            )),
        }
    }

    /// Images from a docker-archive `manifest.json`.
    fn docker_images(
        &self,
        bytes: &[u8],
        known: &[OciImage],
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::invalid(format!("manifest.json: {e}")))?;
        if entries.is_empty() {
            return Err(ArchiveError::invalid("manifest.json: no images"));
        }
        let mut out = Vec::new();
        for e in entries {
            let config_path = clean_path(&e.config).map_err(|why| {
                ArchiveError::invalid(format!("manifest.json: config {:?}: {why}", e.config))
            })?;
            let config = self
                .resolve(&config_path)
                .map_err(|err| ArchiveError::invalid(format!("manifest.json: {err}")))?;
            let mut layers = Vec::with_capacity(e.layers.len());
            for l in &e.layers {
                let p = clean_path(l).map_err(|why| {
                    ArchiveError::invalid(format!("manifest.json: layer {l:?}: {why}"))
                })?;
                let f = self
                    .resolve(&p)
                    .map_err(|err| ArchiveError::invalid(format!("manifest.json: {err}")))?;
                layers.push((f.digest.clone(), Some(f.size)));
            }
            let (config_digest, layers) = self.assemble(
                &config.digest,
                Some(config.size),
                &layers,
                &format!("manifest.json: image {config_path}"),
            )?;
            let mut refs = Vec::new();
            for t in e.repo_tags.iter().flatten() {
                let r = Reference::parse_normalized(t)
                    .map_err(|err| ArchiveError::invalid(format!("invalid tag {t:?}: {err}")))?;
                if r.tag().is_none() {
                    return Err(ArchiveError::invalid(format!("invalid tag {t:?}")));
                }
                refs.push(r);
            }
            let manifest = known
                .iter()
                .find(|k| {
                    k.manifest.config.digest == config_digest
                        && k.manifest.layers.len() == layers.len()
                        && k.manifest
                            .layers
                            .iter()
                            .zip(&layers)
                            .all(|(a, b)| a.digest == b.digest)
                })
                .map(|k| (k.manifest_digest.clone(), k.media_type.clone()));
            out.push(LoadedImage {
                refs,
                config_digest,
                layers,
                manifest,
            });
        }
        Ok(out)
    }

    /// The images `index.json` names, one per manifest (tags of the same manifest merged).
    /// Entries are results of their own so that callers can tolerate unrelated failures.
    #[allow(clippy::type_complexity)]
    fn oci_images(
        &self,
        bytes: &[u8],
    ) -> Result<Vec<Result<OciImage, ArchiveError>>, ArchiveError> {
        let index: Index = serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::invalid(format!("index.json: {e}")))?;
        let mut out: Vec<Result<OciImage, ArchiveError>> = Vec::new();
        let mut by_manifest: HashMap<Digest, usize> = HashMap::new();
        for d in &index.manifests {
            let refs = match refs_from_annotations(d) {
                Ok(r) => r,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let chosen = if is_index(&d.media_type) {
                self.pick_platform(d)
            } else if is_manifest(&d.media_type) || d.media_type.is_empty() {
                Ok(d.clone())
            } else {
                // Attestations, signatures, artifacts: not images.
                continue;
            };
            let img = chosen.and_then(|m| self.oci_image(&m));
            match img {
                Ok(mut img) => match by_manifest.get(&img.manifest_digest) {
                    Some(&i) => {
                        if let Some(Ok(existing)) = out.get_mut(i) {
                            for r in refs {
                                if !existing.refs.contains(&r) {
                                    existing.refs.push(r);
                                }
                            }
                        }
                    }
                    None => {
                        img.refs = refs;
                        by_manifest.insert(img.manifest_digest.clone(), out.len());
                        out.push(Ok(img));
                    }
                },
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    fn oci_image(&self, d: &Descriptor) -> Result<OciImage, ArchiveError> {
        let bytes = self.read_blob(&d.digest, Some(d.size), "manifest")?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::invalid(format!("manifest {}: {e}", d.digest)))?;
        let media_type = if d.media_type.is_empty() {
            manifest
                .media_type
                .clone()
                .unwrap_or_else(|| crate::MEDIA_TYPE_OCI_MANIFEST.to_string())
        } else {
            d.media_type.clone()
        };
        Ok(OciImage {
            manifest_digest: d.digest.clone(),
            media_type,
            manifest,
            refs: Vec::new(),
        })
    }

    /// The manifest of a nested index (a multi-platform image) to load: the host's platform,
    /// else the only one whose blob the archive carries (`docker save` of one platform of a
    /// multi-platform image keeps the full index but only that platform's blobs).
    fn pick_platform(&self, d: &Descriptor) -> Result<Descriptor, ArchiveError> {
        let bytes = self.read_blob(&d.digest, Some(d.size), "image index")?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::invalid(format!("image index {}: {e}", d.digest)))?;
        let available: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|m| is_manifest(&m.media_type) || m.media_type.is_empty())
            .filter(|m| {
                m.platform
                    .as_ref()
                    .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
            })
            .filter(|m| self.blob_size(&m.digest, "manifest").is_ok())
            .collect();
        let arch = host_arch();
        let host = available.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        });
        match (host, available.as_slice()) {
            (Some(m), _) => Ok((*m).clone()),
            (None, [only]) => Ok((*only).clone()),
            (None, []) => Err(ArchiveError::invalid(format!(
                "image index {}: none of its manifests is in the archive",
                d.digest
            ))),
            (None, _) => Err(ArchiveError::invalid(format!(
                "image index {}: no matching manifest for linux/{arch} in the manifest list entries",
                d.digest
            ))),
        }
    }

    /// Ties a config to its layers and checks what can be checked without decompressing: as
    /// many diff IDs as layers, and an uncompressed layer's digest is its diff ID.
    fn assemble(
        &self,
        config_digest: &Digest,
        config_size: Option<u64>,
        layers: &[(Digest, Option<u64>)],
        what: &str,
    ) -> Result<(Digest, Vec<LoadedLayer>), ArchiveError> {
        let bytes = self.read_blob(config_digest, config_size, "config")?;
        let config: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
            ArchiveError::invalid(format!("{what}: invalid image config {config_digest}: {e}"))
        })?;
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != layers.len() {
            return Err(ArchiveError::invalid(format!(
                "{what}: invalid manifest, layers length mismatch: config has {} diff ids, \
                 manifest has {} layers",
                diff_ids.len(),
                layers.len()
            )));
        }
        let mut out = Vec::with_capacity(layers.len());
        for ((digest, size), diff_id) in layers.iter().zip(diff_ids) {
            let actual = self.blob_size(digest, "layer")?;
            if let Some(want) = size {
                if *want != actual {
                    return Err(ArchiveError::invalid(format!(
                        "{what}: layer {digest}: size {actual}, manifest says {want}"
                    )));
                }
            }
            let media_type = detect_layer_type(self.store, digest)?;
            if media_type == MEDIA_TYPE_OCI_LAYER && *digest != diff_id {
                return Err(ArchiveError::invalid(format!(
                    "{what}: layer {digest} is uncompressed but the config says its diff id \
                     is {diff_id}"
                )));
            }
            out.push(LoadedLayer {
                digest: digest.clone(),
                media_type: media_type.to_string(),
                size: actual,
                diff_id,
            });
        }
        Ok((config_digest.clone(), out))
    }
}

/// An image named by `index.json`.
struct OciImage {
    manifest_digest: Digest,
    media_type: String,
    manifest: Manifest,
    refs: Vec<Reference>,
}

/// `io.containerd.image.name` is a full reference; `org.opencontainers.image.ref.name` usually
/// only a tag (which names nothing without a repository) but skopeo and others write full
/// references there too. A tag cannot contain `:`, `/` or `@`, which tells the two apart.
fn refs_from_annotations(d: &Descriptor) -> Result<Vec<Reference>, ArchiveError> {
    let name = match d.annotations.get(ANNOTATION_IMAGE_NAME) {
        Some(n) => n,
        None => match d.annotations.get(ANNOTATION_REF_NAME) {
            Some(n) if n.contains([':', '/', '@']) => n,
            _ => return Ok(Vec::new()),
        },
    };
    let r = Reference::parse_normalized(name).map_err(|e| {
        ArchiveError::invalid(format!("index.json: invalid image name {name:?}: {e}"))
    })?;
    Ok(vec![r.with_default_tag()])
}

/// The OCI architecture name of the host.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(
            clean_path("./manifest.json").as_deref(),
            Ok("manifest.json")
        );
        assert_eq!(clean_path("blobs//sha256/").as_deref(), Ok("blobs/sha256"));
        assert_eq!(clean_path("./").as_deref(), Ok(""));
        assert!(clean_path("/etc/passwd").is_err());
        assert!(clean_path("../x").is_err());
        assert!(clean_path("a/../../x").is_err());
        assert!(clean_path("a/../b").is_err());
    }

    #[test]
    fn symlink_targets_stay_inside() {
        assert_eq!(
            resolve_symlink_target("aaa/layer.tar", "../bbb/layer.tar").as_deref(),
            Ok("bbb/layer.tar")
        );
        assert_eq!(
            resolve_symlink_target("aaa/layer.tar", "layer2.tar").as_deref(),
            Ok("aaa/layer2.tar")
        );
        assert!(resolve_symlink_target("aaa/layer.tar", "../../etc/passwd").is_err());
        assert!(resolve_symlink_target("aaa/layer.tar", "/etc/passwd").is_err());
        assert!(resolve_symlink_target("x", "..").is_err());
    }

    #[test]
    fn blob_paths_name_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            blob_path_digest(&format!("blobs/sha256/{hex}")),
            Some(Digest::from_sha256_hex(&hex).expect("digest"))
        );
        assert_eq!(blob_path_digest("blobs/sha256/xyz"), None);
        assert_eq!(blob_path_digest(&format!("{hex}.json")), None);
    }

    #[test]
    fn annotation_refs() {
        let d = |k: &str, v: &str| Descriptor {
            media_type: String::new(),
            digest: Digest::sha256_of(b"x"),
            size: 1,
            annotations: [(k.to_string(), v.to_string())].into(),
            platform: None,
        };
        let name = |d: &Descriptor| {
            refs_from_annotations(d)
                .expect("refs")
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            name(&d(ANNOTATION_REF_NAME, "latest")),
            Vec::<String>::new()
        );
        assert_eq!(
            name(&d(ANNOTATION_REF_NAME, "busybox:1")),
            vec!["docker.io/library/busybox:1"]
        );
        assert_eq!(
            name(&d(ANNOTATION_IMAGE_NAME, "docker.io/me/x")),
            vec!["docker.io/me/x:latest"]
        );
        assert!(refs_from_annotations(&d(ANNOTATION_IMAGE_NAME, "UPPER")).is_err());
    }

    #[test]
    fn links_resolve_through_directories_and_loops_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("store");
        let mut l = Loaded {
            store: &store,
            files: HashMap::new(),
            blobs: HashMap::new(),
            links: HashMap::new(),
            manifest_json: None,
            index_json: None,
        };
        l.record("real/layer.tar", Digest::sha256_of(b"l"), 1);
        l.links.insert("alias".into(), "real".into());
        l.links
            .insert("b/layer.tar".into(), "alias/layer.tar".into());
        l.links.insert("loop1".into(), "loop2".into());
        l.links.insert("loop2".into(), "loop1".into());
        assert_eq!(
            l.resolve("b/layer.tar").expect("resolve").digest,
            Digest::sha256_of(b"l")
        );
        let err = l.resolve("loop1").expect_err("loop");
        assert!(err.to_string().contains("too many levels"), "{err}");
        let err = l.resolve("nope/layer.tar").expect_err("missing");
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
