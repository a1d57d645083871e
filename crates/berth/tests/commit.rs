//! `commit`: a container's changes (from its overlay upper directory) become a new image,
//! through `berth` and the docker CLI; the image runs, pushes and pulls like any other.

mod common;

use berth_testkit::TestRegistry;
use common::{ok, Daemon};

#[test]
fn commit_keeps_changes_deletions_and_settings() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "--name",
            "maker",
            "-e",
            "FROM_RUN=1",
            "busybox",
            "sh",
            "-c",
            "echo made > /made.txt; rm /etc/group; mkdir -p /data/sub; echo x > /data/sub/f",
        ]),
        "run",
    );
    let out = d.berth(&[
        "commit",
        "-m",
        "first commit",
        "-a",
        "Berth Tester <t@example.com>",
        "-c",
        r#"CMD ["cat", "/made.txt"]"#,
        "maker",
        "made:1",
    ]);
    ok(&out, "commit");
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out:?}");

    let run = d.berth(&["run", "--rm", "made:1"]);
    assert_eq!(run.stdout, "made\n", "CMD from -c: {run:?}");
    let gone = d.berth(&["run", "--rm", "made:1", "ls", "/etc/group"]);
    assert_ne!(gone.code, 0, "the deletion is part of the layer: {gone:?}");
    let data = d.berth(&["run", "--rm", "made:1", "cat", "/data/sub/f"]);
    assert_eq!(data.stdout, "x\n", "{data:?}");
    let env = d.berth(&["run", "--rm", "made:1", "sh", "-c", "echo $FROM_RUN"]);
    assert_eq!(env.stdout, "1\n", "the container's env is kept: {env:?}");

    let meta = d.berth(&[
        "inspect",
        "-f",
        "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}",
        "made:1",
    ]);
    assert_eq!(
        meta.stdout.trim(),
        "Berth Tester <t@example.com>|first commit|2",
        "{meta:?}"
    );
    let history = d.berth(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "made:1",
    ]);
    let top = history.stdout.lines().next().unwrap_or_default();
    assert!(
        top.starts_with("sh -c echo made") && top.ends_with("|first commit"),
        "{history:?}"
    );

    // The docker CLI commits through berthd too.
    let out = d.docker(&["commit", "maker", "made:2"]);
    ok(&out, "docker commit");
    let run = d.docker(&["run", "--rm", "made:2", "cat", "/made.txt"]);
    assert_eq!(run.stdout, "made\n", "{run:?}");

    // No changes: no new layer, only history.
    ok(
        &d.berth(&["run", "--name", "idle", "busybox", "true"]),
        "run true",
    );
    ok(
        &d.berth(&["commit", "idle", "same:1"]),
        "commit without changes",
    );
    let layers = d.berth(&["inspect", "-f", "{{len .RootFS.Layers}}", "same:1"]);
    assert_eq!(layers.stdout.trim(), "1", "{layers:?}");

    let out = d.berth(&["commit", "no-such-container", "x:1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("No such container"), "{out:?}");
}

#[test]
fn committed_images_push_pull_and_save() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "echo shipped > /s",
        ]),
        "run",
    );
    let name = format!("{}/me/committed:1", reg.host());
    ok(&d.berth(&["commit", "c1", &name]), "commit");
    let out = d.berth(&["push", &name]);
    ok(&out, "push");
    assert_eq!(out.stdout.matches("Pushed").count(), 2, "{out:?}");

    let d2 = Daemon::start();
    ok(&d2.berth(&["pull", &name]), "pull");
    let run = d2.berth(&["run", "--rm", &name, "cat", "/s"]);
    assert_eq!(run.stdout, "shipped\n", "{run:?}");

    // The new layer is gzip, made once at commit and sent as is.
    let manifest = d2.berth(&["inspect", "-f", "{{json .RootFS.Layers}}", &name]);
    assert!(manifest.stdout.contains("sha256:"), "{manifest:?}");
    let file = d.root.path().join("c.tar");
    let file = file.to_str().expect("path");
    ok(&d.berth(&["save", "-o", file, &name]), "save");
    let d3 = Daemon::start();
    ok(&d3.berth(&["load", "-i", file]), "load");
    assert_eq!(
        d3.berth(&["run", "--rm", &name, "cat", "/s"]).stdout,
        "shipped\n"
    );
}
