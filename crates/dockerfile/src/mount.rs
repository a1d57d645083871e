//! `RUN --mount=type=cache,target=/root/.cache,...`: the CSV value split into fields (done at
//! parse time) and checked into a [`Mount`] (done after substitution, since any value may be
//! `$VAR`), with BuildKit's rules and messages.

use serde::Serialize;

use crate::error::go_quote;

/// One `--mount` value split into `key[=value]` fields, values not yet substituted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSpec {
    pub fields: Vec<MountField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountField {
    /// Lowercased.
    pub key: String,
    /// `None` for a bare key (`ro`, `required`).
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A checked `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    /// A stage name or image (`from=`).
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Defaults: read-write for cache and tmpfs, read-only otherwise.
    pub readonly: bool,
    /// tmpfs `size=`, in bytes.
    pub size: Option<u64>,
    /// cache or secret `id=`.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    /// secret `env=`: expose the secret as this environment variable.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl MountSpec {
    /// Splits a `--mount` value; quoting follows CSV (`"a,b"`, `""` for a quote).
    pub fn split(value: &str) -> Result<MountSpec, String> {
        let fields = csv_fields(value)
            .map_err(|e| format!("failed to parse csv mounts: {e}"))?
            .into_iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) => MountField {
                    key: k.to_lowercase(),
                    value: Some(v.to_string()),
                },
                None => MountField {
                    key: f.to_lowercase(),
                    value: None,
                },
            })
            .collect();
        Ok(MountSpec { fields })
    }

    /// Whether any value still has a `$` for substitution to handle.
    pub(crate) fn has_variables(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.value.as_deref().is_some_and(|v| v.contains('$')))
    }

    /// The parse-time check BuildKit makes before substitution: `from=` cannot use variables.
    pub(crate) fn check_from(&self) -> Result<(), String> {
        for f in &self.fields {
            if let (true, Some(v)) = (f.key == "from", &f.value) {
                if v.find('$').is_some_and(|i| i + 1 != v.len()) {
                    return Err(format!(
                        "'{}' doesn't support variable expansion, define alias stage instead",
                        f.key
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the fields into a [`Mount`]; the message is Docker's.
    pub fn to_mount(&self) -> Result<Mount, String> {
        let mut m = Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            readonly: false,
            size: None,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        };
        let mut ro_auto = true;
        for field in &self.fields {
            let key = field.key.as_str();
            let Some(value) = field.value.as_deref() else {
                match key {
                    "readonly" | "ro" => {
                        m.readonly = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.readonly = false;
                        ro_auto = false;
                    }
                    "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                        m.required = true;
                    }
                    "required" => {
                        return Err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        ))
                    }
                    _ => return Err(format!("invalid field '{key}' must be a key=value pair")),
                }
                continue;
            };
            let bad_value = || format!("invalid value for {key}: {value}");
            let unexpected = |m: &Mount| {
                format!(
                    "unexpected key '{key}' for mount type '{}'",
                    m.kind.as_str()
                )
            };
            match key {
                "type" => {
                    m.kind = match value.to_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => return Err(format!("unsupported mount type {}", go_quote(value))),
                    }
                }
                "from" => m.from = Some(value.to_string()),
                "source" | "src" => m.source = Some(value.to_string()),
                "target" | "dst" | "destination" => m.target = Some(value.to_string()),
                "readonly" | "ro" => {
                    m.readonly = go_bool(value).ok_or_else(bad_value)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = !go_bool(value).ok_or_else(bad_value)?;
                    ro_auto = false;
                }
                "required" => {
                    if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        return Err(unexpected(&m));
                    }
                    m.required = go_bool(value).ok_or_else(bad_value)?;
                }
                "size" => {
                    if m.kind != MountType::Tmpfs {
                        return Err(unexpected(&m));
                    }
                    m.size = Some(ram_in_bytes(value).ok_or_else(bad_value)?);
                }
                "id" => m.id = Some(value.to_string()),
                "sharing" => {
                    m.sharing = Some(match value.to_lowercase().as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        _ => return Err(format!("unsupported sharing value {}", go_quote(value))),
                    })
                }
                "mode" => {
                    m.mode = Some(
                        u32::from_str_radix(value, 8)
                            .map_err(|_| format!("invalid value {value} for mode"))?,
                    )
                }
                "uid" => {
                    m.uid = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid value {value} for uid"))?,
                    )
                }
                "gid" => {
                    m.gid = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid value {value} for gid"))?,
                    )
                }
                "env" => m.env = Some(value.to_string()),
                _ => return Err(format!("unexpected key '{key}' in '{key}={value}'")),
            }
        }
        let file_info_allowed = matches!(
            m.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        if !file_info_allowed {
            for (set, what) in [
                (m.mode.is_some(), "mode"),
                (m.uid.is_some(), "uid"),
                (m.gid.is_some(), "gid"),
            ] {
                if set {
                    return Err(format!(
                        "{what} not allowed for {} type mounts",
                        go_quote(m.kind.as_str())
                    ));
                }
            }
        }
        if ro_auto {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        if m.kind == MountType::Secret {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.sharing.is_some() {
                return Err("secret mount should not define sharing".into());
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
        }
        if m.sharing.is_some() && m.kind != MountType::Cache {
            return Err(format!(
                "invalid cache sharing set for {} mount",
                m.kind.as_str()
            ));
        }
        Ok(m)
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512KiB`, binary multiples.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return None,
    };
    let bytes = value * mult;
    // `as` saturates; anything past u64 is a mistake anyway.
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One CSV record's fields (encoding/csv rules, no newlines).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    let mut col = 0usize;
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            col += 1;
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "extraneous or missing \" in quoted-field at column {col}"
                        ))
                    }
                    Some('"') => {
                        col += 1;
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            col += 1;
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => {
                        col += 1;
                        field.push(c);
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {
                    col += 1;
                    fields.push(field);
                }
                Some(_) => {
                    return Err(format!(
                        "extraneous or missing \" in quoted-field at column {col}"
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        col += 1;
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err(format!("bare \" in non-quoted-field at column {}", col + 1))
                    }
                    Some(c) => {
                        col += 1;
                        field.push(c);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(s: &str) -> Result<Mount, String> {
        MountSpec::split(s)?.to_mount()
    }

    #[test]
    fn kinds_and_defaults() {
        let m = mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.sharing, Some(Sharing::Locked));
        let m = mount("target=/src,ro=false").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.kind, m.readonly), (MountType::Bind, false));
        assert!(mount("type=bind,target=/x").is_ok_and(|m| m.readonly));
        let m = mount("type=tmpfs,target=/t,size=64m").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.size, Some(64 << 20));
        let m = mount("type=secret,id=tok,env=TOKEN,required").unwrap_or_else(|e| panic!("{e}"));
        assert!(m.required);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        let m = mount("type=bind,\"source=a,b\",target=/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.source.as_deref(), Some("a,b"));
    }

    #[test]
    fn errors() {
        let err = |s: &str| mount(s).err().unwrap_or_default();
        assert_eq!(err("type=foo"), "unsupported mount type \"foo\"");
        assert_eq!(
            err("type=bind,mode=0700"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            err("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            err("type=cache,bogus=1"),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            err("type=bind,size=1"),
            "unexpected key 'size' for mount type 'bind'"
        );
        assert_eq!(
            err("type=bind,sharing=shared"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(err("ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(err("type=cache,uid=x"), "invalid value x for uid");
        assert_eq!(
            err("nokey"),
            "invalid field 'nokey' must be a key=value pair"
        );
        assert!(err("a\"b").starts_with("failed to parse csv mounts"));
        let spec = MountSpec::split("type=bind,from=$STAGE").unwrap_or_else(|e| panic!("{e}"));
        assert!(spec.check_from().is_err());
        assert!(spec.has_variables());
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1.5g"), Some(1024 * 1024 * 1536));
        assert_eq!(ram_in_bytes("512KiB"), Some(512 * 1024));
        assert_eq!(ram_in_bytes("1 mb"), Some(1 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1e400"), None);
    }
}
