//! A deterministic synthetic USDⓈ-M market: N symbols, seeded, stepped 100 ms at a time.
//!
//! Each symbol has its own generator (seed mixed with its index), so adding symbols never
//! changes another symbol's flow. Per step: a price move shaped by the symbol's regime
//! (range, trend, volatility burst, liquidity sweep — trends persist and most sweeps are
//! followed by a move the other way, a structure a model can learn), taker trades at the top of the book
//! (aggregated into aggTrades), one diff-depth update with contiguous `U`/`u`/`pu`, a
//! bookTicker carrying the same `u` when the top changed; every second a kline update and a
//! markPrice (funding every 8 h); at each minute the closed kline, which equals the trades it
//! summarises. Payloads have today's shape (aggTrade's `nq`, markPrice's `ap` and `st`). Before the live start, `history_bars` 1m bars exist for REST warm-up.

use crate::market::{push_quoted, Bar, Batch, Msg, QueryError, Source, SymbolInfo};
use crate::rng::Rng;
use aegis_wire::{EventKind, SCALE};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// Simulated time per step.
pub const STEP_MS: i64 = 100;
const MINUTE_MS: i64 = 60_000;
const FUNDING_INTERVAL_MS: i64 = 8 * 3_600_000;
/// How often a liquidity sweep is followed by a trend in the reversal direction.
const SWEEP_FOLLOW_THROUGH: f64 = 0.6;
/// Levels kept on each side of each synthetic book.
pub const BOOK_LEVELS: i64 = 60;

