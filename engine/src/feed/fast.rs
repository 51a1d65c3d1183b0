//! Fast paths for the busiest payloads in Binance's exact compact layout.
//!
//! USDⓈ-M sends aggTrade, trade and bookTicker with fixed field order and no whitespace. A
//! template walks that layout byte by byte — no field search, no intermediate values — and
//! returns `None` at the first surprise (another order, an unknown field, whitespace, spot's
//! layout), in which case the caller parses the same bytes with the general scanner. Fields
//! Binance has added since the recorded captures (aggTrade's `nq` and `st`) are part of
//! the template, so both shapes stay on the fast path. A
//! template emits nothing unless the whole payload matched, so falling back never doubles
//! a record.

use super::digits::{self, load_window};
use aegis_wire::decimal::{parse_fixed8, Sign};
use aegis_wire::{
    AggTrade, BookTicker, DepthChunk, Event, EventKind, Header, Level, Record, SymbolId, SymbolTable, Trade,
    DEPTH_LEVELS_PER_CHUNK,
};
use std::cell::RefCell;

/// A forward-only reader over a payload.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes `text` if it comes next; fixed-size so the compare is a few integer ops.
    fn lit<const N: usize>(&mut self, text: &[u8; N]) -> Option<()> {
        let end = self.pos + N;
        let next: &[u8; N] = self.bytes.get(self.pos..end)?.try_into().ok()?;
        (next == text).then(|| self.pos = end)
    }

    /// An unsigned integer (1–20 digits), eight digits at a time.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let (value, len) = digits::uint(self.bytes.get(self.pos..)?)?;
        self.pos += len;
        Some(value)
    }

    /// A price or quantity string: `"digits[.digits]"` parsed in one pass (SWAR), with the
    /// exact general parser as the fallback for anything else.
    #[inline(always)]
    fn decimal(&mut self) -> Option<i64> {
        let start = self.pos;
        if let Some(v) = self.plain_decimal() {
            return Some(v);
        }
        self.pos = start;
        let text = self.string()?;
        parse_fixed8(text, Sign::Forbidden).ok()
    }

    /// `"` ≤ 11 digits [`.` ≤ 8 digits] `"`, or `None` (position unspecified).
    #[inline(always)]
    fn plain_decimal(&mut self) -> Option<i64> {
        self.lit(b"\"")?;
        let rest = self.bytes.get(self.pos..)?;
        if let Some((value, len)) = digits::short_decimal(load_window(rest)) {
            self.pos += len;
            self.lit(b"\"")?;
            // ≤ 8 integer digits: below 10^16, an i64.
            return Some(value as i64);
        }
        let (int_value, int_len) = digits::uint(self.bytes.get(self.pos..)?)?;
        if int_len > 11 {
            return None;
        }
        self.pos += int_len;
        let mut frac_value = 0;
        if self.bytes.get(self.pos) == Some(&b'.') {
            let (value, len) = digits::fraction8(self.bytes.get(self.pos + 1..)?)?;
            frac_value = value;
            self.pos += 1 + len;
        }
        self.lit(b"\"")?;
        // ≤ 11 integer digits: below 10^19, so no u64 overflow; the i64 conversion refuses the rest.
        i64::try_from(int_value * 100_000_000 + frac_value).ok()
    }

    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        self.uint().and_then(|v| i64::try_from(v).ok())
    }

    /// A string without escapes or control characters (anything else: `None`), scanned a
    /// 16-byte window at a time.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.lit(b"\"")?;
        let start = self.pos;
        let mut at = start;
        loop {
            let rest = self.bytes.get(at..)?;
            // Bytes past the end read as 0x00, a control byte: the scan stops there.
            let offset = first_special(load_window(rest), b'"');
            if offset < 16 {
                if rest.get(offset) != Some(&b'"') {
                    return None;
                }
                self.pos = at + offset + 1;
                return Some(&self.bytes[start..at + offset]);
            }
            at += 16;
        }
    }

    /// A quoted symbol of up to 16 bytes spelled as interned, looked up in `table` straight
    /// from one 16-byte window; `None` for anything else (longer, escaped, unknown).
    #[inline(always)]
    fn symbol(&mut self, table: &SymbolTable) -> Option<SymbolId> {
        self.lit(b"\"")?;
        let rest = self.bytes.get(self.pos..)?;
        let window = load_window(rest);
        let len = first_special(window, b'"');
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        let id = table.get_window(window, len)?;
        self.pos += len + 1;
        Some(id)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|_| false)
        }
    }
}

