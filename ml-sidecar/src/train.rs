//! One training run: the three models fitted on the training part, their ensemble weights
//! and calibration on validation, then the exported model and the previous one scored on
//! test with the brain's own inference, and the decision to publish.

use crate::data::{Dataset, Part};
use crate::net::{Nets, RETURN_SCALE};
use crate::score;
use aegis_model::{predict, LstmState};
use aegis_wire::weights::{ModelParams, N_IN};
use serde_json::{json, Value};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// How a run trains.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Where libtorch computes.
    pub device: Device,
    /// The oldest share of samples that trains.
    pub train_share: f64,
    /// The next share, for ensemble weights and calibration.
    pub validation_share: f64,
    /// Full-batch Adam steps of the logistic regression.
    pub lr_steps: usize,
    /// Full-batch Adam steps of the MLP.
    pub mlp_steps: usize,
    /// Passes of truncated back-propagation over the LSTM's sequences.
    pub lstm_epochs: usize,
    /// Bars per truncated back-propagation chunk (state carried between chunks).
    pub chunk: i64,
    /// libtorch's random seed.
    pub seed: i64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            device: Device::cuda_if_available(),
            train_share: 0.6,
            validation_share: 0.2,
            lr_steps: 300,
            mlp_steps: 400,
            lstm_epochs: 6,
            chunk: 60,
            seed: 1,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exported model (published or kept as rejected).
    pub model: ModelParams,
    /// The JSON report written beside it.
    pub report: Value,
    /// Whether it beat both the previous model and the base rate on test.
    pub publish: bool,
    /// Why it was or was not published.
    pub reason: String,
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A split has no samples.
    #[error("the {0} split is empty")]
    EmptySplit(&'static str),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Test-split predictions of `model` by the brain's inference (each symbol's LSTM stepped
/// from zero over its whole sequence, as the brain would have): P(up), label, predicted
/// and actual return. `permute` swaps one input's test values (drift).
pub fn test_predictions(
    model: &ModelParams,
    data: &Dataset,
    permute: Option<(usize, &[f64])>,
) -> (Vec<f64>, Vec<f32>, Vec<f64>, Vec<f32>) {
    let (mut p, mut up, mut rp, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut k = 0;
    for seq in &data.sequences {
        let mut state = LstmState::default();
        for (s, part) in seq {
            let mut features = s.features;
            if *part == Part::Test {
                if let Some((input, values)) = permute {
                    features[aegis_wire::weights::INPUTS[input]] = values[k];
                }
                k += 1;
            }
            let out = predict(&model.values, &features, &mut state);
            if *part == Part::Test {
                p.push(out.p_up);
                up.push(s.up);
                rp.push(out.expected_return);
                r.push(s.ret);
            }
        }
    }
    (p, up, rp, r)
}

fn tensor_2d(rows: &[[f32; N_IN]], device: Device) -> Tensor {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).view([rows.len() as i64, N_IN as i64]).to_device(device)
}

/// BCE on column 0 against `up`, MSE on column 1 against `ret` (percent), weighted by `mask`.
fn loss(out: &Tensor, up: &Tensor, ret: &Tensor, mask: &Tensor) -> Tensor {
    let logit = out.select(-1, 0);
    let predicted = out.select(-1, 1);
    let bce = logit.binary_cross_entropy_with_logits::<&Tensor>(up, Some(mask), None, Reduction::Sum);
    let mse = ((predicted - ret).square() * mask).sum(Kind::Float);
    (bce + mse) / mask.sum(Kind::Float).clamp_min(1.0)
}

/// Trains, scores and decides. `previous` is the model serving now (scored on the same test
/// split); `progress` sees a line per phase.
pub fn train(
    data: &Dataset,
    config: &TrainConfig,
    previous: Option<&ModelParams>,
    generation: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, TrainError> {
    let started = std::time::Instant::now();
    tch::manual_seed(config.seed);
    let device = config.device;
    let counts = data.counts();
    for (n, name) in counts.iter().zip(["train", "validation", "test"]) {
        if *n == 0 {
            return Err(TrainError::EmptySplit(name));
        }
    }
    let nets = Nets::new(device);
    // Flat training rows for LR and MLP.
    let pick = |part: Part| -> (Vec<[f32; N_IN]>, Vec<f32>, Vec<f32>) {
        let rows = data.sequences.iter().flatten().filter(|(_, p)| *p == part);
        let mut x = Vec::new();
        let (mut up, mut ret) = (Vec::new(), Vec::new());
        for (s, _) in rows {
            x.push(data.normalise(&s.x));
            up.push(s.up);
            ret.push(s.ret * RETURN_SCALE);
        }
        (x, up, ret)
    };
    let (x, up, ret) = pick(Part::Train);
    let (x, up, ret) = (
        tensor_2d(&x, device),
        Tensor::from_slice(&up).to_device(device),
        Tensor::from_slice(&ret).to_device(device),
    );
    let ones = up.ones_like();
    for (name, vs, steps, rate) in [
        ("logistic regression", &nets.lr_vs, config.lr_steps, 0.05),
        ("MLP", &nets.mlp_vs, config.mlp_steps, 0.01),
    ] {
        let mut opt = nn::Adam::default().build(vs, rate)?;
        let mut last = 0.0;
        for _ in 0..steps {
            let out = if name == "MLP" { nets.mlp(&x) } else { nets.logistic(&x) };
            let l = loss(&out, &up, &ret, &ones);
            opt.backward_step(&l);
            last = f64::try_from(&l).unwrap_or(f64::NAN);
        }
        progress(&format!("{name}: {steps} steps, training loss {last:.4}"));
    }
    // The LSTM: every symbol's sequence as one batch row, padded at the end.
    let t_max = data.sequences.iter().map(Vec::len).max().unwrap_or(0);
    let s_n = data.sequences.len();
    let mut xs = vec![0.0f32; s_n * t_max * N_IN];
    let (mut ys, mut rs) = (vec![0.0f32; s_n * t_max], vec![0.0f32; s_n * t_max]);
    let mut masks = [vec![0.0f32; s_n * t_max], vec![0.0f32; s_n * t_max], vec![0.0f32; s_n * t_max]];
    for (i, seq) in data.sequences.iter().enumerate() {
        for (t, (s, part)) in seq.iter().enumerate() {
            let at = i * t_max + t;
            xs[at * N_IN..(at + 1) * N_IN].copy_from_slice(&data.normalise(&s.x));
            ys[at] = s.up;
            rs[at] = s.ret * RETURN_SCALE;
            masks[*part as usize][at] = 1.0;
        }
    }
    let shape = [s_n as i64, t_max as i64];
    let xs = Tensor::from_slice(&xs).view([s_n as i64, t_max as i64, N_IN as i64]).to_device(device);
    let ys = Tensor::from_slice(&ys).view(shape).to_device(device);
    let rs = Tensor::from_slice(&rs).view(shape).to_device(device);
    let train_mask = Tensor::from_slice(&masks[0]).view(shape).to_device(device);
    let train_end =
        data.sequences.iter().map(|q| q.iter().filter(|(_, p)| *p == Part::Train).count()).max().unwrap_or(0)
            as i64;
    let mut opt = nn::Adam::default().build(&nets.lstm_vs, 0.01)?;
    for epoch in 0..config.lstm_epochs {
        let mut state = nets.lstm_zero(s_n as i64);
        let (mut total, mut chunks) = (0.0, 0);
        let mut start = 0;
        while start < train_end {
            let len = config.chunk.min(t_max as i64 - start);
            let (out, next) = nets.lstm(&xs.narrow(1, start, len), &state);
            let l = loss(
                &out,
                &ys.narrow(1, start, len),
                &rs.narrow(1, start, len),
                &train_mask.narrow(1, start, len),
            );
            opt.backward_step(&l);
            total += f64::try_from(&l).unwrap_or(f64::NAN);
            chunks += 1;
            // Truncated back-propagation: the state carries on, its history does not.
            let (h, c) = &next.0;
            state = nn::LSTMState((h.detach(), c.detach()));
            start += len;
        }
        progress(&format!(
            "LSTM: epoch {}/{}, {chunks} chunks of {} bars, mean loss {:.4}",
            epoch + 1,
            config.lstm_epochs,
            config.chunk,
            total / chunks.max(1) as f64
        ));
    }
    // Validation: each model's log-loss, the ensemble weights and the calibration.
    let (vx, vup, _) = pick(Part::Validation);
    let vx = tensor_2d(&vx, device);
    let (lstm_all, _) = tch::no_grad(|| nets.lstm(&xs, &nets.lstm_zero(s_n as i64)));
    let val_mask = Tensor::from_slice(&masks[1]).view(shape).to_device(device).to_kind(Kind::Bool);
    let logits =
        |t: Tensor| Vec::<f32>::try_from(&t.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
    let lr_val = logits(tch::no_grad(|| nets.logistic(&vx)).select(1, 0));
    let mlp_val = logits(tch::no_grad(|| nets.mlp(&vx)).select(1, 0));
    // LSTM outputs at validation positions, in the same (symbol, time) order as `pick`.
    let lstm_val = logits(lstm_all.select(-1, 0).masked_select(&val_mask));
    let base = f64::from(data.base_rate);
    let base_ll = score::log_loss(&vec![base; vup.len()], &vup);
    let sig = |z: f32| 1.0 / (1.0 + (-f64::from(z)).exp());
    let model_ll: Vec<f64> = [&lr_val, &mlp_val, &lstm_val]
        .iter()
        .map(|l| score::log_loss(&l.iter().map(|&z| sig(z)).collect::<Vec<_>>(), &vup))
        .collect();
    let mut weights: Vec<f64> = model_ll.iter().map(|ll| (base_ll - ll).max(0.0)).collect();
    if weights.iter().sum::<f64>() <= 0.0 {
        weights = vec![1.0; 3];
    }
    let total: f64 = weights.iter().sum();
    let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let z: Vec<f64> = (0..vup.len())
        .map(|i| {
            weights[0] * f64::from(lr_val[i])
                + weights[1] * f64::from(mlp_val[i])
                + weights[2] * f64::from(lstm_val[i])
        })
        .collect();
    let (a, b) = score::fit_calibration(&z, &vup);
    progress(&format!("validation log-loss: LR {:.4}, MLP {:.4}, LSTM {:.4}, base rate {base_ll:.4}; ensemble weights {weights:.3?}; calibration a {a:.3} b {b:.3}", model_ll[0], model_ll[1], model_ll[2]));
    let model = nets.export(
        generation,
        &data.mean,
        &data.std,
        [weights[0] as f32, weights[1] as f32, weights[2] as f32],
        [a as f32, b as f32],
    );
    // Test: the brain's inference on the new model and on the one serving now.
    let (p, tup, rp, r) = test_predictions(&model, data, None);
    let test = score::report(&p, &tup, base, &rp, &r);
    let previous_ll = previous.map(|m| {
        let (pp, pup, _, _) = test_predictions(m, data, None);
        score::log_loss(&pp, &pup)
    });
    let ll = score::log_loss(&p, &tup);
    let base_test_ll = test["base_rate_log_loss"].as_f64().unwrap_or(f64::NAN);
    let (publish, reason) = if let Some(i) = p.iter().position(|v| !v.is_finite()) {
        (false, format!("refused: the model's output is not finite on test sample {i}"))
    } else if ll >= base_test_ll {
        (false, format!("rejected: test log-loss {ll:.5} does not beat the base rate's {base_test_ll:.5}"))
    } else if let Some(prev) = previous_ll.filter(|prev| ll >= *prev) {
        (false, format!("rejected: test log-loss {ll:.5} does not beat the serving model's {prev:.5}"))
    } else {
        (
            true,
            format!(
                "published: test log-loss {ll:.5} beats the base rate's {base_test_ll:.5}{}",
                previous_ll.map_or(String::new(), |p| format!(" and the serving model's {p:.5}"))
            ),
        )
    };
    progress(&reason);
    let report = json!({
        "generation": generation,
        "device": format!("{device:?}"),
        "seconds": started.elapsed().as_secs_f64(),
        "samples": {"train": counts[0], "validation": counts[1], "test": counts[2], "symbols": data.sequences.len()},
        "validation": {
            "log_loss": {"lr": model_ll[0], "mlp": model_ll[1], "lstm": model_ll[2], "base_rate": base_ll},
            "ensemble_weights": {"lr": weights[0], "mlp": weights[1], "lstm": weights[2]},
            "calibration": {"a": a, "b": b},
        },
        "test": test,
        "previous_test_log_loss": previous_ll,
        "published": publish,
        "reason": reason,
    });
    Ok(Outcome { model, report, publish, reason })
}
