//! A borrowing JSON object scanner: walks the fields of one object without allocating.
//!
//! Only what Binance payloads need: objects, arrays, strings (returned raw, escapes left in
//! place), numbers, booleans and null. Nested values are returned as raw spans, so a caller
//! descends only where it wants to. Never panics on any input.

/// A scan failure with the byte offset it happened at (relative to the scanned slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct JsonError {
    /// What was expected or wrong.
    pub what: &'static str,
    /// Where.
    pub offset: usize,
}

/// A JSON value, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// String contents between the quotes, escapes not decoded.
    Str(&'a [u8]),
    /// A number's text.
    Num(&'a [u8]),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object, braces included.
    Object(&'a [u8]),
    /// An array, brackets included.
    Array(&'a [u8]),
}

/// Walks the members of one object or the elements of one array.
pub struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    first: bool,
    close: u8,
}

impl<'a> Scanner<'a> {
    /// A scanner over the object `bytes` (which must start with `{` after whitespace).
    pub fn object(bytes: &'a [u8]) -> Result<Self, JsonError> {
        Self::open(bytes, b'{', b'}')
    }

    /// A scanner over the array `bytes` (which must start with `[` after whitespace).
    pub fn array(bytes: &'a [u8]) -> Result<Self, JsonError> {
        Self::open(bytes, b'[', b']')
    }

    fn open(bytes: &'a [u8], open: u8, close: u8) -> Result<Self, JsonError> {
        let mut s = Self { bytes, pos: 0, first: true, close };
        s.skip_ws();
        if s.peek() != Some(open) {
            return Err(s.err(if open == b'{' { "expected '{'" } else { "expected '['" }));
        }
        s.pos += 1;
        Ok(s)
    }

    fn err(&self, what: &'static str) -> JsonError {
        JsonError { what, offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Offset just past the last member read (the closing brace once done).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Advances to the next member: `true` if there is one, `false` at the closing bracket.
    fn advance(&mut self) -> Result<bool, JsonError> {
        self.skip_ws();
        match self.peek() {
            Some(c) if c == self.close => {
                self.pos += 1;
                return Ok(false);
            }
            Some(b',') if !self.first => {
                self.pos += 1;
                self.skip_ws();
            }
            Some(_) if self.first => {}
            Some(_) => return Err(self.err("expected ',' or closing bracket")),
            None => return Err(self.err("unexpected end")),
        }
        self.first = false;
        Ok(true)
    }

    /// The next `"key": value` of an object, or `None` after the closing brace.
    pub fn next_field(&mut self) -> Result<Option<(&'a [u8], Value<'a>)>, JsonError> {
        let Some(key) = self.next_key()? else { return Ok(None) };
        Ok(Some((key, self.value()?)))
    }

    /// The next key of an object, leaving the scanner at its value (read it with
    /// [`Scanner::value`] or consume it with [`Scanner::skip_value_bytes`]).
    pub fn next_key(&mut self) -> Result<Option<&'a [u8]>, JsonError> {
        if !self.advance()? {
            return Ok(None);
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected ':'"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(Some(key))
    }

    /// The unread input from the current position.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    /// Marks `n` bytes of [`Scanner::rest`] as consumed by a nested reader.
    pub fn skip_value_bytes(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.bytes.len());
    }

    /// The next element of an array, or `None` after the closing bracket.
    pub fn next_element(&mut self) -> Result<Option<Value<'a>>, JsonError> {
        if !self.advance()? {
            return Ok(None);
        }
        self.value().map(Some)
    }

    fn string(&mut self) -> Result<&'a [u8], JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        let start = self.pos + 1;
        let tail = &self.bytes[start..];
        let mut i = 0;
        while i < tail.len() {
            let b = tail[i];
            if b == b'"' {
                self.pos = start + i + 1;
                return Ok(&tail[..i]);
            }
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b < 0x20 {
                self.pos = start + i;
                return Err(self.err("control character in string"));
            }
            i += 1;
        }
        self.pos = self.bytes.len();
        Err(self.err("unterminated string"))
    }

    /// Reads the value at the current position (after [`Scanner::next_key`]).
    pub fn value(&mut self) -> Result<Value<'a>, JsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'{') => self.nested(b'{', b'}').map(Value::Object),
            Some(b'[') => self.nested(b'[', b']').map(Value::Array),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.pos += 1;
                }
                Ok(Value::Num(&self.bytes[start..self.pos]))
            }
            None => Err(self.err("unexpected end")),
            _ => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static [u8], value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("bad literal"))
        }
    }

    /// Skips a nested object or array, string-aware; returns its span.
    fn nested(&mut self, open: u8, close: u8) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut i = self.pos;
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'"' => {
                    self.pos = i;
                    self.string()?;
                    i = self.pos;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        if b != close {
                            self.pos = i;
                            return Err(self.err("mismatched bracket"));
                        }
                        self.pos = i + 1;
                        return Ok(&self.bytes[start..self.pos]);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let _ = open;
        // Point at where the unterminated value began.
        self.pos = start;
        Err(self.err("unterminated object or array"))
    }
}

