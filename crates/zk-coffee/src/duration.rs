//! Durations as people type and read them: `2`, `0.5`, `1.5s`, `250ms`.

use std::time::Duration;

use crate::error::Error;

/// Longest duration any flag accepts (a day): anything longer is surely a typo.
const MAX: Duration = Duration::from_secs(24 * 3600);

/// Parses seconds (`2`, `0.5`, `2s`) or milliseconds (`250ms`).
pub fn parse(text: &str) -> Result<Duration, Error> {
    let bad = || Error::usage(format!("invalid duration {text:?}: use seconds like 2 or 0.5, or 250ms"));
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let seconds: f64 = number.parse().map_err(|_| bad())?;
    let d = Duration::try_from_secs_f64(seconds * scale).map_err(|_| bad())?;
    if d > MAX {
        return Err(Error::usage(format!("duration {text:?} is longer than a day")));
    }
    Ok(d)
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
    fn humans_read_it_back() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
