//! Order flow within 1m bars: aggTrades (taker side, VWAP, trade count) and bookTicker quotes
//! (time-weighted spread and imbalance), bucketed by exchange minute so a trade of the next
//! minute arriving before this minute's bar closes lands in the right bar.

use crate::candle::OrderFlow;

const MINUTE_MS: i64 = 60_000;
/// Minutes accumulated at once: the bar being closed and a few early arrivals of later ones.
const BUCKETS: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
struct Quote {
    time_ms: i64,
    spread_bps: f64,
    imbalance: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    minute: i64,
    used: bool,
    trades: u64,
    buy: f64,
    sell: f64,
    notional: f64,
    quotes: u64,
    first_quote: Quote,
    last_quote: Quote,
    weight_ms: f64,
    spread_weighted: f64,
    imbalance_weighted: f64,
    spread_sum: f64,
    imbalance_sum: f64,
}

impl Bucket {
    fn add_weighted(&mut self, quote: Quote, weight_ms: f64) {
        self.weight_ms += weight_ms;
        self.spread_weighted += quote.spread_bps * weight_ms;
        self.imbalance_weighted += quote.imbalance * weight_ms;
    }
}

/// Per-symbol order-flow accumulator over a few exchange minutes; fixed size.
#[derive(Clone, Debug, Default)]
pub struct FlowAccumulator {
    buckets: [Bucket; BUCKETS],
    carried: Option<Quote>,
    closed_through: Option<i64>,
    late: u64,
}

