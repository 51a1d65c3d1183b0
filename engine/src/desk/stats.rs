//! The desk's counters: written by the brain's thread, read by the control, metrics and
//! progress threads. Plain atomics; nothing here blocks.

use std::sync::atomic::{AtomicU64, Ordering};

/// The desk's counters, readable from any thread.
#[derive(Debug, Default)]
pub struct DeskStats {
    /// Trades closed (restored ones included).
    pub trades_closed: AtomicU64,
    /// Signals produced.
    pub signals: AtomicU64,
    /// Signals sizing skipped or the broker refused.
    pub signals_not_taken: AtomicU64,
    /// Live, fresh, warm bars of a tradable symbol holding no position: the chances to enter
    /// (the random-entries baseline draws its rate from them).
    pub flat_bars: AtomicU64,
    /// Live bars not traded because their data was stale.
    pub stale_bars: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
    /// Net PnL of trades closed in this run, `f64` bits.
    pub pnl: AtomicU64,
    /// Equity, `f64` bits.
    pub equity: AtomicU64,
    /// Open positions.
    pub open_positions: AtomicU64,
    /// 0 teacher, 1 student.
    pub phase: AtomicU64,
    /// Events the writer ring had no room for.
    pub events_dropped: AtomicU64,
    /// 1 while an operator has paused new entries.
    pub paused: AtomicU64,
    /// Order intents the venue ring had no room for (live).
    pub intents_dropped: AtomicU64,
    /// Venue reports naming a trade the desk does not hold (live).
    pub reports_unmatched: AtomicU64,
    /// Listing changes (filters, status) applied from exchangeInfo refreshes.
    pub listing_changes: AtomicU64,
    /// Traded symbols whose status is not `TRADING` now (no new entries on them).
    pub symbols_not_trading: AtomicU64,
}

impl DeskStats {
    /// Net PnL of trades closed in this run.
    pub fn pnl(&self) -> f64 {
        f64::from_bits(self.pnl.load(Ordering::Relaxed))
    }

    /// Equity.
    pub fn equity(&self) -> f64 {
        f64::from_bits(self.equity.load(Ordering::Relaxed))
    }

    /// Who decides: `"teacher"` or `"student"`.
    pub fn phase_name(&self) -> &'static str {
        if self.phase.load(Ordering::Relaxed) == 1 {
            "student"
        } else {
            "teacher"
        }
    }
}
