//! Replay of recorded Binance data in every format of `shared/data/README.md`.
//!
//! WebSocket captures (hftbacktest gzip lines, cryptofeed recordings) are replayed with their
//! envelopes and payloads byte-identical to the file, in file order, timed by the recorder's
//! receive time. REST depth captures become the depth endpoint's answers. CSV series (klines,
//! trades, quotes, depth rows) and documentation-example JSON are turned into the payloads
//! Binance would have sent, with the file's decimal strings unchanged. Several files merge
//! by the exchange's event time ([`Order::EventTime`]) or by receive time, each file keeping
//! its own order ([`Order::Receipt`]).

use crate::market::{Bar, Batch, Msg, QueryError, Source, SymbolInfo};
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, Sign};
use aegis_wire::stream::parse_stream;
use aegis_wire::{EventKind, Interval};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A recorded file that could not be read, with the place and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct ReplayError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One timed message read from a file.
#[derive(Clone)]
struct Timed {
    time_ns: u64,
    msg: Msg,
}

/// A REST depth snapshot captured at `time_ns`.
#[derive(Clone)]
struct Snapshot {
    time_ns: u64,
    body: String,
}

/// Everything read from one file.
#[derive(Default)]
struct Loaded {
    msgs: Vec<Timed>,
    snapshots: Vec<(Option<String>, Snapshot)>,
}

/// A replay source over one or more recorded files (a clone replays the same messages again
/// without reading the files again).
#[derive(Clone)]
pub struct Replay {
    queue: std::collections::VecDeque<Timed>,
    streams: HashMap<String, EventKind>,
    stream_order: Vec<String>,
    snapshots: HashMap<String, Vec<Snapshot>>,
    bars: HashMap<String, BTreeMap<i64, Bar>>,
    infos: BTreeMap<String, SymbolInfo>,
    now_ns: u64,
}

/// How several recorded files are merged into one sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// By the exchange's event time: the payload's `E`, else `T`, else the kline's close
    /// time; a message with none keeps its receipt time. Ties keep receipt order.
    #[default]
    EventTime,
    /// By the recorder's receive time (ties to the earlier file), as the files were recorded:
    /// for captures whose exchange times are unreliable, and for serving a capture as it was
    /// received (exchange-sim).
    Receipt,
}

impl Replay {
    /// Loads `files` and merges them by receive time (see [`Order::Receipt`]).
    pub fn load(files: &[PathBuf]) -> Result<Self, ReplayError> {
        Self::load_ordered(files, Order::Receipt)
    }

    /// Loads `files` and merges them in `order`. In event-time order each message is timed by
    /// its exchange time, so batches and the replay's clock follow the exchange.
    pub fn load_ordered(files: &[PathBuf], order: Order) -> Result<Self, ReplayError> {
        let mut per_file = Vec::new();
        let mut snapshots: HashMap<String, Vec<Snapshot>> = HashMap::new();
        for file in files {
            let loaded = load_file(file)?;
            let file_symbol = single_symbol(&loaded.msgs);
            for (symbol, snap) in loaded.snapshots {
                let symbol = symbol.or_else(|| file_symbol.clone()).ok_or_else(|| ReplayError {
                    file: file.clone(),
                    line: 0,
                    reason: "depth snapshot with no symbol in a file of several symbols".into(),
                })?;
                snapshots.entry(symbol).or_default().push(snap);
            }
            per_file.push(loaded.msgs);
        }
        for list in snapshots.values_mut() {
            list.sort_by_key(|s| s.time_ns);
        }
        let mut queue = merge_by_time(per_file);
        if order == Order::EventTime {
            for timed in &mut queue {
                if let Some(ms) = exchange_time_ms(timed.msg.payload()) {
                    timed.time_ns = ms_to_ns(ms);
                }
            }
            // Stable: equal exchange times keep the receipt order, itself deterministic.
            queue.sort_by_key(|t| t.time_ns);
        }
        let mut replay = Self {
            queue: queue.into(),
            streams: HashMap::new(),
            stream_order: Vec::new(),
            snapshots,
            bars: HashMap::new(),
            infos: BTreeMap::new(),
            now_ns: 0,
        };
        replay.index_streams_and_symbols();
        Ok(replay)
    }

