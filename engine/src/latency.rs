//! Per-stage latency of exchange events (SPEC §11): shard read → parsed (the ring push) →
//! brain receipt → decision, and read → decision end to end, as HdrHistograms the brain
//! thread keeps. Recording adds into counts sized at start: no allocation, no lock.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest latency a histogram tells apart from "more" (60 s, in ns).
const MAX_NS: u64 = 60_000_000_000;

/// The four moments of one event, ns on `clock::now_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    /// The shard's read returned the frame's bytes.
    pub read_ns: u64,
    /// Parsed: the record was pushed into the shard's ring.
    pub parsed_ns: u64,
    /// The brain took the record.
    pub receipt_ns: u64,
    /// The brain's reaction was complete (SPEC §11's *decision*).
    pub decided_ns: u64,
}

/// Latency histograms per stage, and the span the measured events covered.
#[derive(Clone, Debug)]
pub struct StageLatency {
    /// Shard read → record pushed.
    pub read_to_parsed: Histogram<u64>,
    /// Record pushed → brain receipt (ring wait).
    pub parsed_to_brain: Histogram<u64>,
    /// Brain receipt → decision.
    pub brain_to_decision: Histogram<u64>,
    /// Shard read → decision (SPEC §11's wire-to-decision).
    pub wire_to_decision: Histogram<u64>,
    /// Shard read → decision of the events that closed a 1m bar (features, the model's
    /// swap check and prediction, the policy: the brain's heaviest events).
    pub bar_close: Histogram<u64>,
    skip: u64,
    first_read_ns: u64,
    last_decision_ns: u64,
    /// The metrics endpoint's copy (power-of-two buckets), when one is served.
    shared: Option<Arc<SharedStages>>,
}

/// An empty latency histogram: 1 ns … 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("constant, valid bounds")
}

impl StageLatency {
    /// Empty histograms (1 ns … 60 s, 3 significant digits) that ignore the first
    /// `skip_events` events (warm-up).
    pub fn new(skip_events: u64) -> Self {
        Self {
            read_to_parsed: histogram(),
            parsed_to_brain: histogram(),
            brain_to_decision: histogram(),
            wire_to_decision: histogram(),
            bar_close: histogram(),
            skip: skip_events,
            first_read_ns: 0,
            last_decision_ns: 0,
            shared: None,
        }
    }

    /// Also records every event into `shared`, for the metrics endpoint.
    pub fn share(&mut self, shared: Arc<SharedStages>) {
        self.shared = Some(shared);
    }

    /// Records one event (stamps out of order, such as a clock read before a parse, count as
    /// 0); false while it was still inside the skipped warm-up.
    pub fn record(&mut self, s: Stamps) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        let stages = [
            s.parsed_ns.saturating_sub(s.read_ns),
            s.receipt_ns.saturating_sub(s.parsed_ns),
            s.decided_ns.saturating_sub(s.receipt_ns),
            s.decided_ns.saturating_sub(s.read_ns),
        ];
        self.read_to_parsed.saturating_record(stages[0]);
        self.parsed_to_brain.saturating_record(stages[1]);
        self.brain_to_decision.saturating_record(stages[2]);
        self.wire_to_decision.saturating_record(stages[3]);
        if let Some(shared) = &self.shared {
            for (stage, ns) in stages.into_iter().enumerate() {
                shared.record(stage, ns);
            }
        }
        if self.first_read_ns == 0 {
            self.first_read_ns = s.read_ns;
        }
        self.last_decision_ns = s.decided_ns;
        true
    }

    /// Records an event [`Self::record`] measured as one that also closed a bar.
    pub fn record_bar_close(&mut self, s: Stamps) {
        self.bar_close.saturating_record(s.decided_ns.saturating_sub(s.read_ns));
    }

    /// Events measured.
    pub fn events(&self) -> u64 {
        self.wire_to_decision.len()
    }

    /// Measured events per second, from the first one's read to the last one's decision.
    pub fn events_per_s(&self) -> f64 {
        let span = self.last_decision_ns.saturating_sub(self.first_read_ns);
        if span == 0 {
            return 0.0;
        }
        self.events() as f64 * 1e9 / span as f64
    }

    /// Every stage's percentiles, the event count and the rate.
    pub fn summary(&self) -> Value {
        json!({
            "events": self.events(),
            "events_per_s": self.events_per_s(),
            "read_to_parsed": percentiles(&self.read_to_parsed),
            "parsed_to_brain": percentiles(&self.parsed_to_brain),
            "brain_to_decision": percentiles(&self.brain_to_decision),
            "wire_to_decision": percentiles(&self.wire_to_decision),
            "bar_close_wire_to_decision": percentiles(&self.bar_close),
        })
    }
}

/// p50/p90/p99/p99.9/p99.99/max and the count of one histogram, in ns.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let q = |q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
    json!({
        "count": h.len(),
        "p50_ns": q(0.5),
        "p90_ns": q(0.9),
        "p99_ns": q(0.99),
        "p999_ns": q(0.999),
        "p9999_ns": q(0.9999),
        "max_ns": h.max(),
        "mean_ns": if h.is_empty() { 0.0 } else { h.mean() },
    })
}

/// Buckets per stage: upper bounds 2^7 ns (128 ns) … 2^30 ns (≈ 1.07 s), then +Inf.
const BUCKETS: usize = 24;
/// The first bucket's bound is 2^FIRST_POW ns.
const FIRST_POW: u32 = 7;

