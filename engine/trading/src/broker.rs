//! The paper broker (SPEC §6): entries fill at the next trade plus slippage, exits at the
//! first trade or mark price through the target or stop (or at the next trade after a
//! decay, rotation or manual close), liquidation when a trade or mark price crosses the
//! isolated liquidation price, funding at each funding time, taker fees on both legs. Equity is the wallet plus
//! unrealised PnL at the latest price; the daily-loss and drawdown guards read it.
//!
//! Everything is sized at construction: positions live in a vector with fixed capacity,
//! closed trades go to a caller's sink by reference, no event allocates.

use crate::decay::Decay;
use crate::policy::{Rule, Side};
use crate::reward;
use crate::rules::SymbolRules;
use crate::sizing::{AccountView, Order};
use aegis_analytics::FEATURES;

/// Milliseconds in a UTC day (the daily-loss guard's period).
const DAY_MS: i64 = 86_400_000;

/// The `[broker]` and account-guard settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrokerConfig {
    /// Wallet balance at start.
    pub starting_equity: f64,
    /// Taker fee, a fraction of notional (every paper fill is a taker fill).
    pub taker_fee: f64,
    /// Slippage against the taker, in basis points of price.
    pub slippage_bps: f64,
    /// Most positions open at once.
    pub max_positions: usize,
    /// Whether a stronger signal may replace the weakest open position.
    pub rotation: bool,
    /// Halt new entries when the day's loss reaches this fraction of the day's start equity.
    pub max_daily_loss_pct: f64,
    /// Halt new entries when equity is this fraction below its peak.
    pub max_drawdown_pct: f64,
    /// Which price fires stops and targets (as live legs are triggered at the exchange).
    pub working_type: WorkingType,
}

/// Which price fires a stop or take-profit (Binance's `workingType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkingType {
    /// The mark price: what liquidations follow, and hard to push with one print.
    #[default]
    MarkPrice,
    /// The last traded price (Binance's default when none is sent).
    ContractPrice,
}

impl WorkingType {
    /// Binance's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MarkPrice => "MARK_PRICE",
            Self::ContractPrice => "CONTRACT_PRICE",
        }
    }

    /// Reads Binance's name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MARK_PRICE" => Some(Self::MarkPrice),
            "CONTRACT_PRICE" => Some(Self::ContractPrice),
            _ => None,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            starting_equity: 10_000.0,
            taker_fee: 0.0005,
            slippage_bps: 1.0,
            max_positions: 3,
            rotation: true,
            max_daily_loss_pct: 0.05,
            max_drawdown_pct: 0.15,
            working_type: WorkingType::MarkPrice,
        }
    }
}

/// Why a position was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// Price reached the target.
    TakeProfit,
    /// Price reached the stop.
    StopLoss,
    /// A signal-decay check failed.
    SignalDecay(Decay),
    /// Replaced by a stronger signal.
    Rotation,
    /// Price crossed the liquidation price.
    Liquidation,
    /// Closed by an operator.
    Manual,
    /// Closed at a graceful shutdown (`flatten_on_shutdown`).
    Shutdown,
}

impl ExitReason {
    /// SPEC §6's name.
    pub fn name(self) -> &'static str {
        match self {
            ExitReason::TakeProfit => "TP",
            ExitReason::StopLoss => "SL",
            ExitReason::SignalDecay(_) => "SIGNAL_DECAY",
            ExitReason::Rotation => "ROTATION",
            ExitReason::Liquidation => "LIQUIDATION",
            ExitReason::Manual => "MANUAL",
            ExitReason::Shutdown => "SHUTDOWN",
        }
    }
}

/// An entry waiting for its fill, or an open position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// Trade id, increasing from 1.
    pub id: u64,
    /// Symbol index.
    pub symbol: u16,
    /// Direction.
    pub side: Side,
    /// Quantity.
    pub qty: f64,
    /// Leverage.
    pub leverage: f64,
    /// Fill price (the sizing price until filled).
    pub entry_price: f64,
    /// Fill time (the signal time until filled).
    pub entry_time_ms: i64,
    /// Stop price.
    pub stop: f64,
    /// Target price.
    pub target: f64,
    /// Isolated margin.
    pub margin: f64,
    /// Liquidation price (0 until filled, or when a long cannot be liquidated).
    pub liquidation: f64,
    /// Fees paid so far.
    pub fees: f64,
    /// Funding paid so far (negative: received).
    pub funding: f64,
    /// What opened it.
    pub rule: Rule,
    /// Its signal's strength (rotation replaces the weakest).
    pub strength: f64,
    /// Identity of the fair-value gap active at entry (for decay).
    pub entry_gap: Option<u64>,
    /// The feature vector at entry (for the experience log).
    pub features: [f64; FEATURES],
    /// False until the entry filled.
    pub filled: bool,
    /// Set when the position is to close at the next trade.
    pub closing: Option<ExitReason>,
}

impl Position {
    /// Unrealised PnL at `price`.
    pub fn unrealised(&self, price: f64) -> f64 {
        if self.filled {
            self.side.sign() * (price - self.entry_price) * self.qty
        } else {
            0.0
        }
    }
}

