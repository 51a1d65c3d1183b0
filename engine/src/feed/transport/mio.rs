//! The mio (epoll) transport: one pinned thread per shard polling its non-blocking sockets,
//! driving each connection's sans-IO state machine and delivering parsed records into the
//! ring. Used where io_uring is unavailable or measured slower. The loop never allocates,
//! locks or logs per message. In the one-thread placement ([`run_shard_with_brain`]) the
//! same loop also runs the brain after every read, and sleeps in its poll only when the
//! brain has nothing queued.

use crate::feed::conn::{ConnError, WsConn};
use crate::feed::endpoint::EndpointSpec;
use crate::feed::shard::{
    announce_open, backoff, deliver, note_error, note_restart, push_resyncs, ShardConfig, ShardRun,
    ShardStats, ROTATION_OVERLAP,
};
use crate::feed::subscription::{
    add_streams, has_room, remove_streams, request, symbol_streams, ShardCommand,
};
use crate::ring::{Doorbell, InlineConsumer, RingProducer};
use aegis_wire::{SymbolId, SymbolTable};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Link {
    Waiting { retry_at: Instant },
    Live { stream: TcpStream, conn: Box<WsConn>, opened: bool },
}

struct Endpoint {
    spec: EndpointSpec,
    link: Link,
    attempt: u32,
    ever_opened: bool,
    opened_at: Option<Instant>,
    /// The replacement being opened while `link` still delivers.
    successor: Option<Link>,
    /// When the replacement went live; both deliver (the brain de-duplicates) until
    /// [`ROTATION_OVERLAP`] has passed, so whatever the old one still had in flight arrives.
    successor_live_since: Option<Instant>,
    next_rotation_try: Instant,
    /// No streams left: not reconnected until a subscription reuses it.
    retired: bool,
    /// A live-subscription id to acknowledge once this connection opens.
    pending_ack: u64,
}

impl Endpoint {
    /// A connection to open now.
    fn waiting(spec: EndpointSpec) -> Self {
        let now = Instant::now();
        Endpoint {
            spec,
            link: Link::Waiting { retry_at: now },
            attempt: 0,
            ever_opened: false,
            opened_at: None,
            successor: None,
            successor_live_since: None,
            next_rotation_try: now,
            retired: false,
            pending_ack: 0,
        }
    }
}

/// mio tokens at and above this are successors (token − base = endpoint index).
const SUCCESSOR_TOKEN: usize = 1 << 20;

/// Runs a shard on the mio (epoll) transport until `stop` is set, restarting it in place
/// if it panics: its connections are opened again from the stream lists they had (live
/// subscriptions included), and a resync notice per symbol makes the brain fill what the
/// restart missed. Restarts are counted (`restarts`) and at most ten a second.
pub fn run_shard(
    config: ShardConfig,
    symbols: Arc<SymbolTable>,
    ring: RingProducer,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    commands: Option<rtrb::Consumer<ShardCommand>>,
) -> io::Result<()> {
    let shard = ShardRun { config, symbols, ring, stats, stop, commands };
    run_restarting(shard, None)
}

/// The one-thread placement: runs a shard as [`run_shard`] does, and `brain` inline after
/// every read, on the calling thread, until the shard's `stop` is set. The thread sleeps in
/// its poll only when `brain` has nothing queued, and `doorbell` (rung by the brain's other
/// producers: REST results, gateway reports) wakes it there. A panic in the feed restarts
/// the feed as [`run_shard`] does, the brain's state untouched; a panic in the brain is
/// not caught (as on the brain's own thread).
pub fn run_shard_with_brain(
    shard: ShardRun,
    brain: &mut dyn InlineConsumer,
    doorbell: &Doorbell,
) -> io::Result<()> {
    run_restarting(shard, Some(Inline { brain, doorbell }))
}

/// The brain run inline, and the doorbell that wakes the poll for it.
struct Inline<'a> {
    brain: &'a mut dyn InlineConsumer,
    doorbell: &'a Doorbell,
}

/// The poll token of the doorbell's waker.
const WAKE_TOKEN: Token = Token(usize::MAX);

/// The longest an inline brain sleeps in the poll (as the brain's own thread parks): what
/// nobody rings for (operator commands, a model hand-over) waits at most this long.
const INLINE_PARK: Duration = Duration::from_millis(1);

