//! Image operations of the engine: list, inspect, history, tag, remove, import, and the garbage
//! collection of layers and blobs no image or container needs any more.

use std::io::{self, BufRead, BufReader, Read};

use berth_reference::{Digest, Reference};
use berth_snapshot::unpack::UnpackOptions;
use chrono::Utc;

use crate::error::{Context, EngineError, Result};
use crate::imageconfig::{apply_changes, host_arch, History, ImageConfigBlob, RootFs};
use crate::images::{self, Descriptor, ImageRecord, Manifest, UsingContainers};
use crate::pull::Tee;
use crate::types::*;
use crate::{lock, Engine};

/// Decompresses gzip transparently; plain tar passes through. Docker also accepts bzip2 and xz
/// for import; those are refused with a clear message rather than unpacked as garbage.
fn decompress<'a, R: Read + 'a>(input: R) -> Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered
        .fill_buf()
        .map_err(|e| EngineError::invalid(format!("read import stream: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
    {
        Err(EngineError::invalid(
            "unsupported compression of the import stream (use gzip or plain tar)",
        ))
    } else {
        Ok(Box::new(buffered))
    }
}

impl Engine {
    pub fn list_images(&self, all: bool, filters: &Filters) -> Result<Vec<Image>> {
        // Intermediate images of builds are listed only with `-a`, as Docker does.
        let intermediate = if all {
            Default::default()
        } else {
            self.build_cache_ids()
        };
        let usage = self.image_usage();
        let db = lock(&self.inner.images);
        let mut out = Vec::new();
        for rec in db.images.values() {
            if rec.names.is_empty() && intermediate.contains(&rec.id) {
                continue;
            }
            if !image_matches(rec, filters)? {
                continue;
            }
            out.push(rec.to_image(usage.get(&rec.id).copied().unwrap_or(0)));
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Resolves a reference, a full or short ID, or `sha256:<id>`.
    pub fn inspect_image(&self, name: &str) -> Result<Image> {
        let usage = self.image_usage();
        let db = lock(&self.inner.images);
        let rec = db.resolve(name)?;
        Ok(rec.to_image(usage.get(&rec.id).copied().unwrap_or(0)))
    }

    pub(crate) fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        lock(&self.inner.images).resolve(name).cloned()
    }

    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let db = lock(&self.inner.images);
        let rec = db.resolve(name)?;
        Ok(db.history(rec))
    }

    /// Tags image `name` as `repo[:tag]` (tag defaults to latest).
    pub fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = parse_tag_target(repo, tag)?;
        let mut db = lock(&self.inner.images);
        let id = db.resolve(name)?.id.clone();
        let shown = target.familiar_string();
        db.set_name(target, &id);
        db.save(&self.inner.config.data_root.join("content"))?;
        drop(db);
        self.emit("image", "tag", &id.to_string(), &[("name", shown.as_str())]);
        Ok(())
    }

    pub fn remove_image(
        &self,
        name: &str,
        force: bool,
        _no_prune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let (running, stopped) = {
            let id = self.resolve_image(name)?.id;
            let containers = lock(&self.inner.containers);
            let mut running = Vec::new();
            let mut stopped = Vec::new();
            for s in containers.by_id.values().filter(|s| s.c.image_id == id) {
                if s.c.state.is_running() {
                    running.push(s.c.id.clone());
                } else {
                    stopped.push(s.c.id.clone());
                }
            }
            (running, stopped)
        };
        let items = {
            let mut db = lock(&self.inner.images);
            let (items, _removed) =
                images::plan_delete(&mut db, name, force, &UsingContainers { running, stopped })?;
            db.save(&self.inner.config.data_root.join("content"))?;
            items
        };
        for item in &items {
            match item {
                ImageDeleteItem::Untagged(n) => self.emit("image", "untag", n, &[("name", n)]),
                ImageDeleteItem::Deleted(d) => self.emit("image", "delete", d, &[("name", d)]),
            }
        }
        let mut items = items;
        for layer in self.gc()? {
            items.push(ImageDeleteItem::Deleted(layer.to_string()));
        }
        Ok(items)
    }

    /// `docker image prune`: dangling images (build intermediates included), or with `all`
    /// every image no container uses; returns what was untagged and deleted, and the bytes
    /// of layers freed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<ImageDeleteItem>, u64)> {
        let used = self.image_usage();
        let victims: Vec<(String, i64)> = lock(&self.inner.images)
            .images
            .values()
            .filter(|r| !used.contains_key(&r.id) && (all || r.names.is_empty()))
            .map(|r| (r.id.to_string(), r.size))
            .collect();
        let mut items = Vec::new();
        let mut freed = 0u64;
        for (id, size) in victims {
            match self.remove_image(&id, true, false) {
                Ok(mut done) => {
                    if done
                        .iter()
                        .any(|i| matches!(i, ImageDeleteItem::Deleted(_)))
                    {
                        freed += size.max(0) as u64;
                    }
                    items.append(&mut done);
                }
                // Taken by a container created meanwhile: it stays.
                Err(e) => tracing::debug!(image = %id, error = %e, "prune kept an image"),
            }
        }
        self.prune_build_cache();
        Ok((items, freed))
    }

    /// Number of containers per image ID.
    fn image_usage(&self) -> std::collections::HashMap<Digest, i64> {
        let mut usage = std::collections::HashMap::new();
        for s in lock(&self.inner.containers).by_id.values() {
            *usage.entry(s.c.image_id.clone()).or_insert(0) += 1;
        }
        usage
    }

    /// Removes layers and blobs that no image or container needs; returns removed layers.
    pub(crate) fn gc(&self) -> Result<Vec<Digest>> {
        let tops: Vec<Digest> = lock(&self.inner.containers)
            .by_id
            .values()
            .filter_map(|s| s.c.image_top_layer.clone())
            .collect();
        // Hold the image lock so no import registers a layer between the scan and removal.
        let db = lock(&self.inner.images);
        let leased = lock(&self.inner.leases).all();
        let mut live = images::live_layers(&db, &tops, &self.inner.layers);
        live.extend(leased.iter().cloned());
        let mut removed = Vec::new();
        let all = self.inner.layers.list().ctx(|| "list layers".into())?;
        // Remove children before parents, so a crash never leaves a child without its parent.
        let mut dead: Vec<_> = all
            .into_iter()
            .filter(|l| !live.contains(&l.chain_id))
            .collect();
        dead.sort_by_key(|l| std::cmp::Reverse(depth(&self.inner.layers, &l.chain_id)));
        for l in dead {
            self.inner
                .layers
                .remove(&l.chain_id)
                .ctx(|| format!("remove layer {}", l.chain_id))?;
            removed.push(l.chain_id);
        }
        let live_blobs = images::live_blobs(&db)?;
        let mut removed_blobs = false;
        for blob in self.inner.content.list().ctx(|| "list blobs".into())? {
            if !live_blobs.contains(&blob) && !leased.contains(&blob) {
                removed_blobs = true;
                self.inner
                    .content
                    .delete(&blob)
                    .ctx(|| format!("delete blob {blob}"))?;
            }
        }
        if removed_blobs {
            self.prune_sources(&live_blobs);
        }
        Ok(removed)
    }

    /// Creates a one-layer image from an (optionally gzip-compressed) tar stream; returns its ID.
    pub async fn import_image<R>(&self, tar: R, opts: ImportOptions) -> Result<Digest>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let target = match &opts.reference {
            Some(r) if !r.is_empty() => Some(parse_tag_target(r, None)?),
            _ => None,
        };
        let mut run_config = crate::imageconfig::RunConfig::default();
        apply_changes(&mut run_config, &opts.changes)?;

        let engine = self.clone();
        let sync_reader = tokio_util::io::SyncIoBridge::new(tar);
        let (diff_id, size) = tokio::task::spawn_blocking(move || -> Result<(Digest, u64)> {
            let input = decompress(sync_reader)?;
            let blob = engine
                .inner
                .content
                .writer()
                .ctx(|| "open blob writer".into())?;
            let mut tee = Tee::new(input, blob, None);
            let layer = engine
                .inner
                .layers
                .create(
                    None,
                    &mut tee,
                    &UnpackOptions {
                        allow_devices: true,
                        same_owner: true,
                    },
                )
                .map_err(|e| match e.kind() {
                    berth_snapshot::ErrorKind::InvalidArgument => {
                        EngineError::invalid(e.to_string())
                    }
                    _ => EngineError::internal(e.to_string()),
                })?;
            // Whatever the unpacker left (tar padding) still belongs to the blob.
            io::copy(&mut tee, &mut io::sink()).ctx(|| "read import stream".into())?;
            let (digest, size) = tee
                .blob
                .commit(Some(&layer.diff_id), None)
                .ctx(|| "store layer blob".into())?;
            Ok((digest, size))
        })
        .await
        .map_err(|e| EngineError::internal(format!("import task: {e}")))??;

        let now = Utc::now();
        let config = ImageConfigBlob {
            created: Some(now),
            architecture: host_arch().into(),
            os: "linux".into(),
            config: run_config,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                created_by: String::new(),
                comment: if opts.message.is_empty() {
                    "Imported from -".into()
                } else {
                    opts.message.clone()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let layer = Descriptor {
            media_type: images::MEDIA_OCI_LAYER_TAR.into(),
            digest: diff_id,
            size,
        };
        let id = self.register_image(config, vec![layer], target)?;
        self.emit("image", "import", &id.to_string(), &[]);
        Ok(id)
    }

    /// `import` of an archive at a URL (http or https), streamed as it downloads.
    pub async fn import_url(&self, url: &str, opts: ImportOptions) -> Result<Digest> {
        use futures_util::TryStreamExt;
        let download = self
            .registry()
            .fetch_url(url)
            .await
            .map_err(crate::registry::registry_error)?;
        let reader = tokio_util::io::StreamReader::new(download.map_err(io::Error::other));
        self.import_image(reader, opts).await
    }

    /// Stores config and manifest blobs and records the image (and its name) in the index.
    pub(crate) fn register_image(
        &self,
        config: ImageConfigBlob,
        layers: Vec<Descriptor>,
        name: Option<Reference>,
    ) -> Result<Digest> {
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| EngineError::internal(e.to_string()))?;
        let config_digest = self
            .inner
            .content
            .put(&config_bytes)
            .ctx(|| "store image config".into())?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(images::MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: images::MEDIA_OCI_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
            },
            layers,
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| EngineError::internal(e.to_string()))?;
        let manifest_digest = self
            .inner
            .content
            .put(&manifest_bytes)
            .ctx(|| "store manifest".into())?;
        let rec = images::load_record(&self.inner.content, &self.inner.layers, &manifest_digest)?;
        let mut db = lock(&self.inner.images);
        db.images.entry(rec.id.clone()).or_insert(rec);
        if let Some(name) = name {
            db.set_name(name, &config_digest);
        }
        db.save(&self.inner.config.data_root.join("content"))?;
        Ok(config_digest)
    }
}