/// One closed trade, as journaled and scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClosedTrade {
    /// Trade id.
    pub id: u64,
    /// Symbol index.
    pub symbol: u16,
    /// Direction.
    pub side: Side,
    /// Quantity.
    pub qty: f64,
    /// Leverage.
    pub leverage: f64,
    /// Entry fill price.
    pub entry_price: f64,
    /// Entry fill time.
    pub entry_time_ms: i64,
    /// Exit fill price.
    pub exit_price: f64,
    /// Exit fill time.
    pub exit_time_ms: i64,
    /// Why it closed.
    pub reason: ExitReason,
    /// What opened it.
    pub rule: Rule,
    /// Net PnL over the isolated margin, in percent.
    pub roi_pct: f64,
    /// Net PnL: price move less fees and funding.
    pub pnl: f64,
    /// Fees, both legs.
    pub fees: f64,
    /// Funding paid (negative: received).
    pub funding: f64,
    /// Net PnL over the planned PnL (see [`reward::progress`]).
    pub progress: f64,
    /// The leverage-independent reward score.
    pub reward: i8,
    /// The feature vector at entry.
    pub features: [f64; FEATURES],
}

/// Why an order was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A position on this symbol is open, pending or closing.
    #[error("already holding this symbol")]
    AlreadyHolding,
    /// `max_positions` reached and no weaker position to rotate out.
    #[error("max positions reached")]
    MaxPositions,
    /// The daily-loss guard tripped: no new entries today.
    #[error("daily loss limit reached")]
    DailyLoss,
    /// The drawdown guard tripped: no new entries.
    #[error("drawdown limit reached")]
    Drawdown,
    /// The symbol index is outside the broker's table.
    #[error("unknown symbol")]
    UnknownSymbol,
}

/// Funding state of one symbol, from its mark-price stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Funding {
    rate: f64,
    next_time_ms: i64,
}

/// The paper account: positions, wallet, guards.
#[derive(Debug)]
pub struct PaperBroker {
    config: BrokerConfig,
    rules: Vec<SymbolRules>,
    positions: Vec<Position>,
    last_price: Vec<f64>,
    /// Whether a mark price has been seen per symbol (without one, trades fire stops
    /// working on the mark: recordings without the markPrice stream still exit).
    marked: Vec<bool>,
    funding: Vec<Funding>,
    wallet: f64,
    peak_equity: f64,
    day: i64,
    day_start_equity: f64,
    next_id: u64,
    closed_trades: u64,
    /// Fills come from a venue's reports, not from trade prints (live trading).
    venue_fills: bool,
}

impl PaperBroker {
    /// A broker for `rules.len()` symbols (indexed as the records' symbol ids).
    pub fn new(config: BrokerConfig, rules: Vec<SymbolRules>) -> Self {
        let symbols = rules.len();
        Self {
            config,
            rules,
            // Rotation may leave a closing position beside its replacement until both fill.
            positions: Vec::with_capacity(2 * config.max_positions + 1),
            last_price: vec![0.0; symbols],
            marked: vec![false; symbols],
            funding: vec![Funding::default(); symbols],
            wallet: config.starting_equity,
            peak_equity: config.starting_equity,
            day: i64::MIN,
            day_start_equity: config.starting_equity,
            next_id: 1,
            closed_trades: 0,
            venue_fills: false,
        }
    }

    /// From now on fills, exits and liquidations are reported by a venue
    /// ([`Self::venue_entry`], [`Self::venue_exit`]) instead of simulated: prices only mark
    /// positions to market, the exchange's own orders hold the stops and targets.
    pub fn set_venue_fills(&mut self) {
        self.venue_fills = true;
    }

    /// Whether a venue reports the fills.
    pub fn venue_fills(&self) -> bool {
        self.venue_fills
    }

    /// Puts back a journaled state after a restart: wallet, trade count, next id and the
    /// open positions (pending entries were never filled and are not restored). The guards
    /// restart from the restored equity.
    pub fn restore(&mut self, wallet: f64, closed_trades: u64, next_id: u64, positions: &[Position]) {
        self.wallet = wallet;
        self.closed_trades = closed_trades;
        self.next_id = next_id.max(1);
        self.positions.clear();
        for p in positions.iter().filter(|p| p.filled && usize::from(p.symbol) < self.rules.len()) {
            if self.positions.len() < self.positions.capacity() {
                self.positions.push(*p);
                self.last_price[usize::from(p.symbol)] = p.entry_price;
            }
        }
        self.peak_equity = self.equity();
        self.day = i64::MIN;
    }

    /// The exchange rules of `symbol`.
    pub fn rules(&self, symbol: u16) -> Option<&SymbolRules> {
        self.rules.get(usize::from(symbol))
    }

    /// Replaces `symbol`'s leverage brackets (a refresh): the next order's leverage cap and
    /// every position's maintenance margin follow them.
    pub fn set_brackets(
        &mut self,
        symbol: u16,
        brackets: &[crate::rules::Bracket],
    ) -> Result<(), crate::rules::RulesError> {
        match self.rules.get_mut(usize::from(symbol)) {
            Some(rules) => rules.set_brackets(brackets),
            None => Ok(()),
        }
    }

