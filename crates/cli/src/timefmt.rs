//! Time parsing and printing as docker does it: Go durations ("1h30m"),
//! the `--since`/`--until` conversion of docker's `timetypes.GetTimestamp`,
//! and Go's `time.Time.String()` / RFC 3339 output.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};

/// Parses a Go duration string ("300ms", "-1.5h", "2h45m") into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(digits);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let number: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            if frac_part.is_empty() { "0" } else { frac_part }
        )
        .parse()
        .ok()?;
        total += number * scale;
        rest = after;
    }
    let nanos = total.round() as i128;
    Some(if neg { -nanos } else { nanos })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("failed to parse value as time or duration: {0:?}")]
    Unparsable(String),
    #[error("parsing time {0:?}: invalid timestamp")]
    BadTime(String),
}

/// docker's `timetypes.GetTimestamp`: turns a `--since`/`--until` value into
/// what the API expects. Durations count back from `now`; RFC 3339-like times
/// without a zone are in the local zone; unix timestamps pass through.
pub fn get_timestamp(value: &str, now: DateTime<Local>) -> Result<String, TimestampError> {
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            let t = now.timestamp_nanos_opt().unwrap_or(0) as i128 - d;
            return Ok(t.div_euclid(1_000_000_000).to_string());
        }
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let local_offset = now.offset().fix();
    let parsed = if in_location {
        parse_local(value, local_offset)
    } else {
        parse_zoned(value)
    };
    match parsed {
        Some(t) => Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        )),
        None => {
            if value.contains('-') {
                return Err(TimestampError::BadTime(value.to_string()));
            }
            if parse_unix_timestamp(value).is_none() {
                return Err(TimestampError::Unparsable(value.to_string()));
            }
            Ok(value.to_string())
        }
    }
}

/// Accepts "seconds" or "seconds.nanoseconds".
fn parse_unix_timestamp(value: &str) -> Option<(i64, i64)> {
    let (s, n) = value.split_once('.').unwrap_or((value, "0"));
    Some((s.parse().ok()?, n.parse().ok()?))
}

fn parse_local(value: &str, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let naive = if value.contains('T') {
        // Go accepts "2006-01-02T15", "2006-01-02T15:04" and full times.
        let with_minutes = match value.matches(':').count() {
            0 => format!("{value}:00:00"),
            1 => format!("{value}:00"),
            _ => value.to_string(),
        };
        NaiveDateTime::parse_from_str(&with_minutes, "%Y-%m-%dT%H:%M:%S%.f").ok()?
    } else {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
    };
    offset.from_local_datetime(&naive).single()
}

fn parse_zoned(value: &str) -> Option<DateTime<FixedOffset>> {
    // Split off the zone: a trailing "Z" or "+hh:mm"/"-hh:mm".
    let (body, zone) = if let Some(b) = value.strip_suffix(['Z', 'z']) {
        (b, "+00:00")
    } else {
        let idx = value.rfind(['+', '-'])?;
        value.split_at(idx)
    };
    let zone_offset = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{zone}")).ok()?;
    let naive = if body.contains('T') {
        let with_minutes = match body.matches(':').count() {
            0 => format!("{body}:00:00"),
            1 => format!("{body}:00"),
            _ => body.to_string(),
        };
        NaiveDateTime::parse_from_str(&with_minutes, "%Y-%m-%dT%H:%M:%S%.f").ok()?
    } else {
        NaiveDate::parse_from_str(body, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
    };
    zone_offset.offset().from_local_datetime(&naive).single()
}

/// Go's `time.Unix(secs, 0).String()` in the local zone:
/// "2006-01-02 15:04:05 +0000 UTC".
pub fn go_time_string(secs: i64) -> String {
    let Some(t) = Local.timestamp_opt(secs, 0).single() else {
        return secs.to_string();
    };
    let offset = t.offset().fix().local_minus_utc();
    let numeric = t.format("%z").to_string();
    // chrono has no zone abbreviations; Go shows "UTC" for UTC and the
    // numeric offset for zones it cannot name.
    let name = if offset == 0 {
        "UTC".to_string()
    } else {
        numeric.clone()
    };
    format!("{} {numeric} {name}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// Go's `time.Time.String()` of a timestamp the API sent as RFC 3339 (a network's `Created`):
/// "2024-01-02 03:04:05.123456789 +0000 UTC", the fraction without trailing zeros. Kept in the
/// offset it was sent with, as Go parses it; zones are shown by number (chrono has no names).
pub fn go_time_string_rfc3339(rfc3339: &str) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    let numeric = t.format("%z").to_string();
    let name = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        numeric.clone()
    };
    format!("{text} {numeric} {name}")
}

/// Go's `time.Unix(secs, 0).Format(time.RFC3339)` in the local zone.
pub fn rfc3339_local(secs: i64) -> String {
    match Local.timestamp_opt(secs, 0).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => secs.to_string(),
    }
}

