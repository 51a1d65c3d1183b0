//! The brain's sequencing rules, one table per rule: each case feeds records through real
//! rings (shards' and the REST worker's) into a real brain and reads its counters and the
//! requests it sent to the REST worker.

use super::*;
use crate::desk::stats::DeskStats;
use crate::desk::{Desk, TradingConfig};
use crate::ring::{ring, RingProducer};
use aegis_wire::record::{
    AggTrade, BookTicker, DepthChunk, Event, Header, Kline, Level, MarkPrice, Record, Resync, Trade,
};
use aegis_wire::{Interval, SCALE};

const SECOND_NS: u64 = 1_000_000_000;
const SYMBOL: SymbolId = SymbolId(0);

/// Where a record enters the brain.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// A shard's ring.
    Shard(usize),
    /// The REST worker's ring.
    Rest,
}

/// One record, its ring and its read time.
#[derive(Clone, Copy, Debug)]
struct Step {
    from: Entry,
    at_ns: u64,
    event: Event,
}

fn shard(ring: usize, at_s: u64, event: Event) -> Step {
    Step { from: Entry::Shard(ring), at_ns: at_s * SECOND_NS + 1, event }
}

fn rest(event: Event) -> Step {
    Step { from: Entry::Rest, at_ns: 0, event }
}

fn trade(id: u64) -> Event {
    Event::Trade(Trade {
        trade_id: id,
        price: 100 * SCALE,
        qty: SCALE,
        trade_time_ms: 1_000,
        buyer_is_maker: false,
    })
}

fn agg(id: u64) -> Event {
    // One trade per aggTrade: trade id = agg id (so trade-id gaps follow agg-id gaps).
    Event::AggTrade(AggTrade {
        agg_id: id,
        price: 100 * SCALE,
        qty: SCALE,
        first_trade_id: id,
        last_trade_id: id,
        trade_time_ms: 1_000,
        buyer_is_maker: true,
    })
}

fn kline(minute: i64) -> Event {
    let open_time_ms = minute * MINUTE_MS;
    Event::Kline(Kline {
        interval: Interval::M1,
        open_time_ms,
        close_time_ms: open_time_ms + MINUTE_MS - 1,
        first_trade_id: -1,
        last_trade_id: -1,
        open: 100 * SCALE,
        high: 101 * SCALE,
        low: 99 * SCALE,
        close: 100 * SCALE,
        volume: 10 * i128::from(SCALE),
        quote_volume: 1_000 * i128::from(SCALE),
        taker_buy_volume: 5 * i128::from(SCALE),
        taker_buy_quote_volume: 500 * i128::from(SCALE),
        trades: 3,
        closed: true,
    })
}

fn ticker(u: u64, bid: i64, ask: i64) -> Event {
    Event::BookTicker(BookTicker {
        update_id: u,
        bid_price: bid * SCALE,
        bid_qty: SCALE,
        ask_price: ask * SCALE,
        ask_qty: SCALE,
        transaction_time_ms: 1_000,
    })
}

fn mark() -> Event {
    Event::MarkPrice(MarkPrice {
        mark_price: 100 * SCALE,
        index_price: 100 * SCALE,
        estimated_settle_price: 100 * SCALE,
        funding_rate: 100,
        next_funding_time_ms: 8 * 3_600_000,
    })
}

/// A depth update (or, with `snapshot`, a REST snapshot whose `lastUpdateId` is `last`) with
/// one bid at `bid` and one ask at `ask`, quantity 1.
fn depth(first: u64, last: u64, prev: i64, snapshot: bool, (bid, ask): (i64, i64)) -> Event {
    let mut levels = [Level::default(); aegis_wire::record::DEPTH_LEVELS_PER_CHUNK];
    levels[0] = Level { price: bid * SCALE, qty: SCALE };
    levels[1] = Level { price: ask * SCALE, qty: SCALE };
    Event::Depth(DepthChunk {
        first_update_id: first,
        final_update_id: last,
        prev_final_update_id: prev,
        snapshot,
        last: true,
        bid_count: 1,
        ask_count: 1,
        levels,
        ..DepthChunk::EMPTY
    })
}

fn resync(reason: ResyncReason) -> Event {
    Event::Resync(Resync { reason })
}

/// A brain with `shards` shard rings, a REST-results ring and a REST-requests ring, all real.
struct Harness {
    brain: Brain,
    shards: Vec<RingProducer>,
    rest: RingProducer,
    requests: rtrb::Consumer<RestRequest>,
    stats: Arc<BrainStats>,
}

