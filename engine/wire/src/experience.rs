//! The experience log (SPEC §7): mmap'd ring files of fixed-size records shared between
//! the engine (one writer) and the sidecar (readers in another process).
//!
//! File layout, all little-endian 64-bit words: a 64-byte header — magic, format version,
//! words per record, capacity, `begun` and `done` counters — then `capacity` slots. Record
//! `n` (counting from 0, forever) lives in slot `n % capacity`. The writer bumps `begun`,
//! writes the slot, then publishes `done` with a release store. A reader copies a record
//! `i < done`, then checks that `begun` has not reached `i + capacity` (which would mean
//! the slot was being reused while it copied): a reader never accepts a half-written
//! record. Every access to the shared mapping is an atomic word load or store, so the two
//! processes never race in Rust's sense.

use memmap2::MmapMut;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// `"AEGISEXP"`.
const MAGIC: u64 = u64::from_le_bytes(*b"AEGISEXP");
/// Format version.
const VERSION: u64 = 1;
/// Header words.
const HEADER_WORDS: usize = 8;
const BEGUN: usize = 4;
const DONE: usize = 5;

/// Why a ring file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RingFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a ring of this shape (magic, version, record size or capacity).
    #[error("{path}: not an experience ring of {words}-word records × {capacity} ({what})")]
    Mismatch {
        /// The file.
        path: String,
        /// Expected words per record.
        words: usize,
        /// Expected capacity.
        capacity: usize,
        /// What differed.
        what: &'static str,
    },
}

/// A mapped ring file: header and slots as atomic words.
struct Mapped {
    _map: MmapMut,
    words: *const AtomicU64,
    len: usize,
}

// SAFETY: the pointer targets the mapping owned by `_map`, which lives as long as `Mapped`,
// and every access through it is atomic.
unsafe impl Send for Mapped {}
// SAFETY: as above: shared access is atomic word loads and stores only.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len, "ring word {i} out of {}", self.len);
        // SAFETY: `i < len` words lie inside the mapping (checked above), the mapping is
        // page-aligned so every word is 8-byte aligned, and `AtomicU64` has the layout of
        // `u64`.
        unsafe { &*self.words.add(i) }
    }
}

/// Maps `path` as a ring of `capacity` records of `record_words` words, creating and
/// initialising it when it does not exist (`create`), else checking its header.
fn map(path: &Path, record_words: usize, capacity: usize, create: bool) -> Result<Mapped, RingFileError> {
    let name = path.display().to_string();
    let io = |source| RingFileError::Io { path: name.clone(), source };
    let mismatch = |what| RingFileError::Mismatch { path: name.clone(), words: record_words, capacity, what };
    let len = HEADER_WORDS + record_words * capacity;
    if create {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
    }
    let file =
        OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let fresh = size == 0;
    if fresh && create {
        file.set_len((len * 8) as u64).map_err(io)?;
    } else if size != (len * 8) as u64 {
        return Err(mismatch("file size"));
    }
    // SAFETY: the file is this ring's own; other processes touch it only through this
    // module's atomic word accesses, so the mapping is never observed torn at word level.
    let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
    let words = map.as_mut_ptr() as *const AtomicU64;
    let mapped = Mapped { _map: map, words, len };
    if fresh && create {
        for (i, value) in [MAGIC, VERSION, record_words as u64, capacity as u64].into_iter().enumerate() {
            mapped.word(i).store(value, Ordering::Relaxed);
        }
        fence(Ordering::Release);
    }
    let header = |i: usize| mapped.word(i).load(Ordering::Acquire);
    if header(0) != MAGIC || header(1) != VERSION {
        return Err(mismatch("magic or version"));
    }
    if header(2) != record_words as u64 || header(3) != capacity as u64 {
        return Err(mismatch("record size or capacity"));
    }
    Ok(mapped)
}

/// The capacity an existing ring file was created with (from its header), after checking
/// its magic, format version and record size.
pub fn capacity_of(path: &Path, record_words: usize) -> Result<usize, RingFileError> {
    let name = path.display().to_string();
    let mut bytes = Vec::with_capacity(32);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|source| RingFileError::Io { path: name.clone(), source })?,
            32,
        ),
        &mut bytes,
    )
    .map_err(|source| RingFileError::Io { path: name.clone(), source })?;
    let word =
        |i: usize| bytes.get(i * 8..i * 8 + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let mismatch =
        |what| RingFileError::Mismatch { path: name.clone(), words: record_words, capacity: 0, what };
    if word(0) != Some(MAGIC) || word(1) != Some(VERSION) {
        return Err(mismatch("magic or version"));
    }
    if word(2) != Some(record_words as u64) {
        return Err(mismatch("record size"));
    }
    word(3).filter(|&c| c > 0 && c < 1 << 40).map(|c| c as usize).ok_or_else(|| mismatch("capacity"))
}

