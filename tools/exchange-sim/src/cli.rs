//! Command-line contract of `exchange-sim` (later tooling depends on it).

use crate::fault::Faults;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// A loopback Binance USDⓈ-M exchange for tests and benchmarks (127.0.0.1 only).
///
/// The first line on stdout is exactly `listening ws://127.0.0.1:PORT http://127.0.0.1:PORT`
/// (`wss`/`https` with --tls); WebSocket and REST share the port.
#[derive(Parser, Debug, Clone)]
#[command(name = "exchange-sim", version)]
pub struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Serve the deterministic synthetic market.
    #[arg(long, conflicts_with = "replay")]
    pub synthetic: bool,
    /// Number of synthetic symbols (1…1,000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub symbols: u32,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// 1m bars of synthetic history before the stream starts (for REST warm-up).
    #[arg(long, default_value_t = 1000)]
    pub history_bars: usize,
    /// Synthetic start time, ms since the epoch (default 2026-01-01T00:00:00Z).
    #[arg(long)]
    pub start_time: Option<i64>,
    /// Replay recorded files (any format of shared/data/README.md), merged by time.
    #[arg(long, num_args = 1..)]
    pub replay: Vec<PathBuf>,
    /// Print the stream names the replay files hold, then exit.
    #[arg(long, requires = "replay")]
    pub list_streams: bool,
    /// Speed factor on simulated or recorded time (`1`, `60`, `0.5`), or `max` for flat out.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    pub speed: Speed,
    /// Serve TLS (wss/https) with a certificate generated at start.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the generated CA (PEM) with --tls.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Run for this long, then exit cleanly (`30s`, `2m`, `1h`).
    #[arg(long = "for", value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// Instead of serving, write the synthetic market (history as closed 1m klines, then
    /// `--dump-minutes` of the stream) to this file as `<ns> <envelope>` lines, and exit.
    #[arg(long, requires = "synthetic")]
    pub dump: Option<PathBuf>,
    /// Simulated minutes of stream in a `--dump`.
    #[arg(long, default_value_t = 60)]
    pub dump_minutes: u64,
    /// Channels in a `--dump` (comma-separated; empty: all).
    #[arg(long, value_delimiter = ',', default_value = "aggTrade,kline_1m,markPrice@1s")]
    pub dump_streams: Vec<String>,
    /// Write a JSON summary here at exit.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Interval between server pings.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Close a connection whose last pong is older than this.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub pong_timeout: Duration,
    /// Disconnect every connection after this lifetime (Binance: 24h).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub conn_lifetime: Duration,
    /// Messages per second per connection (default: as fast as the source).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Most streams one connection may hold.
    #[arg(long, default_value_t = aegis_wire::stream::MAX_STREAMS_PER_CONNECTION)]
    pub max_streams: usize,
    /// Most incoming messages per second per connection before it is closed.
    #[arg(long, default_value_t = 10)]
    pub max_incoming_per_s: u32,
    /// REST request weight allowed per minute.
    #[arg(long, default_value_t = 2400)]
    pub rest_weight_limit: u32,
    /// An API key the signed trading endpoints accept, as `KEY:SECRET` (repeatable).
    #[arg(long = "api-key", value_parser = parse_api_key)]
    pub api_keys: Vec<(String, String)>,
    /// An Ed25519 API key, as `KEY:PUBLIC_KEY_PEM_FILE` (repeatable): requests signed with
    /// its private key (base64 Ed25519 signatures) are accepted, as Binance accepts them.
    #[arg(long = "ed25519-key", value_parser = parse_ed25519_key)]
    pub ed25519_keys: Vec<(String, std::path::PathBuf)>,
    /// Ed25519 keys given in memory (key, 32-byte public key), by an embedding program.
    #[arg(skip)]
    pub ed25519_public_keys: Vec<(String, Vec<u8>)>,
    /// How long a listenKey lives after its last keep-alive (Binance: 60 min).
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    pub listen_key_ttl: Duration,
    /// New orders allowed per 10 s per key (Binance: 300); past it, 429 with -1015.
    #[arg(long, default_value_t = 300)]
    pub order_limit_10s: u32,
    /// What a triggered conditional (algo) order meets in the matching engine: filled,
    /// partial (half fills, the rest expires), rejected, or stuck (left TRIGGERING).
    #[arg(long, default_value = "filled", value_parser = parse_trigger_outcome)]
    pub trigger_outcome: crate::venue::TriggerOutcome,
    /// Inject a fault: drop-after=N, drop-prob=P, stall=EVERY/DURATION, fragment=K[/EVERY],
    /// oversize-after=N, oversize-bytes=B, malformed-every=N, duplicate-every=N,
    /// reorder-every=N, depth-gap-every=N, missing-kline-every=N. Repeatable.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Print a progress line to stderr every second.
    #[arg(long)]
    pub progress: bool,
}

