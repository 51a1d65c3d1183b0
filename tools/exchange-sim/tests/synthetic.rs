//! The synthetic market: deterministic for a seed, and internally consistent — klines equal
//! the trades they summarise, aggTrades equal their trades, depth sequences are contiguous,
//! the book synced from REST never crosses and matches every bookTicker with the same `u`.

mod common;

use aegis_wire::{parse_fixed8, parse_fixed8_i128, Sign};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

fn first_messages(seed: &str, streams: &str, n: usize) -> Vec<String> {
    let sim =
        Sim::spawn(&["--synthetic", "--symbols", "5", "--seed", seed, "--speed", "max", "--for", "60s"]);
    let mut ws = connect(&format!("{}/stream?streams={streams}", sim.ws));
    (0..n).map(|_| next_text(&mut ws)).collect()
}

#[test]
fn same_seed_same_payloads_other_seed_other_payloads() {
    let streams =
        "btcusdt@aggTrade/ethusdt@depth@100ms/solusdt@kline_1m/bnbusdt@bookTicker/xrpusdt@markPrice@1s";
    let a = first_messages("42", streams, 3000);
    let b = first_messages("42", streams, 3000);
    assert_eq!(a, b);
    let c = first_messages("43", streams, 3000);
    assert_ne!(a, c);
}

fn num(v: &Value) -> i128 {
    parse_fixed8_i128(v.as_str().expect("decimal string").as_bytes(), Sign::Allowed).expect("decimal")
}

#[derive(Default, Debug, PartialEq)]
struct Candle {
    open: i128,
    high: i128,
    low: i128,
    close: i128,
    volume: i128,
    quote_x1e8: i128,
    trades: u64,
    first: i64,
    last: i64,
}

#[test]
fn klines_equal_their_trades_and_agg_trades_equal_theirs() {
    let sim =
        Sim::spawn(&["--synthetic", "--symbols", "2", "--seed", "9", "--speed", "max", "--for", "120s"]);
    let mut ws =
        connect(&format!("{}/stream?streams=ethusdt@trade/ethusdt@aggTrade/ethusdt@kline_1m", sim.ws));
    let mut candles: BTreeMap<i64, Candle> = BTreeMap::new();
    let mut trades: BTreeMap<i64, (i128, i128, bool)> = BTreeMap::new();
    let mut closed = 0;
    let mut agg_checked = 0;
    let mut pending_aggs: Vec<Value> = Vec::new();
    while closed < 4 {
        let msg: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
        let d = &msg["data"];
        match d["e"].as_str().unwrap() {
            "trade" => {
                let t = d["T"].as_i64().unwrap();
                let (p, q) = (num(&d["p"]), num(&d["q"]));
                let id = d["t"].as_i64().unwrap();
                trades.insert(id, (p, q, d["m"].as_bool().unwrap()));
                let c = candles.entry(t - t % 60_000).or_insert_with(|| Candle {
                    open: p,
                    high: p,
                    low: p,
                    first: id,
                    ..Default::default()
                });
                c.high = c.high.max(p);
                c.low = c.low.min(p);
                c.close = p;
                c.volume += q;
                c.quote_x1e8 += p * q;
                c.trades += 1;
                c.last = id;
            }
            "aggTrade" => pending_aggs.push(d.clone()),
            "kline" => {
                let k = &d["k"];
                if !k["x"].as_bool().unwrap() {
                    continue;
                }
                let t = k["t"].as_i64().unwrap();
                let Some(mine) = candles.get(&t) else { continue }; // opened before we subscribed
                if mine.first != k["f"].as_i64().unwrap() {
                    continue; // a partial first minute
                }
                let got = Candle {
                    open: num(&k["o"]),
                    high: num(&k["h"]),
                    low: num(&k["l"]),
                    close: num(&k["c"]),
                    volume: num(&k["v"]),
                    quote_x1e8: mine.quote_x1e8,
                    trades: k["n"].as_u64().unwrap(),
                    first: k["f"].as_i64().unwrap(),
                    last: k["L"].as_i64().unwrap(),
                };
                assert_eq!(&got, mine, "kline {t}");
                // Quote volume is truncated to 8 decimals per trade by the exchange's rule here.
                let quote = num(&k["q"]);
                assert!(
                    (quote - mine.quote_x1e8 / 100_000_000).abs() <= i128::from(mine.trades as u32),
                    "quote volume of {t}"
                );
                closed += 1;
            }
            other => panic!("unexpected {other}"),
        }
        pending_aggs.retain(|a| {
            let (f, l) = (a["f"].as_i64().unwrap(), a["l"].as_i64().unwrap());
            if !trades.contains_key(&l) {
                return true;
            }
            if let Some(first) = trades.get(&f) {
                let qty: i128 = (f..=l).map(|id| trades[&id].1).sum();
                assert_eq!(num(&a["q"]), qty, "aggTrade {}", a["a"]);
                assert_eq!(num(&a["p"]), first.0);
                assert_eq!(a["m"].as_bool().unwrap(), first.2);
                agg_checked += 1;
            }
            false
        });
    }
    assert!(agg_checked > 100, "only {agg_checked} aggTrades checked");
}

