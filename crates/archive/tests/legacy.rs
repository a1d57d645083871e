//! Archives in dockerd 20.10's `docker save` layout, built by hand: per-layer directories with
//! VERSION/json/layer.tar, shared layers as symlinks, configs at the top, manifest.json last.
#![allow(clippy::unwrap_used)]

mod common;

use berth_archive::{load, MEDIA_TYPE_OCI_LAYER};
use berth_reference::{Digest, Reference};
use common::*;

fn dir(b: &mut tar::Builder<Vec<u8>>, name: &str) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_cksum();
    b.append_data(&mut h, name, &[][..]).unwrap();
}

fn config(diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// A v1 layer directory: VERSION, json and the layer itself (or a link to another's).
fn layer_dir(b: &mut tar::Builder<Vec<u8>>, id: &str, layer: Option<&[u8]>, link: Option<&str>) {
    dir(b, &format!("{id}/"));
    append_file(b, &format!("{id}/VERSION"), b"1.0");
    append_file(
        b,
        &format!("{id}/json"),
        format!(r#"{{"id":"{id}","created":"1970-01-01T00:00:00Z"}}"#).as_bytes(),
    );
    match (layer, link) {
        (Some(data), _) => append_file(b, &format!("{id}/layer.tar"), data),
        (None, Some(target)) => raw_entry(
            b,
            &format!("{id}/layer.tar"),
            tar::EntryType::Symlink,
            Some(target),
            b"",
        ),
        (None, None) => unreachable!(),
    }
}

#[test]
fn dockerd_20_10_layout_with_symlinked_layers() {
    let base = layer_tar(&[("bin/sh", b"#!fake\n" as &[u8])]);
    let top = layer_tar(&[("etc/hostname", b"berth\n" as &[u8])]);
    let (base_id, top_id) = (Digest::sha256_of(&base), Digest::sha256_of(&top));
    let cfg1 = config(&[&base_id, &top_id]);
    let cfg2 = config(&[&base_id]);
    let (c1, c2) = (Digest::sha256_of(&cfg1), Digest::sha256_of(&cfg2));
    let (v1a, v1b, v1c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));

    let mut b = tar::Builder::new(Vec::new());
    layer_dir(&mut b, &v1a, Some(&base), None);
    layer_dir(&mut b, &v1b, Some(&top), None);
    // The second image's only layer is the first image's base, saved under another v1 id.
    layer_dir(&mut b, &v1c, None, Some(&format!("../{v1a}/layer.tar")));
    append_file(&mut b, &format!("{}.json", c1.hex()), &cfg1);
    append_file(&mut b, &format!("{}.json", c2.hex()), &cfg2);
    let manifest = serde_json::json!([
        {"Config": format!("{}.json", c1.hex()), "RepoTags": ["busybox:latest"],
         "Layers": [format!("{v1a}/layer.tar"), format!("{v1b}/layer.tar")]},
        {"Config": format!("{}.json", c2.hex()), "RepoTags": ["other:1", "localhost:5000/x/y:2"],
         "Layers": [format!("{v1c}/layer.tar")]},
    ]);
    append_file(
        &mut b,
        "repositories",
        format!(r#"{{"busybox":{{"latest":"{v1b}"}},"other":{{"1":"{v1c}"}}}}"#).as_bytes(),
    );
    append_file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let archive = b.into_inner().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let images = load(&st, &archive[..]).unwrap();
    assert_eq!(images.len(), 2);

    let names =
        |i: usize| -> Vec<String> { images[i].refs.iter().map(Reference::to_string).collect() };
    assert_eq!(images[0].config_digest, c1);
    assert_eq!(names(0), vec!["docker.io/library/busybox:latest"]);
    let digests: Vec<_> = images[0].layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(digests, vec![base_id.clone(), top_id.clone()]);
    assert!(images[0]
        .layers
        .iter()
        .all(|l| l.media_type == MEDIA_TYPE_OCI_LAYER));
    assert_eq!(images[0].layers[1].diff_id, top_id);
    assert_eq!(images[0].layers[1].size, top.len() as u64);
    assert!(images[0].manifest.is_none());

    assert_eq!(images[1].config_digest, c2);
    assert_eq!(
        names(1),
        vec!["docker.io/library/other:1", "localhost:5000/x/y:2"]
    );
    assert_eq!(images[1].layers[0].digest, base_id);

    assert_eq!(st.read(&base_id).unwrap(), base);
    assert_eq!(st.read(&top_id).unwrap(), top);
    assert_eq!(st.read(&c1).unwrap(), cfg1);
    // The per-layer json/VERSION metadata was not stored.
    assert!(!st.exists(&Digest::sha256_of(b"1.0")));
}

#[test]
fn hard_links_and_dot_slash_names() {
    // Some tar writers prefix "./" and dedupe identical files with hard links.
    let layer = layer_tar(&[("f", b"x" as &[u8])]);
    let id = Digest::sha256_of(&layer);
    let cfg = config(&[&id, &id]);
    let c = Digest::sha256_of(&cfg);
    let mut b = tar::Builder::new(Vec::new());
    dir(&mut b, "./");
    append_file(&mut b, "./one/layer.tar", &layer);
    raw_entry(
        &mut b,
        "./two/layer.tar",
        tar::EntryType::Link,
        Some("./one/layer.tar"),
        b"",
    );
    append_file(&mut b, &format!("./{}.json", c.hex()), &cfg);
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", c.hex()), "RepoTags": null,
        "Layers": ["one/layer.tar", "./two/layer.tar"],
    }]);
    append_file(
        &mut b,
        "./manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let archive = b.into_inner().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path());
    let images = load(&st, &archive[..]).unwrap();
    assert_eq!(images.len(), 1);
    assert!(images[0].refs.is_empty());
    assert_eq!(images[0].layers.len(), 2);
    assert!(images[0].layers.iter().all(|l| l.digest == id));
}
