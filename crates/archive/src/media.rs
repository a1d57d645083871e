//! Media types and the sniffing of layer compression from a blob's first bytes.

use std::io::Read;

use berth_reference::Digest;
use berth_store::content::ContentStore;

use crate::error::{io_err, ArchiveError};

pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

pub(crate) fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// The OCI layer media type for content starting with `head`.
pub(crate) fn layer_type_of(head: &[u8]) -> &'static str {
    if head.starts_with(GZIP_MAGIC) {
        MEDIA_TYPE_OCI_LAYER_GZIP
    } else if head.starts_with(ZSTD_MAGIC) {
        MEDIA_TYPE_OCI_LAYER_ZSTD
    } else {
        MEDIA_TYPE_OCI_LAYER
    }
}

/// Sniffs a stored blob. Reads the file directly rather than through the verifying reader: only
/// four bytes are needed, and the blob was hashed when it was written moments ago.
pub(crate) fn detect_layer_type(
    store: &ContentStore,
    digest: &Digest,
) -> Result<&'static str, ArchiveError> {
    let path = store.blob_path(digest);
    let file = std::fs::File::open(&path).map_err(io_err(format!("open {}", path.display())))?;
    let mut head = Vec::with_capacity(4);
    file.take(4)
        .read_to_end(&mut head)
        .map_err(io_err(format!("read {}", path.display())))?;
    Ok(layer_type_of(&head))
}

/// The OCI equivalent of a layer media type, for manifests generated in OCI form. Types
/// without an equivalent (foreign layers, already-OCI types) are kept.
pub(crate) fn oci_layer_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" | MEDIA_TYPE_OCI_LAYER_GZIP => {
            Some(MEDIA_TYPE_OCI_LAYER_GZIP)
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" | MEDIA_TYPE_OCI_LAYER_ZSTD => {
            Some(MEDIA_TYPE_OCI_LAYER_ZSTD)
        }
        "application/vnd.docker.image.rootfs.diff.tar" | MEDIA_TYPE_OCI_LAYER => {
            Some(MEDIA_TYPE_OCI_LAYER)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            layer_type_of(&[0x1f, 0x8b, 8, 0]),
            MEDIA_TYPE_OCI_LAYER_GZIP
        );
        assert_eq!(
            layer_type_of(&[0x28, 0xb5, 0x2f, 0xfd]),
            MEDIA_TYPE_OCI_LAYER_ZSTD
        );
        assert_eq!(layer_type_of(b"etc/"), MEDIA_TYPE_OCI_LAYER);
        assert_eq!(layer_type_of(b""), MEDIA_TYPE_OCI_LAYER);
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(MEDIA_TYPE_OCI_LAYER_GZIP)
        );
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            None
        );
    }
}
