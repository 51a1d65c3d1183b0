//! The 18 features of SPEC §4 for one symbol, computed on each closed 1m bar from fixed-size
//! state: causal (bar t uses bars ≤ t only), finite, neutral before warm-up.

use crate::candle::{BarError, Candle, Ohlc};
use crate::indicator::{Atr, Ema, Rsi, Sma};
use crate::smc::{liquidity_grab, Fvg, FvgTracker, OrderBlock, OrderBlocks, Sweep};
use crate::structure::{Direction, Structure};
use crate::window::Window;

/// Number of features.
pub const FEATURES: usize = 18;

/// Feature names in vector order (SPEC §4).
pub const NAMES: [&str; FEATURES] = [
    "market_structure",
    "order_blocks_count",
    "institutional_candle",
    "liquidity_grab",
    "fvg_size_atr",
    "fvg_proximity",
    "ob_proximity",
    "atr_normalized_volume",
    "rsi_14",
    "momentum_atr",
    "time_to_next_level",
    "confidence_ensemble",
    "spread_bps",
    "book_imbalance",
    "trade_flow_imbalance",
    "vwap_distance_atr",
    "realized_vol_ratio",
    "trade_intensity",
];

/// Neutral value of each feature: taken before warm-up and wherever a denominator is zero.
pub const NEUTRAL: [f64; FEATURES] =
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];

/// Inclusive range of each feature.
pub const RANGES: [(f64, f64); FEATURES] = {
    const UNIT: (f64, f64) = (0.0, 1.0);
    const SIGNED: (f64, f64) = (-1.0, 1.0);
    const POSITIVE: (f64, f64) = (0.0, f64::MAX);
    [
        SIGNED, UNIT, UNIT, UNIT, POSITIVE, SIGNED, UNIT, POSITIVE, UNIT, SIGNED, UNIT, UNIT, POSITIVE,
        SIGNED, SIGNED, SIGNED, POSITIVE, POSITIVE,
    ]
};

/// Index of `confidence_ensemble`, filled in by the model.
pub const CONFIDENCE: usize = 11;
/// Index of `market_structure`.
pub const MARKET_STRUCTURE: usize = 0;
/// Index of `order_blocks_count`.
pub const ORDER_BLOCKS_COUNT: usize = 1;
/// Index of `liquidity_grab`.
pub const LIQUIDITY_GRAB: usize = 3;
/// Index of `fvg_proximity`.
pub const FVG_PROXIMITY: usize = 5;
/// Index of `momentum_atr`.
pub const MOMENTUM_ATR: usize = 9;

/// Sizes and lookbacks of the per-symbol state; fixed when the symbol's state is built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureConfig {
    /// Bars on each side of a swing (L).
    pub swing_lookback: usize,
    /// Bars searched back from a break for its order block.
    pub order_block_search: usize,
    /// Order blocks kept.
    pub order_blocks: usize,
    /// Fair-value gaps kept.
    pub fair_value_gaps: usize,
    /// Confirmed swing levels kept for `time_to_next_level`.
    pub swing_levels: usize,
    /// Bars back for `momentum_atr`.
    pub momentum_bars: usize,
    /// Returns in the short realised-volatility window.
    pub realized_vol_short: usize,
    /// Returns in the long realised-volatility window.
    pub realized_vol_long: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            swing_lookback: 5,
            order_block_search: 20,
            order_blocks: 8,
            fair_value_gaps: 8,
            swing_levels: 8,
            momentum_bars: 10,
            realized_vol_short: 15,
            realized_vol_long: 240,
        }
    }
}

impl FeatureConfig {
    /// Bars needed before every feature has its full history.
    pub fn warmup_bars(&self) -> u64 {
        let needs = [27, self.realized_vol_long + 1, self.momentum_bars + 1, 2 * self.swing_lookback + 1];
        needs.into_iter().max().unwrap_or(0) as u64
    }
}