    /// Stream names in order of first appearance.
    pub fn stream_names(&self) -> &[String] {
        &self.stream_order
    }

    /// Number of messages left to replay.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }

    fn index_streams_and_symbols(&mut self) {
        let mut precision: HashMap<String, (u32, u32)> = HashMap::new();
        for timed in &self.queue {
            let msg = &timed.msg;
            if !self.streams.contains_key(&*msg.stream) {
                self.streams.insert(msg.stream.to_string(), msg.kind);
                self.stream_order.push(msg.stream.to_string());
            }
            let entry = precision.entry(msg.symbol.to_string()).or_insert((0, 0));
            observe_precision(msg.payload(), entry);
            if msg.closed_kline {
                if let Some(bar) = kline_bar(msg.payload()) {
                    self.bars.entry(msg.symbol.to_string()).or_default().insert(bar.open_time_ms, bar);
                }
            }
        }
        for symbol in self.snapshots.keys() {
            precision.entry(symbol.clone()).or_insert((2, 3));
        }
        for (symbol, (price_precision, qty_precision)) in precision {
            self.infos.insert(symbol.clone(), symbol_info(&symbol, price_precision, qty_precision));
        }
    }
}

impl Source for Replay {
    fn next_batch(&mut self) -> Option<Batch> {
        let first = self.queue.pop_front()?;
        self.now_ns = self.now_ns.max(first.time_ns);
        let time_ns = first.time_ns;
        let mut msgs = vec![first.msg];
        while self.queue.front().is_some_and(|t| t.time_ns == time_ns) {
            msgs.extend(self.queue.pop_front().map(|t| t.msg));
        }
        Some(Batch { time_ns, msgs })
    }

    fn stream_kind(&self, name: &str) -> Option<EventKind> {
        // Like Binance, any valid stream of a served symbol may be subscribed, even one the
        // recording holds no message of.
        self.streams.get(name).copied().or_else(|| {
            let stream = aegis_wire::stream::parse_stream(name)?;
            self.infos.contains_key(&stream.symbol.to_ascii_uppercase()).then_some(stream.kind)
        })
    }

    fn symbols(&self) -> Vec<SymbolInfo> {
        self.infos.values().cloned().collect()
    }

    fn bars_1m(&self, symbol: &str) -> Result<Vec<Bar>, QueryError> {
        if !self.infos.contains_key(symbol) {
            return Err(QueryError::UnknownSymbol);
        }
        Ok(self
            .bars
            .get(symbol)
            .map(|bars| bars.values().filter(|b| b.interval_ms == 60_000).copied().collect())
            .unwrap_or_default())
    }

    fn depth_snapshot(&self, symbol: &str, _limit: usize) -> Result<String, QueryError> {
        let list = self.snapshots.get(symbol).ok_or_else(|| {
            if self.infos.contains_key(symbol) {
                QueryError::Unavailable(format!("no depth snapshot recorded for {symbol}"))
            } else {
                QueryError::UnknownSymbol
            }
        })?;
        // The latest snapshot taken by now, else the first: recorded bodies are served as is.
        let pick = list.iter().rev().find(|s| s.time_ns <= self.now_ns).unwrap_or(&list[0]);
        Ok(pick.body.clone())
    }

    fn now_ms(&self) -> i64 {
        (self.now_ns / 1_000_000) as i64
    }
}

/// Merges per-file sequences by time; ties go to the earlier file; each file keeps its order.
fn merge_by_time(files: Vec<Vec<Timed>>) -> Vec<Timed> {
    let total = files.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = files.into_iter().map(|f| f.into_iter().peekable()).collect();
    let mut out = Vec::with_capacity(total);
    loop {
        let next = iters
            .iter_mut()
            .enumerate()
            .filter_map(|(i, it)| it.peek().map(|t| (t.time_ns, i)))
            .min()
            .map(|(_, i)| i);
        match next.and_then(|i| iters[i].next()) {
            Some(t) => out.push(t),
            None => return out,
        }
    }
}

