//! End-to-end tests of shipping images: push and pull against a real `docker-registry`,
//! registry mirrors (the offline-site setup), login with Basic auth, save/load, export/import
//! and search, driven by `berth` and by the real docker CLI.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use berth_testkit::{RegistryOpts, TestRegistry};
use common::{ok, Daemon, Out};

#[test]
fn push_pull_round_trip_with_both_clis() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    let id = d.import_busybox("busybox:latest");
    let name = format!("{}/me/bb:1.0", reg.host());
    ok(&d.berth(&["tag", "busybox", &name]), "tag");

    let out = d.berth(&["push", &name]);
    ok(&out, "push");
    assert!(
        out.stdout.contains(&format!(
            "The push refers to repository [{}/me/bb]",
            reg.host()
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("Pushed"), "{out:?}");
    assert!(out.stdout.contains("1.0: digest: sha256:"), "{out:?}");
    let blobs = reg.blob_count();
    assert!(blobs >= 3, "layer, config and manifest stored: {blobs}");

    // The same image again transfers nothing.
    let out = d.berth(&["push", &name]);
    ok(&out, "second push");
    assert!(out.stdout.contains("Layer already exists"), "{out:?}");
    assert!(!out.stdout.contains("Pushed"), "{out:?}");
    assert_eq!(reg.blob_count(), blobs);

    // A second daemon (another machine) pulls it; berth and docker see the same image.
    let d2 = Daemon::start();
    let out = d2.berth(&["pull", &name]);
    ok(&out, "pull");
    assert!(out.stdout.contains("Pull complete"), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{out:?}"
    );
    let pulled = d2.berth(&["inspect", "-f", "{{.Id}}", &name]);
    assert_eq!(pulled.stdout.trim(), id, "image ID is the config digest");
    let run = d2.berth(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(run.stdout, "pulled\n", "{run:?}");
    let digests = d2.docker(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(digests.stdout.starts_with("sha256:"), "{digests:?}");

    let again = d2.docker(&["pull", &name]);
    ok(&again, "docker pull");
    assert!(
        again
            .stdout
            .contains(&format!("Status: Image is up to date for {name}")),
        "{again:?}"
    );

    // By digest, then rmi of the tag leaves no stray digest reference behind.
    let digest = d2.berth(&["inspect", "-f", "{{index .RepoDigests 0}}", &name]);
    let by_digest = digest.stdout.trim().to_string();
    assert!(by_digest.contains("@sha256:"), "{digest:?}");
    ok(&d2.berth(&["rmi", &name]), "rmi");
    assert!(
        d2.berth(&["images", "-q"]).stdout.trim().is_empty(),
        "rmi of the last tag removes the image"
    );
    let out = d2.docker(&["pull", &by_digest]);
    ok(&out, "pull by digest");
    assert_eq!(
        d2.berth(&["inspect", "-f", "{{.Id}}", &by_digest])
            .stdout
            .trim(),
        id
    );

    // docker push through berthd to another repository of the same registry: the layer is
    // mounted, not uploaded again.
    let other = format!("{}/team/bb:2", reg.host());
    ok(&d.docker(&["tag", "busybox", &other]), "docker tag");
    let out = d.docker(&["push", &other]);
    ok(&out, "docker push");
    assert!(out.stdout.contains("Mounted from me/bb"), "{out:?}");
}

#[test]
fn pull_errors_are_dockers() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    let missing = format!("{}/nobody/here:1", reg.host());
    for out in [d.berth(&["pull", &missing]), d.docker(&["pull", &missing])] {
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains("Error response from daemon") && out.stderr.contains("not found"),
            "{out:?}"
        );
    }
    let out = d.berth(&["pull", "Not/Valid"]);
    assert_ne!(out.code, 0, "{out:?}");
    // run of a missing image pulls it, and reports the registry's answer.
    let out = d.berth(&["run", "--rm", &missing]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("not found"), "{out:?}");
}

#[test]
fn registry_mirror_serves_docker_hub_names() {
    // The offline site: the mirror holds library/busybox, nothing reaches Docker Hub.
    let mirror = TestRegistry::plain();
    let publisher = Daemon::start();
    publisher.import_busybox("busybox:latest");
    let upstream_name = format!("{}/library/busybox:latest", mirror.host());
    ok(&publisher.berth(&["tag", "busybox", &upstream_name]), "tag");
    ok(
        &publisher.berth(&["push", &upstream_name]),
        "push to mirror",
    );

    let d = Daemon::start_with(&format!(
        r#""registry-mirrors": ["http://{}"]"#,
        mirror.host()
    ));
    let out = d.berth(&["pull", "busybox"]);
    ok(&out, "pull through mirror");
    assert!(out.stdout.contains("Using default tag: latest"), "{out:?}");
    assert!(
        out.stdout.contains("docker.io/library/busybox:latest"),
        "{out:?}"
    );
    let info = d.docker(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(info.stdout.contains(&mirror.host()), "{info:?}");
    // `run` of an image not present pulls it through the mirror as well.
    ok(&d.berth(&["rmi", "busybox"]), "rmi");
    let out = d.docker(&["run", "--rm", "busybox", "echo", "mirrored"]);
    assert_eq!(out.stdout, "mirrored\n", "{out:?}");
}

#[test]
fn login_push_pull_with_basic_auth() {
    let reg = TestRegistry::start(RegistryOpts {
        htpasswd: vec![("me".into(), "s3cret".into())],
        ..Default::default()
    });
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let name = format!("{}/me/private:1", reg.host());
    ok(&d.berth(&["tag", "busybox", &name]), "tag");

    let out = d.berth(&["push", &name]);
    assert_eq!(out.code, 1, "push without login: {out:?}");
    assert!(out.stderr.contains("authentication required"), "{out:?}");

    let out = d.berth_stdin(
        &["login", &reg.host(), "-u", "me", "--password-stdin"],
        b"wrong\n",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("401"), "{out:?}");

    let out = d.berth_stdin(
        &["login", &reg.host(), "-u", "me", "--password-stdin"],
        b"s3cret\n",
    );
    ok(&out, "login");
    assert!(out.stdout.contains("Login Succeeded"), "{out:?}");
    let config = std::fs::read_to_string(d.client_config().join("config.json"))
        .expect("config.json written");
    assert!(config.contains(&reg.host()), "{config}");

    ok(&d.berth(&["push", &name]), "push after login");
    ok(&d.berth(&["rmi", &name]), "rmi");
    ok(&d.berth(&["pull", &name]), "pull after login");

    let out = d.berth(&["logout", &reg.host()]);
    ok(&out, "logout");
    assert!(
        out.stdout
            .contains(&format!("Removing login credentials for {}", reg.host())),
        "{out:?}"
    );
    ok(&d.berth(&["rmi", &name]), "rmi");
    let out = d.berth(&["pull", &name]);
    assert_eq!(out.code, 1, "pull after logout: {out:?}");

    // The docker CLI's login goes through our /auth as well.
    let out = d.docker_stdin(
        &["login", &reg.host(), "-u", "me", "--password-stdin"],
        b"s3cret\n",
    );
    ok(&out, "docker login");
    ok(&d.docker(&["pull", &name]), "docker pull after login");
}

#[test]
fn save_load_round_trip_and_docker_interop() {
    let d = Daemon::start();
    let id = d.import_busybox("busybox:latest");
    ok(&d.berth(&["tag", "busybox", "me/other:2"]), "tag");
    let file = d.root.path().join("images.tar");
    let file = file.to_str().expect("path");
    ok(
        &d.berth(&["save", "-o", file, "busybox", "me/other:2"]),
        "save",
    );
    let listing = std::process::Command::new("tar")
        .args(["tf", file])
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for entry in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(listing.lines().any(|l| l == entry), "{entry}: {listing}");
    }

    // Load into a fresh daemon: both names, same ID, runnable.
    let d2 = Daemon::start();
    let out = d2.berth(&["load", "-i", file]);
    ok(&out, "load");
    assert!(
        out.stdout.contains("Loaded image: busybox:latest"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Loaded image: me/other:2"), "{out:?}");
    assert_eq!(
        d2.berth(&["inspect", "-f", "{{.Id}}", "me/other:2"])
            .stdout
            .trim(),
        id
    );
    let run = d2.berth(&["run", "--rm", "me/other:2", "echo", "loaded"]);
    assert_eq!(run.stdout, "loaded\n", "{run:?}");

    // docker save through berthd, docker load back in after removing it; stdin works too.
    let d3 = Daemon::start();
    let docker_file = d.root.path().join("docker.tar");
    let docker_file = docker_file.to_str().expect("path");
    ok(
        &d.docker(&["save", "-o", docker_file, "busybox"]),
        "docker save",
    );
    let data = std::fs::read(docker_file).expect("read archive");
    let out = d3.docker_stdin(&["load"], &data);
    ok(&out, "docker load");
    assert!(
        out.stdout.contains("Loaded image: busybox:latest"),
        "{out:?}"
    );
    // An OCI layout archive loads too.
    let oci = d.root.path().join("oci.tar");
    let oci = oci.to_str().expect("path");
    ok(
        &d.berth(&["save", "--format", "oci", "-o", oci, "me/other:2"]),
        "save --format oci",
    );
    let listing = std::process::Command::new("tar")
        .args(["tf", oci])
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l == "index.json"), "{listing}");
    assert!(!listing.lines().any(|l| l == "manifest.json"), "{listing}");
    let out = d3.berth(&["load", "-i", oci]);
    ok(&out, "load oci");
    assert!(out.stdout.contains("me/other:2"), "{out:?}");
    assert_eq!(
        d3.berth(&["inspect", "-f", "{{.Id}}", "me/other:2"])
            .stdout
            .trim(),
        id
    );

    // Garbage is refused clearly.
    let out = d3.berth_stdin(&["load"], b"this is not a tar archive at all");
    assert_ne!(out.code, 0, "{out:?}");
}

/// The digest a push reported (`TAG: digest: sha256:… size: N`).
fn pushed_digest(out: &Out) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn digests_are_stable_across_save_load_and_push() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let first = format!("{}/me/a:1", reg.host());
    ok(&d.berth(&["tag", "busybox", &first]), "tag");
    let out = d.berth(&["push", &first]);
    ok(&out, "push");
    let digest = pushed_digest(&out);
    assert!(digest.starts_with("sha256:"), "{out:?}");

    let file = d.root.path().join("a.tar");
    let file = file.to_str().expect("path");
    ok(&d.berth(&["save", "-o", file, &first]), "save");
    let d2 = Daemon::start();
    ok(&d2.berth(&["load", "-i", file]), "load");
    let second = format!("{}/me/b:1", reg.host());
    ok(&d2.berth(&["tag", &first, &second]), "tag");
    let out = d2.berth(&["push", &second]);
    ok(&out, "push after load");
    assert_eq!(pushed_digest(&out), digest, "{out:?}");
}

