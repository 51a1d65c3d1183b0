//! The order life cycle over real loopback HTTP against exchange-sim's signed endpoints and
//! matching engine: new → partially filled → filled, cancel, refusals with the exchange's
//! reason, idempotent retries by client id, the clock check, and the order-count limit.

mod common;

use aegis::credentials::ApiKey;
use aegis::execution::live::client::{OrderLimiter, TradeClient, TradeError, WeightBudget};
use aegis::execution::live::order::{
    AlgoRequest, AlgoStatus, ClientIds, Fixed8, LegKind, OrderKind, OrderRequest, OrderStatus, Side,
    WorkingType,
};
use aegis::execution::live::reconcile::{reconcile, resolve, Difference, JournalPosition, UnknownPosition};
use aegis::execution::live::sign::ServerClock;
use aegis::execution::live::user_stream::{UserEvent, UserStream};
use common::{public, start_sim};
use std::time::Duration;

const KEY: &str = "aegis-test-key-0123456789";
const SECRET: &str = "aegis-test-secret-9876543210";

fn sim(order_limit: u32) -> (u16, String) {
    sim_with(order_limit, "60m")
}

fn sim_with(order_limit: u32, listen_key_ttl: &str) -> (u16, String) {
    sim_args(order_limit, listen_key_ttl, 2400)
}

fn sim_args(order_limit: u32, listen_key_ttl: &str, weight_limit: u32) -> (u16, String) {
    let port = start_sim(&[
        "--rest-weight-limit",
        &weight_limit.to_string(),
        "--listen-key-ttl",
        listen_key_ttl,
        "--synthetic",
        "--symbols",
        "3",
        "--seed",
        "21",
        "--speed",
        "60",
        "--api-key",
        &format!("{KEY}:{SECRET}"),
        "--order-limit-10s",
        &order_limit.to_string(),
    ]);
    (port, format!("http://127.0.0.1:{port}"))
}

fn client(base: &str, secret: &str) -> TradeClient {
    let mut c = TradeClient::new(base, ApiKey::new(KEY, secret, "the test"), None).unwrap();
    c.sync_clock().expect("server time");
    c
}

fn best(port: u16, symbol: &str) -> (f64, f64, f64) {
    let book = public(port, &format!("/fapi/v1/depth?symbol={symbol}&limit=5"));
    let level = |side: &str, i: usize| book[side][0][i].as_str().unwrap().parse::<f64>().unwrap();
    (level("bids", 0), level("asks", 0), level("asks", 1))
}

/// A reduce-only SELL leg (closing a long) triggered on the mark price.
fn leg(symbol: &str, kind: LegKind, trigger: f64, quantity: f64, ids: &mut ClientIds) -> AlgoRequest {
    AlgoRequest {
        symbol: symbol.into(),
        side: Side::Sell,
        kind,
        trigger: fx(trigger),
        quantity: fx(quantity),
        working_type: WorkingType::MarkPrice,
        client_algo_id: ids.next_id(),
    }
}

fn order(ids: &mut ClientIds, side: Side, kind: OrderKind, quantity: f64) -> OrderRequest {
    OrderRequest { symbol: "BTCUSDT".into(), side, kind, quantity: fx(quantity), client_id: ids.next_id() }
}

/// The test's round numbers as the exact decimals orders carry.
fn fx(v: f64) -> Fixed8 {
    Fixed8::nearest(v).unwrap()
}

/// A limit order's kind at `price`.
fn limit(price: f64) -> OrderKind {
    OrderKind::Limit { price: fx(price) }
}

/// A stream client (the synthetic market runs from the first one, or the first signed request).
fn subscribe(port: u16) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let url = format!("ws://127.0.0.1:{port}/stream?streams=btcusdt@aggTrade");
    tungstenite::connect(url).expect("subscribe").0
}

