//! Durations and sizes as config files and command lines write them (`100ms`, `5s`, `24h`,
//! `512 KiB`), and the 1-minute bar's length. Every error names the text it refused.

use std::time::Duration;

/// One minute in exchange milliseconds (the 1m bar).
pub const MINUTE_MS: i64 = 60_000;

/// A duration or size that cannot be read; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

/// A duration: a number then `ms`, `s`, `m`, `h` or `d` (`100ms`, `1.5s`, `24h`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| UnitError(format!("duration {text:?}: expected a number then a unit")))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3_600.0,
        "d" => value * 86_400.0,
        _ => return Err(UnitError(format!("duration {text:?}: unit must be ms, s, m, h or d"))),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(UnitError(format!("duration {text:?} out of range")));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A size in bytes: `N`, `N KiB` or `N MiB`.
pub fn parse_size(text: &str) -> Result<usize, UnitError> {
    let text = text.trim();
    let (num, mult) = if let Some(n) = text.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = text.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (text, 1)
    };
    let n = num.trim().parse::<usize>().map_err(|_| UnitError(format!("size {text:?} is not a number")))?;
    n.checked_mul(mult).ok_or_else(|| UnitError(format!("size {text:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_written_or_are_refused_by_name() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("5 parsecs").unwrap_err().0.contains("\"5 parsecs\""));
        assert!(parse_duration("m").unwrap_err().0.contains("expected a number"));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30").is_err(), "a unit is required");
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("18446744073709551615 MiB").unwrap_err().0.contains("too large"));
        assert!(parse_size("lots").unwrap_err().0.contains("not a number"));
    }

    #[test]
    fn every_event_kind_sits_at_its_index() {
        for kind in crate::EventKind::ALL {
            assert_eq!(crate::EventKind::ALL[kind.index()], kind);
        }
    }
}
