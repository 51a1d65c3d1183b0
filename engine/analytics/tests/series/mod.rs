//! Bar series for the property tests and the allocation test: random walks with adversarial
//! twists (flat prices, zero volume, single ticks, tiny and huge prices, gaps, spikes).

#![allow(dead_code)]

use aegis_analytics::{Candle, OrderFlow};
use proptest::prelude::*;

/// One step of a walk, in ticks.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Close-to-close move.
    pub moved: i64,
    /// Wick above the body.
    pub up: i64,
    /// Wick below the body.
    pub down: i64,
    /// Volume units.
    pub volume: u32,
    /// Minutes since the previous bar.
    pub gap: i64,
    /// A spike (move ×1000) when 0.
    pub spike: u8,
}

/// How a series is shaped.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Price of one tick.
    pub tick: f64,
    /// Every bar flat at the same price.
    pub flat: bool,
    /// Every volume zero.
    pub zero_volume: bool,
    /// Moves of at most one tick.
    pub single_tick: bool,
    /// Order flow attached to each bar.
    pub with_flow: bool,
}

/// Builds the candles of a walk.
pub fn candles(shape: Shape, steps: &[Step]) -> Vec<Candle> {
    let mut ticks: i64 = 10_000;
    let mut time = 1_700_000_000_000i64;
    steps
        .iter()
        .map(|s| {
            let open = ticks;
            let mut moved = if s.spike == 0 { s.moved * 1_000 } else { s.moved };
            if shape.single_tick {
                moved = moved.signum();
            }
            if shape.flat {
                moved = 0;
            }
            ticks = (ticks + moved).max(1);
            let (up, down) = if shape.flat { (0, 0) } else { (s.up, s.down) };
            let high = open.max(ticks) + up;
            let low = (open.min(ticks) - down).max(1);
            time += s.gap * 60_000;
            let price = |t: i64| t as f64 * shape.tick;
            let volume = if shape.zero_volume { 0.0 } else { f64::from(s.volume) };
            let flow = if shape.with_flow {
                let buy = volume * f64::from(s.spike % 10) / 10.0;
                OrderFlow {
                    trades: Some(u64::from(s.volume / 7)),
                    taker: Some((buy, volume - buy)),
                    vwap: Some(price((high + low) / 2)),
                    spread_bps: Some(f64::from(s.spike) / 4.0),
                    book_imbalance: Some(f64::from(s.spike) / 10.0 - 1.0),
                }
            } else {
                OrderFlow::default()
            };
            Candle {
                open_time_ms: time,
                open: price(open),
                high: price(high),
                low: price(low),
                close: price(ticks),
                volume,
                flow,
            }
        })
        .collect()
}

/// Any step.
pub fn step() -> impl Strategy<Value = Step> {
    (-3i64..=3, 0i64..3, 0i64..3, 0u32..1000, 1i64..3, 0u8..20)
        .prop_map(|(moved, up, down, volume, gap, spike)| Step { moved, up, down, volume, gap, spike })
}

/// Any shape, tiny to huge prices.
pub fn shape() -> impl Strategy<Value = Shape> {
    (prop::sample::select(vec![1e-12, 1e-8, 1e-4, 0.01, 1.0, 1e4]), any::<[bool; 4]>()).prop_map(
        |(tick, [flat, zero_volume, single_tick, with_flow])| Shape {
            tick,
            flat,
            zero_volume,
            single_tick,
            with_flow,
        },
    )
}

/// A deterministic walk of `n` bars (for tests that need no shrinking).
pub fn walk(n: usize, seed: u64) -> Vec<Candle> {
    let mut state = seed | 1;
    let mut next = move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let steps: Vec<Step> = (0..n)
        .map(|_| Step {
            moved: next(7) as i64 - 3,
            up: next(3) as i64,
            down: next(3) as i64,
            volume: next(1000) as u32,
            gap: 1,
            spike: next(20) as u8,
        })
        .collect();
    candles(
        Shape { tick: 0.01, flat: false, zero_volume: false, single_tick: false, with_flow: true },
        &steps,
    )
}
