//! The glommio (io_uring) transport: a shard as one pinned `LocalExecutor`, one local task
//! per connection, driving the same sans-IO `WsConn` and the same parse → ring path as the
//! mio transport.
//!
//! io_uring batches syscalls; it is not kernel bypass. glommio registers `io_memory` with
//! the ring, which counts against the memlock limit (8 MiB on hosts like ours): keep it
//! small. A memlock failure surfaces when the executor is joined, not when it is spawned,
//! so [`probe`] joins a tiny executor first and reports the error.

use crate::feed::conn::{ConnError, WsConn};
use crate::feed::endpoint::EndpointSpec;
use crate::feed::shard::{
    announce_open, backoff, deliver, note_error, note_restart, push_resyncs, ShardConfig, ShardStats,
    ROTATION_OVERLAP,
};
use crate::feed::subscription::{
    add_streams, has_room, remove_streams, request, symbol_streams, ShardCommand,
};
use crate::ring::{Idle, RingProducer};
use aegis_wire::SymbolTable;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a blocked read waits before the loop looks at the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a rotation waits for its replacement to go live before trying again.
const SUCCESSOR_PATIENCE: Duration = Duration::from_secs(5);

/// An executor pinned to `core` (if any) that spins before parking as `idle` says.
pub(crate) fn builder(name: &str, core: Option<usize>, idle: Idle, io_memory: usize) -> LocalExecutorBuilder {
    let placement = core.map_or(Placement::Unbound, Placement::Fixed);
    let spin = match idle {
        Idle::Spin => Duration::from_secs(3600),
        Idle::SpinThenPark => Duration::from_millis(1),
        Idle::Park => Duration::ZERO,
    };
    LocalExecutorBuilder::new(placement).name(name).io_memory(io_memory).spin_before_park(spin)
}

/// Starts and joins a tiny executor with these settings: `Err` names why io_uring is not
/// usable here (no io_uring, memlock too low for `io_memory`, …).
pub fn probe(io_memory: usize) -> Result<(), UringError> {
    let handle = builder("aegis-uring-probe", None, Idle::Park, io_memory)
        .spawn(|| async move {})
        .map_err(|e| UringError::Start(e.to_string()))?;
    handle.join().map_err(|e| UringError::Failed(e.to_string()))
}

/// Why io_uring (glommio) cannot run a shard on this host; the text is glommio's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UringError {
    /// The executor thread could not be set up (io_uring missing or refused).
    #[error("glommio executor did not start: {0}")]
    Start(String),
    /// The executor started and then failed (io_uring or locked memory).
    #[error("glommio executor failed (io_uring or memlock): {0}")]
    Failed(String),
}

