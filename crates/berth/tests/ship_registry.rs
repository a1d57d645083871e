//! Pulls of images put in a real `docker-registry` by skopeo: OCI and Docker v2 schema 2
//! manifests, an index of platforms, a corrupted blob, a daemon killed mid-pull, and a TLS
//! registry with its CA in `certs.d` and htpasswd auth.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_testkit::{Pki, RegistryOpts, TestRegistry};
use common::oci::{layout, skopeo_push, Image, Layer};
use common::{ok, Daemon};

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn other_arch() -> &'static str {
    match host_arch() {
        "arm64" => "amd64",
        _ => "arm64",
    }
}

fn runnable(extra: Layer) -> Image {
    Image {
        os: "linux",
        arch: host_arch(),
        variant: None,
        layers: vec![Layer::busybox(), extra],
        cmd: vec!["/bin/busybox", "cat", "/hello"],
    }
}

#[test]
fn oci_and_docker_v2_manifests_and_platform_selection() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    let dir = d.root.path();

    // Docker v2 schema 2, converted by skopeo.
    let l = layout(dir, &[runnable(Layer::file("hello", b"v2s2\n"))], "v2");
    skopeo_push(
        &l,
        "v2",
        &format!("{}/fx/app:v2", reg.host()),
        Some("v2s2"),
        false,
    );
    let name = format!("{}/fx/app:v2", reg.host());
    ok(&d.berth(&["pull", &name]), "pull v2s2");
    let run = d.berth(&["run", "--rm", &name]);
    assert_eq!(run.stdout, "v2s2\n", "{run:?}");

    // An OCI index with two platforms: the host's is chosen unless --platform says otherwise.
    let mut foreign = runnable(Layer::file("hello", b"foreign\n"));
    foreign.arch = other_arch();
    if foreign.arch == "arm64" {
        foreign.variant = Some("v8");
    }
    let l = layout(
        dir,
        &[runnable(Layer::file("hello", b"native\n")), foreign],
        "multi",
    );
    skopeo_push(
        &l,
        "multi",
        &format!("{}/fx/app:multi", reg.host()),
        None,
        true,
    );
    let name = format!("{}/fx/app:multi", reg.host());
    ok(&d.docker(&["pull", &name]), "docker pull index");
    let arch = d.berth(&["inspect", "-f", "{{.Architecture}}", &name]);
    assert_eq!(arch.stdout.trim(), host_arch(), "{arch:?}");
    assert_eq!(d.berth(&["run", "--rm", &name]).stdout, "native\n");
    let other = format!("{}/fx/app:multi", reg.host());
    let platform = format!("linux/{}", other_arch());
    ok(
        &d.berth(&["pull", "--platform", &platform, &other]),
        "pull --platform",
    );
    let arch = d.berth(&["inspect", "-f", "{{.Architecture}}", &other]);
    assert_eq!(arch.stdout.trim(), other_arch(), "{arch:?}");
    let out = d.berth(&["pull", "--platform", "linux/s390x", &other]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no matching manifest"), "{out:?}");
}

#[test]
fn corrupted_blob_fails_the_pull_and_leaves_the_store_clean() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    let l = layout(
        d.root.path(),
        &[runnable(Layer::random("junk", 300_000, 7))],
        "bad",
    );
    let name = format!("{}/fx/bad:1", reg.host());
    skopeo_push(&l, "bad", &name, None, false);
    // Flip bytes in the middle of the big layer's blob: same size, wrong digest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.join("index.json")).expect("index")).expect("json");
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .expect("digest")
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(l.join("blobs/sha256").join(&manifest_hex)).expect("manifest"),
    )
    .expect("json");
    let layer_hex = manifest["layers"][1]["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .expect("layer digest");
    let file = reg.blob_file(layer_hex);
    let mut data = std::fs::read(&file).expect("registry blob");
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&file, data).expect("corrupt blob");

    let out = d.berth(&["pull", &name]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("digest mismatch"), "{out:?}");
    assert!(d.berth(&["images", "-q"]).stdout.trim().is_empty());
    // Only the good layer may stay (it is verified and reusable); nothing half-written.
    for dir in ["content/ingest", "layers/tmp"] {
        let left = std::fs::read_dir(d.data_root().join(dir))
            .expect("the store's work directory exists")
            .count();
        assert_eq!(left, 0, "{dir} is empty");
    }
    let blob = d.data_root().join("content/blobs/sha256").join(layer_hex);
    assert!(!blob.exists(), "the corrupted blob was not kept");
}