fn depth(layers: &berth_snapshot::layer::LayerStore, id: &Digest) -> usize {
    let mut n = 0;
    let mut cur = layers.get(id).ok().flatten().and_then(|l| l.parent);
    while let Some(p) = cur {
        n += 1;
        cur = layers.get(&p).ok().flatten().and_then(|l| l.parent);
    }
    n
}

/// `repo` (maybe with a tag) plus an optional separate tag, as `tag` and `import` take them.
pub(crate) fn parse_tag_target(repo: &str, tag: Option<&str>) -> Result<Reference> {
    let r = Reference::parse_normalized(repo).map_err(|e| EngineError::invalid(e.to_string()))?;
    if r.digest().is_some() {
        return Err(EngineError::invalid(
            "refusing to create a tag with a digest reference",
        ));
    }
    match tag {
        Some(t) if !t.is_empty() => r
            .with_tag(t)
            .map_err(|e| EngineError::invalid(e.to_string())),
        _ => Ok(r.with_default_tag()),
    }
}

fn image_matches(rec: &ImageRecord, filters: &Filters) -> Result<bool> {
    for (key, values) in filters {
        let ok = match key.as_str() {
            "dangling" => values.iter().any(|v| {
                let want = v == "true" || v == "1";
                rec.names.is_empty() == want
            }),
            "reference" => values.iter().any(|pattern| {
                rec.names.keys().any(|n| {
                    glob_match(pattern, &n.familiar_string())
                        || glob_match(pattern, &n.familiar_name())
                })
            }),
            "label" => values.iter().any(|l| match l.split_once('=') {
                Some((k, v)) => rec.config.config.labels.get(k).map(String::as_str) == Some(v),
                None => rec.config.config.labels.contains_key(l),
            }),
            "before" | "since" => true,
            other => return Err(EngineError::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Shell-style `*` and `?` matching, as Docker's `reference` filter uses path.Match.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    fn rec(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                rec(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && rec(p, &t[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &t[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(glob_match("busybox", "busybox"));
        assert!(!glob_match("me/*", "me/a/b"));
        assert!(glob_match("me/*", "me/bb:1"));
    }
}
