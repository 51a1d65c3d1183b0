//! The execution gateway against exchange-sim's matching engine over loopback: an entry
//! protected by its legs and closed by the one the market reaches (seen on the user-data
//! stream), a desk's close, the kill switch (a position it never opened included), a lapsed
//! listenKey recovered and a kept-alive one that never lapses, entries skipped while a
//! rate-limit back-off runs, with closes waiting it out, an account in Hedge or
//! Multi-Assets Mode refused before anything is sent, and legs (the Algo Service's
//! conditional orders) that fail at the exchange — rejected when triggered, filled in part,
//! cancelled by hand — never leaving a position unprotected.

mod common;

use common::public;

use aegis::credentials::ApiKey;
use aegis::desk::venue::{ExecReport, OrderIntent};
use aegis::execution::live::client::TradeClient;
use aegis::execution::live::gateway::{Gateway, GatewayLinks, GatewaySettings, GatewayStats};
use aegis::execution::live::order::{ClientIds, OrderKind, OrderRequest, Side as OrderSide, WorkingType};
use aegis::execution::live::ws_api::WsApiStats;
use aegis::ring::Doorbell;
use aegis_trading::{ExitReason, Side};
use aegis_wire::{Fixed8, Rounding, SymbolTable};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "gateway-test-key-0123456789";
const SECRET: &str = "gateway-test-secret-0123456789";

/// A sim with the test key; returns its port.
fn sim(extra: &[&str]) -> u16 {
    let key = format!("{KEY}:{SECRET}");
    let mut args = vec!["--synthetic", "--symbols", "3", "--seed", "33", "--speed", "60", "--api-key", &key];
    args.extend_from_slice(extra);
    common::start_sim(&args)
}

/// How the gateway under test sends orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Rest,
    WebSocket,
}

/// The gateway's client: REST only, or orders over the sim's WebSocket API.
fn gateway_client(port: u16, api: Api, counts: Arc<WsApiStats>) -> TradeClient {
    let c = client(port);
    match api {
        Api::Rest => c,
        Api::WebSocket => c.with_ws_api(
            &format!("ws://127.0.0.1:{port}/ws-fapi/v1"),
            aegis::net::tls::client_config(None).unwrap(),
            counts,
        ),
    }
}

fn client(port: u16) -> TradeClient {
    let mut c =
        TradeClient::new(&format!("http://127.0.0.1:{port}"), ApiKey::new(KEY, SECRET, "the test"), None)
            .unwrap();
    c.sync_clock().unwrap();
    c
}

/// The sim's symbols, in exchangeInfo's order.
fn symbols(port: u16) -> Arc<SymbolTable> {
    let info = public(port, "/fapi/v1/exchangeInfo");
    let mut table = SymbolTable::with_capacity(4);
    for s in info["symbols"].as_array().unwrap() {
        table.intern(s["symbol"].as_str().unwrap()).unwrap();
    }
    Arc::new(table)
}

