//! The control plane (SPEC §9): a Unix-domain socket (mode 0600) speaking versioned,
//! line-delimited JSON, served by one thread off the hot path. Queries read the shared
//! counters; actions reach the brain through a small command ring and come back through a
//! reply ring, which the brain polls between batches (it never blocks on them).
//!
//! - [`server`]: the socket, its peer check and one thread per client.
//! - [`handlers`]: one answer per request.
//! - [`mover`]: make-before-break moves of symbols between shards.
//! - [`error`]: why a request was refused.

pub mod error;
pub mod handlers;
pub mod mover;
pub mod server;

pub use error::ControlError;
pub use handlers::handle;
pub use mover::{mover, Assignment, Mover, MOVE_OVERLAP};
pub use server::{peer_uid, serve, ControlServer, MAX_CLIENTS};

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
    /// Moves symbols between shards.
    pub mover: Option<Mover>,
    /// Stalls the watchdog reported.
    pub watchdog_alerts: Arc<std::sync::atomic::AtomicU64>,
    /// The brain's latency buckets.
    pub stages: Arc<crate::latency::SharedStages>,
    /// The model loader's counters (a run with a data dir).
    pub model: Option<Arc<crate::model_loader::ModelStats>>,
}
