//! Drift: permutation feature importance on the test split after each training, and the
//! alerts SPEC §7 asks for.

use crate::data::{Dataset, Part};
use crate::score::log_loss;
use crate::train::test_predictions;
use aegis_wire::weights::{ModelParams, INPUTS, N_IN};

/// `liquidity_grab`'s position among the model inputs (the same as in the feature vector:
/// only `confidence_ensemble`, after it, is left out).
const LIQUIDITY_GRAB_INPUT: usize = aegis_analytics::feature::LIQUIDITY_GRAB;
const _: () = assert!(INPUTS[LIQUIDITY_GRAB_INPUT] == aegis_analytics::feature::LIQUIDITY_GRAB);

/// Per input: how much the test log-loss rises above `base` (the model's own, unshuffled)
/// when that input's test values are shuffled (a fixed shuffle per input, so runs repeat).
pub fn importance(model: &ModelParams, data: &Dataset, base: f64) -> Vec<f64> {
    let tests: Vec<&[f64; 18]> = data
        .sequences
        .iter()
        .flatten()
        .filter(|(_, part)| *part == Part::Test)
        .map(|(s, _)| &s.features)
        .collect();
    (0..N_IN)
        .map(|k| {
            let mut values: Vec<f64> = tests.iter().map(|f| f[INPUTS[k]]).collect();
            shuffle(&mut values, 0x9E37_79B9_7F4A_7C15 ^ k as u64);
            let (p, up, _, _) = test_predictions(model, data, Some((k, &values)));
            log_loss(&p, &up) - base
        })
        .collect()
}

/// Fisher–Yates with a SplitMix64 stream.
fn shuffle(values: &mut [f64], mut seed: u64) {
    for i in (1..values.len()).rev() {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        values.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

/// One drift alert.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftAlert {
    /// `CRITICAL`, `HIGH` or `INFO`.
    pub level: &'static str,
    /// What was seen.
    pub what: String,
}

/// The alerts for `importance` (against the previous model's, if any), given the share of
/// test samples where `liquidity_grab` fired.
pub fn alerts(importance: &[f64], previous: Option<&[f64]>, grab_share: f64) -> Vec<DriftAlert> {
    let mut out = Vec::new();
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
    let rank = order.iter().position(|&k| k == LIQUIDITY_GRAB_INPUT).unwrap_or(usize::MAX);
    if grab_share < 0.02 {
        out.push(DriftAlert {
            level: "INFO",
            what: format!(
                "liquidity_grab fired in {:.2} % of test samples: too rare to rank",
                grab_share * 100.0
            ),
        });
    } else if rank >= 5 {
        out.push(DriftAlert {
            level: "CRITICAL",
            what: format!("liquidity_grab ranks {} by importance (not in the top 5)", rank + 1),
        });
    }
    if let Some(previous) = previous.filter(|p| p.len() == importance.len()) {
        let total: f64 = importance.iter().map(|v| v.max(0.0)).sum();
        for (k, (&now, &before)) in importance.iter().zip(previous).enumerate() {
            let share = if total > 0.0 { now.max(0.0) / total } else { 0.0 };
            let change = if before.abs() > 1e-12 { (now - before).abs() / before.abs() } else { 0.0 };
            if share >= 0.05 && change > 0.30 {
                let name = aegis_analytics::feature::NAMES[aegis_wire::weights::INPUTS[k]];
                out.push(DriftAlert {
                    level: "HIGH",
                    what: format!(
                        "feature {name} importance moved {:.0} % ({before:.5} → {now:.5})",
                        change * 100.0
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_follow_the_rules() {
        let mut imp = vec![0.0; N_IN];
        for (k, v) in imp.iter_mut().enumerate() {
            *v = 0.01 * (N_IN - k) as f64; // input 0 most important; grab (3) ranks 4th
        }
        assert!(alerts(&imp, None, 0.10).is_empty());
        assert_eq!(alerts(&imp, None, 0.01)[0].level, "INFO");
        imp[LIQUIDITY_GRAB_INPUT] = 0.0;
        assert_eq!(alerts(&imp, None, 0.10)[0].level, "CRITICAL");
        let mut moved = imp.clone();
        moved[0] *= 2.0;
        let high = alerts(&moved, Some(&imp), 0.01);
        assert!(
            high.iter().any(|a| a.level == "HIGH" && a.what.contains("feature market_structure")),
            "{high:?}"
        );
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        shuffle(&mut v, 1);
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, (0..100).map(f64::from).collect::<Vec<_>>(), "a permutation");
        assert_ne!(v, sorted);
    }
}
