//! `network ls` rows: docker's `networkContext` fields computed from `GET /networks` items.

use std::rc::Rc;

use serde_json::Value as Json;

use super::truncate_id;
use crate::template::{Method, Struct, Value};
use crate::timefmt;

pub const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// docker's `network.NewFormat`: a custom format is used as is, even with `--quiet`.
pub fn format_for(source: &str, quiet: bool) -> String {
    match source {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" => DEFAULT_TABLE.to_string(),
        "raw" if quiet => "network_id: {{.ID}}".to_string(),
        "raw" => {
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
                .to_string()
        }
        _ => source.to_string(),
    }
}

/// The table header context.
pub fn header() -> Value {
    super::header(&[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ])
}

/// One `network ls` row.
pub fn row(n: &Json, trunc: bool) -> Value {
    let text = |k: &str| n.get(k).and_then(Json::as_str).unwrap_or_default();
    let flag = |k: &str| {
        n.get(k)
            .and_then(Json::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    let mut labels: Vec<(String, String)> = n
        .get("Labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    // docker joins a Go map, in no stable order; sorted is one of its orders, and repeatable.
    labels.sort();
    let joined = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let label: Method = Rc::new(move |args: &[Value]| match args {
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
    });
    let id = if trunc {
        truncate_id(text("Id"))
    } else {
        text("Id").to_string()
    };
    Value::from(
        Struct::new("*network.networkContext")
            .field(
                "CreatedAt",
                timefmt::go_time_string_rfc3339(text("Created")),
            )
            .field("Driver", text("Driver"))
            .field("ID", id)
            .field("IPv4", flag("EnableIPv4"))
            .field("IPv6", flag("EnableIPv6"))
            .field("Internal", flag("Internal"))
            .field("Labels", joined)
            .field("Name", text("Name"))
            .field("Scope", text("Scope"))
            .method("Label", label),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formatter::{render, Format};

    fn sample() -> Json {
        json!({
            "Name": "net10",
            "Id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "Created": "2024-01-02T03:04:05.123456789Z",
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv4": true,
            "Labels": {"b": "2", "a": "1"}
        })
    }

    #[test]
    fn default_table_and_fields() {
        let out = render(
            &Format(format_for("", false)),
            &header(),
            &[row(&sample(), true)],
        )
        .expect("renders");
        assert_eq!(
            out,
            "NETWORK ID     NAME      DRIVER    SCOPE\nbbbbbbbbbbbb   net10     bridge    local\n"
        );
        let out = render(
            &Format("{{.ID}} {{.Labels}} {{.Label \"a\"}} {{.IPv4}} {{.IPv6}} {{.Internal}} {{.CreatedAt}}".into()),
            &header(),
            &[row(&sample(), false)],
        )
        .expect("renders");
        assert_eq!(
            out,
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb a=1,b=2 1 true false false 2024-01-02 03:04:05.123456789 +0000 UTC\n"
        );
        let out =
            render(&Format("json".into()), &header(), &[row(&sample(), true)]).expect("renders");
        assert_eq!(
            out,
            "{\"CreatedAt\":\"2024-01-02 03:04:05.123456789 +0000 UTC\",\"Driver\":\"bridge\",\"ID\":\"bbbbbbbbbbbb\",\"IPv4\":\"true\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"a=1,b=2\",\"Name\":\"net10\",\"Scope\":\"local\"}\n"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_for("table", true), "{{.ID}}");
        assert_eq!(format_for("{{.Name}}", true), "{{.Name}}");
        assert_eq!(format_for("raw", true), "network_id: {{.ID}}");
        let out = render(
            &Format(format_for("raw", false)),
            &header(),
            &[row(&sample(), true)],
        )
        .expect("renders");
        assert_eq!(
            out,
            "network_id: bbbbbbbbbbbb\nname: net10\ndriver: bridge\nscope: local\n\n"
        );
    }
}