    /// Replaces `symbol`'s order filters (an exchangeInfo refresh): the next order is sized
    /// under them; open positions keep what they were opened with.
    pub fn set_filters(
        &mut self,
        symbol: u16,
        filters: crate::rules::Filters,
    ) -> Result<(), crate::rules::RulesError> {
        match self.rules.get_mut(usize::from(symbol)) {
            Some(rules) => rules.set_filters(filters),
            None => Ok(()),
        }
    }

    /// The id the next order will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Wallet balance (realised PnL, fees and funding included).
    pub fn wallet(&self) -> f64 {
        self.wallet
    }

    /// Wallet plus unrealised PnL at the latest price of each symbol.
    pub fn equity(&self) -> f64 {
        self.wallet
            + self.positions.iter().map(|p| p.unrealised(self.last_price[usize::from(p.symbol)])).sum::<f64>()
    }

    /// Trades closed since start (or since the state was restored).
    pub fn closed_trades(&self) -> u64 {
        self.closed_trades
    }

    /// Open, pending and closing positions.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// The position on `symbol`, if any.
    pub fn position(&self, symbol: u16) -> Option<&Position> {
        self.positions.iter().find(|p| p.symbol == symbol)
    }

    /// The account as sizing sees it.
    pub fn view(&self) -> AccountView {
        let equity = self.equity();
        let locked: f64 = self.positions.iter().map(|p| p.margin).sum();
        let gross_notional = self.positions.iter().map(|p| p.qty * self.price_or_entry(p)).sum::<f64>();
        AccountView { equity, available_margin: equity - locked, gross_notional }
    }

    fn price_or_entry(&self, p: &Position) -> f64 {
        let last = self.last_price[usize::from(p.symbol)];
        if last > 0.0 {
            last
        } else {
            p.entry_price
        }
    }

