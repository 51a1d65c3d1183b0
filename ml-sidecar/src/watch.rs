//! Where the sidecar reads and writes under the data directory, one training run end to end
//! (read, train, report, publish or reject, drift), and the loop that runs it when 50 more
//! trades have closed or when asked.

use crate::data::{read_samples, read_trades, split, DataError};
use crate::drift;
use crate::train::{train, TrainConfig, TrainError};
use aegis_journal::{FsyncPolicy, JournalFile};
use aegis_wire::experience::{capacity_of, RingReader, TRADE_WORDS};
use aegis_wire::weights::{ModelParams, WeightsError, WeightsReader, WeightsWriter};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The files the sidecar uses under a data directory.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Bar samples (read).
    pub samples: PathBuf,
    /// Trade experiences (read: their count paces training).
    pub trades: PathBuf,
    /// The weights file (written).
    pub weights: PathBuf,
    /// Model reports (written).
    pub models: PathBuf,
    /// Publications, rejections and drift alerts (written).
    pub journal: PathBuf,
    /// Present when an operator asked for a training run (`aegisctl train`).
    pub request: PathBuf,
}

impl Paths {
    /// The layout under `data_dir`.
    pub fn under(data_dir: &Path) -> Self {
        let models = data_dir.join("models");
        Self {
            samples: data_dir.join("experience").join("samples.ring"),
            trades: data_dir.join("experience").join("trades.ring"),
            weights: models.join("weights.bin"),
            request: models.join("train.request"),
            journal: data_dir.join("journal").join("models.journal"),
            models,
        }
    }
}

/// Why a run failed (nothing is published then).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The experience log.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Training.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The weights file.
    #[error("weights file: {0}")]
    Weights(#[from] WeightsError),
    /// Reports or journal.
    #[error("{0}")]
    Io(String),
}

/// What one run did.
#[derive(Debug)]
pub struct RunSummary {
    /// The generation it trained (published or not).
    pub generation: u64,
    /// Whether it was published.
    pub published: bool,
    /// Why.
    pub reason: String,
    /// Its report file.
    pub report: PathBuf,
}

/// Trains once on what the experience log holds now; publishes if it beats the serving
/// model and the base rate; writes the report, the drift alerts and the journal record.
pub fn run_once(
    paths: &Paths,
    config: &TrainConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<RunSummary, RunError> {
    let io = |e: &dyn std::fmt::Display| RunError::Io(e.to_string());
    std::fs::create_dir_all(&paths.models).map_err(|e| io(&e))?;
    let mut writer = WeightsWriter::open(&paths.weights)?;
    let mut previous = ModelParams::zeroed();
    let serving = WeightsReader::open(&paths.weights)?.read_into(&mut previous).unwrap_or(false);
    let (samples, skipped) = read_samples(&paths.samples)?;
    progress(&format!(
        "{} bar samples ({skipped} skipped as not finite); device {:?}",
        samples.len(),
        config.device
    ));
    let mut data = split(samples, config.train_share, config.validation_share)?;
    let (trades, bad_trades) = read_trades(&paths.trades)?;
    let used = data.add_trades(&trades);
    progress(&format!(
        "{used} of {} closed trades weigh into training ({bad_trades} skipped as not finite; the rest ended after it)",
        trades.len()
    ));
    let generation = writer.generation().max(previous.generation) + 1;
    let outcome = train(&data, config, serving.then_some(&previous), generation, progress)?;
    let previous_report = serving
        .then(|| read_report(&paths.models.join(format!("model-{}.json", previous.generation))))
        .flatten();
    // The test log-loss the report already holds is the unshuffled baseline.
    let base = outcome.report["test"]["log_loss"].as_f64().unwrap_or(f64::NAN);
    let importance = drift::importance(&outcome.model, &data, base);
    let test_samples: Vec<f64> = data
        .sequences
        .iter()
        .flatten()
        .filter(|(_, p)| *p == crate::data::Part::Test)
        .map(|(s, _)| s.features[aegis_analytics::feature::LIQUIDITY_GRAB])
        .collect();
    let grab_share =
        test_samples.iter().filter(|&&v| v > 0.0).count() as f64 / test_samples.len().max(1) as f64;
    let previous_importance: Option<Vec<f64>> = previous_report.as_ref().and_then(|r| {
        r["drift"]["importance"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect())
    });
    let alerts = drift::alerts(&importance, previous_importance.as_deref(), grab_share);
    for a in &alerts {
        progress(&format!("drift {}: {}", a.level, a.what));
    }
    let mut report = outcome.report;
    report["drift"] = json!({
        "importance": importance,
        "liquidity_grab_share": grab_share,
        "alerts": alerts.iter().map(|a| json!({"level": a.level, "what": a.what})).collect::<Vec<_>>(),
    });
    let name = if outcome.publish {
        format!("model-{generation}.json")
    } else {
        format!("rejected-{generation}.json")
    };
    let report_path = paths.models.join(&name);
    std::fs::write(&report_path, serde_json::to_string_pretty(&report).unwrap_or_default())
        .map_err(|e| io(&e))?;
    if outcome.publish {
        writer.publish(&outcome.model);
    }
    let (mut journal, _) =
        JournalFile::open(&paths.journal, FsyncPolicy::Always, |_| {}).map_err(|e| io(&e))?;
    let record = json!({
        "event": if outcome.publish { "published" } else { "rejected" },
        "generation": generation,
        "reason": outcome.reason,
        "report": name,
        "test_log_loss": report["test"]["log_loss"],
        "drift": report["drift"]["alerts"],
    });
    journal.append(record.to_string().as_bytes()).map_err(|e| io(&e))?;
    journal.sync().map_err(|e| io(&e))?;
    Ok(RunSummary { generation, published: outcome.publish, reason: outcome.reason, report: report_path })
}

fn read_report(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Trades the engine has closed, as the experience log counts them (0 before it exists).
fn trades_closed(path: &Path) -> u64 {
    let Ok(capacity) = capacity_of(path, TRADE_WORDS) else { return 0 };
    RingReader::<TRADE_WORDS>::open(path, capacity).map_or(0, |r| r.range().end)
}

/// Trains whenever `every` more trades have closed since the last run, or a request file
/// appears, until `stop` — or, given the engine's pid as `parent`, until this process is no
/// longer its child (an engine killed with SIGKILL leaves no sidecar behind). A failed run
/// is reported and the loop goes on.
pub fn watch(
    paths: &Paths,
    config: &TrainConfig,
    every: u64,
    parent: Option<u32>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) {
    let mut trained_at = None::<u64>;
    let orphaned = || parent.is_some_and(|p| std::os::unix::process::parent_id() != p);
    while !stop.load(Ordering::Relaxed) && !orphaned() {
        let trades = trades_closed(&paths.trades);
        let asked = paths.request.exists();
        let due = trades >= trained_at.unwrap_or(0) + every;
        if asked || due {
            if asked {
                let _ = std::fs::remove_file(&paths.request);
                progress("training: asked by an operator");
            } else {
                progress(&format!("training: {trades} trades closed"));
            }
            match run_once(paths, config, progress) {
                Ok(s) => {
                    progress(&format!("generation {}: {} ({})", s.generation, s.reason, s.report.display()))
                }
                Err(e) => progress(&format!("training failed, nothing published: {e}")),
            }
            trained_at = Some(trades);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
