//! Human-readable durations and sizes, ported from docker/go-units so that
//! `berth` prints exactly what the docker CLI prints ("4.26MB", "About a minute").

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanDuration`: a rough, human description of a span of
/// nanoseconds ("3 hours"). Negative spans (the daemon's clock ahead of
/// ours) read "Less than a second".
pub fn human_duration_nanos(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    let seconds = nanos / SEC;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = nanos / (60 * SEC);
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // go-units rounds hours to the nearest one, unlike the smaller units.
    let hours_f = nanos as f64 / (3600.0 * SEC as f64);
    let hours = (hours_f + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
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

fn size_and_unit(mut size: f64, base: f64, abbrs: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < abbrs.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, abbrs[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `precision` significant digits.
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (size, unit) = size_and_unit(size, 1000.0, &DECIMAL_ABBRS);
    format!("{}{unit}", format_g(size, precision))
}

/// go-units `HumanSize`: decimal units with 4 significant digits.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary units with 4 significant digits ("1.944GiB").
pub fn bytes_size(size: f64) -> String {
    let (size, unit) = size_and_unit(size, 1024.0, &BINARY_ABBRS);
    format!("{}{unit}", format_g(size, 4))
}

/// Go's `fmt` verb `%.*g`: `precision` significant digits, trailing zeros
/// removed, exponent form when the exponent is < -4 or >= precision.
pub fn format_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Rounding to `precision` digits decides the exponent, exactly as Go does.
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim_fraction_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Errors from parsing a human size such as `--memory 512m`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("invalid size: '{0}'")]
    Invalid(String),
    #[error("invalid suffix: '{0}'")]
    Suffix(String),
}

/// go-units `RAMInBytes`: parses "512m", "1.5GiB", "100" with binary multipliers.
pub fn ram_in_bytes(size: &str) -> Result<i64, SizeError> {
    parse_size(size, 1024)
}

fn parse_size(size_str: &str, base: i64) -> Result<i64, SizeError> {
    let (num, sfx) = match size_str.split_once(' ') {
        Some(parts) => parts,
        None => {
            let sep = size_str
                .rfind(|c: char| c.is_ascii_digit() || c == '.')
                .ok_or_else(|| SizeError::Invalid(size_str.to_string()))?;
            size_str.split_at(sep + 1)
        }
    };
    let size: f64 = num
        .parse()
        .map_err(|_| SizeError::Invalid(size_str.to_string()))?;
    if size < 0.0 || !size.is_finite() {
        return Err(SizeError::Invalid(size_str.to_string()));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || SizeError::Suffix(sfx.to_string());
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if bytes.len() > 1 {
            Err(bad())
        } else {
            Ok(size as i64)
        };
    }
    let power = match bytes[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    match bytes.len() {
        2 if bytes[1] != b'b' => return Err(bad()),
        3 if &bytes[1..] != b"ib" => return Err(bad()),
        _ => {}
    }
    Ok((size * (base as f64).powi(power)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |n: i128| human_duration_nanos(n * 1_000_000_000);
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (2, "2 seconds"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * 60, "59 minutes"),
            (3600, "About an hour"),
            (3600 + 29 * 60, "About an hour"),
            (3600 + 31 * 60, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 24 * 3600, "13 days"),
            (14 * 24 * 3600, "2 weeks"),
            (59 * 24 * 3600, "8 weeks"),
            (60 * 24 * 3600, "2 months"),
            (729 * 24 * 3600, "24 months"),
            (730 * 24 * 3600, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(s(secs), want, "{secs}s");
        }
        assert_eq!(human_duration_nanos(999_000_000), "Less than a second");
        assert_eq!(human_duration_nanos(-5_000_000_000), "Less than a second");
    }

    #[test]
    fn sizes() {
        let cases: [(f64, &str); 9] = [
            (0.0, "0B"),
            (1.0, "1B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1024.0, "1.02kB"),
            (1_982_464.0, "1.98MB"),
            (4_264_000.0, "4.26MB"),
            (1_240_000_000.0, "1.24GB"),
            (999_600.0, "1e+03kB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size_with_precision(n, 3), want, "{n}");
        }
        assert_eq!(human_size(1_982_464.0), "1.982MB");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(2_087_235_584.0), "1.944GiB");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(format_g(1.0, 3), "1");
        assert_eq!(format_g(12.345, 3), "12.3");
        assert_eq!(format_g(123.45, 3), "123");
        assert_eq!(format_g(0.0001234, 3), "0.000123");
        assert_eq!(format_g(0.00001234, 3), "1.23e-05");
        assert_eq!(format_g(1234.0, 3), "1.23e+03");
        assert_eq!(format_g(100.0, 3), "100");
    }

    #[test]
    fn parse_ram() {
        assert_eq!(ram_in_bytes("32"), Ok(32));
        assert_eq!(ram_in_bytes("32b"), Ok(32));
        assert_eq!(ram_in_bytes("32k"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("32kb"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("32KiB"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1536 * 1024 * 1024));
        assert_eq!(ram_in_bytes("32 MB"), Ok(32 * 1024 * 1024));
        assert_eq!(ram_in_bytes(""), Err(SizeError::Invalid(String::new())));
        assert_eq!(ram_in_bytes("m"), Err(SizeError::Invalid("m".into())));
        assert_eq!(ram_in_bytes("-1m"), Err(SizeError::Invalid("-1m".into())));
        assert_eq!(ram_in_bytes("32x"), Err(SizeError::Suffix("x".into())));
        assert_eq!(ram_in_bytes("32mx"), Err(SizeError::Suffix("mx".into())));
        assert_eq!(ram_in_bytes("32bb"), Err(SizeError::Suffix("bb".into())));
    }
}
