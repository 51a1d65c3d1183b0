//! Recorded Binance market data, readable without a network or a runtime.
//!
//! [`market`] is the model a source of market data hands its consumer (timed messages,
//! symbols, bars, books); [`replay`] reads every recorded format of `shared/data/README.md`
//! into that model. The engine's backtest and exchange-sim's replay both read through here.

pub mod market;
pub mod replay;