/// `symbol`'s mid price and price tick (`PRICE_FILTER.tickSize`): the desk sends legs on
/// the tick (its sizing rounds them), so the tests' intents do too.
fn quote(port: u16, symbol: &str) -> (f64, f64) {
    let book = public(port, &format!("/fapi/v1/depth?symbol={symbol}&limit=5"));
    let level = |side: &str| book[side][0][0].as_str().unwrap().parse::<f64>().unwrap();
    let info = public(port, "/fapi/v1/exchangeInfo");
    let entry = info["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == symbol).unwrap();
    let filter =
        entry["filters"].as_array().unwrap().iter().find(|f| f["filterType"] == "PRICE_FILTER").unwrap();
    ((level("bids") + level("asks")) / 2.0, filter["tickSize"].as_str().unwrap().parse().unwrap())
}

/// A sim with `extra` flags, its symbols, their names, and a stream holding the market
/// moving (keep the last alive for the test's length).
type Market = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;
fn market(extra: &[&str]) -> (u16, Arc<SymbolTable>, Vec<String>, Market) {
    let port = sim(extra);
    let table = symbols(port);
    let names: Vec<String> = table.iter().map(|(_, n)| n.to_string()).collect();
    let moving = subscribe(port, &names[0]);
    (port, table, names, moving)
}

/// Keeps the synthetic market moving (it starts when a client holds a stream).
fn subscribe(
    port: u16,
    symbol: &str,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let url = format!("ws://127.0.0.1:{port}/stream?streams={}@aggTrade", symbol.to_ascii_lowercase());
    tungstenite::connect(url).expect("subscribe").0
}

/// The tests' gateway settings: the sim's user stream, no journal, Binance's defaults.
fn settings(port: u16) -> GatewaySettings {
    GatewaySettings {
        ws_base: format!("ws://127.0.0.1:{port}"),
        tls: aegis::net::tls::client_config(None).unwrap(),
        keep_alive: Duration::from_secs(1_800),
        journal: None,
        fsync: aegis_journal::FsyncPolicy::Never,
        working_type: WorkingType::MarkPrice,
        triggering_timeout: Duration::from_secs(10),
        max_open_algo_orders: 200,
    }
}

/// A running gateway and the desk's ends of its rings.
struct Running {
    intents: rtrb::Producer<OrderIntent>,
    reports: rtrb::Consumer<ExecReport>,
    seen: Vec<ExecReport>,
    stats: Arc<GatewayStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    api: Api,
}

impl Running {
    fn start(
        api: Api,
        port: u16,
        table: Arc<SymbolTable>,
        keep_alive: Duration,
        journal: Option<std::path::PathBuf>,
    ) -> Self {
        Self::start_with(api, port, table, |s| {
            s.keep_alive = keep_alive;
            s.journal = journal;
        })
    }

    /// Starts a gateway with the default test settings as `tweak` changes them.
    fn start_with(
        api: Api,
        port: u16,
        table: Arc<SymbolTable>,
        tweak: impl FnOnce(&mut GatewaySettings),
    ) -> Self {
        let (intents, intents_rx) = rtrb::RingBuffer::new(64);
        let (reports_tx, reports) = rtrb::RingBuffer::new(256);
        let stats = Arc::new(GatewayStats::default());
        let links = GatewayLinks {
            intents: intents_rx,
            reports: reports_tx,
            doorbell: Arc::new(Doorbell::default()),
            stats: stats.clone(),
        };
        let mut settings = settings(port);
        tweak(&mut settings);
        let (gateway, report) =
            Gateway::start(gateway_client(port, api, stats.ws_api.clone()), settings, table, &[], links)
                .unwrap();
        assert!(report.lines.is_empty() && report.matched == 0, "a fresh account: {report:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || gateway.run(stop, Duration::from_secs(5)))
        };
        Self { intents, reports, seen: Vec::new(), stats, stop, thread: Some(thread), api }
    }

    fn send(&mut self, intent: OrderIntent) {
        self.intents.push(intent).unwrap();
    }

    /// Waits for a report `pick` accepts and returns it.
    fn expect(&mut self, what: &str, pick: impl Fn(&ExecReport) -> bool) -> ExecReport {
        let mut found = None;
        common::eventually(what, || {
            while let Ok(r) = self.reports.pop() {
                self.seen.push(r);
            }
            found = self.seen.iter().position(&pick).map(|i| self.seen.remove(i));
            found.is_some()
        });
        found.unwrap()
    }

    fn entered(&mut self, id: u64) -> (f64, f64) {
        match self.expect("the entry", |r| matches!(r, ExecReport::Entered { id: i, .. } if *i == id)) {
            ExecReport::Entered { price, qty, .. } => (price, qty),
            _ => unreachable!(),
        }
    }

    fn exited(&mut self, id: u64) -> (f64, ExitReason) {
        match self.expect("the exit", |r| matches!(r, ExecReport::Exited { id: i, .. } if *i == id)) {
            ExecReport::Exited { price, reason, .. } => (price, reason),
            _ => unreachable!(),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap();
        let ws = &self.stats.ws_api;
        let (requests, fallbacks) =
            (ws.requests.load(Ordering::Relaxed), ws.fallbacks.load(Ordering::Relaxed));
        // Entries carry their read time: tick-to-trade is recorded, to the last byte written
        // only where the client exposes it (the WebSocket API).
        if self.stats.entries.load(Ordering::Relaxed) > 0 {
            let t = self.stats.tick_to_trade.lock().unwrap();
            let t = t.as_ref().expect("tick-to-trade recorded");
            assert!(!t.acked.is_empty());
            assert_eq!(t.written.is_empty(), self.api == Api::Rest, "{:?}", self.api);
        }
        match self.api {
            Api::WebSocket if self.stats.orders_sent.load(Ordering::Relaxed) > 0 => {
                assert!(
                    requests > 0 && fallbacks == 0,
                    "orders went over the WebSocket API: {requests}, {fallbacks}"
                )
            }
            Api::WebSocket => {}
            Api::Rest => assert_eq!(requests, 0, "REST only"),
        }
    }
}

/// An entry at `price` with legs `band` away, on the price tick.
fn open(id: u64, symbol: u16, side: Side, qty: f64, (price, tick): (f64, f64), band: f64) -> OrderIntent {
    let s = side.sign();
    let on_tick = |p: f64| Fixed8::on_grid(p, tick, Rounding::Down).unwrap();
    OrderIntent::Open {
        id,
        symbol,
        side,
        qty: Fixed8::nearest(qty).unwrap(),
        leverage: 3.0,
        stop: on_tick(price * (1.0 - s * band)),
        target: on_tick(price * (1.0 + s * band)),
        read_ns: aegis::clock::now_ns(),
    }
}

/// The exchange holds nothing: no position, no open order, no waiting conditional order.
fn flat(c: &mut TradeClient) -> bool {
    c.positions().unwrap().is_empty()
        && c.open_orders(None).unwrap().is_empty()
        && c.open_algo_orders(None).unwrap().is_empty()
}

fn entries_are_protected_by_legs_and_leave_by_a_leg_a_close_or_the_kill_switch(api: Api) {
    let (port, table, names, _market) = market(&[]);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("orders.journal");
    let mut g = Running::start(api, port, table, Duration::from_secs(1_800), Some(journal.clone()));
    let mut c = client(port);

    // Legs 0.02 % away: the market soon reaches one, and the user-data stream says which.
    let (price, tick) = quote(port, &names[0]);
    g.send(open(1, 0, Side::Long, 0.01, (price, tick), 0.0002));
    let (entry, qty) = g.entered(1);
    assert_eq!(qty, 0.01);
    assert!((entry / price - 1.0).abs() < 0.01, "{entry} vs {price}");
    let (exit, reason) = g.exited(1);
    match reason {
        ExitReason::StopLoss => assert!(exit <= price * (1.0 - 0.0002) * 1.001, "{exit}"),
        ExitReason::TakeProfit => assert!(exit >= price * (1.0 + 0.0002) * 0.999, "{exit}"),
        other => panic!("a leg closes it, not {other:?}"),
    }
    common::eventually("the other leg cancelled, the position gone", || flat(&mut c));

    // Legs far away: the desk's close cancels them and closes at market.
    let quoted = quote(port, &names[1]);
    g.send(open(2, 1, Side::Short, 1.0, quoted, 0.5));
    g.entered(2);
    let legs = c.open_algo_orders(Some(&names[1])).unwrap();
    let mut ids: Vec<&str> = legs.iter().map(|l| l.client_algo_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["aegis.2.s", "aegis.2.t"], "stop and take profit wait at the Algo Service");
    assert!(c.open_orders(Some(&names[1])).unwrap().is_empty(), "no leg is an ordinary order");
    g.send(OrderIntent::Close {
        id: 2,
        symbol: 1,
        reason: ExitReason::SignalDecay(aegis_trading::decay::Decay::AdverseMove),
    });
    let (_, reason) = g.exited(2);
    assert!(matches!(reason, ExitReason::SignalDecay(_)));
    assert!(flat(&mut c), "{:?}", c.positions());

    // The kill switch: two held trades and a position someone opened by hand.
    g.send(open(3, 0, Side::Long, 0.01, quote(port, &names[0]), 0.5));
    g.send(open(4, 1, Side::Long, 1.0, quote(port, &names[1]), 0.5));
    g.entered(3);
    g.entered(4);
    let mut ids = ClientIds::new(7);
    let by_hand = OrderRequest {
        symbol: names[2].clone(),
        side: OrderSide::Sell,
        kind: OrderKind::Market,
        quantity: Fixed8::parse("1").unwrap(),
        client_id: ids.next_id(),
    };
    c.place(&by_hand).unwrap();
    g.send(OrderIntent::Flatten { reason: ExitReason::Manual });
    assert_eq!(g.exited(3).1, ExitReason::Manual);
    assert_eq!(g.exited(4).1, ExitReason::Manual);
    assert!(flat(&mut c), "everything closed, the unknown position too: {:?}", c.positions());
    assert_eq!(g.stats.flattens.load(Ordering::Relaxed), 1);
    assert_eq!(g.stats.reports_dropped.load(Ordering::Relaxed), 0);
    g.stop();

    // Every order is in the orders journal, the entries with their fills.
    let bytes = std::fs::read(&journal).unwrap();
    let records: Vec<Value> =
        aegis_journal::FrameReader::new(&bytes).map(|p| serde_json::from_slice(p).unwrap()).collect();
    for id in 1..=4 {
        let entry = format!("aegis.{id}.e");
        assert!(
            records.iter().any(|r| r["event"] == "order" && r["order"]["client_id"] == entry.as_str()),
            "{entry} journaled"
        );
    }
    assert!(records.iter().any(|r| r["event"] == "flattened"));
}

fn a_lapsed_listen_key_is_recovered_and_a_kept_alive_one_never_lapses(api: Api) {
    // Kept alive every 300 ms, a 2 s listenKey never lapses.
    let (port, table, _, _market) = market(&["--listen-key-ttl", "2s"]);
    let kept = Running::start(api, port, table, Duration::from_millis(300), None);
    common::eventually("keep-alives spanning two lifetimes", || {
        kept.stats.keep_alives.load(Ordering::Relaxed) >= 14
    });
    assert_eq!(kept.stats.stream_recoveries.load(Ordering::Relaxed), 0);
    kept.stop();

    // Never kept alive: it lapses, a new one is opened, and fills still arrive on it.
    let (port, table, names, _market) = market(&["--listen-key-ttl", "2s"]);
    let mut lapsing = Running::start(api, port, table, Duration::from_secs(1_800), None);
    common::eventually("the stream recovered", || {
        lapsing.stats.stream_recoveries.load(Ordering::Relaxed) >= 1
    });
    lapsing.send(open(1, 0, Side::Short, 0.01, quote(port, &names[0]), 0.0002));
    lapsing.entered(1);
    let (_, reason) = lapsing.exited(1);
    assert!(matches!(reason, ExitReason::StopLoss | ExitReason::TakeProfit), "{reason:?}");
    lapsing.stop();
}

fn a_rate_limit_skips_entries_and_closes_wait_out_the_back_off(api: Api) {
    // Four new orders per 10 s: an entry and its two legs fit, the next trade's legs do not.
    let (port, table, names, _market) = market(&["--order-limit-10s", "4"]);
    let mut g = Running::start(api, port, table, Duration::from_secs(1_800), None);
    let mut c = client(port);
    g.send(open(1, 0, Side::Long, 0.01, quote(port, &names[0]), 0.5));
    g.entered(1);
    // The entry is the 4th order; its stop is refused by the limiter from exchangeInfo: the
    // unprotected position must go, once the back-off allows.
    g.send(open(2, 1, Side::Long, 1.0, quote(port, &names[1]), 0.5));
    g.entered(2);
    g.send(open(3, 2, Side::Long, 1.0, quote(port, &names[2]), 0.5));
    assert_eq!(
        g.expect("the skipped entry", |r| *r == ExecReport::Cancelled { id: 3 }),
        ExecReport::Cancelled { id: 3 }
    );
    assert!(g.stats.rate_limited.load(Ordering::Relaxed) >= 1);
    assert_eq!(g.stats.entries_skipped.load(Ordering::Relaxed), 1);
    assert_eq!(g.exited(2).1, ExitReason::Manual);
    let held: Vec<String> = c.positions().unwrap().into_iter().map(|p| p.symbol).collect();
    assert_eq!(held, vec![names[0].clone()], "trade 1 held, trade 2 closed, trade 3 never sent");
    g.send(OrderIntent::Flatten { reason: ExitReason::Manual });
    g.exited(1);
    assert!(flat(&mut c));
    g.stop();
}

/// An account in Hedge Mode or in Multi-Assets Mode cannot be traded as Aegis trades (one-way
/// positions on isolated margin): the gateway refuses to start, saying which mode and how to
/// leave it, with nothing sent; in One-way Mode with Multi-Assets off it starts.
fn an_account_in_hedge_or_multi_assets_mode_is_refused_before_anything_is_sent(api: Api) {
    let port = sim(&[]);
    let table = symbols(port);
    let try_start = || {
        let (_, intents) = rtrb::RingBuffer::new(4);
        let (reports, _) = rtrb::RingBuffer::new(4);
        let links = GatewayLinks {
            intents,
            reports,
            doorbell: Arc::new(Doorbell::default()),
            stats: Arc::new(GatewayStats::default()),
        };
        Gateway::start(gateway_client(port, api, Arc::default()), settings(port), table.clone(), &[], links)
    };
    let mut c = client(port);
    c.sync_clock().unwrap();
    assert_eq!(c.account_modes().unwrap().refusal(), None, "Binance's defaults: One-way, Multi-Assets off");
    match c.set_position_mode(false) {
        Err(aegis::execution::live::client::TradeError::Rejected { code: -4059, .. }) => {}
        other => panic!("an unchanged mode is refused as Binance refuses it: {other:?}"),
    }

    c.set_position_mode(true).unwrap();
    let refused = try_start().err().expect("hedge mode is refused").to_string();
    assert!(refused.contains("Hedge Mode") && refused.contains("One-way Mode"), "{refused}");
    assert!(c.open_orders(None).unwrap().is_empty() && c.positions().unwrap().is_empty());

    c.set_position_mode(false).unwrap();
    c.set_multi_assets_mode(true).unwrap();
    let refused = try_start().err().expect("multi-assets mode is refused").to_string();
    assert!(refused.contains("Multi-Assets Mode") && refused.contains("isolated margin"), "{refused}");

    c.set_multi_assets_mode(false).unwrap();
    assert!(try_start().is_ok(), "One-way Mode, Multi-Assets off: the gateway starts");
}

/// Whether `reports` hold an alert whose text contains `what`.
fn alerted(reports: &[ExecReport], what: &str) -> bool {
    reports.iter().any(|r| matches!(r, ExecReport::Alert(a) if a.what.contains(what)))
}

/// A leg the exchange rejects when it triggers, or fills only in part, leaves the position
/// unprotected: the gateway closes the rest at once, with the leg's reason, and alerts.
fn a_leg_rejected_or_filled_in_part_when_triggered_is_made_good_by_a_close(api: Api) {
    for (outcome, alert) in
        [("rejected", "ended without closing"), ("partial", "filled less than the position")]
    {
        let (port, table, names, _market) = market(&["--trigger-outcome", outcome]);
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("orders.journal");
        let mut g = Running::start(api, port, table, Duration::from_secs(1_800), Some(journal.clone()));
        let mut c = client(port);
        // Legs 0.02 % away: one triggers soon. A leg the market passes before it is placed
        // (-2021) ends the trade without a trigger; then the next trade tries again.
        for id in 1..=5 {
            g.send(open(id, 0, Side::Long, 0.02, quote(port, &names[0]), 0.0002));
            g.entered(id);
            let (_, reason) = g.exited(id);
            assert!(matches!(reason, ExitReason::StopLoss | ExitReason::TakeProfit), "{outcome}: {reason:?}");
            common::eventually("the exchange flat", || flat(&mut c));
            if alerted(&g.seen, alert) {
                break;
            }
        }
        assert!(alerted(&g.seen, alert), "{outcome}: {:?}", g.seen);
        g.stop();
        let bytes = std::fs::read(&journal).unwrap();
        let records: Vec<Value> =
            aegis_journal::FrameReader::new(&bytes).map(|p| serde_json::from_slice(p).unwrap()).collect();
        let unprotected = records.iter().filter(|r| r["event"] == "unprotected").count();
        assert_eq!(unprotected, 1, "{outcome}: {records:#?}");
    }
}

/// A leg cancelled at the exchange by someone else leaves the position unprotected: the
/// gateway closes it and alerts.
/// A conditional order the engine never placed (placed by hand on the same account) is
/// counted and journaled, and changes nothing the gateway holds.
fn an_update_for_a_conditional_order_never_placed_is_counted_and_journaled(api: Api) {
    let (port, table, names, _market) = market(&[]);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("orders.journal");
    let g = Running::start(api, port, table, Duration::from_secs(1_800), Some(journal.clone()));
    let mut c = client(port);
    let (mid, tick) = quote(port, &names[0]);
    let by_hand = aegis::execution::live::order::AlgoRequest {
        symbol: names[0].clone(),
        side: OrderSide::Buy,
        kind: aegis::execution::live::order::LegKind::StopLoss,
        trigger: Fixed8::on_grid(mid * 1.5, tick, Rounding::Down).unwrap(),
        quantity: Fixed8::parse("1").unwrap(),
        working_type: WorkingType::MarkPrice,
        client_algo_id: "by-hand-1".into(),
    };
    c.place_algo(&by_hand).unwrap();
    common::eventually("the foreign update counted", || g.stats.foreign_updates.load(Ordering::Relaxed) >= 1);
    g.stop();
    let bytes = std::fs::read(&journal).unwrap();
    let notes: Vec<Value> =
        aegis_journal::FrameReader::new(&bytes).map(|p| serde_json::from_slice(p).unwrap()).collect();
    let foreign = notes.iter().find(|n| n["event"] == "foreign_algo_update").expect("journaled");
    assert_eq!(
        (foreign["where"].as_str(), foreign["leg"]["client_algo_id"].as_str()),
        (Some("user stream"), Some("by-hand-1"))
    );
    c.cancel_algo("by-hand-1").unwrap();
}

fn a_leg_cancelled_by_hand_gets_the_position_closed(api: Api) {
    let (port, table, names, _market) = market(&[]);
    let mut g = Running::start(api, port, table, Duration::from_secs(1_800), None);
    let mut c = client(port);
    g.send(open(1, 1, Side::Short, 1.0, quote(port, &names[1]), 0.5));
    g.entered(1);
    c.cancel_algo("aegis.1.t").unwrap();
    assert_eq!(g.exited(1).1, ExitReason::Manual);
    common::eventually("the exchange flat", || flat(&mut c));
    assert!(alerted(&g.seen, "ended without closing"), "{:?}", g.seen);
    g.stop();
}

/// A leg left TRIGGERING past the timeout is read back at the exchange; still not done, the
/// position counts as unprotected: closed, with an alert.
fn a_leg_stuck_triggering_past_the_timeout_gets_the_position_closed(api: Api) {
    let (port, table, names, _market) = market(&["--trigger-outcome", "stuck"]);
    let mut g = Running::start_with(api, port, table, |s| s.triggering_timeout = Duration::from_millis(300));
    let mut c = client(port);
    // As above: a leg the market passed before it was placed ends the trade at once.
    for id in 1..=5 {
        g.send(open(id, 0, Side::Long, 0.02, quote(port, &names[0]), 0.0002));
        g.entered(id);
        let (_, reason) = g.exited(id);
        common::eventually("the exchange holds no position", || c.positions().unwrap().is_empty());
        if alerted(&g.seen, "TRIGGERING") {
            assert_eq!(reason, ExitReason::Manual);
            break;
        }
    }
    assert!(alerted(&g.seen, "TRIGGERING"), "{:?}", g.seen);
    g.stop();
}

/// An entry whose two legs would pass the cap on open conditional orders is skipped, with
/// nothing sent; the trades already held keep their legs.
fn entries_past_the_open_conditional_order_cap_are_skipped(api: Api) {
    let (port, table, names, _market) = market(&[]);
    let mut g = Running::start_with(api, port, table, |s| s.max_open_algo_orders = 4);
    let mut c = client(port);
    g.send(open(1, 0, Side::Long, 0.01, quote(port, &names[0]), 0.5));
    g.send(open(2, 1, Side::Short, 1.0, quote(port, &names[1]), 0.5));
    g.entered(1);
    g.entered(2);
    g.send(open(3, 2, Side::Long, 1.0, quote(port, &names[2]), 0.5));
    assert_eq!(
        g.expect("the skipped entry", |r| *r == ExecReport::Cancelled { id: 3 }),
        ExecReport::Cancelled { id: 3 }
    );
    assert_eq!(g.stats.entries_skipped.load(Ordering::Relaxed), 1);
    assert_eq!(c.open_algo_orders(None).unwrap().len(), 4);
    assert_eq!(c.positions().unwrap().len(), 2, "nothing sent for trade 3");
    g.send(OrderIntent::Flatten { reason: ExitReason::Manual });
    g.exited(1);
    g.exited(2);
    assert!(flat(&mut c));
    g.stop();
}

/// Every gateway test, once with orders over REST and once over the WebSocket API.
macro_rules! on_both_order_apis {
    ($($name:ident),* $(,)?) => {
        mod rest {
            $(#[test]
            fn $name() {
                super::$name(super::Api::Rest)
            })*
        }
        mod websocket {
            $(#[test]
            fn $name() {
                super::$name(super::Api::WebSocket)
            })*
        }
    };
}

on_both_order_apis!(
    entries_are_protected_by_legs_and_leave_by_a_leg_a_close_or_the_kill_switch,
    a_lapsed_listen_key_is_recovered_and_a_kept_alive_one_never_lapses,
    a_rate_limit_skips_entries_and_closes_wait_out_the_back_off,
    an_account_in_hedge_or_multi_assets_mode_is_refused_before_anything_is_sent,
    a_leg_rejected_or_filled_in_part_when_triggered_is_made_good_by_a_close,
    a_leg_cancelled_by_hand_gets_the_position_closed,
    an_update_for_a_conditional_order_never_placed_is_counted_and_journaled,
    a_leg_stuck_triggering_past_the_timeout_gets_the_position_closed,
    entries_past_the_open_conditional_order_cap_are_skipped,
);
