//! Market data over REST, off the hot path: the one client (exchangeInfo, klines for warm-up
//! and gap fills, depth snapshots, missed aggTrades) and the worker thread that serves the
//! brain's requests with it.
//!
//! Every call spends from a request-weight budget taken from exchangeInfo's `rateLimits`
//! (Binance answers overspenders with 429, then bans with 418): the worker waits for the
//! next minute rather than overspend, and backs off on a 429. Results go back to the brain
//! as ordinary records through their own ring.
//!
//! - [`client`]: the budgeted market-data client.
//! - [`worker`]: the thread between the brain's request ring and the client.
//! - [`rules`]: exchangeInfo entries → trading rules.
//! - [`refresh`]: exchangeInfo read again periodically; changes to the brain.

pub mod client;
pub mod refresh;
pub mod rules;
pub mod worker;

use aegis_wire::SymbolId;
use std::sync::atomic::AtomicU64;

/// What the brain asks the REST worker for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestRequest {
    /// Closed 1m klines opening in `[start_ms, end_ms]`; `start_ms = i64::MIN` means the
    /// warm-up (the latest `warmup_bars`), `end_ms = i64::MAX` means up to now.
    Klines {
        /// Symbol.
        symbol: SymbolId,
        /// First open time wanted.
        start_ms: i64,
        /// Last open time wanted.
        end_ms: i64,
    },
    /// A depth snapshot.
    Depth {
        /// Symbol.
        symbol: SymbolId,
    },
    /// The aggTrades with agg ids in `[from_id, to_id]` (missed on the stream).
    AggTrades {
        /// Symbol.
        symbol: SymbolId,
        /// First agg id wanted.
        from_id: u64,
        /// Last agg id wanted.
        to_id: u64,
    },
}

/// Counters of the REST client.
#[derive(Default, Debug)]
pub struct RestStats {
    /// Requests made.
    pub requests: AtomicU64,
    /// Weight used in the current minute (as the exchange reports it).
    pub weight_used: AtomicU64,
    /// 429 answers received.
    pub rate_limited: AtomicU64,
    /// Requests that failed for good.
    pub failures: AtomicU64,
    /// exchangeInfo refreshes read.
    pub info_refreshes: AtomicU64,
}
