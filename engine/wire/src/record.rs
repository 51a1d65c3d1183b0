//! Fixed-size market records: one per exchange event, archived with rkyv.
//!
//! Every event kind of the spec (trade, aggTrade, kline, bookTicker, diff and partial depth,
//! markPrice, forceOrder) becomes one [`Record`]: a common [`Header`] plus an [`Event`]. The
//! archived form has one size for every kind, so a record fits a fixed ring slot or a fixed
//! file slot and is read in place (see `slot`).
//!
//! Depth is carried as **bounded inline levels**: a [`DepthChunk`] holds up to
//! [`DEPTH_LEVELS_PER_CHUNK`] levels, bids first then asks. An update with more levels is
//! split into several chunks sharing the same update ids, numbered by `part`, the final one
//! with `last = true`; a consumer applies an update once its last chunk arrived. This keeps
//! the slot small (a trade does not pay for 40 levels) while no update is ever truncated.
//!
//! All prices and quantities are fixed point with 8 fractional digits (`decimal`).

use crate::symbol::SymbolId;
use rkyv::{Archive, Deserialize, Serialize};

/// Levels carried inline by one depth chunk.
pub const DEPTH_LEVELS_PER_CHUNK: usize = 8;

/// Which side of the book, or which side the taker was on.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug, Clone, Copy, PartialEq, Eq))]
#[repr(u8)]
pub enum Side {
    /// Bid / buy.
    Buy,
    /// Ask / sell.
    Sell,
}

/// Kline intervals Binance offers.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[rkyv(compare(PartialEq), derive(Debug, Clone, Copy, PartialEq, Eq))]
#[repr(u8)]
pub enum Interval {
    /// 1 minute.
    M1,
    /// 3 minutes.
    M3,
    /// 5 minutes.
    M5,
    /// 15 minutes.
    M15,
    /// 30 minutes.
    M30,
    /// 1 hour.
    H1,
    /// 2 hours.
    H2,
    /// 4 hours.
    H4,
    /// 6 hours.
    H6,
    /// 8 hours.
    H8,
    /// 12 hours.
    H12,
    /// 1 day.
    D1,
    /// 3 days.
    D3,
    /// 1 week.
    W1,
    /// 1 month (calendar).
    Mo1,
}

const INTERVALS: [(Interval, &str, i64); 15] = [
    (Interval::M1, "1m", 60_000),
    (Interval::M3, "3m", 180_000),
    (Interval::M5, "5m", 300_000),
    (Interval::M15, "15m", 900_000),
    (Interval::M30, "30m", 1_800_000),
    (Interval::H1, "1h", 3_600_000),
    (Interval::H2, "2h", 7_200_000),
    (Interval::H4, "4h", 14_400_000),
    (Interval::H6, "6h", 21_600_000),
    (Interval::H8, "8h", 28_800_000),
    (Interval::H12, "12h", 43_200_000),
    (Interval::D1, "1d", 86_400_000),
    (Interval::D3, "3d", 259_200_000),
    (Interval::W1, "1w", 604_800_000),
    (Interval::Mo1, "1M", 2_592_000_000),
];

impl Interval {
    /// Parses Binance's interval code (`1m`, `1h`, `1M`, …).
    pub fn parse(code: &[u8]) -> Option<Self> {
        INTERVALS.iter().find(|(_, c, _)| c.as_bytes() == code).map(|(i, _, _)| *i)
    }

    /// Binance's code for the interval.
    pub fn code(self) -> &'static str {
        INTERVALS[self as usize].1
    }

    /// Length in milliseconds (a month counts 30 days; bucket months by calendar instead).
    pub fn millis(self) -> i64 {
        INTERVALS[self as usize].2
    }
}

/// What every record carries, whatever its kind.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Header {
    /// Interned symbol.
    pub symbol: SymbolId,
    /// Exchange event time `E`, ms since the epoch (0 when the payload has none).
    pub event_time_ms: i64,
    /// Local receive time, ns on the monotonic clock.
    pub recv_ns: u64,
}

