//! Prometheus metrics (SPEC §9): a loopback HTTP endpoint, served by its own thread, that
//! renders the shared counters in the text exposition format — per-stage latency
//! histograms, events per shard and kind, ring depth and drops, reconnects, gaps, malformed
//! messages, model generation, equity and positions.
//!
//! The latency histograms are [`SharedStages`](crate::latency::SharedStages): power-of-two buckets the brain bumps with a
//! plain load and store per stage (it is their only writer), read relaxed by the renderer.

use crate::brain::stats::BrainStats;
use crate::desk::stats::DeskStats;
use crate::execution::live::gateway::GatewayStats;
use crate::feed::shard::ShardStats;
use crate::latency::{SharedStages, STAGES};
use crate::model_loader::ModelStats;
use crate::ring::RingStats;
use aegis_wire::EventKind;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything the endpoint reads.
pub struct MetricsContext {
    /// Brain counters.
    pub brain: Arc<BrainStats>,
    /// Desk counters.
    pub desk: Arc<DeskStats>,
    /// Per shard.
    pub shards: Vec<Arc<ShardStats>>,
    /// Per shard ring.
    pub rings: Vec<Arc<RingStats>>,
    /// The brain's latency histograms.
    pub stages: Arc<SharedStages>,
    /// Stalls the watchdog reported.
    pub watchdog_alerts: Arc<AtomicU64>,
    /// The execution gateway's counters (live trading only).
    pub live: Option<Arc<GatewayStats>>,
    /// The model loader's counters.
    pub model: Option<Arc<ModelStats>>,
}

/// One counter of a shard's stats.
type ShardCounter = fn(&ShardStats) -> &AtomicU64;

