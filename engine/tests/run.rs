//! Whole runs: exchange-sim (in-process, real loopback WebSocket and REST) → shard → ring →
//! brain, checked through the run summary and the closed-bar file.

mod common;

use aegis::run::run;
use common::{config, shared_data, start_sim};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Whole runs compete for this machine's two cores: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn envelopes(path: &Path) -> Vec<Value> {
    common::envelopes(path).iter().map(|e| serde_json::from_str(e).unwrap()).collect()
}

#[test]
fn every_capture_replayed_arrives_exactly_once_per_kind() {
    let _serial = serial();
    let dir = shared_data().join("ws");
    let captures = [
        ("cryptofeed_usdm_20210722.ws.txt", Some("cryptofeed_usdm_20210722.rest_depth.txt")),
        ("cryptofeed_spot_20211012.ws.txt", Some("cryptofeed_spot_20211012.rest_depth.txt")),
        ("cryptofeed_coinm_20210722.ws.txt", Some("cryptofeed_coinm_20210722.rest_depth.txt")),
        ("hftbacktest_usdm_ethusdt_20240808.gz", None),
        ("hftbacktest_spot_btcusdt_20240808.gz", None),
        ("hftbacktest_spot_btcusdt_20240809.gz", None),
        ("hftbacktest_coinm_ethusd_perp_20240808.gz", None),
    ];
    for (capture, rest) in captures {
        let file = dir.join(capture);
        let messages = envelopes(&file);
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        let mut symbols = Vec::new();
        let mut channels = Vec::new();
        for m in &messages {
            let stream = m["stream"].as_str().unwrap();
            let (symbol, channel) = stream.split_once('@').unwrap();
            let kind = aegis_wire::stream::channel_kind(channel).unwrap();
            *want.entry(kind.name().to_string()).or_default() += 1;
            if !symbols.contains(&symbol.to_string()) {
                symbols.push(symbol.to_string());
            }
            if !channels.contains(&channel.to_string()) {
                channels.push(channel.to_string());
            }
        }
        let mut args = vec!["--replay".to_string(), file.to_str().unwrap().to_string()];
        if let Some(rest) = rest {
            args.push(dir.join(rest).to_str().unwrap().to_string());
        }
        // Recorded snapshots are as old as the recording: replayed flat out, the diffs that
        // bridge them would have left the bounded sync buffer before the snapshot is served.
        // At 10x/50x (3 s / 7 s per capture) the snapshot arrives while they are buffered.
        let speed = if capture.starts_with("hftbacktest") { "50" } else { "10" };
        args.extend(["--speed".to_string(), speed.to_string()]);
        let port = start_sim(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut cfg = config(port, symbols, channels);
        cfg.end.stop_after_events = Some(messages.len() as u64);
        let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
        let got: BTreeMap<String, u64> = summary["events_by_kind"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.as_u64() != Some(0))
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(got, want, "{capture}: events per kind");
        assert_eq!(summary["parse_errors"], 0, "{capture}");
        assert_eq!(summary["ring_drops"], 0, "{capture}");
        assert_eq!(summary["books_crossed"], 0, "{capture}: a synced book crossed");
        // Every symbol with both a depth stream and a recorded snapshot syncs its book.
        let with_snapshot = match capture {
            c if c.starts_with("cryptofeed") => {
                want.contains_key("depthUpdate").then_some(symbols_with_depth(&messages))
            }
            "hftbacktest_spot_btcusdt_20240809.gz" => None,
            _ => Some(1),
        };
        if let Some(n) = with_snapshot {
            assert_eq!(summary["books_in_sync"].as_u64().unwrap(), n, "{capture}: books in sync: {summary}");
            assert_eq!(summary["book_ticker_mismatches"], 0, "{capture}: {summary}");
        }
    }
}

fn symbols_with_depth(messages: &[Value]) -> u64 {
    let mut symbols: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["stream"].as_str())
        .filter(|s| s.contains("@depth"))
        .map(|s| s.split('@').next().unwrap_or(""))
        .collect();
    symbols.sort();
    symbols.dedup();
    symbols.len() as u64
}

