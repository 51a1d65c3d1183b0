//! The causal labeller of the experience log: each symbol's last H+1 closed bars, and a
//! bar sample for bar t once bar t+H has closed. Never looks ahead; never allocates after
//! its first H+1 bars.

use aegis_analytics::FEATURES;
use aegis_wire::experience::BarSample;

/// A bar as the labeller keeps it: open time, close, features, and whether it was live.
pub(crate) type LabelBar = (i64, f64, [f64; FEATURES], bool);

/// The last `horizon + 1` bars of a symbol, for causal forward-return labels. Only live
/// bars become samples: warm-up history from REST has no book or trade-flow features, and
/// a model trained on it would meet other inputs when it serves.
pub(crate) struct Labeller {
    bars: Vec<LabelBar>,
    head: usize,
    horizon: usize,
}

impl Labeller {
    pub(crate) fn new(horizon: usize) -> Self {
        Self { bars: Vec::with_capacity(horizon + 1), head: 0, horizon }
    }

    /// Adds bar t; once bar t−H is held, returns it labelled with close[t]/close[t−H] − 1
    /// if it was live.
    pub(crate) fn push(&mut self, symbol: u16, bar: LabelBar) -> Option<BarSample> {
        let horizon = self.horizon;
        if self.bars.len() < horizon + 1 {
            self.bars.push(bar);
            if self.bars.len() <= horizon {
                return None;
            }
        } else {
            self.bars[self.head] = bar;
            self.head = (self.head + 1) % self.bars.len();
        }
        let (open_time_ms, close, features, live) = self.bars[self.head];
        if !live {
            return None;
        }
        let forward_return = if close > 0.0 { bar.1 / close - 1.0 } else { 0.0 };
        Some(BarSample { symbol, open_time_ms, horizon: horizon as u32, forward_return, features })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_look_exactly_h_bars_ahead() {
        let mut l = Labeller::new(2);
        let f = [0.0; FEATURES];
        assert_eq!(l.push(0, (0, 100.0, f, true)), None);
        assert_eq!(l.push(0, (60_000, 101.0, f, true)), None);
        let s = l.push(0, (120_000, 110.0, f, true)).unwrap();
        assert_eq!((s.open_time_ms, s.horizon), (0, 2));
        assert!((s.forward_return - 0.1).abs() < 1e-12);
        let s = l.push(0, (180_000, 90.9, f, true)).unwrap();
        assert_eq!(s.open_time_ms, 60_000);
        assert!((s.forward_return - (90.9 / 101.0 - 1.0)).abs() < 1e-12);
        let s = l.push(0, (240_000, 1.0, f, true)).unwrap();
        assert_eq!(s.open_time_ms, 120_000);
    }

    #[test]
    fn warm_up_bars_label_nothing_but_still_price_live_labels() {
        let mut l = Labeller::new(1);
        let f = [0.0; FEATURES];
        assert_eq!(l.push(0, (0, 100.0, f, false)), None);
        assert_eq!(l.push(0, (60_000, 102.0, f, true)), None, "bar 0 was history");
        let s = l.push(0, (120_000, 51.0, f, true)).unwrap();
        assert_eq!(s.open_time_ms, 60_000);
        assert!((s.forward_return + 0.5).abs() < 1e-12);
    }
}
