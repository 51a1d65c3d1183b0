//! Fault injection: what to break, how often, and the counters of what was broken.
//!
//! Stream faults (malformed JSON, duplicates, reordering, a depth sequence gap, a missing
//! closed kline) change the shared feed, so every subscriber sees them. Connection faults
//! (drops, stalls, fragmentation, an oversize frame) apply per connection.

use std::time::Duration;

/// Which faults to inject; `None`/0 disables one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Drop each connection (no close frame) after this many messages.
    pub drop_after: Option<u64>,
    /// Drop a connection with this probability per message sent.
    pub drop_prob: f64,
    /// Stall a connection every N messages…
    pub stall_every: Option<u64>,
    /// …for this long.
    pub stall_for: Duration,
    /// Split messages into this many fragments (≤ 1: no fragmentation)…
    pub fragments: usize,
    /// …every N-th message (1: all).
    pub fragment_every: u64,
    /// Send one oversize frame after this many messages on each connection.
    pub oversize_after: Option<u64>,
    /// Size of the oversize frame.
    pub oversize_bytes: usize,
    /// Truncate every N-th message into malformed JSON.
    pub malformed_every: Option<u64>,
    /// Send every N-th message twice.
    pub duplicate_every: Option<u64>,
    /// Deliver every N-th message after the next message of its stream.
    pub reorder_every: Option<u64>,
    /// Drop every N-th diff-depth message (a sequence gap).
    pub depth_gap_every: Option<u64>,
    /// Drop every N-th closed kline (a missing bar on the stream; REST still has it).
    pub missing_kline_every: Option<u64>,
}

/// A fault description that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("bad --fault {spec:?}: {reason}")]
pub struct FaultSpecError {
    /// The offending spec.
    pub spec: String,
    /// Why.
    pub reason: String,
}

/// The names of the counters, as written in the summary.
pub const FAULT_NAMES: [&str; 10] = [
    "drop",
    "stall",
    "fragmented",
    "oversize",
    "malformed",
    "duplicate",
    "reorder",
    "depth_gap",
    "missing_kline",
    "slow_consumer",
];

impl Faults {
    /// Applies one `name=value` spec (see `--help`).
    pub fn apply(&mut self, spec: &str) -> Result<(), FaultSpecError> {
        let fail = |reason: &str| FaultSpecError { spec: spec.to_string(), reason: reason.to_string() };
        let (name, value) = spec.split_once('=').ok_or_else(|| fail("expected name=value"))?;
        let count =
            |v: &str| v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| fail("expected a count ≥ 1"));
        match name {
            "drop-after" => self.drop_after = Some(count(value)?),
            "drop-prob" => {
                self.drop_prob = value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| fail("expected a probability in [0, 1]"))?
            }
            "stall" => {
                let (every, dur) = value.split_once('/').ok_or_else(|| fail("expected EVERY/DURATION"))?;
                self.stall_every = Some(count(every)?);
                self.stall_for = aegis_wire::units::parse_duration(dur).map_err(|e| fail(&e.to_string()))?;
            }
            "fragment" => {
                let (k, every) = value.split_once('/').unwrap_or((value, "1"));
                self.fragments = count(k)? as usize;
                self.fragment_every = count(every)?;
            }
            "oversize-after" => {
                self.oversize_after = Some(count(value)?);
                if self.oversize_bytes == 0 {
                    self.oversize_bytes = 20 << 20;
                }
            }
            "oversize-bytes" => self.oversize_bytes = count(value)? as usize,
            "malformed-every" => self.malformed_every = Some(count(value)?),
            "duplicate-every" => self.duplicate_every = Some(count(value)?),
            "reorder-every" => self.reorder_every = Some(count(value)?),
            "depth-gap-every" => self.depth_gap_every = Some(count(value)?),
            "missing-kline-every" => self.missing_kline_every = Some(count(value)?),
            _ => return Err(fail("unknown fault")),
        }
        Ok(())
    }
}

/// True on every `every`-th call of a running count `n` (1-based).
pub fn due(n: u64, every: Option<u64>) -> bool {
    every.is_some_and(|e| n.is_multiple_of(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec() {
        let mut f = Faults::default();
        for spec in [
            "drop-after=500",
            "drop-prob=0.01",
            "stall=1000/2s",
            "fragment=3/10",
            "oversize-after=50",
            "malformed-every=97",
            "duplicate-every=31",
            "reorder-every=53",
            "depth-gap-every=40",
            "missing-kline-every=5",
        ] {
            f.apply(spec).unwrap();
        }
        assert_eq!(f.drop_after, Some(500));
        assert_eq!(f.stall_for, Duration::from_secs(2));
        assert_eq!((f.fragments, f.fragment_every), (3, 10));
        assert_eq!(f.oversize_bytes, 20 << 20);
        assert_eq!(f.missing_kline_every, Some(5));
    }

    #[test]
    fn refuses_bad_specs() {
        let mut f = Faults::default();
        for spec in ["drop-after", "drop-after=0", "drop-prob=2", "stall=5", "warp=1", "fragment=x"] {
            assert!(f.apply(spec).is_err(), "{spec}");
        }
    }

    #[test]
    fn due_counts_from_one() {
        assert!(!due(1, Some(3)));
        assert!(due(3, Some(3)));
        assert!(!due(3, None));
    }
}
