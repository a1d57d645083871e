//! A container's changes as an OCI layer tar, read straight from its overlayfs upper directory
//! (no walk of the whole root filesystem, no comparison with the layers below).
//!
//! The upper directory holds exactly what changed: new and modified files (copied up whole),
//! overlayfs whiteouts (0:0 character devices) for deletions, and `trusted.overlay.opaque=y`
//! on directories that replaced a lower one. These become OCI whiteouts: `.wh.<name>` and
//! `.wh..wh..opq`. Entries are written in sorted order with numeric owners, and with
//! `mtime_clamp` (SOURCE_DATE_EPOCH) no timestamp is later than it, so the same changes give
//! the same tar, byte for byte, and the same layer digest.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::sys;

const OVERLAY_OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
/// Overlayfs' own bookkeeping; never part of a layer.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
#[error("diff {path}: {source}")]
pub struct DiffError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl DiffError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Internal
    }
}

#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Clamp modification times to this (seconds since the epoch): reproducible layers.
    pub mtime_clamp: Option<u64>,
    /// The snapshot's lower layers, top first. A directory of the upper that also exists
    /// below and holds no change of its own is only overlayfs' copy-up of a parent, and is
    /// left out unless something inside it is written.
    pub lowers: Vec<PathBuf>,
    /// Paths (relative, like `etc/hosts`) the runtime creates as mount points; left out when
    /// they are empty files or directories. Docker keeps them in a separate "init" layer.
    pub mount_points: Vec<PathBuf>,
}

/// What a diff wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Entries written, whiteouts included.
    pub entries: u64,
    /// Bytes of file content.
    pub size: u64,
}

/// Writes the changes in `upper` to `out` as an uncompressed tar and finishes it.
pub fn write_diff<W: Write>(
    upper: &Path,
    out: W,
    opts: DiffOptions,
) -> Result<DiffStats, DiffError> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        opts,
        links: HashMap::new(),
        stats: DiffStats::default(),
        pending: Vec::new(),
    };
    w.dir_contents(upper, Path::new(""))?;
    w.tar.finish().map_err(|source| DiffError {
        path: upper.to_owned(),
        source,
    })?;
    Ok(w.stats)
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    opts: DiffOptions,
    /// (dev, inode) of files with several links → the first path written, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
    /// Copied-up parent directories not written yet: written, outermost first, only once
    /// something inside them is.
    pending: Vec<Pending>,
}

struct Pending {
    rel: PathBuf,
    header: Header,
    pax: Vec<(String, Vec<u8>)>,
}

