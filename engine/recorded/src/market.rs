//! What a market source hands the server: timed messages, symbol metadata, bars, books.
//!
//! Both sources (replay, synthetic) implement [`Source`]; the feeder paces their batches and
//! the REST endpoints read their state, so streams and REST always agree.

use aegis_wire::decimal::format_fixed8;
use aegis_wire::EventKind;
use std::sync::Arc;

/// One message as it goes on the wire.
#[derive(Clone, Debug)]
pub struct Msg {
    /// The stream name the message belongs to (as a subscriber names it).
    pub stream: Arc<str>,
    /// The event kind (from the stream name).
    pub kind: EventKind,
    /// Uppercase symbol.
    pub symbol: Arc<str>,
    /// The combined-stream envelope `{"stream":…,"data":…}`, byte-exact for replays.
    pub envelope: String,
    /// Byte range of the `data` payload inside `envelope`.
    pub data: std::ops::Range<usize>,
    /// True for a closed kline (`"x":true`): the missing-kline fault picks these.
    pub closed_kline: bool,
}

impl Msg {
    /// Builds a message from a stream name and its payload.
    pub fn new(stream: Arc<str>, kind: EventKind, symbol: Arc<str>, data: &str) -> Self {
        let mut envelope = String::with_capacity(stream.len() + data.len() + 22);
        envelope.push_str("{\"stream\":\"");
        envelope.push_str(&stream);
        envelope.push_str("\",\"data\":");
        let start = envelope.len();
        envelope.push_str(data);
        let end = envelope.len();
        envelope.push('}');
        let closed_kline = kind == EventKind::Kline && data.contains("\"x\":true");
        Self { stream, kind, symbol, envelope, data: start..end, closed_kline }
    }

    /// A copy cut in half: malformed JSON (the malformed-message fault).
    pub fn malformed(&self) -> Msg {
        let mut cut = self.envelope.len() / 2;
        while !self.envelope.is_char_boundary(cut) {
            cut -= 1;
        }
        Msg {
            stream: self.stream.clone(),
            kind: self.kind,
            symbol: self.symbol.clone(),
            envelope: self.envelope[..cut].to_string(),
            data: self.data.start.min(cut)..self.data.end.min(cut),
            closed_kline: false,
        }
    }

    /// The payload alone (what a raw `/ws/<name>` connection receives).
    pub fn payload(&self) -> &str {
        &self.envelope[self.data.clone()]
    }
}

/// Messages that share one source timestamp.
pub struct Batch {
    /// Source time of the batch, ns (recorded receive time or simulated time).
    pub time_ns: u64,
    /// The messages, in order.
    pub msgs: Vec<Msg>,
}

/// Exchange filters and brackets for one symbol (what exchangeInfo reports).
#[derive(Clone, Debug)]
pub struct SymbolInfo {
    /// Uppercase symbol.
    pub symbol: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price decimals.
    pub price_precision: u32,
    /// Quantity decimals.
    pub qty_precision: u32,
    /// Tick size, fixed point.
    pub tick_size: i64,
    /// Step size, fixed point.
    pub step_size: i64,
    /// Minimum notional, fixed point.
    pub min_notional: i64,
    /// Maximum leverage of the first bracket.
    pub max_leverage: u32,
}

/// A 1-minute (or rolled-up) bar, fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Open time, ms.
    pub open_time_ms: i64,
    /// Interval length, ms.
    pub interval_ms: i64,
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
    /// Quote volume.
    pub quote_volume: i128,
    /// Taker-buy base volume.
    pub taker_buy_volume: i128,
    /// Taker-buy quote volume.
    pub taker_buy_quote_volume: i128,
    /// Trade count.
    pub trades: u64,
    /// First trade id (-1 when none).
    pub first_trade_id: i64,
    /// Last trade id (-1 when none).
    pub last_trade_id: i64,
}

impl Bar {
    /// Close time, ms (inclusive, as Binance reports it).
    pub fn close_time_ms(&self) -> i64 {
        self.open_time_ms + self.interval_ms - 1
    }

    /// Writes the bar as one row of Binance's REST klines array.
    pub fn write_rest_row(&self, info: &SymbolInfo, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "[{},", self.open_time_ms);
        for price in [self.open, self.high, self.low, self.close] {
            push_quoted(out, i128::from(price), info.price_precision);
            out.push(',');
        }
        push_quoted(out, self.volume, info.qty_precision);
        let _ = write!(out, ",{},", self.close_time_ms());
        push_quoted(out, self.quote_volume, 8);
        let _ = write!(out, ",{},", self.trades);
        push_quoted(out, self.taker_buy_volume, info.qty_precision);
        out.push(',');
        push_quoted(out, self.taker_buy_quote_volume, 8);
        out.push_str(",\"0\"]");
    }
}

/// Appends `"value"` with `decimals` digits.
pub fn push_quoted(out: &mut String, value: i128, decimals: u32) {
    out.push('"');
    format_fixed8(value, decimals, out);
    out.push('"');
}

