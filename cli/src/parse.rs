//! Parsers for the CLI's argument values (used as clap `value_parser`s, so a bad value is a usage
//! error with exit code 2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("expected SKU:QTY (e.g. TSHIRT-RED-XL:2), got {0:?}")]
    LineFormat(String),
    #[error("quantity in {0:?} must be a whole number from 1 to 4294967295")]
    LineQty(String),
    #[error("invalid duration {text:?}: {reason} (examples: 900s, 15m, 2h, 1d, 500ms)")]
    Duration { text: String, reason: String },
    #[error("invalid time {text:?}: {reason} (expected RFC 3339 such as 2025-11-11T00:00:00Z or 2025-11-11T08:00:00+08:00, `now`, or +DURATION such as +2h)")]
    Time { text: String, reason: String },
    #[error("invalid ratio {0:?}: expected a fraction from 0 to 1 (0.3) or a percentage (30%)")]
    Ratio(String),
    #[error("unknown bucket {0:?} (expected safety, damaged or qc)")]
    Bucket(String),
    #[error("invalid exception {0:?}: expected SKU:RATIO:CAP (e.g. MUG-WHT:0.5:20)")]
    Exception(String),
}

/// One `--line SKU:QTY`. The quantity is after the last colon, so codes may contain colons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineArg {
    pub sku: String,
    pub qty: u32,
}

pub fn parse_line(text: &str) -> Result<LineArg, ParseError> {
    let (sku, qty) = text.rsplit_once(':').ok_or_else(|| ParseError::LineFormat(text.to_owned()))?;
    let sku = sku.trim();
    if sku.is_empty() {
        return Err(ParseError::LineFormat(text.to_owned()));
    }
    let qty: u32 = qty.trim().parse().map_err(|_| ParseError::LineQty(text.to_owned()))?;
    if qty == 0 {
        return Err(ParseError::LineQty(text.to_owned()));
    }
    Ok(LineArg { sku: sku.to_owned(), qty })
}

/// A duration with a unit (humantime syntax: `900s`, `15m`, `2h`, `1d`, `1h 30m`, `500ms`).
/// A bare number is refused because seconds and milliseconds are both plausible readings.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Duration {
            text: text.to_owned(),
            reason: format!("add a unit, e.g. {trimmed}s or {trimmed}ms"),
        });
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| ParseError::Duration { text: text.to_owned(), reason: e.to_string() })
}

/// A reservation TTL: a non-zero duration.
pub fn parse_ttl(text: &str) -> Result<Duration, ParseError> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(ParseError::Duration { text: text.to_owned(), reason: "must be greater than zero".into() });
    }
    Ok(d)
}

/// A point in time given on the command line, resolved against a base when used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    Now,
    /// Milliseconds since the Unix epoch.
    At(u64),
    /// `+DURATION`: relative to a base (the current time, or the start for `--ends`).
    After(Duration),
}

impl TimeSpec {
    /// Milliseconds since the epoch; `After` counts from `base_ms`.
    pub fn resolve(self, now_ms: u64, base_ms: u64) -> u64 {
        match self {
            TimeSpec::Now => now_ms,
            TimeSpec::At(ms) => ms,
            TimeSpec::After(d) => base_ms.saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64),
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn parse_time(text: &str) -> Result<TimeSpec, ParseError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(TimeSpec::Now);
    }
    if let Some(rest) = trimmed.strip_prefix('+') {
        return parse_duration(rest)
            .map(TimeSpec::After)
            .map_err(|e| ParseError::Time { text: text.to_owned(), reason: e.to_string() });
    }
    parse_rfc3339(trimmed).map(TimeSpec::At).map_err(|reason| ParseError::Time { text: text.to_owned(), reason })
}

/// RFC 3339 with `Z`, a numeric offset (`+08:00`), or no zone (taken as UTC).
fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let (local, offset_secs) = split_offset(text)?;
    let time = humantime::parse_rfc3339_weak(local).map_err(|e| e.to_string())?;
    let ms = time.duration_since(UNIX_EPOCH).map_err(|_| "before 1970".to_owned())?.as_millis() as i128;
    let utc = ms - i128::from(offset_secs) * 1000;
    u64::try_from(utc).map_err(|_| "before 1970".to_owned())
}

fn split_offset(text: &str) -> Result<(&str, i64), String> {
    if let Some(local) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Ok((local, 0));
    }
    // A numeric offset is the last 6 characters: +HH:MM or -HH:MM, after the time part.
    if text.len() > 6 && text.is_char_boundary(text.len() - 6) {
        let (local, zone) = text.split_at(text.len() - 6);
        let b = zone.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' && local.contains(['T', 't', ' ']) {
            let hours: i64 = zone[1..3].parse().map_err(|_| format!("bad offset {zone}"))?;
            let minutes: i64 = zone[4..6].parse().map_err(|_| format!("bad offset {zone}"))?;
            if hours > 23 || minutes > 59 {
                return Err(format!("bad offset {zone}"));
            }
            let secs = hours * 3600 + minutes * 60;
            return Ok((local, if b[0] == b'-' { -secs } else { secs }));
        }
    }
    Ok((text, 0))
}

/// A channel ratio as basis points: `0.3` or `30%` -> 3000.
pub fn parse_ratio_bp(text: &str) -> Result<u32, ParseError> {
    let trimmed = text.trim();
    let fraction = match trimmed.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
        None => trimmed.parse::<f64>(),
    }
    .map_err(|_| ParseError::Ratio(text.to_owned()))?;
    if !fraction.is_finite() || !(0.0..=1.0).contains(&fraction) {
        return Err(ParseError::Ratio(text.to_owned()));
    }
    Ok((fraction * 10_000.0).round() as u32)
}

