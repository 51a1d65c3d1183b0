//! Decisions and money end to end: `aegis run` paper-trades the simulated market, every
//! closed trade and signal is journaled and counted, the account's books balance, the
//! experience log fills, and a restart truncates a torn journal tail and restores the open
//! positions.

use aegis_wire::experience::{BarSample, RingReader, SAMPLE_WORDS, TRADE_WORDS};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn run(dir: &Path, extra: &[&str]) -> Value {
    let summary = dir.join("summary.json");
    let status = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--data-dir", dir.join("data").to_str().unwrap()])
        .args(["--summary", summary.to_str().unwrap()])
        .args(extra)
        .status()
        .expect("aegis");
    assert!(status.success());
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

fn journal(dir: &Path, name: &str) -> Vec<Value> {
    aegis::store::ledger::read_journal(&dir.join("data"), name)
        .unwrap()
        .into_iter()
        .map(|r| r.expect("whole record"))
        .collect()
}

#[test]
fn paper_trades_are_journaled_balanced_and_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &["--stop-after-trades", "5", "--for", "150s"]);
    let closed = first["trades_closed"].as_u64().unwrap();
    assert!(closed >= 5, "{first}");
    let trades = journal(dir.path(), "trades");
    assert_eq!(trades.len() as u64, closed, "every closed trade journaled once");
    assert_eq!(journal(dir.path(), "signals").len() as u64, first["signals"].as_u64().unwrap());
    let reasons = ["TP", "SL", "SIGNAL_DECAY", "ROTATION", "LIQUIDATION", "MANUAL", "SHUTDOWN"];
    let mut pnl_sum = 0.0;
    for t in &trades {
        let f = |k: &str| t[k].as_f64().unwrap();
        assert!(reasons.contains(&t["reason"].as_str().unwrap()), "{t}");
        assert!([-10, -7, -3, -1, 1, 3, 5, 8].contains(&t["reward"].as_i64().unwrap()), "{t}");
        if t["reason"] != "LIQUIDATION" {
            let sign = if t["side"] == "LONG" { 1.0 } else { -1.0 };
            let gross = sign * (f("exit_price") - f("entry_price")) * f("qty");
            assert!((f("pnl") - (gross - f("fees") - f("funding"))).abs() < 1e-6, "{t}");
        }
        assert_eq!(t["reward"].as_i64().unwrap() > 0, f("pnl") > 0.0, "{t}");
        pnl_sum += f("pnl");
    }
    // The books balance: wallet = start + net PnL of closed trades − what open positions
    // have paid so far (entry fees, funding).
    let last = journal(dir.path(), "positions").pop().unwrap();
    let open: Vec<&Value> =
        last["positions"].as_array().unwrap().iter().filter(|p| p["filled"] == true).collect();
    let paid: f64 = open.iter().map(|p| p["fees"].as_f64().unwrap() + p["funding"].as_f64().unwrap()).sum();
    let wallet = last["wallet"].as_f64().unwrap();
    assert!(
        (wallet - (10_000.0 + pnl_sum - paid)).abs() < 1e-6,
        "wallet {wallet}, closed pnl {pnl_sum}, paid {paid}"
    );
    assert_eq!(last["closed_trades"].as_u64(), Some(closed));
    // The experience log: one trade experience per closed trade, bar samples labelled H = 5.
    let experience = dir.path().join("data/experience");
    let trades_ring = RingReader::<TRADE_WORDS>::open(&experience.join("trades.ring"), 5_000).unwrap();
    assert_eq!(trades_ring.range().end, closed);
    let samples = RingReader::<SAMPLE_WORDS>::open(&experience.join("samples.ring"), 262_144).unwrap();
    let range = samples.range();
    assert!(range.end > 0, "live bars are labelled");
    // The embedded market's live start; its warm-up history (no book or flow features)
    // comes before it and is never labelled.
    let live_start_ms = exchange_sim::synthetic::SyntheticConfig::default().start_ms;
    for n in range {
        let sample = BarSample::from_words(&samples.get(n).unwrap());
        assert!(sample.open_time_ms >= live_start_ms, "a history bar was labelled: {sample:?}");
        assert_eq!(sample.horizon, 5);
        assert!(sample.forward_return.is_finite() && sample.features.iter().all(|f| f.is_finite()));
    }

    // A crash mid-append leaves a torn tail; the next start cuts it and restores positions.
    let path = dir.path().join("data/journal/trades.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let second = run(dir.path(), &["--for", "3s"]);
    let recovered = &second["journal"]["recovered"]["trades"];
    assert_eq!(recovered["truncated_bytes"], 6, "{second}");
    assert_eq!(recovered["records"].as_u64(), Some(closed));
    assert_eq!(second["journal"]["restored_positions"].as_u64(), Some(open.len() as u64), "{second}");
    assert!(second["trades_closed"].as_u64().unwrap() >= closed);
    assert_eq!(journal(dir.path(), "trades").len() as u64, second["trades_closed"].as_u64().unwrap());
}
