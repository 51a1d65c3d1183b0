//! `exchange-sim`: a loopback Binance USDⓈ-M exchange for Aegis's tests and benchmarks.
//!
//! - [`cli`]: the command-line contract.
//! - [`market`]: what a source provides (timed messages, symbols, bars, books).
//! - [`replay`]: recorded captures, byte-identical; [`synthetic`]: a seeded market.
//! - [`feed`]: pacing and stream faults; [`fault`]: the fault plan.
//! - [`server`]: one port for WebSocket (`ws`) and REST (`rest`), optional TLS (`tls`).
//! - [`stats`]: the run summary; [`rng`]: the seeded generator (aegis-trading's).

pub mod cli;
pub mod fault;
pub mod feed;
pub mod rest;
pub mod server;
pub mod stats;
pub mod synthetic;
pub mod tls;
pub mod venue;
pub mod ws;
pub mod ws_api;

pub use aegis_recorded::{market, replay};
pub use aegis_trading::rng;

use anyhow::Context;
use cli::Args;
use market::Source;
use server::{Shared, WsLimits};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Feed capacity for infinite sources: how many messages a subscriber may lag.
const FEED_CAPACITY: usize = 1 << 17;

/// Runs the simulator until `--for` elapses, SIGINT/SIGTERM, or (with `--list-streams`) at once.
/// The first stdout line announces the port (the CLI contract).
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(args, |port, tls| {
        let (ws, http) = if tls { ("wss", "https") } else { ("ws", "http") };
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {ws}://127.0.0.1:{port} {http}://127.0.0.1:{port}")?;
        out.flush()
    })
    .await
}

/// Runs the simulator, telling `on_listening` the port (and whether TLS is on) once bound
/// (for an embedding process, such as `aegis run`).
pub async fn run_with(
    args: Args,
    on_listening: impl FnOnce(u16, bool) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    run_until(args, on_listening, std::future::pending()).await
}

/// [`run_with`], also stopping when `stop` completes.
async fn run_until(
    args: Args,
    on_listening: impl FnOnce(u16, bool) -> std::io::Result<()>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let faults = args.fault_plan()?;
    let (source, label, capacity): (Box<dyn Source>, &str, usize) = if args.replay.is_empty() {
        let config = synthetic::SyntheticConfig {
            symbols: args.symbols as usize,
            seed: args.seed,
            start_ms: args.start_time.unwrap_or(synthetic::SyntheticConfig::default().start_ms),
            history_bars: args.history_bars,
        };
        (Box::new(synthetic::Synthetic::new(&config)), "synthetic", FEED_CAPACITY)
    } else {
        let replay = replay::Replay::load(&args.replay)?;
        if args.list_streams {
            let mut out = std::io::stdout().lock();
            for name in replay.stream_names() {
                writeln!(out, "{name}")?;
            }
            return Ok(());
        }
        // A replay is finite: size the feed so a subscriber can never be lapped.
        let capacity = (replay.remaining() + 16).next_power_of_two().max(FEED_CAPACITY);
        (Box::new(replay), "replay", capacity)
    };
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await.context("binding 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let tls = if args.tls {
        let ca_path = args
            .ca_out
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("exchange-sim-ca-{port}.pem")));
        let config = tls::server_config(&ca_path)?;
        tracing::info!(ca = %ca_path.display(), "TLS on; trust this CA");
        Some(tokio_rustls::TlsAcceptor::from(config))
    } else {
        None
    };
    on_listening(port, tls.is_some())?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let limits = WsLimits {
        ping_interval: args.ping_interval,
        pong_timeout: args.pong_timeout,
        lifetime: args.conn_lifetime,
        rate: args.rate,
        max_streams: args.max_streams,
        max_incoming_per_s: args.max_incoming_per_s,
    };
    let shared = Shared::new(
        source,
        capacity,
        limits,
        faults,
        args.speed,
        args.rest_weight_limit,
        shutdown_rx,
        args.seed,
    );
    let ed25519 = args.ed25519_key_map().map_err(anyhow::Error::msg)?;
    *shared.venue.lock().unwrap_or_else(|p| p.into_inner()) = venue::Venue::new(args.key_map())
        .with_ed25519_keys(ed25519)
        .with_order_limit(args.order_limit_10s)
        .with_trigger_outcome(args.trigger_outcome)
        .with_listen_key_ttl(args.listen_key_ttl);
    let started = Instant::now();
    tokio::spawn(feed::run_feed(shared.clone(), capacity));
    tokio::spawn(accept_loop(listener, tls, shared.clone()));
    if args.progress {
        tokio::spawn(progress(shared.clone()));
    }
    tokio::select! {
        _ = wait_for_stop(args.run_for) => {}
        _ = stop => {}
    }
    let _ = shutdown_tx.send(true);
    // Let sessions send their close frames and merge their counters.
    let deadline = Instant::now() + Duration::from_secs(2);
    while shared.stats.lock().map(|s| s.open_connections()).unwrap_or(0) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(path) = &args.summary {
        let sim_ms = shared.source.lock().map(|s| s.now_ms()).unwrap_or(0);
        let json = shared.stats.lock().map_err(|_| anyhow::anyhow!("stats poisoned"))?.to_json(
            label,
            sim_ms,
            started.elapsed().as_secs_f64(),
        );
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// An exchange-sim running on its own thread and runtime; dropping it stops the simulator
/// (its market, its connections) and waits for the thread.
pub struct Embedded {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the simulator on a background thread with its own runtime (for embedding
/// processes: `aegis run`'s embedded market, the benchmarks); it runs until the returned
/// [`Embedded`] is dropped.
pub fn spawn(args: Args) -> anyhow::Result<Embedded> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("exchange-sim".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "exchange-sim runtime");
                return;
            }
        };
        let on_listening = move |port, _| {
            let _ = tx.send(port);
            Ok(())
        };
        let result = runtime.block_on(run_until(args, on_listening, async {
            let _ = stopped.await;
        }));
        if let Err(e) = result {
            tracing::error!(error = %e, "exchange-sim stopped");
        }
    })?;
    let port = rx.recv_timeout(Duration::from_secs(30)).context("the embedded exchange-sim did not start")?;
    Ok(Embedded { port, stop: Some(stop), thread: Some(thread) })
}

async fn accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match &tls {
            None => {
                tokio::spawn(server::serve_connection(stream, shared));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls_stream) => server::serve_connection(tls_stream, shared).await,
                        Err(e) => tracing::warn!(error = %e, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

async fn wait_for_stop(run_for: Option<Duration>) {
    let timer = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = timer => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn progress(shared: Arc<Shared>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (sent, open) =
            shared.stats.lock().map(|s| (s.sent_total(), s.open_connections())).unwrap_or((0, 0));
        let sim_ms = shared.source.lock().map(|s| s.now_ms()).unwrap_or(0);
        eprintln!(
            "exchange-sim: sim time {sim_ms} ms, {open} connection(s), {} msg/s, {sent} sent",
            sent - last
        );
        last = sent;
    }
}
