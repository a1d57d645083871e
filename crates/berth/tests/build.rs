//! Dockerfile builds against berthd: every instruction, multi-stage with `--target`, the cache
//! (hits, a miss after editing one file, across a restart), a failing RUN, ONBUILD, hostile
//! COPY sources, syntax errors, reproducible IDs; through the docker CLI's legacy builder
//! (`DOCKER_BUILDKIT=0`, what `docker build` speaks to an engine without BuildKit) and
//! docker-py.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{ok, Daemon, Out, DOCKER};

fn docker_build(d: &Daemon, args: &[&str]) -> Out {
    Command::new(DOCKER)
        .arg("build")
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.root.path().join("docker-config"))
        .stdin(Stdio::null())
        .output()
        .expect("docker build")
        .into()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }
}

fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> String {
    let dir = d.root.path().join(name);
    write(&dir, files);
    dir.to_str().expect("path").to_string()
}

#[test]
fn every_instruction_through_the_docker_cli() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "all",
        &[
            (
                "Dockerfile",
                r#"# syntax=docker/dockerfile:1
FROM busybox AS base
ARG GREETING=hello
ENV APP_HOME=/srv/app \
    MODE=prod
LABEL org.example.name="demo app" version=1
MAINTAINER Berth Tester
WORKDIR $APP_HOME
COPY files/ ./files/
COPY *.txt notes/
COPY --chown=1000:1000 --chmod=640 secret.conf /etc/secret.conf
ADD bundle.tar /opt/bundle/
RUN echo "$GREETING from $MODE" > greeting && ls /opt/bundle > bundle-list
RUN ["sh", "-c", "echo exec form > exec.txt"]
SHELL ["/bin/sh", "-c"]
EXPOSE 8080 53/udp
VOLUME /data
USER 1000
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD test -f /srv/app/greeting
ONBUILD RUN echo child > /tmp/child
ENTRYPOINT ["sh", "-c"]
CMD ["cat /srv/app/greeting"]
"#,
            ),
            ("files/a/one", "1\n"),
            ("files/b", "2\n"),
            ("x.txt", "x\n"),
            ("y.txt", "y\n"),
            ("secret.conf", "s\n"),
        ],
    );
    // A local tar for ADD to unpack.
    let bundle = Path::new(&dir).join("bundle-src");
    write(&bundle, &[("inside.txt", "in\n")]);
    let status = Command::new("tar")
        .args(["-C", bundle.to_str().expect("path"), "-cf"])
        .arg(Path::new(&dir).join("bundle.tar"))
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());

    let out = docker_build(&d, &["-t", "demo:1", &dir]);
    ok(&out, "docker build");
    assert!(
        out.stdout.contains("Step 1/21 : FROM busybox AS base"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Successfully tagged demo:1"), "{out:?}");

    let run = d.berth(&["run", "--rm", "demo:1"]);
    assert_eq!(run.stdout, "hello from prod\n", "{run:?}");
    let check = |cmd: &str, want: &str| {
        let o = d.berth(&["run", "--rm", "--user", "0", "demo:1", cmd]);
        assert_eq!(o.stdout, want, "{cmd}: {o:?}");
    };
    check(
        "cat files/a/one files/b notes/x.txt notes/y.txt",
        "1\n2\nx\ny\n",
    );
    check("cat /opt/bundle/inside.txt bundle-list", "in\ninside.txt\n");
    check("cat exec.txt", "exec form\n");
    check("stat -c '%u:%g %a' /etc/secret.conf", "1000:1000 640\n");
    check("pwd", "/srv/app\n");

    let cfg = d.berth(&[
        "inspect",
        "-f",
        "{{.Config.User}}|{{.Config.StopSignal}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{index .Config.Labels \"version\"}}|{{.Author}}|{{json .Config.Entrypoint}}",
        "demo:1",
    ]);
    assert_eq!(
        cfg.stdout.trim(),
        r#"1000|SIGQUIT|{"53/udp":{},"8080/tcp":{}}|{"/data":{}}|1|Berth Tester|["sh","-c"]"#,
        "{cfg:?}"
    );
    let raw = d.docker(&["image", "inspect", "demo:1"]);
    assert!(
        raw.stdout.contains(r#""OnBuild": ["#) || raw.stdout.contains("RUN echo child"),
        "{raw:?}"
    );
    assert!(
        raw.stdout.contains("CMD-SHELL"),
        "healthcheck kept: {raw:?}"
    );
    let history = d.berth(&["history", "--no-trunc", "demo:1"]);
    assert!(
        history.stdout.contains("echo \"$GREETING from $MODE\""),
        "{history:?}"
    );

    // ONBUILD runs in the child build, and is not inherited further.
    let child = context(&d, "child", &[("Dockerfile", "FROM demo:1\nUSER 0\n")]);
    let out = docker_build(&d, &["-t", "child:1", &child]);
    ok(&out, "child build");
    assert!(
        out.stdout.contains("# Executing 1 build trigger"),
        "{out:?}"
    );
    let o = d.berth(&["run", "--rm", "child:1", "cat /tmp/child"]);
    assert_eq!(o.stdout, "child\n", "{o:?}");
}

#[test]
fn cache_hits_misses_and_survives_restart() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "cached",
        &[
            (
                "Dockerfile",
                "FROM busybox\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy.txt\"]\n",
            ),
            ("a.txt", "first\n"),
            ("b.txt", "b\n"),
        ],
    );
    ok(&docker_build(&d, &["-t", "cached:1", &dir]), "first build");
    let again = docker_build(&d, &["-t", "cached:1", &dir]);
    ok(&again, "rebuild");
    assert_eq!(again.stdout.matches("Using cache").count(), 5, "{again:?}");

    // Editing b.txt re-runs only from its COPY on.
    write(Path::new(&dir), &[("b.txt", "changed\n")]);
    let edited = docker_build(&d, &["-t", "cached:1", &dir]);
    ok(&edited, "edited build");
    assert_eq!(
        edited.stdout.matches("Using cache").count(),
        3,
        "{edited:?}"
    );

    d.stop();
    d.spawn();
    let after = docker_build(&d, &["-t", "cached:1", &dir]);
    ok(&after, "after restart");
    assert_eq!(after.stdout.matches("Using cache").count(), 5, "{after:?}");
    let none = docker_build(&d, &["--no-cache", "-t", "cached:1", &dir]);
    ok(&none, "--no-cache");
    assert_eq!(none.stdout.matches("Using cache").count(), 0, "{none:?}");
    assert_eq!(d.berth(&["run", "--rm", "cached:1"]).stdout, "first\n");
    // Intermediate images are hidden unless -a.
    let listed = d.berth(&["images", "-q"]).stdout.lines().count();
    let all = d.berth(&["images", "-a", "-q"]).stdout.lines().count();
    assert!(all > listed, "{listed} listed, {all} with -a");
}