/// A local order book synced the documented way: REST snapshot, then diffs whose `pu`
/// continues the previous `u`.
#[derive(Default)]
struct Book {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_u: u64,
}

impl Book {
    fn apply_levels(side: &mut BTreeMap<i64, i64>, levels: &Value) {
        for level in levels.as_array().unwrap() {
            let p = parse_fixed8(level[0].as_str().unwrap().as_bytes(), Sign::Forbidden).unwrap();
            let q = parse_fixed8(level[1].as_str().unwrap().as_bytes(), Sign::Forbidden).unwrap();
            if q == 0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }

    fn best(&self) -> (i64, i64, i64, i64) {
        let (bp, bq) = self.bids.iter().next_back().map(|(p, q)| (*p, *q)).unwrap();
        let (ap, aq) = self.asks.iter().next().map(|(p, q)| (*p, *q)).unwrap();
        (bp, bq, ap, aq)
    }
}

#[test]
fn depth_is_contiguous_and_the_synced_book_never_crosses() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "3", "--seed", "5", "--speed", "max", "--for", "60s"]);
    // Snapshot before subscribing: the market starts with the first subscriber.
    let (status, body) = http_get(&sim.http, "/fapi/v1/depth?symbol=BNBUSDT&limit=1000");
    assert_eq!(status, 200);
    let snap: Value = serde_json::from_str(&body).unwrap();
    let mut book = Book { last_u: snap["lastUpdateId"].as_u64().unwrap(), ..Default::default() };
    Book::apply_levels(&mut book.bids, &snap["bids"]);
    Book::apply_levels(&mut book.asks, &snap["asks"]);
    let mut ws = connect(&format!("{}/stream?streams=bnbusdt@depth@100ms/bnbusdt@bookTicker", sim.ws));
    let (mut updates, mut tickers_matched) = (0, 0);
    while updates < 3000 {
        let msg: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
        let d = &msg["data"];
        match d["e"].as_str().unwrap() {
            "depthUpdate" => {
                let (first, last, prev) =
                    (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap(), d["pu"].as_u64().unwrap());
                assert_eq!(prev, book.last_u, "pu continues the previous u");
                assert_eq!(first, book.last_u + 1, "U follows the previous u");
                assert!(last >= first);
                Book::apply_levels(&mut book.bids, &d["b"]);
                Book::apply_levels(&mut book.asks, &d["a"]);
                book.last_u = last;
                let (bid, _, ask, _) = book.best();
                assert!(bid < ask, "crossed book after u={last}: {bid} >= {ask}");
                updates += 1;
            }
            "bookTicker" => {
                if d["u"].as_u64().unwrap() == book.last_u {
                    let price =
                        |k: &str| parse_fixed8(d[k].as_str().unwrap().as_bytes(), Sign::Forbidden).unwrap();
                    assert_eq!(
                        book.best(),
                        (price("b"), price("B"), price("a"), price("A")),
                        "bookTicker u={}",
                        book.last_u
                    );
                    tickers_matched += 1;
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(tickers_matched > 100, "only {tickers_matched} bookTickers matched");
}

#[test]
fn rest_klines_hold_history_before_the_stream_and_roll_up() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "2", "--history-bars", "400", "--for", "60s"]);
    let (status, body) = http_get(&sim.http, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500");
    assert_eq!(status, 200, "{body}");
    let one: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(one.len() >= 400, "{} bars", one.len());
    for pair in one.windows(2) {
        assert_eq!(
            pair[1][0].as_i64().unwrap() - pair[0][0].as_i64().unwrap(),
            60_000,
            "1m bars are contiguous"
        );
    }
    let (_, body) = http_get(&sim.http, "/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=1500");
    let five: Vec<Value> = serde_json::from_str(&body).unwrap();
    let bucket = &five[five.len() / 2];
    let t = bucket[0].as_i64().unwrap();
    let members: Vec<&Value> =
        one.iter().filter(|b| (t..t + 300_000).contains(&b[0].as_i64().unwrap())).collect();
    assert_eq!(members.len(), 5);
    assert_eq!(num(&bucket[1]), num(&members[0][1]));
    assert_eq!(num(&bucket[2]), members.iter().map(|b| num(&b[2])).max().unwrap());
    assert_eq!(num(&bucket[3]), members.iter().map(|b| num(&b[3])).min().unwrap());
    assert_eq!(num(&bucket[4]), num(&members[4][4]));
    assert_eq!(num(&bucket[5]), members.iter().map(|b| num(&b[5])).sum::<i128>());
    // startTime answers forward from the start; limit caps.
    let start = one[10][0].as_i64().unwrap();
    let (_, body) =
        http_get(&sim.http, &format!("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime={start}&limit=3"));
    let page: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        page.iter().map(|b| b[0].as_i64().unwrap()).collect::<Vec<_>>(),
        vec![start, start + 60_000, start + 120_000]
    );
}

