//! Wiring a run: symbols → shards and connections, rings, the brain and its desk, the REST
//! worker, the writer (bars, journals, experience log); live progress; a clean stop; the
//! summary. The thread topology (ARCHITECTURE.md) reads top to bottom in [`run`]:
//!
//! - [`plan`]: symbols and their rules, each shard's connections, the brain's settings.
//! - [`threads`]: starting the shards, and stopping every thread in order.
//! - [`servers`]: the control socket and the metrics endpoint.
//! - [`live`]: the execution gateway, when trading live.
//! - [`progress`]: the foreground (watchdog, stop conditions, progress line).
//! - [`sidecar`]: the ML sidecar process.
//! - [`summary`]: the summary JSON.

pub mod error;
pub mod live;
pub mod plan;
pub mod progress;
pub mod servers;
pub mod sidecar;
pub mod summary;
pub mod threads;

use crate::brain::port::ClosedBar;
use crate::brain::stats::BrainStats;
use crate::brain::Brain;
use crate::config::RunConfig;
use crate::desk::events::DeskEvent;
use crate::desk::listing::ListingChange;
use crate::desk::stats::DeskStats;
use crate::desk::venue::{ExecReport, Live, OrderIntent};
use crate::desk::Desk;
use crate::execution::live::gateway::{GatewayLinks, GatewayStats};
use crate::rest::client::RestClient;
use crate::rest::worker::{run_worker, WorkerSettings};
use crate::rest::{RestRequest, RestStats};
use crate::ring::{ring_with_doorbell, Doorbell};
use crate::store::ledger::Ledger;
use crate::store::writer::{write_outputs, BarOutputs};
use error::RunError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use threads::{spawn, Running, Stops};

/// A finished run's counters.
pub struct RunReport {
    /// The summary JSON (see `--summary`).
    pub summary: Value,
    /// The brain's per-stage latency (also in the summary as percentiles).
    pub latency: Option<crate::latency::StageLatency>,
}

