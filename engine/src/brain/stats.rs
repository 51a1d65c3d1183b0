//! The brain's counters: written by the brain's thread with relaxed atomics, read by the
//! control, metrics, progress and summary threads. Nothing here blocks.

use aegis_analytics::{FeatureSnapshot, FEATURES};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one symbol, readable from any thread.
#[derive(Default, Debug)]
pub struct SymbolStats {
    /// Exchange events applied or dropped as duplicates (depth: per update).
    pub events: AtomicU64,
    /// 1m bars closed.
    pub bars_closed: AtomicU64,
    /// Trade ids skipped (trade `t`, or aggTrade `f` after the previous `l`).
    pub trade_id_gaps: AtomicU64,
    /// Trade ids of those gaps delivered later (a late stream message or a REST fill).
    pub trade_ids_recovered: AtomicU64,
    /// aggTrade ids the stream skipped over (each then recovered, given up or still missing).
    pub agg_ids_skipped: AtomicU64,
    /// aggTrade ids of those delivered later.
    pub agg_ids_recovered: AtomicU64,
    /// aggTrade ids given up: a fill answered without them, or too many holes were open.
    pub agg_ids_unrecovered: AtomicU64,
    /// aggTrade ids missing now (a fill not yet asked for or not yet answered).
    pub agg_ids_missing: AtomicU64,
    /// Events dropped as already applied.
    pub duplicates_dropped: AtomicU64,
    /// 1 when the book is in sync.
    pub book_in_sync: AtomicU64,
    /// Times the book was found crossed.
    pub book_crossed: AtomicU64,
    /// bookTickers whose `u` matched the book's last update but whose top did not.
    pub book_ticker_mismatches: AtomicU64,
    /// bookTickers whose `u` matched the book's last update and whose top matched.
    pub book_ticker_matches: AtomicU64,
    /// Closed bars the analytics refused (impossible prices, time going backwards).
    pub bars_rejected: AtomicU64,
    /// 1 once every feature has its full history.
    pub features_warm: AtomicU64,
    /// The latest feature vector, as `f64::to_bits` (SPEC §4 order).
    pub features: [AtomicU64; FEATURES],
}

impl SymbolStats {
    /// The latest feature vector.
    pub fn latest_features(&self) -> [f64; FEATURES] {
        std::array::from_fn(|k| f64::from_bits(self.features[k].load(Ordering::Relaxed)))
    }

    pub(crate) fn publish(&self, snapshot: &FeatureSnapshot) {
        self.features_warm.store(u64::from(snapshot.warm), Ordering::Relaxed);
        for (slot, value) in self.features.iter().zip(snapshot.features) {
            slot.store(value.to_bits(), Ordering::Relaxed);
        }
    }
}

/// Counters of the whole brain.
#[derive(Debug)]
pub struct BrainStats {
    /// Exchange events by kind (indexed like `EventKind::ALL`).
    pub events_by_kind: [AtomicU64; 7],
    /// Gaps detected (kline jumps, depth breaks, reconnects, ring drops).
    pub gaps_detected: AtomicU64,
    /// Gap fills completed.
    pub gaps_filled: AtomicU64,
    /// Roll-up bars closed, per interval of `ROLLUP_MS`.
    pub rollups_closed: [AtomicU64; 4],
    /// REST requests that could not be queued (the request ring was full).
    pub requests_dropped: AtomicU64,
    /// Closed bars not written because the writer lagged.
    pub bars_out_dropped: AtomicU64,
    /// Loop iterations (the watchdog's progress counter).
    pub heartbeat: AtomicU64,
    /// Largest shard-read → brain delay sampled since a reader last took it (swap to 0), ns.
    pub lag_max_ns: AtomicU64,
    /// Per symbol.
    pub symbols: Vec<SymbolStats>,
    /// The CPU the brain runs on, as it read it back.
    pub core: crate::cpu::Placement,
}

impl BrainStats {
    /// Counters for `symbols` symbols.
    pub fn new(symbols: usize) -> Self {
        Self {
            events_by_kind: Default::default(),
            gaps_detected: AtomicU64::new(0),
            gaps_filled: AtomicU64::new(0),
            rollups_closed: Default::default(),
            requests_dropped: AtomicU64::new(0),
            bars_out_dropped: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
            lag_max_ns: AtomicU64::new(0),
            symbols: (0..symbols)
                .map(|_| {
                    let stats = SymbolStats::default();
                    stats.publish(&FeatureSnapshot::neutral());
                    stats
                })
                .collect(),
            core: Default::default(),
        }
    }
}