#[test]
fn export_import_of_a_container() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    ok(
        &d.berth(&[
            "run",
            "--name",
            "maker",
            "busybox",
            "sh",
            "-c",
            "echo made > /made.txt; rm /etc/group",
        ]),
        "run",
    );
    let exported = d.root.path().join("c.tar");
    let exported = exported.to_str().expect("path");
    ok(&d.berth(&["export", "-o", exported, "maker"]), "export");
    let listing = std::process::Command::new("tar")
        .args(["tf", exported])
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l == "made.txt"), "{listing}");
    assert!(listing.lines().any(|l| l == "bin/busybox"), "{listing}");
    assert!(
        !listing.lines().any(|l| l == "etc/group"),
        "deleted files stay deleted"
    );

    let data = std::fs::read(exported).expect("read export");
    let out = d.berth_stdin(&["import", "-", "my-img:custom"], &data);
    ok(&out, "import -");
    let run = d.berth(&["run", "--rm", "my-img:custom", "cat", "/made.txt"]);
    assert_eq!(run.stdout, "made\n", "{run:?}");

    // docker export of a running container, through berthd.
    ok(
        &d.docker(&["run", "-d", "--name", "live", "busybox", "sleep", "30"]),
        "run -d",
    );
    let out = d.docker(&["export", "-o", exported, "live"]);
    ok(&out, "docker export");
    assert!(std::fs::metadata(exported).map(|m| m.len()).unwrap_or(0) > 1_000_000);
    let out = d.berth(&["export", "-o", exported, "no-such-container"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("No such container"), "{out:?}");
    // No view mount is left behind.
    assert!(
        d.mounts().iter().all(|m| !m.contains("views")),
        "{:?}",
        d.mounts()
    );
}

