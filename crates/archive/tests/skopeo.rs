//! Interoperability with skopeo (containers/image): archives it writes load, archives we write
//! it reads. Skipped when skopeo is not installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use berth_archive::{load, save, Format, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP};
use berth_reference::Reference;
use berth_store::content::ContentStore;
use common::*;

const SKOPEO: &str = "/usr/bin/skopeo";

fn skopeo(args: &[&str]) -> bool {
    if !Path::new(SKOPEO).exists() {
        eprintln!("skipping: {SKOPEO} not installed");
        return false;
    }
    let out = Command::new(SKOPEO)
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// An OCI image layout directory written by hand from the store, tagged `v1`.
fn write_layout(dir: &Path, src: &ContentStore, built: &Built) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let img = &built.image;
    let mut digests = vec![img.manifest_digest.clone(), img.config_digest.clone()];
    digests.extend(img.layers.iter().map(|l| l.digest.clone()));
    for d in digests {
        std::fs::write(
            dir.join("blobs/sha256").join(d.hex()),
            src.read(&d).unwrap(),
        )
        .unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest.to_string(),
            "size": built.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn names(refs: &[Reference]) -> Vec<String> {
    refs.iter().map(Reference::to_string).collect()
}

#[test]
fn skopeo_docker_archive_and_oci_archive_load() {
    let tmp = tempfile::tempdir().unwrap();
    let src = store(&tmp.path().join("src"));
    let built = busybox(&src, &["busybox:latest"]);
    let layout = tmp.path().join("layout");
    write_layout(&layout, &src, &built);
    let oci_ref = format!("oci:{}:v1", layout.display());

    // docker-archive: skopeo writes <hex>.tar layers (decompressed), <hex>.json config,
    // legacy <id>/layer.tar symlinks, manifest.json and repositories.
    let docker_file = tmp.path().join("docker.tar");
    if !skopeo(&[
        "copy",
        &oci_ref,
        &format!("docker-archive:{}:busybox:latest", docker_file.display()),
    ]) {
        return;
    }
    let dst = store(&tmp.path().join("dst1"));
    let images = load(&dst, std::fs::File::open(&docker_file).unwrap()).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(names(&img.refs), vec!["docker.io/library/busybox:latest"]);
    assert_eq!(img.config_digest, built.image.config_digest);
    for (l, want) in img.layers.iter().zip(&built.image.layers) {
        assert_eq!(l.diff_id, want.diff_id);
        // docker-archive layers are uncompressed, so each blob is its diff id.
        assert_eq!(l.digest, want.diff_id);
        assert_eq!(l.media_type, MEDIA_TYPE_OCI_LAYER);
        assert!(dst.exists(&l.digest));
    }

    // oci-archive: the layout in a tar; blobs as they were.
    let oci_file = tmp.path().join("oci.tar");
    skopeo(&[
        "copy",
        &oci_ref,
        &format!("oci-archive:{}:busybox:latest", oci_file.display()),
    ]);
    let dst = store(&tmp.path().join("dst2"));
    let images = load(&dst, std::fs::File::open(&oci_file).unwrap()).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(names(&img.refs), vec!["docker.io/library/busybox:latest"]);
    assert_eq!(img.config_digest, built.image.config_digest);
    assert_eq!(img.layers.len(), 2);
    for (l, want) in img.layers.iter().zip(&built.image.layers) {
        assert_eq!(l.diff_id, want.diff_id);
        assert!(dst.exists(&l.digest));
    }
    // The gzip layer is copied as is; skopeo compresses the uncompressed one on the way.
    assert_eq!(img.layers[0].digest, built.image.layers[0].digest);
    assert_eq!(img.layers[1].media_type, MEDIA_TYPE_OCI_LAYER_GZIP);
    assert!(img.manifest.is_some());
}

#[test]
fn skopeo_reads_our_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let src = store(&tmp.path().join("src"));
    let built = busybox(&src, &["busybox:latest"]);

    let docker_file = tmp.path().join("ours-docker.tar");
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Docker,
        std::fs::File::create(&docker_file).unwrap(),
    )
    .unwrap();
    let out1 = tmp.path().join("out1");
    if !skopeo(&[
        "copy",
        &format!("docker-archive:{}", docker_file.display()),
        &format!("oci:{}:x", out1.display()),
    ]) {
        return;
    }
    let oci_file = tmp.path().join("ours-oci.tar");
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Oci,
        std::fs::File::create(&oci_file).unwrap(),
    )
    .unwrap();
    let out2 = tmp.path().join("out2");
    skopeo(&[
        "copy",
        &format!("oci-archive:{}", oci_file.display()),
        &format!("oci:{}:x", out2.display()),
    ]);
    // skopeo presents a docker-archive as a schema2 image and converting that to OCI
    // re-serialises the config, so only its content can be compared there; oci-archive → oci
    // copies it byte for byte.
    let ours: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
    for (out, same_digest) in [(out1, false), (out2, true)] {
        let blob = |d: &str| {
            let hex = d.strip_prefix("sha256:").unwrap();
            std::fs::read(out.join("blobs/sha256").join(hex)).unwrap()
        };
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        let config: serde_json::Value = serde_json::from_slice(&blob(config_digest)).unwrap();
        assert_eq!(config["rootfs"], ours["rootfs"]);
        assert_eq!(config["config"]["Cmd"], ours["config"]["Cmd"]);
        if same_digest {
            assert_eq!(config_digest, built.image.config_digest.to_string());
        }
    }
}
