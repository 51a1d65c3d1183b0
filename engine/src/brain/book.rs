//! A local order book per symbol, synced from a REST snapshot plus the diff stream under
//! Binance's rules, with a fixed number of levels per side (no allocation after start).
//!
//! Sync (USDⓈ-M): buffer diffs from the moment of subscribing; on the snapshot
//! (`lastUpdateId` = L) drop diffs with `u < L`; the first applied diff must have
//! `U ≤ L ≤ u`; each later diff's `pu` must equal the previous `u`, else the book is out of
//! sync and needs a new snapshot. Spot diffs (no `pu`) follow the spot rule: the first has
//! `U ≤ L+1 ≤ u`, each later one `U = previous u + 1`.

use aegis_wire::record::{ArchivedDepthChunk, ArchivedLevel};

/// Levels kept per side.
pub const LEVELS_PER_SIDE: usize = 1024;
/// Diff chunks buffered per symbol while waiting for a snapshot.
pub const BUFFERED_CHUNKS: usize = 128;

/// One side's levels, best first.
struct Side {
    prices: Box<[i64; LEVELS_PER_SIDE]>,
    qtys: Box<[i64; LEVELS_PER_SIDE]>,
    len: usize,
    /// Bids sort descending, asks ascending.
    descending: bool,
}

impl Side {
    fn new(descending: bool) -> Self {
        Self {
            prices: Box::new([0; LEVELS_PER_SIDE]),
            qtys: Box::new([0; LEVELS_PER_SIDE]),
            len: 0,
            descending,
        }
    }

    fn better(&self, a: i64, b: i64) -> bool {
        if self.descending {
            a > b
        } else {
            a < b
        }
    }

    /// Index of `price`, or where it would go.
    fn find(&self, price: i64) -> Result<usize, usize> {
        let levels = &self.prices[..self.len];
        if self.descending {
            levels.binary_search_by(|p| price.cmp(p))
        } else {
            levels.binary_search(&price)
        }
    }

    fn set(&mut self, price: i64, qty: i64) {
        match self.find(price) {
            Ok(i) if qty == 0 => {
                self.prices.copy_within(i + 1..self.len, i);
                self.qtys.copy_within(i + 1..self.len, i);
                self.len -= 1;
            }
            Ok(i) => self.qtys[i] = qty,
            Err(_) if qty == 0 => {}
            Err(i) => {
                if self.len == LEVELS_PER_SIDE {
                    if i == LEVELS_PER_SIDE {
                        return; // worse than everything kept
                    }
                    self.len -= 1; // drop the worst level
                }
                self.prices.copy_within(i..self.len, i + 1);
                self.qtys.copy_within(i..self.len, i + 1);
                self.prices[i] = price;
                self.qtys[i] = qty;
                self.len += 1;
            }
        }
    }

    fn best(&self) -> Option<(i64, i64)> {
        (self.len > 0).then(|| (self.prices[0], self.qtys[0]))
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn top_is_sorted(&self) -> bool {
        self.prices[..self.len].windows(2).all(|w| self.better(w[0], w[1]))
    }
}

/// A price level as (price, quantity), fixed point.
pub type Quote = (i64, i64);

/// Sync state of a book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Waiting for a snapshot; diffs are buffered.
    NeedSnapshot,
    /// Snapshot applied; waiting for the live diff that bridges it (`U ≤ L ≤ u`).
    Bridging {
        /// The snapshot's `lastUpdateId`.
        snapshot_id: u64,
    },
    /// In sync; the last applied update id.
    Synced {
        /// Last `u` applied.
        last_u: u64,
    },
}

/// What applying a diff did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Applied (or part of an update being applied).
    Applied,
    /// Buffered until a snapshot arrives.
    Buffered,
    /// Older than the book: ignored.
    Stale,
    /// The sequence broke: the book is out of sync; request a snapshot.
    Gap,
}

/// A symbol's order book and its sync state.
pub struct Book {
    bids: Side,
    asks: Side,
    state: SyncState,
    buffer: Vec<ArchivedChunkCopy>,
    snapshot_building: bool,
    /// `u` of the multi-chunk update whose first chunk was accepted (later parts follow it).
    accepting: Option<u64>,
}

