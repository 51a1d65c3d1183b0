//! The three models in tch, and their export to the weights file's layout.

use aegis_wire::weights::{offset, ModelParams, LSTM_HIDDEN, MLP_HIDDEN, N_IN, N_OUT};
use tch::nn::{self, Module, RNN};
use tch::{Device, Tensor};

/// The return head is trained on percent (×100) and exported in plain fractions.
pub const RETURN_SCALE: f32 = 100.0;

/// The models, each in its own variable store (each has its own optimiser).
pub struct Nets {
    /// Logistic regression parameters.
    pub lr_vs: nn::VarStore,
    /// MLP parameters.
    pub mlp_vs: nn::VarStore,
    /// LSTM parameters.
    pub lstm_vs: nn::VarStore,
    lr: nn::Linear,
    mlp1: nn::Linear,
    mlp2: nn::Linear,
    lstm: nn::LSTM,
    head: nn::Linear,
}

impl Nets {
    /// Freshly initialised models on `device` (seeded by the caller through `tch::manual_seed`).
    pub fn new(device: Device) -> Self {
        let (lr_vs, mlp_vs, lstm_vs) =
            (nn::VarStore::new(device), nn::VarStore::new(device), nn::VarStore::new(device));
        let (f, o, m, h) = (N_IN as i64, N_OUT as i64, MLP_HIDDEN as i64, LSTM_HIDDEN as i64);
        let lr = nn::linear(lr_vs.root() / "lr", f, o, Default::default());
        let mlp1 = nn::linear(mlp_vs.root() / "mlp1", f, m, Default::default());
        let mlp2 = nn::linear(mlp_vs.root() / "mlp2", m, o, Default::default());
        let lstm = nn::lstm(lstm_vs.root() / "lstm", f, h, Default::default());
        let head = nn::linear(lstm_vs.root() / "head", h, o, Default::default());
        Self { lr_vs, mlp_vs, lstm_vs, lr, mlp1, mlp2, lstm, head }
    }

    /// Logistic regression on `[N, F]`: `[N, 2]`.
    pub fn logistic(&self, x: &Tensor) -> Tensor {
        self.lr.forward(x)
    }

    /// MLP on `[N, F]`: `[N, 2]`.
    pub fn mlp(&self, x: &Tensor) -> Tensor {
        self.mlp2.forward(&self.mlp1.forward(x).relu())
    }

    /// LSTM over `[B, T, F]` from `state`: `[B, T, 2]` and the state after the last step.
    pub fn lstm(&self, x: &Tensor, state: &nn::LSTMState) -> (Tensor, nn::LSTMState) {
        let (out, state) = self.lstm.seq_init(x, state);
        (self.head.forward(&out), state)
    }

    /// The LSTM's zero state for `batch` sequences.
    pub fn lstm_zero(&self, batch: i64) -> nn::LSTMState {
        self.lstm.zero_state(batch)
    }

