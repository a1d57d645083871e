//! Side by side with a real dockerd (Debian's docker.io, installed by scripts/setup-deps.sh):
//! our CLI drives dockerd unchanged, and images travel both ways between dockerd and berthd
//! through archives and a registry. The dockerd is private to each test (temporary data root,
//! exec root and socket, `--bridge none --iptables=false`: it touches no host networking).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::TestRegistry;
use common::{ok, Daemon, Out, BERTH, DOCKER};

struct Dockerd {
    dir: tempfile::TempDir,
    exec: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir_in("/var/tmp")
            .expect("dockerd dir");
        // Short: containerd's sockets live under the exec root.
        let exec = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .expect("dockerd exec root");
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(exec.path().join("x"))
            .arg("--pidfile")
            .arg(exec.path().join("docker.pid"))
            .arg("-H")
            .arg(format!(
                "unix://{}",
                exec.path().join("docker.sock").display()
            ))
            .args(["--bridge", "none", "--iptables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd is installed (apt-get install docker.io)");
        let d = Dockerd { dir, exec, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if d.docker(&["version", "--format", "{{.Server.Version}}"])
                .code
                == 0
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dockerd did not start: {}",
            std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    fn host(&self) -> String {
        format!("unix://{}", self.exec.path().join("docker.sock").display())
    }

    fn docker(&self, args: &[&str]) -> Out {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
            .into()
    }

    /// Our CLI, pointed at dockerd.
    fn berth(&self, args: &[&str]) -> Out {
        Command::new(BERTH)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", self.dir.path().join("berth-config"))
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
            .into()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in ids.stdout.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        for m in mounts_under(&[self.dir.path(), self.exec.path()]) {
            let _ = nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mounts_under(roots: &[&Path]) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|p| roots.iter().any(|r| p.starts_with(r)))
        .collect();
    // Deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

#[test]
fn our_cli_drives_a_real_dockerd() {
    let dockerd = Dockerd::start();
    let tar = common::busybox_tar(dockerd.dir.path());
    let out = dockerd.berth(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().expect("path"),
        "bb:1",
    ]);
    ok(&out, "berth import against dockerd");
    let images = dockerd.berth(&["images"]);
    assert!(
        images.stdout.starts_with("REPOSITORY") && images.stdout.contains("bb "),
        "{images:?}"
    );
    let run = dockerd.berth(&["run", "--rm", "bb:1", "echo", "on dockerd"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "on dockerd\n"),
        "{run:?}"
    );
    let code = dockerd.berth(&["run", "--rm", "bb:1", "sh", "-c", "exit 7"]);
    assert_eq!(code.code, 7, "{code:?}");
    ok(
        &dockerd.berth(&["run", "-d", "--name", "cc", "bb:1", "sleep", "30"]),
        "run -d",
    );
    let ps = dockerd.berth(&["ps", "--format", "{{.Names}} {{.Image}}"]);
    assert_eq!(ps.stdout, "cc bb:1\n", "{ps:?}");
    ok(&dockerd.berth(&["rm", "-f", "cc"]), "rm -f");
    let inspect = dockerd.berth(&["inspect", "-f", "{{.Os}}", "bb:1"]);
    assert_eq!(inspect.stdout.trim(), "linux", "{inspect:?}");
    ok(&dockerd.berth(&["rmi", "bb:1"]), "rmi");
}

#[test]
fn archives_travel_between_dockerd_and_berthd() {
    let dockerd = Dockerd::start();
    let berthd = Daemon::start();
    let id = berthd.import_busybox("busybox:latest");

    // berthd → dockerd 20.10: `docker load` of our `docker save`.
    let ours = berthd.root.path().join("ours.tar");
    let ours = ours.to_str().expect("path");
    ok(
        &berthd.berth(&["save", "-o", ours, "busybox"]),
        "berth save",
    );
    let out = dockerd.docker(&["load", "-i", ours]);
    ok(&out, "dockerd load");
    let run = dockerd.docker(&["run", "--rm", "busybox", "echo", "loaded by dockerd"]);
    assert_eq!(run.stdout, "loaded by dockerd\n", "{run:?}");
    assert_eq!(
        dockerd
            .docker(&["inspect", "-f", "{{.Id}}", "busybox"])
            .stdout
            .trim(),
        id,
        "the image ID survives"
    );

    // dockerd → berthd: our load of dockerd's own `docker save` (its legacy layout).
    ok(
        &dockerd.docker(&["tag", "busybox", "me/from-dockerd:1"]),
        "tag",
    );
    let theirs = berthd.root.path().join("theirs.tar");
    let theirs = theirs.to_str().expect("path");
    ok(
        &dockerd.docker(&["save", "-o", theirs, "me/from-dockerd:1"]),
        "dockerd save",
    );
    let out = berthd.berth(&["load", "-i", theirs]);
    ok(&out, "berth load");
    assert!(
        out.stdout.contains("Loaded image: me/from-dockerd:1"),
        "{out:?}"
    );
    let run = berthd.berth(&["run", "--rm", "me/from-dockerd:1", "echo", "from dockerd"]);
    assert_eq!(run.stdout, "from dockerd\n", "{run:?}");
}

#[test]
fn images_travel_between_dockerd_and_berthd_through_a_registry() {
    let reg = TestRegistry::plain();
    let dockerd = Dockerd::start();
    let berthd = Daemon::start();

    // dockerd pushes gzip layers in Docker v2 schema 2; berthd pulls and runs them.
    let tar = common::busybox_tar(dockerd.dir.path());
    ok(
        &dockerd.docker(&["import", tar.to_str().expect("path"), "bb:src"]),
        "docker import",
    );
    let pushed_by_docker = format!("{}/d/bb:1", reg.host());
    ok(
        &dockerd.docker(&["tag", "bb:src", &pushed_by_docker]),
        "tag",
    );
    ok(
        &dockerd.docker(&["push", &pushed_by_docker]),
        "dockerd push",
    );
    ok(&berthd.berth(&["pull", &pushed_by_docker]), "berth pull");
    let run = berthd.berth(&[
        "run",
        "--rm",
        &pushed_by_docker,
        "echo",
        "pushed by dockerd",
    ]);
    assert_eq!(run.stdout, "pushed by dockerd\n", "{run:?}");

    // berthd pushes; dockerd pulls and runs.
    berthd.import_busybox("busybox:latest");
    let pushed_by_berth = format!("{}/b/bb:1", reg.host());
    ok(&berthd.berth(&["tag", "busybox", &pushed_by_berth]), "tag");
    ok(&berthd.berth(&["push", &pushed_by_berth]), "berth push");
    ok(&dockerd.docker(&["pull", &pushed_by_berth]), "dockerd pull");
    let run = dockerd.docker(&["run", "--rm", &pushed_by_berth, "echo", "pushed by berth"]);
    assert_eq!(run.stdout, "pushed by berth\n", "{run:?}");
}
