//! Fixture images written as an OCI image layout directory, then put into a registry with
//! `skopeo copy` (as Docker v2 schema 2 or OCI, a single image or an index of platforms).

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_reference::Digest;
use serde_json::json;

/// One layer: files (path, content, mode) in a gzip-compressed tar, or a given tar.
pub struct Layer {
    pub files: Vec<(String, Vec<u8>, u32)>,
    pub tar: Option<Vec<u8>>,
}

impl Layer {
    /// This exact (uncompressed) tar, gzip-compressed.
    pub fn raw(tar: Vec<u8>) -> Layer {
        Layer {
            files: Vec::new(),
            tar: Some(tar),
        }
    }

    pub fn file(path: &str, content: &[u8]) -> Layer {
        Layer {
            files: vec![(path.to_string(), content.to_vec(), 0o644)],
            tar: None,
        }
    }

    /// Debian's static busybox as `/bin/busybox`, so that fixture images can run commands.
    pub fn busybox() -> Layer {
        let path = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static is installed");
        let data = std::fs::read(path).expect("read busybox");
        Layer {
            files: vec![("bin/busybox".to_string(), data, 0o755)],
            tar: None,
        }
    }

    /// A layer with a file of `len` bytes that do not compress (for slow, large pulls).
    pub fn random(path: &str, len: usize, seed: u64) -> Layer {
        let mut x = seed | 1;
        let data = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Layer {
            files: vec![(path.to_string(), data, 0o644)],
            tar: None,
        }
    }
}

pub struct Image {
    pub os: &'static str,
    pub arch: &'static str,
    pub variant: Option<&'static str>,
    pub layers: Vec<Layer>,
    pub cmd: Vec<&'static str>,
}

fn put_blob(dir: &Path, bytes: &[u8]) -> (Digest, u64) {
    let d = Digest::sha256_of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).expect("write blob");
    (d, bytes.len() as u64)
}

fn layer_tar(layer: &Layer) -> Vec<u8> {
    if let Some(tar) = &layer.tar {
        return tar.clone();
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mode) in &layer.files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(content.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, content.as_slice())
            .expect("tar entry");
    }
    b.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

/// Writes `images` as an OCI layout under `dir` (an index of all of them when more than one,
/// tagged `tag`) and returns its path.
pub fn layout(dir: &Path, images: &[Image], tag: &str) -> PathBuf {
    let root = dir.join(format!("layout-{tag}"));
    std::fs::create_dir_all(root.join("blobs/sha256")).expect("layout dir");
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut manifests = Vec::new();
    for img in images {
        let mut diff_ids = Vec::new();
        let mut layers = Vec::new();
        for l in &img.layers {
            let tar = layer_tar(l);
            diff_ids.push(Digest::sha256_of(&tar).to_string());
            let (d, size) = put_blob(&root, &gzip(&tar));
            layers.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(),
                "size": size,
            }));
        }
        let mut config = json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": img.arch,
            "os": img.os,
            "config": {"Cmd": img.cmd, "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": img.layers.iter().map(|_| json!({"created_by": "fixture"})).collect::<Vec<_>>(),
        });
        if let Some(v) = img.variant {
            config["variant"] = json!(v);
        }
        let (cd, cs) = put_blob(&root, config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
            "layers": layers,
        });
        let (md, ms) = put_blob(&root, manifest.to_string().as_bytes());
        let mut platform = json!({"os": img.os, "architecture": img.arch});
        if let Some(v) = img.variant {
            platform["variant"] = json!(v);
        }
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(),
            "size": ms,
            "platform": platform,
        }));
    }
    let top = if manifests.len() == 1 {
        let mut m = manifests.remove(0);
        m["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        m
    } else {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let (d, s) = put_blob(&root, index.to_string().as_bytes());
        json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d.to_string(),
            "size": s,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
    };
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(root.join("index.json"), index.to_string()).expect("index.json");
    root
}

/// `skopeo copy` of a layout to `docker://<dest>`; `format` is `oci` or `v2s2`.
pub fn skopeo_push(layout: &Path, tag: &str, dest: &str, format: Option<&str>, all: bool) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false", "--insecure-policy"]);
    if let Some(f) = format {
        cmd.args(["--format", f]);
    }
    if all {
        cmd.arg("--all");
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"));
    let out = cmd.output().expect("skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
