//! Wire-format micro-benchmarks: exact decimal parsing against the float round-trip it
//! replaces, and archiving a record into a slot and reading it back in place.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aegis_wire::{parse_fixed8, Event, Header, Record, RecordSlot, Sign, SymbolId, Trade};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const PRICES: [&str; 6] = ["2681.62", "0.00002853", "65012.3", "7.6110", "0.014", "11794.15000000"];

fn decimal(c: &mut Criterion) {
    let mut group = c.benchmark_group("decimal");
    group.bench_function("aegis parse_fixed8 (exact)", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            for p in PRICES {
                sum = sum.wrapping_add(parse_fixed8(black_box(p.as_bytes()), Sign::Forbidden).unwrap_or(0));
            }
            sum
        })
    });
    group.bench_function("baseline str::parse::<f64> then scale (inexact)", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            for p in PRICES {
                let v: f64 = black_box(p).parse().unwrap_or(0.0);
                sum = sum.wrapping_add((v * 1e8).round() as i64);
            }
            sum
        })
    });
    group.finish();
}

fn slot(c: &mut Criterion) {
    let record = Record {
        header: Header { symbol: SymbolId(7), event_time_ms: 1_723_161_256_303, recv_ns: 42 },
        event: Event::Trade(Trade {
            trade_id: 5_123_107,
            price: 268_162_000_000,
            qty: 17_000_000,
            trade_time_ms: 1_723_161_256_302,
            buyer_is_maker: true,
        }),
    };
    let mut slot = RecordSlot::default();
    c.bench_function("slot write (archive into a fixed slot)", |b| {
        b.iter(|| slot.write(black_box(&record)).is_ok())
    });
    c.bench_function("slot read (validated zero-copy access)", |b| {
        b.iter(|| black_box(&slot).read().map(|r| r.header.event_time_ms.to_native()).unwrap_or(0))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = decimal, slot
}
criterion_main!(benches);