/// TA-Lib-exact raw indicators, `None` during their own warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RawIndicators {
    /// RSI(14), 0–100.
    pub rsi14: Option<f64>,
    /// ATR(14).
    pub atr14: Option<f64>,
    /// EMA(12) of close.
    pub ema12: Option<f64>,
    /// EMA(26) of close.
    pub ema26: Option<f64>,
    /// SMA(20) of volume.
    pub sma20_volume: Option<f64>,
}

/// Everything known about one symbol after one closed bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureSnapshot {
    /// Open time of the bar.
    pub open_time_ms: i64,
    /// Index of the bar (bars counted from 0).
    pub bar_index: u64,
    /// True once every feature has its full history.
    pub warm: bool,
    /// The feature vector, in `NAMES` order.
    pub features: [f64; FEATURES],
    /// Raw indicators.
    pub raw: RawIndicators,
    /// The side of this bar's liquidity grab.
    pub sweep: Sweep,
    /// The most recent unfilled fair-value gap.
    pub active_fvg: Option<Fvg>,
    /// The nearest unmitigated order block.
    pub nearest_order_block: Option<OrderBlock>,
    /// 15m market structure (+1, −1, 0).
    pub structure_15m: i8,
    /// 1h market structure (+1, −1, 0).
    pub structure_1h: i8,
}

impl FeatureSnapshot {
    /// The snapshot before any bar: every feature neutral.
    pub fn neutral() -> Self {
        Self {
            open_time_ms: 0,
            bar_index: 0,
            warm: false,
            features: NEUTRAL,
            raw: RawIndicators::default(),
            sweep: Sweep::None,
            active_fvg: None,
            nearest_order_block: None,
            structure_15m: 0,
            structure_1h: 0,
        }
    }
}

/// Market structure of a higher timeframe rolled up from 1m bars.
#[derive(Clone, Debug)]
pub struct TimeframeStructure {
    interval_ms: i64,
    bucket: Option<(i64, Ohlc)>,
    structure: Structure,
}

impl TimeframeStructure {
    /// Structure of `interval_ms` bars with swing lookback `lookback`.
    pub fn new(interval_ms: i64, lookback: usize) -> Self {
        Self { interval_ms, bucket: None, structure: Structure::new(lookback, 0, 1) }
    }

    /// Adds a closed 1m bar; the higher bar closes with its last minute (or when a later
    /// bucket begins, if minutes are missing).
    pub fn on_minute(&mut self, open_time_ms: i64, bar: Ohlc) {
        let start = open_time_ms - open_time_ms.rem_euclid(self.interval_ms);
        if let Some((s, pending)) = self.bucket {
            if s != start {
                self.structure.update(pending);
                self.bucket = None;
            }
        }
        let merged = match self.bucket {
            Some((_, b)) => {
                Ohlc { open: b.open, high: b.high.max(bar.high), low: b.low.min(bar.low), close: bar.close }
            }
            None => bar,
        };
        self.bucket = Some((start, merged));
        if open_time_ms + 60_000 >= start + self.interval_ms {
            self.structure.update(merged);
            self.bucket = None;
        }
    }

    /// +1, −1 or 0.
    pub fn state(&self) -> i8 {
        self.structure.state()
    }
}

/// The analytics state of one symbol.
#[derive(Clone, Debug)]
pub struct FeatureEngine {
    config: FeatureConfig,
    bars_seen: u64,
    last_open_time: Option<i64>,
    prev_close: Option<f64>,
    rsi: Rsi,
    atr: Atr,
    ema12: Ema,
    ema26: Ema,
    volume_sma: Sma,
    trades_sma: Sma,
    /// Squared 1m log returns.
    squared_returns: Window<f64>,
    structure: Structure,
    fvgs: FvgTracker,
    order_blocks: OrderBlocks,
    htf: [TimeframeStructure; 2],
    snapshot: FeatureSnapshot,
}