#[test]
fn an_order_goes_new_partially_filled_filled_and_another_is_cancelled() {
    // The synthetic market runs from the first signed request (the clock sync's is not).
    let (port, base) = sim(300);
    let mut c = client(&base, SECRET);
    let mut ids = ClientIds::new(1);
    let (bid, _, _) = best(port, "BTCUSDT");

    // Far below the market: rests as NEW, shows in openOrders, then is cancelled.
    let resting = c.place(&order(&mut ids, Side::Buy, limit((bid * 0.5).round()), 0.01)).unwrap();
    assert_eq!(resting.status, OrderStatus::New);
    let open = c.open_orders(Some("BTCUSDT")).unwrap();
    assert!(open.iter().any(|o| o.client_id == resting.client_id), "{open:?}");
    let cancelled = c.cancel("BTCUSDT", &resting.client_id).unwrap();
    assert_eq!(cancelled.status, OrderStatus::Canceled);
    match c.cancel("BTCUSDT", &resting.client_id) {
        Err(TradeError::Rejected { code: -2011, msg, .. }) => assert!(msg.contains("Unknown order"), "{msg}"),
        other => panic!("a second cancel is refused with the reason: {other:?}"),
    }

    // At the best ask for more than the ask holds: part fills at once, the rest waits for
    // trades at or below the price — sellers hit the bid, below it — as the market moves.
    // (The market runs since the first signed request: when it moved between the book's
    // read and the order, the order is cancelled and placed again on the new book.)
    let (mut buy, mut first, mut ask) = (None, None, 0.0);
    for _ in 0..20 {
        let top = public(port, "/fapi/v1/depth?symbol=BTCUSDT&limit=5");
        let level = |i: usize| -> f64 { top["asks"][0][i].as_str().unwrap().parse().unwrap() };
        ask = level(0);
        let attempt = order(&mut ids, Side::Buy, limit(ask), level(1) * 3.0);
        let placed = c.place(&attempt).unwrap();
        if placed.status == OrderStatus::PartiallyFilled {
            (buy, first) = (Some(attempt), Some(placed));
            break;
        }
        if placed.status.is_open() {
            c.cancel("BTCUSDT", &attempt.client_id).unwrap();
        }
    }
    let (buy, first) = (buy.expect("a limit order partly filled at once"), first.unwrap());
    assert!(!first.executed_qty.is_zero() && first.executed_qty < first.orig_qty);
    let ws = subscribe(port);
    let mut filled = None;
    common::eventually("the rest of the order filled by later trades", || {
        filled = c.query("BTCUSDT", &buy.client_id).ok().filter(|o| o.status == OrderStatus::Filled);
        filled.is_some()
    });
    let filled = filled.unwrap();
    assert_eq!(filled.executed_qty, filled.orig_qty);
    assert!(filled.avg_price <= ask + 1e-9, "never above the limit: {filled:?}");

    // A market order fills at once.
    let market = c.place(&order(&mut ids, Side::Sell, OrderKind::Market, 0.002)).unwrap();
    assert_eq!(market.status, OrderStatus::Filled);
    assert!(market.avg_price > 0.0 && market.avg_price <= bid * 1.01);

    // Reduce-only stop and take-profit legs are the Algo Service's conditional orders: they
    // wait for their price, listed and cancelled by the algo endpoints only.
    let stop =
        c.place_algo(&leg("BTCUSDT", LegKind::StopLoss, (bid * 0.5).round(), 0.002, &mut ids)).unwrap();
    let take =
        c.place_algo(&leg("BTCUSDT", LegKind::TakeProfit, (ask * 2.0).round(), 0.002, &mut ids)).unwrap();
    assert_eq!((stop.status, take.status), (AlgoStatus::New, AlgoStatus::New));
    assert_eq!(c.open_algo_orders(Some("BTCUSDT")).unwrap().len(), 2);
    assert!(c.open_orders(Some("BTCUSDT")).unwrap().is_empty(), "the order endpoints do not list them");
    for leg in [&stop, &take] {
        c.cancel_algo(&leg.client_algo_id).unwrap();
        assert_eq!(c.query_algo(&leg.client_algo_id).unwrap().status, AlgoStatus::Canceled);
    }
    drop(ws);
}

