//! Test harness: a real `berth daemon` on a temporary data root and socket, driven through our
//! CLI and the real docker CLI. Every daemon is private to its test, so tests run in parallel.

#![allow(dead_code)]

pub mod oci;
pub mod pty;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Daemon {
    pub root: tempfile::TempDir,
    /// Short on purpose: Unix socket paths are limited to 108 bytes.
    pub exec: tempfile::TempDir,
    pub child: Option<Child>,
    pub extra_config: String,
    /// The private network namespace (`ip netns` name) a networked daemon runs in.
    pub netns: Option<String>,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with("")
    }

    /// `extra` is spliced into daemon.json, e.g. `"live-restore": false`. The daemon runs
    /// in the test machine's namespace without a default bridge network (`"bridge": "none"`),
    /// so it adds no links or firewall rules to the host: containers get loopback only.
    pub fn start_with(extra: &str) -> Daemon {
        let config = if extra.is_empty() {
            r#""bridge": "none""#.to_string()
        } else {
            format!(r#""bridge": "none", {extra}"#)
        };
        Self::start_inner(config, None)
    }

    /// A daemon with bridge networking, in a network namespace of its own (only loopback and
    /// the bridges it makes), removed with the daemon. `extra` as for [`Daemon::start_with`].
    pub fn start_networked(extra: &str) -> Daemon {
        let name = format!("berth-t-{:08x}", rand_u32());
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(added.success(), "ip netns add {name}");
        let up = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .expect("lo up");
        assert!(up.success());
        Self::start_inner(extra.to_string(), Some(name))
    }

    fn start_inner(extra_config: String, netns: Option<String>) -> Daemon {
        let root = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in("/var/tmp")
            .expect("data root");
        let exec = tempfile::Builder::new()
            .prefix("bt")
            .tempdir_in("/tmp")
            .expect("exec root");
        let mut d = Daemon {
            root,
            exec,
            child: None,
            extra_config,
            netns,
        };
        d.spawn();
        d
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.exec.path().join("berth.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn spawn(&mut self) {
        let config = self.root.path().join("daemon.json");
        std::fs::write(&config, format!("{{{}}}", self.extra_config)).expect("daemon.json");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("daemon.log"))
            .expect("log");
        let mut cmd = match &self.netns {
            // nsenter joins only the network namespace: the daemon's mounts stay visible to
            // the test (`ip netns exec` would give it a mount namespace of its own).
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg(BERTH);
                c
            }
            None => Command::new(BERTH),
        };
        let child = cmd
            .arg("daemon")
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec.path())
            .arg("--config-file")
            .arg(&config)
            .arg("-H")
            .arg(self.host())
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("daemon exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("daemon did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: the daemon gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: sending a signal to our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub fn berth(&self, args: &[&str]) -> Out {
        Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.client_config())
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
            .into()
    }

    /// Our CLI as a command to run elsewhere (e.g. on a pty).
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.args(args)
            .env("BERTH_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.client_config());
        cmd
    }

    /// The docker CLI as a command to run elsewhere (e.g. on a pty).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .env_remove("BERTH_HOST");
        cmd
    }

    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut cmd = Command::new(BERTH);
        cmd.args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.client_config());
        with_stdin(cmd, input)
    }

    pub fn docker(&self, args: &[&str]) -> Out {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .env_remove("BERTH_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
            .into()
    }

    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .env_remove("BERTH_HOST");
        with_stdin(cmd, input)
    }

    /// The berth CLI's config directory (credentials), private to the test.
    pub fn client_config(&self) -> PathBuf {
        self.root.path().join("berth-config")
    }

    /// daemon.json's directory: `certs.d` lives beside it.
    pub fn config_dir(&self) -> &Path {
        self.root.path()
    }

    /// Imports the busybox fixture as `name`.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_tar(self.root.path());
        let out = self.berth(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().expect("path"),
            name,
        ]);
        assert_eq!(out.code, 0, "import: {out:?}");
        out.stdout.trim().to_string()
    }

    /// Mounts under the data root (there must be none once containers are gone).
    pub fn mounts(&self) -> Vec<String> {
        let root = self.data_root().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&root) || l.contains(&self.exec.path().display().to_string()))
            .map(String::from)
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Leave nothing running: remove every container, then stop the daemon.
            let ids = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in ids.stdout.split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
            self.stop();
        }
        for m in self.mounts() {
            if let Some(point) = m.split_whitespace().nth(4) {
                let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if let Some(ns) = self.netns.take() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

impl Daemon {
    /// The name of a networked daemon's namespace (under /run/netns).
    pub fn netns_name(&self) -> &str {
        self.netns.as_deref().expect("a networked daemon")
    }

    /// Runs `argv` inside the daemon's network namespace (networked daemons), e.g. a curl of a
    /// published port.
    pub fn in_netns(&self, argv: &[&str]) -> Out {
        let ns = self.netns.as_deref().expect("a networked daemon");
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
            .into()
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b) ^ std::process::id()
}

/// Runs `cmd` with `input` on its standard input.
fn with_stdin(mut cmd: Command, input: &[u8]) -> Out {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("wait").into()
}

/// Asserts that a command succeeded, showing its output when not.
pub fn ok(out: &Out, what: &str) {
    assert_eq!(out.code, 0, "{what}: {out:?}");
}

/// A busybox root filesystem from Debian's busybox-static, as a tar file in `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let path = dir.join("busybox.tar");
    if path.exists() {
        return path;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (apt-get install busybox-static)");
    let applets = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut b = tar::Builder::new(std::fs::File::create(&path).expect("create tar"));
    let mut dir_entry = |name: &str, mode: u32| {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, std::io::empty()).expect("dir");
    };
    for d in [
        "bin", "etc", "tmp", "root", "proc", "sys", "dev", "home", "var",
    ] {
        dir_entry(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    let data = std::fs::read(busybox).expect("read busybox");
    let mut h = header();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", data.as_slice())
        .expect("busybox");
    for applet in String::from_utf8_lossy(&applets.stdout).split_whitespace() {
        if applet == "busybox" {
            continue;
        }
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    for (name, content) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let mut h = header();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, content.as_bytes())
            .expect("file");
    }
    b.finish().expect("finish tar");
    path
}

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Waits until `f` holds, up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
