//! Binance JSON → records, for every stream kind of SPEC §3, without allocating.
//!
//! Accepts a combined-stream envelope (`{"stream":…,"data":…}`) or a bare payload (a raw
//! `/ws/<name>` connection, whose stream the caller names). The event kind always comes
//! from the stream name — spot bookTicker has no `e`, partial depth says `depthUpdate` —
//! and only falls back to `e` when no stream is known. Decimals become fixed point exactly
//! (`aegis_wire::decimal`); unknown fields are ignored; a malformed message is an error
//! naming the field, never a panic. Records go to a caller-supplied sink, so a depth update
//! with many levels becomes several chunks without any buffer.

use super::fast;
use super::json::{parse_i64, parse_u64, JsonError, Scanner, Value};
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, DecimalError, Sign};
use aegis_wire::stream::classify_channel;
use aegis_wire::{
    AggTrade, BookTicker, DepthChunk, Event, EventKind, ForceOrder, Header, Interval, Kline, Level,
    MarkPrice, Record, Side, SymbolId, SymbolTable, Trade, DEPTH_LEVELS_PER_CHUNK,
};

/// Why a message could not become records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not well-formed JSON (offset into the message).
    #[error("malformed JSON: {0}")]
    Json(#[from] JsonError),
    /// The stream name is not a Binance channel.
    #[error("unknown stream")]
    UnknownStream,
    /// The event type is not one this engine handles.
    #[error("unknown event type")]
    UnknownEvent,
    /// A required field is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or an impossible value.
    #[error("bad value for field {0:?}")]
    BadValue(&'static str),
    /// A decimal field did not parse.
    #[error("field {field:?}: {source}")]
    BadDecimal {
        /// The field.
        field: &'static str,
        /// Why.
        source: DecimalError,
    },
    /// The symbol is not in the symbol table.
    #[error("symbol not subscribed")]
    UnknownSymbol,
}

impl ParseError {
    /// The same error with JSON offsets moved by `base` (for a payload read in place).
    fn shifted(self, base: usize) -> Self {
        match self {
            ParseError::Json(e) => ParseError::Json(JsonError { what: e.what, offset: e.offset + base }),
            other => other,
        }
    }
}

/// What one message turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Market records were handed to the sink (how many).
    Records(usize),
    /// An answer to a SUBSCRIBE/UNSUBSCRIBE/LIST request (`{"result":…,"id":n}`).
    Reply {
        /// The request id.
        id: u64,
        /// False when the answer carries an `error`.
        ok: bool,
    },
}

/// What the connection knows about a bare payload's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHint {
    /// The kind the stream carries.
    pub kind: EventKind,
    /// True for partial-book depth.
    pub partial_depth: bool,
}

