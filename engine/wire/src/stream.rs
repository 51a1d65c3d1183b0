//! Binance stream names (`<symbol>@<channel>`), their event kinds and endpoint tiers, and
//! the exchange's connection and request-weight rules.
//!
//! Binance routes USDⓈ-M streams by path: `/public` carries trade, bookTicker and depth;
//! `/market` carries aggTrade, kline, markPrice and forceOrder; the old unrouted paths carry
//! everything (recorded captures used them).

use crate::record::{EventKind, Interval};

/// Most streams one connection may hold.
pub const MAX_STREAMS_PER_CONNECTION: usize = 200;

/// Binance's request weight for `/fapi/v1/aggTrades` (any limit).
pub const AGG_TRADES_WEIGHT: u32 = 20;

/// Binance's request weight for `/fapi/v1/klines` at `limit`.
pub fn klines_weight(limit: usize) -> u32 {
    match limit {
        0..100 => 1,
        100..500 => 2,
        500..=1000 => 5,
        _ => 10,
    }
}

/// Binance's request weight for `/fapi/v1/depth` at `limit`.
pub fn depth_weight(limit: usize) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// Which endpoint path a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `/public/...`.
    Public,
    /// `/market/...`.
    Market,
    /// The old `/ws` and `/stream` paths: every stream.
    Unrouted,
}

impl Tier {
    /// Whether a stream of `kind` is served on this tier.
    pub fn serves(self, kind: EventKind) -> bool {
        match self {
            Tier::Unrouted => true,
            Tier::Public => tier_of(kind) == Tier::Public,
            Tier::Market => tier_of(kind) == Tier::Market,
        }
    }

    /// The path prefix of the tier.
    pub fn prefix(self) -> &'static str {
        match self {
            Tier::Public => "/public",
            Tier::Market => "/market",
            Tier::Unrouted => "",
        }
    }
}

/// The tier Binance routes `kind` to.
pub fn tier_of(kind: EventKind) -> Tier {
    match kind {
        EventKind::Trade | EventKind::BookTicker | EventKind::DepthUpdate => Tier::Public,
        EventKind::AggTrade | EventKind::Kline | EventKind::MarkPriceUpdate | EventKind::ForceOrder => {
            Tier::Market
        }
    }
}

/// A stream name split into symbol and channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamName<'a> {
    /// Lowercase symbol part.
    pub symbol: &'a str,
    /// Channel after the first `@` (`aggTrade`, `depth@100ms`, `kline_1m`, …).
    pub channel: &'a str,
    /// The event kind the channel carries.
    pub kind: EventKind,
}

/// True for partial-book channels (`depth5`, `depth10`, `depth20`, with or without a speed).
pub fn is_partial_depth(channel: &str) -> bool {
    classify_channel(channel.as_bytes()).is_some_and(|(_, partial)| partial)
}

/// Splits and classifies a stream name; `None` when it is not a known Binance channel.
pub fn parse_stream(name: &str) -> Option<StreamName<'_>> {
    let (symbol, channel) = name.split_once('@')?;
    if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some(StreamName { symbol, channel, kind: channel_kind(channel)? })
}

/// The event kind a channel carries.
pub fn channel_kind(channel: &str) -> Option<EventKind> {
    classify_channel(channel.as_bytes()).map(|(kind, _)| kind)
}

/// The event kind a channel carries and whether it is a partial book, from raw bytes
/// (no UTF-8 check, no allocation: it runs once per message on the hot path).
pub fn classify_channel(channel: &[u8]) -> Option<(EventKind, bool)> {
    let (base, speed) = match channel.iter().position(|&b| b == b'@') {
        Some(at) => (&channel[..at], Some(&channel[at + 1..])),
        None => (channel, None),
    };
    let depth_speed_ok = speed.is_none_or(|s| matches!(s, b"0ms" | b"100ms" | b"250ms" | b"500ms"));
    match (base, speed) {
        (b"aggTrade", None) => Some((EventKind::AggTrade, false)),
        (b"trade", None) => Some((EventKind::Trade, false)),
        (b"bookTicker", None) => Some((EventKind::BookTicker, false)),
        (b"forceOrder", None) => Some((EventKind::ForceOrder, false)),
        (b"markPrice", None | Some(b"1s")) => Some((EventKind::MarkPriceUpdate, false)),
        (b"depth", _) if depth_speed_ok => Some((EventKind::DepthUpdate, false)),
        (b"depth5" | b"depth10" | b"depth20", _) if depth_speed_ok => Some((EventKind::DepthUpdate, true)),
        (k, None) if k.starts_with(b"kline_") => Interval::parse(&k[6..]).map(|_| (EventKind::Kline, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_channel() {
        let cases = [
            ("btcusdt@trade", Some(EventKind::Trade)),
            ("btcusdt@aggTrade", Some(EventKind::AggTrade)),
            ("btcusdt@kline_1m", Some(EventKind::Kline)),
            ("btcusdt@kline_1M", Some(EventKind::Kline)),
            ("btcusdt@bookTicker", Some(EventKind::BookTicker)),
            ("btcusdt@depth", Some(EventKind::DepthUpdate)),
            ("btcusdt@depth@100ms", Some(EventKind::DepthUpdate)),
            ("ethusdt@depth@0ms", Some(EventKind::DepthUpdate)),
            ("btcusdt@depth20@100ms", Some(EventKind::DepthUpdate)),
            ("btcusdt@markPrice@1s", Some(EventKind::MarkPriceUpdate)),
            ("btcusdt@forceOrder", Some(EventKind::ForceOrder)),
            ("ethusd_perp@trade", Some(EventKind::Trade)),
            ("btcusdt@kline_2m", None),
            ("btcusdt@depth@1ms", None),
            ("btcusdt@ticker", None),
            ("btc/usdt@trade", None),
            ("@trade", None),
            ("btcusdt", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_stream(name).map(|s| s.kind), want, "{name}");
        }
    }

    #[test]
    fn partial_depth_is_told_apart() {
        assert!(is_partial_depth("depth20@100ms") && is_partial_depth("depth5"));
        assert!(!is_partial_depth("depth@100ms") && !is_partial_depth("depth"));
    }

    #[test]
    fn tiers_route_like_binance() {
        assert!(Tier::Public.serves(EventKind::DepthUpdate));
        assert!(!Tier::Public.serves(EventKind::Kline));
        assert!(Tier::Market.serves(EventKind::AggTrade));
        assert!(!Tier::Market.serves(EventKind::BookTicker));
        assert!(Tier::Unrouted.serves(EventKind::ForceOrder));
    }
}