#[test]
fn refusals_carry_the_exchanges_reason_and_retries_land_once() {
    let (port, base) = sim(300);
    let mut c = client(&base, SECRET);
    let mut ids = ClientIds::new(2);
    let (bid, _, _) = best(port, "BTCUSDT");
    let refused = |r: Result<_, TradeError>| match r {
        Err(TradeError::Rejected { code, msg, .. }) => (code, msg),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (code, msg) = refused(c.place(&order(&mut ids, Side::Buy, OrderKind::Market, 0.0)));
    assert_eq!(code, -4003, "{msg}");
    let unknown =
        OrderRequest { symbol: "NOPEUSDT".into(), ..order(&mut ids, Side::Buy, OrderKind::Market, 1.0) };
    assert_eq!(refused(c.place(&unknown)).0, -1121);
    assert_eq!(refused(c.query("BTCUSDT", "never-sent")).0, -2013);

    // A wrong secret: the signature does not verify.
    let mut forged = client(&base, "not-the-secret");
    assert_eq!(refused(forged.place(&order(&mut ids, Side::Buy, OrderKind::Market, 0.001))).0, -1022);

    // The same client id twice (a retry after a lost answer): the order exists once, and
    // a repeated placement reads it back rather than failing or doubling it.
    let once = order(&mut ids, Side::Buy, limit((bid * 0.5).round()), 0.01);
    let placed = c.place(&once).unwrap();
    let (code, _) = refused(c.place(&once));
    assert_eq!(code, -4116, "the exchange refuses a duplicate id; the client's retry path reads it back");
    let open = c.open_orders(Some("BTCUSDT")).unwrap();
    assert_eq!(open.iter().filter(|o| o.client_id == once.client_id).count(), 1);
    assert_eq!(c.query("BTCUSDT", &once.client_id).unwrap().order_id, placed.order_id);

    // A clock 2 min ahead (past even the 60× simulator's scaled window): refused as outside
    // recvWindow, re-synced, placed.
    let synced = c.clock();
    c.set_clock(ServerClock { offset_ms: synced.offset_ms + 120_000 });
    let late = c.place(&order(&mut ids, Side::Buy, limit((bid * 0.5).round()), 0.01));
    assert_eq!(late.unwrap().status, OrderStatus::New);
    assert!(
        (c.clock().offset_ms - synced.offset_ms).abs() < 5_000,
        "re-synced: {:?} vs {synced:?}",
        c.clock()
    );
}

#[test]
fn the_order_count_limit_is_kept_by_the_client_and_enforced_by_the_exchange() {
    let (port, base) = sim(3);
    let (bid, _, _) = best(port, "BTCUSDT");
    let info = public(port, "/fapi/v1/exchangeInfo");
    let mut ids = ClientIds::new(3);
    let far = |ids: &mut ClientIds| order(ids, Side::Buy, limit((bid * 0.5).round()), 0.01);

    // With the limiter from exchangeInfo (3 per 10 s here) the client refuses the fourth
    // order itself, before sending anything.
    let mut careful = client(&base, SECRET).with_limiter(OrderLimiter::from_rate_limits(&info["rateLimits"]));
    for _ in 0..3 {
        careful.place(&far(&mut ids)).unwrap();
    }
    match careful.place(&far(&mut ids)) {
        Err(TradeError::RateLimited { reason, retry_after }) => {
            assert!(reason.contains("exchangeInfo"), "{reason}");
            assert!(retry_after <= Duration::from_secs(10));
        }
        other => panic!("expected the client's own refusal: {other:?}"),
    }
    // A client without it is answered by the exchange: 429, code -1015.
    let mut blind = client(&base, SECRET);
    match blind.place(&far(&mut ids)) {
        Err(TradeError::RateLimited { reason, retry_after }) => {
            assert!(reason.contains("429") && reason.contains("-1015"), "{reason}");
            assert!(retry_after >= Duration::from_secs(1));
        }
        other => panic!("expected 429: {other:?}"),
    }
}

/// Over the WebSocket API each answer carries the exchange's count of the key's new orders,
/// and the client's limiter adopts it: orders another client placed with the same key fill
/// the window, and the next order is refused here, unsent.
#[test]
fn the_websocket_api_s_order_counts_feed_the_limiter() {
    let (port, base) = sim(3);
    let (bid, _, _) = best(port, "BTCUSDT");
    let info = public(port, "/fapi/v1/exchangeInfo");
    let mut ids = ClientIds::new(6);
    let far = |ids: &mut ClientIds| order(ids, Side::Buy, limit((bid * 0.5).round()), 0.01);
    let mut other = client(&base, SECRET);
    other.place(&far(&mut ids)).unwrap();
    other.place(&far(&mut ids)).unwrap();
    let mut ws =
        client(&base, SECRET).with_limiter(OrderLimiter::from_rate_limits(&info["rateLimits"])).with_ws_api(
            &format!("ws://127.0.0.1:{port}/ws-fapi/v1"),
            aegis::net::tls::client_config(None).unwrap(),
            Default::default(),
        );
    ws.place(&far(&mut ids)).expect("the third order of the 10 s window");
    match ws.place(&far(&mut ids)) {
        Err(TradeError::RateLimited { reason, .. }) => assert!(reason.contains("exchangeInfo"), "{reason}"),
        other => panic!("the answer's ORDERS count (3 of 3) fills this client's window: {other:?}"),
    }
}

#[test]
fn positions_are_set_up_reconciled_with_the_journal_and_flattened() {
    let (port, base) = sim(300);
    let mut c = client(&base, SECRET);
    let mut ids = ClientIds::new(4);
    c.set_leverage("BTCUSDT", 5).unwrap();
    c.set_margin_type("BTCUSDT", true).unwrap();
    c.set_margin_type("BTCUSDT", true).expect("already isolated is fine");
    let on = |symbol: &str, side, kind, quantity, ids: &mut ClientIds| OrderRequest {
        symbol: symbol.into(),
        side,
        kind,
        quantity: fx(quantity),
        client_id: ids.next_id(),
    };
    assert_eq!(
        c.place(&on("BTCUSDT", Side::Buy, OrderKind::Market, 0.01, &mut ids)).unwrap().status,
        OrderStatus::Filled
    );
    assert_eq!(
        c.place(&on("ETHUSDT", Side::Sell, OrderKind::Market, 0.5, &mut ids)).unwrap().status,
        OrderStatus::Filled
    );
    let (bid, _, _) = best(port, "BTCUSDT");
    let stop = leg("BTCUSDT", LegKind::StopLoss, (bid * 0.9).round(), 0.01, &mut ids);
    assert_eq!(c.place_algo(&stop).unwrap().status, AlgoStatus::New);
    let (bnb_bid, _, _) = best(port, "BNBUSDT");
    let stray = on("BNBUSDT", Side::Buy, limit((bnb_bid * 0.5).round()), 1.0, &mut ids);
    c.place(&stray).unwrap();
    let stray_leg = leg("BNBUSDT", LegKind::StopLoss, (bnb_bid * 0.5).round(), 1.0, &mut ids);
    c.place_algo(&stray_leg).unwrap();

    let positions = c.positions().unwrap();
    let amount = |s: &str| positions.iter().find(|p| p.symbol == s).map(|p| p.amount.to_f64());
    assert_eq!((amount("BTCUSDT"), amount("ETHUSDT"), amount("BNBUSDT")), (Some(0.01), Some(-0.5), None));
    assert_eq!(positions.iter().find(|p| p.symbol == "BTCUSDT").unwrap().leverage, 5);

    // The journal believes BTC is open (right) and BNB is open (wrong); it has no ETH.
    let journal = [
        JournalPosition { symbol: "BTCUSDT".into(), amount: 0.01 },
        JournalPosition { symbol: "BNBUSDT".into(), amount: 1.0 },
    ];
    let open = c.open_orders(None).unwrap();
    let report = reconcile(&journal, &positions, &open, &c.open_algo_orders(None).unwrap(), 1e-9);
    assert_eq!(report.matched, vec!["BTCUSDT".to_string()]);
    assert!(report
        .differences
        .contains(&Difference::ClosedAtExchange { symbol: "BNBUSDT".into(), journal: 1.0 }));
    assert!(report
        .differences
        .contains(&Difference::UnknownAtExchange { symbol: "ETHUSDT".into(), exchange: fx(-0.5) }));
    assert!(report
        .differences
        .contains(&Difference::StrayOrder { symbol: "BNBUSDT".into(), client_id: stray.client_id.clone() }));
    assert!(report.differences.contains(&Difference::StrayAlgoOrder {
        symbol: "BNBUSDT".into(),
        client_algo_id: stray_leg.client_algo_id.clone()
    }));
    assert_eq!(report.differences.len(), 4, "the BTC stop belongs to an open position: {report:?}");

    // Resolved: the stray order cancelled, the unknown ETH short closed, the journal told
    // to close BNB.
    let done = resolve(&mut c, &report, UnknownPosition::Flatten, &mut ids).unwrap();
    assert_eq!(done.cancelled, vec![stray.client_id.clone(), stray_leg.client_algo_id.clone()]);
    assert_eq!(done.flattened.len(), 1);
    assert_eq!(
        (done.flattened[0].symbol.as_str(), done.flattened[0].status),
        ("ETHUSDT", OrderStatus::Filled)
    );
    assert_eq!(done.closed_in_journal, vec!["BNBUSDT".to_string()]);
    let left = c.positions().unwrap();
    assert_eq!(left.iter().map(|p| p.symbol.as_str()).collect::<Vec<_>>(), vec!["BTCUSDT"]);
    let (orders, algos) = (c.open_orders(None).unwrap(), c.open_algo_orders(None).unwrap());
    assert_eq!(algos.len(), 1, "the BTC stop still waits");
    assert_eq!(reconcile(&journal[..1], &left, &orders, &algos, 1e-9).differences, vec![]);

    // The kill switch: every order cancelled, every position closed reduce-only.
    let closes = c.flatten(&mut ids).unwrap();
    assert_eq!(closes.len(), 1);
    assert!(closes.iter().all(|o| o.status == OrderStatus::Filled), "{closes:?}");
    assert!(c.positions().unwrap().is_empty());
    assert!(c.open_orders(None).unwrap().is_empty());
    assert!(c.open_algo_orders(None).unwrap().is_empty(), "the kill switch cancels conditional orders too");
    assert_eq!(c.query_algo(&stop.client_algo_id).unwrap().status, AlgoStatus::Canceled);
}

/// Waits for the first event `pick` accepts (others are skipped); fails after 30 s.
fn expect<T>(stream: &mut UserStream, what: &str, mut pick: impl FnMut(&UserEvent) -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(event) = stream.next_event(Duration::from_millis(500)).expect("user stream") {
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }
    panic!("no {what} on the user-data stream");
}

#[test]
fn the_user_data_stream_reports_fills_and_recovers_from_an_expired_listen_key() {
    let (port, base) = sim_with(300, "2s");
    let ws_base = format!("ws://127.0.0.1:{port}");
    let mut c = client(&base, SECRET);
    let mut ids = ClientIds::new(5);
    let tls = aegis::net::tls::client_config(None).unwrap();
    let mut stream = UserStream::open(&mut c, &ws_base, &tls).unwrap();

    let buy = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    c.place(&buy).unwrap();
    let id = buy.client_id.clone();
    expect(&mut stream, "the order's NEW", |e| {
        matches!(e, UserEvent::Order(o) if o.client_id == id && o.execution == "NEW").then_some(())
    });
    let fill = expect(&mut stream, "the order's fill", |e| match e {
        UserEvent::Order(o) if o.client_id == id && o.execution == "TRADE" => Some(o.clone()),
        _ => None,
    });
    assert_eq!((fill.status, fill.filled_qty), (OrderStatus::Filled, fx(0.01)));
    assert!(fill.last_price > 0.0);
    let position = expect(&mut stream, "the account update", |e| match e {
        UserEvent::Account(p) => p.iter().find(|p| p.symbol == "BTCUSDT").cloned(),
        _ => None,
    });
    assert_eq!(position.amount, 0.01);

    // A keep-alive extends the key; without one it lapses: the stream says so and ends.
    c.keep_alive_listen_key().unwrap();
    expect(&mut stream, "listenKeyExpired", |e| (*e == UserEvent::Expired).then_some(()));
    match c.keep_alive_listen_key() {
        Err(TradeError::Rejected { code: -1125, .. }) => {}
        other => panic!("an expired listenKey cannot be kept alive: {other:?}"),
    }
    let old_key = stream.listen_key.clone();
    let mut stream = stream.recover(&mut c).unwrap();
    assert_ne!(stream.listen_key, old_key, "a new listenKey");
    // Nothing is replayed: what happened in between is read back through REST.
    assert_eq!(
        c.positions().unwrap().iter().find(|p| p.symbol == "BTCUSDT").map(|p| p.amount),
        Some(fx(0.01))
    );
    let sell = order(&mut ids, Side::Sell, OrderKind::Market, 0.01);
    c.place(&sell).unwrap();
    let id = sell.client_id.clone();
    expect(&mut stream, "the next order's fill on the new stream", |e| {
        matches!(e, UserEvent::Order(o) if o.client_id == id && o.status == OrderStatus::Filled).then_some(())
    });
}

#[test]
fn signed_calls_keep_to_the_request_weight_from_exchange_info() {
    // 12 weight a minute, shared by every client of this address (as Binance counts per IP).
    let (port, base) = sim_args(300, "60m", 12);
    let info = public(port, "/fapi/v1/exchangeInfo"); // weight 1
    let budget = WeightBudget::from_rate_limits(&info["rateLimits"]);
    let mut careful = client(&base, SECRET).with_weight_budget(budget); // time: weight 1
    careful.positions().unwrap(); // 5
    careful.positions().unwrap(); // 5: 12 used
    match careful.positions() {
        Err(TradeError::RateLimited { reason, retry_after }) => {
            assert!(reason.contains("request-weight budget"), "refused before sending: {reason}");
            assert!(retry_after <= Duration::from_secs(60));
        }
        other => panic!("expected the client's own refusal: {other:?}"),
    }
    let mut blind = TradeClient::new(&base, ApiKey::new(KEY, SECRET, "the test"), None).unwrap();
    match blind.positions() {
        Err(TradeError::RateLimited { reason, .. }) => {
            assert!(reason.contains("429") && reason.contains("-1003"), "{reason}")
        }
        other => panic!("the exchange answers 429 to a client that overspends: {other:?}"),
    }
    // One that keeps going after its 429s is banned with 418 and told how long to wait.
    let banned = (0..20).find_map(|_| match blind.positions() {
        Err(TradeError::RateLimited { reason, retry_after }) if reason.contains("418") => Some(retry_after),
        _ => None,
    });
    let wait = banned.expect("a 418 after repeated 429s");
    assert!(wait >= Duration::from_secs(1), "{wait:?}");
}

/// User data is on Binance's routed private endpoint, as `events` allow-lists it: the
/// unrouted root refuses a listenKey, and a stream asking for `ALGO_UPDATE` only gets no
/// order or account update.
#[test]
fn user_data_is_served_on_the_routed_private_endpoint_for_the_events_asked() {
    let (port, base) = sim(300);
    let mut c = client(&base, SECRET);
    let mut ids = ClientIds::new(5);
    let listen_key = c.create_listen_key().unwrap();
    match tungstenite::connect(format!("ws://127.0.0.1:{port}/ws/{listen_key}")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("the unrouted root serves no user data: {:?}", other.map(|_| ())),
    }
    let url = format!("ws://127.0.0.1:{port}/private/stream?listenKey={listen_key}&events=ALGO_UPDATE");
    let (mut ws, _) = tungstenite::connect(url).expect("the private route");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    // An order (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE: not asked for), then a leg.
    c.place(&order(&mut ids, Side::Buy, OrderKind::Market, 0.002)).unwrap();
    let (bid, _, _) = best(port, "BTCUSDT");
    let stop =
        c.place_algo(&leg("BTCUSDT", LegKind::StopLoss, (bid * 0.5).round(), 0.002, &mut ids)).unwrap();
    let first = loop {
        match ws.read().expect("a user-data event") {
            tungstenite::Message::Text(text) => {
                break serde_json::from_str::<serde_json::Value>(&text).unwrap()
            }
            _ => continue,
        }
    };
    assert_eq!(
        first["stream"].as_str(),
        Some(listen_key.as_str()),
        "stream mode names the listenKey: {first}"
    );
    assert_eq!(first["data"]["e"], "ALGO_UPDATE", "order and account updates were not asked for: {first}");
    assert_eq!(first["data"]["o"]["caid"].as_str(), Some(stop.client_algo_id.as_str()));
}

/// Over TLS as Binance serves it: orders over https on one kept-alive connection and the
/// user stream over wss, both on the engine's clients trusting `exchange.extra_ca` (the
/// sim's generated CA); without it, both refuse the certificate.
#[test]
fn orders_over_https_and_user_data_over_wss_trust_the_extra_ca() {
    let dir = std::env::temp_dir().join(format!("aegis-live-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let key = format!("{KEY}:{SECRET}");
    let args = ["--synthetic", "--symbols", "2", "--speed", "60", "--tls", "--api-key", &key, "--ca-out"];
    let port = start_sim(&[&args[..], &[ca.to_str().unwrap()]].concat());
    let (https, wss) = (format!("https://127.0.0.1:{port}"), format!("wss://127.0.0.1:{port}"));

    let mut untrusting = TradeClient::new(&https, ApiKey::new(KEY, SECRET, "the test"), None).unwrap();
    match untrusting.sync_clock() {
        Err(TradeError::Transport(e)) => assert!(e.to_string().contains("/fapi/v1/time"), "{e}"),
        other => panic!("an unknown issuer is refused: {other:?}"),
    }
    let mut c = TradeClient::new(&https, ApiKey::new(KEY, SECRET, "the test"), Some(&ca)).unwrap();
    c.sync_clock().unwrap();
    let plain_roots = aegis::net::tls::client_config(None).unwrap();
    let refused = UserStream::open(&mut c, &wss, &plain_roots).err().expect("wss without the CA is refused");
    assert!(refused.to_string().contains("user stream connect"), "{refused}");

    let tls = aegis::net::tls::client_config(Some(&ca)).unwrap();
    let mut stream = UserStream::open(&mut c, &wss, &tls).unwrap();
    let mut ids = ClientIds::new(9);
    let buy = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    c.place(&buy).unwrap();
    let id = buy.client_id.clone();
    let fill = expect(&mut stream, "the order's fill over wss", |e| match e {
        UserEvent::Order(o) if o.client_id == id && o.status == OrderStatus::Filled => Some(o.clone()),
        _ => None,
    });
    assert_eq!(fill.filled_qty, fx(0.01));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An Ed25519 API key signs orders over REST and over the WebSocket API (base64 signatures,
/// percent-encoded in a query); a request signed with another private key is refused on both.
#[test]
fn an_ed25519_key_trades_over_rest_and_the_websocket_api() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = aegis_testkit::ed25519_pair();
    let public_path = dir.path().join("ed25519.pub.pem");
    std::fs::write(&public_path, public).unwrap();
    let registered = format!("EdKey0123456789:{}", public_path.display());
    let port = start_sim(&["--synthetic", "--symbols", "2", "--speed", "60", "--ed25519-key", &registered]);
    let base = format!("http://127.0.0.1:{port}");
    let key = ApiKey::ed25519("EdKey0123456789", &private, "the test").unwrap();
    let mut ids = ClientIds::new(3);

    let mut rest = TradeClient::new(&base, key.clone(), None).unwrap();
    rest.sync_clock().unwrap();
    let over_rest = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    assert_eq!(rest.place(&over_rest).unwrap().status, OrderStatus::Filled);

    let counts = std::sync::Arc::new(aegis::execution::live::ws_api::WsApiStats::default());
    let tls = aegis::net::tls::client_config(None).unwrap();
    let ws_url = format!("ws://127.0.0.1:{port}/ws-fapi/v1");
    let mut ws =
        TradeClient::new(&base, key, None).unwrap().with_ws_api(&ws_url, tls.clone(), counts.clone());
    ws.sync_clock().unwrap();
    let over_ws = order(&mut ids, Side::Sell, OrderKind::Market, 0.01);
    assert_eq!(ws.place(&over_ws).unwrap().status, OrderStatus::Filled);
    assert_eq!(ws.query("BTCUSDT", &over_rest.client_id).unwrap().status, OrderStatus::Filled);
    assert_eq!(
        counts.requests.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "place and query over the WebSocket API"
    );

    let (stranger, _) = aegis_testkit::ed25519_pair();
    let forged = ApiKey::ed25519("EdKey0123456789", &stranger, "the test").unwrap();
    for mut c in [
        TradeClient::new(&base, forged.clone(), None).unwrap(),
        TradeClient::new(&base, forged.clone(), None).unwrap().with_ws_api(
            &ws_url,
            tls.clone(),
            Default::default(),
        ),
    ] {
        c.sync_clock().unwrap();
        match c.place(&order(&mut ids, Side::Buy, OrderKind::Market, 0.01)) {
            Err(TradeError::Rejected { code: -1022, .. }) => {}
            other => panic!("a signature from another key is refused: {other:?}"),
        }
    }
}

/// A WebSocket API proxy to the sim that forwards requests and answers, except that it
/// drops the connection instead of forwarding the first `order.place` answer: the order
/// landed, its outcome is lost with the connection.
fn lossy_proxy(sim_port: u16) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut dropped = false;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let Ok(mut client) = tungstenite::accept(stream) else { continue };
            let url = format!("ws://127.0.0.1:{sim_port}/ws-fapi/v1");
            let (mut upstream, _) = tungstenite::connect(url).unwrap();
            while let Ok(tungstenite::Message::Text(request)) = client.read() {
                let placing = request.contains("\"order.place\"");
                upstream.send(tungstenite::Message::Text(request)).unwrap();
                let answer = upstream.read().unwrap();
                if placing && !dropped {
                    dropped = true;
                    break; // both connections dropped: the answer is lost
                }
                client.send(answer).unwrap();
            }
        }
    });
    port
}