/// Depth chunks a template may hold before it gives the update to the general parser.
pub const MAX_FAST_DEPTH_CHUNKS: usize = 32;

/// A diff-depth update matched by [`match_depth`]: its chunks are in the caller's buffer.
struct MatchedDepth {
    /// The records' header.
    header: Header,
    /// Chunks written to the buffer.
    chunks: usize,
    /// Bytes of the payload object.
    used: usize,
}

thread_local! {
    /// Where a depth update's chunks wait until the whole payload matched. Per thread and
    /// kept, so a message does not zero 5.6 KB of stack before it starts; `Copy` contents,
    /// so the slot needs no destructor registration (no allocation on first use).
    static DEPTH_CHUNKS: RefCell<[DepthChunk; MAX_FAST_DEPTH_CHUNKS]> =
        const { RefCell::new([DepthChunk::EMPTY; MAX_FAST_DEPTH_CHUNKS]) };
}

/// `{"e":"depthUpdate","E":…,"T":…,"s":"…","U":…,"u":…,"pu":…,"b":[["p","q"],…],"a":[…]}`
/// with at most `MAX_FAST_DEPTH_CHUNKS × 8` levels: its chunks (bids first) go to `sink`
/// once the whole payload matched. Returns the bytes spanned and the chunks emitted.
pub fn depth_update(
    bytes: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Option<(usize, usize)> {
    DEPTH_CHUNKS.with(|cell| {
        // Busy only if a sink parsed another message from inside its call: not a template's job.
        let mut out = cell.try_borrow_mut().ok()?;
        let m = match_depth(bytes, symbols, recv_ns, &mut out)?;
        for chunk in &out[..m.chunks] {
            sink(&Record { header: m.header, event: Event::Depth(*chunk) });
        }
        Some((m.used, m.chunks))
    })
}

fn match_depth(
    bytes: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    out: &mut [DepthChunk; MAX_FAST_DEPTH_CHUNKS],
) -> Option<MatchedDepth> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"T\":")?;
    let transaction_time_ms = c.int()?;
    c.lit(b",\"s\":")?;
    let symbol = c.symbol(symbols)?;
    c.lit(b",\"U\":")?;
    let first_update_id = c.uint()?;
    c.lit(b",\"u\":")?;
    let final_update_id = c.uint()?;
    c.lit(b",\"pu\":")?;
    let prev_final_update_id = c.int()?;
    let template = DepthChunk {
        first_update_id,
        final_update_id,
        prev_final_update_id,
        transaction_time_ms,
        ..DepthChunk::EMPTY
    };
    let mut chunks = 0;
    out[0] = template;
    for (side, key) in [(true, b",\"b\":["), (false, b",\"a\":[")] {
        c.lit(key)?;
        let mut first = true;
        while c.lit(b"]").is_none() {
            if !first {
                c.lit(b",")?;
            }
            first = false;
            c.lit(b"[")?;
            let price = c.decimal()?;
            c.lit(b",")?;
            let qty = c.decimal()?;
            c.lit(b"]")?;
            let chunk = &mut out[chunks];
            let used = usize::from(chunk.bid_count + chunk.ask_count);
            let chunk = if used == DEPTH_LEVELS_PER_CHUNK {
                chunks += 1;
                let next = out.get_mut(chunks)?;
                *next = DepthChunk { part: chunks as u16, ..template };
                next
            } else {
                chunk
            };
            let used = usize::from(chunk.bid_count + chunk.ask_count);
            chunk.levels[used] = Level { price, qty };
            if side {
                chunk.bid_count += 1;
            } else {
                chunk.ask_count += 1;
            }
        }
    }
    c.lit(b"}")?;
    out[chunks].last = true;
    let header = Header { symbol, event_time_ms, recv_ns };
    Some(MatchedDepth { header, chunks: chunks + 1, used: c.pos })
}