/// A payload's exchange time in ms: its event time `E`, else its transaction time `T`, else
/// (a kline) the kline's close time.
fn exchange_time_ms(payload: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Times {
        #[serde(rename = "E")]
        event: Option<i64>,
        #[serde(rename = "T")]
        transaction: Option<i64>,
        k: Option<KlineTimes>,
    }
    #[derive(Deserialize)]
    struct KlineTimes {
        #[serde(rename = "T")]
        close: Option<i64>,
    }
    let times: Times = serde_json::from_str(payload).ok()?;
    times.event.or(times.transaction).or(times.k.and_then(|k| k.close)).filter(|ms| *ms > 0)
}

fn single_symbol(msgs: &[Timed]) -> Option<String> {
    let first = msgs.first()?.msg.symbol.clone();
    msgs.iter().all(|t| t.msg.symbol == first).then(|| first.to_string())
}

/// Reads one file in whichever recorded format it is.
fn load_file(path: &Path) -> Result<Loaded, ReplayError> {
    let err = |line: usize, reason: String| ReplayError { file: path.to_path_buf(), line, reason };
    let raw = std::fs::read(path).map_err(|e| err(0, e.to_string()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut out)
            .map_err(|e| err(0, format!("gzip: {e}")))?;
        out
    } else {
        String::from_utf8(raw).map_err(|e| err(0, format!("not UTF-8: {e}")))?
    };
    let first_line = text.lines().next().unwrap_or("");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut reader = FileReader { path, loaded: Loaded::default() };
    if first_line.contains(" <-> ") {
        reader.cryptofeed_ws(&text)?;
    } else if first_line.starts_with("http") && first_line.contains(" -> ") {
        reader.cryptofeed_rest(&text)?;
    } else if first_line.trim_start().starts_with('{') && !first_line.contains("\"stream\"") {
        reader.doc_example(&text)?;
    } else if first_line.split_once(' ').is_some_and(|(t, _)| t.bytes().all(|b| b.is_ascii_digit())) {
        reader.hftbacktest(&text)?;
    } else if name.ends_with(".csv") {
        reader.csv(&text, name)?;
    } else {
        return Err(err(1, "unrecognised format (see shared/data/README.md for the accepted ones)".into()));
    }
    Ok(reader.loaded)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    stream: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct SnapshotProbe<'a> {
    #[serde(rename = "lastUpdateId")]
    _last_update_id: u64,
    #[serde(borrow, default)]
    symbol: Option<&'a str>,
}

struct FileReader<'p> {
    path: &'p Path,
    loaded: Loaded,
}

