//! The image config blob (OCI image config plus Docker's extensions such as `Healthcheck`),
//! and `--change` instructions applied to it by import (and later commit).
//!
//! Our own serde types rather than `oci_spec::image::ImageConfiguration`: Docker images carry
//! fields the OCI type drops (`Healthcheck`, `OnBuild`, `Shell`), and a config must round-trip
//! without losing them. Unknown fields are kept in `extra`.

use std::collections::BTreeMap;

use berth_reference::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{EngineError, Result};
use crate::types::ImageConfig;

/// Go writes nil slices and maps as `null` (dockerd's configs have `"Env": null`, `"Cmd":
/// null`, `"config": null`); they mean empty.
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The `config` object inside an image config (Docker's container config subset).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Value>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfigBlob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub os: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: RunConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfigBlob {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| EngineError::internal(format!("invalid image config: {e}")))
    }

    /// The domain view used by create and inspect.
    pub fn to_domain(&self) -> ImageConfig {
        let c = &self.config;
        ImageConfig {
            passthrough: ["Healthcheck", "OnBuild", "Shell"]
                .iter()
                .filter_map(|k| c.extra.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect(),
            user: c.user.clone(),
            env: c.env.clone(),
            cmd: c.cmd.clone(),
            entrypoint: c.entrypoint.clone(),
            working_dir: c.working_dir.clone(),
            labels: c.labels.clone(),
            exposed_ports: c.exposed_ports.keys().cloned().collect(),
            volumes: c.volumes.keys().cloned().collect(),
            stop_signal: c.stop_signal.clone(),
        }
    }
}

/// Go's `runtime.GOARCH` spelling of the host architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Splits a Dockerfile-style instruction into keyword and rest.
fn split_instruction(line: &str) -> Result<(String, &str)> {
    let line = line.trim();
    let (kw, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if kw.is_empty() {
        return Err(EngineError::invalid("dockerfile parse error: empty change"));
    }
    Ok((kw.to_ascii_uppercase(), rest.trim()))
}

/// JSON array form, or shell form wrapped in `/bin/sh -c` when `shell` is set.
fn command_form(rest: &str, shell: bool) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    if shell {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
    } else {
        Ok(rest.split_whitespace().map(String::from).collect())
    }
}

/// Parses `k=v k2="v 2"` (or the legacy `k v` form) into pairs.
fn key_values(rest: &str, instruction: &str) -> Result<Vec<(String, String)>> {
    let words = shell_words(rest)?;
    if words.is_empty() {
        return Err(EngineError::invalid(format!(
            "dockerfile parse error: {instruction} requires at least one argument"
        )));
    }
    if !words[0].contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(EngineError::invalid(format!(
                "dockerfile parse error: {instruction} names can not be blank"
            ))),
        })
        .collect()
}

fn unquote(s: &str) -> String {
    shell_words(s)
        .map(|w| w.join(" "))
        .unwrap_or_else(|_| s.to_string())
}

/// Minimal shell-like word splitting with single/double quotes and backslash escapes.
fn shell_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => {
                            return Err(EngineError::invalid(
                                "unexpected end of string: unterminated quote",
                            ))
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => cur.push(ch),
                            None => {
                                return Err(EngineError::invalid(
                                    "unexpected end of string: unterminated quote",
                                ))
                            }
                        },
                        Some(ch) => cur.push(ch),
                        None => {
                            return Err(EngineError::invalid(
                                "unexpected end of string: unterminated quote",
                            ))
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Applies `--change` instructions (the subset Docker allows for import and commit).
pub fn apply_changes(config: &mut RunConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        if change.trim().is_empty() {
            continue;
        }
        let (kw, rest) = split_instruction(change)?;
        match kw.as_str() {
            "CMD" => config.cmd = Some(command_form(rest, true)?),
            "ENTRYPOINT" => config.entrypoint = Some(command_form(rest, true)?),
            "ENV" => {
                for (k, v) in key_values(rest, "ENV")? {
                    config
                        .env
                        .retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(&k));
                    config.env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                for (k, v) in key_values(rest, "LABEL")? {
                    config.labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                let dir = unquote(rest);
                config.working_dir = if dir.starts_with('/') || config.working_dir.is_empty() {
                    dir
                } else {
                    format!("{}/{}", config.working_dir.trim_end_matches('/'), dir)
                };
            }
            "USER" => config.user = unquote(rest),
            "EXPOSE" => {
                for port in shell_words(rest)? {
                    let port = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    config.exposed_ports.insert(port, Value::Object(Map::new()));
                }
            }
            "VOLUME" => {
                for v in command_form(rest, false)? {
                    config.volumes.insert(v, Value::Object(Map::new()));
                }
            }
            "STOPSIGNAL" => config.stop_signal = Some(unquote(rest)),
            "ONBUILD" => {
                let list = config
                    .extra
                    .entry("OnBuild")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(Value::String(rest.to_string()));
                }
            }
            other => {
                return Err(EngineError::invalid(format!(
                    "{} is not a valid change command",
                    other.to_ascii_lowercase()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_nulls_mean_empty() {
        // As dockerd 20.10 writes the config of an imported image.
        let raw = br#"{"architecture":"amd64","config":{"Hostname":"","Env":null,"Cmd":null,"Volumes":null,"Labels":null,"OnBuild":null},"container_config":{"Env":null},"created":"2026-12-01T18:00:00Z","history":[{"created":"2026-12-01T18:00:00Z","comment":"Imported from -"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:3e1106a2ac8e6059c424ccf2d5289aaa68bcbc5760b67c2c20303d51e2f4e2e6"]}}"#;
        let c = ImageConfigBlob::parse(raw).expect("dockerd config parses");
        assert!(c.config.env.is_empty() && c.config.cmd.is_none());
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let none = ImageConfigBlob::parse(br#"{"os":"linux","config":null,"history":null}"#)
            .expect("null config parses");
        assert!(none.history.is_empty());
    }

    #[test]
    fn changes_like_docker() {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["sh"]"#.into(),
                "ENTRYPOINT echo hi".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3 4".into(),
                "ENV A=9".into(),
                "WORKDIR /app".into(),
                "WORKDIR sub".into(),
                "EXPOSE 80 53/udp".into(),
                "USER nobody".into(),
                "LABEL k=v".into(),
                "VOLUME /data".into(),
            ],
        )
        .expect("changes");
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(c.env, vec!["B=two words", "C=3 4", "A=9"]);
        assert_eq!(c.working_dir, "/app/sub");
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        assert_eq!(c.user, "nobody");
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert!(c.volumes.contains_key("/data"));
        assert!(apply_changes(&mut c, &["RUN true".into()]).is_err());
        assert!(apply_changes(&mut c, &["ENV A=\"x".into()]).is_err());
    }

    #[test]
    fn config_round_trips_unknown_fields() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Healthcheck":{"Test":["CMD","true"]}},"rootfs":{"type":"layers","diff_ids":[]},"moby.buildkit.buildinfo.v1":"x"}"#;
        let c = ImageConfigBlob::parse(raw).expect("parse");
        let back = serde_json::to_value(&c).expect("json");
        assert_eq!(back["config"]["Healthcheck"]["Test"][1], "true");
        assert_eq!(back["moby.buildkit.buildinfo.v1"], "x");
    }
}