fn run_restarting(mut shard: ShardRun, mut inline: Option<Inline<'_>>) -> io::Result<()> {
    let started = Instant::now();
    // One poll for every life, so the doorbell's waker outlives a restart.
    let mut poll = Poll::new()?;
    if let Some(inline) = &inline {
        inline.doorbell.poll_with(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
    }
    loop {
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_once(&mut shard, &mut poll, inline.as_mut())
        }));
        let panic = match attempt {
            Ok(result) => return result,
            Err(panic) => match panic.downcast::<BrainPanic>() {
                Ok(brain) => std::panic::resume_unwind(brain.0),
                Err(feed) => feed,
            },
        };
        let ShardRun { config, ring, stats, .. } = &mut shard;
        note_restart(stats, config.id, started, panic.as_ref());
        config.panic_after_messages = None;
        let mut symbols: Vec<SymbolId> =
            config.endpoints.iter().flat_map(|e| e.symbols.iter().copied()).collect();
        symbols.sort_unstable();
        symbols.dedup();
        push_resyncs(&symbols, ring, crate::clock::now_ns());
        // At most ten restarts a second.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One life of a shard: until `stop`, or a panic.
fn run_once(shard: &mut ShardRun, poll: &mut Poll, mut inline: Option<&mut Inline<'_>>) -> io::Result<()> {
    let ShardRun { config, symbols, ring, stats, stop, commands } = shard;
    let (symbols, stats) = (symbols.clone(), stats.clone());
    crate::cpu::place_current("aegis-shard", config.core, &stats.core);
    let mut events = Events::with_capacity(64);
    let mut endpoints: Vec<Endpoint> =
        config.endpoints.iter().map(|spec| Endpoint::waiting(spec.clone())).collect();
    let mut jitter = config.seed | 1;
    let mut idle_spins = 0u32;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        while let Some(command) = commands.as_mut().and_then(|c| c.pop().ok()) {
            apply_command(command, &mut endpoints, config, &symbols, poll, &stats);
            // What a restart reconnects to (rare: one copy per command).
            config.endpoints = endpoints.iter().map(|e| e.spec.clone()).collect();
        }
        if config.panic_after_messages.is_some_and(|n| stats.messages.load(Ordering::Relaxed) >= n) {
            panic!(
                "injected fault: shard {} panics after {} messages",
                config.id,
                stats.messages.load(Ordering::Relaxed)
            );
        }
        let now = Instant::now();
        for (i, ep) in endpoints.iter_mut().enumerate() {
            if let Link::Waiting { retry_at } = ep.link {
                if now >= retry_at && !ep.retired {
                    ep.link =
                        connect(poll, i, &ep.spec, config.max_message, config.seed ^ u64::from(ep.attempt))
                            .unwrap_or(Link::Waiting {
                                retry_at: now + backoff(config, ep.attempt, &mut jitter),
                            });
                    ep.attempt += 1;
                }
            }
            let due = ep
                .opened_at
                .zip(config.rotate_after)
                .is_some_and(|(at, after)| now.duration_since(at) >= after);
            if ep.successor_live_since.is_some_and(|t| now.duration_since(t) >= ROTATION_OVERLAP) {
                hand_over(ep, i, poll, &stats);
            }
            if due && ep.successor.is_none() && now >= ep.next_rotation_try {
                let seed = config.seed ^ 0xF00D ^ u64::from(ep.attempt);
                ep.successor = connect(poll, SUCCESSOR_TOKEN + i, &ep.spec, config.max_message, seed);
                ep.next_rotation_try = now + Duration::from_secs(1);
            }
        }
        let mut timeout = config.idle.poll_timeout(idle_spins);
        // Inline, the thread sleeps only once the brain's doorbell is marked and its rings
        // are found empty; otherwise it polls without waiting.
        let sleeping = match inline.as_deref() {
            Some(inline) if !timeout.is_zero() => {
                let brain = &*inline.brain;
                inline.doorbell.sleep_unless(|| brain.has_work())
            }
            _ => false,
        };
        if inline.is_some() {
            timeout = if sleeping { timeout.min(INLINE_PARK) } else { Duration::ZERO };
        }
        let polled = poll.poll(&mut events, Some(timeout));
        if let Some(inline) = inline.as_deref().filter(|_| sleeping) {
            inline.doorbell.awake();
        }
        polled?;
        let mut busy = !events.is_empty();
        // Inline, the brain takes each read's records at once: no other thread to wake, and a
        // burst never outruns the ring.
        let mut step = || step_inline(&mut inline);
        for event in events.iter() {
            let token = event.token().0;
            if token == WAKE_TOKEN.0 {
                continue;
            }
            if token >= SUCCESSOR_TOKEN {
                let Some(ep) = endpoints.get_mut(token - SUCCESSOR_TOKEN) else { continue };
                service_successor(ep, poll, &symbols, ring, &stats, started, &mut step);
                continue;
            }
            let Some(ep) = endpoints.get_mut(token) else { continue };
            let result = service(&mut ep.link, &ep.spec, &symbols, ring, &stats, started, &mut step);
            match result {
                Ok(true) => {
                    announce_open(
                        &ep.spec,
                        ep.ever_opened,
                        ring,
                        &stats,
                        started.elapsed().as_nanos() as u64,
                    );
                    ep.ever_opened = true;
                    ep.attempt = 0;
                    ep.opened_at = Some(Instant::now());
                    if ep.pending_ack > 0 {
                        stats.acked.fetch_max(std::mem::take(&mut ep.pending_ack), Ordering::Relaxed);
                    }
                }
                Ok(false) => {}
                Err(err) => {
                    close_link(poll, std::mem::replace(&mut ep.link, Link::Waiting { retry_at: now }));
                    stats.disconnects.fetch_add(1, Ordering::Relaxed);
                    note_error(&stats, started, &format!("{} {}: {err}", ep.spec.host, ep.spec.path));
                    ep.opened_at = None;
                    ep.link =
                        Link::Waiting { retry_at: Instant::now() + backoff(config, ep.attempt, &mut jitter) };
                }
            }
        }
        // What reached the brain from elsewhere (REST results, gateway reports, commands).
        busy |= step() > 0;
        idle_spins = if busy { 0 } else { idle_spins.saturating_add(1) };
    }
    Ok(())
}

