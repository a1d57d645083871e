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

/// How many processes the kernel's OOM killer took in the cgroup: v2 `memory.events`, v1
/// `memory.oom_control` (0 on kernels before 4.13, which lack the v1 counter).
pub fn oom_kills(cgroups_path: &str) -> u64 {
    oom_kills_at(Path::new(CGROUP_ROOT), cgroups_path)
}

fn oom_kills_at(root: &Path, cgroups_path: &str) -> u64 {
    let rel = cgroups_path.trim_start_matches('/');
    let file = if root.join("cgroup.controllers").exists() {
        root.join(rel).join("memory.events")
    } else {
        root.join("memory").join(rel).join("memory.oom_control")
    };
    read_kv(&file).get("oom_kill").copied().unwrap_or(0)
}

/// What a container's cgroup has used so far; zero where the controller has no such file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    pub percpu_ns: Vec<u64>,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// 0 when unlimited.
    pub memory_limit: u64,
    pub memory_stats: std::collections::BTreeMap<String, u64>,
    pub pids_current: u64,
    /// 0 when unlimited.
    pub pids_limit: u64,
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn read_kv(path: &Path) -> std::collections::BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A limit file: a number, or `max` (v2) / a huge sentinel (v1) for none.
fn read_limit(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim() == "max" => 0,
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n < (1 << 62))
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// The cgroup's CPU, memory and PID counters, from v2 or v1 files.
pub fn usage(cgroups_path: &str) -> io::Result<Usage> {
    usage_at(Path::new(CGROUP_ROOT), cgroups_path)
}

fn usage_at(root: &Path, cgroups_path: &str) -> io::Result<Usage> {
    let rel = cgroups_path.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(rel);
        if !dir.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let cpu = read_kv(&dir.join("cpu.stat"));
        let get = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
        return Ok(Usage {
            cpu_total_ns: get("usage_usec"),
            cpu_user_ns: get("user_usec"),
            cpu_kernel_ns: get("system_usec"),
            percpu_ns: Vec::new(),
            memory_usage: read_u64(&dir.join("memory.current")),
            memory_max_usage: read_u64(&dir.join("memory.peak")),
            memory_limit: read_limit(&dir.join("memory.max")),
            memory_stats: read_kv(&dir.join("memory.stat")),
            pids_current: read_u64(&dir.join("pids.current")),
            pids_limit: read_limit(&dir.join("pids.max")),
        });
    }
    let at = |ctrl: &str, file: &str| root.join(ctrl).join(rel).join(file);
    if !root.join("memory").join(rel).is_dir() && !root.join("cpuacct").join(rel).is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(Usage {
        cpu_total_ns: read_u64(&at("cpuacct", "cpuacct.usage")),
        cpu_user_ns: read_u64(&at("cpuacct", "cpuacct.usage_user")),
        cpu_kernel_ns: read_u64(&at("cpuacct", "cpuacct.usage_sys")),
        percpu_ns: std::fs::read_to_string(at("cpuacct", "cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
        memory_usage: read_u64(&at("memory", "memory.usage_in_bytes")),
        memory_max_usage: read_u64(&at("memory", "memory.max_usage_in_bytes")),
        memory_limit: read_limit(&at("memory", "memory.limit_in_bytes")),
        memory_stats: read_kv(&at("memory", "memory.stat")),
        pids_current: read_u64(&at("pids", "pids.current")),
        pids_limit: read_limit(&at("pids", "pids.max")),
    })
}

/// Limits to change on a live cgroup (`docker update`); `None` leaves one as it is, and 0
/// (or -1 for PIDs) means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub pids: Option<i64>,
}

/// Writes `limits` into the cgroup (v2 or v1 files).
pub fn set_limits(cgroups_path: &str, limits: &Limits) -> io::Result<()> {
    set_limits_at(Path::new(CGROUP_ROOT), cgroups_path, limits)
}

const CFS_PERIOD: i64 = 100_000;

