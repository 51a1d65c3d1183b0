//! The baseline pipeline of SPEC §11: a tokio multi-threaded runtime, tokio-tungstenite,
//! serde_json into owned structs, an unbounded tokio mpsc channel, and a consumer thread
//! running the same brain and desk as the engine (its records go through a ring into
//! `Brain::poll_once`, as the engine's do). It measures the same four moments per event:
//! the message handed over by tokio-tungstenite (its read), parsed, taken by the consumer,
//! decided.

use crate::owned::{AggTradeMsg, BookTickerMsg, Envelope, KlineMsg, MarkPriceMsg};
use aegis::brain::stats::BrainStats;
use aegis::brain::{Brain, BrainConfig};
use aegis::desk::stats::DeskStats;
use aegis::desk::{Desk, TradingConfig};
use aegis::latency::{StageLatency, Stamps};
use aegis::ring::ring;
use aegis::ring::Idle;
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, Sign};
use aegis_wire::record::{AggTrade, BookTicker, Event, Header, Interval, Kline, MarkPrice, Record};
use aegis_wire::{SymbolId, SymbolTable};
use futures_lite::StreamExt;
use std::sync::Arc;

/// One parsed message on its way to the consumer.
enum Owned {
    AggTrade(AggTradeMsg),
    BookTicker(BookTickerMsg),
    Kline(KlineMsg),
    MarkPrice(MarkPriceMsg),
}

/// A message with its read and parse times.
struct Timed {
    msg: Owned,
    read_ns: u64,
    parsed_ns: u64,
}

/// What the baseline needs.
pub struct BaselineConfig {
    /// WebSocket URLs, one per connection.
    pub urls: Vec<String>,
    /// Uppercase symbols, in the engine's order.
    pub symbols: Vec<String>,
    /// Closed history klines (combined-stream envelopes) applied before the feed starts.
    pub history: Vec<String>,
    /// Messages the feed will send; the consumer stops after this many.
    pub events: u64,
    /// Events left out of the histograms at start.
    pub skip_events: u64,
    /// Analytics sizes (as the engine's).
    pub features: aegis_analytics::FeatureConfig,
    /// Trading settings (as the engine's).
    pub trading: TradingConfig,
    /// Symbol rules (as exchangeInfo gives the engine).
    pub rules: Vec<Option<aegis_trading::SymbolRules>>,
}

/// What the baseline measured.
pub struct BaselineReport {
    /// Per-stage latency.
    pub latency: StageLatency,
    /// Messages serde_json refused or the conversion did not know.
    pub parse_errors: u64,
    /// Events the brain applied from the feed (a check that it did the same work).
    pub brain_events: u64,
}

/// Why the baseline could not run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Threads or the runtime.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A symbol could not be interned.
    #[error("symbol {0}")]
    Symbol(String),
    /// A connection failed.
    #[error("connecting {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Runs the baseline: connects, calls `connected` once every connection is up (the feeder's