/// How fast to play the source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Multiply source time by this factor.
    Factor(f64),
    /// No pacing: as fast as the slowest subscriber reads.
    Max,
}

/// Parses `max` or a positive decimal factor.
pub fn parse_speed(text: &str) -> Result<Speed, String> {
    if text == "max" {
        return Ok(Speed::Max);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
        _ => Err(format!("speed {text:?} is neither 'max' nor a positive number")),
    }
}

/// Parses durations written like `250ms`, `30s`, `2m`, `1h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    aegis_wire::units::parse_duration(text).map_err(|e| e.to_string())
}

impl Args {
    /// A synthetic market of `symbols` symbols from `seed` with `history_bars` of history,
    /// everything else at its default (for embedding processes).
    pub fn synthetic(symbols: usize, seed: u64, history_bars: usize) -> Args {
        let mut args = Args::parse_from(["exchange-sim", "--synthetic"]);
        args.symbols = symbols.clamp(1, 1_000) as u32;
        args.seed = seed;
        args.history_bars = history_bars;
        args
    }

    /// The API keys as a map (key → secret).
    pub fn key_map(&self) -> std::collections::HashMap<String, String> {
        self.api_keys.iter().cloned().collect()
    }

    /// The Ed25519 keys as a map (key → 32-byte public key), read from their PEM files.
    pub fn ed25519_key_map(&self) -> Result<std::collections::HashMap<String, Vec<u8>>, String> {
        let mut keys: std::collections::HashMap<String, Vec<u8>> =
            self.ed25519_public_keys.iter().cloned().collect();
        for (key, path) in &self.ed25519_keys {
            let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let public =
                crate::venue::ed25519_public_key(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
            keys.insert(key.clone(), public);
        }
        Ok(keys)
    }

    /// The fault plan the `--fault` flags describe.
    pub fn fault_plan(&self) -> Result<Faults, crate::fault::FaultSpecError> {
        let mut faults = Faults::default();
        for spec in &self.faults {
            faults.apply(spec)?;
        }
        Ok(faults)
    }
}

fn parse_trigger_outcome(text: &str) -> Result<crate::venue::TriggerOutcome, String> {
    use crate::venue::TriggerOutcome;
    match text {
        "filled" => Ok(TriggerOutcome::Filled),
        "partial" => Ok(TriggerOutcome::Partial),
        "rejected" => Ok(TriggerOutcome::Rejected),
        "stuck" => Ok(TriggerOutcome::Stuck),
        _ => Err(format!("{text:?}: expected filled, partial, rejected or stuck")),
    }
}

/// Parses `KEY:PEM_FILE`.
fn parse_ed25519_key(text: &str) -> Result<(String, std::path::PathBuf), String> {
    match text.split_once(':') {
        Some((k, p)) if !k.is_empty() && !p.is_empty() => Ok((k.to_string(), p.into())),
        _ => Err("expected KEY:PUBLIC_KEY_PEM_FILE".into()),
    }
}

/// Parses `KEY:SECRET`.
fn parse_api_key(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((k, s)) if !k.is_empty() && !s.is_empty() => Ok((k.to_string(), s.to_string())),
        _ => Err("expected KEY:SECRET".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!(parse_speed("max"), Ok(Speed::Max));
        assert_eq!(parse_speed("60"), Ok(Speed::Factor(60.0)));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
    }

    #[test]
    fn cli_contract_parses() {
        let args = Args::try_parse_from([
            "exchange-sim",
            "--synthetic",
            "--symbols",
            "20",
            "--seed",
            "7",
            "--port",
            "0",
            "--speed",
            "max",
            "--for",
            "30s",
            "--summary",
            "s.json",
            "--tls",
            "--fault",
            "drop-after=10",
        ])
        .unwrap();
        assert!(args.synthetic && args.tls);
        assert_eq!(args.run_for, Some(Duration::from_secs(30)));
        assert_eq!(args.fault_plan().unwrap().drop_after, Some(10));
        assert!(Args::try_parse_from(["exchange-sim", "--symbols", "1001"]).is_err());
        assert!(Args::try_parse_from(["exchange-sim", "--synthetic", "--replay", "x"]).is_err());
    }
}
