//! The brain's analytics on a real kline series: every closed bar's features equal those
//! the standalone engine computes from the same file (so the fixed-point → f64 path loses
//! nothing), and a bad bar arriving live is counted and skipped without touching the state.

mod common;

use aegis::brain::port::ClosedBar;
use aegis::brain::stats::BrainStats;
use aegis::brain::{Brain, BrainConfig};
use aegis::ring::ring;
use aegis_analytics::kline_csv::KlineReader;
use aegis_analytics::{FeatureConfig, FeatureEngine};
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, Sign};
use common::closed_kline;
use std::sync::atomic::Ordering;

#[test]
fn brain_features_equal_the_standalone_engine_and_a_bad_live_bar_is_counted_and_skipped() {
    let file = common::shared_data().join("klines/octobot_binance_ETHUSDT_20180716_1m.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut producer, consumer) = ring(1 << 12, 0, 1);
    let (_results_tx, results_rx) = ring(16, 0, 1);
    let (requests_tx, _requests_rx) = rtrb::RingBuffer::new(64);
    let (bars_tx, mut bars_rx) = rtrb::RingBuffer::<ClosedBar>::new(1 << 10);
    let config = BrainConfig::default();
    let stats = std::sync::Arc::new(BrainStats::new(1));
    let mut brain = Brain::new(
        config,
        1,
        vec![consumer],
        results_rx,
        requests_tx,
        Some(bars_tx),
        common::paper_desk(1),
        stats.clone(),
    );
    let mut pushed = 0;
    for (i, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let price = |k: usize| parse_fixed8(f[k].as_bytes(), Sign::Forbidden).unwrap();
        let time: i64 = f[0].parse().unwrap();
        let volume = parse_fixed8_i128(f[5].as_bytes(), Sign::Forbidden).unwrap();
        producer.push(&closed_kline(time, [price(1), price(2), price(3), price(4)], volume, 0));
        pushed += 1;
        if i == 260 {
            // High below low, half a minute later: the brain takes it as a closed bar, the
            // analytics refuse it.
            producer.push(&closed_kline(
                time + 30_000,
                [price(1), price(3) - 1, price(2) + 1, price(4)],
                volume,
                0,
            ));
        }
    }
    assert_eq!(brain.poll_once(), pushed + 1);
    let symbol = &stats.symbols[0];
    assert_eq!(symbol.bars_rejected.load(Ordering::Relaxed), 1);
    assert_eq!(symbol.bars_closed.load(Ordering::Relaxed), pushed as u64 + 1);
    assert_eq!(symbol.features_warm.load(Ordering::Relaxed), 1);

    let mut reference = FeatureEngine::new(FeatureConfig::default());
    let expected: Vec<_> =
        KlineReader::open(&file).unwrap().map(|c| *reference.update(&c.unwrap()).unwrap()).collect();
    let mut got = Vec::new();
    let mut refused = 0;
    while let Ok(closed) = bars_rx.pop() {
        match closed.features {
            Some(snapshot) => got.push(snapshot),
            None => refused += 1,
        }
    }
    assert_eq!(refused, 1);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "bar {}", e.open_time_ms);
    }
    assert_eq!(symbol.latest_features(), expected.last().unwrap().features);
}
