//! Against a real Docker daemon, only when one is reachable and BERTH_TEST_DOCKER=1 (the test
//! loads and removes an image `berth-archive-test:latest` there). Skipped otherwise: the
//! daemon is never installed or started for this.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use berth_archive::{load, save, Format};
use common::*;

fn docker(args: &[&str]) -> Option<std::process::Output> {
    Command::new("docker").args(args).output().ok()
}

fn daemon_available() -> bool {
    if std::env::var_os("BERTH_TEST_DOCKER").is_none() {
        eprintln!("skipping: set BERTH_TEST_DOCKER=1 to test against a Docker daemon");
        return false;
    }
    match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Some(o) if o.status.success() => true,
        _ => {
            eprintln!("skipping: no Docker daemon reachable");
            false
        }
    }
}

#[test]
fn docker_loads_our_archive_and_we_load_docker_save() {
    if !daemon_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = store(&tmp.path().join("src"));
    let built = busybox(&src, &["berth-archive-test:latest"]);
    let ours = tmp.path().join("ours.tar");
    save(
        &src,
        std::slice::from_ref(&built.image),
        Format::Docker,
        std::fs::File::create(&ours).unwrap(),
    )
    .unwrap();
    let out = docker(&["load", "-i", ours.to_str().unwrap()]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("berth-archive-test:latest"));

    let theirs = tmp.path().join("theirs.tar");
    let out = docker(&[
        "save",
        "-o",
        theirs.to_str().unwrap(),
        "berth-archive-test:latest",
    ])
    .unwrap();
    let _ = docker(&["rmi", "berth-archive-test:latest"]);
    assert!(out.status.success());
    let dst = store(&tmp.path().join("dst"));
    let images = load(&dst, std::fs::File::open(&theirs).unwrap()).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].config_digest, built.image.config_digest);
    let diff_ids: Vec<_> = images[0].layers.iter().map(|l| &l.diff_id).collect();
    let want: Vec<_> = built.image.layers.iter().map(|l| &l.diff_id).collect();
    assert_eq!(diff_ids, want);
}