/// go), and returns when the consumer has handled `events` messages.
pub fn run(config: BaselineConfig, connected: impl FnOnce()) -> Result<BaselineReport, BaselineError> {
    let mut table = SymbolTable::with_capacity(config.symbols.len());
    for s in &config.symbols {
        table.intern(s).map_err(|e| BaselineError::Symbol(format!("{s}: {e}")))?;
    }
    let table = Arc::new(table);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Timed>();
    let consumer = {
        let table = table.clone();
        let (history, events, skip) = (config.history.clone(), config.events, config.skip_events);
        let (features, trading, rules) = (config.features, config.trading, config.rules.clone());
        std::thread::Builder::new().name("base-brain".into()).spawn(move || {
            let (mut producer, consumer) = ring(1 << 12, 0, table.len());
            let stats = Arc::new(BrainStats::new(table.len()));
            let desk = Desk::new(trading, rules, None, Arc::new(DeskStats::default()));
            let brain_config = BrainConfig {
                bars_from_trades: false,
                books: false,
                core: None,
                idle: Idle::Park,
                features,
                flow_from_agg_trades: true,
                flatten_on_shutdown: false,
                prints_from_klines: false,
                fill_gaps: false,
                latency_skip_events: 0,
            };
            let mut brain = Brain::offline(brain_config, table.len(), consumer, desk, stats.clone());
            for envelope in &history {
                let _ = aegis::feed::binance::parse_message(envelope.as_bytes(), None, &table, 0, &mut |r| {
                    producer.push(r);
                });
                brain.poll_once();
            }
            let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            let history_events: u64 = stats.events_by_kind.iter().map(load).sum();
            let mut latency = StageLatency::new(skip);
            let (mut seen, mut parse_errors) = (0u64, 0u64);
            while seen < events {
                let Some(timed) = rx.blocking_recv() else { break };
                seen += 1;
                let receipt_ns = aegis::clock::now_ns();
                match to_record(&timed, &table) {
                    Some(record) => {
                        producer.push(&record);
                        brain.poll_once();
                    }
                    None => parse_errors += 1,
                }
                let decided_ns = aegis::clock::now_ns();
                let (read_ns, parsed_ns) = (timed.read_ns, timed.parsed_ns);
                latency.record(Stamps { read_ns, parsed_ns, receipt_ns, decided_ns });
            }
            let brain_events = stats.events_by_kind.iter().map(load).sum::<u64>() - history_events;
            (latency, parse_errors, brain_events)
        })?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("base-ws").enable_all().build()?;
    let sockets = runtime.block_on(async {
        let mut sockets = Vec::new();
        for url in &config.urls {
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(|e| BaselineError::Connect { url: url.clone(), reason: e.to_string() })?;
            sockets.push(socket);
        }
        Ok::<_, BaselineError>(sockets)
    })?;
    for mut socket in sockets {
        let tx = tx.clone();
        runtime.spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let read_ns = aegis::clock::now_ns();
                let tokio_tungstenite::tungstenite::Message::Text(text) = message else { continue };
                let Some(msg) = parse(text.as_str()) else { continue };
                let parsed_ns = aegis::clock::now_ns();
                if tx.send(Timed { msg, read_ns, parsed_ns }).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    connected();
    let (latency, parse_errors, brain_events) =
        consumer.join().map_err(|_| std::io::Error::other("the baseline consumer panicked"))?;
    runtime.shutdown_background();
    Ok(BaselineReport { latency, parse_errors, brain_events })
}

/// serde_json into the owned struct the stream name says.
fn parse(text: &str) -> Option<Owned> {
    let envelope: Envelope = serde_json::from_str(text).ok()?;
    let data = envelope.data.get();
    let (_, channel) = envelope.stream.split_once('@')?;
    Some(match channel {
        "aggTrade" => Owned::AggTrade(serde_json::from_str(data).ok()?),
        "bookTicker" => Owned::BookTicker(serde_json::from_str(data).ok()?),
        c if c.starts_with("kline_") => Owned::Kline(serde_json::from_str(data).ok()?),
        c if c.starts_with("markPrice") => Owned::MarkPrice(serde_json::from_str(data).ok()?),
        _ => return None,
    })
}

/// The owned message as the engine's record (decimal strings through the same exact parser).
fn to_record(timed: &Timed, table: &SymbolTable) -> Option<Record> {
    let price = |s: &str| parse_fixed8(s.as_bytes(), Sign::Forbidden).ok();
    let signed = |s: &str| parse_fixed8(s.as_bytes(), Sign::Allowed).ok();
    let volume = |s: &str| parse_fixed8_i128(s.as_bytes(), Sign::Forbidden).ok();
    let header = |symbol: &str, event_time_ms: i64| -> Option<Header> {
        let symbol: SymbolId = table.get(symbol.as_bytes())?;
        Some(Header { symbol, event_time_ms, recv_ns: timed.read_ns })
    };
    Some(match &timed.msg {
        Owned::AggTrade(m) => Record {
            header: header(&m.s, m.event_time)?,
            event: Event::AggTrade(AggTrade {
                agg_id: m.a,
                price: price(&m.p)?,
                qty: price(&m.q)?,
                first_trade_id: m.f,
                last_trade_id: m.l,
                trade_time_ms: m.trade_time,
                buyer_is_maker: m.m,
            }),
        },
        Owned::BookTicker(m) => Record {
            header: header(&m.s, m.event_time)?,
            event: Event::BookTicker(BookTicker {
                update_id: m.u,
                bid_price: price(&m.b)?,
                bid_qty: price(&m.bid_qty)?,
                ask_price: price(&m.a)?,
                ask_qty: price(&m.ask_qty)?,
                transaction_time_ms: m.transaction_time,
            }),
        },
        Owned::Kline(m) => Record {
            header: header(&m.s, m.event_time)?,
            event: Event::Kline(Kline {
                interval: Interval::parse(m.k.i.as_bytes())?,
                open_time_ms: m.k.t,
                close_time_ms: m.k.close_time,
                first_trade_id: m.k.f,
                last_trade_id: m.k.last_trade,
                open: price(&m.k.o)?,
                high: price(&m.k.h)?,
                low: price(&m.k.l)?,
                close: price(&m.k.c)?,
                volume: volume(&m.k.v)?,
                quote_volume: volume(&m.k.q)?,
                taker_buy_volume: volume(&m.k.taker_volume)?,
                taker_buy_quote_volume: volume(&m.k.taker_quote_volume)?,
                trades: m.k.n,
                closed: m.k.x,
            }),
        },
        Owned::MarkPrice(m) => Record {
            header: header(&m.s, m.event_time)?,
            event: Event::MarkPrice(MarkPrice {
                mark_price: price(&m.p)?,
                index_price: price(&m.i)?,
                estimated_settle_price: price(&m.settle)?,
                funding_rate: signed(&m.r)?,
                next_funding_time_ms: m.next_funding,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline's conversion agrees with the engine's parser on every kind it reads.
    #[test]
    fn owned_structs_convert_to_the_engines_records() {
        let scenario = crate::scenario::Scenario::generate(&crate::scenario::ScenarioConfig {
            symbols: 2,
            seed: 3,
            channels: vec!["aggTrade".into(), "bookTicker".into(), "kline_1m".into(), "markPrice@1s".into()],
            events: 3_000,
            history_bars: 10,
        });
        let mut table = SymbolTable::with_capacity(2);
        for s in &scenario.symbols {
            table.intern(s).unwrap();
        }
        let mut kinds = std::collections::BTreeSet::new();
        for (_, envelope) in &scenario.messages {
            let mut engine = Vec::new();
            aegis::feed::binance::parse_message(envelope.as_bytes(), None, &table, 5, &mut |r| {
                engine.push(*r)
            })
            .unwrap();
            let timed = Timed { msg: parse(envelope).expect(envelope), read_ns: 5, parsed_ns: 6 };
            let baseline = to_record(&timed, &table).expect(envelope);
            assert_eq!(engine, vec![baseline], "{envelope}");
            kinds.insert(format!("{:?}", baseline.event.kind()));
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }
}
