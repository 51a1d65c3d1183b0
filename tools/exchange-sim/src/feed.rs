//! The feeder: pulls batches from the source, paces them (speed factor, or flat out with
//! back-pressure from the slowest subscriber), applies stream faults and publishes.

use crate::cli::Speed;
use crate::fault::due;
use crate::market::Msg;
use crate::server::Shared;
use crate::stats::LocalCounts;
use aegis_wire::EventKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far (in messages) the slowest subscriber may fall behind in flat-out mode before the
/// feeder waits for it, as a fraction of the feed's capacity.
const BACKPRESSURE_DIVISOR: usize = 2;

/// Runs until the source is exhausted or shutdown; returns when done.
pub async fn run_feed(shared: Arc<Shared>, feed_capacity: usize) {
    let mut shutdown = shared.shutdown.clone();
    while !shared.started.load(Ordering::Acquire) {
        tokio::select! {
            _ = shared.start_signal.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
    let mut publisher = Publisher {
        shared: shared.clone(),
        counts: LocalCounts::default(),
        n: 0,
        depth_n: 0,
        kline_n: 0,
        held: None,
    };
    let wall_start = Instant::now();
    let mut source_start = None;
    let mut batches = 0u64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = shared.source.lock().unwrap_or_else(|p| p.into_inner()).next_batch();
        let Some(batch) = batch else { break };
        let origin = *source_start.get_or_insert(batch.time_ns);
        match shared.speed {
            Speed::Factor(factor) => {
                let offset =
                    Duration::from_secs_f64(batch.time_ns.saturating_sub(origin) as f64 / 1e9 / factor);
                let due_at = wall_start + offset;
                if due_at > Instant::now() + Duration::from_micros(200) {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due_at.into()) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
            Speed::Max => {
                while shared.feed.len() > feed_capacity / BACKPRESSURE_DIVISOR
                    && shared.feed.receiver_count() > 0
                {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                batches += 1;
                if batches.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        }
        match_resting_orders(&shared, &batch.msgs, (batch.time_ns / 1_000_000) as i64);
        for msg in batch.msgs {
            publisher.publish(msg);
        }
        if publisher.counts.total >= 4096 {
            publisher.merge();
        }
    }
    if let Some(held) = publisher.held.take() {
        let _ = shared.feed.send(held);
    }
    publisher.merge();
}

/// Resting orders fill against the batch's aggTrades, and conditional orders trigger on its
/// aggTrades and mark prices (before clients see them).
fn match_resting_orders(shared: &Shared, msgs: &[Msg], now_ms: i64) {
    let mut venue = shared.venue.lock().unwrap_or_else(|p| p.into_inner());
    // Marks are kept even with nothing waiting: a new conditional order is checked
    // against the current mark.
    let resting = venue.has_resting();
    let decimal = |payload: &str, key: &str| {
        let start = payload.find(key)? + key.len();
        let end = start + payload[start..].find('"')?;
        aegis_wire::decimal::parse_fixed8(
            &payload.as_bytes()[start..end],
            aegis_wire::decimal::Sign::Forbidden,
        )
        .ok()
    };
    for msg in msgs {
        let payload = msg.payload();
        match msg.kind {
            EventKind::AggTrade if resting => {
                if let (Some(price), Some(qty)) = (decimal(payload, "\"p\":\""), decimal(payload, "\"q\":\""))
                {
                    venue.on_trade(&msg.symbol, price, qty, now_ms);
                }
            }
            EventKind::MarkPriceUpdate => {
                if let Some(price) = decimal(payload, "\"p\":\"") {
                    venue.on_mark(&msg.symbol, price, now_ms);
                }
            }
            _ => {}
        }
    }
}

struct Publisher {
    shared: Arc<Shared>,
    counts: LocalCounts,
    n: u64,
    depth_n: u64,
    kline_n: u64,
    held: Option<Arc<Msg>>,
}

impl Publisher {
    fn publish(&mut self, msg: Msg) {
        let faults = &self.shared.faults;
        self.counts.message(msg.kind.name(), &msg.symbol);
        if msg.kind == EventKind::DepthUpdate {
            self.depth_n += 1;
            if due(self.depth_n, faults.depth_gap_every) {
                self.counts.fault("depth_gap");
                return;
            }
        }
        if msg.closed_kline {
            self.kline_n += 1;
            if due(self.kline_n, faults.missing_kline_every) {
                self.counts.fault("missing_kline");
                return;
            }
        }
        self.n += 1;
        let msg = if due(self.n, faults.malformed_every) {
            self.counts.fault("malformed");
            Arc::new(msg.malformed())
        } else {
            Arc::new(msg)
        };
        if due(self.n, faults.reorder_every) && self.held.is_none() {
            self.counts.fault("reorder");
            self.held = Some(msg);
            return;
        }
        let _ = self.shared.feed.send(msg.clone());
        if due(self.n, faults.duplicate_every) {
            self.counts.fault("duplicate");
            let _ = self.shared.feed.send(msg.clone());
        }
        // A held message goes out right after the next one of its own stream: out of order.
        if self.held.as_ref().is_some_and(|h| h.stream == msg.stream) {
            if let Some(held) = self.held.take() {
                let _ = self.shared.feed.send(held);
            }
        }
    }

    fn merge(&mut self) {
        self.shared.stats.lock().unwrap_or_else(|p| p.into_inner()).merge_generated(&mut self.counts);
    }
}