/// Seconds since `secs` (a unix time) until now, in nanoseconds.
pub fn elapsed_nanos(secs: i64) -> i128 {
    let now = Utc::now();
    now.timestamp_nanos_opt().unwrap_or(0) as i128 - (secs as i128) * 1_000_000_000
}

/// Go's `time.ANSIC` layout for build dates: "Mon Jan  2 15:04:05 2006".
pub fn ansic(rfc3339: &str) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_strings_of_rfc3339() {
        assert_eq!(
            go_time_string_rfc3339("2024-01-02T03:04:05.123456789Z"),
            "2024-01-02 03:04:05.123456789 +0000 UTC"
        );
        assert_eq!(
            go_time_string_rfc3339("2024-01-02T03:04:05.5+01:00"),
            "2024-01-02 03:04:05.5 +0100 +0100"
        );
        assert_eq!(
            go_time_string_rfc3339("0001-01-01T00:00:00Z"),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(go_time_string_rfc3339("bogus"), "bogus");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(600_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration("2013-01-02"), None);
    }

    fn now() -> DateTime<Local> {
        Local
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn timestamps() {
        let ts = |v: &str| get_timestamp(v, now());
        assert_eq!(ts("10m"), Ok("1699999400".to_string()));
        assert_eq!(ts("1h"), Ok("1699996400".to_string()));
        assert_eq!(ts("1136073600"), Ok("1136073600".to_string()));
        assert_eq!(
            ts("1136073600.000000001"),
            Ok("1136073600.000000001".to_string())
        );
        assert_eq!(ts("0"), Ok("0".to_string()));
        assert_eq!(
            ts("2006-01-02T15:04:05Z"),
            Ok("1136214245.000000000".to_string())
        );
        assert_eq!(
            ts("2006-01-02T15:04:05.5Z"),
            Ok("1136214245.500000000".to_string())
        );
        assert_eq!(
            ts("2006-01-02T15:04:05+01:00"),
            Ok("1136210645.000000000".to_string())
        );
        assert_eq!(ts("2006-01-02T15Z"), Ok("1136214000.000000000".to_string()));
        assert_eq!(ts("2006-01-02Z"), Ok("1136160000.000000000".to_string()));
        assert_eq!(
            ts("junk"),
            Err(TimestampError::Unparsable("junk".to_string()))
        );
        assert_eq!(
            ts("2006-13-02"),
            Err(TimestampError::BadTime("2006-13-02".to_string()))
        );
    }

    #[test]
    fn local_times_use_local_offset() {
        let offset = now().offset().fix().local_minus_utc() as i64;
        let want = 1_136_160_000 - offset;
        assert_eq!(
            get_timestamp("2006-01-02", now()),
            Ok(format!("{want}.000000000"))
        );
        assert_eq!(
            get_timestamp("2006-01-02T15:04", now()),
            Ok(format!("{}.000000000", 1_136_214_240 - offset))
        );
    }

    #[test]
    fn ansic_dates() {
        assert_eq!(
            ansic("2025-05-30T12:07:14.000000000+00:00"),
            "Fri May 30 12:07:14 2025"
        );
        assert_eq!(ansic("2026-05-07T21:09:36Z"), "Thu May  7 21:09:36 2026");
        assert_eq!(ansic("not a date"), "not a date");
    }
}
