//! JSON → record per kind, and frame + JSON → record, against the baseline a typical Rust
//! client uses (serde_json into owned structs; tungstenite + serde_json), same inputs, same
//! run. SPEC §11 bars: ≥ 5× (aggTrade JSON, in the recorded shape and today's with `nq`)
//! and ≥ 8× (frame + JSON).
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aegis::feed::binance::parse_message;
use aegis::feed::frame::{Decoded, FrameDecoder, WsMessage};
use aegis_perf::owned::{AggTradeMsg, BookTickerMsg, DepthMsg, TradeMsg};
use aegis_wire::{Record, SymbolTable};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use std::io::{Cursor, Read};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Envelope<T> {
    stream: String,
    data: T,
}

#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum AnyMsg {
    Depth(DepthMsg),
    Agg(AggTradeMsg),
    Book(BookTickerMsg),
    Trade(TradeMsg),
}

const AGG_TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256311,"a":2181386234,"s":"BTCUSDT","p":"61234.50","q":"0.013","f":5123107832,"l":5123107835,"T":1723161256310,"m":true}}"#;
/// The same trade in today's shape: `nq` (quantity without RPI-order trades) after `q`.
const AGG_TRADE_TODAY: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256311,"a":2181386234,"s":"BTCUSDT","p":"61234.50","q":"0.013","nq":"0.013","f":5123107832,"l":5123107835,"T":1723161256310,"m":true}}"#;

fn capture() -> Vec<String> {
    let path = std::env::var_os("AEGIS_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data/ws/hftbacktest_usdm_ethusdt_20240808.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("shared capture"))
        .read_to_string(&mut text)
        .unwrap();
    text.lines().filter_map(|l| l.find("{\"stream\"").map(|i| l[i..].to_string())).take(5_000).collect()
}

fn table() -> SymbolTable {
    let mut t = SymbolTable::with_capacity(4);
    t.intern("BTCUSDT").unwrap();
    t.intern("ETHUSDT").unwrap();
    t
}

fn json_per_kind(c: &mut Criterion) {
    let table = table();
    let messages = capture();
    let pick = |needle: &str| messages.iter().find(|m| m.contains(needle)).cloned().unwrap();
    let cases = [
        ("aggTrade", AGG_TRADE.to_string()),
        ("aggTrade_nq", AGG_TRADE_TODAY.to_string()),
        ("bookTicker", pick("@bookTicker")),
        ("trade", pick("@trade")),
        ("depthUpdate", pick("@depth")),
    ];
    for (kind, text) in cases {
        let mut group = c.benchmark_group(format!("json_to_record/{kind}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("aegis", |b| {
            // The sink sees each record built in memory (as the ring's archiver does); the
            // baseline likewise builds its owned struct and returns one field.
            b.iter(|| {
                parse_message(black_box(text.as_bytes()), None, &table, 0, &mut |r: &Record| {
                    black_box(r);
                })
                .unwrap()
            })
        });
        group.bench_function("baseline serde_json owned", |b| {
            b.iter(|| match kind {
                "aggTrade" | "aggTrade_nq" => {
                    serde_json::from_slice::<Envelope<AggTradeMsg>>(black_box(text.as_bytes()))
                        .map(|e| e.data.a)
                        .unwrap()
                }
                "bookTicker" => serde_json::from_slice::<Envelope<BookTickerMsg>>(black_box(text.as_bytes()))
                    .map(|e| e.data.u)
                    .unwrap(),
                "trade" => serde_json::from_slice::<Envelope<TradeMsg>>(black_box(text.as_bytes()))
                    .map(|e| e.data.id)
                    .unwrap(),
                _ => serde_json::from_slice::<Envelope<DepthMsg>>(black_box(text.as_bytes()))
                    .map(|e| e.data.u)
                    .unwrap(),
            })
        });
        group.finish();
    }
}

/// A byte stream tungstenite reads from; writes (pongs) are discarded.
struct ReadOnly<'a>(Cursor<&'a [u8]>);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Write for ReadOnly<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn framed(messages: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.push(0x81);
        let len = m.len();
        if len < 126 {
            out.push(len as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(m.as_bytes());
    }
    out
}

fn frame_and_json(c: &mut Criterion) {
    let table = table();
    let messages = capture();
    let bytes = framed(&messages);
    let mut group = c.benchmark_group("frame_and_json_to_record");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("aegis", |b| {
        let mut decoder = FrameDecoder::new(1 << 20);
        b.iter(|| {
            let mut at = 0;
            let mut n = 0u64;
            while let Ok(Decoded::Message(WsMessage::Text(t), used)) = decoder.decode(&bytes[at..]) {
                parse_message(t, None, &table, 0, &mut |_| n += 1).unwrap();
                at += used;
            }
            n
        })
    });
    group.bench_function("baseline tungstenite + serde_json owned", |b| {
        b.iter(|| {
            let stream = ReadOnly(Cursor::new(bytes.as_slice()));
            let mut ws =
                tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None);
            let mut n = 0u64;
            while let Ok(msg) = ws.read() {
                if let tungstenite::Message::Text(t) = msg {
                    let env: Envelope<AnyMsg> = serde_json::from_str(t.as_str()).unwrap();
                    n += u64::from(matches!(
                        env.data,
                        AnyMsg::Depth(_) | AnyMsg::Agg(_) | AnyMsg::Book(_) | AnyMsg::Trade(_)
                    ));
                }
            }
            n
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = json_per_kind, frame_and_json
}
criterion_main!(benches);