/// A combined-stream envelope on one of the busiest channels, split without a scan.
pub struct HotEnvelope<'a> {
    /// What the channel carries (never partial depth).
    pub kind: EventKind,
    /// The stream name's symbol part, as sent.
    pub symbol: &'a [u8],
    /// The `data` value (the envelope's closing brace excluded).
    pub payload: &'a [u8],
}

/// A channel name with its closing quote, as a key and mask over a 16-byte window.
const fn channel_key(text: &[u8]) -> (u128, u128, usize) {
    let mut key = 0u128;
    let mut i = 0;
    while i < text.len() {
        key |= (text[i] as u128) << (8 * i);
        i += 1;
    }
    (key, (1u128 << (8 * text.len())) - 1, text.len())
}

/// The channels with templates, each followed by the name's closing quote.
const HOT_CHANNELS: [(EventKind, (u128, u128, usize)); 8] = [
    (EventKind::BookTicker, channel_key(b"bookTicker\"")),
    (EventKind::AggTrade, channel_key(b"aggTrade\"")),
    (EventKind::Trade, channel_key(b"trade\"")),
    (EventKind::DepthUpdate, channel_key(b"depth@100ms\"")),
    (EventKind::DepthUpdate, channel_key(b"depth@0ms\"")),
    (EventKind::DepthUpdate, channel_key(b"depth@250ms\"")),
    (EventKind::DepthUpdate, channel_key(b"depth@500ms\"")),
    (EventKind::DepthUpdate, channel_key(b"depth\"")),
];

/// `{"stream":"<symbol>@<hot channel>","data":<payload>}` as Binance lays it out, the
/// symbol ≤ 15 bytes: the channel is told by comparing one window against a few keys.
/// `None` for anything else ([`envelope`] and the general parser handle it).
pub fn hot_envelope(bytes: &[u8]) -> Option<HotEnvelope<'_>> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"stream\":\"")?;
    let start = c.pos;
    let at = start + first_special(load_window(bytes.get(start..)?), b'@');
    if bytes.get(at) != Some(&b'@') {
        return None;
    }
    let channel = load_window(bytes.get(at + 1..)?);
    let &(kind, (_, _, len)) = HOT_CHANNELS.iter().find(|(_, (key, mask, _))| channel & mask == *key)?;
    c.pos = at + 1 + len;
    c.lit(b",\"data\":")?;
    let payload = bytes.get(c.pos..bytes.len().checked_sub(1)?)?;
    (bytes.last() == Some(&b'}')).then_some(HotEnvelope { kind, symbol: &bytes[start..at], payload })
}

/// Splits a combined-stream envelope `{"stream":"<name>","data":<payload>}` laid out as
/// Binance sends it; `None` for anything else (the general parser handles it).
pub fn envelope(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"stream\":")?;
    let name = c.string()?;
    c.lit(b",\"data\":")?;
    let payload = bytes.get(c.pos..bytes.len().checked_sub(1)?)?;
    (bytes.last() == Some(&b'}')).then_some((name, payload))
}

/// The offset of the window's first byte that is `"`, `\\`, below 0x20 or `stop` (16 when
/// none is). Borrows in the zero-byte test run upwards only, so the first hit is exact.
#[inline(always)]
fn first_special(window: u128, stop: u8) -> usize {
    const ONES: u128 = u128::MAX / 255;
    const HIGHS: u128 = ONES << 7;
    let zero_byte = |x: u128| x.wrapping_sub(ONES) & !x & HIGHS;
    let hits = zero_byte(window ^ (ONES * u128::from(b'"')))
        | zero_byte(window ^ (ONES * u128::from(b'\\')))
        | zero_byte(window ^ (ONES * u128::from(stop)))
        | (window.wrapping_sub(ONES * 0x20) & !window & HIGHS);
    (hits.trailing_zeros() / 8) as usize
}