#[test]
fn exchange_info_carries_filters_brackets_and_rate_limits() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "25", "--for", "60s"]);
    let (status, body) = http_get(&sim.http, "/fapi/v1/exchangeInfo");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");
    let symbols = info["symbols"].as_array().unwrap();
    assert_eq!(symbols.len(), 25);
    for s in symbols {
        let filters = s["filters"].as_array().unwrap();
        let kinds: Vec<&str> = filters.iter().map(|f| f["filterType"].as_str().unwrap()).collect();
        for want in ["PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL"] {
            assert!(kinds.contains(&want), "{} lacks {want}", s["symbol"]);
        }
        let tick = num(&filters[0]["tickSize"]);
        assert!(tick > 0);
        let brackets = s["leverageBrackets"].as_array().unwrap();
        assert!(brackets.len() > 3);
        assert!(brackets
            .windows(2)
            .all(|w| w[0]["maintMarginRatio"].as_f64() < w[1]["maintMarginRatio"].as_f64()));
    }
    // Binance serves leverage brackets signed only (USER_DATA): unsigned, the key is missing.
    let (status, body) = http_get(&sim.http, "/fapi/v1/leverageBracket?symbol=ETHUSDT");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("-2015"), "{body}");
}

#[test]
fn rest_weight_overspend_gets_429() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "1", "--rest-weight-limit", "12", "--for", "60s"]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(http_get(&sim.http, "/fapi/v1/depth?symbol=BTCUSDT&limit=100").0);
        // weight 5
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    let (_, body) = http_get(&sim.http, "/fapi/v1/depth?symbol=BTCUSDT&limit=100");
    assert!(body.contains("-1003"), "{body}");
}

#[test]
fn bad_rest_requests_get_binance_errors() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "1", "--for", "60s"]);
    let cases = [
        ("/fapi/v1/klines?interval=1m", 400, "-1102"),
        ("/fapi/v1/klines?symbol=BTCUSDT&interval=7m", 400, "-1120"),
        ("/fapi/v1/klines?symbol=NOPE&interval=1m", 400, "-1121"),
        ("/fapi/v1/depth?symbol=BTCUSDT&limit=7", 400, "-1130"),
        ("/fapi/v1/nothing", 404, "unknown endpoint"),
    ];
    for (path, status, needle) in cases {
        let (got, body) = http_get(&sim.http, path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
}