/// A depth chunk copied out of the ring for buffering.
#[derive(Clone, Copy, Debug)]
struct ArchivedChunkCopy {
    first: u64,
    last: u64,
    prev: i64,
    part: u16,
    is_last: bool,
    bids: u8,
    asks: u8,
    levels: [(i64, i64); aegis_wire::DEPTH_LEVELS_PER_CHUNK],
}

impl ArchivedChunkCopy {
    fn of(c: &ArchivedDepthChunk) -> Self {
        let mut levels = [(0, 0); aegis_wire::DEPTH_LEVELS_PER_CHUNK];
        for (dst, src) in levels.iter_mut().zip(c.levels.iter()) {
            *dst = level(src);
        }
        Self {
            first: c.first_update_id.to_native(),
            last: c.final_update_id.to_native(),
            prev: c.prev_final_update_id.to_native(),
            part: c.part.to_native(),
            is_last: c.last,
            bids: c.bid_count,
            asks: c.ask_count,
            levels,
        }
    }
}

fn level(l: &ArchivedLevel) -> (i64, i64) {
    (l.price.to_native(), l.qty.to_native())
}

impl Default for Book {
    fn default() -> Self {
        Self::new()
    }
}

impl Book {
    /// An empty book waiting for its snapshot.
    pub fn new() -> Self {
        Self {
            bids: Side::new(true),
            asks: Side::new(false),
            state: SyncState::NeedSnapshot,
            buffer: Vec::with_capacity(BUFFERED_CHUNKS),
            snapshot_building: false,
            accepting: None,
        }
    }

    /// The sync state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// Forgets sync: buffer diffs until the next snapshot.
    pub fn desync(&mut self) {
        self.state = SyncState::NeedSnapshot;
        self.accepting = None;
        self.buffer.clear();
    }

    /// Best bid and ask.
    pub fn best(&self) -> (Option<Quote>, Option<Quote>) {
        (self.bids.best(), self.asks.best())
    }

    /// True when best bid ≥ best ask.
    pub fn is_crossed(&self) -> bool {
        matches!(self.best(), (Some((b, _)), Some((a, _))) if b >= a)
    }

    /// True when both sides are strictly ordered.
    pub fn is_ordered(&self) -> bool {
        self.bids.top_is_sorted() && self.asks.top_is_sorted()
    }

    /// Applies a chunk of a REST snapshot; on its last chunk replays buffered diffs.
    /// Returns `Gap` when the buffered diffs cannot bridge the snapshot.
    pub fn apply_snapshot_chunk(&mut self, chunk: &ArchivedDepthChunk) -> DiffOutcome {
        let c = ArchivedChunkCopy::of(chunk);
        if self.state != SyncState::NeedSnapshot && !self.snapshot_building {
            // Already in sync (a duplicate request answered late): the live book is newer.
            return DiffOutcome::Stale;
        }
        if c.part == 0 || !self.snapshot_building {
            self.bids.clear();
            self.asks.clear();
            self.snapshot_building = true;
        }
        self.apply_levels(&c);
        if !c.is_last {
            return DiffOutcome::Applied;
        }
        self.snapshot_building = false;
        self.state = SyncState::Bridging { snapshot_id: c.last };
        let buffered = std::mem::take(&mut self.buffer);
        let mut outcome = DiffOutcome::Applied;
        for diff in &buffered {
            if self.apply_live(diff) == DiffOutcome::Gap {
                outcome = DiffOutcome::Gap;
                break;
            }
        }
        self.buffer = buffered;
        self.buffer.clear();
        if outcome == DiffOutcome::Gap {
            self.desync();
        }
        outcome
    }