/// `{"e":"aggTrade","E":…,"a":…,"s":"…","p":"…","q":"…","f":…,"l":…,"T":…,"m":…}`
pub fn agg_trade(
    bytes: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Option<usize> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"aggTrade\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"a\":")?;
    let agg_id = c.uint()?;
    c.lit(b",\"s\":")?;
    let symbol = c.symbol(symbols)?;
    c.lit(b",\"p\":")?;
    let price = c.decimal()?;
    c.lit(b",\"q\":")?;
    let qty = c.decimal()?;
    // Today's shape adds `nq` (the quantity without RPI-order trades) between `q` and `f`;
    // read and checked, not kept: `q` is what traded.
    if c.lit(b",\"nq\":").is_some() {
        c.decimal()?;
    }
    c.lit(b",\"f\":")?;
    let first_trade_id = c.uint()?;
    c.lit(b",\"l\":")?;
    let last_trade_id = c.uint()?;
    c.lit(b",\"T\":")?;
    let trade_time_ms = c.int()?;
    c.lit(b",\"m\":")?;
    let buyer_is_maker = c.boolean()?;
    // `st` (symbol type, 1 = USDⓈ-M) may close the object (Binance's SDK models it last).
    if c.lit(b",\"st\":").is_some() {
        c.uint()?;
    }
    c.lit(b"}")?;
    let event = Event::AggTrade(AggTrade {
        agg_id,
        price,
        qty,
        first_trade_id,
        last_trade_id,
        trade_time_ms,
        buyer_is_maker,
    });
    let header = Header { symbol, event_time_ms, recv_ns };
    sink(&Record { header, event });
    Some(c.pos)
}

/// `{"e":"trade","E":…,"T":…,"s":"…","t":…,"p":"…","q":"…","X":"…","m":…}`
pub fn trade(
    bytes: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Option<usize> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"trade\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"T\":")?;
    let trade_time_ms = c.int()?;
    c.lit(b",\"s\":")?;
    let symbol = c.symbol(symbols)?;
    c.lit(b",\"t\":")?;
    let trade_id = c.uint()?;
    c.lit(b",\"p\":")?;
    let price = c.decimal()?;
    c.lit(b",\"q\":")?;
    let qty = c.decimal()?;
    c.lit(b",\"X\":")?;
    c.string()?;
    c.lit(b",\"m\":")?;
    let buyer_is_maker = c.boolean()?;
    c.lit(b"}")?;
    let event = Event::Trade(Trade { trade_id, price, qty, trade_time_ms, buyer_is_maker });
    let header = Header { symbol, event_time_ms, recv_ns };
    sink(&Record { header, event });
    Some(c.pos)
}

/// `{"e":"bookTicker","u":…,"s":"…","b":"…","B":"…","a":"…","A":"…","T":…,"E":…}`
pub fn book_ticker(
    bytes: &[u8],
    symbols: &SymbolTable,
    recv_ns: u64,
    sink: &mut impl FnMut(&Record),
) -> Option<usize> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"bookTicker\",\"u\":")?;
    let update_id = c.uint()?;
    c.lit(b",\"s\":")?;
    let symbol = c.symbol(symbols)?;
    c.lit(b",\"b\":")?;
    let bid_price = c.decimal()?;
    c.lit(b",\"B\":")?;
    let bid_qty = c.decimal()?;
    c.lit(b",\"a\":")?;
    let ask_price = c.decimal()?;
    c.lit(b",\"A\":")?;
    let ask_qty = c.decimal()?;
    c.lit(b",\"T\":")?;
    let transaction_time_ms = c.int()?;
    c.lit(b",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b"}")?;
    let event = Event::BookTicker(BookTicker {
        update_id,
        bid_price,
        bid_qty,
        ask_price,
        ask_qty,
        transaction_time_ms,
    });
    let header = Header { symbol, event_time_ms, recv_ns };
    sink(&Record { header, event });
    Some(c.pos)
}

#[cfg(test)]
mod tests {
    use super::super::json::parse_u64;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn swar_decimals_agree_with_the_exact_parser(text in "[0-9]{0,12}(\\.[0-9]{0,9})?") {
            let exact = parse_fixed8(text.as_bytes(), Sign::Forbidden).ok();
            let quoted = format!("\"{text}\"");
            let mut c = Cursor { bytes: quoted.as_bytes(), pos: 0 };
            prop_assert_eq!(c.decimal(), exact);
        }

        #[test]
        fn swar_strings_stop_at_the_quote(body in "[ -!#-\\[\\]-~]{0,40}", tail in "[,}]{0,3}") {
            let text = format!("\"{body}\"{tail}");
            let mut c = Cursor { bytes: text.as_bytes(), pos: 0 };
            prop_assert_eq!(c.string(), Some(body.as_bytes()));
            prop_assert_eq!(c.pos, body.len() + 2);
        }

