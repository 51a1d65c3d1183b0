//! Wiring a run: symbols → shards and connections, rings, the brain and its desk, the REST
//! worker, the writer (bars, journals, experience log); live progress; a clean stop; the
//! summary.

use crate::brain::desk::{Desk, DeskEvent, DeskStats};
use crate::brain::{Brain, BrainConfig, BrainStats, ClosedBar};
use crate::feed::binance::StreamHint;
use crate::feed::shard::{kind_index, run_shard, EndpointSpec, Idle, ShardConfig, ShardStats};
use crate::feed::subscription::ShardCommand;
use crate::ledger::Ledger;
use crate::live::client::TradeClient;
use crate::live::gateway::{ExecReport, Gateway, GatewayLinks, GatewaySettings, GatewayStats, OrderIntent};
use crate::rest::{run_worker, RestClient, RestRequest, RestStats};
use crate::ring::{ring_with_doorbell, Doorbell, RingStats};
use aegis_wire::stream::{classify_channel, tier_of, Tier, MAX_STREAMS_PER_CONNECTION};
use aegis_wire::{EventKind, SymbolId, SymbolTable};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a shard or the brain may make no progress before the watchdog says so.
const WATCHDOG_STALL: Duration = Duration::from_secs(2);

/// Which transport a shard's sockets use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportChoice {
    /// glommio where io_uring is usable, else mio (the reason is logged and reported).
    Auto,
    /// glommio (io_uring).
    Glommio,
    /// mio (epoll).
    Mio,
}

/// Everything a run needs to know.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// WebSocket base URL of the `/public` tier (e.g. `ws://127.0.0.1:9000/public`).
    pub public_ws: String,
    /// WebSocket base URL of the `/market` tier; equal to `public_ws` for one connection.
    pub market_ws: String,
    /// REST base URL.
    pub rest: String,
    /// Symbols (any case).
    pub symbols: Vec<String>,
    /// Stream kinds per symbol (`aggTrade`, `kline_1m`, `depth@100ms`, …).
    pub streams: Vec<String>,
    /// Feed shards.
    pub shards: usize,
    /// Cores for the shards (in order), if pinned.
    pub shard_cores: Vec<usize>,
    /// Core for the brain, if pinned.
    pub brain_core: Option<usize>,
    /// Idle policy of the shards.
    pub idle: Idle,
    /// Idle policy of the brain.
    pub brain_idle: Idle,
    /// First reconnect delay (doubling, with jitter).
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Streams carried by one connection (≤ 200, Binance's limit).
    pub streams_per_connection: usize,
    /// Slots per shard ring (a power of two).
    pub ring_capacity: usize,
    /// Spins on a full ring before dropping.
    pub ring_spin: u32,
    /// Largest WebSocket message.
    pub max_message: usize,
    /// 1m bars fetched per symbol at start-up.
    pub warmup_bars: usize,
    /// Depth snapshot size used to sync books.
    pub depth_snapshot_limit: usize,
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// Write closed 1m bars here.
    pub bars_out: Option<PathBuf>,
    /// Write every closed bar's features here.
    pub features_out: Option<PathBuf>,
    /// Per-symbol analytics sizes.
    pub features: aegis_analytics::FeatureConfig,
    /// Print a progress line every second.
    pub progress: bool,
    /// Stop once this many exchange events reached the brain or were dropped on a full ring
    /// (tests, benchmarks).
    pub stop_after_events: Option<u64>,
    /// Stop once the desk has closed this many trades in total (tests, benchmarks).
    pub stop_after_trades: Option<u64>,
    /// A CA certificate (PEM) to trust besides the webpki roots.
    pub extra_ca: Option<PathBuf>,
    /// Transport.
    pub transport: TransportChoice,
    /// glommio's registered I/O memory per shard (counts against memlock).
    pub io_memory: usize,
    /// Replace connections after this long, make-before-break.
    pub rotate_after: Option<Duration>,
    /// Policy, sizing, broker and labelling settings.
    pub trading: crate::brain::desk::TradingConfig,
    /// Close every position with reason SHUTDOWN at a graceful stop.
    pub flatten_on_shutdown: bool,
    /// The data directory and what is kept in it.
    pub data: crate::ledger::DataConfig,
    /// Exchange events left out of the latency histograms at start.
    pub latency_skip_events: u64,
    /// Set once every symbol's features are warm (at once with no warm-up bars): a
    /// benchmark's feed waits for it.
    pub warm: Option<Arc<AtomicBool>>,
    /// Serve the control socket here (mode 0600).
    pub control_socket: Option<PathBuf>,
    /// Serve Prometheus metrics on this loopback address (`127.0.0.1:0` picks a port).
    pub metrics_addr: Option<String>,
    /// Trade at the exchange (`broker.mode = "live"`); `None`: paper.
    pub live: Option<LiveConfig>,
    /// The learned model: the loader (with a data dir) and the sidecar to start.
    pub ml: MlConfig,
}

