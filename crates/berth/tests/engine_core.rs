//! End-to-end tests of the engine core: a real daemon, real overlayfs, real namespaces and
//! cgroups, driven by `berth` and by the real docker CLI.

mod common;

use common::{eventually, Daemon};

#[test]
fn run_echo_hello_with_both_clis() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let out = d.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello\n"), "{out:?}");
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello\n"), "{out:?}");
    // --rm removed both containers.
    assert!(eventually(5, || d
        .berth(&["ps", "-aq"])
        .stdout
        .trim()
        .is_empty()));
    assert!(
        d.mounts().iter().all(|m| !m.contains("overlay")),
        "{:?}",
        d.mounts()
    );
}

#[test]
fn exit_codes_are_dockers() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    for (cli, args, want) in [
        (
            "berth",
            vec!["run", "--rm", "busybox", "sh", "-c", "exit 3"],
            3,
        ),
        (
            "docker",
            vec!["run", "--rm", "busybox", "sh", "-c", "exit 3"],
            3,
        ),
        (
            "berth",
            vec!["run", "--rm", "busybox", "nonexistent-cmd"],
            127,
        ),
        (
            "docker",
            vec!["run", "--rm", "busybox", "nonexistent-cmd"],
            127,
        ),
        ("berth", vec!["run", "--rm", "busybox", "/etc/passwd"], 126),
        ("docker", vec!["run", "--rm", "busybox", "/etc/passwd"], 126),
        ("berth", vec!["run", "--rm", "no-such-image"], 125),
    ] {
        let out = if cli == "berth" {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        assert_eq!(out.code, want, "{cli} {args:?}: {out:?}");
    }
    let out = d.berth(&["run", "--rm", "busybox", "nonexistent-cmd"]);
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "{out:?}"
    );
}

#[test]
fn detached_lifecycle_logs_stop_start_rm() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo err >&2; while true; do echo tick; sleep 0.2; done",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64);

    let ps = d.berth(&["ps"]);
    assert!(ps.stdout.starts_with("CONTAINER ID"), "{ps:?}");
    assert!(
        ps.stdout.contains("web") && ps.stdout.contains(&id[..12]),
        "{ps:?}"
    );
    let dps = d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(dps.stdout.starts_with("web Up"), "{dps:?}");

    assert!(eventually(5, || d
        .berth(&["logs", "web"])
        .stdout
        .matches("tick")
        .count()
        >= 3));
    let logs = d.berth(&["logs", "--tail", "2", "web"]);
    assert_eq!(logs.stdout.lines().count(), 2, "{logs:?}");
    assert!(d.berth(&["logs", "web"]).stderr.contains("err"));
    let ts = d.docker(&["logs", "-t", "--tail", "1", "web"]);
    assert!(ts.stdout.contains("Z tick"), "{ts:?}");

    // sh as PID 1 ignores SIGTERM: stop waits -t seconds, then SIGKILL (137).
    let start = std::time::Instant::now();
    let out = d.berth(&["stop", "-t", "1", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(start.elapsed().as_millis() >= 900);
    let state = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state.stdout.trim(), "exited 137", "{state:?}");

    assert_eq!(d.docker(&["start", "web"]).code, 0);
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Running}}", "web"])
            .stdout
            .trim(),
        "true"
    );
    assert_eq!(d.berth(&["restart", "-t", "0", "web"]).code, 0);
    assert_eq!(d.berth(&["kill", "web"]).code, 0);
    let wait = d.berth(&["wait", "web"]);
    assert_eq!(wait.stdout.trim(), "137", "{wait:?}");
    // kill of a stopped container is a conflict.
    assert_ne!(d.berth(&["kill", "web"]).code, 0);
    assert_eq!(d.berth(&["rm", "web"]).code, 0);
    assert!(d.berth(&["ps", "-aq"]).stdout.trim().is_empty());
    assert!(d.mounts().iter().all(|m| !m.contains("overlay")));
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists());
}

#[test]
fn names_are_unique_and_prefixes_resolve() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let a = d.berth(&["create", "--name", "one", "busybox", "true"]);
    assert_eq!(a.code, 0, "{a:?}");
    let dup = d.berth(&["create", "--name", "one", "busybox", "true"]);
    assert!(dup.stderr.contains("is already in use"), "{dup:?}");
    let ddup = d.docker(&["create", "--name", "one", "busybox", "true"]);
    assert!(ddup.stderr.contains("Conflict"), "{ddup:?}");
    assert_eq!(dup.code, ddup.code, "same exit code as docker");
    let rdup = d.berth(&["run", "--name", "one", "busybox", "true"]);
    assert_eq!(rdup.code, 125, "{rdup:?}");
    let id = a.stdout.trim();
    let by_prefix = d.berth(&["inspect", "-f", "{{.Name}}", &id[..6]]);
    assert_eq!(by_prefix.stdout.trim(), "/one");
    // Auto-generated names look like Docker's.
    let b = d.berth(&["create", "busybox", "true"]);
    let name = d.berth(&["inspect", "-f", "{{.Name}}", b.stdout.trim()]);
    let name = name.stdout.trim().trim_start_matches('/');
    assert!(
        name.contains('_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
        "{name}"
    );
}

