//! Training inside a replay (`--learn`): the sidecar's one-shot run at the same trigger as
//! live, its published model handed to the student.

use super::error::ReplayError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Training inside a replay: the sidecar's one-shot run (`aegis-sidecar train --once`, on the
/// CPU, one libtorch thread, fixed seed) at the same trigger as live — every `every` closed
/// trades — on the experience the replay has logged so far; what it publishes is handed to
/// the student, who takes it at the next closed bar.
#[derive(Clone, Debug)]
pub struct Learn {
    /// The aegis-sidecar binary.
    pub sidecar: PathBuf,
    /// Closed trades between trainings (`ml.train_every`).
    pub every: u64,
}

/// One training in a replay: the sidecar's one-shot run on `dir`'s experience log so far;
/// a newly published model goes to the student. A run that fails (too few samples yet) is
/// reported and the replay goes on. Nothing timed goes into the entry, so the report stays
/// byte-identical from run to run.
pub(crate) fn train(
    learn: &Learn,
    dir: &Path,
    closed_trades: u64,
    at_ms: i64,
    feed: &mut crate::model_loader::ModelFeed,
) -> Result<Value, ReplayError> {
    let before = feed.stats().generation.load(std::sync::atomic::Ordering::Relaxed);
    let output = std::process::Command::new(&learn.sidecar)
        .args(["train", "--once", "--cpu", "--threads", "1", "--data-dir"])
        .arg(dir)
        .args(["--parent", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ReplayError::Learn(format!("{}: {e}", learn.sidecar.display())))?;
    let mut entry = json!({ "after_trades": closed_trades, "at_ms": at_ms });
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        entry["error"] = json!(stderr.lines().last().unwrap_or("the sidecar failed").trim());
        return Ok(entry);
    }
    let report_path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let report: Value = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    entry["generation"] = report["generation"].clone();
    entry["published"] = report["published"].clone();
    entry["reason"] = report["reason"].clone();
    entry["test_log_loss"] = report["test"]["log_loss"].clone();
    entry["samples"] = report["samples"].clone();
    let weights = dir.join("models").join("weights.bin");
    if report["published"] == true {
        let model = crate::model_loader::read_published(&weights)?;
        if model.generation > before {
            feed.hand_over(model);
        }
    }
    Ok(entry)
}
