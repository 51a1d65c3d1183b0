//! The glommio (io_uring) transport: a shard as one pinned `LocalExecutor`, one local task
//! per connection, driving the same sans-IO `WsConn` and the same parse → ring path as the
//! mio transport.
//!
//! io_uring batches syscalls; it is not kernel bypass. glommio registers `io_memory` with
//! the ring, which counts against the memlock limit (8 MiB on hosts like ours): keep it
//! small. A memlock failure surfaces when the executor is joined, not when it is spawned,
//! so [`probe`] joins a tiny executor first and reports the error.

use super::conn::{ConnError, WsConn};
use super::shard::{
    announce_open, backoff, deliver, note_error, EndpointSpec, Idle, ShardConfig, ShardStats,
};
use crate::ring::RingProducer;
use aegis_wire::SymbolTable;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a blocked read waits before the loop looks at the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(100);

fn builder(name: &str, core: Option<usize>, idle: Idle, io_memory: usize) -> LocalExecutorBuilder {
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
pub fn probe(io_memory: usize) -> Result<(), String> {
    let handle = builder("aegis-uring-probe", None, Idle::Park, io_memory)
        .spawn(|| async move {})
        .map_err(|e| format!("glommio executor did not start: {e}"))?;
    handle.join().map_err(|e| format!("glommio executor failed (io_uring or memlock): {e}"))
}

/// Runs a shard on glommio until `stop` is set.
pub fn run_shard(
    config: ShardConfig,
    symbols: Arc<SymbolTable>,
    ring: RingProducer,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    io_memory: usize,
) -> std::io::Result<()> {
    let name = format!("aegis-shard-{}", config.id);
    let handle = builder(&name, config.core, config.idle, io_memory)
        .spawn(move || async move {
            let ring = Rc::new(RefCell::new(ring));
            let started = Instant::now();
            let tasks: Vec<_> = config
                .endpoints
                .iter()
                .cloned()
                .map(|spec| {
                    let task = endpoint(
                        spec,
                        config.clone(),
                        symbols.clone(),
                        ring.clone(),
                        stats.clone(),
                        stop.clone(),
                        started,
                    );
                    glommio::spawn_local(task).detach()
                })
                .collect();
            for task in tasks {
                task.await;
            }
        })
        .map_err(|e| std::io::Error::other(format!("glommio shard: {e}")))?;
    handle.join().map_err(|e| std::io::Error::other(format!("glommio shard (io_uring or memlock): {e}")))
}

async fn endpoint(
    spec: EndpointSpec,
    config: ShardConfig,
    symbols: Arc<SymbolTable>,
    ring: Rc<RefCell<RingProducer>>,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    started: Instant,
) {
    let mut attempt = 0u32;
    let mut ever_opened = false;
    let mut jitter = config.seed ^ (spec.addr.port() as u64) | 1;
    let mut read_buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    while !stop.load(Ordering::Relaxed) {
        let result = session(
            &spec,
            &config,
            &symbols,
            &ring,
            &stats,
            &stop,
            started,
            &mut ever_opened,
            &mut attempt,
            &mut read_buf,
            &mut out,
        )
        .await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Err(err) = result {
            stats.disconnects.fetch_add(1, Ordering::Relaxed);
            note_error(&stats, started, &format!("{} {}: {err}", spec.host, spec.path));
        }
        glommio::timer::sleep(backoff(&config, attempt, &mut jitter)).await;
        attempt += 1;
    }
}

/// One connection's life: connect, upgrade, read until it fails or the run stops.
#[allow(clippy::too_many_arguments)]
async fn session(
    spec: &EndpointSpec,
    config: &ShardConfig,
    symbols: &SymbolTable,
    ring: &Rc<RefCell<RingProducer>>,
    stats: &ShardStats,
    stop: &AtomicBool,
    started: Instant,
    ever_opened: &mut bool,
    attempt: &mut u32,
    read_buf: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<(), ConnError> {
    let mut stream = TcpStream::connect(spec.addr).await.map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tls = match &spec.tls {
        Some(tls) => {
            let host = spec.host.rsplit_once(':').map_or(spec.host.as_str(), |(h, _)| h);
            Some(super::tls::session(tls, host).map_err(|e| std::io::Error::other(e.to_string()))?)
        }
        None => None,
    };
    let mut conn =
        WsConn::with_tls(&spec.host, &spec.path, config.max_message, config.seed ^ u64::from(*attempt), tls);
    let mut opened = false;
    while !stop.load(Ordering::Relaxed) {
        stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        if conn.wants_write() {
            out.clear();
            conn.write_to(out)?;
            stream.write_all(out).await?;
        }
        let n = match stream.read(read_buf).await {
            Ok(0) => return Err(ConnError::Eof),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let recv_ns = started.elapsed().as_nanos() as u64;
        let mut input = &read_buf[..n];
        while !input.is_empty() {
            conn.read_from(&mut input)?;
            let mut ring = ring.borrow_mut();
            conn.process(&mut |text| {
                deliver(text, spec.raw_hint, symbols, recv_ns, &mut ring, stats, started)
            })?;
            if conn.is_open() && !opened {
                opened = true;
                announce_open(spec, *ever_opened, &mut ring, stats, recv_ns);
                *ever_opened = true;
                *attempt = 0;
            }
        }
    }
    Ok(())
}