#[test]
fn multi_stage_target_and_copy_from() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "multi",
        &[(
            "Dockerfile",
            "FROM --platform=$BUILDPLATFORM busybox AS build\nRUN echo artifact > /out.bin\n\nFROM busybox AS broken\nRUN exit 9\n\nFROM busybox AS final\nCOPY --from=build /out.bin /app/out.bin\nCMD [\"cat\", \"/app/out.bin\"]\n\nFROM busybox AS unused\nRUN exit 3\n",
        )],
    );
    let out = docker_build(&d, &["--target", "final", "-t", "multi:1", &dir]);
    ok(&out, "build --target final");
    assert!(
        !out.stdout.contains("exit 9"),
        "unneeded stage built: {out:?}"
    );
    assert!(!out.stdout.contains("exit 3"), "{out:?}");
    assert_eq!(d.berth(&["run", "--rm", "multi:1"]).stdout, "artifact\n");
    let out = docker_build(&d, &["--target", "nope", &dir]);
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn failures_are_reported_and_leave_no_tag() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "failing",
        &[("Dockerfile", "FROM busybox\nRUN echo partial && exit 3\n")],
    );
    let out = docker_build(&d, &["-t", "failed:1", &dir]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "The command '/bin/sh -c echo partial && exit 3' returned a non-zero code: 3"
        ),
        "{out:?}"
    );
    assert_ne!(
        d.berth(&["inspect", "failed:1"]).code,
        0,
        "no half-built tag"
    );
    assert!(
        d.berth(&["ps", "-aq"]).stdout.trim().is_empty(),
        "the step's container is gone"
    );

    let bad = context(&d, "syntax", &[("Dockerfile", "FROM busybox\nFORM x\n")]);
    let out = docker_build(&d, &[&bad]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("dockerfile parse error on line 2") && out.stderr.contains("FORM"),
        "{out:?}"
    );

    // A source that is a symlink out of the context resolves inside it, and is missing there.
    let hostile = context(
        &d,
        "hostile",
        &[("Dockerfile", "FROM busybox\nCOPY link /stolen\n")],
    );
    std::os::unix::fs::symlink("/etc/shadow", Path::new(&hostile).join("link")).expect("link");
    let out = docker_build(&d, &["-t", "stolen:1", &hostile]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("file not found in build context"),
        "{out:?}"
    );
}

