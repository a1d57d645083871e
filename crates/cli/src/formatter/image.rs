//! `images` and `history` rows: docker's `imageContext` and `historyContext`.

use serde_json::Value as Json;

use super::{ellipsis, truncate_id};
use crate::template::{Struct, Value};
use crate::timefmt;
use crate::units;
use berth_reference::Reference;

const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGES_TABLE_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// docker's `NewImageFormat`.
pub fn images_format(source: &str, quiet: bool, digests: bool) -> String {
    match source {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" if digests => IMAGES_TABLE_DIGEST.to_string(),
        "table" => IMAGES_TABLE.to_string(),
        "raw" if quiet => "image_id: {{.ID}}".to_string(),
        "raw" if digests => "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_string(),
        "raw" => "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_string(),
        _ => {
            let mut f = source.to_string();
            if f.starts_with("table") && digests && !f.contains("{{.Digest}}") {
                f.push_str("\t{{.Digest}}");
            }
            f
        }
    }
}

pub fn images_header() -> Value {
    super::header(&[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ])
}

fn strings(v: &Json, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn int_of(v: &Json, key: &str) -> i64 {
    v.get(key).and_then(Json::as_i64).unwrap_or(0)
}

/// The rows for one image: one per repository:tag (and digest with `--digests`).
pub fn image_rows(
    img: &Json,
    trunc: bool,
    show_digests: bool,
    format_uses_digest: bool,
) -> Vec<Value> {
    let tags = strings(img, "RepoTags");
    let digests = strings(img, "RepoDigests");
    let row = |repo: &str, tag: &str, digest: &str| image_row(img, trunc, repo, tag, digest);
    if tags.is_empty() && digests.is_empty()
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"])
    {
        return vec![row("<none>", "<none>", "<none>")];
    }
    // Group tags and digests by repository, keeping first-seen order.
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        let Ok(r) = Reference::parse_normalized(t) else {
            continue;
        };
        let Some(tag) = r.tag().map(str::to_string) else {
            continue;
        };
        let name = r.familiar_name();
        match repo_tags.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(tag),
            None => repo_tags.push((name, vec![tag])),
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &digests {
        let Ok(r) = Reference::parse_normalized(d) else {
            continue;
        };
        let Some(digest) = r.digest().map(|d| d.to_string()) else {
            continue;
        };
        let name = r.familiar_name();
        match repo_digests.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(digest),
            None => repo_digests.push((name, vec![digest])),
        }
    }
    let need_digest = show_digests || format_uses_digest;
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(n, _)| n == repo);
        let digests = pos.map(|i| repo_digests.remove(i).1).unwrap_or_default();
        for tag in tags {
            if !need_digest || digests.is_empty() {
                rows.push(row(repo, tag, "<none>"));
            } else {
                for d in &digests {
                    rows.push(row(repo, tag, d));
                }
            }
        }
    }
    for (repo, digests) in &repo_digests {
        if show_digests {
            for d in digests {
                rows.push(row(repo, "<none>", d));
            }
        } else {
            rows.push(row(repo, "<none>", ""));
        }
    }
    rows
}

fn image_row(img: &Json, trunc: bool, repo: &str, tag: &str, digest: &str) -> Value {
    let id = img.get("Id").and_then(Json::as_str).unwrap_or("");
    let created = int_of(img, "Created");
    let size = int_of(img, "Size");
    let shared = img.get("SharedSize").and_then(Json::as_i64).unwrap_or(-1);
    let containers = img.get("Containers").and_then(Json::as_i64).unwrap_or(-1);
    Value::from(
        Struct::new("*formatter.imageContext")
            .field(
                "Containers",
                if containers == -1 {
                    "N/A".to_string()
                } else {
                    containers.to_string()
                },
            )
            .field("CreatedAt", timefmt::go_time_string(created))
            .field(
                "CreatedSince",
                format!(
                    "{} ago",
                    units::human_duration_nanos(timefmt::elapsed_nanos(created))
                ),
            )
            .field("Digest", digest)
            .field(
                "ID",
                if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                },
            )
            .field("Repository", repo)
            .field(
                "SharedSize",
                if shared == -1 {
                    "N/A".to_string()
                } else {
                    units::human_size(shared as f64)
                },
            )
            .field("Size", units::human_size_with_precision(size as f64, 3))
            .field("Tag", tag)
            .field(
                "UniqueSize",
                if shared == -1 || size == -1 {
                    "N/A".to_string()
                } else {
                    units::human_size((size - shared) as f64)
                },
            )
            .field("VirtualSize", units::human_size(size as f64)),
    )
}

/// docker's history format choice.
pub fn history_format(source: &str, quiet: bool, human: bool) -> String {
    match source {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" if !human => {
            "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        "table" => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        _ => source.to_string(),
    }
}

pub fn history_header() -> Value {
    super::header(&[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ])
}

/// Images built before this are shown with an unknown creation time.
const EPOCH_2000: i64 = 946_684_800;

