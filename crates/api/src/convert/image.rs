//! Images on the wire: `ImageSummary`, `ImageInspect`, `HistoryResponseItem`, delete items.

use std::collections::HashMap;

use berth_engine::types::{HistoryEntry, Image, ImageConfig, ImageDeleteItem};
use bollard_stubs::models::{
    self as wire, DriverData, ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect,
    ImageInspectRootFs, ImageSummary,
};
use serde_json::Value;

use super::{ensure, object_at, rfc3339_nano, set, to_value, ZERO_TIME};
use crate::error::ApiError;
use crate::server::ApiVersion;

/// One row of `GET /images/json`, with the per-version shapes dockerd applies.
pub fn summary(img: &Image, version: &ApiVersion) -> Result<Value, ApiError> {
    let mut s = ImageSummary {
        id: img.id.to_string(),
        parent_id: img.parent.clone(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        created: img.created.map(|t| t.timestamp()).unwrap_or(0),
        size: img.size,
        shared_size: -1,
        labels: img
            .config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        containers: img.containers,
        manifests: None,
        descriptor: None,
    };
    // Before 1.43 an untagged image was listed with placeholder names.
    if !version.at_least("1.43") && s.repo_tags.is_empty() && s.repo_digests.is_empty() {
        s.repo_tags.push("<none>:<none>".into());
        s.repo_digests.push("<none>@<none>".into());
    }
    let mut v = to_value(&s)?;
    if !version.at_least("1.44") {
        set(&mut v, "VirtualSize", Value::from(img.size));
    }
    Ok(v)
}

fn config_to_wire(c: &ImageConfig) -> wire::ImageConfig {
    let non_empty = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    wire::ImageConfig {
        user: Some(c.user.clone()),
        exposed_ports: non_empty(&c.exposed_ports),
        env: non_empty(&c.env),
        cmd: c.cmd.clone(),
        volumes: non_empty(&c.volumes),
        working_dir: Some(c.working_dir.clone()),
        entrypoint: c.entrypoint.clone(),
        labels: (!c.labels.is_empty()).then(|| {
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        }),
        stop_signal: c.stop_signal.clone(),
        ..Default::default()
    }
}

/// `GET /images/{name}/json`, shaped as dockerd shows it for API <= 1.51.
pub fn inspect(img: &Image, version: &ApiVersion) -> Result<Value, ApiError> {
    let resp = ImageInspect {
        id: Some(img.id.to_string()),
        repo_tags: Some(img.repo_tags.clone()),
        repo_digests: Some(img.repo_digests.clone()),
        comment: Some(img.comment.clone()),
        author: Some(img.author.clone()),
        config: Some(config_to_wire(&img.config)),
        architecture: Some(img.architecture.clone()),
        variant: img.variant.clone().filter(|v| !v.is_empty()),
        os: Some(img.os.clone()),
        size: Some(img.size),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data: HashMap::new(),
        }),
        root_fs: Some(ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(img.layers.iter().map(|d| d.to_string()).collect()),
        }),
        ..Default::default()
    };
    let mut v = to_value(&resp)?;
    // Go's time format, and Go's zero time where dockerd has nothing to show.
    let created = img.created.as_ref().map(rfc3339_nano);
    match created {
        Some(c) => set(&mut v, "Created", Value::from(c)),
        None if !version.at_least("1.44") => set(&mut v, "Created", Value::from(ZERO_TIME)),
        None => {}
    }
    let last_tag = img
        .last_tag_time
        .as_ref()
        .map(rfc3339_nano)
        .unwrap_or_else(|| ZERO_TIME.to_string());
    set(
        &mut v,
        "Metadata",
        serde_json::json!({ "LastTagTime": last_tag }),
    );
    // dockerd (API < 1.52) always sends these top-level fields.
    set(&mut v, "Parent", Value::from(img.parent.clone()));
    ensure(&mut v, "DockerVersion", Value::from(""));
    if !version.at_least("1.44") {
        set(&mut v, "VirtualSize", Value::from(img.size));
    }
    if !version.at_least("1.45") {
        ensure(&mut v, "Container", Value::from(""));
        ensure(&mut v, "ContainerConfig", Value::Null);
    }
    // ... and these image-config fields, even when unset.
    if let Some(config) = object_at(&mut v, "Config") {
        for (k, val) in &img.config.passthrough {
            set(config, k, val.clone());
        }
        for key in ["Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "Volumes"] {
            ensure(config, key, Value::Null);
        }
        ensure(config, "User", Value::from(""));
        ensure(config, "WorkingDir", Value::from(""));
        if !version.at_least("1.50") {
            for key in [
                "AttachStderr",
                "AttachStdin",
                "AttachStdout",
                "OpenStdin",
                "StdinOnce",
                "Tty",
            ] {
                ensure(config, key, Value::from(false));
            }
            for key in ["Domainname", "Hostname", "Image"] {
                ensure(config, key, Value::from(""));
            }
        }
    }
    Ok(v)
}

/// One row of `GET /images/{name}/history`.
pub fn history_item(h: &HistoryEntry) -> ImageHistoryResponseItem {
    ImageHistoryResponseItem {
        id: h
            .id
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "<missing>".into()),
        created: h.created.map(|t| t.timestamp()).unwrap_or(0),
        created_by: h.created_by.clone(),
        tags: h.tags.clone(),
        size: h.size,
        comment: h.comment.clone(),
    }
}