/// A panic that came from the inline brain, passed on as one: the feed restarts, the brain
/// does not.
struct BrainPanic(Box<dyn std::any::Any + Send>);

/// One turn of the inline brain, if any; returns the records it handled.
fn step_inline(inline: &mut Option<&mut Inline<'_>>) -> usize {
    let Some(inline) = inline.as_mut() else { return 0 };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inline.brain.step()))
        .unwrap_or_else(|panic| std::panic::resume_unwind(Box::new(BrainPanic(panic))))
}

/// Carries out a live (un)subscription on this shard's connections (mio transport).
///
/// Subscribing adds the symbol's streams to a connection of each tier with room (or opens
/// one), sending SUBSCRIBE on a live connection or reconnecting one still opening with the
/// new list; unsubscribing sends UNSUBSCRIBE and retires a connection left with no streams.
/// Either way the connection's URL follows, so a reconnect asks for the same streams.
fn apply_command(
    command: ShardCommand,
    endpoints: &mut Vec<Endpoint>,
    config: &ShardConfig,
    symbols: &SymbolTable,
    poll: &Poll,
    stats: &ShardStats,
) {
    let (symbol, id, subscribe) = match command {
        ShardCommand::Subscribe { symbol, id } => (symbol, id, true),
        ShardCommand::Unsubscribe { symbol, id } => (symbol, id, false),
    };
    let Some(lower) = symbols.name(symbol).map(str::to_ascii_lowercase) else { return };
    for template in &config.templates {
        let names = symbol_streams(&lower, &config.channels, template.tier);
        if names.is_empty() {
            continue;
        }
        if subscribe {
            let index = match endpoints.iter().position(|ep| has_room(&ep.spec, template.tier, names.len())) {
                Some(i) => i,
                None => {
                    endpoints
                        .push(Endpoint::waiting(EndpointSpec { symbols: Vec::new(), ..template.clone() }));
                    endpoints.len() - 1
                }
            };
            let ep = &mut endpoints[index];
            add_streams(&mut ep.spec, symbol, &names);
            ep.retired = false;
            match &mut ep.link {
                Link::Live { conn, opened: true, .. } => {
                    conn.send_text(request("SUBSCRIBE", &names, id).as_bytes())
                }
                Link::Live { .. } => {
                    // Still opening with the old list: start again with the new one.
                    close_link(
                        poll,
                        std::mem::replace(&mut ep.link, Link::Waiting { retry_at: Instant::now() }),
                    );
                    ep.pending_ack = id;
                }
                Link::Waiting { .. } => {
                    ep.link = Link::Waiting { retry_at: Instant::now() };
                    ep.pending_ack = id;
                }
            }
        } else {
            for ep in endpoints
                .iter_mut()
                .filter(|ep| ep.spec.symbols.contains(&symbol) && ep.spec.tier == template.tier)
            {
                let left = remove_streams(&mut ep.spec, symbol, &names);
                if let Link::Live { conn, opened: true, .. } = &mut ep.link {
                    conn.send_text(request("UNSUBSCRIBE", &names, id).as_bytes());
                }
                if left == 0 {
                    // Closing the connection ends the subscription for certain: no answer
                    // will come on it, so acknowledge here.
                    stats.acked.fetch_max(id, Ordering::Relaxed);
                    ep.retired = true;
                    if let Link::Live { conn, .. } = &mut ep.link {
                        conn.send_close(1000);
                    }
                    close_link(
                        poll,
                        std::mem::replace(&mut ep.link, Link::Waiting { retry_at: Instant::now() }),
                    );
                }
            }
        }
    }
}

