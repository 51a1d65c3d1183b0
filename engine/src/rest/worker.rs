//! The REST worker thread: serves the brain's requests (warm-up and gap-fill klines, depth
//! snapshots, missed aggTrades) off the hot path and pushes the results back as records
//! through their own ring.

use super::client::RestClient;
use super::RestRequest;
use crate::net::http::RestError;
use crate::ring::RingProducer;
use aegis_wire::{Event, Header, Record, Resync, ResyncReason, SymbolTable};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the worker serves: warm-up size, snapshot size, the exchangeInfo refresh.
pub struct WorkerSettings {
    /// Closed 1m bars fetched per symbol at start.
    pub warmup: usize,
    /// Depth snapshot levels.
    pub depth_limit: usize,
    /// The periodic exchangeInfo refresh (`None`: none).
    pub refresh: Option<super::refresh::InfoRefresh>,
}

/// Serves the brain's requests until `stop`: fetches, converts, pushes results; refreshes
/// exchangeInfo between requests when due.
pub fn run_worker(
    mut client: RestClient,
    symbols: Arc<SymbolTable>,
    mut requests: rtrb::Consumer<RestRequest>,
    mut results: RingProducer,
    settings: WorkerSettings,
    stop: Arc<AtomicBool>,
) {
    let WorkerSettings { warmup, depth_limit, mut refresh } = settings;
    let mut queue: std::collections::VecDeque<RestRequest> = std::collections::VecDeque::new();
    // Set while depth snapshots and trade fills are out of budget: kline fills still go
    // (from the reserve those two leave).
    let mut low_priority_blocked_until: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(refresh) = refresh.as_mut() {
            refresh.run_if_due(&mut client, &symbols);
        }
        while let Ok(req) = requests.pop() {
            // Requests already queued are merged (staggering re-snapshots). Kline fills jump
            // the queue: they are cheap, and a symbol's bars (and features) wait on them,
            // while a storm of depth re-snapshots or trade fills (weight 20 each) could
            // otherwise starve them of weight.
            if queue.contains(&req) {
                continue;
            }
            match req {
                RestRequest::Klines { .. } => queue.push_front(req),
                RestRequest::Depth { .. } | RestRequest::AggTrades { .. } => queue.push_back(req),
            }
        }
        let low_priority_blocked = low_priority_blocked_until.is_some_and(|t| Instant::now() < t);
        let next = if low_priority_blocked {
            queue.iter().position(|r| matches!(r, RestRequest::Klines { .. })).and_then(|i| queue.remove(i))
        } else {
            queue.pop_front()
        };
        let Some(req) = next else {
            std::thread::sleep(Duration::from_millis(if low_priority_blocked { 20 } else { 1 }));
            continue;
        };
        let outcome = match req {
            RestRequest::Klines { symbol, start_ms, end_ms } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.closed_klines(symbol, &name, start_ms, end_ms, warmup).map(|mut records| {
                    records.push(Record {
                        header: Header { symbol, event_time_ms: 0, recv_ns: 0 },
                        event: Event::Resync(Resync { reason: ResyncReason::GapFilled }),
                    });
                    records
                })
            }
            RestRequest::Depth { symbol } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.depth_snapshot(symbol, &name, depth_limit)
            }
            RestRequest::AggTrades { symbol, from_id, to_id } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.agg_trades(symbol, &name, from_id, to_id)
            }
        };
        match outcome {
            Ok(records) => {
                for record in &records {
                    while !results.try_push(record) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                results.wake();
            }
            Err(RestError::Budget { wait }) if !matches!(req, RestRequest::Klines { .. }) => {
                low_priority_blocked_until = Some(Instant::now() + wait);
                queue.push_front(req);
            }
            Err(RestError::Budget { wait }) => {
                // Wait for the next window in small steps, so a stop is honoured.
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                queue.push_front(req);
            }
            Err(e) => {
                client.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "REST request failed; retrying later");
                std::thread::sleep(Duration::from_millis(200));
                queue.push_back(req);
            }
        }
    }
}
