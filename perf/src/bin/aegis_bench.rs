//! `aegis-bench`: the latency and throughput harness (SPEC §11). One process runs the
//! engine and the baseline pipeline against the same pre-generated synthetic market, fed
//! over loopback WebSocket, and writes JSON, a markdown report and a latency plot.

use aegis::config::run::{BrainSettings, EndSettings, ExchangeSettings, FeedSettings, RunConfig};
use aegis::cpu::ThreadPlan;
use aegis::feed::transport::TransportChoice;
use aegis::latency::StageLatency;
use aegis::ring::Idle;
use aegis_perf::baseline::{self, BaselineConfig};
use aegis_perf::cpu::{self, CpuSampler};
use aegis_perf::feeder::{Feeder, Pace};
use aegis_perf::report;
use aegis_perf::scenario::{Scenario, ScenarioConfig};
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Channels every symbol is subscribed to in every scenario.
const CHANNELS: [&str; 4] = ["aggTrade", "bookTicker", "kline_1m", "markPrice@1s"];

/// History bars served for REST warm-up (every symbol's features warm at 241).
const HISTORY_BARS: usize = 300;

#[derive(Parser, Debug)]
#[command(
    name = "aegis-bench",
    about = "Wire-to-decision latency and throughput: aegis against a tokio + tungstenite + serde_json baseline, same run"
)]
struct Args {
    /// Small scenarios and fewer variants: under a minute on a 2-core machine.
    #[arg(long)]
    quick: bool,
    /// Write the result JSON here too (it always goes to the results folder).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Results folder (result.json, report.md, latency.svg).
    #[arg(long, default_value = "perf/results")]
    out: PathBuf,
    /// Synthetic symbols in the latency and throughput scenarios.
    #[arg(long, default_value_t = 20)]
    symbols: usize,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Paced feed rate of the latency scenario, messages per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Messages in the latency scenario.
    #[arg(long)]
    latency_events: Option<usize>,
    /// Messages in the throughput scenario and each sweep variant.
    #[arg(long)]
    throughput_events: Option<usize>,
    /// Symbols of the memory scenario (0: skip it).
    #[arg(long)]
    memory_symbols: Option<usize>,
    /// Models published during the hot-swap scenario's latency run (0: skip the scenario).
    #[arg(long, default_value_t = 1_000)]
    publishes: usize,
    /// Seconds of each order path's live run in the tick-to-trade scenario (0: skip it);
    /// with `--tick-to-trade-trades`, the most each run may take.
    #[arg(long)]
    tick_to_trade_seconds: Option<u64>,
    /// End each order path's run once this many trades have closed (each entered, so
    /// measured) instead of after its seconds.
    #[arg(long)]
    tick_to_trade_trades: Option<u64>,
    /// Skip the shard, transport and ring-capacity sweeps.
    #[arg(long)]
    no_sweeps: bool,
    /// Transport of the latency and throughput scenarios: mio (the one `transport-rtt`
    /// recommends on the development host), glommio or auto; the sweeps try both.
    #[arg(long, default_value = "mio")]
    transport: String,
    /// Idle policy of the shards and the brain: auto (spin when pinned, else park), spin,
    /// spin-then-park or park.
    #[arg(long, default_value = "auto")]
    idle: String,
    /// (internal) run the engine alone in this process against these WS and REST URLs, for
    /// the memory scenario.
    #[arg(long, hide = true, num_args = 2, value_names = ["WS", "REST"])]
    memory_child: Vec<String>,
    /// (internal) events the memory child waits for.
    #[arg(long, hide = true, default_value_t = 0)]
    child_events: u64,
}

/// One engine configuration to measure.
#[derive(Clone, Debug)]
struct Variant {
    shards: usize,
    transport: TransportChoice,
    ring_capacity: usize,
    /// `None`: spin when pinned, else park.
    idle: Option<Idle>,
    /// A thread per role, or one thread (never `Auto`: the harness says which it measures).
    placement: ThreadPlan,
}

impl Variant {
    fn label(&self) -> String {
        let idle = self.idle.map_or("auto".to_string(), |i| format!("{i:?}"));
        format!(
            "shards={} transport={:?} ring={} idle={idle} placement={}",
            self.shards,
            self.transport,
            self.ring_capacity,
            self.placement.name()
        )
        .to_lowercase()
    }
}