/// An order whose answer is lost with the WebSocket API connection is asked for by client
/// id (over REST while the connection is down) before any retry: it lands once.
#[test]
fn an_order_whose_answer_is_lost_is_queried_before_any_retry_and_lands_once() {
    let (port, base) = sim(300);
    let proxy = lossy_proxy(port);
    let counts = std::sync::Arc::new(aegis::execution::live::ws_api::WsApiStats::default());
    let mut c = client(&base, SECRET).with_ws_api(
        &format!("ws://127.0.0.1:{proxy}/ws-fapi/v1"),
        aegis::net::tls::client_config(None).unwrap(),
        counts.clone(),
    );
    let mut ids = ClientIds::new(4);
    let buy = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    let state = c.place(&buy).unwrap();
    assert_eq!((state.client_id.as_str(), state.status), (buy.client_id.as_str(), OrderStatus::Filled));
    let held = c.positions().unwrap();
    assert_eq!(
        held.iter().find(|p| p.symbol == "BTCUSDT").map(|p| p.amount),
        Some(fx(0.01)),
        "placed once, not twice"
    );
    assert!(counts.fallbacks.load(std::sync::atomic::Ordering::Relaxed) >= 1, "the query went over REST");
    assert_eq!(c.resent(), 0, "found by its client id: never sent again");
}

