//! Starting the run's threads and stopping them in order: shards first (no new input), then
//! the brain (it drains its rings and, if asked, flattens), then the gateway (it works off
//! the brain's last intents), the servers, the model loader and sidecar, the REST worker,
//! and the writer last (it drains every ring into the journals).

use super::error::RunError;
use super::sidecar;
use crate::brain::Brain;
use crate::config::RunConfig;
use crate::feed::endpoint::EndpointSpec;
use crate::feed::shard::{ShardConfig, ShardStats};
use crate::feed::subscription::ShardCommand;
use crate::feed::transport::{ShardRun, Transport};
use crate::latency::StageLatency;
use crate::ring::{ring_with_doorbell, Doorbell, RingConsumer, RingStats};
use aegis_wire::SymbolTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The feed shards: one thread and one ring to the brain each.
pub(crate) struct Shards {
    /// The brain's ends of the rings, by shard.
    pub consumers: Vec<RingConsumer>,
    /// Each shard's subscription commands (the control plane's mover takes them).
    pub commands: Vec<Mutex<rtrb::Producer<ShardCommand>>>,
    /// Each shard's counters.
    pub stats: Vec<Arc<ShardStats>>,
    /// Each ring's counters.
    pub rings: Vec<Arc<RingStats>>,
    /// The threads.
    pub threads: Vec<JoinHandle<std::io::Result<()>>>,
    /// The one-thread placement's shard, not started: the brain's thread runs it.
    pub inline: Option<ShardRun>,
}

/// Starts one shard thread per plan on `transport`; each pushes into its own ring, which
/// rings `doorbell` so a parked brain wakes. With `one_thread`, the (one) shard is set up
/// but not started: [`run_one_thread`] runs it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_shards(
    config: &RunConfig,
    plans: Vec<Vec<EndpointSpec>>,
    templates: &[EndpointSpec],
    table: &Arc<SymbolTable>,
    transport: &Arc<dyn Transport>,
    doorbell: &Arc<Doorbell>,
    stop: &Arc<AtomicBool>,
    one_thread: bool,
) -> Result<Shards, RunError> {
    let mut shards = Shards {
        consumers: Vec::new(),
        commands: Vec::new(),
        stats: Vec::new(),
        rings: Vec::new(),
        threads: Vec::new(),
        inline: None,
    };
    for (id, endpoints) in plans.into_iter().enumerate() {
        let (producer, consumer) = ring_with_doorbell(
            config.feed.ring_capacity,
            config.feed.ring_spin,
            table.len(),
            doorbell.clone(),
        );
        shards.rings.push(producer.stats());
        shards.consumers.push(consumer);
        let stats = Arc::new(ShardStats::default());
        shards.stats.push(stats.clone());
        let (commands_tx, commands) = rtrb::RingBuffer::<ShardCommand>::new(64);
        shards.commands.push(Mutex::new(commands_tx));
        let shard = ShardRun {
            config: shard_config(config, id, endpoints, templates),
            symbols: table.clone(),
            ring: producer,
            stats,
            stop: stop.clone(),
            commands: Some(commands),
        };
        if one_thread {
            shards.inline = Some(shard);
            continue;
        }
        let transport = transport.clone();
        shards.threads.push(spawn(&format!("aegis-shard-{id}"), move || transport.run(shard))?);
    }
    Ok(shards)
}

/// The one-thread placement's thread: the shard with `brain` inline (mio) until the shards'
/// stop, then the brain alone until `stop` (draining its rings, flattening if asked), as the
/// brain's own thread ends. The brain reports the shard's core as its own.
pub(crate) fn run_one_thread(
    shard: ShardRun,
    mut brain: Brain,
    doorbell: &Doorbell,
    stop: Arc<AtomicBool>,
) -> StageLatency {
    crate::cpu::place_current("aegis-shard", shard.config.core, brain.placement());
    if let Err(e) = crate::feed::transport::mio::run_shard_with_brain(shard, &mut brain, doorbell) {
        tracing::error!(error = %e, "the one-thread placement's feed stopped; the brain runs on");
    }
    brain.run_here(stop)
}

