//! The control plane (SPEC §9): a Unix-domain socket (mode 0600) speaking versioned,
//! line-delimited JSON, served by one thread off the hot path. Queries read the shared
//! counters; actions reach the brain through a small command ring and come back through a
//! reply ring, which the brain polls between batches (it never blocks on them).

use crate::brain::port::{BrainCommand, BrainLink, BrainReply};
use crate::brain::stats::BrainStats;
use crate::desk::stats::DeskStats;
use crate::feed::shard::ShardStats;
use crate::ring::RingStats;
use aegis_control::{error_line, ok_line, parse_request, Request, MAX_LINE};
use aegis_wire::SymbolTable;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Moves symbol index `.0` to shard `.1`, answering what it did.
pub type Mover = Box<dyn Fn(usize, usize) -> Result<Value, String> + Send + Sync>;

/// Where a symbol is (and is moving to), per symbol index.
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    /// Shard delivering each symbol.
    pub shard: Vec<usize>,
}

/// How long both shards deliver a moving symbol before the source lets go.
pub const MOVE_OVERLAP: Duration = Duration::from_millis(500);

/// How long a shard has to confirm a subscription.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);

/// The make-before-break mover: the target shard subscribes, and once the
/// exchange confirmed it both shards deliver for [`MOVE_OVERLAP`] (the brain drops what it
/// already applied, by event identity) before the source unsubscribes. One move at a time.
pub fn mover(
    commands: Vec<Mutex<rtrb::Producer<crate::feed::subscription::ShardCommand>>>,
    shards: Vec<Arc<ShardStats>>,
    assignment: Arc<Mutex<Assignment>>,
    table: Arc<SymbolTable>,
) -> Mover {
    use crate::feed::subscription::ShardCommand;
    let next_id = std::sync::atomic::AtomicU64::new(1);
    let one_at_a_time = Mutex::new(());
    Box::new(move |symbol, to| {
        let _guard = one_at_a_time.lock().map_err(|_| "a previous move panicked")?;
        let name = table.name(aegis_wire::SymbolId(symbol as u16)).unwrap_or("?").to_string();
        let from = assignment.lock().map_err(|_| "assignment poisoned")?.shard[symbol];
        if from == to {
            return Ok(json!({ "symbol": name, "shard": to, "moved": false }));
        }
        let send = |shard: usize, command: ShardCommand| -> Result<u64, String> {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let command = match command {
                ShardCommand::Subscribe { symbol, .. } => ShardCommand::Subscribe { symbol, id },
                ShardCommand::Unsubscribe { symbol, .. } => ShardCommand::Unsubscribe { symbol, id },
            };
            let mut ring = commands[shard].lock().map_err(|_| "shard command ring poisoned")?;
            ring.push(command).map_err(|_| format!("shard {shard}'s command ring is full"))?;
            Ok(id)
        };
        let confirmed = |shard: usize, id: u64| {
            let deadline = Instant::now() + SUBSCRIBE_PATIENCE;
            while shards[shard].acked.load(Ordering::Relaxed) < id {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            true
        };
        let sym = aegis_wire::SymbolId(symbol as u16);
        let id = send(to, ShardCommand::Subscribe { symbol: sym, id: 0 })?;
        if !confirmed(to, id) {
            let _ = send(to, ShardCommand::Unsubscribe { symbol: sym, id: 0 });
            return Err(format!(
                "shard {to} did not confirm {name}'s subscription within 10 s; it stays on shard {from}"
            ));
        }
        std::thread::sleep(MOVE_OVERLAP);
        let id = send(from, ShardCommand::Unsubscribe { symbol: sym, id: 0 })?;
        assignment.lock().map_err(|_| "assignment poisoned")?.shard[symbol] = to;
        let released = confirmed(from, id);
        Ok(
            json!({ "symbol": name, "from": from, "to": to, "overlap_ms": MOVE_OVERLAP.as_millis() as u64, "source_released": released }),
        )
    })
}

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

/// A running control server; dropping it stops the thread and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket at `path` (mode 0600; a stale socket file is replaced, a live one is
/// an error) and serves it on a thread.
pub fn serve(path: &Path, ctx: Arc<ControlContext>) -> std::io::Result<ControlServer> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("control socket {} is in use by another process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("aegis-control".into())
            .spawn(move || accept_loop(listener, ctx, stop))?
    };
    Ok(ControlServer { path: path.to_path_buf(), stop, thread: Some(thread) })
}

