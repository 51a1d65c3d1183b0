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
    /// Passes of truncated back-propagation over the LSTM's sequences (the one best on
    /// validation is kept).
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
            lstm_epochs: 20,
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

/// BCE on column 0 against `up` weighted by `weight`, plus MSE on column 1 against `ret`
/// (percent) over the rows `ret_mask` selects; each a weighted mean.
fn loss(out: &Tensor, up: &Tensor, ret: &Tensor, weight: &Tensor, ret_mask: &Tensor) -> Tensor {
    let logit = out.select(-1, 0);
    let predicted = out.select(-1, 1);
    let bce = logit.binary_cross_entropy_with_logits::<&Tensor>(up, Some(weight), None, Reduction::Sum);
    let mse = ((predicted - ret).square() * ret_mask).sum(Kind::Float);
    bce / weight.sum(Kind::Float).clamp_min(1.0) + mse / ret_mask.sum(Kind::Float).clamp_min(1.0)
}

/// Flat rows for LR and MLP: normalised inputs, labels, returns (percent), BCE weights, and
/// which rows have a return.
struct Rows {
    x: Tensor,
    up: Tensor,
    ret: Tensor,
    weight: Tensor,
    ret_mask: Tensor,
}

impl Rows {
    /// The bar samples of `part`, in (symbol, time) order; with `trades`, also the closed
    /// trades, weighted by |reward| and without a return (they have no forward return).
    fn new(data: &Dataset, part: Part, trades: bool, device: Device) -> Self {
        let (mut x, mut up, mut ret, mut weight, mut ret_mask) = (vec![], vec![], vec![], vec![], vec![]);
        for (s, _) in data.sequences.iter().flatten().filter(|(_, p)| *p == part) {
            x.push(data.normalise(&s.x));
            up.push(s.up);
            ret.push(s.ret * RETURN_SCALE);
            weight.push(1.0);
            ret_mask.push(1.0);
        }
        for t in data.trades.iter().filter(|_| trades) {
            x.push(data.normalise(&t.x));
            up.push(t.up);
            ret.push(0.0);
            weight.push(t.weight);
            ret_mask.push(0.0);
        }
        let on_device = |v: &[f32]| Tensor::from_slice(v).to_device(device);
        Self {
            x: tensor_2d(&x, device),
            up: on_device(&up),
            ret: on_device(&ret),
            weight: on_device(&weight),
            ret_mask: on_device(&ret_mask),
        }
    }
}

/// Mean BCE of `logits` against `up`.
fn bce(logits: &Tensor, up: &Tensor) -> f64 {
    let l = logits.binary_cross_entropy_with_logits::<Tensor>(up, None, None, Reduction::Mean);
    f64::try_from(&l).unwrap_or(f64::NAN)
}

/// The parameters a model had when its validation loss was lowest (early stopping: more
/// steps only fit the training part's noise once validation stops improving).
struct Best {
    loss: f64,
    at: usize,
    params: Vec<(String, Tensor)>,
}

impl Best {
    fn new() -> Self {
        Self { loss: f64::INFINITY, at: 0, params: Vec::new() }
    }

    /// Keeps a copy of `vs` if `loss` (after `at` steps or epochs) is the lowest yet.
    fn offer(&mut self, vs: &nn::VarStore, loss: f64, at: usize) {
        if loss < self.loss {
            self.loss = loss;
            self.at = at;
            self.params = vs.variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect();
        }
    }

    /// Puts the kept parameters back into `vs`.
    fn restore(&self, vs: &nn::VarStore) {
        let mut live = vs.variables();
        tch::no_grad(|| {
            for (name, kept) in &self.params {
                if let Some(v) = live.get_mut(name) {
                    v.copy_(kept);
                }
            }
        });
    }
}

/// Full-batch Adam on `train`, checked on `validation` every 10 steps; ends on the best.
fn fit_flat(
    name: &str,
    vs: &nn::VarStore,
    forward: &dyn Fn(&Tensor) -> Tensor,
    (steps, rate): (usize, f64),
    (train, validation): (&Rows, &Rows),
    progress: &mut dyn FnMut(&str),
) -> Result<(), TrainError> {
    let mut opt = nn::Adam::default().build(vs, rate)?;
    let mut best = Best::new();
    let mut last = f64::NAN;
    for step in 1..=steps {
        let l = loss(&forward(&train.x), &train.up, &train.ret, &train.weight, &train.ret_mask);
        opt.backward_step(&l);
        last = f64::try_from(&l).unwrap_or(f64::NAN);
        if step % 10 == 0 || step == steps {
            let logits = tch::no_grad(|| forward(&validation.x)).select(-1, 0);
            best.offer(vs, bce(&logits, &validation.up), step);
        }
    }
    best.restore(vs);
    progress(&format!(
        "{name}: {steps} steps, training loss {last:.4}; kept step {} (validation log-loss {:.4})",
        best.at, best.loss
    ));
    Ok(())
}

/// Every symbol's sequence as one batch row, padded at the end: inputs, labels, returns,
/// and a mask per part.
struct Sequences {
    x: Tensor,
    up: Tensor,
    ret: Tensor,
    masks: [Tensor; 3],
    /// Steps up to the last training sample of any symbol.
    train_end: i64,
}