fn read_bars(path: &Path) -> BTreeMap<String, Vec<i64>> {
    let mut by_symbol: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines().skip(1) {
        let mut cols = line.split(',');
        let symbol = cols.next().unwrap().to_string();
        by_symbol.entry(symbol).or_default().push(cols.next().unwrap().parse().unwrap());
    }
    by_symbol
}

#[test]
fn a_fault_run_ends_with_every_bar_present_and_the_faults_visible() {
    let _serial = serial();
    let port = start_sim(&[
        "--synthetic",
        "--symbols",
        "3",
        "--seed",
        "11",
        "--speed",
        "120",
        "--history-bars",
        "400",
        "--fault",
        "drop-after=20000",
        "--fault",
        "fragment=3/7",
        "--fault",
        "missing-kline-every=4",
        "--fault",
        "depth-gap-every=5000",
    ]);
    let dir = std::env::temp_dir().join(format!("aegis-fault-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bars = dir.join("bars.csv");
    let streams =
        ["aggTrade", "kline_1m", "bookTicker", "depth@100ms", "markPrice@1s"].map(String::from).to_vec();
    let mut cfg = config(port, vec!["BTCUSDT".into(), "ETHUSDT".into(), "BNBUSDT".into()], streams);
    cfg.end.run_for = Some(Duration::from_secs(15));
    cfg.ops.bars_out = Some(bars.clone());
    cfg.exchange.depth_snapshot_limit = 100;
    let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
    assert!(summary["reconnects"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["gaps_detected"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["gaps_filled"].as_u64().unwrap() >= 1, "{summary}");
    let by_symbol = read_bars(&bars);
    assert_eq!(by_symbol.len(), 3);
    for (symbol, opens) in by_symbol {
        assert!(opens.len() > 300 + 5, "{symbol}: {} bars (300 warm-up + live)", opens.len());
        for pair in opens.windows(2) {
            assert_eq!(pair[1] - pair[0], 60_000, "{symbol}: bar after {} missing or repeated", pair[0]);
        }
    }
}

/// Every stream and connection fault exchange-sim has, at once: stalls, fragments, an
/// oversize frame per connection (the engine closes with 1009 and reconnects), malformed
/// JSON, duplicates, reordering, depth gaps and missing klines. Nothing is lost: every 1m
/// bar once, every aggTrade id the stream skipped delivered later exactly once (reordered
/// ones from the stream, the rest from REST), bad messages counted, and reconnects only for
/// the faults that end a connection.
#[test]
fn a_hostile_feed_loses_no_bar_and_no_trade_and_reconnects_only_when_it_must() {
    let _serial = serial();
    let oversize_after = 50_000u64;
    let port = start_sim(&[
        "--synthetic",
        "--symbols",
        "3",
        "--seed",
        "13",
        "--speed",
        "120",
        "--history-bars",
        "400",
        "--fault",
        "stall=4000/200ms",
        "--fault",
        "fragment=3/7",
        "--fault",
        &format!("oversize-after={oversize_after}"),
        "--fault",
        "oversize-bytes=2000000",
        "--fault",
        "malformed-every=4999",
        "--fault",
        "duplicate-every=101",
        "--fault",
        "reorder-every=997",
        "--fault",
        "depth-gap-every=20000",
        "--fault",
        "missing-kline-every=4",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let bars = dir.path().join("bars.csv");
    let streams =
        ["aggTrade", "kline_1m", "bookTicker", "depth@100ms", "markPrice@1s"].map(String::from).to_vec();
    let mut cfg = config(port, vec!["BTCUSDT".into(), "ETHUSDT".into(), "BNBUSDT".into()], streams);
    cfg.end.run_for = Some(Duration::from_secs(20));
    cfg.ops.bars_out = Some(bars.clone());
    cfg.exchange.depth_snapshot_limit = 100;
    let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
    let n = |key: &str| summary[key].as_u64().unwrap_or_else(|| panic!("{key} missing: {summary}"));
    eprintln!(
        "messages {}, reconnects {}, parse errors {}, duplicates {}, agg ids skipped {} recovered {} unrecovered {} missing {}, trade ids gap {} recovered {}",
        n("messages_received"),
        n("reconnects"),
        n("parse_errors"),
        n("duplicates_dropped"),
        n("agg_ids_skipped"),
        n("agg_ids_recovered"),
        n("agg_ids_unrecovered"),
        n("agg_ids_missing"),
        n("trade_id_gaps"),
        n("trade_ids_recovered"),
    );
    eprintln!("REST {}", summary["rest"]);
    // Bad input counted, never fatal.
    assert!(n("parse_errors") > 0, "malformed messages are counted: {summary}");
    assert!(n("duplicates_dropped") > 0, "{summary}");
    // Reconnects: only the oversize frame ends a connection (one per connection's 15,000
    // messages); stalls, bad JSON, duplicates and reordering never do.
    let reconnects = n("reconnects");
    assert!(reconnects >= 1, "{summary}");
    assert!(reconnects <= n("messages_received") / oversize_after + 2, "{reconnects} reconnects: {summary}");
    // Trades: what the stream skipped came back, each id once (a second copy is a counted
    // duplicate); only fills still in flight when the run stopped may be missing.
    for (symbol, s) in summary["symbols"].as_object().unwrap() {
        let m = |key: &str| s[key].as_u64().unwrap();
        assert!(m("agg_ids_skipped") > 0, "{symbol}: reordering and reconnects skip ids: {s}");
        assert_eq!(m("agg_ids_unrecovered"), 0, "{symbol}: no skipped aggTrade was given up: {s}");
        assert_eq!(
            m("agg_ids_skipped"),
            m("agg_ids_recovered") + m("agg_ids_missing"),
            "{symbol}: every skipped id is recovered or still being fetched: {s}"
        );
        assert!(m("agg_ids_missing") * 20 < m("agg_ids_skipped"), "{symbol}: only a tail in flight: {s}");
    }
    assert!(n("trade_ids_recovered") > 0 && n("trade_ids_recovered") <= n("trade_id_gaps"), "{summary}");
    // Bars: every minute exactly once despite the missing klines and reconnects.
    let by_symbol = read_bars(&bars);
    assert_eq!(by_symbol.len(), 3);
    for (symbol, opens) in by_symbol {
        assert!(opens.len() > 300 + 5, "{symbol}: {} bars", opens.len());
        for pair in opens.windows(2) {
            assert_eq!(pair[1] - pair[0], 60_000, "{symbol}: bar after {} missing or repeated", pair[0]);
        }
    }
}

#[test]
fn a_tls_run_trusts_the_simulators_ca_for_wss_and_https() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("aegis-tls-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let port = start_sim(&[
        "--synthetic",
        "--symbols",
        "2",
        "--speed",
        "60",
        "--tls",
        "--ca-out",
        ca.to_str().unwrap(),
    ]);
    let mut cfg =
        config(port, vec!["BTCUSDT".into(), "ETHUSDT".into()], vec!["aggTrade".into(), "depth@100ms".into()]);
    cfg.exchange.public_ws = format!("wss://127.0.0.1:{port}");
    cfg.exchange.market_ws = cfg.exchange.public_ws.clone();
    cfg.exchange.rest = format!("https://127.0.0.1:{port}");
    cfg.exchange.extra_ca = Some(ca);
    cfg.end.stop_after_events = Some(2_000);
    cfg.end.run_for = Some(Duration::from_secs(60));
    let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
    assert!(summary["events_total"].as_u64().unwrap() >= 2_000, "{summary}");
    assert_eq!(summary["books_in_sync"], 2, "snapshots fetched over https: {summary}");
    assert_eq!(summary["parse_errors"], 0);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let _serial = serial();
    let port = start_sim(&["--synthetic", "--symbols", "1", "--tls", "--ca-out", "/dev/null"]);
    let mut cfg = config(port, vec!["BTCUSDT".into()], vec!["aggTrade".into()]);
    cfg.exchange.rest = format!("https://127.0.0.1:{port}");
    let err = run(cfg, Arc::new(AtomicBool::new(false))).err().expect("refused");
    assert!(err.to_string().contains("exchangeInfo"), "{err}");
}

#[test]
fn connections_rotate_before_their_lifetime_ends_without_a_gap() {
    let _serial = serial();
    for transport in
        [aegis::feed::transport::TransportChoice::Mio, aegis::feed::transport::TransportChoice::Glommio]
    {
        let port = start_sim(&["--synthetic", "--symbols", "2", "--speed", "30", "--conn-lifetime", "4s"]);
        let streams = vec!["aggTrade".into(), "bookTicker".into(), "depth@100ms".into()];
        let mut cfg = config(port, vec!["BTCUSDT".into(), "ETHUSDT".into()], streams);
        cfg.feed.transport = transport;
        cfg.exchange.rotate_after = Some(Duration::from_millis(1200));
        cfg.end.run_for = Some(Duration::from_secs(8));
        let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
        assert!(summary["rotations"].as_u64().unwrap() >= 2, "{transport:?}: {summary}");
        assert_eq!(
            summary["disconnects"], 0,
            "{transport:?}: the exchange never had to cut a connection: {summary}"
        );
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            assert_eq!(summary["symbols"][symbol]["trade_id_gaps"], 0, "{transport:?} {symbol}: {summary}");
        }
        assert_eq!(summary["books_in_sync"], 2, "{transport:?}: {summary}");
        assert_eq!(summary["gaps_detected"], 0, "{transport:?}: no resync was needed: {summary}");
        assert!(
            summary["duplicates_dropped"].as_u64().unwrap() > 0,
            "{transport:?}: the overlap was de-duplicated: {summary}"
        );
    }
}

#[test]
fn a_slow_brain_gets_counted_drops_and_resyncs_never_a_blocked_shard() {
    let _serial = serial();
    // The simulator flat out, a 16-slot ring, no spinning on a full ring, and a brain that
    // parks for 200 µs whenever it finds its rings empty: the shard outruns it.
    let port = start_sim(&[
        "--synthetic",
        "--symbols",
        "2",
        "--seed",
        "5",
        "--speed",
        "max",
        "--history-bars",
        "400",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let bars = dir.path().join("bars.csv");
    let mut cfg =
        config(port, vec!["BTCUSDT".into(), "ETHUSDT".into()], vec!["aggTrade".into(), "kline_1m".into()]);
    cfg.feed.ring_capacity = 16;
    cfg.feed.ring_spin = 0;
    cfg.brain.idle = aegis::ring::Idle::Park;
    cfg.end.run_for = Some(Duration::from_secs(8));
    cfg.ops.bars_out = Some(bars.clone());
    let summary = run(cfg, Arc::new(AtomicBool::new(false))).expect("run").summary;
    let drops = summary["ring_drops"].as_u64().unwrap();
    eprintln!(
        "drops {drops}, gaps {} detected {} filled, rest {}, bars {}",
        summary["gaps_detected"], summary["gaps_filled"], summary["rest"]["requests"], summary["bars_closed"]
    );
    assert!(drops > 0, "the ring overflowed: {summary}");
    assert!(summary["gaps_detected"].as_u64().unwrap() >= 1, "drops are gaps: {summary}");
    assert!(summary["gaps_filled"].as_u64().unwrap() >= 1, "and get filled: {summary}");
    // Not blocked: the shard kept reading far past what the ring could hold.
    assert!(summary["messages_received"].as_u64().unwrap() > drops, "{summary}");
    assert_eq!(summary["disconnects"], 0, "the shard kept up with its socket: {summary}");
    // Bounded REST use: fills are asked for when a sequence check finds a hole, not per drop.
    let requests = summary["rest"]["requests"].as_u64().unwrap();
    assert!(requests < 400, "{requests} REST requests in 8 s: {summary}");
    // Recovered: every 1m bar present exactly once despite the dropped klines.
    let by_symbol = read_bars(&bars);
    assert_eq!(by_symbol.len(), 2);
    for (symbol, opens) in by_symbol {
        assert!(opens.len() > 300 + 5, "{symbol}: {} bars: {summary}", opens.len());
        for pair in opens.windows(2) {
            assert_eq!(pair[1] - pair[0], 60_000, "{symbol}: bar after {} missing or repeated", pair[0]);
        }
    }
}
