//! exchangeInfo kept on disk for restarts and refreshed while running (SPEC §3): a read
//! from the exchange writes the cache whole; a restart that cannot reach the exchange trades
//! on the cached rules and says how old they are; without a cache the exchange's error
//! stands. A running engine takes a halted symbol and a changed step size from a refresh.

mod common;

use aegis::rest::client::{InfoSource, RestClient};
use aegis::rest::RestStats;
use std::sync::Arc;

fn client(port: u16) -> RestClient {
    RestClient::for_url(&format!("http://127.0.0.1:{port}"), None, Arc::new(RestStats::default())).unwrap()
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_restart_without_the_exchange_trades_on_the_cached_exchange_info() {
    let port = common::start_sim(&["--synthetic", "--symbols", "3", "--seed", "4"]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("exchange_info.json");

    let (live, source) = client(port).exchange_info_cached(Some(&cache)).unwrap();
    assert_eq!(source, InfoSource::Exchange);
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(written["symbols"].as_array().unwrap().len(), live.len(), "the whole answer is kept");
    assert!(!dir.path().join("exchange_info.json.tmp").exists(), "written whole, then renamed");

    let down = dead_port();
    let (cached, source) = client(down).exchange_info_cached(Some(&cache)).unwrap();
    assert!(matches!(source, InfoSource::Cache { age_s } if age_s < 600), "{source:?}");
    let names = |s: &[aegis::rest::rules::ServedSymbol]| s.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&cached), names(&live));
    for (a, b) in cached.iter().zip(&live) {
        assert_eq!(a.rules.as_ref().ok(), b.rules.as_ref().ok(), "{}: the same rules", a.name);
    }

    let err = client(down).exchange_info_cached(None).unwrap_err().to_string();
    assert!(
        err.contains("/fapi/v1/exchangeInfo"),
        "no cache: the exchange's error, naming the endpoint: {err}"
    );
    std::fs::write(&cache, "{\"symbols\": [").unwrap();
    let err = client(down).exchange_info_cached(Some(&cache)).unwrap_err().to_string();
    assert!(err.contains("exchange_info.json"), "a corrupt cache is named, never traded on: {err}");
}

/// exchange-sim changes a listing while it runs (its own `POST /sim/v1/listing`).
fn relist(port: u16, query: &str) -> serde_json::Value {
    common::sim_post(&format!("http://127.0.0.1:{port}"), &format!("/sim/v1/listing?{query}"))
}

