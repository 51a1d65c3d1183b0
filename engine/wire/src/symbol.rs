//! Symbols interned to small integer ids.
//!
//! Records carry a [`SymbolId`], never a string. Names are stored inline (no heap per name)
//! and looked up case-insensitively — stream names are lowercase, payloads uppercase —
//! without allocating, so the lookup may run on the hot path once the table is built.
//! Names of up to 16 bytes (every Binance symbol) are also kept in an open-addressed index
//! keyed by their bytes as two words, so a payload's uppercase symbol costs one multiply and
//! a compare or two instead of a byte-wise hash.

use std::collections::HashMap;
use thiserror::Error;

/// Longest symbol name accepted (Binance's longest are well under this).
pub const MAX_SYMBOL_LEN: usize = 24;

/// Index of a symbol in its [`SymbolTable`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(compare(PartialEq), derive(Debug, PartialEq, Eq, Clone, Copy))]
pub struct SymbolId(pub u16);

/// A symbol name stored inline, uppercase ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolName {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

/// Why a name could not be interned.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SymbolError {
    /// The name was empty.
    #[error("empty symbol name")]
    Empty,
    /// The name exceeded [`MAX_SYMBOL_LEN`].
    #[error("symbol name of {len} bytes exceeds {MAX_SYMBOL_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A byte outside `[A-Za-z0-9_]`.
    #[error("symbol name has byte {byte:#04x} at {offset}; only letters, digits and '_' allowed")]
    BadByte {
        /// The byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// The table already holds its capacity.
    #[error("symbol table full ({capacity} symbols)")]
    Full {
        /// The capacity.
        capacity: usize,
    },
}

impl SymbolName {
    /// Validates and upper-cases `name`.
    pub fn new(name: &[u8]) -> Result<Self, SymbolError> {
        if name.is_empty() {
            return Err(SymbolError::Empty);
        }
        if name.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong { len: name.len() });
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (offset, (&byte, slot)) in name.iter().zip(bytes.iter_mut()).enumerate() {
            if !(byte.is_ascii_alphanumeric() || byte == b'_') {
                return Err(SymbolError::BadByte { byte, offset });
            }
            *slot = byte.to_ascii_uppercase();
        }
        Ok(Self { len: name.len() as u8, bytes })
    }

    /// The uppercase name.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for SymbolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// FxHash (rustc's): a multiply-rotate hash, fast on the short fixed keys used here. The
/// table's keys come from configuration, not from the network, so flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Longest name the word index holds.
const WORD_KEY_LEN: usize = 16;

/// One slot of the word index; `len == 0` marks it empty.
#[derive(Debug, Clone, Copy, Default)]
struct WordSlot {
    key: u128,
    len: u8,
    id: u16,
}

/// Bidirectional map between symbol names and ids, with a fixed capacity.
#[derive(Debug, Clone)]
pub struct SymbolTable {
    names: Vec<SymbolName>,
    ids: HashMap<SymbolName, SymbolId, FxBuild>,
    /// Uppercase names of ≤ 16 bytes, open-addressed, at most half full.
    words: Vec<WordSlot>,
    capacity: usize,
}

/// The slot a word key hashes to (multiply, keep high bits: the keys differ mostly in
/// their low bytes).
fn word_hash(key: u128, len: usize) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29) ^ len as u64;
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

/// The low `len` bytes of `window` (`len` ≤ 16), the rest zeroed.
fn word_key(window: u128, len: usize) -> u128 {
    if len >= WORD_KEY_LEN {
        window
    } else {
        window & ((1u128 << (8 * len)) - 1)
    }
}

