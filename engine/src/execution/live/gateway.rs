//! The execution gateway: a thread between the brain's desk and the exchange. It takes the
//! desk's order intents from a ring, places and cancels orders through the signed client,
//! follows fills on the user-data stream (keeping its listenKey alive, recovering it when it
//! lapses) and hands entries and exits back through a ring. At start it reconciles the
//! journal's open positions with the exchange. Every order sent, every answer and every
//! difference found goes to the orders journal.
//!
//! Each trade's orders carry client ids derived from the trade id (`aegis.<id>.e` entry,
//! `.s` stop, `.t` take profit, `.x<n>` closes), so a restarted engine finds its legs; the
//! dots keep them apart from [`ClientIds`]' per-run ids.
//!
//! The legs are conditional orders of Binance's Algo Service (reduce-only, with the trade's
//! quantity, triggered on `working_type`). They are followed by algo id through
//! `ALGO_UPDATE` and, once triggered, by order id through the triggered order's
//! `ORDER_TRADE_UPDATE`. A position is *unprotected* when the exchange still holds it and a
//! leg is gone without closing it — REJECTED, CANCELED or EXPIRED by someone else, FINISHED
//! with less than the position, or stuck in TRIGGERING past a timeout: the gateway then
//! closes the rest and alerts.

use super::client::{TradeClient, TradeError};
use super::order::{
    AlgoRequest, AlgoState, AlgoStatus, ClientIds, Fixed8, LegKind, OrderKind, OrderRequest, OrderState,
    Side as OrderSide, WorkingType,
};
use super::reconcile::{self, JournalPosition, UnknownPosition};
use super::sign::local_ms;
use super::user_stream::{OrderUpdate, UserEvent, UserStream};
use crate::desk::venue::{Alert, ExecReport, OrderIntent};
use crate::ring::Doorbell;
use aegis_journal::{FsyncPolicy, JournalFile};
use aegis_trading::{ExitReason, Position, Side};
use aegis_wire::{SymbolId, SymbolTable};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The gateway's counters, readable from any thread.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Orders sent (entries, legs, closes).
    pub orders_sent: AtomicU64,
    /// Orders the exchange refused (each journaled with its code and reason).
    pub orders_refused: AtomicU64,
    /// Entries filled.
    pub entries: AtomicU64,
    /// Exits reported (legs, closes, the kill switch, reconciliation).
    pub exits: AtomicU64,
    /// Rate-limit answers (429/418, or our own limiter) that started a back-off.
    pub rate_limited: AtomicU64,
    /// Entries skipped because a back-off was running.
    pub entries_skipped: AtomicU64,
    /// User-data streams opened again after an expiry or a drop.
    pub stream_recoveries: AtomicU64,
    /// listenKey keep-alives sent.
    pub keep_alives: AtomicU64,
    /// Differences restart reconciliation found.
    pub differences: AtomicU64,
    /// Kill switches carried out at the exchange.
    pub flattens: AtomicU64,
    /// Reports the desk's ring had no room for.
    pub reports_dropped: AtomicU64,
    /// User-data messages of a kind used here that could not be read (each journaled).
    pub unreadable_events: AtomicU64,
    /// Conditional-order updates for orders this engine never placed (each journaled).
    pub foreign_updates: AtomicU64,
    /// The WebSocket API channel's counters (zero when orders go over REST).
    pub ws_api: Arc<super::ws_api::WsApiStats>,
    /// Entries' tick-to-trade (`None` until the first entry with a known read time).
    pub tick_to_trade: std::sync::Mutex<Option<TickToTrade>>,
}

/// Tick-to-trade of entries, ns: from the read of the market event behind each (the
/// shard's receipt stamp) to its order's last byte written (known over the WebSocket API)
/// and to the exchange's answer read.
#[derive(Debug)]
pub struct TickToTrade {
    /// To the last byte written.
    pub written: hdrhistogram::Histogram<u64>,
    /// To the acknowledgement.
    pub acked: hdrhistogram::Histogram<u64>,
}

impl GatewayStats {
    /// Records an entry answered now, read at `read_ns` (0: unknown, not recorded), its
    /// last byte written at `written` when known.
    fn tick_to_trade(&self, read_ns: u64, written: Option<Instant>) {
        if read_ns == 0 {
            return;
        }
        let acked_ns = crate::clock::now_ns();
        let written_ns = written.map(|w| acked_ns.saturating_sub(w.elapsed().as_nanos() as u64));
        let Ok(mut slot) = self.tick_to_trade.lock() else { return };
        let histogram = || hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3);
        if slot.is_none() {
            let (Ok(written), Ok(acked)) = (histogram(), histogram()) else { return };
            *slot = Some(TickToTrade { written, acked });
        }
        if let Some(t) = slot.as_mut() {
            let _ = t.acked.record(acked_ns.saturating_sub(read_ns).max(1));
            if let Some(w) = written_ns {
                let _ = t.written.record(w.saturating_sub(read_ns).max(1));
            }
        }
    }
}

/// How the gateway runs.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// WebSocket base of the user-data stream (`/private/ws?listenKey=…&events=…` is
    /// appended).
    pub ws_base: String,
    /// TLS settings for a `wss://` user stream (the engine's roots and extra CA).
    pub tls: std::sync::Arc<rustls::ClientConfig>,
    /// How often the listenKey is kept alive (Binance: it lapses 60 min after the last).
    pub keep_alive: Duration,
    /// The orders journal (`None`: not kept).
    pub journal: Option<PathBuf>,
    /// When journal records reach the disk.
    pub fsync: FsyncPolicy,
    /// Which price triggers the stop and take-profit legs.
    pub working_type: WorkingType,
    /// How long a leg may stay TRIGGERING before the position counts as unprotected.
    pub triggering_timeout: Duration,
    /// Open conditional orders the account may hold (Binance: 200 since 2025-12-29).
    pub max_open_algo_orders: usize,
}

