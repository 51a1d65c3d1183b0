//! Bars against independent references: 1m bars built from recorded trades equal candles a
//! Python script computed with exact decimals (tests/python/candles.py, output checked in
//! under tests/fixtures); 1m → 5m/1h roll-ups equal the exchange's own klines (OctoBot's
//! series in shared/data).

use aegis::brain::bar::{Bar, Rollup};
mod common;

use aegis::run::run;
use aegis_wire::{parse_fixed8, parse_fixed8_i128, Sign};
use common::{config, repo, shared_data, start_sim};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn px(s: &str) -> i64 {
    parse_fixed8(s.as_bytes(), Sign::Forbidden).unwrap()
}

fn vol(s: &str) -> i128 {
    parse_fixed8_i128(s.as_bytes(), Sign::Forbidden).unwrap()
}

/// `open_time_ms,open,high,low,close,volume[,trades]` rows (after `skip` leading columns).
fn read_bars(path: &std::path::Path, skip: usize) -> Vec<Bar> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split(',').skip(skip).collect();
            Bar {
                open_time_ms: c[0].parse().unwrap(),
                open: px(c[1]),
                high: px(c[2]),
                low: px(c[3]),
                close: px(c[4]),
                volume: vol(c[5]),
                trades: c.get(6).map_or(0, |n| n.parse().unwrap()),
            }
        })
        .collect()
}

#[test]
fn bars_built_from_recorded_trades_equal_independent_candles() {
    let files: Vec<String> = ["hftbacktest_spot_btcusdt_20240808.gz", "hftbacktest_spot_btcusdt_20240809.gz"]
        .iter()
        .map(|f| shared_data().join("ws").join(f).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["--speed", "max", "--replay"];
    args.extend(files.iter().map(String::as_str));
    let port = start_sim(&args);
    let out = std::env::temp_dir().join(format!("aegis-trade-bars-{}.csv", std::process::id()));
    let mut config = config(port, vec!["BTCUSDT".into()], vec!["trade".into()]);
    config.ops.bars_out = Some(out.clone());
    config.end.stop_after_events = Some(9_757 + 10_147);
    let summary = run(config, Arc::new(AtomicBool::new(false))).unwrap().summary;
    assert_eq!(summary["events_by_kind"]["trade"], 9_757 + 10_147, "{summary}");
    let ours = read_bars(&out, 1);
    let reference = read_bars(&repo().join("tests/fixtures/btcusdt_spot_20240808_trade_candles.csv"), 1);
    assert_eq!(reference.len(), 11);
    assert_eq!(ours, reference);
}

fn rollup_matches(one_minute: &str, higher: &str, interval_ms: i64) -> usize {
    let dir = shared_data().join("klines");
    let minutes = read_bars(&dir.join(one_minute), 0);
    let exchange: BTreeMap<i64, Bar> =
        read_bars(&dir.join(higher), 0).into_iter().map(|b| (b.open_time_ms, b)).collect();
    let mut rollup = Rollup::new(interval_ms);
    let mut compared = 0;
    let mut members = 0;
    let mut bucket = i64::MIN;
    for m in &minutes {
        let b = m.open_time_ms - m.open_time_ms.rem_euclid(interval_ms);
        if b != bucket {
            bucket = b;
            members = 0;
        }
        members += 1;
        if let Some(done) = rollup.add(m) {
            // Only buckets every minute of which is in the series (one minute is missing from
            // the BTCUSDT series, and the series starts and ends mid-bucket).
            if members == interval_ms / 60_000 && done.open_time_ms == bucket {
                if let Some(want) = exchange.get(&done.open_time_ms) {
                    assert_eq!(
                        (done.open, done.high, done.low, done.close, done.volume),
                        (want.open, want.high, want.low, want.close, want.volume),
                        "{higher}: bucket {}",
                        done.open_time_ms
                    );
                    compared += 1;
                }
            }
        }
    }
    compared
}

#[test]
fn roll_ups_equal_the_exchanges_own_5m_and_1h_klines() {
    let n = rollup_matches(
        "octobot_binance_ETHUSDT_20180716_1m.csv",
        "octobot_binance_ETHUSDT_20180716_5m.csv",
        300_000,
    );
    assert!(n >= 99, "only {n} ETHUSDT 5m buckets compared");
    let n = rollup_matches(
        "octobot_binance_BTCUSDT_20180428_1m.csv",
        "octobot_binance_BTCUSDT_20180428_5m.csv",
        300_000,
    );
    assert!(n >= 98, "only {n} BTCUSDT 5m buckets compared");
    let n = rollup_matches(
        "octobot_binance_ETHUSDT_20180716_1m.csv",
        "octobot_binance_ETHUSDT_20180716_1h.csv",
        3_600_000,
    );
    assert!(n >= 7, "only {n} ETHUSDT 1h buckets compared");
    let n = rollup_matches(
        "octobot_binance_BTCUSDT_20180428_1m.csv",
        "octobot_binance_BTCUSDT_20180428_1h.csv",
        3_600_000,
    );
    assert!(n >= 7, "only {n} BTCUSDT 1h buckets compared");
}
