//! Fixed-size, aligned byte slots holding one archived [`Record`], and files of them.
//!
//! A shard archives a record into a [`RecordSlot`] without allocating; the brain reads it in
//! place with [`RecordSlot::read`] (rkyv checked access: a corrupt slot is an error, never
//! undefined behaviour). [`RecordFile`] maps a file of slots and reads records from the
//! mapping zero-copy, the same way.

use crate::record::{ArchivedRecord, Record};
use rkyv::rancor::Failure;
use rkyv::ser::allocator::SubAllocator;
use rkyv::ser::writer::Buffer;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Bytes one archived record occupies.
pub const RECORD_SIZE: usize = std::mem::size_of::<ArchivedRecord>();
/// Slot alignment; the archived record's alignment (i128 fields) divides it.
pub const SLOT_ALIGN: usize = 16;

const _: () = assert!(std::mem::align_of::<ArchivedRecord>() <= SLOT_ALIGN);
// One size for every kind is what lets a ring hold fixed slots; keep it within four cache lines.
const _: () = assert!(RECORD_SIZE <= 256 && RECORD_SIZE.is_multiple_of(SLOT_ALIGN));

/// One aligned slot sized for exactly one archived record.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct RecordSlot {
    bytes: [u8; RECORD_SIZE],
}

/// Why a slot or record file could not be written or read.
#[derive(Debug, Error)]
pub enum SlotError {
    /// rkyv refused to archive the record into the slot.
    #[error("record does not archive into a {RECORD_SIZE}-byte slot")]
    Encode,
    /// The bytes are not a valid archived record.
    #[error("slot {index} does not hold a valid record")]
    Invalid {
        /// Slot index (0 for a lone slot).
        index: usize,
    },
    /// A record file's header is wrong.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error on a record file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Default for RecordSlot {
    fn default() -> Self {
        Self { bytes: [0; RECORD_SIZE] }
    }
}

impl RecordSlot {
    /// Archives `record` into this slot; no heap allocation.
    pub fn write(&mut self, record: &Record) -> Result<(), SlotError> {
        // Plain fixed-size data needs no scratch space.
        let written = rkyv::api::low::to_bytes_in_with_alloc::<_, _, Failure>(
            record,
            Buffer::from(&mut self.bytes[..]),
            SubAllocator::empty(),
        )
        .map_err(|_| SlotError::Encode)?;
        // A fixed-size record with no out-of-line data archives to exactly RECORD_SIZE bytes.
        if written.len() != RECORD_SIZE {
            return Err(SlotError::Encode);
        }
        Ok(())
    }

    /// A slot holding `record`.
    pub fn encode(record: &Record) -> Result<Self, SlotError> {
        let mut slot = Self::default();
        slot.write(record)?;
        Ok(slot)
    }

    /// The archived record in this slot, validated, read in place.
    pub fn read(&self) -> Result<&ArchivedRecord, SlotError> {
        read_record(&self.bytes, 0)
    }

    /// The raw bytes of the slot.
    pub fn as_bytes(&self) -> &[u8; RECORD_SIZE] {
        &self.bytes
    }
}

fn read_record(bytes: &[u8], index: usize) -> Result<&ArchivedRecord, SlotError> {
    rkyv::api::low::access::<ArchivedRecord, Failure>(bytes).map_err(|_| SlotError::Invalid { index })
}

/// Magic at the start of a record file.
pub const RECORD_FILE_MAGIC: [u8; 8] = *b"AEGISREC";
/// Format version of record files.
pub const RECORD_FILE_VERSION: u32 = 1;
/// Bytes before the first slot: magic, version, record size, padding to the slot alignment.
pub const RECORD_FILE_HEADER: usize = 16;

