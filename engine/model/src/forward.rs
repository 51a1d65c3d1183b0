//! The three models' forward passes over a slot's parameters.

use aegis_wire::weights::{offset, INPUTS, LSTM_HIDDEN as H, MLP_HIDDEN as M, N_IN as F, N_OUT as O, PARAMS};

/// One symbol's LSTM state, stepped once per closed bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmState {
    /// Hidden state.
    pub h: [f32; H],
    /// Cell state.
    pub c: [f32; H],
    /// Bars stepped since the last reset (the model's warm-up).
    pub bars: u32,
}

impl Default for LstmState {
    fn default() -> Self {
        Self { h: [0.0; H], c: [0.0; H], bars: 0 }
    }
}

impl LstmState {
    /// Back to zero state (after a model swap).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Z-scores beyond this many standard deviations are clipped (a regime the training split
/// never saw must not produce unbounded logits).
pub const CLIP: f32 = 5.0;

/// The model inputs: the used features, z-scored with the training split's statistics and
/// clipped to ±[`CLIP`].
pub fn normalise(p: &[f32; PARAMS], features: &[f64; 18]) -> [f32; F] {
    let mut x = [0.0f32; F];
    for (k, &i) in INPUTS.iter().enumerate() {
        let std = p[offset::STD + k];
        let value = features[i] as f32 - p[offset::MEAN + k];
        x[k] = if std > 0.0 { (value / std).clamp(-CLIP, CLIP) } else { 0.0 };
    }
    x
}

/// `y = W x + b` for a row-major `W` of `N × K` at `w` and `b` at `b`.
fn linear<const K: usize, const N: usize>(p: &[f32; PARAMS], w: usize, b: usize, x: &[f32; K]) -> [f32; N] {
    let mut y = [0.0f32; N];
    for (n, out) in y.iter_mut().enumerate() {
        let row = &p[w + n * K..w + (n + 1) * K];
        *out = row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + p[b + n];
    }
    y
}

/// The logistic regression: `[logit, expected return]`.
pub fn logistic(p: &[f32; PARAMS], x: &[f32; F]) -> [f32; O] {
    linear::<F, O>(p, offset::LR_W, offset::LR_B, x)
}

/// The MLP (one ReLU hidden layer): `[logit, expected return]`.
pub fn mlp(p: &[f32; PARAMS], x: &[f32; F]) -> [f32; O] {
    let mut hidden = linear::<F, M>(p, offset::MLP_W1, offset::MLP_B1, x);
    for v in &mut hidden {
        *v = v.max(0.0);
    }
    linear::<M, O>(p, offset::MLP_W2, offset::MLP_B2, &hidden)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM step from `state` (updated in place), then its head: `[logit, expected return]`.
pub fn lstm_step(p: &[f32; PARAMS], x: &[f32; F], state: &mut LstmState) -> [f32; O] {
    let from_input = linear::<F, { 4 * H }>(p, offset::LSTM_WIH, offset::LSTM_BIH, x);
    let from_state = linear::<H, { 4 * H }>(p, offset::LSTM_WHH, offset::LSTM_BHH, &state.h);
    for j in 0..H {
        let gate = |g: usize| from_input[g * H + j] + from_state[g * H + j];
        let (i, f, g, o) = (sigmoid(gate(0)), sigmoid(gate(1)), gate(2).tanh(), sigmoid(gate(3)));
        state.c[j] = f * state.c[j] + i * g;
        state.h[j] = o * state.c[j].tanh();
    }
    state.bars = state.bars.saturating_add(1);
    linear::<H, O>(p, offset::LSTM_WOUT, offset::LSTM_BOUT, &state.h)
}