impl FeatureEngine {
    /// A symbol's state, all of it allocated here.
    pub fn new(config: FeatureConfig) -> Self {
        let history =
            (2 * config.swing_lookback + 1).max(config.order_block_search + 1).max(config.momentum_bars + 1);
        Self {
            config,
            bars_seen: 0,
            last_open_time: None,
            prev_close: None,
            rsi: Rsi::new(14),
            atr: Atr::new(14),
            ema12: Ema::new(12),
            ema26: Ema::new(26),
            volume_sma: Sma::new(20),
            trades_sma: Sma::new(20),
            squared_returns: Window::new(config.realized_vol_long.max(config.realized_vol_short), 0.0),
            structure: Structure::new(config.swing_lookback, history, config.swing_levels),
            fvgs: FvgTracker::new(config.fair_value_gaps),
            order_blocks: OrderBlocks::new(config.order_blocks, config.order_block_search),
            htf: [
                TimeframeStructure::new(900_000, config.swing_lookback),
                TimeframeStructure::new(3_600_000, config.swing_lookback),
            ],
            snapshot: FeatureSnapshot::neutral(),
        }
    }

    /// Adds a closed 1m bar and computes its features. A refused bar leaves the state as it was.
    pub fn update(&mut self, bar: &Candle) -> Result<&FeatureSnapshot, BarError> {
        bar.validate()?;
        if let Some(previous) = self.last_open_time.filter(|&p| bar.open_time_ms <= p) {
            return Err(BarError::NotAfterPrevious { time: bar.open_time_ms, previous });
        }
        self.last_open_time = Some(bar.open_time_ms);
        let index = self.bars_seen;
        self.bars_seen += 1;
        if let Some(prev) = self.prev_close.replace(bar.close) {
            let r = (bar.close / prev).ln();
            self.squared_returns.push(r * r);
        }
        let raw = RawIndicators {
            rsi14: self.rsi.update(bar.close),
            atr14: self.atr.update(bar.high, bar.low, bar.close),
            ema12: self.ema12.update(bar.close),
            ema26: self.ema26.update(bar.close),
            sma20_volume: self.volume_sma.update(bar.volume),
        };
        if let Some(trades) = bar.flow.trades {
            self.trades_sma.update(trades as f64);
        }
        let ohlc = bar.ohlc();
        let structure = self.structure.update(ohlc);
        self.fvgs.update(index, self.structure.bars());
        self.order_blocks.update(index, self.structure.bars(), structure.break_dir);
        for tf in &mut self.htf {
            tf.on_minute(bar.open_time_ms, ohlc);
        }
        let sweep = liquidity_grab(&ohlc, self.structure.last_high(), self.structure.last_low());
        self.snapshot = FeatureSnapshot {
            open_time_ms: bar.open_time_ms,
            bar_index: index,
            warm: self.is_warm(),
            features: [0.0; FEATURES],
            raw,
            sweep,
            active_fvg: self.fvgs.latest_unfilled(),
            nearest_order_block: self.order_blocks.nearest_unmitigated(bar.close),
            structure_15m: self.htf[0].state(),
            structure_1h: self.htf[1].state(),
        };
        self.snapshot.features = self.features(bar);
        Ok(&self.snapshot)
    }

    fn is_warm(&self) -> bool {
        self.bars_seen >= self.config.warmup_bars()
    }