fn shard_config(
    config: &RunConfig,
    id: usize,
    endpoints: Vec<EndpointSpec>,
    templates: &[EndpointSpec],
) -> ShardConfig {
    ShardConfig {
        id,
        core: config.feed.shard_cores.get(id).copied(),
        idle: config.feed.idle,
        endpoints,
        max_message: config.exchange.max_message,
        backoff_initial: config.exchange.backoff_initial,
        backoff_max: config.exchange.backoff_max,
        seed: 0x5EED ^ id as u64,
        rotate_after: config.exchange.rotate_after,
        channels: config.feed.streams.clone(),
        templates: templates.to_vec(),
        // Fault injection for the restart test: shard 0 panics once after N messages.
        panic_after_messages: std::env::var("AEGIS_FAULT_SHARD_PANIC_AFTER")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|_| id == 0),
    }
}

/// Starts a named thread.
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(body)
}

/// One stop flag per group of threads, set in the order [`Running::stop`] follows.
#[derive(Default)]
pub(crate) struct Stops {
    /// The feed shards.
    pub shards: Arc<AtomicBool>,
    /// The brain.
    pub brain: Arc<AtomicBool>,
    /// The execution gateway.
    pub gateway: Arc<AtomicBool>,
    /// The model loader.
    pub model: Arc<AtomicBool>,
    /// The REST worker.
    pub worker: Arc<AtomicBool>,
    /// The writer: set last, once nothing upstream can push a desk event or a bar.
    pub writer: Arc<AtomicBool>,
}

/// The run's threads and servers, once started.
pub(crate) struct Running {
    /// Flags.
    pub stops: Stops,
    /// Feed shards.
    pub shards: Vec<JoinHandle<std::io::Result<()>>>,
    /// The brain: returns its stage latency.
    pub brain: JoinHandle<StageLatency>,
    /// The execution gateway, when trading live.
    pub gateway: Option<JoinHandle<()>>,
    /// The control socket server (dropping it stops it).
    pub control: Option<crate::ops::control::ControlServer>,
    /// The metrics server (dropping it stops it).
    pub metrics: Option<crate::ops::metrics::MetricsServer>,
    /// The model loader.
    pub model: Option<JoinHandle<()>>,
    /// The ML sidecar process.
    pub sidecar: Option<std::process::Child>,
    /// The REST worker.
    pub worker: JoinHandle<()>,
    /// The writer: returns its journal append failures.
    pub writer: Option<JoinHandle<u64>>,
}

/// What the stopped threads hand back.
pub(crate) struct Stopped {
    /// The brain's stage latency (`None` if it panicked).
    pub latency: Option<StageLatency>,
    /// Journal appends that failed.
    pub journal_failures: u64,
}

impl Running {
    /// Stops every thread in dependency order and joins it.
    pub fn stop(mut self) -> Stopped {
        self.stops.shards.store(true, Ordering::Relaxed);
        for t in self.shards {
            let _ = t.join();
        }
        self.stops.brain.store(true, Ordering::Release);
        self.brain.thread().unpark();
        let latency = self.brain.join().ok();
        // After the brain: a shutdown flatten's intents are already in the ring.
        self.stops.gateway.store(true, Ordering::Release);
        if let Some(t) = self.gateway {
            let _ = t.join();
        }
        drop(self.control);
        drop(self.metrics);
        self.stops.model.store(true, Ordering::Relaxed);
        if let Some(t) = self.model {
            let _ = t.join();
        }
        sidecar::stop_sidecar(&mut self.sidecar);
        self.stops.worker.store(true, Ordering::Relaxed);
        let _ = self.worker.join();
        // Last: the brain's final events (a shutdown flatten's closed trades) are in the
        // ring by now, and the writer drains it before it returns.
        self.stops.writer.store(true, Ordering::Release);
        let journal_failures = self.writer.and_then(|t| t.join().ok()).unwrap_or(0);
        Stopped { latency, journal_failures }
    }
}

