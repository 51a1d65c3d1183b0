//! Aegis brain analytics: everything computed from closed bars of one symbol, with fixed
//! memory per symbol and no allocation after construction.
//!
//! - [`candle`]: the closed bar, its order flow, and the checks that refuse a bad one.
//! - [`indicator`]: RSI, ATR, EMA and SMA, incremental and TA-Lib-exact.
//! - [`structure`]: swings confirmed L bars later, structure breaks, per timeframe.
//! - [`smc`]: fair-value gaps, order blocks, liquidity grabs.
//! - [`flow`]: order flow within a bar from aggTrades and bookTickers.
//! - [`feature`]: the 18 features of SPEC §4 and the per-symbol engine producing them.
//! - [`kline_csv`]: reading kline CSV files with errors naming file, line and reason.
//! - [`report`]: `aegis features`, a kline CSV in and one row of features per bar out.
//! - [`window`]: the fixed-capacity ring everything above keeps its history in.

pub mod candle;
pub mod feature;
pub mod flow;
pub mod indicator;
pub mod kline_csv;
pub mod report;
pub mod smc;
pub mod structure;
pub mod window;

pub use candle::{BarError, Candle, Ohlc, OrderFlow};
pub use feature::{FeatureConfig, FeatureEngine, FeatureSnapshot, FEATURES, NAMES, NEUTRAL, RANGES};
pub use structure::Direction;