    /// The parameters in the weights file's layout, with the normalisation, ensemble
    /// weights and calibration.
    pub fn export(
        &self,
        generation: u64,
        mean: &[f32; N_IN],
        std: &[f32; N_IN],
        ensemble: [f32; 3],
        calibration: [f32; 2],
    ) -> ModelParams {
        let mut m = ModelParams::zeroed();
        m.generation = generation;
        let p = &mut m.values;
        p[offset::MEAN..offset::MEAN + N_IN].copy_from_slice(mean);
        p[offset::STD..offset::STD + N_IN].copy_from_slice(std);
        let mut put = |vs: &nn::VarStore, name: &str, at: usize, head_rows: Option<usize>| {
            let t = vs.variables()[name].to_device(Device::Cpu).flatten(0, -1);
            let values = Vec::<f32>::try_from(&t).unwrap_or_default();
            p[at..at + values.len()].copy_from_slice(&values);
            if let Some(cols) = head_rows {
                // Row 1 (the return) from percent to fractions.
                for v in &mut p[at + cols..at + 2 * cols] {
                    *v /= RETURN_SCALE;
                }
            }
        };
        put(&self.lr_vs, "lr.weight", offset::LR_W, Some(N_IN));
        put(&self.lr_vs, "lr.bias", offset::LR_B, Some(1));
        put(&self.mlp_vs, "mlp1.weight", offset::MLP_W1, None);
        put(&self.mlp_vs, "mlp1.bias", offset::MLP_B1, None);
        put(&self.mlp_vs, "mlp2.weight", offset::MLP_W2, Some(MLP_HIDDEN));
        put(&self.mlp_vs, "mlp2.bias", offset::MLP_B2, Some(1));
        put(&self.lstm_vs, "lstm.weight_ih_l0", offset::LSTM_WIH, None);
        put(&self.lstm_vs, "lstm.weight_hh_l0", offset::LSTM_WHH, None);
        put(&self.lstm_vs, "lstm.bias_ih_l0", offset::LSTM_BIH, None);
        put(&self.lstm_vs, "lstm.bias_hh_l0", offset::LSTM_BHH, None);
        put(&self.lstm_vs, "head.weight", offset::LSTM_WOUT, Some(LSTM_HIDDEN));
        put(&self.lstm_vs, "head.bias", offset::LSTM_BOUT, Some(1));
        p[offset::ENSEMBLE..offset::ENSEMBLE + 3].copy_from_slice(&ensemble);
        p[offset::CALIBRATION..offset::CALIBRATION + 2].copy_from_slice(&calibration);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_model::forward;

    /// In-brain inference equals libtorch's forward pass on the same weights (SPEC §7).
    #[test]
    fn plain_rust_inference_matches_libtorch_to_1e_5() {
        tch::manual_seed(7);
        let nets = Nets::new(Device::Cpu);
        let mean = [0.0f32; N_IN];
        let std = [1.0f32; N_IN];
        let params = nets.export(1, &mean, &std, [1.0, 1.0, 1.0], [1.0, 0.0]);
        let p = &params.values;
        let steps = 120;
        let x = Tensor::randn([1, steps, N_IN as i64], (tch::Kind::Float, Device::Cpu)).clamp(-4.9, 4.9);
        let (lstm_out, _) = tch::no_grad(|| nets.lstm(&x, &nets.lstm_zero(1)));
        let flat = x.view([steps, N_IN as i64]);
        let lr_out = tch::no_grad(|| nets.logistic(&flat));
        let mlp_out = tch::no_grad(|| nets.mlp(&flat));
        let rows = Vec::<f32>::try_from(&flat.flatten(0, -1)).unwrap();
        let torch = |t: &Tensor| Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap();
        let (lstm_t, lr_t, mlp_t) = (torch(&lstm_out), torch(&lr_out), torch(&mlp_out));
        let mut state = aegis_model::LstmState::default();
        let mut worst = 0.0f32;
        for t in 0..steps as usize {
            let mut features = [0.0f64; 18];
            for (k, &i) in aegis_wire::weights::INPUTS.iter().enumerate() {
                features[i] = f64::from(rows[t * N_IN + k]);
            }
            let xin = forward::normalise(p, &features);
            let ours =
                [forward::logistic(p, &xin), forward::mlp(p, &xin), forward::lstm_step(p, &xin, &mut state)];
            for (model, theirs) in [&lr_t, &mlp_t, &lstm_t].into_iter().enumerate() {
                // Column 0 is the logit as trained; column 1 was exported in fractions.
                let diff_logit = (ours[model][0] - theirs[t * 2]).abs();
                let diff_return = (ours[model][1] - theirs[t * 2 + 1] / RETURN_SCALE).abs();
                worst = worst.max(diff_logit).max(diff_return);
            }
        }
        assert!(worst < 1e-5, "largest difference {worst}");
    }
}