/// A client with its own WebSocket API connection to the sim at `port` and its counters.
fn ws_client(port: u16) -> (TradeClient, std::sync::Arc<aegis::execution::live::ws_api::WsApiStats>) {
    let counts = std::sync::Arc::new(aegis::execution::live::ws_api::WsApiStats::default());
    let c = client(&format!("http://127.0.0.1:{port}"), SECRET).with_ws_api(
        &format!("ws://127.0.0.1:{port}/ws-fapi/v1"),
        aegis::net::tls::client_config(None).unwrap(),
        counts.clone(),
    );
    (c, counts)
}

/// Tends `c`'s WebSocket API connection (as the gateway does between intents) until
/// `done` holds, for at most 20 s.
fn tend_until(c: &mut TradeClient, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out tending for {what}");
        c.tend_ws_api();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

/// The sim pings every 50 ms and closes a connection whose pongs stop for 300 ms, as
/// Binance does on its own intervals. A tended connection answers and lives on between
/// orders; an untended one is closed, and tending it later finds that out and connects
/// again before its next order, which then goes over the WebSocket API without an
/// unknown outcome.
#[test]
fn between_orders_the_websocket_api_connection_answers_pings_or_is_replaced() {
    let port = start_sim(&[
        "--synthetic",
        "--symbols",
        "2",
        "--speed",
        "60",
        "--api-key",
        &format!("{KEY}:{SECRET}"),
        "--ping-interval",
        "50ms",
        "--pong-timeout",
        "300ms",
    ]);
    let mut ids = ClientIds::new(5);
    let (mut untended, untended_counts) = ws_client(port);
    let (mut tended, counts) = ws_client(port);
    tend_until(&mut tended, "20 pings answered (1 s, over three pong timeouts)", || {
        load(&counts.pings_answered) >= 20
    });
    assert_eq!(
        (load(&counts.connects), load(&counts.ended_while_idle)),
        (1, 0),
        "the tended connection lived on"
    );
    let buy = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    assert_eq!(tended.place(&buy).unwrap().status, OrderStatus::Filled);
    assert_eq!((load(&counts.requests), load(&counts.fallbacks)), (1, 0));

    // The untended connection went unanswered for over three pong timeouts: closed.
    untended.tend_ws_api();
    assert_eq!(load(&untended_counts.ended_while_idle), 1, "the sim closed the silent connection");
    assert_eq!(load(&untended_counts.connects), 2, "and it was replaced at once");
    let sell = order(&mut ids, Side::Sell, OrderKind::Market, 0.01);
    assert_eq!(untended.place(&sell).unwrap().status, OrderStatus::Filled);
    assert_eq!((load(&untended_counts.requests), load(&untended_counts.fallbacks)), (1, 0));
    assert_eq!(untended.resent(), 0);
}

/// A `serverShutdown` notice replaces the connection before the next order, while the old
/// one would still answer (a minute's grace): the order goes over the new connection.
#[test]
fn a_server_shutdown_notice_replaces_the_connection_before_the_next_order() {
    let (port, base) = sim(300);
    let (mut c, counts) = ws_client(port);
    let mut ids = ClientIds::new(6);
    let first = order(&mut ids, Side::Buy, OrderKind::Market, 0.01);
    assert_eq!(c.place(&first).unwrap().status, OrderStatus::Filled);
    let told = common::sim_post(&base, "/sim/v1/ws-api/shutdown?graceMs=60000");
    assert_eq!(told["connections"], 1, "{told}");
    tend_until(&mut c, "the notice", || load(&counts.shutdown_notices) == 1);
    assert_eq!(load(&counts.connects), 2, "replaced as soon as the notice was read");
    let second = order(&mut ids, Side::Sell, OrderKind::Market, 0.01);
    assert_eq!(c.place(&second).unwrap().status, OrderStatus::Filled);
    assert_eq!((load(&counts.requests), load(&counts.fallbacks), load(&counts.unexpected)), (2, 0, 0));
    assert_eq!(load(&counts.ended_while_idle), 0, "replaced before the server closed it");
}
