//! Training data: the experience log's bar samples, split walk-forward by time, and its
//! closed trades as extra training samples weighted by their reward (SPEC §7).

use aegis_wire::experience::{
    capacity_of, BarSample, RingFileError, RingReader, TradeExperience, SAMPLE_WORDS, TRADE_WORDS,
};
use aegis_wire::weights::{INPUTS, N_IN};
use std::path::Path;

/// One labelled bar: model inputs (raw, before normalisation), the label and the return.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Symbol index.
    pub symbol: u16,
    /// Open time of the bar.
    pub time_ms: i64,
    /// The used features, in [`INPUTS`] order.
    pub x: [f32; N_IN],
    /// The full feature vector (for in-brain inference checks).
    pub features: [f64; 18],
    /// 1 when the price rose over the horizon.
    pub up: f32,
    /// The forward return.
    pub ret: f32,
}

/// A closed trade as a training sample: inputs at entry, whether the price went the way
/// that paid a long, and the trade's weight (|reward|).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradeSample {
    /// The used features at entry, in [`INPUTS`] order.
    pub x: [f32; N_IN],
    /// 1 when a long would have won: a winning long or a losing short.
    pub up: f32,
    /// |reward| (SPEC §6): 1 for a small win or loss, up to 10 for a full stop.
    pub weight: f32,
}

/// Which walk-forward part a sample belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Fits the models and the normalisation (oldest).
    Train,
    /// Fits the ensemble weights and calibration.
    Validation,
    /// Decides publication (newest).
    Test,
    /// Just before a boundary, whose label looks across it (within H bars): in no part, so
    /// the training part's labels never see the validation part's prices, nor validation's
    /// the test part's.
    Purged,
}

/// Per-symbol sequences in time order, each sample tagged with its part.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// One sequence per symbol that has samples.
    pub sequences: Vec<Vec<(Sample, Part)>>,
    /// Mean of each input over the training part.
    pub mean: [f32; N_IN],
    /// Standard deviation of each input over the training part (1 where it is 0).
    pub std: [f32; N_IN],
    /// The training part's share of up labels.
    pub base_rate: f32,
    /// Open time of the first bar after the training part.
    pub train_end_ms: i64,
    /// Closed trades that ended before `train_end_ms`: extra training samples.
    pub trades: Vec<TradeSample>,
}

impl Dataset {
    /// Samples per part: train, validation, test.
    pub fn counts(&self) -> [usize; 4] {
        let mut n = [0; 4];
        for (_, part) in self.sequences.iter().flatten() {
            n[*part as usize] += 1;
        }
        n
    }

    /// Adds the trades that entered and ended inside the training part (a later exit would
    /// carry what happened in validation or test into training); returns how many.
    pub fn add_trades(&mut self, trades: &[TradeExperience]) -> usize {
        let before = self.trades.len();
        self.trades.extend(
            trades.iter().filter(|t| t.exit_time_ms < self.train_end_ms && t.weight > 0.0).map(|t| {
                TradeSample {
                    x: std::array::from_fn(|k| t.features[INPUTS[k]] as f32),
                    up: f32::from(u8::from((t.side > 0) == (t.reward > 0.0))),
                    weight: t.weight as f32,
                }
            }),
        );
        self.trades.len() - before
    }

    /// `x` z-scored with the training statistics and clipped as the brain clips it.
    pub fn normalise(&self, x: &[f32; N_IN]) -> [f32; N_IN] {
        let clip = aegis_model::forward::CLIP;
        std::array::from_fn(|k| ((x[k] - self.mean[k]) / self.std[k]).clamp(-clip, clip))
    }
}

/// Why training data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The ring file is missing, of another format version, or unreadable.
    #[error("experience log: {0}")]
    Ring(#[from] RingFileError),
    /// Too few samples to split.
    #[error("experience log: {found} bar samples, at least {needed} needed")]
    TooFew {
        /// Found.
        found: usize,
        /// Needed.
        needed: usize,
    },
}

/// Fewest samples a training run accepts.
pub const MIN_SAMPLES: usize = 300;

/// Reads every bar sample held in the ring at `path`; samples with a non-finite feature or
/// return are skipped (and counted in the second value).
pub fn read_samples(path: &Path) -> Result<(Vec<BarSample>, usize), DataError> {
    read_ring::<SAMPLE_WORDS, _>(path, BarSample::from_words, |s| {
        s.forward_return.is_finite() && s.features.iter().all(|f| f.is_finite())
    })
}

/// Reads every closed trade held in the ring at `path` (none when there is no file yet);
/// trades with a non-finite feature or reward are skipped (and counted).
pub fn read_trades(path: &Path) -> Result<(Vec<TradeExperience>, usize), DataError> {
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    read_ring::<TRADE_WORDS, _>(path, TradeExperience::from_words, |t| {
        t.reward.is_finite() && t.weight.is_finite() && t.features.iter().all(|f| f.is_finite())
    })
}

fn read_ring<const W: usize, T>(
    path: &Path,
    decode: fn(&[u64; W]) -> T,
    usable: fn(&T) -> bool,
) -> Result<(Vec<T>, usize), DataError> {
    let capacity = capacity_of(path, W)?;
    let ring = RingReader::<W>::open(path, capacity)?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for words in ring.range().filter_map(|n| ring.get(n)) {
        let record = decode(&words);
        if usable(&record) {
            out.push(record);
        } else {
            skipped += 1;
        }
    }
    Ok((out, skipped))
}