    /// Applies (or buffers) one live diff chunk.
    pub fn apply_diff_chunk(&mut self, chunk: &ArchivedDepthChunk) -> DiffOutcome {
        let c = ArchivedChunkCopy::of(chunk);
        if self.state == SyncState::NeedSnapshot {
            if self.buffer.len() == BUFFERED_CHUNKS {
                // Keep the newest: a fresh snapshot is bridged by recent diffs; if the bridge
                // was among the dropped ones, the bridge check fails and we re-snapshot.
                self.buffer.remove(0);
            }
            self.buffer.push(c);
            return DiffOutcome::Buffered;
        }
        let outcome = self.apply_live(&c);
        if outcome == DiffOutcome::Gap {
            self.desync();
            self.buffer.push(c);
        }
        outcome
    }

    /// Applies a diff to a book that has a snapshot (bridging or in sync).
    fn apply_live(&mut self, c: &ArchivedChunkCopy) -> DiffOutcome {
        match self.state {
            SyncState::NeedSnapshot => DiffOutcome::Buffered,
            SyncState::Bridging { snapshot_id } => {
                if c.part > 0 || c.last < snapshot_id {
                    return DiffOutcome::Stale;
                }
                // Binance's rule (U ≤ L ≤ u; spot U ≤ L+1), or on futures a diff whose `pu`
                // is the snapshot itself: it continues exactly from the snapshot's state.
                let bridges = if c.prev < 0 {
                    c.first <= snapshot_id + 1
                } else {
                    c.first <= snapshot_id || c.prev as u64 == snapshot_id
                };
                if !bridges {
                    return DiffOutcome::Gap;
                }
                self.accept(c);
                DiffOutcome::Applied
            }
            SyncState::Synced { .. } => self.apply_in_sync(c),
        }
    }

    fn apply_in_sync(&mut self, c: &ArchivedChunkCopy) -> DiffOutcome {
        let SyncState::Synced { last_u } = self.state else { return self.apply_live(c) };
        if c.part > 0 {
            // Later chunks follow their update's first chunk: applied only if it was.
            if self.accepting != Some(c.last) {
                return DiffOutcome::Stale;
            }
            self.apply_levels(c);
            if c.is_last {
                self.accepting = None;
                self.state = SyncState::Synced { last_u: c.last };
            }
            return DiffOutcome::Applied;
        }
        if c.last <= last_u {
            return DiffOutcome::Stale;
        }
        let continues = if c.prev >= 0 { c.prev as u64 == last_u } else { c.first == last_u + 1 };
        if !continues {
            return DiffOutcome::Gap;
        }
        self.accept(c);
        DiffOutcome::Applied
    }

    /// Applies the first chunk of an accepted update.
    fn accept(&mut self, c: &ArchivedChunkCopy) {
        self.apply_levels(c);
        self.state = SyncState::Synced { last_u: c.last };
        // Later chunks of the same update are applied only while this is set.
        self.accepting = (!c.is_last).then_some(c.last);
    }