/// What one engine run measured.
struct EngineRun {
    latency: StageLatency,
    summary: Value,
    cpu_s: f64,
    /// CPU seconds of the shards, the brain, and the REST worker.
    cpu_by_thread: Value,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.memory_child.is_empty() {
        return memory_child(&args);
    }
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rate = args.rate.unwrap_or(if args.quick { 20_000.0 } else { 50_000.0 });
    let latency_events = args.latency_events.unwrap_or(if args.quick { 60_000 } else { 1_000_000 });
    let throughput_events = args.throughput_events.unwrap_or(if args.quick { 200_000 } else { 2_000_000 });
    let memory_symbols = args.memory_symbols.unwrap_or(1_000);
    let transport = match args.transport.as_str() {
        "auto" => TransportChoice::Auto,
        "glommio" => TransportChoice::Glommio,
        "mio" => TransportChoice::Mio,
        other => bail!("--transport {other:?}: expected auto, glommio or mio"),
    };
    let idle = match args.idle.as_str() {
        "auto" => None,
        "spin" => Some(Idle::Spin),
        "spin-then-park" => Some(Idle::SpinThenPark),
        "park" => Some(Idle::Park),
        other => bail!("--idle {other:?}: expected auto, spin, spin-then-park or park"),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
    let generate = |events: usize| {
        Scenario::generate(&ScenarioConfig {
            symbols: args.symbols,
            seed: args.seed,
            channels: channels.clone(),
            events,
            history_bars: HISTORY_BARS,
        })
    };
    eprintln!(
        "aegis-bench: generating {} + {} messages of {} symbols",
        latency_events, throughput_events, args.symbols
    );
    let paced = generate(latency_events);
    let flat = generate(throughput_events);
    let rest_sim = start_rest_sim(args.symbols, args.seed)?;
    let rest_port = rest_sim.port;
    let rest = format!("http://127.0.0.1:{rest_port}");
    // The placement `auto` picks on this host leads; the other one is measured beside it.
    let (chosen, why) = auto_placement(transport)?;
    let base = Variant { shards: 1, transport, ring_capacity: 1 << 16, idle, placement: chosen };
    let other = Variant {
        placement: if chosen == ThreadPlan::OneThread { ThreadPlan::Threads } else { ThreadPlan::OneThread },
        ..base.clone()
    };
    let other =
        (other.placement == ThreadPlan::Threads || transport != TransportChoice::Glommio).then_some(other);

    eprintln!("aegis-bench: latency scenario, {rate:.0} messages/s, {}", base.label());
    let lat_engine = run_engine(&paced, &rest, &base, Pace::Rate(rate), cores)?;
    let lat_base = run_baseline(&paced, Pace::Rate(rate))?;
    eprintln!("aegis-bench: throughput scenario, flat out, {}", base.label());
    let thr_engine = run_engine(&flat, &rest, &base, Pace::Flat, cores)?;
    let thr_base = run_baseline(&flat, Pace::Flat)?;
    let beside = match &other {
        Some(v) => {
            eprintln!("aegis-bench: latency and throughput scenarios, {}", v.label());
            Some((
                v.placement,
                run_engine(&paced, &rest, v, Pace::Rate(rate), cores)?,
                run_engine(&flat, &rest, v, Pace::Flat, cores)?,
            ))
        }
        None => None,
    };

    let mut sweeps = Vec::new();
    let mut idle_sweep = Vec::new();
    if !args.no_sweeps {
        for policy in [Idle::Spin, Idle::SpinThenPark, Idle::Park] {
            let variant = Variant { idle: Some(policy), ..base.clone() };
            eprintln!("aegis-bench: latency sweep {}", variant.label());
            match run_engine(&paced, &rest, &variant, Pace::Rate(rate), cores) {
                Ok(r) => idle_sweep.push(json!({
                    "variant": variant.label(),
                    "latency": r.latency.summary(),
                    "cpu_s": r.cpu_s,
                    "cpu_by_thread": r.cpu_by_thread,
                    "ring_drops": r.summary["ring_drops"],
                })),
                Err(e) => idle_sweep.push(json!({ "variant": variant.label(), "error": format!("{e:#}") })),
            }
        }
        for variant in sweep_variants(cores, args.quick) {
            eprintln!("aegis-bench: sweep {}", variant.label());
            match run_engine(&flat, &rest, &variant, Pace::Flat, cores) {
                Ok(r) => sweeps.push(json!({
                    "variant": variant.label(),
                    "shards": variant.shards,
                    "transport": r.summary["transport"],
                    "ring_capacity": variant.ring_capacity,
                    "latency": r.latency.summary(),
                    "ring_drops": r.summary["ring_drops"],
                    "cpu_s": r.cpu_s,
                })),
                Err(e) => sweeps.push(json!({ "variant": variant.label(), "error": format!("{e:#}") })),
            }
        }
    }
    let hot_swap = if args.publishes > 0 {
        eprintln!("aegis-bench: hot-swap scenario, {} publishes during the latency run", args.publishes);
        run_hot_swap(&paced, &rest, &base, rate, cores, args.publishes)?
    } else {
        json!({ "measured": false, "note": "Skipped (--publishes 0)." })
    };
    let tick_seconds = args.tick_to_trade_seconds.unwrap_or(if args.quick { 6 } else { 30 });
    let tick_to_trade = if tick_seconds > 0 {
        eprintln!("aegis-bench: tick-to-trade scenario, {tick_seconds} s per order path");
        run_tick_to_trade(tick_seconds, args.tick_to_trade_trades, args.seed)?
    } else {
        json!({ "measured": false, "note": "Skipped (--tick-to-trade-seconds 0)." })
    };
    let memory = if memory_symbols > 0 {
        eprintln!("aegis-bench: memory scenario, {memory_symbols} symbols");
        Some(run_memory(memory_symbols, args.seed)?)
    } else {
        None
    };

    let scenario = |s: &Scenario, pace: &str| json!({ "symbols": s.symbols.len(), "channels": CHANNELS, "messages": s.messages.len(), "pace": pace, "seed": args.seed });
    let side = |e: &EngineRun| json!({ "latency": e.latency.summary(), "cpu_s": e.cpu_s, "cpu_by_thread": e.cpu_by_thread, "ring_drops": e.summary["ring_drops"], "transport": e.summary["transport"], "events_applied": e.summary["events_total"] });
    let base_side = |b: &baseline::BaselineReport, cpu_s: f64| json!({ "latency": b.latency.summary(), "cpu_s": cpu_s, "parse_errors": b.parse_errors, "events_applied": b.brain_events });
    let e2e = |l: &StageLatency| aegis::latency::percentiles(&l.wire_to_decision);
    let mut result = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "date": now_utc(),
        "machine": machine(cores),
        "quick": args.quick,
        "seconds": 0.0,
        "scenario": { "latency": scenario(&paced, &format!("{rate} messages/s")), "throughput": scenario(&flat, "flat out") },
        "e2e": e2e(&lat_engine.latency),
        "stages": lat_engine.latency.summary(),
        "events_per_s": thr_engine.latency.events_per_s(),
        "baseline": {
            "e2e": e2e(&lat_base.0.latency),
            "stages": lat_base.0.latency.summary(),
            "events_per_s": thr_base.0.latency.events_per_s(),
        },
        "scenarios": {
            "latency": {
                "note": format!("{} messages of {} symbols at {rate:.0}/s; stage times from the engine's own stamps (shard read, ring push, brain receipt, decision); the baseline stamps tokio-tungstenite's message, serde_json's struct, the consumer's receipt and the same brain's decision.", paced.messages.len(), paced.symbols.len()),
                "engine": side(&lat_engine),
                "baseline": base_side(&lat_base.0, lat_base.1),
            },
            "throughput": {
                "note": format!("{} messages of {} symbols written as fast as each socket takes them; events/s from the first measured read to the last decision.", flat.messages.len(), flat.symbols.len()),
                "engine": side(&thr_engine),
                "baseline": base_side(&thr_base.0, thr_base.1),
            },
        },
        "sweeps": sweeps,
        "idle_sweep": idle_sweep,
        "memory": memory,
        "hot_swap": hot_swap,
        "tick_to_trade": tick_to_trade,
    });
    result["ratios"] = ratios(&result);
    let mut placements = vec![placement_view(chosen, &lat_engine, &thr_engine, &result)];
    if let Some((plan, lat, thr)) = &beside {
        placements.push(placement_view(*plan, lat, thr, &result));
    }
    result["placements"] = json!({ "auto_picks": chosen.name(), "why": why, "runs": placements });
    result["bars"] = bars(&result, cores);
    result["seconds"] = json!(started.elapsed().as_secs_f64());
    write_outputs(&args, &result, &lat_engine.latency, &lat_base.0.latency)?;
    eprintln!("{}", report::markdown(&result));
    eprintln!(
        "aegis-bench: done in {:.1} s; results in {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// Tick-to-trade (issue 19): the engine trading live against exchange-sim over loopback
/// (its synthetic market at 600×, a 1m bar per symbol every 0.1 s), entering at every chance
/// (the bench-only trigger: the random-entries coin at probability 1, since entries come
/// only on closed bars), once per order path — the WebSocket API, REST kept alive, and REST
/// with a new connection per request (the old client, a baseline only this harness runs).
/// Each entry is measured from the shard's read of the market event that closed its bar to
/// the entry order's last byte written (WebSocket API) and to the exchange's answer.
fn run_tick_to_trade(seconds: u64, trades: Option<u64>, seed: u64) -> anyhow::Result<Value> {
    const KEY: &str = "bench-key-0123456789";
    const SECRET: &str = "bench-secret-0123456789";
    let mut paths = Vec::new();
    for (name, websocket, per_request) in [
        ("websocket-api", true, false),
        ("rest-kept-alive", false, false),
        ("rest-per-connection", false, true),
    ] {
        let mut args = exchange_sim::cli::Args::synthetic(8, seed, HISTORY_BARS);
        args.speed = exchange_sim::cli::Speed::Factor(600.0);
        args.api_keys.push((KEY.into(), SECRET.into()));
        args.order_limit_10s = u32::MAX;
        args.rest_weight_limit = u32::MAX;
        // Its own market, stopped when this path's run ends (at the loop's end): an idle
        // market left running at 600× would load the paths after it.
        let sim = exchange_sim::spawn(args)?;
        let port = sim.port;
        // The embedded config, made live below with the benchmark's key (a file asking for
        // live mode would need a key file).
        let file = aegis::config::parse(aegis::config::DEFAULT_CONFIG, "the embedded config")?;
        let mut config = aegis::config::build(&file)?;
        let ws = format!("ws://127.0.0.1:{port}");
        config.exchange.public_ws = ws.clone();
        config.exchange.market_ws = ws;
        config.exchange.rest = format!("http://127.0.0.1:{port}");
        config.data.dir = None;
        config.ops = Default::default();
        config.ml = Default::default();
        config.end = EndSettings {
            run_for: Some(Duration::from_secs(seconds)),
            stop_after_trades: trades,
            ..Default::default()
        };
        let mut client =
            aegis::rest::client::RestClient::for_url(&config.exchange.rest, None, Default::default())?;
        config.feed.symbols = client.exchange_info()?.into_iter().map(|s| s.name).collect();
        config.bench_entries = Some(1.0);
        let key = aegis::credentials::ApiKey::new(KEY, SECRET, "the benchmark");
        config = aegis::config::build::with_live_key(config, &file, key)?;
        if let Some(live) = config.live.as_mut() {
            if !websocket {
                live.ws_api = None;
            }
            live.rest_per_request = per_request;
        }
        let summary = aegis::run::run(config, Arc::new(AtomicBool::new(false)))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
            .summary;
        let live = &summary["live"];
        paths.push(json!({
            "path": name,
            "entries": live["entries"],
            // Why entries may be few: bars too late to trade on, signals the desk saw.
            "stale_bars_not_traded": summary["stale_bars_not_traded"],
            "signals": summary["signals"],
            "trades_closed": summary["trades_closed"],
            "tick_to_trade": live["tick_to_trade"],
            "ws_api_requests": live["ws_api"]["requests"],
        }));
    }
    Ok(json!({
        "measured": true,
        "note": format!("{seconds} s of live trading per order path against exchange-sim (8 synthetic symbols at 600×, loopback, plain TCP), an entry at every chance; from the shard's read of the event that closed the entry's bar to the entry order's last byte written (WebSocket API only) and to the exchange's answer."),
        "paths": paths,
    }))
}

/// exchange-sim serving REST (exchangeInfo, warm-up klines) for the engine runs.
fn start_rest_sim(symbols: usize, seed: u64) -> anyhow::Result<exchange_sim::Embedded> {
    let mut args = exchange_sim::cli::Args::synthetic(symbols, seed, HISTORY_BARS);
    args.rest_weight_limit = 1_000_000;
    exchange_sim::spawn(args)
}

/// The engine's settings for one run: pinned (shards from core 2, the brain on core 1,
/// core 0 left to the feeder) and spinning when the host has the cores, else unpinned and
/// parking (woken by the socket and the ring's doorbell): spinning threads on an
/// oversubscribed host only steal each other's time slices.
fn engine_config(
    ws: &str,
    rest: &str,
    symbols: Vec<String>,
    v: &Variant,
    events: u64,
    cores: usize,
    data_dir: Option<PathBuf>,
) -> RunConfig {
    let pinned = cores >= v.shards + 3;
    let idle = v.idle.unwrap_or(if pinned { Idle::Spin } else { Idle::Park });
    RunConfig {
        exchange: ExchangeSettings {
            public_ws: ws.to_string(),
            market_ws: ws.to_string(),
            rest: rest.to_string(),
            backoff_max: Duration::from_secs(5),
            rotate_after: None,
            max_message: 1 << 20,
            warmup_bars: HISTORY_BARS,
            ..Default::default()
        },
        feed: FeedSettings {
            symbols,
            streams: CHANNELS.iter().map(|c| c.to_string()).collect(),
            shards: v.shards,
            shard_cores: if pinned { (2..2 + v.shards).collect() } else { Vec::new() },
            idle,
            transport: v.transport,
            ring_capacity: v.ring_capacity,
            ring_spin: 1 << 12,
            ..Default::default()
        },
        placement: v.placement,
        brain: BrainSettings {
            core: pinned.then_some(1),
            idle,
            latency_skip_events: skip_events(events),
            ..Default::default()
        },
        end: EndSettings {
            run_for: Some(Duration::from_secs(600)),
            stop_after_events: Some(events),
            warm: Some(Arc::new(AtomicBool::new(false))),
            ..Default::default()
        },
        data: aegis::store::ledger::DataConfig { dir: data_dir, ..Default::default() },
        ..Default::default()
    }
}

/// Events left out at the start of a measurement (connection set-up, cold caches).
fn skip_events(events: u64) -> u64 {
    (events / 20).min(2_000)
}

/// Waits (polling: this is the harness, not a test) until `ready` holds, or fails after a minute.
fn wait_until(what: &str, ready: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn run_engine(s: &Scenario, rest: &str, v: &Variant, pace: Pace, cores: usize) -> anyhow::Result<EngineRun> {
    run_engine_with_data(s, rest, v, pace, cores, None)
}

/// [`run_engine`] keeping its state in `data_dir` (journals, experience log, and the
/// weights file its model loader watches).
fn run_engine_with_data(
    s: &Scenario,
    rest: &str,
    v: &Variant,
    pace: Pace,
    cores: usize,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<EngineRun> {
    let feeder = Feeder::start(&s.streams, &s.messages, pace)?;
    let ws = format!("ws://127.0.0.1:{}", feeder.port);
    let config = engine_config(&ws, rest, s.symbols.clone(), v, s.messages.len() as u64, cores, data_dir);
    let warm = config.end.warm.clone().context("warm flag")?;
    let connections = s.connection_paths(v.shards, CHANNELS.len()).len();
    let sampler = CpuSampler::start();
    let stop = Arc::new(AtomicBool::new(false));
    let engine = std::thread::Builder::new().name("bench-engine".into()).spawn({
        let stop = stop.clone();
        move || aegis::run::run(config, stop)
    })?;
    let ready = wait_until("the engine to connect and warm up", || {
        engine.is_finished() || (warm.load(Ordering::Acquire) && feeder.connected() >= connections)
    });
    if let Err(e) = ready {
        stop.store(true, Ordering::Relaxed);
        return Err(e);
    }
    feeder.go();
    let report = engine.join().map_err(|_| anyhow::anyhow!("the engine thread panicked"))??;
    let cpu = sampler.finish(&["aegis-", "aegis-shard", "aegis-brain", "aegis-rest"]);
    let cpu_by_thread = json!({ "shards": cpu[1].1, "brain": cpu[2].1, "rest": cpu[3].1 });
    let latency = report.latency.context("the brain returned no latency")?;
    Ok(EngineRun { latency, summary: report.summary, cpu_s: cpu[0].1, cpu_by_thread })
}

fn run_baseline(s: &Scenario, pace: Pace) -> anyhow::Result<(baseline::BaselineReport, f64)> {
    let feeder = Feeder::start(&s.streams, &s.messages, pace)?;
    let urls: Vec<String> = s
        .connection_paths(1, CHANNELS.len())
        .iter()
        .map(|p| format!("ws://127.0.0.1:{}{p}", feeder.port))
        .collect();
    let infos = exchange_sim::market::Source::symbols(&exchange_sim::synthetic::Synthetic::new(&s.market));
    let config = BaselineConfig {
        symbols: s.symbols.clone(),
        history: s.history.clone(),
        events: s.messages.len() as u64,
        skip_events: skip_events(s.messages.len() as u64),
        features: aegis_analytics::FeatureConfig::default(),
        trading: aegis::desk::TradingConfig::default(),
        rules: infos.iter().map(aegis::replay::rules_of).collect(),
        urls: urls.clone(),
    };
    let sampler = CpuSampler::start();
    let report = baseline::run(config, || {
        if wait_until("the baseline to connect", || feeder.connected() >= urls.len()).is_ok() {
            feeder.go();
        }
    })?;
    let cpu_s = sampler.finish(&["base-"])[0].1;
    Ok((report, cpu_s))
}

/// The weight hot-swap's cost on the brain (SPEC §7): the paced latency run twice, each
/// with a data directory and a model serving from the start — once quiet, once while a
/// publisher thread writes `publishes` more models into the weights file, spread over the
/// run. Compares every event's wire-to-decision and the bar-closing events' (where the
/// brain takes a swap and predicts).
fn run_hot_swap(
    s: &Scenario,
    rest: &str,
    v: &Variant,
    rate: f64,
    cores: usize,
    publishes: usize,
) -> anyhow::Result<Value> {
    let feed = Duration::from_secs_f64(s.messages.len() as f64 / rate);
    let every = feed / publishes as u32;
    let mut runs = Vec::new();
    for (label, publishes) in [("quiet", 0), ("publishing", publishes)] {
        let dir = std::env::temp_dir().join(format!("aegis-bench-swap-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let weights = dir.join("models").join("weights.bin");
        std::fs::create_dir_all(dir.join("models"))?;
        let mut writer = aegis_wire::weights::WeightsWriter::open(&weights)?;
        writer.publish(&aegis_perf::model::sample_model(1));
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = std::thread::Builder::new().name("bench-publisher".into()).spawn({
            let stop = stop.clone();
            move || {
                let mut model = aegis_perf::model::sample_model(2);
                let mut published = 0;
                while published < publishes && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    model.generation += 1;
                    writer.publish(&model);
                    published += 1;
                }
                published
            }
        })?;
        let run = run_engine_with_data(s, rest, v, Pace::Rate(rate), cores, Some(dir.clone()));
        stop.store(true, Ordering::Relaxed);
        let published = publisher.join().map_err(|_| anyhow::anyhow!("the publisher panicked"))?;
        let _ = std::fs::remove_dir_all(&dir);
        let run = run?;
        runs.push(json!({
            "run": label,
            "published": published,
            "swaps": run.summary["model_swaps"],
            "refused": run.summary["models_rejected"],
            "serving_at_end": run.summary["model_generation"],
            "wire_to_decision": aegis::latency::percentiles(&run.latency.wire_to_decision),
            "bar_close_wire_to_decision": aegis::latency::percentiles(&run.latency.bar_close),
        }));
    }
    Ok(json!({
        "measured": true,
        "note": format!(
            "The paced latency scenario ({} messages at {rate:.0}/s) twice with a model serving from the start: quiet, then with up to {publishes} more published one every {:.1} ms. The loader checks the file every 20 ms; the brain takes at most one model per closed bar. Bar closes are the events on which the brain takes a swap and steps the model.",
            s.messages.len(),
            every.as_secs_f64() * 1e3
        ),
        "runs": runs,
    }))
}

/// Shard counts 1, 2, 4, … up to the cores, both transports, two ring capacities (a thread
/// per role: what the sweeps compare is shards, transports and rings).
fn sweep_variants(cores: usize, quick: bool) -> Vec<Variant> {
    let mut variants = Vec::new();
    let max_shards = if quick { 2.min(cores) } else { cores.min(16) };
    let mut shards = 1;
    while shards <= max_shards.max(1) {
        variants.push(Variant {
            shards,
            transport: TransportChoice::Mio,
            ring_capacity: 1 << 16,
            idle: None,
            placement: ThreadPlan::Threads,
        });
        shards *= 2;
    }
    if aegis::feed::transport::glommio::probe(512 << 10).is_ok() {
        variants.push(Variant {
            shards: 1,
            transport: TransportChoice::Glommio,
            ring_capacity: 1 << 16,
            idle: None,
            placement: ThreadPlan::Threads,
        });
    }
    variants.push(Variant {
        shards: 1,
        transport: TransportChoice::Mio,
        ring_capacity: 1 << 10,
        idle: None,
        placement: ThreadPlan::Threads,
    });
    variants
}

/// The engine alone in a child process with `symbols` symbols: its resident memory once
/// every symbol is warm and the feed has run.
fn run_memory(symbols: usize, seed: u64) -> anyhow::Result<Value> {
    let events = 20 * symbols;
    let s = Scenario::generate(&ScenarioConfig {
        symbols,
        seed,
        channels: CHANNELS.iter().map(|c| c.to_string()).collect(),
        events,
        history_bars: HISTORY_BARS,
    });
    let rest_sim = start_rest_sim(symbols, seed)?;
    let rest_port = rest_sim.port;
    let feeder = Feeder::start(&s.streams, &s.messages, Pace::Flat)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--memory-child",
            &format!("ws://127.0.0.1:{}", feeder.port),
            &format!("http://127.0.0.1:{rest_port}"),
        ])
        .args(["--symbols", &symbols.to_string(), "--seed", &seed.to_string()])
        .args(["--child-events", &events.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the memory child")?;
    let mut lines = std::io::BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if first != "warm" {
        let _ = child.kill();
        bail!("the memory child did not warm up: {first:?}");
    }
    let connections = s.connection_paths(1, CHANNELS.len()).len();
    wait_until("the memory child to connect", || feeder.connected() >= connections)?;
    feeder.go();
    let measured: Value = serde_json::from_str(&lines.next().transpose()?.unwrap_or_default())
        .context("the memory child's result line")?;
    let status = child.wait()?;
    if !status.success() {
        bail!("the memory child failed: {status}");
    }
    let peak = measured["peak_rss_bytes"].as_u64().unwrap_or(0);
    let per_symbol = measured["per_symbol_brain_bytes"].as_u64().unwrap_or(0);
    Ok(json!({
        "symbols": symbols,
        "rss_bytes": measured["rss_bytes"],
        "peak_rss_bytes": peak,
        "peak_rss_per_symbol_bytes": peak / symbols as u64,
        "per_symbol_brain_bytes": per_symbol,
        "events": measured["events"],
        "note": format!(
            "{symbols} symbols, every one warm ({} bars of REST warm-up) and {} messages applied, engine alone in a child process with no data dir (so no mmap'd experience log): peak RSS {:.1} MiB ({:.1} KiB per symbol for the whole process); the RSS growth from start to every symbol warm, per symbol (an upper bound on the brain's per-symbol state): {:.1} KiB.",
            HISTORY_BARS, events, peak as f64 / 1048576.0, peak as f64 / symbols as f64 / 1024.0, per_symbol as f64 / 1024.0
        ),
    }))
}

/// The memory child: the engine alone; prints `warm`, then one JSON line of its memory.
fn memory_child(args: &Args) -> anyhow::Result<()> {
    let (ws, rest) = (&args.memory_child[0], &args.memory_child[1]);
    let market = exchange_sim::synthetic::SyntheticConfig {
        symbols: args.symbols,
        seed: args.seed,
        history_bars: 1,
        ..Default::default()
    };
    let symbols: Vec<String> =
        exchange_sim::market::Source::symbols(&exchange_sim::synthetic::Synthetic::new(&market))
            .into_iter()
            .map(|s| s.symbol)
            .collect();
    let variant = Variant {
        shards: 1,
        transport: TransportChoice::Mio,
        ring_capacity: 1 << 16,
        idle: None,
        placement: ThreadPlan::Threads,
    };
    let before = cpu::rss("self").map_or(0, |r| r.0);
    let config = engine_config(ws, rest, symbols, &variant, args.child_events, 1, None);
    let warm = config.end.warm.clone().context("warm flag")?;
    let stop = Arc::new(AtomicBool::new(false));
    let engine = std::thread::spawn(move || aegis::run::run(config, stop));
    wait_until("every symbol to warm up", || warm.load(Ordering::Acquire) || engine.is_finished())?;
    let warm_rss = cpu::rss("self").map_or(0, |r| r.0);
    println!("warm");
    std::io::stdout().flush()?;
    let report = engine.join().map_err(|_| anyhow::anyhow!("the engine panicked"))??;
    let (rss, peak) = cpu::rss("self").context("reading /proc/self/status")?;
    println!(
        "{}",
        json!({
            "rss_bytes": rss,
            "peak_rss_bytes": peak,
            "events": report.summary["events_total"],
            "per_symbol_brain_bytes": warm_rss.saturating_sub(before) / args.symbols.max(1) as u64,
        })
    );
    Ok(())
}

/// The thread plan `auto` picks for one shard on `transport` on this host, and why.
fn auto_placement(transport: TransportChoice) -> anyhow::Result<(ThreadPlan, String)> {
    let mut config = RunConfig::default();
    config.feed.shards = 1;
    config.feed.transport = transport;
    aegis::run::plan::thread_plan(&config, aegis::cpu::usable().len()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One placement's paced and flat-out runs, with the SPEC §11 ratios against the baseline of
/// the same run (`result`).
fn placement_view(plan: ThreadPlan, lat: &EngineRun, thr: &EngineRun, result: &Value) -> Value {
    let mut view = json!({
        "placement": plan.name(),
        "e2e": aegis::latency::percentiles(&lat.latency.wire_to_decision),
        "stages": lat.latency.summary(),
        "events_per_s": thr.latency.events_per_s(),
        "baseline": result["baseline"],
        "scenarios": { "throughput": {
            "engine": { "cpu_s": thr.cpu_s },
            "baseline": result["scenarios"]["throughput"]["baseline"],
        } },
        "cpu_s": { "paced": lat.cpu_s, "flat": thr.cpu_s },
        "ring_drops": { "paced": lat.summary["ring_drops"], "flat": thr.summary["ring_drops"] },
    });
    view["ratios"] = ratios(&view);
    for key in ["baseline", "scenarios"] {
        view.as_object_mut().map(|o| o.remove(key));
    }
    view
}

fn ratios(r: &Value) -> Value {
    let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    json!({
        "p50_baseline_over_aegis": ratio(&r["baseline"]["e2e"]["p50_ns"], &r["e2e"]["p50_ns"]),
        "p99_baseline_over_aegis": ratio(&r["baseline"]["e2e"]["p99_ns"], &r["e2e"]["p99_ns"]),
        "p999_baseline_over_aegis": ratio(&r["baseline"]["e2e"]["p999_ns"], &r["e2e"]["p999_ns"]),
        "events_per_s_aegis_over_baseline": ratio(&r["events_per_s"], &r["baseline"]["events_per_s"]),
        "cpu_s_per_event_baseline_over_aegis": ratio(
            &json!(r["scenarios"]["throughput"]["baseline"]["cpu_s"].as_f64().unwrap_or(0.0)),
            &json!(r["scenarios"]["throughput"]["engine"]["cpu_s"].as_f64().unwrap_or(0.0)),
        ),
    })
}

/// SPEC §11's bars beside what this run measured.
fn bars(r: &Value, cores: usize) -> Value {
    let us = |v: &Value| v.as_f64().unwrap_or(0.0) / 1e3;
    let host =
        format!("this host: {cores} cores{}", if cores >= 4 { ", pinned" } else { ", unpinned, parking" });
    let mut out = vec![
        json!({ "what": "wire-to-decision p50", "bar": "≤ 2 µs (pinned 16-core host)", "measured": format!("{:.1} µs ({host})", us(&r["e2e"]["p50_ns"])), "met": us(&r["e2e"]["p50_ns"]) <= 2.0 }),
        json!({ "what": "wire-to-decision p99.9", "bar": "≤ 15 µs (pinned 16-core host)", "measured": format!("{:.1} µs", us(&r["e2e"]["p999_ns"])), "met": us(&r["e2e"]["p999_ns"]) <= 15.0 }),
        json!({ "what": "p99 against the baseline", "bar": "≥ 5× lower", "measured": format!("{:.1}× ({})", r["ratios"]["p99_baseline_over_aegis"].as_f64().unwrap_or(0.0), placements_text(r)), "met": r["ratios"]["p99_baseline_over_aegis"].as_f64().unwrap_or(0.0) >= 5.0 }),
        json!({ "what": "throughput, one shard", "bar": "≥ 1 M events/s", "measured": format!("{:.0} events/s ({:.1}× the baseline)", r["events_per_s"].as_f64().unwrap_or(0.0), r["ratios"]["events_per_s_aegis_over_baseline"].as_f64().unwrap_or(0.0)), "met": r["events_per_s"].as_f64().unwrap_or(0.0) >= 1e6 }),
        {
            let hot = r["scenarios"]["throughput"]["engine"]["latency"]["brain_to_decision"]["p50_ns"]
                .as_f64()
                .unwrap_or(f64::MAX);
            let paced = r["stages"]["brain_to_decision"]["p50_ns"].as_f64().unwrap_or(0.0);
            json!({ "what": "brain per event (receipt → decision, p50, one clock read included)", "bar": "≤ 100 ns", "measured": format!("{hot:.0} ns flat out (caches hot); {paced:.0} ns paced (woken per event)"), "met": hot <= 100.0 })
        },
    ];
    let sweeps = r["sweeps"].as_array().cloned().unwrap_or_default();
    let rate_at = |n: u64| {
        sweeps
            .iter()
            .find(|s| {
                s["shards"] == n
                    && s["ring_capacity"] == 65536
                    && s["transport"].as_str().is_some_and(|t| t.starts_with("mio"))
            })
            .and_then(|s| s["latency"]["events_per_s"].as_f64())
    };
    let top = sweeps.iter().filter_map(|s| s["shards"].as_u64()).max().unwrap_or(1);
    out.push(match (rate_at(1), rate_at(top)) {
        (Some(one), Some(many)) if top > 1 => json!({ "what": "shard scaling", "bar": "near-linear to 8 shards on 16 cores", "measured": format!("{top} shards: {:.2}× one shard ({host})", many / one), "met": if top >= 8 { json!(many / one >= 0.8 * top as f64) } else { Value::Null } }),
        _ => json!({ "what": "shard scaling", "bar": "near-linear to 8 shards on 16 cores", "measured": "not swept", "met": Value::Null }),
    });
    let mem = &r["memory"];
    if mem.is_object() {
        let peak = mem["peak_rss_bytes"].as_f64().unwrap_or(0.0);
        let per = mem["per_symbol_brain_bytes"].as_f64().unwrap_or(0.0);
        out.push(json!({ "what": "memory, 1,000 symbols", "bar": "< 100 MiB RSS, whole engine", "measured": format!("{:.1} MiB peak RSS ({} symbols)", peak / 1048576.0, mem["symbols"]), "met": peak < 100.0 * 1048576.0 }));
        out.push(json!({ "what": "memory per symbol in the brain", "bar": "≤ 64 KiB", "measured": format!("{:.1} KiB (upper bound: RSS growth to all warm ÷ symbols)", per / 1024.0), "met": per <= 65536.0 }));
    }
    out.push(json!({ "what": "weight hot-swap stalls", "bar": "none > 2 µs in 1,000 swaps", "measured": "not measured (issue 6)", "met": Value::Null }));
    Value::Array(out)
}

/// Which placement the headline figures are, and the other one's p99 ratio beside it.
fn placements_text(r: &Value) -> String {
    let runs = r["placements"]["runs"].as_array().cloned().unwrap_or_default();
    let ratio = |v: &Value| v["ratios"]["p99_baseline_over_aegis"].as_f64().unwrap_or(0.0);
    let mut text = format!("{}, auto's choice here", r["placements"]["auto_picks"].as_str().unwrap_or("?"));
    for other in runs.iter().skip(1) {
        text.push_str(&format!("; {}: {:.1}×", other["placement"].as_str().unwrap_or("?"), ratio(other)));
    }
    text
}

fn write_outputs(
    args: &Args,
    result: &Value,
    engine: &StageLatency,
    base: &StageLatency,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(result)?;
    std::fs::write(args.out.join("result.json"), &text)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(args.out.join("report.md"), report::markdown(result))?;
    report::plot(
        &args.out.join("latency.svg"),
        "wire-to-decision latency, paced feed",
        &[
            report::Curve { label: "aegis".into(), histogram: &engine.wire_to_decision },
            report::Curve {
                label: "baseline (tokio + tungstenite + serde_json)".into(),
                histogram: &base.wire_to_decision,
            },
        ],
    )
    .map_err(|e| anyhow::anyhow!("plotting: {e}"))?;
    Ok(())
}

fn machine(cores: usize) -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let host = aegis::feed::transport::rtt::HostId::here();
    json!({
        "cores": cores,
        "cpu": Some(host.cpu_model).filter(|m| !m.is_empty()),
        "kernel": host.kernel,
        "clocksource": read("/sys/devices/system/clocksource/clocksource0/current_clocksource").trim(),
    })
}

fn now_utc() -> String {
    aegis::clock::Utc::of_system_time(std::time::SystemTime::now()).iso8601()
}