#[test]
fn a_running_engine_takes_a_halted_symbol_and_a_new_step_from_the_refresh() {
    let port = common::start_sim(&["--synthetic", "--symbols", "3", "--seed", "8", "--speed", "30"]);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "120s", "--connect", &format!("ws://127.0.0.1:{port}")])
        .args(["--symbols", "BTCUSDT,ETHUSDT,BNBUSDT", "--set", "exchange.info_refresh=1s"])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--control-socket", socket.to_str().unwrap()])
        .args(["--summary", dir.path().join("summary.json").to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = || common::aegisctl_json(&socket, &["status"]).ok();
    common::eventually("the engine's control socket", || status().is_some());
    assert_eq!(status().unwrap()["symbols_not_trading"], 0);

    assert_eq!(relist(port, "symbol=BTCUSDT&status=BREAK")["status"], "BREAK");
    assert_eq!(relist(port, "symbol=ETHUSDT&stepSize=0.01")["stepSize"], 0.01);
    assert_eq!(relist(port, "symbol=BNBUSDT&maxLeverage=10")["maxLeverage"], 10);
    let halted =
        common::wait_for_line(&mut child, "aegis: exchangeInfo refresh: BTCUSDT").expect("BTC's change");
    assert!(halted.contains("stopped TRADING: no new entries"), "{halted}");
    common::eventually("the three changes applied by the desk", || {
        status().is_some_and(|s| s["listing_changes"] == 3 && s["symbols_not_trading"] == 1)
    });
    relist(port, "symbol=BTCUSDT&status=TRADING");
    common::eventually("BTCUSDT trading again", || status().is_some_and(|s| s["symbols_not_trading"] == 0));

    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert!(summary["rest"]["exchange_info_refreshes"].as_u64().unwrap() >= 2, "{summary}");
    assert_eq!(summary["listing_changes"], 4, "{summary}");
    // The renewed copy on disk has the new step.
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/exchange_info.json")).unwrap())
            .unwrap();
    let eth = kept["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == "ETHUSDT").unwrap();
    let lot = eth["filters"].as_array().unwrap().iter().find(|f| f["filterType"] == "LOT_SIZE").unwrap();
    assert_eq!(lot["stepSize"].as_str().unwrap().parse::<f64>().unwrap(), 0.01);
}

/// The same reaching the desk's decisions: a paper run entering at every chance (the
/// bench-only trigger) while exchange-sim halts one symbol and coarsens another's step.
/// Every position opened after the engine took the changes is on a TRADING symbol, and the
/// re-stepped symbol's quantities are multiples of the new step.
#[test]
fn after_a_refresh_the_halted_symbol_gets_no_entry_and_the_new_step_sizes_orders() {
    use std::sync::atomic::AtomicBool;
    let port = common::start_sim(&["--synthetic", "--symbols", "3", "--seed", "12", "--speed", "600"]);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let symbols: Vec<String> = ["BTCUSDT", "ETHUSDT", "BNBUSDT"].map(String::from).into();
    let mut cfg = common::config(port, symbols, vec!["kline_1m".into(), "aggTrade".into()]);
    cfg.exchange.info_refresh = std::time::Duration::from_secs(1);
    cfg.exchange.warmup_bars = 300;
    cfg.data.dir = Some(dir.path().join("data"));
    cfg.ops.control_socket = Some(socket.clone());
    cfg.bench_entries = Some(1.0);
    cfg.end.run_for = Some(std::time::Duration::from_secs(90));
    let stop = Arc::new(AtomicBool::new(false));
    let engine = {
        let stop = stop.clone();
        std::thread::spawn(move || aegis::run::run(cfg, stop).expect("run").summary)
    };
    let ctl = |args: &[&str]| common::aegisctl_json(&socket, args).ok();
    let max_id = || {
        ctl(&["positions"]).map_or(0, |v| {
            v["positions"].as_array().unwrap().iter().filter_map(|p| p["id"].as_u64()).max().unwrap_or(0)
        })
    };
    common::eventually("entries before the changes", || max_id() > 0);
    relist(port, "symbol=BTCUSDT&status=BREAK");
    relist(port, "symbol=ETHUSDT&stepSize=0.5");
    common::eventually("both changes applied", || {
        ctl(&["status"]).is_some_and(|s| s["listing_changes"] == 2)
    });
    let applied_at =
        max_id().max(trades(dir.path()).iter().filter_map(|t| t["id"].as_u64()).max().unwrap_or(0));
    common::eventually("entries after the changes, the re-stepped symbol's among them", || {
        let after: Vec<serde_json::Value> = trades(dir.path())
            .into_iter()
            .filter(|t| t["id"].as_u64().is_some_and(|id| id > applied_at))
            .collect();
        after.len() >= 3 && after.iter().any(|t| t["symbol"] == "ETHUSDT")
    });
    stop.store(true, std::sync::atomic::Ordering::Release);
    let summary = engine.join().unwrap();
    assert_eq!(summary["symbols_not_trading"], 1, "{summary}");
    let after: Vec<serde_json::Value> = trades(dir.path())
        .into_iter()
        .filter(|t| t["id"].as_u64().is_some_and(|id| id > applied_at))
        .collect();
    assert!(!after.is_empty());
    for t in &after {
        assert_ne!(t["symbol"], "BTCUSDT", "entered a halted symbol: {t}");
        if t["symbol"] == "ETHUSDT" {
            let steps = t["qty"].as_f64().unwrap() / 0.5;
            assert!((steps - steps.round()).abs() < 1e-9, "off the new step: {t}");
        }
    }
}

/// The closed trades the run journaled so far.
fn trades(dir: &std::path::Path) -> Vec<serde_json::Value> {
    aegis::store::ledger::read_journal(&dir.join("data"), "trades")
        .map(|r| r.into_iter().filter_map(Result::ok).collect())
        .unwrap_or_default()
}
