//! Scores of probabilistic predictions against labels, and the calibration fit.

use serde_json::{json, Value};

/// Probabilities are kept inside this margin of 0 and 1 for log-loss.
const EPS: f64 = 1e-7;

/// Mean log-loss of `p` (P(up)) against `up` (1 or 0).
pub fn log_loss(p: &[f64], up: &[f32]) -> f64 {
    let n = p.len().max(1) as f64;
    p.iter()
        .zip(up)
        .map(|(&p, &y)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n
}

/// Share of predictions on the right side of 0.5.
pub fn accuracy(p: &[f64], up: &[f32]) -> f64 {
    let right = p.iter().zip(up).filter(|(&p, &y)| (p > 0.5) == (y > 0.5)).count();
    right as f64 / p.len().max(1) as f64
}

/// Area under the ROC curve (ties share their rank); 0.5 when one class is missing.
pub fn auc(p: &[f64], up: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut rank = vec![0.0; p.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            rank[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let positives = up.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = up.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let rank_sum: f64 = rank.iter().zip(up).filter(|(_, &y)| y > 0.5).map(|(r, _)| r).sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Expected calibration error over ten equal-width bins.
pub fn calibration_error(p: &[f64], up: &[f32]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (&p, &y) in p.iter().zip(up) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(y);
        bins[b].2 += 1;
    }
    let n = p.len().max(1) as f64;
    // Σ over bins of (count / n) · |mean p − mean y| = Σ |Σp − Σy| / n.
    bins.iter().map(|(sp, sy, _)| (sp - sy).abs() / n).sum()
}

/// Largest calibration slope or intercept accepted (beyond it the fit chased noise).
const CALIBRATION_BOUND: f64 = 10.0;

/// Platt scaling: `a, b` minimising the log-loss of σ(a·z + b) (Newton's method), bounded;
/// the identity when the fit does not improve on it.
pub fn fit_calibration(z: &[f64], up: &[f32]) -> (f64, f64) {
    let loss = |a: f64, b: f64| {
        let p: Vec<f64> = z.iter().map(|z| 1.0 / (1.0 + (-(a * z + b)).exp())).collect();
        log_loss(&p, up)
    };
    let (a, b) = newton(z, up);
    let (a, b) =
        (a.clamp(-CALIBRATION_BOUND, CALIBRATION_BOUND), b.clamp(-CALIBRATION_BOUND, CALIBRATION_BOUND));
    if loss(a, b) < loss(1.0, 0.0) {
        (a, b)
    } else {
        (1.0, 0.0)
    }
}

fn newton(z: &[f64], up: &[f32]) -> (f64, f64) {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&z, &y) in z.iter().zip(up) {
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let (r, w) = (p - f64::from(y), p * (1.0 - p));
            ga += r * z;
            gb += r;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= da;
        b -= db;
        if !(a.is_finite() && b.is_finite()) {
            return (1.0, 0.0);
        }
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    (a, b)
}

/// The report's block for one set of predictions, with the baselines beside it.
pub fn report(p: &[f64], up: &[f32], base_rate: f64, ret_pred: &[f64], ret: &[f32]) -> Value {
    let base = vec![base_rate; p.len()];
    let mse = |pred: &mut dyn Iterator<Item = f64>| {
        pred.zip(ret).map(|(a, &r)| (a - f64::from(r)).powi(2)).sum::<f64>() / ret.len().max(1) as f64
    };
    json!({
        "samples": p.len(),
        "accuracy": accuracy(p, up),
        "auc": auc(p, up),
        "log_loss": log_loss(p, up),
        "calibration_error": calibration_error(p, up),
        "base_rate": base_rate,
        "base_rate_log_loss": log_loss(&base, up),
        "base_rate_accuracy": accuracy(&base, up),
        "return_mse": mse(&mut ret_pred.iter().copied()),
        "always_flat_return_mse": mse(&mut std::iter::repeat(0.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_agree_with_hand_computed_values() {
        let up = [1.0, 0.0, 1.0, 0.0];
        assert_eq!(auc(&[0.9, 0.1, 0.8, 0.2], &up), 1.0);
        assert_eq!(auc(&[0.1, 0.9, 0.2, 0.8], &up), 0.0);
        assert_eq!(auc(&[0.5; 4], &up), 0.5);
        assert!((log_loss(&[0.5; 4], &up) - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(accuracy(&[0.9, 0.1, 0.4, 0.6], &up), 0.5);
        assert!(calibration_error(&[0.5; 4], &up) < 1e-12, "half up at 0.5: calibrated");
        // Labels drawn with P(up) = σ(2z − 1): Platt finds a ≈ 2, b ≈ −1.
        let z: Vec<f64> = (0..4000).map(|i| (i % 40) as f64 / 10.0 - 2.0).collect();
        let up: Vec<f32> = z
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let p = 1.0 / (1.0 + (-(2.0 * z - 1.0)).exp());
                let u = ((i as f64 * 0.618_033_988_7) % 1.0 + (i / 40) as f64 * 0.013) % 1.0;
                f32::from(u8::from(u < p))
            })
            .collect();
        let (a, b) = fit_calibration(&z, &up);
        assert!((a - 2.0).abs() < 0.3 && (b + 1.0).abs() < 0.3, "{a} {b}");
    }
}