/// Settings of the synthetic market.
#[derive(Clone, Debug)]
pub struct SyntheticConfig {
    /// Number of symbols (1…1,000).
    pub symbols: usize,
    /// Seed.
    pub seed: u64,
    /// Simulated start time, ms since the epoch (a minute boundary).
    pub start_ms: i64,
    /// 1m bars of history before the start.
    pub history_bars: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z.
        Self { symbols: 20, seed: 1, start_ms: 1_767_225_600_000, history_bars: 1_000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Regime {
    Range,
    TrendUp,
    TrendDown,
    Burst,
    SweepDown,
    SweepUp,
}

struct Streams {
    trade: Arc<str>,
    agg_trade: Arc<str>,
    kline: Arc<str>,
    book_ticker: Arc<str>,
    depth: Arc<str>,
    mark_price: Arc<str>,
    force_order: Arc<str>,
}

struct SymbolSim {
    info: SymbolInfo,
    name: Arc<str>,
    streams: Streams,
    rng: Rng,
    /// Best bid in ticks; best ask = bid + spread.
    bid_top: i64,
    spread: i64,
    /// Anchor the range regime reverts to, in ticks.
    anchor: f64,
    regime: Regime,
    regime_steps_left: u32,
    regime_len: u32,
    sigma_ticks: f64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_update_id: u64,
    next_trade_id: u64,
    next_agg_id: u64,
    funding_rate: i64,
    bars: Vec<Bar>,
    current: Option<Bar>,
    last_top: (i64, i64, i64, i64),
    /// The latest aggTrades, oldest first, for `/fapi/v1/aggTrades` (gap fills)…
    recent_aggs: std::collections::VecDeque<AggPrint>,
    /// …at most this many.
    recent_aggs_cap: usize,
}

/// aggTrades kept for REST across all symbols (≈ 48 MiB), shared out evenly: with 20
/// symbols at 60× speed about a minute of each symbol's flow.
pub const RECENT_AGG_TRADES: usize = 1 << 20;
/// Bounds of the per-symbol share.
const RECENT_AGG_TRADES_PER_SYMBOL: std::ops::RangeInclusive<usize> = 1024..=262_144;

/// One aggTrade as REST serves it.
#[derive(Clone, Copy, Debug)]
struct AggPrint {
    agg: u64,
    price: i64,
    qty: i64,
    first: u64,
    last: u64,
    time_ms: i64,
    buyer_is_maker: bool,
}

/// A book level as (price in ticks, quantity).
type LevelTicks = (i64, i64);

struct Fill {
    time_ms: i64,
    price: i64,
    qty: i64,
    buyer_is_maker: bool,
}

/// The synthetic market source.
pub struct Synthetic {
    symbols: Vec<SymbolSim>,
    now_ms: i64,
    step: u64,
    stream_index: std::collections::HashMap<String, (Arc<str>, EventKind)>,
}

impl Synthetic {
    /// Builds the market and its history.
    pub fn new(config: &SyntheticConfig) -> Self {
        let start = config.start_ms - config.start_ms.rem_euclid(MINUTE_MS);
        let symbols: Vec<SymbolSim> =
            (0..config.symbols.clamp(1, 1_000)).map(|i| SymbolSim::new(i, config, start)).collect();
        let mut stream_index = std::collections::HashMap::new();
        for s in &symbols {
            let lower = s.name.to_ascii_lowercase();
            for (stream, kind) in [
                (&s.streams.trade, EventKind::Trade),
                (&s.streams.agg_trade, EventKind::AggTrade),
                (&s.streams.kline, EventKind::Kline),
                (&s.streams.book_ticker, EventKind::BookTicker),
                (&s.streams.depth, EventKind::DepthUpdate),
                (&s.streams.mark_price, EventKind::MarkPriceUpdate),
                (&s.streams.force_order, EventKind::ForceOrder),
            ] {
                stream_index.insert(stream.to_string(), (stream.clone(), kind));
            }
            for alias in ["depth", "depth@0ms", "depth@250ms", "depth@500ms"] {
                stream_index
                    .insert(format!("{lower}@{alias}"), (s.streams.depth.clone(), EventKind::DepthUpdate));
            }
            stream_index.insert(
                format!("{lower}@markPrice"),
                (s.streams.mark_price.clone(), EventKind::MarkPriceUpdate),
            );
        }
        Self { symbols, now_ms: start, step: 0, stream_index }
    }

    /// Stream names of the default subscription for every symbol.
    pub fn default_streams(&self) -> Vec<String> {
        self.symbols
            .iter()
            .flat_map(|s| {
                [
                    &s.streams.agg_trade,
                    &s.streams.kline,
                    &s.streams.book_ticker,
                    &s.streams.depth,
                    &s.streams.mark_price,
                ]
                .map(|n| n.to_string())
            })
            .collect()
    }

    /// Writes the market as `<time_ns> <envelope>` lines — the hftbacktest layout the
    /// replay reader takes — so it can be backtested (`aegis replay`): first the history,
    /// as closed 1m klines at their close times, then `minutes` of the stream. Only the
    /// channels in `channels` (`aggTrade`, `kline_1m`, …; all when empty) are written.
    /// Returns the lines written.
    pub fn dump(
        &mut self,
        minutes: u64,
        channels: &[String],
        out: &mut impl std::io::Write,
    ) -> std::io::Result<u64> {
        let wanted = |stream: &str| {
            channels.is_empty()
                || stream.split_once('@').is_some_and(|(_, c)| channels.iter().any(|w| w == c))
        };
        let mut lines = 0;
        if wanted("x@kline_1m") {
            let depth = self.symbols.iter().map(|s| s.bars.len()).max().unwrap_or(0);
            for i in 0..depth {
                for sim in &self.symbols {
                    let Some(bar) = sim.bars.get(i) else { continue };
                    let close_ms = bar.open_time_ms + bar.interval_ms;
                    let msg = sim.kline_msg(bar, close_ms, true);
                    writeln!(out, "{} {}", (close_ms as u64).saturating_mul(1_000_000), msg.envelope)?;
                    lines += 1;
                }
            }
        }
        let end_ms = self.now_ms + minutes as i64 * MINUTE_MS;
        // Through the step that starts at the last boundary, which closes the last minute.
        while self.now_ms <= end_ms {
            let Some(batch) = self.next_batch() else { break };
            for msg in batch.msgs.iter().filter(|m| wanted(&m.stream)) {
                writeln!(out, "{} {}", batch.time_ns, msg.envelope)?;
                lines += 1;
            }
        }
        Ok(lines)
    }

    fn step_all(&mut self) -> Vec<Msg> {
        let step_start = self.now_ms;
        let step_end = step_start + STEP_MS;
        let second_boundary = step_end % 1_000 == 0;
        let mut msgs = Vec::new();
        for sim in &mut self.symbols {
            sim.step(step_start, step_end, second_boundary, &mut msgs);
        }
        self.now_ms = step_end;
        self.step += 1;
        msgs
    }
}

impl Source for Synthetic {
    fn next_batch(&mut self) -> Option<Batch> {
        let msgs = self.step_all();
        Some(Batch { time_ns: (self.now_ms as u64).saturating_mul(1_000_000), msgs })
    }

    fn stream_kind(&self, name: &str) -> Option<EventKind> {
        self.stream_index.get(name).map(|(_, k)| *k)
    }

    fn canonical_stream(&self, name: &str) -> Option<Arc<str>> {
        self.stream_index.get(name).map(|(c, _)| c.clone())
    }

    fn symbols(&self) -> Vec<SymbolInfo> {
        self.symbols.iter().map(|s| s.info.clone()).collect()
    }

    fn bars_1m(&self, symbol: &str) -> Result<Vec<Bar>, QueryError> {
        let sim = self.symbols.iter().find(|s| &*s.name == symbol).ok_or(QueryError::UnknownSymbol)?;
        let mut bars = sim.bars.clone();
        bars.extend(sim.current);
        Ok(bars)
    }

    fn depth_snapshot(&self, symbol: &str, limit: usize) -> Result<String, QueryError> {
        let sim = self.symbols.iter().find(|s| &*s.name == symbol).ok_or(QueryError::UnknownSymbol)?;
        Ok(sim.snapshot(limit, self.now_ms))
    }

    fn book(&self, symbol: &str, depth: usize) -> Result<crate::market::Book, QueryError> {
        let sim = self.symbols.iter().find(|s| &*s.name == symbol).ok_or(QueryError::UnknownSymbol)?;
        let level = |(ticks, qty): (&i64, &i64)| (sim.price(*ticks), *qty);
        Ok(crate::market::Book {
            bids: sim.bids.iter().rev().take(depth).map(level).collect(),
            asks: sim.asks.iter().take(depth).map(level).collect(),
        })
    }

    fn agg_trades(&self, symbol: &str, from_id: Option<u64>, limit: usize) -> Result<String, QueryError> {
        let sim = self.symbols.iter().find(|s| &*s.name == symbol).ok_or(QueryError::UnknownSymbol)?;
        Ok(sim.agg_trades(from_id, limit))
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// Name, price, price decimals, quantity decimals, min notional of the well-known symbols.
const MAJORS: [(&str, f64, u32, u32, i64); 20] = [
    ("BTCUSDT", 65_000.0, 1, 3, 100),
    ("ETHUSDT", 3_400.0, 2, 3, 20),
    ("BNBUSDT", 600.0, 2, 2, 5),
    ("SOLUSDT", 150.0, 2, 0, 5),
    ("XRPUSDT", 0.6, 4, 1, 5),
    ("DOGEUSDT", 0.15, 5, 0, 5),
    ("ADAUSDT", 0.45, 4, 0, 5),
    ("AVAXUSDT", 35.0, 3, 0, 5),
    ("LINKUSDT", 15.0, 3, 2, 5),
    ("DOTUSDT", 7.0, 3, 1, 5),
    ("LTCUSDT", 80.0, 2, 3, 20),
    ("TRXUSDT", 0.12, 5, 0, 5),
    ("ATOMUSDT", 9.0, 3, 2, 5),
    ("NEARUSDT", 5.0, 3, 0, 5),
    ("APTUSDT", 9.0, 4, 1, 5),
    ("ARBUSDT", 1.1, 4, 1, 5),
    ("OPUSDT", 2.5, 4, 1, 5),
    ("FILUSDT", 5.0, 3, 1, 5),
    ("SUIUSDT", 1.5, 4, 1, 5),
    ("INJUSDT", 25.0, 3, 1, 5),
];

fn symbol_info(index: usize, rng: &mut Rng) -> (SymbolInfo, f64) {
    let (name, price, price_dec, qty_dec, min_notional) = match MAJORS.get(index) {
        Some(&(n, p, pd, qd, mn)) => (n.to_string(), p, pd, qd, mn),
        None => {
            let price = 10f64.powf(rng.unit() * 4.0 - 1.0);
            let price_dec = (4.0 - price.log10().floor()).clamp(1.0, 7.0) as u32;
            let qty_dec = (price.log10().floor() + 1.0).clamp(0.0, 3.0) as u32;
            (format!("SYN{index:04}USDT"), price, price_dec, qty_dec, 5)
        }
    };
    let unit = |d: u32| 10_i64.pow(8 - d);
    let info = SymbolInfo {
        base: name.trim_end_matches("USDT").to_string(),
        quote: "USDT".into(),
        symbol: name,
        price_precision: price_dec,
        qty_precision: qty_dec,
        tick_size: unit(price_dec),
        step_size: unit(qty_dec),
        min_notional: min_notional * SCALE,
        max_leverage: if index < 2 { 125 } else { 50 },
    };
    (info, price)
}

impl SymbolSim {
    fn new(index: usize, config: &SyntheticConfig, start_ms: i64) -> Self {
        let mut rng = Rng::new(config.seed ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        let (info, price) = symbol_info(index, &mut rng);
        let lower = info.symbol.to_ascii_lowercase();
        let stream = |channel: &str| -> Arc<str> { format!("{lower}@{channel}").into() };
        let streams = Streams {
            trade: stream("trade"),
            agg_trade: stream("aggTrade"),
            kline: stream("kline_1m"),
            book_ticker: stream("bookTicker"),
            depth: stream("depth@100ms"),
            mark_price: stream("markPrice@1s"),
            force_order: stream("forceOrder"),
        };
        let tick_f = info.tick_size as f64 / SCALE as f64;
        let bid_top = (price / tick_f).round().max(BOOK_LEVELS as f64 + 10.0) as i64;
        // 0.08 % per minute spread over 600 steps.
        let sigma_ticks = (price * 0.0008 / tick_f / 600f64.sqrt()).max(0.05);
        let mut sim = Self {
            name: info.symbol.as_str().into(),
            info,
            streams,
            rng,
            bid_top,
            spread: 1,
            anchor: bid_top as f64,
            regime: Regime::Range,
            regime_steps_left: 0,
            regime_len: 1,
            sigma_ticks,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_update_id: 1_000_000 + index as u64 * 7_919,
            next_trade_id: 1,
            next_agg_id: 1,
            recent_aggs: std::collections::VecDeque::new(),
            recent_aggs_cap: (RECENT_AGG_TRADES / config.symbols.max(1))
                .clamp(*RECENT_AGG_TRADES_PER_SYMBOL.start(), *RECENT_AGG_TRADES_PER_SYMBOL.end()),
            funding_rate: 10_000,
            bars: Vec::with_capacity(config.history_bars + 64),
            current: None,
            last_top: (0, 0, 0, 0),
        };
        sim.build_history(config.history_bars, start_ms);
        sim.anchor = sim.bid_top as f64;
        sim.rebuild_book();
        sim.last_top = sim.top();
        sim
    }

    fn price(&self, ticks: i64) -> i64 {
        ticks * self.info.tick_size
    }

    fn top(&self) -> (i64, i64, i64, i64) {
        let bid_qty = self.bids.get(&self.bid_top).copied().unwrap_or(0);
        let ask_qty = self.asks.get(&(self.bid_top + self.spread)).copied().unwrap_or(0);
        (self.bid_top, bid_qty, self.bid_top + self.spread, ask_qty)
    }

    /// A random quantity worth roughly `notional` USDT, at least one step.
    fn random_qty(&mut self, notional: f64) -> i64 {
        let price = self.price(self.bid_top) as f64 / SCALE as f64;
        let step = self.info.step_size as f64 / SCALE as f64;
        let scale = (-self.rng.unit().max(1e-9).ln()).min(8.0);
        let steps = (notional * scale / price / step).round().max(1.0);
        steps as i64 * self.info.step_size
    }

    fn build_history(&mut self, bars: usize, start_ms: i64) {
        let first_open = start_ms - bars as i64 * MINUTE_MS;
        for i in 0..bars {
            let open_time = first_open + i as i64 * MINUTE_MS;
            self.pick_regime_if_due(600);
            let open = self.price(self.bid_top);
            let (mut high, mut low) = (open, open);
            for _ in 0..60 {
                self.move_price(10.0);
                let p = self.price(self.bid_top);
                high = high.max(p);
                low = low.min(p);
            }
            self.regime_steps_left = self.regime_steps_left.saturating_sub(599);
            let trades = self.rng.range(20, 400) as u64;
            let volume = i128::from(self.random_qty(2_000.0)) * i128::from(trades as i32);
            let close = self.price(self.bid_top);
            let vwap = (open + close) / 2;
            let quote = volume * i128::from(vwap) / i128::from(SCALE);
            let first = self.next_trade_id as i64;
            self.next_trade_id += trades;
            self.bars.push(Bar {
                open_time_ms: open_time,
                interval_ms: MINUTE_MS,
                open,
                high,
                low,
                close,
                volume,
                quote_volume: quote,
                taker_buy_volume: volume / 2,
                taker_buy_quote_volume: quote / 2,
                trades,
                first_trade_id: first,
                last_trade_id: first + trades as i64 - 1,
            });
        }
        self.next_agg_id = self.next_trade_id / 2 + 1;
    }

    fn pick_regime_if_due(&mut self, steps_per_unit: u32) {
        if self.regime_steps_left > 0 {
            return;
        }
        let roll = self.rng.unit();
        let follow_through = self.rng.unit() < SWEEP_FOLLOW_THROUGH;
        self.regime = match roll {
            // A liquidity sweep is followed by a move the other way (SPEC §5's thesis).
            _ if follow_through && self.regime == Regime::SweepDown => Regime::TrendUp,
            _ if follow_through && self.regime == Regime::SweepUp => Regime::TrendDown,
            r if r < 0.35 => Regime::Range,
            r if r < 0.55 => Regime::TrendUp,
            r if r < 0.75 => Regime::TrendDown,
            r if r < 0.85 => Regime::Burst,
            r if r < 0.925 => Regime::SweepDown,
            _ => Regime::SweepUp,
        };
        let minutes = match self.regime {
            Regime::SweepDown | Regime::SweepUp => 1,
            Regime::Burst => self.rng.range(1, 4) as u32,
            _ => self.rng.range(3, 15) as u32,
        };
        self.regime_len = minutes * steps_per_unit;
        self.regime_steps_left = self.regime_len;
        self.anchor = self.bid_top as f64;
    }

    /// Moves the best bid by one step's worth of the regime's dynamics; `scale` widens the
    /// step (history runs coarser steps).
    fn move_price(&mut self, scale: f64) {
        let sigma = self.sigma_ticks * scale.sqrt();
        // Trends drift about a minute's volatility per minute, for 3–15 minutes: momentum
        // persists enough for a model to learn (the 5-bar return correlates ≈ 0.35 with the
        // previous 5 bars'). Sweeps push ~2.5 minutes' worth down (or up) in the first 40 %
        // of their minute, then recover past the start.
        let per_step_drift = self.sigma_ticks * 0.04 * scale;
        let sweep_drift = self.sigma_ticks * 0.02 * scale;
        let elapsed = f64::from(self.regime_len - self.regime_steps_left.min(self.regime_len));
        let progress = elapsed / f64::from(self.regime_len.max(1));
        let (drift, vol) = match self.regime {
            Regime::Range => ((self.anchor - self.bid_top as f64) * 0.0005 * scale, sigma),
            Regime::TrendUp => (per_step_drift, sigma),
            Regime::TrendDown => (-per_step_drift, sigma),
            Regime::Burst => (0.0, sigma * 3.0),
            // A sweep: a sharp push through the recent extreme, then a recovery past it.
            Regime::SweepDown => {
                (if progress < 0.4 { -sweep_drift * 12.0 } else { sweep_drift * 10.0 }, sigma)
            }
            Regime::SweepUp => (if progress < 0.4 { sweep_drift * 12.0 } else { -sweep_drift * 10.0 }, sigma),
        };
        let delta = (drift + vol * self.rng.normal()).round() as i64;
        self.bid_top = (self.bid_top + delta).max(BOOK_LEVELS + 10);
        self.regime_steps_left = self.regime_steps_left.saturating_sub(1);
    }

    fn level_qty(&mut self, distance: i64) -> i64 {
        let notional = 3_000.0 * (1.0 + distance as f64 / 8.0);
        self.random_qty(notional)
    }

    fn rebuild_book(&mut self) {
        self.bids.clear();
        self.asks.clear();
        for k in 0..BOOK_LEVELS {
            let q = self.level_qty(k);
            self.bids.insert(self.bid_top - k, q);
            let q = self.level_qty(k);
            self.asks.insert(self.bid_top + self.spread + k, q);
        }
    }

    /// Re-centres the book on the current top; returns changed (price ticks, qty) per side.
    fn update_book(&mut self) -> (Vec<LevelTicks>, Vec<LevelTicks>) {
        let bid_range = (self.bid_top - BOOK_LEVELS + 1)..=self.bid_top;
        let ask_top = self.bid_top + self.spread;
        let ask_range = ask_top..=(ask_top + BOOK_LEVELS - 1);
        let mut bid_changes = Vec::new();
        let mut ask_changes = Vec::new();
        let stale_bids: Vec<i64> = self.bids.keys().copied().filter(|p| !bid_range.contains(p)).collect();
        for p in stale_bids {
            self.bids.remove(&p);
            bid_changes.push((p, 0));
        }
        let stale_asks: Vec<i64> = self.asks.keys().copied().filter(|p| !ask_range.contains(p)).collect();
        for p in stale_asks {
            self.asks.remove(&p);
            ask_changes.push((p, 0));
        }
        for p in bid_range {
            if !self.bids.contains_key(&p)
                || self.rng.chance(0.03)
                || p == self.bid_top && self.rng.chance(0.5)
            {
                let q = self.level_qty(self.bid_top - p);
                self.bids.insert(p, q);
                bid_changes.push((p, q));
            }
        }
        for p in ask_range {
            if !self.asks.contains_key(&p) || self.rng.chance(0.03) || p == ask_top && self.rng.chance(0.5) {
                let q = self.level_qty(p - ask_top);
                self.asks.insert(p, q);
                ask_changes.push((p, q));
            }
        }
        bid_changes.sort_by_key(|c| std::cmp::Reverse(c.0));
        ask_changes.sort_by_key(|c| c.0);
        (bid_changes, ask_changes)
    }

    fn step(&mut self, step_start: i64, step_end: i64, second_boundary: bool, out: &mut Vec<Msg>) {
        if step_start % MINUTE_MS == 0 {
            self.close_bar(step_start, out);
        }
        self.pick_regime_if_due(600);
        let before = self.bid_top;
        self.move_price(1.0);
        let burst = matches!(self.regime, Regime::Burst | Regime::SweepDown | Regime::SweepUp);
        self.spread = if burst { self.rng.range(1, 3) } else { 1 };
        let fills = self.trades(step_start, self.bid_top - before, burst);
        self.emit_trades(&fills, out);
        let (bids, asks) = self.update_book();
        self.emit_depth(step_end, &bids, &asks, out);
        let top = self.top();
        if top != self.last_top {
            self.last_top = top;
            self.emit_book_ticker(step_end, out);
        }
        if second_boundary {
            self.emit_kline(step_end, false, out);
            self.emit_mark_price(step_end, out);
        }
        let sweeping = matches!(self.regime, Regime::SweepDown | Regime::SweepUp);
        if sweeping && self.rng.chance(0.02) {
            self.emit_force_order(step_end, out);
        }
    }

    fn trades(&mut self, step_start: i64, moved: i64, burst: bool) -> Vec<Fill> {
        let lambda = if burst { 4.0 } else { 1.2 };
        let count = self.rng.poisson(lambda) + u32::from(moved != 0);
        let buy_bias = (0.5 + 0.1 * moved.signum() as f64).clamp(0.1, 0.9);
        let mut offsets: Vec<i64> = (0..count).map(|_| self.rng.range(0, STEP_MS - 1)).collect();
        offsets.sort_unstable();
        offsets
            .into_iter()
            .map(|offset| {
                let taker_buys = self.rng.chance(buy_bias);
                let ticks = if taker_buys { self.bid_top + self.spread } else { self.bid_top };
                let qty = self.random_qty(1_500.0);
                Fill {
                    time_ms: step_start + offset,
                    price: self.price(ticks),
                    qty,
                    buyer_is_maker: !taker_buys,
                }
            })
            .collect()
    }

    fn emit_trades(&mut self, fills: &[Fill], out: &mut Vec<Msg>) {
        let mut group_start = 0;
        for (i, fill) in fills.iter().enumerate() {
            let id = self.next_trade_id;
            self.next_trade_id += 1;
            self.record_fill(fill, id);
            let mut p = String::with_capacity(160);
            let _ = write!(
                p,
                "{{\"e\":\"trade\",\"E\":{},\"T\":{},\"s\":\"{}\",\"t\":{id},\"p\":",
                fill.time_ms, fill.time_ms, self.name
            );
            push_quoted(&mut p, i128::from(fill.price), self.info.price_precision);
            p.push_str(",\"q\":");
            push_quoted(&mut p, i128::from(fill.qty), self.info.qty_precision);
            let _ = write!(p, ",\"X\":\"MARKET\",\"m\":{}}}", fill.buyer_is_maker);
            out.push(Msg::new(self.streams.trade.clone(), EventKind::Trade, self.name.clone(), &p));
            let next_joins = fills
                .get(i + 1)
                .is_some_and(|n| n.price == fill.price && n.buyer_is_maker == fill.buyer_is_maker);
            if !next_joins {
                let group = &fills[group_start..=i];
                let first_id = id - (group.len() as u64 - 1);
                self.emit_agg_trade(group, first_id, id, out);
                group_start = i + 1;
            }
        }
    }

    fn emit_agg_trade(&mut self, group: &[Fill], first_id: u64, last_id: u64, out: &mut Vec<Msg>) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let qty: i64 = group.iter().map(|f| f.qty).sum();
        let agg = self.next_agg_id;
        self.next_agg_id += 1;
        let mut p = String::with_capacity(160);
        let _ = write!(
            p,
            "{{\"e\":\"aggTrade\",\"E\":{},\"a\":{agg},\"s\":\"{}\",\"p\":",
            last.time_ms, self.name
        );
        push_quoted(&mut p, i128::from(first.price), self.info.price_precision);
        p.push_str(",\"q\":");
        push_quoted(&mut p, i128::from(qty), self.info.qty_precision);
        // Today's shape: `nq`, the quantity without RPI-order trades (none here), after `q`.
        p.push_str(",\"nq\":");
        push_quoted(&mut p, i128::from(qty), self.info.qty_precision);
        let _ = write!(
            p,
            ",\"f\":{first_id},\"l\":{last_id},\"T\":{},\"m\":{}}}",
            first.time_ms, first.buyer_is_maker
        );
        out.push(Msg::new(self.streams.agg_trade.clone(), EventKind::AggTrade, self.name.clone(), &p));
        if self.recent_aggs.len() == self.recent_aggs_cap {
            self.recent_aggs.pop_front();
        }
        self.recent_aggs.push_back(AggPrint {
            agg,
            price: first.price,
            qty,
            first: first_id,
            last: last_id,
            time_ms: first.time_ms,
            buyer_is_maker: first.buyer_is_maker,
        });
    }

    /// `/fapi/v1/aggTrades` rows from agg id `from` (the latest `limit` without one).
    fn agg_trades(&self, from: Option<u64>, limit: usize) -> String {
        let start = match from {
            Some(id) => self.recent_aggs.partition_point(|a| a.agg < id),
            None => self.recent_aggs.len().saturating_sub(limit),
        };
        let mut body = String::from("[");
        for a in self.recent_aggs.iter().skip(start).take(limit) {
            if body.len() > 1 {
                body.push(',');
            }
            let _ = write!(body, "{{\"a\":{},\"p\":", a.agg);
            push_quoted(&mut body, i128::from(a.price), self.info.price_precision);
            body.push_str(",\"q\":");
            push_quoted(&mut body, i128::from(a.qty), self.info.qty_precision);
            let _ = write!(
                body,
                ",\"f\":{},\"l\":{},\"T\":{},\"m\":{}}}",
                a.first, a.last, a.time_ms, a.buyer_is_maker
            );
        }
        body.push(']');
        body
    }

    fn record_fill(&mut self, fill: &Fill, id: u64) {
        let open_time = fill.time_ms - fill.time_ms.rem_euclid(MINUTE_MS);
        let prev_close = self.bars.last().map_or(fill.price, |b| b.close);
        let bar = self.current.get_or_insert_with(|| empty_bar(open_time, prev_close));
        let quote = i128::from(fill.qty) * i128::from(fill.price) / i128::from(SCALE);
        if bar.trades == 0 {
            bar.open = fill.price;
            bar.high = fill.price;
            bar.low = fill.price;
            bar.first_trade_id = id as i64;
        }
        bar.high = bar.high.max(fill.price);
        bar.low = bar.low.min(fill.price);
        bar.close = fill.price;
        bar.volume += i128::from(fill.qty);
        bar.quote_volume += quote;
        if !fill.buyer_is_maker {
            bar.taker_buy_volume += i128::from(fill.qty);
            bar.taker_buy_quote_volume += quote;
        }
        bar.trades += 1;
        bar.last_trade_id = id as i64;
    }

    fn close_bar(&mut self, boundary_ms: i64, out: &mut Vec<Msg>) {
        if self.current.is_some() {
            self.emit_kline(boundary_ms, true, out);
            self.bars.extend(self.current.take());
        }
        let prev_close = self.bars.last().map_or(self.price(self.bid_top), |b| b.close);
        self.current = Some(empty_bar(boundary_ms, prev_close));
    }

    fn emit_kline(&mut self, event_ms: i64, closed: bool, out: &mut Vec<Msg>) {
        let Some(bar) = self.current else { return };
        out.push(self.kline_msg(&bar, event_ms, closed));
    }

    /// The kline stream message for `bar`.
    fn kline_msg(&self, bar: &Bar, event_ms: i64, closed: bool) -> Msg {
        let info = &self.info;
        let mut p = String::with_capacity(360);
        let _ = write!(
            p,
            "{{\"e\":\"kline\",\"E\":{event_ms},\"s\":\"{s}\",\"k\":{{\"t\":{},\"T\":{},\"s\":\"{s}\",\"i\":\"1m\",\"f\":{},\"L\":{},\"o\":",
            bar.open_time_ms,
            bar.close_time_ms(),
            bar.first_trade_id,
            bar.last_trade_id,
            s = self.name
        );
        push_quoted(&mut p, i128::from(bar.open), info.price_precision);
        p.push_str(",\"c\":");
        push_quoted(&mut p, i128::from(bar.close), info.price_precision);
        p.push_str(",\"h\":");
        push_quoted(&mut p, i128::from(bar.high), info.price_precision);
        p.push_str(",\"l\":");
        push_quoted(&mut p, i128::from(bar.low), info.price_precision);
        p.push_str(",\"v\":");
        push_quoted(&mut p, bar.volume, info.qty_precision);
        let _ = write!(p, ",\"n\":{},\"x\":{closed},\"q\":", bar.trades);
        push_quoted(&mut p, bar.quote_volume, 8);
        p.push_str(",\"V\":");
        push_quoted(&mut p, bar.taker_buy_volume, info.qty_precision);
        p.push_str(",\"Q\":");
        push_quoted(&mut p, bar.taker_buy_quote_volume, 8);
        p.push_str(",\"B\":\"0\"}}");
        Msg::new(self.streams.kline.clone(), EventKind::Kline, self.name.clone(), &p)
    }

    fn push_levels(&self, p: &mut String, levels: &[(i64, i64)]) {
        p.push('[');
        for (i, &(ticks, qty)) in levels.iter().enumerate() {
            if i > 0 {
                p.push(',');
            }
            p.push('[');
            push_quoted(p, i128::from(self.price(ticks)), self.info.price_precision);
            p.push(',');
            push_quoted(p, i128::from(qty), self.info.qty_precision);
            p.push(']');
        }
        p.push(']');
    }

    fn emit_depth(&mut self, event_ms: i64, bids: &[(i64, i64)], asks: &[(i64, i64)], out: &mut Vec<Msg>) {
        let prev = self.last_update_id;
        let first = prev + 1;
        self.last_update_id += (bids.len() + asks.len()).max(1) as u64;
        let mut p = String::with_capacity(64 + 40 * (bids.len() + asks.len()));
        let _ = write!(
            p,
            "{{\"e\":\"depthUpdate\",\"E\":{event_ms},\"T\":{event_ms},\"s\":\"{}\",\"U\":{first},\"u\":{},\"pu\":{prev},\"b\":",
            self.name, self.last_update_id
        );
        self.push_levels(&mut p, bids);
        p.push_str(",\"a\":");
        self.push_levels(&mut p, asks);
        p.push('}');
        out.push(Msg::new(self.streams.depth.clone(), EventKind::DepthUpdate, self.name.clone(), &p));
    }

    fn emit_book_ticker(&mut self, event_ms: i64, out: &mut Vec<Msg>) {
        let (bid, bid_qty, ask, ask_qty) = self.top();
        let info = &self.info;
        let mut p = String::with_capacity(180);
        let _ =
            write!(p, "{{\"e\":\"bookTicker\",\"u\":{},\"s\":\"{}\",\"b\":", self.last_update_id, self.name);
        push_quoted(&mut p, i128::from(self.price(bid)), info.price_precision);
        p.push_str(",\"B\":");
        push_quoted(&mut p, i128::from(bid_qty), info.qty_precision);
        p.push_str(",\"a\":");
        push_quoted(&mut p, i128::from(self.price(ask)), info.price_precision);
        p.push_str(",\"A\":");
        push_quoted(&mut p, i128::from(ask_qty), info.qty_precision);
        let _ = write!(p, ",\"T\":{event_ms},\"E\":{event_ms}}}");
        out.push(Msg::new(self.streams.book_ticker.clone(), EventKind::BookTicker, self.name.clone(), &p));
    }

    fn emit_mark_price(&mut self, event_ms: i64, out: &mut Vec<Msg>) {
        let mid = (self.price(self.bid_top) + self.price(self.bid_top + self.spread)) / 2;
        let noise = (self.rng.normal() * self.info.tick_size as f64 * 0.3) as i64;
        let index = mid + noise;
        self.funding_rate = (self.funding_rate + self.rng.range(-200, 200)).clamp(-300_000, 300_000);
        let next_funding = event_ms - event_ms.rem_euclid(FUNDING_INTERVAL_MS) + FUNDING_INTERVAL_MS;
        let mut p = String::with_capacity(200);
        let _ = write!(p, "{{\"e\":\"markPriceUpdate\",\"E\":{event_ms},\"s\":\"{}\",\"p\":", self.name);
        push_quoted(&mut p, i128::from(mid), 8);
        p.push_str(",\"i\":");
        push_quoted(&mut p, i128::from(index), 8);
        p.push_str(",\"P\":");
        push_quoted(&mut p, i128::from(index), 8);
        p.push_str(",\"r\":");
        push_quoted(&mut p, i128::from(self.funding_rate), 8);
        // Today's shape: `ap` (the mark price's moving average) before `T`, `st` (symbol
        // type, 1 = USDⓈ-M) last, as Binance's SDK models them.
        p.push_str(",\"ap\":");
        push_quoted(&mut p, i128::from(mid), 8);
        let _ = write!(p, ",\"T\":{next_funding},\"st\":1}}");
        out.push(Msg::new(
            self.streams.mark_price.clone(),
            EventKind::MarkPriceUpdate,
            self.name.clone(),
            &p,
        ));
    }

    fn emit_force_order(&mut self, event_ms: i64, out: &mut Vec<Msg>) {
        // Falling price liquidates longs (a SELL order), rising price shorts (a BUY order).
        let sell = self.regime == Regime::SweepDown;
        let qty = self.random_qty(20_000.0);
        let (ticks, side) =
            if sell { (self.bid_top - 3, "SELL") } else { (self.bid_top + self.spread + 3, "BUY") };
        let avg = if sell { self.bid_top } else { self.bid_top + self.spread };
        let info = &self.info;
        let mut p = String::with_capacity(240);
        let _ = write!(p, "{{\"e\":\"forceOrder\",\"E\":{event_ms},\"o\":{{\"s\":\"{}\",\"S\":\"{side}\",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":", self.name);
        push_quoted(&mut p, i128::from(qty), info.qty_precision);
        p.push_str(",\"p\":");
        push_quoted(&mut p, i128::from(self.price(ticks)), info.price_precision);
        p.push_str(",\"ap\":");
        push_quoted(&mut p, i128::from(self.price(avg)), info.price_precision);
        p.push_str(",\"X\":\"FILLED\",\"l\":");
        push_quoted(&mut p, i128::from(qty), info.qty_precision);
        p.push_str(",\"z\":");
        push_quoted(&mut p, i128::from(qty), info.qty_precision);
        let _ = write!(p, ",\"T\":{event_ms}}}}}");
        out.push(Msg::new(self.streams.force_order.clone(), EventKind::ForceOrder, self.name.clone(), &p));
    }

    fn snapshot(&self, limit: usize, now_ms: i64) -> String {
        let bids: Vec<(i64, i64)> = self.bids.iter().rev().take(limit).map(|(p, q)| (*p, *q)).collect();
        let asks: Vec<(i64, i64)> = self.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect();
        let mut body = String::with_capacity(64 + 40 * (bids.len() + asks.len()));
        let _ = write!(
            body,
            "{{\"lastUpdateId\":{},\"E\":{now_ms},\"T\":{now_ms},\"bids\":",
            self.last_update_id
        );
        self.push_levels(&mut body, &bids);
        body.push_str(",\"asks\":");
        self.push_levels(&mut body, &asks);
        body.push('}');
        body
    }
}

fn empty_bar(open_time_ms: i64, price: i64) -> Bar {
    Bar {
        open_time_ms,
        interval_ms: MINUTE_MS,
        open: price,
        high: price,
        low: price,
        close: price,
        volume: 0,
        quote_volume: 0,
        taker_buy_volume: 0,
        taker_buy_quote_volume: 0,
        trades: 0,
        first_trade_id: -1,
        last_trade_id: -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_agg_trades_repeat_the_streamed_ones_from_any_id() {
        let mut market =
            Synthetic::new(&SyntheticConfig { symbols: 2, history_bars: 5, ..Default::default() });
        let mut streamed: Vec<serde_json::Value> = Vec::new();
        while streamed.len() < 300 {
            for msg in market.next_batch().unwrap().msgs {
                if msg.kind == EventKind::AggTrade && &*msg.symbol == "BTCUSDT" {
                    streamed.push(serde_json::from_str(msg.payload()).unwrap());
                }
            }
        }
        let from = streamed[100]["a"].as_u64().unwrap();
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&market.agg_trades("BTCUSDT", Some(from), 50).unwrap()).unwrap();
        assert_eq!(rows.len(), 50);
        for (row, live) in rows.iter().zip(&streamed[100..150]) {
            for key in ["a", "p", "q", "f", "l", "T", "m"] {
                assert_eq!(row[key], live[key], "{key}: {row} vs {live}");
            }
        }
        let latest: Vec<serde_json::Value> =
            serde_json::from_str(&market.agg_trades("BTCUSDT", None, 3).unwrap()).unwrap();
        assert_eq!(latest.last().unwrap()["a"], streamed.last().unwrap()["a"]);
        assert!(market.agg_trades("NOPEUSDT", None, 3).is_err());
    }
}