/// The learned model's settings.
#[derive(Clone, Debug, Default)]
pub struct MlConfig {
    /// Start this sidecar binary (`None`: start none; a model published by other means is
    /// still loaded).
    pub sidecar: Option<PathBuf>,
    /// The sidecar trains again after this many more closed trades.
    pub train_every: u64,
    /// libtorch threads for the sidecar.
    pub torch_threads: usize,
}

/// What live trading needs besides the market data settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The API key (signs every trading request).
    pub key: crate::credentials::ApiKey,
    /// User-data stream WebSocket base (`…/ws/<listenKey>` is appended).
    pub user_ws: String,
    /// How often the listenKey is kept alive.
    pub keep_alive: Duration,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A URL could not be used.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A setting is impossible.
    #[error("config: {0}")]
    Config(String),
    /// An I/O error (threads, files).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Address, `host:port`, path prefix and whether TLS is on, of a `ws(s)://` or
/// `http(s)://` URL.
pub(crate) fn split_url(url: &str) -> Result<(SocketAddr, String, String, bool), RunError> {
    let bad = |reason: &str| RunError::Url { url: url.to_string(), reason: reason.to_string() };
    let (rest, tls) = if let Some(r) = url.strip_prefix("ws://").or_else(|| url.strip_prefix("http://")) {
        (r, false)
    } else if let Some(r) = url.strip_prefix("wss://").or_else(|| url.strip_prefix("https://")) {
        (r, true)
    } else {
        return Err(bad("expected ws://, wss://, http:// or https://"));
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let host = if host.contains(':') { host.to_string() } else { format!("{host}:{default_port}") };
    let addr =
        host.to_socket_addrs().map_err(|e| bad(&e.to_string()))?.next().ok_or_else(|| bad("no address"))?;
    Ok((addr, host, path.to_string(), tls))
}

/// Plans each shard's connections: symbols round-robin over shards, one connection per tier
/// (one for both when the tiers share a URL), at most 200 streams each; and per tier an
/// empty connection for live subscriptions to open.
fn plan_endpoints(
    config: &RunConfig,
    table: &SymbolTable,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Vec<Vec<EndpointSpec>>, Vec<EndpointSpec>), RunError> {
    let mut per_shard = vec![Vec::new(); config.shards.max(1)];
    let mut templates = Vec::new();
    let mut kinds = Vec::new();
    for channel in &config.streams {
        let (kind, partial) = classify_channel(channel.as_bytes())
            .ok_or_else(|| RunError::Config(format!("streams: {channel:?} is not a Binance stream kind")))?;
        kinds.push((channel.clone(), kind, partial));
    }
    let shared_url = config.public_ws == config.market_ws;
    for (shard, endpoints) in per_shard.iter_mut().enumerate() {
        let symbols: Vec<(SymbolId, &str)> =
            table.iter().filter(|(id, _)| usize::from(id.0) % config.shards.max(1) == shard).collect();
        let tiers: &[Tier] = if shared_url { &[Tier::Unrouted] } else { &[Tier::Public, Tier::Market] };
        for &tier in tiers {
            let url = if tier == Tier::Market { &config.market_ws } else { &config.public_ws };
            let (addr, host, prefix, secure) = split_url(url)?;
            let spec = |path: String, symbols: Vec<SymbolId>| EndpointSpec {
                addr,
                host: host.clone(),
                path,
                symbols,
                raw_hint: None::<StreamHint>,
                tls: if secure { tls.cloned() } else { None },
                tier,
            };
            if shard == 0 {
                templates.push(spec(format!("{prefix}/stream?streams="), Vec::new()));
            }
            let mut streams: Vec<(String, SymbolId)> = Vec::new();
            for (id, name) in &symbols {
                for (channel, kind, _) in &kinds {
                    if tier == Tier::Unrouted || tier_of(*kind) == tier {
                        streams.push((format!("{}@{channel}", name.to_ascii_lowercase()), *id));
                    }
                }
            }
            for group in streams.chunks(config.streams_per_connection.clamp(1, MAX_STREAMS_PER_CONNECTION)) {
                let names: Vec<&str> = group.iter().map(|(n, _)| n.as_str()).collect();
                let mut ids: Vec<SymbolId> = group.iter().map(|(_, id)| *id).collect();
                ids.dedup();
                endpoints.push(spec(format!("{prefix}/stream?streams={}", names.join("/")), ids));
            }
        }
    }
    Ok((per_shard, templates))
}

/// A finished run's counters.
pub struct RunReport {
    /// The summary JSON (see `--summary`).
    pub summary: Value,
    /// The brain's per-stage latency (also in the summary as percentiles).
    pub latency: Option<crate::latency::StageLatency>,
}

/// Runs the engine until `run_for` elapses or `stop` is set.
pub fn run(config: RunConfig, stop: Arc<AtomicBool>) -> Result<RunReport, RunError> {
    if !config.ring_capacity.is_power_of_two() {
        return Err(RunError::Config(format!(
            "ring.capacity {} is not a power of two",
            config.ring_capacity
        )));
    }
    let tls = crate::feed::tls::client_config(config.extra_ca.as_deref())
        .map_err(|e| RunError::Config(e.to_string()))?;
    let (rest_addr, rest_host, _, rest_tls) = split_url(&config.rest)?;
    let rest_stats = Arc::new(RestStats::default());
    let mut client = RestClient::new(rest_addr, &rest_host, rest_stats.clone());
    if rest_tls {
        client = client.with_tls(tls.clone());
    }
    let served = client.exchange_info().map_err(|e| RunError::Config(format!("exchangeInfo: {e}")))?;
    let mut table = SymbolTable::with_capacity(config.symbols.len().max(1));
    let mut rules = Vec::with_capacity(config.symbols.len());
    let mut untradable = BTreeMap::new();
    for symbol in &config.symbols {
        let upper = symbol.to_ascii_uppercase();
        let entry = served.iter().find(|(s, _)| *s == upper);
        if !served.is_empty() && entry.is_none() {
            return Err(RunError::Config(format!("symbols: {upper} is not in the exchange's exchangeInfo")));
        }
        table.intern(&upper).map_err(|e| RunError::Config(format!("symbols: {upper}: {e}")))?;
        match entry.map_or(Err("not in exchangeInfo".to_string()), |(_, r)| r.clone()) {
            Ok(r) => rules.push(Some(r)),
            Err(reason) => {
                tracing::warn!(symbol = %upper, %reason, "no trading rules: the symbol is not traded");
                untradable.insert(upper, reason);
                rules.push(None);
            }
        }
    }
    let table = Arc::new(table);
    let (plans, templates) = plan_endpoints(&config, &table, Some(&tls))?;
    let has = |pred: &dyn Fn(EventKind, bool) -> bool| {
        config.streams.iter().filter_map(|c| classify_channel(c.as_bytes())).any(|(k, p)| pred(k, p))
    };
    let brain_config = BrainConfig {
        bars_from_trades: !has(&|k, _| k == EventKind::Kline) && has(&|k, _| k == EventKind::Trade),
        books: has(&|k, partial| k == EventKind::DepthUpdate && !partial),
        core: config.brain_core,
        idle: config.brain_idle,
        features: config.features,
        flow_from_agg_trades: has(&|k, _| k == EventKind::AggTrade),
        flatten_on_shutdown: config.flatten_on_shutdown,
        prints_from_klines: !has(&|k, _| k == EventKind::AggTrade || k == EventKind::Trade),
        fill_gaps: true,
        latency_skip_events: config.latency_skip_events,
    };
    let (use_glommio, transport_note) = match config.transport {
        TransportChoice::Mio => (false, "mio (configured)".to_string()),
        TransportChoice::Glommio => {
            crate::feed::uring::probe(config.io_memory).map_err(RunError::Config)?;
            (true, "glommio (configured)".to_string())
        }
        TransportChoice::Auto => match crate::feed::uring::probe(config.io_memory) {
            Ok(()) => (true, "glommio (auto: io_uring usable)".to_string()),
            Err(reason) => {
                tracing::warn!(%reason, "io_uring not usable; using the mio transport");
                (false, format!("mio (auto: {reason})"))
            }
        },
    };
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
        let (producer, consumer) =
            ring_with_doorbell(config.ring_capacity, config.ring_spin, table.len(), doorbell.clone());
        ring_stats.push(producer.stats());
        consumers.push(consumer);
        let stats = Arc::new(ShardStats::default());
        shard_stats.push(stats.clone());
        let shard_config = ShardConfig {
            id,
            core: config.shard_cores.get(id).copied(),
            idle: config.idle,
            endpoints,
            max_message: config.max_message,
            backoff_initial: config.backoff_initial,
            backoff_max: config.backoff_max,
            seed: 0x5EED ^ id as u64,
            rotate_after: config.rotate_after,
            channels: config.streams.clone(),
            templates: templates.clone(),
            // Fault injection for the restart test: shard 0 panics once after N messages.
            panic_after_messages: std::env::var("AEGIS_FAULT_SHARD_PANIC_AFTER")
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|_| id == 0),
        };
        let (commands_tx, commands) = rtrb::RingBuffer::<ShardCommand>::new(64);
        shard_commands.push(std::sync::Mutex::new(commands_tx));
        let (symbols, stop, io_memory) = (table.clone(), shard_stop.clone(), config.io_memory);
        shard_threads.push(std::thread::Builder::new().name(format!("aegis-shard-{id}")).spawn(
            move || {
                if use_glommio {
                    crate::feed::uring::run_shard(
                        shard_config,
                        symbols,
                        producer,
                        stats,
                        stop,
                        io_memory,
                        Some(commands),
                    )
                } else {
                    run_shard(shard_config, symbols, producer, stats, stop, Some(commands))
                }
            },
        )?);
    }
    let (rest_tx, rest_rx) = rtrb::RingBuffer::<RestRequest>::new(4096);
    let (results_tx, results_rx) = ring_with_doorbell(1 << 14, 64, table.len(), doorbell.clone());
    let outputs = BarOutputs { bars: config.bars_out.clone(), features: config.features_out.clone() };
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
            (desk.with_venue(intents_tx, reports_rx), Some((intents_rx, reports_tx)))
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
                crate::model::spawn(dir.join("models").join("weights.bin"), model_stop.clone())?;
            let stats = link.stats.clone();
            (
                brain.with_student(crate::brain::student::Student::new(link, table.len())),
                Some(stats),
                Some(thread),
            )
        }
        None => (brain, None, None),
    };
    let (mut sidecar, sidecar_note) = start_sidecar(&config);
    let watchdog_alerts = Arc::new(AtomicU64::new(0));
    // The brain's latency buckets, read by the metrics endpoint and the control socket.
    let stages = Arc::new(crate::metrics::SharedStages::default());
    let brain = brain.with_metrics(stages.clone());
    let (brain, control) = match &config.control_socket {
        Some(path) => {
            let (link, brain_end) = crate::control::brain_link();
            let shards = config.shards.max(1);
            let assignment = Arc::new(std::sync::Mutex::new(crate::control::Assignment {
                shard: (0..table.len()).map(|i| i % shards).collect(),
            }));
            let mover = Some(crate::control::mover(
                std::mem::take(&mut shard_commands),
                shard_stats.clone(),
                assignment.clone(),
                table.clone(),
            ));
            let context = crate::control::ControlContext {
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
            let server = crate::control::serve(path, Arc::new(context))
                .map_err(|e| RunError::Config(format!("control.socket {}: {e}", path.display())))?;
            eprintln!("aegis: control socket {}", path.display());
            (brain.with_control(brain_end), Some(server))
        }
        None => (brain, None),
    };
    // Announced after the control socket is bound: a script that sees this line can use both.
    let (brain, metrics, metrics_note) = match &config.metrics_addr {
        Some(addr) => {
            let context = crate::metrics::MetricsContext {
                watchdog_alerts: watchdog_alerts.clone(),
                brain: brain_stats.clone(),
                desk: desk_stats.clone(),
                shards: shard_stats.clone(),
                rings: ring_stats.clone(),
                stages: stages.clone(),
                live: config.live.as_ref().map(|_| gateway_stats.clone()),
                model: model_stats.clone(),
            };
            match crate::metrics::serve(addr, context) {
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
        let (symbols, stop, warmup, limit) =
            (table.clone(), worker_stop.clone(), config.warmup_bars, config.depth_snapshot_limit);
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
    let mut last_events = 0u64;
    // The brain keeps the largest lag since it was last taken; the run's maximum is kept here.
    let mut lag_max_ns_run = 0u64;
    let mut next_report = started + Duration::from_secs(1);
    let events_seen = || brain_stats.events_by_kind.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    let mut names: Vec<String> = (0..shard_stats.len()).map(|i| format!("shard {i}")).collect();
    names.push("brain".into());
    let mut watchdog = crate::watchdog::Watchdog::new(names, WATCHDOG_STALL, Instant::now());
    let mut heartbeats: Vec<u64> = Vec::with_capacity(shard_stats.len() + 1);
    while !stop.load(Ordering::Relaxed) && config.run_for.is_none_or(|d| started.elapsed() < d) {
        if let Some(warm) = config.warm.as_ref().filter(|w| !w.load(Ordering::Relaxed)) {
            let all_warm = brain_stats.symbols.iter().all(|s| s.features_warm.load(Ordering::Relaxed) == 1);
            if config.warmup_bars == 0 || all_warm {
                warm.store(true, Ordering::Release);
            }
        }
        let trades = desk_stats.trades_closed.load(Ordering::Relaxed);
        let delivered =
            || events_seen() + ring_stats.iter().map(|r| r.dropped.load(Ordering::Relaxed)).sum::<u64>();
        if config.stop_after_events.is_some_and(|n| delivered() >= n)
            || config.stop_after_trades.is_some_and(|n| trades >= n)
        {
            // Grace for anything extra (a doubled event would show up now).
            std::thread::sleep(Duration::from_millis(300));
            break;
        }
        std::thread::sleep(Duration::from_millis(20).min(config.run_for.unwrap_or(Duration::MAX)));
        heartbeats.clear();
        heartbeats.extend(shard_stats.iter().map(|s| s.heartbeat.load(Ordering::Relaxed)));
        heartbeats.push(brain_stats.heartbeat.load(Ordering::Relaxed));
        for event in watchdog.observe(Instant::now(), &heartbeats) {
            match event {
                crate::watchdog::WatchEvent::Stalled { name, still } => {
                    watchdog_alerts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(thread = %name, still_ms = still.as_millis() as u64, "watchdog: no progress");
                }
                crate::watchdog::WatchEvent::Recovered { name } => {
                    tracing::info!(thread = %name, "watchdog: progressing again")
                }
            }
        }
        if config.progress && Instant::now() >= next_report {
            next_report += Duration::from_secs(1);
            let events: u64 = brain_stats.events_by_kind.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            let bars: u64 = brain_stats.symbols.iter().map(|s| s.bars_closed.load(Ordering::Relaxed)).sum();
            let synced =
                brain_stats.symbols.iter().filter(|s| s.book_in_sync.load(Ordering::Relaxed) == 1).count();
            let drops: u64 = ring_stats.iter().map(|r| r.dropped.load(Ordering::Relaxed)).sum();
            let warm =
                brain_stats.symbols.iter().filter(|s| s.features_warm.load(Ordering::Relaxed) == 1).count();
            let n = table.len();
            let lag_ns = brain_stats.lag_max_ns.swap(0, Ordering::Relaxed);
            lag_max_ns_run = lag_max_ns_run.max(lag_ns);
            let lag_us = lag_ns as f64 / 1e3;
            let (trades, open, equity) = (
                desk_stats.trades_closed.load(Ordering::Relaxed),
                desk_stats.open_positions.load(Ordering::Relaxed),
                desk_stats.equity(),
            );
            let phase = desk_stats.phase_name();
            let model = model_stats.as_ref().map_or(0, |m| m.serving.load(Ordering::Relaxed));
            eprintln!(
                "aegis: {:>6.1}s  {:>8} events/s  {:>9} events  {:>6} bars closed  books in sync {synced}/{n}  features warm {warm}/{n}  ring drops {drops}  lag max {lag_us:.0} µs  trades {trades} (open {open})  equity {equity:.2}  {phase}, model {model}",
                started.elapsed().as_secs_f64(),
                events - last_events,
                events,
                bars,
            );
            last_events = events;
        }
    }
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
    stop_sidecar(&mut sidecar);
    worker_stop.store(true, Ordering::Relaxed);
    let _ = worker_thread.join();
    let journal_failures = writer_thread.and_then(|t| t.join().ok()).unwrap_or(0);
    let mut summary =
        summarize(&table, &brain_stats, &shard_stats, &ring_stats, &rest_stats, started.elapsed());
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
    let model_load =
        |f: fn(&crate::model::ModelStats) -> &AtomicU64| model_stats.as_ref().map_or(0, |m| load(f(m)));
    summary["model_generation"] = Value::from(model_load(|m| &m.serving));
    summary["model_swaps"] = Value::from(model_load(|m| &m.swaps));
    // Refused by the loader, plus trained but not published by the sidecar (its journal).
    let not_published = config.data.dir.as_ref().map_or(0, |dir| {
        crate::ledger::read_journal(dir, "models")
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

/// Starts the sidecar (`aegis-sidecar watch`) when configured, with a data dir and the
/// binary present; says what happened either way.
fn start_sidecar(config: &RunConfig) -> (Option<std::process::Child>, Value) {
    let (Some(bin), Some(dir)) = (&config.ml.sidecar, &config.data.dir) else {
        return (None, json!({ "started": false, "why": "not configured, or no data dir" }));
    };
    if !bin.exists() {
        tracing::warn!(path = %bin.display(), "aegis-sidecar not found: the teacher trades alone");
        eprintln!(
            "aegis: aegis-sidecar not found at {}: no learned model this run (the teacher trades alone)",
            bin.display()
        );
        return (None, json!({ "started": false, "why": format!("{} not found", bin.display()) }));
    }
    let child = std::process::Command::new(bin)
        .arg("watch")
        .arg("--data-dir")
        .arg(dir)
        .args(["--every", &config.ml.train_every.max(1).to_string()])
        .args(["--threads", &config.ml.torch_threads.max(1).to_string()])
        .args(["--parent", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(child) => {
            eprintln!(
                "aegis: sidecar started (pid {}): trains every {} closed trades",
                child.id(),
                config.ml.train_every.max(1)
            );
            let pid = child.id();
            (Some(child), json!({ "started": true, "pid": pid, "binary": bin.display().to_string() }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the sidecar did not start");
            (None, json!({ "started": false, "why": e.to_string() }))
        }
    }
}

/// Asks the sidecar to stop (SIGTERM; it finishes the run under way), then waits for it.
fn stop_sidecar(sidecar: &mut Option<std::process::Child>) {
    let Some(child) = sidecar.as_mut() else { return };
    // SAFETY: `kill` with a pid this process spawned and has not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}

/// How long the gateway keeps working on closes and kill switches after the brain stopped.
const GATEWAY_DRAIN: Duration = Duration::from_secs(10);

/// Connects the execution gateway (clock, limits, restart reconciliation, user stream).
fn start_gateway(
    config: &RunConfig,
    live: &LiveConfig,
    tls: &Arc<rustls::ClientConfig>,
    table: Arc<SymbolTable>,
    restored: &[aegis_trading::Position],
    links: GatewayLinks,
) -> Result<(Gateway, crate::live::gateway::StartReport), RunError> {
    let (_, _, _, https) = split_url(&config.rest)?;
    let client = TradeClient::new(&config.rest, live.key.clone(), https.then(|| tls.clone()))
        .map_err(|e| RunError::Config(format!("live trading: {e}")))?;
    let settings = GatewaySettings {
        ws_base: live.user_ws.clone(),
        keep_alive: live.keep_alive,
        journal: config
            .data
            .dir
            .as_ref()
            .map(|d| d.join("journal").join(format!("{}.journal", crate::ledger::ORDERS_JOURNAL))),
        fsync: config.data.fsync,
    };
    Gateway::start(client, settings, table, restored, links)
        .map_err(|e| RunError::Config(format!("live trading: starting the gateway: {e}")))
}

/// Where closed bars and their features are written.
struct BarOutputs {
    bars: Option<PathBuf>,
    features: Option<PathBuf>,
}

impl BarOutputs {
    fn any(&self) -> bool {
        self.bars.is_some() || self.features.is_some()
    }
}

fn create(path: &Option<PathBuf>, header: &str) -> Option<std::io::BufWriter<std::fs::File>> {
    use std::io::Write;
    let path = path.as_ref()?;
    match std::fs::File::create(path) {
        Ok(file) => {
            let mut out = std::io::BufWriter::new(file);
            let _ = writeln!(out, "{header}");
            Some(out)
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot create an output file");
            None
        }
    }
}

/// The writer thread: closed bars and features into CSV files, desk events into the
/// journals and experience rings. Returns the journal appends that failed.
fn write_outputs(
    outputs: BarOutputs,
    mut bars_rx: Option<rtrb::Consumer<ClosedBar>>,
    mut desk_rx: Option<rtrb::Consumer<DeskEvent>>,
    mut ledger: Option<Ledger>,
    symbols: Arc<SymbolTable>,
    stop: Arc<AtomicBool>,
) -> u64 {
    use std::io::Write;
    let mut bars = create(&outputs.bars, "symbol,open_time_ms,open,high,low,close,volume,trades");
    let mut features = create(&outputs.features, &format!("symbol,{}", aegis_analytics::report::header()));
    let mut line = String::with_capacity(160);
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let mut wrote = false;
        while let Some(closed) = bars_rx.as_mut().and_then(|rx| rx.pop().ok()) {
            let name = symbols.name(closed.symbol).unwrap_or("?");
            if let Some(out) = &mut bars {
                line.clear();
                line.push_str(name);
                line.push(',');
                closed.bar.csv_fields(&mut line);
                let _ = writeln!(out, "{line}");
            }
            if let (Some(out), Some(snapshot)) = (&mut features, &closed.features) {
                let _ = writeln!(out, "{name},{}", aegis_analytics::report::row(snapshot));
            }
            wrote = true;
        }
        while let Some(event) = desk_rx.as_mut().and_then(|rx| rx.pop().ok()) {
            if let Some(ledger) = &mut ledger {
                ledger.write(&event);
            }
            wrote = true;
        }
        if stopping && !wrote {
            for out in [&mut bars, &mut features].into_iter().flatten() {
                let _ = out.flush();
            }
            return ledger.map_or(0, |mut l| {
                l.sync();
                l.failures()
            });
        }
        if !wrote {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn summarize(
    table: &SymbolTable,
    brain: &BrainStats,
    shards: &[Arc<ShardStats>],
    rings: &[Arc<RingStats>],
    rest: &RestStats,
    elapsed: Duration,
) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let by_kind: BTreeMap<&str, u64> =
        EventKind::ALL.iter().map(|k| (k.name(), load(&brain.events_by_kind[kind_index(*k)]))).collect();
    let mut symbols = BTreeMap::new();
    let (mut bars, mut dups, mut in_sync, mut crossed, mut bt_match, mut bt_mismatch) = (0, 0, 0, 0, 0, 0);
    for (id, name) in table.iter() {
        let s = &brain.symbols[usize::from(id.0)];
        bars += load(&s.bars_closed);
        dups += load(&s.duplicates_dropped);
        in_sync += load(&s.book_in_sync);
        crossed += load(&s.book_crossed);
        bt_match += load(&s.book_ticker_matches);
        bt_mismatch += load(&s.book_ticker_mismatches);
        symbols.insert(
            name.to_string(),
            json!({
                "events": load(&s.events),
                "bars_closed": load(&s.bars_closed),
                "trade_id_gaps": load(&s.trade_id_gaps),
                "trade_ids_recovered": load(&s.trade_ids_recovered),
                "agg_ids_skipped": load(&s.agg_ids_skipped),
                "agg_ids_recovered": load(&s.agg_ids_recovered),
                "agg_ids_unrecovered": load(&s.agg_ids_unrecovered),
                "agg_ids_missing": load(&s.agg_ids_missing),
                "duplicates_dropped": load(&s.duplicates_dropped),
                "book_in_sync": load(&s.book_in_sync) == 1,
                "bars_rejected": load(&s.bars_rejected),
                "features_warm": load(&s.features_warm) == 1,
                "features": aegis_analytics::NAMES.iter().zip(s.latest_features()).map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    let sum = |f: &dyn Fn(&ShardStats) -> u64| shards.iter().map(|s| f(s)).sum::<u64>();
    json!({
        "seconds": elapsed.as_secs_f64(),
        "events_total": by_kind.values().sum::<u64>(),
        "events_by_kind": by_kind,
        "messages_received": sum(&|s| load(&s.messages)),
        "parse_errors": sum(&|s| load(&s.parse_errors)),
        "ring_drops": rings.iter().map(|r| load(&r.dropped)).sum::<u64>(),
        "reconnects": sum(&|s| load(&s.reconnects)),
        "disconnects": sum(&|s| load(&s.disconnects)),
        "rotations": sum(&|s| load(&s.rotations)),
        "gaps_detected": load(&brain.gaps_detected),
        "gaps_filled": load(&brain.gaps_filled),
        "duplicates_dropped": dups,
        "trade_id_gaps": brain.symbols.iter().map(|s| load(&s.trade_id_gaps)).sum::<u64>(),
        "trade_ids_recovered": brain.symbols.iter().map(|s| load(&s.trade_ids_recovered)).sum::<u64>(),
        "agg_ids_skipped": brain.symbols.iter().map(|s| load(&s.agg_ids_skipped)).sum::<u64>(),
        "agg_ids_recovered": brain.symbols.iter().map(|s| load(&s.agg_ids_recovered)).sum::<u64>(),
        "agg_ids_unrecovered": brain.symbols.iter().map(|s| load(&s.agg_ids_unrecovered)).sum::<u64>(),
        "agg_ids_missing": brain.symbols.iter().map(|s| load(&s.agg_ids_missing)).sum::<u64>(),
        "bars_closed": bars,
        "bars_rejected": brain.symbols.iter().map(|s| load(&s.bars_rejected)).sum::<u64>(),
        "symbols_features_warm": brain.symbols.iter().filter(|s| load(&s.features_warm) == 1).count(),
        "rollups_closed": { "5m": load(&brain.rollups_closed[0]), "15m": load(&brain.rollups_closed[1]), "1h": load(&brain.rollups_closed[2]), "1d": load(&brain.rollups_closed[3]) },
        "books_in_sync": in_sync,
        "books_out_of_sync": table.len() as u64 - in_sync,
        "books_crossed": crossed,
        "book_ticker_matches": bt_match,
        "book_ticker_mismatches": bt_mismatch,
        "rest": { "requests": load(&rest.requests), "rate_limited": load(&rest.rate_limited), "failures": load(&rest.failures), "weight_used_1m": load(&rest.weight_used) },
        "last_error": shards.iter().filter_map(|s| s.last_error.lock().ok().map(|e| e.clone())).find(|e| !e.is_empty()),
        "symbols": symbols,
    })
}
