//! `cp` through the archive API with both CLIs: files and directories both ways, running and
//! stopped containers, and symlinks in the container that point at the host's files.

mod common;

use common::{ok, Daemon};

#[test]
fn copy_both_ways_on_running_and_stopped_containers() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "60"]),
        "run -d",
    );
    let host = d.root.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).expect("mkdir");
    std::fs::write(host.join("tree/sub/f"), "deep\n").expect("write");
    std::fs::write(host.join("one.txt"), "one\n").expect("write");

    // Host → container: a file into a directory, a file under a new name, a tree.
    let one = host.join("one.txt");
    ok(
        &d.berth(&["cp", one.to_str().expect("p"), "box:/tmp/"]),
        "file into dir",
    );
    ok(
        &d.docker(&["cp", one.to_str().expect("p"), "box:/tmp/renamed"]),
        "file renamed",
    );
    // A directory to a path that does not exist becomes that path (docker's rule).
    ok(
        &d.berth(&["cp", host.join("tree").to_str().expect("p"), "box:/opt"]),
        "tree",
    );
    let out = d.berth(&["diff", "box"]);
    for want in ["A /tmp/one.txt", "A /tmp/renamed", "A /opt/sub/f"] {
        assert!(out.stdout.lines().any(|l| l == want), "{want}: {out:?}");
    }

    // Container → host, from the running container and again once it is stopped.
    let back = d.root.path().join("back");
    std::fs::create_dir_all(&back).expect("mkdir");
    ok(
        &d.berth(&["cp", "box:/etc/passwd", back.to_str().expect("p")]),
        "file out",
    );
    assert!(std::fs::read_to_string(back.join("passwd"))
        .expect("passwd")
        .starts_with("root:"));
    ok(&d.berth(&["stop", "-t", "0", "box"]), "stop");
    let tree = back.join("tree-copy");
    ok(
        &d.docker(&["cp", "box:/opt", tree.to_str().expect("p")]),
        "tree out, stopped",
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("sub/f")).expect("f"),
        "deep\n"
    );

    let missing = d.berth(&["cp", "box:/nope", back.to_str().expect("p")]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing.stderr.contains("Could not find the file /nope"),
        "{missing:?}"
    );
    assert!(
        d.mounts().iter().all(|m| !m.contains("views/cp-")),
        "{:?}",
        d.mounts()
    );
}

#[test]
fn container_symlinks_cannot_reach_the_host() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    // A sentinel on the host, and links to it (and to /) inside the container.
    let sentinel = d.root.path().join("sentinel");
    std::fs::create_dir_all(&sentinel).expect("mkdir");
    std::fs::write(sentinel.join("secret"), "host secret\n").expect("write");
    let s = sentinel.display().to_string();
    ok(
        &d.berth(&[
            "run",
            "--name",
            "evil",
            "busybox",
            "sh",
            "-c",
            &format!("ln -s {s}/secret /leak && ln -s / /hostroot && ln -s {s} /dirlink"),
        ]),
        "plant links",
    );
    let out_dir = d.root.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    // Reading through the link resolves inside the container, where there is no such file.
    let r = d.berth(&["cp", "evil:/dirlink/secret", out_dir.to_str().expect("p")]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!out_dir.join("secret").exists());
    // Writing through /hostroot or /dirlink lands inside the container, never on the host.
    let payload = d.root.path().join("payload");
    std::fs::write(&payload, "pwned\n").expect("write");
    let _ = d.berth(&[
        "cp",
        payload.to_str().expect("p"),
        &format!("evil:/hostroot{s}/"),
    ]);
    let _ = d.docker(&["cp", payload.to_str().expect("p"), "evil:/dirlink/"]);
    assert!(
        !sentinel.join("payload").exists(),
        "nothing written on the host"
    );
    assert_eq!(
        std::fs::read_to_string(sentinel.join("secret")).expect("sentinel"),
        "host secret\n"
    );
}
