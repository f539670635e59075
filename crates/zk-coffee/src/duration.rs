//! Durations as people type and read them: `2`, `0.5`, `1.5s`, `250ms`.
//!
//! A leaf: it uses no other module of the library. What it cannot read is its own
//! [`Invalid`], which the library's error turns into a usage error (exit 2), so that the
//! error's messages can use [`human`] without the two modules importing each other.

use std::time::Duration;

/// Longest duration any flag accepts (a day): anything longer is surely a typo.
const MAX: Duration = Duration::from_secs(24 * 3600);

/// A duration [`parse`] refused, with the one-line message saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

/// Parses seconds (`2`, `0.5`, `2s`) or milliseconds (`250ms`), exactly (decimal digits, not
/// floating point), down to the nanosecond.
pub fn parse(text: &str) -> Result<Duration, Invalid> {
    let bad = || Invalid(format!("invalid duration {text:?}: use seconds like 2 or 0.5, or 250ms"));
    let t = text.trim();
    let (number, nanos_per_unit) = match t.strip_suffix("ms") {
        Some(ms) => (ms, 1_000_000u128),
        None => (t.strip_suffix('s').unwrap_or(t), 1_000_000_000u128),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) || whole.len() > 12 {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    // The fraction, in units of 10^-18 of the unit, so that no digit that matters is lost.
    let mut frac: u128 = 0;
    for (i, b) in fraction.bytes().take(18).enumerate() {
        frac += u128::from(b - b'0') * 10u128.pow(17 - i as u32);
    }
    let nanos = whole * nanos_per_unit + frac * nanos_per_unit / 10u128.pow(18);
    let d = Duration::from_nanos(u64::try_from(nanos).map_err(|_| bad())?);
    if d > MAX {
        return Err(Invalid(format!("duration {text:?} is longer than a day")));
    }
    Ok(d)
}

/// Writes `d` so that [`parse`] reads back exactly the same: `2s`, `1.25s`, `0.0005s`.
pub fn exact(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", d.as_secs());
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}

/// `10s`, `1.5s`, `250ms`: how durations appear in logs.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_milliseconds() {
        assert_eq!(parse("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "-1", "abc", "1h", "1e3", "1..2", "ms", "90000"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn exact_durations_read_back_exactly() {
        for d in [Duration::ZERO, Duration::from_millis(1250), Duration::from_micros(500), Duration::from_nanos(2_050_000_001)] {
            assert_eq!(parse(&exact(d)), Ok(d), "{}", exact(d));
        }
        assert_eq!(parse("2.05"), Ok(Duration::from_millis(2050)));
        assert_eq!(parse("0.5ms"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn humans_read_it_back() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
