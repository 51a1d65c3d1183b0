//! Order round trip over loopback against exchange-sim, the three order paths in one run:
//! the WebSocket API on its persistent connection (the live default), REST on a kept-alive
//! connection (ureq), and, as a baseline kept here only, REST opening a new TCP connection
//! per request (`Connection: close`, the engine's client before issue 19). Each sample is a
//! signed MARKET order from the moment the order is handed to the client: to its last byte
//! written (WebSocket API and the baseline; ureq does not expose it) and to the exchange's
//! answer read and parsed. The paths take turns order by order, so they share the host's
//! conditions; HdrHistogram percentiles, then JSON with `--json`.
//!
//! This is the order half of tick-to-trade: from the intent to the acknowledgement. The
//! market half (read → parse → ring → decision) is `aegis-bench`'s wire-to-decision.
//!
//! `cargo run --release -p aegis-perf --bin order-rtt -- [--count N] [--warmup N] [--json FILE]`

use aegis::credentials::ApiKey;
use aegis::execution::live::client::TradeClient;
use aegis::execution::live::order::{Fixed8, OrderKind, OrderRequest, Side};
use aegis::execution::live::sign::signed_params;
use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

const KEY: &str = "order-rtt-key-0123456789";
const SECRET: &str = "order-rtt-secret-0123456789";

struct Options {
    count: usize,
    warmup: usize,
    tls: bool,
    json: Option<String>,
}

fn options() -> Result<Options> {
    let mut o = Options { count: 2_000, warmup: 200, tls: false, json: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => o.count = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--json" => o.json = Some(value()?),
            "--tls" => o.tls = true,
            other => bail!("unknown argument {other:?} (--count N, --warmup N, --tls, --json FILE)"),
        }
    }
    Ok(o)
}

/// One order path's samples, ns.
struct Path {
    name: &'static str,
    written: Option<Histogram<u64>>,
    acked: Histogram<u64>,
}

impl Path {
    fn new(name: &'static str, measures_write: bool) -> Result<Self> {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3);
        Ok(Self { name, written: if measures_write { Some(h()?) } else { None }, acked: h()? })
    }

    fn json(&self) -> serde_json::Value {
        let p = |h: &Histogram<u64>| {
            json!({ "p50_ns": h.value_at_quantile(0.5), "p90_ns": h.value_at_quantile(0.9),
                    "p99_ns": h.value_at_quantile(0.99), "p999_ns": h.value_at_quantile(0.999),
                    "max_ns": h.max(), "samples": h.len() })
        };
        json!({ "path": self.name, "last_byte_written": self.written.as_ref().map(p), "acknowledged": p(&self.acked) })
    }
}

/// The old path: one TCP connection (and TLS session) per request, `Connection: close`.
fn per_connection(
    port: u16,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    body: &str,
) -> Result<(Instant, String)> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let request = format!(
        "POST /fapi/v1/order HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: aegis\r\nConnection: close\r\nX-MBX-APIKEY: {KEY}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut answer = Vec::new();
    let written = match tls {
        None => {
            let mut stream = stream;
            stream.write_all(request.as_bytes())?;
            let written = Instant::now();
            stream.read_to_end(&mut answer)?;
            written
        }
        Some(config) => {
            let session = aegis::net::tls::session(config, "127.0.0.1")?;
            let mut stream = rustls::StreamOwned::new(session, stream);
            stream.write_all(request.as_bytes())?;
            stream.flush()?;
            let written = Instant::now();
            // A server may end without close_notify: what was read is the answer.
            let _ = stream.read_to_end(&mut answer);
            written
        }
    };
    Ok((written, String::from_utf8_lossy(&answer).into_owned()))
}