/// One `history` row from a `GET /images/{name}/history` item.
pub fn history_row(h: &Json, trunc: bool, human: bool) -> Value {
    let id = h.get("Id").and_then(Json::as_str).unwrap_or("");
    let created = int_of(h, "Created");
    let created_at = timefmt::rfc3339_local(created);
    let created_since = if !human {
        created_at.clone()
    } else if created <= EPOCH_2000 {
        "N/A".to_string()
    } else {
        format!(
            "{} ago",
            units::human_duration_nanos(timefmt::elapsed_nanos(created))
        )
    };
    let created_by = h
        .get("CreatedBy")
        .and_then(Json::as_str)
        .unwrap_or("")
        .replace('\t', " ");
    let size = int_of(h, "Size");
    Value::from(
        Struct::new("*image.historyContext")
            .field(
                "Comment",
                h.get("Comment").and_then(Json::as_str).unwrap_or(""),
            )
            .field("CreatedAt", created_at)
            .field(
                "CreatedBy",
                if trunc {
                    ellipsis(&created_by, 45)
                } else {
                    created_by
                },
            )
            .field("CreatedSince", created_since)
            .field(
                "ID",
                if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                },
            )
            .field(
                "Size",
                if human {
                    units::human_size_with_precision(size as f64, 3)
                } else {
                    size.to_string()
                },
            ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formatter::{render, Format};

    fn busybox() -> Json {
        json!({
            "Id": "sha256:d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8",
            "RepoTags": ["busybox:latest", "busybox:1", "localhost:5000/bb:x"],
            "RepoDigests": ["busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
            "Created": chrono::Utc::now().timestamp() - 7200,
            "Size": 1_982_464,
            "SharedSize": -1,
            "Containers": -1
        })
    }

    #[test]
    fn default_table() {
        let rows = image_rows(&busybox(), true, false, false);
        let out = render(
            &Format(images_format("table", false, false)),
            &images_header(),
            &rows,
        )
        .expect("renders");
        assert_eq!(
            out,
            "REPOSITORY          TAG       IMAGE ID       CREATED       SIZE\n\
             busybox             latest    d644867353d2   2 hours ago   1.98MB\n\
             busybox             1         d644867353d2   2 hours ago   1.98MB\n\
             localhost:5000/bb   x         d644867353d2   2 hours ago   1.98MB\n"
        );
    }

    #[test]
    fn digests_and_dangling() {
        let rows = image_rows(&busybox(), true, true, false);
        let out = render(
            &Format("{{.Repository}}:{{.Tag}}@{{.Digest}}".into()),
            &images_header(),
            &rows,
        )
        .expect("renders");
        assert!(out.starts_with("busybox:latest@sha256:0123"), "{out}");
        assert!(out.contains("localhost:5000/bb:x@<none>"), "{out}");

        let dangling =
            json!({"Id": "sha256:abc", "RepoTags": [], "RepoDigests": [], "Created": 0, "Size": 0});
        let rows = image_rows(&dangling, false, false, false);
        let out = render(
            &Format("{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}".into()),
            &images_header(),
            &rows,
        )
        .expect("renders");
        assert_eq!(out, "<none> <none> sha256:abc 0B\n");
    }

    #[test]
    fn formats() {
        assert_eq!(images_format("table", true, false), "{{.ID}}");
        assert!(images_format("table", false, true).contains("{{.Digest}}"));
        assert_eq!(
            images_format("table {{.ID}}", false, true),
            "table {{.ID}}\t{{.Digest}}"
        );
        assert_eq!(history_format("table", true, true), "{{.ID}}");
    }

    #[test]
    fn json_row_has_docker_fields() {
        let rows = image_rows(&busybox(), true, false, false);
        let out = render(&Format("json".into()), &images_header(), &rows[..1]).expect("renders");
        assert!(
            out.starts_with("{\"Containers\":\"N/A\",\"CreatedAt\":\""),
            "{out}"
        );
        assert!(out.contains("\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"d644867353d2\",\"Repository\":\"busybox\",\"SharedSize\":\"N/A\",\"Size\":\"1.98MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\",\"VirtualSize\":\"1.982MB\"}"), "{out}");
    }

    #[test]
    fn history_rows() {
        let h = json!({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"] with a very long tail of text", "Size": 1_982_464, "Comment": "Imported from -"});
        let out = render(
            &Format(history_format("table", false, true)),
            &history_header(),
            &[history_row(&h, true, true)],
        )
        .expect("renders");
        assert_eq!(
            out,
            "IMAGE       CREATED   CREATED BY                                      SIZE      COMMENT\n\
             <missing>   N/A       /bin/sh -c #(nop) CMD [\"sh\"] with a very lon…   1.98MB    Imported from -\n"
        );
        let raw = render(
            &Format("{{.Size}}".into()),
            &history_header(),
            &[history_row(&h, true, false)],
        )
        .expect("renders");
        assert_eq!(raw, "1982464\n");
    }
}
