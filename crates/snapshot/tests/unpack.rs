//! Tar in, tree out: layer unpacking against the real filesystem (needs root).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{unpack_layer, ErrorKind, UnpackError, UnpackOptions, UnpackStats};
use common::{scratch, tar, tree, xattr, Ent};

fn unpack(entries: &[Ent], opts: UnpackOptions) -> (tempfile::TempDir, PathBuf, UnpackStats) {
    let dir = scratch();
    let dest = dir.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let stats = unpack_layer(tar(entries).as_slice(), &dest, &opts).unwrap();
    (dir, dest, stats)
}

#[test]
fn round_trips_metadata() {
    let entries = [
        Ent::dir("d/")
            .mode(0o750)
            .owner(1000, 1001)
            .mtime(1_000_000),
        Ent::file("d/f", "hello")
            .mode(0o4755)
            .owner(1000, 1001)
            .mtime(2_000_000)
            .xattr("user.note", "hi"),
        Ent::symlink("d/l", "/abs/target")
            .owner(1002, 1003)
            .mtime(3_000_000),
        Ent::hardlink("d/h", "d/f"),
        Ent::fifo("p").mode(0o640).mtime(4_000_000),
        Ent::char_dev("c", 1, 3).mode(0o666).mtime(4_000_001),
        Ent::block_dev("b", 7, 0).mode(0o660).mtime(4_000_002),
        Ent::dir("./t").mode(0o1777).mtime(5_000_000),
        Ent::file("/t/g", "sgid").mode(0o2755).mtime(5_000_001),
        // Contents before their directories, parents never listed: created, then dated.
        Ent::file("late/inner/x", "x").mtime(6_000_000),
        Ent::dir("late/inner").mode(0o700).mtime(6_000_001),
        Ent::dir("late").mode(0o711).mtime(6_000_002),
        // A file over a file replaces it; a directory over a directory updates it in place.
        Ent::file("r", "old").mtime(7_000_000),
        Ent::file("r", "new").mode(0o600).mtime(7_000_001),
        Ent::dir("d").mode(0o755).owner(1000, 1001).mtime(1_500_000),
        Ent::file("precise", "").pax("mtime", "8000000.25"),
        Ent::dir("./"),
    ];
    let (_dir, dest, stats) = unpack(&entries, UnpackOptions::image_layer());
    let want = [
        "b block 7:0 0660 0:0 4000002",
        "c char 1:3 0666 0:0 4000001",
        "d dir 0755 1000:1001 1500000",
        "d/f file \"hello\" n2 4755 1000:1001 2000000 user.note=hi",
        "d/h file \"hello\" n2 4755 1000:1001 2000000 user.note=hi",
        "d/l link -> /abs/target 0777 1002:1003 3000000",
        "late dir 0711 0:0 6000002",
        "late/inner dir 0700 0:0 6000001",
        "late/inner/x file \"x\" n1 0644 0:0 6000000",
        "p fifo 0640 0:0 4000000",
        "precise file \"\" n1 0644 0:0 8000000",
        "r file \"new\" n1 0600 0:0 7000001",
        "t dir 1777 0:0 5000000",
        "t/g file \"sgid\" n1 2755 0:0 5000001",
    ];
    assert_eq!(tree(&dest, None), want.join("\n"));
    assert_eq!(
        fs::metadata(dest.join("d/f")).unwrap().ino(),
        fs::metadata(dest.join("d/h")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(dest.join("precise")).unwrap().mtime_nsec(),
        250_000_000
    );
    assert_eq!(
        stats,
        UnpackStats {
            size: 5 + 4 + 1 + 3 + 3,
            entries: entries.len() as u64,
        }
    );
}

#[test]
fn converts_whiteouts_to_overlay_format() {
    let entries = [
        Ent::file(".wh.gone", "").owner(5, 5),
        Ent::dir("d/"),
        Ent::file("d/.wh..wh..opq", ""),
        Ent::file("d/keep", "k"),
        Ent::file(".wh..wh.plnk", ""),
        Ent::file("e/.wh.x", ""),
    ];
    let (_dir, dest, _) = unpack(&entries, UnpackOptions::image_layer());
    let lines: Vec<String> = tree(&dest, None)
        .lines()
        // Implicit parents are dated "now"; only the shape matters here.
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "d dir 0755",
            "d/keep file \"k\"",
            "e dir 0755",
            "e/x char 0:0",
            "gone char 0:0"
        ]
    );
    assert_eq!(
        xattr(&dest.join("d"), "trusted.overlay.opaque").as_deref(),
        Some("y")
    );
    let gone = fs::symlink_metadata(dest.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!((gone.rdev(), gone.uid(), gone.gid()), (0, 5, 5));
}

