//! Container housekeeping with both CLIs: rename, diff, container prune.

mod common;

use common::{ok, Daemon};

#[test]
fn rename_moves_the_name_and_refuses_taken_ones() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["create", "--name", "first", "busybox"]),
        "create",
    );
    ok(
        &d.berth(&["create", "--name", "other", "busybox"]),
        "create",
    );
    ok(&d.berth(&["rename", "first", "second"]), "rename");
    let names = d.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.stdout.lines().collect();
    names.sort();
    assert_eq!(names, vec!["other", "second"]);
    let taken = d.docker(&["rename", "second", "other"]);
    assert_eq!(taken.code, 1, "{taken:?}");
    assert!(taken.stderr.contains("is already in use"), "{taken:?}");
    let same = d.berth(&["rename", "second", "second"]);
    assert_ne!(same.code, 0, "{same:?}");
    ok(&d.docker(&["rename", "second", "third"]), "docker rename");
    // The old name is free again and the new one resolves.
    ok(
        &d.berth(&["create", "--name", "second", "busybox"]),
        "reuse",
    );
    ok(&d.berth(&["inspect", "third"]), "inspect by new name");
    // The rename survives a daemon restart.
    let mut d = d;
    d.stop();
    d.spawn();
    ok(&d.berth(&["inspect", "third"]), "after restart");
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "--name",
            "changer",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /new/dir && echo x > /new/dir/f && echo y >> /etc/passwd && rm /etc/group",
        ]),
        "run",
    );
    let out = d.berth(&["diff", "changer"]);
    ok(&out, "diff");
    let lines: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "C /etc",
        "C /etc/passwd",
        "D /etc/group",
        "A /new",
        "A /new/dir",
        "A /new/dir/f",
    ] {
        assert!(lines.contains(&want), "{want} in {lines:?}");
    }
    // The runtime's mount points are not changes the user made.
    assert!(
        !lines.iter().any(|l| l.contains("resolv.conf")),
        "{lines:?}"
    );
    let docker = d.docker(&["diff", "changer"]);
    assert_eq!(docker.stdout, out.stdout, "{docker:?}");
}

