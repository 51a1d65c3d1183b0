//! Fast paths for the busiest payloads in Binance's exact compact layout.
//!
//! USDⓈ-M sends aggTrade, trade and bookTicker with fixed field order and no whitespace. A
//! template walks that layout byte by byte — no field search, no intermediate values — and
//! returns `None` at the first surprise (another order, an extra field, whitespace, spot's
//! layout), in which case the caller parses the same bytes with the general scanner. A
//! template emits nothing unless the whole payload matched, so falling back never doubles
//! a record.

use aegis_wire::decimal::{parse_fixed8, Sign};
use aegis_wire::{AggTrade, BookTicker, DepthChunk, Event, Level, Trade, DEPTH_LEVELS_PER_CHUNK};

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
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.pos..)?;
        let (value, len) = parse_uint_swar(rest)?;
        self.pos += len;
        Some(value)
    }

    /// A price or quantity string: `"digits[.digits]"` parsed in one pass (SWAR), with the
    /// exact general parser as the fallback for anything else.
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
    #[inline]
    fn plain_decimal(&mut self) -> Option<i64> {
        self.lit(b"\"")?;
        let (int_value, int_len) = parse_uint_swar(self.bytes.get(self.pos..)?)?;
        if int_len > 11 {
            return None;
        }
        self.pos += int_len;
        let mut frac_value = 0;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let word = load_word(self.bytes.get(self.pos..)?);
            let run = digit_run(word);
            if run == 0 || (run == 8 && self.bytes.get(self.pos + 8).is_some_and(u8::is_ascii_digit)) {
                return None;
            }
            // Left-aligned: missing trailing digits are zeros.
            let padded = if run == 8 {
                word
            } else {
                (word & (u64::MAX >> (8 * (8 - run)))) | (ASCII_ZEROS << (8 * run))
            };
            frac_value = eight_digits(padded);
            self.pos += run;
        }
        self.lit(b"\"")?;
        i64::try_from(int_value.checked_mul(100_000_000)?.checked_add(frac_value)?).ok()
    }

    fn int(&mut self) -> Option<i64> {
        self.uint().and_then(|v| i64::try_from(v).ok())
    }

    /// A string without escapes or control characters (anything else: `None`).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.lit(b"\"")?;
        let start = self.pos;
        let mut at = start;
        loop {
            let rest = self.bytes.get(at..)?;
            if rest.is_empty() {
                return None;
            }
            let word = load_word(rest);
            let special = special_bytes(word);
            if special != 0 {
                let offset = (special.trailing_zeros() / 8) as usize;
                if offset < rest.len().min(8) {
                    if rest[offset] != b'"' {
                        return None;
                    }
                    self.pos = at + offset + 1;
                    return Some(&self.bytes[start..at + offset]);
                }
            }
            at += 8;
        }
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

/// A diff-depth update matched by [`depth_update`]: its chunks are in the caller's buffer.
pub struct MatchedDepth<'a> {
    /// `E`.
    pub event_time_ms: i64,
    /// `s`, as sent.
    pub symbol: &'a [u8],
    /// Chunks written to the buffer.
    pub chunks: usize,
    /// Bytes of the payload object.
    pub used: usize,
}

/// `{"e":"depthUpdate","E":…,"T":…,"s":"…","U":…,"u":…,"pu":…,"b":[["p","q"],…],"a":[…]}`
/// with at most `MAX_FAST_DEPTH_CHUNKS × 8` levels, chunked into `out` (bids first).
pub fn depth_update<'a>(
    bytes: &'a [u8],
    out: &mut [DepthChunk; MAX_FAST_DEPTH_CHUNKS],
) -> Option<MatchedDepth<'a>> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"T\":")?;
    let transaction_time_ms = c.int()?;
    c.lit(b",\"s\":")?;
    let symbol = c.string()?;
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
    Some(MatchedDepth { event_time_ms, symbol, chunks: chunks + 1, used: c.pos })
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

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Up to eight bytes from the front of `bytes`, little-endian; missing bytes read as 0x00
/// (never a digit, quote or backslash... but a control byte, which ends strings safely).
#[inline(always)]
fn load_word(bytes: &[u8]) -> u64 {
    if let Some(head) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*head);
    }
    let mut buf = [0u8; 8];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u64::from_le_bytes(buf)
}

/// A mask with the high bit set in each byte that is `"`, `\\` or below 0x20.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

