//! Replay conformance: every shared WebSocket capture reaches a stock client (tungstenite)
//! message for message, byte-identical and in file order; the other formats replay too.

mod common;

use common::*;
use std::path::Path;

fn replay_to_client(file: &Path, extra: &[&str]) -> (Vec<String>, Sim) {
    let streams = list_streams(file);
    assert!(!streams.is_empty(), "{} lists no streams", file.display());
    let mut args = vec!["--replay", file.to_str().unwrap(), "--speed", "max", "--for", "120s"];
    args.extend_from_slice(extra);
    let sim = Sim::spawn(&args);
    let mut ws = connect(&format!("{}/stream?streams={}", sim.ws, streams.join("/")));
    let expected = capture_envelopes(file).len();
    let got = (0..expected).map(|_| next_text(&mut ws)).collect();
    (got, sim)
}

#[test]
fn every_websocket_capture_replays_byte_identical_in_order() {
    let dir = shared_data().join("ws");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".gz") || name.ends_with(".ws.txt")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "expected the 7 captures of shared/data/ws");
    for file in files {
        let want = capture_envelopes(&file);
        let (got, _sim) = replay_to_client(&file, &[]);
        assert_eq!(got.len(), want.len(), "{}", file.display());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{} message {i}", file.display());
        }
    }
}

#[test]
fn raw_stream_connections_get_payloads_only() {
    let file = shared_data().join("ws/cryptofeed_usdm_20210722.ws.txt");
    let sim = Sim::spawn(&["--replay", file.to_str().unwrap(), "--speed", "max", "--for", "60s"]);
    let mut ws = connect(&format!("{}/ws/sushiusdt@aggTrade", sim.ws));
    let want: Vec<String> = capture_envelopes(&file)
        .into_iter()
        .filter(|e| e.starts_with("{\"stream\":\"sushiusdt@aggTrade\""))
        .map(|e| e["{\"stream\":\"sushiusdt@aggTrade\",\"data\":".len()..e.len() - 1].to_string())
        .collect();
    assert!(!want.is_empty());
    for (i, w) in want.iter().enumerate() {
        assert_eq!(&next_text(&mut ws), w, "payload {i}");
    }
}

#[test]
fn list_streams_names_what_the_file_holds() {
    let streams = list_streams(&shared_data().join("ws/cryptofeed_usdm_20210722.ws.txt"));
    let mut sorted = streams.clone();
    sorted.sort();
    let mut want: Vec<String> = ["akrousdt", "ctkusdt", "keepusdt", "sushiusdt"]
        .iter()
        .flat_map(|s| ["aggTrade", "bookTicker", "depth@100ms", "kline_1m"].map(|c| format!("{s}@{c}")))
        .collect();
    want.sort();
    assert_eq!(sorted, want);
}

#[test]
fn rest_depth_serves_the_recorded_snapshot() {
    let data = shared_data().join("ws");
    let ws_file = data.join("cryptofeed_usdm_20210722.ws.txt");
    let rest_file = data.join("cryptofeed_usdm_20210722.rest_depth.txt");
    let sim =
        Sim::spawn(&["--replay", ws_file.to_str().unwrap(), rest_file.to_str().unwrap(), "--for", "60s"]);
    let (status, body) = http_get(&sim.http, "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000");
    assert_eq!(status, 200, "{body}");
    let recorded = std::fs::read_to_string(&rest_file).unwrap();
    let line = recorded.lines().find(|l| l.contains("symbol=SUSHIUSDT")).unwrap();
    assert_eq!(body, line.split_once(": ").unwrap().1);
    let (status, _) = http_get(&sim.http, "/fapi/v1/depth?symbol=NOPEUSDT&limit=1000");
    assert_eq!(status, 400);
}

