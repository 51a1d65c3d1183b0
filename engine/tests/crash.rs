//! Crash recovery: `aegis run` on the synthetic market is killed with SIGKILL once trades
//! are being journaled, then restarted on the same data directory. No closed trade may be
//! lost, rewritten or doubled, open positions come back, the experience log matches the
//! trades journal record for record, and the books still balance.

use aegis_wire::experience::{RingReader, TradeExperience, TRADE_WORDS};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn records(data: &Path, name: &str) -> Vec<Value> {
    // A torn tail (the kill may cut a write) is left out, as a restart cuts it.
    aegis::ledger::read_journal(data, name).unwrap().into_iter().filter_map(Result::ok).collect()
}

#[test]
fn kill_9_loses_and_doubles_no_trade_and_restores_positions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "150s", "--data-dir", data.to_str().unwrap()])
        .spawn()
        .expect("aegis");
    // Synchronise on the journal itself: kill once four trades are on disk (or fail).
    let deadline = Instant::now() + Duration::from_secs(140);
    while records(&data, "trades").len() < 4 {
        assert!(Instant::now() < deadline, "no trades journaled in time");
        assert!(child.try_wait().unwrap().is_none(), "aegis exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = records(&data, "trades");
    let closed_before: Vec<u64> = before.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    // What the restart must bring back: the last snapshot's filled positions not closed since.
    let snapshot = records(&data, "positions").pop().expect("a snapshot before the kill");
    let open_before = snapshot["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["filled"] == true && !closed_before.contains(&p["id"].as_u64().unwrap()))
        .count();

    let summary_path = dir.path().join("summary.json");
    let target = (before.len() + 3).to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "150s", "--data-dir", data.to_str().unwrap()])
        .args(["--stop-after-trades", &target, "--summary", summary_path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["journal"]["restored_positions"].as_u64(), Some(open_before as u64), "{summary}");

    let after = records(&data, "trades");
    assert_eq!(&after[..before.len()], &before[..], "trades journaled before the kill are kept as they were");
    let mut ids: Vec<u64> = after.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), after.len(), "no trade closed twice");
    assert_eq!(summary["trades_closed"].as_u64(), Some(after.len() as u64));

    // The experience log holds exactly the journal's trades, in order.
    let ring = RingReader::<TRADE_WORDS>::open(&data.join("experience/trades.ring"), 5_000).unwrap();
    assert_eq!(ring.range(), 0..after.len() as u64);
    for (n, t) in after.iter().enumerate() {
        let e = TradeExperience::from_words(&ring.get(n as u64).expect("whole record"));
        assert_eq!(Some(e.trade_id), t["id"].as_u64());
        assert_eq!(Some(f64::from(e.reward as i8)), t["reward"].as_f64().map(|r| r.trunc()));
    }

    // The books balance across the crash.
    let last = records(&data, "positions").pop().unwrap();
    let paid: f64 = last["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["filled"] == true)
        .map(|p| p["fees"].as_f64().unwrap() + p["funding"].as_f64().unwrap())
        .sum();
    let pnl: f64 = after.iter().map(|t| t["pnl"].as_f64().unwrap()).sum();
    let wallet = last["wallet"].as_f64().unwrap();
    assert!((wallet - (10_000.0 + pnl - paid)).abs() < 1e-6, "wallet {wallet}, pnl {pnl}, paid {paid}");
}