#[test]
fn prune_removes_stopped_containers_only() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["run", "--name", "done1", "busybox", "true"]),
        "run",
    );
    ok(
        &d.berth(&[
            "run", "--name", "keep", "--label", "keep=1", "busybox", "true",
        ]),
        "run",
    );
    ok(
        &d.berth(&["run", "-d", "--name", "alive", "busybox", "sleep", "30"]),
        "run -d",
    );
    let out = d.berth(&["container", "prune", "-f", "--filter", "label!=keep"]);
    ok(&out, "prune");
    assert!(out.stdout.starts_with("Deleted Containers:\n"), "{out:?}");
    assert!(out.stdout.contains("Total reclaimed space:"), "{out:?}");
    let left = d.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut left: Vec<&str> = left.stdout.lines().collect();
    left.sort();
    assert_eq!(left, vec!["alive", "keep"]);
    // Declining the prompt removes nothing.
    let out = d.berth_stdin(&["container", "prune"], b"n\n");
    ok(&out, "declined prune");
    assert_eq!(d.berth(&["ps", "-aq"]).stdout.lines().count(), 2);
    let out = d.docker(&["container", "prune", "-f"]);
    ok(&out, "docker prune");
    assert_eq!(
        d.berth(&["ps", "-a", "--format", "{{.Names}}"]).stdout,
        "alive\n"
    );
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "while true; do date +%s%N >> /tmp/ticks; sleep 0.05; done",
        ]),
        "run -d",
    );
    ok(&d.berth(&["pause", "ticker"]), "pause");
    let status = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(status.stdout.trim(), "paused true", "{status:?}");
    let ps = d.docker(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.stdout.contains("(Paused)"), "{ps:?}");
    let again = d.docker(&["pause", "ticker"]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("is already paused"), "{again:?}");
    // A frozen container makes no progress: its log of ticks stops growing.
    let size = |d: &Daemon| {
        let dir = d.data_root().join("snapshots");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat {}/*/upper/tmp/ticks 2>/dev/null | wc -l",
                dir.display()
            ))
            .output()
            .expect("sh");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let frozen = size(&d);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(size(&d), frozen, "no ticks while paused");
    // commit of a paused container works, and leaves it paused.
    ok(
        &d.berth(&["commit", "ticker", "ticks:1"]),
        "commit while paused",
    );
    ok(&d.docker(&["unpause", "ticker"]), "unpause");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(size(&d) > frozen, "ticks again after unpause");
    assert_ne!(
        d.berth(&["unpause", "ticker"]).code,
        0,
        "not paused any more"
    );
    // Stopping a paused container works (it is thawed first).
    ok(&d.berth(&["pause", "ticker"]), "pause again");
    ok(
        &d.berth(&["stop", "-t", "1", "ticker"]),
        "stop while paused",
    );
    let status = d.berth(&["inspect", "-f", "{{.State.Status}}", "ticker"]);
    assert_eq!(status.stdout.trim(), "exited", "{status:?}");
}

#[test]
fn top_lists_the_containers_processes() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "topper",
            "busybox",
            "sh",
            "-c",
            "sleep 123 & sleep 456",
        ]),
        "run -d",
    );
    let out = d.berth(&["top", "topper"]);
    ok(&out, "top");
    assert!(out.stdout.starts_with("UID"), "{out:?}");
    assert!(
        out.stdout.contains("sleep 123") && out.stdout.contains("sleep 456"),
        "{out:?}"
    );
    // Only the container's processes: not the daemon, not the shim.
    assert!(!out.stdout.contains("berth daemon"), "{out:?}");
    let custom = d.docker(&["top", "topper", "-o", "pid,comm"]);
    ok(&custom, "docker top -o");
    let header = custom.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("PID") && header.contains("COMMAND"),
        "{custom:?}"
    );
    ok(&d.berth(&["stop", "-t", "0", "topper"]), "stop");
    let stopped = d.berth(&["top", "topper"]);
    assert_ne!(stopped.code, 0, "{stopped:?}");
    assert!(stopped.stderr.contains("is not running"), "{stopped:?}");
}

#[test]
fn stats_move_when_the_container_works() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "burner",
            "busybox",
            "sh",
            "-c",
            "while true; do :; done",
        ]),
        "run -d",
    );
    ok(
        &d.berth(&["run", "-d", "--name", "idler", "busybox", "sleep", "60"]),
        "run -d",
    );
    let out = d.berth(&["stats", "--no-stream"]);
    ok(&out, "stats --no-stream");
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("CONTAINER ID")
            && header.contains("MEM USAGE / LIMIT")
            && header.ends_with("PIDS"),
        "{out:?}"
    );
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    // The busy loop shows CPU; docker's own client computes the same from our samples.
    let cpu = |name: &str| -> f64 {
        let o = d.docker(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", name]);
        o.stdout
            .trim()
            .trim_end_matches('%')
            .parse()
            .unwrap_or(-1.0)
    };
    assert!(
        common::eventually(5, || cpu("burner") > 20.0),
        "burner uses CPU"
    );
    assert!(cpu("idler") < 5.0, "idler does not");
    let mem = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}} {{.PIDs}}",
        "idler",
    ]);
    assert!(
        mem.stdout.contains(" / ") && mem.stdout.trim().ends_with(" 1"),
        "{mem:?}"
    );
    // A one-shot sample through the API, Docker's shape.
    let raw = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(d.socket())
        .arg("http://x/containers/idler/stats?stream=0&one-shot=1")
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("stats JSON");
    assert_eq!(v["name"], "/idler");
    assert!(v["memory_stats"]["usage"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(
        v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
}

#[test]
fn restart_policies_with_backoff_and_manual_stop() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    // on-failure:2 restarts exactly twice, then stays exited.
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]),
        "run on-failure",
    );
    let count = |d: &Daemon, name: &str| -> String {
        d.berth(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name])
            .stdout
            .trim()
            .to_string()
    };
    assert!(
        common::eventually(10, || count(&d, "flaky") == "2 exited"),
        "{}",
        count(&d, "flaky")
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(count(&d, "flaky"), "2 exited", "no third restart");
    // A zero exit is no failure.
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "fine",
            "--restart",
            "on-failure",
            "busybox",
            "true",
        ]),
        "run",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(count(&d, "fine").starts_with("0 "), "{}", count(&d, "fine"));

    // always: keeps coming back, with growing delays; stop ends it.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "looper",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.1; exit 1",
        ]),
        "run always",
    );
    assert!(common::eventually(10, || {
        count(&d, "looper")
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 3)
    }));
    ok(&d.berth(&["stop", "-t", "1", "looper"]), "stop");
    let after_stop = count(&d, "looper");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        count(&d, "looper"),
        after_stop,
        "a stopped container stays stopped"
    );
    assert!(after_stop.ends_with("exited"), "{after_stop}");

    // The daemon brings `always` containers back when it starts (here it stopped them on
    // its way down, with live-restore off).
    let mut d = Daemon::start_with(r#""live-restore": false"#);
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "server",
            "--restart",
            "always",
            "--stop-timeout",
            "1",
            "busybox",
            "sleep",
            "300",
        ]),
        "run",
    );
    d.stop();
    d.spawn();
    assert!(common::eventually(10, || d
        .berth(&["inspect", "-f", "{{.State.Running}}", "server"])
        .stdout
        .trim()
        == "true"));
}

#[test]
fn events_in_order_with_filters_since_and_until() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let start = chrono_now_secs();
    let run = d.berth(&["run", "--name", "evented", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(run.code, 2, "{run:?}");
    ok(&d.berth(&["rm", "evented"]), "rm");
    ok(&d.berth(&["volume", "create", "evvol"]), "volume");
    let until = chrono_now_secs() + 3;
    let since = start.to_string();
    let until_s = until.to_string();
    let out = d.berth(&[
        "events",
        "--since",
        &since,
        "--until",
        &until_s,
        "--filter",
        "type=container",
    ]);
    ok(&out, "events");
    let actions: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        actions,
        vec!["create", "start", "die", "destroy"],
        "{out:?}"
    );
    assert!(
        out.stdout.contains("exitCode=2") && out.stdout.contains("name=evented"),
        "{out:?}"
    );
    // The docker CLI reads the same stream, with its own filters and format.
    let docker = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until_s,
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
    ]);
    assert_eq!(docker.stdout, "volume create evvol\n", "{docker:?}");
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        - 1
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run", "-d", "--name", "limited", "--memory", "64m", "busybox", "sleep", "60",
        ]),
        "run -d",
    );
    ok(
        &d.berth(&["update", "--memory", "96m", "--pids-limit", "50", "limited"]),
        "update",
    );
    let cfg = d.berth(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
        "limited",
    ]);
    assert_eq!(
        cfg.stdout.trim(),
        format!("{} 50", 96 * 1024 * 1024),
        "{cfg:?}"
    );
    // The limit is live: the stats read it back from the cgroup.
    let limit = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "limited",
    ]);
    assert!(limit.stdout.contains("/ 96MiB"), "{limit:?}");
    ok(
        &d.docker(&["update", "--restart", "on-failure:3", "limited"]),
        "docker update",
    );
    let policy = d.berth(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}}",
        "limited",
    ]);
    assert_eq!(policy.stdout.trim(), "on-failure", "{policy:?}");
    let none = d.berth(&["update", "limited"]);
    assert_ne!(none.code, 0, "{none:?}");
}