/// Parses an unsigned JSON integer.
pub fn parse_u64(num: &[u8]) -> Option<u64> {
    if num.is_empty() || num.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in num {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Parses a signed JSON integer.
pub fn parse_i64(num: &[u8]) -> Option<i64> {
    match num.split_first() {
        Some((b'-', rest)) => {
            let v = parse_u64(rest)?;
            if v <= i64::MAX as u64 + 1 {
                Some((v as i64).wrapping_neg())
            } else {
                None
            }
        }
        _ => parse_u64(num).and_then(|v| i64::try_from(v).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walks_fields_and_nested_values() {
        let text = br#" { "e" : "kline", "E":1638747660000, "k":{"t":1,"x":true,"s":"a\"}b"}, "b":[["1","2"]], "n":null, "m":false } "#;
        let mut s = Scanner::object(text).unwrap();
        let mut keys = Vec::new();
        while let Some((k, v)) = s.next_field().unwrap() {
            keys.push((k.to_vec(), v));
            if k == b"k" {
                let Value::Object(inner) = v else { panic!() };
                let mut i = Scanner::object(inner).unwrap();
                let (k1, v1) = i.next_field().unwrap().unwrap();
                assert_eq!((k1, v1), (&b"t"[..], Value::Num(b"1")));
            }
        }
        assert_eq!(keys.len(), 6);
        assert_eq!(keys[0].1, Value::Str(b"kline"));
        assert_eq!(keys[1].1, Value::Num(b"1638747660000"));
        assert_eq!(keys[4].1, Value::Null);
        assert_eq!(keys[5].1, Value::Bool(false));
        let Value::Array(levels) = keys[3].1 else { panic!() };
        let mut a = Scanner::array(levels).unwrap();
        let Some(Value::Array(level)) = a.next_element().unwrap() else { panic!() };
        let mut l = Scanner::array(level).unwrap();
        assert_eq!(l.next_element().unwrap(), Some(Value::Str(b"1")));
        assert_eq!(l.next_element().unwrap(), Some(Value::Str(b"2")));
        assert_eq!(l.next_element().unwrap(), None);
        assert_eq!(a.next_element().unwrap(), None);
    }

    #[test]
    fn refuses_malformed_objects_with_offsets() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "expected '{'"),
            (b"{\"a\" 1}", "expected ':'"),
            (b"{\"a\":1 \"b\":2}", "expected ',' or closing bracket"),
            (b"{\"a\":tru}", "bad literal"),
            (b"{\"a\":\"x", "unterminated string"),
            (b"{\"a\":[1,2}", "mismatched bracket"),
            (b"{\"a\":1", "unexpected end"),
        ];
        for (input, want) in cases {
            let mut s = match Scanner::object(input) {
                Ok(s) => s,
                Err(e) => {
                    assert_eq!(e.what, want, "{:?}", String::from_utf8_lossy(input));
                    continue;
                }
            };
            let err = loop {
                match s.next_field() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("accepted {:?}", String::from_utf8_lossy(input)),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.what, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"1.5"), None);
        assert_eq!(parse_u64(b""), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(mut s) = Scanner::object(&bytes) {
                for _ in 0..100 {
                    match s.next_field() {
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
