//! Crash recovery: `aegis run` on the synthetic market is killed with SIGKILL at random
//! moments once trades are being journaled, restarted on the same data directory each time,
//! and finally run to a clean stop. No closed trade may be
//! lost, rewritten or doubled, open positions come back, the experience log matches the
//! trades journal record for record, and the books still balance.

use aegis_wire::experience::{RingReader, TradeExperience, TRADE_WORDS};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn records(data: &Path, name: &str) -> Vec<Value> {
    // A torn tail (the kill may cut a write) is left out, as a restart cuts it.
    aegis::store::ledger::read_journal(data, name).unwrap().into_iter().filter_map(Result::ok).collect()
}

/// Journal records of every kind on disk now (a live engine adds to these all the time).
fn journaled(data: &Path) -> usize {
    aegis::store::ledger::JOURNALS.iter().map(|name| records(data, name).len()).sum()
}

/// A pseudo-random delay in `0..max_ms` that differs per process and per kill.
fn random_delay(kill: usize, max_ms: u64) -> Duration {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let seed =
        u64::from(std::process::id()) ^ (kill as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(clock);
    Duration::from_millis(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % max_ms)
}

/// Kills per run: `AEGIS_CRASH_KILLS` (scripts/crash-loop.sh asks for 50), else 2.
fn kills() -> usize {
    std::env::var("AEGIS_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

#[test]
fn kill_9_loses_and_doubles_no_trade_and_restores_positions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut before: Vec<Value> = Vec::new();
    let kills = kills();
    for kill in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(["run", "--quiet", "--for", "150s", "--data-dir", data.to_str().unwrap()])
            .spawn()
            .expect("aegis");
        // Synchronise on the journals: the first run waits for four trades on disk; later
        // runs for any new record (the restarted engine is live and writing); then a random
        // delay, so kills land at arbitrary moments, mid-write included.
        let deadline = Instant::now() + Duration::from_secs(140);
        let (trades_wanted, records_wanted) = (if kill == 0 { 4 } else { 0 }, journaled(&data) + 1);
        while records(&data, "trades").len() < trades_wanted || journaled(&data) < records_wanted {
            assert!(Instant::now() < deadline, "kill {kill}: nothing journaled in time");
            assert!(child.try_wait().unwrap().is_none(), "kill {kill}: aegis exited early");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(random_delay(kill, 3_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let now = records(&data, "trades");
        assert_eq!(
            &now[..before.len()],
            &before[..],
            "kill {kill}: trades journaled before are kept as they were"
        );
        let mut ids: Vec<u64> = now.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), now.len(), "kill {kill}: no trade closed twice");
        before = now;
    }
    eprintln!("{kills} kills, {} trades journaled across them", before.len());
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