    fn apply_levels(&mut self, c: &ArchivedChunkCopy) {
        let bids = usize::from(c.bids);
        let total = bids + usize::from(c.asks);
        for &(p, q) in &c.levels[..bids] {
            self.bids.set(p, q);
        }
        for &(p, q) in &c.levels[bids..total.min(c.levels.len())] {
            self.asks.set(p, q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_wire::{DepthChunk, Event, Header, Level, Record, RecordSlot, SymbolId};

    fn chunk(
        first: u64,
        last: u64,
        prev: i64,
        bids: &[(i64, i64)],
        asks: &[(i64, i64)],
        snapshot: bool,
    ) -> RecordSlot {
        let mut levels = [Level::default(); 8];
        for (i, &(price, qty)) in bids.iter().chain(asks).enumerate() {
            levels[i] = Level { price, qty };
        }
        let record = Record {
            header: Header { symbol: SymbolId(0), event_time_ms: 0, recv_ns: 0 },
            event: Event::Depth(DepthChunk {
                first_update_id: first,
                final_update_id: last,
                prev_final_update_id: prev,
                transaction_time_ms: 0,
                partial: false,
                snapshot,
                part: 0,
                last: true,
                bid_count: bids.len() as u8,
                ask_count: asks.len() as u8,
                levels,
            }),
        };
        RecordSlot::encode(&record).unwrap()
    }

    fn depth(slot: &RecordSlot) -> &ArchivedDepthChunk {
        match &slot.read().unwrap().event {
            aegis_wire::record::ArchivedEvent::Depth(d) => d,
            _ => unreachable!(),
        }
    }

    #[test]
    fn syncs_from_a_snapshot_bridged_by_buffered_diffs() {
        let mut book = Book::new();
        // Diffs arrive before the snapshot (as in real captures).
        let early = chunk(90, 95, 89, &[(100, 5)], &[], false);
        let bridge = chunk(96, 105, 95, &[(99, 1)], &[(103, 2)], false);
        assert_eq!(book.apply_diff_chunk(depth(&early)), DiffOutcome::Buffered);
        assert_eq!(book.apply_diff_chunk(depth(&bridge)), DiffOutcome::Buffered);
        let snap = chunk(100, 100, -1, &[(100, 3), (98, 4)], &[(101, 1), (102, 2)], true);
        assert_eq!(book.apply_snapshot_chunk(depth(&snap)), DiffOutcome::Applied);
        assert_eq!(book.state(), SyncState::Synced { last_u: 105 });
        assert_eq!(book.best(), (Some((100, 3)), Some((101, 1))), "the early diff (u < L) was dropped");
        let next = chunk(106, 110, 105, &[(100, 0)], &[], false);
        // (the buffered bridge was applied during the snapshot replay)
        assert_eq!(book.apply_diff_chunk(depth(&next)), DiffOutcome::Applied);
        assert_eq!(book.best().0, Some((99, 1)));
        assert!(!book.is_crossed() && book.is_ordered());
        let gap = chunk(120, 125, 115, &[], &[], false);
        assert_eq!(book.apply_diff_chunk(depth(&gap)), DiffOutcome::Gap);
        assert_eq!(book.state(), SyncState::NeedSnapshot);
    }

    #[test]
    fn a_snapshot_newer_than_every_buffered_diff_waits_for_its_live_bridge() {
        let mut book = Book::new();
        book.apply_diff_chunk(depth(&chunk(90, 95, 89, &[(100, 5)], &[], false)));
        let snap = chunk(100, 100, -1, &[(100, 3)], &[(101, 1)], true);
        assert_eq!(book.apply_snapshot_chunk(depth(&snap)), DiffOutcome::Applied);
        assert_eq!(book.state(), SyncState::Bridging { snapshot_id: 100 });
        assert_eq!(book.apply_diff_chunk(depth(&chunk(96, 99, 95, &[], &[], false))), DiffOutcome::Stale);
        assert_eq!(
            book.apply_diff_chunk(depth(&chunk(98, 103, 97, &[(99, 2)], &[], false))),
            DiffOutcome::Applied
        );
        assert_eq!(book.state(), SyncState::Synced { last_u: 103 });
        assert_eq!(
            book.apply_diff_chunk(depth(&chunk(104, 106, 103, &[], &[], false))),
            DiffOutcome::Applied
        );
    }

    #[test]
    fn a_snapshot_the_diffs_cannot_bridge_is_a_gap() {
        let mut book = Book::new();
        let late = chunk(200, 210, 199, &[(1, 1)], &[], false);
        book.apply_diff_chunk(depth(&late));
        let snap = chunk(100, 100, -1, &[(1, 1)], &[(2, 1)], true);
        assert_eq!(book.apply_snapshot_chunk(depth(&snap)), DiffOutcome::Gap);
    }

    #[test]
    fn sides_keep_order_and_capacity() {
        let mut side = Side::new(true);
        for p in 0..(LEVELS_PER_SIDE as i64 + 10) {
            side.set(p, 1);
        }
        assert_eq!(side.len, LEVELS_PER_SIDE);
        assert_eq!(side.best(), Some((LEVELS_PER_SIDE as i64 + 9, 1)));
        assert!(side.top_is_sorted());
        side.set(LEVELS_PER_SIDE as i64 + 9, 0);
        assert_eq!(side.best(), Some((LEVELS_PER_SIDE as i64 + 8, 1)));
    }
}