/// The single writer of a ring file.
pub struct RingWriter<const W: usize> {
    ring: Mapped,
    capacity: usize,
}

impl<const W: usize> RingWriter<W> {
    /// Opens or creates the ring at `path`; appends continue after what it holds.
    pub fn open(path: &Path, capacity: usize) -> Result<Self, RingFileError> {
        Ok(Self { ring: map(path, W, capacity.max(1), true)?, capacity: capacity.max(1) })
    }

    /// Records written since the file was created.
    pub fn written(&self) -> u64 {
        self.ring.word(DONE).load(Ordering::Relaxed)
    }

    /// Appends one record, overwriting the oldest when full. No allocation, no syscall.
    pub fn append(&mut self, record: &[u64; W]) {
        let n = self.ring.word(DONE).load(Ordering::Relaxed);
        self.ring.word(BEGUN).store(n + 1, Ordering::Relaxed);
        // Readers that see the slot change must also see `begun` moved.
        fence(Ordering::Release);
        let base = HEADER_WORDS + (n % self.capacity as u64) as usize * W;
        for (k, value) in record.iter().enumerate() {
            self.ring.word(base + k).store(*value, Ordering::Relaxed);
        }
        self.ring.word(DONE).store(n + 1, Ordering::Release);
    }
}

/// A reader of a ring file, in any process.
pub struct RingReader<const W: usize> {
    ring: Mapped,
    capacity: usize,
}

impl<const W: usize> RingReader<W> {
    /// Opens an existing ring at `path` of this shape.
    pub fn open(path: &Path, capacity: usize) -> Result<Self, RingFileError> {
        Ok(Self { ring: map(path, W, capacity.max(1), false)?, capacity: capacity.max(1) })
    }

    /// The records held now: `[first, end)` in record numbers.
    pub fn range(&self) -> std::ops::Range<u64> {
        let end = self.ring.word(DONE).load(Ordering::Acquire);
        end.saturating_sub(self.capacity as u64)..end
    }

    /// Record `n`, or `None` when it is not (or no longer) held whole.
    pub fn get(&self, n: u64) -> Option<[u64; W]> {
        if n >= self.ring.word(DONE).load(Ordering::Acquire) {
            return None;
        }
        let base = HEADER_WORDS + (n % self.capacity as u64) as usize * W;
        let mut out = [0u64; W];
        for (k, slot) in out.iter_mut().enumerate() {
            *slot = self.ring.word(base + k).load(Ordering::Relaxed);
        }
        // Loads above happen before the check below.
        fence(Ordering::Acquire);
        let begun = self.ring.word(BEGUN).load(Ordering::Relaxed);
        // Saturating: a corrupt done counter can put `n` near u64::MAX.
        (begun <= n.saturating_add(self.capacity as u64)).then_some(out)
    }
}

/// Features in a record (SPEC §4's 12 core + 6 microstructure).
pub const FEATURE_COUNT: usize = 18;
/// Words in a [`TradeExperience`].
pub const TRADE_WORDS: usize = 8 + FEATURE_COUNT;
/// Words in a [`BarSample`].
pub const SAMPLE_WORDS: usize = 4 + FEATURE_COUNT;

/// One closed trade as the sidecar learns from it (SPEC §6: features at entry, side,
/// outcome, reward, weight = |reward|).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradeExperience {
    /// Trade id.
    pub trade_id: u64,
    /// Symbol index.
    pub symbol: u16,
    /// Entry time.
    pub entry_time_ms: i64,
    /// Exit time.
    pub exit_time_ms: i64,
    /// +1 long, −1 short.
    pub side: i8,
    /// Net ROI on margin, percent.
    pub roi_pct: f64,
    /// Reward score.
    pub reward: f64,
    /// Sample weight (|reward|).
    pub weight: f64,
    /// Feature vector at entry.
    pub features: [f64; FEATURE_COUNT],
}

impl TradeExperience {
    /// The record's words.
    pub fn to_words(&self) -> [u64; TRADE_WORDS] {
        let mut w = [0u64; TRADE_WORDS];
        w[..8].copy_from_slice(&[
            self.trade_id,
            u64::from(self.symbol),
            self.entry_time_ms as u64,
            self.exit_time_ms as u64,
            self.side as i64 as u64,
            self.roi_pct.to_bits(),
            self.reward.to_bits(),
            self.weight.to_bits(),
        ]);
        for (dst, f) in w[8..].iter_mut().zip(self.features) {
            *dst = f.to_bits();
        }
        w
    }

