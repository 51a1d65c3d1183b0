//! Bars: 1-minute bars from closed klines or built from trades, and the 5m/15m/1h/1d
//! roll-ups. Bucketed by exchange time, never arrival time. Fixed-point; no allocation.

/// One minute in exchange milliseconds.
pub use aegis_wire::units::MINUTE_MS;
/// Roll-up intervals kept for every symbol: 5m, 15m, 1h, 1d.
pub const ROLLUP_MS: [i64; 4] = [300_000, 900_000, 3_600_000, 86_400_000];

/// One bar, fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Open time, ms.
    pub open_time_ms: i64,
    /// Open.
    pub open: i64,
    /// High.
    pub high: i64,
    /// Low.
    pub low: i64,
    /// Close.
    pub close: i64,
    /// Base volume.
    pub volume: i128,
    /// Number of trades.
    pub trades: u64,
}

impl Bar {
    /// A bar opening at `open_time_ms` with a first trade.
    pub fn from_trade(open_time_ms: i64, price: i64, qty: i64) -> Self {
        Self {
            open_time_ms,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: i128::from(qty),
            trades: 1,
        }
    }

    /// A bar with no trades: every price is the previous close (as Binance reports it).
    pub fn empty(open_time_ms: i64, close: i64) -> Self {
        Self { open_time_ms, open: close, high: close, low: close, close, volume: 0, trades: 0 }
    }

    fn add_trade(&mut self, price: i64, qty: i64) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        self.volume += i128::from(qty);
        self.trades += 1;
    }

    fn merge(&mut self, later: &Bar) {
        if self.trades == 0 && self.volume == 0 && later.trades > 0 {
            // An empty leading bar contributes no prices of its own.
            *self = Bar { open_time_ms: self.open_time_ms, ..*later };
            return;
        }
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.trades += later.trades;
    }

    /// Writes the bar as a CSV row body `open_time_ms,open,high,low,close,volume,trades`.
    pub fn csv_fields(&self, out: &mut String) {
        use aegis_wire::decimal::format_fixed8;
        use std::fmt::Write;
        let _ = write!(out, "{}", self.open_time_ms);
        for p in [self.open, self.high, self.low, self.close] {
            out.push(',');
            format_fixed8(i128::from(p), 8, out);
        }
        out.push(',');
        format_fixed8(self.volume, 8, out);
        let _ = write!(out, ",{}", self.trades);
    }
}

/// Builds 1m bars from trades in exchange-time order.
#[derive(Clone, Copy, Debug, Default)]
pub struct TradeBars {
    current: Option<Bar>,
}

impl TradeBars {
    /// Adds a trade; returns the bars it closed (the previous minute, and empty minutes
    /// between, at most `out.len()`), written into `out`, and how many.
    pub fn add(&mut self, time_ms: i64, price: i64, qty: i64, out: &mut [Bar; 4]) -> usize {
        let minute = time_ms - time_ms.rem_euclid(MINUTE_MS);
        let Some(mut current) = self.current else {
            self.current = Some(Bar::from_trade(minute, price, qty));
            return 0;
        };
        if minute <= current.open_time_ms {
            // Same minute (or a late trade, folded into the open bar).
            current.add_trade(price, qty);
            self.current = Some(current);
            return 0;
        }
        let mut n = 0;
        out[n] = current;
        n += 1;
        let mut next = current.open_time_ms + MINUTE_MS;
        while next < minute && n < out.len() {
            out[n] = Bar::empty(next, current.close);
            n += 1;
            next += MINUTE_MS;
        }
        self.current = Some(Bar::from_trade(minute, price, qty));
        n
    }
}

/// Rolls closed 1m bars up into one longer interval.
#[derive(Clone, Copy, Debug)]
pub struct Rollup {
    interval_ms: i64,
    current: Option<Bar>,
}

impl Rollup {
    /// A roll-up to `interval_ms`.
    pub fn new(interval_ms: i64) -> Self {
        Self { interval_ms, current: None }
    }

    /// Adds a closed 1m bar; returns the rolled-up bar if this minute completed it.
    pub fn add(&mut self, minute: &Bar) -> Option<Bar> {
        let bucket = minute.open_time_ms - minute.open_time_ms.rem_euclid(self.interval_ms);
        match &mut self.current {
            Some(cur) if cur.open_time_ms == bucket => cur.merge(minute),
            _ => self.current = Some(Bar { open_time_ms: bucket, ..*minute }),
        }
        if minute.open_time_ms + MINUTE_MS == bucket + self.interval_ms {
            return self.current.take();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_close_bars_by_exchange_minute_with_empty_minutes_between() {
        let mut bars = TradeBars::default();
        let mut out = [Bar::empty(0, 0); 4];
        assert_eq!(bars.add(60_001, 10, 1, &mut out), 0);
        assert_eq!(bars.add(60_500, 12, 2, &mut out), 0);
        assert_eq!(bars.add(119_999, 9, 1, &mut out), 0);
        assert_eq!(bars.add(240_000, 11, 1, &mut out), 3);
        assert_eq!(
            out[0],
            Bar { open_time_ms: 60_000, open: 10, high: 12, low: 9, close: 9, volume: 4, trades: 3 }
        );
        assert_eq!(out[1], Bar::empty(120_000, 9));
        assert_eq!(out[2], Bar::empty(180_000, 9));
    }

    #[test]
    fn rollups_complete_on_the_last_minute_of_the_bucket() {
        let mut five = Rollup::new(300_000);
        let mut done = Vec::new();
        for i in 0..10 {
            let b = Bar {
                open_time_ms: i * MINUTE_MS,
                open: 100 + i,
                high: 110 + i,
                low: 90 - i,
                close: 105 + i,
                volume: 1,
                trades: 1,
            };
            done.extend(five.add(&b));
        }
        assert_eq!(done.len(), 2);
        assert_eq!(
            done[0],
            Bar { open_time_ms: 0, open: 100, high: 114, low: 86, close: 109, volume: 5, trades: 5 }
        );
        assert_eq!(done[1].open_time_ms, 300_000);
    }
}
