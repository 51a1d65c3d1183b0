//! Indicators against TA-Lib (an independent C implementation, run through its Python
//! wheel) on every shared kline series, and `aegis features` end to end.

mod common;

use aegis_analytics::kline_csv::KlineReader;
use aegis_analytics::{FeatureConfig, FeatureEngine};
use common::{repo, shared_data};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kline_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared_data().join("klines"))
        .expect("shared/data/klines")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// TA-Lib's values per bar: rsi14, atr14, ema12, ema26, sma20_volume (`None` during warm-up).
fn talib(file: &Path) -> Vec<(i64, [Option<f64>; 5])> {
    let out = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/python/talib_reference.py"))
        .arg(file)
        .output()
        .expect("run .venv/bin/python (scripts/setup.sh creates it)");
    assert!(out.status.success(), "talib_reference.py: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let time = fields.next().unwrap().parse().unwrap();
            let values = std::array::from_fn(|_| {
                let f = fields.next().unwrap();
                (!f.is_empty()).then(|| f.parse::<f64>().unwrap())
            });
            (time, values)
        })
        .collect()
}

#[test]
fn rsi_atr_ema_and_volume_sma_agree_with_ta_lib_on_every_shared_series() {
    let names = ["rsi14", "atr14", "ema12", "ema26", "sma20_volume"];
    let mut compared = 0;
    for file in kline_files() {
        let reference = talib(&file);
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        let ours: Vec<_> = KlineReader::open(&file)
            .unwrap()
            .map(|c| {
                let s = *engine.update(&c.unwrap()).unwrap();
                let r = s.raw;
                (s.open_time_ms, [r.rsi14, r.atr14, r.ema12, r.ema26, r.sma20_volume])
            })
            .collect();
        assert_eq!(ours.len(), reference.len(), "{}", file.display());
        for ((time, values), (ref_time, expected)) in ours.iter().zip(&reference) {
            assert_eq!(time, ref_time);
            for ((name, got), want) in names.iter().zip(values).zip(expected) {
                match (got, want) {
                    (Some(got), Some(want)) => {
                        let scale = got.abs().max(want.abs());
                        assert!(
                            (got - want).abs() <= 1e-9 * scale,
                            "{} {time} {name}: ours {got}, TA-Lib {want}",
                            file.display()
                        );
                        compared += 1;
                    }
                    (None, None) => {}
                    _ => panic!(
                        "{} {time} {name}: ours {got:?}, TA-Lib {want:?} (warm-up differs)",
                        file.display()
                    ),
                }
            }
        }
    }
    // Six series of ~500 bars, five indicators each, minus warm-ups.
    assert!(compared > 14_000, "only {compared} values compared");
}

fn aegis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aegis"))
}

#[test]
fn aegis_features_writes_one_row_per_bar_with_the_spec_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.csv");
    let input = shared_data().join("klines/octobot_binance_ETHUSDT_20180716_1m.csv");
    let status = aegis().arg("features").arg(&input).arg("--out").arg(&out).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["open_time_ms", "warm", "market_structure"]);
    assert_eq!(header[19], "trade_intensity");
    assert_eq!(&header[20..25], ["rsi14", "atr14", "ema12", "ema26", "sma20_volume"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 500);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let warm_from = rows.iter().position(|r| r[1] == "1").unwrap();
    assert_eq!(warm_from, 240, "warm after 241 bars (240 returns for realized_vol_ratio)");
    // No order flow in this file: the microstructure block stays neutral.
    assert!(rows.iter().all(|r| r[14..18] == ["0", "0", "0", "0"] && r[19] == "1"));
}

#[test]
fn aegis_features_names_file_line_and_reason_of_a_bad_bar() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(
        &input,
        "open_time_ms,open,high,low,close,volume\n0,1,2,1,1.5,3\n60000,1,2,1,1.5,3\n60000,1,2,1,1.5,3\n120000,1,2,1,1.5,-1\n180000,1,2,1,1.5,3\n",
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    let strict = aegis().arg("features").arg(&input).arg("--out").arg(&out).output().unwrap();
    assert!(!strict.status.success());
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains("bad.csv:4: open time 60000 does not come after the previous bar's 60000"),
        "{stderr}"
    );
    // The rows accepted before it are kept.
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3);

    let lenient =
        aegis().arg("features").arg(&input).arg("--out").arg(&out).arg("--skip-bad").output().unwrap();
    assert!(lenient.status.success());
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(stderr.contains("bad.csv:5: volume -1 is negative"), "{stderr}");
    assert!(stderr.contains("3 bars, 0 warm (warm-up 241 bars), 2 refused"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 4);
}

/// `aegis features --config FILE` loads and checks the whole config before anything else.
fn with_config(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aegis.toml");
    std::fs::write(&config, text).unwrap();
    let input = shared_data().join("klines/nautilus_ADABTC-1m-2021-11-27.csv");
    aegis()
        .arg("features")
        .arg(&input)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("o.csv"))
        .output()
        .unwrap()
}

#[test]
fn both_shipped_configs_pass_the_checks() {
    for name in ["default.toml", "live-binance.toml"] {
        let text = std::fs::read_to_string(repo().join("config").join(name)).unwrap();
        let out = with_config(&text);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn config_mistakes_are_refused_naming_the_key() {
    let default = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let cases = [
        ("capacity = 65536", "capacity = 1000", "ring.capacity: 1000 is not a power of two"),
        (
            "max_streams_per_connection = 200",
            "max_streams_per_connection = 300",
            "exchange.max_streams_per_connection: 300",
        ),
        ("cores = [0]", "cores = [0]\nidel = \"spin\"", "unknown field `idel`"),
        ("count = 1", "count = 2", "shards.cores: 1 core(s) for 2 shards"),
        ("idle = \"spin-then-park\"", "idle = \"spinning\"", "shards.idle: \"spinning\" is not one of"),
        ("swing_lookback = 5", "swing_lookback = 0", "features.swing_lookback: 0 is outside 1..=4096"),
        (
            "reconnect_initial = \"100ms\"",
            "reconnect_initial = \"1m\"",
            "exchange.reconnect_initial: 60s must be positive and at most",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(default.contains(from), "the default config has {from:?}");
        let out = with_config(&default.replacen(from, to, 1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(expected), "{to:?}: {stderr}");
    }
    let shared = default
        .replacen("allow_shared_cores = true", "allow_shared_cores = false", 1)
        .replacen("core = 1", "core = 0", 1);
    let stderr = String::from_utf8_lossy(&with_config(&shared).stderr).to_string();
    assert!(stderr.contains("brain.core: core 0 is also a shard's"), "{stderr}");
}
