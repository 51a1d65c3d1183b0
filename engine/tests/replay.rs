//! `aegis replay` as a backtest: recorded klines through the same brain and desk, twice,
//! give byte-identical journals and reports; the report agrees with the journal; a
//! directory holding a previous run is refused.

mod common;

use std::path::Path;
use std::process::Command;

fn replay(out: &Path) -> std::process::Output {
    let data = common::shared_data().join("klines");
    Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["replay", "--quiet"])
        .arg(data.join("octobot_binance_ETHUSDT_20180716_1m.csv"))
        .arg(data.join("octobot_binance_BTCUSDT_20180428_1m.csv"))
        .args(["--journal", out.join("data").to_str().unwrap()])
        .args(["--summary", out.join("report.json").to_str().unwrap()])
        .args(["--plot", out.join("equity.svg").to_str().unwrap()])
        .output()
        .expect("aegis replay")
}

#[test]
fn the_same_recording_replays_to_identical_journals_and_reports() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        let out = replay(dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |dir: &tempfile::TempDir, rel: &str| std::fs::read(dir.path().join(rel)).unwrap();
    for rel in [
        "report.json",
        "data/journal/trades.journal",
        "data/journal/signals.journal",
        "data/journal/positions.journal",
        "equity.svg",
    ] {
        assert_eq!(read(&a, rel), read(&b, rel), "{rel} differs between two replays");
    }
    let report: serde_json::Value = serde_json::from_slice(&read(&a, "report.json")).unwrap();
    let trades: Vec<serde_json::Value> = aegis::store::ledger::read_journal(&a.path().join("data"), "trades")
        .unwrap()
        .into_iter()
        .map(|r| r.expect("whole record"))
        .collect();
    assert!(!trades.is_empty(), "the teacher trades the recorded series: {report}");
    assert_eq!(report["trades"].as_u64(), Some(trades.len() as u64));
    let pnl: f64 = trades.iter().map(|t| t["pnl"].as_f64().unwrap()).sum();
    assert!((report["pnl_net"].as_f64().unwrap() - pnl).abs() < 1e-9, "{report}");
    let wins = trades.iter().filter(|t| t["pnl"].as_f64().unwrap() > 0.0).count();
    assert_eq!(report["wins"].as_u64(), Some(wins as u64));
    assert_eq!(report["parse_errors"], 0);
    assert_eq!(report["ring_drops"], 0);
    let rows: usize = ["octobot_binance_ETHUSDT_20180716_1m.csv", "octobot_binance_BTCUSDT_20180428_1m.csv"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(common::shared_data().join("klines").join(f))
                .unwrap()
                .lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum();
    assert_eq!(report["bars_closed"].as_u64(), Some(rows as u64), "every recorded bar closes: {report}");
    let drawdown = report["max_drawdown"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&drawdown));
    assert!(String::from_utf8(read(&a, "equity.svg")).unwrap().starts_with("<svg"));
    // Export: the journal's trades and the rings' experiences and samples as CSV and
    // Parquet, read back by Python's csv module and by pyarrow (independent readers).
    let csv_dir = a.path().join("csv");
    let status = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["export", a.path().join("data").to_str().unwrap(), "--out", csv_dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let count = |name: &str| {
        let out = Command::new("python3")
            .args(["-c", "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); print(len(rows), len(rows[0]) if rows else 0)"])
            .arg(csv_dir.join(name))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(count("trades.csv"), format!("{} 18", trades.len()));
    let parquet = |name: &str, sum: &str| {
        let script = format!(
            "import pyarrow.parquet as pq,sys; t=pq.read_table(sys.argv[1]); print(t.num_rows, t.num_columns, repr(sum(t.column('{sum}').to_pylist())))"
        );
        let out = Command::new(common::repo().join(".venv/bin/python"))
            .args(["-c", &script])
            .arg(csv_dir.join(name))
            .output()
            .expect(".venv/bin/python (scripts/setup.sh creates it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let t = parquet("trades.parquet", "pnl");
    let fields: Vec<&str> = t.split(' ').collect();
    assert_eq!((fields[0], fields[1]), (trades.len().to_string().as_str(), "18"), "{t}");
    assert!((fields[2].parse::<f64>().unwrap() - pnl).abs() < 1e-9, "{t} vs {pnl}");
    assert!(parquet("experiences.parquet", "reward").starts_with(&format!("{} 26 ", trades.len())));
    assert!(parquet("samples.parquet", "horizon").contains(" 22 "));
    assert_eq!(count("experiences.csv"), format!("{} 26", trades.len()));
    let samples = count("samples.csv");
    assert!(samples.ends_with(" 22") && !samples.starts_with("0 "), "{samples}");
    // A directory with a previous run's journals is refused, not appended to.
    let again = replay(a.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds journals"));
}

#[test]
fn a_dumped_synthetic_market_backtests_like_a_recording() {
    use exchange_sim::synthetic::{Synthetic, SyntheticConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticConfig { symbols: 2, history_bars: 300, ..SyntheticConfig::default() };
    let channels = ["aggTrade", "kline_1m", "markPrice@1s"].map(String::from);
    let dump = |name: &str| {
        let path = dir.path().join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        Synthetic::new(&config).dump(20, &channels, &mut out).unwrap();
        std::io::Write::flush(&mut out).unwrap();
        path
    };
    let (a, b) = (dump("a.txt"), dump("b.txt"));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "the seeded market dumps identically");
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["replay", "--quiet"])
        .arg(&a)
        .args(["--summary", dir.path().join("report.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["parse_errors"], 0, "{report}");
    // 300 bars of history and 20 streamed minutes per symbol.
    assert_eq!(report["bars_closed"].as_u64(), Some(2 * 320), "{report}");
    assert!(report["signals"].as_u64().unwrap() > 0, "warm from the history, the teacher decides: {report}");
}

/// `--set section.key=value` reaches the replay through the engine's own config loader: a
/// changed fee changes the report's fees; an unknown key or a bad value is refused before
/// anything runs, naming the override; the merge order is reported.
#[test]
fn overrides_from_the_command_line_are_checked_like_the_file() {
    let data = common::shared_data().join("klines/octobot_binance_ETHUSDT_20180716_1m.csv");
    let run_with = |flags: &[&str], sets: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aegis"));
        command.args(["replay", "--quiet"]).args(flags).arg(&data);
        for set in sets {
            command.args(["--set", set]);
        }
        command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE").output().unwrap()
    };
    let run = |sets: &[&str]| run_with(&[], sets);
    let report = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let plain = report(run(&[]));
    let dearer = report(run(&["broker.taker_fee=0.001", "broker.maker_fee=0.0004"]));
    assert_eq!(plain["order"], "exchange event time");
    assert_eq!(plain["trades"], dearer["trades"], "the same entries");
    let fees = |r: &serde_json::Value| r["fees"].as_f64().unwrap_or_else(|| panic!("fees in {r}"));
    assert!(fees(&dearer) > fees(&plain) * 1.5, "fees {} then {}", fees(&plain), fees(&dearer));
    for (set, names) in [
        ("policy.min_confidense=0.7", "unknown field `min_confidense`"),
        ("risk.max_positions=-1", "max_positions"),
    ] {
        let out = run(&["broker.taker_fee=0.001", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set}: refused");
        assert!(stderr.contains(&format!("--set {set}: ")) && stderr.contains(names), "{set}: {stderr}");
        assert!(out.stdout.is_empty(), "{set}: nothing ran");
        // The check-only run refuses it the same way, and passes a good one.
        let mut check = run_with(&["--check"], &[set]);
        assert!(!check.status.success() && String::from_utf8_lossy(&check.stderr).contains(names), "{set}");
        check = run_with(&["--check"], &["risk.max_positions=2"]);
        let checked: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(
            (checked["check"].as_str(), checked["symbols"][0].as_str()),
            (Some("ok"), Some("ETHUSDT"))
        );
    }
    // A bad line in the input: the check names the file and the line.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad_binance_ETHUSDT_1m.csv");
    let mut text = std::fs::read_to_string(&data).unwrap();
    text.push_str("1531700000000,not-a-price,1,1,1,1\n");
    std::fs::write(&bad, &text).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_aegis")).args(["replay", "--check"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().count();
    assert!(
        !out.status.success() && stderr.contains(&format!("bad_binance_ETHUSDT_1m.csv:{line}: ")),
        "{stderr}"
    );
}

/// `aegis replay --model WEIGHTS`: the student serves a published model in replay once the
/// teacher's trades are in (as live), deterministically; a file that is not a weights file
/// is refused as the live loader refuses it, before anything runs.
#[test]
fn a_published_model_trades_in_replay_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights.bin");
    aegis_wire::weights::WeightsWriter::open(&weights).unwrap().publish(&common::confident_model(7));
    let klines = common::shared_data().join("klines");
    let run = |out: &Path, model: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(["replay", "--quiet", "--set", "policy.teacher_trades=3", "--model"])
            .arg(model)
            .arg(klines.join("octobot_binance_ETHUSDT_20180716_1m.csv"))
            .arg(klines.join("octobot_binance_BTCUSDT_20180428_1m.csv"))
            .args(["--journal", out.join("data").to_str().unwrap()])
            .args(["--summary", out.join("report.json").to_str().unwrap()])
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stderr).to_string())
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let (ok, stderr) = run(out, &weights);
        assert!(ok, "{stderr}");
    }
    let read = |dir: &Path, rel: &str| std::fs::read(dir.join(rel)).unwrap();
    for rel in ["report.json", "data/journal/trades.journal", "data/journal/signals.journal"] {
        assert_eq!(read(&a, rel), read(&b, rel), "{rel} differs between two replays with --model");
    }
    let report: serde_json::Value = serde_json::from_slice(&read(&a, "report.json")).unwrap();
    assert_eq!(report["model"]["generation"], 7, "{report}");
    assert_eq!(report["model"]["serving"], 7, "the brain swapped it in: {report}");
    assert_eq!(report["model"]["phase_at_end"], "student", "{report}");
    // Per phase, and the baselines over the same bars.
    let phases: Vec<&str> =
        report["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["teacher", "student, generation 7"], "{}", report["phases"]);
    let per_phase: u64 =
        report["phases"].as_array().unwrap().iter().map(|p| p["trades"].as_u64().unwrap()).sum();
    assert_eq!(Some(per_phase), report["trades"].as_u64(), "every trade in one phase");
    let alone = &report["baselines"]["teacher_alone"];
    assert!(alone["trades"].as_u64().unwrap() > 0, "{alone}");
    assert_ne!(alone["pnl_net"], report["pnl_net"], "the teacher alone traded differently: {alone}");
    let hold = &report["baselines"]["buy_and_hold"];
    assert_eq!((hold["available"].as_bool(), hold["symbols"].as_u64()), (Some(true), Some(2)), "{hold}");
    assert!(hold["max_drawdown"].as_f64().unwrap() > 0.0, "{hold}");
    assert!(report["fills"].as_str().unwrap().starts_with("klines only: fills at the bar close"), "{report}");
    // Random entries: five seeds at the teacher's entry rate, with the teacher's exits.
    let random = &report["baselines"]["random_entries"];
    let seeds = random["seeds"].as_array().unwrap_or_else(|| panic!("{random}"));
    assert_eq!(seeds.iter().map(|s| s["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(
        seeds.iter().map(|s| s["trades"].as_u64().unwrap()).sum::<u64>() > 0,
        "the coin traded: {random}"
    );
    assert!(seeds.windows(2).any(|w| w[0]["pnl_net"] != w[1]["pnl_net"]), "seeds differ: {random}");
    let p = random["entry_probability"].as_f64().unwrap();
    assert!(p > 0.0 && p < 1.0, "{random}");
    let spread = &random["pnl_net"];
    let (lo, mean, hi) =
        (spread["min"].as_f64().unwrap(), spread["mean"].as_f64().unwrap(), spread["max"].as_f64().unwrap());
    assert!(lo <= mean && mean <= hi && lo < hi, "{spread}");
    let rules: Vec<String> = aegis::store::ledger::read_journal(&a.join("data"), "trades")
        .unwrap()
        .into_iter()
        .map(|t| t.expect("whole record")["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(rules.len() > 3, "{rules:?}");
    assert!(rules[..3].iter().all(|r| r != "model"), "the teacher's three first: {rules:?}");
    assert!(rules[3..].iter().any(|r| r == "model"), "then the student's: {rules:?}");
    // Something else: refused before the replay starts.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let (ok, stderr) = run(&dir.path().join("c"), &junk);
    assert!(!ok);
    assert!(
        stderr.contains("--model ") && stderr.contains("model refused: the weights file has another layout"),
        "{stderr}"
    );
    assert!(!dir.path().join("c/report.json").exists(), "nothing ran");
}
