//! The brain's analytics: all 18 features for one symbol per closed bar (incremental),
//! against recomputing them from a 300-bar window each bar (how a batch/pandas-style
//! pipeline does it) in the same run; and the per-event order-flow accumulation.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aegis_analytics::flow::FlowAccumulator;
use aegis_analytics::kline_csv::KlineReader;
use aegis_analytics::{Candle, FeatureConfig, FeatureEngine};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

/// The 500 real 1m ETHUSDT bars from the shared data.
fn real_bars() -> Vec<Candle> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/klines/octobot_binance_ETHUSDT_20180716_1m.csv");
    KlineReader::open(&file).expect("shared kline file").map(|c| c.expect("valid bar")).collect()
}

/// Bar `i` of an endless series: the real bars cycled, with times always increasing.
fn bar_at(bars: &[Candle], i: usize) -> Candle {
    Candle { open_time_ms: i as i64 * 60_000, ..bars[i % bars.len()] }
}

fn per_bar(c: &mut Criterion) {
    let bars = real_bars();
    let mut group = c.benchmark_group("features_per_closed_bar");
    let mut engine = FeatureEngine::new(FeatureConfig::default());
    let mut i = 0;
    for _ in 0..1_000 {
        engine.update(&bar_at(&bars, i)).unwrap();
        i += 1;
    }
    eprintln!("memory per symbol: {} bytes", engine.memory_bytes());
    group.bench_function("aegis incremental (18 features + raw indicators)", |b| {
        b.iter(|| {
            i += 1;
            engine.update(black_box(&bar_at(&bars, i))).unwrap().features[9]
        })
    });
    let mut j = 1_000;
    group.bench_function("baseline recompute over the last 300 bars", |b| {
        b.iter(|| {
            j += 1;
            let mut fresh = FeatureEngine::new(FeatureConfig::default());
            let mut last = 0.0;
            for k in j - 300..=j {
                last = fresh.update(&bar_at(&bars, k)).unwrap().features[9];
            }
            black_box(last)
        })
    });
    group.finish();
}

fn per_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("order_flow_per_event");
    let mut flow = FlowAccumulator::new();
    let mut t = 0i64;
    group.bench_function("aggTrade", |b| {
        b.iter(|| {
            t += 7;
            if t % 60_000 < 7 {
                black_box(flow.close_minute(t - 60_000));
            }
            flow.on_trade(black_box(t), black_box(2_681.62), black_box(0.5), t & 8 == 0);
        })
    });
    group.bench_function("bookTicker", |b| {
        b.iter(|| {
            t += 7;
            if t % 60_000 < 7 {
                black_box(flow.close_minute(t - 60_000));
            }
            flow.on_quote(
                black_box(t),
                black_box(2_681.61),
                black_box(3.2),
                black_box(2_681.62),
                black_box(1.1),
            );
        })
    });
    group.finish();
}

criterion_group!(benches, per_bar, per_event);
criterion_main!(benches);
