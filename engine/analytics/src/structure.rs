//! Market structure: swing highs and lows confirmed `L` bars after the fact, and structure
//! breaks (a close through the last confirmed swing). One tracker per timeframe.

use crate::candle::Ohlc;
use crate::window::Window;

/// A confirmed swing high or low.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Swing {
    /// The swing's price (the bar's high or low).
    pub price: f64,
    /// Index of the swing bar (bars counted from 0).
    pub bar: u64,
    /// Index of the bar at which it was confirmed (`bar + L`).
    pub confirmed_at: u64,
    /// True once a close has gone through it.
    pub broken: bool,
}

/// A bullish or bearish direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Up.
    Bullish,
    /// Down.
    Bearish,
}

impl Direction {
    /// +1 or −1.
    pub fn sign(self) -> i8 {
        match self {
            Direction::Bullish => 1,
            Direction::Bearish => -1,
        }
    }
}

/// What one bar changed in the structure.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StructureUpdate {
    /// A swing high confirmed at this bar.
    pub swing_high: Option<Swing>,
    /// A swing low confirmed at this bar.
    pub swing_low: Option<Swing>,
    /// A structure break made by this bar's close.
    pub break_dir: Option<Direction>,
}

/// Swings and breaks of one timeframe, over a fixed window of recent bars.
#[derive(Clone, Debug)]
pub struct Structure {
    lookback: usize,
    bars: Window<Ohlc>,
    count: u64,
    last_high: Option<Swing>,
    last_low: Option<Swing>,
    levels: Window<f64>,
    state: i8,
}

impl Structure {
    /// A tracker with swing lookback `lookback` (L ≥ 1), keeping at least `history` bars and
    /// the last `levels` confirmed swing prices.
    pub fn new(lookback: usize, history: usize, levels: usize) -> Self {
        let lookback = lookback.max(1);
        Self {
            lookback,
            bars: Window::new(history.max(2 * lookback + 1), Ohlc::default()),
            count: 0,
            last_high: None,
            last_low: None,
            levels: Window::new(levels, 0.0),
            state: 0,
        }
    }

    /// Adds a closed bar: confirms the swing `L` bars back, then checks this close for a break.
    pub fn update(&mut self, bar: Ohlc) -> StructureUpdate {
        self.bars.push(bar);
        self.count += 1;
        let mut update = StructureUpdate::default();
        if self.bars.len() > 2 * self.lookback {
            update.swing_high = self.confirm(|b| b.high).map(|s| *self.last_high.insert(s));
            update.swing_low = self.confirm(|b| -b.low).map(|s| {
                let s = Swing { price: -s.price, ..s };
                *self.last_low.insert(s)
            });
            for s in [update.swing_high, update.swing_low].into_iter().flatten() {
                self.levels.push(s.price);
            }
        }
        update.break_dir = self.check_break(bar.close);
        if let Some(dir) = update.break_dir {
            self.state = dir.sign();
        }
        update
    }

    /// The bar `L` back is a swing if `key` of it is strictly above that of the L bars on each side.
    fn confirm(&self, key: impl Fn(&Ohlc) -> f64) -> Option<Swing> {
        let l = self.lookback;
        let candidate = key(&self.bars.get(l)?);
        let is_swing = (0..=2 * l)
            .filter(|&age| age != l)
            .all(|age| self.bars.get(age).is_some_and(|b| key(&b) < candidate));
        let confirmed_at = self.count - 1;
        is_swing.then_some(Swing {
            price: candidate,
            bar: confirmed_at - l as u64,
            confirmed_at,
            broken: false,
        })
    }

    fn check_break(&mut self, close: f64) -> Option<Direction> {
        if let Some(high) = self.last_high.as_mut().filter(|h| !h.broken && close > h.price) {
            high.broken = true;
            return Some(Direction::Bullish);
        }
        if let Some(low) = self.last_low.as_mut().filter(|l| !l.broken && close < l.price) {
            low.broken = true;
            return Some(Direction::Bearish);
        }
        None
    }

    /// +1 after a bullish break, −1 after a bearish one, 0 before any.
    pub fn state(&self) -> i8 {
        self.state
    }

    /// The last confirmed swing high.
    pub fn last_high(&self) -> Option<Swing> {
        self.last_high
    }

    /// The last confirmed swing low.
    pub fn last_low(&self) -> Option<Swing> {
        self.last_low
    }

    /// Recent bars, newest first.
    pub fn bars(&self) -> &Window<Ohlc> {
        &self.bars
    }

    /// Index of the newest bar (bars counted from 0); `None` before the first.
    pub fn newest_index(&self) -> Option<u64> {
        self.count.checked_sub(1)
    }

    /// The distance from `price` to the nearest of the recent confirmed swing levels.
    pub fn nearest_level_distance(&self, price: f64) -> Option<f64> {
        self.levels.iter().map(|level| (level - price).abs()).reduce(f64::min)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bars.heap_bytes() + self.levels.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hl(high: f64, low: f64, close: f64) -> Ohlc {
        Ohlc { open: close, high, low, close }
    }

    #[test]
    fn a_swing_high_is_confirmed_l_bars_later_and_broken_by_a_close_above() {
        let mut s = Structure::new(2, 8, 4);
        let highs = [10.0, 11.0, 15.0, 12.0, 11.0, 13.0, 16.0];
        let mut confirmed = Vec::new();
        let mut breaks = Vec::new();
        for (i, h) in highs.iter().enumerate() {
            let u = s.update(hl(*h, h - 1.0, h - 0.5));
            if let Some(sw) = u.swing_high {
                confirmed.push((i, sw.bar, sw.price));
            }
            if let Some(d) = u.break_dir {
                breaks.push((i, d));
            }
        }
        assert_eq!(confirmed, vec![(4, 2, 15.0)]);
        assert_eq!(breaks, vec![(6, Direction::Bullish)]);
        assert_eq!(s.state(), 1);
        assert!(s.last_high().unwrap().broken);
    }

    #[test]
    fn equal_highs_are_not_swings() {
        let mut s = Structure::new(1, 4, 4);
        for h in [10.0, 12.0, 12.0, 11.0] {
            assert_eq!(s.update(hl(h, 9.0, 9.5)).swing_high, None);
        }
    }
}
