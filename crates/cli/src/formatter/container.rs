//! `ps` rows: docker's `ContainerContext` fields computed from the API's
//! container summaries.

use std::rc::Rc;

use serde_json::Value as Json;

use super::{ellipsis, go_quote, truncate_id};
use crate::template::{Method, Struct, Value};
use crate::timefmt;
use crate::units;
use berth_reference::Reference;

pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's `NewContainerFormat`: the format to use for `ps`.
pub fn format_for(source: &str, quiet: bool, size: bool) -> String {
    match source {
        "" | "table" => {
            if quiet {
                return "{{.ID}}".to_string();
            }
            let mut f = DEFAULT_TABLE.to_string();
            if size {
                f.push_str("\\t{{.Size}}");
            }
            f
        }
        "raw" => {
            if quiet {
                return "container_id: {{.ID}}".to_string();
            }
            let mut f = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n".to_string();
            if size {
                f.push_str("size: {{.Size}}\\n");
            }
            f
        }
        _ if quiet => "{{.ID}}".to_string(),
        _ => source.to_string(),
    }
}

/// The table header context.
pub fn header() -> Value {
    super::header(&[
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ])
}

fn str_of<'a>(v: &'a Json, key: &str) -> &'a str {
    v.get(key).and_then(Json::as_str).unwrap_or("")
}

fn int_of(v: &Json, key: &str) -> i64 {
    v.get(key).and_then(Json::as_i64).unwrap_or(0)
}

/// One `ps` row from a `GET /containers/json` item.
pub fn row(c: &Json, trunc: bool) -> Value {
    let labels: Vec<(String, String)> = c
        .get("Labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let label_method: Method = {
        let labels = labels.clone();
        Rc::new(move |args: &[Value]| match args {
            [Value::String(k)] => Ok(Value::from(
                labels
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            )),
            _ => Err(format!(
                "wrong number of args for Label: want 1 got {}",
                args.len()
            )),
        })
    };
    let created = int_of(c, "Created");
    Value::from(
        Struct::new("*formatter.ContainerContext")
            .field("Command", command(str_of(c, "Command"), trunc))
            .field("CreatedAt", timefmt::go_time_string(created))
            .field("ID", id(str_of(c, "Id"), trunc))
            .field(
                "Image",
                image(str_of(c, "Image"), str_of(c, "ImageID"), trunc),
            )
            .field("Labels", joined_labels(&labels))
            .field("LocalVolumes", local_volumes(c).to_string())
            .field("Mounts", mounts(c, trunc))
            .field("Names", names(c, trunc))
            .field("Networks", networks(c))
            .field("Platform", Value::Null)
            .field(
                "Ports",
                displayable_ports(
                    c.get("Ports")
                        .and_then(Json::as_array)
                        .map_or(&[][..], Vec::as_slice),
                ),
            )
            .field(
                "RunningFor",
                format!(
                    "{} ago",
                    units::human_duration_nanos(timefmt::elapsed_nanos(created))
                ),
            )
            .field("Size", size(c))
            .field("State", str_of(c, "State"))
            .field("Status", str_of(c, "Status"))
            .method("Label", label_method),
    )
}

fn id(id: &str, trunc: bool) -> String {
    if trunc {
        truncate_id(id)
    } else {
        id.to_string()
    }
}

fn command(cmd: &str, trunc: bool) -> String {
    if trunc {
        go_quote(&ellipsis(cmd, 20))
    } else {
        go_quote(cmd)
    }
}

/// The IMAGE column: the image as the user named it, shortened.
fn image(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".to_string();
    }
    if !trunc {
        return image.to_string();
    }
    let short = truncate_id(image_id);
    if short == truncate_id(image) {
        return short;
    }
    match Reference::parse_normalized(image) {
        // A pinned digest is noise in a table; keep name and tag.
        Ok(r) => match r.tag() {
            Some(t) => format!("{}:{t}", r.familiar_name()),
            None => r.familiar_name(),
        },
        Err(_) => image.to_string(),
    }
}

fn names(c: &Json, trunc: bool) -> String {
    let names: Vec<&str> = c
        .get("Names")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let stripped: Vec<&str> = names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .collect();
    if trunc {
        // Legacy link names contain a slash; the table shows the primary name.
        return stripped
            .iter()
            .find(|n| !n.contains('/'))
            .map(|s| s.to_string())
            .unwrap_or_default();
    }
    stripped.join(",")
}

fn joined_labels(labels: &[(String, String)]) -> String {
    let mut joined: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.sort();
    joined.join(",")
}

