//! `inspect`, `container inspect` and `image inspect`: the daemon's raw JSON,
//! re-indented as a JSON array, or run through a `--format` template.

use super::seg;
use crate::args::{ContainerInspectArgs, ImageInspectArgs, InspectArgs};
use crate::client::{ApiError, Client, Query};
use crate::error::{self, CliError};
use crate::template::{ExecOptions, Template, Value};
use crate::{jsonfmt, output, Ctx};

const ALL_TYPES: [&str; 10] = [
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];

/// docker's inspector: collects objects, prints them once at the end.
enum Inspector {
    Indented(Vec<String>),
    Compact(Vec<String>),
    Template(Box<Template>, String),
}

impl Inspector {
    /// Builds the inspector for `--format`; a bad template exits 64 as in docker.
    fn new(format: Option<&str>) -> Result<Inspector, CliError> {
        match format.unwrap_or("") {
            "" => Ok(Inspector::Indented(Vec::new())),
            "json" => Ok(Inspector::Compact(Vec::new())),
            f => Template::parse(f)
                .map(|t| Inspector::Template(Box::new(t), String::new()))
                .map_err(|e| CliError::with_code(format!("template parsing error: {e}"), 64)),
        }
    }

    fn add(&mut self, raw: &str) -> Result<(), CliError> {
        match self {
            Inspector::Indented(v) | Inspector::Compact(v) => v.push(raw.to_string()),
            Inspector::Template(t, out) => {
                let data = Value::from_json(raw)
                    .map_err(|e| CliError::new(format!("unable to read inspect data: {e}")))?;
                // Inspect data is raw JSON, so a missing key is an error (docker's raw fallback).
                let opts = ExecOptions {
                    missing_key_error: true,
                    ..ExecOptions::default()
                };
                let text = t
                    .execute(&data, &opts)
                    .map_err(|e| CliError::new(format!("template parsing error: {e}")))?;
                out.push_str(&text);
                out.push('\n');
            }
        }
        Ok(())
    }

    fn render(&self) -> String {
        match self {
            Inspector::Indented(v) | Inspector::Compact(v) if v.is_empty() => "[]\n".to_string(),
            Inspector::Indented(v) => jsonfmt::indent(&format!("[{}]", v.join(",")), "    ") + "\n",
            Inspector::Compact(v) => jsonfmt::compact(&format!("[{}]", v.join(","))) + "\n",
            Inspector::Template(_, out) if out.is_empty() => "\n".to_string(),
            Inspector::Template(_, out) => out.clone(),
        }
    }
}