/// `digits[.digits]` with ≤ 11 integer and ≤ 8 fractional digits, scaled by 10^8 (the
/// reference the one-pass cursor decimal is tested against).
#[cfg(test)]
fn fast_fixed8(text: &[u8]) -> Option<i64> {
    let (int, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &text[text.len()..]),
    };
    if int.is_empty() || int.len() > 11 || frac.len() > 8 {
        return None;
    }
    let int_value = if int.len() <= 8 {
        let word = load_word(int);
        if digit_run(word) < int.len() {
            return None;
        }
        let n = int.len();
        let shifted = if n == 8 { word } else { (word << (8 * (8 - n))) | (ASCII_ZEROS >> (8 * n)) };
        eight_digits(shifted)
    } else {
        let (high, low) = int.split_at(int.len() - 8);
        let (hw, lw) = (load_word(high), load_word(low));
        if digit_run(hw) < high.len() || digit_run(lw) < 8 {
            return None;
        }
        let n = high.len();
        eight_digits((hw << (8 * (8 - n))) | (ASCII_ZEROS >> (8 * n))) * 100_000_000 + eight_digits(lw)
    };
    let frac_value = if frac.is_empty() {
        0
    } else {
        // Left-aligned: trailing missing digits are zeros.
        let word = load_word(frac);
        if digit_run(word) < frac.len() {
            return None;
        }
        let n = frac.len();
        let padded =
            if n == 8 { word } else { (word & (u64::MAX >> (8 * (8 - n)))) | (ASCII_ZEROS << (8 * n)) };
        eight_digits(padded)
    };
    i64::try_from(int_value.checked_mul(100_000_000)?.checked_add(frac_value)?).ok()
}

/// The unsigned integer at the front of `bytes` and its length in digits (1–20).
#[inline(always)]
fn parse_uint_swar(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = load_word(bytes);
    let run = digit_run(first);
    if run == 0 {
        return None;
    }
    if run < 8 {
        let shifted = (first << (8 * (8 - run))) | (ASCII_ZEROS >> (8 * run));
        return Some((eight_digits(shifted), run));
    }
    let high = eight_digits(first);
    let second = load_word(bytes.get(8..).unwrap_or(&[]));
    let run2 = digit_run(second);
    if run2 < 8 {
        // Up to 15 digits: no overflow possible.
        let low = if run2 == 0 {
            0
        } else {
            eight_digits((second << (8 * (8 - run2))) | (ASCII_ZEROS >> (8 * run2)))
        };
        return Some((high * POW10[run2] + low, 8 + run2));
    }
    // 16+ digits: the general path with overflow checks.
    let mut value = high * 100_000_000 + eight_digits(second);
    let mut len = 16;
    while let Some(&b) = bytes.get(len) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len <= 20).then_some((value, len))
}

/// How many of the word's bytes, from the first, are ASCII digits.
#[inline(always)]
fn digit_run(word: u64) -> usize {
    // A byte is a digit when its high nibble is 3 and adding 6 does not carry into it.
    let not_digit = (word & 0xF0F0_F0F0_F0F0_F0F0 ^ 0x3030_3030_3030_3030)
        | ((word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of eight ASCII digits packed little-endian (first digit in the low byte).
#[inline(always)]
fn eight_digits(word: u64) -> u64 {
    let w = word.wrapping_sub(0x3030_3030_3030_3030);
    let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00FF_00FF_00FF_00FF;
    let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_FFFF_0000_FFFF;
    (w.wrapping_mul(10_000) + (w >> 32)) & 0xFFFF_FFFF
}

/// An event matched by a template: its event time, symbol bytes, the event, bytes spanned.
pub struct Matched<'a> {
    /// `E`.
    pub event_time_ms: i64,
    /// `s`, as sent.
    pub symbol: &'a [u8],
    /// The event.
    pub event: Event,
    /// Bytes of the payload object.
    pub used: usize,
}

/// `{"e":"aggTrade","E":…,"a":…,"s":"…","p":"…","q":"…","f":…,"l":…,"T":…,"m":…}`
pub fn agg_trade(bytes: &[u8]) -> Option<Matched<'_>> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"aggTrade\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"a\":")?;
    let agg_id = c.uint()?;
    c.lit(b",\"s\":")?;
    let symbol = c.string()?;
    c.lit(b",\"p\":")?;
    let price = c.decimal()?;
    c.lit(b",\"q\":")?;
    let qty = c.decimal()?;
    c.lit(b",\"f\":")?;
    let first_trade_id = c.uint()?;
    c.lit(b",\"l\":")?;
    let last_trade_id = c.uint()?;
    c.lit(b",\"T\":")?;
    let trade_time_ms = c.int()?;
    c.lit(b",\"m\":")?;
    let buyer_is_maker = c.boolean()?;
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
    Some(Matched { event_time_ms, symbol, event, used: c.pos })
}

/// `{"e":"trade","E":…,"T":…,"s":"…","t":…,"p":"…","q":"…","X":"…","m":…}`
pub fn trade(bytes: &[u8]) -> Option<Matched<'_>> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"trade\",\"E\":")?;
    let event_time_ms = c.int()?;
    c.lit(b",\"T\":")?;
    let trade_time_ms = c.int()?;
    c.lit(b",\"s\":")?;
    let symbol = c.string()?;
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
    Some(Matched { event_time_ms, symbol, event, used: c.pos })
}

