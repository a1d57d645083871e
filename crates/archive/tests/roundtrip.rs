//! save → load round trips in both formats, and the shape of what `save` writes.
#![allow(clippy::unwrap_used)]

mod common;

use berth_archive::{
    load, save, Format, LoadedImage, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP,
};
use berth_reference::Reference;
use berth_store::content::ContentStore;
use berth_store::ErrorKind;
use common::*;

fn refs(img: &LoadedImage) -> Vec<String> {
    img.refs.iter().map(Reference::to_string).collect()
}

fn assert_same(built: &Built, img: &LoadedImage, target: &ContentStore) {
    assert_eq!(img.config_digest, built.image.config_digest);
    assert_eq!(img.layers.len(), built.image.layers.len());
    for (l, want) in img.layers.iter().zip(&built.image.layers) {
        assert_eq!(l.digest, want.digest);
        assert_eq!(l.diff_id, want.diff_id);
        assert_eq!(l.size, want.size);
        assert_eq!(l.media_type, want.media_type);
        assert!(target.exists(&l.digest));
    }
    assert_eq!(target.read(&img.config_digest).unwrap(), built.config);
}

#[test]
fn round_trip_both_formats() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let built = busybox(&src, &["busybox:latest", "docker.io/me/bb:1"]);

    for format in [Format::Docker, Format::Oci] {
        let mut out = Vec::new();
        save(&src, std::slice::from_ref(&built.image), format, &mut out).unwrap();
        let dst_dir = tempfile::tempdir().unwrap();
        let dst = store(dst_dir.path());
        let images = load(&dst, &out[..]).unwrap();
        assert_eq!(images.len(), 1, "{format:?}");
        let img = &images[0];
        assert_same(&built, img, &dst);
        assert_eq!(
            refs(img),
            vec!["docker.io/library/busybox:latest", "docker.io/me/bb:1"],
            "{format:?}"
        );
        let (md, mt) = img.manifest.clone().unwrap();
        assert_eq!(md, built.image.manifest_digest);
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(dst.read(&md).unwrap(), built.manifest);
        assert_eq!(img.layers[0].media_type, MEDIA_TYPE_OCI_LAYER_GZIP);
        assert_eq!(img.layers[1].media_type, MEDIA_TYPE_OCI_LAYER);

        // Loading again into a store that has everything is fine, and equal.
        let again = load(&dst, &out[..]).unwrap();
        assert_eq!(again, images);
        // Saving is reproducible.
        let mut out2 = Vec::new();
        save(&src, std::slice::from_ref(&built.image), format, &mut out2).unwrap();
        assert_eq!(out, out2);
    }
}

#[test]
fn docker_format_layout() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let built = busybox(&src, &["busybox:latest"]);
    let mut out = Vec::new();
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Docker,
        &mut out,
    )
    .unwrap();

    let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
    let blob = |d: &berth_reference::Digest| format!("blobs/sha256/{}", d.hex());
    let img = &built.image;
    assert_eq!(
        names,
        vec![
            "blobs/".to_string(),
            "blobs/sha256/".to_string(),
            blob(&img.manifest_digest),
            blob(&img.config_digest),
            blob(&img.layers[0].digest),
            blob(&img.layers[1].digest),
            "index.json".into(),
            "manifest.json".into(),
            "oci-layout".into(),
            "repositories".into(),
        ]
    );
    // Layers go out as stored: the gzip blob is byte-identical.
    assert_eq!(
        member(&out, &blob(&img.layers[0].digest)).unwrap(),
        src.read(&img.layers[0].digest).unwrap()
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&member(&out, "manifest.json").unwrap()).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": blob(&img.config_digest),
            "RepoTags": ["busybox:latest"],
            "Layers": [blob(&img.layers[0].digest), blob(&img.layers[1].digest)],
        }])
    );
    let repos: serde_json::Value =
        serde_json::from_slice(&member(&out, "repositories").unwrap()).unwrap();
    assert_eq!(
        repos,
        serde_json::json!({"busybox": {"latest": img.layers[1].digest.hex()}})
    );
    let index: serde_json::Value =
        serde_json::from_slice(&member(&out, "index.json").unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["manifests"][0]["digest"],
        img.manifest_digest.to_string()
    );
    assert_eq!(
        index["manifests"][0]["annotations"],
        serde_json::json!({
            "io.containerd.image.name": "docker.io/library/busybox:latest",
            "org.opencontainers.image.ref.name": "latest",
        })
    );
    assert_eq!(
        member(&out, "oci-layout").unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );

    // Oci format: only the layout.
    let mut oci = Vec::new();
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Oci,
        &mut oci,
    )
    .unwrap();
    let names: Vec<String> = entries(&oci).into_iter().map(|e| e.0).collect();
    assert!(names.contains(&"index.json".to_string()));
    assert!(names.contains(&"oci-layout".to_string()));
    assert!(!names.contains(&"manifest.json".to_string()));
    assert!(!names.contains(&"repositories".to_string()));

    // Reproducible metadata on every entry.
    let mut ar = tar::Archive::new(&out[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        let want = if h.entry_type().is_dir() {
            0o755
        } else {
            0o644
        };
        assert_eq!(h.mode().unwrap(), want);
    }
}

