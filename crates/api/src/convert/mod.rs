//! Conversions between the engine's domain types and Docker's wire models (bollard-stubs), plus
//! the formatting rules dockerd applies on the way out: Go's time formats, go-units' human
//! durations, and fields Docker always sends even when empty (bollard-stubs skips `None`s, so
//! those are put back on the JSON value).

pub mod container;
pub mod image;
pub mod system;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Go's zero `time.Time` as dockerd prints it for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Go's `time.RFC3339Nano` in UTC: fractional seconds without trailing zeros, none at all when
/// whole (`2024-05-01T10:00:00.1234Z`, `2024-05-01T10:00:00Z`).
pub fn rfc3339_nano(t: &DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    // chrono represents a leap second as nanos >= 1e9; Go has no such thing, so clamp.
    let nanos = t.timestamp_subsec_nanos().min(999_999_999);
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// dockerd's log timestamp format: RFC3339 with exactly nine fractional digits, so that
/// `docker logs -t` columns line up.
pub fn rfc3339_nano_fixed(t: &DateTime<Utc>) -> String {
    let nanos = t.timestamp_subsec_nanos().min(999_999_999);
    format!("{}.{nanos:09}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// [`rfc3339_nano`] of an optional time, Go's zero time when unset.
pub fn time_or_zero(t: Option<&DateTime<Utc>>) -> String {
    t.map(rfc3339_nano).unwrap_or_else(|| ZERO_TIME.to_string())
}

/// go-units `HumanDuration`, the wording of `docker ps` ("Up 5 seconds", "3 minutes ago").
pub fn human_duration(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // go-units rounds hours to the nearest ("About an hour" from 30 minutes past one hour on).
    let hours_f = d.num_milliseconds() as f64 / 3_600_000.0;
    let hours = (hours_f + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (hours_f as i64) / 24 / 365)
}

/// Serializes a wire model into a JSON value for the small patches dockerd's shapes need.
pub fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encode response: {e}")))
}

/// Inserts `key` with `default` into a JSON object unless present (Docker sends these fields
/// even when empty; bollard-stubs would omit them).
pub fn ensure(obj: &mut Value, key: &str, default: Value) {
    if let Value::Object(map) = obj {
        map.entry(key.to_string()).or_insert(default);
    }
}

/// Sets `key` in a JSON object, replacing any value.
pub fn set(obj: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = obj {
        map.insert(key.to_string(), value);
    }
}

/// The object under `key`, created empty when missing.
pub fn object_at<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match obj {
        Value::Object(map) => Some(
            map.entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new())),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn go_time_formats() {
        assert_eq!(
            rfc3339_nano(&at("2024-05-01T10:00:00Z")),
            "2024-05-01T10:00:00Z"
        );
        assert_eq!(
            rfc3339_nano(&at("2024-05-01T10:00:00.123400Z")),
            "2024-05-01T10:00:00.1234Z"
        );
        assert_eq!(
            rfc3339_nano(&at("2024-05-01T10:00:00.000000001Z")),
            "2024-05-01T10:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(&at("2024-05-01T10:00:00.5Z")),
            "2024-05-01T10:00:00.500000000Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(&at("2024-05-01T10:00:00Z")),
            "2024-05-01T10:00:00.000000000Z"
        );
        assert_eq!(time_or_zero(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn human_durations_match_go_units() {
        let cases = [
            (Duration::milliseconds(-5), "Less than a second"),
            (Duration::milliseconds(999), "Less than a second"),
            (Duration::seconds(1), "1 second"),
            (Duration::seconds(5), "5 seconds"),
            (Duration::seconds(59), "59 seconds"),
            (Duration::seconds(60), "About a minute"),
            (Duration::seconds(119), "About a minute"),
            (Duration::seconds(120), "2 minutes"),
            (Duration::minutes(59), "59 minutes"),
            (Duration::minutes(60), "About an hour"),
            (Duration::minutes(89), "About an hour"),
            (Duration::minutes(90), "2 hours"),
            (Duration::hours(47), "47 hours"),
            (Duration::hours(48), "2 days"),
            (Duration::days(13), "13 days"),
            (Duration::days(14), "2 weeks"),
            (Duration::days(59), "8 weeks"),
            (Duration::days(60), "2 months"),
            (Duration::days(729), "24 months"),
            (Duration::days(730), "2 years"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn json_patches() {
        let mut v = serde_json::json!({"A": 1});
        ensure(&mut v, "A", Value::Null);
        ensure(&mut v, "B", Value::Null);
        set(&mut v, "C", Value::from("x"));
        if let Some(o) = object_at(&mut v, "D") {
            ensure(o, "E", Value::from(true));
        }
        assert_eq!(
            v,
            serde_json::json!({"A": 1, "B": null, "C": "x", "D": {"E": true}})
        );
    }
}
