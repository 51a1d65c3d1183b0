//! The run summary (`--summary`): counters of every thread gathered into one JSON document
//! after the threads have stopped.

use crate::brain::stats::BrainStats;
use crate::desk::stats::DeskStats;
use crate::execution::live::gateway::GatewayStats;
use crate::feed::shard::ShardStats;
use crate::model_loader::ModelStats;
use crate::rest::RestStats;
use crate::ring::RingStats;
use aegis_wire::{EventKind, SymbolTable};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The feed's and the brain's part: events, connections, gaps, bars, books, REST, and each
/// symbol's counters and latest features.
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
        "rest": { "requests": load(&rest.requests), "rate_limited": load(&rest.rate_limited), "failures": load(&rest.failures), "weight_used_1m": load(&rest.weight_used), "exchange_info_refreshes": load(&rest.info_refreshes) },
        "last_error": shards.iter().filter_map(|s| s.last_error.lock().ok().map(|e| e.clone())).find(|e| !e.is_empty()),
        "symbols": symbols,
    })
}

/// The desk's part: trades, PnL, equity, phase, signals, open positions, alerts.
pub(crate) fn add_desk(summary: &mut Value, desk: &DeskStats) {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    summary["trades_closed"] = Value::from(load(&desk.trades_closed));
    summary["pnl"] = Value::from(desk.pnl());
    summary["equity"] = Value::from(desk.equity());
    summary["phase"] = Value::from(desk.phase_name());
    summary["signals"] = Value::from(load(&desk.signals));
    summary["signals_not_taken"] = Value::from(load(&desk.signals_not_taken));
    summary["open_positions"] = Value::from(load(&desk.open_positions));
    summary["stale_bars_not_traded"] = Value::from(load(&desk.stale_bars));
    summary["alerts"] = Value::from(load(&desk.alerts));
    summary["listing_changes"] = Value::from(load(&desk.listing_changes));
    summary["symbols_not_trading"] = Value::from(load(&desk.symbols_not_trading));
}

/// The model's part: the generation served, swaps, and models refused by the loader or
/// trained but not published by the sidecar (its `models` journal).
pub(crate) fn add_model(summary: &mut Value, model: Option<&ModelStats>, data_dir: Option<&Path>) {
    let load = |f: fn(&ModelStats) -> &AtomicU64| model.map_or(0, |m| f(m).load(Ordering::Relaxed));
    summary["model_generation"] = Value::from(load(|m| &m.serving));
    summary["model_swaps"] = Value::from(load(|m| &m.swaps));
    let not_published = data_dir.map_or(0, |dir| {
        crate::store::ledger::read_journal(dir, "models")
            .map(|r| r.iter().filter(|v| v.as_ref().is_ok_and(|v| v["event"] == "rejected")).count() as u64)
            .unwrap_or(0)
    });
    summary["models_rejected"] = Value::from(load(|m| &m.rejected) + not_published);
}

/// The live part: the restart reconciliation, the gateway's orders and the desk's side of
/// the execution port.
pub(crate) fn live(reconciliation: Value, gateway: &GatewayStats, desk: &DeskStats) -> Value {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    json!({
        "reconciliation": reconciliation,
        "orders_sent": load(&gateway.orders_sent),
        "orders_refused": load(&gateway.orders_refused),
        "entries": load(&gateway.entries),
        "exits": load(&gateway.exits),
        "rate_limited": load(&gateway.rate_limited),
        "entries_skipped": load(&gateway.entries_skipped),
        "stream_recoveries": load(&gateway.stream_recoveries),
        "keep_alives": load(&gateway.keep_alives),
        "reconciliation_differences": load(&gateway.differences),
        "flattens": load(&gateway.flattens),
        "reports_dropped": load(&gateway.reports_dropped),
        "unreadable_events": load(&gateway.unreadable_events),
        "tick_to_trade": tick_to_trade(gateway),
        "foreign_algo_updates": load(&gateway.foreign_updates),
        "ws_api": {
            "requests": load(&gateway.ws_api.requests),
            "connects": load(&gateway.ws_api.connects),
            "fallbacks_to_rest": load(&gateway.ws_api.fallbacks),
            "unexpected_messages": load(&gateway.ws_api.unexpected),
            "pings_answered": load(&gateway.ws_api.pings_answered),
            "shutdown_notices": load(&gateway.ws_api.shutdown_notices),
            "ended_while_idle": load(&gateway.ws_api.ended_while_idle),
        },
        "intents_dropped": load(&desk.intents_dropped),
        "reports_unmatched": load(&desk.reports_unmatched),
    })
}

/// Entries' tick-to-trade percentiles (null before the first).
fn tick_to_trade(gateway: &GatewayStats) -> Value {
    let Ok(slot) = gateway.tick_to_trade.lock() else { return Value::Null };
    let Some(t) = slot.as_ref() else { return Value::Null };
    let percentiles = |h: &hdrhistogram::Histogram<u64>| {
        (!h.is_empty()).then(|| {
            json!({ "p50_ns": h.value_at_quantile(0.5), "p90_ns": h.value_at_quantile(0.9),
                    "p99_ns": h.value_at_quantile(0.99), "max_ns": h.max(), "samples": h.len() })
        })
    };
    json!({ "to_last_byte_written": percentiles(&t.written), "to_acknowledged": percentiles(&t.acked) })
}
