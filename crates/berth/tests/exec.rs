//! exec, attach and terminals, with our CLI and the real docker CLI: processes joining a
//! running container, and interactive sessions on a real pseudo-terminal.

mod common;

use std::time::Duration;

use common::pty::Pty;
use common::{ok, Daemon};

const T: Duration = Duration::from_secs(20);

#[test]
fn exec_runs_in_the_container_with_its_settings_and_exit_code() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=r",
            "-w",
            "/root",
            "busybox",
            "sleep",
            "1000",
        ]),
        "run -d",
    );
    for (cli, out) in [
        ("berth", d.berth(&["exec", "box", "sh", "-c", "exit 3"])),
        ("docker", d.docker(&["exec", "box", "sh", "-c", "exit 3"])),
    ] {
        assert_eq!(out.code, 3, "{cli}: {out:?}");
    }
    // The container's own environment and working directory, the exec's on top.
    let script = "echo $FROM_RUN $A $HOME; pwd; id -u; echo err >&2";
    for out in [
        d.berth(&["exec", "-e", "A=1", "box", "sh", "-c", script]),
        d.docker(&["exec", "-e", "A=1", "box", "sh", "-c", script]),
    ] {
        ok(&out, "exec");
        assert_eq!(out.stdout, "r 1 /root\n/root\n0\n", "{out:?}");
        assert_eq!(out.stderr, "err\n", "{out:?}");
    }
    for out in [
        d.berth(&[
            "exec", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c", "pwd; id",
        ]),
        d.docker(&[
            "exec", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c", "pwd; id",
        ]),
    ] {
        ok(&out, "exec -u -w");
        assert_eq!(
            out.stdout, "/tmp\nuid=65534(nobody) gid=65534(nogroup)\n",
            "{out:?}"
        );
    }
    // It joins the container's PID namespace: the container's init is PID 1 there.
    let ps = d.docker(&["exec", "box", "cat", "/proc/1/cmdline"]);
    assert_eq!(ps.stdout, "sleep\u{0}1000\u{0}", "{ps:?}");
    // stdin with -i, and its end is the process's EOF.
    let cat = d.berth_stdin(&["exec", "-i", "box", "sh", "-c", "cat; echo end"], b"in\n");
    assert_eq!(cat.stdout, "in\nend\n", "{cat:?}");
    let cat = d.docker_stdin(&["exec", "-i", "box", "sh", "-c", "cat; echo end"], b"in\n");
    assert_eq!(cat.stdout, "in\nend\n", "{cat:?}");
    // A missing command is 127 with the runtime's words, as with docker.
    for out in [
        d.berth(&["exec", "box", "nosuch"]),
        d.docker(&["exec", "box", "nosuch"]),
    ] {
        assert_eq!(out.code, 127, "{out:?}");
        assert!(
            out.stdout.contains("executable file not found in $PATH"),
            "{out:?}"
        );
    }
    // Detached: the process runs on after the CLI returns.
    ok(
        &d.docker(&[
            "exec",
            "-d",
            "box",
            "sh",
            "-c",
            "sleep 0.3; touch /tmp/done",
        ]),
        "exec -d",
    );
    let mut seen = false;
    for _ in 0..50 {
        if d.berth(&["exec", "box", "test", "-f", "/tmp/done"]).code == 0 {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "the detached exec ran");
    // None of that stopped the container, and inspect lists the execs.
    let state = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{len .ExecIDs}}",
        "box",
    ]);
    let fields: Vec<&str> = state.stdout.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"true"), "{state:?}");
    assert!(
        fields.get(1).and_then(|n| n.parse::<u32>().ok()) >= Some(10),
        "{state:?}"
    );
    // Exec needs a running, unpaused container.
    ok(&d.berth(&["pause", "box"]), "pause");
    let paused = d.docker(&["exec", "box", "true"]);
    assert_ne!(paused.code, 0);
    assert!(paused.stderr.contains("is paused"), "{paused:?}");
    ok(&d.berth(&["unpause", "box"]), "unpause");
    ok(&d.berth(&["stop", "-t", "0", "box"]), "stop");
    let stopped = d.berth(&["exec", "box", "true"]);
    assert_ne!(stopped.code, 0);
    assert!(stopped.stderr.contains("is not running"), "{stopped:?}");
}

#[test]
fn exec_reaches_a_container_across_a_daemon_restart() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["run", "-d", "--name", "kept", "busybox", "sleep", "1000"]),
        "run -d",
    );
    d.kill9();
    d.spawn();
    let out = d.docker(&["exec", "kept", "echo", "still here"]);
    ok(&out, "exec after restart");
    assert_eq!(out.stdout, "still here\n");
}