/// Clients served at once; more are refused (each costs a thread).
pub const MAX_CLIENTS: usize = 16;

fn accept_loop(listener: UnixListener, ctx: Arc<ControlContext>, stop: Arc<AtomicBool>) {
    let own_uid = crate::credentials::own_uid();
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                // The socket file is 0600, but a mode can be changed and is briefly the
                // umask's between bind and chmod: the kernel's word on who connected decides.
                match peer_uid(&stream) {
                    Ok(uid) if uid == own_uid || uid == 0 => {}
                    peer => {
                        let who = peer.map_or_else(|e| format!("unknown ({e})"), |u| format!("uid {u}"));
                        tracing::warn!(peer = %who, "control socket: refused a client that is not the engine's user");
                        let _ = writeln!(
                            stream,
                            "{}",
                            error_line(&format!(
                                "refused: {who} is not the engine's user (uid {own_uid}) or root"
                            ))
                        );
                        continue;
                    }
                }
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let _ = writeln!(
                        stream,
                        "{}",
                        error_line(&format!("refused: {MAX_CLIENTS} clients already connected"))
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (ctx, stop, done) = (ctx.clone(), stop.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("aegis-ctl-conn".into()).spawn(move || {
                    connection(stream, &ctx, &stop);
                    done.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                tracing::error!(error = %e, "control socket accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// The user id of the process at the other end of `stream` (SO_PEERCRED).
pub fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live Unix socket owned by `stream`; `cred` and `len` are valid for
    // writes of `len` bytes, which is exactly the size of `ucred` SO_PEERCRED fills in.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Serves one client: a request per line, a response per line.
fn connection(stream: UnixStream, ctx: &ControlContext, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match (&mut reader).take((MAX_LINE + 1 - line.len()) as u64).read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() => return,
            Ok(_) if line.last() != Some(&b'\n') && line.len() <= MAX_LINE => continue, // EOF mid-line or more to come
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => return,
        }
        if line.len() > MAX_LINE {
            let _ = writeln!(writer, "{}", error_line(&format!("request line longer than {MAX_LINE} bytes")));
            return;
        }
        let response = match std::str::from_utf8(&line) {
            Err(_) => error_line("request is not UTF-8"),
            Ok(text) if text.trim().is_empty() => {
                line.clear();
                continue;
            }
            Ok(text) => {
                match parse_request(text.trim()).map_err(|e| e.to_string()).and_then(|r| handle(ctx, &r)) {
                    Ok(result) => ok_line(result),
                    Err(e) => error_line(&e),
                }
            }
        };
        line.clear();
        if writeln!(writer, "{response}").is_err() {
            return;
        }
    }
}

fn symbol_index(ctx: &ControlContext, name: &str) -> Result<u16, String> {
    ctx.table.get(name.as_bytes()).map(|id| id.0).ok_or_else(|| format!("unknown symbol {name:?}"))
}

fn check_shard(ctx: &ControlContext, shard: usize) -> Result<(), String> {
    if shard < ctx.shards.len() {
        return Ok(());
    }
    Err(format!("unknown shard {shard}: this run has shards 0..{}", ctx.shards.len()))
}

fn ask(ctx: &ControlContext, command: BrainCommand) -> Result<Vec<BrainReply>, String> {
    ctx.link.lock().map_err(|_| "the brain link is poisoned".to_string())?.ask(command)
}

fn done(ctx: &ControlContext, command: BrainCommand) -> Result<bool, String> {
    match ask(ctx, command)?.last() {
        Some(BrainReply::Done(done)) => Ok(*done),
        other => Err(format!("unexpected brain answer {other:?}")),
    }
}

/// Answers one request.
pub fn handle(ctx: &ControlContext, request: &Request) -> Result<Value, String> {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    match request {
        Request::Status => Ok(status(ctx)),
        Request::Shards => Ok(shards(ctx)),
        Request::Symbols => Ok(symbols(ctx)),
        Request::Pause => done(ctx, BrainCommand::Pause).map(|_| json!({ "paused": true })),
        Request::Resume => done(ctx, BrainCommand::Resume).map(|_| json!({ "paused": false })),
        Request::Close { symbol } => {
            let index = symbol_index(ctx, symbol)?;
            if done(ctx, BrainCommand::Close(index))? {
                Ok(json!({ "symbol": symbol.to_ascii_uppercase(), "closing": "at its next trade" }))
            } else {
                Err(format!("no open position on {}", symbol.to_ascii_uppercase()))
            }
        }
        Request::Flatten => {
            let before = load(&ctx.desk.open_positions);
            done(ctx, BrainCommand::Flatten)?;
            Ok(json!({ "closed": before, "open_positions": load(&ctx.desk.open_positions) }))
        }
        Request::Positions => {
            let positions: Vec<Value> = ask(ctx, BrainCommand::Positions)?
                .iter()
                .filter_map(|r| match r {
                    BrainReply::Position(p) => Some(crate::store::codec::position_json(p, &ctx.table)),
                    _ => None,
                })
                .collect();
            Ok(json!({ "positions": positions }))
        }
        Request::Model => {
            let model = |f: fn(&crate::model_loader::ModelStats) -> &std::sync::atomic::AtomicU64| {
                ctx.model.as_ref().map_or(0, |m| load(f(m)))
            };
            let history = match &ctx.data_dir {
                Some(dir) => crate::store::ledger::read_journal(dir, "models")
                    .map_err(|e| format!("reading the models journal: {e}"))?
                    .into_iter()
                    .filter_map(Result::ok)
                    .collect::<Vec<Value>>(),
                None => Vec::new(),
            };
            Ok(json!({
                "phase": ctx.desk.phase_name(),
                "model_generation": model(|m| &m.serving),
                "models_rejected": model(|m| &m.rejected),
                "history": history,
            }))
        }
        Request::Train => {
            let dir =
                ctx.data_dir.as_ref().ok_or("no data dir: the sidecar trains from its experience log")?;
            let request = dir.join("models").join("train.request");
            std::fs::create_dir_all(dir.join("models")).map_err(|e| format!("{}: {e}", request.display()))?;
            std::fs::write(&request, b"").map_err(|e| format!("{}: {e}", request.display()))?;
            Ok(json!({ "requested": true, "request": request.display().to_string() }))
        }
        Request::Alerts => alerts(ctx),
        Request::Latency => Ok(latency(ctx)),
        Request::Export { out } => export(ctx, out),
        Request::Rebalance { symbol, to } => {
            let index = symbol_index(ctx, symbol)?;
            check_shard(ctx, *to)?;
            let mover = ctx.mover.as_ref().ok_or("rebalancing is not available in this run")?;
            mover(usize::from(index), *to)
        }
        Request::Drain { shard } => {
            check_shard(ctx, *shard)?;
            if ctx.shards.len() < 2 {
                return Err("a run with one shard has nowhere to drain to".into());
            }
            let mover = ctx.mover.as_ref().ok_or("rebalancing is not available in this run")?;
            let on_shard: Vec<usize> = {
                let a = ctx.assignment.lock().map_err(|_| "assignment poisoned")?;
                a.shard.iter().enumerate().filter(|(_, s)| **s == *shard).map(|(i, _)| i).collect()
            };
            let others: Vec<usize> = (0..ctx.shards.len()).filter(|s| s != shard).collect();
            let mut moved = Vec::new();
            for (k, symbol) in on_shard.iter().enumerate() {
                moved.push(mover(*symbol, others[k % others.len()])?);
            }
            Ok(json!({ "shard": shard, "moved": moved }))
        }
    }
}

fn status(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let d = &ctx.desk;
    json!({
        "uptime_s": ctx.started.elapsed().as_secs_f64(),
        "transport": ctx.transport,
        "shards": ctx.shards.len(),
        "symbols": ctx.table.len(),
        "events": ctx.brain.events_by_kind.iter().map(load).sum::<u64>(),
        "ring_drops": ctx.rings.iter().map(|r| load(&r.dropped)).sum::<u64>(),
        "bars_closed": ctx.brain.symbols.iter().map(|s| load(&s.bars_closed)).sum::<u64>(),
        "trades_closed": load(&d.trades_closed),
        "open_positions": load(&d.open_positions),
        "pnl": d.pnl(),
        "equity": d.equity(),
        "phase": d.phase_name(),
        "paused": load(&d.paused) == 1,
        "alerts": load(&d.alerts),
        "watchdog_alerts": load(&ctx.watchdog_alerts),
        "shard_restarts": ctx.shards.iter().map(|s| load(&s.restarts)).sum::<u64>(),
        "model_generation": ctx.model.as_ref().map_or(0, |m| load(&m.serving)),
    })
}

fn shards(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let assignment = ctx.assignment.lock().map(|a| a.shard.clone()).unwrap_or_default();
    let list: Vec<Value> = ctx
        .shards
        .iter()
        .zip(&ctx.rings)
        .enumerate()
        .map(|(id, (s, r))| {
            let symbols: Vec<&str> = ctx
                .table
                .iter()
                .filter(|(sym, _)| assignment.get(usize::from(sym.0)) == Some(&id))
                .map(|(_, name)| name)
                .collect();
            json!({
                "shard": id,
                "symbols": symbols,
                "messages": load(&s.messages),
                "records": load(&s.records),
                "ring_depth": load(&r.pushed).saturating_sub(load(&r.drained)),
                "ring_drops": load(&r.dropped),
                "reconnects": load(&s.reconnects),
                "restarts": load(&s.restarts),
                "parse_errors": load(&s.parse_errors),
                "heartbeat": load(&s.heartbeat),
            })
        })
        .collect();
    json!({ "shards": list })
}

fn symbols(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let assignment = ctx.assignment.lock().map(|a| a.shard.clone()).unwrap_or_default();
    let list: Vec<Value> = ctx
        .table
        .iter()
        .map(|(id, name)| {
            let s = &ctx.brain.symbols[usize::from(id.0)];
            json!({
                "symbol": name,
                "shard": assignment.get(usize::from(id.0)),
                "events": load(&s.events),
                "bars_closed": load(&s.bars_closed),
                "trade_id_gaps": load(&s.trade_id_gaps),
                "trade_ids_recovered": load(&s.trade_ids_recovered),
                "duplicates_dropped": load(&s.duplicates_dropped),
                "features_warm": load(&s.features_warm) == 1,
            })
        })
        .collect();
    json!({ "symbols": list })
}

fn latency(ctx: &ControlContext) -> Value {
    let stages: Vec<Value> = crate::latency::STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let q = |q: f64| ctx.stages.quantile_bound(i, q);
            json!({
                "stage": stage,
                "count": ctx.stages.count(i),
                "p50_le_ns": q(0.5), "p90_le_ns": q(0.9), "p99_le_ns": q(0.99), "p999_le_ns": q(0.999),
            })
        })
        .collect();
    json!({ "stages": stages, "note": "upper bounds of power-of-two buckets since start" })
}

/// Writes the journals as CSV and Parquet under `out`.
#[cfg(feature = "export")]
fn export(ctx: &ControlContext, out: &str) -> Result<Value, String> {
    let dir = ctx.data_dir.as_ref().ok_or("no data dir: this run keeps no journals")?;
    let exported = crate::store::export::export(dir, Path::new(out), &ctx.data)?;
    Ok(
        json!({ "out": out, "trades": exported.trades, "experiences": exported.experiences, "samples": exported.samples }),
    )
}

/// Refuses: this engine was built without the `export` feature.
#[cfg(not(feature = "export"))]
fn export(_ctx: &ControlContext, _out: &str) -> Result<Value, String> {
    Err("export is not built into this engine (cargo feature `export`)".into())
}

fn alerts(ctx: &ControlContext) -> Result<Value, String> {
    let count = ctx.desk.alerts.load(Ordering::Relaxed);
    let Some(dir) = &ctx.data_dir else {
        return Ok(
            json!({ "count": count, "recent": [], "note": "no data dir: alerts are counted, not kept" }),
        );
    };
    let records = crate::store::ledger::read_journal(dir, "alerts")
        .map_err(|e| format!("reading the alerts journal: {e}"))?;
    let recent: Vec<Value> = records.into_iter().filter_map(Result::ok).rev().take(50).collect();
    Ok(json!({ "count": count, "recent": recent }))
}