impl FileReader<'_> {
    fn err(&self, line: usize, reason: impl Into<String>) -> ReplayError {
        ReplayError { file: self.path.to_path_buf(), line, reason: reason.into() }
    }

    /// A JSON line that is either an envelope or a REST snapshot.
    fn json_line(&mut self, line_no: usize, time_ns: u64, json: &str) -> Result<(), ReplayError> {
        if let Ok(env) = serde_json::from_str::<Envelope<'_>>(json) {
            let stream = parse_stream(env.stream)
                .ok_or_else(|| self.err(line_no, format!("unknown stream {:?}", env.stream)))?;
            let data = env.data.get();
            let start = data.as_ptr() as usize - json.as_ptr() as usize;
            let symbol: Arc<str> = stream.symbol.to_ascii_uppercase().into();
            let mut msg = Msg::new(env.stream.into(), stream.kind, symbol, data);
            // Keep the recorded envelope bytes exactly.
            msg.envelope = json.to_string();
            msg.data = start..start + data.len();
            self.loaded.msgs.push(Timed { time_ns, msg });
            return Ok(());
        }
        match serde_json::from_str::<SnapshotProbe<'_>>(json) {
            Ok(probe) => {
                let symbol = probe.symbol.map(str::to_string);
                self.loaded.snapshots.push((symbol, Snapshot { time_ns, body: json.to_string() }));
                Ok(())
            }
            Err(e) => Err(self.err(line_no, format!("neither a stream envelope nor a depth snapshot: {e}"))),
        }
    }

    fn hftbacktest(&mut self, text: &str) -> Result<(), ReplayError> {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let (ts, json) = line.split_once(' ').ok_or_else(|| self.err(i + 1, "expected '<ns> <json>'"))?;
            let time_ns = ts.parse::<u64>().map_err(|e| self.err(i + 1, format!("bad timestamp: {e}")))?;
            self.json_line(i + 1, time_ns, json)?;
        }
        Ok(())
    }

    fn cryptofeed_ws(&mut self, text: &str) -> Result<(), ReplayError> {
        for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
            let (ts, json) =
                line.split_once(": ").ok_or_else(|| self.err(i + 1, "expected '<secs>: <json>'"))?;
            let time_ns =
                seconds_to_ns(ts).ok_or_else(|| self.err(i + 1, format!("bad timestamp {ts:?}")))?;
            self.json_line(i + 1, time_ns, json)?;
        }
        Ok(())
    }

    fn cryptofeed_rest(&mut self, text: &str) -> Result<(), ReplayError> {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (url, rest) =
                line.split_once(" -> ").ok_or_else(|| self.err(i + 1, "expected '<url> -> …'"))?;
            let (ts, json) =
                rest.split_once(": ").ok_or_else(|| self.err(i + 1, "expected '<secs>: <json>'"))?;
            let time_ns =
                seconds_to_ns(ts).ok_or_else(|| self.err(i + 1, format!("bad timestamp {ts:?}")))?;
            let symbol = url
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("symbol="))
                .ok_or_else(|| self.err(i + 1, "URL has no symbol parameter"))?;
            serde_json::from_str::<SnapshotProbe<'_>>(json)
                .map_err(|e| self.err(i + 1, format!("not a depth snapshot: {e}")))?;
            let snap = Snapshot { time_ns, body: json.to_string() };
            self.loaded.snapshots.push((Some(symbol.to_ascii_uppercase()), snap));
        }
        Ok(())
    }

    fn doc_example(&mut self, text: &str) -> Result<(), ReplayError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| self.err(e.line(), format!("malformed JSON: {e}")))?;
        let event = value["e"].as_str().ok_or_else(|| self.err(1, "event has no \"e\""))?;
        let symbol = value["s"].as_str().or_else(|| value["o"]["s"].as_str()).unwrap_or_default();
        let channel = match event {
            "trade" => "trade".to_string(),
            "aggTrade" => "aggTrade".to_string(),
            "bookTicker" => "bookTicker".to_string(),
            "depthUpdate" => "depth@100ms".to_string(),
            "markPriceUpdate" => "markPrice@1s".to_string(),
            "forceOrder" => "forceOrder".to_string(),
            "kline" => format!("kline_{}", value["k"]["i"].as_str().unwrap_or("1m")),
            other => {
                return Err(self.err(1, format!("event type {other:?} is not a stream this simulator serves")))
            }
        };
        let stream = format!("{}@{channel}", symbol.to_ascii_lowercase());
        let kind = parse_stream(&stream).ok_or_else(|| self.err(1, format!("bad stream {stream:?}")))?.kind;
        let time_ns = value["E"].as_u64().unwrap_or(0).saturating_mul(1_000_000);
        let msg = Msg::new(stream.into(), kind, symbol.to_ascii_uppercase().into(), text.trim_end());
        self.loaded.msgs.push(Timed { time_ns, msg });
        Ok(())
    }

    fn csv(&mut self, text: &str, name: &str) -> Result<(), ReplayError> {
        let first = text.lines().next().unwrap_or("");
        match first {
            h if h.starts_with("open_time_ms,") => self.kline_csv(text, name, true),
            h if h.starts_with("timestamp_ms,trade_id,") => self.trades_csv(text, name),
            h if h.starts_with("timestamp_ms,symbol,bid,") => self.quotes_csv(text),
            h if h.starts_with("symbol,timestamp,first_update_id,") => self.depth_csv(text),
            h if h.split(',').count() == 12 && h.bytes().next().is_some_and(|b| b.is_ascii_digit()) => {
                self.kline_csv(text, name, false)
            }
            _ => Err(self.err(1, "unrecognised CSV header")),
        }
    }

    fn symbol_from_name(&self, name: &str) -> Result<String, ReplayError> {
        name.split(['_', '-', '.'])
            .find(|t| t.len() >= 5 && t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            .filter(|t| !t.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .ok_or_else(|| self.err(0, "cannot tell the symbol from the file name"))
    }

    fn kline_csv(&mut self, text: &str, name: &str, header: bool) -> Result<(), ReplayError> {
        let symbol = self.symbol_from_name(name)?;
        let interval = name
            .split(['_', '-', '.'])
            .find_map(|t| Interval::parse(t.as_bytes()))
            .ok_or_else(|| self.err(0, "cannot tell the kline interval from the file name"))?;
        let stream: Arc<str> = format!("{}@kline_{}", symbol.to_ascii_lowercase(), interval.code()).into();
        let symbol_arc: Arc<str> = symbol.as_str().into();
        for (i, line) in text.lines().enumerate().skip(usize::from(header)).filter(|(_, l)| !l.is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            if cols.len() < 6 {
                return Err(self.err(i + 1, format!("expected at least 6 columns, found {}", cols.len())));
            }
            let open_time: i64 = cols[0].parse().map_err(|e| self.err(i + 1, format!("open time: {e}")))?;
            for (col, what) in cols[1..6].iter().zip(["open", "high", "low", "close", "volume"]) {
                parse_fixed8_i128(col.as_bytes(), Sign::Forbidden)
                    .map_err(|e| self.err(i + 1, format!("{what} {col:?}: {e}")))?;
            }
            let close_time = open_time + interval.millis() - 1;
            let get = |idx: usize, default: &'static str| cols.get(idx).copied().unwrap_or(default);
            let payload = format!(
                "{{\"e\":\"kline\",\"E\":{e},\"s\":\"{symbol}\",\"k\":{{\"t\":{open_time},\"T\":{close_time},\"s\":\"{symbol}\",\"i\":\"{iv}\",\"f\":-1,\"L\":-1,\"o\":\"{o}\",\"c\":\"{c}\",\"h\":\"{h}\",\"l\":\"{l}\",\"v\":\"{v}\",\"n\":{n},\"x\":true,\"q\":\"{q}\",\"V\":\"{bv}\",\"Q\":\"{bq}\",\"B\":\"0\"}}}}",
                e = close_time + 1,
                iv = interval.code(),
                o = cols[1],
                h = cols[2],
                l = cols[3],
                c = cols[4],
                v = cols[5],
                q = get(7, "0"),
                n = get(8, "0"),
                bv = get(9, "0"),
                bq = get(10, "0"),
            );
            let msg = Msg::new(stream.clone(), EventKind::Kline, symbol_arc.clone(), &payload);
            self.loaded.msgs.push(Timed { time_ns: ms_to_ns(close_time + 1), msg });
        }
        Ok(())
    }

    fn trades_csv(&mut self, text: &str, name: &str) -> Result<(), ReplayError> {
        let symbol = self.symbol_from_name(name)?;
        let stream: Arc<str> = format!("{}@trade", symbol.to_ascii_lowercase()).into();
        let symbol_arc: Arc<str> = symbol.as_str().into();
        for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            let [ts, id, price, qty, maker] = cols[..] else {
                return Err(self.err(i + 1, format!("expected 5 columns, found {}", cols.len())));
            };
            let ts: i64 = ts.parse().map_err(|e| self.err(i + 1, format!("timestamp: {e}")))?;
            let id: u64 = id.parse().map_err(|e| self.err(i + 1, format!("trade id: {e}")))?;
            check_decimal(price, "price")
                .and(check_decimal(qty, "quantity"))
                .map_err(|r| self.err(i + 1, r))?;
            let maker = match maker {
                "true" => true,
                "false" => false,
                other => return Err(self.err(i + 1, format!("buyer_maker {other:?} is not true/false"))),
            };
            let payload = format!(
                "{{\"e\":\"trade\",\"E\":{ts},\"s\":\"{symbol}\",\"t\":{id},\"p\":\"{price}\",\"q\":\"{qty}\",\"T\":{ts},\"m\":{maker}}}"
            );
            let msg = Msg::new(stream.clone(), EventKind::Trade, symbol_arc.clone(), &payload);
            self.loaded.msgs.push(Timed { time_ns: ms_to_ns(ts), msg });
        }
        Ok(())
    }

    fn quotes_csv(&mut self, text: &str) -> Result<(), ReplayError> {
        for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            let [ts, symbol, bid, bid_qty, ask, ask_qty] = cols[..] else {
                return Err(self.err(i + 1, format!("expected 6 columns, found {}", cols.len())));
            };
            let ts: i64 = ts.parse().map_err(|e| self.err(i + 1, format!("timestamp: {e}")))?;
            for (v, what) in [(bid, "bid"), (bid_qty, "bid_size"), (ask, "ask"), (ask_qty, "ask_size")] {
                check_decimal(v, what).map_err(|r| self.err(i + 1, r))?;
            }
            let symbol: String = symbol.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let payload = format!(
                "{{\"u\":{i},\"s\":\"{symbol}\",\"b\":\"{bid}\",\"B\":\"{bid_qty}\",\"a\":\"{ask}\",\"A\":\"{ask_qty}\"}}"
            );
            let stream = format!("{}@bookTicker", symbol.to_ascii_lowercase());
            let msg = Msg::new(stream.into(), EventKind::BookTicker, symbol.into(), &payload);
            self.loaded.msgs.push(Timed { time_ns: ms_to_ns(ts), msg });
        }
        Ok(())
    }

    fn depth_csv(&mut self, text: &str) -> Result<(), ReplayError> {
        struct Group {
            line: usize,
            symbol: String,
            ts: i64,
            first: u64,
            last: u64,
            pu: i64,
            snap: bool,
            bids: Vec<(String, String)>,
            asks: Vec<(String, String)>,
        }
        let mut groups: Vec<Group> = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            let [symbol, ts, first, last, side, kind, price, qty, pu] = cols[..] else {
                return Err(self.err(i + 1, format!("expected 9 columns, found {}", cols.len())));
            };
            let num =
                |v: &str, what: &str| v.parse::<i64>().map_err(|e| self.err(i + 1, format!("{what}: {e}")));
            let (ts, first, last, pu) = (
                num(ts, "timestamp")?,
                num(first, "first_update_id")?,
                num(last, "last_update_id")?,
                num(pu, "pu")?,
            );
            check_decimal(price, "price").and(check_decimal(qty, "qty")).map_err(|r| self.err(i + 1, r))?;
            let snap = match kind {
                "snap" => true,
                "set" => false,
                other => {
                    return Err(self.err(i + 1, format!("update_type {other:?} is neither snap nor set")))
                }
            };
            let same = groups.last().is_some_and(|g| {
                g.symbol == symbol
                    && g.ts == ts
                    && g.first == first as u64
                    && g.last == last as u64
                    && g.snap == snap
            });
            if !same {
                groups.push(Group {
                    line: i + 1,
                    symbol: symbol.to_string(),
                    ts,
                    first: first as u64,
                    last: last as u64,
                    pu,
                    snap,
                    bids: Vec::new(),
                    asks: Vec::new(),
                });
            }
            let group = groups.last_mut().ok_or_else(|| self.err(i + 1, "no group"))?;
            match side {
                "b" => group.bids.push((price.to_string(), qty.to_string())),
                "a" => group.asks.push((price.to_string(), qty.to_string())),
                other => return Err(self.err(i + 1, format!("side {other:?} is neither b nor a"))),
            }
        }
        let levels = |v: &[(String, String)]| {
            v.iter().map(|(p, q)| format!("[\"{p}\",\"{q}\"]")).collect::<Vec<_>>().join(",")
        };
        for g in groups {
            let (b, a) = (levels(&g.bids), levels(&g.asks));
            if g.snap {
                let body = format!(
                    "{{\"lastUpdateId\":{},\"E\":{},\"T\":{},\"bids\":[{b}],\"asks\":[{a}]}}",
                    g.last, g.ts, g.ts
                );
                self.loaded
                    .snapshots
                    .push((Some(g.symbol.clone()), Snapshot { time_ns: ms_to_ns(g.ts), body }));
            } else {
                let payload = format!(
                    "{{\"e\":\"depthUpdate\",\"E\":{ts},\"T\":{ts},\"s\":\"{s}\",\"U\":{f},\"u\":{l},\"pu\":{pu},\"b\":[{b}],\"a\":[{a}]}}",
                    ts = g.ts,
                    s = g.symbol,
                    f = g.first,
                    l = g.last,
                    pu = g.pu
                );
                let stream = format!("{}@depth@100ms", g.symbol.to_ascii_lowercase());
                let _ = g.line;
                let msg = Msg::new(stream.into(), EventKind::DepthUpdate, g.symbol.as_str().into(), &payload);
                self.loaded.msgs.push(Timed { time_ns: ms_to_ns(g.ts), msg });
            }
        }
        Ok(())
    }
}