    fn features(&self, bar: &Candle) -> [f64; FEATURES] {
        let s = &self.snapshot;
        let close = bar.close;
        let atr = s.raw.atr14.filter(|a| *a > 0.0);
        let per_atr = |x: f64, k: f64| atr.map(|a| x / (k * a));
        let volume_sma = s.raw.sma20_volume.filter(|v| *v > 0.0);
        let range = bar.high - bar.low;
        let market_structure = self.structure.state();
        let ob_direction = match market_structure {
            1 => Some(Direction::Bullish),
            -1 => Some(Direction::Bearish),
            _ => None,
        };
        let fvg = s.active_fvg;
        let mut f = NEUTRAL;
        f[0] = f64::from(market_structure);
        f[1] = f64::from(u8::from(ob_direction.is_some_and(|d| self.order_blocks.any_unmitigated(d))));
        if let Some(sma) = volume_sma.filter(|_| range > 0.0) {
            f[2] = (bar.close - bar.open).abs() / range * (bar.volume / (2.0 * sma)).min(1.0);
        }
        f[3] = f64::from(u8::from(s.sweep != Sweep::None));
        if let Some(gap) = fvg {
            f[4] = per_atr(gap.size(), 1.0).unwrap_or(0.0);
            f[5] = per_atr(gap.mid() - close, 5.0).map_or(0.0, |x| x.clamp(-1.0, 1.0));
        }
        if let Some(ob) = s.nearest_order_block {
            f[6] = per_atr((close - ob.mid()).abs(), 5.0).map_or(0.0, |x| 1.0 - x.clamp(0.0, 1.0));
        }
        f[7] = volume_sma.map_or(1.0, |sma| bar.volume / sma);
        f[8] = self.rsi.gain_share().unwrap_or(0.5);
        let then = self.structure.bars().get(self.config.momentum_bars);
        f[9] = then.and_then(|b| per_atr(close - b.close, 3.0)).map_or(0.0, |x| x.clamp(-1.0, 1.0));
        f[10] = self
            .structure
            .nearest_level_distance(close)
            .and_then(|d| per_atr(d, 10.0))
            .map_or(1.0, |x| x.clamp(0.0, 1.0));
        f[12] = bar.flow.spread_bps.map_or(0.0, |x| x.max(0.0));
        f[13] = bar.flow.book_imbalance.map_or(0.0, |x| x.clamp(-1.0, 1.0));
        f[14] = match bar.flow.taker {
            Some((buy, sell)) if buy + sell > 0.0 => ((buy - sell) / (buy + sell)).clamp(-1.0, 1.0),
            _ => 0.0,
        };
        f[15] = bar.flow.vwap.and_then(|vwap| per_atr(close - vwap, 1.0)).map_or(0.0, |x| x.clamp(-1.0, 1.0));
        f[16] = self.realized_vol_ratio().unwrap_or(1.0);
        let trades_sma = self.trades_sma.value().filter(|v| *v > 0.0);
        f[17] = bar.flow.trades.zip(trades_sma).map_or(1.0, |(n, sma)| n as f64 / sma);
        for (value, neutral) in f.iter_mut().zip(NEUTRAL) {
            if !value.is_finite() {
                *value = neutral;
            }
        }
        f
    }

    /// RMS of the short window of 1m log returns over that of the long window.
    fn realized_vol_ratio(&self) -> Option<f64> {
        let window = &self.squared_returns;
        if window.len() < self.config.realized_vol_long {
            return None;
        }
        // Summed afresh each bar (no running sum to drift away from an exact zero); four
        // accumulators over the contiguous slots let the long window vectorise.
        let mut lanes = [0.0; 4];
        for chunk in window.slots().chunks(4) {
            for (lane, x) in lanes.iter_mut().zip(chunk) {
                *lane += x;
            }
        }
        let long = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        let short: f64 = window.iter().take(self.config.realized_vol_short).sum();
        let (n_long, n_short) = (window.capacity() as f64, self.config.realized_vol_short as f64);
        (long > 0.0).then(|| ((short / n_short) / (long / n_long)).sqrt())
    }

    /// The snapshot of the last accepted bar.
    pub fn snapshot(&self) -> &FeatureSnapshot {
        &self.snapshot
    }

    /// The fair-value gap with identity `id`, while it is still held (for signal decay).
    pub fn fvg(&self, id: u64) -> Option<Fvg> {
        self.fvgs.get(id)
    }

    /// The order blocks held, newest first.
    pub fn order_blocks(&self) -> impl Iterator<Item = OrderBlock> + '_ {
        self.order_blocks.iter()
    }

    /// Bars accepted.
    pub fn bars_seen(&self) -> u64 {
        self.bars_seen
    }

    /// Bytes this symbol's analytics occupy, inline and on the heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.volume_sma.heap_bytes()
            + self.trades_sma.heap_bytes()
            + self.squared_returns.heap_bytes()
            + self.structure.heap_bytes()
            + self.fvgs.heap_bytes()
            + self.order_blocks.heap_bytes()
            + self.htf.iter().map(|tf| tf.structure.heap_bytes()).sum::<usize>()
    }
}
