//! The run's foreground while its threads work: the watchdog over every pinned thread's
//! heartbeat, the stop conditions (time, events, trades), the benchmark's warm signal, and
//! a progress line a second. Reads counters only; never touches a hot path.

use crate::brain::stats::BrainStats;
use crate::config::RunConfig;
use crate::desk::stats::DeskStats;
use crate::feed::shard::ShardStats;
use crate::model_loader::ModelStats;
use crate::ops::watchdog::{WatchEvent, Watchdog};
use crate::ring::RingStats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a shard or the brain may make no progress before the watchdog says so.
const WATCHDOG_STALL: Duration = Duration::from_secs(2);

/// The counters the foreground reads.
pub struct Watched<'a> {
    /// Symbols in the run.
    pub symbols: usize,
    /// The brain's counters.
    pub brain: &'a BrainStats,
    /// The desk's counters.
    pub desk: &'a DeskStats,
    /// Each shard's counters.
    pub shards: &'a [Arc<ShardStats>],
    /// Each shard ring's counters.
    pub rings: &'a [Arc<RingStats>],
    /// The model loader's counters, with a data dir.
    pub model: Option<&'a ModelStats>,
    /// Stalls reported.
    pub watchdog_alerts: &'a AtomicU64,
}

/// Watches the run until `stop`, its time is up, or a stop-after count is reached; returns
/// the largest brain lag seen (ns).
pub fn watch(config: &RunConfig, w: &Watched, stop: &AtomicBool, started: Instant) -> u64 {
    let mut last_events = 0u64;
    // The brain keeps the largest lag since it was last taken; the run's maximum is kept here.
    let mut lag_max_ns_run = 0u64;
    let mut next_report = started + Duration::from_secs(1);
    let events_seen = || w.brain.events_by_kind.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    let mut names: Vec<String> = (0..w.shards.len()).map(|i| format!("shard {i}")).collect();
    names.push("brain".into());
    let mut watchdog = Watchdog::new(names, WATCHDOG_STALL, Instant::now());
    let mut heartbeats: Vec<u64> = Vec::with_capacity(w.shards.len() + 1);
    while !stop.load(Ordering::Relaxed) && config.end.run_for.is_none_or(|d| started.elapsed() < d) {
        if let Some(warm) = config.end.warm.as_ref().filter(|w| !w.load(Ordering::Relaxed)) {
            let all_warm = w.brain.symbols.iter().all(|s| s.features_warm.load(Ordering::Relaxed) == 1);
            if config.exchange.warmup_bars == 0 || all_warm {
                warm.store(true, Ordering::Release);
            }
        }
        let trades = w.desk.trades_closed.load(Ordering::Relaxed);
        let delivered =
            || events_seen() + w.rings.iter().map(|r| r.dropped.load(Ordering::Relaxed)).sum::<u64>();
        if config.end.stop_after_events.is_some_and(|n| delivered() >= n)
            || config.end.stop_after_trades.is_some_and(|n| trades >= n)
        {
            // Grace for anything extra (a doubled event would show up now).
            std::thread::sleep(Duration::from_millis(300));
            break;
        }
        std::thread::sleep(Duration::from_millis(20).min(config.end.run_for.unwrap_or(Duration::MAX)));
        heartbeats.clear();
        heartbeats.extend(w.shards.iter().map(|s| s.heartbeat.load(Ordering::Relaxed)));
        heartbeats.push(w.brain.heartbeat.load(Ordering::Relaxed));
        for event in watchdog.observe(Instant::now(), &heartbeats) {
            match event {
                WatchEvent::Stalled { name, still } => {
                    w.watchdog_alerts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(thread = %name, still_ms = still.as_millis() as u64, "watchdog: no progress");
                }
                WatchEvent::Recovered { name } => {
                    tracing::info!(thread = %name, "watchdog: progressing again")
                }
            }
        }
        if config.ops.progress && Instant::now() >= next_report {
            next_report += Duration::from_secs(1);
            let events: u64 = w.brain.events_by_kind.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            let bars: u64 = w.brain.symbols.iter().map(|s| s.bars_closed.load(Ordering::Relaxed)).sum();
            let synced =
                w.brain.symbols.iter().filter(|s| s.book_in_sync.load(Ordering::Relaxed) == 1).count();
            let drops: u64 = w.rings.iter().map(|r| r.dropped.load(Ordering::Relaxed)).sum();
            let warm =
                w.brain.symbols.iter().filter(|s| s.features_warm.load(Ordering::Relaxed) == 1).count();
            let n = w.symbols;
            let lag_ns = w.brain.lag_max_ns.swap(0, Ordering::Relaxed);
            lag_max_ns_run = lag_max_ns_run.max(lag_ns);
            let lag_us = lag_ns as f64 / 1e3;
            let (trades, open, equity) = (
                w.desk.trades_closed.load(Ordering::Relaxed),
                w.desk.open_positions.load(Ordering::Relaxed),
                w.desk.equity(),
            );
            let phase = w.desk.phase_name();
            let model = w.model.map_or(0, |m| m.serving.load(Ordering::Relaxed));
            eprintln!(
                "aegis: {:>6.1}s  {:>8} events/s  {:>9} events  {:>6} bars closed  books in sync {synced}/{n}  features warm {warm}/{n}  ring drops {drops}  lag max {lag_us:.0} µs  trades {trades} (open {open})  equity {equity:.2}  {phase}, model {model}",
                started.elapsed().as_secs_f64(),
                events - last_events,
                events,
                bars,
            );
            last_events = events;
        }
    }
    lag_max_ns_run
}