    /// The record from its words.
    pub fn from_words(w: &[u64; TRADE_WORDS]) -> Self {
        Self {
            trade_id: w[0],
            symbol: w[1] as u16,
            entry_time_ms: w[2] as i64,
            exit_time_ms: w[3] as i64,
            side: w[4] as i64 as i8,
            roi_pct: f64::from_bits(w[5]),
            reward: f64::from_bits(w[6]),
            weight: f64::from_bits(w[7]),
            features: std::array::from_fn(|i| f64::from_bits(w[8 + i])),
        }
    }
}

/// One closed bar's features labelled with the return over the next `horizon` bars
/// (written once bar t+H has closed: causal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BarSample {
    /// Symbol index.
    pub symbol: u16,
    /// Open time of bar t.
    pub open_time_ms: i64,
    /// H, in bars.
    pub horizon: u32,
    /// close[t+H] / close[t] − 1.
    pub forward_return: f64,
    /// Features at bar t.
    pub features: [f64; FEATURE_COUNT],
}

impl BarSample {
    /// The record's words.
    pub fn to_words(&self) -> [u64; SAMPLE_WORDS] {
        let mut w = [0u64; SAMPLE_WORDS];
        w[..4].copy_from_slice(&[
            u64::from(self.symbol),
            self.open_time_ms as u64,
            u64::from(self.horizon),
            self.forward_return.to_bits(),
        ]);
        for (dst, f) in w[4..].iter_mut().zip(self.features) {
            *dst = f.to_bits();
        }
        w
    }

    /// The record from its words.
    pub fn from_words(w: &[u64; SAMPLE_WORDS]) -> Self {
        Self {
            symbol: w[0] as u16,
            open_time_ms: w[1] as i64,
            horizon: w[2] as u32,
            forward_return: f64::from_bits(w[3]),
            features: std::array::from_fn(|i| f64::from_bits(w[4 + i])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_words() {
        let t = TradeExperience {
            trade_id: 7,
            symbol: 3,
            entry_time_ms: -5,
            exit_time_ms: 1_700_000_000_000,
            side: -1,
            roi_pct: -12.5,
            reward: -7.0,
            weight: 7.0,
            features: std::array::from_fn(|i| i as f64 * 0.5 - 1.0),
        };
        assert_eq!(TradeExperience::from_words(&t.to_words()), t);
        let b = BarSample {
            symbol: 2,
            open_time_ms: 60_000,
            horizon: 5,
            forward_return: 0.001,
            features: [0.25; FEATURE_COUNT],
        };
        assert_eq!(BarSample::from_words(&b.to_words()), b);
    }

    #[test]
    fn corrupt_counters_near_the_end_of_u64_never_panic() {
        // Found by the experience_ring fuzz target: done = u64::MAX made `n + capacity` overflow.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        RingWriter::<3>::open(&path, 4).unwrap().append(&[1, 2, 3]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[BEGUN * 8..BEGUN * 8 + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        bytes[DONE * 8..DONE * 8 + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let r = RingReader::<3>::open(&path, 4).unwrap();
        assert_eq!(r.range(), u64::MAX - 4..u64::MAX);
        assert_eq!(r.get(u64::MAX - 1), Some([0, 0, 0]), "slot 2: what the file holds there");
        assert_eq!(r.get(u64::MAX), None);
    }

    #[test]
    fn a_ring_keeps_the_newest_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/ring");
        let mut w = RingWriter::<3>::open(&path, 4).unwrap();
        for n in 0..6u64 {
            w.append(&[n, n * 2, n * 3]);
        }
        let r = RingReader::<3>::open(&path, 4).unwrap();
        assert_eq!(r.range(), 2..6);
        assert_eq!(r.get(5), Some([5, 10, 15]));
        assert_eq!(r.get(2), Some([2, 4, 6]));
        assert_eq!(r.get(1), None, "overwritten");
        assert_eq!(r.get(6), None, "not written yet");
        drop(w);
        let mut w = RingWriter::<3>::open(&path, 4).unwrap();
        assert_eq!(w.written(), 6);
        w.append(&[6, 12, 18]);
        assert_eq!(r.range(), 3..7, "the reader sees the reopened writer's append");
        assert!(matches!(RingReader::<2>::open(&path, 4), Err(RingFileError::Mismatch { .. })));
        assert!(matches!(RingReader::<3>::open(&path, 5), Err(RingFileError::Mismatch { .. })));
        assert!(matches!(RingReader::<3>::open(&dir.path().join("none"), 4), Err(RingFileError::Io { .. })));
        std::fs::write(dir.path().join("junk"), [1u8; 96 + 64]).unwrap();
        assert!(matches!(
            RingReader::<3>::open(&dir.path().join("junk"), 4),
            Err(RingFileError::Mismatch { .. })
        ));
    }
}