/// Runs a shard on glommio until `stop` is set.
pub fn run_shard(
    config: ShardConfig,
    symbols: Arc<SymbolTable>,
    ring: RingProducer,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    io_memory: usize,
    mut commands: Option<rtrb::Consumer<ShardCommand>>,
) -> std::io::Result<()> {
    let name = format!("aegis-shard-{}", config.id);
    let handle = builder(&name, config.core, config.idle, io_memory)
        .spawn(move || async move {
            // glommio pinned this thread (Placement::Fixed): read it back.
            match config.core {
                Some(cpu) => {
                    if let Err(why) = crate::cpu::verify_current(cpu, &stats.core) {
                        tracing::error!(shard = config.id, %why, "pinning failed");
                    }
                }
                None => crate::cpu::place_current("aegis-shard", None, &stats.core),
            }
            let ctx = Ctx {
                config: config.clone(),
                symbols,
                ring: Rc::new(RefCell::new(ring)),
                stats,
                stop: stop.clone(),
                started: Instant::now(),
                panic_after: Rc::new(Cell::new(config.panic_after_messages)),
                lines: Rc::new(RefCell::new(Vec::new())),
            };
            for spec in config.endpoints.iter().cloned() {
                let line = Rc::new(RefCell::new(Line::new(spec, 0)));
                ctx.lines.borrow_mut().push(line.clone());
                spawn_supervised(line, ctx.clone());
            }
            // Endpoint tasks hand over to their successors on rotation, so the executor
            // lives until the stop flag, not until the first tasks end. Meanwhile it takes
            // live (un)subscriptions from the control plane.
            while !stop.load(Ordering::Relaxed) {
                while let Some(command) = commands.as_mut().and_then(|c| c.pop().ok()) {
                    apply_command(command, &ctx);
                }
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            glommio::timer::sleep(READ_TIMEOUT).await;
        })
        .map_err(|e| std::io::Error::other(format!("glommio shard: {e}")))?;
    handle.join().map_err(|e| std::io::Error::other(format!("glommio shard (io_uring or memlock): {e}")))
}

/// What every endpoint task of a shard shares.
#[derive(Clone)]
struct Ctx {
    config: ShardConfig,
    symbols: Arc<SymbolTable>,
    ring: Rc<RefCell<RingProducer>>,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    started: Instant,
    /// Fault injection for tests: panic once after this many messages.
    panic_after: Rc<Cell<Option<u64>>>,
    /// Every connection of the shard.
    lines: Rc<RefCell<Vec<SharedLine>>>,
}

/// What the shard's command loop and a connection's task share: the stream list a
/// (re)connect asks for, and the requests to send once the connection is open.
struct Line {
    spec: EndpointSpec,
    outbox: Vec<String>,
    /// A subscription id to acknowledge once a connection opened with the new list.
    pending_ack: u64,
    /// No streams left: the task closes the connection and ends.
    retired: bool,
    /// A task is driving this line.
    task_alive: bool,
}

impl Line {
    fn new(spec: EndpointSpec, pending_ack: u64) -> Self {
        Line { spec, outbox: Vec::new(), pending_ack, retired: false, task_alive: false }
    }
}

type SharedLine = Rc<RefCell<Line>>;

/// Runs a line's task, restarting it in place if it panics: the panic is counted, a resync
/// notice per symbol makes the brain fill what was missed, and the task starts again.
fn spawn_supervised(line: SharedLine, ctx: Ctx) {
    use futures_lite::FutureExt;
    line.borrow_mut().task_alive = true;
    glommio::spawn_local(async move {
        loop {
            let run =
                std::panic::AssertUnwindSafe(endpoint(line.clone(), ctx.clone(), None)).catch_unwind().await;
            let Err(panic) = run else { break };
            note_restart(&ctx.stats, ctx.config.id, ctx.started, panic.as_ref());
            let symbols = line.borrow().spec.symbols.clone();
            push_resyncs(&symbols, &mut ctx.ring.borrow_mut(), crate::clock::now_ns());
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        line.borrow_mut().task_alive = false;
    })
    .detach();
}

/// Carries out a live (un)subscription (see `shard::apply_command`, the mio twin): the
/// request goes out on the line's connection once it is open, the line's URL follows.
fn apply_command(command: ShardCommand, ctx: &Ctx) {
    let (symbol, id, subscribe) = match command {
        ShardCommand::Subscribe { symbol, id } => (symbol, id, true),
        ShardCommand::Unsubscribe { symbol, id } => (symbol, id, false),
    };
    let Some(lower) = ctx.symbols.name(symbol).map(str::to_ascii_lowercase) else { return };
    for template in &ctx.config.templates {
        let names = symbol_streams(&lower, &ctx.config.channels, template.tier);
        if names.is_empty() {
            continue;
        }
        if subscribe {
            let found = ctx
                .lines
                .borrow()
                .iter()
                .find(|l| has_room(&l.borrow().spec, template.tier, names.len()))
                .cloned();
            let line = match found {
                Some(line) => line,
                None => {
                    let spec = EndpointSpec { symbols: Vec::new(), ..template.clone() };
                    let line = Rc::new(RefCell::new(Line { retired: true, ..Line::new(spec, 0) }));
                    ctx.lines.borrow_mut().push(line.clone());
                    line
                }
            };
            let mut l = line.borrow_mut();
            add_streams(&mut l.spec, symbol, &names);
            l.retired = false;
            if l.task_alive {
                l.outbox.push(request("SUBSCRIBE", &names, id));
            } else {
                // A new or idle line: its connection opens with the new list.
                l.pending_ack = id;
                drop(l);
                spawn_supervised(line, ctx.clone());
            }
        } else {
            for line in ctx.lines.borrow().iter() {
                let mut l = line.borrow_mut();
                if !(l.spec.tier == template.tier && l.spec.symbols.contains(&symbol)) {
                    continue;
                }
                let left = remove_streams(&mut l.spec, symbol, &names);
                l.outbox.push(request("UNSUBSCRIBE", &names, id));
                if left == 0 {
                    // The connection closes, which ends the subscription for certain.
                    l.retired = true;
                    ctx.stats.acked.fetch_max(id, Ordering::Relaxed);
                }
            }
        }
    }
}

/// How a session ended without an error.
enum Ended {
    Stopped,
    Rotated,
}

/// One endpoint's connection, reconnected with backoff until the run stops. A `successor`
/// task is a rotation's replacement: it flags `live` once open (no resync: nothing was
/// missed) and gives up if its first connection fails, leaving the retry to its predecessor.
async fn endpoint(line: SharedLine, ctx: Ctx, successor: Option<Rc<Cell<bool>>>) {
    let mut attempt = 0u32;
    let mut ever_opened = successor.is_some();
    let mut jitter = ctx.config.seed ^ (line.borrow().spec.addr.port() as u64) | 1;
    let mut read_buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut live = successor;
    while !ctx.stop.load(Ordering::Relaxed) && !line.borrow().retired {
        // Each (re)connect asks for the line's current streams.
        let spec = line.borrow().spec.clone();
        let result =
            session(&spec, &line, &ctx, &mut ever_opened, &mut attempt, &mut live, &mut read_buf, &mut out)
                .await;
        match result {
            Ok(Ended::Stopped) | Ok(Ended::Rotated) => return,
            Err(err) => {
                if live.is_some() {
                    return; // a successor that never opened
                }
                ctx.stats.disconnects.fetch_add(1, Ordering::Relaxed);
                note_error(&ctx.stats, ctx.started, &format!("{} {}: {err}", spec.host, spec.path));
            }
        }
        glommio::timer::sleep(backoff(&ctx.config, attempt, &mut jitter)).await;
        attempt += 1;
    }
}

/// A rotation in progress: the replacement's flag, when it was spawned, when it went live.
struct Rotation {
    live: Rc<Cell<bool>>,
    spawned: Instant,
    live_since: Option<Instant>,
}

/// One connection's life: connect, upgrade, read until it fails, rotates or the run stops.
#[allow(clippy::too_many_arguments)]
async fn session(
    spec: &EndpointSpec,
    line: &SharedLine,
    ctx: &Ctx,
    ever_opened: &mut bool,
    attempt: &mut u32,
    successor_flag: &mut Option<Rc<Cell<bool>>>,
    read_buf: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<Ended, ConnError> {
    let (config, stats, started) = (&ctx.config, &ctx.stats, ctx.started);
    let mut stream = TcpStream::connect(spec.addr).await.map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tls = match &spec.tls {
        Some(tls) => {
            let host = spec.host.rsplit_once(':').map_or(spec.host.as_str(), |(h, _)| h);
            Some(crate::net::tls::session(tls, host).map_err(|e| std::io::Error::other(e.to_string()))?)
        }
        None => None,
    };
    let mut conn =
        WsConn::with_tls(&spec.host, &spec.path, config.max_message, config.seed ^ u64::from(*attempt), tls);
    let mut opened_at: Option<Instant> = None;
    let mut rotation: Option<Rotation> = None;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(Ended::Stopped);
        }
        stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = rotation.as_mut() {
            if r.live.get() && r.live_since.is_none() {
                r.live_since = Some(Instant::now());
            }
            if r.live_since.is_some_and(|t| t.elapsed() >= ROTATION_OVERLAP) {
                conn.send_close(1000);
                out.clear();
                conn.write_to(out)?;
                let _ = stream.write_all(out).await;
                stats.rotations.fetch_add(1, Ordering::Relaxed);
                return Ok(Ended::Rotated);
            }
            if r.live_since.is_none() && r.spawned.elapsed() > SUCCESSOR_PATIENCE {
                rotation = None; // the replacement failed; try again
            }
        } else if let (Some(after), Some(at)) = (config.rotate_after, opened_at) {
            if at.elapsed() >= after {
                let live = Rc::new(Cell::new(false));
                glommio::spawn_local(endpoint(line.clone(), ctx.clone(), Some(live.clone()))).detach();
                rotation = Some(Rotation { live, spawned: Instant::now(), live_since: None });
            }
        }
        if ctx.panic_after.get().is_some_and(|n| stats.messages.load(Ordering::Relaxed) >= n) {
            ctx.panic_after.set(None);
            panic!(
                "injected fault: shard {} panics after {} messages",
                config.id,
                stats.messages.load(Ordering::Relaxed)
            );
        }
        let (retired, requests) = {
            let mut l = line.borrow_mut();
            (l.retired, if conn.is_open() { std::mem::take(&mut l.outbox) } else { Vec::new() })
        };
        for request in &requests {
            conn.send_text(request.as_bytes());
        }
        if retired {
            conn.send_close(1000);
        }
        if conn.wants_write() {
            out.clear();
            conn.write_to(out)?;
            stream.write_all(out).await?;
        }
        if retired {
            return Ok(Ended::Stopped);
        }
        let n = match stream.read(read_buf).await {
            Ok(0) => return Err(ConnError::Eof),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let recv_ns = crate::clock::now_ns();
        let mut input = &read_buf[..n];
        while !input.is_empty() {
            conn.read_from(&mut input)?;
            let mut ring = ctx.ring.borrow_mut();
            conn.process(&mut |text| {
                deliver(text, spec.raw_hint, &ctx.symbols, recv_ns, &mut ring, stats, started)
            })?;
            ring.wake();
            if conn.is_open() && opened_at.is_none() {
                opened_at = Some(Instant::now());
                match successor_flag.take() {
                    // A rotation's replacement: the predecessor is still delivering.
                    Some(live) => live.set(true),
                    None => announce_open(spec, *ever_opened, &mut ring, stats, recv_ns),
                }
                let ack = std::mem::take(&mut line.borrow_mut().pending_ack);
                if ack > 0 {
                    stats.acked.fetch_max(ack, Ordering::Relaxed);
                }
                *ever_opened = true;
                *attempt = 0;
            }
        }
    }
}
