//! Hand-built bar sequences where each smart-money pattern must appear at a known bar and be
//! filled or mitigated at a known later bar (swing lookback L = 2 to keep them short).

use aegis_analytics::smc::Sweep;
use aegis_analytics::{Candle, Direction, FeatureConfig, FeatureEngine, FeatureSnapshot, OrderFlow};

fn engine() -> FeatureEngine {
    FeatureEngine::new(FeatureConfig { swing_lookback: 2, ..FeatureConfig::default() })
}

/// Feeds `bars` as (open, high, low, close) and returns every snapshot.
fn run(engine: &mut FeatureEngine, bars: &[(f64, f64, f64, f64)]) -> Vec<FeatureSnapshot> {
    bars.iter()
        .enumerate()
        .map(|(i, &(open, high, low, close))| {
            let candle = Candle {
                open_time_ms: i as i64 * 60_000,
                open,
                high,
                low,
                close,
                volume: 1.0,
                flow: OrderFlow::default(),
            };
            *engine.update(&candle).expect("valid bar")
        })
        .collect()
}

const MARKET_STRUCTURE: usize = 0;
const ORDER_BLOCKS: usize = 1;
const LIQUIDITY_GRAB: usize = 3;

#[test]
fn a_bullish_fvg_appears_at_bar_2_and_is_filled_at_bar_5() {
    let mut e = engine();
    let s = run(
        &mut e,
        &[
            (9.5, 10.0, 9.0, 9.8),
            (9.95, 12.0, 9.9, 11.8),
            (11.8, 14.0, 11.0, 13.5), // low 11 > high[0] 10: gap [10, 11]
            (13.5, 14.5, 12.0, 12.2),
            (12.2, 13.0, 10.5, 10.8), // into the gap, not through it
            (10.8, 12.1, 9.9, 10.1),  // low 9.9 <= 10: filled (high reaches bar 3, no new gap)
        ],
    );
    assert_eq!(s[1].active_fvg, None);
    let gap = s[2].active_fvg.expect("gap at bar 2");
    assert_eq!((gap.id, gap.direction, gap.bottom, gap.top), (2, Direction::Bullish, 10.0, 11.0));
    assert_eq!(s[4].active_fvg.map(|g| g.id), Some(2));
    assert_eq!(s[5].active_fvg, None);
    assert_eq!(e.fvg(2).unwrap().filled_at, Some(5));
}

#[test]
fn a_bearish_fvg_appears_at_bar_2_and_is_filled_at_bar_4() {
    let mut e = engine();
    let s = run(
        &mut e,
        &[
            (20.5, 21.0, 20.0, 20.2),
            (20.0, 20.1, 18.0, 18.2),
            (18.2, 19.0, 17.0, 17.5), // high 19 < low[0] 20: gap [19, 20]
            (17.5, 19.5, 17.2, 19.4), // into the gap
            (19.4, 20.0, 19.0, 19.8), // high 20 >= 20: filled
        ],
    );
    let gap = s[2].active_fvg.expect("gap at bar 2");
    assert_eq!((gap.direction, gap.bottom, gap.top), (Direction::Bearish, 19.0, 20.0));
    assert!(s[3].active_fvg.is_some());
    assert_eq!(s[4].active_fvg, None);
    assert_eq!(e.fvg(2).unwrap().filled_at, Some(4));
}

