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

use super::client::{TradeClient, TradeError};
use super::order::{ClientIds, OrderKind, OrderRequest, OrderState, OrderStatus, Side as OrderSide};
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
}

/// How the gateway runs.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// WebSocket base of the user-data stream (`…/ws/<listenKey>` is appended).
    pub ws_base: String,
    /// How often the listenKey is kept alive (Binance: it lapses 60 min after the last).
    pub keep_alive: Duration,
    /// The orders journal (`None`: not kept).
    pub journal: Option<PathBuf>,
    /// When journal records reach the disk.
    pub fsync: FsyncPolicy,
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
    qty: f64,
    entry_price: f64,
    stop: f64,
    target: f64,
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

/// The trade and role a client id names; `None` for ids this engine did not make.
fn parse_client_id(text: &str) -> Option<(u64, Role)> {
    let rest = text.strip_prefix("aegis.")?;
    let (id, role) = rest.split_once('.')?;
    let role = match role.as_bytes().first()? {
        b'e' if role.len() == 1 => Role::Entry,
        b's' if role.len() == 1 => Role::Stop,
        b't' if role.len() == 1 => Role::Target,
        b'x' => Role::Close,
        _ => return None,
    };
    Some((id.parse().ok()?, role))
}

/// The side of the order that opens (`closing` false) or closes a `side` position.
fn order_side(side: Side, closing: bool) -> OrderSide {
    match (side, closing) {
        (Side::Long, false) | (Side::Short, true) => OrderSide::Buy,
        _ => OrderSide::Sell,
    }
}