/// Runs the engine until `run_for` elapses or `stop` is set. With a data dir, refuses at
/// once when another process holds it (see [`aegis_journal::DataDirLock`]).
pub fn run(config: RunConfig, stop: Arc<AtomicBool>) -> Result<RunReport, RunError> {
    // One engine per data dir, before anything reads or writes it (the binary takes the lock
    // earlier still; a library caller gets it here).
    let _data_lock = match &config.data.dir {
        Some(dir) if !aegis_journal::DataDirLock::held_here(dir) => {
            Some(aegis_journal::DataDirLock::acquire(dir)?)
        }
        _ => None,
    };
    if !config.feed.ring_capacity.is_power_of_two() {
        return Err(RunError::Config(format!(
            "ring.capacity {} is not a power of two",
            config.feed.ring_capacity
        )));
    }
    // Cores first, before any connection: each configured CPU must be one this process can have.
    let mut config = config;
    let placed = plan::check_placement(&mut config)?;
    let one_thread = placed.plan == crate::cpu::ThreadPlan::OneThread;
    // Plan: symbols and rules from the exchange, connections per shard, the transport.
    let tls = crate::net::tls::client_config(config.exchange.extra_ca.as_deref())
        .map_err(|e| RunError::Config(e.to_string()))?;
    let rest_stats = Arc::new(RestStats::default());
    let mut client =
        RestClient::for_url(&config.exchange.rest, config.exchange.extra_ca.as_deref(), rest_stats.clone())
            .map_err(|e| RunError::Config(e.to_string()))?;
    let plan::Symbols { table, mut rules, untradable, mut fallback_brackets, info_source, trading } =
        plan::resolve_symbols(&config, &mut client)?;
    // Where the traded symbols' leverage brackets come from (the summary says).
    let mut brackets_from = "exchangeInfo";
    if let Some(live) = &config.live {
        fallback_brackets = live::account_brackets(&config, live, &table, &mut rules)?;
        brackets_from = "account (signed GET /fapi/v1/leverageBracket)";
        eprintln!(
            "aegis: leverage brackets: the account's (signed GET /fapi/v1/leverageBracket); {} symbol(s) on the conservative fallback",
            fallback_brackets.len()
        );
    }
    let (plans, templates) = plan::plan_endpoints(&config, &table, Some(&tls))?;
    let measured = config.data.dir.as_deref().and_then(crate::feed::transport::rtt::Record::load);
    let (transport, mut transport_note) =
        crate::feed::transport::choose(config.feed.transport, config.feed.io_memory, measured.as_ref())
            .map_err(|e| RunError::Config(e.to_string()))?;
    if one_thread {
        transport_note = "mio (the one-thread placement runs on mio)".to_string();
    }
    eprintln!("aegis: transport: {transport_note}");
    let stops = Stops::default();
    let doorbell = Arc::new(Doorbell::default());

    // Shards → one ring each → brain.
    let mut shards = threads::start_shards(
        &config,
        plans,
        &templates,
        &table,
        &transport,
        &doorbell,
        &stops.shards,
        one_thread,
    )?;
    let inline_shard = shards.inline.take();
    // Brain ⇄ REST worker: requests out, fills and snapshots back.
    let (rest_tx, rest_rx) = crate::ring::spsc::<RestRequest>(4096);
    let (results_tx, results_rx) = ring_with_doorbell(1 << 14, 64, table.len(), doorbell.clone());
    // Brain → writer: closed bars (when asked for) and the desk's events (with a data dir).
    let outputs = BarOutputs { bars: config.ops.bars_out.clone(), features: config.ops.features_out.clone() };
    let (bars_tx, bars_rx) = optional_ring::<ClosedBar>(outputs.any(), 1 << 12);
    let opened = match &config.data.dir {
        Some(dir) => Some(
            Ledger::open(&config.data, dir, table.clone())
                .map_err(|e| RunError::Config(format!("data_dir {}: {e}", dir.display())))?,
        ),
        None => None,
    };
    let (desk_tx, desk_rx) = optional_ring::<DeskEvent>(opened.is_some(), 1 << 12);

    // The desk, on the brain's thread: paper, or live through the gateway's two rings.
    let brain_stats = Arc::new(BrainStats::new(table.len()));
    let desk_stats = Arc::new(DeskStats::default());
    // What the exchangeInfo refresh compares with: each traded symbol's status and filters.
    let listed: Vec<Option<ListingChange>> = rules
        .iter()
        .zip(&trading)
        .enumerate()
        .map(|(symbol, (r, t))| {
            let r = r.as_ref()?;
            let brackets = crate::desk::listing::Brackets::from_slice(r.brackets())?;
            Some(ListingChange { symbol: symbol as u16, trading: *t, filters: r.filters(), brackets })
        })
        .collect();
    let mut desk = Desk::new(config.trading, rules, desk_tx, desk_stats.clone());
    if let Some(probability) = config.bench_entries {
        let rng = aegis_trading::rng::Rng::new(7);
        desk = desk.with_entries(crate::desk::Entries::Random { rng, probability });
    }
    for listing in listed.iter().flatten().filter(|l| !l.trading) {
        desk.apply_listing(*listing);
    }
    let (listing_tx, listing_rx) = crate::ring::spsc::<ListingChange>(256);
    let refresh = crate::rest::refresh::InfoRefresh::new(
        config.exchange.info_refresh,
        config.data.dir.as_ref().map(|d| d.join(plan::EXCHANGE_INFO_CACHE)),
        listed,
        listing_tx,
    );
    let refresh = match &config.live {
        Some(live) => refresh.with_account(live::refresh_client(&config, live)?),
        None => refresh,
    };
    let (mut desk, venue_rings) = match &config.live {
        Some(_) => {
            let (intents_tx, intents_rx) = crate::ring::spsc::<OrderIntent>(256);
            let (reports_tx, reports_rx) = crate::ring::spsc::<ExecReport>(1024);
            (desk.with_execution(Live::new(intents_tx, reports_rx)), Some((intents_rx, reports_tx)))
        }
        None => (desk, None),
    };
    let (ledger, recovery, restored) = match opened {
        Some(o) => {
            let restored = o.account.map_or(0, |a| {
                desk.restore(&a);
                desk.broker().positions().len()
            });
            (Some(o.ledger), o.recovery, restored)
        }
        None => (None, Value::Null, 0),
    };
    let gateway_stats = Arc::new(GatewayStats::default());
    let (gateway, reconciliation) = match (&config.live, venue_rings) {
        (Some(live), Some((intents, reports))) => {
            let links =
                GatewayLinks { intents, reports, doorbell: doorbell.clone(), stats: gateway_stats.clone() };
            let (gateway, report) =
                live::start_gateway(&config, live, &tls, table.clone(), desk.broker().positions(), links)?;
            (Some(gateway), json!({ "matched": report.matched, "lines": report.lines }))
        }
        _ => (None, Value::Null),
    };

    // The brain, with the model loader's hand-over, latency buckets and command port.
    let brain_config = plan::brain_config(&config);
    let brain = Brain::new(
        brain_config,
        table.len(),
        shards.consumers,
        results_rx,
        rest_tx,
        bars_tx,
        desk,
        brain_stats.clone(),
    )
    .with_doorbell(doorbell.clone())
    .with_listing(listing_rx);
    let (brain, model_stats, model_thread) = match &config.data.dir {
        Some(dir) => {
            let (link, thread) =
                crate::model_loader::spawn(dir.join("models").join("weights.bin"), stops.model.clone())?;
            let stats = link.stats.clone();
            (
                brain.with_student(crate::brain::student::Student::new(link, table.len())),
                Some(stats),
                Some(thread),
            )
        }
        None => (brain, None, None),
    };
    let (sidecar, sidecar_note) = sidecar::start_sidecar(&config);
    let counters = servers::Counters {
        table: table.clone(),
        brain: brain_stats.clone(),
        desk: desk_stats.clone(),
        shards: shards.stats.clone(),
        rings: shards.rings.clone(),
        stages: Arc::new(crate::latency::SharedStages::default()),
        model: model_stats.clone(),
        watchdog_alerts: Arc::new(AtomicU64::new(0)),
    };
    let brain = brain.with_metrics(counters.stages.clone());
    let (brain, control) = match &config.ops.control_socket {
        Some(path) => {
            let (server, port) = servers::start_control(
                &config,
                path,
                &counters,
                shards.commands,
                &transport_note,
                &placed.why,
            )?;
            (brain.with_control(port), Some(server))
        }
        None => (brain, None),
    };
    // Announced after the control socket is bound: a script that sees this line can use both.
    let (metrics, metrics_note) = match &config.ops.metrics_addr {
        Some(addr) => {
            servers::start_metrics(addr, &counters, config.live.as_ref().map(|_| gateway_stats.clone()))
        }
        None => (None, Value::Null),
    };

    // Start the brain, the gateway, the REST worker and the writer.
    let brain_thread = {
        let stop = stops.brain.clone();
        match inline_shard {
            None => spawn("aegis-brain", move || brain.run(stop))?,
            Some(shard) => {
                let name = format!("aegis-shard-{}", shard.config.id);
                spawn(&name, move || threads::run_one_thread(shard, brain, &doorbell, stop))?
            }
        }
    };
    let gateway_thread = match gateway {
        Some(gateway) => {
            let stop = stops.gateway.clone();
            Some(spawn("aegis-gateway", move || gateway.run(stop, live::GATEWAY_DRAIN))?)
        }
        None => None,
    };
    let worker_thread = {
        let (symbols, stop) = (table.clone(), stops.worker.clone());
        let settings = WorkerSettings {
            warmup: config.exchange.warmup_bars,
            depth_limit: config.exchange.depth_snapshot_limit,
            refresh: Some(refresh),
        };
        spawn("aegis-rest", move || run_worker(client, symbols, rest_rx, results_tx, settings, stop))?
    };
    let writer_thread = if bars_rx.is_some() || ledger.is_some() {
        let (symbols, stop) = (table.clone(), stops.writer.clone());
        Some(spawn("aegis-writer", move || write_outputs(outputs, bars_rx, desk_rx, ledger, symbols, stop))?)
    } else {
        None
    };
    let running = Running {
        stops,
        shards: shards.threads,
        brain: brain_thread,
        gateway: gateway_thread,
        control,
        metrics,
        model: model_thread,
        sidecar,
        worker: worker_thread,
        writer: writer_thread,
    };

    // Where each pinned thread runs, as it read it back.
    let placed_threads = crate::cpu::threads(counters.shards.iter().map(|s| &s.core), &brain_stats.core);
    let placement = match threads::await_placement(&placed_threads, &placed) {
        Ok(placement) => placement,
        Err(e) => {
            running.stop();
            return Err(e);
        }
    };

    // The foreground until a stop condition, then every thread in order.
    let started = Instant::now();
    let watched = progress::Watched {
        symbols: table.len(),
        brain: &brain_stats,
        desk: &desk_stats,
        shards: &counters.shards,
        rings: &counters.rings,
        model: model_stats.as_deref(),
        watchdog_alerts: &counters.watchdog_alerts,
    };
    let lag_max_ns_run = progress::watch(&config, &watched, &stop, started);
    let stopped = running.stop();

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut summary = summary::summarize(
        &table,
        &brain_stats,
        &counters.shards,
        &counters.rings,
        &rest_stats,
        started.elapsed(),
    );
    summary::add_desk(&mut summary, &desk_stats);
    summary["untradable_symbols"] = json!(untradable);
    summary["fallback_brackets"] = json!(fallback_brackets);
    summary["brackets_from"] = json!(brackets_from);
    summary["exchange_info"] = match info_source {
        crate::rest::client::InfoSource::Exchange => json!("exchange"),
        crate::rest::client::InfoSource::Cache { age_s } => json!(format!("cache ({age_s} s old)")),
    };
    summary["journal"] = json!({
        "recovered": recovery,
        "restored_positions": restored,
        "append_failures": stopped.journal_failures,
        "events_dropped": load(&desk_stats.events_dropped),
    });
    summary["transport"] = Value::from(transport_note);
    summary["placement"] = json!({
        "pinning": format!("{:?}", placed.pinning),
        "plan": placed.plan.name(),
        "why": placed.why,
        "threads": placement,
    });
    summary["broker"] = Value::from(if config.live.is_some() { "live" } else { "paper" });
    summary::add_model(&mut summary, model_stats.as_deref(), config.data.dir.as_deref());
    summary["sidecar"] = sidecar_note;
    if config.live.is_some() {
        summary["live"] = summary::live(reconciliation, &gateway_stats, &desk_stats);
    }
    let lag_max_ns_run = lag_max_ns_run.max(load(&brain_stats.lag_max_ns));
    summary["lag_max_us"] = Value::from(lag_max_ns_run as f64 / 1e3);
    summary["latency"] = stopped.latency.as_ref().map_or(Value::Null, |l| l.summary());
    summary["metrics"] = metrics_note;
    summary["watchdog_alerts"] = Value::from(load(&counters.watchdog_alerts));
    summary["shard_restarts"] = Value::from(counters.shards.iter().map(|s| load(&s.restarts)).sum::<u64>());
    Ok(RunReport { summary, latency: stopped.latency })
}

/// An SPSC ring of `capacity` when `wanted`, else neither end.
fn optional_ring<T>(wanted: bool, capacity: usize) -> (Option<rtrb::Producer<T>>, Option<rtrb::Consumer<T>>) {
    if !wanted {
        return (None, None);
    }
    let (tx, rx) = crate::ring::spsc::<T>(capacity);
    (Some(tx), Some(rx))
}