#[test]
fn drops_overlay_xattrs_from_the_tar() {
    let entries = [Ent::dir("d/")
        .xattr("trusted.overlay.redirect", "/elsewhere")
        .xattr("user.kept", "1")];
    let (_dir, dest, _) = unpack(&entries, UnpackOptions::image_layer());
    assert_eq!(xattr(&dest.join("d"), "trusted.overlay.redirect"), None);
    assert_eq!(xattr(&dest.join("d"), "user.kept").as_deref(), Some("1"));
}

#[test]
fn without_same_owner_keeps_the_callers_ids() {
    let entries = [Ent::file("f", "x").owner(1234, 1234)];
    let (_dir, dest, _) = unpack(&entries, UnpackOptions::default());
    let meta = fs::metadata(dest.join("f")).unwrap();
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
}

/// A sandbox holding `dest` next to things a hostile layer would like to reach.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = scratch();
        fs::create_dir(dir.path().join("dest")).unwrap();
        fs::write(dir.path().join("outside"), "secret").unwrap();
        fs::create_dir(dir.path().join("victim")).unwrap();
        fs::write(dir.path().join("victim/file"), "v").unwrap();
        Self { dir }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn dest(&self) -> PathBuf {
        self.root().join("dest")
    }
    /// Everything except `dest`: names, types, modes, owners, times, link counts, contents.
    fn outside(&self) -> String {
        tree(self.root(), Some(&self.dest()))
    }
    /// The sandbox path as seen through a symlink to `/`.
    fn via_root(&self) -> String {
        self.root()
            .display()
            .to_string()
            .trim_start_matches('/')
            .to_owned()
    }
}

/// (entries, the entry that must be refused, whether devices are allowed); `via` is the
/// sandbox path relative to `/`, for entries that reach it through a symlink to `/`.
fn hostile_cases(via: &str, probe: &str) -> Vec<(Vec<Ent>, String, bool)> {
    vec![
        (vec![Ent::file("../x", "x")], "../x".into(), true),
        (vec![Ent::file("a/../../x", "x")], "a/../../x".into(), true),
        (
            vec![Ent::file("/../outside", "x")],
            "/../outside".into(),
            true,
        ),
        (
            vec![Ent::dir("../victim/").mode(0o777)],
            "../victim/".into(),
            true,
        ),
        (
            vec![Ent::hardlink("l", "../../etc/passwd")],
            "l".into(),
            true,
        ),
        (vec![Ent::hardlink("l", "../outside")], "l".into(), true),
        (
            vec![
                Ent::symlink("a", "/"),
                Ent::file(&format!("a/{via}/outside"), "x"),
            ],
            format!("a/{via}/outside"),
            true,
        ),
        (
            vec![Ent::symlink("a", ".."), Ent::file("a/outside", "x")],
            "a/outside".into(),
            true,
        ),
        (
            vec![Ent::symlink("a", ".."), Ent::dir("a/victim/").mode(0o777)],
            "a/victim/".into(),
            true,
        ),
        (
            vec![Ent::symlink("a", ".."), Ent::file("a/victim/new", "x")],
            "a/victim/new".into(),
            true,
        ),
        (
            vec![Ent::symlink("a", ".."), Ent::file("a/victim/.wh.file", "")],
            "a/victim/.wh.file".into(),
            true,
        ),
        (
            vec![
                Ent::symlink("s", "/"),
                Ent::hardlink("h", &format!("s/{via}/outside")),
            ],
            "h".into(),
            true,
        ),
        (
            vec![Ent::symlink("s", ".."), Ent::hardlink("h", "s/outside")],
            "h".into(),
            true,
        ),
        (vec![Ent::char_dev("mem", 1, 1)], "mem".into(), false),
        (vec![Ent::block_dev("disk", 8, 0)], "disk".into(), false),
        // Last, so a regression fails on the sandboxed cases before it can write to /etc.
        (
            vec![Ent::symlink("a", "/"), Ent::file(&format!("a{probe}"), "x")],
            format!("a{probe}"),
            true,
        ),
    ]
}

