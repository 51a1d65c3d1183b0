//! The brain: one pinned thread draining every shard's ring (and the REST worker's), with
//! pre-allocated state per symbol: de-duplication by event identity, 1m bars (from klines,
//! or from trades when no kline stream is subscribed), roll-ups, an order book synced under
//! Binance's rules, and gap detection that asks the REST worker for fills and snapshots.
//!
//! Nothing here allocates, locks, logs or makes a syscall per event after start: counters
//! are relaxed atomics read by other threads; closed bars leave through a ring to a writer.

pub mod bar;
pub mod book;
pub mod holes;
pub mod port;
pub mod stats;
pub mod student;

#[cfg(test)]
mod tests;

use crate::latency::{StageLatency, Stamps};
use crate::rest::RestRequest;
use crate::ring::Idle;
use crate::ring::{Doorbell, RingConsumer};
use aegis_analytics::flow::FlowAccumulator;
use aegis_analytics::{Candle, FeatureConfig, FeatureEngine, FeatureSnapshot};
use aegis_wire::decimal::to_f64;
use aegis_wire::record::{ArchivedEvent, ArchivedKline, ArchivedRecord};
use aegis_wire::{ResyncReason, SymbolId};
use bar::{Bar, Rollup, TradeBars, MINUTE_MS, ROLLUP_MS};
use book::{Book, DiffOutcome, SyncState};
use port::{BrainCommand, BrainControl, BrainReply, ClosedBar};
use stats::BrainStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Closed live klines held while a gap before them is being filled.
const PENDING_KLINES: usize = 8;

struct SymbolState {
    last_trade_id: Option<u64>,
    last_agg_id: Option<u64>,
    last_agg_last_trade: Option<u64>,
    /// aggTrade ids skipped over and still expected.
    agg_holes: holes::Holes,
    /// The ring whose trades were applied last, and that trade's read time (see
    /// `Core::trade_from`).
    trade_leader: u8,
    trade_leader_ns: u64,
    last_book_ticker_u: u64,
    last_mark_time: i64,
    last_kline_open: Option<i64>,
    pending: [Option<Bar>; PENDING_KLINES],
    filling: bool,
    trade_bars: TradeBars,
    rollups: [Rollup; 4],
    /// Only when a diff-depth stream is subscribed (≈ 50 KiB a symbol otherwise unused).
    book: Option<Box<Book>>,
    snapshot_requested: bool,
    analytics: FeatureEngine,
    flow: FlowAccumulator,
    last_exchange_ms: i64,
}

impl SymbolState {
    fn new(features: FeatureConfig, books: bool) -> Self {
        Self {
            last_trade_id: None,
            last_agg_id: None,
            last_agg_last_trade: None,
            agg_holes: holes::Holes::default(),
            trade_leader: 0,
            trade_leader_ns: 0,
            last_book_ticker_u: 0,
            last_mark_time: 0,
            last_kline_open: None,
            pending: [None; PENDING_KLINES],
            filling: false,
            trade_bars: TradeBars::default(),
            rollups: ROLLUP_MS.map(Rollup::new),
            book: books.then(|| Box::new(Book::new())),
            snapshot_requested: false,
            analytics: FeatureEngine::new(features),
            flow: FlowAccumulator::new(),
            last_exchange_ms: 0,
        }
    }
}

/// Brain settings.
pub struct BrainConfig {
    /// Build 1m bars from trades (no kline stream subscribed).
    pub bars_from_trades: bool,
    /// Keep order books (a diff-depth stream is subscribed).
    pub books: bool,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Idle policy.
    pub idle: Idle,
    /// Per-symbol analytics sizes.
    pub features: FeatureConfig,
    /// Order flow comes from aggTrades (so raw trades are not counted twice); the paper
    /// broker's fills follow the same stream.
    pub flow_from_agg_trades: bool,
    /// Close every position with reason SHUTDOWN when the brain stops.
    pub flatten_on_shutdown: bool,
    /// No trade stream: the paper broker takes each live 1m close as its price print.
    pub prints_from_klines: bool,
    /// A REST worker answers: missing minutes are fetched (else counted and skipped).
    pub fill_gaps: bool,
    /// Exchange events left out of the latency histograms at start (warm-up).
    pub latency_skip_events: u64,
}

