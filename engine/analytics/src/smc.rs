//! Smart-money patterns over closed bars: fair-value gaps with fill tracking, order blocks
//! with mitigation, and liquidity grabs (sweeps of a confirmed swing that close back inside).

use crate::candle::Ohlc;
use crate::structure::{Direction, Swing};
use crate::window::Window;

/// A fair-value gap: a three-bar imbalance left unfilled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fvg {
    /// Index of the bar that completed the gap (its identity).
    pub id: u64,
    /// Bullish (gap below price, `low[t] > high[t−2]`) or bearish.
    pub direction: Direction,
    /// Upper edge.
    pub top: f64,
    /// Lower edge.
    pub bottom: f64,
    /// Index of the bar that filled it.
    pub filled_at: Option<u64>,
}

impl Fvg {
    /// Height of the gap.
    pub fn size(&self) -> f64 {
        self.top - self.bottom
    }

    /// Midpoint of the gap.
    pub fn mid(&self) -> f64 {
        (self.top + self.bottom) / 2.0
    }

    /// The gap is filled once price trades to its far edge: the bottom of a bullish gap,
    /// the top of a bearish one.
    fn fills(&self, bar: &Ohlc) -> bool {
        match self.direction {
            Direction::Bullish => bar.low <= self.bottom,
            Direction::Bearish => bar.high >= self.top,
        }
    }
}

/// The gap completed by `bar` given the bar two before it, if any.
pub fn detect_fvg(id: u64, two_back: &Ohlc, bar: &Ohlc) -> Option<Fvg> {
    if bar.low > two_back.high {
        Some(Fvg { id, direction: Direction::Bullish, top: bar.low, bottom: two_back.high, filled_at: None })
    } else if bar.high < two_back.low {
        Some(Fvg { id, direction: Direction::Bearish, top: two_back.low, bottom: bar.high, filled_at: None })
    } else {
        None
    }
}

/// The recent fair-value gaps, filled or not, in a fixed ring.
#[derive(Clone, Debug)]
pub struct FvgTracker {
    gaps: Window<Fvg>,
}

impl FvgTracker {
    /// Keeps the last `capacity` gaps.
    pub fn new(capacity: usize) -> Self {
        let empty = Fvg { id: 0, direction: Direction::Bullish, top: 0.0, bottom: 0.0, filled_at: None };
        Self { gaps: Window::new(capacity, empty) }
    }

    /// Marks gaps filled by bar `index`, then records the gap it completes (if any).
    pub fn update(&mut self, index: u64, bars: &Window<Ohlc>) -> Option<Fvg> {
        let bar = bars.get(0)?;
        for age in 0..self.gaps.len() {
            if let Some(gap) = self.gaps.get_mut(age).filter(|g| g.filled_at.is_none() && g.fills(&bar)) {
                gap.filled_at = Some(index);
            }
        }
        let gap = detect_fvg(index, &bars.get(2)?, &bar)?;
        self.gaps.push(gap);
        Some(gap)
    }

    /// The most recent gap not yet filled.
    pub fn latest_unfilled(&self) -> Option<Fvg> {
        self.gaps.iter().find(|g| g.filled_at.is_none())
    }

    /// The gap with identity `id`, while it is still held.
    pub fn get(&self, id: u64) -> Option<Fvg> {
        self.gaps.iter().find(|g| g.id == id)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.gaps.heap_bytes()
    }
}

/// An order block: the last opposite-close bar before a structure break.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderBlock {
    /// Index of the breaking bar that created it (its identity).
    pub id: u64,
    /// Index of the order-block bar itself.
    pub bar: u64,
    /// Bullish (demand below) or bearish (supply above).
    pub direction: Direction,
    /// The block bar's high.
    pub high: f64,
    /// The block bar's low.
    pub low: f64,
    /// Index of the bar whose close went through its far edge.
    pub mitigated_at: Option<u64>,
}

