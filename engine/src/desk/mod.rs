//! The brain's trading desk (SPEC §5, §6): on every live closed bar, signal decay for the
//! symbol's open position, then the policy's decision, sized and handed to the paper
//! broker; trades and mark prices drive fills, targets, stops, liquidations and funding.
//! Every closed bar also feeds the causal labeller of the experience log. What must be
//! durable leaves through a ring to the writer thread; nothing here allocates after start.

pub mod events;
pub mod labeller;
pub mod listing;
pub mod stats;
pub mod venue;

use aegis_analytics::FeatureSnapshot;
use aegis_trading::broker::{BrokerConfig, Refusal};
use aegis_trading::decay::{self, Held};
use aegis_trading::policy::{self, ModelView, Phase, PolicyConfig};
use aegis_trading::sizing::{self, SizingConfig};
use aegis_trading::{ClosedTrade, ExitReason, PaperBroker, Position, SymbolRules};
use events::{AccountSnapshot, DeskEvent, Outcome, SignalNote, SNAPSHOT_POSITIONS};
use labeller::Labeller;
use stats::DeskStats;
use std::sync::atomic::Ordering;
use venue::{Alert, ExecReport, Execution, OrderIntent, Paper};

/// Decision and money settings (`[policy]`, `[risk]`, `[broker]`, `[ml] label_horizon`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradingConfig {
    /// Teacher/student settings.
    pub policy: PolicyConfig,
    /// Sizing settings.
    pub sizing: SizingConfig,
    /// Paper broker and account guards.
    pub broker: BrokerConfig,
    /// Signal decay's adverse move, a fraction of entry.
    pub decay_adverse_move: f64,
    /// Bars ahead a bar sample's forward return looks (H).
    pub label_horizon: usize,
    /// No entries from a bar that closed this long before the latest exchange time seen.
    pub stale_after_ms: i64,
}

impl Default for TradingConfig {
    fn default() -> Self {
        Self {
            policy: PolicyConfig::default(),
            sizing: SizingConfig::default(),
            broker: BrokerConfig::default(),
            decay_adverse_move: 0.01,
            label_horizon: 5,
            stale_after_ms: 5_000,
        }
    }
}

/// Who proposes entries.
#[derive(Clone, Debug)]
pub enum Entries {
    /// SPEC §5: the teacher's rules, then the student.
    Policy,
    /// The random-entries baseline of a replay: on each chance to enter (a fresh, warm bar of
    /// a flat symbol) an entry with `probability`, side by a fair coin; exits, sizing and
    /// fees as the policy's.
    Random {
        /// The seeded coin.
        rng: aegis_trading::rng::Rng,
        /// Entries per chance.
        probability: f64,
    },
}

/// The desk: broker, settings, labellers, the ring to the writer.
pub struct Desk {
    config: TradingConfig,
    broker: PaperBroker,
    /// Symbols with known exchange rules; the others are never traded.
    tradable: Vec<bool>,
    /// Symbols whose exchange `status` is not `TRADING`: no new entry (an open position is
    /// still managed and closed as usual).
    not_trading: Vec<bool>,
    labellers: Vec<Labeller>,
    out: Option<rtrb::Producer<DeskEvent>>,
    stats: std::sync::Arc<DeskStats>,
    pnl: f64,
    last_time_ms: i64,
    /// The guard currently halting entries.
    halted: Option<Refusal>,
    /// An operator paused new entries (`aegisctl pause`).
    paused: bool,
    /// Where intents go and reports come from (paper unless a venue was given).
    execution: Box<dyn Execution>,
    /// Trades already asked to close at the exchange (a `Close` goes once per trade).
    asked: [u64; SNAPSHOT_POSITIONS],
    /// The policy, or the random-entries baseline's coin.
    entries: Entries,
    /// When the market event being handled was read (`clock::now_ns`), for tick-to-trade.
    read_ns: u64,
}