fn main() -> Result<()> {
    let o = options()?;
    let mut args = exchange_sim::cli::Args::synthetic(3, 1, 300);
    args.speed = exchange_sim::cli::Speed::Factor(1.0);
    args.api_keys.push((KEY.into(), SECRET.into()));
    // Binance's limits (300 orders per 10 s, 2,400 weight a minute) would pace the run.
    args.order_limit_10s = u32::MAX;
    args.rest_weight_limit = u32::MAX;
    let dir = std::env::temp_dir().join(format!("order-rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = dir.join("ca.pem");
    if o.tls {
        args.tls = true;
        args.ca_out = Some(ca.clone());
    }
    let sim = exchange_sim::spawn(args)?;
    let port = sim.port;
    let (http, ws_scheme, extra_ca) =
        if o.tls { ("https", "wss", Some(ca.as_path())) } else { ("http", "ws", None) };
    let base = format!("{http}://127.0.0.1:{port}");
    let key = ApiKey::new(KEY, SECRET, "the benchmark");
    let tls = aegis::net::tls::client_config(extra_ca)?;
    let mut ws = TradeClient::new(&base, key.clone(), extra_ca)?.with_ws_api(
        &format!("{ws_scheme}://127.0.0.1:{port}/ws-fapi/v1"),
        tls.clone(),
        Default::default(),
    );
    let mut rest = TradeClient::new(&base, key.clone(), extra_ca)?;
    for c in [&mut ws, &mut rest] {
        c.sync_clock()?;
    }
    let clock = rest.clock();
    let mut paths = [
        Path::new("websocket-api", true)?,
        Path::new("rest-kept-alive", false)?,
        Path::new("rest-per-connection", true)?,
    ];
    let mut next_id = 0u64;
    let over = if o.tls { "TLS (rustls both ends)" } else { "plain TCP" };
    println!("order round trip over loopback against exchange-sim, {over}: {} samples per path after {} warm-up, paths taking turns", o.count, o.warmup);
    for round in 0..o.warmup + o.count {
        for (i, path) in paths.iter_mut().enumerate() {
            next_id += 1;
            let order = OrderRequest {
                symbol: "BTCUSDT".into(),
                // Alternate so the position stays near flat.
                side: if next_id.is_multiple_of(2) { Side::Buy } else { Side::Sell },
                kind: OrderKind::Market,
                quantity: Fixed8::parse("0.001")?,
                client_id: format!("rtt-{next_id}"),
            };
            let start = Instant::now();
            let (written, ok) = match i {
                0 => {
                    let ok = ws.place(&order).is_ok();
                    (ws.ws_last_written(), ok)
                }
                1 => (None, rest.place(&order).is_ok()),
                _ => {
                    let body = signed_params(&order.params(), clock.now_ms(), 5_000, &key);
                    let (written, answer) = per_connection(port, o.tls.then_some(&tls), &body)?;
                    (Some(written), answer.starts_with("HTTP/1.1 200"))
                }
            };
            let acked = start.elapsed();
            if !ok {
                bail!("{}: order {} refused", path.name, order.client_id);
            }
            if round < o.warmup {
                continue;
            }
            path.acked.record(acked.as_nanos().max(1) as u64)?;
            if let (Some(h), Some(w)) = (path.written.as_mut(), written) {
                h.record(w.saturating_duration_since(start).as_nanos().max(1) as u64)?;
            }
        }
    }
    let us = |ns: u64| format!("{:.1}", ns as f64 / 1_000.0);
    println!(
        "{:<22} {:>28} {:>40}",
        "path", "last byte written p50/p99 µs", "acknowledged p50/p90/p99/p99.9 µs"
    );
    for p in &paths {
        let written = p.written.as_ref().map_or("—".to_string(), |h| {
            format!("{} / {}", us(h.value_at_quantile(0.5)), us(h.value_at_quantile(0.99)))
        });
        let a = &p.acked;
        println!(
            "{:<22} {:>28} {:>40}",
            p.name,
            written,
            format!(
                "{} / {} / {} / {}",
                us(a.value_at_quantile(0.5)),
                us(a.value_at_quantile(0.9)),
                us(a.value_at_quantile(0.99)),
                us(a.value_at_quantile(0.999))
            )
        );
    }
    let result = json!({
        "what": "signed MARKET order: handed to the client → last byte written → answer read, loopback, exchange-sim in process",
        "cpus": aegis::cpu::usable().len(),
        "tls": o.tls,
        "paths": paths.iter().map(Path::json).collect::<Vec<_>>(),
    });
    if let Some(file) = &o.json {
        std::fs::write(file, serde_json::to_string_pretty(&result)? + "\n")?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