#[test]
fn shared_blobs_written_once_and_images_kept_apart() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let a = busybox(&src, &["busybox:latest"]);
    // Same base layer, a different top.
    let base = layer_tar(&[
        ("bin/sh", b"#!fake busybox\n" as &[u8]),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    ]);
    let top = layer_tar(&[("app", b"hello" as &[u8])]);
    let b = build_image(&src, &["app:2"], &[(base, true), (top, true)], true);
    assert_eq!(a.image.layers[0].digest, b.image.layers[0].digest);

    let mut out = Vec::new();
    save(
        &src,
        &[a.image.clone(), b.image.clone()],
        Format::Docker,
        &mut out,
    )
    .unwrap();
    let shared = format!("blobs/sha256/{}", a.image.layers[0].digest.hex());
    assert_eq!(entries(&out).iter().filter(|e| e.0 == shared).count(), 1);

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = store(dst_dir.path());
    let images = load(&dst, &out[..]).unwrap();
    assert_eq!(images.len(), 2);
    assert_same(&a, &images[0], &dst);
    assert_same(&b, &images[1], &dst);
    assert_eq!(refs(&images[1]), vec!["docker.io/library/app:2"]);
}

#[test]
fn missing_manifest_is_generated_and_untagged_images_saved_by_id() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let top = layer_tar(&[("x", b"x" as &[u8])]);
    let mut built = build_image(&src, &[], &[(top, false)], false);
    assert!(!src.exists(&built.image.manifest_digest));
    // Docker media types in the description are turned into OCI ones in the generated manifest.
    built.image.layers[0].media_type = "application/vnd.docker.image.rootfs.diff.tar".into();

    for format in [Format::Docker, Format::Oci] {
        let mut out = Vec::new();
        save(&src, std::slice::from_ref(&built.image), format, &mut out).unwrap();
        if format == Format::Docker {
            let manifest: serde_json::Value =
                serde_json::from_slice(&member(&out, "manifest.json").unwrap()).unwrap();
            assert_eq!(manifest[0]["RepoTags"], serde_json::Value::Null);
            let repos = member(&out, "repositories").unwrap();
            assert_eq!(repos, b"{}");
        }
        let dst_dir = tempfile::tempdir().unwrap();
        let dst = store(dst_dir.path());
        let images = load(&dst, &out[..]).unwrap();
        assert_eq!(images.len(), 1);
        assert!(images[0].refs.is_empty());
        assert_eq!(images[0].config_digest, built.image.config_digest);
        assert_eq!(images[0].layers[0].digest, built.image.layers[0].digest);
        let (md, mt) = images[0].manifest.clone().unwrap();
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
        let m: serde_json::Value = serde_json::from_slice(&dst.read(&md).unwrap()).unwrap();
        assert_eq!(m["config"]["digest"], built.image.config_digest.to_string());
        assert_eq!(m["config"]["size"], built.config.len());
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE_OCI_LAYER);
    }
}

#[test]
fn gzipped_archive_loads() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let built = busybox(&src, &["busybox:latest"]);
    let mut out = Vec::new();
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Docker,
        &mut out,
    )
    .unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = store(dst_dir.path());
    let images = load(&dst, &gzip(&out)[..]).unwrap();
    assert_same(&built, &images[0], &dst);
}

#[test]
fn corrupted_or_missing_blobs_fail_the_save() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let built = busybox(&src, &["busybox:latest"]);
    let layer = &built.image.layers[1].digest;
    let mut bytes = src.read(layer).unwrap();
    bytes[600] ^= 1;
    std::fs::write(src.blob_path(layer), &bytes).unwrap();
    let err = save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Docker,
        std::io::sink(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(&layer.to_string()), "{err}");

    src.delete(layer).unwrap();
    let err = save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Oci,
        std::io::sink(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn layers_are_streamed_not_buffered() {
    // A layer spanning many copy-buffer fills, with a size that is not a multiple of the
    // buffer or of the tar block; the point is the chunked copy and padding, not memory use.
    let src_dir = tempfile::tempdir().unwrap();
    let src = store(src_dir.path());
    let mut data = vec![0u8; (8 << 20) + 123];
    let mut x: u32 = 12345;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 24) as u8;
    }
    let big = layer_tar(&[("big", &data[..])]);
    drop(data);
    let built = build_image(&src, &["big:1"], &[(big, false)], true);
    let path = src_dir.path().join("out.tar");
    let f = std::fs::File::create(&path).unwrap();
    save(&src, std::slice::from_ref(&built.image), Format::Docker, f).unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = store(dst_dir.path());
    let images = load(&dst, std::fs::File::open(&path).unwrap()).unwrap();
    assert_same(&built, &images[0], &dst);
}