impl Default for BrainConfig {
    /// A kline and aggTrade feed: bars from klines, order flow and paper fills from aggTrades,
    /// no books, missing minutes fetched, unpinned and spinning, no warm-up skipped.
    fn default() -> Self {
        Self {
            bars_from_trades: false,
            books: false,
            core: None,
            idle: Idle::Spin,
            features: FeatureConfig::default(),
            flow_from_agg_trades: true,
            flatten_on_shutdown: false,
            prints_from_klines: false,
            fill_gaps: true,
            latency_skip_events: 0,
        }
    }
}

/// The brain: its input rings and its state.
pub struct Brain {
    shard_rings: Vec<RingConsumer>,
    rest_results: RingConsumer,
    doorbell: Arc<Doorbell>,
    control: Option<BrainControl>,
    /// Listing changes from exchangeInfo refreshes (the REST worker's).
    listing: Option<rtrb::Consumer<crate::desk::listing::ListingChange>>,
    core: Core,
}

/// Everything but the input rings (so a ring can be drained into it).
struct Core {
    config: BrainConfig,
    desk: crate::desk::Desk,
    states: Vec<SymbolState>,
    rest_requests: rtrb::Producer<RestRequest>,
    bars_out: Option<rtrb::Producer<ClosedBar>>,
    stats: Arc<BrainStats>,
    lag_countdown: u32,
    latency: StageLatency,
    student: Option<student::Student>,
    /// Bars closed so far (tells the latency which events closed one).
    bars_closed: u64,
}

