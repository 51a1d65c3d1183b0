//! The port between the desk and the writer thread: what the desk hands over to be made
//! durable (closed trades, signals, bar samples, account snapshots, alerts). Plain `Copy`
//! values carried through a preallocated ring.

use super::venue::Alert;
use aegis_trading::broker::Refusal;
use aegis_trading::sizing::Skip;
use aegis_trading::{ClosedTrade, Position, Rule, Side};
use aegis_wire::experience::BarSample;

/// What happened to a signal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Sized and accepted: the order's id.
    Submitted(u64),
    /// Sizing declined it.
    Skipped(Skip),
    /// The broker refused it.
    Refused(Refusal),
}

/// A decision, for the signals journal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalNote {
    /// Symbol index.
    pub symbol: u16,
    /// Open time of the bar that produced it.
    pub bar_time_ms: i64,
    /// Direction.
    pub side: Side,
    /// Rule or model.
    pub rule: Rule,
    /// Close of the bar.
    pub price: f64,
    /// What became of it.
    pub outcome: Outcome,
}

/// The account after a change, for the positions journal (what a restart restores).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountSnapshot {
    /// Exchange time of the change.
    pub time_ms: i64,
    /// Wallet balance.
    pub wallet: f64,
    /// Equity.
    pub equity: f64,
    /// Trades closed so far.
    pub closed_trades: u64,
    /// The next order id.
    pub next_id: u64,
    /// Positions (filled ones are restored).
    pub positions: [Option<Position>; SNAPSHOT_POSITIONS],
}

/// What the desk hands to the writer thread.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // carried by value through a preallocated ring
pub enum DeskEvent {
    /// A trade closed.
    Closed(ClosedTrade),
    /// A signal and its outcome.
    Signal(SignalNote),
    /// A labelled bar sample.
    Sample(BarSample),
    /// The account after a fill or close.
    Account(AccountSnapshot),
    /// Something an operator must know (a guard halting or resuming entries).
    Alert(Alert),
}

/// Most positions a snapshot carries (twice `max_positions` plus one, rotation included).
pub const SNAPSHOT_POSITIONS: usize = 9;
