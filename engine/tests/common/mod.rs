//! Helpers shared by the engine's integration tests.

#![allow(dead_code)]

use aegis::config::run::{EndSettings, ExchangeSettings, FeedSettings, RunConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `shared/data` beside the repository (override the root with AEGIS_SHARED_DIR).
pub fn shared_data() -> PathBuf {
    std::env::var_os("AEGIS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
        .join("data")
}

/// The combined-stream envelopes of a capture (gzip or plain text), one string each, in order.
pub fn envelopes(path: &std::path::Path) -> Vec<String> {
    use std::io::Read;
    let raw = std::fs::read(path).unwrap();
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).unwrap();
        s
    } else {
        String::from_utf8(raw).unwrap()
    };
    text.lines().filter_map(|l| l.find("{\"stream\"").map(|i| l[i..].to_string())).collect()
}

/// A closed 1m kline of symbol 0 (fixed-point prices `[open, high, low, close]`).
pub fn closed_kline(
    open_time_ms: i64,
    [open, high, low, close]: [i64; 4],
    volume: i128,
    trades: u64,
) -> aegis_wire::Record {
    use aegis_wire::record::{Interval, Kline};
    aegis_wire::Record {
        header: aegis_wire::Header {
            symbol: aegis_wire::SymbolId(0),
            event_time_ms: open_time_ms + 60_000,
            recv_ns: 0,
        },
        event: aegis_wire::Event::Kline(Kline {
            interval: Interval::M1,
            open_time_ms,
            close_time_ms: open_time_ms + 59_999,
            first_trade_id: 0,
            last_trade_id: 0,
            open,
            high,
            low,
            close,
            volume,
            quote_volume: 0,
            taker_buy_volume: 0,
            taker_buy_quote_volume: 0,
            trades,
            closed: true,
        }),
    }
}

/// Starts exchange-sim in this process with `args` (it runs for at most five minutes);
/// returns its port.
pub fn start_sim(args: &[&str]) -> u16 {
    use clap::Parser;
    let mut argv = vec!["exchange-sim", "--port", "0", "--for", "300s"];
    argv.extend_from_slice(args);
    let parsed = exchange_sim::cli::Args::try_parse_from(argv).expect("sim args");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime
            .block_on(exchange_sim::run_with(parsed, move |port, _| {
                let _ = tx.send(port);
                Ok(())
            }))
            .expect("exchange-sim");
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("sim port")
}

/// A run against the simulator on `port` (both tiers on one connection), 120 s at most.
pub fn config(port: u16, symbols: Vec<String>, streams: Vec<String>) -> RunConfig {
    let ws = format!("ws://127.0.0.1:{port}");
    RunConfig {
        exchange: ExchangeSettings {
            public_ws: ws.clone(),
            market_ws: ws,
            rest: format!("http://127.0.0.1:{port}"),
            rotate_after: None,
            max_message: 1 << 20,
            ..Default::default()
        },
        feed: FeedSettings { symbols, streams, ring_spin: 1 << 12, ..Default::default() },
        end: EndSettings { run_for: Some(Duration::from_secs(120)), ..Default::default() },
        ..Default::default()
    }
}

/// A paper desk with default settings and no durable output.
pub fn paper_desk(symbols: usize) -> aegis::desk::Desk {
    aegis::desk::Desk::new(
        aegis::desk::TradingConfig::default(),
        vec![Some(aegis_trading::SymbolRules::usdm_default()); symbols],
        None,
        std::sync::Arc::new(aegis::desk::stats::DeskStats::default()),
    )
}

/// Runs `scenario` on glommio shards; where glommio cannot start here, checks instead that
/// a run asking for it is refused (never a silent skip).
pub fn on_glommio(aegis: &str, scenario: impl FnOnce()) {
    if let Err(reason) = aegis::feed::transport::glommio::probe(512 << 10) {
        let out = std::process::Command::new(aegis)
            .args(["run", "--quiet", "--for", "5s", "--transport", "glommio"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "glommio is unusable here ({reason}) yet a run asking for it started");
        return;
    }
    scenario();
}

/// `aegisctl --socket SOCKET ARGS` through the binary's own entry point (`aegisctl::run`):
/// (exit status, stdout, stderr).
pub fn aegisctl(socket: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let socket = socket.to_str().unwrap();
    let argv: Vec<String> =
        ["aegisctl", "--socket", socket].iter().chain(args).map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = aegisctl::run(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).to_string(), String::from_utf8_lossy(&err).to_string())
}

/// `aegisctl … --json ARGS`: the answer, or `exit N: stderr` when refused.
pub fn aegisctl_json(socket: &std::path::Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    match aegisctl(socket, &all) {
        (0, out, _) => serde_json::from_str(&out).map_err(|e| format!("{e}: {out}")),
        (code, _, err) => Err(format!("exit {code}: {err}")),
    }
}

/// Waits for `what` to hold on a live engine (polled every 100 ms, at most two minutes).
pub fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(what, std::time::Duration::from_secs(120), check);
}

/// [`eventually`] with another limit.
pub fn eventually_within(what: &str, limit: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Reads `child`'s stderr until a line starts with `prefix` (returned, `None` if it exited
/// first), then keeps draining it so the engine never blocks on a full pipe.
pub fn wait_for_line(child: &mut std::process::Child, prefix: &str) -> Option<String> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take()?).lines();
    let found = lines.find_map(|l| l.ok().filter(|l| l.starts_with(prefix)));
    std::thread::spawn(move || for _ in lines {});
    found
}

/// `GET path` on exchange-sim's public REST (unsigned), as JSON; panics unless 200.
#[allow(dead_code)] // used by some of the test crates sharing this module
pub fn public(port: u16, path: &str) -> serde_json::Value {
    let client = aegis::net::http::HttpClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let request = aegis::net::http::HttpRequest { method: "GET", path, headers: &[], body: "" };
    let answer = client.send(&request).unwrap();
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

/// `POST path` on the control endpoints (`/sim/v1/...`) of the exchange-sim at `base`, as
/// JSON; panics unless 200.
#[allow(dead_code)] // used by some of the test crates sharing this module
pub fn sim_post(base: &str, path: &str) -> serde_json::Value {
    let client = aegis::net::http::HttpClient::new(base, None).unwrap();
    let request = aegis::net::http::HttpRequest { method: "POST", path, headers: &[], body: "" };
    let answer = client.send(&request).unwrap();
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

/// A model whose logistic regression alone says "up" with P = σ(3) ≈ 0.95.
pub fn confident_model(generation: u64) -> aegis_wire::weights::ModelParams {
    use aegis_wire::weights::{offset, ModelParams, N_IN};
    let mut m = ModelParams::zeroed();
    m.generation = generation;
    let p = &mut m.values;
    for k in 0..N_IN {
        p[offset::STD + k] = 1.0;
    }
    p[offset::LR_B] = 3.0;
    p[offset::ENSEMBLE] = 1.0;
    p[offset::CALIBRATION] = 1.0;
    m
}
