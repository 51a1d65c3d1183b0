//! Every message of every shared capture parses into records; field values of a sample of
//! each kind equal an independent reading (serde_json + the exact decimal parser).

mod common;

use aegis::feed::binance::{parse_message, Parsed};
use aegis_wire::{parse_fixed8, parse_fixed8_i128, Event, EventKind, Record, Sign, SymbolTable};
use common::{envelopes, shared_data};
use serde_json::Value;
use std::collections::BTreeMap;

fn px(v: &Value) -> i64 {
    parse_fixed8(v.as_str().unwrap().as_bytes(), Sign::Allowed).unwrap()
}

fn vol(v: &Value) -> i128 {
    parse_fixed8_i128(v.as_str().unwrap().as_bytes(), Sign::Forbidden).unwrap()
}

/// Checks one parsed message against serde_json's reading of the same text.
fn check_fields(data: &Value, records: &[Record]) {
    match records[0].event {
        Event::MarkPrice(m) => {
            assert_eq!(
                (m.mark_price, m.index_price, m.funding_rate, m.next_funding_time_ms),
                (px(&data["p"]), px(&data["i"]), px(&data["r"]), data["T"].as_i64().unwrap())
            );
        }
        Event::Trade(t) => {
            assert_eq!(
                (t.trade_id, t.price, t.qty),
                (data["t"].as_u64().unwrap(), px(&data["p"]), px(&data["q"]))
            );
            assert_eq!(
                (t.trade_time_ms, t.buyer_is_maker),
                (data["T"].as_i64().unwrap(), data["m"].as_bool().unwrap())
            );
        }
        Event::AggTrade(a) => {
            assert_eq!(
                (a.agg_id, a.price, a.qty),
                (data["a"].as_u64().unwrap(), px(&data["p"]), px(&data["q"]))
            );
            assert_eq!(
                (a.first_trade_id, a.last_trade_id),
                (data["f"].as_u64().unwrap(), data["l"].as_u64().unwrap())
            );
        }
        Event::Kline(k) => {
            let d = &data["k"];
            assert_eq!(
                (k.open_time_ms, k.close_time_ms),
                (d["t"].as_i64().unwrap(), d["T"].as_i64().unwrap())
            );
            assert_eq!(
                (k.open, k.high, k.low, k.close),
                (px(&d["o"]), px(&d["h"]), px(&d["l"]), px(&d["c"]))
            );
            assert_eq!(
                (k.volume, k.quote_volume, k.taker_buy_volume),
                (vol(&d["v"]), vol(&d["q"]), vol(&d["V"]))
            );
            assert_eq!((k.trades, k.closed), (d["n"].as_u64().unwrap(), d["x"].as_bool().unwrap()));
        }
        Event::BookTicker(b) => {
            assert_eq!(b.update_id, data["u"].as_u64().unwrap());
            assert_eq!(
                (b.bid_price, b.bid_qty, b.ask_price, b.ask_qty),
                (px(&data["b"]), px(&data["B"]), px(&data["a"]), px(&data["A"]))
            );
        }
        Event::Depth(first) => {
            assert_eq!(
                (first.first_update_id, first.final_update_id),
                (data["U"].as_u64().unwrap(), data["u"].as_u64().unwrap())
            );
            assert_eq!(first.prev_final_update_id, data.get("pu").map_or(-1, |v| v.as_i64().unwrap()));
            let mut levels = Vec::new();
            for r in records {
                let Event::Depth(c) = r.event else { panic!() };
                let n = usize::from(c.bid_count + c.ask_count);
                levels.extend(c.levels[..usize::from(c.bid_count)].iter().map(|l| ('b', l.price, l.qty)));
                levels.extend(c.levels[usize::from(c.bid_count)..n].iter().map(|l| ('a', l.price, l.qty)));
            }
            let mut want = Vec::new();
            for (side, key) in [('b', "b"), ('a', "a")] {
                for l in data[key].as_array().unwrap() {
                    want.push((side, px(&l[0]), px(&l[1])));
                }
            }
            // Bids come first in every chunk, so compare per side.
            let split =
                |v: &[(char, i64, i64)], s: char| v.iter().filter(|l| l.0 == s).copied().collect::<Vec<_>>();
            assert_eq!(split(&levels, 'b'), split(&want, 'b'));
            assert_eq!(split(&levels, 'a'), split(&want, 'a'));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_capture_message_parses_and_sampled_fields_match() {
    let dir = shared_data().join("ws");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.to_str().is_some_and(|s| s.ends_with(".gz") || s.ends_with(".ws.txt")));
    files.sort();
    assert_eq!(files.len(), 7);
    for file in files {
        let messages = envelopes(&file);
        let mut table = SymbolTable::with_capacity(64);
        let mut want_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &messages {
            let v: Value = serde_json::from_str(m).unwrap();
            let stream = v["stream"].as_str().unwrap();
            table.intern(stream.split('@').next().unwrap()).unwrap();
            let kind = aegis_wire::stream::channel_kind(stream.split_once('@').unwrap().1).unwrap();
            *want_by_kind.entry(kind.name()).or_default() += 1;
        }
        let mut got_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let mut records = Vec::new();
            let parsed = parse_message(m.as_bytes(), None, &table, 1, &mut |r| records.push(*r))
                .unwrap_or_else(|e| panic!("{} message {i}: {e}\n{m}", file.display()));
            assert_eq!(parsed, Parsed::Records(records.len()));
            let last = records.last().unwrap();
            if let Event::Depth(d) = last.event {
                assert!(d.last, "the last chunk of an update says so");
            }
            let kind = last.event.kind().expect("an exchange event");
            *got_by_kind.entry(kind.name()).or_default() += 1;
            if i % 97 == 0 || kind == EventKind::Kline || kind == EventKind::AggTrade {
                let v: Value = serde_json::from_str(m).unwrap();
                check_fields(&v["data"], &records);
            }
        }
        assert_eq!(got_by_kind, want_by_kind, "{}", file.display());
    }
}

#[test]
fn documentation_examples_of_every_kind_parse() {
    let dir = shared_data().join("doc_examples");
    let mut table = SymbolTable::with_capacity(8);
    table.intern("BTCUSDT").unwrap();
    table.intern("BNBUSDT").unwrap();
    let mut kinds = Vec::new();
    for name in [
        "agg_trade",
        "book_ticker",
        "depth_update",
        "kline_stream_closed",
        "kline_stream_open",
        "liquidation",
        "mark_price",
        "trade",
    ] {
        let path = dir.join(format!(
            "nautilus_usdm_{name}{}.json",
            if name.starts_with("kline") { "" } else { "_stream" }
        ));
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut records = Vec::new();
        parse_message(&text, None, &table, 0, &mut |r| records.push(*r))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        kinds.push(format!("{:?}", std::mem::discriminant(&records[0].event)));
        if let Event::MarkPrice(m) = records[0].event {
            assert_eq!(
                (m.mark_price, m.funding_rate, m.next_funding_time_ms),
                (1_179_415_000_000, 38_167, 1_562_306_400_000)
            );
        }
        if let Event::ForceOrder(f) = records[0].event {
            assert_eq!(
                (f.side, f.avg_price, f.filled_qty),
                (aegis_wire::Side::Sell, 991_012_345_678, 1_400_000)
            );
        }
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), 7, "every event kind covered");
}

