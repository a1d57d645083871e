//! Query strings as dockerd reads them: Go's `r.Form` semantics (first value wins for `Get`,
//! repeated keys kept), Docker's lenient booleans, the `filters` JSON in both of its forms, and
//! unix timestamps with a fractional part.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// The decoded query string of a request, in order, repeated keys included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode_component(k), decode_component(v)),
                None => (decode_component(p), String::new()),
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `key`, like Go's `Form.Get` (`None` when absent).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, treating an empty value as absent.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated key (`changes=...&changes=...`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Docker's `BoolValue`: absent, empty, `0`, `no`, `false` and `none` are false, any other
    /// value is true.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(parse_bool)
    }

    /// An optional integer; an empty value counts as absent, garbage is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for \"{key}\": {v:?} is not an integer"
                ))
            }),
        }
    }

    /// The `filters` parameter, parsed.
    pub fn filters(&self) -> Result<berth_engine::types::Filters, ApiError> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query::parse(parts.uri.query()))
    }
}

/// Docker's boolean query values (see [`Query::bool`]).
pub fn parse_bool(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte.
/// Invalid escapes are kept literally, as Go's lenient decoders do for display purposes; invalid
/// UTF-8 is replaced rather than rejected.
fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (hex_val(bytes.get(i + 1)), hex_val(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: Option<&u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses Docker's `filters` JSON. The current form maps each key to a set of values
/// (`{"status":{"running":true}}`, what the docker CLI sends); the legacy form maps it to a list
/// (`{"status":["running"]}`). Like dockerd, every value listed in the set form counts,
/// whatever its boolean.
pub fn parse_filters(raw: &str) -> Result<berth_engine::types::Filters, ApiError> {
    let mut out = BTreeMap::new();
    if raw.trim().is_empty() {
        return Ok(out);
    }
    let invalid = || ApiError::bad_request("invalid filter");
    if let Ok(sets) =
        serde_json::from_str::<Option<HashMap<String, Option<HashMap<String, bool>>>>>(raw)
    {
        for (key, values) in sets.unwrap_or_default() {
            let values: BTreeSet<String> = values.unwrap_or_default().into_keys().collect();
            out.insert(key, values.into_iter().collect());
        }
        return Ok(out);
    }
    let lists =
        serde_json::from_str::<HashMap<String, Option<Vec<String>>>>(raw).map_err(|_| invalid())?;
    for (key, values) in lists {
        let values: BTreeSet<String> = values.unwrap_or_default().into_iter().collect();
        out.insert(key, values.into_iter().collect());
    }
    Ok(out)
}

/// Parses a unix timestamp with an optional fractional part (`1700000000.123456789`), as
/// dockerd's `since`/`until` parameters: up to 9 fractional digits count, more are truncated.
pub fn parse_unix_timestamp(value: &str) -> Result<DateTime<Utc>, String> {
    let (secs, frac) = match value.split_once('.') {
        Some((s, f)) => (s, f),
        None => (value, ""),
    };
    let secs: i64 = secs
        .parse()
        .map_err(|_| format!("invalid timestamp {value:?}: invalid seconds {secs:?}"))?;
    if frac.len() > 20 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid timestamp {value:?}: invalid nanoseconds"));
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits
        .parse()
        .map_err(|_| format!("invalid timestamp {value:?}: invalid nanoseconds"))?;
    DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| format!("invalid timestamp {value:?}: out of range"))
}

/// A time in a filter (`until=…`), as dockerd's `timetypes.GetTimestamp` reads it: a Go
/// duration before now (`10m`, `1h30m`), RFC 3339 (with or without zone), or a unix timestamp.
pub fn parse_time_filter(value: &str) -> Result<DateTime<Utc>, String> {
    if let Some(d) = go_duration(value) {
        return Ok(Utc::now() - d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, fmt) {
            return Ok(t.and_utc());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(value, fmt) {
            if let Some(t) = d.and_hms_opt(0, 0, 0) {
                return Ok(t.and_utc());
            }
        }
    }
    parse_unix_timestamp(value)
}

/// `90s`, `10m`, `1h30m`, `1.5h` (Go's `time.ParseDuration`, without negative values).
fn go_duration(s: &str) -> Option<chrono::Duration> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    chrono::Duration::try_milliseconds((total * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters_like_dockerd() {
        let ago = parse_time_filter("10m").expect("duration");
        let secs = (Utc::now() - ago).num_seconds();
        assert!((599..=601).contains(&secs), "{secs}");
        assert!(parse_time_filter("1h30m").is_ok());
        assert_eq!(
            parse_time_filter("2026-01-02T03:04:05Z").map(|t| t.timestamp()),
            Ok(1_767_323_045)
        );
        assert_eq!(
            parse_time_filter("1700000000").map(|t| t.timestamp()),
            Ok(1_700_000_000)
        );
        assert!(parse_time_filter("soon").is_err());
    }

    #[test]
    fn bools_parse_like_docker() {
        for t in ["1", "true", "True", "TRUE", "yes", " 1 ", "anything"] {
            assert!(parse_bool(t), "{t:?} is true");
        }
        for f in ["", "0", "false", "False", "no", "none", " 0 "] {
            assert!(!parse_bool(f), "{f:?} is false");
        }
        let q = Query::parse(Some("a=1&b=0&c=&d=True"));
        assert!(q.bool("a"));
        assert!(!q.bool("b"));
        assert!(!q.bool("c"));
        assert!(q.bool("d"));
        assert!(!q.bool("missing"));
    }

    #[test]
    fn query_decoding_and_repeats() {
        let q = Query::parse(Some(
            "changes=CMD+%5B%22sh%22%5D&changes=ENV%20A%3Db&name=x%2Fy&flag&bad=%zz",
        ));
        assert_eq!(q.all("changes"), vec!["CMD [\"sh\"]", "ENV A=b"]);
        assert_eq!(q.get("changes"), Some("CMD [\"sh\"]"));
        assert_eq!(q.get("name"), Some("x/y"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(Query::parse(Some("t=%4")).get("t"), Some("%4"));
        assert_eq!(Query::parse(Some("t=%41")).get("t"), Some("A"));
        assert_eq!(Query::parse(None), Query::default());
    }

    #[test]
    fn ints() {
        let q = Query::parse(Some("t=5&n=-1&e=&bad=x"));
        assert_eq!(q.int("t").ok(), Some(Some(5)));
        assert_eq!(q.int("n").ok(), Some(Some(-1)));
        assert_eq!(q.int("e").ok(), Some(None));
        assert_eq!(q.int("missing").ok(), Some(None));
        let err = q.int("bad").err().map(|e| e.status());
        assert_eq!(err, Some(axum::http::StatusCode::BAD_REQUEST));
    }

    #[test]
    fn filters_in_both_forms() {
        let set =
            parse_filters(r#"{"status":{"running":true,"exited":true},"label":{"a=b":true}}"#).ok();
        let list = parse_filters(r#"{"status":["running","exited"],"label":["a=b"]}"#).ok();
        let mut want = BTreeMap::new();
        want.insert(
            "status".to_string(),
            vec!["exited".to_string(), "running".to_string()],
        );
        want.insert("label".to_string(), vec!["a=b".to_string()]);
        assert_eq!(set.as_ref(), Some(&want));
        assert_eq!(list.as_ref(), Some(&want));
        assert_eq!(parse_filters("").ok(), Some(BTreeMap::new()));
        assert_eq!(parse_filters("{}").ok(), Some(BTreeMap::new()));
        assert_eq!(parse_filters("null").ok(), Some(BTreeMap::new()));
        let e = parse_filters(r#"{"status":"running"}"#).err();
        assert_eq!(
            e.map(|e| e.message().to_string()),
            Some("invalid filter".into())
        );
        assert!(parse_filters("not json").is_err());
    }

    #[test]
    fn unix_timestamps() {
        let t = parse_unix_timestamp("1700000000.123456789").ok();
        assert_eq!(
            t.map(|t| (t.timestamp(), t.timestamp_subsec_nanos())),
            Some((1700000000, 123456789))
        );
        let t = parse_unix_timestamp("1700000000.5").ok();
        assert_eq!(t.map(|t| t.timestamp_subsec_nanos()), Some(500_000_000));
        let t = parse_unix_timestamp("1700000000").ok();
        assert_eq!(
            t.map(|t| (t.timestamp(), t.timestamp_subsec_nanos())),
            Some((1700000000, 0))
        );
        let t = parse_unix_timestamp("1.1234567891234").ok();
        assert_eq!(t.map(|t| t.timestamp_subsec_nanos()), Some(123456789));
        let t = parse_unix_timestamp("0").ok();
        assert_eq!(t.map(|t| t.timestamp()), Some(0));
        assert!(parse_unix_timestamp("abc").is_err());
        assert!(parse_unix_timestamp("1.-5").is_err());
        assert!(parse_unix_timestamp("1.2x").is_err());
        assert!(parse_unix_timestamp("").is_err());
    }
}
