//! The image database: which images exist, their names, configs and layer chains.
//!
//! The content store's `index.json` is the persistent list of image roots (one entry per name,
//! and one unnamed entry per dangling image); everything else is derived from the blobs it
//! points to when the daemon starts. Reference counts of layers are derived, never stored: a
//! layer is live while an image chain or a container needs it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use berth_reference::{Digest, Reference};
use berth_snapshot::layer::LayerStore;
use berth_store::content::ContentStore;
use berth_store::index::{self, IndexEntry, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Context, EngineError, Result};
use crate::imageconfig::ImageConfigBlob;
use crate::types::{HistoryEntry, Image, ImageDeleteItem};

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Annotation holding when a name was last given, for `Metadata.LastTagTime`.
const ANNOTATION_TAG_TIME: &str = "io.berth.tag.time";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// One image, as held in memory.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Descriptor,
    pub config: ImageConfigBlob,
    /// Chain IDs, bottom first.
    pub chain: Vec<Digest>,
    /// Unpacked size of each layer, bottom first.
    pub layer_sizes: Vec<i64>,
    /// Blob digests of the manifest's layers (compressed or not).
    pub layer_blobs: Vec<Digest>,
    pub size: i64,
    pub names: BTreeMap<Reference, Option<DateTime<Utc>>>,
}

impl ImageRecord {
    pub fn top_layer(&self) -> Option<Digest> {
        self.chain.last().cloned()
    }

    pub fn to_image(&self, containers: i64) -> Image {
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for name in self.names.keys() {
            if name.digest().is_some() {
                repo_digests.push(name.familiar_string());
            } else {
                repo_tags.push(name.familiar_string());
            }
        }
        Image {
            id: self.id.clone(),
            manifest_digest: self.manifest.digest.clone(),
            repo_tags,
            repo_digests,
            parent: String::new(),
            comment: self
                .config
                .history
                .last()
                .map(|h| h.comment.clone())
                .unwrap_or_else(|| self.config.comment.clone()),
            author: self.config.author.clone(),
            created: self.config.created,
            config: self.config.to_domain(),
            architecture: self.config.architecture.clone(),
            variant: self.config.variant.clone(),
            os: self.config.os.clone(),
            size: self.size,
            layers: self.config.rootfs.diff_ids.clone(),
            top_layer: self.top_layer(),
            containers,
            last_tag_time: self.names.values().flatten().max().cloned(),
        }
    }
}

#[derive(Default)]
pub struct ImageDb {
    pub images: HashMap<Digest, ImageRecord>,
    /// Name → image ID.
    pub names: BTreeMap<Reference, Digest>,
}