fn check_decimal(value: &str, what: &str) -> Result<(), String> {
    parse_fixed8(value.as_bytes(), Sign::Forbidden).map(|_| ()).map_err(|e| format!("{what} {value:?}: {e}"))
}

fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

/// `"1626992741.06217"` → ns, exactly (no float).
fn seconds_to_ns(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac_ns: u64 =
        if frac.is_empty() { 0 } else { frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32) };
    whole.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// Widens the (price, qty) decimal counts seen so far with one payload's price fields.
fn observe_precision(payload: &str, seen: &mut (u32, u32)) {
    let keys =
        [("p", 0usize), ("b", 0), ("o", 0), ("h", 0), ("l", 0), ("c", 0), ("q", 1), ("B", 1), ("v", 1)];
    for (name, slot) in keys {
        let key = format!("\"{name}\":\"");
        if let Some(at) = payload.find(&key) {
            let rest = &payload[at + key.len()..];
            let value = &rest[..rest.find('"').unwrap_or(0)];
            let decimals =
                value.split_once('.').map_or(0, |(_, f)| f.trim_end_matches('0').len() as u32).min(8);
            let target = if slot == 0 { &mut seen.0 } else { &mut seen.1 };
            *target = (*target).max(decimals);
        }
    }
}

fn symbol_info(symbol: &str, price_precision: u32, qty_precision: u32) -> SymbolInfo {
    let quote = ["USDT", "BUSD", "USDC", "BTC", "ETH", "EUR", "USD"]
        .into_iter()
        .find(|q| symbol.ends_with(q) || symbol.contains(&format!("{q}_")))
        .unwrap_or("USDT");
    let base = symbol.split(quote).next().unwrap_or(symbol).to_string();
    let unit = |decimals: u32| 10_i64.pow(8 - decimals.min(8));
    SymbolInfo {
        symbol: symbol.to_string(),
        base,
        quote: quote.to_string(),
        price_precision,
        qty_precision,
        tick_size: unit(price_precision),
        step_size: unit(qty_precision),
        min_notional: 5 * aegis_wire::SCALE,
        max_leverage: 50,
    }
}