#[test]
fn refuses_hostile_entries_without_touching_anything_outside() {
    let probe = "/etc/berth-snapshot-test-must-not-exist";
    for i in 0..hostile_cases("", probe).len() {
        let sandbox = Sandbox::new();
        let (entries, refused, allow_devices) =
            hostile_cases(&sandbox.via_root(), probe).swap_remove(i);
        let before = sandbox.outside();
        let opts = UnpackOptions {
            allow_devices,
            same_owner: true,
        };
        let err = unpack_layer(tar(&entries).as_slice(), &sandbox.dest(), &opts)
            .expect_err(&format!("{refused} must be refused"));
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        match &err {
            UnpackError::Hostile { entry, .. } => assert_eq!(*entry, refused, "{err}"),
            other => panic!("{refused}: expected a hostile entry error, got {other}"),
        }
        assert!(err.to_string().contains(&refused), "{err}");
        assert_eq!(sandbox.outside(), before, "{refused} touched the sandbox");
        assert!(!Path::new(probe).exists());
    }
}

#[test]
fn replaces_symlinks_instead_of_following_them() {
    let sandbox = Sandbox::new();
    let outside = sandbox.root().join("outside");
    let victim = sandbox.root().join("victim");
    let before = sandbox.outside();
    let entries = [
        // Each name is first a symlink out of the tree, then something written "through" it.
        Ent::symlink("f", outside.to_str().unwrap()).owner(4321, 4321),
        Ent::file("f", "mine").mode(0o777).owner(4321, 4321),
        Ent::symlink("v", victim.to_str().unwrap()),
        Ent::dir("v/").mode(0o777).owner(4321, 4321),
        Ent::symlink("n", outside.to_str().unwrap()),
        Ent::fifo("n").mode(0o777),
        Ent::symlink("k", outside.to_str().unwrap()),
        Ent::hardlink("k2", "k"),
        Ent::symlink("w", outside.to_str().unwrap()),
        Ent::file(".wh.w", ""),
        // A symlink itself may point anywhere, and gets its owner without touching the target.
        Ent::symlink("abs", outside.to_str().unwrap()).owner(4321, 4321),
    ];
    unpack_layer(
        tar(&entries).as_slice(),
        &sandbox.dest(),
        &UnpackOptions::image_layer(),
    )
    .unwrap();
    assert_eq!(sandbox.outside(), before);
    let dest = sandbox.dest();
    assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "mine");
    assert!(fs::symlink_metadata(dest.join("v")).unwrap().is_dir());
    assert!(fs::symlink_metadata(dest.join("n"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(dest.join("k2"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(dest.join("w"))
        .unwrap()
        .file_type()
        .is_char_device());
    let abs = fs::symlink_metadata(dest.join("abs")).unwrap();
    assert_eq!(abs.uid(), 4321);
}

#[test]
fn reports_malformed_entries() {
    let dir = scratch();
    let dest = dir.path();
    let cases = [
        vec![Ent::file("f", "x"), Ent::file("f/g", "y")],
        vec![Ent::hardlink("h", "missing")],
        vec![Ent::file(".wh...", "")],
    ];
    for entries in cases {
        let err = unpack_layer(tar(&entries).as_slice(), dest, &UnpackOptions::default())
            .expect_err("must fail");
        assert!(matches!(err, UnpackError::Invalid { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    let mut truncated = tar(&[Ent::file("big", &"x".repeat(4000))]);
    truncated.truncate(1024);
    let err = unpack_layer(truncated.as_slice(), dest, &UnpackOptions::default())
        .expect_err("truncated tar must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}