impl ImageDb {
    /// Rebuilds the database from `index.json` and the blobs it references.
    pub fn load(
        content: &ContentStore,
        layers: &LayerStore,
        root: &std::path::Path,
    ) -> Result<Self> {
        let entries = index::load_index(root).ctx(|| "load image index".into())?;
        let mut db = ImageDb::default();
        for entry in entries {
            match load_record(content, layers, &entry.digest) {
                Ok(mut rec) => {
                    let id = rec.id.clone();
                    let name = entry
                        .annotations
                        .get(ANNOTATION_IMAGE_NAME)
                        .and_then(|n| Reference::parse_normalized(n).ok());
                    let time = entry
                        .annotations
                        .get(ANNOTATION_TAG_TIME)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc));
                    let existing = db.images.entry(id.clone()).or_insert_with(|| {
                        rec.names.clear();
                        rec.clone()
                    });
                    if let Some(name) = name {
                        existing.names.insert(name.clone(), time);
                        db.names.insert(name, id);
                    }
                }
                Err(e) => {
                    tracing::warn!(digest = %entry.digest, error = %e, "skipping unreadable image")
                }
            }
        }
        Ok(db)
    }

    /// Writes `index.json` from the in-memory state (crash-safe: temp + rename).
    pub fn save(&self, root: &std::path::Path) -> Result<()> {
        let mut entries = Vec::new();
        let mut ids: Vec<&Digest> = self.images.keys().collect();
        ids.sort();
        for id in ids {
            let rec = &self.images[id];
            let base = IndexEntry {
                media_type: rec.manifest.media_type.clone(),
                digest: rec.manifest.digest.clone(),
                size: rec.manifest.size,
                annotations: BTreeMap::new(),
            };
            if rec.names.is_empty() {
                entries.push(base);
                continue;
            }
            for (name, time) in &rec.names {
                let mut e = base.clone();
                e.annotations
                    .insert(ANNOTATION_IMAGE_NAME.into(), name.to_string());
                if let Some(tag) = name.tag() {
                    e.annotations.insert(ANNOTATION_REF_NAME.into(), tag.into());
                }
                if let Some(t) = time {
                    e.annotations
                        .insert(ANNOTATION_TAG_TIME.into(), t.to_rfc3339());
                }
                entries.push(e);
            }
        }
        index::save_index(root, &entries).ctx(|| "save image index".into())
    }

    /// Docker's lookup order: full ID, reference (tag or digest), then unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<&ImageRecord> {
        let not_found = || EngineError::no_such_image(name);
        if let Some(hex) = name.strip_prefix("sha256:") {
            return self.by_id_prefix(hex).ok_or_else(not_found)?;
        }
        if let Ok(r) = Reference::parse_normalized(name) {
            let r = if r.digest().is_none() {
                r.with_default_tag()
            } else {
                r
            };
            if let Some(id) = self.names.get(&r) {
                return self.images.get(id).ok_or_else(not_found);
            }
            if let Some(d) = r.digest() {
                // A repo digest: match by manifest digest within the repository.
                if let Some(rec) = self.images.values().find(|rec| {
                    &rec.manifest.digest == d && rec.names.keys().any(|n| n.name() == r.name())
                }) {
                    return Ok(rec);
                }
            }
        }
        if berth_reference::is_id_prefix(name) {
            if let Some(found) = self.by_id_prefix(name) {
                return found;
            }
        }
        Err(not_found())
    }

    fn by_id_prefix(&self, hex: &str) -> Option<Result<&ImageRecord>> {
        if hex.is_empty() {
            return None;
        }
        let mut found = self.images.values().filter(|r| r.id.hex().starts_with(hex));
        let first = found.next()?;
        if found.next().is_some() {
            return Some(Err(EngineError::invalid(format!(
                "multiple IDs found with provided prefix: {hex}"
            ))));
        }
        Some(Ok(first))
    }

    /// Points `name` at `id`, taking it from whatever image had it.
    pub fn set_name(&mut self, name: Reference, id: &Digest) {
        if let Some(old) = self.names.insert(name.clone(), id.clone()) {
            if let Some(rec) = self.images.get_mut(&old) {
                rec.names.remove(&name);
            }
        }
        if let Some(rec) = self.images.get_mut(id) {
            rec.names.insert(name, Some(Utc::now()));
        }
    }

    pub fn remove_name(&mut self, name: &Reference) {
        if let Some(id) = self.names.remove(name) {
            if let Some(rec) = self.images.get_mut(&id) {
                rec.names.remove(name);
            }
        }
    }

    pub fn history(&self, rec: &ImageRecord) -> Vec<HistoryEntry> {
        let mut sizes = rec.layer_sizes.iter();
        let mut rows: Vec<HistoryEntry> = rec
            .config
            .history
            .iter()
            .map(|h| HistoryEntry {
                id: None,
                created: h.created,
                created_by: h.created_by.clone(),
                tags: Vec::new(),
                size: if h.empty_layer {
                    0
                } else {
                    sizes.next().copied().unwrap_or(0)
                },
                comment: h.comment.clone(),
                empty_layer: h.empty_layer,
            })
            .collect();
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(rec.id.clone());
            top.tags = rec
                .names
                .keys()
                .filter(|n| n.digest().is_none())
                .map(|n| n.familiar_string())
                .collect();
        }
        rows
    }
}

/// Reads one image (manifest, config) from the content store and checks its layers exist.
pub fn load_record(
    content: &ContentStore,
    layers: &LayerStore,
    manifest_digest: &Digest,
) -> Result<ImageRecord> {
    let raw = content
        .read(manifest_digest)
        .ctx(|| format!("read manifest {manifest_digest}"))?;
    let manifest: Manifest = serde_json::from_slice(&raw)
        .map_err(|e| EngineError::internal(format!("invalid manifest {manifest_digest}: {e}")))?;
    let config_raw = content
        .read(&manifest.config.digest)
        .ctx(|| format!("read image config {}", manifest.config.digest))?;
    let config = ImageConfigBlob::parse(&config_raw)?;
    let mut chain = Vec::new();
    let mut layer_sizes = Vec::new();
    let mut size = 0i64;
    let mut parent: Option<Digest> = None;
    for diff_id in &config.rootfs.diff_ids {
        let cid = berth_snapshot::layer::chain_id(parent.as_ref(), diff_id);
        let info = layers
            .get(&cid)
            .ctx(|| format!("layer {cid}"))?
            .ok_or_else(|| EngineError::internal(format!("layer {cid} is missing")))?;
        size += info.size as i64;
        layer_sizes.push(info.size as i64);
        chain.push(cid.clone());
        parent = Some(cid);
    }
    Ok(ImageRecord {
        id: manifest.config.digest.clone(),
        manifest: Descriptor {
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| MEDIA_OCI_MANIFEST.into()),
            digest: manifest_digest.clone(),
            size: raw.len() as u64,
        },
        layer_blobs: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        config,
        chain,
        layer_sizes,
        size,
        names: BTreeMap::new(),
    })
}

