//! Image archives for `docker save` / `docker load`.
//!
//! Two tar formats are written and read:
//!
//! **docker-archive** ([`Format::Docker`]), what `docker save` writes. Since Docker 25 it is an
//! OCI image layout with Docker's legacy metadata added on top:
//!
//! ```text
//! blobs/sha256/<hex>   manifests, configs and layers, each once
//! index.json           OCI index; one entry per tag, annotated with
//!                      io.containerd.image.name (docker.io/library/busybox:latest) and
//!                      org.opencontainers.image.ref.name (latest)
//! manifest.json        [{"Config":"blobs/sha256/<hex>","RepoTags":["busybox:latest"],
//!                        "Layers":["blobs/sha256/<hex>",...]}]
//! oci-layout           {"imageLayoutVersion":"1.0.0"}
//! repositories         {"busybox":{"latest":"<hex of the top layer blob>"}}
//! ```
//!
//! `docker load` of dockerd 20.10 reads only `manifest.json` and follows its paths, so this
//! layout is loadable there too. Older `docker save` (and `skopeo copy … docker-archive:`) used
//! per-layer directories instead: `<v1-id>/{VERSION,json,layer.tar}`, configs as `<hex>.json`
//! at the top, layers shared between images as symlinks `<id>/layer.tar -> ../<id2>/layer.tar`,
//! and `manifest.json` usually at the *end* of the stream.
//!
//! Layers are written exactly as they are stored (possibly gzip- or zstd-compressed): dockerd
//! decompresses layer files on load (`archive.DecompressStream`) and checks them against the
//! config's `rootfs.diff_ids`, so recompressing or inflating them would only cost time.
//!
//! **oci-archive** ([`Format::Oci`]): only the OCI image layout (`oci-layout`, `index.json`,
//! `blobs/`), as `skopeo copy … oci-archive:` or `ctr export` write.
//!
//! [`load`] accepts all of these. It reads the tar as a stream and never extracts it to disk:
//! every regular file is hashed into the [`ContentStore`] as it arrives, the few metadata files
//! are kept in memory, and once the stream ends images are assembled from `manifest.json` (or,
//! without one, from `index.json`) by looking up paths in what was recorded.

mod error;
mod json;
mod load;
mod media;
mod save;

pub use error::ArchiveError;
pub use load::load;
pub use save::save;

use berth_reference::{Digest, Reference};

#[cfg(doc)]
use berth_store::content::ContentStore;

/// One image to save. Blobs are read from the ContentStore by digest (config, compressed or
/// uncompressed layer blobs as stored).
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// May be empty (an image saved by ID).
    pub refs: Vec<Reference>,
    /// The manifest blob, if the store has it. When it does not (or it does not describe
    /// `config_digest` and `layers`), an OCI manifest is generated for the archive.
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config_digest: Digest,
    pub layers: Vec<SaveLayer>,
}

#[derive(Debug, Clone)]
pub struct SaveLayer {
    /// The blob digest as stored.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker 25+'s `docker save` layout, also loadable by dockerd 20.10.
    Docker,
    /// The bare OCI image layout.
    Oci,
}

/// An image found in an archive; all its blobs are in the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub refs: Vec<Reference>,
    pub config_digest: Digest,
    pub layers: Vec<LoadedLayer>,
    /// The manifest blob (digest, media type), when the archive carried one.
    pub manifest: Option<(Digest, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedLayer {
    /// The blob as stored in the ContentStore.
    pub digest: Digest,
    /// Detected from the bytes: gzip, zstd or plain tar, as OCI layer media types.
    pub media_type: String,
    pub size: u64,
    /// From the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

pub use media::{
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD, MEDIA_TYPE_OCI_MANIFEST,
};
