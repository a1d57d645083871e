//! Volumes and binds with both CLIs: `-v` binds (rw and ro), named volumes created on first
//! use with copy-up, anonymous volumes (`-v /path`, image VOLUMEs) removed with `rm -v` and
//! `--rm`, `volume create/ls/inspect/rm/prune`, data surviving container removal and a daemon
//! `kill -9`.

mod common;

use common::{ok, Daemon};

#[test]
fn binds_read_write_and_read_only() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let host = d.root.path().join("hostdir");
    std::fs::create_dir_all(&host).expect("host dir");
    std::fs::write(host.join("in.txt"), "from host\n").expect("write");
    let bind = format!("{}:/mnt", host.display());
    let out = d.berth(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /mnt/in.txt; echo back > /mnt/out.txt",
    ]);
    assert_eq!(out.stdout, "from host\n", "{out:?}");
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).expect("written through the bind"),
        "back\n"
    );
    let ro = format!("{}:/mnt:ro", host.display());
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "echo x > /mnt/nope",
    ]);
    assert_ne!(out.code, 0, "read-only bind: {out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    // A missing host directory is created for -v, as Docker does.
    let created = d.root.path().join("made/by/run");
    let spec = format!("{}:/m", created.display());
    ok(
        &d.berth(&["run", "--rm", "-v", &spec, "busybox", "true"]),
        "missing source",
    );
    assert!(created.is_dir());

    ok(
        &d.berth(&["create", "--name", "mnt1", "-v", &ro, "busybox"]),
        "create with bind",
    );
    let mounts = d.docker(&["inspect", "-f", "{{json .Mounts}}", "mnt1"]);
    assert!(
        mounts.stdout.contains(r#""Type":"bind""#)
            && mounts.stdout.contains(r#""Destination":"/mnt""#)
            && mounts.stdout.contains(r#""RW":false"#),
        "{mounts:?}"
    );
    let bad = d.berth(&["run", "--rm", "-v", "bad name:/x", "busybox", "true"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(
        bad.stderr
            .contains("invalid characters for a local volume name"),
        "{bad:?}"
    );
}

#[test]
fn named_volumes_persist_copy_up_and_refuse_removal_in_use() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    // /etc has content in the image: a new volume there starts with it (copy-up).
    let out = d.berth(&[
        "run",
        "--rm",
        "-v",
        "etcdata:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.stdout.starts_with("root:x:0:0"), "copy-up: {out:?}");
    ok(
        &d.berth(&[
            "run",
            "--name",
            "writer",
            "-v",
            "appdata:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f",
        ]),
        "write",
    );
    let busy = d.berth(&["volume", "rm", "appdata"]);
    assert_eq!(busy.code, 1, "{busy:?}");
    assert!(busy.stderr.contains("volume is in use"), "{busy:?}");
    ok(&d.berth(&["rm", "writer"]), "rm");
    // Survives the container, and a daemon killed without warning.
    d.kill9();
    d.spawn();
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "appdata:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out.stdout, "kept\n", "{out:?}");

    let ls = d.berth(&["volume", "ls"]);
    assert!(ls.stdout.starts_with("DRIVER    VOLUME NAME\n"), "{ls:?}");
    assert!(ls.stdout.contains("local     appdata\n"), "{ls:?}");
    let inspect = d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Driver}} {{.Name}}",
        "appdata",
    ]);
    assert_eq!(inspect.stdout.trim(), "local appdata", "{inspect:?}");
    ok(
        &d.berth(&["volume", "rm", "appdata", "etcdata"]),
        "rm volumes",
    );
    let gone = d.berth(&["volume", "inspect", "appdata"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.stderr.contains("no such volume"), "{gone:?}");
}

#[test]
fn anonymous_volumes_and_volume_commands() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["volume", "create", "--label", "team=a", "labelled"]),
        "volume create",
    );
    ok(
        &d.docker(&["volume", "create", "plain"]),
        "docker volume create",
    );
    let filtered = d.berth(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(filtered.stdout, "labelled\n", "{filtered:?}");

    // -v /path makes an anonymous (64 hex) volume; rm -v takes it along.
    ok(
        &d.berth(&["create", "--name", "anon", "-v", "/scratch", "busybox"]),
        "create",
    );
    let name = d.berth(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"]);
    let name = name.stdout.trim().to_string();
    assert_eq!(name.len(), 64, "{name}");
    ok(&d.berth(&["rm", "-v", "anon"]), "rm -v");
    assert_ne!(
        d.berth(&["volume", "inspect", &name]).code,
        0,
        "anonymous volume removed"
    );
    // --rm removes its anonymous volumes too.
    let before = d.berth(&["volume", "ls", "-q"]).stdout.lines().count();
    ok(
        &d.berth(&["run", "--rm", "-v", "/tmpdata", "busybox", "true"]),
        "run --rm",
    );
    assert!(common::eventually(5, || d
        .berth(&["volume", "ls", "-q"])
        .stdout
        .lines()
        .count()
        == before));

    // Prune removes unused anonymous volumes only, unless --all.
    ok(
        &d.berth(&["create", "--name", "keeper", "-v", "/kept", "busybox"]),
        "create",
    );
    ok(&d.berth(&["rm", "keeper"]), "rm without -v");
    let out = d.berth(&["volume", "prune", "-f"]);
    ok(&out, "prune");
    assert!(out.stdout.contains("Deleted Volumes:"), "{out:?}");
    let left = d.berth(&["volume", "ls", "-q"]);
    let mut left: Vec<&str> = left.stdout.lines().collect();
    left.sort();
    assert_eq!(left, vec!["labelled", "plain"], "named volumes stay");
    ok(
        &d.docker(&["volume", "prune", "-f", "--all"]),
        "prune --all",
    );
    assert!(d.berth(&["volume", "ls", "-q"]).stdout.trim().is_empty());
}

#[test]
fn mount_flag_tmpfs_volumes_from_and_masking() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let app = d.root.path().join("app");
    std::fs::create_dir_all(app.join("node_modules")).expect("mkdir");
    std::fs::write(app.join("index.js"), "code\n").expect("write");
    std::fs::write(app.join("node_modules/host-only"), "x\n").expect("write");

    // --mount type=bind wants the source to exist (unlike -v).
    let missing = d.root.path().join("nope");
    let spec = format!("type=bind,source={},target=/x", missing.display());
    let out = d.berth(&["run", "--rm", "--mount", &spec, "busybox", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("bind source path does not exist"),
        "{out:?}"
    );
    assert!(!missing.exists());

    // An anonymous volume over a subdirectory of a bind masks the host's copy.
    let bind = format!("type=bind,source={},target=/app,readonly", app.display());
    let out = d.berth(&[
        "run",
        "--rm",
        "--mount",
        &bind,
        "-v",
        "/app/node_modules",
        "busybox",
        "sh",
        "-c",
        "cat /app/index.js; ls /app/node_modules | wc -l",
    ]);
    assert_eq!(out.stdout, "code\n0\n", "{out:?}");

    // tmpfs from both flags, with options.
    let out = d.docker(&[
        "run",
        "--rm",
        "--tmpfs",
        "/run:size=1m",
        "--mount",
        "type=tmpfs,target=/cache,tmpfs-size=2m",
        "busybox",
        "sh",
        "-c",
        "grep -E ' /(run|cache) ' /proc/mounts | cut -d' ' -f2,3 | sort",
    ]);
    assert_eq!(out.stdout, "/cache tmpfs\n/run tmpfs\n", "{out:?}");

    // --mount type=volume by name, then --volumes-from shares it read-only.
    ok(
        &d.berth(&[
            "run",
            "--name",
            "owner",
            "--mount",
            "type=volume,source=shared,target=/shared",
            "busybox",
            "sh",
            "-c",
            "echo hi > /shared/f",
        ]),
        "owner",
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "owner:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f; echo x > /shared/g",
    ]);
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert_ne!(out.code, 0, "read-only through --volumes-from: {out:?}");
}