impl Sequences {
    fn new(data: &Dataset, device: Device) -> Self {
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
                // A purged sample is stepped through (its features are no leak) but counts
                // in no part.
                if let Some(mask) = masks.get_mut(*part as usize) {
                    mask[at] = 1.0;
                }
            }
        }
        let shape = [s_n as i64, t_max as i64];
        let on_device = |v: &[f32]| Tensor::from_slice(v).view(shape).to_device(device);
        let train_end = data
            .sequences
            .iter()
            .map(|q| q.iter().filter(|(_, p)| *p == Part::Train).count())
            .max()
            .unwrap_or(0) as i64;
        Self {
            x: Tensor::from_slice(&xs).view([s_n as i64, t_max as i64, N_IN as i64]).to_device(device),
            up: on_device(&ys),
            ret: on_device(&rs),
            masks: masks.map(|m| on_device(&m)),
            train_end,
        }
    }

    /// The LSTM's outputs over every whole sequence from zero state.
    fn run(&self, nets: &Nets) -> Tensor {
        tch::no_grad(|| nets.lstm(&self.x, &nets.lstm_zero(self.x.size()[0])).0)
    }

    /// The values of a `[symbols, steps]` tensor at `part`'s positions, in (symbol, time)
    /// order (the order of [`Rows`]).
    fn at(&self, t: &Tensor, part: Part) -> Tensor {
        t.masked_select(&self.masks[part as usize].to_kind(Kind::Bool))
    }

    /// The LSTM's logits at `part`'s positions, from zero state over whole sequences.
    fn logits_at(&self, nets: &Nets, part: Part) -> Tensor {
        self.at(&self.run(nets).select(-1, 0), part)
    }
}

/// Truncated back-propagation in `chunk`-bar pieces with the state carried (detached)
/// between them; checked on validation after every epoch; ends on the best epoch.
fn fit_lstm(
    nets: &Nets,
    seq: &Sequences,
    config: &TrainConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<(), TrainError> {
    let mut opt = nn::Adam::default().build(&nets.lstm_vs, 0.01)?;
    let mut best = Best::new();
    let validation_up = seq.at(&seq.up, Part::Validation);
    let t_max = seq.x.size()[1];
    for epoch in 1..=config.lstm_epochs {
        let mut state = nets.lstm_zero(seq.x.size()[0]);
        let (mut total, mut chunks) = (0.0, 0);
        let mut start = 0;
        while start < seq.train_end {
            let len = config.chunk.min(t_max - start);
            let (out, next) = nets.lstm(&seq.x.narrow(1, start, len), &state);
            let mask = seq.masks[Part::Train as usize].narrow(1, start, len);
            let l = loss(&out, &seq.up.narrow(1, start, len), &seq.ret.narrow(1, start, len), &mask, &mask);
            opt.backward_step(&l);
            total += f64::try_from(&l).unwrap_or(f64::NAN);
            chunks += 1;
            // Truncated back-propagation: the state carries on, its history does not.
            let (h, c) = &next.0;
            state = nn::LSTMState((h.detach(), c.detach()));
            start += len;
        }
        let validation = bce(&seq.logits_at(nets, Part::Validation), &validation_up);
        best.offer(&nets.lstm_vs, validation, epoch);
        progress(&format!(
            "LSTM: epoch {epoch}/{}, {chunks} chunks of {} bars, mean loss {:.4}, validation log-loss {validation:.4}",
            config.lstm_epochs,
            config.chunk,
            total / chunks.max(1) as f64
        ));
    }
    best.restore(&nets.lstm_vs);
    progress(&format!("LSTM: kept epoch {} (validation log-loss {:.4})", best.at, best.loss));
    Ok(())
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
    // LR and MLP also learn from closed trades, weighted by |reward|.
    let train_rows = Rows::new(data, Part::Train, true, device);
    let validation_rows = Rows::new(data, Part::Validation, false, device);
    let rows = (&train_rows, &validation_rows);
    fit_flat(
        "logistic regression",
        &nets.lr_vs,
        &|x| nets.logistic(x),
        (config.lr_steps, 0.05),
        rows,
        progress,
    )?;
    fit_flat("MLP", &nets.mlp_vs, &|x| nets.mlp(x), (config.mlp_steps, 0.01), rows, progress)?;
    let seq = Sequences::new(data, device);
    fit_lstm(&nets, &seq, config, progress)?;
    // Validation: each model's log-loss, the ensemble weights and the calibration.
    let logits =
        |t: Tensor| Vec::<f32>::try_from(&t.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
    let lr_val = logits(tch::no_grad(|| nets.logistic(&validation_rows.x)).select(1, 0));
    let mlp_val = logits(tch::no_grad(|| nets.mlp(&validation_rows.x)).select(1, 0));
    // LSTM outputs at validation positions, in the same (symbol, time) order as the rows.
    let lstm_val = logits(seq.logits_at(&nets, Part::Validation));
    let vup = Vec::<f32>::try_from(&validation_rows.up.to_device(Device::Cpu)).unwrap_or_default();
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
        "samples": {
            "train": counts[0],
            "validation": counts[1],
            "test": counts[2],
            "purged": counts[3],
            "symbols": data.sequences.len(),
            "trades": data.trades.len(),
            "trade_weight": data.trades.iter().map(|t| f64::from(t.weight)).sum::<f64>(),
        },
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