impl Desk {
    /// A desk for `rules.len()` symbols; a symbol without rules (exchangeInfo gave none
    /// usable) is analysed and labelled but never traded.
    pub fn new(
        config: TradingConfig,
        rules: Vec<Option<SymbolRules>>,
        out: Option<rtrb::Producer<DeskEvent>>,
        stats: std::sync::Arc<DeskStats>,
    ) -> Self {
        let labellers = (0..rules.len()).map(|_| Labeller::new(config.label_horizon.max(1))).collect();
        let tradable: Vec<bool> = rules.iter().map(Option::is_some).collect();
        let placeholder = SymbolRules::usdm_default();
        let rules = rules.into_iter().map(|r| r.unwrap_or_else(|| placeholder.clone())).collect();
        let desk = Self {
            config,
            not_trading: vec![false; tradable.len()],
            broker: PaperBroker::new(config.broker, rules),
            tradable,
            labellers,
            out,
            stats,
            pnl: 0.0,
            last_time_ms: 0,
            halted: None,
            paused: false,
            execution: Box::new(Paper),
            asked: [0; SNAPSHOT_POSITIONS],
            entries: Entries::Policy,
            read_ns: 0,
        };
        desk.publish();
        desk
    }

    /// Trades through `execution` from now on. At an exchange, entries and closes go out as
    /// intents and fills and exits come back as reports (applied by [`Self::poll_reports`]).
    pub fn with_execution(mut self, execution: impl Execution + 'static) -> Self {
        if execution.at_exchange() {
            self.broker.set_venue_fills();
        }
        self.execution = Box::new(execution);
        self
    }

    /// Takes entries from `entries` instead of the policy (a replay's baseline).
    pub fn with_entries(mut self, entries: Entries) -> Self {
        self.entries = entries;
        self
    }

    /// Takes a symbol's listing from an exchangeInfo refresh: its filters size the next
    /// order; a symbol no longer `TRADING` gets no new entry, and an open position on it is
    /// reported (its legs stay at the exchange, the desk keeps managing it).
    pub fn apply_listing(&mut self, change: listing::ListingChange) {
        let i = usize::from(change.symbol);
        if !self.tradable.get(i).copied().unwrap_or(false) {
            return;
        }
        self.stats.listing_changes.fetch_add(1, Ordering::Relaxed);
        if self.broker.set_filters(change.symbol, change.filters).is_err() {
            self.alert(
                "exchangeInfo refresh: unusable filters for a traded symbol; the previous ones are kept",
            );
        }
        if self.broker.set_brackets(change.symbol, change.brackets.as_slice()).is_err() {
            self.alert("refresh: unusable leverage brackets for a traded symbol; the previous ones are kept");
        }
        let was_trading = !self.not_trading[i];
        self.not_trading[i] = !change.trading;
        let halted = self.not_trading.iter().filter(|h| **h).count();
        self.stats.symbols_not_trading.store(halted as u64, Ordering::Relaxed);
        if was_trading && !change.trading {
            self.alert(if self.broker.position(change.symbol).is_some() {
                "a symbol with an open position stopped TRADING: no new entries on it; the position stays protected"
            } else {
                "a traded symbol stopped TRADING: no new entries on it"
            });
        }
    }

    /// Notes when the market event about to be handled was read (an entry it causes carries
    /// it to the venue, for tick-to-trade).
    pub fn set_read_ns(&mut self, read_ns: u64) {
        self.read_ns = read_ns;
    }

    /// Raises an operator alert (a refused model, …).
    pub fn alert(&mut self, what: &'static str) {
        let alert = Alert { time_ms: self.last_time_ms, level: "HIGH", what };
        self.stats.alerts.fetch_add(1, Ordering::Relaxed);
        self.emit(DeskEvent::Alert(alert));
    }

    /// Whether a venue fills the orders.
    pub fn at_exchange(&self) -> bool {
        self.execution.at_exchange()
    }

    /// Whether venue reports are waiting.
    pub fn reports_pending(&self) -> bool {
        self.execution.has_reports()
    }

