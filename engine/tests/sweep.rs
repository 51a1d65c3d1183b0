//! `tools/sweep/sweep.py` on a real Ray: a 2 × 2 grid of overrides and one deliberately bad
//! combination over two short synthetic dumps (earlier, later). The bad one is refused by the
//! check-only run before any task starts and reported with its parameters; every other
//! (combination, input) becomes one Parquet row, sorted by parameters; the ranking and the
//! nested walk-forward are written; a task past its timeout is a row with its parameters.
//! Then the same sweep through `--address` on a cluster started with `ray start --head`
//! gives the same Parquet file.

mod common;

use common::repo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Closed 1m klines of 2 symbols: 300 bars of history, then `minutes` streamed.
fn dump(path: &Path, seed: u64, minutes: u64) {
    use exchange_sim::synthetic::{Synthetic, SyntheticConfig};
    let config = SyntheticConfig { symbols: 2, history_bars: 300, seed, ..SyntheticConfig::default() };
    let mut all = Vec::new();
    Synthetic::new(&config).dump(minutes, &["kline_1m".to_string()], &mut all).unwrap();
    let closed: Vec<&str> =
        std::str::from_utf8(&all).unwrap().lines().filter(|l| l.contains("\"x\":true")).collect();
    std::fs::write(path, closed.join("\n") + "\n").unwrap();
}

fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup.sh", python.display());
    python
}

/// Runs the sweep; its exit status and stderr.
fn sweep(spec: &Path, out: &Path, address: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(python());
    command.arg(repo().join("tools/sweep/sweep.py")).arg(spec).arg("--out").arg(out).args([
        "--aegis",
        env!("CARGO_BIN_EXE_aegis"),
        "--cpus",
        "2",
    ]);
    if let Some(address) = address {
        command.args(["--address", address]);
    }
    let output = command.output().expect("python");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The Parquet file's rows, read back by pyarrow.
fn rows(parquet: &Path) -> Vec<Value> {
    let output = Command::new(python())
        .args(["-c", "import json, sys, pyarrow.parquet as pq; print(json.dumps(pq.read_table(sys.argv[1]).to_pylist()))"])
        .arg(parquet)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Stops the `ray start --head` cluster however the test ends.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.0).args(["stop", "--force"]).output();
    }
}

#[test]
fn a_grid_sweeps_on_ray_with_every_task_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let (early, late) = (dir.path().join("early.txt"), dir.path().join("late.txt"));
    dump(&early, 1, 240);
    dump(&late, 2, 240);
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "inputs = [\"early.txt\", \"late.txt\"]\nrandom_seeds = 2\n\
         [grid]\n\"risk.take_profit\" = [0.03, 0.05]\n\"risk.stop_loss\" = [0.01, 0.02]\n\
         [[extra]]\n\"risk.max_positions\" = -1\n",
    )
    .unwrap();
    let local = dir.path().join("local");
    let (status, stderr) = sweep(&spec, &local, None);
    assert_eq!(status, Some(2), "a refused combination makes the exit status 2: {stderr}");
    assert!(stderr.contains("refused before any task: risk.max_positions=-1"), "{stderr}");
    assert!(stderr.contains("8 tasks"), "4 combinations × 2 inputs ran: {stderr}");

    let table = rows(&local.join("results.parquet"));
    assert_eq!(table.len(), 10, "one row per (combination, input), the refused one included");
    let refused: Vec<&Value> = table.iter().filter(|r| r["status"] == "refused").collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for r in &refused {
        assert_eq!(r["param.risk.max_positions"], -1, "{r}");
        assert!(r["error"].as_str().unwrap().contains("max_positions"), "the key is named: {r}");
    }
    let ok: Vec<&Value> = table.iter().filter(|r| r["status"] == "ok").collect();
    assert_eq!(ok.len(), 8);
    for r in &ok {
        assert!(r["trades"].as_u64().is_some() && r["buy_and_hold.pnl_net"].as_f64().is_some(), "{r}");
        assert!(r["random_entries.pnl_net.mean"].as_f64().is_some(), "{r}");
    }
    // Sorted by parameters, then input: the order tasks finished in leaves no trace.
    let key = |r: &&Value| {
        let micro = |k: &str| (r[k].as_f64().unwrap() * 1e6) as i64;
        (micro("param.risk.stop_loss"), micro("param.risk.take_profit"), r["input_index"].as_u64())
    };
    let keys: Vec<_> = ok.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let inputs: Vec<u64> = table.iter().map(|r| r["input_index"].as_u64().unwrap()).collect();
    assert_eq!(inputs, [0, 1].repeat(5), "each combination's inputs together, in time order");
    // The take-profit reaches the replay: some pair of combinations differs in PnL.
    let pnl: Vec<f64> = ok.iter().map(|r| r["pnl_net"].as_f64().unwrap()).collect();
    assert!(pnl.windows(2).any(|w| w[0] != w[1]), "{pnl:?}");

    let ranking = std::fs::read_to_string(local.join("ranking.md")).unwrap();
    assert_eq!(
        ranking.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| rank")).count(),
        4,
        "{ranking}"
    );
    assert!(ranking.contains("risk.max_positions=-1 on early.txt: refused"), "{ranking}");
    let folds: Value =
        serde_json::from_str(&std::fs::read_to_string(local.join("walk_forward.json")).unwrap()).unwrap();
    assert_eq!(folds[0]["chosen_on"], serde_json::json!(["early.txt"]), "{folds}");
    assert_eq!(folds[0]["input"], "late.txt");
    assert!(folds[0]["rank_out_of_sample"].as_u64().is_some_and(|r| (1..=4).contains(&r)), "{folds}");
    for plot in ["ranking.svg", "walk_forward.svg", "reports/c001/early.svg"] {
        assert!(std::fs::read_to_string(local.join(plot)).unwrap().contains("<svg"), "{plot}");
    }

    // A task past its timeout is reported with its parameters, not dropped.
    let slow = dir.path().join("slow.toml");
    std::fs::write(
        &slow,
        "inputs = [\"early.txt\"]\ntimeout_s = 0.001\n[grid]\n\"risk.take_profit\" = [0.04]\n",
    )
    .unwrap();
    let (status, stderr) = sweep(&slow, &dir.path().join("slow"), None);
    assert_eq!(status, Some(2), "{stderr}");
    let timed_out = rows(&dir.path().join("slow/results.parquet"));
    assert_eq!(timed_out.len(), 1);
    assert_eq!(
        (timed_out[0]["status"].as_str(), timed_out[0]["param.risk.take_profit"].as_f64()),
        (Some("timeout"), Some(0.04))
    );

    // The same sweep on a cluster started apart, joined through --address.
    let ray = repo().join(".venv/bin/ray");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _cluster = Cluster(ray.clone());
    let started = Command::new(&ray)
        .args(["start", "--head", "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"])
        .args(["--port", &port.to_string()])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&started.stdout).into_owned() + &String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "{said}");
    let address = said
        .split("ray start --address='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no address in: {said}"))
        .to_string();
    let remote = dir.path().join("remote");
    let (status, stderr) = sweep(&spec, &remote, Some(&address));
    assert_eq!(status, Some(2), "{stderr}");
    assert_eq!(
        std::fs::read(local.join("results.parquet")).unwrap(),
        std::fs::read(remote.join("results.parquet")).unwrap(),
        "the cluster's Parquet file is the local one"
    );
}
