//! Real overlayfs mounts of stored layers (needs root and overlayfs).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use berth_snapshot::{
    is_mounted, mount_overlay, unmount, ErrorKind, LayerStore, SnapshotError, Snapshots,
    UnpackOptions,
};
use common::{mount_count, mounts_under, scratch, tar, Ent, MountGuard};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_content() {
    let dir = scratch();
    let store = LayerStore::open(&dir.path().join("layers")).unwrap();
    let snapshots = Snapshots::open(&dir.path().join("snapshots")).unwrap();
    let opts = UnpackOptions::image_layer();
    let base = store
        .create(
            None,
            tar(&[
                Ent::file("a", "a"),
                Ent::file("b", "b"),
                Ent::file("d/x", "x"),
                Ent::file("d/y", "y"),
                Ent::file("keep/k", "k"),
            ])
            .as_slice(),
            &opts,
        )
        .unwrap();
    let top = store
        .create(
            Some(&base.chain_id),
            tar(&[
                Ent::file(".wh.a", ""),
                Ent::dir("d/"),
                Ent::file("d/.wh..wh..opq", ""),
                Ent::file("d/z", "z"),
            ])
            .as_slice(),
            &opts,
        )
        .unwrap();

    let paths = snapshots
        .prepare("c1", store.lowers(&top.chain_id).unwrap())
        .unwrap();
    let _guard = MountGuard(paths.merged.clone());
    let merged = snapshots.mount("c1").unwrap();
    assert_eq!(merged, paths.merged);
    assert!(is_mounted(&merged));

    assert_eq!(names(&merged), ["b", "d", "keep"]);
    assert_eq!(names(&merged.join("d")), ["z"]);
    assert_eq!(fs::read_to_string(merged.join("keep/k")).unwrap(), "k");

    // Writes land in upper; the layers stay untouched.
    fs::write(merged.join("new"), "n").unwrap();
    fs::remove_file(merged.join("b")).unwrap();
    assert_eq!(fs::read_to_string(paths.upper.join("new")).unwrap(), "n");
    assert!(base.diff_dir.join("b").exists());

    // Mounting again is a no-op, not a second overlay stacked on the first.
    snapshots.mount("c1").unwrap();
    assert_eq!(mount_count(&merged), 1);

    snapshots.unmount("c1").unwrap();
    assert!(!is_mounted(&merged));
    snapshots.unmount("c1").unwrap();
    assert_eq!(snapshots.list().unwrap(), ["c1"]);

    // Remounting shows the container's earlier changes.
    snapshots.mount("c1").unwrap();
    assert_eq!(names(&merged), ["d", "keep", "new"]);

    snapshots.remove("c1").unwrap();
    assert!(!paths.upper.exists());
    assert!(snapshots.list().unwrap().is_empty());
    assert!(mounts_under(dir.path()).is_empty());
    assert!(base.diff_dir.join("b").exists());
}

#[test]
fn a_snapshot_without_layers_gets_an_empty_lower() {
    let dir = scratch();
    let snapshots = Snapshots::open(dir.path()).unwrap();
    let paths = snapshots.prepare("scratch", Vec::new()).unwrap();
    let _guard = MountGuard(paths.merged.clone());
    let merged = snapshots.mount("scratch").unwrap();
    assert!(names(&merged).is_empty());
    fs::write(merged.join("f"), "f").unwrap();
    assert!(paths.upper.join("f").exists());
    snapshots.remove("scratch").unwrap();
    assert!(mounts_under(dir.path()).is_empty());
}

#[test]
fn many_lowers_fit_in_one_mount() {
    let dir = scratch();
    // Long paths, so the plain option string is well past a page.
    let base = dir
        .path()
        .join("a-rather-long-directory-name-to-push-the-option-string-over-a-page");
    let lowers: Vec<PathBuf> = (0..80)
        .map(|i| {
            let lower = base.join(format!("{i:064x}")).join("diff");
            fs::create_dir_all(&lower).unwrap();
            fs::write(lower.join(format!("f{i}")), i.to_string()).unwrap();
            lower
        })
        .collect();
    let joined: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(joined > 4096);
    let (upper, work, merged) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let _guard = MountGuard(merged.clone());
    mount_overlay(&lowers, &upper, &work, &merged).unwrap();
    assert_eq!(names(&merged).len(), 80);
    assert_eq!(fs::read_to_string(merged.join("f79")).unwrap(), "79");
    unmount(&merged).unwrap();
    assert!(!is_mounted(&merged));
}

#[test]
fn unmounting_what_is_not_mounted_is_fine() {
    let dir = scratch();
    unmount(dir.path()).unwrap();
    unmount(&dir.path().join("missing")).unwrap();
    assert!(!is_mounted(dir.path()));
    assert!(!is_mounted(&dir.path().join("missing")));
}

#[test]
fn snapshot_errors_have_kinds() {
    let dir = scratch();
    let snapshots = Snapshots::open(dir.path()).unwrap();
    snapshots.prepare("one", Vec::new()).unwrap();
    let err = snapshots.prepare("one", Vec::new()).unwrap_err();
    assert!(matches!(err, SnapshotError::Exists(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    for bad in ["", "../x", ".tmp", "a/b"] {
        let err = snapshots.prepare(bad, Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    for err in [
        snapshots.mount("two").unwrap_err(),
        snapshots.remove("two").unwrap_err(),
        snapshots.paths("two").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    assert_eq!(snapshots.lowers("one").unwrap(), Vec::<PathBuf>::new());
}

#[test]
fn open_discards_staging_leftovers() {
    let dir = scratch();
    let leftover = dir.path().join(".tmp/prepare-crashed/upper");
    fs::create_dir_all(&leftover).unwrap();
    let snapshots = Snapshots::open(dir.path()).unwrap();
    assert!(fs::read_dir(dir.path().join(".tmp"))
        .unwrap()
        .next()
        .is_none());
    assert!(snapshots.list().unwrap().is_empty());
}