    /// Applies the venue's reports; returns how many.
    pub fn poll_reports(&mut self) -> usize {
        let mut n = 0;
        while let Some(report) = self.execution.next_report() {
            n += 1;
            let applied = match report {
                ExecReport::Entered { id, price, qty, time_ms } => {
                    // The market data's clock is the desk's: a report's estimate never
                    // moves a fill before the latest event seen.
                    let time_ms = self.last_time_ms.max(time_ms);
                    let mut applied = false;
                    self.with_broker(|b, _| applied = b.venue_entry(id, price, qty, time_ms));
                    applied
                }
                ExecReport::Exited { id, price, time_ms, reason } => {
                    let time_ms = self.last_time_ms.max(time_ms);
                    let mut applied = false;
                    self.with_broker(|b, out| {
                        applied = b.venue_exit(id, price, time_ms, reason, &mut |t| out(t))
                    });
                    applied
                }
                ExecReport::Resized { id, qty } => {
                    let mut applied = false;
                    self.with_broker(|b, _| applied = b.venue_resize(id, qty));
                    applied
                }
                ExecReport::Cancelled { id } => {
                    let mut applied = false;
                    self.with_broker(|b, _| applied = b.venue_cancel(id));
                    applied
                }
                ExecReport::Alert(alert) => {
                    self.stats.alerts.fetch_add(1, Ordering::Relaxed);
                    self.emit(DeskEvent::Alert(alert));
                    true
                }
            };
            if !applied {
                self.stats.reports_unmatched.fetch_add(1, Ordering::Relaxed);
            }
        }
        if n > 0 {
            self.send_closes();
        }
        n
    }