impl Harness {
    fn new(shards: usize, configure: impl FnOnce(&mut BrainConfig)) -> Self {
        // Gaps are counted, not fetched, unless a case asks for fills.
        let mut config = BrainConfig { fill_gaps: false, ..BrainConfig::default() };
        configure(&mut config);
        let (producers, consumers): (Vec<_>, Vec<_>) = (0..shards).map(|_| ring(64, 0, 1)).unzip();
        let (rest, rest_results) = ring(64, 0, 1);
        let (request_tx, requests) = rtrb::RingBuffer::new(64);
        let stats = Arc::new(BrainStats::new(1));
        let rules = vec![Some(aegis_trading::SymbolRules::usdm_default())];
        let desk = Desk::new(TradingConfig::default(), rules, None, Arc::new(DeskStats::default()));
        let brain = Brain::new(config, 1, consumers, rest_results, request_tx, None, desk, stats.clone());
        Self { brain, shards: producers, rest, requests, stats }
    }

    /// Feeds each step and lets the brain drain it before the next.
    fn feed(&mut self, steps: &[Step]) {
        for step in steps {
            let record = Record {
                header: Header {
                    symbol: SYMBOL,
                    event_time_ms: step.at_ns as i64 / 1_000_000,
                    recv_ns: step.at_ns,
                },
                event: step.event,
            };
            let ring = match step.from {
                Entry::Shard(i) => &mut self.shards[i],
                Entry::Rest => &mut self.rest,
            };
            assert!(ring.push(&record), "{step:?} did not fit its ring");
            assert_eq!(self.brain.poll_once(), 1, "{step:?} was not drained");
        }
    }

    /// The requests the brain sent the REST worker since the last call.
    fn requests(&mut self) -> Vec<RestRequest> {
        std::iter::from_fn(|| self.requests.pop().ok()).collect()
    }

    fn symbol(&self) -> &stats::SymbolStats {
        &self.stats.symbols[0]
    }
}

fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[test]
fn repeated_or_older_events_are_dropped_as_duplicates() {
    // (case, records on shard 0 one second apart, duplicates dropped, trade-id gap)
    let cases = [
        ("trades in order", vec![trade(1), trade(2), trade(3)], 0, 0),
        ("a trade repeated", vec![trade(1), trade(2), trade(2), trade(3)], 1, 0),
        ("an older trade after a skip", vec![trade(1), trade(3), trade(2)], 1, 1),
        ("an aggTrade repeated", vec![agg(7), agg(8), agg(8)], 1, 0),
        (
            "a bookTicker update id repeated or older",
            vec![ticker(5, 99, 101), ticker(5, 99, 101), ticker(4, 99, 101), ticker(6, 99, 101)],
            2,
            0,
        ),
        ("a closed kline repeated", vec![kline(1), kline(2), kline(2), kline(1)], 2, 0),
        ("mark prices in time order", vec![mark(), mark()], 0, 0),
    ];
    for (case, events, duplicates, gap) in cases {
        let mut h = Harness::new(1, |_| {});
        let steps: Vec<Step> = events.iter().enumerate().map(|(t, e)| shard(0, t as u64, *e)).collect();
        h.feed(&steps);
        assert_eq!(get(&h.symbol().duplicates_dropped), duplicates, "{case}: duplicates");
        assert_eq!(get(&h.symbol().trade_id_gaps), gap, "{case}: trade-id gap");
        assert_eq!(get(&h.symbol().events), events.len() as u64, "{case}: every event counted");
    }
    // Same event time twice: the second mark price is a duplicate.
    let mut h = Harness::new(1, |_| {});
    h.feed(&[shard(0, 1, mark()), shard(0, 1, mark()), shard(0, 2, mark())]);
    assert_eq!(get(&h.symbol().duplicates_dropped), 1, "a mark price at the same event time");
}

#[test]
fn a_symbol_moving_between_rings_keeps_its_trades_in_order() {
    // While a symbol moves, both shards deliver it; the new ring may run ahead. (case, steps,
    // duplicates dropped, trade-id gap, last trade applied)
    let cases = [
        (
            "the new ring runs ahead: held back until the old ring's backlog catches up",
            vec![
                shard(0, 0, trade(1)),
                shard(1, 0, trade(3)),
                shard(0, 0, trade(2)),
                shard(0, 0, trade(3)),
                shard(1, 0, trade(4)),
            ],
            1,
            0,
            4,
        ),
        (
            "the new ring follows on: taken at once, and it leads from then on",
            vec![shard(0, 0, trade(1)), shard(1, 0, trade(2)), shard(0, 0, trade(2)), shard(1, 0, trade(3))],
            1,
            0,
            3,
        ),
        (
            "the old ring went silent past its patience: the skip is taken and counted",
            vec![shard(0, 0, trade(1)), shard(1, 3, trade(5))],
            0,
            3,
            5,
        ),
        (
            "the leading ring skips ahead: a real gap, counted",
            vec![shard(0, 0, trade(1)), shard(0, 0, trade(4))],
            0,
            2,
            4,
        ),
    ];
    for (case, steps, duplicates, gap, last) in cases {
        let mut h = Harness::new(2, |c| c.flow_from_agg_trades = false);
        h.feed(&steps);
        assert_eq!(get(&h.symbol().duplicates_dropped), duplicates, "{case}: duplicates");
        assert_eq!(get(&h.symbol().trade_id_gaps), gap, "{case}: trade-id gap");
        assert_eq!(h.brain.core.states[0].last_trade_id, Some(last), "{case}: last trade applied");
    }
    // aggTrades follow the same hand-over: a skip from the other ring waits for the leader.
    let mut h = Harness::new(2, |_| {});
    h.feed(&[shard(0, 0, agg(1)), shard(1, 0, agg(3)), shard(0, 0, agg(2)), shard(0, 0, agg(3))]);
    assert_eq!(get(&h.symbol().agg_ids_skipped), 0, "the held-back aggTrade opened no hole");
    assert_eq!(h.brain.core.states[0].last_agg_id, Some(3));
}