/// What a deletion would do, decided against the containers that use the image.
pub struct UsingContainers {
    pub running: Vec<String>,
    pub stopped: Vec<String>,
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// Docker's `rmi` rules (moby daemon/images/image_delete.go), minus the pruning of parents,
/// which our images do not have. Mutates `db`; returns the lines to report and whether the
/// image itself was deleted.
pub fn plan_delete(
    db: &mut ImageDb,
    name: &str,
    force: bool,
    using: &UsingContainers,
) -> Result<(Vec<ImageDeleteItem>, Option<ImageRecord>)> {
    let rec = db.resolve(name)?.clone();
    let mut items = Vec::new();
    let by_reference = Reference::parse_normalized(name)
        .ok()
        .map(|r| {
            if r.digest().is_none() {
                r.with_default_tag()
            } else {
                r
            }
        })
        .filter(|r| rec.names.contains_key(r));

    if let Some(r) = by_reference {
        // Untagging the last tag of a repository also drops that repository's digest
        // references (moby's image_delete.go): they were only there because of the pull.
        let mut dropped = vec![r.clone()];
        if r.digest().is_none()
            && !rec
                .names
                .keys()
                .any(|n| n != &r && n.digest().is_none() && n.name() == r.name())
        {
            dropped.extend(
                rec.names
                    .keys()
                    .filter(|n| n.digest().is_some() && n.name() == r.name())
                    .cloned(),
            );
        }
        let others = rec.names.keys().filter(|n| !dropped.contains(n)).count();
        if others > 0 {
            for n in &dropped {
                db.remove_name(n);
                items.push(ImageDeleteItem::Untagged(n.familiar_string()));
            }
            return Ok((items, None));
        }
        if !force {
            if let Some(c) = using.running.iter().chain(using.stopped.iter()).next() {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    short(c),
                    short(rec.id.hex())
                )));
            }
        }
        for n in &dropped {
            db.remove_name(n);
            items.push(ImageDeleteItem::Untagged(n.familiar_string()));
        }
        if !using.running.is_empty() || !using.stopped.is_empty() {
            return Ok((items, None));
        }
    } else {
        if let Some(c) = using.running.first() {
            return Err(EngineError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short(rec.id.hex()),
                short(c)
            )));
        }
        if rec.names.keys().filter(|n| n.digest().is_none()).count() > 1 && !force {
            return Err(EngineError::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(rec.id.hex())
            )));
        }
        if let Some(c) = using.stopped.first() {
            if !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short(rec.id.hex()),
                    short(c)
                )));
            }
        }
        let names: Vec<Reference> = rec.names.keys().cloned().collect();
        for n in names {
            db.remove_name(&n);
            items.push(ImageDeleteItem::Untagged(n.familiar_string()));
        }
        if !using.stopped.is_empty() {
            // Forced with a stopped container: untag only, like Docker, so the container
            // keeps its image.
            return Ok((items, None));
        }
    }
    let removed = db.images.remove(&rec.id);
    items.push(ImageDeleteItem::Deleted(rec.id.to_string()));
    Ok((items, removed))
}

/// Chain IDs (with all their parents) that must stay: every image's and every container's.
pub fn live_layers(
    db: &ImageDb,
    container_tops: &[Digest],
    layers: &LayerStore,
) -> HashSet<Digest> {
    let mut live: HashSet<Digest> = db
        .images
        .values()
        .flat_map(|r| r.chain.iter().cloned())
        .collect();
    for top in container_tops {
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            if !live.insert(c.clone()) {
                break;
            }
            cur = layers.get(&c).ok().flatten().and_then(|i| i.parent);
        }
    }
    live
}

/// Blobs that must stay: every live image's manifest, config and layer blobs.
pub fn live_blobs(db: &ImageDb) -> Result<BTreeSet<Digest>> {
    let mut live = BTreeSet::new();
    for rec in db.images.values() {
        live.insert(rec.manifest.digest.clone());
        live.insert(rec.id.clone());
        live.extend(rec.layer_blobs.iter().cloned());
    }
    Ok(live)
}