/// The stages, in `SharedStages` order, as their `stage` label.
pub const STAGES: [&str; 4] = ["read_to_parsed", "parsed_to_brain", "brain_to_decision", "wire_to_decision"];

/// One stage's histogram.
#[derive(Debug, Default)]
struct Buckets {
    counts: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

/// The brain's latency histograms as the metrics endpoint reads them.
#[derive(Debug, Default)]
pub struct SharedStages {
    stages: [Buckets; 4],
}

impl SharedStages {
    /// Adds one observation of `ns` to `stage` (one writer only: the brain).
    pub fn record(&self, stage: usize, ns: u64) {
        let Some(b) = self.stages.get(stage) else { return };
        let index = (64 - ns.saturating_sub(1).leading_zeros()).saturating_sub(FIRST_POW) as usize;
        let slot = &b.counts[index.min(BUCKETS)];
        slot.store(slot.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        b.sum_ns.store(b.sum_ns.load(Ordering::Relaxed).wrapping_add(ns), Ordering::Relaxed);
    }

    /// The upper bound (ns) of the bucket holding quantile `q` of `stage` (`None` before any
    /// observation; `u64::MAX` for the +Inf bucket): "p99 ≤ 2,048 ns".
    pub fn quantile_bound(&self, stage: usize, q: f64) -> Option<u64> {
        let b = self.stages.get(stage)?;
        let total = self.count(stage);
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in b.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(if i == BUCKETS { u64::MAX } else { 1u64 << (FIRST_POW + i as u32) });
            }
        }
        None
    }

    /// Observations of `stage`.
    pub fn count(&self, stage: usize) -> u64 {
        self.stages.get(stage).map_or(0, |b| b.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum())
    }

    /// Cumulative (bound in seconds, count) pairs of a stage, +Inf last, and the sum in seconds.
    pub(crate) fn cumulative(&self, stage: usize) -> (Vec<(String, u64)>, f64) {
        let b = &self.stages[stage];
        let mut total = 0;
        let mut out = Vec::with_capacity(BUCKETS + 1);
        for (i, c) in b.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            let bound = if i == BUCKETS {
                "+Inf".to_string()
            } else {
                format!("{:e}", (1u64 << (FIRST_POW + i as u32)) as f64 / 1e9)
            };
            out.push((bound, total));
        }
        (out, b.sum_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(read: u64) -> Stamps {
        Stamps { read_ns: read, parsed_ns: read + 100, receipt_ns: read + 300, decided_ns: read + 1_000 }
    }

    #[test]
    fn stages_split_the_end_to_end_time() {
        let mut l = StageLatency::new(0);
        for i in 0..1_000 {
            l.record(stamps(1_000_000 + i * 1_000));
        }
        let s = l.summary();
        assert_eq!(s["events"], 1_000);
        assert_eq!(s["read_to_parsed"]["p50_ns"], 100);
        assert_eq!(s["parsed_to_brain"]["p99_ns"], 200);
        assert_eq!(s["brain_to_decision"]["max_ns"], 700);
        assert_eq!(s["wire_to_decision"]["p50_ns"], 1_000);
        // 1,000 events from the first read (1 ms) to the last decision (1 ms + 1,000 µs).
        let rate = l.events_per_s();
        assert!((rate - 1_000.0 * 1e9 / 1_000_000.0).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn warm_up_events_are_skipped_and_backwards_stamps_count_as_zero() {
        let mut l = StageLatency::new(2);
        l.record(stamps(10));
        // A bar close is recorded only for an event `record` measured (as the brain does).
        let record_closing = |l: &mut StageLatency, s: Stamps| {
            if l.record(s) {
                l.record_bar_close(s);
            }
        };
        record_closing(&mut l, stamps(20));
        assert_eq!(l.events(), 0);
        assert!(l.bar_close.is_empty(), "a skipped event is not a measured bar close");
        record_closing(&mut l, Stamps { read_ns: 500, parsed_ns: 400, receipt_ns: 600, decided_ns: 700 });
        assert_eq!(l.events(), 1);
        assert_eq!((l.bar_close.len(), l.bar_close.max()), (1, 200));
        assert_eq!(l.read_to_parsed.max(), 0);
        assert_eq!(l.parsed_to_brain.max(), 200);
    }

    #[test]
    fn observations_land_in_power_of_two_buckets() {
        let s = SharedStages::default();
        s.record(0, 100); // ≤ 128 ns
        s.record(0, 128); // ≤ 128 ns
        s.record(0, 129); // ≤ 256 ns
        s.record(0, u64::MAX / 2); // +Inf
        let (buckets, sum) = s.cumulative(0);
        assert_eq!(buckets[0], ("1.28e-7".to_string(), 2));
        assert_eq!(buckets[1], ("2.56e-7".to_string(), 3));
        assert_eq!(buckets.last().unwrap(), &("+Inf".to_string(), 4));
        assert_eq!(buckets[BUCKETS - 1].1, 3, "the largest finite bucket holds all but the huge one");
        assert!(sum > 0.0);
        assert_eq!(s.cumulative(1).0.last().unwrap().1, 0);
        assert_eq!(s.quantile_bound(0, 0.5), Some(128));
        assert_eq!(s.quantile_bound(0, 0.75), Some(256));
        assert_eq!(s.quantile_bound(0, 1.0), Some(u64::MAX));
        assert_eq!(s.quantile_bound(1, 0.5), None);
        assert_eq!(s.count(0), 4);
    }
}