/// Appends records to a file of fixed slots.
pub struct RecordFileWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl RecordFileWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path) -> Result<Self, SlotError> {
        let io = |source| SlotError::Io { path: path.to_path_buf(), source };
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        let mut header = [0u8; RECORD_FILE_HEADER];
        header[..8].copy_from_slice(&RECORD_FILE_MAGIC);
        header[8..12].copy_from_slice(&RECORD_FILE_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
        file.write_all(&header).map_err(io)?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    /// Appends one record.
    pub fn append(&mut self, record: &Record) -> Result<(), SlotError> {
        let slot = RecordSlot::encode(record)?;
        self.file
            .write_all(slot.as_bytes())
            .map_err(|source| SlotError::Io { path: self.path.clone(), source })
    }

    /// Flushes buffered records to the file.
    pub fn finish(mut self) -> Result<(), SlotError> {
        self.file.flush().map_err(|source| SlotError::Io { path: self.path.clone(), source })
    }
}

/// A read-only memory map of a record file.
pub struct RecordFile {
    map: memmap2::Mmap,
    len: usize,
}

impl RecordFile {
    /// Maps `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, SlotError> {
        let bad = |reason: String| SlotError::BadFile { path: path.to_path_buf(), reason };
        let file =
            std::fs::File::open(path).map_err(|source| SlotError::Io { path: path.to_path_buf(), source })?;
        // SAFETY: the map is read-only and only ever read through rkyv's checked access, so a
        // concurrent writer can make a read fail validation but cannot cause undefined
        // behaviour beyond what bytecheck guards; we own no other reference to the file.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|source| SlotError::Io { path: path.to_path_buf(), source })?;
        if map.len() < RECORD_FILE_HEADER || map[..8] != RECORD_FILE_MAGIC {
            return Err(bad("not a record file (bad magic)".into()));
        }
        let version = u32::from_le_bytes([map[8], map[9], map[10], map[11]]);
        if version != RECORD_FILE_VERSION {
            return Err(bad(format!("format version {version}, expected {RECORD_FILE_VERSION}")));
        }
        let size = u32::from_le_bytes([map[12], map[13], map[14], map[15]]) as usize;
        if size != RECORD_SIZE {
            return Err(bad(format!("record size {size}, expected {RECORD_SIZE}")));
        }
        let body = map.len() - RECORD_FILE_HEADER;
        if !body.is_multiple_of(RECORD_SIZE) {
            return Err(bad(format!("{} trailing bytes after the last whole record", body % RECORD_SIZE)));
        }
        Ok(Self { map, len: body / RECORD_SIZE })
    }