/// How long pinned threads have to say where they run.
const PLACEMENT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until every thread in `threads` has reported its placement, then says where each
/// runs. A failed pin is an error under [`Pinning::Required`], a warning otherwise.
pub(crate) fn await_placement(
    threads: &[(String, &crate::cpu::Placement)],
    placed: &super::plan::Placed,
) -> Result<serde_json::Value, RunError> {
    let policy = placed.pinning;
    use crate::cpu::{describe, FAILED, PENDING};
    let deadline = std::time::Instant::now() + PLACEMENT_PATIENCE;
    // Start-up only, once: each thread reports within its first instructions, so a 1 ms
    // poll costs nothing a condition variable in every pinned thread would save.
    while threads.iter().any(|(_, p)| p.get() == PENDING) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let placed_threads: Vec<String> =
        threads.iter().map(|(name, p)| format!("{name} → {}", describe(p.get()))).collect();
    eprintln!("aegis: placement: {} — {}", placed_threads.join(", "), placed.why);
    let failed: Vec<&str> =
        threads.iter().filter(|(_, p)| p.get() == FAILED).map(|(n, _)| n.as_str()).collect();
    if !failed.is_empty() {
        let what = format!("pinning failed for {} (the log says what each got)", failed.join(", "));
        if policy == crate::cpu::Pinning::Required {
            return Err(RunError::Config(format!("{what}; [cpu] pinning = \"required\"")));
        }
        eprintln!("aegis: {what}; running on ([cpu] pinning = \"best-effort\")");
    }
    Ok(crate::cpu::to_json(threads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::events::DeskEvent;
    use crate::desk::venue::Alert;
    use crate::store::ledger::{read_journal, DataConfig, Ledger};
    use crate::store::writer::{write_outputs, BarOutputs};

    /// The brain's stand-in: once told to stop, it pushes its last event (as a shutdown
    /// flatten pushes closed trades) and returns.
    fn brain(stop: Arc<AtomicBool>, mut desk: rtrb::Producer<DeskEvent>) -> StageLatency {
        while !stop.load(Ordering::Acquire) {
            std::thread::park();
        }
        let last = Alert { time_ms: 1, level: "INFO", what: "pushed while stopping" };
        desk.push(DeskEvent::Alert(last)).expect("room in the ring");
        StageLatency::new(0)
    }

    #[test]
    fn what_the_brain_pushes_while_stopping_reaches_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let config = DataConfig { dir: Some(dir.path().to_path_buf()), ..DataConfig::default() };
        let table = Arc::new(SymbolTable::with_capacity(1));
        let ledger = Ledger::open(&config, dir.path(), table.clone()).unwrap().ledger;
        let (desk_tx, desk_rx) = rtrb::RingBuffer::new(8);
        let stops = Stops::default();
        let brain_stop = stops.brain.clone();
        let writer_stop = stops.writer.clone();
        let outputs = BarOutputs { bars: None, features: None };
        let running = Running {
            stops,
            shards: Vec::new(),
            brain: spawn("test-brain", move || brain(brain_stop, desk_tx)).unwrap(),
            gateway: None,
            control: None,
            metrics: None,
            model: None,
            sidecar: None,
            worker: spawn("test-worker", || ()).unwrap(),
            writer: Some(
                spawn("test-writer", move || {
                    write_outputs(outputs, None, Some(desk_rx), Some(ledger), table, writer_stop)
                })
                .unwrap(),
            ),
        };
        let stopped = running.stop();
        assert_eq!(stopped.journal_failures, 0);
        let alerts = read_journal(dir.path(), "alerts").unwrap();
        assert_eq!(alerts.len(), 1, "the brain's last event was lost: {alerts:?}");
        assert_eq!(alerts[0].as_ref().unwrap()["what"], "pushed while stopping");
    }
}