impl OrderBlock {
    /// Midpoint of the block.
    pub fn mid(&self) -> f64 {
        (self.high + self.low) / 2.0
    }

    fn mitigated_by(&self, close: f64) -> bool {
        match self.direction {
            Direction::Bullish => close < self.low,
            Direction::Bearish => close > self.high,
        }
    }
}

/// The recent order blocks in a fixed ring.
#[derive(Clone, Debug)]
pub struct OrderBlocks {
    blocks: Window<OrderBlock>,
    search: usize,
}

impl OrderBlocks {
    /// Keeps the last `capacity` blocks, searching at most `search` bars back for one.
    pub fn new(capacity: usize, search: usize) -> Self {
        let empty = OrderBlock {
            id: 0,
            bar: 0,
            direction: Direction::Bullish,
            high: 0.0,
            low: 0.0,
            mitigated_at: None,
        };
        Self { blocks: Window::new(capacity, empty), search }
    }

    /// Marks blocks mitigated by the newest bar's close, then records the block behind a
    /// break made by that bar.
    pub fn update(&mut self, index: u64, bars: &Window<Ohlc>, brk: Option<Direction>) -> Option<OrderBlock> {
        let close = bars.get(0)?.close;
        for age in 0..self.blocks.len() {
            if let Some(block) =
                self.blocks.get_mut(age).filter(|b| b.mitigated_at.is_none() && b.mitigated_by(close))
            {
                block.mitigated_at = Some(index);
            }
        }
        let direction = brk?;
        let wanted = |b: &Ohlc| match direction {
            Direction::Bullish => b.close < b.open,
            Direction::Bearish => b.close > b.open,
        };
        let age = (1..=self.search.min(bars.len().saturating_sub(1)))
            .find(|&age| bars.get(age).is_some_and(|b| wanted(&b)))?;
        let b = bars.get(age)?;
        let block = OrderBlock {
            id: index,
            bar: index - age as u64,
            direction,
            high: b.high,
            low: b.low,
            mitigated_at: None,
        };
        self.blocks.push(block);
        Some(block)
    }

    /// The blocks held, newest first.
    pub fn iter(&self) -> impl Iterator<Item = OrderBlock> + '_ {
        self.blocks.iter()
    }

    /// True if an unmitigated block of `direction` exists.
    pub fn any_unmitigated(&self, direction: Direction) -> bool {
        self.blocks.iter().any(|b| b.mitigated_at.is_none() && b.direction == direction)
    }

    /// The unmitigated block whose midpoint is nearest `price`.
    pub fn nearest_unmitigated(&self, price: f64) -> Option<OrderBlock> {
        self.blocks
            .iter()
            .filter(|b| b.mitigated_at.is_none())
            .min_by(|a, b| (a.mid() - price).abs().total_cmp(&(b.mid() - price).abs()))
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.blocks.heap_bytes()
    }
}

/// Which side's resting liquidity a bar swept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sweep {
    /// No sweep.
    #[default]
    None,
    /// Below the last swing low and closed back above it (bullish).
    SellSide,
    /// Above the last swing high and closed back below it (bearish).
    BuySide,
    /// Both in one bar (an outside bar); neither direction is implied.
    Both,
}

/// The sweep made by `bar` against the last confirmed swings. A swing already broken by a
/// close no longer has liquidity resting beyond it, so it cannot be swept.
pub fn liquidity_grab(bar: &Ohlc, swing_high: Option<Swing>, swing_low: Option<Swing>) -> Sweep {
    let sell_side = swing_low.is_some_and(|s| !s.broken && bar.low < s.price && bar.close > s.price);
    let buy_side = swing_high.is_some_and(|s| !s.broken && bar.high > s.price && bar.close < s.price);
    match (sell_side, buy_side) {
        (true, true) => Sweep::Both,
        (true, false) => Sweep::SellSide,
        (false, true) => Sweep::BuySide,
        (false, false) => Sweep::None,
    }
}