/// One row of `DELETE /images/{name}`'s answer.
pub fn delete_item(item: &ImageDeleteItem) -> ImageDeleteResponseItem {
    match item {
        ImageDeleteItem::Untagged(r) => ImageDeleteResponseItem {
            untagged: Some(r.clone()),
            deleted: None,
        },
        ImageDeleteItem::Deleted(id) => ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use berth_engine::types::ImageConfig;
    use berth_reference::Digest;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    fn digest(c: char) -> Digest {
        serde_json::from_value(json!(format!("sha256:{}", c.to_string().repeat(64))))
            .expect("digest from its string form")
    }

    fn sample() -> Image {
        Image {
            id: digest('a'),
            manifest_digest: digest('b'),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: vec![],
            parent: String::new(),
            comment: "Imported from -".into(),
            author: String::new(),
            created: Utc.timestamp_opt(1_700_000_000, 500_000_000).single(),
            config: ImageConfig {
                cmd: Some(vec!["sh".into()]),
                env: vec!["PATH=/bin".into()],
                labels: [("k".to_string(), "v".to_string())].into_iter().collect(),
                ..Default::default()
            },
            architecture: "amd64".into(),
            variant: None,
            os: "linux".into(),
            size: 4_000_000,
            layers: vec![digest('c'), digest('d')],
            top_layer: None,
            containers: 2,
            last_tag_time: None,
        }
    }

    #[test]
    fn summary_keys_and_old_versions() {
        let v = summary(&sample(), &ApiVersion::current()).expect("summary");
        for k in [
            "Id",
            "ParentId",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Size",
            "SharedSize",
            "Labels",
            "Containers",
        ] {
            assert!(v.get(k).is_some(), "ImageSummary lacks {k}");
        }
        assert_eq!(v["Created"], 1_700_000_000);
        assert_eq!(v["SharedSize"], -1);
        assert_eq!(v["Containers"], 2);
        assert_eq!(v["RepoDigests"], json!([]));
        assert!(v.get("VirtualSize").is_none());
        let mut dangling = sample();
        dangling.repo_tags.clear();
        let old = summary(&dangling, &ApiVersion::new("1.41")).expect("summary");
        assert_eq!(old["RepoTags"], json!(["<none>:<none>"]));
        assert_eq!(old["RepoDigests"], json!(["<none>@<none>"]));
        assert_eq!(old["VirtualSize"], 4_000_000);
        let new = summary(&dangling, &ApiVersion::current()).expect("summary");
        assert_eq!(new["RepoTags"], json!([]));
    }

    #[test]
    fn inspect_keys() {
        let v = inspect(&sample(), &ApiVersion::current()).expect("inspect");
        for k in [
            "Id",
            "RepoTags",
            "RepoDigests",
            "Parent",
            "Comment",
            "Created",
            "Author",
            "Config",
            "Architecture",
            "Os",
            "Size",
            "GraphDriver",
            "RootFS",
            "Metadata",
        ] {
            assert!(v.get(k).is_some(), "ImageInspect lacks {k}");
        }
        assert_eq!(v["Created"], "2023-11-14T22:13:20.5Z");
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(
            v["RootFS"]["Layers"],
            json!([
                format!("sha256:{}", "c".repeat(64)),
                format!("sha256:{}", "d".repeat(64))
            ])
        );
        assert_eq!(v["GraphDriver"]["Name"], "overlay2");
        assert_eq!(v["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(v["Config"]["Entrypoint"], serde_json::Value::Null);
        assert_eq!(v["Config"]["WorkingDir"], "");
        assert_eq!(v["Config"]["Labels"], json!({"k": "v"}));
        assert!(v.get("Variant").is_none());
        let old = inspect(&sample(), &ApiVersion::new("1.43")).expect("inspect");
        assert_eq!(old["VirtualSize"], 4_000_000);
        assert_eq!(old["Config"]["Tty"], false);
        assert_eq!(old["Container"], "");
    }

    #[test]
    fn history_and_delete_items() {
        let h = history_item(&HistoryEntry {
            id: None,
            created: None,
            created_by: "/bin/sh -c #(nop) CMD [\"sh\"]".into(),
            tags: vec![],
            size: 0,
            comment: String::new(),
            empty_layer: true,
        });
        let v = serde_json::to_value(&h).expect("serializes");
        assert_eq!(v["Id"], "<missing>");
        assert_eq!(v["Created"], 0);
        assert_eq!(v["Tags"], json!([]));
        for k in ["Id", "Created", "CreatedBy", "Tags", "Size", "Comment"] {
            assert!(v.get(k).is_some(), "history lacks {k}");
        }
        let items: Vec<_> = [
            ImageDeleteItem::Untagged("busybox:latest".into()),
            ImageDeleteItem::Deleted("sha256:abc".into()),
        ]
        .iter()
        .map(delete_item)
        .collect();
        assert_eq!(
            serde_json::to_value(&items).expect("serializes"),
            json!([{"Untagged": "busybox:latest"}, {"Deleted": "sha256:abc"}])
        );
    }
}