/// A raw trade (`<symbol>@trade`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Trade {
    /// Trade id `t`.
    pub trade_id: u64,
    /// Price `p`.
    pub price: i64,
    /// Quantity `q`.
    pub qty: i64,
    /// Trade time `T`, ms.
    pub trade_time_ms: i64,
    /// `m`: the buyer was the maker, so the taker sold.
    pub buyer_is_maker: bool,
}

/// An aggregated trade (`<symbol>@aggTrade`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct AggTrade {
    /// Aggregate trade id `a`.
    pub agg_id: u64,
    /// Price `p`.
    pub price: i64,
    /// Quantity `q`.
    pub qty: i64,
    /// First trade id `f`.
    pub first_trade_id: u64,
    /// Last trade id `l`.
    pub last_trade_id: u64,
    /// Trade time `T`, ms.
    pub trade_time_ms: i64,
    /// `m`: the buyer was the maker.
    pub buyer_is_maker: bool,
}

/// A kline update or a closed kline (`<symbol>@kline_<interval>`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Kline {
    /// Interval `i`.
    pub interval: Interval,
    /// Open time `t`, ms.
    pub open_time_ms: i64,
    /// Close time `T`, ms.
    pub close_time_ms: i64,
    /// First trade id `f` (-1 when none).
    pub first_trade_id: i64,
    /// Last trade id `L` (-1 when none).
    pub last_trade_id: i64,
    /// Open `o`.
    pub open: i64,
    /// High `h`.
    pub high: i64,
    /// Low `l`.
    pub low: i64,
    /// Close `c`.
    pub close: i64,
    /// Base volume `v`.
    pub volume: i128,
    /// Quote volume `q`.
    pub quote_volume: i128,
    /// Taker-buy base volume `V`.
    pub taker_buy_volume: i128,
    /// Taker-buy quote volume `Q`.
    pub taker_buy_quote_volume: i128,
    /// Number of trades `n`.
    pub trades: u64,
    /// `x`: the kline is closed.
    pub closed: bool,
}

/// Best bid and ask (`<symbol>@bookTicker`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct BookTicker {
    /// Order book update id `u`.
    pub update_id: u64,
    /// Best bid price `b`.
    pub bid_price: i64,
    /// Best bid quantity `B`.
    pub bid_qty: i64,
    /// Best ask price `a`.
    pub ask_price: i64,
    /// Best ask quantity `A`.
    pub ask_qty: i64,
    /// Transaction time `T`, ms (0 on spot, which sends none).
    pub transaction_time_ms: i64,
}

/// One price level; quantity 0 deletes the level in a diff.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Level {
    /// Price.
    pub price: i64,
    /// Quantity.
    pub qty: i64,
}

/// One chunk of a depth update (diff `depth@…` or partial `depth<N>@…`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct DepthChunk {
    /// First update id `U`.
    pub first_update_id: u64,
    /// Final update id `u`.
    pub final_update_id: u64,
    /// Previous final update id `pu` (-1 when the payload has none, as on spot).
    pub prev_final_update_id: i64,
    /// Transaction time `T`, ms (0 when absent).
    pub transaction_time_ms: i64,
    /// True for a partial-book stream (the levels replace the book's top).
    pub partial: bool,
    /// True for a REST snapshot (the levels replace the whole book; `final_update_id` is its
    /// `lastUpdateId`).
    pub snapshot: bool,
    /// Index of this chunk within its update, from 0.
    pub part: u16,
    /// True on the update's final chunk.
    pub last: bool,
    /// Number of bid levels at the front of `levels`.
    pub bid_count: u8,
    /// Number of ask levels following the bids.
    pub ask_count: u8,
    /// Bids then asks; entries past `bid_count + ask_count` are zero.
    pub levels: [Level; DEPTH_LEVELS_PER_CHUNK],
}

