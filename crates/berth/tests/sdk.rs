//! The Docker SDK for Python (docker-py, installed by scripts/setup-deps.sh) against berthd:
//! push, pull, save, load and run through its own HTTP client and stream parsing.

mod common;

use std::process::Command;

use berth_testkit::TestRegistry;
use common::Daemon;

const SCRIPT: &str = r#"
import sys
import docker

client = docker.DockerClient(base_url=sys.argv[1])
reg = sys.argv[2]
img = client.images.get("busybox:latest")
repo = f"{reg}/sdk/bb"
assert img.tag(repo, "1")

errors = [l for l in client.images.push(repo, tag="1", stream=True, decode=True) if "error" in l]
assert not errors, errors
client.images.remove(f"{repo}:1")
pulled = client.images.pull(repo, tag="1")
assert pulled.id == img.id, (pulled.id, img.id)
assert any(d.startswith(repo + "@sha256:") for d in pulled.attrs["RepoDigests"]), pulled.attrs

archive = b"".join(img.save(named=True))
client.images.remove(img.id, force=True)
assert not client.images.list(), client.images.list()
loaded = client.images.load(archive)
assert [i.id for i in loaded] == [img.id], loaded

out = client.containers.run("busybox:latest", ["echo", "from", "sdk"], remove=True)
assert out == b"from sdk\n", out
try:
    client.images.pull(f"{reg}/sdk/missing", tag="1")
    raise SystemExit("pull of a missing image succeeded")
except docker.errors.NotFound as e:
    assert "not found" in str(e), e
print("sdk ok")
"#;

#[test]
fn docker_sdk_for_python_ships_images() {
    let reg = TestRegistry::plain();
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &d.host(), &reg.host()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sdk ok"),
        "docker-py (pip install docker): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
