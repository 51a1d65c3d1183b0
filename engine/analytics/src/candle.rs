//! The closed bar the analytics consume, its order-flow summary, and the checks that keep a
//! bad bar from corrupting a symbol's state.

use thiserror::Error;

/// Order flow observed within one bar; `None` where the source had none (its features then
/// take their neutral values).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OrderFlow {
    /// Trades in the bar.
    pub trades: Option<u64>,
    /// Taker-buy and taker-sell base volume.
    pub taker: Option<(f64, f64)>,
    /// Volume-weighted average trade price.
    pub vwap: Option<f64>,
    /// Time-weighted mean top-of-book spread, basis points of mid.
    pub spread_bps: Option<f64>,
    /// Time-weighted top-of-book `(bid_qty − ask_qty) / (bid_qty + ask_qty)`.
    pub book_imbalance: Option<f64>,
}

/// One closed bar in floating point, with its order flow.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Candle {
    /// Open time, ms since the epoch (exchange time).
    pub open_time_ms: i64,
    /// Open price.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close price.
    pub close: f64,
    /// Base volume.
    pub volume: f64,
    /// Order flow within the bar.
    pub flow: OrderFlow,
}

/// Why a bar was refused.
#[derive(Clone, Copy, Debug, Error, PartialEq)]
pub enum BarError {
    /// A price or volume is NaN or infinite.
    #[error("{field} is not a finite number")]
    NonFinite {
        /// The offending field.
        field: &'static str,
    },
    /// A price is zero or negative.
    #[error("{field} = {value} is not a positive price")]
    NonPositivePrice {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// The high is below the low.
    #[error("high {high} is below low {low}")]
    HighBelowLow {
        /// High.
        high: f64,
        /// Low.
        low: f64,
    },
    /// The open or close lies outside the bar's range.
    #[error("{field} = {value} lies outside [low {low}, high {high}]")]
    OutsideRange {
        /// `open` or `close`.
        field: &'static str,
        /// Its value.
        value: f64,
        /// Low.
        low: f64,
        /// High.
        high: f64,
    },
    /// The volume is negative.
    #[error("volume {0} is negative")]
    NegativeVolume(f64),
    /// The open time does not come after the previous bar's.
    #[error("open time {time} does not come after the previous bar's {previous}")]
    NotAfterPrevious {
        /// This bar's open time.
        time: i64,
        /// The previous bar's open time.
        previous: i64,
    },
}

impl Candle {
    /// Checks the bar on its own (prices finite and positive, open and close inside
    /// [low, high], volume finite and not negative).
    pub fn validate(&self) -> Result<(), BarError> {
        let prices = [("open", self.open), ("high", self.high), ("low", self.low), ("close", self.close)];
        for (field, value) in prices {
            if !value.is_finite() {
                return Err(BarError::NonFinite { field });
            }
            if value <= 0.0 {
                return Err(BarError::NonPositivePrice { field, value });
            }
        }
        if !self.volume.is_finite() {
            return Err(BarError::NonFinite { field: "volume" });
        }
        if self.volume < 0.0 {
            return Err(BarError::NegativeVolume(self.volume));
        }
        if self.high < self.low {
            return Err(BarError::HighBelowLow { high: self.high, low: self.low });
        }
        for (field, value) in [("open", self.open), ("close", self.close)] {
            if value < self.low || value > self.high {
                return Err(BarError::OutsideRange { field, value, low: self.low, high: self.high });
            }
        }
        Ok(())
    }

    /// The bar's prices alone.
    pub fn ohlc(&self) -> Ohlc {
        Ohlc { open: self.open, high: self.high, low: self.low, close: self.close }
    }
}

/// A bar's four prices.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ohlc {
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
}

impl Ohlc {
    /// Midpoint of the range.
    pub fn mid(&self) -> f64 {
        (self.high + self.low) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64, v: f64) -> Candle {
        Candle { open_time_ms: 0, open: o, high: h, low: l, close: c, volume: v, flow: OrderFlow::default() }
    }

    #[test]
    fn refuses_each_kind_of_bad_bar() {
        assert!(bar(1.0, 2.0, 0.5, 1.5, 3.0).validate().is_ok());
        assert!(matches!(bar(1.0, 0.5, 2.0, 1.0, 1.0).validate(), Err(BarError::HighBelowLow { .. })));
        assert!(matches!(bar(1.0, 0.9, 1.0, 1.0, 1.0).validate(), Err(BarError::HighBelowLow { .. })));
        assert_eq!(bar(1.0, 2.0, 1.0, 1.0, -1.0).validate(), Err(BarError::NegativeVolume(-1.0)));
        assert_eq!(bar(f64::NAN, 2.0, 1.0, 1.0, 1.0).validate(), Err(BarError::NonFinite { field: "open" }));
        assert_eq!(
            bar(1.0, 2.0, 1.0, 1.0, f64::INFINITY).validate(),
            Err(BarError::NonFinite { field: "volume" })
        );
        assert!(matches!(bar(1.0, 2.0, 0.0, 1.0, 1.0).validate(), Err(BarError::NonPositivePrice { .. })));
        assert!(matches!(bar(3.0, 2.0, 1.0, 1.5, 1.0).validate(), Err(BarError::OutsideRange { .. })));
        let msg = bar(1.0, 0.9, 1.0, 1.0, 1.0).validate().unwrap_err().to_string();
        assert_eq!(msg, "high 0.9 is below low 1");
    }
}
