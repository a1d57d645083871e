//! Writing host files into a container's root filesystem (the builder's COPY and ADD), with
//! every container path resolved by `openat2(RESOLVE_IN_ROOT)`: a symlink that an image or an
//! earlier build step planted (`/usr/local/bin -> /`, `/etc -> /host/etc`) is followed as the
//! container would see it, inside the root, and can never send a write to the host.
//!
//! The sources are trusted host paths (the build context the daemon extracted itself); they
//! are read without following symlinks, and a symlink is copied as a symlink.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::user::open_in_root_flags;

/// How copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `--chown`; Docker's default for COPY from a context is 0:0.
    pub owner: (u32, u32),
    /// `--chmod`: replaces the mode of every copied file and directory.
    pub mode: Option<u32>,
    /// Keep each entry's own owner (and, for a directory copied to `/`, give the root its
    /// owner and mode): a volume's copy-up, not a COPY.
    pub preserve: bool,
}

/// Copies `src` (a file, symlink or directory on the host) to `dest` inside `root`, with
/// Docker's COPY rules: a directory's contents go into `dest`; a file goes to `dest` itself,
/// or into it, as `name`, when `dest` ends with `/` or is an existing directory. (`name` is
/// explicit because `src` may be a `/proc/self/fd/N` path the caller resolved safely.)
/// Returns the entries written.
pub fn copy_into(
    root: &Path,
    src: &Path,
    name: &str,
    dest: &str,
    opts: CopyOptions,
) -> io::Result<u64> {
    // The source itself is followed (Docker copies what a top-level symlink points at; the
    // caller has resolved it inside its root, often as a `/proc/self/fd/N` magic link);
    // everything below it is copied as it is, links as links.
    let meta = fs::metadata(src)?;
    let dest = clean(dest);
    let mut n = 0;
    if meta.is_dir() {
        mkdir_all(root, &dest, opts)?;
        if opts.preserve {
            let dir = open_in_root_flags(root, &dest, libc::O_RDONLY | libc::O_DIRECTORY)?;
            set_owner_mode(
                dir.as_raw_fd(),
                (meta.uid(), meta.gid()),
                meta.permissions().mode() & 0o7777,
            )?;
        }
        copy_dir_contents(root, src, &dest, opts, &mut n)?;
        return Ok(n);
    }
    let into_dir = dest.ends_with('/')
        || dest == "/"
        || open_in_root_flags(root, &dest, libc::O_PATH | libc::O_DIRECTORY).is_ok();
    let target = if into_dir {
        mkdir_all(root, &dest, opts)?;
        format!("{}/{name}", dest.trim_end_matches('/'))
    } else {
        let parent = parent_of(&dest);
        mkdir_all(root, &parent, opts)?;
        dest.clone()
    };
    copy_entry(root, src, &meta, &target, opts, &mut n)?;
    Ok(n)
}

/// `/a//b/./c/` → `/a/b/c/` (the trailing slash is meaningful to COPY).
fn clean(dest: &str) -> String {
    let trailing = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let parts: Vec<&str> = dest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut s = format!("/{}", parts.join("/"));
    if trailing && s != "/" {
        s.push('/');
    }
    s
}

fn parent_of(path: &str) -> String {
    let p = path.trim_end_matches('/');
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

fn leaf_of(path: &str) -> io::Result<CString> {
    let leaf = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if leaf.is_empty() || leaf == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid destination {path:?}"),
        ));
    }
    CString::new(leaf).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Creates `dir` and its missing parents inside `root` (new ones owned as `opts` says).
fn mkdir_all(root: &Path, dir: &str, opts: CopyOptions) -> io::Result<()> {
    crate::user::mkdir_in_root(root, dir, opts.owner.0, opts.owner.1)
}