#[test]
fn csv_and_doc_example_formats_replay() {
    let data = shared_data();
    let cases = [
        ("klines/octobot_binance_BTCUSDT_20180428_1m.csv", "btcusdt@kline_1m", 502),
        ("klines/nautilus_ADABTC-1m-2021-11-27.csv", "adabtc@kline_1m", 10),
        ("trades/nautilus_binance_spot_BTCUSDT_trades_20210108.csv", "btcusdt@trade", 2001),
        ("trades/nautilus_binance_spot_BTCUSDT_quotes_20210108.csv", "btcusdt@bookTicker", 451),
        ("depth/nautilus_usdm_BTCUSDT_depth_update_20221101.csv", "btcusdt@depth@100ms", 0),
        ("doc_examples/nautilus_usdm_mark_price_stream.json", "btcusdt@markPrice@1s", 1),
    ];
    for (rel, stream, count) in cases {
        let file = data.join(rel);
        assert_eq!(list_streams(&file), vec![stream.to_string()], "{rel}");
        let sim = Sim::spawn(&["--replay", file.to_str().unwrap(), "--speed", "max", "--for", "60s"]);
        let mut ws = connect(&format!("{}/ws/{stream}", sim.ws));
        let n = if count == 0 { 1 } else { count };
        let mut last = String::new();
        for _ in 0..n {
            last = next_text(&mut ws);
            serde_json::from_str::<serde_json::Value>(&last).unwrap_or_else(|e| panic!("{rel}: {e}: {last}"));
        }
        if rel.ends_with("_1m.csv") {
            // The last row's exact decimal strings survive.
            let csv = std::fs::read_to_string(&file).unwrap();
            let row: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
            assert!(
                last.contains(&format!("\"o\":\"{}\"", row[1]))
                    && last.contains(&format!("\"v\":\"{}\"", row[5])),
                "{last}"
            );
        }
    }
}

#[test]
fn replayed_klines_feed_the_rest_endpoint_and_roll_up() {
    let file = shared_data().join("klines/octobot_binance_ETHUSDT_20180716_1m.csv");
    let sim = Sim::spawn(&["--replay", file.to_str().unwrap(), "--speed", "max", "--for", "60s"]);
    let mut ws = connect(&format!("{}/ws/ethusdt@kline_1m", sim.ws));
    for _ in 0..500 {
        next_text(&mut ws);
    }
    let (status, body) = http_get(&sim.http, "/fapi/v1/klines?symbol=ETHUSDT&interval=5m&limit=1000");
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    // The exchange's own 5m candles for the same period, shipped beside the 1m file.
    let five = std::fs::read_to_string(shared_data().join("klines/octobot_binance_ETHUSDT_20180716_5m.csv"))
        .unwrap();
    let exchange: std::collections::HashMap<i64, Vec<String>> = five
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<String> = l.split(',').map(String::from).collect();
            (cols[0].parse().unwrap(), cols)
        })
        .collect();
    let num = |s: &str| aegis_wire::parse_fixed8_i128(s.as_bytes(), aegis_wire::Sign::Forbidden).unwrap();
    let mut compared = 0;
    // Skip the first and last buckets: the 1m series starts and ends mid-bucket.
    for row in &rows[1..rows.len() - 1] {
        let t = row[0].as_i64().unwrap();
        let Some(cols) = exchange.get(&t) else { continue };
        for (i, name) in ["open", "high", "low", "close", "volume"].iter().enumerate() {
            assert_eq!(num(row[i + 1].as_str().unwrap()), num(&cols[i + 1]), "{name} of bucket {t}");
        }
        compared += 1;
    }
    assert!(compared >= 90, "only {compared} buckets compared");
}

#[test]
fn malformed_recorded_lines_are_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.ws.txt");
    std::fs::write(
        &file,
        "wss://x/stream?streams=btcusdt@trade <-> 1.0\n1.1: {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\"}}\n1.2: {\"stream\":\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange-sim"))
        .args(["--replay", file.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.ws.txt:3:"), "{err}");
}
