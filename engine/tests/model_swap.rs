//! The learned model's hot swap end to end: `aegis run` (no sidecar) with a model published
//! into its weights file by another writer — the loader validates it, the brain swaps it in,
//! the student takes over once the teacher's trades are in, and a NaN model published next
//! is refused with an alert while the old one keeps serving. And the whole learning loop on
//! the default config: the teacher's trades pay for a training run in the sidecar, whose
//! model beats the base rate, is published and swapped in, and the student trades on it.

mod common;

use aegis_wire::weights::{offset, WeightsWriter};
use common::confident_model;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn ctl(socket: &Path, what: &str) -> Value {
    common::aegisctl_json(socket, &[what]).unwrap()
}

/// An `aegis run` on `config_text` for at most `run_for`, with its data dir, control socket
/// and summary under `dir`; returned once its control socket listens.
struct Engine {
    child: std::process::Child,
    data: std::path::PathBuf,
    socket: std::path::PathBuf,
    summary: std::path::PathBuf,
}

impl Engine {
    fn start(dir: &Path, config_text: &str, run_for: &str) -> Self {
        let config = dir.join("config.toml");
        std::fs::write(&config, config_text).unwrap();
        let (data, socket, summary) = (dir.join("data"), dir.join("ctl.sock"), dir.join("summary.json"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(["run", "--quiet", "--for", run_for, "--config", config.to_str().unwrap()])
            .args(["--data-dir", data.to_str().unwrap(), "--control-socket", socket.to_str().unwrap()])
            .args(["--summary", summary.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(common::wait_for_line(&mut child, "aegis: control socket").is_some());
        Self { child, data, socket, summary }
    }

    /// Stops it with SIGINT; its summary.
    fn stop(mut self) -> Value {
        assert!(Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
        assert!(self.child.wait().unwrap().success());
        serde_json::from_str(&std::fs::read_to_string(&self.summary).unwrap()).unwrap()
    }
}

#[test]
fn a_published_model_is_swapped_in_the_student_trades_and_a_nan_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\nspawn_sidecar = true", "\nspawn_sidecar = false")
        .replace("\nteacher_trades = 50", "\nteacher_trades = 3");
    assert!(text.contains("spawn_sidecar = false") && text.contains("teacher_trades = 3"));
    let engine = Engine::start(dir.path(), &text, "200s");
    let (data, socket) = (engine.data.clone(), engine.socket.clone());
    assert_eq!(ctl(&socket, "model")["model_generation"], 0, "the teacher alone at first");

    let mut writer = WeightsWriter::open(&data.join("models").join("weights.bin")).unwrap();
    writer.publish(&confident_model(1));
    common::eventually("generation 1 serving", || ctl(&socket, "model")["model_generation"] == 1);
    common::eventually("the student in charge", || ctl(&socket, "status")["phase"] == "student");
    common::eventually("a model-made signal", || {
        aegis::store::ledger::read_journal(&data, "signals")
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
        aegis::store::ledger::read_journal(&data, "alerts")
            .unwrap()
            .iter()
            .any(|a| a.as_ref().is_ok_and(|a| a["what"].as_str().unwrap().contains("NaN")))
    });

    let summary = engine.stop();
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

/// SPEC §7's loop on the embedded default config, sidecar included: 50 teacher trades, a
/// training run that beats the base rate, generation 1 published and served, then trades
/// the student opened on the model's say.
#[test]
fn teacher_trades_pay_for_a_published_model_that_the_student_then_trades_on() {
    let sidecar = Path::new(env!("CARGO_BIN_EXE_aegis")).with_file_name("aegis-sidecar");
    assert!(
        sidecar.exists(),
        "{} is built by the workspace's tests (`cargo test` at the root)",
        sidecar.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\nsidecar = \"\"", &format!("\nsidecar = \"{}\"", sidecar.display()));
    let engine = Engine::start(dir.path(), &text, "400s");
    let (data, socket) = (engine.data.clone(), engine.socket.clone());
    let limit = std::time::Duration::from_secs(300);
    common::eventually_within("a published model serving", limit, || {
        ctl(&socket, "model")["model_generation"].as_u64() >= Some(1)
    });
    let trades = || -> Vec<Value> {
        aegis::store::ledger::read_journal(&data, "trades")
            .unwrap()
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    };
    common::eventually_within("a closed trade the student opened", limit, || {
        trades().iter().any(|t| t["rule"] == "model")
    });
    let summary = engine.stop();

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("models/model-1.json")).unwrap()).unwrap();
    assert_eq!(report["published"], true, "{report}");
    let test = &report["test"];
    assert!(test["log_loss"].as_f64() < test["base_rate_log_loss"].as_f64(), "{test}");
    assert!(report["samples"]["trades"].as_u64() > Some(0), "closed trades weighed in: {report}");
    let trades = trades();
    let first_student = trades.iter().position(|t| t["rule"] == "model").unwrap();
    assert!(first_student >= 50, "the teacher's 50 trades came first: student trade at {first_student}");
    assert_eq!(summary["phase"], "student", "{summary}");
    assert!(summary["model_generation"].as_u64() >= Some(1), "{summary}");
    assert!(summary["model_swaps"].as_u64() >= Some(1), "{summary}");
}