impl<W: Write> Writer<W> {
    fn dir_contents(&mut self, dir: &Path, rel: &Path) -> Result<(), DiffError> {
        let err = |source| DiffError {
            path: dir.to_owned(),
            source,
        };
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .map_err(err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(err)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(&dir.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &Path) -> Result<(), DiffError> {
        let err = |source| DiffError {
            path: path.to_owned(),
            source,
        };
        let meta = fs::symlink_metadata(path).map_err(err)?;
        let ft = meta.file_type();
        // A deletion: overlayfs' whiteout is a 0:0 character device.
        if ft.is_char_device() && meta.rdev() == 0 {
            let name = rel
                .file_name()
                .map(|n| format!("{WHITEOUT_PREFIX}{}", n.to_string_lossy()))
                .unwrap_or_default();
            let wh = rel.with_file_name(name);
            self.flush_pending().map_err(err)?;
            let mut h = self.header(&meta, EntryType::Regular);
            h.set_mode(0);
            h.set_size(0);
            return self.append(&mut h, &wh, io::empty()).map_err(err);
        }
        let xattrs = sys::lxattrs(path).map_err(err)?;
        let opaque = ft.is_dir()
            && xattrs
                .iter()
                .any(|(k, v)| k.as_bytes() == OVERLAY_OPAQUE_XATTR && v.as_slice() == b"y");
        let kept: Vec<_> = xattrs
            .into_iter()
            .filter(|(k, _)| !k.as_bytes().starts_with(OVERLAY_XATTR_PREFIX))
            .collect();
        let pax: Vec<(String, Vec<u8>)> = kept
            .iter()
            .map(|(k, v)| {
                (
                    format!("SCHILY.xattr.{}", String::from_utf8_lossy(k.as_bytes())),
                    v.clone(),
                )
            })
            .collect();

        if ft.is_dir() {
            let mut h = self.header(&meta, EntryType::Directory);
            h.set_size(0);
            let copied_up = !opaque && self.opts.lowers.iter().any(|l| l.join(rel).is_dir());
            let mount_point = self.is_mount_point(rel);
            if copied_up || mount_point {
                self.pending.push(Pending {
                    rel: rel.to_owned(),
                    header: h,
                    pax,
                });
                let depth = self.pending.len();
                self.dir_contents(path, rel)?;
                // Nothing inside was written: the directory is no change of its own.
                if self.pending.len() == depth {
                    self.pending.pop();
                }
                return Ok(());
            }
            self.flush_pending().map_err(err)?;
            self.write_pax(&pax).map_err(err)?;
            self.append(&mut h, rel, io::empty()).map_err(err)?;
            if opaque {
                let mut m = self.header(&meta, EntryType::Regular);
                m.set_mode(0);
                m.set_size(0);
                self.append(&mut m, &rel.join(OPAQUE_MARKER), io::empty())
                    .map_err(err)?;
            }
            return self.dir_contents(path, rel);
        }
        if ft.is_file() && meta.len() == 0 && self.is_mount_point(rel) {
            return Ok(());
        }
        self.flush_pending().map_err(err)?;
        self.write_pax(&pax).map_err(err)?;
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(err)?;
            let mut h = self.header(&meta, EntryType::Symlink);
            h.set_size(0);
            return self
                .tar
                .append_link(&mut h, rel, &target)
                .map(|()| self.stats.entries += 1)
                .map_err(err);
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut h = self.header(&meta, EntryType::Link);
                    h.set_size(0);
                    return self
                        .tar
                        .append_link(&mut h, rel, &first)
                        .map(|()| self.stats.entries += 1)
                        .map_err(err);
                }
                self.links.insert(key, rel.to_owned());
            }
            let file = fs::File::open(path).map_err(err)?;
            let mut h = self.header(&meta, EntryType::Regular);
            h.set_size(meta.len());
            self.stats.size += meta.len();
            return self.append(&mut h, rel, file).map_err(err);
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else if ft.is_fifo() {
            EntryType::Fifo
        } else {
            // Sockets cannot be archived (tar and Docker skip them too).
            return Ok(());
        };
        let mut h = self.header(&meta, kind);
        h.set_size(0);
        let rdev = meta.rdev();
        h.set_device_major(libc::major(rdev)).map_err(err)?;
        h.set_device_minor(libc::minor(rdev)).map_err(err)?;
        self.append(&mut h, rel, io::empty()).map_err(err)
    }

    fn is_mount_point(&self, rel: &Path) -> bool {
        self.opts.mount_points.iter().any(|m| m == rel)
    }