fn mounts(c: &Json, trunc: bool) -> String {
    let Some(list) = c.get("Mounts").and_then(Json::as_array) else {
        return String::new();
    };
    list.iter()
        .map(|m| {
            let name = match str_of(m, "Name") {
                "" => str_of(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn local_volumes(c: &Json) -> usize {
    c.get("Mounts").and_then(Json::as_array).map_or(0, |l| {
        l.iter().filter(|m| str_of(m, "Driver") == "local").count()
    })
}

fn networks(c: &Json) -> String {
    c.get("NetworkSettings")
        .and_then(|n| n.get("Networks"))
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn size(c: &Json) -> String {
    let rw = int_of(c, "SizeRw");
    let rootfs = int_of(c, "SizeRootFs");
    let srw = units::human_size_with_precision(rw as f64, 3);
    if rootfs > 0 {
        format!(
            "{srw} (virtual {})",
            units::human_size_with_precision(rootfs as f64, 3)
        )
    } else {
        srw
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    ip: String,
    private: u16,
    public: u16,
    proto: String,
}

fn host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `DisplayablePorts`: groups consecutive ports into ranges,
/// "0.0.0.0:8080->80/tcp, 443/tcp".
pub fn displayable_ports(ports: &[Json]) -> String {
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: str_of(p, "IP").to_string(),
            private: u16::try_from(int_of(p, "PrivatePort")).unwrap_or(0),
            public: u16::try_from(int_of(p, "PublicPort")).unwrap_or(0),
            proto: str_of(p, "Type").to_string(),
        })
        .collect();
    ports.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.proto.cmp(&b.proto))
    });
    // Groups keep first-seen order, as docker's `groupMapKeys` does.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2.wrapping_add(1) => g.2 = p.private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formatter::{render, Format};

    fn sample() -> Json {
        json!({
            "Id": "8be5fa009a45d4fa342017e7fc344739701f7c5c10f0c0731dcc3928b81a6d36",
            "Names": ["/funny_galois"],
            "Image": "busybox",
            "ImageID": "sha256:d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8",
            "Command": "sh -c 'while true; do sleep 1; done'",
            "Created": 0,
            "Ports": [],
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 2 minutes",
            "NetworkSettings": {"Networks": {"bridge": {}}},
            "Mounts": [{"Name": "vol", "Driver": "local"}, {"Source": "/host/really/long/path", "Driver": ""}]
        })
    }

    #[test]
    fn row_fields() {
        let r = row(&sample(), true);
        let f = Format("{{.ID}}|{{.Image}}|{{.Command}}|{{.Names}}|{{.Labels}}|{{.Label \"a\"}}|{{.Networks}}|{{.Mounts}}|{{.LocalVolumes}}|{{.Size}}|{{.State}}".into());
        let out = render(&f, &header(), &[r]).expect("renders");
        assert_eq!(
            out,
            "8be5fa009a45|busybox|\"sh -c 'while true; …\"|funny_galois|a=1,b=2|1|bridge|vol,/host/really/l…|1|0B|running\n"
        );
        let full = render(
            &Format("{{.ID}} {{.Command}}".into()),
            &header(),
            &[row(&sample(), false)],
        )
        .expect("renders");
        assert_eq!(full, "8be5fa009a45d4fa342017e7fc344739701f7c5c10f0c0731dcc3928b81a6d36 \"sh -c 'while true; do sleep 1; done'\"\n");
    }

    #[test]
    fn default_table() {
        let f = Format(format_for("", false, false));
        let mut c = sample();
        c["Created"] = json!(chrono::Utc::now().timestamp() - 5);
        let out = render(&f, &header(), &[row(&c, true)]).expect("renders");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES");
        assert_eq!(lines[1], "8be5fa009a45   busybox   \"sh -c 'while true; …\"   5 seconds ago   Up 2 minutes             funny_galois");
        assert_eq!(format_for("", true, false), "{{.ID}}");
        assert!(format_for("table", false, true).ends_with("\\t{{.Size}}"));
        assert_eq!(format_for("{{.Names}}", true, false), "{{.ID}}");
    }

    #[test]
    fn image_column() {
        let id = "sha256:d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8";
        assert_eq!(image("", id, true), "<no image>");
        assert_eq!(image(id, id, true), "d644867353d2");
        assert_eq!(
            image("docker.io/library/busybox:latest", id, true),
            "busybox:latest"
        );
        assert_eq!(
            image(
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                id,
                true
            ),
            "busybox"
        );
        assert_eq!(
            image("docker.io/library/busybox:latest", id, false),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn ports() {
        let p = |ip: &str, private: u16, public: u16, t: &str| json!({"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": t});
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[
                p("0.0.0.0", 80, 8080, "tcp"),
                json!({"PrivatePort": 443, "Type": "tcp"})
            ]),
            "443/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                p("0.0.0.0", 80, 80, "tcp"),
                p("0.0.0.0", 81, 81, "tcp"),
                p("0.0.0.0", 82, 82, "tcp")
            ]),
            "0.0.0.0:80-82->80-82/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                json!({"PrivatePort": 53, "Type": "udp"}),
                json!({"PrivatePort": 53, "Type": "tcp"})
            ]),
            "53/tcp, 53/udp"
        );
        assert_eq!(
            displayable_ports(&[p("::", 80, 8080, "tcp")]),
            "[::]:8080->80/tcp"
        );
        // What docker 28.2.2 prints for these summaries (IPs compare as strings there).
        assert_eq!(
            displayable_ports(&[
                p("0.0.0.0", 80, 8080, "tcp"),
                json!({"PrivatePort": 443, "Type": "tcp"}),
                p("::", 80, 8080, "tcp"),
                p("10.0.0.2", 81, 81, "tcp"),
                p("9.0.0.1", 81, 81, "tcp"),
                p("0.0.0.0", 82, 82, "udp"),
                p("0.0.0.0", 83, 83, "udp"),
            ]),
            "10.0.0.2:81->81/tcp, 9.0.0.1:81->81/tcp, 0.0.0.0:82-83->82-83/udp, 443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
    }

    #[test]
    fn json_of_row_is_sorted() {
        let out =
            render(&Format("json".into()), &header(), &[row(&sample(), true)]).expect("renders");
        assert!(
            out.starts_with("{\"Command\":\"\\\"sh -c 'while true; …\\\"\",\"CreatedAt\":"),
            "{out}"
        );
        assert!(out.contains("\"Platform\":null"));
    }
}
