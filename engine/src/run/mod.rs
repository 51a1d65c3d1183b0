//! Wiring a run: symbols → shards and connections, rings, the brain and its desk, the REST
//! worker, the writer (bars, journals, experience log); live progress; a clean stop; the
//! summary.

pub mod error;
pub mod plan;
pub mod progress;
pub mod sidecar;
pub mod summary;

use crate::brain::port::ClosedBar;
use crate::brain::stats::BrainStats;
use crate::brain::{Brain, BrainConfig};
use crate::config::RunConfig;
use crate::desk::events::DeskEvent;
use crate::desk::stats::DeskStats;
use crate::desk::venue::{ExecReport, Live, OrderIntent};
use crate::desk::Desk;
use crate::execution::live::client::TradeClient;
use crate::execution::live::gateway::{Gateway, GatewayLinks, GatewaySettings, GatewayStats};
use crate::feed::shard::{ShardConfig, ShardStats};
use crate::feed::subscription::ShardCommand;
use crate::feed::transport::ShardRun;
use crate::net::url::split_url;
use crate::rest::client::RestClient;
use crate::rest::worker::run_worker;
use crate::rest::{RestRequest, RestStats};
use crate::ring::{ring_with_doorbell, Doorbell, RingStats};
use crate::store::ledger::Ledger;
use crate::store::writer::{write_outputs, BarOutputs};
use aegis_wire::stream::classify_channel;
use aegis_wire::{EventKind, SymbolTable};
use error::RunError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A finished run's counters.
pub struct RunReport {
    /// The summary JSON (see `--summary`).
    pub summary: Value,
    /// The brain's per-stage latency (also in the summary as percentiles).
    pub latency: Option<crate::latency::StageLatency>,
}