/// A non-sellable bucket: 0 safety, 1 damaged, 2 quality control (wire numbering).
pub fn parse_bucket(text: &str) -> Result<u8, ParseError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "safety" => Ok(0),
        "damaged" => Ok(1),
        "qc" | "quality-control" | "quality_control" => Ok(2),
        _ => Err(ParseError::Bucket(text.to_owned())),
    }
}

/// `--exception SKU:RATIO:CAP` for `oms channel set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionArg {
    pub sku: String,
    pub ratio_bp: u32,
    pub cap: u32,
}

pub fn parse_exception(text: &str) -> Result<ExceptionArg, ParseError> {
    let bad = || ParseError::Exception(text.to_owned());
    let (rest, cap) = text.rsplit_once(':').ok_or_else(bad)?;
    let (sku, ratio) = rest.rsplit_once(':').ok_or_else(bad)?;
    if sku.trim().is_empty() {
        return Err(bad());
    }
    let ratio_bp = parse_ratio_bp(ratio).map_err(|_| bad())?;
    let cap = cap.trim().parse().map_err(|_| bad())?;
    Ok(ExceptionArg { sku: sku.trim().to_owned(), ratio_bp, cap })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_qty_lines() {
        // Checks SKU:QTY parsing: plain, colon inside the code, whitespace, and every bad shape.
        assert_eq!(parse_line("TSHIRT-RED-XL:2"), Ok(LineArg { sku: "TSHIRT-RED-XL".into(), qty: 2 }));
        assert_eq!(parse_line("A:B:7"), Ok(LineArg { sku: "A:B".into(), qty: 7 }));
        assert_eq!(parse_line(" MUG-WHT : 1 "), Ok(LineArg { sku: "MUG-WHT".into(), qty: 1 }));
        assert!(matches!(parse_line("MUG-WHT"), Err(ParseError::LineFormat(_))));
        assert!(matches!(parse_line(":3"), Err(ParseError::LineFormat(_))));
        assert!(matches!(parse_line("MUG:0"), Err(ParseError::LineQty(_))));
        assert!(matches!(parse_line("MUG:-1"), Err(ParseError::LineQty(_))));
        assert!(matches!(parse_line("MUG:x"), Err(ParseError::LineQty(_))));
        assert!(matches!(parse_line("MUG:99999999999"), Err(ParseError::LineQty(_))));
    }

    #[test]
    fn ttl_units() {
        // Checks TTL parsing for each unit the help promises, and that bare numbers and zero are refused.
        assert_eq!(parse_ttl("900s"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_ttl("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_ttl("900").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("").is_err());
    }

    #[test]
    fn times() {
        // Checks `now`, +DURATION relative to a base, and RFC 3339 with Z, numeric offsets and no zone.
        assert_eq!(parse_time("now"), Ok(TimeSpec::Now));
        assert_eq!(parse_time("+2h"), Ok(TimeSpec::After(Duration::from_secs(7200))));
        assert_eq!(parse_time("+2h").map(|t| t.resolve(5, 1000)), Ok(1000 + 7_200_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(TimeSpec::At(1000)));
        assert_eq!(parse_time("2025-11-11T00:00:00Z"), Ok(TimeSpec::At(1_762_819_200_000)));
        assert_eq!(parse_time("2025-11-11T08:00:00+08:00"), Ok(TimeSpec::At(1_762_819_200_000)));
        assert_eq!(parse_time("2025-11-10T19:00:00-05:00"), Ok(TimeSpec::At(1_762_819_200_000)));
        assert_eq!(parse_time("2025-11-11T00:00:00"), Ok(TimeSpec::At(1_762_819_200_000)));
        assert_eq!(parse_time("2025-11-11T00:00:00.250Z"), Ok(TimeSpec::At(1_762_819_200_250)));
        assert!(parse_time("tomorrow").is_err());
        assert!(parse_time("2025-13-01T00:00:00Z").is_err());
        assert!(parse_time("2025-11-11T00:00:00+99:00").is_err());
        assert!(parse_time("+").is_err());
    }

    #[test]
    fn ratios_buckets_exceptions() {
        // Checks ratio parsing to basis points, bucket names, and SKU:RATIO:CAP exceptions.
        assert_eq!(parse_ratio_bp("0.3"), Ok(3000));
        assert_eq!(parse_ratio_bp("30%"), Ok(3000));
        assert_eq!(parse_ratio_bp("1"), Ok(10_000));
        assert_eq!(parse_ratio_bp("0"), Ok(0));
        assert!(parse_ratio_bp("1.5").is_err());
        assert!(parse_ratio_bp("-0.1").is_err());
        assert!(parse_ratio_bp("NaN").is_err());
        assert_eq!(parse_bucket("safety"), Ok(0));
        assert_eq!(parse_bucket("damaged"), Ok(1));
        assert_eq!(parse_bucket("QC"), Ok(2));
        assert!(parse_bucket("lost").is_err());
        assert_eq!(
            parse_exception("MUG-WHT:0.5:20"),
            Ok(ExceptionArg { sku: "MUG-WHT".into(), ratio_bp: 5000, cap: 20 })
        );
        assert!(parse_exception("MUG-WHT:0.5").is_err());
    }
}
