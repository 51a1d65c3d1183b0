//! The control plane (SPEC §9): a Unix-domain socket (mode 0600) speaking versioned,
//! line-delimited JSON, served by one thread off the hot path. Queries read the shared
//! counters; actions reach the brain through a small command ring and come back through a
//! reply ring, which the brain polls between batches (it never blocks on them).

use crate::brain::desk::DeskStats;
use crate::brain::BrainStats;
use crate::feed::shard::ShardStats;
use crate::ring::RingStats;
use aegis_trading::Position;
use aegis_wire::SymbolTable;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The protocol version every request names (`"v": 1`).
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest request line, bytes; a longer one is refused and the connection closed.
pub const MAX_LINE: usize = 64 * 1024;

/// How long the control thread waits for the brain to answer.
const BRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// One request (`{"v":1,"cmd":"close","symbol":"BTCUSDT"}`); unknown fields are refused.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The run at a glance.
    Status,
    /// Each shard: symbols, events, ring depth, drops, reconnects.
    Shards,
    /// Each symbol with its shard and counters.
    Symbols,
    /// Move a symbol to a shard (make-before-break).
    Rebalance {
        /// The symbol.
        symbol: String,
        /// The target shard.
        to: usize,
    },
    /// Move every symbol of a shard to the others.
    Drain {
        /// The shard to empty.
        shard: usize,
    },
    /// Stop opening positions (open ones are still managed).
    Pause,
    /// Open positions again.
    Resume,
    /// Open positions and pending entries.
    Positions,
    /// Close one symbol's position at its next trade.
    Close {
        /// The symbol.
        symbol: String,
    },
    /// Close every position now (the kill switch).
    Flatten,
    /// The model in use.
    Model,
    /// Ask the sidecar to train now.
    Train,
    /// Recent alerts.
    Alerts,
    /// Per-stage latency (bucket bounds of p50, p90, p99, p99.9).
    Latency,
    /// Export trades and experiences (CSV and Parquet) to a directory.
    Export {
        /// The output directory.
        out: String,
    },
}

/// Parses one request line: JSON, an object, `v` equal to [`PROTOCOL_VERSION`], a known
/// `cmd` with exactly its fields.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let mut value: Value = serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let object = value.as_object_mut().ok_or("a request is a JSON object")?;
    match object.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "unsupported protocol version {other}; this engine speaks v{PROTOCOL_VERSION}"
            ))
        }
        None => return Err(format!("missing \"v\" (the protocol version, {PROTOCOL_VERSION})")),
    }
    let cmd = object.get("cmd").ok_or("missing \"cmd\"")?.as_str().unwrap_or("").to_string();
    // serde ignores extra fields on unit variants of a tagged enum: check them here.
    let allowed: &[&str] = match cmd.as_str() {
        "rebalance" => &["symbol", "to"],
        "drain" => &["shard"],
        "close" => &["symbol"],
        "export" => &["out"],
        _ => &[],
    };
    if let Some(extra) = object.keys().find(|k| *k != "cmd" && !allowed.contains(&k.as_str())) {
        return Err(format!("bad request: unknown field `{extra}` for cmd {cmd:?}"));
    }
    serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))
}

/// A success line.
pub fn ok_line(result: Value) -> String {
    json!({ "v": PROTOCOL_VERSION, "ok": true, "result": result }).to_string()
}

/// A refusal line.
pub fn error_line(error: &str) -> String {
    json!({ "v": PROTOCOL_VERSION, "ok": false, "error": error }).to_string()
}

/// What the control thread asks the brain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrainCommand {
    /// Stop opening positions.
    Pause,
    /// Open positions again.
    Resume,
    /// Close this symbol's position at its next trade.
    Close(u16),
    /// Close everything now.
    Flatten,
    /// List positions.
    Positions,
}

/// What the brain answers.
#[derive(Clone, Copy, Debug)]
// Replies live in ring slots and are never moved about; boxing a position would allocate
// on the brain's thread.
#[allow(clippy::large_enum_variant)]
pub enum BrainReply {
    /// The command's outcome (false: nothing to do, such as no position to close).
    Done(bool),
    /// One position (of a `Positions` answer).
    Position(Position),
    /// The end of a `Positions` answer.
    End,
}

/// The control thread's end of the brain link.
pub struct BrainLink {
    commands: rtrb::Producer<BrainCommand>,
    replies: rtrb::Consumer<BrainReply>,
}

/// The brain's end: polled in its loop.
pub struct BrainControl {
    commands: rtrb::Consumer<BrainCommand>,
    replies: rtrb::Producer<BrainReply>,
}

/// A command ring and a reply ring between the control thread and the brain.
pub fn brain_link() -> (BrainLink, BrainControl) {
    let (commands_tx, commands_rx) = rtrb::RingBuffer::new(16);
    let (replies_tx, replies_rx) = rtrb::RingBuffer::new(256);
    (
        BrainLink { commands: commands_tx, replies: replies_rx },
        BrainControl { commands: commands_rx, replies: replies_tx },
    )
}

