//! Live subscriptions (SPEC §3, §9): what the control plane asks a shard to add or drop,
//! and the stream lists and SUBSCRIBE/UNSUBSCRIBE messages that carry it out. A shard keeps
//! each connection's URL in step with its live subscriptions, so a reconnect asks for
//! exactly what the connection carried.

use super::endpoint::EndpointSpec;
use aegis_wire::stream::{tier_of, Tier, MAX_STREAMS_PER_CONNECTION};
use aegis_wire::SymbolId;

/// What the control plane asks a shard (`id` is the request id the exchange echoes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardCommand {
    /// Start delivering a symbol's streams.
    Subscribe {
        /// The symbol.
        symbol: SymbolId,
        /// Request id.
        id: u64,
    },
    /// Stop delivering a symbol's streams.
    Unsubscribe {
        /// The symbol.
        symbol: SymbolId,
        /// Request id.
        id: u64,
    },
}

/// The separator between a connection path's prefix and its stream list.
const STREAMS: &str = "streams=";

/// The streams a combined-stream path carries (`/stream?streams=a/b` → `[a, b]`).
pub fn path_streams(path: &str) -> Vec<&str> {
    path.split_once(STREAMS)
        .map_or(Vec::new(), |(_, list)| list.split('/').filter(|s| !s.is_empty()).collect())
}

/// `path` with its stream list replaced by `streams`.
pub fn with_streams(path: &str, streams: &[String]) -> String {
    let prefix = path.split_once(STREAMS).map_or(path, |(p, _)| p);
    let prefix = if path.contains(STREAMS) { prefix.to_string() } else { format!("{prefix}/stream?") };
    format!("{prefix}{STREAMS}{}", streams.join("/"))
}

/// A symbol's stream names on a connection of `tier` (`Unrouted`: every channel).
pub fn symbol_streams(lower_symbol: &str, channels: &[String], tier: Tier) -> Vec<String> {
    channels
        .iter()
        .filter(|c| {
            tier == Tier::Unrouted
                || aegis_wire::stream::classify_channel(c.as_bytes())
                    .is_some_and(|(kind, _)| tier_of(kind) == tier)
        })
        .map(|c| format!("{lower_symbol}@{c}"))
        .collect()
}

/// Whether a connection of `tier` can take `more` streams.
pub fn has_room(spec: &EndpointSpec, tier: Tier, more: usize) -> bool {
    spec.tier == tier && path_streams(&spec.path).len() + more <= MAX_STREAMS_PER_CONNECTION
}

/// Adds `symbol`'s stream `names` to a connection's URL and symbol list.
pub fn add_streams(spec: &mut EndpointSpec, symbol: SymbolId, names: &[String]) {
    let mut streams: Vec<String> = path_streams(&spec.path).into_iter().map(str::to_string).collect();
    for name in names {
        if !streams.contains(name) {
            streams.push(name.clone());
        }
    }
    spec.path = with_streams(&spec.path, &streams);
    if !spec.symbols.contains(&symbol) {
        spec.symbols.push(symbol);
    }
}

/// Removes `symbol`'s stream `names` from a connection's URL and symbol list; returns how
/// many streams it still carries.
pub fn remove_streams(spec: &mut EndpointSpec, symbol: SymbolId, names: &[String]) -> usize {
    let kept: Vec<String> = path_streams(&spec.path)
        .into_iter()
        .filter(|s| !names.iter().any(|n| n == s))
        .map(str::to_string)
        .collect();
    spec.path = with_streams(&spec.path, &kept);
    spec.symbols.retain(|s| *s != symbol);
    kept.len()
}

/// The exchange request: `{"method":"SUBSCRIBE","params":[…],"id":n}`.
pub fn request(method: &str, streams: &[String], id: u64) -> String {
    let params: Vec<String> = streams.iter().map(|s| format!("\"{s}\"")).collect();
    format!("{{\"method\":\"{method}\",\"params\":[{}],\"id\":{id}}}", params.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lists_round_trip_through_paths() {
        let path = "/market/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m";
        assert_eq!(path_streams(path), vec!["btcusdt@aggTrade", "btcusdt@kline_1m"]);
        let more = with_streams(path, &["ethusdt@aggTrade".into()]);
        assert_eq!(more, "/market/stream?streams=ethusdt@aggTrade");
        assert_eq!(with_streams("/public", &["a@trade".into()]), "/public/stream?streams=a@trade");
        assert!(path_streams("/stream?streams=").is_empty());
    }

    #[test]
    fn a_symbols_streams_follow_the_connections_tier() {
        let channels: Vec<String> =
            ["aggTrade", "bookTicker", "kline_1m"].iter().map(|s| s.to_string()).collect();
        assert_eq!(symbol_streams("btcusdt", &channels, Tier::Unrouted).len(), 3);
        assert_eq!(symbol_streams("btcusdt", &channels, Tier::Public), vec!["btcusdt@bookTicker"]);
        assert_eq!(
            symbol_streams("btcusdt", &channels, Tier::Market),
            vec!["btcusdt@aggTrade", "btcusdt@kline_1m"]
        );
        assert_eq!(
            request("SUBSCRIBE", &["a@trade".into(), "b@trade".into()], 7),
            r#"{"method":"SUBSCRIBE","params":["a@trade","b@trade"],"id":7}"#
        );
    }
}
