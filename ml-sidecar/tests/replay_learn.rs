//! The learning loop backtested: `aegis replay --learn` over a dumped synthetic market
//! (closed 1m klines of 4 symbols) trains with this sidecar every `train_every` closed
//! trades on what the replay has logged so far, hands what it publishes to the student, and
//! the student trades — twice, with byte-identical reports, journals and weights (CPU, one
//! libtorch thread, fixed seed).

use exchange_sim::synthetic::{Synthetic, SyntheticConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `aegis` binary the workspace built beside this sidecar.
fn aegis() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_aegis-sidecar")).with_file_name("aegis");
    assert!(path.is_file(), "{} (cargo test --workspace builds it)", path.display());
    path
}

/// 300 bars of history and `minutes` streamed minutes of 4 symbols, closed klines only.
fn dump(path: &Path, minutes: u64) {
    let config = SyntheticConfig { symbols: 4, history_bars: 300, ..SyntheticConfig::default() };
    let mut all = Vec::new();
    Synthetic::new(&config).dump(minutes, &["kline_1m".to_string()], &mut all).unwrap();
    let closed: Vec<&str> =
        std::str::from_utf8(&all).unwrap().lines().filter(|l| l.contains("\"x\":true")).collect();
    std::fs::write(path, closed.join("\n") + "\n").unwrap();
}

fn replay(input: &Path, out: &Path) -> Value {
    let output = Command::new(aegis())
        .args([
            "replay",
            "--quiet",
            "--learn",
            "--set",
            "ml.train_every=20",
            "--set",
            "policy.teacher_trades=20",
        ])
        .args(["--set", &format!("ml.sidecar={}", env!("CARGO_BIN_EXE_aegis-sidecar"))])
        .arg(input)
        .arg("--journal")
        .arg(out.join("data"))
        .arg("--summary")
        .arg(out.join("report.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_learning_replay_trains_publishes_and_the_student_trades_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("klines.txt");
    dump(&input, 1_500);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let report = replay(&input, &a);
    replay(&input, &b);
    for rel in ["report.json", "data/journal/trades.journal", "data/models/weights.bin"] {
        let read = |d: &Path| std::fs::read(d.join(rel)).unwrap();
        assert!(read(&a) == read(&b), "{rel} differs between two learning replays");
    }
    let trainings = report["learning"]["trainings"].as_array().unwrap();
    assert!(trainings.len() >= 2, "{report}");
    for (i, t) in trainings.iter().enumerate() {
        assert_eq!(t["after_trades"].as_u64(), Some(20 * (i as u64 + 1)), "every 20 closed trades: {t}");
        assert!(t["samples"]["purged"].as_u64().unwrap() > 0, "the split purges its boundaries: {t}");
    }
    let published = trainings.iter().filter(|t| t["published"] == true).count();
    assert!(published >= 1, "{report}");
    assert!(report["model"]["serving"].as_u64().unwrap() >= 1, "the brain took a published model: {report}");
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases[0]["phase"], "teacher", "{}", report["phases"]);
    assert!(phases.len() >= 2 && phases[1]["phase"].as_str().unwrap().starts_with("student, generation "));
    assert!(report["baselines"]["teacher_alone"]["trades"].as_u64().is_some(), "{}", report["baselines"]);
    assert_eq!(report["baselines"]["buy_and_hold"]["available"], true, "{}", report["baselines"]);
    assert_eq!(report["baselines"]["random_entries"]["seeds"].as_array().map(Vec::len), Some(5));
    assert_eq!(report["length"]["trainable"], true, "{}", report["length"]);
    let journal = Command::new(aegis()).args(["journal", "--json"]).arg(a.join("data")).output().unwrap();
    let student_trades = String::from_utf8_lossy(&journal.stdout)
        .lines()
        .filter(|l| l.contains("\"journal\":\"trades\"") && l.contains("\"rule\":\"model\""))
        .count();
    assert!(student_trades > 0, "the student traded on a model trained in the replay");
}