fn set_limits_at(root: &Path, cgroups_path: &str, l: &Limits) -> io::Result<()> {
    let rel = cgroups_path.trim_start_matches('/');
    let write = |p: std::path::PathBuf, v: String| std::fs::write(&p, v);
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(rel);
        let max = |n: i64| if n > 0 { n.to_string() } else { "max".into() };
        if let Some(m) = l.memory {
            write(dir.join("memory.max"), max(m))?;
        }
        if let (Some(swap), Some(m)) = (l.memory_swap, l.memory) {
            // Docker's MemorySwap counts memory too; v2's swap.max is the swap alone.
            let v = if swap > 0 {
                (swap - m).max(0).to_string()
            } else {
                "max".into()
            };
            write(dir.join("memory.swap.max"), v)?;
        }
        if let Some(n) = l.nano_cpus {
            let v = if n > 0 {
                format!("{} {CFS_PERIOD}", n * CFS_PERIOD / 1_000_000_000)
            } else {
                format!("max {CFS_PERIOD}")
            };
            write(dir.join("cpu.max"), v)?;
        }
        if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
            // The kernel's shares→weight mapping (as runc does it).
            let weight = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
            write(dir.join("cpu.weight"), weight.to_string())?;
        }
        if let Some(p) = l.pids {
            write(dir.join("pids.max"), max(p))?;
        }
        return Ok(());
    }
    let at = |ctrl: &str, file: &str| root.join(ctrl).join(rel).join(file);
    if let Some(m) = l.memory {
        let v = if m > 0 { m.to_string() } else { "-1".into() };
        // Raising the limit above memsw first would fail: memsw goes up first, down last.
        let swap = l
            .memory_swap
            .map(|s| if s > 0 { s.to_string() } else { "-1".into() });
        if let Some(sw) = &swap {
            let _ = write(at("memory", "memory.memsw.limit_in_bytes"), sw.clone());
        }
        write(at("memory", "memory.limit_in_bytes"), v)?;
        if let Some(sw) = swap {
            let _ = write(at("memory", "memory.memsw.limit_in_bytes"), sw);
        }
    }
    if let Some(n) = l.nano_cpus {
        write(at("cpu", "cpu.cfs_period_us"), CFS_PERIOD.to_string())?;
        let quota = if n > 0 {
            n * CFS_PERIOD / 1_000_000_000
        } else {
            -1
        };
        write(at("cpu", "cpu.cfs_quota_us"), quota.to_string())?;
    }
    if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
        write(at("cpu", "cpu.shares"), s.to_string())?;
    }
    if let Some(p) = l.pids {
        let v = if p > 0 { p.to_string() } else { "max".into() };
        write(at("pids", "pids.max"), v)?;
    }
    Ok(())
}

/// Turns the OOM killer off for a cgroup v1 memory cgroup (`--oom-kill-disable`). cgroup v2
/// has no such switch (dockerd warns and ignores it there); libcontainer 0.7 drops the spec's
/// `disableOOMKiller`, so the shim applies it itself before the process starts.
pub fn disable_oom_killer(cgroups_path: &str) -> io::Result<()> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return Ok(());
    }
    let rel = cgroups_path.trim_start_matches('/');
    std::fs::write(
        root.join("memory").join(rel).join("memory.oom_control"),
        "1",
    )
}

/// The host's total CPU time in nanoseconds (`/proc/stat`'s first line), Docker's
/// `system_cpu_usage`.
pub fn system_cpu_ns() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(ticks.saturating_mul(1_000_000_000) / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_from_v1_and_v2_counters() {
        let dir = tempfile::tempdir().expect("dir");
        let v1 = dir.path().join("memory/berth/a");
        std::fs::create_dir_all(&v1).expect("mkdir");
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("write");
        assert_eq!(oom_kills_at(dir.path(), "/berth/a"), 2);
        assert_eq!(oom_kills_at(dir.path(), "/berth/gone"), 0);
        let v2 = dir.path().join("v2");
        std::fs::create_dir_all(v2.join("berth/b")).expect("mkdir");
        std::fs::write(v2.join("cgroup.controllers"), "memory\n").expect("write");
        std::fs::write(
            v2.join("berth/b/memory.events"),
            "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
        )
        .expect("write");
        assert_eq!(oom_kills_at(&v2, "/berth/b"), 1);
    }

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
        std::fs::write(
            v2.join("cpu.stat"),
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
        )
        .expect("write");
        std::fs::write(v2.join("memory.current"), "4096\n").expect("write");
        std::fs::write(v2.join("memory.max"), "max\n").expect("write");
        std::fs::write(v2.join("pids.current"), "2\n").expect("write");
        let u = usage_at(dir.path(), "/berth/c").expect("usage");
        assert_eq!((u.cpu_total_ns, u.cpu_user_ns), (5000, 3000));
        assert_eq!(
            (u.memory_usage, u.memory_limit, u.pids_current),
            (4096, 0, 2)
        );
        assert!(system_cpu_ns().expect("proc stat") > 0);
    }
}
