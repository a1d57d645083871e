//! Manifest media types and the fetched-manifest value.

use berth_reference::Digest;
use serde::Deserialize;
use sha2::Digest as _;

use crate::error::{Error, ErrorKind};

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What `get_manifest` sends as `Accept`: the four supported types first, schema 1 last so a
/// registry that only has schema 1 says so and the error can be clear.
pub(crate) const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// Manifests are small; a bigger body is refused rather than buffered (containerd's limit).
pub(crate) const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// A manifest as the registry served it: the exact bytes (their digest is the manifest's
/// identity) and the media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// An OCI index or Docker manifest list: pass it to [`crate::select_platform`].
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }
}

/// Whether a media type names a Docker schema 1 manifest.
pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_V1 || media_type == DOCKER_MANIFEST_V1_SIGNED
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<ProbeConfig>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(rename = "fsLayers", default)]
    fs_layers: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ProbeConfig {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
}

/// The manifest's media type from the response's `Content-Type` and its body. The body wins
/// when the header is missing or generic (`application/json`, `text/plain`), which some
/// registries and static mirrors send. Schema 1 is refused here with Docker's wording.
pub(crate) fn detect_media_type(
    content_type: Option<&str>,
    body: &[u8],
    what: &str,
) -> Result<String, Error> {
    let header = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty());
    let probe: Option<Probe> = serde_json::from_slice(body).ok();
    let schema1 = || {
        Error::unsupported(format!(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {what} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
        ))
    };
    if header.as_deref().is_some_and(is_schema1)
        || probe
            .as_ref()
            .is_some_and(|p| p.schema_version == Some(1) || p.fs_layers.is_some())
    {
        return Err(schema1());
    }
    let known = [
        DOCKER_MANIFEST_V2,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        OCI_INDEX,
    ];
    if let Some(h) = header.as_deref() {
        if known.contains(&h) {
            return Ok(h.to_string());
        }
    }
    let Some(p) = probe else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "unsupported manifest format for {what}: body is not JSON (Content-Type {})",
                header.as_deref().unwrap_or("missing")
            ),
        ));
    };
    if let Some(mt) = p.media_type.filter(|m| !m.is_empty()) {
        if known.contains(&mt.as_str()) {
            return Ok(mt);
        }
        return Err(Error::unsupported(format!(
            "unsupported manifest media type {mt} for {what}"
        )));
    }
    if p.manifests.is_some() {
        return Ok(OCI_INDEX.to_string());
    }
    if p.layers.is_some() || p.config.is_some() {
        let docker = p
            .config
            .and_then(|c| c.media_type)
            .is_some_and(|m| m == DOCKER_CONFIG);
        return Ok(if docker {
            DOCKER_MANIFEST_V2
        } else {
            OCI_MANIFEST
        }
        .to_string());
    }
    Err(Error::unsupported(format!(
        "unsupported manifest format for {what}: Content-Type {}",
        header.as_deref().unwrap_or("missing")
    )))
}

/// The digest of `bytes` with `algorithm` (sha256 or sha512), to check content fetched by a
/// digest of that algorithm.
pub(crate) fn digest_with(algorithm: &str, bytes: &[u8]) -> Option<Digest> {
    match algorithm {
        "sha256" => Some(Digest::sha256_of(bytes)),
        "sha512" => {
            let hex = hex_string(&sha2::Sha512::digest(bytes));
            Digest::parse(&format!("sha512:{hex}")).ok()
        }
        _ => None,
    }
}

fn hex_string(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schema1_is_refused_by_header_or_body() {
        for ct in [
            DOCKER_MANIFEST_V1,
            DOCKER_MANIFEST_V1_SIGNED,
            "application/vnd.docker.distribution.manifest.v1+prettyjws; charset=utf-8",
        ] {
            let e = detect_media_type(Some(ct), b"{}", "x:1").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            assert!(
                e.to_string().contains("schema 1 support has been removed"),
                "{e}"
            );
            assert!(e.to_string().contains("author of x:1"), "{e}");
        }
        let body = br#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#;
        let e = detect_media_type(Some("application/json"), body, "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(is_schema1(DOCKER_MANIFEST_V1));
        assert!(!is_schema1(DOCKER_MANIFEST_V2));
    }

    #[test]
    fn header_then_body() {
        assert_eq!(
            detect_media_type(Some(OCI_INDEX), b"{}", "x").unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            detect_media_type(Some("application/json"), br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#, "x").unwrap(),
            DOCKER_MANIFEST_LIST
        );
        assert_eq!(
            detect_media_type(None, br#"{"schemaVersion":2,"manifests":[]}"#, "x").unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            detect_media_type(None, br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"},"layers":[]}"#, "x").unwrap(),
            DOCKER_MANIFEST_V2
        );
        assert_eq!(
            detect_media_type(None, br#"{"schemaVersion":2,"config":{},"layers":[]}"#, "x")
                .unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            detect_media_type(None, b"<html>", "x").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert!(detect_media_type(
            None,
            br#"{"mediaType":"application/vnd.example+json"}"#,
            "x"
        )
        .is_err());
    }

    #[test]
    fn digests() {
        assert_eq!(
            digest_with("sha256", b"").unwrap().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_with("sha512", b"")
            .unwrap()
            .to_string()
            .starts_with("sha512:cf83e135"));
        assert!(digest_with("md5", b"").is_none());
    }
}