/// Quantities closer than this agree (the smallest step Binance lists is 1e-3; fixed-point
/// answers carry 8 decimals).
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
        gateway.stream = Some(UserStream::open(&mut gateway.client, &gateway.settings.ws_base)?);
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
            self.keep_alive_if_due();
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
        let mut journal = Vec::new();
        let mut held = Vec::new();
        for p in restored.iter().filter(|p| p.filled) {
            let Some(name) = self.symbols.name(SymbolId(p.symbol)) else { continue };
            journal.push(JournalPosition { symbol: name.to_string(), amount: p.side.sign() * p.qty });
            held.push(Held {
                id: p.id,
                symbol: p.symbol,
                side: p.side,
                qty: p.qty,
                entry_price: p.entry_price,
                stop: p.stop,
                target: p.target,
            });
        }
        let found = reconcile::reconcile(&journal, &exchange, &open_orders, QTY_TOLERANCE);
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
                let same_side = amount.signum() == h.side.sign();
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
                self.report(ExecReport::Resized { id: h.id, qty: h.qty });
                report.lines.push(format!("{name}: resized to the exchange's {}", h.qty));
            }
            let open: Vec<&OrderState> = open_orders.iter().filter(|o| o.symbol == name).collect();
            let has = |role| open.iter().any(|o| o.client_id == client_id(h.id, role, 0));
            let (has_stop, has_target) = (has(Role::Stop), has(Role::Target));
            self.held.push(h);
            if !(has_stop && has_target) || resolution.resized_in_journal.iter().any(|(s, _)| *s == name) {
                self.cancel_legs(&h);
                report.lines.push(format!("{name}: stop and take-profit orders placed again"));
                if !self.place_legs(&h) {
                    self.close(h.id, ExitReason::Manual);
                }
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
            OrderIntent::Open { id, symbol, side, qty, leverage, stop, target } => {
                let h = Held { id, symbol, side, qty, entry_price: 0.0, stop, target };
                self.open(h, leverage)
            }
            OrderIntent::Close { id, reason, .. } => self.close(id, reason),
            OrderIntent::Flatten { reason } => self.flatten(reason),
        }
    }

    /// Enters trade `h` with a market order, then protects it with its legs.
    fn open(&mut self, mut h: Held, leverage: f64) {
        let name = self.name(h.symbol).to_string();
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
        if filled.executed_qty <= 0.0 {
            return self.report(ExecReport::Cancelled { id: h.id });
        }
        h.qty = filled.executed_qty;
        h.entry_price = filled.avg_price;
        self.stats.entries.fetch_add(1, Ordering::Relaxed);
        let time_ms = self.client.clock().now_ms();
        self.report(ExecReport::Entered { id: h.id, price: h.entry_price, qty: h.qty, time_ms });
        self.held.push(h);
        if !self.place_legs(&h) {
            self.alert("a stop or take-profit order was refused: the position is closed at once");
            self.close(h.id, ExitReason::Manual);
        }
    }

    fn entry_refused(&mut self, id: u64, symbol: &str, error: &TradeError) {
        self.note(
            json!({"event": "entry_refused", "trade": id, "symbol": symbol, "error": error.to_string()}),
        );
        self.alert("an entry was refused by the exchange (see the orders journal)");
        self.report(ExecReport::Cancelled { id });
    }

    /// Places `h`'s reduce-only stop and take-profit orders; false when one was refused.
    fn place_legs(&mut self, h: &Held) -> bool {
        let name = self.name(h.symbol).to_string();
        let leg = |kind, role| OrderRequest {
            symbol: name.clone(),
            side: order_side(h.side, true),
            kind,
            quantity: h.qty,
            client_id: client_id(h.id, role, 0),
        };
        let stop = leg(OrderKind::StopMarket { stop: h.stop }, Role::Stop);
        let target = leg(OrderKind::TakeProfitMarket { stop: h.target }, Role::Target);
        self.send(&stop, false).is_ok() && self.send(&target, false).is_ok()
    }

    /// Cancels `h`'s legs (one already gone is fine).
    fn cancel_legs(&mut self, h: &Held) {
        let name = self.name(h.symbol).to_string();
        for role in [Role::Stop, Role::Target] {
            let id = client_id(h.id, role, 0);
            match self.client.cancel(&name, &id) {
                Ok(_) => self.note(json!({"event": "cancelled", "client_id": id})),
                Err(e) => {
                    self.note(json!({"event": "cancel_refused", "client_id": id, "error": e.to_string()}))
                }
            }
        }
    }

    /// The leg of `h` that filled (its average price and reason), if one did.
    fn filled_leg(&mut self, h: &Held) -> Result<Option<(f64, ExitReason)>, TradeError> {
        let name = self.name(h.symbol).to_string();
        for (role, reason) in [(Role::Stop, ExitReason::StopLoss), (Role::Target, ExitReason::TakeProfit)] {
            match self.client.query(&name, &client_id(h.id, role, 0)) {
                Ok(o) if o.status == OrderStatus::Filled => return Ok(Some((o.avg_price, reason))),
                Ok(_) | Err(TradeError::Rejected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Closes trade `id` with reduce-only market orders after cancelling its legs; a leg
    /// that filled first wins. A rate limit or a failure leaves the close to be retried.
    fn close(&mut self, id: u64, reason: ExitReason) {
        let Some(i) = self.held.iter().position(|h| h.id == id) else { return };
        let h = self.held[i];
        self.cancel_legs(&h);
        let name = self.name(h.symbol).to_string();
        let (mut qty, mut quote) = (0.0, 0.0);
        for attempt in 1..=CLOSE_TRIES {
            let left = h.qty - qty;
            if left <= QTY_TOLERANCE {
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
                    qty += o.executed_qty;
                    quote += o.executed_qty * o.avg_price;
                }
                Err(TradeError::Rejected { code: REDUCE_ONLY_REJECTED, .. }) if qty == 0.0 => {
                    // Nothing left to reduce: a leg (or someone) closed it first.
                    return match self.filled_leg(&h) {
                        Ok(Some((price, leg_reason))) => self.exited(i, price, leg_reason),
                        _ => {
                            self.alert("a position was already closed at the exchange by an unknown order");
                            self.exited(i, h.entry_price, reason)
                        }
                    };
                }
                Err(_) => {
                    if qty > 0.0 {
                        self.held[i].qty = h.qty - qty;
                        self.report(ExecReport::Resized { id, qty: h.qty - qty });
                    }
                    let at = self.backoff_until.unwrap_or_else(|| Instant::now() + RETRY_AFTER);
                    self.deferred.push_back((at, OrderIntent::Close { id, symbol: h.symbol, reason }));
                    return;
                }
            }
        }
        if h.qty - qty > QTY_TOLERANCE {
            self.alert("a close filled only in part: the rest is retried");
            self.held[i].qty = h.qty - qty;
            if qty > 0.0 {
                self.report(ExecReport::Resized { id, qty: h.qty - qty });
            }
            let at = Instant::now() + RETRY_AFTER;
            self.deferred.push_back((at, OrderIntent::Close { id, symbol: h.symbol, reason }));
            return;
        }
        self.exited(i, quote / qty, reason);
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
            let close = closes.iter().find(|o| o.symbol == name && o.executed_qty > 0.0);
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
            Err(e) => {
                self.stats.orders_refused.fetch_add(1, Ordering::Relaxed);
                self.note(json!({
                    "event": "refused", "client_id": order.client_id, "symbol": order.symbol,
                    "error": e.to_string(),
                }));
                if let TradeError::RateLimited { retry_after, .. } = e {
                    self.backoff(*retry_after);
                }
            }
        }
        answer
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
            Ok(Some(UserEvent::Account(_))) | Ok(None) => {}
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
        match UserStream::open(&mut self.client, &self.settings.ws_base) {
            Ok(stream) => {
                self.stats.stream_recoveries.fetch_add(1, Ordering::Relaxed);
                self.note(json!({"event": "user_stream_opened", "listen_key": stream.listen_key}));
                self.stream = Some(stream);
                self.last_keep_alive = Instant::now();
                let held: Vec<Held> = self.held.clone();
                for h in held {
                    if let Ok(Some((price, reason))) = self.filled_leg(&h) {
                        self.leg_filled(h.id, price, reason);
                    }
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

    /// A user-data order update: a filled stop or take-profit closes its trade.
    fn on_order_update(&mut self, update: &OrderUpdate) {
        let Some((id, role)) = parse_client_id(&update.client_id) else { return };
        if update.last_qty > 0.0 {
            self.note(json!({
                "event": "fill", "client_id": update.client_id, "qty": update.last_qty,
                "price": update.last_price, "status": format!("{:?}", update.status),
            }));
        }
        let reason = match role {
            Role::Stop => ExitReason::StopLoss,
            Role::Target => ExitReason::TakeProfit,
            Role::Entry | Role::Close => return, // answered synchronously
        };
        if update.status == OrderStatus::Filled {
            self.leg_filled(id, update.avg_price, reason);
        }
    }

    /// Trade `id`'s leg filled at `price`: the other leg is cancelled, the exit reported.
    fn leg_filled(&mut self, id: u64, price: f64, reason: ExitReason) {
        let Some(i) = self.held.iter().position(|h| h.id == id) else { return };
        let h = self.held[i];
        self.cancel_legs(&h);
        self.exited(i, price, reason);
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

fn order_json(o: &OrderState) -> Value {
    json!({
        "client_id": o.client_id, "order_id": o.order_id, "symbol": o.symbol,
        "status": format!("{:?}", o.status), "orig_qty": o.orig_qty,
        "executed_qty": o.executed_qty, "avg_price": o.avg_price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_name_their_trade_and_role() {
        for (role, attempt) in [(Role::Entry, 0), (Role::Stop, 0), (Role::Target, 0), (Role::Close, 2)] {
            let id = client_id(4_000_000_123, role, attempt);
            assert!(id.len() <= 36, "{id}");
            assert_eq!(parse_client_id(&id), Some((4_000_000_123, role)));
        }
        assert_eq!(parse_client_id("aegis-123-s"), None, "a ClientIds id is not a trade's");
        assert_eq!(parse_client_id("web_123"), None);
        assert_eq!(parse_client_id("aegis.12.sx"), None);
    }

    #[test]
    fn the_closing_side_is_the_opposite_one() {
        assert_eq!(order_side(Side::Long, false), OrderSide::Buy);
        assert_eq!(order_side(Side::Long, true), OrderSide::Sell);
        assert_eq!(order_side(Side::Short, false), OrderSide::Sell);
        assert_eq!(order_side(Side::Short, true), OrderSide::Buy);
    }
}
