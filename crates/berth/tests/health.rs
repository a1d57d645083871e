//! Health checks with both CLIs: `--health-*` flags and the image's HEALTHCHECK, states in
//! `ps` and inspect, `health_status` events, and berth's `--health-on-failure`.

mod common;

use std::time::{Duration, Instant};

use common::{ok, Daemon};

/// Polls `docker inspect` until the health status is `want`.
fn wait_health(d: &Daemon, name: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = d.docker(&["inspect", "-f", "{{.State.Health.Status}}", name]);
        let got = out.stdout.trim().to_string();
        if got == want {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: health {got:?}, wanted {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_column(d: &Daemon, name: &str) -> String {
    let out = d.berth(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ]);
    out.stdout.trim().to_string()
}

#[test]
fn health_flags_drive_starting_unhealthy_and_healthy() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let since = chrono_now();
    let probe = [
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
    ];
    let mut docker_args = vec!["run", "-d", "--name", "hd"];
    docker_args.extend(probe);
    docker_args.extend(["busybox", "sleep", "1000"]);
    ok(&d.docker(&docker_args), "docker run --health-cmd");
    let mut berth_args = vec!["run", "-d", "--name", "hb"];
    berth_args.extend(probe);
    berth_args.extend(["busybox", "sleep", "1000"]);
    ok(&d.berth(&berth_args), "berth run --health-cmd");

    // Before the first probe has answered, the container is starting.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "slow",
            "--health-cmd",
            "true",
            "--health-interval",
            "1h",
            "busybox",
            "sleep",
            "1000",
        ]),
        "run with a slow check",
    );
    assert!(
        status_column(&d, "slow").ends_with("(health: starting)"),
        "{}",
        status_column(&d, "slow")
    );
    wait_health(&d, "slow", "starting");
    for name in ["hd", "hb"] {
        wait_health(&d, name, "unhealthy");
        assert!(status_column(&d, name).ends_with("(unhealthy)"));
        ok(
            &d.berth(&["exec", name, "touch", "/tmp/ok"]),
            "make healthy",
        );
        wait_health(&d, name, "healthy");
        assert!(status_column(&d, name).ends_with("(healthy)"));
    }
    let healthy = d.docker(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = healthy.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["hb", "hd"]);

    let log = d.docker(&["inspect", "-f", "{{json .State.Health}}", "hd"]);
    let health: serde_json::Value = serde_json::from_str(log.stdout.trim()).expect("json");
    assert_eq!(health["FailingStreak"], 0);
    let entries = health["Log"].as_array().expect("log");
    assert!(!entries.is_empty() && entries.len() <= 5, "{health}");
    assert_eq!(
        entries.last().map(|e| e["ExitCode"].clone()),
        Some(0.into())
    );
    let config = d.docker(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hd"]);
    let config: serde_json::Value = serde_json::from_str(config.stdout.trim()).expect("json");
    assert_eq!(
        config["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok"])
    );
    assert_eq!(config["Interval"], 200_000_000);

    // Each change of state is an event, in order.
    let events = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &chrono_now(),
        "--filter",
        "container=hd",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.stdout.lines().collect();
    assert_eq!(
        actions,
        ["health_status: unhealthy", "health_status: healthy"],
        "{events:?}"
    );
}

fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn image_healthcheck_applies_unless_disabled() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD test -e /etc/passwd\n",
    )
    .expect("Dockerfile");
    let ctx_path = ctx.path().to_str().expect("path");
    ok(
        &d.docker(&["build", "-q", "-t", "checked", ctx_path]),
        "build",
    );
    ok(
        &d.berth(&["run", "-d", "--name", "img", "checked", "sleep", "1000"]),
        "run",
    );
    wait_health(&d, "img", "healthy");
    // The container's own settings override the image's field by field.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "own",
            "--health-cmd",
            "false",
            "checked",
            "sleep",
            "1000",
        ]),
        "run with own check",
    );
    wait_health(&d, "own", "unhealthy");
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "off",
            "--no-healthcheck",
            "checked",
            "sleep",
            "1000",
        ]),
        "run --no-healthcheck",
    );
    std::thread::sleep(Duration::from_millis(600));
    let state = d.docker(&["inspect", "-f", "{{json .State.Health}}", "off"]);
    assert_eq!(state.stdout.trim(), "null", "{state:?}");
    assert!(!status_column(&d, "off").contains("health"));
    let bad = d.berth(&["run", "--no-healthcheck", "--health-cmd", "true", "checked"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(
        bad.stderr.contains("conflicts with --health-* options"),
        "{bad:?}"
    );
}

#[test]
fn health_on_failure_acts_on_an_unhealthy_container() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "doomed",
            "--health-cmd",
            "false",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "kill",
            "busybox",
            "sleep",
            "1000",
        ]),
        "run --health-on-failure",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "doomed",
        ]);
        if s.stdout.trim() == "exited 137" {
            break;
        }
        assert!(Instant::now() < deadline, "still {:?}", s.stdout);
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same through the docker CLI, with the label the flag sets; `restart` brings the
    // container back.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "phoenix",
            "-l",
            "berth.health-on-failure=restart",
            "--health-cmd",
            "false",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--stop-timeout",
            "1",
            "busybox",
            "sleep",
            "1000",
        ]),
        "docker run -l berth.health-on-failure",
    );
    let first = d.docker(&["inspect", "-f", "{{.State.StartedAt}}", "phoenix"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = d.docker(&["inspect", "-f", "{{.State.StartedAt}}", "phoenix"]);
        if now.stdout != first.stdout {
            break;
        }
        assert!(Instant::now() < deadline, "phoenix was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = d.docker(&[
        "run",
        "-l",
        "berth.health-on-failure=explode",
        "busybox",
        "true",
    ]);
    assert_eq!(bad.code, 125, "{bad:?}");
}