/// `{"e":"bookTicker","u":…,"s":"…","b":"…","B":"…","a":"…","A":"…","T":…,"E":…}`
pub fn book_ticker(bytes: &[u8]) -> Option<Matched<'_>> {
    let mut c = Cursor { bytes, pos: 0 };
    c.lit(b"{\"e\":\"bookTicker\",\"u\":")?;
    let update_id = c.uint()?;
    c.lit(b",\"s\":")?;
    let symbol = c.string()?;
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
    Some(Matched { event_time_ms, symbol, event, used: c.pos })
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
            if let Some(v) = fast_fixed8(text.as_bytes()) {
                prop_assert_eq!(Some(v), exact);
            }
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

    #[test]
    fn templates_match_the_futures_layout_and_nothing_else() {
        let agg = br#"{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}"#;
        let m = agg_trade(agg).unwrap();
        assert_eq!((m.event_time_ms, m.symbol, m.used), (1626992741575, &b"CTKUSDT"[..], agg.len()));
        // Spot's layout (s before a, an extra M) is left to the general parser.
        let spot = br#"{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}"#;
        assert!(agg_trade(spot).is_none());
        let trade_msg = br#"{"e":"trade","E":1723161256560,"T":1723161256560,"s":"ETHUSDT","t":4308068523,"p":"2681.62","q":"1.000","X":"MARKET","m":true}"#;
        assert!(trade(trade_msg).is_some());
        assert!(trade(&trade_msg[..trade_msg.len() - 1]).is_none());
        let book = br#"{"e":"bookTicker","u":5123107838717,"s":"ETHUSDT","b":"2681.62","B":"1.165","a":"2681.63","A":"73.077","T":1723161256310,"E":1723161256311}"#;
        assert!(book_ticker(book).is_some());
        let escaped =
            br#"{"e":"bookTicker","u":1,"s":"ETH\"USDT","b":"1","B":"1","a":"1","A":"1","T":1,"E":1}"#;
        assert!(book_ticker(escaped).is_none());
    }

    #[test]
    fn the_depth_template_chunks_levels_and_leaves_coin_m_to_the_general_parser() {
        let mut out = [DepthChunk::EMPTY; MAX_FAST_DEPTH_CHUNKS];
        let depth = br#"{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSDT","U":10,"u":20,"pu":9,"b":[["1.5","2"],["1.4","0"]],"a":[]}"#;
        let m = depth_update(depth, &mut out).unwrap();
        assert_eq!((m.chunks, m.used, m.event_time_ms), (1, depth.len(), 5));
        assert_eq!((out[0].bid_count, out[0].ask_count, out[0].last), (2, 0, true));
        assert_eq!(
            (out[0].first_update_id, out[0].final_update_id, out[0].prev_final_update_id),
            (10, 20, 9)
        );
        assert_eq!(out[0].levels[1], Level { price: 140_000_000, qty: 0 });
        let coin_m = br#"{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSD_PERP","ps":"ETHUSD","U":10,"u":20,"pu":9,"b":[],"a":[]}"#;
        assert!(depth_update(coin_m, &mut out).is_none());
        // More levels than the stack buffer holds: left to the general parser, nothing emitted.
        let many: Vec<String> =
            (0..(MAX_FAST_DEPTH_CHUNKS * 8 + 1)).map(|i| format!("[\"{i}\",\"1\"]")).collect();
        let big = format!(
            r#"{{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSDT","U":10,"u":20,"pu":9,"b":[{}],"a":[]}}"#,
            many.join(",")
        );
        assert!(depth_update(big.as_bytes(), &mut out).is_none());
    }
}
