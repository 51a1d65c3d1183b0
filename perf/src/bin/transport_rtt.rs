//! Loopback round trip of one WebSocket-sized message through each shard transport under
//! each idle policy, to pick the faster pair for this host. The measurement is the
//! engine's own (`aegis::feed::transport::rtt`, what `aegis doctor` records for
//! `transport = "auto"`): a busy-polling echo server pinned to the last core answers a
//! client pinned to core 0 that writes `--size` bytes and reads them back, `--count` times
//! after `--warmup`, through mio and glommio, once busy-polling (`idle = "spin"`) and once
//! parking (`idle = "park"`). The table shows percentiles; the last line recommends a
//! `transport`/`idle` pair.
//!
//! `cargo run --release -p aegis-perf --bin transport-rtt -- [--count N] [--json FILE]`

use aegis::feed::transport::rtt::{self, Rtt, RttOptions};
use aegis::ring::Idle;
use anyhow::{bail, Context, Result};

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

/// One measured variant.
struct Outcome {
    name: String,
    transport: &'static str,
    idle: &'static str,
    result: Result<Rtt, String>,
}

fn main() -> Result<()> {
    let o = options()?;
    let cpus = aegis::cpu::usable();
    let (client, server) = (cpus.first().copied(), cpus.last().copied().filter(|_| cpus.len() > 1));
    println!(
        "loopback round trip, {} bytes, {} samples after {} warm-up; client on CPU {client:?}, busy echo server on CPU {server:?}",
        o.size, o.count, o.warmup
    );
    let mut outcomes = Vec::new();
    for (idle, word) in [(Idle::Spin, "busy-poll"), (Idle::Park, "park")] {
        let options = RttOptions {
            client_core: client,
            server_core: server,
            idle,
            count: o.count,
            warmup: o.warmup,
            size: o.size,
            io_memory: o.io_memory,
        };
        let measured = rtt::measure(&options)?;
        let name = rtt::idle_name(idle);
        outcomes.push(Outcome {
            name: format!("mio {word}"),
            transport: "mio",
            idle: name,
            result: measured.mio.map_err(|e| e.to_string()),
        });
        outcomes.push(Outcome {
            name: format!("glommio {word}"),
            transport: "glommio",
            idle: name,
            result: measured.glommio.map_err(|e| e.to_string()),
        });
    }
    report(&outcomes, &o)
}

fn report(outcomes: &[Outcome], o: &Options) -> Result<()> {
    println!(
        "{:<17} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "variant", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    let us = |ns: u64| ns as f64 / 1_000.0;
    let mut rows = Vec::new();
    for v in outcomes {
        match &v.result {
            Ok(r) => {
                println!(
                    "{:<17} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                    v.name,
                    us(r.p50_ns),
                    us(r.p90_ns),
                    us(r.p99_ns),
                    us(r.p999_ns),
                    us(r.max_ns)
                );
                rows.push(serde_json::json!({ "variant": v.name, "transport": v.transport, "idle": v.idle, "rtt": r }));
            }
            Err(e) => println!("{:<17} unavailable: {e}", v.name),
        }
    }
    // Lowest p99 wins: the tail is what a trading engine pays for.
    let best = outcomes
        .iter()
        .filter_map(|v| v.result.as_ref().ok().map(|r| (v, r.p99_ns)))
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