#[test]
fn a_layer_stored_from_another_image_still_gets_its_blob() {
    // The layer is already unpacked (from an import of the same tar), but this image's
    // compressed blob is not in the store: the pull must fetch it so push and save work.
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    d.import_busybox("local:1");
    let tar = std::fs::read(common::busybox_tar(d.root.path())).expect("fixture tar");
    let img = Image {
        os: "linux",
        arch: host_arch(),
        variant: None,
        layers: vec![Layer::raw(tar)],
        cmd: vec!["sh"],
    };
    let l = layout(d.root.path(), &[img], "same");
    let name = format!("{}/fx/same:1", reg.host());
    skopeo_push(&l, "same", &name, None, false);
    ok(&d.berth(&["pull", &name]), "pull");
    let copy = format!("{}/fx/copy:1", reg.host());
    ok(&d.berth(&["tag", &name, &copy]), "tag");
    ok(&d.berth(&["push", &copy]), "push of the pulled image");
    let file = d.root.path().join("same.tar");
    ok(
        &d.berth(&["save", "-o", file.to_str().expect("path"), &name]),
        "save of the pulled image",
    );
    let d2 = Daemon::start();
    ok(&d2.berth(&["pull", &copy]), "pull of the pushed copy");
    let run = d2.berth(&["run", "--rm", &copy, "echo", "same"]);
    assert_eq!(run.stdout, "same\n", "{run:?}");
}

/// A TCP proxy to `upstream` whose answers are slowed to about 1 MB/s while `slow` is set.
fn throttling_proxy(upstream: u16, slow: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_read, mut u_write) = match (conn.try_clone(), up.try_clone()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => continue,
            };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut u_write);
            });
            let (mut u_read, mut c_write) = (up, conn);
            let slow = slow.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match u_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            if slow.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(16));
                            }
                        }
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn daemon_killed_mid_pull_resumes_with_finished_layers() {
    let reg = TestRegistry::plain();
    let slow = Arc::new(AtomicBool::new(true));
    let proxy = throttling_proxy(reg.port, slow.clone());
    let mut d = Daemon::start();
    let l = layout(
        d.root.path(),
        &[runnable(Layer::random("big", 8 << 20, 11))],
        "big",
    );
    skopeo_push(&l, "big", &format!("{}/fx/big:1", reg.host()), None, false);
    let name = format!("127.0.0.1:{proxy}/fx/big:1");

    let mut pull = Command::new(common::BERTH)
        .args(["pull", &name])
        .env("BERTH_HOST", d.host())
        .env("DOCKER_CONFIG", d.client_config())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pull");
    // Wait until the small layer is stored, then kill the daemon while the big one streams.
    let stdout = pull.stdout.take().expect("stdout");
    let mut saw_complete = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.ends_with("Pull complete") {
            saw_complete = true;
            break;
        }
    }
    assert!(saw_complete, "the first layer completed");
    d.kill9();
    let _ = pull.wait();
    assert!(
        d.mounts().iter().all(|m| !m.contains("overlay")),
        "{:?}",
        d.mounts()
    );

    slow.store(false, Ordering::Relaxed);
    d.spawn();
    assert!(d.berth(&["images", "-q"]).stdout.trim().is_empty());
    let out = d.berth(&["pull", &name]);
    ok(&out, "pull again");
    assert_eq!(
        out.stdout.matches("Already exists").count(),
        1,
        "the finished layer is not fetched again: {out:?}"
    );
    let run = d.berth(&["run", "--rm", &name, "/bin/busybox", "wc", "-c", "/big"]);
    assert!(run.stdout.contains(&(8u64 << 20).to_string()), "{run:?}");
}

#[test]
fn tls_registry_with_certs_d_client_certificate_and_basic_auth() {
    let pki_dir = tempfile::tempdir().expect("pki dir");
    let pki = Pki::new(pki_dir.path());
    let reg = TestRegistry::start(RegistryOpts {
        tls: Some(pki.dir.clone()),
        client_ca: true,
        htpasswd: vec![("me".into(), "pw".into())],
        ..Default::default()
    });
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let name = format!("{}/me/tls:1", reg.host());
    ok(&d.berth(&["tag", "busybox", &name]), "tag");

    // The registry wants a client certificate, which only certs.d can provide.
    let out = d.berth_stdin(
        &["login", &reg.host(), "-u", "me", "--password-stdin"],
        b"pw\n",
    );
    assert_ne!(out.code, 0, "no client certificate yet: {out:?}");

    // Docker's layout: CAs as *.crt, client pairs as <name>.cert + <name>.key.
    let certs = d.config_dir().join("certs.d").join(reg.host());
    std::fs::create_dir_all(&certs).expect("certs.d");
    std::fs::copy(pki.path("ca.crt"), certs.join("ca.crt")).expect("ca");
    std::fs::copy(pki.path("client.crt"), certs.join("client.cert")).expect("cert");
    std::fs::copy(pki.path("client.key"), certs.join("client.key")).expect("key");
    let out = d.berth_stdin(
        &["login", &reg.host(), "-u", "me", "--password-stdin"],
        b"pw\n",
    );
    ok(&out, "login over TLS");
    ok(&d.berth(&["push", &name]), "push over TLS");
    ok(&d.berth(&["rmi", &name]), "rmi");
    ok(&d.berth(&["pull", &name]), "pull over TLS");
    assert_eq!(
        d.berth(&["run", "--rm", &name, "echo", "secure"]).stdout,
        "secure\n"
    );
    // The docker CLI has no credentials of its own: the registry's 401 comes through.
    let out = d.docker(&["pull", &name]);
    assert_eq!(out.code, 1, "{out:?}");
}