#[test]
fn import_from_a_url() {
    let d = Daemon::start();
    let tar = common::busybox_tar(d.root.path());
    let data = std::fs::read(&tar).expect("read fixture");
    let server = serve_once(data, "application/x-tar");
    let url = format!("http://{server}/rootfs.tar");
    let out = d.berth(&["import", &url, "from-url:1"]);
    ok(&out, "import URL");
    let run = d.berth(&["run", "--rm", "from-url:1", "echo", "fetched"]);
    assert_eq!(run.stdout, "fetched\n", "{run:?}");
}

#[test]
fn search_a_registry_index() {
    let body = r#"{"num_results":2,"query":"redis","results":[
        {"name":"redis","description":"Redis is an open source key-value store that functions as a data structure server.","star_count":12000,"is_official":true,"is_automated":false},
        {"name":"someone/redis-tools","description":"tools","star_count":3,"is_official":false,"is_automated":false}]}"#;
    let index = serve_once(body.as_bytes().to_vec(), "application/json");
    let d = Daemon::start();
    let out = d.berth(&["search", "--limit", "5", &format!("{index}/redis")]);
    ok(&out, "search");
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("DESCRIPTION") && header.contains("STARS"),
        "{out:?}"
    );
    assert!(out.stdout.contains("someone/redis-tools"), "{out:?}");

    let index = serve_once(body.as_bytes().to_vec(), "application/json");
    let out = d.docker(&[
        "search",
        "--filter",
        "is-official=true",
        "--format",
        "{{.Name}} {{.StarCount}}",
        &format!("{index}/redis"),
    ]);
    ok(&out, "docker search");
    assert_eq!(out.stdout, "redis 12000\n", "{out:?}");

    // An index nobody answers at is a clear error, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let out = d.berth(&["search", &format!("{closed}/redis")]);
    assert_ne!(out.code, 0, "{out:?}");
}

/// An HTTP server on loopback that answers one request with `body`, then stops.
fn serve_once(body: Vec<u8>, content_type: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    addr
}