/// What restart reconciliation found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartReport {
    /// Positions on which the journal and the exchange agree.
    pub matched: usize,
    /// One line per difference and per action taken.
    pub lines: Vec<String>,
}

/// One trade the gateway holds at the exchange.
#[derive(Clone, Copy, Debug)]
struct Held {
    id: u64,
    symbol: u16,
    side: Side,
    /// What the exchange holds of it, exactly.
    qty: Fixed8,
    entry_price: f64,
    stop: Fixed8,
    target: Fixed8,
    /// The live stop leg's algo id (0: none).
    stop_algo: u64,
    /// The live take-profit leg's algo id (0: none).
    target_algo: u64,
    /// Since when a leg has been TRIGGERING (or triggered and not yet done).
    triggering_since: Option<Instant>,
}

impl Held {
    fn new(id: u64, symbol: u16, side: Side, qty: Fixed8, stop: Fixed8, target: Fixed8) -> Self {
        Self {
            id,
            symbol,
            side,
            qty,
            entry_price: 0.0,
            stop,
            target,
            stop_algo: 0,
            target_algo: 0,
            triggering_since: None,
        }
    }

    /// The leg role algo id `algo_id` is live as, if it is one of this trade's.
    fn leg(&self, algo_id: u64) -> Option<Role> {
        match algo_id {
            0 => None,
            a if a == self.stop_algo => Some(Role::Stop),
            a if a == self.target_algo => Some(Role::Target),
            _ => None,
        }
    }

    /// The live algo id of the leg in `role` (0: none).
    fn leg_id(&self, role: Role) -> u64 {
        if role == Role::Stop {
            self.stop_algo
        } else {
            self.target_algo
        }
    }

    fn set_leg_id(&mut self, role: Role, algo_id: u64) {
        if role == Role::Stop {
            self.stop_algo = algo_id;
        } else {
            self.target_algo = algo_id;
        }
    }

    /// Live legs (0, 1 or 2).
    fn legs(&self) -> usize {
        usize::from(self.stop_algo != 0) + usize::from(self.target_algo != 0)
    }
}

/// What placing a trade's legs gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Legs {
    /// Both wait at the exchange.
    Placed,
    /// One was refused.
    Refused,
    /// The market is already past this one's trigger (-2021).
    AlreadyReached(Role),
}

/// Which of a trade's orders a client id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Entry,
    Stop,
    Target,
    Close,
}

/// The client id of trade `id`'s order in `role` (`attempt` numbers closes).
fn client_id(id: u64, role: Role, attempt: u32) -> String {
    match role {
        Role::Entry => format!("aegis.{id}.e"),
        Role::Stop => format!("aegis.{id}.s"),
        Role::Target => format!("aegis.{id}.t"),
        Role::Close => format!("aegis.{id}.x{attempt}"),
    }
}

/// Why a trade ends when its leg in `role` fills.
fn leg_reason(role: Role) -> ExitReason {
    if role == Role::Stop {
        ExitReason::StopLoss
    } else {
        ExitReason::TakeProfit
    }
}

/// The side of the order that opens (`closing` false) or closes a `side` position.
fn order_side(side: Side, closing: bool) -> OrderSide {
    match (side, closing) {
        (Side::Long, false) | (Side::Short, true) => OrderSide::Buy,
        _ => OrderSide::Sell,
    }
}

/// Journal and exchange quantities closer than this agree (both carry 8 decimals).
const QTY_TOLERANCE: f64 = 1e-9;
/// How long an idle loop waits on the user-data stream before looking at the intents.
const POLL: Duration = Duration::from_millis(1);
/// How long a failed close or kill switch waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a failed user-stream reconnect waits before the next try.
const STREAM_RETRY: Duration = Duration::from_millis(500);
/// Reduce-only market orders one close tries before it says the rest is still open.
const CLOSE_TRIES: u32 = 3;

/// The execution gateway: the signed client, the user-data stream, the trades held.
pub struct Gateway {
    client: TradeClient,
    settings: GatewaySettings,
    stream: Option<UserStream>,
    next_stream_try: Instant,
    last_keep_alive: Instant,
    symbols: Arc<SymbolTable>,
    held: Vec<Held>,
    leverage: Vec<u32>,
    intents: rtrb::Consumer<OrderIntent>,
    reports: rtrb::Producer<ExecReport>,
    doorbell: Arc<Doorbell>,
    journal: Option<JournalFile>,
    stats: Arc<GatewayStats>,
    backoff_until: Option<Instant>,
    deferred: VecDeque<(Instant, OrderIntent)>,
    ids: ClientIds,
    /// Orders placed by triggered legs: (order id, trade id, leg role).
    triggered: Vec<(u64, u64, Role)>,
}

/// The rings and counters a gateway is wired with.
pub struct GatewayLinks {
    /// Intents from the desk.
    pub intents: rtrb::Consumer<OrderIntent>,
    /// Reports to the desk.
    pub reports: rtrb::Producer<ExecReport>,
    /// Wakes the brain after a report.
    pub doorbell: Arc<Doorbell>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
}