/// Rolls consecutive bars up into bars of `interval_ms`, bucketed by open time; buckets start
/// at multiples of the interval plus `offset_ms` (weeks start on a Monday, not the epoch's
/// Thursday).
pub fn roll_up(bars: &[Bar], interval_ms: i64, offset_ms: i64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    for bar in bars {
        let bucket = bar.open_time_ms - (bar.open_time_ms - offset_ms).rem_euclid(interval_ms);
        match out.last_mut() {
            Some(last) if last.open_time_ms == bucket => {
                last.high = last.high.max(bar.high);
                last.low = last.low.min(bar.low);
                last.close = bar.close;
                last.volume += bar.volume;
                last.quote_volume += bar.quote_volume;
                last.taker_buy_volume += bar.taker_buy_volume;
                last.taker_buy_quote_volume += bar.taker_buy_quote_volume;
                last.trades += bar.trades;
                if bar.last_trade_id >= 0 {
                    if last.first_trade_id < 0 {
                        last.first_trade_id = bar.first_trade_id;
                    }
                    last.last_trade_id = bar.last_trade_id;
                }
            }
            _ => out.push(Bar { open_time_ms: bucket, interval_ms, ..*bar }),
        }
    }
    out
}

/// The book a market order sweeps: (price, qty) levels, best first.
pub struct Book {
    /// Bids, best (highest) first.
    pub bids: Vec<(i64, i64)>,
    /// Asks, best (lowest) first.
    pub asks: Vec<(i64, i64)>,
}

/// Why a REST query about the market could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The symbol is not served.
    #[error("Invalid symbol.")]
    UnknownSymbol,
    /// The source has no data of this kind.
    #[error("{0}")]
    Unavailable(String),
}

/// A market the server can stream and answer REST queries about.
pub trait Source: Send {
    /// The next batch of messages, or `None` when the source is exhausted.
    fn next_batch(&mut self) -> Option<Batch>;
    /// The kind of stream `name`, if a client may subscribe to it.
    fn stream_kind(&self, name: &str) -> Option<EventKind>;
    /// The stream whose messages a subscription to `name` receives, when it differs from
    /// `name` (aliases such as `@depth` for `@depth@100ms`).
    fn canonical_stream(&self, _name: &str) -> Option<Arc<str>> {
        None
    }
    /// Symbols with their filters.
    fn symbols(&self) -> Vec<SymbolInfo>;
    /// 1m bars of `symbol` known up to now (closed ones, then the open one if any).
    fn bars_1m(&self, symbol: &str) -> Result<Vec<Bar>, QueryError>;
    /// A REST depth snapshot body for `symbol` with at most `limit` levels per side.
    fn depth_snapshot(&self, symbol: &str, limit: usize) -> Result<String, QueryError>;
    /// A REST `aggTrades` body for `symbol`: up to `limit` aggTrades from agg id `from_id`
    /// (the latest ones without it), as far back as the source keeps them.
    fn agg_trades(&self, _symbol: &str, _from_id: Option<u64>, _limit: usize) -> Result<String, QueryError> {
        Err(QueryError::Unavailable("aggTrades are not kept by this source".into()))
    }
    /// The top `depth` levels of `symbol`'s book as (price, qty) fixed-point ×1e8, best
    /// first: (bids, asks). What market and crossing limit orders fill against.
    fn book(&self, _symbol: &str, _depth: usize) -> Result<Book, QueryError> {
        Err(QueryError::Unavailable("this source has no book to trade against".into()))
    }
    /// Current source time, ms.
    fn now_ms(&self) -> i64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: i64, o: i64, h: i64, l: i64, c: i64, v: i128) -> Bar {
        Bar {
            open_time_ms: t,
            interval_ms: 60_000,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
            quote_volume: v * 10,
            taker_buy_volume: v / 2,
            taker_buy_quote_volume: v * 5,
            trades: 2,
            first_trade_id: t / 60_000 * 2,
            last_trade_id: t / 60_000 * 2 + 1,
        }
    }

    #[test]
    fn rolls_up_by_bucket() {
        let bars: Vec<Bar> = (0..7).map(|i| bar(i * 60_000, 10 + i, 20 + i, 5 - i, 11 + i, 100)).collect();
        let five = roll_up(&bars, 300_000, 0);
        assert_eq!(five.len(), 2);
        assert_eq!((five[0].open, five[0].high, five[0].low, five[0].close), (10, 24, 1, 15));
        assert_eq!(five[0].volume, 500);
        assert_eq!(five[0].trades, 10);
        assert_eq!((five[0].first_trade_id, five[0].last_trade_id), (0, 9));
        assert_eq!(five[1].open_time_ms, 300_000);
        assert_eq!(five[1].close_time_ms(), 599_999);
    }

    #[test]
    fn envelope_holds_the_payload() {
        let msg = Msg::new("btcusdt@trade".into(), EventKind::Trade, "BTCUSDT".into(), "{\"e\":\"trade\"}");
        assert_eq!(msg.envelope, "{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\"}}");
        assert_eq!(msg.payload(), "{\"e\":\"trade\"}");
    }
}