/// Runs the engine until `run_for` elapses or `stop` is set.
pub fn run(config: RunConfig, stop: Arc<AtomicBool>) -> Result<RunReport, RunError> {
    if !config.feed.ring_capacity.is_power_of_two() {
        return Err(RunError::Config(format!(
            "ring.capacity {} is not a power of two",
            config.feed.ring_capacity
        )));
    }
    let tls = crate::net::tls::client_config(config.exchange.extra_ca.as_deref())
        .map_err(|e| RunError::Config(e.to_string()))?;
    let rest_stats = Arc::new(RestStats::default());
    let mut client = RestClient::for_url(&config.exchange.rest, &tls, rest_stats.clone())?;
    let served = client.exchange_info().map_err(|e| RunError::Config(format!("exchangeInfo: {e}")))?;
    let mut table = SymbolTable::with_capacity(config.feed.symbols.len().max(1));
    let mut rules = Vec::with_capacity(config.feed.symbols.len());
    let mut untradable = BTreeMap::new();
    for symbol in &config.feed.symbols {
        let upper = symbol.to_ascii_uppercase();
        let entry = served.iter().find(|(s, _)| *s == upper);
        if !served.is_empty() && entry.is_none() {
            return Err(RunError::Config(format!("symbols: {upper} is not in the exchange's exchangeInfo")));
        }
        table.intern(&upper).map_err(|e| RunError::Config(format!("symbols: {upper}: {e}")))?;
        let read = match entry {
            Some((_, Ok(r))) => Ok(r.clone()),
            Some((_, Err(e))) => Err(e.to_string()),
            None => Err("not in exchangeInfo".to_string()),
        };
        match read {
            Ok(r) => rules.push(Some(r)),
            Err(reason) => {
                tracing::warn!(symbol = %upper, %reason, "no trading rules: the symbol is not traded");
                untradable.insert(upper, reason);
                rules.push(None);
            }
        }
    }
    let table = Arc::new(table);
    let (plans, templates) = plan::plan_endpoints(&config, &table, Some(&tls))?;
    let has = |pred: &dyn Fn(EventKind, bool) -> bool| {
        config.feed.streams.iter().filter_map(|c| classify_channel(c.as_bytes())).any(|(k, p)| pred(k, p))
    };
    let brain_config = BrainConfig {
        bars_from_trades: !has(&|k, _| k == EventKind::Kline) && has(&|k, _| k == EventKind::Trade),
        books: has(&|k, partial| k == EventKind::DepthUpdate && !partial),
        core: config.brain.core,
        idle: config.brain.idle,
        features: config.brain.features,
        flow_from_agg_trades: has(&|k, _| k == EventKind::AggTrade),
        flatten_on_shutdown: config.end.flatten_on_shutdown,
        prints_from_klines: !has(&|k, _| k == EventKind::AggTrade || k == EventKind::Trade),
        fill_gaps: true,
        latency_skip_events: config.brain.latency_skip_events,
    };
    let (transport, transport_note) =
        crate::feed::transport::choose(config.feed.transport, config.feed.io_memory)
            .map_err(|e| RunError::Config(e.to_string()))?;
    let shard_stop = Arc::new(AtomicBool::new(false));
    let brain_stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::new(AtomicBool::new(false));
    let doorbell = Arc::new(Doorbell::default());
    let mut consumers = Vec::new();
    let mut shard_threads = Vec::new();
    let mut shard_commands = Vec::new();
    let mut shard_stats = Vec::new();
    let mut ring_stats: Vec<Arc<RingStats>> = Vec::new();
    for (id, endpoints) in plans.into_iter().enumerate() {
        let (producer, consumer) = ring_with_doorbell(
            config.feed.ring_capacity,
            config.feed.ring_spin,
            table.len(),
            doorbell.clone(),
        );
        ring_stats.push(producer.stats());
        consumers.push(consumer);
        let stats = Arc::new(ShardStats::default());
        shard_stats.push(stats.clone());
        let shard_config = ShardConfig {
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
            templates: templates.clone(),
            // Fault injection for the restart test: shard 0 panics once after N messages.
            panic_after_messages: std::env::var("AEGIS_FAULT_SHARD_PANIC_AFTER")
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|_| id == 0),
        };
        let (commands_tx, commands) = rtrb::RingBuffer::<ShardCommand>::new(64);
        shard_commands.push(std::sync::Mutex::new(commands_tx));
        let shard = ShardRun {
            config: shard_config,
            symbols: table.clone(),
            ring: producer,
            stats,
            stop: shard_stop.clone(),
            commands: Some(commands),
        };
        let transport = transport.clone();
        shard_threads.push(
            std::thread::Builder::new()
                .name(format!("aegis-shard-{id}"))
                .spawn(move || transport.run(shard))?,
        );
    }
    let (rest_tx, rest_rx) = rtrb::RingBuffer::<RestRequest>::new(4096);
    let (results_tx, results_rx) = ring_with_doorbell(1 << 14, 64, table.len(), doorbell.clone());
    let outputs = BarOutputs { bars: config.ops.bars_out.clone(), features: config.ops.features_out.clone() };
    let (bars_tx, bars_rx) = if outputs.any() {
        let (tx, rx) = rtrb::RingBuffer::<ClosedBar>::new(1 << 12);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let brain_stats = Arc::new(BrainStats::new(table.len()));
    let desk_stats = Arc::new(DeskStats::default());
    let opened = match &config.data.dir {
        Some(dir) => Some(
            Ledger::open(&config.data, dir, table.clone())
                .map_err(|e| RunError::Config(format!("data_dir {}: {e}", dir.display())))?,
        ),
        None => None,
    };
    let (desk_tx, desk_rx) = match opened {
        Some(_) => {
            let (tx, rx) = rtrb::RingBuffer::<DeskEvent>::new(1 << 12);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let desk = Desk::new(config.trading, rules, desk_tx, desk_stats.clone());
    let (mut desk, venue_rings) = match &config.live {
        Some(_) => {
            let (intents_tx, intents_rx) = rtrb::RingBuffer::<OrderIntent>::new(256);
            let (reports_tx, reports_rx) = rtrb::RingBuffer::<ExecReport>::new(1024);
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
            let (gateway, report) = start_gateway(
                &config,
                live,
                &tls,
                table.clone(),
                desk.broker().positions(),
                GatewayLinks { intents, reports, doorbell: doorbell.clone(), stats: gateway_stats.clone() },
            )?;
            (Some(gateway), json!({ "matched": report.matched, "lines": report.lines }))
        }
        _ => (None, Value::Null),
    };
    let brain = Brain::new(
        brain_config,
        table.len(),
        consumers,
        results_rx,
        rest_tx,
        bars_tx,
        desk,
        brain_stats.clone(),
    )
    .with_doorbell(doorbell);
    let model_stop = Arc::new(AtomicBool::new(false));
    let (brain, model_stats, model_thread) = match &config.data.dir {
        Some(dir) => {
            let (link, thread) =
                crate::model_loader::spawn(dir.join("models").join("weights.bin"), model_stop.clone())?;
            let stats = link.stats.clone();
            (
                brain.with_student(crate::brain::student::Student::new(link, table.len())),
                Some(stats),
                Some(thread),
            )
        }
        None => (brain, None, None),
    };
    let (mut sidecar, sidecar_note) = sidecar::start_sidecar(&config);
    let watchdog_alerts = Arc::new(AtomicU64::new(0));
    // The brain's latency buckets, read by the metrics endpoint and the control socket.
    let stages = Arc::new(crate::latency::SharedStages::default());
    let brain = brain.with_metrics(stages.clone());
    let (brain, control) = match &config.ops.control_socket {
        Some(path) => {
            let (link, brain_end) = crate::brain::port::brain_link();
            let shards = config.feed.shards.max(1);
            let assignment = Arc::new(std::sync::Mutex::new(crate::ops::control::Assignment {
                shard: (0..table.len()).map(|i| i % shards).collect(),
            }));
            let mover = Some(crate::ops::control::mover(
                std::mem::take(&mut shard_commands),
                shard_stats.clone(),
                assignment.clone(),
                table.clone(),
            ));
            let context = crate::ops::control::ControlContext {
                table: table.clone(),
                brain: brain_stats.clone(),
                desk: desk_stats.clone(),
                shards: shard_stats.clone(),
                rings: ring_stats.clone(),
                assignment,
                data_dir: config.data.dir.clone(),
                data: config.data.clone(),
                link: std::sync::Mutex::new(link),
                started: Instant::now(),
                transport: transport_note.clone(),
                mover,
                watchdog_alerts: watchdog_alerts.clone(),
                stages: stages.clone(),
                model: model_stats.clone(),
            };
            let server = crate::ops::control::serve(path, Arc::new(context))
                .map_err(|e| RunError::Config(format!("control.socket {}: {e}", path.display())))?;
            eprintln!("aegis: control socket {}", path.display());
            (brain.with_control(brain_end), Some(server))
        }
        None => (brain, None),
    };
    // Announced after the control socket is bound: a script that sees this line can use both.
    let (brain, metrics, metrics_note) = match &config.ops.metrics_addr {
        Some(addr) => {
            let context = crate::ops::metrics::MetricsContext {
                watchdog_alerts: watchdog_alerts.clone(),
                brain: brain_stats.clone(),
                desk: desk_stats.clone(),
                shards: shard_stats.clone(),
                rings: ring_stats.clone(),
                stages: stages.clone(),
                live: config.live.as_ref().map(|_| gateway_stats.clone()),
                model: model_stats.clone(),
            };
            match crate::ops::metrics::serve(addr, context) {
                Ok(server) => {
                    eprintln!("aegis: metrics on http://{}/metrics", server.addr);
                    let note = json!({ "addr": server.addr.to_string() });
                    (brain, Some(server), note)
                }
                Err(e) => {
                    // A busy port must not stop the trading engine: say so and run without.
                    tracing::warn!(%addr, error = %e, "metrics endpoint not served");
                    (brain, None, json!({ "error": format!("{addr}: {e}") }))
                }
            }
        }
        None => (brain, None, Value::Null),
    };
    let brain_thread = {
        let stop = brain_stop.clone();
        std::thread::Builder::new().name("aegis-brain".into()).spawn(move || brain.run(stop))?
    };
    let gateway_stop = Arc::new(AtomicBool::new(false));
    let gateway_thread = match gateway {
        Some(gateway) => {
            let stop = gateway_stop.clone();
            Some(
                std::thread::Builder::new()
                    .name("aegis-gateway".into())
                    .spawn(move || gateway.run(stop, GATEWAY_DRAIN))?,
            )
        }
        None => None,
    };
    let worker_thread = {
        let (symbols, stop, warmup, limit) = (
            table.clone(),
            worker_stop.clone(),
            config.exchange.warmup_bars,
            config.exchange.depth_snapshot_limit,
        );
        std::thread::Builder::new()
            .name("aegis-rest".into())
            .spawn(move || run_worker(client, symbols, rest_rx, results_tx, warmup, limit, stop))?
    };
    let writer_thread = if bars_rx.is_some() || ledger.is_some() {
        let (symbols, stop) = (table.clone(), brain_stop.clone());
        Some(
            std::thread::Builder::new()
                .name("aegis-writer".into())
                .spawn(move || write_outputs(outputs, bars_rx, desk_rx, ledger, symbols, stop))?,
        )
    } else {
        None
    };
    let started = Instant::now();
    let watched = progress::Watched {
        symbols: table.len(),
        brain: &brain_stats,
        desk: &desk_stats,
        shards: &shard_stats,
        rings: &ring_stats,
        model: model_stats.as_deref(),
        watchdog_alerts: &watchdog_alerts,
    };
    let lag_max_ns_run = progress::watch(&config, &watched, &stop, started);
    shard_stop.store(true, Ordering::Relaxed);
    for t in shard_threads {
        let _ = t.join();
    }
    brain_stop.store(true, Ordering::Release);
    brain_thread.thread().unpark();
    let latency = brain_thread.join().ok();
    // After the brain: a shutdown flatten's intents are already in the ring.
    gateway_stop.store(true, Ordering::Release);
    if let Some(t) = gateway_thread {
        let _ = t.join();
    }
    drop(control);
    drop(metrics);
    model_stop.store(true, Ordering::Relaxed);
    if let Some(t) = model_thread {
        let _ = t.join();
    }
    sidecar::stop_sidecar(&mut sidecar);
    worker_stop.store(true, Ordering::Relaxed);
    let _ = worker_thread.join();
    let journal_failures = writer_thread.and_then(|t| t.join().ok()).unwrap_or(0);
    let mut summary =
        summary::summarize(&table, &brain_stats, &shard_stats, &ring_stats, &rest_stats, started.elapsed());
    let d = &desk_stats;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    summary["trades_closed"] = Value::from(load(&d.trades_closed));
    summary["pnl"] = Value::from(d.pnl());
    summary["equity"] = Value::from(d.equity());
    summary["phase"] = Value::from(d.phase_name());
    summary["signals"] = Value::from(load(&d.signals));
    summary["signals_not_taken"] = Value::from(load(&d.signals_not_taken));
    summary["open_positions"] = Value::from(load(&d.open_positions));
    summary["stale_bars_not_traded"] = Value::from(load(&d.stale_bars));
    summary["alerts"] = Value::from(load(&d.alerts));
    summary["untradable_symbols"] = json!(untradable);
    summary["journal"] = json!({
        "recovered": recovery,
        "restored_positions": restored,
        "append_failures": journal_failures,
        "events_dropped": load(&d.events_dropped),
    });
    summary["transport"] = Value::from(transport_note);
    summary["broker"] = Value::from(if config.live.is_some() { "live" } else { "paper" });
    let model_load = |f: fn(&crate::model_loader::ModelStats) -> &AtomicU64| {
        model_stats.as_ref().map_or(0, |m| load(f(m)))
    };
    summary["model_generation"] = Value::from(model_load(|m| &m.serving));
    summary["model_swaps"] = Value::from(model_load(|m| &m.swaps));
    // Refused by the loader, plus trained but not published by the sidecar (its journal).
    let not_published = config.data.dir.as_ref().map_or(0, |dir| {
        crate::store::ledger::read_journal(dir, "models")
            .map(|r| r.iter().filter(|v| v.as_ref().is_ok_and(|v| v["event"] == "rejected")).count() as u64)
            .unwrap_or(0)
    });
    summary["models_rejected"] = Value::from(model_load(|m| &m.rejected) + not_published);
    summary["sidecar"] = sidecar_note;
    if config.live.is_some() {
        let g = &gateway_stats;
        summary["live"] = json!({
            "reconciliation": reconciliation,
            "orders_sent": load(&g.orders_sent),
            "orders_refused": load(&g.orders_refused),
            "entries": load(&g.entries),
            "exits": load(&g.exits),
            "rate_limited": load(&g.rate_limited),
            "entries_skipped": load(&g.entries_skipped),
            "stream_recoveries": load(&g.stream_recoveries),
            "keep_alives": load(&g.keep_alives),
            "reconciliation_differences": load(&g.differences),
            "flattens": load(&g.flattens),
            "reports_dropped": load(&g.reports_dropped),
            "intents_dropped": load(&d.intents_dropped),
            "reports_unmatched": load(&d.reports_unmatched),
        });
    }
    let lag_max_ns_run = lag_max_ns_run.max(brain_stats.lag_max_ns.load(Ordering::Relaxed));
    summary["lag_max_us"] = Value::from(lag_max_ns_run as f64 / 1e3);
    summary["latency"] = latency.as_ref().map_or(Value::Null, |l| l.summary());
    summary["metrics"] = metrics_note;
    summary["watchdog_alerts"] = Value::from(watchdog_alerts.load(Ordering::Relaxed));
    summary["shard_restarts"] =
        Value::from(shard_stats.iter().map(|s| s.restarts.load(Ordering::Relaxed)).sum::<u64>());
    Ok(RunReport { summary, latency })
}

/// How long the gateway keeps working on closes and kill switches after the brain stopped.
const GATEWAY_DRAIN: Duration = Duration::from_secs(10);

/// Connects the execution gateway (clock, limits, restart reconciliation, user stream).
fn start_gateway(
    config: &RunConfig,
    live: &crate::config::run::LiveConfig,
    tls: &Arc<rustls::ClientConfig>,
    table: Arc<SymbolTable>,
    restored: &[aegis_trading::Position],
    links: GatewayLinks,
) -> Result<(Gateway, crate::execution::live::gateway::StartReport), RunError> {
    let (_, _, _, https) = split_url(&config.exchange.rest)?;
    let client = TradeClient::new(&config.exchange.rest, live.key.clone(), https.then(|| tls.clone()))
        .map_err(|e| RunError::Config(format!("live trading: {e}")))?;
    let settings = GatewaySettings {
        ws_base: live.user_ws.clone(),
        keep_alive: live.keep_alive,
        journal: config
            .data
            .dir
            .as_ref()
            .map(|d| d.join("journal").join(format!("{}.journal", crate::store::ledger::ORDERS_JOURNAL))),
        fsync: config.data.fsync,
    };
    Gateway::start(client, settings, table, restored, links)
        .map_err(|e| RunError::Config(format!("live trading: starting the gateway: {e}")))
}