/// Both CLIs: a real terminal with the client's size, typed input, Ctrl-C reaching the
/// container's foreground process, and an exit code.
#[test]
fn run_it_is_a_real_terminal() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    for (cli, cmd) in [
        (
            "berth",
            d.berth_cmd(&["run", "--rm", "-it", "busybox", "sh"]),
        ),
        (
            "docker",
            d.docker_cmd(&["run", "--rm", "-it", "busybox", "sh"]),
        ),
    ] {
        let mut pty = Pty::spawn(cmd, 33, 101);
        pty.expect("# ", T);
        pty.send(b"tty; stty size; echo $TERM; echo $((6*7))\r");
        pty.expect("42", T);
        let screen = String::from_utf8_lossy(&pty.screen).to_string();
        assert!(screen.contains("/dev/pts/0"), "{cli}: {screen:?}");
        assert!(screen.contains("33 101"), "{cli}: {screen:?}");
        assert!(screen.contains("xterm"), "{cli}: {screen:?}");
        // Ctrl-C interrupts the foreground job, not the session.
        pty.send(b"sleep 1000\r");
        std::thread::sleep(Duration::from_millis(300));
        pty.consume();
        pty.send(b"\x03");
        pty.expect("# ", T);
        // A new window size reaches the container (SIGWINCH → resize).
        pty.resize(40, 120);
        std::thread::sleep(Duration::from_millis(500));
        pty.consume();
        pty.send(b"stty size\r");
        pty.expect("40 120", T);
        pty.send(b"exit 7\r");
        assert_eq!(
            pty.wait(T),
            7,
            "{cli}: {:?}",
            String::from_utf8_lossy(&pty.screen)
        );
    }
}

/// Ctrl-P Ctrl-Q leaves the container running; `attach` brings the screen back, with either
/// CLI on either side; the container's exit code is attach's.
#[test]
fn detach_and_attach_again() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    for (first, second) in [("berth", "docker"), ("docker", "berth")] {
        let name = format!("term-{first}");
        let cli = |who: &str, args: &[&str]| {
            if who == "berth" {
                d.berth_cmd(args)
            } else {
                d.docker_cmd(args)
            }
        };
        let mut pty = Pty::spawn(
            cli(first, &["run", "-it", "--name", &name, "busybox", "sh"]),
            24,
            80,
        );
        pty.expect("# ", T);
        pty.send(b"export MARK=kept\r");
        pty.send(b"\x10\x11");
        assert_eq!(pty.wait(T), 0, "{first} detaches with status 0");
        let state = d.berth(&["inspect", "-f", "{{.State.Running}}", &name]);
        assert_eq!(state.stdout.trim(), "true", "still running after detach");

        let mut pty = Pty::spawn(cli(second, &["attach", &name]), 24, 80);
        // The attach is live once the resize has made the shell redraw its prompt.
        std::thread::sleep(Duration::from_millis(1500));
        pty.send(b"echo mark=$MARK\r");
        pty.expect("mark=kept", T);
        // Detach keys of the user's choosing.
        drop(pty);
        let mut pty = Pty::spawn(
            cli(second, &["attach", "--detach-keys", "ctrl-x", &name]),
            24,
            80,
        );
        std::thread::sleep(Duration::from_millis(1500));
        pty.send(b"\x18");
        // Like the docker CLI, attach says it detached and exits with 1.
        assert_eq!(pty.wait(T), 1, "{second} detaches with ctrl-x");
        pty.expect("read escape sequence", T);
        let mut pty = Pty::spawn(cli(second, &["attach", &name]), 24, 80);
        std::thread::sleep(Duration::from_millis(1500));
        pty.send(b"exit 5\r");
        assert_eq!(pty.wait(T), 5, "{second} attach reports the exit");
    }
}

#[test]
fn exec_it_gets_its_own_terminal() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]),
        "run -d",
    );
    for (cli, cmd) in [
        ("berth", d.berth_cmd(&["exec", "-it", "host", "sh"])),
        ("docker", d.docker_cmd(&["exec", "-it", "host", "sh"])),
    ] {
        let mut pty = Pty::spawn(cmd, 30, 90);
        pty.expect("# ", T);
        pty.send(b"tty; stty size\r");
        pty.expect("30 90", T);
        assert!(
            String::from_utf8_lossy(&pty.screen).contains("/dev/pts/"),
            "{cli}"
        );
        pty.resize(50, 132);
        std::thread::sleep(Duration::from_millis(500));
        pty.consume();
        pty.send(b"stty size\r");
        pty.expect("50 132", T);
        pty.send(b"exit 4\r");
        assert_eq!(pty.wait(T), 4, "{cli}");
    }
    // The container never noticed.
    let state = d.berth(&["inspect", "-f", "{{.State.Running}}", "host"]);
    assert_eq!(state.stdout.trim(), "true");
}
