//! What the control thread reads and drives: counters, the brain link, the mover.

use super::mover::{Assignment, Mover};
use crate::brain::port::BrainLink;
use crate::brain::stats::BrainStats;
use crate::desk::stats::DeskStats;
use crate::feed::shard::ShardStats;
use crate::ring::RingStats;
use aegis_wire::SymbolTable;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Everything the control thread reads or drives.
pub struct ControlContext {
    /// Symbols.
    pub table: Arc<SymbolTable>,
    /// Brain counters.
    pub brain: Arc<BrainStats>,
    /// Desk counters.
    pub desk: Arc<DeskStats>,
    /// Per shard.
    pub shards: Vec<Arc<ShardStats>>,
    /// Per shard ring.
    pub rings: Vec<Arc<RingStats>>,
    /// Symbol → shard.
    pub assignment: Arc<Mutex<Assignment>>,
    /// The data dir (journals), if any.
    pub data_dir: Option<PathBuf>,
    /// Ring capacities of the experience log (for `export`).
    pub data: crate::store::ledger::DataConfig,
    /// The brain link (one request at a time).
    pub link: Mutex<BrainLink>,
    /// When the run started.
    pub started: Instant,
    /// Transport in use.
    pub transport: String,
    /// The thread plan in use, and why (`one-thread (auto: …)`).
    pub threads: String,
    /// Moves symbols between shards.
    pub mover: Option<Mover>,
    /// Stalls the watchdog reported.
    pub watchdog_alerts: Arc<std::sync::atomic::AtomicU64>,
    /// The brain's latency buckets.
    pub stages: Arc<crate::latency::SharedStages>,
    /// The model loader's counters (a run with a data dir).
    pub model: Option<Arc<crate::model_loader::ModelStats>>,
}