/// Swing high 15 at bar 2 (confirmed at 4); bar 7 closes above it; the last down-close bar
/// before the move is bar 5; swing low 10.6 at bar 6 (confirmed at 8); bar 9 closes below the
/// block's low; bar 10 sweeps the swing low; bar 11 sweeps the swing high 16.5 (bar 8,
/// confirmed at 10); bar 12 breaks the swing low; bar 13 closes above the bearish block.
const STRUCTURE: [(f64, f64, f64, f64); 14] = [
    (10.0, 11.0, 9.0, 10.5),
    (10.5, 12.0, 10.0, 11.5),
    (11.5, 15.0, 11.0, 14.0),
    (14.0, 14.5, 12.0, 12.5),
    (12.5, 13.0, 11.5, 12.0),
    (12.0, 12.5, 10.9, 11.0),
    (11.0, 13.0, 10.6, 12.8),
    (12.8, 16.0, 12.5, 15.5),
    (15.5, 16.5, 14.0, 14.5),
    (14.5, 14.6, 10.65, 10.7),
    (10.7, 11.5, 10.4, 11.2),
    (11.2, 16.8, 11.0, 16.2),
    (16.2, 16.3, 10.0, 10.3),
    (10.3, 17.5, 10.2, 17.0),
];

#[test]
fn a_bullish_break_at_bar_7_creates_the_order_block_of_bar_5_mitigated_at_bar_9() {
    let mut e = engine();
    let s = run(&mut e, &STRUCTURE[..10]);
    let ms: Vec<f64> = s.iter().map(|s| s.features[MARKET_STRUCTURE]).collect();
    assert_eq!(ms, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let block = e.order_blocks().next().expect("an order block");
    assert_eq!((block.id, block.bar, block.direction), (7, 5, Direction::Bullish));
    assert_eq!((block.low, block.high), (10.9, 12.5));
    assert_eq!(block.mitigated_at, Some(9));
    let obs: Vec<f64> = s.iter().map(|s| s.features[ORDER_BLOCKS]).collect();
    assert_eq!(obs, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
}

#[test]
fn liquidity_grabs_on_each_side_appear_at_bars_10_and_11() {
    let mut e = engine();
    let s = run(&mut e, &STRUCTURE[..12]);
    let grabs: Vec<(usize, Sweep)> = s
        .iter()
        .enumerate()
        .filter(|(_, s)| s.features[LIQUIDITY_GRAB] == 1.0)
        .map(|(i, s)| (i, s.sweep))
        .collect();
    assert_eq!(grabs, [(10, Sweep::SellSide), (11, Sweep::BuySide)]);
}

#[test]
fn a_bearish_break_at_bar_12_creates_a_block_mitigated_at_bar_13() {
    let mut e = engine();
    let s = run(&mut e, &STRUCTURE);
    assert_eq!(s[12].features[MARKET_STRUCTURE], -1.0);
    assert_eq!(s[12].features[ORDER_BLOCKS], 1.0, "bearish block of bar 11 unmitigated");
    let blocks: Vec<_> = e.order_blocks().map(|b| (b.id, b.bar, b.direction, b.mitigated_at)).collect();
    assert_eq!(
        blocks,
        [
            (13, 12, Direction::Bullish, None),
            (12, 11, Direction::Bearish, Some(13)),
            (7, 5, Direction::Bullish, Some(9)),
        ]
    );
    assert_eq!(s[13].features[MARKET_STRUCTURE], 1.0, "bar 13 also closes above the 16.5 swing high");
}

#[test]
fn higher_timeframe_structure_follows_15m_bars() {
    // One 15m bar per 15 identical minutes, shaped like STRUCTURE: the 15m structure must
    // turn bullish on the 8th 15m bar, exactly as the 1m structure did on bar 7.
    let mut e = FeatureEngine::new(FeatureConfig { swing_lookback: 2, ..FeatureConfig::default() });
    let mut at = Vec::new();
    for (k, &(open, high, low, close)) in STRUCTURE[..9].iter().enumerate() {
        for m in 0..15 {
            let candle = Candle {
                open_time_ms: (k as i64 * 15 + m) * 60_000,
                open: if m == 0 { open } else { close },
                high,
                low,
                close,
                volume: 1.0,
                flow: OrderFlow::default(),
            };
            at.push(e.update(&candle).unwrap().structure_15m);
        }
    }
    let first_bullish = at.iter().position(|&m| m == 1).unwrap();
    assert_eq!(first_bullish, 7 * 15 + 14, "on the last minute of the 8th 15m bar");
}