#[test]
fn skipped_agg_trades_are_tracked_until_they_arrive_or_are_filled() {
    // (case, steps, skipped, recovered, still missing, duplicates)
    let cases = [
        ("no skip", vec![shard(0, 0, agg(1)), shard(0, 0, agg(2))], 0, 0, 0, 0),
        ("a skip stays open", vec![shard(0, 0, agg(1)), shard(0, 0, agg(4))], 2, 0, 2, 0),
        (
            "a reordered aggTrade closes its hole once",
            vec![shard(0, 0, agg(1)), shard(0, 0, agg(3)), shard(0, 0, agg(2)), shard(0, 0, agg(2))],
            1,
            1,
            0,
            1,
        ),
        (
            "a REST fill closes the hole; its page's overlap is no duplicate",
            vec![
                shard(0, 0, agg(1)),
                shard(0, 0, agg(4)),
                rest(agg(1)),
                rest(agg(2)),
                rest(agg(3)),
                rest(resync(ResyncReason::TradesFilled)),
            ],
            2,
            2,
            0,
            0,
        ),
    ];
    for (case, steps, skipped, recovered, missing, duplicates) in cases {
        let mut h = Harness::new(1, |_| {});
        h.feed(&steps);
        let s = h.symbol();
        assert_eq!(get(&s.agg_ids_skipped), skipped, "{case}: skipped");
        assert_eq!(get(&s.agg_ids_recovered), recovered, "{case}: recovered");
        assert_eq!(get(&s.agg_ids_missing), missing, "{case}: missing");
        assert_eq!(get(&s.duplicates_dropped), duplicates, "{case}: duplicates");
        assert_eq!(get(&s.trade_id_gaps), skipped, "{case}: one trade per aggTrade");
    }
}

#[test]
fn a_hole_is_fetched_only_after_its_patience_and_given_up_once_the_fill_ends() {
    let mut h = Harness::new(1, |c| c.fill_gaps = true);
    h.feed(&[shard(0, 0, agg(1)), shard(0, 0, agg(5))]);
    assert_eq!(h.requests(), vec![], "a reordered message may still come");
    h.feed(&[shard(0, 1, agg(6))]);
    assert_eq!(h.requests(), vec![RestRequest::AggTrades { symbol: SYMBOL, from_id: 2, to_id: 4 }]);
    h.feed(&[shard(0, 2, agg(7))]);
    assert_eq!(h.requests(), vec![], "one request per hole");
    // The exchange no longer has id 3: the fill ends without it.
    h.feed(&[rest(agg(2)), rest(agg(4)), rest(resync(ResyncReason::TradesFilled))]);
    let s = h.symbol();
    assert_eq!((get(&s.agg_ids_recovered), get(&s.agg_ids_unrecovered), get(&s.agg_ids_missing)), (2, 1, 0));
}