impl SymbolTable {
    /// An empty table that will hold at most `capacity` symbols (≤ 65,536).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.min(usize::from(u16::MAX) + 1);
        Self {
            names: Vec::with_capacity(capacity),
            ids: HashMap::with_capacity_and_hasher(capacity, FxBuild::default()),
            words: vec![WordSlot::default(); (2 * capacity).next_power_of_two().max(16)],
            capacity,
        }
    }

    /// Returns the id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> Result<SymbolId, SymbolError> {
        let key = SymbolName::new(name.as_bytes())?;
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        if self.names.len() == self.capacity {
            return Err(SymbolError::Full { capacity: self.capacity });
        }
        let id = SymbolId(self.names.len() as u16);
        self.names.push(key);
        self.ids.insert(key, id);
        self.index_words(key, id);
        Ok(id)
    }

    fn index_words(&mut self, name: SymbolName, id: SymbolId) {
        let len = usize::from(name.len);
        if len > WORD_KEY_LEN {
            return;
        }
        let mut head = [0u8; WORD_KEY_LEN];
        head[..len].copy_from_slice(&name.bytes[..len]);
        let key = u128::from_le_bytes(head);
        let mask = self.words.len() - 1;
        let mut at = word_hash(key, len) & mask;
        while self.words[at].len != 0 {
            at = (at + 1) & mask;
        }
        self.words[at] = WordSlot { key, len: name.len, id: id.0 };
    }

    /// Looks up a name spelled as interned (uppercase) held in the low `len` bytes of
    /// `window`, little-endian (higher bytes ignored); `None` for `len` 0 or over 16.
    #[inline(always)]
    pub fn get_window(&self, window: u128, len: usize) -> Option<SymbolId> {
        if len == 0 || len > WORD_KEY_LEN {
            return None;
        }
        let key = word_key(window, len);
        let mask = self.words.len() - 1;
        let mut at = word_hash(key, len) & mask;
        loop {
            let slot = self.words[at];
            if slot.len == 0 {
                return None;
            }
            if slot.key == key && usize::from(slot.len) == len {
                return Some(SymbolId(slot.id));
            }
            at = (at + 1) & mask;
        }
    }

    /// Looks `name` up in any letter case, without allocating.
    pub fn get(&self, name: &[u8]) -> Option<SymbolId> {
        // Fast path: payloads spell symbols in uppercase already, so try the bytes as given.
        if name.len() <= WORD_KEY_LEN {
            let mut head = [0u8; WORD_KEY_LEN];
            head[..name.len()].copy_from_slice(name);
            if let Some(id) = self.get_window(u128::from_le_bytes(head), name.len()) {
                return Some(id);
            }
        } else if name.len() <= MAX_SYMBOL_LEN {
            let mut bytes = [0u8; MAX_SYMBOL_LEN];
            bytes[..name.len()].copy_from_slice(name);
            let raw = SymbolName { len: name.len() as u8, bytes };
            if let Some(&id) = self.ids.get(&raw) {
                return Some(id);
            }
        }
        let key = SymbolName::new(name).ok()?;
        self.ids.get(&key).copied()
    }

    /// The uppercase name of `id`.
    pub fn name(&self, id: SymbolId) -> Option<&str> {
        self.names.get(usize::from(id.0)).map(SymbolName::as_str)
    }

    /// Number of symbols held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no symbol was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All (id, name) pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, &str)> {
        self.names.iter().enumerate().map(|(i, n)| (SymbolId(i as u16), n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_case_insensitively() {
        let mut table = SymbolTable::with_capacity(4);
        let btc = table.intern("BTCUSDT").unwrap();
        assert_eq!(table.intern("btcusdt").unwrap(), btc);
        let eth = table.intern("ethusdt").unwrap();
        assert_ne!(btc, eth);
        assert_eq!(table.get(b"EthUsdt"), Some(eth));
        assert_eq!(table.name(eth), Some("ETHUSDT"));
        assert_eq!(table.get(b"solusdt"), None);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn refuses_bad_names_and_overflow() {
        let mut table = SymbolTable::with_capacity(1);
        assert_eq!(table.intern(""), Err(SymbolError::Empty));
        assert_eq!(table.intern("BTC/USDT"), Err(SymbolError::BadByte { byte: b'/', offset: 3 }));
        assert_eq!(table.intern(&"A".repeat(25)), Err(SymbolError::TooLong { len: 25 }));
        table.intern("BTCUSD_PERP").unwrap();
        assert_eq!(table.intern("ETHUSDT"), Err(SymbolError::Full { capacity: 1 }));
        assert_eq!(table.get(b"bad/name"), None);
    }

    #[test]
    fn the_word_index_finds_every_short_name_and_only_those() {
        let mut table = SymbolTable::with_capacity(600);
        let names: Vec<String> = (0..600).map(|i| format!("S{i}USDT")).collect();
        for n in &names {
            table.intern(n).unwrap();
        }
        for (i, n) in names.iter().enumerate() {
            let mut window = [0xFFu8; 16];
            window[..n.len()].copy_from_slice(n.as_bytes());
            // Bytes past the name (here 0xFF) must not matter.
            assert_eq!(table.get_window(u128::from_le_bytes(window), n.len()), Some(SymbolId(i as u16)));
            assert_eq!(table.get(n.as_bytes()), Some(SymbolId(i as u16)));
        }
        let mut window = [0u8; 16];
        window[..7].copy_from_slice(b"S1USDTX");
        assert_eq!(table.get_window(u128::from_le_bytes(window), 7), None);
        assert_eq!(table.get_window(u128::from_le_bytes(window), 0), None);
        assert_eq!(table.get(b"s599usdt"), Some(SymbolId(599)), "lowercase falls back to folding");
        let long = "ABCDEFGHIJKLMNOPQRS";
        let id = table.intern(long).unwrap_err();
        assert_eq!(id, SymbolError::Full { capacity: 600 });
        let mut big = SymbolTable::with_capacity(2);
        let id = big.intern(long).unwrap();
        assert_eq!(big.get(long.as_bytes()), Some(id), "names over 16 bytes use the hash map");
        assert_eq!(big.get_window(0, 17), None);
    }
}