    /// Sends one `Close` for each position newly marked closing (decay, rotation, an
    /// operator's close).
    fn send_closes(&mut self) {
        let positions = self.broker.positions();
        for slot in self.asked.iter_mut() {
            if *slot != 0 && !positions.iter().any(|p| p.id == *slot) {
                *slot = 0;
            }
        }
        for p in positions {
            let Some(reason) = p.closing else { continue };
            if self.asked.contains(&p.id) {
                continue;
            }
            let intent = OrderIntent::Close { id: p.id, symbol: p.symbol, reason };
            match self.asked.iter_mut().find(|s| **s == 0) {
                Some(slot) if self.execution.send(intent) => *slot = p.id,
                _ => {
                    self.stats.intents_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Asks the venue to open trade `id` (just accepted by the broker), in exact decimals
    /// on the symbol's grid; a full ring, or sizes that fit no grid, forget the entry.
    fn send_open(&mut self, id: u64) {
        let Some(p) = self.broker.positions().iter().find(|p| p.id == id) else { return };
        let read_ns = self.read_ns;
        let Some(intent) = self.broker.rules(p.symbol).and_then(|rules| open_intent(p, rules, read_ns))
        else {
            self.stats.intents_dropped.fetch_add(1, Ordering::Relaxed);
            self.broker.venue_cancel(id);
            return;
        };
        if !self.execution.send(intent) {
            self.stats.intents_dropped.fetch_add(1, Ordering::Relaxed);
            self.broker.venue_cancel(id);
        }
    }

    /// Puts back the account a previous run journaled.
    pub fn restore(&mut self, snapshot: &AccountSnapshot) {
        let positions: Vec<Position> = snapshot.positions.iter().flatten().copied().collect();
        self.broker.restore(snapshot.wallet, snapshot.closed_trades, snapshot.next_id, &positions);
        self.publish();
    }

    /// The broker (for tests and the summary).
    pub fn broker(&self) -> &PaperBroker {
        &self.broker
    }

    /// A trade print on `symbol`.
    pub fn on_trade(&mut self, symbol: u16, price: f64, time_ms: i64) {
        self.last_time_ms = self.last_time_ms.max(time_ms);
        self.with_broker(|b, out| b.on_trade(symbol, price, time_ms, &mut |t| out(t)));
    }

    /// A mark price on `symbol` (with its funding rate and next funding time).
    pub fn on_mark(&mut self, symbol: u16, mark: f64, rate: f64, next_funding_ms: i64, time_ms: i64) {
        self.last_time_ms = self.last_time_ms.max(time_ms);
        self.with_broker(|b, out| b.on_mark(symbol, mark, rate, next_funding_ms, time_ms, &mut |t| out(t)));
    }

    /// A closed 1m bar with its features (and the serving model's view, if one serves):
    /// label, then (live bars only) decay and, unless the bar is stale against the latest
    /// exchange time, decide — the student decides once enough teacher trades closed.
    /// `entry_gap_filled` says whether the FVG with that id is known filled.
    pub fn on_bar(
        &mut self,
        symbol: u16,
        close: f64,
        snapshot: &FeatureSnapshot,
        model: Option<&ModelView>,
        live: bool,
        entry_gap_filled: impl Fn(u64) -> bool,
    ) {
        if let Some(labeller) = self.labellers.get_mut(usize::from(symbol)) {
            let bar = (snapshot.open_time_ms, close, snapshot.features, live);
            if let Some(sample) = labeller.push(symbol, bar) {
                self.emit(DeskEvent::Sample(sample));
            }
        }
        if !live || !self.tradable.get(usize::from(symbol)).copied().unwrap_or(false) {
            return;
        }
        let now = snapshot.open_time_ms + 60_000;
        if let Some(p) = self.broker.position(symbol).filter(|p| p.filled && p.closing.is_none()) {
            let held = Held {
                side: p.side,
                entry_price: p.entry_price,
                entry_gap_filled: p.entry_gap.is_some_and(&entry_gap_filled),
            };
            if let Some(reason) = decay::check(&held, snapshot, close, self.config.decay_adverse_move) {
                self.broker.close(symbol, ExitReason::SignalDecay(reason));
                self.send_closes();
            }
        }
        if self.last_time_ms - now > self.config.stale_after_ms {
            self.stats.stale_bars.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.paused || self.not_trading.get(usize::from(symbol)).copied().unwrap_or(false) {
            return;
        }
        let phase = policy::phase(self.broker.closed_trades(), model.is_some(), &self.config.policy);
        self.stats.phase.store(u64::from(phase == Phase::Student), Ordering::Relaxed);
        let flat = self.broker.position(symbol).is_none();
        if flat && snapshot.warm {
            self.stats.flat_bars.fetch_add(1, Ordering::Relaxed);
        }
        let signal = match &mut self.entries {
            Entries::Policy => policy::decide(snapshot, phase, model, &self.config.policy),
            Entries::Random { rng, probability } if flat => {
                policy::random(snapshot, *probability, rng, &self.config.policy)
            }
            Entries::Random { .. } => None,
        };
        let Some(signal) = signal else { return };
        self.stats.signals.fetch_add(1, Ordering::Relaxed);
        let Some(rules) = self.broker.rules(symbol) else { return };
        let sized = sizing::size(
            &signal,
            close,
            snapshot.raw.atr14.unwrap_or(0.0),
            rules,
            &self.broker.view(),
            &self.config.sizing,
        );
        let outcome = match sized {
            Err(skip) => Outcome::Skipped(skip),
            Ok(order) => {
                let gap = snapshot.active_fvg.map(|g| g.id);
                match self.broker.submit(
                    symbol,
                    &order,
                    signal.rule,
                    signal.strength,
                    gap,
                    &snapshot.features,
                    now,
                ) {
                    Ok(id) => {
                        self.send_open(id);
                        Outcome::Submitted(id)
                    }
                    Err(refusal) => Outcome::Refused(refusal),
                }
            }
        };
        if !matches!(outcome, Outcome::Submitted(_)) {
            self.stats.signals_not_taken.fetch_add(1, Ordering::Relaxed);
        }
        self.note_guard(&outcome, now);
        let note = SignalNote {
            symbol,
            bar_time_ms: snapshot.open_time_ms,
            side: signal.side,
            rule: signal.rule,
            price: close,
            outcome,
        };
        self.emit(DeskEvent::Signal(note));
        self.send_closes();
        self.publish();
    }

    /// Alerts when a guard starts or stops halting entries.
    fn note_guard(&mut self, outcome: &Outcome, time_ms: i64) {
        let halt = match outcome {
            Outcome::Refused(r @ (Refusal::DailyLoss | Refusal::Drawdown)) => Some(*r),
            Outcome::Submitted(_) => None,
            _ => return,
        };
        if halt == self.halted {
            return;
        }
        let alert = match halt {
            Some(Refusal::DailyLoss) => {
                Alert { time_ms, level: "HIGH", what: "daily loss limit reached: new entries halted" }
            }
            Some(_) => Alert { time_ms, level: "HIGH", what: "drawdown limit reached: new entries halted" },
            None => Alert { time_ms, level: "INFO", what: "entries resumed" },
        };
        self.halted = halt;
        self.stats.alerts.fetch_add(1, Ordering::Relaxed);
        self.emit(DeskEvent::Alert(alert));
    }

    /// Closes every position (shutdown with `flatten_on_shutdown`).
    pub fn flatten(&mut self) {
        self.flatten_for(ExitReason::Shutdown);
    }

    /// Closes every position now at the latest prices, for `reason`.
    /// With a venue, the venue's kill switch runs (every order cancelled, every position
    /// closed at the exchange, unknown ones included) and the exits come back as reports.
    pub fn flatten_for(&mut self, reason: ExitReason) {
        let time_ms = self.last_time_ms;
        self.with_broker(|b, out| b.flatten(reason, time_ms, &mut |t| out(t)));
        if !self.execution.send(OrderIntent::Flatten { reason }) {
            self.stats.intents_dropped.fetch_add(1, Ordering::Relaxed);
        }
        // At an exchange the kill switch covers every position: no separate closes.
        for (slot, p) in self.asked.iter_mut().zip(self.broker.positions()) {
            *slot = p.id;
        }
        self.publish();
    }

    /// Stops (true) or resumes (false) opening positions; open ones are still managed.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.stats.paused.store(u64::from(paused), Ordering::Relaxed);
    }

    /// Closes `symbol`'s position at its next trade (an operator's close); false when none.
    pub fn close_manual(&mut self, symbol: u16) -> bool {
        let closing = self.broker.close(symbol, ExitReason::Manual);
        self.send_closes();
        self.publish();
        closing
    }

    /// Runs one broker call that may close trades: each closed trade goes to the writer as
    /// it happens, then (when the account changed) a snapshot.
    fn with_broker(&mut self, call: impl FnOnce(&mut PaperBroker, &mut dyn FnMut(&ClosedTrade))) {
        let before = self.account_key();
        let (out, stats, pnl) = (&mut self.out, &self.stats, &mut self.pnl);
        call(&mut self.broker, &mut |t| {
            *pnl += t.pnl;
            push(out, stats, DeskEvent::Closed(*t));
        });
        self.after(before);
    }

    /// What changes when a fill, close, resize or funding payment happens (fills flip
    /// `filled`, closes remove, a venue's resize moves the quantities, fees and funding move
    /// the wallet).
    fn account_key(&self) -> (u64, usize, usize, u64, u64) {
        let positions = self.broker.positions();
        let filled = positions.iter().filter(|p| p.filled).count();
        let qty: f64 = positions.iter().map(|p| p.qty).sum();
        (self.broker.closed_trades(), positions.len(), filled, self.broker.wallet().to_bits(), qty.to_bits())
    }

    fn after(&mut self, before: (u64, usize, usize, u64, u64)) {
        if self.account_key() != before {
            let mut positions = [None; SNAPSHOT_POSITIONS];
            for (slot, p) in positions.iter_mut().zip(self.broker.positions()) {
                *slot = Some(*p);
            }
            self.emit(DeskEvent::Account(AccountSnapshot {
                time_ms: self.last_time_ms,
                wallet: self.broker.wallet(),
                equity: self.broker.equity(),
                closed_trades: self.broker.closed_trades(),
                next_id: self.broker.next_id(),
                positions,
            }));
        }
        self.publish();
    }

    fn emit(&mut self, event: DeskEvent) {
        push(&mut self.out, &self.stats, event);
    }

    fn publish(&self) {
        let s = &self.stats;
        s.trades_closed.store(self.broker.closed_trades(), Ordering::Relaxed);
        s.pnl.store(self.pnl.to_bits(), Ordering::Relaxed);
        s.equity.store(self.broker.equity().to_bits(), Ordering::Relaxed);
        s.open_positions
            .store(self.broker.positions().iter().filter(|p| p.filled).count() as u64, Ordering::Relaxed);
    }
}

/// Hands `event` to the writer's ring; a full ring counts a drop.
fn push(out: &mut Option<rtrb::Producer<DeskEvent>>, stats: &DeskStats, event: DeskEvent) {
    if let Some(out) = out {
        if out.push(event).is_err() {
            stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The order intent opening `p`: its quantity rounded down to the step, its legs on the tick
/// rounded toward the entry (never past the planned loss), as exact decimals.
fn open_intent(p: &Position, rules: &SymbolRules, read_ns: u64) -> Option<OrderIntent> {
    use aegis_wire::{Fixed8, Rounding};
    let toward_entry = |price: f64| if price < p.entry_price { Rounding::Up } else { Rounding::Down };
    let qty = Fixed8::on_grid(p.qty, rules.step_size, Rounding::Down).filter(|q| !q.is_zero())?;
    let stop = Fixed8::on_grid(p.stop, rules.tick_size, toward_entry(p.stop))?;
    let target = Fixed8::on_grid(p.target, rules.tick_size, toward_entry(p.target))?;
    Some(OrderIntent::Open {
        id: p.id,
        symbol: p.symbol,
        side: p.side,
        qty,
        leverage: p.leverage,
        stop,
        target,
        read_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_intent_carries_exact_decimals_on_the_grid_with_legs_toward_the_entry() {
        use aegis_wire::Fixed8;
        let rules = SymbolRules::usdm_default(); // step 0.001, tick 0.1
        let position = |side, stop: f64, target: f64| Position {
            id: 7,
            symbol: 0,
            side,
            qty: 0.0129,
            leverage: 3.0,
            entry_price: 100.0,
            entry_time_ms: 0,
            stop,
            target,
            margin: 0.0,
            liquidation: 0.0,
            fees: 0.0,
            funding: 0.0,
            rule: aegis_trading::policy::Rule::Random,
            strength: 0.0,
            entry_gap: None,
            features: [0.0; aegis_analytics::FEATURES],
            filled: false,
            closing: None,
        };
        let exact = |text: &str| Fixed8::parse(text).unwrap();
        let long = open_intent(&position(aegis_trading::Side::Long, 97.03, 104.97), &rules, 0).unwrap();
        let OrderIntent::Open { qty, stop, target, .. } = long else { panic!("{long:?}") };
        assert_eq!(
            (qty, stop, target),
            (exact("0.012"), exact("97.1"), exact("104.9")),
            "long: legs up and down to the entry"
        );
        let short = open_intent(&position(aegis_trading::Side::Short, 102.96, 95.04), &rules, 0).unwrap();
        let OrderIntent::Open { stop, target, .. } = short else { panic!("{short:?}") };
        assert_eq!(
            (stop, target),
            (exact("102.9"), exact("95.1")),
            "short: the stop never past the planned loss"
        );
        let on_tick = open_intent(&position(aegis_trading::Side::Long, 97.0, 104.0), &rules, 0).unwrap();
        let OrderIntent::Open { stop, target, .. } = on_tick else { panic!("{on_tick:?}") };
        assert_eq!((stop, target), (exact("97"), exact("104")), "already on the tick: kept");
        let mut dust = position(aegis_trading::Side::Long, 97.0, 104.0);
        dust.qty = 0.0009;
        assert_eq!(open_intent(&dust, &rules, 0), None, "less than one step: no order");
    }

    #[test]
    fn a_symbol_no_longer_trading_gets_no_entry_and_new_filters_size_the_next_order() {
        let stats = std::sync::Arc::new(DeskStats::default());
        let rules = vec![Some(SymbolRules::usdm_default()); 2];
        let mut desk = Desk::new(TradingConfig::default(), rules, None, stats.clone());
        let mut snapshot = FeatureSnapshot::neutral();
        snapshot.warm = true;
        snapshot.features[aegis_analytics::feature::MOMENTUM_ATR] = 1.0;
        let filters = desk.broker().rules(0).unwrap().filters();
        let brackets = listing::Brackets::from_slice(desk.broker().rules(0).unwrap().brackets()).unwrap();
        desk.apply_listing(listing::ListingChange { symbol: 0, trading: false, filters, brackets });
        let coarse = aegis_trading::rules::Filters { step_size: 0.5, min_qty: 0.5, ..filters };
        let two_x = aegis_trading::rules::Bracket {
            notional_cap: 1e9,
            max_leverage: 2.0,
            maint_margin_rate: 0.1,
            maint_amount: 0.0,
        };
        let low = listing::Brackets::from_slice(&[two_x]).unwrap();
        desk.apply_listing(listing::ListingChange {
            symbol: 1,
            trading: true,
            filters: coarse,
            brackets: low,
        });
        assert_eq!(stats.symbols_not_trading.load(Ordering::Relaxed), 1);
        assert_eq!(stats.alerts.load(Ordering::Relaxed), 1, "the halt is reported");
        desk.on_bar(0, 100.0, &snapshot, None, true, |_| false);
        desk.on_bar(1, 100.0, &snapshot, None, true, |_| false);
        assert!(desk.broker().position(0).is_none(), "not TRADING: no entry");
        let entered = desk.broker().position(1).expect("entered");
        let qty = entered.qty;
        assert!(qty >= 0.5 && (qty / 0.5 - (qty / 0.5).round()).abs() < 1e-9, "sized on the new step: {qty}");
        assert!(entered.leverage <= 2.0, "under the new brackets' cap: {}", entered.leverage);
        desk.apply_listing(listing::ListingChange { symbol: 0, trading: true, filters, brackets });
        desk.on_bar(0, 100.0, &snapshot, None, true, |_| false);
        let default_brackets = desk.broker().position(0).expect("TRADING again: entered");
        assert!(
            default_brackets.leverage > 2.0,
            "the 2× cap was symbol 1's alone: {}",
            default_brackets.leverage
        );
        assert_eq!(stats.symbols_not_trading.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_symbol_without_exchange_rules_is_never_traded() {
        let stats = std::sync::Arc::new(DeskStats::default());
        let mut desk = Desk::new(
            TradingConfig::default(),
            vec![None, Some(SymbolRules::usdm_default())],
            None,
            stats.clone(),
        );
        let mut snapshot = FeatureSnapshot::neutral();
        snapshot.warm = true;
        snapshot.features[aegis_analytics::feature::MOMENTUM_ATR] = 1.0;
        desk.on_bar(0, 100.0, &snapshot, None, true, |_| false);
        assert_eq!(stats.signals.load(Ordering::Relaxed), 0, "no rules: no decision");
        desk.on_bar(1, 100.0, &snapshot, None, true, |_| false);
        assert_eq!(stats.signals.load(Ordering::Relaxed), 1);
        assert!(desk.broker().position(1).is_some() && desk.broker().position(0).is_none());
    }

    #[test]
    fn a_guard_halting_entries_raises_one_alert_until_entries_resume() {
        let stats = std::sync::Arc::new(DeskStats::default());
        let (tx, mut rx) = rtrb::RingBuffer::new(64);
        let rules = vec![Some(SymbolRules::usdm_default()); 2];
        let mut desk = Desk::new(TradingConfig::default(), rules, Some(tx), stats.clone());
        let mut snapshot = FeatureSnapshot::neutral();
        snapshot.warm = true;
        snapshot.features[aegis_analytics::feature::MOMENTUM_ATR] = 1.0;
        desk.on_bar(0, 100.0, &snapshot, None, true, |_| false);
        desk.on_trade(0, 100.0, 60_001);
        // Marked 30 % down: the 3× long loses far more than 5 % of equity.
        desk.on_mark(0, 70.0, 0.0, 0, 60_002);
        snapshot.open_time_ms = 60_000;
        desk.on_bar(1, 100.0, &snapshot, None, true, |_| false);
        desk.on_bar(1, 100.0, &snapshot, None, true, |_| false);
        let alerts: Vec<Alert> = std::iter::from_fn(|| rx.pop().ok())
            .filter_map(|e| if let DeskEvent::Alert(a) = e { Some(a) } else { None })
            .collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].level, "HIGH");
        assert!(alerts[0].what.starts_with("daily loss"));
    }
}
