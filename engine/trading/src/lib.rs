//! Aegis decisions and money (SPEC §5, §6): pure logic, no I/O, no allocation per event.
//!
//! - [`policy`]: the teacher's rules, the 1h trend filter, the student's confidence gate,
//!   and which of the two is in charge.
//! - [`decay`]: the three signal-decay checks run on every closed bar for an open position.
//! - [`rules`]: a symbol's exchange filters (step, tick, min notional, leverage brackets)
//!   and the isolated-margin liquidation price.
//! - [`sizing`]: `fixed_risk` and `kelly` sizing, stops and targets, the leverage that
//!   keeps the stop inside liquidation, and the reasons a trade is skipped.
//! - [`reward`]: the leverage-independent reward score of a closed trade.
//! - [`rng`]: a seeded SplitMix64 generator, identical on every platform.
//! - [`broker`]: the paper broker — fills with slippage and fees, TP/SL and liquidation on
//!   every trade and mark price, funding, closed-trade records, equity and account guards.

pub mod broker;
pub mod decay;
pub mod policy;
pub mod reward;
pub mod rng;
pub mod rules;
pub mod sizing;

pub use broker::{ClosedTrade, ExitReason, PaperBroker, Position};
pub use policy::{Phase, PolicyConfig, Rule, Side, Signal};
pub use rules::SymbolRules;
pub use sizing::{Order, SizingConfig, Skip};