/// Splits `samples` walk-forward by time (the oldest `train` share, then `validation`, then
/// the rest) and groups them by symbol in time order.
pub fn split(mut samples: Vec<BarSample>, train: f64, validation: f64) -> Result<Dataset, DataError> {
    if samples.len() < MIN_SAMPLES {
        return Err(DataError::TooFew { found: samples.len(), needed: MIN_SAMPLES });
    }
    samples.sort_by_key(|s| (s.open_time_ms, s.symbol));
    let n = samples.len();
    let train_end = samples[((n as f64 * train) as usize).min(n - 1)].open_time_ms;
    let validation_end = samples[((n as f64 * (train + validation)) as usize).min(n - 1)].open_time_ms;
    let part = |t: i64| {
        if t < train_end {
            Part::Train
        } else if t < validation_end {
            Part::Validation
        } else {
            Part::Test
        }
    };
    let symbols = samples.iter().map(|s| usize::from(s.symbol)).max().unwrap_or(0) + 1;
    let mut sequences: Vec<Vec<(Sample, Part)>> = vec![Vec::new(); symbols];
    for s in &samples {
        let x = std::array::from_fn(|k| s.features[INPUTS[k]] as f32);
        let sample = Sample {
            symbol: s.symbol,
            time_ms: s.open_time_ms,
            x,
            features: s.features,
            up: f32::from(u8::from(s.forward_return > 0.0)),
            ret: s.forward_return as f32,
        };
        // The label is the return over the next `horizon` bars: purge a sample whose label
        // ends in the next part.
        let here = part(s.open_time_ms);
        let label_end = s.open_time_ms + i64::from(s.horizon) * 60_000;
        let tagged = if part(label_end) != here { Part::Purged } else { here };
        sequences[usize::from(s.symbol)].push((sample, tagged));
    }
    sequences.retain(|q| !q.is_empty());
    let training: Vec<&Sample> =
        sequences.iter().flatten().filter(|(_, p)| *p == Part::Train).map(|(s, _)| s).collect();
    let count = training.len().max(1) as f32;
    let mut mean = [0.0f32; N_IN];
    let mut std = [0.0f32; N_IN];
    for s in &training {
        for (m, x) in mean.iter_mut().zip(&s.x) {
            *m += x / count;
        }
    }
    for s in &training {
        for ((v, x), m) in std.iter_mut().zip(&s.x).zip(&mean) {
            *v += (x - m).powi(2) / count;
        }
    }
    let std = std.map(|v| if v.sqrt() > 1e-6 { v.sqrt() } else { 1.0 });
    let base_rate = training.iter().map(|s| s.up).sum::<f32>() / count;
    Ok(Dataset { sequences, mean, std, base_rate, train_end_ms: train_end, trades: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(symbol: u16, minute: i64, ret: f64) -> BarSample {
        let mut features = [0.0; 18];
        features[0] = minute as f64;
        BarSample { symbol, open_time_ms: minute * 60_000, horizon: 5, forward_return: ret, features }
    }

    #[test]
    fn the_split_is_walk_forward_and_the_z_score_comes_from_training_only() {
        let samples: Vec<BarSample> =
            (0..200).flat_map(|m| [sample(0, m, 0.01), sample(3, m, -0.01)]).collect();
        let d = split(samples, 0.6, 0.2).unwrap();
        assert_eq!(d.sequences.len(), 2);
        // Train, validation, test, purged: the 5 minutes before each boundary (labels look 5
        // bars ahead) of both symbols are in no part.
        assert_eq!(d.counts(), [230, 70, 80, 20]);
        for q in &d.sequences {
            let parts: Vec<Part> = q.iter().map(|(_, p)| *p).collect();
            let kept: Vec<&Part> = parts.iter().filter(|p| **p != Part::Purged).collect();
            assert!(kept.windows(2).all(|w| *w[0] as usize <= *w[1] as usize), "never back in time");
            let purged: Vec<i64> =
                q.iter().filter(|(_, p)| *p == Part::Purged).map(|(s, _)| s.time_ms / 60_000).collect();
            assert_eq!(
                purged,
                [115, 116, 117, 118, 119, 155, 156, 157, 158, 159],
                "H bars before each boundary"
            );
            assert!(q.windows(2).all(|w| w[0].0.time_ms < w[1].0.time_ms));
        }
        assert!((d.mean[0] - 57.0).abs() < 1e-3, "the mean of training minutes 0..115 only: {}", d.mean[0]);
        assert!((d.base_rate - 0.5).abs() < 1e-6);
        assert!(matches!(split(vec![sample(0, 1, 0.0)], 0.6, 0.2), Err(DataError::TooFew { .. })));
    }

    #[test]
    fn only_trades_closed_inside_the_training_part_join_it_labelled_by_direction() {
        let samples: Vec<BarSample> = (0..400).map(|m| sample(0, m, 0.01)).collect();
        let mut d = split(samples, 0.6, 0.2).unwrap();
        assert_eq!(d.train_end_ms, 240 * 60_000);
        let trade = |id, side: i8, reward: f64, exit_minute: i64| TradeExperience {
            trade_id: id,
            symbol: 0,
            entry_time_ms: 0,
            exit_time_ms: exit_minute * 60_000,
            side,
            roi_pct: reward,
            reward,
            weight: reward.abs(),
            features: [0.5; 18],
        };
        let trades = [
            trade(1, 1, 8.0, 10),    // a winning long: up
            trade(2, -1, -10.0, 20), // a losing short: up
            trade(3, -1, 3.0, 30),   // a winning short: down
            trade(4, 1, 5.0, 240),   // closed in validation: left out
        ];
        assert_eq!(d.add_trades(&trades), 3);
        let got: Vec<(f32, f32)> = d.trades.iter().map(|t| (t.up, t.weight)).collect();
        assert_eq!(got, [(1.0, 8.0), (1.0, 10.0), (0.0, 3.0)]);
        assert_eq!(d.trades[0].x[0], 0.5);
    }
}