    /// Rolls the day and the peak forward to `now_ms` and says whether a guard forbids
    /// new entries.
    pub fn guard(&mut self, now_ms: i64) -> Result<(), Refusal> {
        let equity = self.equity();
        let day = now_ms.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.day_start_equity = equity;
        }
        self.peak_equity = self.peak_equity.max(equity);
        if self.day_start_equity - equity >= self.config.max_daily_loss_pct * self.day_start_equity {
            return Err(Refusal::DailyLoss);
        }
        if self.peak_equity - equity >= self.config.max_drawdown_pct * self.peak_equity {
            return Err(Refusal::Drawdown);
        }
        Ok(())
    }

    /// Accepts a sized order on `symbol`: it fills at the symbol's next trade. A full book
    /// rotates out its weakest position when `rotation` is on and the new signal is stronger.
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &mut self,
        symbol: u16,
        order: &Order,
        rule: Rule,
        strength: f64,
        entry_gap: Option<u64>,
        features: &[f64; FEATURES],
        now_ms: i64,
    ) -> Result<u64, Refusal> {
        if usize::from(symbol) >= self.rules.len() {
            return Err(Refusal::UnknownSymbol);
        }
        if self.position(symbol).is_some() {
            return Err(Refusal::AlreadyHolding);
        }
        self.guard(now_ms)?;
        let staying = self.positions.iter().filter(|p| p.closing.is_none()).count();
        if staying >= self.config.max_positions {
            let weakest = self
                .positions
                .iter_mut()
                .filter(|p| p.closing.is_none())
                .min_by(|a, b| a.strength.total_cmp(&b.strength));
            match weakest {
                Some(w) if self.config.rotation && w.strength < strength => {
                    w.closing = Some(ExitReason::Rotation)
                }
                _ => return Err(Refusal::MaxPositions),
            }
        }
        if self.positions.len() == self.positions.capacity() {
            return Err(Refusal::MaxPositions);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.positions.push(Position {
            id,
            symbol,
            side: order.side,
            qty: order.qty,
            leverage: order.leverage,
            entry_price: order.price,
            entry_time_ms: now_ms,
            stop: order.stop,
            target: order.target,
            margin: order.margin(),
            liquidation: 0.0,
            fees: 0.0,
            funding: 0.0,
            rule,
            strength,
            entry_gap,
            features: *features,
            filled: false,
            closing: None,
        });
        Ok(id)
    }

    /// Marks the position on `symbol` to close at its next trade; false when none is open.
    pub fn close(&mut self, symbol: u16, reason: ExitReason) -> bool {
        match self.positions.iter_mut().find(|p| p.symbol == symbol) {
            Some(p) if p.filled => {
                p.closing.get_or_insert(reason);
                true
            }
            Some(p) if self.venue_fills => {
                // The entry is at the venue: it is cancelled (or closed once it fills) there.
                p.closing.get_or_insert(reason);
                true
            }
            Some(_) => {
                // Not filled yet: cancelling costs nothing.
                self.positions.retain(|p| p.symbol != symbol);
                true
            }
            None => false,
        }
    }

    /// A trade on `symbol` at `price`: fills a pending entry or exit, then checks
    /// liquidation, and target and stop when they work on the last price (or on a mark
    /// the symbol never had).
    pub fn on_trade(&mut self, symbol: u16, price: f64, time_ms: i64, closed: &mut impl FnMut(&ClosedTrade)) {
        let Some(last) = self.last_price.get_mut(usize::from(symbol)) else { return };
        if !(price.is_finite() && price > 0.0) {
            return;
        }
        *last = price;
        if self.venue_fills {
            return;
        }
        let Some(i) = self.positions.iter().position(|p| p.symbol == symbol) else { return };
        if !self.positions[i].filled {
            let fill = self.slipped(price, self.positions[i].side == Side::Long);
            self.fill_entry(i, fill, self.positions[i].qty, time_ms);
            return;
        }
        let p = self.positions[i];
        if p.closing.is_none() && crossed(p.side, price, p.liquidation) {
            return self.liquidate(i, time_ms, closed);
        }
        let on_trades =
            self.config.working_type == WorkingType::ContractPrice || !self.marked[usize::from(symbol)];
        if let Some(reason) = p.closing.or_else(|| on_trades.then(|| target_or_stop(&p, price)).flatten()) {
            self.fill_exit(i, price, time_ms, reason, closed);
        }
    }

    /// A mark price on `symbol`: funding due since the last one, then liquidation, and
    /// target and stop when they work on the mark.
    pub fn on_mark(
        &mut self,
        symbol: u16,
        mark: f64,
        funding_rate: f64,
        next_funding_ms: i64,
        time_ms: i64,
        closed: &mut impl FnMut(&ClosedTrade),
    ) {
        let s = usize::from(symbol);
        if s >= self.rules.len() || !(mark.is_finite() && mark > 0.0) {
            return;
        }
        self.last_price[s] = mark;
        self.marked[s] = true;
        if self.venue_fills {
            // The exchange charges funding and runs liquidations, stops and targets.
            return;
        }
        let due = self.funding[s];
        if due.next_time_ms > 0 && time_ms >= due.next_time_ms {
            for p in self.positions.iter_mut().filter(|p| p.symbol == symbol && p.filled) {
                // Positive rate: longs pay shorts.
                let payment = p.side.sign() * p.qty * mark * due.rate;
                p.funding += payment;
                self.wallet -= payment;
            }
        }
        if funding_rate.is_finite() && next_funding_ms > 0 {
            self.funding[s] = Funding { rate: funding_rate, next_time_ms: next_funding_ms };
        }
        if let Some(i) = self.positions.iter().position(|p| p.symbol == symbol && p.filled) {
            let p = self.positions[i];
            let on_mark = self.config.working_type == WorkingType::MarkPrice;
            if crossed(p.side, mark, p.liquidation) {
                self.liquidate(i, time_ms, closed);
            } else if let Some(reason) = on_mark.then(|| target_or_stop(&p, mark)).flatten() {
                // Stop- and take-profit-market orders working on the mark price.
                self.fill_exit(i, mark, time_ms, reason, closed);
            }
        }
    }

    /// Closes every filled position now at the latest price (shutdown with
    /// `flatten_on_shutdown`), cancelling pending entries.
    /// With venue fills every position is only marked closing: the venue reports the exits.
    pub fn flatten(&mut self, reason: ExitReason, time_ms: i64, closed: &mut impl FnMut(&ClosedTrade)) {
        if self.venue_fills {
            for p in &mut self.positions {
                p.closing.get_or_insert(reason);
            }
            return;
        }
        self.positions.retain(|p| p.filled);
        while let Some(p) = self.positions.last().copied() {
            let price = self.price_or_entry(&p);
            self.fill_exit(self.positions.len() - 1, price, time_ms, reason, closed);
        }
    }

    /// The venue filled trade `id`'s entry: `qty` at average `price` (the taker fee is
    /// charged at the configured rate). False when no pending entry has that id.
    pub fn venue_entry(&mut self, id: u64, price: f64, qty: f64, time_ms: i64) -> bool {
        let valid = price.is_finite() && price > 0.0 && qty.is_finite() && qty > 0.0;
        match self.positions.iter().position(|p| p.id == id && !p.filled) {
            Some(i) if valid => {
                self.fill_entry(i, price, qty, time_ms);
                true
            }
            _ => false,
        }
    }

    /// The venue closed trade `id` at average `price`, for `reason` (the taker fee is
    /// charged at the configured rate). False when no filled position has that id.
    pub fn venue_exit(
        &mut self,
        id: u64,
        price: f64,
        time_ms: i64,
        reason: ExitReason,
        closed: &mut impl FnMut(&ClosedTrade),
    ) -> bool {
        let valid = price.is_finite() && price > 0.0;
        match self.positions.iter().position(|p| p.id == id && p.filled) {
            Some(i) if valid => {
                self.fill_exit(i, price, time_ms, reason, closed);
                true
            }
            _ => false,
        }
    }

    /// The venue holds trade `id` at `qty` (restart reconciliation: the exchange is the
    /// truth). False when no filled position has that id.
    pub fn venue_resize(&mut self, id: u64, qty: f64) -> bool {
        match self.positions.iter_mut().find(|p| p.id == id && p.filled) {
            Some(p) if qty.is_finite() && qty > 0.0 => {
                p.margin *= qty / p.qty;
                p.qty = qty;
                true
            }
            _ => false,
        }
    }

    /// The venue refused or cancelled trade `id`'s entry before any of it filled: it is
    /// forgotten. False when no pending entry has that id.
    pub fn venue_cancel(&mut self, id: u64) -> bool {
        let before = self.positions.len();
        self.positions.retain(|p| p.id != id || p.filled);
        self.positions.len() != before
    }

    fn slipped(&self, price: f64, buying: bool) -> f64 {
        let slip = self.config.slippage_bps / 10_000.0;
        if buying {
            price * (1.0 + slip)
        } else {
            price * (1.0 - slip)
        }
    }

    fn fill_entry(&mut self, i: usize, fill: f64, qty: f64, time_ms: i64) {
        let p = self.positions[i];
        let notional = fill * qty;
        let fee = notional * self.config.taker_fee;
        let margin = notional / p.leverage;
        let liquidation = self.rules[usize::from(p.symbol)].liquidation_price(p.side, fill, qty, margin);
        self.wallet -= fee;
        let p = &mut self.positions[i];
        p.qty = qty;
        p.entry_price = fill;
        p.entry_time_ms = time_ms;
        p.margin = margin;
        p.liquidation = liquidation;
        p.fees = fee;
        p.filled = true;
    }

    fn fill_exit(
        &mut self,
        i: usize,
        price: f64,
        time_ms: i64,
        reason: ExitReason,
        closed: &mut impl FnMut(&ClosedTrade),
    ) {
        let p = self.positions[i];
        let fill = if self.venue_fills { price } else { self.slipped(price, p.side == Side::Short) };
        let fee = fill * p.qty * self.config.taker_fee;
        let gross = p.side.sign() * (fill - p.entry_price) * p.qty;
        self.wallet += gross - fee;
        self.finish(i, fill, gross, p.fees + fee, time_ms, reason, closed);
    }

    /// Liquidation: the isolated margin is gone (Binance keeps what is left for its
    /// insurance fund); no exit fee is charged on top.
    fn liquidate(&mut self, i: usize, time_ms: i64, closed: &mut impl FnMut(&ClosedTrade)) {
        let p = self.positions[i];
        self.wallet -= p.margin;
        self.finish(i, p.liquidation, -p.margin, p.fees, time_ms, ExitReason::Liquidation, closed);
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        i: usize,
        exit_price: f64,
        gross: f64,
        fees: f64,
        time_ms: i64,
        reason: ExitReason,
        closed: &mut impl FnMut(&ClosedTrade),
    ) {
        let p = self.positions.swap_remove(i);
        let pnl = gross - fees - p.funding;
        let planned_profit = p.qty * (p.target - p.entry_price).abs();
        let planned_loss = p.qty * (p.entry_price - p.stop).abs();
        self.closed_trades += 1;
        closed(&ClosedTrade {
            id: p.id,
            symbol: p.symbol,
            side: p.side,
            qty: p.qty,
            leverage: p.leverage,
            entry_price: p.entry_price,
            entry_time_ms: p.entry_time_ms,
            exit_price,
            exit_time_ms: time_ms,
            reason,
            rule: p.rule,
            roi_pct: 100.0 * pnl / p.margin,
            pnl,
            fees,
            funding: p.funding,
            progress: reward::progress(pnl, planned_profit, planned_loss),
            reward: reward::score(pnl, planned_profit, planned_loss),
            features: p.features,
        });
    }
}