impl Brain {
    /// A brain for `symbols` symbols.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: BrainConfig,
        symbols: usize,
        shard_rings: Vec<RingConsumer>,
        rest_results: RingConsumer,
        rest_requests: rtrb::Producer<RestRequest>,
        bars_out: Option<rtrb::Producer<ClosedBar>>,
        desk: crate::desk::Desk,
        stats: Arc<BrainStats>,
    ) -> Self {
        let states = (0..symbols).map(|_| SymbolState::new(config.features, config.books)).collect();
        Self {
            shard_rings,
            rest_results,
            doorbell: Arc::new(Doorbell::default()),
            listing: None,
            control: None,
            core: Core {
                latency: StageLatency::new(config.latency_skip_events),
                config,
                desk,
                states,
                rest_requests,
                bars_out,
                stats,
                lag_countdown: 0,
                student: None,
                bars_closed: 0,
            },
        }
    }

    /// A brain fed by one ring and no REST worker (replay, benchmarks): nothing answers its
    /// requests, so `config.fill_gaps` should be off (gaps are then counted, not filled).
    pub fn offline(
        config: BrainConfig,
        symbols: usize,
        input: RingConsumer,
        desk: crate::desk::Desk,
        stats: Arc<BrainStats>,
    ) -> Self {
        let (_, nothing_answers) = crate::ring::ring(16, 0, symbols);
        let (requests, _) = rtrb::RingBuffer::new(1 << 12);
        Self::new(config, symbols, vec![input], nothing_answers, requests, None, desk, stats)
    }

    /// Parks on `doorbell` when idle, so producers that ring it wake the brain at once.
    pub fn with_doorbell(mut self, doorbell: Arc<Doorbell>) -> Self {
        self.doorbell = doorbell;
        self
    }

    /// Also records every event's stage latencies into `shared` (the metrics endpoint).
    pub fn with_metrics(mut self, shared: Arc<crate::latency::SharedStages>) -> Self {
        self.core.latency.share(shared);
        self
    }

    /// Serves the learned model the loader hands over (the student phase).
    pub fn with_student(mut self, student: student::Student) -> Self {
        self.core.student = Some(student);
        self
    }

    /// Takes operator commands (pause, close, flatten, positions) from the control plane.
    pub fn with_control(mut self, control: BrainControl) -> Self {
        self.control = Some(control);
        self
    }

    /// Takes listing changes (a symbol's status and filters) from exchangeInfo refreshes.
    pub fn with_listing(mut self, changes: rtrb::Consumer<crate::desk::listing::ListingChange>) -> Self {
        self.listing = Some(changes);
        self
    }

    /// Applies listing changes, if any (between batches, never mid-event).
    fn apply_listing(&mut self) {
        let Some(changes) = self.listing.as_mut() else { return };
        while let Ok(change) = changes.pop() {
            self.core.desk.apply_listing(change);
        }
    }

    /// Carries out the operator's commands, if any (between batches, never mid-event).
    fn serve_control(&mut self) {
        let Some(control) = self.control.as_mut() else { return };
        while let Some(command) = control.take_command() {
            let desk = &mut self.core.desk;
            match command {
                BrainCommand::Pause => desk.set_paused(true),
                BrainCommand::Resume => desk.set_paused(false),
                BrainCommand::Close(symbol) => {
                    let closing = desk.close_manual(symbol);
                    control.reply(BrainReply::Done(closing));
                    continue;
                }
                BrainCommand::Flatten => desk.flatten_for(aegis_trading::ExitReason::Manual),
                BrainCommand::Positions => {
                    for p in desk.broker().positions() {
                        control.reply(BrainReply::Position(*p));
                    }
                    control.reply(BrainReply::End);
                    continue;
                }
            }
            control.reply(BrainReply::Done(true));
        }
    }

    /// True when a ring or the venue has something for the brain.
    pub fn has_work(&self) -> bool {
        self.shard_rings.iter().any(|r| !r.is_empty())
            || !self.rest_results.is_empty()
            || self.core.desk.reports_pending()
    }

    /// Pins the calling thread as configured, runs until `stop`, then drains what is queued;
    /// returns the per-stage latency.
    pub fn run(self, stop: Arc<AtomicBool>) -> StageLatency {
        crate::cpu::place_current("aegis-brain", self.core.config.core, &self.core.stats.core);
        self.run_here(stop)
    }

    /// [`Brain::run`] on the calling thread as it is placed (the one-thread placement, once
    /// its feed has stopped).
    pub fn run_here(mut self, stop: Arc<AtomicBool>) -> StageLatency {
        let mut idle = 0u32;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let n = self.step();
            if n == 0 {
                if stopping {
                    if self.core.config.flatten_on_shutdown {
                        self.flatten_at_shutdown();
                    }
                    return self.core.latency;
                }
                idle = idle.saturating_add(1);
                match self.core.config.idle {
                    Idle::Spin => std::hint::spin_loop(),
                    Idle::SpinThenPark if idle < crate::ring::SPINS_BEFORE_PARK => std::hint::spin_loop(),
                    Idle::SpinThenPark | Idle::Park => {
                        // Producers ring the doorbell; the timeout bounds a stop's wait.
                        self.doorbell.park(std::time::Duration::from_millis(1), || self.has_work())
                    }
                }
            } else {
                idle = 0;
            }
        }
    }

    /// Closes every position with reason SHUTDOWN; with a venue, waits (a bounded time) for
    /// the exits it reports so they reach the journal.
    fn flatten_at_shutdown(&mut self) {
        self.core.desk.flatten();
        let deadline = std::time::Instant::now() + SHUTDOWN_EXITS_WAIT;
        while self.core.desk.at_exchange()
            && !self.core.desk.broker().positions().is_empty()
            && std::time::Instant::now() < deadline
        {
            if self.core.desk.poll_reports() == 0 {
                self.doorbell.park(std::time::Duration::from_millis(1), || self.core.desk.reports_pending());
            }
        }
    }

    /// One turn of the loop: every ring drained once, the operator's commands, the heartbeat;
    /// returns the records handled.
    pub fn step(&mut self) -> usize {
        let n = self.poll_once();
        self.serve_control();
        self.apply_listing();
        self.core.stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        n
    }

    /// Where this brain's thread runs (the one-thread placement reports its shard's).
    pub fn placement(&self) -> &crate::cpu::Placement {
        &self.core.stats.core
    }

    /// Drains every ring once; returns the records handled.
    pub fn poll_once(&mut self) -> usize {
        let mut n = 0;
        // One clock read per record: a record's decision time is the next one's receipt.
        let mut clock = 0;
        for (index, ring) in self.shard_rings.iter_mut().enumerate() {
            let source = Source::Ring(index as u8);
            n += ring.drain(|r, parsed_ns| {
                let receipt_ns = if clock == 0 { crate::clock::now_ns() } else { clock };
                let bars_before = self.core.bars_closed;
                self.core.apply(r, source);
                clock = crate::clock::now_ns();
                // Resync notices are not exchange events: not measured.
                let read_ns = if r.event.kind().is_some() { r.header.recv_ns.to_native() } else { 0 };
                let closed_bar = self.core.bars_closed != bars_before;
                self.core.measure(Stamps { read_ns, parsed_ns, receipt_ns, decided_ns: clock }, closed_bar);
            });
        }
        n += self.rest_results.drain(|r, _| self.core.apply(r, Source::Rest));
        n += self.core.desk.poll_reports();
        n
    }

    /// The per-stage latency measured so far.
    pub fn latency(&self) -> &StageLatency {
        &self.core.latency
    }
}

impl crate::ring::InlineConsumer for Brain {
    fn step(&mut self) -> usize {
        Brain::step(self)
    }