impl Gateway {
    /// Connects: the exchange's clock and rate limits, isolated margin on every symbol,
    /// restart reconciliation of `restored` (the desk's journaled open positions) with the
    /// exchange's positions and orders, then the user-data stream. Reconciliation's exits
    /// and resizes are already in the reports ring when this returns.
    pub fn start(
        client: TradeClient,
        settings: GatewaySettings,
        symbols: Arc<SymbolTable>,
        restored: &[Position],
        links: GatewayLinks,
    ) -> Result<(Self, StartReport), TradeError> {
        let journal = match &settings.journal {
            Some(path) => Some(
                JournalFile::open(path, settings.fsync, |_| {})
                    .map_err(|e| TradeError::Malformed {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?
                    .0,
            ),
            None => None,
        };
        let mut gateway = Self {
            client,
            stream: None,
            next_stream_try: Instant::now(),
            last_keep_alive: Instant::now(),
            held: Vec::with_capacity(16),
            leverage: vec![0; symbols.len()],
            symbols,
            intents: links.intents,
            reports: links.reports,
            doorbell: links.doorbell,
            journal,
            stats: links.stats,
            backoff_until: None,
            deferred: VecDeque::with_capacity(16),
            ids: ClientIds::new(local_ms()),
            triggered: Vec::with_capacity(4),
            settings,
        };
        gateway.client.sync_clock()?;
        gateway.client.load_rate_limits()?;
        // Before any order or setting: an account in a mode the engine does not trade is
        // refused, with the reason and the fix.
        if let Some(why) = gateway.client.account_modes()?.refusal() {
            return Err(TradeError::AccountMode(why));
        }
        let names: Vec<String> = gateway.symbols.iter().map(|(_, n)| n.to_string()).collect();
        for name in &names {
            if let Err(e) = gateway.client.set_margin_type(name, true) {
                // An open position keeps its margin type: said, not fatal.
                gateway.note(json!({"event": "margin_type", "symbol": name, "error": e.to_string()}));
            }
        }
        let report = gateway.reconcile(restored)?;
        gateway.stream =
            Some(UserStream::open(&mut gateway.client, &gateway.settings.ws_base, &gateway.settings.tls)?);
        gateway.last_keep_alive = Instant::now();
        Ok((gateway, report))
    }

    /// Serves intents and follows the user-data stream until `stop`, then finishes what the
    /// desk already asked for (closes and kill switches wait out a back-off for at most
    /// `drain` after the stop).
    pub fn run(mut self, stop: Arc<AtomicBool>, drain: Duration) {
        let mut stopped_at = None;
        loop {
            if stop.load(Ordering::Acquire) && stopped_at.is_none() {
                stopped_at = Some(Instant::now());
            }
            self.serve_intents();
            if let Some(at) = stopped_at {
                if (self.intents.is_empty() && self.deferred.is_empty()) || at.elapsed() > drain {
                    break;
                }
            }
            self.follow_stream();
            self.client.tend_ws_api();
            self.keep_alive_if_due();
            self.check_triggering();
        }
        self.note(json!({"event": "stopped", "held": self.held.len(), "deferred": self.deferred.len()}));
        if let Some(journal) = self.journal.as_mut() {
            let _ = journal.sync();
        }
    }

    /// Compares the journal's open positions with the exchange's, resolves the differences
    /// (stray orders cancelled, unknown positions flattened, the journal told what the
    /// exchange closed or resized) and takes over the legs of what both hold.
    fn reconcile(&mut self, restored: &[Position]) -> Result<StartReport, TradeError> {
        let exchange = self.client.positions()?;
        let open_orders = self.client.open_orders(None)?;
        let open_algos = self.client.open_algo_orders(None)?;
        let mut journal = Vec::new();
        let mut held = Vec::new();
        for p in restored.iter().filter(|p| p.filled) {
            let Some(name) = self.symbols.name(SymbolId(p.symbol)) else { continue };
            journal.push(JournalPosition { symbol: name.to_string(), amount: p.side.sign() * p.qty });
            // The journal's floats were read from the exchange's decimals (quantities) or
            // put on the tick by the desk (legs): the nearest 10^-8 is that decimal again.
            let exact = |v: f64| Fixed8::nearest(v).unwrap_or_default();
            let mut h = Held::new(p.id, p.symbol, p.side, exact(p.qty), exact(p.stop), exact(p.target));
            h.entry_price = p.entry_price;
            held.push(h);
        }
        let found = reconcile::reconcile(&journal, &exchange, &open_orders, &open_algos, QTY_TOLERANCE);
        let mut report = StartReport { matched: found.matched.len(), lines: reconcile::describe(&found) };
        self.stats.differences.fetch_add(found.differences.len() as u64, Ordering::Relaxed);
        let resolution =
            reconcile::resolve(&mut self.client, &found, UnknownPosition::Flatten, &mut self.ids)?;
        for c in &resolution.cancelled {
            report.lines.push(format!("cancelled stray order {c}"));
        }
        for o in &resolution.flattened {
            report.lines.push(format!(
                "flattened unknown position {} ({} at {})",
                o.symbol, o.executed_qty, o.avg_price
            ));
        }
        for h in held {
            let name = self.name(h.symbol).to_string();
            if resolution.closed_in_journal.contains(&name) {
                let (price, reason) = match self.filled_leg(&h)? {
                    Some(found) => found,
                    None => {
                        self.alert("reconciliation: a journaled position was closed at the exchange by an unknown order");
                        (h.entry_price, ExitReason::Manual)
                    }
                };
                report.lines.push(format!("{name}: closed at the exchange ({}) at {price}", reason.name()));
                self.report(ExecReport::Exited {
                    id: h.id,
                    price,
                    time_ms: self.client.clock().now_ms(),
                    reason,
                });
                continue;
            }
            let mut h = h;
            if let Some((_, amount)) = resolution.resized_in_journal.iter().find(|(s, _)| *s == name) {
                let same_side = amount.is_negative() == (h.side == Side::Short) && !amount.is_zero();
                if !same_side {
                    // The exchange holds the other side: nothing of this trade is left.
                    self.alert("reconciliation: the exchange holds the opposite side; the trade is closed and the position flattened");
                    self.report(ExecReport::Exited {
                        id: h.id,
                        price: h.entry_price,
                        time_ms: self.client.clock().now_ms(),
                        reason: ExitReason::Manual,
                    });
                    self.client.flatten(&mut self.ids)?;
                    report.lines.push(format!("{name}: opposite side at the exchange, flattened"));
                    continue;
                }
                h.qty = amount.abs();
                self.report(ExecReport::Resized { id: h.id, qty: h.qty.to_f64() });
                report.lines.push(format!("{name}: resized to the exchange's {}", h.qty));
            }
            // The legs still waiting at the exchange are taken over by algo id.
            let live = |role| {
                let id = client_id(h.id, role, 0);
                open_algos
                    .iter()
                    .find(|a| a.symbol == name && a.client_algo_id == id)
                    .map_or(0, |a| a.algo_id)
            };
            h.stop_algo = live(Role::Stop);
            h.target_algo = live(Role::Target);
            self.held.push(h);
            let resized = resolution.resized_in_journal.iter().any(|(s, _)| *s == name);
            if h.legs() < 2 || resized {
                self.cancel_legs(h.id);
                report.lines.push(format!("{name}: stop and take-profit orders placed again"));
                self.protect(h.id);
            }
        }
        if !found.differences.is_empty() {
            self.alert("restart reconciliation found differences with the exchange (see the orders journal)");
        }
        for line in &report.lines {
            tracing::warn!(%line, "reconciliation");
        }
        let lines = report.lines.clone();
        self.note(json!({"event": "reconciled", "matched": report.matched, "lines": lines}));
        Ok(report)
    }

    /// Takes the desk's intents; during a back-off entries are skipped (a late entry is a
    /// different trade) and closes wait.
    fn serve_intents(&mut self) {
        let now = Instant::now();
        if self.backoff_until.is_some_and(|t| now >= t) {
            self.backoff_until = None;
        }
        while self.backoff_until.is_none() && self.deferred.front().is_some_and(|(at, _)| now >= *at) {
            if let Some((_, intent)) = self.deferred.pop_front() {
                self.handle(intent);
            }
        }
        while let Ok(intent) = self.intents.pop() {
            match intent {
                OrderIntent::Open { id, .. } if self.backoff_until.is_some() => {
                    self.stats.entries_skipped.fetch_add(1, Ordering::Relaxed);
                    self.note(json!({"event": "entry_skipped", "trade": id, "why": "rate-limit back-off"}));
                    self.report(ExecReport::Cancelled { id });
                }
                _ if self.backoff_until.is_some() => self.deferred.push_back((now, intent)),
                _ => self.handle(intent),
            }
        }
    }

    fn handle(&mut self, intent: OrderIntent) {
        match intent {
            OrderIntent::Open { id, symbol, side, qty, leverage, stop, target, read_ns } => {
                self.open(Held::new(id, symbol, side, qty, stop, target), leverage, read_ns)
            }
            OrderIntent::Close { id, reason, .. } => self.close(id, reason),
            OrderIntent::Flatten { reason } => self.flatten(reason),
        }
    }

    /// Enters trade `h` with a market order, then protects it with its legs. An entry whose
    /// legs would pass the account's cap on open conditional orders is skipped.
    fn open(&mut self, mut h: Held, leverage: f64, read_ns: u64) {
        let name = self.name(h.symbol).to_string();
        let legs: usize = self.held.iter().map(Held::legs).sum();
        let cap = self.settings.max_open_algo_orders;
        if legs + 2 > cap {
            self.stats.entries_skipped.fetch_add(1, Ordering::Relaxed);
            self.note(json!({
                "event": "entry_skipped", "trade": h.id,
                "why": format!("its legs would pass the cap of {cap} open conditional orders ({legs} open)"),
            }));
            return self.report(ExecReport::Cancelled { id: h.id });
        }
        let leverage = leverage.round().clamp(1.0, 125.0) as u32;
        if self.leverage[usize::from(h.symbol)] != leverage {
            match self.client.set_leverage(&name, leverage) {
                Ok(()) => self.leverage[usize::from(h.symbol)] = leverage,
                Err(e) => return self.entry_refused(h.id, &name, &e),
            }
        }
        let entry = OrderRequest {
            symbol: name.clone(),
            side: order_side(h.side, false),
            kind: OrderKind::Market,
            quantity: h.qty,
            client_id: client_id(h.id, Role::Entry, 0),
        };
        let filled = match self.send(&entry, false) {
            Ok(state) => state,
            Err(e) => return self.entry_refused(h.id, &name, &e),
        };
        self.stats.tick_to_trade(read_ns, self.client.ws_last_written());
        if filled.executed_qty.is_zero() {
            return self.report(ExecReport::Cancelled { id: h.id });
        }
        h.qty = filled.executed_qty;
        h.entry_price = filled.avg_price;
        self.stats.entries.fetch_add(1, Ordering::Relaxed);
        let time_ms = self.client.clock().now_ms();
        self.report(ExecReport::Entered { id: h.id, price: h.entry_price, qty: h.qty.to_f64(), time_ms });
        self.held.push(h);
        self.protect(h.id);
    }

    fn entry_refused(&mut self, id: u64, symbol: &str, error: &TradeError) {
        self.note(
            json!({"event": "entry_refused", "trade": id, "symbol": symbol, "error": error.to_string()}),
        );
        self.alert("an entry was refused by the exchange (see the orders journal)");
        self.report(ExecReport::Cancelled { id });
    }

    /// Places held trade `id`'s missing legs (reduce-only conditional orders for its whole
    /// quantity).
    fn place_legs(&mut self, id: u64) -> Legs {
        let Some(h) = self.held.iter().find(|h| h.id == id).copied() else { return Legs::Refused };
        let name = self.name(h.symbol).to_string();
        let mut placed = Legs::Placed;
        for (role, kind, trigger) in
            [(Role::Stop, LegKind::StopLoss, h.stop), (Role::Target, LegKind::TakeProfit, h.target)]
        {
            if h.leg_id(role) != 0 || placed != Legs::Placed {
                continue;
            }
            let leg = AlgoRequest {
                symbol: name.clone(),
                side: order_side(h.side, true),
                kind,
                trigger,
                quantity: h.qty,
                working_type: self.settings.working_type,
                client_algo_id: client_id(h.id, role, 0),
            };
            self.stats.orders_sent.fetch_add(1, Ordering::Relaxed);
            match self.client.place_algo(&leg) {
                Ok(a) => {
                    self.note(json!({"event": "leg", "leg": algo_json(&a)}));
                    if let Some(held) = self.held.iter_mut().find(|x| x.id == id) {
                        held.set_leg_id(role, a.algo_id);
                    }
                }
                Err(TradeError::Rejected { code: WOULD_IMMEDIATELY_TRIGGER, .. }) => {
                    // The market is already past the leg: the trade ends as that leg would.
                    self.note(json!({"event": "leg_would_trigger", "client_id": leg.client_algo_id}));
                    placed = Legs::AlreadyReached(role);
                }
                Err(e) => {
                    self.refused(&leg.client_algo_id, &name, &e);
                    placed = Legs::Refused;
                }
            }
        }
        placed
    }

    /// Acts on what placing trade `id`'s legs gave: a refused leg closes the position at
    /// once (alerting), a leg the market already passed closes it as that leg's exit.
    fn protect(&mut self, id: u64) {
        match self.place_legs(id) {
            Legs::Placed => {}
            Legs::Refused => {
                self.alert("a stop or take-profit order was refused: the position is closed at once");
                self.close(id, ExitReason::Manual);
            }
            Legs::AlreadyReached(role) => self.close(id, leg_reason(role)),
        }
    }

    /// Cancels held trade `id`'s live legs (one already gone is fine) and forgets them, so
    /// their CANCELED updates are not taken for a lost leg.
    fn cancel_legs(&mut self, id: u64) {
        let Some(i) = self.held.iter().position(|h| h.id == id) else { return };
        for role in [Role::Stop, Role::Target] {
            if self.held[i].leg_id(role) == 0 {
                continue;
            }
            self.held[i].set_leg_id(role, 0);
            let client_algo_id = client_id(id, role, 0);
            match self.client.cancel_algo(&client_algo_id) {
                Ok(()) => self.note(json!({"event": "cancelled", "client_id": client_algo_id})),
                Err(e) => self.note(
                    json!({"event": "cancel_refused", "client_id": client_algo_id, "error": e.to_string()}),
                ),
            }
        }
    }

    /// The leg of `h` that filled (its average price and reason), if one did.
    fn filled_leg(&mut self, h: &Held) -> Result<Option<(f64, ExitReason)>, TradeError> {
        for role in [Role::Stop, Role::Target] {
            match self.client.query_algo(&client_id(h.id, role, 0)) {
                Ok(a) if a.status == AlgoStatus::Finished && !a.executed_qty.is_zero() => {
                    return Ok(Some((a.avg_price, leg_reason(role))))
                }
                Ok(_) | Err(TradeError::Rejected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Closes trade `id` with reduce-only market orders after cancelling its legs; a leg
    /// that filled first wins. A rate limit or a failure leaves the close to be retried.
    fn close(&mut self, id: u64, reason: ExitReason) {
        self.close_rest(id, reason, (Fixed8::ZERO, 0.0));
    }

    /// The same after `done` (quantity, quote) of the trade was already closed at the
    /// exchange (by a leg that filled in part): the exit is reported at the average of both.
    fn close_rest(&mut self, id: u64, reason: ExitReason, done: (Fixed8, f64)) {
        self.cancel_legs(id);
        let Some(i) = self.held.iter().position(|h| h.id == id) else { return };
        let h = self.held[i];
        let name = self.name(h.symbol).to_string();
        let (mut qty, mut quote) = done;
        for attempt in 1..=CLOSE_TRIES {
            let left = h.qty.minus(qty);
            if left.is_zero() {
                break;
            }
            let order = OrderRequest {
                symbol: name.clone(),
                side: order_side(h.side, true),
                kind: OrderKind::Market,
                quantity: left,
                client_id: client_id(id, Role::Close, attempt),
            };
            match self.send(&order, true) {
                Ok(o) => {
                    qty = qty.plus(o.executed_qty);
                    quote += o.executed_qty.to_f64() * o.avg_price;
                }
                Err(TradeError::Rejected { code: REDUCE_ONLY_REJECTED, .. }) if !qty.is_zero() => {
                    // Flat at the exchange after what closed: the trade ended there.
                    return self.exited(i, quote / qty.to_f64(), reason);
                }
                Err(TradeError::Rejected { code: REDUCE_ONLY_REJECTED, .. }) => {
                    // Nothing left to reduce: a leg (or someone) closed it first.
                    return match self.filled_leg(&h) {
                        Ok(Some((price, leg_reason))) => self.exited(i, price, leg_reason),
                        _ => {
                            self.alert("a position was already closed at the exchange by an unknown order");
                            self.exited(i, h.entry_price, reason)
                        }
                    };
                }
                Err(_) => return self.retry_close(i, reason, qty),
            }
        }
        if !h.qty.minus(qty).is_zero() {
            self.alert("a close filled only in part: the rest is retried");
            return self.retry_close(i, reason, qty);
        }
        self.exited(i, quote / qty.to_f64(), reason);
    }

    /// Held trade `i` keeps what `closed` did not close; its close is tried again later.
    fn retry_close(&mut self, i: usize, reason: ExitReason, closed: Fixed8) {
        let h = self.held[i];
        if !closed.is_zero() {
            self.held[i].qty = h.qty.minus(closed);
            self.report(ExecReport::Resized { id: h.id, qty: self.held[i].qty.to_f64() });
        }
        let at = self.backoff_until.unwrap_or_else(|| Instant::now() + RETRY_AFTER);
        self.deferred.push_back((at, OrderIntent::Close { id: h.id, symbol: h.symbol, reason }));
    }

    /// The kill switch: the exchange's every order cancelled, every position closed (ones
    /// this engine did not open included); each held trade reported closed.
    fn flatten(&mut self, reason: ExitReason) {
        let closes = match self.client.flatten(&mut self.ids) {
            Ok(closes) => closes,
            Err(e) => {
                self.note(json!({"event": "flatten_failed", "error": e.to_string()}));
                self.alert("the kill switch failed at the exchange: retrying");
                if let TradeError::RateLimited { retry_after, .. } = e {
                    self.backoff(retry_after);
                }
                let at = self.backoff_until.unwrap_or_else(|| Instant::now() + RETRY_AFTER);
                self.deferred.push_back((at, OrderIntent::Flatten { reason }));
                return;
            }
        };
        self.stats.flattens.fetch_add(1, Ordering::Relaxed);
        let summary: Vec<Value> = closes.iter().map(order_json).collect();
        self.note(json!({"event": "flattened", "closes": summary}));
        while let Some(h) = self.held.last().copied() {
            let name = self.name(h.symbol);
            let close = closes.iter().find(|o| o.symbol == name && !o.executed_qty.is_zero());
            let (price, why) = match close {
                Some(o) => (o.avg_price, reason),
                None => match self.filled_leg(&h) {
                    Ok(Some(found)) => found,
                    _ => (h.entry_price, reason),
                },
            };
            self.exited(self.held.len() - 1, price, why);
        }
    }

    /// Reports held trade `i` closed and forgets it.
    fn exited(&mut self, i: usize, price: f64, reason: ExitReason) {
        let h = self.held.swap_remove(i);
        self.stats.exits.fetch_add(1, Ordering::Relaxed);
        let time_ms = self.client.clock().now_ms();
        self.note(json!({"event": "exited", "trade": h.id, "price": price, "reason": reason.name()}));
        self.report(ExecReport::Exited { id: h.id, price, time_ms, reason });
    }

    /// Sends `order` (reduce-only when `reduce_only`), journals the answer, starts a
    /// back-off on a rate limit.
    fn send(&mut self, order: &OrderRequest, reduce_only: bool) -> Result<OrderState, TradeError> {
        self.stats.orders_sent.fetch_add(1, Ordering::Relaxed);
        let answer =
            if reduce_only { self.client.place_reduce_only(order) } else { self.client.place(order) };
        match &answer {
            Ok(o) => self.note(json!({"event": "order", "order": order_json(o)})),
            Err(e) => self.refused(&order.client_id, &order.symbol, e),
        }
        answer
    }

    /// Journals a refused order (or leg); starts a back-off on a rate limit.
    fn refused(&mut self, client_id: &str, symbol: &str, error: &TradeError) {
        self.stats.orders_refused.fetch_add(1, Ordering::Relaxed);
        self.note(json!({
            "event": "refused", "client_id": client_id, "symbol": symbol, "error": error.to_string(),
        }));
        if let TradeError::RateLimited { retry_after, .. } = error {
            self.backoff(*retry_after);
        }
    }

    fn backoff(&mut self, wait: Duration) {
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.backoff_until = Some(Instant::now() + wait);
        self.note(json!({"event": "backoff", "ms": wait.as_millis() as u64}));
        self.alert("the exchange's rate limit was reached: entries are skipped until the back-off ends");
    }

    /// Reads the user-data stream for at most [`POLL`]; acts on a leg's fill; recovers a
    /// lapsed or dropped stream.
    fn follow_stream(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            if Instant::now() >= self.next_stream_try {
                self.reopen_stream();
            } else {
                std::thread::sleep(POLL);
            }
            return;
        };
        match stream.next_event(POLL) {
            Ok(Some(UserEvent::Order(update))) => self.on_order_update(&update),
            Ok(Some(UserEvent::Algo(update))) => self.on_algo_update(&update),
            Ok(Some(UserEvent::Account(_))) | Ok(None) => {}
            Ok(Some(UserEvent::Unreadable(what))) => {
                // It may have concerned any held trade: their legs are read back, so none is
                // left unprotected by an update the engine could not read.
                self.stats.unreadable_events.fetch_add(1, Ordering::Relaxed);
                let at = self.stream.as_ref().map(|s| s.listen_key.clone()).unwrap_or_default();
                self.note(
                    json!({"event": "unreadable_event", "where": format!("user stream {at}"), "what": what}),
                );
                let ids: Vec<u64> = self.held.iter().map(|h| h.id).collect();
                for id in ids {
                    self.recheck_legs(id);
                }
            }
            Ok(Some(UserEvent::Expired)) => {
                self.note(json!({"event": "listen_key_expired"}));
                self.stream = None;
                self.reopen_stream();
            }
            Err(e) => {
                self.note(json!({"event": "user_stream_lost", "error": e.to_string()}));
                self.stream = None;
                self.reopen_stream();
            }
        }
    }

    /// A new listenKey and connection, then a look at every held trade's legs for fills
    /// the gap hid.
    fn reopen_stream(&mut self) {
        match UserStream::open(&mut self.client, &self.settings.ws_base, &self.settings.tls) {
            Ok(stream) => {
                self.stats.stream_recoveries.fetch_add(1, Ordering::Relaxed);
                self.note(json!({"event": "user_stream_opened", "listen_key": stream.listen_key}));
                self.stream = Some(stream);
                self.last_keep_alive = Instant::now();
                let ids: Vec<u64> = self.held.iter().map(|h| h.id).collect();
                for id in ids {
                    self.recheck_legs(id);
                }
            }
            Err(e) => {
                self.note(json!({"event": "user_stream_failed", "error": e.to_string()}));
                self.next_stream_try = Instant::now() + STREAM_RETRY;
            }
        }
    }

    fn keep_alive_if_due(&mut self) {
        if self.stream.is_none() || self.last_keep_alive.elapsed() < self.settings.keep_alive {
            return;
        }
        self.last_keep_alive = Instant::now();
        match self.client.keep_alive_listen_key() {
            Ok(()) => {
                self.stats.keep_alives.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Lapsed (-1125) or unreachable: a new stream replaces it.
                self.note(json!({"event": "keep_alive_failed", "error": e.to_string()}));
                self.stream = None;
                self.reopen_stream();
            }
        }
    }

    /// A user-data order update: the order a triggered leg placed, once done, ends its leg
    /// (the entries and closes this gateway sends are answered synchronously).
    fn on_order_update(&mut self, update: &OrderUpdate) {
        if !update.last_qty.is_zero() {
            self.note(json!({
                "event": "fill", "client_id": update.client_id, "order_id": update.order_id,
                "qty": update.last_qty.to_f64(), "price": update.last_price, "status": format!("{:?}", update.status),
            }));
        }
        let Some(&(_, id, role)) = self.triggered.iter().find(|(order, ..)| *order == update.order_id) else {
            return;
        };
        if !update.status.is_open() {
            self.leg_done(id, role, update.filled_qty, update.avg_price);
        }
    }

    /// A conditional order's update (`ALGO_UPDATE`, or a query after a gap): followed by
    /// algo id; only a held trade's live legs count.
    fn on_algo_update(&mut self, update: &AlgoState) {
        let found = self.held.iter().enumerate().find_map(|(i, h)| Some((i, h.leg(update.algo_id)?)));
        let Some((i, role)) = found else {
            // Ours but over (a sibling's cancel after the trade ended): nothing to do. Not
            // ours: counted and journaled (an order placed by hand, or another program).
            if !update.client_algo_id.starts_with("aegis.") {
                self.stats.foreign_updates.fetch_add(1, Ordering::Relaxed);
                self.note(
                    json!({"event": "foreign_algo_update", "where": "user stream", "leg": algo_json(update)}),
                );
            }
            return;
        };
        let id = self.held[i].id;
        self.note(json!({"event": "leg_update", "trade": id, "leg": algo_json(update)}));
        match update.status {
            AlgoStatus::New => {}
            AlgoStatus::Triggering | AlgoStatus::Triggered => {
                self.held[i].triggering_since.get_or_insert_with(Instant::now);
                if let Some(order) = update.order_id {
                    if !self.triggered.iter().any(|(o, ..)| *o == order) {
                        self.triggered.push((order, id, role));
                    }
                }
            }
            AlgoStatus::Finished => self.leg_done(id, role, update.executed_qty, update.avg_price),
            AlgoStatus::Rejected | AlgoStatus::Canceled | AlgoStatus::Expired => {
                // Gone without closing anything, the position still open: unprotected.
                self.held[i].set_leg_id(role, 0);
                self.note(json!({"event": "unprotected", "trade": id, "why": format!("{:?} {}", update.status, update.reason)}));
                self.alert("a stop or take-profit leg ended without closing the position (rejected, cancelled or expired): the position is closed");
                // Rejected when it triggered: the market reached the leg, so the close is
                // that leg's exit; cancelled or expired by someone else: a manual one.
                let reason =
                    if update.status == AlgoStatus::Rejected { leg_reason(role) } else { ExitReason::Manual };
                self.close(id, reason);
            }
        }
    }

    /// Trade `id`'s leg in `role` is done in the matching engine having filled `filled` at
    /// `price`: all of it ends the trade (the sibling cancelled); less leaves the rest
    /// unprotected, so it is closed.
    fn leg_done(&mut self, id: u64, role: Role, filled: Fixed8, price: f64) {
        self.triggered.retain(|&(_, trade, _)| trade != id);
        let Some(i) = self.held.iter().position(|h| h.id == id) else { return };
        self.held[i].set_leg_id(role, 0);
        self.held[i].triggering_since = None;
        let reason = leg_reason(role);
        if filled >= self.held[i].qty {
            self.cancel_legs(id);
            return self.exited(i, price, reason);
        }
        self.note(json!({"event": "unprotected", "trade": id, "why": format!("a leg filled {filled} of {}", self.held[i].qty)}));
        self.alert("a stop or take-profit leg filled less than the position: the rest is closed");
        self.close_rest(id, reason, (filled, filled.to_f64() * price));
    }

    /// Reads trade `id`'s legs back from the exchange and acts on what changed (after a gap
    /// in the user-data stream, or a leg stuck triggering).
    fn recheck_legs(&mut self, id: u64) {
        for role in [Role::Stop, Role::Target] {
            let live = self.held.iter().find(|h| h.id == id).map_or(0, |h| h.leg_id(role));
            if live == 0 {
                continue;
            }
            match self.client.query_algo(&client_id(id, role, 0)) {
                Ok(state) => self.on_algo_update(&state),
                Err(e) => {
                    self.note(json!({"event": "leg_query_failed", "trade": id, "error": e.to_string()}))
                }
            }
        }
    }

    /// A leg TRIGGERING (or triggered and not done) past the timeout is checked at the
    /// exchange; still not done, the position counts as unprotected and is closed.
    fn check_triggering(&mut self) {
        let timeout = self.settings.triggering_timeout;
        let Some(h) =
            self.held.iter().find(|h| h.triggering_since.is_some_and(|t| t.elapsed() > timeout)).copied()
        else {
            return;
        };
        self.recheck_legs(h.id);
        if let Some(i) = self.held.iter().position(|x| x.id == h.id && x.triggering_since.is_some()) {
            self.held[i].triggering_since = None;
            self.note(json!({"event": "unprotected", "trade": h.id, "why": "a leg stuck triggering"}));
            self.alert(
                "a stop or take-profit leg stayed TRIGGERING past the timeout: the position is closed",
            );
            self.close(h.id, ExitReason::Manual);
        }
    }

    fn name(&self, symbol: u16) -> &str {
        self.symbols.name(SymbolId(symbol)).unwrap_or("?")
    }

    fn report(&mut self, report: ExecReport) {
        if self.reports.push(report).is_err() {
            self.stats.reports_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(?report, "the desk's report ring is full: report lost");
        }
        self.doorbell.ring();
    }

    fn alert(&mut self, what: &'static str) {
        let time_ms = self.client.clock().now_ms();
        self.report(ExecReport::Alert(Alert { time_ms, level: "HIGH", what }));
    }

    /// Appends one record to the orders journal.
    fn note(&mut self, mut record: Value) {
        record["time_ms"] = json!(local_ms());
        let Some(journal) = self.journal.as_mut() else { return };
        if let Err(e) = journal.append(record.to_string().as_bytes()) {
            tracing::error!(error = %e, "orders journal: append failed");
        }
    }
}

/// Binance's code for a reduce-only order with nothing to reduce.
const REDUCE_ONLY_REJECTED: i32 = -2022;
/// Binance's code for a conditional order whose trigger the price has already passed.
const WOULD_IMMEDIATELY_TRIGGER: i32 = -2021;

fn algo_json(a: &AlgoState) -> Value {
    json!({
        "client_algo_id": a.client_algo_id, "algo_id": a.algo_id, "symbol": a.symbol,
        "status": format!("{:?}", a.status), "quantity": a.quantity.to_f64(), "order_id": a.order_id,
        "executed_qty": a.executed_qty.to_f64(), "avg_price": a.avg_price, "reason": a.reason,
    })
}

fn order_json(o: &OrderState) -> Value {
    json!({
        "client_id": o.client_id, "order_id": o.order_id, "symbol": o.symbol,
        "status": format!("{:?}", o.status), "orig_qty": o.orig_qty.to_f64(),
        "executed_qty": o.executed_qty.to_f64(), "avg_price": o.avg_price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_name_their_trade_and_role_legally() {
        let ids: Vec<String> = [(Role::Entry, 0), (Role::Stop, 0), (Role::Target, 0), (Role::Close, 2)]
            .into_iter()
            .map(|(role, attempt)| client_id(4_000_000_123, role, attempt))
            .collect();
        assert_eq!(
            ids,
            ["aegis.4000000123.e", "aegis.4000000123.s", "aegis.4000000123.t", "aegis.4000000123.x2"]
        );
        assert!(ids.iter().all(|id| id.len() <= 36), "Binance's limit for client ids and client algo ids");
    }

    #[test]
    fn the_closing_side_is_the_opposite_one() {
        assert_eq!(order_side(Side::Long, false), OrderSide::Buy);
        assert_eq!(order_side(Side::Long, true), OrderSide::Sell);
        assert_eq!(order_side(Side::Short, false), OrderSide::Sell);
        assert_eq!(order_side(Side::Short, true), OrderSide::Buy);
    }
}