/// Today's payload shapes, as exchange-sim's synthetic market emits them (aggTrade with `nq`
/// after `q`; markPrice with `ap` and `st`): every aggTrade matches the fast template whole
/// (no message falls to the general scanner), and every record agrees with serde_json's
/// reading of the same message.
#[test]
fn todays_shapes_stay_on_the_fast_path_and_read_right() {
    use exchange_sim::synthetic::{Synthetic, SyntheticConfig};
    let config = SyntheticConfig { symbols: 2, history_bars: 0, ..SyntheticConfig::default() };
    let mut dump = Vec::new();
    Synthetic::new(&config)
        .dump(2, &["aggTrade".to_string(), "markPrice@1s".to_string()], &mut dump)
        .unwrap();
    let text = String::from_utf8(dump).unwrap();
    let messages: Vec<&str> = text.lines().filter_map(|l| l.split_once(' ').map(|(_, m)| m)).collect();
    let mut table = SymbolTable::with_capacity(4);
    table.intern("BTCUSDT").unwrap();
    table.intern("ETHUSDT").unwrap();
    let (mut aggs, mut marks) = (0, 0);
    for m in &messages {
        let mut records = Vec::new();
        parse_message(m.as_bytes(), None, &table, 0, &mut |r| records.push(*r)).unwrap();
        let v: Value = serde_json::from_str(m).unwrap();
        check_fields(&v["data"], &records);
        if m.contains("\"e\":\"aggTrade\"") {
            assert!(m.contains("\"nq\":"), "today's shape: {m}");
            let payload = aegis::feed::fast::hot_envelope(m.as_bytes()).expect("a hot envelope").payload;
            let mut templated = Vec::new();
            let used = aegis::feed::fast::agg_trade(payload, &table, 0, &mut |r| templated.push(*r));
            assert_eq!(used, Some(payload.len()), "the template matched the whole payload: {m}");
            assert_eq!(templated, records);
            aggs += 1;
        } else {
            assert!(m.contains("\"ap\":") && m.contains("\"st\":1"), "today's shape: {m}");
            assert!(matches!(records[0].event, Event::MarkPrice(_)), "{m}");
            marks += 1;
        }
    }
    assert!(aggs > 100 && marks >= 4, "{aggs} aggTrades, {marks} markPrices");
}
