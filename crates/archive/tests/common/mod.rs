//! Fixtures: small busybox-like images built for real (tarred rootfs, config, manifest) in a
//! temporary content store.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use berth_archive::{SaveImage, SaveLayer};
use berth_reference::{Digest, Reference};
use berth_store::content::ContentStore;

pub fn store(dir: &Path) -> ContentStore {
    ContentStore::open(dir).unwrap()
}

/// A layer tar holding `files` (path, content) with their parent directories.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in files {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            acc.push_str(p);
            acc.push('/');
            if dirs.insert(acc.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, &acc, &[][..]).unwrap();
            }
        }
    }
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub struct Built {
    pub image: SaveImage,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

/// Builds an image from layer tars (compressed with gzip when `gzip_layer[i]`), stores its
/// blobs (manifest too when `store_manifest`) and returns the description `save` takes.
pub fn build_image(
    store: &ContentStore,
    refs: &[&str],
    layers: &[(Vec<u8>, bool)],
    store_manifest: bool,
) -> Built {
    let mut save_layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, compress) in layers {
        let diff_id = Digest::sha256_of(tar);
        let (blob, media_type) = if *compress {
            (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        let digest = store.put(&blob).unwrap();
        diff_ids.push(diff_id.to_string());
        save_layers.push(SaveLayer {
            digest,
            media_type: media_type.into(),
            size: blob.len() as u64,
            diff_id,
        });
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    }))
    .unwrap();
    let config_digest = store.put(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": save_layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size,
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = if store_manifest {
        store.put(&manifest).unwrap()
    } else {
        Digest::sha256_of(&manifest)
    };
    Built {
        image: SaveImage {
            refs: refs
                .iter()
                .map(|r| Reference::parse_normalized(r).unwrap())
                .collect(),
            manifest_digest,
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest,
            layers: save_layers,
        },
        config,
        manifest,
    }
}

/// A busybox-like image: a gzip base layer with a "shell" and an uncompressed layer on top.
pub fn busybox(store: &ContentStore, refs: &[&str]) -> Built {
    let base = layer_tar(&[
        ("bin/sh", b"#!fake busybox\n" as &[u8]),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    ]);
    let top = layer_tar(&[("etc/hostname", b"berth\n" as &[u8])]);
    build_image(store, refs, &[(base, true), (top, false)], true)
}

/// The entries of a tar: (path, type, size, link target).
pub fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u64, Option<String>)> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
                e.size(),
                e.link_name().unwrap().map(|l| l.display().to_string()),
            )
        })
        .collect()
}

/// One member of a tar, read whole.
pub fn member(tar_bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().display().to_string() == name {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return Some(v);
        }
    }
    None
}

/// Appends a raw entry whose name is written byte for byte (so `..` and `/` can be tested).
pub fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    {
        let bytes = h.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            bytes[157..157 + l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

pub fn append_file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    raw_entry(b, name, tar::EntryType::Regular, None, data);
}
