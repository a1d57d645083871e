//! OCI layouts as other tools write them: nested indexes (multi-platform images, of which an
//! archive carries one platform), names in annotations, Docker 25's layout + manifest.json.
#![allow(clippy::unwrap_used)]

mod common;

use berth_archive::load;
use berth_reference::{Digest, Reference};
use common::*;

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A multi-platform index whose host-platform manifest (and its blobs) are in the archive,
/// and whose other platform and attestation are not.
fn multi_platform(with_manifest_json: bool) -> (Vec<u8>, Built, Digest) {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let built = busybox(&st, &[]);
    let other = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": Digest::sha256_of(b"absent").to_string(), "size": 6,
             "platform": {"os": "linux", "architecture": other}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": built.image.manifest_digest.to_string(), "size": built.manifest.len(),
             "platform": {"os": "linux", "architecture": host_arch()}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": Digest::sha256_of(b"attestation").to_string(), "size": 11,
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }))
    .unwrap();
    let index_digest = Digest::sha256_of(&index);
    let mut b = tar::Builder::new(Vec::new());
    let img = &built.image;
    let mut blobs = vec![(img.manifest_digest.clone(), built.manifest.clone())];
    blobs.push((img.config_digest.clone(), built.config.clone()));
    for l in &img.layers {
        blobs.push((l.digest.clone(), st.read(&l.digest).unwrap()));
    }
    blobs.push((index_digest.clone(), index.clone()));
    for (d, data) in &blobs {
        append_file(&mut b, &blob_name(d), data);
    }
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json",
         "digest": index_digest.to_string(), "size": index.len(),
         "annotations": {"io.containerd.image.name": "docker.io/library/busybox:1.36",
                         "org.opencontainers.image.ref.name": "1.36"}},
        {"mediaType": "application/vnd.oci.image.index.v1+json",
         "digest": index_digest.to_string(), "size": index.len(),
         "annotations": {"org.opencontainers.image.ref.name": "example.com/bb:2"}},
        {"mediaType": "application/vnd.example.sbom", "digest": Digest::sha256_of(b"x").to_string(), "size": 1},
    ]});
    append_file(&mut b, "index.json", &serde_json::to_vec(&top).unwrap());
    append_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    if with_manifest_json {
        let m = serde_json::json!([{
            "Config": blob_name(&img.config_digest),
            "RepoTags": ["busybox:1.36"],
            "Layers": img.layers.iter().map(|l| blob_name(&l.digest)).collect::<Vec<_>>(),
        }]);
        append_file(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    }
    (b.into_inner().unwrap(), built, index_digest)
}

#[test]
fn nested_index_picks_the_platform_in_the_archive() {
    let (archive, built, _) = multi_platform(false);
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let images = load(&st, &archive[..]).unwrap();
    assert_eq!(images.len(), 1, "one image, two names");
    let img = &images[0];
    assert_eq!(
        img.refs
            .iter()
            .map(Reference::to_string)
            .collect::<Vec<_>>(),
        vec!["docker.io/library/busybox:1.36", "example.com/bb:2"]
    );
    assert_eq!(img.config_digest, built.image.config_digest);
    assert_eq!(
        img.manifest,
        Some((
            built.image.manifest_digest.clone(),
            "application/vnd.oci.image.manifest.v1+json".to_string()
        ))
    );
    let layers: Vec<_> = img.layers.iter().map(|l| l.digest.clone()).collect();
    let want: Vec<_> = built
        .image
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(layers, want);
}

#[test]
fn docker_25_layout_uses_manifest_json_and_finds_the_manifest() {
    let (archive, built, _) = multi_platform(true);
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let images = load(&st, &archive[..]).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(
        img.refs
            .iter()
            .map(Reference::to_string)
            .collect::<Vec<_>>(),
        vec!["docker.io/library/busybox:1.36"]
    );
    assert_eq!(img.config_digest, built.image.config_digest);
    assert_eq!(
        img.manifest.as_ref().map(|m| &m.0),
        Some(&built.image.manifest_digest)
    );
}

#[test]
fn ambiguous_platforms_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let a = busybox(&st, &[]);
    let top = layer_tar(&[("other", b"1" as &[u8])]);
    let b_img = build_image(&st, &[], &[(top, false)], true);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": a.image.manifest_digest.to_string(), "size": a.manifest.len(),
         "platform": {"os": "linux", "architecture": "mips64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": b_img.image.manifest_digest.to_string(), "size": b_img.manifest.len(),
         "platform": {"os": "linux", "architecture": "s390x"}},
    ]}))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for d in st.list().unwrap() {
        append_file(&mut b, &blob_name(&d), &st.read(&d).unwrap());
    }
    append_file(&mut b, &blob_name(&Digest::sha256_of(&index)), &index);
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json",
         "digest": Digest::sha256_of(&index).to_string(), "size": index.len()}]});
    append_file(&mut b, "index.json", &serde_json::to_vec(&top).unwrap());
    let archive = b.into_inner().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = store(dst_dir.path());
    let err = load(&dst, &archive[..]).unwrap_err();
    assert!(
        err.to_string().contains("no matching manifest for linux/"),
        "{err}"
    );
}