#[test]
fn images_tag_rmi_and_layer_sharing() {
    let d = Daemon::start();
    let id = d.import_busybox("busybox");
    d.import_busybox("other:1");
    let layers = std::fs::read_dir(d.data_root().join("layers"))
        .expect("layers")
        .filter(|e| e.as_ref().map(|e| e.file_name() != "tmp").unwrap_or(false))
        .count();
    assert_eq!(layers, 1, "identical layers are stored once");

    assert_eq!(d.berth(&["tag", "busybox", "me/bb:1"]).code, 0);
    let images = d.berth(&["images"]);
    assert!(images.stdout.starts_with("REPOSITORY"), "{images:?}");
    assert!(images.stdout.contains("me/bb") && images.stdout.contains("busybox"));
    let q = d.docker(&["images", "-q"]);
    assert!(
        q.stdout.contains(&id.trim_start_matches("sha256:")[..12]),
        "{q:?}"
    );

    let c = d.berth(&["create", "busybox", "true"]);
    assert_eq!(c.code, 0);
    // Untagging one of two names is fine; the last one is protected by the container.
    assert_eq!(d.berth(&["rmi", "me/bb:1"]).code, 0);
    let rmi = d.berth(&["rmi", "busybox"]);
    assert_ne!(rmi.code, 0);
    assert!(rmi.stderr.contains("conflict"), "{rmi:?}");
    // The other image shares the layer: deleting it keeps the layer the container needs.
    let out = d.berth(&["rmi", "other:1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(d.berth(&["rm", c.stdout.trim()]).code, 0);
    let out = d.berth(&["rmi", "busybox"]);
    assert!(
        out.stdout.contains("Untagged: busybox:latest") && out.stdout.contains("Deleted: sha256:"),
        "{out:?}"
    );
    let left = std::fs::read_dir(d.data_root().join("layers"))
        .expect("layers")
        .filter(|e| e.as_ref().map(|e| e.file_name() != "tmp").unwrap_or(false))
        .count();
    assert_eq!(left, 0, "unused layers are removed");

    let hist = d.berth(&["history", "busybox"]);
    assert_ne!(hist.code, 0, "image is gone");
}

#[test]
fn inspect_history_version_info_with_docker_cli() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let inspect = d.docker(&["inspect", "busybox"]);
    assert_eq!(inspect.code, 0, "{inspect:?}");
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("json");
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(v[0]["RootFS"]["Type"], "layers");
    let hist = d.docker(&["history", "busybox"]);
    assert!(hist.stdout.contains("Imported from -"), "{hist:?}");
    assert_eq!(d.docker(&["version"]).code, 0);
    let info = d.docker(&["info"]);
    assert_eq!(info.code, 0, "{info:?}");
    assert!(info.stdout.contains("overlay2"), "{info:?}");
    assert_eq!(d.berth(&["version"]).code, 0);
    assert_eq!(d.berth(&["info"]).code, 0);
}

#[test]
fn hostile_tar_import_is_refused() {
    let d = Daemon::start();
    let dir = d.root.path();
    let sentinel = dir.join("sentinel");
    std::fs::write(&sentinel, "untouched").expect("sentinel");
    let tar_path = dir.join("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).expect("tar"));
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        // Written into the raw header: the tar crate refuses to build `..` paths itself.
        let name = b"../../../../../../../../tmp/berth-evil";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"evil"[..]).expect("append");
        b.finish().expect("finish");
    }
    let out = d.berth(&["import", tar_path.to_str().expect("path"), "evil"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("berth-evil"),
        "error names the entry: {out:?}"
    );
    assert!(!std::path::Path::new("/tmp/berth-evil").exists());
    assert_eq!(
        std::fs::read_to_string(&sentinel).expect("read"),
        "untouched"
    );
    assert!(d.berth(&["images", "-q"]).stdout.trim().is_empty());
}

#[test]
fn container_sees_docker_like_environment() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    // No daemon file descriptor leaks in: ls itself holds fd 3 for /proc/self/fd.
    let fds = d.berth(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    assert_eq!(
        fds.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{fds:?}"
    );
    let status = d.berth(&["run", "--rm", "busybox", "grep", "Cap", "/proc/self/status"]);
    assert!(
        status.stdout.contains("CapInh:\t0000000000000000"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains("CapBnd:\t00000000a80425fb"),
        "docker's default set: {status:?}"
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp/work",
        "-u",
        "nobody",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u) $(hostname) $HOME",
    ]);
    assert_eq!(out.stdout.trim(), "1 /tmp/work 65534 box /home", "{out:?}");
    let pid1 = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]);
    assert_eq!(pid1.stdout.trim(), "1");
    let net = d.berth(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(net.stdout.trim(), "lo", "loopback only: {net:?}");
    // Masked paths are bound to /dev/null (when the host has them at all).
    if std::path::Path::new("/proc/timer_list").exists() {
        let masked = d.berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wc -c < /proc/timer_list",
        ]);
        assert_eq!(masked.stdout.trim(), "0", "masked: {masked:?}");
    }
    let ro = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/domainname",
    ]);
    assert_ne!(ro.code, 0, "read-only /proc/sys");
    let entry = d.berth(&["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]);
    assert_eq!(entry.stdout.trim(), "a b");
    // The shim runs from a read-only copy, never the installed binary.
    let ro = d.exec.path().join("berth-shim");
    assert!(std::fs::OpenOptions::new().write(true).open(&ro).is_err());
}

#[test]
fn live_restore_after_kill_9() {
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let exits = d.berth(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    assert_eq!(exits.code, 0, "{exits:?}");
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.spawn();
    let ps = d.berth(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.stdout.trim(), "survivor", "{ps:?}");
    // The exit that happened while the daemon was down was recorded.
    let q = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "quitter",
    ]);
    assert_eq!(q.stdout.trim(), "exited 5", "{q:?}");
    let stop = d.berth(&["stop", "survivor"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let s = d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "survivor"]);
    assert_eq!(s.stdout.trim(), "7");
}