    fn has_work(&self) -> bool {
        Brain::has_work(self)
    }
}

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A shard's ring (its index).
    Ring(u8),
    /// The REST worker (fills, snapshots).
    Rest,
}

/// How long the ring delivering a symbol's trades may be silent before another ring's
/// trades that skip ahead are taken (with the gap counted).
const LEADER_PATIENCE_NS: u64 = 2_000_000_000;

/// How long a shutdown with `flatten_on_shutdown` waits for a venue's exit reports.
const SHUTDOWN_EXITS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ring number REST results are applied under (no shard has it).
const REST_RING: u8 = u8::MAX;

/// How long skipped aggTrade ids may stay missing before a REST fill is asked for (a
/// reordered message arrives well within this).
const TRADE_FILL_PATIENCE_NS: u64 = 500_000_000;

/// aggTrade ids one REST fill asks for at most (five pages, weight 100); the rest of a
/// longer outage is given up and counted.
const MAX_TRADE_FILL_IDS: u64 = 5_000;

/// One record in this many updates the shard-read → brain maximum (a shared atomic).
const LAG_SAMPLE_EVERY: u32 = 64;

impl Core {
    /// Records an exchange event's stages (and, if it closed a bar, its wire-to-decision
    /// among bar closes); samples the read → brain delay for `lag_max_ns`.
    fn measure(&mut self, stamps: Stamps, closed_bar: bool) {
        if stamps.read_ns == 0 {
            return; // not an exchange event, or no read time (history, tests)
        }
        if self.latency.record(stamps) && closed_bar {
            self.latency.record_bar_close(stamps);
        }
        self.lag_countdown = self.lag_countdown.wrapping_sub(1);
        if self.lag_countdown.is_multiple_of(LAG_SAMPLE_EVERY) {
            let lag = stamps.receipt_ns.saturating_sub(stamps.read_ns);
            self.stats.lag_max_ns.fetch_max(lag, Ordering::Relaxed);
        }
    }

