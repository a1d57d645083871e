//! Helpers shared by the integration tests: tars built entry by entry (including names the
//! `tar` crate's safe setters refuse), and a textual dump of a tree for exact comparison.
#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// One tar entry, written with raw name bytes.
#[derive(Clone)]
pub struct Ent {
    path: Vec<u8>,
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<Vec<u8>>,
    data: Vec<u8>,
    dev: (u32, u32),
    pax: Vec<(String, Vec<u8>)>,
}

impl Ent {
    fn new(path: &str, kind: EntryType, mode: u32) -> Self {
        Self {
            path: path.as_bytes().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_000,
            link: None,
            data: Vec::new(),
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
    pub fn file(path: &str, data: &str) -> Self {
        let mut e = Self::new(path, EntryType::Regular, 0o644);
        e.data = data.as_bytes().to_vec();
        e
    }
    pub fn dir(path: &str) -> Self {
        Self::new(path, EntryType::Directory, 0o755)
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        let mut e = Self::new(path, EntryType::Symlink, 0o777);
        e.link = Some(target.as_bytes().to_vec());
        e
    }
    pub fn hardlink(path: &str, target: &str) -> Self {
        let mut e = Self::new(path, EntryType::Link, 0o644);
        e.link = Some(target.as_bytes().to_vec());
        e
    }
    pub fn fifo(path: &str) -> Self {
        Self::new(path, EntryType::Fifo, 0o644)
    }
    pub fn char_dev(path: &str, major: u32, minor: u32) -> Self {
        let mut e = Self::new(path, EntryType::Char, 0o666);
        e.dev = (major, minor);
        e
    }
    pub fn block_dev(path: &str, major: u32, minor: u32) -> Self {
        let mut e = Self::new(path, EntryType::Block, 0o660);
        e.dev = (major, minor);
        e
    }
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
    pub fn xattr(self, name: &str, value: &str) -> Self {
        self.pax(&format!("SCHILY.xattr.{name}"), value)
    }
    pub fn pax(mut self, key: &str, value: &str) -> Self {
        self.pax.push((key.to_owned(), value.as_bytes().to_vec()));
        self
    }
}

/// `"<len> <key>=<value>\n"`, where len counts the whole record including its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

pub fn tar(entries: &[Ent]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax = e.pax.clone();
        if e.path.len() > 100 {
            pax.push(("path".into(), e.path.clone()));
        }
        if let Some(link) = e.link.as_ref().filter(|l| l.len() > 100) {
            pax.push(("linkpath".into(), link.clone()));
        }
        if !pax.is_empty() {
            let body: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
            let mut h = Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            set_raw(&mut h.as_old_mut().name, b"PaxHeaders/entry");
            h.set_mode(0o644);
            h.set_size(body.len() as u64);
            h.set_cksum();
            builder.append(&h, body.as_slice()).unwrap();
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(e.kind);
        set_raw(&mut h.as_old_mut().name, &e.path);
        if let Some(link) = &e.link {
            set_raw(&mut h.as_old_mut().linkname, link);
        }
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
        h.set_cksum();
        builder.append(&h, e.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Copies a name into a fixed header field, truncating (PAX carries the full one).
fn set_raw(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// One line per node below `root` (sorted, `root` itself and `skip` excluded):
/// `path kind mode uid:gid mtime [nlink] [detail] [xattrs]`.
pub fn tree(root: &Path, skip: Option<&Path>) -> String {
    let mut lines = Vec::new();
    walk(root, root, skip, &mut lines);
    lines.sort();
    lines.join("\n")
}

fn walk(root: &Path, dir: &Path, skip: Option<&Path>, lines: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if Some(path.as_path()) == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let ft = meta.file_type();
        let detail = if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!("link -> {}", fs::read_link(&path).unwrap().display())
        } else if ft.is_file() {
            format!(
                "file {:?} n{}",
                String::from_utf8_lossy(&fs::read(&path).unwrap()),
                meta.nlink()
            )
        } else if ft.is_fifo() {
            "fifo".to_owned()
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { "char" } else { "block" };
            let rdev = meta.rdev();
            format!("{kind} {}:{}", libc::major(rdev), libc::minor(rdev))
        } else {
            "other".to_owned()
        };
        let mut line = format!(
            "{rel} {detail} {:04o} {}:{} {}",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            meta.mtime()
        );
        for (k, v) in xattrs(&path) {
            line.push_str(&format!(" {k}={v}"));
        }
        lines.push(line);
        if ft.is_dir() {
            walk(root, &path, skip, lines);
        }
    }
}

/// Extended attributes of `path` itself (not following a symlink), SELinux labels left out.
pub fn xattrs(path: &Path) -> Vec<(String, String)> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: `c` is NUL-terminated and `names` is writable for its full length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        if key.starts_with("security.selinux") {
            continue;
        }
        out.push((key.clone(), xattr(path, &key).unwrap_or_default()));
    }
    out.sort();
    out
}

pub fn xattr(path: &Path, key: &str) -> Option<String> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let k = CString::new(key).unwrap();
    let mut value = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and `value` is writable for its full length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            k.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if n < 0 {
        return None;
    }
    value.truncate(n as usize);
    Some(String::from_utf8_lossy(&value).into_owned())
}

/// A scratch directory on a filesystem that takes `trusted.*` xattrs and overlay upper dirs.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-snapshot-test-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// Unmounts (lazily) on drop, so a failing assertion cannot leak a mount.
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        for _ in 0..4 {
            if nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

/// How many mount table entries have `path` as mount point.
pub fn mount_count(path: &Path) -> usize {
    let want = path.canonicalize().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.to_str().unwrap()))
        .count()
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.canonicalize().unwrap().display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}
