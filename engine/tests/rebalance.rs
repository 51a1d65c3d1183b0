//! Live rebalance, make-before-break: during a synthetic run with two shards, symbols move
//! back and forth between them every second, and per symbol the brain applied every trade
//! id exactly once (no trade-id gap) and every 1m kline once (consecutive bars, no repeat).

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn symbols_move_between_shards_every_second_without_losing_or_doubling_an_event_on_mio() {
    symbols_move_between_shards_every_second_without_losing_or_doubling_an_event("mio");
}

/// The same on glommio shards (io_uring), where glommio can start.
#[test]
fn symbols_move_between_shards_every_second_without_losing_or_doubling_an_event_on_glommio() {
    common::on_glommio(env!("CARGO_BIN_EXE_aegis"), || {
        symbols_move_between_shards_every_second_without_losing_or_doubling_an_event("glommio")
    });
}

fn symbols_move_between_shards_every_second_without_losing_or_doubling_an_event(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let summary = dir.path().join("summary.json");
    let bars = dir.path().join("bars.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "300s", "--shards", "2", "--transport", transport])
        .args(["--streams", "aggTrade,kline_1m"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--control-socket")
        .arg(&socket)
        .arg("--summary")
        .arg(&summary)
        .arg("--bars-out")
        .arg(&bars)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = common::wait_for_line(&mut child, "aegis: control socket");
    assert!(ready.is_some(), "the engine did not serve its control socket");

    let symbols = common::aegisctl_json(&socket, &["symbols"]).unwrap();
    let list = symbols["symbols"].as_array().unwrap();
    assert!(
        list.iter().any(|s| s["shard"] == 0) && list.iter().any(|s| s["shard"] == 1),
        "two shards used: {symbols}"
    );
    let moving: Vec<(String, u64)> = list
        .iter()
        .take(4)
        .map(|s| (s["symbol"].as_str().unwrap().to_string(), s["shard"].as_u64().unwrap()))
        .collect();

    // Move four symbols to the other shard and back, a move about every second.
    let mut moves = 0;
    let started = Instant::now();
    for round in 0..3 {
        for (symbol, home) in &moving {
            let to = if round % 2 == 0 { 1 - home } else { *home };
            let moved =
                common::aegisctl_json(&socket, &["rebalance", symbol, "--to", &to.to_string()]).unwrap();
            assert_eq!(moved["to"], to, "{moved}");
            assert_eq!(
                moved["source_released"],
                true,
                "{moved} {}",
                common::aegisctl_json(&socket, &["shards"]).unwrap()
            );
            moves += 1;
            let now = common::aegisctl_json(&socket, &["symbols"]).unwrap();
            let entry = now["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["symbol"] == symbol.as_str())
                .unwrap()
                .clone();
            assert_eq!(entry["shard"], to, "symbols --json follows the move");
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(6), "12 moves of 500 ms overlap each");
    // A drain moves everything off shard 1.
    let drained = common::aegisctl_json(&socket, &["drain", "1"]).unwrap();
    assert!(!drained["moved"].as_array().unwrap().is_empty());
    let after = common::aegisctl_json(&socket, &["symbols"]).unwrap();
    assert!(after["symbols"].as_array().unwrap().iter().all(|s| s["shard"] == 0), "{after}");
    let shards = common::aegisctl_json(&socket, &["shards"]).unwrap();
    assert!(shards["shards"][1]["symbols"].as_array().unwrap().is_empty());
    // Refusals change nothing.
    let err = common::aegisctl_json(&socket, &["rebalance", "NOSUCHUSDT", "--to", "0"]).unwrap_err();
    assert!(err.contains("exit 1") && err.contains("unknown symbol"), "{err}");
    let err = common::aegisctl_json(&socket, &["drain", "5"]).unwrap_err();
    assert!(err.contains("unknown shard 5"), "{err}");

    // Let a few more klines close on the one shard, then stop cleanly.
    let bars_before = common::aegisctl_json(&socket, &["status"]).unwrap()["bars_closed"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::aegisctl_json(&socket, &["status"]).unwrap()["bars_closed"].as_u64().unwrap()
        < bars_before + 40
    {
        assert!(Instant::now() < deadline, "bars stopped closing after the drain");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["ring_drops"], 0);
    assert_eq!(summary["reconnects"], 0, "moves ride on live connections");
    let per_symbol = summary["symbols"].as_object().unwrap();
    let mut duplicates = 0;
    for (symbol, s) in per_symbol {
        assert_eq!(s["trade_id_gaps"], 0, "{symbol}: a trade id was lost");
        assert_eq!(s["bars_rejected"], 0, "{symbol}");
        duplicates += s["duplicates_dropped"].as_u64().unwrap();
    }
    assert!(duplicates > 0, "the overlaps delivered some events twice, and the brain dropped them");
    assert!(moves >= 12);

    // Every 1m bar once, consecutive, per symbol.
    let mut opens: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in std::fs::read_to_string(&bars).unwrap().lines().skip(1) {
        let mut fields = line.split(',');
        let symbol = fields.next().unwrap().to_string();
        opens.entry(symbol).or_default().push(fields.next().unwrap().parse().unwrap());
    }
    for (symbol, _) in &moving {
        let times = &opens[symbol];
        assert!(times.len() > 20, "{symbol}: {} bars", times.len());
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], 60_000, "{symbol}: bars {} then {}", pair[0], pair[1]);
        }
    }
}