    fn request(&mut self, req: RestRequest) {
        if self.rest_requests.push(req).is_err() {
            self.stats.requests_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn apply(&mut self, record: &ArchivedRecord, source: Source) {
        let from_rest = source == Source::Rest;
        let ring = match source {
            Source::Ring(ring) => ring,
            Source::Rest => REST_RING,
        };
        let read_ns = record.header.recv_ns.to_native();
        self.desk.set_read_ns(read_ns);
        let index = usize::from(record.header.symbol.0.to_native());
        if index >= self.states.len() {
            return;
        }
        let symbol = SymbolId(index as u16);
        if let Some(kind) = record.event.kind() {
            let is_update_end = !matches!(&record.event, ArchivedEvent::Depth(d) if !d.last);
            if !from_rest && is_update_end {
                self.stats.events_by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
                self.stats.symbols[index].events.fetch_add(1, Ordering::Relaxed);
            }
        }
        match &record.event {
            ArchivedEvent::Trade(t) => self.on_trade(
                symbol,
                (ring, read_ns),
                t.trade_id.to_native(),
                TradePrint {
                    time_ms: t.trade_time_ms.to_native(),
                    price: t.price.to_native(),
                    qty: t.qty.to_native(),
                    buyer_is_maker: t.buyer_is_maker,
                },
            ),
            ArchivedEvent::AggTrade(a) => self.on_agg_trade(
                symbol,
                (ring, read_ns),
                a.agg_id.to_native(),
                a.first_trade_id.to_native(),
                a.last_trade_id.to_native(),
                TradePrint {
                    time_ms: a.trade_time_ms.to_native(),
                    price: a.price.to_native(),
                    qty: a.qty.to_native(),
                    buyer_is_maker: a.buyer_is_maker,
                },
            ),
            ArchivedEvent::Kline(k) => self.on_kline(symbol, k, from_rest),
            ArchivedEvent::BookTicker(b) => {
                self.on_book_ticker(symbol, b, record.header.event_time_ms.to_native())
            }
            ArchivedEvent::Depth(d) => self.on_depth(symbol, d),
            ArchivedEvent::MarkPrice(m) => {
                self.on_mark_price(symbol, m, record.header.event_time_ms.to_native())
            }
            ArchivedEvent::ForceOrder(_) => {}
            ArchivedEvent::Resync(r) => {
                let reason = match r.reason {
                    aegis_wire::record::ArchivedResyncReason::Reconnect => ResyncReason::Reconnect,
                    aegis_wire::record::ArchivedResyncReason::RingDrop => ResyncReason::RingDrop,
                    aegis_wire::record::ArchivedResyncReason::GapFilled => ResyncReason::GapFilled,
                    aegis_wire::record::ArchivedResyncReason::TradesFilled => ResyncReason::TradesFilled,
                };
                self.on_resync(symbol, reason)
            }
        }
    }

    fn duplicate(&self, symbol: SymbolId) {
        self.stats.symbols[usize::from(symbol.0)].duplicates_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a trade that follows on (`contiguous`) or skips ahead may apply. A skip is
    /// taken from the ring that delivered this symbol's last trade (a real gap, counted) or
    /// once that ring has been silent for `LEADER_PATIENCE`; from another ring it is held
    /// back, because while a symbol moves between shards the new subscription can run ahead
    /// of the old one, whose backlog still holds the skipped trades. Both deliver until the
    /// move ends, so the held-back trade arrives again, in order.
    fn trade_from(&mut self, i: usize, (ring, read_ns): (u8, u64), contiguous: bool) -> bool {
        let state = &mut self.states[i];
        let leader_silent = read_ns.saturating_sub(state.trade_leader_ns) > LEADER_PATIENCE_NS;
        if !contiguous && ring != state.trade_leader && !leader_silent {
            return false;
        }
        state.trade_leader = ring;
        state.trade_leader_ns = read_ns;
        true
    }

    fn on_trade(&mut self, symbol: SymbolId, from: (u8, u64), id: u64, print: TradePrint) {
        let i = usize::from(symbol.0);
        let state = &mut self.states[i];
        if let Some(last) = state.last_trade_id {
            if id <= last {
                self.duplicate(symbol);
                return;
            }
        }
        let contiguous = state.last_trade_id.is_none_or(|last| id == last + 1);
        if !self.trade_from(i, from, contiguous) {
            self.duplicate(symbol);
            return;
        }
        let state = &mut self.states[i];
        if let Some(last) = state.last_trade_id {
            if id > last + 1 {
                self.stats.symbols[i].trade_id_gaps.fetch_add(id - last - 1, Ordering::Relaxed);
            }
        }
        state.last_trade_id = Some(id);
        state.last_exchange_ms = state.last_exchange_ms.max(print.time_ms);
        if !self.config.flow_from_agg_trades {
            print.add_to(&mut state.flow);
        }
        if self.config.bars_from_trades {
            let mut closed = [Bar::empty(0, 0); 4];
            let n = self.states[i].trade_bars.add(print.time_ms, print.price, print.qty, &mut closed);
            for bar in &closed[..n] {
                self.close_minute(symbol, *bar, true);
            }
        }
        if !self.config.flow_from_agg_trades {
            self.desk.on_trade(symbol.0, to_f64(print.price.into()), print.time_ms);
        }
    }

    fn on_agg_trade(
        &mut self,
        symbol: SymbolId,
        from: (u8, u64),
        agg_id: u64,
        first: u64,
        last: u64,
        print: TradePrint,
    ) {
        let i = usize::from(symbol.0);
        let state = &mut self.states[i];
        if state.last_agg_id.is_some_and(|prev| agg_id <= prev) {
            self.late_agg_trade(i, from.0 == REST_RING, agg_id, first, last, print);
            return;
        }
        let contiguous = state.last_agg_last_trade.is_none_or(|prev| first <= prev + 1);
        if !self.trade_from(i, from, contiguous) {
            self.duplicate(symbol);
            return;
        }
        let state = &mut self.states[i];
        if let Some(prev_last) = state.last_agg_last_trade {
            if first > prev_last + 1 {
                self.stats.symbols[i].trade_id_gaps.fetch_add(first - prev_last - 1, Ordering::Relaxed);
            }
        }
        if let Some(prev) = state.last_agg_id.filter(|prev| agg_id > prev + 1) {
            // Skipped ahead: the ids in between may still come (reordered) or be fetched.
            let given_up = state.agg_holes.open(prev + 1, agg_id - 1, from.1);
            let stats = &self.stats.symbols[i];
            stats.agg_ids_skipped.fetch_add(agg_id - prev - 1, Ordering::Relaxed);
            stats.agg_ids_unrecovered.fetch_add(given_up, Ordering::Relaxed);
            stats.agg_ids_missing.store(state.agg_holes.missing(), Ordering::Relaxed);
        }
        state.last_agg_id = Some(agg_id);
        state.last_agg_last_trade = Some(last);
        state.last_exchange_ms = state.last_exchange_ms.max(print.time_ms);
        if self.config.flow_from_agg_trades {
            print.add_to(&mut state.flow);
            self.desk.on_trade(symbol.0, to_f64(print.price.into()), print.time_ms);
        }
        self.request_trade_fill(symbol, from.1);
    }

    /// An aggTrade at or behind the last one applied: a missing one arriving late (from the
    /// stream or a REST fill), applied once, or else a duplicate.
    fn late_agg_trade(
        &mut self,
        i: usize,
        from_rest: bool,
        agg_id: u64,
        first: u64,
        last: u64,
        print: TradePrint,
    ) {
        let state = &mut self.states[i];
        let mut given_up = 0;
        if !state.agg_holes.take(agg_id, &mut given_up) {
            // A fill's page spans whatever lies between holes too: that overlap is expected,
            // not a duplicate the stream sent.
            if !from_rest {
                self.duplicate(SymbolId(i as u16));
            }
            return;
        }
        let stats = &self.stats.symbols[i];
        stats.trade_ids_recovered.fetch_add(last.saturating_sub(first) + 1, Ordering::Relaxed);
        stats.agg_ids_recovered.fetch_add(1, Ordering::Relaxed);
        stats.agg_ids_unrecovered.fetch_add(given_up, Ordering::Relaxed);
        stats.agg_ids_missing.store(state.agg_holes.missing(), Ordering::Relaxed);
        // Order flow belongs to the open minute: a late print of it still counts there (the
        // closed minutes' bars come from klines, which the exchange built from every trade).
        // The broker's price is never moved backwards by a late print.
        let minute = |ms: i64| ms - ms.rem_euclid(MINUTE_MS);
        if self.config.flow_from_agg_trades && minute(print.time_ms) == minute(state.last_exchange_ms) {
            print.add_to(&mut state.flow);
        }
    }

    /// Asks the REST worker for the aggTrades this symbol's stream skipped, once they have
    /// been missing long enough that a reordered message would have arrived.
    fn request_trade_fill(&mut self, symbol: SymbolId, now_ns: u64) {
        let state = &mut self.states[usize::from(symbol.0)];
        if now_ns == 0 || state.agg_holes.is_empty() || !self.config.fill_gaps {
            return;
        }
        // Holes near each other share one page (weight 20 however many ids it holds); one
        // long outage is fetched up to a few pages, the rest given up and counted — under a
        // storm of reconnects the weight budget cannot refetch everything, and the bars'
        // kline fills come first.
        if let Some((from_id, to_id)) = state.agg_holes.due(now_ns, TRADE_FILL_PATIENCE_NS, 1_000) {
            let to_id = to_id.min(from_id.saturating_add(MAX_TRADE_FILL_IDS - 1));
            self.request(RestRequest::AggTrades { symbol, from_id, to_id });
        }
    }

    fn on_book_ticker(
        &mut self,
        symbol: SymbolId,
        b: &aegis_wire::record::ArchivedBookTicker,
        event_ms: i64,
    ) {
        let i = usize::from(symbol.0);
        let u = b.update_id.to_native();
        let state = &mut self.states[i];
        if u != 0 && u <= state.last_book_ticker_u {
            self.duplicate(symbol);
            return;
        }
        state.last_book_ticker_u = u;
        // Spot bookTickers carry no time: they count at the symbol's latest exchange time.
        let time_ms = [b.transaction_time_ms.to_native(), event_ms, state.last_exchange_ms]
            .into_iter()
            .find(|&t| t > 0)
            .unwrap_or(0);
        state.last_exchange_ms = state.last_exchange_ms.max(time_ms);
        state.flow.on_quote(
            time_ms,
            to_f64(b.bid_price.to_native().into()),
            to_f64(b.bid_qty.to_native().into()),
            to_f64(b.ask_price.to_native().into()),
            to_f64(b.ask_qty.to_native().into()),
        );
        let book = state.book.as_deref();
        if let Some((book, SyncState::Synced { last_u })) = book.map(|b| (b, b.state())) {
            if last_u == u {
                let top = (
                    Some((b.bid_price.to_native(), b.bid_qty.to_native())),
                    Some((b.ask_price.to_native(), b.ask_qty.to_native())),
                );
                let counter = if book.best() == top {
                    &self.stats.symbols[i].book_ticker_matches
                } else {
                    &self.stats.symbols[i].book_ticker_mismatches
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_mark_price(
        &mut self,
        symbol: SymbolId,
        m: &aegis_wire::record::ArchivedMarkPrice,
        event_time: i64,
    ) {
        let state = &mut self.states[usize::from(symbol.0)];
        if event_time != 0 && event_time <= state.last_mark_time {
            self.duplicate(symbol);
            return;
        }
        state.last_mark_time = event_time;
        self.desk.on_mark(
            symbol.0,
            to_f64(m.mark_price.to_native().into()),
            to_f64(m.funding_rate.to_native().into()),
            m.next_funding_time_ms.to_native(),
            event_time,
        );
    }

    fn on_depth(&mut self, symbol: SymbolId, d: &aegis_wire::record::ArchivedDepthChunk) {
        let i = usize::from(symbol.0);
        let state = &mut self.states[i];
        let Some(book) = state.book.as_deref_mut().filter(|_| !d.partial) else { return };
        let outcome = if d.snapshot {
            if d.last {
                state.snapshot_requested = false;
            }
            book.apply_snapshot_chunk(d)
        } else {
            book.apply_diff_chunk(d)
        };
        match outcome {
            DiffOutcome::Gap => {
                self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
                self.request_snapshot(symbol);
            }
            DiffOutcome::Stale if !d.snapshot => self.duplicate(symbol),
            _ => {}
        }
        let Some(book) = self.states[i].book.as_deref() else { return };
        let synced = matches!(book.state(), SyncState::Synced { .. });
        let has_snapshot = book.state() != SyncState::NeedSnapshot;
        self.stats.symbols[i].book_in_sync.store(u64::from(synced), Ordering::Relaxed);
        if synced && d.last && book.is_crossed() {
            self.stats.symbols[i].book_crossed.fetch_add(1, Ordering::Relaxed);
        }
        if !has_snapshot && !self.states[i].snapshot_requested {
            self.request_snapshot(symbol);
        }
    }

    fn request_snapshot(&mut self, symbol: SymbolId) {
        self.states[usize::from(symbol.0)].snapshot_requested = true;
        self.request(RestRequest::Depth { symbol });
    }

    fn on_kline(&mut self, symbol: SymbolId, k: &ArchivedKline, from_rest: bool) {
        if !k.closed || k.interval != aegis_wire::record::ArchivedInterval::M1 {
            return;
        }
        let bar = Bar {
            open_time_ms: k.open_time_ms.to_native(),
            open: k.open.to_native(),
            high: k.high.to_native(),
            low: k.low.to_native(),
            close: k.close.to_native(),
            volume: k.volume.to_native(),
            trades: k.trades.to_native(),
        };
        let i = usize::from(symbol.0);
        let state = &mut self.states[i];
        if state.last_kline_open.is_some_and(|last| bar.open_time_ms <= last) {
            if !from_rest {
                self.duplicate(symbol);
            }
            return;
        }
        if from_rest {
            self.close_minute(symbol, bar, false);
            return;
        }
        if state.filling {
            if let Some(free) = state.pending.iter_mut().find(|p| p.is_none()) {
                *free = Some(bar);
            }
            return;
        }
        if let Some(last) = state.last_kline_open.filter(|_| self.config.fill_gaps) {
            if bar.open_time_ms > last + MINUTE_MS {
                // A missing minute: fill it from REST before this bar.
                self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
                state.filling = true;
                state.pending[0] = Some(bar);
                self.request(RestRequest::Klines {
                    symbol,
                    start_ms: last + MINUTE_MS,
                    end_ms: bar.open_time_ms - 1,
                });
                return;
            }
        }
        if state.last_kline_open.is_some_and(|last| bar.open_time_ms > last + MINUTE_MS) {
            // No REST to fill from (a replay): the gap is counted and the bars go on.
            self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
        }
        self.close_minute(symbol, bar, true);
    }

    fn on_resync(&mut self, symbol: SymbolId, reason: ResyncReason) {
        let i = usize::from(symbol.0);
        match reason {
            ResyncReason::GapFilled => {
                let state = &mut self.states[i];
                state.filling = false;
                let pending = std::mem::replace(&mut state.pending, [None; PENDING_KLINES]);
                for bar in pending.into_iter().flatten() {
                    let state = &mut self.states[i];
                    if state.last_kline_open.is_some_and(|last| bar.open_time_ms <= last) {
                        continue;
                    }
                    // Live bars held back while the gap before them was filled: late, so
                    // labelled and analysed but not traded (no entries while resyncing).
                    self.close_minute(symbol, bar, false);
                }
                self.stats.gaps_filled.fetch_add(1, Ordering::Relaxed);
            }
            ResyncReason::TradesFilled => {
                let holes = &mut self.states[i].agg_holes;
                let given_up = holes.close_requested();
                let stats = &self.stats.symbols[i];
                stats.agg_ids_unrecovered.fetch_add(given_up, Ordering::Relaxed);
                stats.agg_ids_missing.store(holes.missing(), Ordering::Relaxed);
            }
            ResyncReason::RingDrop => {
                // Records of this symbol were dropped on a full ring. No blind refetch: under
                // sustained overload that would hammer REST once per drop. The sequence checks
                // find what was lost — a kline open-time jump asks for the missing minutes, a
                // depth `pu`/`U` break re-snapshots the book — and ask for exactly that.
                self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
            }
            ResyncReason::Reconnect => {
                let state = &mut self.states[i];
                if state.last_kline_open.is_some() {
                    self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
                }
                if !self.config.bars_from_trades && !state.filling {
                    state.filling = true;
                    let start_ms = state.last_kline_open.map_or(i64::MIN, |t| t + MINUTE_MS);
                    self.request(RestRequest::Klines { symbol, start_ms, end_ms: i64::MAX });
                }
                if let Some(book) = self.states[i].book.as_deref_mut() {
                    book.desync();
                    self.request_snapshot(symbol);
                }
            }
        }
    }

    /// A closed 1m bar: roll-ups, features, the desk (which trades `live` bars only: REST
    /// history and gap fills are labelled for learning but never traded), the bar writer.
    fn close_minute(&mut self, symbol: SymbolId, bar: Bar, live: bool) {
        let i = usize::from(symbol.0);
        let state = &mut self.states[i];
        state.last_kline_open = Some(bar.open_time_ms);
        for (k, rollup) in state.rollups.iter_mut().enumerate() {
            if rollup.add(&bar).is_some() {
                self.stats.rollups_closed[k].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats.symbols[i].bars_closed.fetch_add(1, Ordering::Relaxed);
        self.bars_closed += 1;
        let mut features = self.analyse(i, &bar);
        let view = match (self.student.as_mut(), features.as_mut()) {
            (Some(student), Some(snapshot)) => {
                // One acquire load per decision: a model the loader validated swaps in here.
                match student.check_swap() {
                    student::Swap::Refused(why) => self.desk.alert(why),
                    student::Swap::Swapped(_) | student::Swap::None => {}
                }
                student.predict(i, snapshot)
            }
            _ => None,
        };
        if live && self.config.prints_from_klines {
            // Fills and stops at the close, before this bar's own decision.
            self.desk.on_trade(symbol.0, to_f64(bar.close.into()), bar.open_time_ms + MINUTE_MS - 1);
        }
        if let Some(snapshot) = &features {
            let analytics = &self.states[i].analytics;
            let filled = |id: u64| analytics.fvg(id).is_some_and(|g| g.filled_at.is_some());
            self.desk.on_bar(symbol.0, to_f64(bar.close.into()), snapshot, view.as_ref(), live, filled);
        }
        if let Some(out) = &mut self.bars_out {
            if out.push(ClosedBar { symbol, bar, features }).is_err() {
                self.stats.bars_out_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Features of a closed bar; a bar the analytics refuse is counted and leaves the
    /// symbol's analytics as they were.
    fn analyse(&mut self, i: usize, bar: &Bar) -> Option<FeatureSnapshot> {
        let state = &mut self.states[i];
        let mut flow = state.flow.close_minute(bar.open_time_ms);
        flow.trades = Some(bar.trades);
        let candle = Candle {
            open_time_ms: bar.open_time_ms,
            open: to_f64(bar.open.into()),
            high: to_f64(bar.high.into()),
            low: to_f64(bar.low.into()),
            close: to_f64(bar.close.into()),
            volume: to_f64(bar.volume),
            flow,
        };
        match state.analytics.update(&candle) {
            Ok(snapshot) => {
                self.stats.symbols[i].publish(snapshot);
                Some(*snapshot)
            }
            Err(_) => {
                self.stats.symbols[i].bars_rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// One trade or aggTrade, as the order flow needs it.
#[derive(Clone, Copy)]
struct TradePrint {
    time_ms: i64,
    price: i64,
    qty: i64,
    buyer_is_maker: bool,
}

impl TradePrint {
    fn add_to(&self, flow: &mut FlowAccumulator) {
        let (price, qty) = (to_f64(self.price.into()), to_f64(self.qty.into()));
        flow.on_trade(self.time_ms, price, qty, self.buyer_is_maker);
    }
}
