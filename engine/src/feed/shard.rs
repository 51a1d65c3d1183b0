//! A feed shard: what one pinned thread owning some symbols' connections is (settings,
//! counters) and what both transports do the same way — delivering parsed messages into
//! the ring, announcing (re)connects with resync notices, backing off, noting errors.
//!
//! Connections carry their streams in the URL (`/stream?streams=…`, at most 200), so no
//! subscription message is needed; a lost connection is retried with exponential backoff
//! and jitter, and every (re)connect pushes a `Resync(Reconnect)` notice per symbol so the
//! brain gap-fills and re-snapshots. Nothing here allocates, locks or logs per message.

use super::binance::{parse_message, StreamHint};
use super::endpoint::EndpointSpec;
use crate::ring::{Idle, RingProducer};
use aegis_wire::{Event, Header, Record, Resync, ResyncReason, SymbolId, SymbolTable};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A shard's settings.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// Shard number.
    pub id: usize,
    /// Core to pin to, if any.
    pub core: Option<usize>,
    /// Idle policy.
    pub idle: Idle,
    /// Connections.
    pub endpoints: Vec<EndpointSpec>,
    /// Largest WebSocket message accepted.
    pub max_message: usize,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Seed for masks, keys and jitter.
    pub seed: u64,
    /// Replace each connection after this long, make-before-break, so the exchange's
    /// lifetime limit never cuts the feed.
    pub rotate_after: Option<Duration>,
    /// Stream channels per symbol (`aggTrade`, `kline_1m`, …), for live subscriptions.
    pub channels: Vec<String>,
    /// One connection per tier with an empty stream list: what a live subscription opens
    /// when no connection of its tier has room.
    pub templates: Vec<EndpointSpec>,
    /// Fault injection for tests (`AEGIS_FAULT_SHARD_PANIC_AFTER`): panic once after this
    /// many messages.
    pub panic_after_messages: Option<u64>,
}

/// Everything one shard thread owns while it runs.
pub struct ShardRun {
    /// Its settings and connections.
    pub config: ShardConfig,
    /// The symbols, for names in stream lists.
    pub symbols: Arc<SymbolTable>,
    /// Its ring into the brain.
    pub ring: RingProducer,
    /// Its counters.
    pub stats: Arc<ShardStats>,
    /// Set to stop it.
    pub stop: Arc<AtomicBool>,
    /// Live (un)subscriptions from the control plane.
    pub commands: Option<rtrb::Consumer<super::subscription::ShardCommand>>,
}

/// Counters a shard publishes for other threads (relaxed atomics, no locks on the hot path).
#[derive(Default, Debug)]
pub struct ShardStats {
    /// The CPU the shard runs on, as it read it back.
    pub core: crate::cpu::Placement,
    /// WebSocket text messages received.
    pub messages: AtomicU64,
    /// Records produced (a depth update may make several).
    pub records: AtomicU64,
    /// Exchange events by kind (indexed like `EventKind::ALL`).
    pub events_by_kind: [AtomicU64; 7],
    /// Messages that did not parse.
    pub parse_errors: AtomicU64,
    /// Successful reconnects (after the first connect).
    pub reconnects: AtomicU64,
    /// Connections lost.
    pub disconnects: AtomicU64,
    /// Connections replaced make-before-break.
    pub rotations: AtomicU64,
    /// Loop iterations (the watchdog's progress counter).
    pub heartbeat: AtomicU64,
    /// The largest live-subscription request id carried out (answered by the exchange, or
    /// applied by reconnecting with the new stream list).
    pub acked: AtomicU64,
    /// Live-subscription requests the exchange refused.
    pub subscription_errors: AtomicU64,
    /// Times the shard panicked and was restarted.
    pub restarts: AtomicU64,
    /// The latest parse error, described (written at most once a second).
    pub last_error: Mutex<String>,
    last_error_at_ms: AtomicU64,
}

/// How long the old and the new connection overlap during a rotation.
pub(crate) const ROTATION_OVERLAP: Duration = Duration::from_millis(500);

