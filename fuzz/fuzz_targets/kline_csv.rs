//! Kline CSV bytes → rows → the feature engine: errors are fine, panics and non-finite
//! features are not.
#![no_main]

use aegis_analytics::kline_csv::KlineReader;
use aegis_analytics::{FeatureConfig, FeatureEngine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut engine = FeatureEngine::new(FeatureConfig {
        swing_lookback: 2,
        realized_vol_long: 20,
        ..FeatureConfig::default()
    });
    for row in KlineReader::from_reader(std::path::Path::new("fuzz.csv"), data).flatten() {
        if let Ok(snapshot) = engine.update(&row) {
            assert!(snapshot.features.iter().all(|f| f.is_finite()));
        }
    }
});