/// Parses one WebSocket text message into records handed to `sink`.
///
/// `raw_hint` names the stream of a raw connection; combined envelopes carry their own.
pub fn parse_message(
    text: &[u8],
    raw_hint: Option<StreamHint>,
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Result<Parsed, ParseError> {
    if let Some(hot) = fast::hot_envelope(text) {
        let hint = StreamHint { kind: hot.kind, partial_depth: false };
        return parse_enveloped(text, hint, hot.symbol, hot.payload, symbols, recv_ns, sink);
    }
    if let Some((name, payload)) = fast::envelope(text) {
        let (hint, symbol) = stream_hint(name)?;
        return parse_enveloped(text, hint, symbol, payload, symbols, recv_ns, sink);
    }
    let mut top = Scanner::object(text)?;
    let mut stream: Option<(StreamHint, &[u8])> = None;
    let mut data: Option<&[u8]> = None;
    let mut reply_id: Option<u64> = None;
    let mut reply_ok = true;
    let mut is_reply = false;
    let mut cx = Context { symbols, stream_symbol: None, recv_ns, count: 0 };
    while let Some(key) = top.next_key()? {
        match key {
            b"stream" => {
                let Value::Str(name) = top.value()? else { return Err(ParseError::UnknownStream) };
                stream = Some(stream_hint(name)?);
            }
            // Binance sends the stream name first: parse the payload in place, one pass.
            b"data" if stream.is_some() && top.rest().first() == Some(&b'{') => {
                let Some((hint, symbol)) = stream else { return Err(ParseError::UnknownStream) };
                cx.stream_symbol = Some(symbol);
                let base = text.len() - top.rest().len();
                let used = cx.dispatch(hint, top.rest(), sink).map_err(|e| e.shifted(base))?;
                top.skip_value_bytes(used);
                data = Some(b"");
            }
            b"data" => match top.value()? {
                Value::Object(d) => data = Some(d),
                _ => return Err(ParseError::BadValue("data")),
            },
            b"result" => {
                top.value()?;
                is_reply = true;
            }
            b"error" => {
                top.value()?;
                is_reply = true;
                reply_ok = false;
            }
            b"id" => {
                if let Value::Num(n) = top.value()? {
                    reply_id = parse_u64(n);
                }
            }
            _ => {
                top.value()?;
            }
        }
    }
    match (data, stream) {
        (Some(b""), Some(_)) => Ok(Parsed::Records(cx.count)),
        (Some(payload), Some((hint, symbol))) => {
            cx.stream_symbol = Some(symbol);
            cx.dispatch(hint, payload, sink)?;
            Ok(Parsed::Records(cx.count))
        }
        (None, _) if is_reply => Ok(Parsed::Reply { id: reply_id.unwrap_or(0), ok: reply_ok }),
        _ => {
            let hint = match raw_hint {
                Some(h) => h,
                None => StreamHint { kind: event_type(text)?, partial_depth: false },
            };
            cx.dispatch(hint, text, sink)?;
            Ok(Parsed::Records(cx.count))
        }
    }
}

/// Parses the `payload` (the `data` value) of a combined envelope whose stream was already
/// classified.
fn parse_enveloped(
    text: &[u8],
    hint: StreamHint,
    stream_symbol: &[u8],
    payload: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Result<Parsed, ParseError> {
    let mut cx = Context { symbols, stream_symbol: Some(stream_symbol), recv_ns, count: 0 };
    let base = text.len() - payload.len() - 1;
    let used = cx.dispatch(hint, payload, sink).map_err(|e| e.shifted(base))?;
    // The payload must be exactly one object: nothing may follow it but the envelope's brace.
    if used != payload.len() {
        return Err(ParseError::Json(JsonError { what: "trailing bytes after data", offset: base + used }));
    }
    Ok(Parsed::Records(cx.count))
}

/// The kind and symbol a stream name carries.
fn stream_hint(name: &[u8]) -> Result<(StreamHint, &[u8]), ParseError> {
    let at = name.iter().position(|&b| b == b'@').ok_or(ParseError::UnknownStream)?;
    let (kind, partial_depth) = classify_channel(&name[at + 1..]).ok_or(ParseError::UnknownStream)?;
    Ok((StreamHint { kind, partial_depth }, &name[..at]))
}

/// The kind named by a payload's `e`, for bare payloads of unknown stream.
fn event_type(payload: &[u8]) -> Result<EventKind, ParseError> {
    let mut s = Scanner::object(payload)?;
    while let Some((key, value)) = s.next_field()? {
        if key == b"e" {
            let Value::Str(e) = value else { return Err(ParseError::BadValue("e")) };
            return EventKind::ALL
                .into_iter()
                .find(|k| k.name().as_bytes() == e)
                .ok_or(ParseError::UnknownEvent);
        }
    }
    Err(ParseError::MissingField("e"))
}

struct Context<'a> {
    symbols: &'a SymbolTable,
    stream_symbol: Option<&'a [u8]>,
    recv_ns: u64,
    count: usize,
}

fn price(field: &'static str, v: Option<Value<'_>>) -> Result<i64, ParseError> {
    match v {
        Some(Value::Str(s)) => {
            parse_fixed8(s, Sign::Forbidden).map_err(|source| ParseError::BadDecimal { field, source })
        }
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

fn signed(field: &'static str, v: Option<Value<'_>>) -> Result<i64, ParseError> {
    match v {
        Some(Value::Str(s)) => {
            parse_fixed8(s, Sign::Allowed).map_err(|source| ParseError::BadDecimal { field, source })
        }
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

fn volume(field: &'static str, v: Option<Value<'_>>) -> Result<i128, ParseError> {
    match v {
        Some(Value::Str(s)) => {
            parse_fixed8_i128(s, Sign::Forbidden).map_err(|source| ParseError::BadDecimal { field, source })
        }
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

fn uint(field: &'static str, v: Option<Value<'_>>) -> Result<u64, ParseError> {
    match v {
        Some(Value::Num(n)) => parse_u64(n).ok_or(ParseError::BadValue(field)),
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

fn int(field: &'static str, v: Option<Value<'_>>) -> Result<i64, ParseError> {
    match v {
        Some(Value::Num(n)) => parse_i64(n).ok_or(ParseError::BadValue(field)),
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

fn boolean(field: &'static str, v: Option<Value<'_>>) -> Result<bool, ParseError> {
    match v {
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(ParseError::BadValue(field)),
        None => Err(ParseError::MissingField(field)),
    }
}

/// Collects the fields named in `KEYS` from one object; others are ignored.
struct Fields<'a, const N: usize> {
    values: [Option<Value<'a>>; N],
}

impl<'a, const N: usize> Fields<'a, N> {
    fn read(object: &'a [u8], keys: &[&[u8]; N]) -> Result<Self, ParseError> {
        Self::read_counted(object, keys).map(|(fields, _)| fields)
    }

    /// Reads the object at the front of `object`; also returns the bytes it spans.
    fn read_counted(object: &'a [u8], keys: &[&[u8]; N]) -> Result<(Self, usize), ParseError> {
        let mut values = [None; N];
        let mut s = Scanner::object(object)?;
        while let Some((key, value)) = s.next_field()? {
            // Keys are one or two bytes: compare length and first byte before the slice.
            let found =
                keys.iter().position(|k| k.len() == key.len() && k.first() == key.first() && *k == key);
            if let Some(i) = found {
                values[i] = Some(value);
            }
        }
        Ok((Self { values }, s.position()))
    }

    fn get(&self, i: usize) -> Option<Value<'a>> {
        self.values[i]
    }
}

impl Context<'_> {
    /// Parses the payload object at the front of `payload`; returns the bytes it spans.
    fn dispatch(
        &mut self,
        hint: StreamHint,
        payload: &[u8],
        sink: &mut impl FnMut(&Record),
    ) -> Result<usize, ParseError> {
        // Templates resolve the symbol themselves; an unknown one falls through to the
        // general parser, which names the error.
        let template = match hint.kind {
            EventKind::AggTrade => fast::agg_trade(payload, self.symbols, self.recv_ns, sink),
            EventKind::Trade => fast::trade(payload, self.symbols, self.recv_ns, sink),
            EventKind::BookTicker => fast::book_ticker(payload, self.symbols, self.recv_ns, sink),
            _ => None,
        };
        if let Some(used) = template {
            self.count += 1;
            return Ok(used);
        }
        if hint.kind == EventKind::DepthUpdate && !hint.partial_depth {
            if let Some((used, chunks)) = fast::depth_update(payload, self.symbols, self.recv_ns, sink) {
                self.count += chunks;
                return Ok(used);
            }
        }
        match hint.kind {
            EventKind::Trade => self.trade(payload, sink),
            EventKind::AggTrade => self.agg_trade(payload, sink),
            EventKind::Kline => self.kline(payload, sink),
            EventKind::BookTicker => self.book_ticker(payload, sink),
            EventKind::DepthUpdate => self.depth(payload, hint.partial_depth, sink),
            EventKind::MarkPriceUpdate => self.mark_price(payload, sink),
            EventKind::ForceOrder => self.force_order(payload, sink),
        }
    }

    fn symbol(&self, v: Option<Value<'_>>) -> Result<SymbolId, ParseError> {
        let name = match v {
            Some(Value::Str(s)) => s,
            Some(_) => return Err(ParseError::BadValue("s")),
            None => self.stream_symbol.ok_or(ParseError::MissingField("s"))?,
        };
        self.symbols.get(name).ok_or(ParseError::UnknownSymbol)
    }

    fn header(&self, symbol: SymbolId, event_time: Option<Value<'_>>) -> Result<Header, ParseError> {
        let event_time_ms = match event_time {
            None => 0,
            v => int("E", v)?,
        };
        Ok(Header { symbol, event_time_ms, recv_ns: self.recv_ns })
    }

    fn emit(&mut self, header: Header, event: Event, sink: &mut impl FnMut(&Record)) {
        self.count += 1;
        sink(&Record { header, event });
    }

    fn trade(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (f, used) = Fields::read_counted(payload, &[b"s", b"E", b"t", b"p", b"q", b"T", b"m"])?;
        let header = self.header(self.symbol(f.get(0))?, f.get(1))?;
        let trade = Trade {
            trade_id: uint("t", f.get(2))?,
            price: price("p", f.get(3))?,
            qty: price("q", f.get(4))?,
            trade_time_ms: int("T", f.get(5))?,
            buyer_is_maker: boolean("m", f.get(6))?,
        };
        self.emit(header, Event::Trade(trade), sink);
        Ok(used)
    }

    fn agg_trade(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (f, used) =
            Fields::read_counted(payload, &[b"s", b"E", b"a", b"p", b"q", b"f", b"l", b"T", b"m"])?;
        let header = self.header(self.symbol(f.get(0))?, f.get(1))?;
        let agg = AggTrade {
            agg_id: uint("a", f.get(2))?,
            price: price("p", f.get(3))?,
            qty: price("q", f.get(4))?,
            first_trade_id: uint("f", f.get(5))?,
            last_trade_id: uint("l", f.get(6))?,
            trade_time_ms: int("T", f.get(7))?,
            buyer_is_maker: boolean("m", f.get(8))?,
        };
        self.emit(header, Event::AggTrade(agg), sink);
        Ok(used)
    }

    fn kline(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (outer, used) = Fields::read_counted(payload, &[b"s", b"E", b"k"])?;
        let Some(Value::Object(body)) = outer.get(2) else {
            return Err(outer.get(2).map_or(ParseError::MissingField("k"), |_| ParseError::BadValue("k")));
        };
        let k = Fields::read(
            body,
            &[b"t", b"T", b"i", b"f", b"L", b"o", b"c", b"h", b"l", b"v", b"n", b"x", b"q", b"V", b"Q", b"s"],
        )?;
        let symbol = match outer.get(0) {
            Some(v) => self.symbol(Some(v))?,
            None => self.symbol(k.get(15))?,
        };
        let header = self.header(symbol, outer.get(1))?;
        let interval = match k.get(2) {
            Some(Value::Str(code)) => Interval::parse(code).ok_or(ParseError::BadValue("i"))?,
            Some(_) => return Err(ParseError::BadValue("i")),
            None => return Err(ParseError::MissingField("i")),
        };
        let kline = Kline {
            interval,
            open_time_ms: int("t", k.get(0))?,
            close_time_ms: int("T", k.get(1))?,
            first_trade_id: int("f", k.get(3))?,
            last_trade_id: int("L", k.get(4))?,
            open: price("o", k.get(5))?,
            close: price("c", k.get(6))?,
            high: price("h", k.get(7))?,
            low: price("l", k.get(8))?,
            volume: volume("v", k.get(9))?,
            trades: uint("n", k.get(10))?,
            closed: boolean("x", k.get(11))?,
            quote_volume: volume("q", k.get(12))?,
            taker_buy_volume: volume("V", k.get(13))?,
            taker_buy_quote_volume: volume("Q", k.get(14))?,
        };
        self.emit(header, Event::Kline(kline), sink);
        Ok(used)
    }

    fn book_ticker(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (f, used) = Fields::read_counted(payload, &[b"s", b"E", b"u", b"b", b"B", b"a", b"A", b"T"])?;
        let header = self.header(self.symbol(f.get(0))?, f.get(1))?;
        let ticker = BookTicker {
            update_id: uint("u", f.get(2))?,
            bid_price: price("b", f.get(3))?,
            bid_qty: price("B", f.get(4))?,
            ask_price: price("a", f.get(5))?,
            ask_qty: price("A", f.get(6))?,
            transaction_time_ms: match f.get(7) {
                None => 0,
                v => int("T", v)?,
            },
        };
        self.emit(header, Event::BookTicker(ticker), sink);
        Ok(used)
    }

    fn depth(
        &mut self,
        payload: &[u8],
        partial: bool,
        sink: &mut impl FnMut(&Record),
    ) -> Result<usize, ParseError> {
        // Futures diff and partial depth: s, E, T, U, u, pu, b, a. Spot partial depth:
        // lastUpdateId, bids, asks (no symbol: it comes from the stream name).
        let (f, used) = Fields::read_counted(
            payload,
            &[b"s", b"E", b"T", b"U", b"u", b"pu", b"b", b"a", b"lastUpdateId", b"bids", b"asks"],
        )?;
        let header = self.header(self.symbol(f.get(0))?, f.get(1))?;
        let (first, last, prev) = match f.get(8) {
            Some(v) => {
                let id = uint("lastUpdateId", Some(v))?;
                (id, id, -1)
            }
            None => {
                let prev = match f.get(5) {
                    None => -1,
                    v => int("pu", v)?,
                };
                (uint("U", f.get(3))?, uint("u", f.get(4))?, prev)
            }
        };
        let transaction_time_ms = match f.get(2) {
            None => 0,
            v => int("T", v)?,
        };
        let bids = f.get(6).or(f.get(9)).ok_or(ParseError::MissingField("b"))?;
        let asks = f.get(7).or(f.get(10)).ok_or(ParseError::MissingField("a"))?;
        let mut chunk = DepthChunk {
            first_update_id: first,
            final_update_id: last,
            prev_final_update_id: prev,
            transaction_time_ms,
            partial,
            ..DepthChunk::EMPTY
        };
        for (side, levels) in [(Side::Buy, bids), (Side::Sell, asks)] {
            let Value::Array(levels) = levels else { return Err(ParseError::BadValue("b")) };
            let mut list = Scanner::array(levels)?;
            while let Some(level) = list.next_element()? {
                let level = parse_level(level)?;
                let used = usize::from(chunk.bid_count + chunk.ask_count);
                if used == DEPTH_LEVELS_PER_CHUNK {
                    self.emit(header, Event::Depth(chunk), sink);
                    chunk.part = chunk.part.checked_add(1).ok_or(ParseError::BadValue("b"))?;
                    chunk.bid_count = 0;
                    chunk.ask_count = 0;
                    chunk.levels = DepthChunk::EMPTY.levels;
                }
                let used = usize::from(chunk.bid_count + chunk.ask_count);
                chunk.levels[used] = level;
                match side {
                    Side::Buy => chunk.bid_count += 1,
                    Side::Sell => chunk.ask_count += 1,
                }
            }
        }
        chunk.last = true;
        self.emit(header, Event::Depth(chunk), sink);
        Ok(used)
    }

    fn mark_price(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (f, used) = Fields::read_counted(payload, &[b"s", b"E", b"p", b"i", b"P", b"r", b"T"])?;
        let header = self.header(self.symbol(f.get(0))?, f.get(1))?;
        let empty_is_zero = |field: &'static str, v: Option<Value<'_>>| match v {
            Some(Value::Str(b"")) => Ok(0),
            v => signed(field, v),
        };
        let mark = MarkPrice {
            mark_price: price("p", f.get(2))?,
            index_price: empty_is_zero("i", f.get(3))?,
            estimated_settle_price: empty_is_zero("P", f.get(4))?,
            funding_rate: empty_is_zero("r", f.get(5))?,
            next_funding_time_ms: int("T", f.get(6))?,
        };
        self.emit(header, Event::MarkPrice(mark), sink);
        Ok(used)
    }

    fn force_order(&mut self, payload: &[u8], sink: &mut impl FnMut(&Record)) -> Result<usize, ParseError> {
        let (outer, used) = Fields::read_counted(payload, &[b"E", b"o"])?;
        let Some(Value::Object(order)) = outer.get(1) else {
            return Err(outer.get(1).map_or(ParseError::MissingField("o"), |_| ParseError::BadValue("o")));
        };
        let o = Fields::read(order, &[b"s", b"S", b"q", b"p", b"ap", b"l", b"z", b"T"])?;
        let header = self.header(self.symbol(o.get(0))?, outer.get(0))?;
        let side = match o.get(1) {
            Some(Value::Str(b"BUY")) => Side::Buy,
            Some(Value::Str(b"SELL")) => Side::Sell,
            Some(_) => return Err(ParseError::BadValue("S")),
            None => return Err(ParseError::MissingField("S")),
        };
        let force = ForceOrder {
            side,
            orig_qty: price("q", o.get(2))?,
            price: price("p", o.get(3))?,
            avg_price: price("ap", o.get(4))?,
            last_filled_qty: price("l", o.get(5))?,
            filled_qty: price("z", o.get(6))?,
            trade_time_ms: int("T", o.get(7))?,
        };
        self.emit(header, Event::ForceOrder(force), sink);
        Ok(used)
    }
}

fn parse_level(level: Value<'_>) -> Result<Level, ParseError> {
    let Value::Array(pair) = level else { return Err(ParseError::BadValue("level")) };
    let mut s = Scanner::array(pair)?;
    let p = price("level price", s.next_element()?)?;
    let q = price("level qty", s.next_element()?)?;
    if s.next_element()?.is_some() {
        return Err(ParseError::BadValue("level"));
    }
    Ok(Level { price: p, qty: q })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SymbolTable {
        let mut t = SymbolTable::with_capacity(8);
        for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
            t.intern(s).unwrap();
        }
        t
    }

    fn parse_all(text: &str, hint: Option<StreamHint>) -> Result<Vec<Record>, ParseError> {
        let mut out = Vec::new();
        parse_message(text.as_bytes(), hint, &table(), 7, &mut |r| out.push(*r))?;
        Ok(out)
    }

    #[test]
    fn combined_agg_trade() {
        let text = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"a":5933014,"s":"BTCUSDT","p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}}"#;
        let records = parse_all(text, None).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].header, Header { symbol: SymbolId(0), event_time_ms: 123456789, recv_ns: 7 });
        assert_eq!(
            records[0].event,
            Event::AggTrade(AggTrade {
                agg_id: 5933014,
                price: 100_000,
                qty: 10_000_000_000,
                first_trade_id: 100,
                last_trade_id: 105,
                trade_time_ms: 123456785,
                buyer_is_maker: true
            })
        );
    }

    #[test]
    fn mark_price_reads_the_documented_and_todays_shapes_alike() {
        // Binance's documented example, then today's shape (`ap` before `T`, `st` last, as
        // the official SDK 18.1.0 models them).
        let documented = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}"#;
        let today = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","ap":"11790.00000000","T":1562306400000,"st":1}}"#;
        let (a, b) = (parse_all(documented, None).unwrap(), parse_all(today, None).unwrap());
        assert_eq!(a, b);
        let Event::MarkPrice(m) = a[0].event else { panic!("{:?}", a[0]) };
        assert_eq!(
            (m.mark_price, m.funding_rate, m.next_funding_time_ms),
            (1_179_415_000_000, 38_167, 1562306400000)
        );
    }

    #[test]
    fn agg_trade_reads_todays_shape_on_the_template() {
        let today = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"a":5933014,"s":"BTCUSDT","p":"0.001","q":"100","nq":"90","f":100,"l":105,"T":123456785,"m":true}}"#;
        let old = today.replace(r#","nq":"90""#, "");
        assert_eq!(parse_all(today, None).unwrap(), parse_all(&old, None).unwrap());
    }

    #[test]
    fn spot_book_ticker_takes_its_kind_from_the_stream() {
        let text = r#"{"stream":"ethusdt@bookTicker","data":{"u":400900217,"s":"ETHUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
        let r = parse_all(text, None).unwrap();
        let Event::BookTicker(b) = r[0].event else { panic!("{:?}", r[0]) };
        assert_eq!(
            (b.update_id, b.bid_price, b.ask_qty, b.transaction_time_ms),
            (400900217, 2_535_190_000, 4_066_000_000, 0)
        );
        // A raw connection names the kind instead.
        let raw = r#"{"u":1,"s":"ETHUSDT","b":"1","B":"2","a":"3","A":"4"}"#;
        let hint = StreamHint { kind: EventKind::BookTicker, partial_depth: false };
        assert_eq!(parse_all(raw, Some(hint)).unwrap().len(), 1);
        assert_eq!(parse_all(raw, None), Err(ParseError::MissingField("e")));
    }

    #[test]
    fn depth_splits_into_chunks_in_order() {
        let bids: Vec<String> = (0..11).map(|i| format!("[\"{}.0\",\"1\"]", 100 - i)).collect();
        let asks: Vec<String> = (0..6).map(|i| format!("[\"{}.0\",\"2\"]", 101 + i)).collect();
        let text = format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":5,"T":4,"s":"BTCUSDT","U":10,"u":20,"pu":9,"b":[{}],"a":[{}]}}}}"#,
            bids.join(","),
            asks.join(",")
        );
        let chunks: Vec<DepthChunk> = parse_all(&text, None)
            .unwrap()
            .into_iter()
            .map(|r| match r.event {
                Event::Depth(d) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks.iter().map(|c| (c.part, c.last, c.bid_count, c.ask_count)).collect::<Vec<_>>(),
            vec![(0, false, 8, 0), (1, false, 3, 5), (2, true, 0, 1)]
        );
        assert!(chunks
            .iter()
            .all(|c| (c.first_update_id, c.final_update_id, c.prev_final_update_id) == (10, 20, 9)));
        assert_eq!(chunks[1].levels[3], Level { price: 101 * aegis_wire::SCALE, qty: 2 * aegis_wire::SCALE });
    }

    #[test]
    fn spot_partial_depth_uses_the_stream_symbol() {
        let text = r#"{"stream":"bnbusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}"#;
        let r = parse_all(text, None).unwrap();
        let Event::Depth(d) = r[0].event else { panic!() };
        assert!(d.partial && d.last);
        assert_eq!(r[0].header.symbol, SymbolId(2));
        assert_eq!((d.first_update_id, d.final_update_id, d.prev_final_update_id), (160, 160, -1));
    }

    #[test]
    fn replies_are_told_apart() {
        assert_eq!(parse_all(r#"{"result":null,"id":3}"#, None), Ok(vec![]));
        let mut n = 0;
        let got =
            parse_message(br#"{"error":{"code":2,"msg":"x"},"id":4}"#, None, &table(), 0, &mut |_| n += 1);
        assert_eq!(got, Ok(Parsed::Reply { id: 4, ok: false }));
    }

    #[test]
    fn bad_input_names_the_field() {
        struct Case {
            name: &'static str,
            input: &'static str,
            want: ParseError,
        }
        let cases = [
            Case {
                name: "truncated",
                input: r#"{"stream":"btcusdt@trade","data":{"e":"trade""#,
                want: ParseError::Json(JsonError { what: "unexpected end", offset: 45 }),
            },
            Case {
                name: "unknown stream",
                input: r#"{"stream":"btcusdt@ticker","data":{}}"#,
                want: ParseError::UnknownStream,
            },
            Case {
                name: "missing price",
                input: r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":1,"q":"1","T":1,"m":true}}"#,
                want: ParseError::MissingField("p"),
            },
            Case {
                name: "number as price",
                input: r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}}"#,
                want: ParseError::BadValue("p"),
            },
            Case {
                name: "absurd price",
                input: r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":1,"p":"1e99","q":"1","T":1,"m":true}}"#,
                want: ParseError::BadDecimal { field: "p", source: DecimalError::Exponent { offset: 1 } },
            },
            Case {
                name: "negative qty",
                input: r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":1,"p":"1","q":"-1","T":1,"m":true}}"#,
                want: ParseError::BadDecimal {
                    field: "q",
                    source: DecimalError::SignNotAllowed { offset: 0 },
                },
            },
            Case {
                name: "unknown symbol",
                input: r#"{"stream":"dogeusdt@trade","data":{"s":"DOGEUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
                want: ParseError::UnknownSymbol,
            },
            Case {
                name: "negative id",
                input: r#"{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":-1,"p":"1","q":"1","T":1,"m":true}}"#,
                want: ParseError::BadValue("t"),
            },
            Case {
                name: "bad level",
                input: r#"{"stream":"btcusdt@depth","data":{"s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}"#,
                want: ParseError::MissingField("level qty"),
            },
            Case {
                name: "unknown e",
                input: r#"{"e":"24hrTicker","s":"BTCUSDT"}"#,
                want: ParseError::UnknownEvent,
            },
        ];
        for case in cases {
            assert_eq!(parse_all(case.input, None).err(), Some(case.want), "case {}", case.name);
        }
    }
}
