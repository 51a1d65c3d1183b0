//! Loopback round trip of one WebSocket-sized message through each shard transport, to
//! pick the faster one for this host (issue 3: "benchmark both … recommend the faster").
//!
//! A busy-polling echo server thread (pinned to the last core) answers a client pinned to
//! core 0 that writes `--size` bytes and reads them back, `--count` times after
//! `--warmup`, through: mio busy-polling (`idle = "spin"`: epoll with a zero timeout, as
//! the shard does), mio parking (epoll waits in the kernel), glommio spinning before it
//! parks, and glommio parking at once. Each round trip goes into an HdrHistogram; the table
//! shows percentiles and the last line recommends a `transport`/`idle` pair.
//!
//! `cargo run --release -p aegis-perf --bin transport-rtt -- [--count N] [--json FILE]`

use anyhow::{anyhow, bail, Context, Result};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hdrhistogram::Histogram;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Benchmark settings from the command line.
struct Options {
    count: u64,
    warmup: u64,
    size: usize,
    io_memory: usize,
    json: Option<String>,
}

fn options() -> Result<Options> {
    let mut o = Options { count: 20_000, warmup: 2_000, size: 200, io_memory: 512 << 10, json: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => o.count = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--size" => o.size = value()?.parse()?,
            "--io-memory" => o.io_memory = value()?.parse()?,
            "--json" => o.json = Some(value()?),
            other => bail!("unknown argument {other:?} (--count N, --warmup N, --size BYTES, --io-memory BYTES, --json FILE)"),
        }
    }
    Ok(o)
}

fn pin(core: usize) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.into_iter().find(|c| c.id == core)) {
        core_affinity::set_for_current(id);
    }
}

/// Accepts one connection at a time and echoes it, busy-polling so the server's wake-up
/// is not what is measured.
fn echo_server(listener: TcpListener, core: usize, connections: usize) {
    pin(core);
    let mut buf = vec![0u8; 64 << 10];
    for _ in 0..connections {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_nonblocking(true);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if write_all_spinning(&mut stream, &buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(_) => break,
            }
        }
    }
}

fn write_all_spinning(stream: &mut impl Write, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Round trips through mio; `timeout` is the epoll wait (zero: busy-poll).
fn mio_client(addr: SocketAddr, o: &Options, timeout: Option<Duration>) -> Result<Histogram<u64>> {
    pin(0);
    let std_stream = TcpStream::connect(addr)?;
    std_stream.set_nodelay(true)?;
    std_stream.set_nonblocking(true)?;
    let mut stream = mio::net::TcpStream::from_std(std_stream);
    let mut poll = mio::Poll::new()?;
    poll.registry().register(&mut stream, mio::Token(0), mio::Interest::READABLE)?;
    let mut events = mio::Events::with_capacity(8);
    let message = vec![b'x'; o.size];
    let mut reply = vec![0u8; o.size];
    let mut hist = histogram();
    for i in 0..o.warmup + o.count {
        let start = Instant::now();
        write_all_spinning(&mut stream, &message)?;
        let mut got = 0;
        while got < o.size {
            match stream.read(&mut reply[got..]) {
                Ok(0) => bail!("echo server closed"),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => poll.poll(&mut events, timeout)?,
                Err(e) => return Err(e.into()),
            }
        }
        if i >= o.warmup {
            hist.record(start.elapsed().as_nanos() as u64)?;
        }
    }
    Ok(hist)
}

/// Round trips through glommio (io_uring), spinning `spin` before the executor parks.
fn glommio_client(addr: SocketAddr, o: &Options, spin: Duration) -> Result<Histogram<u64>> {
    let (count, warmup, size) = (o.count, o.warmup, o.size);
    let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .name("rtt-glommio")
        .io_memory(o.io_memory)
        .spin_before_park(spin)
        .spawn(move || async move {
            let mut stream =
                glommio::net::TcpStream::connect(addr).await.map_err(|e| anyhow!("connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| anyhow!("nodelay: {e}"))?;
            let message = vec![b'x'; size];
            let mut reply = vec![0u8; size];
            let mut hist = histogram();
            for i in 0..warmup + count {
                let start = Instant::now();
                stream.write_all(&message).await?;
                stream.read_exact(&mut reply).await?;
                if i >= warmup {
                    hist.record(start.elapsed().as_nanos() as u64)?;
                }
            }
            anyhow::Ok(hist)
        })
        .map_err(|e| anyhow!("glommio executor did not start: {e}"))?;
    handle.join().map_err(|e| anyhow!("glommio executor failed (io_uring or memlock): {e}"))?
}

/// One measured variant.
struct Outcome {
    name: &'static str,
    transport: &'static str,
    idle: &'static str,
    result: Result<Histogram<u64>>,
}

fn main() -> Result<()> {
    let o = options()?;
    let cores = core_affinity::get_core_ids().map_or(1, |ids| ids.len());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let variants = 4;
    let server = std::thread::spawn(move || echo_server(listener, cores.saturating_sub(1), variants));
    println!(
        "loopback round trip, {} bytes, {} samples after {} warm-up; client on core 0, busy echo server on core {}",
        o.size,
        o.count,
        o.warmup,
        cores.saturating_sub(1)
    );
    let outcomes = vec![
        Outcome {
            name: "mio busy-poll",
            transport: "mio",
            idle: "spin",
            result: mio_client(addr, &o, Some(Duration::ZERO)),
        },
        Outcome { name: "mio park", transport: "mio", idle: "park", result: mio_client(addr, &o, None) },
        Outcome {
            name: "glommio spin",
            transport: "glommio",
            idle: "spin",
            result: glommio_client(addr, &o, Duration::from_secs(3600)),
        },
        Outcome {
            name: "glommio park",
            transport: "glommio",
            idle: "park",
            result: glommio_client(addr, &o, Duration::ZERO),
        },
    ];
    // A variant that failed never connected; the server's accept loop would wait for it.
    if outcomes.iter().all(|v| v.result.is_ok()) {
        let _ = server.join();
    }
    report(&outcomes, &o)
}

fn report(outcomes: &[Outcome], o: &Options) -> Result<()> {
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "variant", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    let us = |ns: u64| ns as f64 / 1_000.0;
    let mut rows = Vec::new();
    for v in outcomes {
        match &v.result {
            Ok(h) => {
                let q = |p: f64| h.value_at_quantile(p);
                println!(
                    "{:<14} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                    v.name,
                    us(q(0.5)),
                    us(q(0.9)),
                    us(q(0.99)),
                    us(q(0.999)),
                    us(h.max())
                );
                rows.push(serde_json::json!({
                    "variant": v.name, "transport": v.transport, "idle": v.idle,
                    "p50_ns": q(0.5), "p90_ns": q(0.9), "p99_ns": q(0.99), "p999_ns": q(0.999), "max_ns": h.max(),
                }));
            }
            Err(e) => println!("{:<14} unavailable: {e:#}", v.name),
        }
    }
    // Lowest p99 wins: the tail is what a trading engine pays for.
    let best = outcomes
        .iter()
        .filter_map(|v| v.result.as_ref().ok().map(|h| (v, h.value_at_quantile(0.99))))
        .min_by_key(|(_, p99)| *p99);
    let recommendation = best.map(|(v, _)| {
        format!("transport = \"{}\", idle = \"{}\" ({}: lowest p99 here)", v.transport, v.idle, v.name)
    });
    if let Some(r) = &recommendation {
        println!("recommended for this host: {r}");
    }
    if let Some(path) = &o.json {
        let doc = serde_json::json!({ "size_bytes": o.size, "samples": o.count, "variants": rows, "recommended": recommendation });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