/// The exit `price` triggers for an open position: its target, or its stop.
fn target_or_stop(p: &Position, price: f64) -> Option<ExitReason> {
    if p.side.sign() * (price - p.target) >= 0.0 {
        Some(ExitReason::TakeProfit)
    } else if p.side.sign() * (price - p.stop) <= 0.0 {
        Some(ExitReason::StopLoss)
    } else {
        None
    }
}

/// Whether `price` reached a liquidation price from the position's side (0: never).
fn crossed(side: Side, price: f64, liquidation: f64) -> bool {
    liquidation > 0.0
        && match side {
            Side::Long => price <= liquidation,
            Side::Short => price >= liquidation,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizing::{size, SizingConfig};
    use crate::Signal;

    const NO_SLIP: BrokerConfig = BrokerConfig {
        starting_equity: 10_000.0,
        taker_fee: 0.0005,
        slippage_bps: 0.0,
        max_positions: 2,
        rotation: true,
        max_daily_loss_pct: 0.05,
        max_drawdown_pct: 0.15,
        working_type: WorkingType::MarkPrice,
    };

    fn broker(config: BrokerConfig) -> PaperBroker {
        PaperBroker::new(config, vec![SymbolRules::usdm_default(); 4])
    }

    fn order(side: Side, qty: f64, leverage: f64, price: f64) -> Order {
        let sign = side.sign();
        Order {
            side,
            qty,
            leverage,
            price,
            stop: price * (1.0 - sign * 0.02),
            target: price * (1.0 + sign * 0.05),
            risk_fraction: 0.01,
        }
    }

    fn collect(
        b: &mut PaperBroker,
        f: impl FnOnce(&mut PaperBroker, &mut dyn FnMut(&ClosedTrade)),
    ) -> Vec<ClosedTrade> {
        let mut out = Vec::new();
        f(b, &mut |t: &ClosedTrade| out.push(*t));
        out
    }

    #[test]
    fn an_entry_fills_at_the_next_trade_and_exits_at_the_target() {
        let mut b = broker(NO_SLIP);
        b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        assert!(!b.positions()[0].filled);
        let none = collect(&mut b, |b, out| b.on_trade(0, 101.0, 10, &mut |t| out(t)));
        assert!(none.is_empty());
        let p = b.positions()[0];
        assert_eq!((p.entry_price, p.entry_time_ms, p.filled), (101.0, 10, true));
        assert!((b.wallet() - (10_000.0 - 101.0 * 0.0005)).abs() < 1e-9);
        let trades = collect(&mut b, |b, out| {
            b.on_trade(0, 104.9, 20, &mut |t| out(t));
            b.on_trade(0, 105.5, 30, &mut |t| out(t));
        });
        assert_eq!(trades.len(), 1);
        let t = trades[0];
        assert_eq!((t.reason, t.exit_price, t.exit_time_ms), (ExitReason::TakeProfit, 105.5, 30));
        let fees = (101.0 + 105.5) * 0.0005;
        assert!((t.pnl - (4.5 - fees)).abs() < 1e-9);
        assert!((t.roi_pct - 100.0 * t.pnl / (101.0 / 3.0)).abs() < 1e-9);
        assert!((b.wallet() - (10_000.0 + t.pnl)).abs() < 1e-9, "wallet is start + net pnl");
        assert_eq!(b.closed_trades(), 1);
        assert!(b.positions().is_empty());
    }

    #[test]
    fn stops_slippage_and_shorts() {
        let config = BrokerConfig { slippage_bps: 10.0, ..NO_SLIP };
        let mut b = broker(config);
        b.submit(1, &order(Side::Short, 2.0, 5.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        let trades = collect(&mut b, |b, out| {
            b.on_trade(1, 100.0, 1, &mut |t| out(t));
            b.on_trade(1, 102.5, 2, &mut |t| out(t));
        });
        let t = trades[0];
        // Sold at 100 less 10 bps, bought back at 102.5 plus 10 bps.
        assert_eq!(t.reason, ExitReason::StopLoss);
        assert!((t.entry_price - 99.9).abs() < 1e-9 && (t.exit_price - 102.6025).abs() < 1e-9);
        assert!(t.pnl < 0.0 && t.reward < 0);
    }

    #[test]
    fn stops_and_targets_also_work_on_the_mark_price() {
        let mut b = broker(NO_SLIP);
        b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        let trades = collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.on_mark(0, 98.5, 0.0, 0, 2, &mut |t| out(t));
            b.on_mark(0, 97.9, 0.0, 0, 3, &mut |t| out(t));
        });
        assert_eq!(trades.len(), 1);
        assert_eq!(
            (trades[0].reason, trades[0].exit_price, trades[0].exit_time_ms),
            (ExitReason::StopLoss, 97.9, 3)
        );
    }

    /// Stops follow the configured price, as the exchange triggers live legs: on the mark,
    /// a trade through the stop does not fire it (until the symbol has no mark at all); on
    /// the last price, a mark through it does not.
    #[test]
    fn stops_fire_on_the_working_type_price_only() {
        let run = |working_type, mark_first: bool| {
            let mut b = broker(BrokerConfig { working_type, ..NO_SLIP });
            b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
                .unwrap();
            collect(&mut b, |b, out| {
                b.on_trade(0, 100.0, 1, &mut |t| out(t));
                if mark_first {
                    b.on_mark(0, 99.0, 0.0, 0, 2, &mut |t| out(t));
                }
                b.on_trade(0, 97.0, 3, &mut |t| out(t));
                b.on_mark(0, 97.5, 0.0, 0, 4, &mut |t| out(t));
                b.on_trade(0, 96.5, 5, &mut |t| out(t));
            })
        };
        let exit = |trades: Vec<ClosedTrade>| trades.first().map(|t| (t.exit_price, t.exit_time_ms));
        assert_eq!(exit(run(WorkingType::MarkPrice, true)), Some((97.5, 4)), "the mark fires it");
        assert_eq!(exit(run(WorkingType::MarkPrice, false)), Some((97.0, 3)), "no mark yet: trades do");
        assert_eq!(exit(run(WorkingType::ContractPrice, true)), Some((97.0, 3)), "the trade fires it");
        assert_eq!(WorkingType::parse(WorkingType::ContractPrice.name()), Some(WorkingType::ContractPrice));
    }

    #[test]
    fn the_same_trade_scores_the_same_at_3x_and_20x() {
        let run = |leverage: f64| {
            let mut b = broker(NO_SLIP);
            b.submit(
                0,
                &order(Side::Long, 1.0, leverage, 100.0),
                Rule::Momentum,
                0.8,
                None,
                &[0.0; FEATURES],
                0,
            )
            .unwrap();
            collect(&mut b, |b, out| {
                b.on_trade(0, 100.0, 1, &mut |t| out(t));
                b.on_trade(0, 103.0, 2, &mut |t| out(t));
                b.close(0, ExitReason::Manual);
                b.on_trade(0, 103.0, 3, &mut |t| out(t));
            })[0]
        };
        let (low, high) = (run(3.0), run(20.0));
        assert_eq!((low.reason, high.reason), (ExitReason::Manual, ExitReason::Manual));
        assert_eq!(low.pnl, high.pnl);
        assert_eq!((low.reward, high.reward), (5, 5), "progress {}", low.progress);
        assert!((high.roi_pct / low.roi_pct - 20.0 / 3.0).abs() < 1e-9, "ROI on margin does scale");
    }

    #[test]
    fn liquidation_takes_the_margin() {
        let mut b = broker(NO_SLIP);
        // Stop far away on purpose (the sizer would not allow this): 20× long.
        let mut o = order(Side::Long, 1.0, 20.0, 100.0);
        o.stop = 50.0;
        b.submit(0, &o, Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0).unwrap();
        let trades = collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.on_mark(0, 99.0, 0.0, 0, 2, &mut |t| out(t));
            b.on_mark(0, 95.0, 0.0, 0, 3, &mut |t| out(t));
        });
        let t = trades[0];
        assert_eq!(t.reason, ExitReason::Liquidation);
        assert!((t.exit_price - 95.0 / 0.996).abs() < 1e-9);
        assert!((t.pnl - (-5.0 - 100.0 * 0.0005)).abs() < 1e-9);
        // Scored against the (far) stop's planned loss of 50: progress 0.1.
        assert_eq!(t.reward, -1);
    }

    #[test]
    fn funding_is_charged_at_the_funding_time() {
        let mut b = broker(NO_SLIP);
        b.submit(0, &order(Side::Long, 2.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        let wallet = |b: &PaperBroker| b.wallet();
        collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.on_mark(0, 100.0, 0.0001, 1_000, 500, &mut |t| out(t));
        });
        // The predicted rate moves until the funding time; the one in force then is paid.
        collect(&mut b, |b, out| b.on_mark(0, 100.0, 0.0002, 1_000, 999, &mut |t| out(t)));
        let before = wallet(&b);
        assert!((before - (10_000.0 - 200.0 * 0.0005)).abs() < 1e-9, "nothing charged before 1,000");
        collect(&mut b, |b, out| b.on_mark(0, 101.0, 0.0003, 2_000, 1_000, &mut |t| out(t)));
        assert!((before - wallet(&b) - 2.0 * 101.0 * 0.0002).abs() < 1e-9);
        assert!((b.positions()[0].funding - 0.0404).abs() < 1e-12);
        // A short receives.
        let mut s = broker(NO_SLIP);
        s.submit(0, &order(Side::Short, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        collect(&mut s, |s, out| {
            s.on_trade(0, 100.0, 1, &mut |t| out(t));
            s.on_mark(0, 100.0, 0.0001, 1_000, 2, &mut |t| out(t));
            s.on_mark(0, 100.0, 0.0001, 2_000, 1_000, &mut |t| out(t));
        });
        assert!((s.positions()[0].funding + 0.01).abs() < 1e-12);
    }

    #[test]
    fn rotation_replaces_the_weakest_and_max_positions_holds() {
        let mut b = broker(NO_SLIP);
        let f = [0.0; FEATURES];
        b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &f, 0).unwrap();
        b.submit(1, &order(Side::Long, 1.0, 3.0, 100.0), Rule::OrderBlock, 0.9, None, &f, 0).unwrap();
        assert_eq!(
            b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 1.0, None, &f, 0),
            Err(Refusal::AlreadyHolding)
        );
        assert_eq!(
            b.submit(2, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.7, None, &f, 0),
            Err(Refusal::MaxPositions)
        );
        collect(&mut b, |b, out| b.on_trade(0, 100.0, 1, &mut |t| out(t)));
        b.submit(2, &order(Side::Long, 1.0, 3.0, 100.0), Rule::LiquidityGrab, 1.0, None, &f, 1).unwrap();
        assert_eq!(b.position(0).unwrap().closing, Some(ExitReason::Rotation));
        let trades = collect(&mut b, |b, out| b.on_trade(0, 100.5, 2, &mut |t| out(t)));
        assert_eq!(trades[0].reason, ExitReason::Rotation);
        let off = BrokerConfig { rotation: false, ..NO_SLIP };
        let mut b = broker(off);
        b.submit(0, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.1, None, &f, 0).unwrap();
        b.submit(1, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.1, None, &f, 0).unwrap();
        assert_eq!(
            b.submit(2, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 1.0, None, &f, 0),
            Err(Refusal::MaxPositions)
        );
    }

    #[test]
    fn guards_halt_entries_after_a_bad_day_and_a_deep_drawdown() {
        let mut b = broker(NO_SLIP);
        let f = [0.0; FEATURES];
        // 1× (never liquidated), stop far away: 10 units marked from 100 down to 49 lose
        // 510, 5.1 %, unrealised.
        let mut o = order(Side::Long, 10.0, 1.0, 100.0);
        o.stop = 1.0;
        b.submit(0, &o, Rule::Momentum, 0.8, None, &f, 0).unwrap();
        collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.on_mark(0, 49.0, 0.0, 0, 2, &mut |t| out(t));
        });
        assert!(b.equity() < 10_000.0 * 0.95);
        assert_eq!(b.guard(3), Err(Refusal::DailyLoss));
        assert_eq!(
            b.submit(1, &order(Side::Long, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &f, 3),
            Err(Refusal::DailyLoss)
        );
        // The next UTC day starts from today's equity: the daily guard resets.
        assert_eq!(b.guard(DAY_MS + 1), Ok(()));
    }

    #[test]
    fn sizing_and_broker_agree_on_margin_and_flatten_closes_everything() {
        let rules = SymbolRules::usdm_default();
        let mut b = broker(NO_SLIP);
        let signal = Signal {
            side: Side::Long,
            rule: Rule::Momentum,
            probability: None,
            strength: 0.8,
            max_leverage: 3.0,
        };
        let o = size(&signal, 100.0, 0.0, &rules, &b.view(), &SizingConfig::default()).unwrap();
        b.submit(0, &o, Rule::Momentum, 0.8, None, &[1.0; FEATURES], 0).unwrap();
        let view = b.view();
        assert!((view.available_margin - (10_000.0 - o.margin())).abs() < 1e-9);
        let trades = collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.flatten(ExitReason::Shutdown, 2, &mut |t| out(t));
        });
        assert_eq!((trades.len(), trades[0].reason, trades[0].features[0]), (1, ExitReason::Shutdown, 1.0));
        assert!(b.positions().is_empty());
    }

    #[test]
    fn with_venue_fills_prices_only_mark_and_the_venue_fills_and_exits() {
        let mut b = broker(NO_SLIP);
        b.set_venue_fills();
        let id = b
            .submit(0, &order(Side::Long, 2.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 0)
            .unwrap();
        // Far past the target and the stop: nothing fills or exits without the venue.
        let none = collect(&mut b, |b, out| {
            b.on_trade(0, 100.0, 1, &mut |t| out(t));
            b.on_trade(0, 200.0, 2, &mut |t| out(t));
            b.on_mark(0, 10.0, 0.01, 5, 6, &mut |t| out(t));
        });
        assert!(none.is_empty() && !b.positions()[0].filled);
        assert!(!b.venue_entry(id + 1, 100.0, 1.0, 3), "unknown id");
        assert!(b.venue_entry(id, 101.0, 1.5, 3), "a partial entry: the venue's quantity holds");
        let p = b.positions()[0];
        assert_eq!((p.entry_price, p.qty, p.filled), (101.0, 1.5, true));
        assert!((b.wallet() - (10_000.0 - 101.0 * 1.5 * 0.0005)).abs() < 1e-9);
        b.on_trade(0, 111.0, 4, &mut |_| panic!("no simulated exit"));
        assert!((b.equity() - b.wallet() - 15.0).abs() < 1e-9, "marked at the last price");
        assert!(b.close(0, ExitReason::Manual) && b.positions()[0].closing == Some(ExitReason::Manual));
        let trades = collect(&mut b, |b, out| {
            assert!(b.venue_exit(id, 111.0, 5, ExitReason::Manual, &mut |t| out(t)));
        });
        assert_eq!(trades.len(), 1);
        assert_eq!((trades[0].exit_price, trades[0].reason), (111.0, ExitReason::Manual));
        assert!((trades[0].pnl - (15.0 - 1.5 * 0.0005 * (101.0 + 111.0))).abs() < 1e-9);
        assert!(b.positions().is_empty() && b.closed_trades() == 1);

        // A refused entry is forgotten; flatten only marks positions closing.
        let refused = b
            .submit(1, &order(Side::Short, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 6)
            .unwrap();
        assert!(b.venue_cancel(refused) && b.positions().is_empty());
        let kept = b
            .submit(2, &order(Side::Short, 1.0, 3.0, 100.0), Rule::Momentum, 0.8, None, &[0.0; FEATURES], 7)
            .unwrap();
        assert!(b.venue_entry(kept, 99.0, 1.0, 8));
        assert!(b.venue_resize(kept, 0.5) && b.positions()[0].qty == 0.5);
        let none = collect(&mut b, |b, out| b.flatten(ExitReason::Manual, 9, &mut |t| out(t)));
        assert!(none.is_empty() && b.positions()[0].closing == Some(ExitReason::Manual));
    }
}