#[derive(Deserialize)]
struct KlineEvent<'a> {
    #[serde(borrow)]
    k: KlineBody<'a>,
}

#[derive(Deserialize)]
struct KlineBody<'a> {
    t: i64,
    #[serde(rename = "T")]
    close_time: i64,
    f: i64,
    #[serde(rename = "L")]
    last: i64,
    o: &'a str,
    h: &'a str,
    l: &'a str,
    c: &'a str,
    v: &'a str,
    n: u64,
    q: &'a str,
    #[serde(rename = "V")]
    taker_v: &'a str,
    #[serde(rename = "Q")]
    taker_q: &'a str,
}

/// The bar a closed kline payload describes.
fn kline_bar(payload: &str) -> Option<Bar> {
    let event: KlineEvent<'_> = serde_json::from_str(payload).ok()?;
    let k = event.k;
    let px = |s: &str| parse_fixed8(s.as_bytes(), Sign::Forbidden).ok();
    let vol = |s: &str| parse_fixed8_i128(s.as_bytes(), Sign::Forbidden).ok();
    Some(Bar {
        open_time_ms: k.t,
        interval_ms: k.close_time - k.t + 1,
        open: px(k.o)?,
        high: px(k.h)?,
        low: px(k.l)?,
        close: px(k.c)?,
        volume: vol(k.v)?,
        quote_volume: vol(k.q)?,
        taker_buy_volume: vol(k.taker_v)?,
        taker_buy_quote_volume: vol(k.taker_q)?,
        trades: k.n,
        first_trade_id: k.f,
        last_trade_id: k.last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_exactly() {
        assert_eq!(seconds_to_ns("1626992741.06217"), Some(1_626_992_741_062_170_000));
        assert_eq!(seconds_to_ns("1626992740"), Some(1_626_992_740_000_000_000));
        assert_eq!(seconds_to_ns("12.x"), None);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.ws.txt");
        std::fs::write(
            &path,
            "wss://x/stream?streams=a@trade <-> 1.0\n1.5: {\"stream\":\"btcusdt@trade\",\"data\":{}}\n2.0: {not json\n",
        )
        .unwrap();
        let err = Replay::load(std::slice::from_ref(&path)).err().unwrap();
        assert_eq!(err.line, 3);
        assert!(err.to_string().contains("capture.ws.txt:3:"), "{err}");
    }

    #[test]
    fn unknown_streams_in_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, "1 {\"stream\":\"btcusdt@ticker\",\"data\":{}}\n").unwrap();
        let err = Replay::load(&[path]).err().unwrap();
        assert!(err.reason.contains("unknown stream"), "{err}");
    }

    /// Two recorders whose clocks disagree: by receipt A's trade comes first, by the exchange's
    /// event time B's; a kline without `E` is timed by its close time; equal times keep
    /// receipt order.
    #[test]
    fn files_merge_by_exchange_time_or_by_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let trade = |s: &str, e: i64, t: i64| {
            format!("{{\"stream\":\"{}@trade\",\"data\":{{\"e\":\"trade\",\"E\":{e},\"T\":{t},\"s\":\"{s}\",\"t\":1,\"p\":\"1.0\",\"q\":\"1.0\",\"m\":true}}}}", s.to_ascii_lowercase())
        };
        let a = dir.path().join("a.ws.txt");
        let b = dir.path().join("b.ws.txt");
        std::fs::write(
            &a,
            format!(
                "wss://x/stream?streams=btcusdt@trade <-> 1.0\n1.0: {}\n3.0: {}\n",
                trade("BTCUSDT", 5_000, 4_900),
                trade("BTCUSDT", 6_000, 6_000)
            ),
        )
        .unwrap();
        let kline = "{\"stream\":\"ethusdt@kline_1m\",\"data\":{\"e\":\"kline\",\"s\":\"ETHUSDT\",\"k\":{\"t\":0,\"T\":5999,\"s\":\"ETHUSDT\",\"i\":\"1m\",\"f\":1,\"L\":2,\"o\":\"1.0\",\"c\":\"1.0\",\"h\":\"1.0\",\"l\":\"1.0\",\"v\":\"1.0\",\"n\":2,\"x\":true,\"q\":\"1.0\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}}";
        std::fs::write(
            &b,
            format!(
                "wss://x/stream?streams=ethusdt@trade <-> 1.0\n2.0: {}\n2.5: {kline}\n",
                trade("ETHUSDT", 5_000, 5_000)
            ),
        )
        .unwrap();
        let order = |o: Order| {
            let mut r = Replay::load_ordered(&[a.clone(), b.clone()], o).unwrap();
            let mut seen = Vec::new();
            while let Some(batch) = r.next_batch() {
                seen.extend(batch.msgs.iter().map(|m| (batch.time_ns / 1_000_000, m.stream.to_string())));
            }
            seen
        };
        let by_receipt: Vec<(u64, String)> = order(Order::Receipt);
        assert_eq!(
            by_receipt.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
            ["btcusdt@trade", "ethusdt@trade", "ethusdt@kline_1m", "btcusdt@trade"]
        );
        let by_event = order(Order::EventTime);
        assert_eq!(
            by_event,
            [
                (5_000, "btcusdt@trade".to_string()),
                (5_000, "ethusdt@trade".to_string()),
                (5_999, "ethusdt@kline_1m".to_string()),
                (6_000, "btcusdt@trade".to_string()),
            ],
            "E first, equal E in receipt order, the kline at its close time"
        );
    }

    #[test]
    fn merge_keeps_file_order_and_breaks_ties_by_file() {
        let mk = |t: u64, s: &str| Timed {
            time_ns: t,
            msg: Msg::new(format!("{s}@trade").into(), EventKind::Trade, s.into(), "{}"),
        };
        let a = vec![mk(1, "a"), mk(5, "a"), mk(3, "a")];
        let b = vec![mk(1, "b"), mk(4, "b")];
        let merged: Vec<(u64, String)> =
            merge_by_time(vec![a, b]).into_iter().map(|t| (t.time_ns, t.msg.symbol.to_string())).collect();
        let want = [(1, "a"), (1, "b"), (4, "b"), (5, "a"), (3, "a")];
        assert_eq!(merged, want.map(|(t, s)| (t, s.to_string())));
    }
}