#[test]
fn missing_minutes_are_filled_before_later_bars_close() {
    // (case, fill_gaps, steps, requests expected, bars closed, gaps detected, gaps filled)
    let klines = |start: i64, end: i64| RestRequest::Klines {
        symbol: SYMBOL,
        start_ms: start * MINUTE_MS,
        end_ms: end,
    };
    let cases = [
        ("minutes in order", true, vec![shard(0, 0, kline(1)), shard(0, 0, kline(2))], vec![], 2, 0, 0),
        (
            "one missing minute is asked for and the bars after it wait",
            true,
            vec![shard(0, 0, kline(1)), shard(0, 0, kline(3)), shard(0, 0, kline(4))],
            vec![klines(2, 3 * MINUTE_MS - 1)],
            1,
            1,
            0,
        ),
        (
            "the fill arrives: held bars close after it, in order",
            true,
            vec![
                shard(0, 0, kline(1)),
                shard(0, 0, kline(4)),
                shard(0, 0, kline(5)),
                rest(kline(2)),
                rest(kline(3)),
                rest(resync(ResyncReason::GapFilled)),
            ],
            vec![klines(2, 4 * MINUTE_MS - 1)],
            5,
            1,
            1,
        ),
        (
            "no REST worker: the gap is counted and bars go on",
            false,
            vec![shard(0, 0, kline(1)), shard(0, 0, kline(4))],
            vec![],
            2,
            1,
            0,
        ),
        (
            "a reconnect asks for every minute since the last",
            true,
            vec![shard(0, 0, kline(1)), shard(0, 0, resync(ResyncReason::Reconnect))],
            vec![klines(2, i64::MAX)],
            1,
            1,
            0,
        ),
    ];
    for (case, fill_gaps, steps, requests, bars, detected, filled) in cases {
        let mut h = Harness::new(1, |c| c.fill_gaps = fill_gaps);
        h.feed(&steps);
        assert_eq!(h.requests(), requests, "{case}: requests");
        assert_eq!(get(&h.symbol().bars_closed), bars, "{case}: bars closed");
        assert_eq!(get(&h.stats.gaps_detected), detected, "{case}: gaps detected");
        assert_eq!(get(&h.stats.gaps_filled), filled, "{case}: gaps filled");
    }
}

#[test]
fn the_book_asks_for_a_snapshot_once_and_again_after_a_gap() {
    let snapshot = RestRequest::Depth { symbol: SYMBOL };
    // (case, steps, requests, in sync at the end, gaps detected)
    let cases = [
        (
            "diffs before any snapshot ask for one, once",
            vec![
                shard(0, 0, depth(90, 95, 89, false, (99, 101))),
                shard(0, 0, depth(96, 99, 95, false, (99, 101))),
            ],
            vec![snapshot],
            false,
            0,
        ),
        (
            "a snapshot bridged by the buffered diffs syncs the book",
            vec![
                shard(0, 0, depth(90, 95, 89, false, (99, 101))),
                shard(0, 0, depth(96, 105, 95, false, (99, 101))),
                rest(depth(100, 100, -1, true, (98, 102))),
                shard(0, 0, depth(106, 110, 105, false, (99, 101))),
            ],
            vec![snapshot],
            true,
            0,
        ),
        (
            "a diff that does not follow on desyncs and asks again",
            vec![
                shard(0, 0, depth(96, 105, 95, false, (99, 101))),
                rest(depth(100, 100, -1, true, (98, 102))),
                shard(0, 0, depth(120, 125, 115, false, (99, 101))),
            ],
            vec![snapshot, snapshot],
            false,
            1,
        ),
        (
            "a reconnect desyncs the book and asks again",
            vec![
                shard(0, 0, depth(96, 105, 95, false, (99, 101))),
                rest(depth(100, 100, -1, true, (98, 102))),
                shard(0, 0, resync(ResyncReason::Reconnect)),
            ],
            vec![
                snapshot,
                RestRequest::Klines { symbol: SYMBOL, start_ms: i64::MIN, end_ms: i64::MAX },
                snapshot,
            ],
            false,
            0,
        ),
    ];
    for (case, steps, requests, in_sync, gaps) in cases {
        let mut h = Harness::new(1, |c| c.books = true);
        h.feed(&steps);
        assert_eq!(h.requests(), requests, "{case}: requests");
        let book = h.brain.core.states[0].book.as_deref().map(Book::state);
        assert_eq!(matches!(book, Some(SyncState::Synced { .. })), in_sync, "{case}: in sync");
        assert_eq!(get(&h.stats.gaps_detected), gaps, "{case}: gaps");
    }
}

#[test]
fn a_book_ticker_is_checked_against_the_synced_book() {
    // (case, ticker (u, bid, ask), matches, mismatches)
    let cases = [
        ("same update, same top", (105, 99, 101), 1, 0),
        ("same update, another top", (105, 98, 101), 0, 1),
        ("another update: not compared", (104, 98, 101), 0, 0),
    ];
    for (case, (u, bid, ask), matches, mismatches) in cases {
        let mut h = Harness::new(1, |c| c.books = true);
        h.feed(&[
            shard(0, 0, depth(96, 105, 95, false, (99, 101))),
            rest(depth(100, 100, -1, true, (98, 102))),
            shard(0, 0, ticker(u, bid, ask)),
        ]);
        let s = h.symbol();
        assert_eq!(
            (get(&s.book_ticker_matches), get(&s.book_ticker_mismatches)),
            (matches, mismatches),
            "{case}"
        );
    }
}