    fn write_pax(&mut self, pax: &[(String, Vec<u8>)]) -> io::Result<()> {
        if pax.is_empty() {
            return Ok(());
        }
        self.tar
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// Writes the directories waiting for a change inside them.
    fn flush_pending(&mut self) -> io::Result<()> {
        for mut p in std::mem::take(&mut self.pending) {
            self.write_pax(&p.pax)?;
            self.append(&mut p.header, &p.rel, io::empty())?;
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        h.set_mtime(match self.opts.mtime_clamp {
            Some(clamp) => mtime.min(clamp),
            None => mtime,
        });
        h
    }

    fn append<R: io::Read>(&mut self, h: &mut Header, rel: &Path, data: R) -> io::Result<()> {
        self.stats.entries += 1;
        self.tar.append_data(h, rel, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.path().expect("path").display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn sorted_entries_hard_links_and_deterministic_output() {
        let dir = tempfile::tempdir().expect("dir");
        let up = dir.path();
        fs::create_dir_all(up.join("etc/app")).expect("mkdir");
        fs::write(up.join("etc/app/b.conf"), b"b").expect("write");
        fs::write(up.join("etc/app/a.conf"), b"a").expect("write");
        fs::hard_link(up.join("etc/app/a.conf"), up.join("etc/a-link")).expect("link");
        std::os::unix::fs::symlink("app/a.conf", up.join("etc/sym")).expect("symlink");
        let mut one = Vec::new();
        let stats = write_diff(
            up,
            &mut one,
            DiffOptions {
                mtime_clamp: Some(1_700_000_000),
                ..Default::default()
            },
        )
        .expect("diff");
        assert_eq!(stats.size, 2);
        assert_eq!(
            entries(&one),
            vec![
                ("etc".into(), EntryType::Directory),
                ("etc/a-link".into(), EntryType::Regular),
                ("etc/app".into(), EntryType::Directory),
                ("etc/app/a.conf".into(), EntryType::Link),
                ("etc/app/b.conf".into(), EntryType::Regular),
                ("etc/sym".into(), EntryType::Symlink),
            ]
        );
        let mut two = Vec::new();
        write_diff(
            up,
            &mut two,
            DiffOptions {
                mtime_clamp: Some(1_700_000_000),
                ..Default::default()
            },
        )
        .expect("diff");
        assert_eq!(one, two, "same changes, same bytes");
    }

    #[test]
    fn copy_up_parents_and_mount_points_are_no_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let lower = dir.path().join("lower");
        let up = dir.path().join("upper");
        fs::create_dir_all(lower.join("etc/ssl")).expect("mkdir");
        fs::create_dir_all(up.join("etc/ssl")).expect("mkdir");
        fs::create_dir_all(up.join("proc")).expect("mkdir");
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            fs::write(up.join(f), b"").expect("placeholder");
        }
        let opts = DiffOptions {
            lowers: vec![lower.clone()],
            mount_points: ["etc/hosts", "etc/hostname", "etc/resolv.conf", "proc"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_diff(&up, &mut out, opts.clone()).expect("diff");
        assert!(entries(&out).is_empty(), "{:?}", entries(&out));
        assert_eq!(out, vec![0u8; 1024], "the empty tar");

        // A real change under a copied-up parent brings the parent along.
        fs::write(up.join("etc/ssl/new.pem"), b"pem").expect("write");
        let mut out = Vec::new();
        write_diff(&up, &mut out, opts).expect("diff");
        assert_eq!(
            entries(&out),
            vec![
                ("etc".into(), EntryType::Directory),
                ("etc/ssl".into(), EntryType::Directory),
                ("etc/ssl/new.pem".into(), EntryType::Regular),
            ]
        );
    }

    #[test]
    fn overlay_whiteouts_become_oci_whiteouts() {
        let dir = tempfile::tempdir().expect("dir");
        let up = dir.path();
        fs::create_dir_all(up.join("var/cache")).expect("mkdir");
        // A deletion as overlayfs records it (needs CAP_MKNOD: the suite runs as root).
        let gone =
            std::ffi::CString::new(up.join("var/old.txt").as_os_str().as_bytes()).expect("path");
        // SAFETY: `gone` is a NUL-terminated path that outlives the call.
        let rc = unsafe { libc::mknod(gone.as_ptr(), libc::S_IFCHR, 0) };
        assert_eq!(rc, 0, "mknod whiteout (run as root)");
        let cache = up.join("var/cache");
        let cpath = std::ffi::CString::new(cache.as_os_str().as_bytes()).expect("path");
        // SAFETY: NUL-terminated strings and a 1-byte value, all outliving the call.
        let rc = unsafe {
            libc::lsetxattr(
                cpath.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "set opaque (run as root)");
        let mut out = Vec::new();
        write_diff(up, &mut out, DiffOptions::default()).expect("diff");
        assert_eq!(
            entries(&out),
            vec![
                ("var".into(), EntryType::Directory),
                ("var/cache".into(), EntryType::Directory),
                ("var/cache/.wh..wh..opq".into(), EntryType::Regular),
                // Sorted by the name in upper: whiteouts apply to lower layers only, so their
                // place in the tar does not matter.
                ("var/.wh.old.txt".into(), EntryType::Regular),
            ]
        );
    }
}
