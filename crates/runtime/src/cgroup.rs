//! Reading a container's cgroup: which processes are in it (`top`). cgroup v2 keeps one
//! `cgroup.procs` at `/sys/fs/cgroup/<path>`; v1 keeps one per controller, all the same, of
//! which the first present is read.

use std::io;
use std::path::Path;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// v1 controllers libcontainer always joins, in the order they are tried.
const V1_CONTROLLERS: [&str; 4] = ["pids", "memory", "cpu", "freezer"];

/// The PIDs (in the host's PID namespace) of every process in the cgroup.
pub fn pids(cgroups_path: &str) -> io::Result<Vec<i32>> {
    pids_at(Path::new(CGROUP_ROOT), cgroups_path)
}

fn pids_at(root: &Path, cgroups_path: &str) -> io::Result<Vec<i32>> {
    let rel = cgroups_path.trim_start_matches('/');
    let candidates: Vec<std::path::PathBuf> = if root.join("cgroup.controllers").exists() {
        vec![root.join(rel).join("cgroup.procs")]
    } else {
        V1_CONTROLLERS
            .iter()
            .map(|c| root.join(c).join(rel).join("cgroup.procs"))
            .collect()
    };
    let mut last = io::Error::from(io::ErrorKind::NotFound);
    for file in candidates {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                return Ok(text
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect())
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_v2_procs() {
        let dir = tempfile::tempdir().expect("dir");
        let v1 = dir.path().join("memory/berth/c");
        std::fs::create_dir_all(&v1).expect("mkdir");
        std::fs::write(v1.join("cgroup.procs"), "12\n34\n").expect("write");
        assert_eq!(pids_at(dir.path(), "/berth/c").expect("v1"), vec![12, 34]);
        std::fs::write(dir.path().join("cgroup.controllers"), "").expect("write");
        let v2 = dir.path().join("berth/c");
        std::fs::create_dir_all(&v2).expect("mkdir");
        std::fs::write(v2.join("cgroup.procs"), "56\n").expect("write");
        assert_eq!(pids_at(dir.path(), "/berth/c").expect("v2"), vec![56]);
    }
}