/// The exposition text.
pub fn render(ctx: &MetricsContext) -> String {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::with_capacity(16 * 1024);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "aegis_stage_latency_seconds",
        "histogram",
        "Latency of exchange events per stage (read, parsed, brain, decision).",
    );
    for (i, stage) in STAGES.iter().enumerate() {
        let (buckets, sum) = ctx.stages.cumulative(i);
        for (le, count) in &buckets {
            let _ =
                writeln!(out, "aegis_stage_latency_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {count}");
        }
        let _ = writeln!(out, "aegis_stage_latency_seconds_sum{{stage=\"{stage}\"}} {sum}");
        let _ = writeln!(
            out,
            "aegis_stage_latency_seconds_count{{stage=\"{stage}\"}} {}",
            buckets.last().map_or(0, |b| b.1)
        );
    }
    family(&mut out, "aegis_events_total", "counter", "Exchange events parsed, per shard and kind.");
    for (shard, s) in ctx.shards.iter().enumerate() {
        for kind in EventKind::ALL {
            let n = load(&s.events_by_kind[kind.index()]);
            let _ = writeln!(out, "aegis_events_total{{shard=\"{shard}\",kind=\"{}\"}} {n}", kind.name());
        }
    }
    let per_shard: [(&str, &str, &str, ShardCounter); 4] = [
        ("aegis_messages_total", "counter", "WebSocket messages received.", |s| &s.messages),
        ("aegis_malformed_messages_total", "counter", "Messages refused by the parser.", |s| &s.parse_errors),
        ("aegis_reconnects_total", "counter", "Connections re-established.", |s| &s.reconnects),
        ("aegis_shard_restarts_total", "counter", "Shard threads restarted after a panic.", |s| &s.restarts),
    ];
    for (name, kind, help, field) in per_shard {
        family(&mut out, name, kind, help);
        for (shard, s) in ctx.shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", load(field(s)));
        }
    }
    family(&mut out, "aegis_ring_depth", "gauge", "Records queued in a shard's ring.");
    for (shard, r) in ctx.rings.iter().enumerate() {
        let _ = writeln!(
            out,
            "aegis_ring_depth{{shard=\"{shard}\"}} {}",
            load(&r.pushed).saturating_sub(load(&r.drained))
        );
    }
    family(&mut out, "aegis_ring_drops_total", "counter", "Records dropped on a full ring.");
    for (shard, r) in ctx.rings.iter().enumerate() {
        let _ = writeln!(out, "aegis_ring_drops_total{{shard=\"{shard}\"}} {}", load(&r.dropped));
    }
    let d = &ctx.desk;
    let sum = |f: fn(&crate::brain::stats::SymbolStats) -> &AtomicU64| {
        ctx.brain.symbols.iter().map(|s| load(f(s))).sum::<u64>()
    };
    let singles: [(&str, &str, &str, f64); 14] = [
        (
            "aegis_watchdog_alerts_total",
            "counter",
            "Threads the watchdog found stalled.",
            load(&ctx.watchdog_alerts) as f64,
        ),
        (
            "aegis_gaps_detected_total",
            "counter",
            "Sequence gaps detected.",
            load(&ctx.brain.gaps_detected) as f64,
        ),
        ("aegis_gap_fills_total", "counter", "Gaps filled from REST.", load(&ctx.brain.gaps_filled) as f64),
        (
            "aegis_agg_trades_recovered_total",
            "counter",
            "Skipped aggTrade ids delivered later (late on the stream or by a REST fill).",
            sum(|s| &s.agg_ids_recovered) as f64,
        ),
        (
            "aegis_agg_trades_unrecovered_total",
            "counter",
            "Skipped aggTrade ids given up (the fill did not return them, or the weight budget ran out).",
            sum(|s| &s.agg_ids_unrecovered) as f64,
        ),
        (
            "aegis_model_generation",
            "gauge",
            "Generation of the model in use (0: none).",
            ctx.model.as_ref().map_or(0, |m| load(&m.serving)) as f64,
        ),
        (
            "aegis_models_rejected_total",
            "counter",
            "Model publications refused (torn, corrupt, not finite, another layout).",
            ctx.model.as_ref().map_or(0, |m| load(&m.rejected)) as f64,
        ),
        ("aegis_equity", "gauge", "Account equity, quote currency.", d.equity()),
        ("aegis_open_positions", "gauge", "Open positions.", load(&d.open_positions) as f64),
        ("aegis_trades_closed_total", "counter", "Trades closed.", load(&d.trades_closed) as f64),
        ("aegis_alerts_total", "counter", "Alerts raised.", load(&d.alerts) as f64),
        (
            "aegis_symbols_not_trading",
            "gauge",
            "Traded symbols the exchange lists as not TRADING (no new entries).",
            load(&d.symbols_not_trading) as f64,
        ),
        ("aegis_paused", "gauge", "1 while an operator has paused entries.", load(&d.paused) as f64),
        (
            "aegis_brain_heartbeat_total",
            "counter",
            "Brain loop iterations.",
            load(&ctx.brain.heartbeat) as f64,
        ),
    ];
    for (name, kind, help, value) in singles {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    if let Some(g) = &ctx.live {
        let live: [(&str, &str, &AtomicU64); 7] = [
            ("aegis_live_orders_sent_total", "Orders sent to the exchange.", &g.orders_sent),
            (
                "aegis_live_orders_refused_total",
                "Orders the exchange (or a local limiter) refused.",
                &g.orders_refused,
            ),
            ("aegis_live_rate_limited_total", "Rate-limit answers that started a back-off.", &g.rate_limited),
            ("aegis_live_entries_skipped_total", "Entries skipped during a back-off.", &g.entries_skipped),
            (
                "aegis_live_stream_recoveries_total",
                "User-data streams reopened after a lapse or drop.",
                &g.stream_recoveries,
            ),
            (
                "aegis_live_reconciliation_differences_total",
                "Differences restart reconciliation found.",
                &g.differences,
            ),
            (
                "aegis_live_reports_dropped_total",
                "Gateway reports the desk's ring had no room for.",
                &g.reports_dropped,
            ),
        ];
        for (name, help, counter) in live {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", load(counter));
        }
    }
    out
}

/// A running endpoint; dropping it stops the thread.
pub struct MetricsServer {
    /// The bound address (port 0 in the config picks one).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `GET /metrics` on `addr` (loopback only).
pub fn serve(addr: &str, ctx: MetricsContext) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} is not a loopback address"),
        ));
    }
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new().name("aegis-metrics".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => answer(stream, &ctx),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        })?
    };
    Ok(MetricsServer { addr, stop, thread: Some(thread) })
}

fn answer(stream: std::net::TcpStream, ctx: &MetricsContext) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let (status, body) = match request.split_whitespace().take(2).collect::<Vec<_>>().as_slice() {
        ["GET", "/metrics"] => ("200 OK", render(ctx)),
        ["GET", _] => ("404 Not Found", "try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "GET only\n".to_string()),
    };
    let _ = write!(
        writer,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
