//! `aegis-sidecar`: trains on the engine's experience log and publishes through the weights
//! file. `train --once` runs one training; `watch` trains every 50 closed trades and when
//! `aegisctl train` asks.

use aegis_sidecar::train::TrainConfig;
use aegis_sidecar::watch::{run_once, watch, Paths};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "aegis-sidecar", about = "Trains Aegis's models and publishes them to the engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// The engine's data directory.
    #[arg(long = "data-dir")]
    data_dir: PathBuf,
    /// Compute on the CPU even when CUDA is available.
    #[arg(long)]
    cpu: bool,
    /// libtorch threads (1 when sharing a small machine with the engine).
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// LSTM training passes (the best on validation is kept).
    #[arg(long, default_value_t = 20)]
    lstm_epochs: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Train once now.
    Train {
        #[command(flatten)]
        common: Common,
        /// Exit after the one run (the only mode; kept for scripts).
        #[arg(long)]
        once: bool,
        /// The engine (or replay) holding the data dir, that asked for this run.
        #[arg(long)]
        parent: Option<u32>,
    },
    /// Train every `--every` closed trades, and whenever asked, until stopped.
    Watch {
        #[command(flatten)]
        common: Common,
        /// Closed trades between runs.
        #[arg(long, default_value_t = 50)]
        every: u64,
        /// Stop when this process (the engine that started the sidecar) is gone.
        #[arg(long)]
        parent: Option<u32>,
    },
}

fn config(common: &Common) -> TrainConfig {
    tch::set_num_threads(common.threads.max(1));
    let device = if common.cpu { tch::Device::Cpu } else { tch::Device::cuda_if_available() };
    eprintln!(
        "aegis-sidecar: device {device:?} (CUDA available: {}), {} libtorch thread(s)",
        tch::Cuda::is_available(),
        common.threads.max(1)
    );
    TrainConfig { device, lstm_epochs: common.lstm_epochs, ..TrainConfig::default() }
}

/// Refuses to publish into a data dir that another engine owns, unless this sidecar is
/// that engine's (`--parent` names the lock's holder): a hand-run trainer would publish
/// over the sidecar the engine runs itself (`aegisctl train` asks that one).
fn check_owner(data_dir: &std::path::Path, parent: Option<u32>) -> anyhow::Result<()> {
    let holder = aegis_journal::DataDirLock::holder(data_dir)
        .with_context(|| format!("checking the data dir lock under {}", data_dir.display()))?;
    match holder {
        None => Ok(()),
        Some(pid) if pid.is_some() && pid == parent => Ok(()),
        Some(pid) => {
            let who = pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
            anyhow::bail!(
                "data dir {} is in use by a running engine ({who}); it runs its own sidecar \
                 (ask it with `aegisctl train`)",
                data_dir.display()
            )
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut progress = |line: &str| eprintln!("aegis-sidecar: {line}");
    match Cli::parse().command {
        Command::Train { common, parent, .. } => {
            check_owner(&common.data_dir, parent)?;
            let config = config(&common);
            let summary =
                run_once(&Paths::under(&common.data_dir), &config, &mut progress).context("training")?;
            println!("{}", summary.report.display());
        }
        Command::Watch { common, every, parent } => {
            check_owner(&common.data_dir, parent)?;
            let config = config(&common);
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
            }
            watch(&Paths::under(&common.data_dir), &config, every, parent, &stop, &mut progress);
        }
    }
    Ok(())
}
