//! Archives that are broken or built to attack: refused with clear, InvalidArgument errors,
//! and nothing is ever written outside the content store.
#![allow(clippy::unwrap_used)]

mod common;

use berth_archive::{load, ArchiveError};
use berth_reference::Digest;
use berth_store::ErrorKind;
use common::*;

fn load_err(archive: &[u8]) -> ArchiveError {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let err = load(&st, archive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    err
}

fn with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn assert_contains(err: &ArchiveError, want: &str) {
    assert!(err.to_string().contains(want), "{err:?} lacks {want:?}");
}

#[test]
fn escaping_entry_names_are_refused() {
    let e = load_err(&with(|b| append_file(b, "../x", b"evil")));
    assert_contains(&e, r#"invalid archive entry "../x""#);
    assert_contains(&e, "escapes");
    let e = load_err(&with(|b| append_file(b, "/etc/x", b"evil")));
    assert_contains(&e, r#"invalid archive entry "/etc/x": absolute path"#);
    let e = load_err(&with(|b| append_file(b, "a/../../x", b"evil")));
    assert_contains(&e, "escapes");
}

#[test]
fn escaping_links_are_refused() {
    let e = load_err(&with(|b| {
        raw_entry(
            b,
            "aaa/layer.tar",
            tar::EntryType::Symlink,
            Some("../../etc/passwd"),
            b"",
        )
    }));
    assert_contains(&e, "outside the archive");
    let e = load_err(&with(|b| {
        raw_entry(
            b,
            "aaa/layer.tar",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            b"",
        )
    }));
    assert_contains(&e, "absolute symlink target");
    let e = load_err(&with(|b| {
        raw_entry(
            b,
            "aaa/layer.tar",
            tar::EntryType::Link,
            Some("../etc/passwd"),
            b"",
        )
    }));
    assert_contains(&e, "invalid link");
}

#[test]
fn escaping_manifest_paths_are_refused() {
    let layer = layer_tar(&[("f", b"x" as &[u8])]);
    let cfg = serde_json::to_vec(&serde_json::json!({"rootfs": {"type": "layers",
        "diff_ids": [Digest::sha256_of(&layer).to_string()]}}))
    .unwrap();
    for (config, layer_path) in [
        ("c.json", "../../../etc/passwd"),
        ("/etc/passwd", "l.tar"),
        ("c.json", "/etc/shadow"),
    ] {
        let archive = with(|b| {
            append_file(b, "c.json", &cfg);
            append_file(b, "l.tar", &layer);
            let m = serde_json::json!([{"Config": config, "RepoTags": [], "Layers": [layer_path]}]);
            append_file(b, "manifest.json", &serde_json::to_vec(&m).unwrap());
        });
        let e = load_err(&archive);
        assert_contains(&e, "manifest.json:");
    }
}

#[test]
fn garbage_and_empty_inputs() {
    let e = load_err(&[b'x'; 1024]);
    assert_contains(&e, "invalid tar header");
    let e = load_err(&[0u8; 1024]);
    assert_contains(&e, "neither manifest.json nor index.json");
    let e = load_err(b"");
    assert_contains(&e, "neither manifest.json nor index.json");
    let e = load_err(&with(|b| append_file(b, "manifest.json", b"{not json")));
    assert_contains(&e, "manifest.json: ");
    // A truncated archive: the header promises more than the stream has.
    let full = with(|b| append_file(b, "big", &[1u8; 5000]));
    let e = load_err(&full[..2048]);
    assert_contains(&e, "big");
}

#[test]
fn inconsistent_images_are_refused() {
    let layer = layer_tar(&[("f", b"x" as &[u8])]);
    let good = Digest::sha256_of(&layer);
    let other = Digest::sha256_of(b"other");
    let archive = |diff_ids: Vec<String>, layers: Vec<&str>| {
        with(|b| {
            let cfg = serde_json::to_vec(
                &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}}),
            )
            .unwrap();
            append_file(b, "c.json", &cfg);
            append_file(b, "l.tar", &layer);
            let m =
                serde_json::json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": layers}]);
            append_file(b, "manifest.json", &serde_json::to_vec(&m).unwrap());
        })
    };
    let e = load_err(&archive(
        vec![good.to_string(), good.to_string()],
        vec!["l.tar"],
    ));
    assert_contains(&e, "layers length mismatch");
    let e = load_err(&archive(vec![other.to_string()], vec!["l.tar"]));
    assert_contains(&e, "diff id");
    let e = load_err(&archive(vec![good.to_string()], vec!["missing/layer.tar"]));
    assert_contains(&e, "open missing/layer.tar: no such file in archive");
    // The happy version of the same archive loads.
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    load(&st, &archive(vec![good.to_string()], vec!["l.tar"])[..]).unwrap();
}

#[test]
fn blobs_must_match_their_names() {
    let claimed = Digest::sha256_of(b"what the name says");
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let archive = with(|b| {
        append_file(
            b,
            &format!("blobs/sha256/{}", claimed.hex()),
            b"something else",
        )
    });
    let err = load(&st, &archive[..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("content has digest"), "{err}");
    assert!(!st.exists(&claimed));
}

#[test]
fn bad_tags_and_oci_descriptors() {
    let layer = layer_tar(&[("f", b"x" as &[u8])]);
    let cfg = serde_json::to_vec(&serde_json::json!({"rootfs": {"type": "layers",
        "diff_ids": [Digest::sha256_of(&layer).to_string()]}}))
    .unwrap();
    let e = load_err(&with(|b| {
        append_file(b, "c.json", &cfg);
        append_file(b, "l.tar", &layer);
        let m =
            serde_json::json!([{"Config": "c.json", "RepoTags": ["Bad:Tag"], "Layers": ["l.tar"]}]);
        append_file(b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    }));
    assert_contains(&e, "invalid tag \"Bad:Tag\"");

    // OCI: a descriptor whose size lies about the blob.
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256_of(&cfg).to_string(), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": Digest::sha256_of(&layer).to_string(), "size": 1}],
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let e = load_err(&with(|b| {
        for blob in [&cfg, &layer, &manifest] {
            append_file(
                b,
                &format!("blobs/sha256/{}", Digest::sha256_of(blob).hex()),
                blob,
            );
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": manifest.len()}]});
        append_file(b, "index.json", &serde_json::to_vec(&index).unwrap());
    }));
    assert_contains(&e, "manifest says 1");
}
