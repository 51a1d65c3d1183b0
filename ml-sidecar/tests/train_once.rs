//! A small CPU training run through the real binary: an experience log whose labels follow
//! one feature is learned, beats the base rate and is published (report, weights file,
//! journal), with the closed trades that ended inside the training part weighing in; a
//! second run must beat the serving model to replace it; an experience log of
//! another format version is refused with the reason and nothing is published.

use aegis_wire::experience::{BarSample, RingWriter, TradeExperience, SAMPLE_WORDS, TRADE_WORDS};
use aegis_wire::weights::{ModelParams, WeightsReader};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// 12 symbols × 400 bars: `momentum_atr` (index 9) leans the next return up or down.
fn write_samples(data: &Path) {
    let mut ring =
        RingWriter::<SAMPLE_WORDS>::open(&data.join("experience").join("samples.ring"), 8_192).unwrap();
    let mut seed = 42u64;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for minute in 0..400i64 {
        for symbol in 0..12u16 {
            let mut features = [0.0f64; 18];
            for f in features.iter_mut() {
                *f = next() - 0.5;
            }
            let momentum = next() * 2.0 - 1.0;
            features[9] = momentum;
            let up = next() < 0.5 + 0.4 * momentum;
            let forward_return = if up { 0.001 } else { -0.001 } * (0.5 + next());
            let sample =
                BarSample { symbol, open_time_ms: minute * 60_000, horizon: 5, forward_return, features };
            ring.append(&sample.to_words());
        }
    }
}

/// 30 closed trades, one every 10 minutes; the first 24 end before minute 240, where the
/// training part ends (60 % of 400 minutes). Returns their total weight.
fn write_trades(data: &Path) -> f64 {
    let mut ring = RingWriter::<TRADE_WORDS>::open(&data.join("experience").join("trades.ring"), 64).unwrap();
    let mut weight = 0.0;
    for id in 0..30u64 {
        let reward = [1.0, -3.0, 5.0, -10.0][id as usize % 4];
        let exit_minute = id as i64 * 10 + 5;
        if exit_minute < 240 {
            weight += f64::abs(reward);
        }
        let trade = TradeExperience {
            trade_id: id,
            symbol: (id % 12) as u16,
            entry_time_ms: (exit_minute - 3) * 60_000,
            exit_time_ms: exit_minute * 60_000,
            side: if id % 2 == 0 { 1 } else { -1 },
            roi_pct: reward,
            reward,
            weight: f64::abs(reward),
            features: [0.1; 18],
        };
        ring.append(&trade.to_words());
    }
    weight
}

fn train(data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-sidecar"))
        .args(["train", "--once", "--cpu", "--lstm-epochs", "3", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_learnable_log_is_published_and_a_foreign_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_samples(&data);
    let trade_weight = write_trades(&data);
    let (ok, log) = train(&data);
    assert!(ok, "{log}");
    assert!(log.contains("device Cpu"), "says which device: {log}");
    assert!(log.contains("24 of 30 closed trades weigh into training"), "{log}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("models/model-1.json")).expect(&log))
            .unwrap();
    assert_eq!(report["published"], true, "{report}");
    let test = &report["test"];
    assert!(test["log_loss"].as_f64().unwrap() < test["base_rate_log_loss"].as_f64().unwrap(), "{test}");
    assert!(test["auc"].as_f64().unwrap() > 0.6, "{test}");
    for key in ["accuracy", "calibration_error", "return_mse", "always_flat_return_mse"] {
        assert!(test[key].is_f64(), "{key} in {test}");
    }
    assert!(report["samples"]["train"].as_u64().unwrap() > report["samples"]["test"].as_u64().unwrap());
    assert_eq!(report["samples"]["trades"], 24);
    assert_eq!(report["samples"]["trade_weight"].as_f64(), Some(trade_weight));
    assert_eq!(report["drift"]["importance"].as_array().unwrap().len(), 17);
    let mut model = ModelParams::zeroed();
    assert_eq!(
        WeightsReader::open(&data.join("models/weights.bin")).unwrap().read_into(&mut model),
        Ok(true)
    );
    assert_eq!(model.generation, 1);

    // A second run on the same log: published only if it beats generation 1 on test.
    let (ok, log) = train(&data);
    assert!(ok, "{log}");
    let journal = std::fs::read(data.join("journal/models.journal")).unwrap();
    let records: Vec<Value> =
        aegis_journal::FrameReader::new(&journal).map(|p| serde_json::from_slice(p).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["generation"], 2);
    assert!(records[1]["reason"].as_str().unwrap().contains("serving model"), "{}", records[1]);

    // Another format version: refused, with the reason; nothing new published.
    let foreign = dir.path().join("foreign");
    write_samples(&foreign);
    let ring = foreign.join("experience/samples.ring");
    let mut bytes = std::fs::read(&ring).unwrap();
    bytes[8] = 99; // the format version word
    std::fs::write(&ring, &bytes).unwrap();
    let (ok, log) = train(&foreign);
    assert!(!ok);
    assert!(log.contains("magic or version"), "{log}");
    let mut model = ModelParams::zeroed();
    let served = WeightsReader::open(&foreign.join("models/weights.bin")).map(|r| r.read_into(&mut model));
    assert!(!matches!(served, Ok(Ok(true))), "nothing published");
}

#[test]
fn a_hand_run_sidecar_leaves_a_running_engines_data_dir_alone() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_samples(&data);
    write_trades(&data);
    // Another process holds the data dir the way an engine does (flock, its pid inside).
    let lock = data.join("aegis.lock");
    let script = "import fcntl, os, sys, time\n\
                  f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n\
                  f.write(str(os.getpid())); f.flush(); print('locked', flush=True); time.sleep(120)";
    let mut holder = Command::new("python3")
        .args(["-c", script, lock.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let (ok, log) = train(&data);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!ok, "a hand-run trainer must not publish into a running engine's data dir: {log}");
    assert!(
        log.contains(&format!("is in use by a running engine (pid {})", holder.id())),
        "names the owner: {log}"
    );
    assert!(!data.join("models").join("weights.bin").exists(), "nothing was published");
}
