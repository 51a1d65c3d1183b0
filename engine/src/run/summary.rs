//! The run summary (`--summary`): counters of every thread gathered into one JSON document
//! after the threads have stopped.

use crate::brain::stats::BrainStats;
use crate::feed::shard::ShardStats;
use crate::rest::RestStats;
use crate::ring::RingStats;
use aegis_wire::{EventKind, SymbolTable};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn summarize(
    table: &SymbolTable,
    brain: &BrainStats,
    shards: &[Arc<ShardStats>],
    rings: &[Arc<RingStats>],
    rest: &RestStats,
    elapsed: Duration,
) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let by_kind: BTreeMap<&str, u64> =
        EventKind::ALL.iter().map(|k| (k.name(), load(&brain.events_by_kind[k.index()]))).collect();
    let mut symbols = BTreeMap::new();
    let (mut bars, mut dups, mut in_sync, mut crossed, mut bt_match, mut bt_mismatch) = (0, 0, 0, 0, 0, 0);
    for (id, name) in table.iter() {
        let s = &brain.symbols[usize::from(id.0)];
        bars += load(&s.bars_closed);
        dups += load(&s.duplicates_dropped);
        in_sync += load(&s.book_in_sync);
        crossed += load(&s.book_crossed);
        bt_match += load(&s.book_ticker_matches);
        bt_mismatch += load(&s.book_ticker_mismatches);
        symbols.insert(
            name.to_string(),
            json!({
                "events": load(&s.events),
                "bars_closed": load(&s.bars_closed),
                "trade_id_gaps": load(&s.trade_id_gaps),
                "trade_ids_recovered": load(&s.trade_ids_recovered),
                "agg_ids_skipped": load(&s.agg_ids_skipped),
                "agg_ids_recovered": load(&s.agg_ids_recovered),
                "agg_ids_unrecovered": load(&s.agg_ids_unrecovered),
                "agg_ids_missing": load(&s.agg_ids_missing),
                "duplicates_dropped": load(&s.duplicates_dropped),
                "book_in_sync": load(&s.book_in_sync) == 1,
                "bars_rejected": load(&s.bars_rejected),
                "features_warm": load(&s.features_warm) == 1,
                "features": aegis_analytics::NAMES.iter().zip(s.latest_features()).map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    let sum = |f: &dyn Fn(&ShardStats) -> u64| shards.iter().map(|s| f(s)).sum::<u64>();
    json!({
        "seconds": elapsed.as_secs_f64(),
        "events_total": by_kind.values().sum::<u64>(),
        "events_by_kind": by_kind,
        "messages_received": sum(&|s| load(&s.messages)),
        "parse_errors": sum(&|s| load(&s.parse_errors)),
        "ring_drops": rings.iter().map(|r| load(&r.dropped)).sum::<u64>(),
        "reconnects": sum(&|s| load(&s.reconnects)),
        "disconnects": sum(&|s| load(&s.disconnects)),
        "rotations": sum(&|s| load(&s.rotations)),
        "gaps_detected": load(&brain.gaps_detected),
        "gaps_filled": load(&brain.gaps_filled),
        "duplicates_dropped": dups,
        "trade_id_gaps": brain.symbols.iter().map(|s| load(&s.trade_id_gaps)).sum::<u64>(),
        "trade_ids_recovered": brain.symbols.iter().map(|s| load(&s.trade_ids_recovered)).sum::<u64>(),
        "agg_ids_skipped": brain.symbols.iter().map(|s| load(&s.agg_ids_skipped)).sum::<u64>(),
        "agg_ids_recovered": brain.symbols.iter().map(|s| load(&s.agg_ids_recovered)).sum::<u64>(),
        "agg_ids_unrecovered": brain.symbols.iter().map(|s| load(&s.agg_ids_unrecovered)).sum::<u64>(),
        "agg_ids_missing": brain.symbols.iter().map(|s| load(&s.agg_ids_missing)).sum::<u64>(),
        "bars_closed": bars,
        "bars_rejected": brain.symbols.iter().map(|s| load(&s.bars_rejected)).sum::<u64>(),
        "symbols_features_warm": brain.symbols.iter().filter(|s| load(&s.features_warm) == 1).count(),
        "rollups_closed": { "5m": load(&brain.rollups_closed[0]), "15m": load(&brain.rollups_closed[1]), "1h": load(&brain.rollups_closed[2]), "1d": load(&brain.rollups_closed[3]) },
        "books_in_sync": in_sync,
        "books_out_of_sync": table.len() as u64 - in_sync,
        "books_crossed": crossed,
        "book_ticker_matches": bt_match,
        "book_ticker_mismatches": bt_mismatch,
        "rest": { "requests": load(&rest.requests), "rate_limited": load(&rest.rate_limited), "failures": load(&rest.failures), "weight_used_1m": load(&rest.weight_used) },
        "last_error": shards.iter().filter_map(|s| s.last_error.lock().ok().map(|e| e.clone())).find(|e| !e.is_empty()),
        "symbols": symbols,
    })
}