fn copy_dir_contents(
    root: &Path,
    src: &Path,
    dest: &str,
    opts: CopyOptions,
    n: &mut u64,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(src)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = fs::symlink_metadata(e.path())?;
        let target = format!(
            "{}/{}",
            dest.trim_end_matches('/'),
            e.file_name().to_string_lossy()
        );
        copy_entry(root, &e.path(), &meta, &target, opts, n)?;
    }
    Ok(())
}

fn copy_entry(
    root: &Path,
    src: &Path,
    meta: &fs::Metadata,
    target: &str,
    opts: CopyOptions,
    n: &mut u64,
) -> io::Result<()> {
    let parent = open_in_root_flags(root, &parent_of(target), libc::O_PATH | libc::O_DIRECTORY)?;
    let leaf = leaf_of(target)?;
    let ft = meta.file_type();
    let mode = opts.mode.unwrap_or(meta.permissions().mode() & 0o7777);
    let opts = if opts.preserve {
        CopyOptions {
            owner: (meta.uid(), meta.gid()),
            ..opts
        }
    } else {
        opts
    };
    if !(ft.is_dir() || ft.is_symlink() || ft.is_file()) {
        // Devices, fifos and sockets in a build context are not copied (Docker skips them).
        return Ok(());
    }
    *n += 1;
    if ft.is_dir() {
        // SAFETY: mkdirat on a directory fd we hold, with a NUL-terminated name.
        let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), leaf.as_ptr(), 0o700) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        // Opened through the root again: an existing directory may be a symlink into it.
        let dir = open_in_root_flags(root, target, libc::O_RDONLY | libc::O_DIRECTORY)?;
        set_owner_mode(dir.as_raw_fd(), opts.owner, mode)?;
        return copy_dir_contents(root, src, target, opts, n);
    }
    if ft.is_symlink() {
        let link = CString::new(fs::read_link(src)?.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        remove_non_dir(&parent, &leaf)?;
        // SAFETY: symlinkat/fchownat on a directory fd we hold, NUL-terminated strings.
        let rc = unsafe { libc::symlinkat(link.as_ptr(), parent.as_raw_fd(), leaf.as_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above; AT_SYMLINK_NOFOLLOW changes the link itself.
        let rc = unsafe {
            libc::fchownat(
                parent.as_raw_fd(),
                leaf.as_ptr(),
                opts.owner.0,
                opts.owner.1,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        return if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
    }
    let mut input = File::open(src)?;
    let out = open_file(&parent, &leaf)?;
    let mut out = File::from(out);
    io::copy(&mut input, &mut out)?;
    set_owner_mode(out.as_raw_fd(), opts.owner, mode)?;
    let times = [
        libc::timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    // SAFETY: futimens on a file we own, with a valid two-element array.
    let rc = unsafe { libc::futimens(out.as_raw_fd(), times.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates (or truncates) a regular file `leaf` in `parent`, never through a symlink: one in
/// the way is replaced, as COPY replaces whatever the destination was.
fn open_file(parent: &File, leaf: &CString) -> io::Result<OwnedFd> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    for attempt in 0..2 {
        // SAFETY: openat on a directory fd we hold with a NUL-terminated name; the result is
        // checked before use.
        let fd = unsafe { libc::openat(parent.as_raw_fd(), leaf.as_ptr(), flags, 0o600) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if attempt == 0 && e.raw_os_error() == Some(libc::ELOOP) {
            remove_non_dir(parent, leaf)?;
            continue;
        }
        return Err(e);
    }
    Err(io::Error::from(io::ErrorKind::Other))
}

fn remove_non_dir(parent: &File, leaf: &CString) -> io::Result<()> {
    // SAFETY: unlinkat on a directory fd we hold with a NUL-terminated name (not AT_REMOVEDIR:
    // a directory in the way is an error, as in Docker).
    let rc = unsafe { libc::unlinkat(parent.as_raw_fd(), leaf.as_ptr(), 0) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
    }
    Ok(())
}

fn set_owner_mode(fd: i32, owner: (u32, u32), mode: u32) -> io::Result<()> {
    // SAFETY: fchown/fchmod on a descriptor the caller holds open.
    unsafe {
        if libc::fchown(fd, owner.0, owner.1) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fchmod(fd, mode) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().join("root");
        let src = dir.path().join("src");
        fs::create_dir_all(root.join("usr/real")).expect("root");
        fs::create_dir_all(src.join("sub")).expect("src");
        fs::write(src.join("a.txt"), b"a").expect("write");
        fs::write(src.join("sub/b.txt"), b"b").expect("write");
        std::os::unix::fs::symlink("a.txt", src.join("link")).expect("symlink");
        (dir, root, src)
    }

    #[test]
    fn copy_rules_like_docker() {
        let (_d, root, src) = setup();
        copy_into(
            &root,
            &src.join("a.txt"),
            "a.txt",
            "/app/",
            CopyOptions::default(),
        )
        .expect("into dir");
        assert_eq!(fs::read(root.join("app/a.txt")).expect("read"), b"a");
        copy_into(
            &root,
            &src.join("a.txt"),
            "a.txt",
            "/renamed.txt",
            CopyOptions::default(),
        )
        .expect("to file");
        assert_eq!(fs::read(root.join("renamed.txt")).expect("read"), b"a");
        // An existing directory takes the file inside it.
        copy_into(
            &root,
            &src.join("a.txt"),
            "a.txt",
            "/usr",
            CopyOptions::default(),
        )
        .expect("existing");
        assert!(root.join("usr/a.txt").is_file());
        // A directory's contents, symlinks kept as symlinks, owner and mode applied.
        let opts = CopyOptions {
            owner: (1000, 1000),
            mode: Some(0o640),
            preserve: false,
        };
        copy_into(&root, &src, "src", "/dst", opts).expect("dir");
        assert_eq!(fs::read(root.join("dst/sub/b.txt")).expect("read"), b"b");
        let link = fs::read_link(root.join("dst/link")).expect("link");
        assert_eq!(link, Path::new("a.txt"));
        let meta = fs::metadata(root.join("dst/a.txt")).expect("meta");
        assert_eq!((meta.uid(), meta.mode() & 0o777), (1000, 0o640));
        // A volume's copy-up keeps owners and modes, the root's included.
        let vol = root.join("vol");
        fs::create_dir_all(&vol).expect("mkdir");
        std::os::unix::fs::chown(src.join("sub"), Some(7), Some(8)).expect("chown");
        let keep = CopyOptions {
            preserve: true,
            ..Default::default()
        };
        copy_into(&vol, &src, "", "/", keep).expect("copy-up");
        let meta = fs::metadata(vol.join("sub")).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (7, 8));
    }

    #[test]
    fn planted_symlinks_stay_inside_the_root() {
        let (d, root, src) = setup();
        let outside = d.path().join("outside");
        fs::create_dir_all(&outside).expect("outside");
        // An earlier step made /usr/local/bin point at the host's directory, absolutely.
        fs::create_dir_all(root.join("usr/local")).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("usr/local/bin")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("victim")).expect("symlink");
        // Inside the root, the link's target is this directory.
        let inside_dir = root.join(outside.strip_prefix("/").expect("abs"));
        fs::create_dir_all(&inside_dir).expect("mkdir");
        copy_into(
            &root,
            &src.join("a.txt"),
            "a.txt",
            "/usr/local/bin/",
            CopyOptions::default(),
        )
        .expect("copy");
        assert!(
            fs::read_dir(&outside).expect("outside").next().is_none(),
            "nothing written outside the root"
        );
        // The link resolved inside the root instead.
        let inside = inside_dir.join("a.txt");
        assert!(inside.is_file(), "{}", inside.display());
        // A file destination that is a symlink is replaced, not written through.
        copy_into(
            &root,
            &src.join("a.txt"),
            "a.txt",
            "/victim",
            CopyOptions::default(),
        )
        .expect("copy");
        assert!(!fs::symlink_metadata(root.join("victim"))
            .expect("meta")
            .file_type()
            .is_symlink());
    }
}
