//! The layer store on a real filesystem (needs root for ownership in layers).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;

use berth_reference::Digest;
use berth_snapshot::{chain_id, ErrorKind, LayerError, LayerStore, UnpackOptions};
use common::{scratch, tar, Ent};

fn opts() -> UnpackOptions {
    UnpackOptions::image_layer()
}

fn staging_is_empty(root: &Path) -> bool {
    fs::read_dir(root.join("tmp")).unwrap().next().is_none()
}

#[test]
fn chain_ids_follow_the_oci_definition() {
    let a = Digest::sha256_of(b"a");
    let b = Digest::sha256_of(b"b");
    assert_eq!(chain_id(None, &a), a);
    assert_eq!(
        chain_id(Some(&a), &b),
        Digest::sha256_of(format!("{a} {b}").as_bytes())
    );
}

#[test]
fn creates_gets_lists_and_stacks_layers() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let base_tar = tar(&[Ent::file("etc/os-release", "berth"), Ent::dir("usr/")]);
    let top_tar = tar(&[Ent::file("usr/bin/app", "binary"), Ent::file(".wh.etc", "")]);

    let base = store.create(None, base_tar.as_slice(), &opts()).unwrap();
    assert_eq!(base.diff_id, Digest::sha256_of(&base_tar));
    assert_eq!(base.chain_id, base.diff_id);
    assert_eq!(base.parent, None);
    assert_eq!(base.size, 5);
    assert_eq!(
        fs::read_to_string(base.diff_dir.join("etc/os-release")).unwrap(),
        "berth"
    );

    let top = store
        .create(Some(&base.chain_id), top_tar.as_slice(), &opts())
        .unwrap();
    assert_eq!(top.diff_id, Digest::sha256_of(&top_tar));
    assert_eq!(top.chain_id, chain_id(Some(&base.chain_id), &top.diff_id));
    assert_eq!(top.parent.as_ref(), Some(&base.chain_id));

    assert_eq!(store.get(&top.chain_id).unwrap().as_ref(), Some(&top));
    assert_eq!(store.get(&Digest::sha256_of(b"nope")).unwrap(), None);
    let mut want = vec![base.clone(), top.clone()];
    want.sort_by_key(|l| l.chain_id.to_string());
    assert_eq!(store.list().unwrap(), want);
    assert_eq!(
        store.lowers(&top.chain_id).unwrap(),
        vec![top.diff_dir.clone(), base.diff_dir.clone()]
    );

    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.path().join(top.chain_id.hex()).join("layer.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        record,
        serde_json::json!({
            "chain_id": top.chain_id.to_string(),
            "diff_id": top.diff_id.to_string(),
            "parent": base.chain_id.to_string(),
            "size": 6,
        })
    );

    // The same layer again is the layer already stored.
    let again = store.create(None, base_tar.as_slice(), &opts()).unwrap();
    assert_eq!(again, base);
    assert_eq!(store.list().unwrap().len(), 2);
    assert!(staging_is_empty(dir.path()));

    // A reopened store sees the same layers.
    let reopened = LayerStore::open(dir.path()).unwrap();
    assert_eq!(reopened.list().unwrap(), want);
}

#[test]
fn refuses_a_missing_parent() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let missing = Digest::sha256_of(b"missing");
    let err = store
        .create(Some(&missing), tar(&[]).as_slice(), &opts())
        .unwrap_err();
    assert!(matches!(err, LayerError::ParentNotFound(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        store.lowers(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.remove(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_diff_id_mismatch_stores_nothing() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let data = tar(&[Ent::file("f", "content")]);
    let wrong = Digest::sha256_of(b"something else");
    let err = store
        .create_with_diff_id(None, &wrong, data.as_slice(), &opts())
        .unwrap_err();
    assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(store.list().unwrap().is_empty());
    assert!(staging_is_empty(dir.path()));
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tmp"]);

    let right = Digest::sha256_of(&data);
    let layer = store
        .create_with_diff_id(None, &right, data.as_slice(), &opts())
        .unwrap();
    assert_eq!(layer.diff_id, right);
}

/// A reader that fails the test if anything reads it.
struct Untouchable;

impl Read for Untouchable {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        panic!("an existing layer must not read its tar again");
    }
}

#[test]
fn an_existing_layer_is_returned_without_reading_the_tar() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let data = tar(&[Ent::file("f", "content")]);
    let layer = store.create(None, data.as_slice(), &opts()).unwrap();
    let again = store
        .create_with_diff_id(None, &layer.diff_id, Untouchable, &opts())
        .unwrap();
    assert_eq!(again, layer);
}

#[test]
fn a_hostile_layer_stores_nothing() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let data = tar(&[Ent::file("ok", "x"), Ent::file("../escape", "x")]);
    let err = store.create(None, data.as_slice(), &opts()).unwrap_err();
    assert!(matches!(err, LayerError::Unpack(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(store.list().unwrap().is_empty());
    assert!(staging_is_empty(dir.path()));
}

#[test]
fn removes_top_down_only() {
    let dir = scratch();
    let store = LayerStore::open(dir.path()).unwrap();
    let base = store
        .create(None, tar(&[Ent::file("a", "a")]).as_slice(), &opts())
        .unwrap();
    let top = store
        .create(
            Some(&base.chain_id),
            tar(&[Ent::file("b", "b")]).as_slice(),
            &opts(),
        )
        .unwrap();

    let err = store.remove(&base.chain_id).unwrap_err();
    assert!(matches!(err, LayerError::InUse { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);

    store.remove(&top.chain_id).unwrap();
    assert_eq!(store.get(&top.chain_id).unwrap(), None);
    assert!(!top.diff_dir.exists());
    store.remove(&base.chain_id).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(staging_is_empty(dir.path()));
    assert_eq!(
        store.remove(&base.chain_id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn open_discards_crash_leftovers() {
    let dir = scratch();
    let leftover = dir.path().join("tmp/create-crashed/diff/usr");
    fs::create_dir_all(&leftover).unwrap();
    fs::write(leftover.join("f"), "partial").unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    assert!(staging_is_empty(dir.path()));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn concurrent_creates_of_one_layer_agree() {
    let dir = scratch();
    let store = Arc::new(LayerStore::open(dir.path()).unwrap());
    // Enough entries that both unpacks overlap and race for the rename.
    let entries: Vec<Ent> = (0..300)
        .map(|i| Ent::file(&format!("d{}/f{i}", i % 10), "payload"))
        .collect();
    let data = Arc::new(tar(&entries));
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                store.create(None, data.as_slice(), &opts()).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results[0], results[1]);
    assert_eq!(store.list().unwrap(), vec![results[0].clone()]);
    assert!(staging_is_empty(dir.path()));
    assert_eq!(
        fs::read_dir(results[0].diff_dir.join("d3"))
            .unwrap()
            .count(),
        30
    );
}
