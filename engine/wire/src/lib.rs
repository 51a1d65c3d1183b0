//! Aegis wire formats: what several processes agree on byte for byte.
//!
//! This crate pulls in no async runtime and makes no I/O policy, so the engine, the ML
//! sidecar and the tools can all link it.
//!
//! - [`decimal`]: exact decimal strings ⇄ fixed-point `i64`/`i128` with 8 fractional digits.
//! - [`experience`]: the experience log's mmap ring files (trade experiences, bar samples).
//! - [`symbol`]: symbol names interned to [`SymbolId`]s.
//! - [`record`]: one fixed-size rkyv record per market event.
//! - [`slot`]: aligned slots and mmap'd files of records, read zero-copy.
//! - [`stream`]: Binance stream names, their event kinds and endpoint tiers, REST weights.
//! - [`units`]: durations and sizes as configs write them, and the minute in ms.
//! - [`websocket`]: RFC 6455 constants and the handshake's accept key.
//! - [`weights`]: the mmap'd model weights file (A/B slots, seqlock publish) and its layout.

pub mod decimal;
pub mod experience;
pub mod record;
pub mod slot;
pub mod stream;
pub mod symbol;
pub mod units;
pub mod websocket;
pub mod weights;

pub use decimal::{parse_fixed8, parse_fixed8_i128, DecimalError, Fixed8, Rounding, Sign, SCALE};
pub use record::{
    AggTrade, BookTicker, DepthChunk, Event, EventIdentity, EventKind, ForceOrder, Header, Interval, Kline,
    Level, MarkPrice, Record, Resync, ResyncReason, Side, Trade, DEPTH_LEVELS_PER_CHUNK,
};
pub use slot::{RecordFile, RecordFileWriter, RecordSlot, SlotError, RECORD_SIZE};
pub use symbol::{SymbolId, SymbolTable};
