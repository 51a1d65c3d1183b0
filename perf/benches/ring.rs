//! The shard → brain hop: archive a record into the rtrb ring and read it back in place,
//! against a std `sync_channel` of owned records (the same work, the usual tool).
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aegis::ring::ring;
use aegis_wire::{Event, Header, Record, SymbolId, Trade};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn record(id: u64) -> Record {
    Record {
        header: Header { symbol: SymbolId(3), event_time_ms: 1_723_161_256_303, recv_ns: id },
        event: Event::Trade(Trade {
            trade_id: id,
            price: 268_162_000_000,
            qty: 100_000,
            trade_time_ms: 1,
            buyer_is_maker: true,
        }),
    }
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_hop");
    let (mut producer, mut consumer) = ring(1024, 0, 8);
    let r = record(7);
    group.bench_function("aegis rtrb slot (push, drain in place)", |b| {
        b.iter(|| {
            producer.push(black_box(&r));
            let mut id = 0;
            consumer.drain(|a, _| id = a.header.recv_ns.to_native());
            id
        })
    });
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(1024);
    group.bench_function("baseline std sync_channel (send, recv)", |b| {
        b.iter(|| {
            tx.send(black_box(r)).unwrap_or(());
            rx.recv().map(|x| x.header.recv_ns).unwrap_or(0)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = hop
}
criterion_main!(benches);