impl FlowAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket for `time_ms`, reset if it held an older minute; `None` for a minute
    /// older than one already being accumulated in its slot (too late to count).
    fn bucket(&mut self, time_ms: i64) -> Option<&mut Bucket> {
        let minute = time_ms.div_euclid(MINUTE_MS);
        if self.closed_through.is_some_and(|closed| minute <= closed) {
            self.late += 1;
            return None;
        }
        let b = &mut self.buckets[minute.rem_euclid(BUCKETS as i64) as usize];
        if !b.used || b.minute < minute {
            *b = Bucket { minute, used: true, ..Bucket::default() };
        } else if b.minute > minute {
            self.late += 1;
            return None;
        }
        Some(b)
    }

    /// Adds a trade (aggTrade or raw trade) at exchange time `time_ms`.
    pub fn on_trade(&mut self, time_ms: i64, price: f64, qty: f64, buyer_is_maker: bool) {
        let Some(b) = self.bucket(time_ms) else { return };
        b.trades += 1;
        b.notional += price * qty;
        if buyer_is_maker {
            b.sell += qty;
        } else {
            b.buy += qty;
        }
    }

    /// Adds a top-of-book quote at exchange time `time_ms`.
    pub fn on_quote(&mut self, time_ms: i64, bid: f64, bid_qty: f64, ask: f64, ask_qty: f64) {
        let mid = (bid + ask) / 2.0;
        let spread_bps = if mid > 0.0 { ((ask - bid) / mid * 1e4).max(0.0) } else { 0.0 };
        let depth = bid_qty + ask_qty;
        let imbalance = if depth > 0.0 { ((bid_qty - ask_qty) / depth).clamp(-1.0, 1.0) } else { 0.0 };
        if !(spread_bps.is_finite() && imbalance.is_finite()) {
            return;
        }
        let quote = Quote { time_ms, spread_bps, imbalance };
        let Some(b) = self.bucket(time_ms) else { return };
        if b.quotes == 0 {
            b.first_quote = quote;
        } else {
            let previous = b.last_quote;
            b.add_weighted(previous, (time_ms - previous.time_ms).max(0) as f64);
        }
        b.quotes += 1;
        b.spread_sum += spread_bps;
        b.imbalance_sum += imbalance;
        b.last_quote = quote;
    }

    /// Takes the flow of the minute opening at `open_time_ms` (the bar just closed) and
    /// forgets it.
    pub fn close_minute(&mut self, open_time_ms: i64) -> OrderFlow {
        let minute = open_time_ms.div_euclid(MINUTE_MS);
        let slot = minute.rem_euclid(BUCKETS as i64) as usize;
        let mut b = self.buckets[slot];
        if !b.used || b.minute != minute {
            b = Bucket { minute, used: true, ..Bucket::default() };
        }
        self.buckets[slot].used = false;
        self.closed_through = self.closed_through.max(Some(minute));
        let mut flow = OrderFlow { trades: Some(b.trades), ..OrderFlow::default() };
        let volume = b.buy + b.sell;
        if volume > 0.0 {
            flow.taker = Some((b.buy, b.sell));
            flow.vwap = Some(b.notional / volume);
        }
        let (spread, imbalance) = self.quote_means(&mut b, open_time_ms);
        flow.spread_bps = spread;
        flow.book_imbalance = imbalance;
        flow
    }

    /// Time-weighted means over the minute: the quote carried in from before weighs from the
    /// minute's start to the first update; each update weighs until the next or the end.
    fn quote_means(&mut self, b: &mut Bucket, start_ms: i64) -> (Option<f64>, Option<f64>) {
        let end_ms = start_ms + MINUTE_MS;
        if b.quotes == 0 {
            return match self.carried {
                Some(q) => (Some(q.spread_bps), Some(q.imbalance)),
                None => (None, None),
            };
        }
        if let Some(carried) = self.carried {
            b.add_weighted(carried, (b.first_quote.time_ms - start_ms).max(0) as f64);
        }
        let last = b.last_quote;
        b.add_weighted(last, (end_ms - last.time_ms).max(0) as f64);
        self.carried = Some(last);
        if b.weight_ms > 0.0 {
            (
                Some(b.spread_weighted / b.weight_ms),
                Some((b.imbalance_weighted / b.weight_ms).clamp(-1.0, 1.0)),
            )
        } else {
            let n = b.quotes as f64;
            (Some(b.spread_sum / n), Some((b.imbalance_sum / n).clamp(-1.0, 1.0)))
        }
    }

    /// Events that arrived after their minute had closed.
    pub fn late_events(&self) -> u64 {
        self.late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_are_bucketed_by_exchange_minute() {
        let mut f = FlowAccumulator::new();
        f.on_trade(1_000, 10.0, 1.0, false);
        f.on_trade(61_000, 20.0, 5.0, true); // next minute, arrives first
        f.on_trade(2_000, 12.0, 1.0, true);
        let m0 = f.close_minute(0);
        assert_eq!(m0.trades, Some(2));
        assert_eq!(m0.taker, Some((1.0, 1.0)));
        assert_eq!(m0.vwap, Some(11.0));
        let m1 = f.close_minute(60_000);
        assert_eq!(m1.taker, Some((0.0, 5.0)));
        let m2 = f.close_minute(120_000);
        assert_eq!((m2.trades, m2.taker, m2.vwap), (Some(0), None, None));
        f.on_trade(1_000, 10.0, 1.0, false);
        assert_eq!(f.late_events(), 1);
    }

    #[test]
    fn quotes_are_time_weighted_and_carried_over() {
        let mut f = FlowAccumulator::new();
        // spread 2 bps for 15 s, then 4 bps for the remaining 45 s
        f.on_quote(0, 99.99, 3.0, 100.01, 1.0);
        f.on_quote(15_000, 99.98, 1.0, 100.02, 1.0);
        let m0 = f.close_minute(0);
        let spread = m0.spread_bps.unwrap();
        assert!((spread - (2.0 * 0.25 + 4.0 * 0.75)).abs() < 1e-9, "{spread}");
        assert!((m0.book_imbalance.unwrap() - 0.5 * 0.25).abs() < 1e-12);
        // nothing in the next minute: the last quote held all along
        let m1 = f.close_minute(60_000);
        assert!((m1.spread_bps.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(m1.book_imbalance, Some(0.0));
    }

    #[test]
    fn a_minute_without_quotes_or_history_is_none() {
        let mut f = FlowAccumulator::new();
        let m = f.close_minute(0);
        assert_eq!((m.spread_bps, m.book_imbalance), (None, None));
    }
}