/// Exponential backoff with ±25 % jitter.
pub(crate) fn backoff(config: &ShardConfig, attempt: u32, jitter: &mut u64) -> Duration {
    let base = config.backoff_initial.saturating_mul(1u32 << attempt.min(16)).min(config.backoff_max);
    *jitter ^= *jitter << 13;
    *jitter ^= *jitter >> 7;
    *jitter ^= *jitter << 17;
    let factor = 0.75 + (*jitter % 1000) as f64 / 2000.0;
    base.mul_f64(factor)
}

/// A connection opened: count a reconnect, and push a resync notice for its symbols so the
/// brain fills what it may have missed.
pub(crate) fn announce_open(
    spec: &EndpointSpec,
    reconnect: bool,
    ring: &mut RingProducer,
    stats: &ShardStats,
    recv_ns: u64,
) {
    if reconnect {
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    push_resyncs(&spec.symbols, ring, recv_ns);
}

/// Pushes a `Resync(Reconnect)` notice per symbol, so the brain fills what they may have
/// missed (a reconnect, a restarted shard).
pub(crate) fn push_resyncs(symbols: &[SymbolId], ring: &mut RingProducer, recv_ns: u64) {
    for &symbol in symbols {
        ring.push(&Record {
            header: Header { symbol, event_time_ms: 0, recv_ns },
            event: Event::Resync(Resync { reason: ResyncReason::Reconnect }),
        });
    }
    ring.wake();
}

/// Counts a shard (or connection task) restarted after `panic`, and says why.
pub(crate) fn note_restart(
    stats: &ShardStats,
    shard: usize,
    started: Instant,
    panic: &(dyn std::any::Any + Send),
) {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    stats.restarts.fetch_add(1, Ordering::Relaxed);
    note_error(stats, started, &format!("shard {shard} panicked ({what}); restarted"));
    tracing::error!(shard, %what, "shard panicked; restarting it");
}

/// Parses one text message into the ring, counting events and errors.
pub(crate) fn deliver(
    text: &[u8],
    hint: Option<StreamHint>,
    symbols: &SymbolTable,
    recv_ns: u64,
    ring: &mut RingProducer,
    stats: &ShardStats,
    started: Instant,
) {
    stats.messages.fetch_add(1, Ordering::Relaxed);
    let mut last_kind = None;
    let result = parse_message(text, hint, symbols, recv_ns, &mut |record| {
        last_kind = record.event.kind();
        ring.push(record);
        stats.records.fetch_add(1, Ordering::Relaxed);
    });
    match result {
        Ok(super::binance::Parsed::Records(_)) => {
            if let Some(kind) = last_kind {
                stats.events_by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(super::binance::Parsed::Reply { id, ok: true }) => {
            stats.acked.fetch_max(id, Ordering::Relaxed);
        }
        Ok(super::binance::Parsed::Reply { id, ok: false }) => {
            stats.subscription_errors.fetch_add(1, Ordering::Relaxed);
            note_error(
                stats,
                started,
                &format!("subscription request {id} refused: {}", String::from_utf8_lossy(text)),
            );
        }
        Err(e) => {
            stats.parse_errors.fetch_add(1, Ordering::Relaxed);
            let head = &text[..text.len().min(120)];
            note_error(stats, started, &format!("{e}: {}", String::from_utf8_lossy(head)));
        }
    }
}

/// Records a description of the latest error, at most once a second (error path only).
pub(crate) fn note_error(stats: &ShardStats, started: Instant, what: &str) {
    let now_ms = started.elapsed().as_millis() as u64 + 1_000;
    let last = stats.last_error_at_ms.load(Ordering::Relaxed);
    if now_ms < last + 1_000 {
        return;
    }
    stats.last_error_at_ms.store(now_ms, Ordering::Relaxed);
    if let Ok(mut slot) = stats.last_error.try_lock() {
        slot.clear();
        slot.push_str(what);
    }
}
