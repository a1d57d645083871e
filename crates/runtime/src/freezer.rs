//! Freezing a container's cgroup (`pause`/`unpause`, and `commit`'s default pause), on
//! cgroup v2 (`cgroup.freeze`) and v1 (the `freezer` controller's `freezer.state`).
//!
//! The container's cgroup is the `cgroupsPath` of its spec (`/berth/<id>`), which libcontainer
//! places under each v1 controller or under the unified v2 root.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// A freeze that takes longer is reported as failed (processes stuck in uninterruptible sleep
/// can block it; Docker gives up the same way).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the freezer of `cgroups_path` lives, and which interface it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Freezer {
    V2(PathBuf),
    V1(PathBuf),
}

fn locate(root: &Path, cgroups_path: &str) -> Freezer {
    let rel = cgroups_path.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        Freezer::V2(root.join(rel))
    } else {
        Freezer::V1(root.join("freezer").join(rel))
    }
}

/// Freezes (`true`) or thaws (`false`) every process of the cgroup, and waits until the kernel
/// says it is done.
pub fn set_frozen(cgroups_path: &str, frozen: bool) -> io::Result<()> {
    set_frozen_at(Path::new(CGROUP_ROOT), cgroups_path, frozen)
}

fn set_frozen_at(root: &Path, cgroups_path: &str, frozen: bool) -> io::Result<()> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    match locate(root, cgroups_path) {
        Freezer::V2(dir) => {
            std::fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            wait(deadline, || {
                Ok(std::fs::read_to_string(dir.join("cgroup.events"))?
                    .lines()
                    .any(|l| l.trim() == want))
            })
        }
        Freezer::V1(dir) => {
            let state = if frozen { "FROZEN" } else { "THAWED" };
            wait(deadline, || {
                // v1 can stay FREEZING when a task races the freeze: writing again retries it.
                std::fs::write(dir.join("freezer.state"), state)?;
                Ok(std::fs::read_to_string(dir.join("freezer.state"))?.trim() == state)
            })
        }
    }
}

/// Whether the cgroup is frozen now.
pub fn is_frozen(cgroups_path: &str) -> io::Result<bool> {
    match locate(Path::new(CGROUP_ROOT), cgroups_path) {
        Freezer::V2(dir) => Ok(std::fs::read_to_string(dir.join("cgroup.events"))?
            .lines()
            .any(|l| l.trim() == "frozen 1")),
        Freezer::V1(dir) => {
            Ok(std::fs::read_to_string(dir.join("freezer.state"))?.trim() == "FROZEN")
        }
    }
}

fn wait(deadline: Instant, mut done: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the cgroup did not reach the requested freezer state",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_paths() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            locate(dir.path(), "/berth/abc"),
            Freezer::V1(dir.path().join("freezer/berth/abc"))
        );
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory").expect("write");
        assert_eq!(
            locate(dir.path(), "/berth/abc"),
            Freezer::V2(dir.path().join("berth/abc"))
        );
    }

    #[test]
    fn v2_writes_and_waits_for_events() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("cgroup.controllers"), "").expect("write");
        let cg = dir.path().join("berth/x");
        std::fs::create_dir_all(&cg).expect("mkdir");
        // A fake cgroupfs: the "kernel" has already reported frozen.
        std::fs::write(cg.join("cgroup.events"), "populated 1\nfrozen 1\n").expect("write");
        set_frozen_at(dir.path(), "/berth/x", true).expect("freeze");
        assert_eq!(
            std::fs::read_to_string(cg.join("cgroup.freeze")).expect("read"),
            "1"
        );
    }
}
