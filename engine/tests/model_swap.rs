//! The learned model's hot swap end to end: `aegis run` (no sidecar) with a model published
//! into its weights file by another writer — the loader validates it, the brain swaps it in,
//! the student takes over once the teacher's trades are in, and a NaN model published next
//! is refused with an alert while the old one keeps serving.

mod common;

use aegis_wire::weights::{offset, ModelParams, WeightsWriter, N_IN};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// A model whose logistic regression alone says "up" with P = σ(3) ≈ 0.95.
fn confident_model(generation: u64) -> ModelParams {
    let mut m = ModelParams::zeroed();
    m.generation = generation;
    let p = &mut m.values;
    for k in 0..N_IN {
        p[offset::STD + k] = 1.0;
    }
    p[offset::LR_B] = 3.0;
    p[offset::ENSEMBLE] = 1.0;
    p[offset::CALIBRATION] = 1.0;
    m
}

fn ctl(socket: &Path, what: &str) -> Value {
    common::aegisctl_json(socket, &[what]).unwrap()
}

#[test]
fn a_published_model_is_swapped_in_the_student_trades_and_a_nan_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\nspawn_sidecar = true", "\nspawn_sidecar = false")
        .replace("\nteacher_trades = 50", "\nteacher_trades = 3");
    assert!(text.contains("spawn_sidecar = false") && text.contains("teacher_trades = 3"));
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("ctl.sock");
    let summary = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "200s", "--config", config.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap(), "--control-socket", socket.to_str().unwrap()])
        .args(["--summary", summary.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(common::wait_for_line(&mut child, "aegis: control socket").is_some());
    assert_eq!(ctl(&socket, "model")["model_generation"], 0, "the teacher alone at first");

    let mut writer = WeightsWriter::open(&data.join("models").join("weights.bin")).unwrap();
    writer.publish(&confident_model(1));
    common::eventually("generation 1 serving", || ctl(&socket, "model")["model_generation"] == 1);
    common::eventually("the student in charge", || ctl(&socket, "status")["phase"] == "student");
    common::eventually("a model-made signal", || {
        aegis::ledger::read_journal(&data, "signals")
            .unwrap()
            .iter()
            .any(|s| s.as_ref().is_ok_and(|s| s["rule"] == "model" && s["side"] == "LONG"))
    });

    let mut nan = confident_model(2);
    nan.values[offset::MLP_W1 + 4] = f32::NAN;
    writer.publish(&nan);
    common::eventually("the NaN model refused", || ctl(&socket, "model")["models_rejected"] == 1);
    assert_eq!(ctl(&socket, "model")["model_generation"], 1, "the old model keeps serving");
    common::eventually("the refusal alerted", || {
        aegis::ledger::read_journal(&data, "alerts")
            .unwrap()
            .iter()
            .any(|a| a.as_ref().is_ok_and(|a| a["what"].as_str().unwrap().contains("NaN")))
    });

    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["model_generation"], 1, "{summary}");
    assert_eq!(summary["models_rejected"], 1, "{summary}");
    assert_eq!(summary["phase"], "student");
}

/// `aegis run` starts the sidecar beside it, and one killed with SIGKILL leaves none behind.
#[test]
fn the_sidecar_starts_with_the_engine_and_goes_when_it_is_killed() {
    let sidecar = std::path::Path::new(env!("CARGO_BIN_EXE_aegis")).with_file_name("aegis-sidecar");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\nsidecar = \"\"", &format!("\nsidecar = \"{}\"", sidecar.display()));
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "120s", "--config", config.to_str().unwrap()])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if !sidecar.exists() {
        // Built with the workspace's tests; without it the engine must say so and go on.
        let line = common::wait_for_line(&mut child, "aegis: aegis-sidecar not found").expect("said");
        assert!(line.contains("teacher trades alone"), "{line}");
        child.kill().unwrap();
        return;
    }
    let line =
        common::wait_for_line(&mut child, "aegis: sidecar started (pid ").expect("the sidecar started");
    let pid: u32 = line["aegis: sidecar started (pid ".len()..].split(')').next().unwrap().parse().unwrap();
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    common::eventually("the orphaned sidecar gone", || !proc.exists());
}