#[test]
fn second_daemon_on_same_root_refuses() {
    let d = Daemon::start();
    let out = std::process::Command::new(common::BERTH)
        .args(["daemon", "--data-root"])
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.exec.path().join("second"))
        .arg("-H")
        .arg(format!("unix://{}/second.sock", d.exec.path().display()))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already using the data root"));
}

#[test]
fn stdin_and_log_following() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let out = d.berth_stdin(
        &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"],
        b"line1\nline2\n",
    );
    assert_eq!(out.stdout, "line1\nline2\ndone\n", "{out:?}");
    let big: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let out = d.berth_stdin(&["run", "-i", "--rm", "busybox", "wc", "-l"], &big);
    assert_eq!(out.stdout.trim(), "200000", "{:?}", out.stderr);

    let run = d.berth(&[
        "run",
        "-d",
        "--name",
        "follow",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // Follows until the container exits, then ends by itself.
    let start = std::time::Instant::now();
    let follow = d.berth(&["logs", "-f", "follow"]);
    assert_eq!(
        follow.stdout, "line1\nline2\nline3\nline4\nline5\n",
        "{follow:?}"
    );
    assert!(start.elapsed().as_secs() < 10);
    let dfollow = d.docker(&["logs", "-f", "--since", "0", "follow"]);
    assert_eq!(dfollow.stdout.lines().count(), 5, "{dfollow:?}");
}

#[test]
fn live_restore_false_stops_containers_at_shutdown() {
    let mut d = Daemon::start_with("\"live-restore\": false");
    d.import_busybox("busybox");
    let out = d.berth(&["run", "-d", "--name", "short", "busybox", "sleep", "600"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim().to_string();
    let shim_exe = format!("{}", d.exec.path().join("berth-shim").display());
    let shim_running = || {
        std::fs::read_dir("/proc")
            .map(|it| {
                it.flatten().any(|p| {
                    std::fs::read_to_string(p.path().join("cmdline"))
                        .map(|c| c.starts_with(&shim_exe) && c.contains(&id))
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    };
    assert!(shim_running(), "a shim runs the container");
    d.stop();
    assert!(
        !shim_running(),
        "the shim is gone after a live-restore=false shutdown"
    );
    d.spawn();
    let state = d.berth(&["inspect", "-f", "{{.State.Status}}", "short"]);
    assert_eq!(state.stdout.trim(), "exited", "{state:?}");
    assert!(
        d.mounts().iter().all(|m| !m.contains("overlay")),
        "{:?}",
        d.mounts()
    );
}

#[test]
fn ulimits_from_flags_and_daemon_defaults() {
    let d = Daemon::start_with(
        r#""default-ulimits": {"nproc": {"Name": "nproc", "Soft": 300, "Hard": 400},
                               "nofile": {"Name": "nofile", "Soft": 100, "Hard": 200}}"#,
    );
    d.import_busybox("busybox:latest");
    let limit = |out: &common::Out, what: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(what))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    // The container's own limit replaces the daemon's default of the same name only.
    let out = d.berth(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "busybox",
        "cat",
        "/proc/self/limits",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        limit(&out, "Max open files"),
        "Max open files 512 1024 files"
    );
    assert_eq!(
        limit(&out, "Max processes"),
        "Max processes 300 400 processes"
    );
    let out = d.docker(&[
        "run",
        "--name",
        "limited",
        "--ulimit",
        "nofile=256",
        "busybox",
        "cat",
        "/proc/self/limits",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        limit(&out, "Max open files"),
        "Max open files 256 256 files"
    );
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", "limited"]);
    assert_eq!(
        shown.stdout.trim(),
        r#"[{"Name":"nofile","Hard":256,"Soft":256}]"#,
        "{shown:?}"
    );
    let bad = d.berth(&["run", "--rm", "--ulimit", "files=1", "busybox", "true"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(bad.stderr.contains("invalid ulimit type: files"), "{bad:?}");
}

#[test]
fn oom_kill_is_reported() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    // `tail` keeps the whole never-ending line of /dev/zero in memory; swap is off for it.
    let out = d.docker(&[
        "run",
        "--name",
        "hog",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.code, 137, "{out:?}");
    let state = d.berth(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog",
    ]);
    assert_eq!(state.stdout.trim(), "true 137", "{state:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or_default();
    let (since, until) = ((now - 120).to_string(), (now + 2).to_string());
    let events = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hog",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.stdout.lines().collect();
    assert!(actions.ends_with(&["oom", "die"]), "{actions:?} {events:?}");
    // A container that exits on its own is not OOM-killed.
    calm_exit_is_not_oom(&d);
}

fn calm_exit_is_not_oom(d: &Daemon) {
    let out = d.berth(&["run", "--name", "calm", "-m", "8m", "busybox", "true"]);
    assert_eq!(out.code, 0, "{out:?}");
    let state = d.berth(&["inspect", "-f", "{{.State.OOMKilled}}", "calm"]);
    assert_eq!(state.stdout.trim(), "false", "{state:?}");
}

#[test]
fn init_runs_as_pid_1_and_forwards_signals() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let out = d.docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
    assert_eq!(out.code, 0, "{out:?}");
    let pid1 = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"));
    assert_eq!(
        pid1.map(|l| l.split_whitespace().nth(1)),
        Some(Some("docker-init")),
        "{out:?}"
    );
    let out = d.berth(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3, "the init passes the exit code on: {out:?}");
    // `sleep` as PID 1 ignores SIGTERM; under the init it gets it and stop is quick.
    let run = d.berth(&[
        "run", "-d", "--name", "inited", "--init", "busybox", "sleep", "60",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let started = std::time::Instant::now();
    let stop = d.docker(&["stop", "-t", "20", "inited"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let state = d.berth(&[
        "inspect",
        "-f",
        "{{.HostConfig.Init}} {{.State.ExitCode}}",
        "inited",
    ]);
    assert_eq!(state.stdout.trim(), "true 143", "{state:?}");
    // The mount point is the runtime's, not a change of the container.
    let diff = d.berth(&["diff", "inited"]);
    assert_eq!((diff.code, diff.stdout.as_str()), (0, ""), "{diff:?}");
}

/// `--cpuset-cpus`, `--cpu-shares`, `--memory-swap` and `--oom-kill-disable` land in the
/// container's cgroup (v1 or v2 layout), through both CLIs.
#[test]
fn cpu_and_memory_flags_reach_the_cgroup() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let read = |controller: &str, id: &str, file: &str| {
        let path = if v2 {
            format!("/sys/fs/cgroup/berth/{id}/{file}")
        } else {
            format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}")
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let flags = [
        "run",
        "-d",
        "--cpuset-cpus",
        "0",
        "--cpu-shares",
        "512",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--oom-kill-disable",
        "busybox",
        "sleep",
        "100",
    ];
    for out in [d.berth(&flags), d.docker(&flags)] {
        assert_eq!(out.code, 0, "{out:?}");
        let id = out.stdout.trim();
        assert_eq!(read("cpuset", id, "cpuset.cpus").trim(), "0");
        if v2 {
            assert!(read("memory", id, "memory.max").trim() == "67108864");
            assert_eq!(read("memory", id, "memory.swap.max").trim(), "67108864");
        } else {
            assert_eq!(read("cpu", id, "cpu.shares").trim(), "512");
            assert_eq!(
                read("memory", id, "memory.memsw.limit_in_bytes").trim(),
                "134217728"
            );
            assert!(read("memory", id, "memory.oom_control").contains("oom_kill_disable 1"));
        }
        let inspect = d.docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.OomKillDisable}}",
            id,
        ]);
        assert_eq!(inspect.stdout.trim(), "0 512 true");
        assert_eq!(d.berth(&["rm", "-f", id]).code, 0);
    }
}
