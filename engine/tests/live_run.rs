//! `aegis run` with `broker.mode = "live"`, end to end against exchange-sim's matching
//! engine: every entry and exit of the desk is an order at the exchange, `aegisctl flatten`
//! empties the account there, and a restart reconciles the journal with what the exchange
//! holds (a position closed by hand, one opened by hand, legs left behind).

mod common;

use aegis::credentials::ApiKey;
use aegis::execution::live::client::TradeClient;
use aegis::execution::live::order::{ClientIds, Fixed8, OrderKind, OrderRequest, Side as OrderSide};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const KEY: &str = "live-run-key-0123456789";
const SECRET: &str = "live-run-secret-0123456789";

/// A live config (the embedded default with `broker.mode = "live"`) and its 0600 key file.
fn live_config(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let keys = dir.join("keys.toml");
    std::fs::write(&keys, format!("key = \"{KEY}\"\nsecret = \"{SECRET}\"\n")).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\nmode = \"paper\"", "\nmode = \"live\"")
        .replace("\nkeys = \"\"", &format!("\nkeys = \"{}\"", keys.display()));
    assert!(text.contains("mode = \"live\"") && text.contains("keys.toml"));
    let path = dir.join("live.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(config: &Path, dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "200s", "--config", config.to_str().unwrap()])
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .args(["--control-socket", dir.join("ctl.sock").to_str().unwrap()])
        .args(["--summary", dir.join("summary.json").to_str().unwrap()])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn client(rest: &str) -> TradeClient {
    let mut c = TradeClient::new(rest, ApiKey::new(KEY, SECRET, "the test"), None).unwrap();
    c.sync_clock().unwrap();
    c
}

fn ctl(dir: &Path, args: &[&str]) -> Value {
    common::aegisctl_json(&dir.join("ctl.sock"), args).unwrap()
}

fn filled_positions(dir: &Path) -> Vec<Value> {
    ctl(dir, &["positions"])["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["filled"] == true)
        .cloned()
        .collect()
}

fn stop(mut child: Child, dir: &Path) -> Value {
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn journal(dir: &Path, name: &str) -> Vec<Value> {
    aegis::store::ledger::read_journal(&dir.join("data"), name)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// The exchange holds nothing: no position, no open order, no waiting conditional order.
fn flat(c: &mut TradeClient) -> bool {
    c.positions().unwrap().is_empty()
        && c.open_orders(None).unwrap().is_empty()
        && c.open_algo_orders(None).unwrap().is_empty()
}

#[test]
fn live_trades_are_orders_at_the_exchange_and_flatten_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = live_config(dir.path());
    let mut child = spawn(&config, dir.path(), &["--set", "exchange.info_refresh=1s"]);
    let line = common::wait_for_line(&mut child, "aegis: LIVE trading: orders go to ").expect("live");
    let rest =
        line.trim_start_matches("aegis: LIVE trading: orders go to ").split(' ').next().unwrap().to_string();
    let mut c = client(&rest);
    common::eventually("trades closed at the exchange and one held", || {
        dir.path().join("ctl.sock").exists()
            && journal(dir.path(), "trades").len() >= 3
            && !filled_positions(dir.path()).is_empty()
    });
    // The account's brackets change at the exchange: live, the refresh reads them signed
    // (exchangeInfo's are not the account's), and the desk takes them.
    let traded = filled_positions(dir.path())[0]["symbol"].as_str().unwrap().to_string();
    common::sim_post(&rest, &format!("/sim/v1/listing?symbol={traded}&maxLeverage=5"));
    common::eventually("the new brackets taken", || {
        ctl(dir.path(), &["status"])["listing_changes"].as_u64().unwrap_or(0) >= 1
    });
    // What the desk holds, the exchange holds, with the same quantities.
    let held = filled_positions(dir.path());
    let at_exchange = c.positions().unwrap();
    for p in &held {
        let symbol = p["symbol"].as_str().unwrap();
        let sign = if p["side"] == "LONG" { 1.0 } else { -1.0 };
        let amount = at_exchange.iter().find(|e| e.symbol == symbol).map_or(0.0, |e| e.amount.to_f64());
        // A leg may fill between the two reads: then the exchange holds nothing.
        assert!(
            amount == 0.0 || (amount - sign * p["qty"].as_f64().unwrap()).abs() < 1e-9,
            "{p} vs {amount}"
        );
    }

    // Paused first, so no new entry follows the kill switch.
    ctl(dir.path(), &["pause"]);
    assert!(ctl(dir.path(), &["flatten"])["closed"].is_u64());
    common::eventually("the exchange flat", || flat(&mut c));
    common::eventually("the desk flat", || filled_positions(dir.path()).is_empty());
    let summary = stop(child, dir.path());

    assert_eq!(summary["broker"], "live", "{summary}");
    // Binance serves leverage brackets signed only, per account: live reads them so.
    assert_eq!(summary["brackets_from"], "account (signed GET /fapi/v1/leverageBracket)", "{summary}");
    assert_eq!(summary["fallback_brackets"], serde_json::json!([]), "{summary}");
    // exchangeInfo as read, kept in the data directory for a restart (SPEC §3).
    assert_eq!(summary["exchange_info"], "exchange", "{summary}");
    assert!(dir.path().join("data/exchange_info.json").exists());
    let live = &summary["live"];
    assert!(live["flattens"].as_u64().unwrap() >= 1, "{live}");
    // The default order API: Binance's WebSocket API, on one connection the whole run.
    assert!(live["ws_api"]["requests"].as_u64().unwrap() > 0, "{live}");
    assert_eq!(
        (live["ws_api"]["connects"].as_u64(), live["ws_api"]["fallbacks_to_rest"].as_u64()),
        (Some(1), Some(0)),
        "{live}"
    );
    assert_eq!(live["reports_unmatched"], 0, "{live}");
    assert_eq!(live["reports_dropped"], 0, "{live}");
    assert_eq!(live["intents_dropped"], 0, "{live}");
    // Every closed trade entered and left through orders the exchange filled: its entry
    // price is the entry order's average fill.
    let trades = journal(dir.path(), "trades");
    assert_eq!(trades.len() as u64, summary["trades_closed"].as_u64().unwrap());
    let orders = journal(dir.path(), aegis::store::ledger::ORDERS_JOURNAL);
    for t in &trades {
        let entry = format!("aegis.{}.e", t["id"]);
        let fill = orders
            .iter()
            .find(|r| r["event"] == "order" && r["order"]["client_id"] == entry.as_str())
            .unwrap_or_else(|| panic!("{entry} in the orders journal"));
        assert_eq!(fill["order"]["avg_price"].as_f64(), t["entry_price"].as_f64(), "{t}");
        assert!(
            ["TP", "SL", "SIGNAL_DECAY", "ROTATION", "MANUAL"].contains(&t["reason"].as_str().unwrap()),
            "{t}"
        );
    }
}

#[test]
fn a_restart_reconciles_the_journal_with_what_the_exchange_holds() {
    let port = common::start_sim(&[
        "--synthetic",
        "--symbols",
        "8",
        "--seed",
        "5",
        "--speed",
        "60",
        "--history-bars",
        "400",
        "--api-key",
        &format!("{KEY}:{SECRET}"),
    ]);
    let (connect, rest) = (format!("ws://127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let config = live_config(dir.path());
    // This run sends its orders over REST (the other run covers the default WebSocket API).
    let args = ["--connect", connect.as_str(), "--set", "broker.order_api=rest"];
    let mut c = client(&rest);

    // First run: stopped while it holds positions (they stay open: no flatten on shutdown).
    let mut child = spawn(&config, dir.path(), &args);
    assert!(common::wait_for_line(&mut child, "aegis: control socket").is_some());
    common::eventually("two positions held", || filled_positions(dir.path()).len() >= 2);
    let first = stop(child, dir.path());
    assert_eq!(first["live"]["reconciliation"]["matched"], 0, "a fresh account");
    assert_eq!(first["live"]["ws_api"]["requests"], 0, "orders over REST");
    let held = c.positions().unwrap();
    assert!(!held.is_empty(), "positions stay open at the exchange");

    // While it is down: one position closed by hand (its legs left behind), one opened by hand.
    let mut ids = ClientIds::new(11);
    let closed = held[0].clone();
    let close = OrderRequest {
        symbol: closed.symbol.clone(),
        side: if closed.amount.is_negative() { OrderSide::Buy } else { OrderSide::Sell },
        kind: OrderKind::Market,
        quantity: closed.amount.abs(),
        client_id: ids.next_id(),
    };
    c.place_reduce_only(&close).unwrap();
    let info: Vec<String> = common::public(port, "/fapi/v1/exchangeInfo")["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap().to_string())
        .collect();
    let stranger = info.iter().find(|s| !held.iter().any(|h| &h.symbol == *s)).unwrap().clone();
    let by_hand = OrderRequest {
        symbol: stranger.clone(),
        side: OrderSide::Buy,
        kind: OrderKind::Market,
        quantity: Fixed8::parse("1").unwrap(),
        client_id: ids.next_id(),
    };
    c.place(&by_hand).unwrap();

    // Second run: reconciliation closes the journal's position at the exchange's terms,
    // cancels the stray legs and flattens the stranger before trading.
    let mut child = spawn(&config, dir.path(), &args);
    assert!(common::wait_for_line(&mut child, "aegis: control socket").is_some());
    ctl(dir.path(), &["pause"]);
    assert!(ctl(dir.path(), &["flatten"])["closed"].is_u64());
    common::eventually("the exchange flat", || flat(&mut c));
    let second = stop(child, dir.path());
    let report = &second["live"]["reconciliation"];
    eprintln!("reconciliation at restart: {report}");
    let lines: Vec<&str> = report["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(
        lines.iter().any(|l| l.contains(&stranger) && l.contains("flattened unknown position")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{}: closed at the exchange", closed.symbol))),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("cancelled stray order aegis.")), "{lines:?}");
    assert!(second["live"]["reconciliation_differences"].as_u64().unwrap() >= 3, "{second}");
    // Each restored position either matched or was closed at the exchange (by hand, or by
    // a leg the still-moving market reached while the engine was down).
    let restored = second["journal"]["restored_positions"].as_u64().unwrap();
    let closed_lines = lines.iter().filter(|l| l.contains(": closed at the exchange")).count() as u64;
    assert_eq!(report["matched"].as_u64().unwrap() + closed_lines, restored, "{report}");
    // The hand-closed trade is in the trades journal once, closed by reconciliation.
    let trades = journal(dir.path(), "trades");
    let mut ids: Vec<u64> = trades.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), trades.len(), "no trade closed twice");
    assert!(journal(dir.path(), "alerts")
        .iter()
        .any(|a| a["what"].as_str().unwrap().contains("reconciliation")));
}
