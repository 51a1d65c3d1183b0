//! The ensemble: the three models' outputs weighted and calibrated into what the policy
//! reads.

use crate::forward::{self, LstmState};
use aegis_wire::weights::{offset, PARAMS};

/// Bars an LSTM is stepped after a reset before its output counts (weight 0 until then).
pub const LSTM_WARMUP_BARS: u32 = 60;

/// One closed bar's prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Calibrated P(up over the label horizon).
    pub p_up: f64,
    /// Expected return over the horizon.
    pub expected_return: f64,
    /// How sure the ensemble is: the calibrated probability of its side, scaled down by the
    /// spread between the models' own probabilities.
    pub confidence: f64,
    /// Each model's P(up): LR, MLP, LSTM.
    pub models: [f64; 3],
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Steps `state` with this bar and combines the models. The LSTM carries no weight until
/// it has seen [`LSTM_WARMUP_BARS`] bars since its last reset.
pub fn predict(p: &[f32; PARAMS], features: &[f64; 18], state: &mut LstmState) -> Prediction {
    let x = forward::normalise(p, features);
    let outputs = [forward::logistic(p, &x), forward::mlp(p, &x), forward::lstm_step(p, &x, state)];
    let mut weights = [p[offset::ENSEMBLE], p[offset::ENSEMBLE + 1], p[offset::ENSEMBLE + 2]]
        .map(|w| f64::from(w.max(0.0)));
    if state.bars <= LSTM_WARMUP_BARS {
        weights[2] = 0.0;
    }
    let total: f64 = weights.iter().sum();
    let weights = if total > 0.0 { weights.map(|w| w / total) } else { [0.5, 0.5, 0.0] };
    let logit: f64 = outputs.iter().zip(weights).map(|(o, w)| f64::from(o[0]) * w).sum();
    let expected_return: f64 = outputs.iter().zip(weights).map(|(o, w)| f64::from(o[1]) * w).sum();
    let p_up = sigmoid(f64::from(p[offset::CALIBRATION]) * logit + f64::from(p[offset::CALIBRATION + 1]));
    let models = outputs.map(|o| sigmoid(f64::from(o[0])));
    let active = models.iter().zip(weights).filter(|(_, w)| *w > 0.0).map(|(m, _)| *m);
    let (low, high) = active.fold((1.0f64, 0.0f64), |(lo, hi), m| (lo.min(m), hi.max(m)));
    let spread = (high - low).max(0.0);
    let confidence = (p_up.max(1.0 - p_up) * (1.0 - spread)).clamp(0.0, 1.0);
    Prediction { p_up, expected_return, confidence, models }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_wire::weights::ModelParams;

    #[test]
    fn the_lstm_carries_no_weight_while_it_warms_up() {
        let mut m = ModelParams::zeroed();
        let p = &mut m.values;
        for k in 0..aegis_wire::weights::N_IN {
            p[offset::STD + k] = 1.0;
        }
        p[offset::LR_B] = 1.0; // LR says up
        p[offset::MLP_B2] = 1.0; // MLP says up
        p[offset::LSTM_BOUT] = -3.0; // LSTM says down
        p[offset::ENSEMBLE..offset::ENSEMBLE + 3].copy_from_slice(&[1.0, 1.0, 1.0]);
        p[offset::CALIBRATION] = 1.0;
        let mut state = LstmState::default();
        let features = [0.0; 18];
        let warming = predict(p, &features, &mut state);
        assert!((warming.p_up - sigmoid(1.0)).abs() < 1e-9, "LR and MLP only: {warming:?}");
        for _ in 0..LSTM_WARMUP_BARS {
            predict(p, &features, &mut state);
        }
        let warm = predict(p, &features, &mut state);
        assert!(warm.p_up < warming.p_up && warm.confidence < warming.confidence, "{warm:?}");
        state.reset();
        assert_eq!(predict(p, &features, &mut state).p_up, warming.p_up);
    }
}