    /// Number of records in the file.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record `index`, read in place from the mapping.
    pub fn get(&self, index: usize) -> Result<&ArchivedRecord, SlotError> {
        if index >= self.len {
            return Err(SlotError::Invalid { index });
        }
        let start = RECORD_FILE_HEADER + index * RECORD_SIZE;
        read_record(&self.map[start..start + RECORD_SIZE], index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use crate::symbol::SymbolId;
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = Header> {
        (any::<u16>(), any::<i64>(), any::<u64>()).prop_map(|(s, e, r)| Header {
            symbol: SymbolId(s),
            event_time_ms: e,
            recv_ns: r,
        })
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    fn level() -> impl Strategy<Value = Level> {
        (any::<i64>(), any::<i64>()).prop_map(|(price, qty)| Level { price, qty })
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<u64>(), any::<i64>(), any::<i64>(), any::<i64>(), any::<bool>()).prop_map(
                |(t, p, q, tt, m)| {
                    Event::Trade(Trade {
                        trade_id: t,
                        price: p,
                        qty: q,
                        trade_time_ms: tt,
                        buyer_is_maker: m,
                    })
                }
            ),
            (
                any::<u64>(),
                any::<i64>(),
                any::<i64>(),
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                any::<bool>()
            )
                .prop_map(|(a, p, q, f, l, t, m)| Event::AggTrade(AggTrade {
                    agg_id: a,
                    price: p,
                    qty: q,
                    first_trade_id: f,
                    last_trade_id: l,
                    trade_time_ms: t,
                    buyer_is_maker: m
                })),
            (0usize..15, any::<[i64; 8]>(), any::<[i128; 4]>(), any::<u64>(), any::<bool>()).prop_map(
                |(i, n, v, trades, closed)| Event::Kline(Kline {
                    interval: INTERVALS_FOR_TEST[i],
                    open_time_ms: n[0],
                    close_time_ms: n[1],
                    first_trade_id: n[2],
                    last_trade_id: n[3],
                    open: n[4],
                    high: n[5],
                    low: n[6],
                    close: n[7],
                    volume: v[0],
                    quote_volume: v[1],
                    taker_buy_volume: v[2],
                    taker_buy_quote_volume: v[3],
                    trades,
                    closed
                })
            ),
            (any::<u64>(), any::<[i64; 5]>()).prop_map(|(u, n)| Event::BookTicker(BookTicker {
                update_id: u,
                bid_price: n[0],
                bid_qty: n[1],
                ask_price: n[2],
                ask_qty: n[3],
                transaction_time_ms: n[4]
            })),
            (
                any::<(u64, u64, i64, i64)>(),
                any::<(bool, u16, bool)>(),
                0u8..=8,
                proptest::array::uniform8(level())
            )
                .prop_map(|((first, fin, prev, t), (partial, part, last), bids, levels)| {
                    Event::Depth(DepthChunk {
                        first_update_id: first,
                        final_update_id: fin,
                        prev_final_update_id: prev,
                        transaction_time_ms: t,
                        partial,
                        snapshot: part % 2 == 1,
                        part,
                        last,
                        bid_count: bids,
                        ask_count: 8 - bids,
                        levels,
                    })
                }),
            any::<[i64; 5]>().prop_map(|n| Event::MarkPrice(MarkPrice {
                mark_price: n[0],
                index_price: n[1],
                estimated_settle_price: n[2],
                funding_rate: n[3],
                next_funding_time_ms: n[4]
            })),
            prop_oneof![
                Just(ResyncReason::Reconnect),
                Just(ResyncReason::RingDrop),
                Just(ResyncReason::GapFilled)
            ]
            .prop_map(|reason| Event::Resync(Resync { reason })),
            (side(), any::<[i64; 6]>()).prop_map(|(side, n)| Event::ForceOrder(ForceOrder {
                side,
                price: n[0],
                avg_price: n[1],
                orig_qty: n[2],
                last_filled_qty: n[3],
                filled_qty: n[4],
                trade_time_ms: n[5]
            })),
        ]
    }

    const INTERVALS_FOR_TEST: [Interval; 15] = [
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    fn record() -> impl Strategy<Value = Record> {
        (header(), event()).prop_map(|(header, event)| Record { header, event })
    }

    fn deserialize(archived: &ArchivedRecord) -> Record {
        rkyv::api::low::deserialize::<Record, Failure>(archived).expect("deserialize")
    }

    proptest! {
        #[test]
        fn every_kind_round_trips_through_a_slot(record in record()) {
            let slot = RecordSlot::encode(&record).unwrap();
            let archived = slot.read().unwrap();
            prop_assert!(*archived == record);
            prop_assert_eq!(deserialize(archived), record);
        }

        #[test]
        fn every_kind_round_trips_through_an_mmapped_file(records in proptest::collection::vec(record(), 0..40)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("records.bin");
            let mut writer = RecordFileWriter::create(&path).unwrap();
            for r in &records {
                writer.append(r).unwrap();
            }
            writer.finish().unwrap();
            let file = RecordFile::open(&path).unwrap();
            prop_assert_eq!(file.len(), records.len());
            for (i, r) in records.iter().enumerate() {
                prop_assert_eq!(deserialize(file.get(i).unwrap()), *r);
            }
            prop_assert!(file.get(records.len()).is_err());
        }

        #[test]
        fn garbage_slots_are_refused_not_misread(bytes in proptest::collection::vec(any::<u8>(), RECORD_SIZE)) {
            let mut slot = RecordSlot::default();
            slot.bytes.copy_from_slice(&bytes);
            // Either a valid record (every field is plain data) or an error; never UB or panic.
            let _ = slot.read();
        }
    }

    #[test]
    fn identity_follows_the_spec() {
        let record = Record {
            header: Header { symbol: SymbolId(3), event_time_ms: 1_000, recv_ns: 5 },
            event: Event::Kline(Kline {
                interval: Interval::M1,
                open_time_ms: 60_000,
                close_time_ms: 119_999,
                first_trade_id: 1,
                last_trade_id: 2,
                open: 1,
                high: 1,
                low: 1,
                close: 1,
                volume: 0,
                quote_volume: 0,
                taker_buy_volume: 0,
                taker_buy_quote_volume: 0,
                trades: 2,
                closed: true,
            }),
        };
        let slot = RecordSlot::encode(&record).unwrap();
        let id = slot.read().unwrap().identity().unwrap();
        assert_eq!(
            id,
            EventIdentity { kind: EventKind::Kline, symbol: SymbolId(3), primary: 60_000, secondary: 1_000 }
        );
    }

    #[test]
    fn corrupt_file_headers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.bin");
        std::fs::write(&path, b"NOTAFILE").unwrap();
        let err = RecordFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("bad.bin") && err.contains("magic"), "{err}");
        let mut writer = RecordFileWriter::create(&path).unwrap();
        writer
            .append(&Record {
                header: Header { symbol: SymbolId(0), event_time_ms: 0, recv_ns: 0 },
                event: Event::MarkPrice(MarkPrice {
                    mark_price: 1,
                    index_price: 1,
                    estimated_settle_price: 1,
                    funding_rate: 1,
                    next_funding_time_ms: 1,
                }),
            })
            .unwrap();
        writer.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        let err = RecordFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("trailing"), "{err}");
    }
}