impl DepthChunk {
    /// A chunk with every field zero and no levels (a template to fill).
    pub const EMPTY: DepthChunk = DepthChunk {
        first_update_id: 0,
        final_update_id: 0,
        prev_final_update_id: 0,
        transaction_time_ms: 0,
        partial: false,
        snapshot: false,
        part: 0,
        last: false,
        bid_count: 0,
        ask_count: 0,
        levels: [Level { price: 0, qty: 0 }; DEPTH_LEVELS_PER_CHUNK],
    };
}

/// Mark price, index price and funding (`<symbol>@markPrice@1s`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct MarkPrice {
    /// Mark price `p`.
    pub mark_price: i64,
    /// Index price `i`.
    pub index_price: i64,
    /// Estimated settle price `P`.
    pub estimated_settle_price: i64,
    /// Funding rate `r` (fixed point: 0.0001 = 10,000).
    pub funding_rate: i64,
    /// Next funding time `T`, ms.
    pub next_funding_time_ms: i64,
}

/// A liquidation order (`<symbol>@forceOrder`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct ForceOrder {
    /// Side `S` of the liquidation order.
    pub side: Side,
    /// Order price `p`.
    pub price: i64,
    /// Average fill price `ap`.
    pub avg_price: i64,
    /// Original quantity `q`.
    pub orig_qty: i64,
    /// Last filled quantity `l`.
    pub last_filled_qty: i64,
    /// Accumulated filled quantity `z`.
    pub filled_qty: i64,
    /// Order trade time `T`, ms.
    pub trade_time_ms: i64,
}

/// What a control notice about a symbol says.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug, Clone, Copy, PartialEq, Eq))]
#[repr(u8)]
pub enum ResyncReason {
    /// The connection carrying the symbol was (re)established: events may be missing.
    Reconnect,
    /// The shard dropped events of the symbol on a full ring.
    RingDrop,
    /// A requested REST gap fill for the symbol has been delivered in full.
    GapFilled,
    /// A requested REST fill of missing aggTrades has been delivered (as far as the
    /// exchange still had them).
    TradesFilled,
}

/// A control notice about one symbol (resync needed, or a gap fill complete).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Resync {
    /// Why.
    pub reason: ResyncReason,
}

/// The event a record carries.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub enum Event {
    /// `trade`.
    Trade(Trade),
    /// `aggTrade`.
    AggTrade(AggTrade),
    /// `kline`.
    Kline(Kline),
    /// `bookTicker`.
    BookTicker(BookTicker),
    /// `depthUpdate` (diff or partial).
    Depth(DepthChunk),
    /// `markPriceUpdate`.
    MarkPrice(MarkPrice),
    /// `forceOrder`.
    ForceOrder(ForceOrder),
    /// Not an exchange event: the symbol must be re-synchronised.
    Resync(Resync),
}

/// One market event, as handed from a shard to the brain.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(compare(PartialEq), derive(Debug))]
pub struct Record {
    /// Symbol and timestamps.
    pub header: Header,
    /// The event itself.
    pub event: Event,
}

/// Event kinds, named as Binance's `e` field names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `trade`.
    Trade,
    /// `aggTrade`.
    AggTrade,
    /// `kline`.
    Kline,
    /// `bookTicker`.
    BookTicker,
    /// `depthUpdate`.
    DepthUpdate,
    /// `markPriceUpdate`.
    MarkPriceUpdate,
    /// `forceOrder`.
    ForceOrder,
}

impl EventKind {
    /// Every kind, in a stable order.
    pub const ALL: [EventKind; 7] = [
        EventKind::Trade,
        EventKind::AggTrade,
        EventKind::Kline,
        EventKind::BookTicker,
        EventKind::DepthUpdate,
        EventKind::MarkPriceUpdate,
        EventKind::ForceOrder,
    ];

