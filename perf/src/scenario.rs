//! One benchmark scenario: exchange-sim's seeded synthetic market, generated up front as the
//! exact frames both pipelines will read, plus the closed history klines the baseline warms
//! its brain with (the engine warms from exchange-sim's REST, which serves the same bars).

use exchange_sim::market::Source;
use exchange_sim::synthetic::{Synthetic, SyntheticConfig};
use std::collections::HashMap;
use std::sync::Arc;

/// What to generate.
#[derive(Clone, Debug)]
pub struct ScenarioConfig {
    /// Synthetic symbols (1…1,000).
    pub symbols: usize,
    /// Seed of the market.
    pub seed: u64,
    /// Channels per symbol (`aggTrade`, `bookTicker`, `kline_1m`, `markPrice@1s`).
    pub channels: Vec<String>,
    /// Messages to generate.
    pub events: usize,
    /// 1m bars of history before the stream (the engine's REST warm-up reads them).
    pub history_bars: usize,
}

/// The generated market.
pub struct Scenario {
    /// Uppercase symbol names, in the synthetic market's order.
    pub symbols: Vec<String>,
    /// Every subscribed stream name (`btcusdt@aggTrade`, …), symbol-major.
    pub streams: Vec<String>,
    /// The messages, in send order: (stream index, combined-stream envelope).
    pub messages: Vec<(u32, String)>,
    /// Closed history klines as combined-stream envelopes (the baseline's warm-up).
    pub history: Vec<String>,
    /// The synthetic market's settings (for the exchange-sim serving REST).
    pub market: SyntheticConfig,
}

impl Scenario {
    /// Generates the market: the first `events` messages of the chosen channels.
    pub fn generate(config: &ScenarioConfig) -> Scenario {
        let market = SyntheticConfig {
            symbols: config.symbols,
            seed: config.seed,
            history_bars: config.history_bars,
            ..SyntheticConfig::default()
        };
        let mut source = Synthetic::new(&market);
        let symbols: Vec<String> = source.symbols().into_iter().map(|s| s.symbol).collect();
        let streams: Vec<String> = symbols
            .iter()
            .flat_map(|s| config.channels.iter().map(move |c| format!("{}@{c}", s.to_ascii_lowercase())))
            .collect();
        let index: HashMap<&str, u32> =
            streams.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
        let mut messages = Vec::with_capacity(config.events);
        while messages.len() < config.events {
            let Some(batch) = source.next_batch() else { break };
            for msg in batch.msgs {
                if let Some(&i) = index.get(&*msg.stream) {
                    messages.push((i, msg.envelope));
                }
            }
        }
        messages.truncate(config.events);
        let mut history = Vec::new();
        let mut dump = Vec::new();
        // A second market of the same seed: its dump starts with the history as closed klines.
        if Synthetic::new(&market).dump(0, &["kline_1m".to_string()], &mut dump).is_ok() {
            let text = String::from_utf8_lossy(&dump);
            let closed = text.lines().filter_map(|l| l.split_once(' ').map(|(_, env)| env));
            history = closed.filter(|env| env.contains("\"x\":true")).map(str::to_string).collect();
        }
        Scenario { symbols, streams, messages, history, market }
    }

    /// Stream names grouped the way both pipelines connect: symbols round-robin over
    /// `shards`, then at most 200 streams per connection. Returns the URL paths.
    pub fn connection_paths(&self, shards: usize, channels: usize) -> Vec<String> {
        let shards = shards.max(1);
        let mut paths = Vec::new();
        for shard in 0..shards {
            let streams: Vec<&str> = self
                .streams
                .iter()
                .enumerate()
                .filter(|(i, _)| (i / channels) % shards == shard)
                .map(|(_, s)| s.as_str())
                .collect();
            for group in streams.chunks(aegis_wire::stream::MAX_STREAMS_PER_CONNECTION) {
                paths.push(format!("/stream?streams={}", group.join("/")));
            }
        }
        paths
    }

    /// The messages' stream names as shared strings (for the feeder's per-connection filter).
    pub fn stream_names(&self) -> Vec<Arc<str>> {
        self.streams.iter().map(|s| Arc::from(s.as_str())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScenarioConfig {
        ScenarioConfig {
            symbols: 3,
            seed: 7,
            channels: vec!["aggTrade".into(), "bookTicker".into(), "kline_1m".into(), "markPrice@1s".into()],
            events: 2_000,
            history_bars: 250,
        }
    }

    #[test]
    fn a_scenario_is_deterministic_and_covers_its_streams() {
        let a = Scenario::generate(&config());
        let b = Scenario::generate(&config());
        assert_eq!(a.messages.len(), 2_000);
        assert_eq!(a.messages, b.messages);
        assert_eq!(a.streams.len(), 12);
        for (i, envelope) in &a.messages {
            let stream = &a.streams[*i as usize];
            assert!(envelope.starts_with(&format!("{{\"stream\":\"{stream}\"")), "{envelope}");
        }
        assert_eq!(a.history.len(), 3 * 250, "every history bar of every symbol");
        assert!(a.history.iter().all(|h| h.contains("@kline_1m")));
    }

    #[test]
    fn connections_split_symbols_over_shards_with_at_most_200_streams() {
        let mut c = config();
        c.symbols = 120;
        c.events = 10;
        let s = Scenario::generate(&c);
        let one = s.connection_paths(1, 4);
        assert_eq!(one.len(), 3, "480 streams in 200-stream connections");
        let two = s.connection_paths(2, 4);
        let streams: usize = two.iter().map(|p| p.split('/').count() - 1).sum();
        assert_eq!(streams, 480);
        assert!(two[0].contains(&format!("{}@aggTrade", s.symbols[0].to_ascii_lowercase())));
        assert!(!two[0].contains(&format!("{}@aggTrade/", s.symbols[1].to_ascii_lowercase())));
    }
}