#[test]
fn source_date_epoch_gives_reproducible_image_ids() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "repro",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG SOURCE_DATE_EPOCH\nCOPY f /f\nRUN echo built > /g\nCMD [\"cat\", \"/g\"]\n",
            ),
            ("f", "same\n"),
        ],
    );
    let build = || {
        let out = docker_build(
            &d,
            &[
                "--no-cache",
                "-q",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                &dir,
            ],
        );
        ok(&out, "build");
        out.stdout.trim().to_string()
    };
    let first = build();
    let second = build();
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(first, second, "same inputs, same image");
}

#[test]
fn docker_py_builds_images() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "py",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo py > /py\nCMD [\"cat\", \"/py\"]\n",
        )],
    );
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="py:1")
steps = [l["stream"] for l in logs if "stream" in l and l["stream"].startswith("Step")]
assert len(steps) == 3, steps
assert c.containers.run("py:1", remove=True) == b"py\n"
try:
    c.images.build(path=sys.argv[2], dockerfile="Nope")
    raise SystemExit("missing Dockerfile built")
except (docker.errors.BuildError, docker.errors.APIError) as e:
    assert "Cannot locate specified Dockerfile" in str(e), e
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &d.host(), &dir])
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn berth_build_cli_with_dockerignore_stdin_and_quiet() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "cli",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"/ctx\"]\n",
            ),
            (".dockerignore", "secret*\n!secret-ok\n"),
            ("kept.txt", "k\n"),
            ("secret.key", "s\n"),
            ("secret-ok", "o\n"),
        ],
    );
    let out = d.berth(&["build", "-t", "cli:1", &dir]);
    ok(&out, "berth build");
    assert!(
        out.stdout
            .contains("Sending build context to Docker daemon"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Successfully tagged cli:1"), "{out:?}");
    let listing = d.berth(&["run", "--rm", "cli:1"]);
    let names: Vec<&str> = listing.stdout.lines().collect();
    assert!(
        names.contains(&"kept.txt") && names.contains(&"secret-ok"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"secret.key"),
        ".dockerignore applied: {names:?}"
    );

    let quiet = d.berth(&["build", "-q", &dir]);
    ok(&quiet, "berth build -q");
    assert!(quiet.stdout.trim().starts_with("sha256:"), "{quiet:?}");
    assert_eq!(quiet.stdout.lines().count(), 1, "{quiet:?}");

    // A Dockerfile on stdin, with no context.
    let out = d.berth_stdin(
        &["build", "-t", "stdin:1", "-"],
        b"FROM busybox\nRUN echo from-stdin > /s\nCMD [\"cat\", \"/s\"]\n",
    );
    ok(&out, "build -");
    assert_eq!(d.berth(&["run", "--rm", "stdin:1"]).stdout, "from-stdin\n");

    let out = d.berth(&["build", "-f", "Nope", &dir]);
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn image_prune_removes_dangling_and_intermediate_images() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "prune",
        &[("Dockerfile", "FROM busybox\nENV A=1\nRUN echo x > /x\n")],
    );
    ok(&docker_build(&d, &["-t", "pruned:1", &dir]), "build");
    let all_before = d.berth(&["images", "-a", "-q"]).stdout.lines().count();
    assert!(all_before >= 3, "intermediates exist: {all_before}");
    let out = d.berth(&["image", "prune", "-f"]);
    ok(&out, "prune");
    assert!(out.stdout.contains("deleted: sha256:"), "{out:?}");
    // Tagged images stay; the intermediates are gone, and so is their cache.
    assert_eq!(
        d.berth(&["run", "--rm", "pruned:1", "cat", "/x"]).stdout,
        "x\n"
    );
    let all_after = d.berth(&["images", "-a", "-q"]).stdout.lines().count();
    assert!(all_after < all_before, "{all_before} -> {all_after}");
    // -a takes every image no container uses.
    let out = d.docker(&["image", "prune", "-a", "-f"]);
    ok(&out, "docker image prune -a");
    assert!(d.berth(&["images", "-a", "-q"]).stdout.trim().is_empty());
}