    /// Position in [`EventKind::ALL`] (per-kind counters are indexed by it).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Binance's event type name (`e`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Trade => "trade",
            EventKind::AggTrade => "aggTrade",
            EventKind::Kline => "kline",
            EventKind::BookTicker => "bookTicker",
            EventKind::DepthUpdate => "depthUpdate",
            EventKind::MarkPriceUpdate => "markPriceUpdate",
            EventKind::ForceOrder => "forceOrder",
        }
    }
}

/// What identifies an event across reconnects and rebalances (spec §3): two ids whose
/// meaning depends on the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventIdentity {
    /// The kind.
    pub kind: EventKind,
    /// The symbol.
    pub symbol: SymbolId,
    /// Primary id: trade id, agg id, final update id, kline open time, event time.
    pub primary: i64,
    /// Secondary id: kline event time, liquidation trade time, depth chunk part; else 0.
    pub secondary: i64,
}

impl ArchivedEvent {
    /// The exchange event kind, or `None` for a resync notice.
    pub fn kind(&self) -> Option<EventKind> {
        Some(match self {
            ArchivedEvent::Trade(_) => EventKind::Trade,
            ArchivedEvent::AggTrade(_) => EventKind::AggTrade,
            ArchivedEvent::Kline(_) => EventKind::Kline,
            ArchivedEvent::BookTicker(_) => EventKind::BookTicker,
            ArchivedEvent::Depth(_) => EventKind::DepthUpdate,
            ArchivedEvent::MarkPrice(_) => EventKind::MarkPriceUpdate,
            ArchivedEvent::ForceOrder(_) => EventKind::ForceOrder,
            ArchivedEvent::Resync(_) => return None,
        })
    }
}

impl Event {
    /// The exchange event kind, or `None` for a resync notice.
    pub fn kind(&self) -> Option<EventKind> {
        Some(match self {
            Event::Trade(_) => EventKind::Trade,
            Event::AggTrade(_) => EventKind::AggTrade,
            Event::Kline(_) => EventKind::Kline,
            Event::BookTicker(_) => EventKind::BookTicker,
            Event::Depth(_) => EventKind::DepthUpdate,
            Event::MarkPrice(_) => EventKind::MarkPriceUpdate,
            Event::ForceOrder(_) => EventKind::ForceOrder,
            Event::Resync(_) => return None,
        })
    }
}

impl ArchivedRecord {
    /// The de-duplication identity of this event (spec §3); `None` for a resync notice.
    pub fn identity(&self) -> Option<EventIdentity> {
        let event_time = self.header.event_time_ms.to_native();
        let (primary, secondary) = match &self.event {
            ArchivedEvent::Trade(t) => (t.trade_id.to_native() as i64, 0),
            ArchivedEvent::AggTrade(a) => (a.agg_id.to_native() as i64, 0),
            ArchivedEvent::Kline(k) => (k.open_time_ms.to_native(), event_time),
            ArchivedEvent::BookTicker(b) => (b.update_id.to_native() as i64, 0),
            ArchivedEvent::Depth(d) => (d.final_update_id.to_native() as i64, i64::from(d.part.to_native())),
            ArchivedEvent::MarkPrice(_) => (event_time, 0),
            ArchivedEvent::ForceOrder(f) => (event_time, f.trade_time_ms.to_native()),
            ArchivedEvent::Resync(_) => return None,
        };
        Some(EventIdentity {
            kind: self.event.kind()?,
            symbol: SymbolId(self.header.symbol.0.to_native()),
            primary,
            secondary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_codes_round_trip() {
        for (interval, code, millis) in INTERVALS {
            assert_eq!(Interval::parse(code.as_bytes()), Some(interval));
            assert_eq!(interval.code(), code);
            assert_eq!(interval.millis(), millis);
        }
        assert_eq!(Interval::parse(b"2m"), None);
    }
}