impl BrainControl {
    /// The next command, if any.
    pub fn take_command(&mut self) -> Option<BrainCommand> {
        self.commands.pop().ok()
    }

    /// Sends a reply (dropped if the control thread stopped reading: it times out).
    pub fn reply(&mut self, reply: BrainReply) {
        let _ = self.replies.push(reply);
    }
}

impl BrainLink {
    /// Sends `command` and collects the brain's answer (`Done`, or positions up to `End`).
    pub fn ask(&mut self, command: BrainCommand) -> Result<Vec<BrainReply>, String> {
        while self.replies.pop().is_ok() {} // a late answer to an earlier, timed-out request
        self.commands.push(command).map_err(|_| "the brain's command ring is full".to_string())?;
        let deadline = Instant::now() + BRAIN_PATIENCE;
        let mut answer = Vec::new();
        while Instant::now() < deadline {
            match self.replies.pop() {
                Ok(reply @ BrainReply::Position(_)) => answer.push(reply),
                Ok(reply) => {
                    answer.push(reply);
                    return Ok(answer);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Err("the brain did not answer within 5 s".into())
    }
}

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
    pub data: crate::ledger::DataConfig,
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
    pub stages: Arc<crate::metrics::SharedStages>,
    /// The model loader's counters (a run with a data dir).
    pub model: Option<Arc<crate::model::ModelStats>>,
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
            Ok(text) => match parse_request(text.trim()).and_then(|r| handle(ctx, &r)) {
                Ok(result) => ok_line(result),
                Err(e) => error_line(&e),
            },
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
                    BrainReply::Position(p) => Some(crate::ledger::position_json(p, &ctx.table)),
                    _ => None,
                })
                .collect();
            Ok(json!({ "positions": positions }))
        }
        Request::Model => {
            let model = |f: fn(&crate::model::ModelStats) -> &std::sync::atomic::AtomicU64| {
                ctx.model.as_ref().map_or(0, |m| load(f(m)))
            };
            let history = match &ctx.data_dir {
                Some(dir) => crate::ledger::read_journal(dir, "models")
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
        Request::Export { out } => {
            let dir = ctx.data_dir.as_ref().ok_or("no data dir: this run keeps no journals")?;
            let exported = crate::ledger::export(dir, Path::new(out), &ctx.data)?;
            Ok(
                json!({ "out": out, "trades": exported.trades, "experiences": exported.experiences, "samples": exported.samples }),
            )
        }
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
    let stages: Vec<Value> = crate::metrics::STAGES
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

fn alerts(ctx: &ControlContext) -> Result<Value, String> {
    let count = ctx.desk.alerts.load(Ordering::Relaxed);
    let Some(dir) = &ctx.data_dir else {
        return Ok(
            json!({ "count": count, "recent": [], "note": "no data dir: alerts are counted, not kept" }),
        );
    };
    let records =
        crate::ledger::read_journal(dir, "alerts").map_err(|e| format!("reading the alerts journal: {e}"))?;
    let recent: Vec<Value> = records.into_iter().filter_map(Result::ok).rev().take(50).collect();
    Ok(json!({ "count": count, "recent": recent }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        assert_eq!(parse_request(r#"{"v":1,"cmd":"status"}"#), Ok(Request::Status));
        assert_eq!(
            parse_request(r#"{"v":1,"cmd":"rebalance","symbol":"BTCUSDT","to":1}"#),
            Ok(Request::Rebalance { symbol: "BTCUSDT".into(), to: 1 })
        );
        let refused = [
            ("{", "malformed JSON"),
            ("[1]", "a JSON object"),
            (r#"{"cmd":"status"}"#, "missing \"v\""),
            (r#"{"v":2,"cmd":"status"}"#, "unsupported protocol version 2"),
            (r#"{"v":1}"#, "missing \"cmd\""),
            (r#"{"v":1,"cmd":"launch"}"#, "unknown variant `launch`"),
            (r#"{"v":1,"cmd":"status","extra":1}"#, "unknown field `extra`"),
            (r#"{"v":1,"cmd":"close"}"#, "missing field `symbol`"),
            (r#"{"v":1,"cmd":"rebalance","symbol":"X","to":-1}"#, "bad request"),
        ];
        for (line, expected) in refused {
            let err = parse_request(line).expect_err(line);
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn the_brain_link_carries_commands_and_answers() {
        let (mut link, mut brain) = brain_link();
        let worker = std::thread::spawn(move || {
            // The brain's side: answer one Positions request with two positions.
            loop {
                match brain.take_command() {
                    Some(BrainCommand::Positions) => break,
                    Some(other) => panic!("{other:?}"),
                    None => std::thread::yield_now(),
                }
            }
            for _ in 0..2 {
                brain.reply(BrainReply::Done(true));
            }
        });
        let answer = link.ask(BrainCommand::Positions).unwrap();
        worker.join().unwrap();
        // `Done` ends an answer: the second one is left for the next request to discard.
        assert_eq!(answer.len(), 1);
        assert!(matches!(answer[0], BrainReply::Done(true)));
    }
}