/// Inspects each reference with `get`, prints, and fails with the joined errors.
pub(crate) async fn run_inspect<F, Fut>(
    names: &[String],
    format: Option<&str>,
    mut get: F,
) -> Result<(), CliError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, CliError>>,
{
    let mut inspector = Inspector::new(format)?;
    let mut errors = Vec::new();
    for name in names {
        match get(name.clone()).await {
            Ok(raw) => {
                if let Err(e) = inspector.add(&raw) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    output::out(&inspector.render());
    error::join(errors)
}

pub(crate) async fn get_raw(client: &Client, path: &str) -> Result<String, ApiError> {
    let bytes = client.get_bytes(path).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn container_path(name: &str, size: bool) -> String {
    Query::new()
        .set_if(size, "size", "1")
        .to_path(&format!("/containers/{}/json", seg(name)))
}

/// The API path of an object of `kind`.
fn object_path(kind: &str, name: &str, size: bool) -> String {
    let n = seg(name);
    match kind {
        "container" => container_path(name, size),
        "image" => format!("/images/{n}/json"),
        "network" => format!("/networks/{n}"),
        "volume" => format!("/volumes/{n}"),
        "plugin" => format!("/plugins/{n}/json"),
        "service" => format!("/services/{n}?insertDefaults=1"),
        "task" => format!("/tasks/{n}"),
        "node" => format!("/nodes/{n}"),
        "secret" => format!("/secrets/{n}"),
        _ => format!("/configs/{n}"),
    }
}

pub async fn inspect(ctx: &mut Ctx, a: InspectArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.names.len(), 1)?;
    let types = format!("\"{}\"", ALL_TYPES.join("\", \""));
    let kind = a.object_type.clone();
    match kind.as_deref() {
        Some("") => {
            return Err(CliError::new(format!(
                "type is empty: must be one of {types}"
            )))
        }
        Some(t) if !ALL_TYPES.contains(&t) => {
            return Err(CliError::new(format!(
                "unknown type: \"{t}\": must be one of {types}"
            )))
        }
        _ => {}
    }
    let client = ctx.client().await?;
    let size = a.size;
    run_inspect(&a.names, a.format.as_deref(), |name| {
        let client = client.clone();
        let kind = kind.clone();
        async move {
            if let Some(kind) = kind {
                let raw = get_raw(&client, &object_path(&kind, &name, size)).await?;
                if size && kind != "container" {
                    output::errln(&format!("WARNING: --size ignored for {kind}"));
                }
                return Ok(raw);
            }
            // Without --type, try each local object type in docker's order;
            // swarm objects are only looked up when asked for.
            for kind in ["container", "image", "network", "volume", "plugin"] {
                match get_raw(&client, &object_path(kind, &name, size)).await {
                    Ok(raw) => {
                        if size && kind != "container" {
                            output::errln(&format!("WARNING: --size ignored for {kind}"));
                        }
                        return Ok(raw);
                    }
                    Err(e) if skippable(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(CliError::new(format!("Error: No such object: {name}")))
        }
    })
    .await
}

/// Errors that mean "not this type of object": try the next type.
fn skippable(e: &ApiError) -> bool {
    let msg = e.to_string();
    e.is_not_found() || msg.contains("not supported") || msg.contains("invalid reference format")
}

pub async fn container_inspect(ctx: &mut Ctx, a: ContainerInspectArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.names.len(), 1)?;
    let client = ctx.client().await?;
    let size = a.size;
    run_inspect(&a.names, a.format.as_deref(), |name| {
        let client = client.clone();
        async move {
            get_raw(&client, &container_path(&name, size))
                .await
                .map_err(CliError::from)
        }
    })
    .await
}

pub async fn image_inspect(ctx: &mut Ctx, a: ImageInspectArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.names.len(), 1)?;
    let client = ctx.client().await?;
    run_inspect(&a.names, a.format.as_deref(), |name| {
        let client = client.clone();
        async move {
            get_raw(&client, &object_path("image", &name, false))
                .await
                .map_err(CliError::from)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "{\"Id\":\"abc\",\"State\":{\"Status\":\"exited\",\"ExitCode\":3},\"Config\":{\"Image\":\"busybox\",\"Env\":[]}}\n";

    #[test]
    fn indented_output() {
        let mut i = Inspector::new(None).expect("valid");
        assert_eq!(i.render(), "[]\n");
        i.add(RAW).expect("adds");
        assert_eq!(
            i.render(),
            "[\n    {\n        \"Id\": \"abc\",\n        \"State\": {\n            \"Status\": \"exited\",\n            \"ExitCode\": 3\n        },\n        \"Config\": {\n            \"Image\": \"busybox\",\n            \"Env\": []\n        }\n    }\n]\n"
        );
        let mut c = Inspector::new(Some("json")).expect("valid");
        c.add(RAW).expect("adds");
        c.add(RAW).expect("adds");
        assert!(c.render().starts_with("[{\"Id\":\"abc\",\"State\""));
    }

    #[test]
    fn template_output() {
        let mut i = Inspector::new(Some(
            "{{.State.Status}} {{.State.ExitCode}} {{json .Config}}",
        ))
        .expect("valid");
        assert_eq!(i.render(), "\n");
        i.add(RAW).expect("adds");
        assert_eq!(i.render(), "exited 3 {\"Image\":\"busybox\",\"Env\":[]}\n");
        let mut bad = Inspector::new(Some("{{.Foo}}")).expect("valid");
        assert_eq!(
            bad.add(RAW).map_err(|e| e.message),
            Err("template parsing error: template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\"".to_string())
        );
        assert_eq!(
            Inspector::new(Some("{{.Foo")).err().map(|e| e.code),
            Some(64)
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            object_path("container", "web", true),
            "/containers/web/json?size=1"
        );
        assert_eq!(
            object_path("image", "busybox:latest", false),
            "/images/busybox:latest/json"
        );
        assert_eq!(object_path("volume", "v", false), "/volumes/v");
    }
}
