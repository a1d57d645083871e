//! Resolving Docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the container's
//! own `/etc/passwd` and `/etc/group`.
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)`: a container image is untrusted, and a
//! `/etc/passwd` that is a symlink to `/etc/shadow` of the host must resolve inside the rootfs.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("read {0}: {1}")]
    Io(String, String),
}

/// Opens `path` (absolute, inside the container) relative to `root` without ever leaving it.
pub fn open_in_root(root: &Path, path: &str) -> io::Result<File> {
    open_in_root_flags(root, path, libc::O_RDONLY)
}

pub(crate) fn open_in_root_flags(root: &Path, path: &str, flags: i32) -> io::Result<File> {
    let root_c = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in root path"))?;
    // SAFETY: root_c is a valid nul-terminated string; the returned fd is checked below.
    let dirfd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dirfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dirfd is a freshly opened, owned descriptor.
    let dir = unsafe { OwnedFd::from_raw_fd(dirfd) };
    let rel = path.trim_start_matches('/');
    let rel = CString::new(if rel.is_empty() { "." } else { rel })
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in path"))?;
    // libc marks open_how non-exhaustive (the kernel may grow it); this is the v0 layout.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 with a valid dirfd, a nul-terminated path and a correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly opened descriptor we own.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// Creates `path` (absolute, inside the container) and its missing parents, resolving every
/// component inside `root`, so that a symlink in the image cannot make us create directories on
/// the host. New directories are owned by `uid:gid`, as Docker creates a missing WORKDIR.
pub fn mkdir_in_root(root: &Path, path: &str, uid: u32, gid: u32) -> io::Result<()> {
    let mut prefix = String::new();
    for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let parent = if prefix.is_empty() {
            "/".to_string()
        } else {
            prefix.clone()
        };
        prefix.push('/');
        prefix.push_str(component);
        match open_in_root_flags(root, &prefix, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let dir = open_in_root_flags(root, &parent, libc::O_PATH | libc::O_DIRECTORY)?;
        let name = CString::new(component)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in path"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: mkdirat/fchownat on a directory fd we hold, with a nul-terminated name.
        unsafe {
            if libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) != 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::AlreadyExists {
                    return Err(err);
                }
                continue;
            }
            libc::fchownat(
                dir.as_raw_fd(),
                name.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            );
        }
    }
    Ok(())
}

fn read_db(root: &Path, path: &str) -> Result<String, UserError> {
    match open_in_root(root, path) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)
                .map_err(|e| UserError::Io(path.into(), e.to_string()))?;
            Ok(s)
        }
        // A missing database is fine for numeric users, as in Docker.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(UserError::Io(path.into(), e.to_string())),
    }
}

/// Resolves `spec` (Docker's `User` field) inside `root`.
pub fn resolve(root: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let passwd = read_db(root, "/etc/passwd")?;
    let group = read_db(root, "/etc/group")?;
    resolve_with(&passwd, &group, spec)
}

/// The parsing half of [`resolve`], separate so that it can be tested on plain strings.
pub fn resolve_with(passwd: &str, group: &str, spec: &str) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();

    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = users
        .iter()
        .find(|f| f[0] == user_part || (user_part.parse::<u32>().ok() == f[2].parse().ok()));
    let mut out = match (entry, user_part.parse::<u32>()) {
        (Some(f), _) => ExecUser {
            uid: f[2].parse().unwrap_or(0),
            gid: f[3].parse().unwrap_or(0),
            additional_gids: Vec::new(),
            home: f
                .get(5)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "/".into()),
        },
        (None, Ok(uid)) => ExecUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".into(),
        },
        (None, Err(_)) => return Err(UserError::NoUser(user_part.into())),
    };
    let user_name = entry.map(|f| f[0]).unwrap_or("");

    match group_part {
        Some(g) if !g.is_empty() => {
            out.gid = match groups.iter().find(|f| f[0] == g) {
                Some(f) => f[2].parse().unwrap_or(0),
                None => g.parse().map_err(|_| UserError::NoGroup(g.into()))?,
            };
        }
        _ => {
            // Supplementary groups come from group membership, only when no group was forced.
            if !user_name.is_empty() {
                for f in &groups {
                    let members = f.get(3).copied().unwrap_or("");
                    if members.split(',').any(|m| m == user_name) {
                        if let Ok(gid) = f[2].parse::<u32>() {
                            if gid != out.gid && !out.additional_gids.contains(&gid) {
                                out.additional_gids.push(gid);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:www\nnogroup:x:65534:\n";

    #[test]
    fn resolves_like_docker() {
        type Want = Result<(u32, u32, &'static [u32]), UserError>;
        let cases: &[(&str, Want)] = &[
            ("", Ok((0, 0, &[]))),
            ("root", Ok((0, 0, &[]))),
            ("nobody", Ok((65534, 65534, &[]))),
            ("www", Ok((33, 33, &[50]))),
            ("www:root", Ok((33, 0, &[]))),
            ("1234", Ok((1234, 0, &[]))),
            ("1234:5678", Ok((1234, 5678, &[]))),
            ("33", Ok((33, 33, &[50]))),
            ("ghost", Err(UserError::NoUser("ghost".into()))),
            ("root:ghosts", Err(UserError::NoGroup("ghosts".into()))),
        ];
        for (spec, want) in cases {
            let got = resolve_with(PASSWD, GROUP, spec)
                .map(|u| (u.uid, u.gid, u.additional_gids.clone()));
            let want = want
                .as_ref()
                .map(|(u, g, a)| (*u, *g, a.to_vec()))
                .map_err(|e| e.clone());
            assert_eq!(got, want, "user spec {spec:?}");
        }
    }

    #[test]
    fn mkdir_stays_inside_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("mkdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        // A dangling (inside the root) symlink is refused rather than followed to the host.
        assert!(mkdir_in_root(&root, "/link/work/dir", 0, 0).is_err());
        assert!(
            !outside.join("work").exists(),
            "escaped through the symlink"
        );
        mkdir_in_root(&root, "/a/b", 0, 0).expect("mkdir");
        assert!(root.join("a/b").is_dir());
    }

    #[test]
    fn passwd_symlink_cannot_escape_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        let outside = dir.path().join("secret");
        std::fs::write(&outside, "evil:x:4242:4242::/:/bin/sh\n").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("etc/passwd")).expect("symlink");
        // Resolved inside the root, the absolute target does not exist there.
        assert_eq!(
            resolve(&root, "evil"),
            Err(UserError::NoUser("evil".into()))
        );
    }
}