#[test]
fn run_steps_get_the_build_resource_flags() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = context(
        &d,
        "limits",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN grep 'open files' /proc/self/limits > /limits && df -k /dev/shm | tail -1 > /shm\n",
        )],
    );
    let fields = |d: &Daemon, image: &str, file: &str| -> Vec<String> {
        let out = d.berth(&["run", "--rm", image, "cat", file]);
        out.stdout.split_whitespace().map(str::to_string).collect()
    };
    ok(
        &docker_build(
            &d,
            &[
                "--ulimit",
                "nofile=300:400",
                "--shm-size",
                "32m",
                "-t",
                "lim:docker",
                &dir,
            ],
        ),
        "docker build",
    );
    assert_eq!(fields(&d, "lim:docker", "/limits")[3..5], ["300", "400"]);
    // df's second column is the size in KiB.
    assert_eq!(fields(&d, "lim:docker", "/shm")[1], (32 * 1024).to_string());
    ok(
        &d.berth(&[
            "build",
            "--no-cache",
            "--ulimit",
            "nofile=200:250",
            "-t",
            "lim:berth",
            &dir,
        ]),
        "berth build",
    );
    assert_eq!(fields(&d, "lim:berth", "/limits")[3..5], ["200", "250"]);
}

/// `busybox httpd` serving `root` on a free loopback port; killed on drop.
struct FileServer {
    child: std::process::Child,
    url: String,
}

impl FileServer {
    fn new(root: &Path) -> FileServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(root)
            .spawn()
            .expect("busybox httpd");
        let url = format!("http://127.0.0.1:{port}");
        assert!(
            common::eventually(5, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "httpd on {port}"
        );
        FileServer { child, url }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args([
            "-c",
            "user.name=berth",
            "-c",
            "user.email=berth@example.com",
        ])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

/// Remote contexts fetched by the daemon (`remote=`, what `berth build URL` and the SDKs
/// send): a tar.gz, a bare Dockerfile, and a git repository over HTTP with `#ref:subdir`.
#[test]
fn remote_contexts_tarballs_dockerfiles_and_git() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let served = d.root.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let tar_ctx = context(
        &d,
        "tarctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
            ),
            ("msg", "from a tarball\n"),
        ],
    );
    let tarred = Command::new("tar")
        .args(["-czf"])
        .arg(served.join("ctx.tar.gz"))
        .args(["-C", &tar_ctx, "."])
        .status()
        .expect("tar");
    assert!(tarred.success());
    write(
        &served,
        &[(
            "plain",
            "FROM busybox\nCMD [\"echo\", \"from a Dockerfile URL\"]\n",
        )],
    );
    // A repository with the context in app/ at tag v1, changed after the tag.
    let repo = d.root.path().join("repo");
    write(
        &repo,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCMD [\"echo\", \"root of the repo\"]\n",
            ),
            (
                "app/Dockerfile",
                "FROM busybox\nCOPY . /app\nCMD [\"cat\", \"/app/version\"]\n",
            ),
            ("app/version", "v1\n"),
        ],
    );
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    write(&repo, &[("app/version", "v2\n")]);
    git(&repo, &["commit", "-q", "-am", "two"]);
    git(
        d.root.path(),
        &["clone", "-q", "--bare", "repo", "served/repo.git"],
    );
    git(&served.join("repo.git"), &["update-server-info"]);
    let server = FileServer::new(&served);

    let cases = [
        ("ctx.tar.gz", "from a tarball\n"),
        ("plain", "from a Dockerfile URL\n"),
        ("repo.git", "root of the repo\n"),
        ("repo.git#v1:app", "v1\n"),
        ("repo.git#main:app", "v2\n"),
    ];
    for (i, (path, want)) in cases.iter().enumerate() {
        let tag = format!("remote{i}");
        let url = format!("{}/{path}", server.url);
        ok(&d.berth(&["build", "-q", "-t", &tag, &url]), &url);
        let out = d.berth(&["run", "--rm", &tag]);
        assert_eq!(out.stdout, *want, "{url}: {out:?}");
    }
    let bad = d.berth(&["build", &format!("{}/repo.git#v1:../..", server.url)]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("leaves the repository"), "{bad:?}");
    let missing = d.berth(&["build", &format!("{}/none.git", server.url)]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("git"), "{missing:?}");
}
