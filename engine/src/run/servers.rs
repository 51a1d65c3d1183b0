//! The run's two servers beside the hot path: the control socket (which takes the brain's
//! command port and the shards' subscription rings) and the metrics endpoint.

use super::error::RunError;
use crate::brain::port::BrainControl;
use crate::brain::stats::BrainStats;
use crate::config::RunConfig;
use crate::desk::stats::DeskStats;
use crate::execution::live::gateway::GatewayStats;
use crate::feed::shard::ShardStats;
use crate::feed::subscription::ShardCommand;
use crate::latency::SharedStages;
use crate::model_loader::ModelStats;
use crate::ops::control::{Assignment, ControlContext, ControlServer};
use crate::ops::metrics::{MetricsContext, MetricsServer};
use crate::ring::RingStats;
use aegis_wire::SymbolTable;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The counters both servers read.
pub(crate) struct Counters {
    /// Symbols.
    pub table: Arc<SymbolTable>,
    /// The brain's.
    pub brain: Arc<BrainStats>,
    /// The desk's.
    pub desk: Arc<DeskStats>,
    /// Each shard's.
    pub shards: Vec<Arc<ShardStats>>,
    /// Each shard ring's.
    pub rings: Vec<Arc<RingStats>>,
    /// The brain's latency buckets.
    pub stages: Arc<SharedStages>,
    /// The model loader's, with a data dir.
    pub model: Option<Arc<ModelStats>>,
    /// Stalls the watchdog reported.
    pub watchdog_alerts: Arc<AtomicU64>,
}

/// Binds the control socket at `path`; returns the brain's end of the command port.
pub(crate) fn start_control(
    config: &RunConfig,
    path: &Path,
    counters: &Counters,
    shard_commands: Vec<Mutex<rtrb::Producer<ShardCommand>>>,
    transport: &str,
    threads: &str,
) -> Result<(ControlServer, BrainControl), RunError> {
    let (link, brain_end) = crate::brain::port::brain_link();
    let shards = config.feed.shards.max(1);
    let assignment =
        Arc::new(Mutex::new(Assignment { shard: (0..counters.table.len()).map(|i| i % shards).collect() }));
    let mover = crate::ops::control::mover(
        shard_commands,
        counters.shards.clone(),
        assignment.clone(),
        counters.table.clone(),
    );
    let context = ControlContext {
        table: counters.table.clone(),
        brain: counters.brain.clone(),
        desk: counters.desk.clone(),
        shards: counters.shards.clone(),
        rings: counters.rings.clone(),
        assignment,
        data_dir: config.data.dir.clone(),
        data: config.data.clone(),
        link: Mutex::new(link),
        started: Instant::now(),
        transport: transport.to_string(),
        threads: threads.to_string(),
        mover: Some(mover),
        watchdog_alerts: counters.watchdog_alerts.clone(),
        stages: counters.stages.clone(),
        model: counters.model.clone(),
    };
    let server = crate::ops::control::serve(path, Arc::new(context))
        .map_err(|e| RunError::Config(format!("control.socket {}: {e}", path.display())))?;
    eprintln!("aegis: control socket {}", path.display());
    Ok((server, brain_end))
}

/// Serves the metrics endpoint at `addr`; a busy port does not stop the engine (the note
/// says why it is not served).
pub(crate) fn start_metrics(
    addr: &str,
    counters: &Counters,
    live: Option<Arc<GatewayStats>>,
) -> (Option<MetricsServer>, Value) {
    let context = MetricsContext {
        watchdog_alerts: counters.watchdog_alerts.clone(),
        brain: counters.brain.clone(),
        desk: counters.desk.clone(),
        shards: counters.shards.clone(),
        rings: counters.rings.clone(),
        stages: counters.stages.clone(),
        live,
        model: counters.model.clone(),
    };
    match crate::ops::metrics::serve(addr, context) {
        Ok(server) => {
            eprintln!("aegis: metrics on http://{}/metrics", server.addr);
            let note = json!({ "addr": server.addr.to_string() });
            (Some(server), note)
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "metrics endpoint not served");
            (None, json!({ "error": format!("{addr}: {e}") }))
        }
    }
}