        #[test]
        fn swar_integers_agree_with_the_plain_parser(n in any::<u64>(), tail in "[,}a-z\"]{0,9}") {
            let text = format!("{n}{tail}");
            let mut c = Cursor { bytes: text.as_bytes(), pos: 0 };
            prop_assert_eq!(c.uint(), Some(n));
            prop_assert_eq!(c.pos, n.to_string().len());
        }

        #[test]
        fn swar_refuses_what_the_plain_parser_refuses(text in "[0-9]{0,25}[,x]?") {
            let mut c = Cursor { bytes: text.as_bytes(), pos: 0 };
            let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
            prop_assert_eq!(c.uint(), parse_u64(digits.as_bytes()));
        }
    }

    fn table() -> SymbolTable {
        let mut t = SymbolTable::with_capacity(4);
        for name in ["CTKUSDT", "NKNUSDT", "ETHUSDT", "ABCDEFGHIJKLMNOPQ"] {
            t.intern(name).unwrap();
        }
        t
    }

    #[test]
    fn templates_match_the_futures_layout_and_nothing_else() {
        let t = table();
        let agg = br#"{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}"#;
        let mut out = Vec::new();
        let used = agg_trade(agg, &t, 7, &mut |r| out.push(*r)).unwrap();
        let h = out[0].header;
        assert_eq!((h.event_time_ms, h.symbol, h.recv_ns, used), (1626992741575, SymbolId(0), 7, agg.len()));
        // Today's shape (`nq` between `q` and `f`; `st` last, as the SDK models it) stays on
        // the template and gives the same record.
        let today = br#"{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","nq":"9","f":23961322,"l":23961322,"T":1626992741421,"m":false}"#;
        let with_st = br#"{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","nq":"9","f":23961322,"l":23961322,"T":1626992741421,"m":false,"st":1}"#;
        for shape in [&today[..], &with_st[..]] {
            let mut again = Vec::new();
            assert_eq!(agg_trade(shape, &t, 7, &mut |r| again.push(*r)), Some(shape.len()));
            assert_eq!(again, out, "the same record from either shape");
        }
        let bad_nq = br#"{"e":"aggTrade","E":1,"a":1,"s":"CTKUSDT","p":"1","q":"10","nq":x,"f":1,"l":1,"T":1,"m":false}"#;
        assert!(agg_trade(bad_nq, &t, 0, &mut |r| out.push(*r)).is_none());
        // Spot's layout (s before a, an extra M) is left to the general parser.
        let spot = br#"{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}"#;
        assert!(agg_trade(spot, &t, 0, &mut |r| out.push(*r)).is_none());
        let trade_msg = br#"{"e":"trade","E":1723161256560,"T":1723161256560,"s":"ETHUSDT","t":4308068523,"p":"2681.62","q":"1.000","X":"MARKET","m":true}"#;
        assert!(trade(trade_msg, &t, 0, &mut |r| out.push(*r)).is_some());
        assert!(trade(&trade_msg[..trade_msg.len() - 1], &t, 0, &mut |r| out.push(*r)).is_none());
        let book = br#"{"e":"bookTicker","u":5123107838717,"s":"ETHUSDT","b":"2681.62","B":"1.165","a":"2681.63","A":"73.077","T":1723161256310,"E":1723161256311}"#;
        assert!(book_ticker(book, &t, 0, &mut |r| out.push(*r)).is_some());
        let escaped =
            br#"{"e":"bookTicker","u":1,"s":"ETH\"USDT","b":"1","B":"1","a":"1","A":"1","T":1,"E":1}"#;
        assert!(book_ticker(escaped, &t, 0, &mut |r| out.push(*r)).is_none());
        let hot = hot_envelope(br#"{"stream":"btcusdt@depth@100ms","data":{"e":1}}"#).unwrap();
        assert_eq!(
            (hot.kind, hot.symbol, hot.payload),
            (EventKind::DepthUpdate, &b"btcusdt"[..], &b"{\"e\":1}"[..])
        );
        assert!(hot_envelope(br#"{"stream":"btcusdt@depth20@100ms","data":{}}"#).is_none(), "partial depth");
        // Unknown, lowercase or over-16-byte symbols are left to the general parser.
        for symbol in ["BTCUSDT", "ethusdt", "ABCDEFGHIJKLMNOPQ", ""] {
            let msg = format!(
                r#"{{"e":"bookTicker","u":1,"s":"{symbol}","b":"1","B":"1","a":"1","A":"1","T":1,"E":1}}"#
            );
            assert!(book_ticker(msg.as_bytes(), &t, 0, &mut |r| out.push(*r)).is_none(), "{symbol}");
        }
        assert_eq!(out.len(), 3, "a template that does not match emits nothing");
    }

    proptest! {
        #[test]
        fn hot_envelopes_agree_with_the_general_split(
            symbol in "[a-z0-9_@\"]{0,18}",
            channel in "(aggTrade|trade|bookTicker|depth|depth@100ms|depth@0ms|depth@250ms|depth@500ms|depth@1ms|depth5|kline_1m|markPrice@1s|aggTrad|tradex)",
            quote in "(\"|)",
        ) {
            let text = format!(r#"{{"stream":"{symbol}@{channel}{quote},"data":{{}}}}"#);
            if let Some(hot) = hot_envelope(text.as_bytes()) {
                let (name, payload) = envelope(text.as_bytes()).expect("the general split agrees");
                let at = name.iter().position(|&b| b == b'@').unwrap();
                let (kind, partial) = aegis_wire::stream::classify_channel(&name[at + 1..]).unwrap();
                prop_assert_eq!((hot.kind, false, hot.symbol, hot.payload), (kind, partial, &name[..at], payload));
            }
        }

        #[test]
        fn the_symbol_window_stops_at_the_quote(name in "[A-Z0-9_]{1,20}", tail in "[,}]{0,20}") {
            let mut t = SymbolTable::with_capacity(2);
            let id = t.intern(&name).unwrap();
            let text = format!("\"{name}\"{tail}");
            let mut c = Cursor { bytes: text.as_bytes(), pos: 0 };
            if name.len() <= 16 {
                prop_assert_eq!(c.symbol(&t), Some(id));
                prop_assert_eq!(c.pos, name.len() + 2);
            } else {
                prop_assert_eq!(c.symbol(&t), None);
            }
        }
    }

    #[test]
    fn the_depth_template_chunks_levels_and_leaves_coin_m_to_the_general_parser() {
        let t = table();
        let mut out = Vec::new();
        let depth = br#"{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSDT","U":10,"u":20,"pu":9,"b":[["1.5","2"],["1.4","0"]],"a":[]}"#;
        let (used, chunks) = depth_update(depth, &t, 0, &mut |r| out.push(*r)).unwrap();
        assert_eq!(
            (chunks, used, out[0].header.event_time_ms, out[0].header.symbol),
            (1, depth.len(), 5, SymbolId(2))
        );
        let Event::Depth(chunk) = out[0].event else { panic!("a depth chunk") };
        let out = [chunk];
        assert_eq!((out[0].bid_count, out[0].ask_count, out[0].last), (2, 0, true));
        assert_eq!(
            (out[0].first_update_id, out[0].final_update_id, out[0].prev_final_update_id),
            (10, 20, 9)
        );
        assert_eq!(out[0].levels[1], Level { price: 140_000_000, qty: 0 });
        let coin_m = br#"{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSD_PERP","ps":"ETHUSD","U":10,"u":20,"pu":9,"b":[],"a":[]}"#;
        let mut emitted = 0;
        assert!(depth_update(coin_m, &t, 0, &mut |_| emitted += 1).is_none());
        // More levels than the stack buffer holds: left to the general parser, nothing emitted.
        let many: Vec<String> =
            (0..(MAX_FAST_DEPTH_CHUNKS * 8 + 1)).map(|i| format!("[\"{i}\",\"1\"]")).collect();
        let big = format!(
            r#"{{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSDT","U":10,"u":20,"pu":9,"b":[{}],"a":[]}}"#,
            many.join(",")
        );
        assert!(depth_update(big.as_bytes(), &t, 0, &mut |_| emitted += 1).is_none());
        assert_eq!(emitted, 0);
    }
}