/// Sends a queued close frame if any, and stops watching the socket (dropping it closes it).
fn close_link(poll: &Poll, link: Link) {
    if let Link::Live { mut stream, mut conn, .. } = link {
        let _ = conn.write_to(&mut stream);
        let _ = poll.registry().deregister(&mut stream);
    }
}

/// Services a replacement connection; once it is live, both deliver until the hand-over.
fn service_successor(
    ep: &mut Endpoint,
    poll: &Poll,
    symbols: &SymbolTable,
    ring: &mut RingProducer,
    stats: &ShardStats,
    started: Instant,
    after_read: &mut dyn FnMut() -> usize,
) {
    let Some(successor) = ep.successor.as_mut() else { return };
    match service(successor, &ep.spec, symbols, ring, stats, started, after_read) {
        Ok(true) => ep.successor_live_since = Some(Instant::now()),
        Ok(false) => {}
        Err(err) => {
            if let Some(failed) = ep.successor.take() {
                close_link(poll, failed);
            }
            ep.successor_live_since = None;
            note_error(stats, started, &format!("rotation {} {}: {err}", ep.spec.host, ep.spec.path));
        }
    }
}

/// The replacement takes over the endpoint's token; the old connection is closed.
fn hand_over(ep: &mut Endpoint, index: usize, poll: &Poll, stats: &ShardStats) {
    ep.successor_live_since = None;
    let Some(mut fresh) = ep.successor.take() else { return };
    if let Link::Live { stream, .. } = &mut fresh {
        let _ = poll.registry().reregister(stream, Token(index), Interest::READABLE | Interest::WRITABLE);
    }
    let mut old = std::mem::replace(&mut ep.link, fresh);
    if let Link::Live { conn, .. } = &mut old {
        conn.send_close(1000);
    }
    close_link(poll, old);
    ep.opened_at = Some(Instant::now());
    stats.rotations.fetch_add(1, Ordering::Relaxed);
}

fn connect(poll: &Poll, token: usize, spec: &EndpointSpec, max_message: usize, seed: u64) -> Option<Link> {
    let mut stream = TcpStream::connect(spec.addr).ok()?;
    stream.set_nodelay(true).ok()?;
    poll.registry().register(&mut stream, Token(token), Interest::READABLE | Interest::WRITABLE).ok()?;
    let tls = match &spec.tls {
        Some(config) => {
            let name = spec.host.rsplit_once(':').map_or(spec.host.as_str(), |(h, _)| h);
            Some(crate::net::tls::session(config, name).ok()?)
        }
        None => None,
    };
    let conn = Box::new(WsConn::with_tls(&spec.host, &spec.path, max_message, seed, tls));
    Some(Link::Live { stream, conn, opened: false })
}

/// Reads, parses and writes for one connection until its socket would block, calling
/// `after_read` once each read's records are in the ring; `Ok(true)` when the WebSocket
/// upgrade completed during this call.
fn service(
    link: &mut Link,
    spec: &EndpointSpec,
    symbols: &SymbolTable,
    ring: &mut RingProducer,
    stats: &ShardStats,
    started: Instant,
    after_read: &mut dyn FnMut() -> usize,
) -> Result<bool, ConnError> {
    let Link::Live { stream, conn, opened } = link else { return Ok(false) };
    conn.write_to(stream)?;
    let mut just_opened = false;
    loop {
        match conn.read_from(stream) {
            Ok(0) => return Err(ConnError::Eof),
            Ok(_) => {
                let recv_ns = crate::clock::now_ns();
                let hint = spec.raw_hint;
                conn.process(&mut |text| deliver(text, hint, symbols, recv_ns, ring, stats, started))?;
                ring.wake();
                after_read();
                if conn.is_open() && !*opened {
                    *opened = true;
                    just_opened = true;
                }
                conn.write_to(stream)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(just_opened),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
