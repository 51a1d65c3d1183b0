//! Properties of the features over random and adversarial series: always finite and inside
//! their SPEC ranges, and causal (bars after t never change what was computed at t).

mod series;

use aegis_analytics::{Candle, FeatureConfig, FeatureEngine, FeatureSnapshot, NAMES, RANGES};
use proptest::prelude::*;
use series::{candles, shape, step};

fn snapshots(bars: &[Candle]) -> Vec<FeatureSnapshot> {
    let mut engine = FeatureEngine::new(FeatureConfig::default());
    bars.iter().map(|b| *engine.update(b).expect("generated bars are valid")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_feature_is_finite_and_in_range(shape in shape(), steps in prop::collection::vec(step(), 1..400)) {
        for s in snapshots(&candles(shape, &steps)) {
            for ((value, (lo, hi)), name) in s.features.iter().zip(RANGES).zip(NAMES) {
                prop_assert!(value.is_finite(), "{name} = {value} at bar {}", s.bar_index);
                prop_assert!((lo..=hi).contains(value), "{name} = {value} outside [{lo}, {hi}] at bar {}", s.bar_index);
            }
            prop_assert!([-1.0, 0.0, 1.0].contains(&s.features[0]));
            prop_assert!([0.0, 1.0].contains(&s.features[1]) && [0.0, 1.0].contains(&s.features[3]));
            if !s.warm {
                prop_assert!(s.bar_index < FeatureConfig::default().warmup_bars());
            }
        }
    }

    #[test]
    fn features_at_t_ignore_every_bar_after_t(
        shape in shape(),
        steps in prop::collection::vec(step(), 2..400),
        cut in any::<prop::sample::Index>(),
        other_future in prop::collection::vec(step(), 1..50),
    ) {
        let bars = candles(shape, &steps);
        let t = cut.index(bars.len());
        let whole = snapshots(&bars);
        let truncated = snapshots(&bars[..=t]);
        prop_assert_eq!(&whole[..=t], &truncated[..]);
        // A different future: shifted after the cut, with other moves and volumes.
        let mut changed = bars[..=t].to_vec();
        let last_time = changed[t].open_time_ms;
        changed.extend(candles(shape, &other_future).into_iter().enumerate().map(|(i, mut c)| {
            c.open_time_ms = last_time + 60_000 * (i as i64 + 1);
            c
        }));
        let with_other_future = snapshots(&changed);
        prop_assert_eq!(&whole[..=t], &with_other_future[..=t]);
    }
}

proptest! {
    #[test]
    fn any_kline_text_gives_rows_or_errors_never_a_panic(
        text in prop::collection::vec(
            prop::sample::select(vec!["0", "1", "9", ".", ",", "-", "e", "\n", "NaN", "inf", "open_time_ms", " ", "60000", "1e308"]),
            0..200,
        )
    ) {
        use aegis_analytics::kline_csv::KlineReader;
        let text: String = text.concat();
        let mut engine = FeatureEngine::new(FeatureConfig::default());
        for candle in KlineReader::from_reader(std::path::Path::new("fuzz.csv"), text.as_bytes()).flatten() {
            if let Ok(s) = engine.update(&candle) {
                prop_assert!(s.features.iter().all(|f| f.is_finite()));
            }
        }
    }
}

#[test]
fn a_refused_bar_leaves_the_state_untouched() {
    let bars = series::walk(300, 7);
    let mut clean = FeatureEngine::new(FeatureConfig::default());
    let mut dirty = FeatureEngine::new(FeatureConfig::default());
    for (i, bar) in bars.iter().enumerate() {
        let expected = *clean.update(bar).unwrap();
        if i % 17 == 3 {
            let mut bad = *bar;
            bad.high = bad.low / 2.0;
            assert!(dirty.update(&bad).is_err());
            let mut nan = *bar;
            nan.volume = f64::NAN;
            assert!(dirty.update(&nan).is_err());
            let mut stale = *bar;
            stale.open_time_ms -= 60_000;
            assert!(i == 0 || dirty.update(&stale).is_err());
        }
        assert_eq!(*dirty.update(bar).unwrap(), expected, "bar {i}");
    }
}

#[test]
fn memory_per_symbol_is_fixed_and_small() {
    let mut engine = FeatureEngine::new(FeatureConfig::default());
    let before = engine.memory_bytes();
    for bar in series::walk(2_000, 3) {
        engine.update(&bar).unwrap();
    }
    assert_eq!(engine.memory_bytes(), before);
    assert!(before <= 64 * 1024, "{before} bytes per symbol");
}
