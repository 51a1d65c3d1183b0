//! Incremental indicators, O(1) per bar, following TA-Lib's definitions and its order of
//! arithmetic so the values agree to the last few ulps: RSI and ATR with Wilder smoothing,
//! EMA seeded by an SMA, and an SMA over a fixed window.

use crate::window::Window;

/// TA-Lib's `TA_IS_ZERO`: magnitudes under 1e-8 count as zero.
fn ta_is_zero(v: f64) -> bool {
    -0.000_000_01 < v && v < 0.000_000_01
}

/// Exponential moving average with an SMA seed over the first `period` values.
#[derive(Clone, Debug)]
pub struct Ema {
    period: usize,
    k: f64,
    seed_sum: f64,
    seen: usize,
    value: Option<f64>,
}

impl Ema {
    /// An EMA of `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self { period, k: 2.0 / (period as f64 + 1.0), seed_sum: 0.0, seen: 0, value: None }
    }

    /// Adds a value; returns the EMA once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.seen += 1;
        self.value = match self.value {
            Some(prev) => Some((x - prev) * self.k + prev),
            None => {
                self.seed_sum += x;
                (self.seen == self.period).then(|| self.seed_sum / self.period as f64)
            }
        };
        self.value
    }

    /// The current value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Simple moving average over the last `period` values.
#[derive(Clone, Debug)]
pub struct Sma {
    window: Window<f64>,
}

impl Sma {
    /// An SMA of `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        Self { window: Window::new(period, 0.0) }
    }

    /// Adds a value; returns the mean once the window is full.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.window.push(x);
        self.value()
    }

    /// The mean of the full window. Summed afresh (the window is short) so a window of
    /// zeros gives exactly zero, which a running sum with subtraction would not.
    pub fn value(&self) -> Option<f64> {
        self.window.is_full().then(|| self.window.iter().sum::<f64>() / self.window.capacity() as f64)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.window.heap_bytes()
    }
}

/// Wilder's RSI: average gain and loss over `period` changes, then smoothed.
#[derive(Clone, Debug)]
pub struct Rsi {
    period: usize,
    prev_close: Option<f64>,
    gain: f64,
    loss: f64,
    changes: usize,
}

impl Rsi {
    /// An RSI over `period` changes (at least 1).
    pub fn new(period: usize) -> Self {
        Self { period: period.max(1), prev_close: None, gain: 0.0, loss: 0.0, changes: 0 }
    }

    /// Adds a close; returns the RSI (0–100, TA-Lib's value) once `period` changes are seen.
    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let change = close - prev;
        let n = self.period as f64;
        self.changes += 1;
        if self.changes > self.period {
            self.gain *= n - 1.0;
            self.loss *= n - 1.0;
        }
        if change < 0.0 {
            self.loss -= change;
        } else {
            self.gain += change;
        }
        if self.changes >= self.period {
            self.gain /= n;
            self.loss /= n;
        }
        self.value()
    }

    /// TA-Lib's RSI value, 0 where gain + loss is (TA-Lib's) zero.
    pub fn value(&self) -> Option<f64> {
        let total = self.gain + self.loss;
        self.ready().then(|| if ta_is_zero(total) { 0.0 } else { 100.0 * (self.gain / total) })
    }

    /// Average gain / (average gain + average loss), `None` when both are exactly zero.
    pub fn gain_share(&self) -> Option<f64> {
        let total = self.gain + self.loss;
        (self.ready() && total > 0.0).then(|| self.gain / total)
    }

    fn ready(&self) -> bool {
        self.changes >= self.period
    }
}

/// True range of a bar given the previous close.
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    (high - low).max((prev_close - high).abs()).max((low - prev_close).abs())
}

/// Wilder's ATR of the true range; the first value is the SMA of the first `period` ranges.
#[derive(Clone, Debug)]
pub struct Atr {
    period: usize,
    prev_close: Option<f64>,
    value: f64,
    ranges: usize,
}

impl Atr {
    /// An ATR over `period` true ranges (at least 1).
    pub fn new(period: usize) -> Self {
        Self { period: period.max(1), prev_close: None, value: 0.0, ranges: 0 }
    }

    /// Adds a bar; returns the ATR once `period` true ranges (period + 1 bars) are seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let tr = true_range(high, low, prev);
        let n = self.period as f64;
        self.ranges += 1;
        if self.ranges <= self.period {
            self.value += tr;
            if self.ranges == self.period {
                self.value /= n;
            }
        } else {
            self.value = (self.value * (n - 1.0) + tr) / n;
        }
        self.value()
    }

    /// The current ATR, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.ranges >= self.period).then_some(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_seeds_with_the_sma_then_smooths() {
        let mut e = Ema::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        assert_eq!(e.update(6.0), Some(4.0));
    }

    #[test]
    fn sma_of_zeros_is_exactly_zero() {
        let mut s = Sma::new(3);
        for x in [1e-9, 3.3, 7.1, 0.0, 0.0, 0.0] {
            s.update(x);
        }
        assert_eq!(s.value(), Some(0.0));
    }

    #[test]
    fn rsi_of_a_rising_series_is_100_and_of_a_flat_one_is_ta_libs_zero() {
        let mut up = Rsi::new(3);
        let mut flat = Rsi::new(3);
        for i in 0..6 {
            up.update(f64::from(i));
            flat.update(5.0);
        }
        assert_eq!(up.value(), Some(100.0));
        assert_eq!(flat.value(), Some(0.0));
        assert_eq!(flat.gain_share(), None);
    }

    #[test]
    fn atr_starts_with_the_mean_true_range() {
        let mut a = Atr::new(2);
        assert_eq!(a.update(10.0, 9.0, 9.5), None);
        assert_eq!(a.update(11.0, 10.0, 10.5), None); // tr = 1.5
        assert_eq!(a.update(10.5, 10.0, 10.25), Some(1.0)); // tr = 0.5
        assert_eq!(a.update(12.25, 11.0, 12.0), Some(1.5)); // tr = 2.0
    }
}
