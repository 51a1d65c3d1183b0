//! The port between the desk and the execution venue: order intents out, execution reports
//! back, over two SPSC rings (the live gateway owns the other ends). Plain `Copy` values:
//! they live in ring slots and never allocate.

use aegis_trading::{ExitReason, Side};
use aegis_wire::Fixed8;

/// An operator alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Exchange time.
    pub time_ms: i64,
    /// `"HIGH"` or `"INFO"`.
    pub level: &'static str,
    /// What happened.
    pub what: &'static str,
}

/// What the desk asks the exchange for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderIntent {
    /// Enter trade `id`: a market order, then reduce-only stop and take-profit legs.
    Open {
        /// Trade id.
        id: u64,
        /// Symbol index.
        symbol: u16,
        /// Direction.
        side: Side,
        /// Quantity, exactly (rounded down to the symbol's step).
        qty: Fixed8,
        /// Whole leverage.
        leverage: f64,
        /// Stop trigger, exactly (on the tick, rounded toward the entry).
        stop: Fixed8,
        /// Target trigger, exactly (on the tick, rounded toward the entry).
        target: Fixed8,
        /// When the market event that led to this entry was read (`clock::now_ns`; 0:
        /// unknown), for tick-to-trade.
        read_ns: u64,
    },
    /// Close trade `id` (its legs cancelled, a reduce-only market order) for `reason`.
    Close {
        /// Trade id.
        id: u64,
        /// Symbol index.
        symbol: u16,
        /// Why.
        reason: ExitReason,
    },
    /// The kill switch: every order cancelled and every position closed at the exchange.
    Flatten {
        /// Why (an operator's flatten, a shutdown).
        reason: ExitReason,
    },
}

/// What the exchange did, for the desk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExecReport {
    /// Trade `id`'s entry filled `qty` at average `price`.
    Entered {
        /// Trade id.
        id: u64,
        /// Average fill price.
        price: f64,
        /// Quantity filled.
        qty: f64,
        /// Exchange time.
        time_ms: i64,
    },
    /// Trade `id` is closed at average `price`.
    Exited {
        /// Trade id.
        id: u64,
        /// Average exit price.
        price: f64,
        /// Exchange time.
        time_ms: i64,
        /// Why: the leg that filled, or the reason the desk gave.
        reason: ExitReason,
    },
    /// The exchange holds trade `id` at `qty` (the exchange is the truth).
    Resized {
        /// Trade id.
        id: u64,
        /// Quantity held.
        qty: f64,
    },
    /// Trade `id`'s entry was refused or filled nothing: forget it.
    Cancelled {
        /// Trade id.
        id: u64,
    },
    /// Something an operator must know.
    Alert(Alert),
}

/// The desk's execution port: intents go out, reports come back. Paper and live trading
/// both meet the desk here.
pub trait Execution: Send {
    /// Whether an exchange fills the orders (the broker then waits for reports).
    fn at_exchange(&self) -> bool;
    /// Hands `intent` over; false when it could not be taken (the desk counts it).
    fn send(&mut self, intent: OrderIntent) -> bool;
    /// The next report, if one is waiting.
    fn next_report(&mut self) -> Option<ExecReport>;
    /// Whether reports are waiting.
    fn has_reports(&self) -> bool;
}

/// Paper trading: the broker answers on the brain's thread, filling at the next trade print
/// and closing on prices, so an intent needs no messenger and no report ever comes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paper;

impl Execution for Paper {
    fn at_exchange(&self) -> bool {
        false
    }

    fn send(&mut self, _intent: OrderIntent) -> bool {
        true
    }

    fn next_report(&mut self) -> Option<ExecReport> {
        None
    }

    fn has_reports(&self) -> bool {
        false
    }
}

/// Live trading: intents go to the gateway thread over one SPSC ring, its reports come back
/// over another.
pub struct Live {
    intents: rtrb::Producer<OrderIntent>,
    reports: rtrb::Consumer<ExecReport>,
}

impl Live {
    /// The desk's ends of the gateway's rings.
    pub fn new(intents: rtrb::Producer<OrderIntent>, reports: rtrb::Consumer<ExecReport>) -> Self {
        Self { intents, reports }
    }
}

impl Execution for Live {
    fn at_exchange(&self) -> bool {
        true
    }

    fn send(&mut self, intent: OrderIntent) -> bool {
        self.intents.push(intent).is_ok()
    }

    fn next_report(&mut self) -> Option<ExecReport> {
        self.reports.pop().ok()
    }

    fn has_reports(&self) -> bool {
        !self.reports.is_empty()
    }
}
