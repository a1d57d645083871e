//! The OCI layout's `index.json`: the list of image manifests the store keeps (its GC roots),
//! with their names in annotations.

use std::collections::BTreeMap;
use std::path::Path;

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::atomic::{read_json, write_json_atomic};
use crate::content::ContentError;

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IndexEntry {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

pub fn load_index(root: &Path) -> Result<Vec<IndexEntry>, ContentError> {
    let path = root.join("index.json");
    read_json::<Index>(&path)
        .map(|i| i.map(|i| i.manifests).unwrap_or_default())
        .map_err(|source| ContentError::Io {
            context: format!("read {}", path.display()),
            source,
        })
}

pub fn save_index(root: &Path, entries: &[IndexEntry]) -> Result<(), ContentError> {
    let path = root.join("index.json");
    let index = Index {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests: entries.to_vec(),
    };
    write_json_atomic(&path, &index).map_err(|source| ContentError::Io {
        context: format!("write {}", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load_index(dir.path()).expect("empty").is_empty());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            ANNOTATION_IMAGE_NAME.to_string(),
            "docker.io/library/busybox:latest".to_string(),
        );
        let e = IndexEntry {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::sha256_of(b"m"),
            size: 1,
            annotations,
        };
        save_index(dir.path(), std::slice::from_ref(&e)).expect("save");
        assert_eq!(load_index(dir.path()).expect("load"), vec![e]);
        let raw = std::fs::read_to_string(dir.path().join("index.json")).expect("read");
        assert!(raw.contains("\"schemaVersion\":2") && raw.contains("\"manifests\""));
    }
}
