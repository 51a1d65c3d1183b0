//! The shard → brain hand-off: an `rtrb` SPSC ring of record slots, and the full-ring
//! policy of SPEC §2 (a bounded spin, then drop, count and mark the symbol for resync).
//!
//! The producer archives a record straight into the ring's next slot, stamped with the
//! push time (the end of parsing, for the per-stage latency); the consumer reads records in
//! place from the ring (zero copy). Neither side allocates, locks or makes a syscall.

use aegis_wire::{Event, Header, Record, RecordSlot, Resync, ResyncReason, SymbolId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What a pinned thread does when it has nothing to do (SPEC §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Idle {
    /// Busy-poll forever (colocated hosts with isolated cores).
    Spin,
    /// Busy-poll a while, then wait in the kernel up to a millisecond at a time (the
    /// config's default).
    #[default]
    SpinThenPark,
    /// Always wait in the kernel.
    Park,
}

impl Idle {
    /// How long a poll loop waits in the kernel after `idle_spins` empty turns: never while
    /// spinning, up to 1 ms once `SpinThenPark` has spun enough, up to 10 ms parking (a
    /// readiness event ends the wait at once).
    pub fn poll_timeout(self, idle_spins: u32) -> Duration {
        match self {
            Idle::Spin => Duration::ZERO,
            Idle::SpinThenPark if idle_spins < SPINS_BEFORE_PARK => Duration::ZERO,
            Idle::SpinThenPark => Duration::from_millis(1),
            Idle::Park => Duration::from_millis(10),
        }
    }
}

/// Busy-poll iterations before `SpinThenPark` starts parking.
pub(crate) const SPINS_BEFORE_PARK: u32 = 20_000;

/// Counters of one ring, readable from any thread.
#[derive(Default, Debug)]
pub struct RingStats {
    /// Records pushed.
    pub pushed: AtomicU64,
    /// Records dropped on a full ring.
    pub dropped: AtomicU64,
    /// Records the consumer has taken (`pushed − drained` is the depth).
    pub drained: AtomicU64,
}

/// Wakes a parked consumer (the brain) when a producer has pushed: producers ring it once
/// per read, and it costs them a syscall only while the consumer is actually parked. The
/// consumer sleeps either in `park` (its own thread) or, run inline by a shard, in that
/// shard's poll ([`Doorbell::poll_with`]); a ring wakes both.
#[derive(Debug, Default)]
pub struct Doorbell {
    parked: AtomicBool,
    sleeper: OnceLock<std::thread::Thread>,
    poller: OnceLock<mio::Waker>,
}

impl Doorbell {
    /// Wakes the consumer if it is parked.
    pub fn ring(&self) {
        // Orders this producer's pushes before the check, against the consumer's
        // mark-then-check in `park` (otherwise both could miss each other).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            if let Some(waker) = self.poller.get() {
                // An eventfd write; its only failure (a full counter) still leaves it readable.
                let _ = waker.wake();
            }
            if let Some(thread) = self.sleeper.get() {
                thread.unpark();
            }
        }
    }

    /// Also wakes `waker`'s poll when rung (the one-thread placement: the brain sleeps in
    /// its shard's poll). Set once; false when a waker was already set.
    pub fn poll_with(&self, waker: mio::Waker) -> bool {
        self.poller.set(waker).is_ok()
    }

    /// Marks the consumer about to sleep in a poll, unless `has_work` then finds something;
    /// true when it may sleep. [`Doorbell::awake`] ends it.
    pub fn sleep_unless(&self, has_work: impl FnOnce() -> bool) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        if has_work() {
            self.parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The consumer is running again (after [`Doorbell::sleep_unless`]).
    pub fn awake(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }

    /// Parks the calling thread (always the same one) for at most `timeout`, unless
    /// `has_work` finds something once the thread is marked parked.
    pub fn park(&self, timeout: Duration, has_work: impl FnOnce() -> bool) {
        self.sleeper.get_or_init(std::thread::current);
        self.parked.store(true, Ordering::SeqCst);
        if !has_work() {
            std::thread::park_timeout(timeout);
        }
        self.parked.store(false, Ordering::Relaxed);
    }
}

/// A ring's consumer run inline by its producer's thread (the brain inside a shard's poll
/// loop, on hosts with fewer cores than pinned roles).
pub trait InlineConsumer {
    /// Does whatever is queued, without waiting; returns how much it did.
    fn step(&mut self) -> usize;
    /// True when something is queued (checked once the thread is marked asleep).
    fn has_work(&self) -> bool;
}

/// One ring slot: the archived record and when it was pushed.
#[derive(Default)]
struct StampedSlot {
    pushed_ns: u64,
    slot: RecordSlot,
}

/// The producing end, with the full-ring policy.
pub struct RingProducer {
    inner: rtrb::Producer<StampedSlot>,
    spin_limit: u32,
    stats: Arc<RingStats>,
    /// Symbols that lost an event and still need a resync notice pushed.
    pending_resync: Vec<bool>,
    any_pending: bool,
    doorbell: Arc<Doorbell>,
}

/// The consuming end.
pub struct RingConsumer {
    inner: rtrb::Consumer<StampedSlot>,
    stats: Arc<RingStats>,
}

/// An rtrb SPSC ring of `capacity` slots, resident from the start (see [`touch_slots`]).
pub fn spsc<T>(capacity: usize) -> (rtrb::Producer<T>, rtrb::Consumer<T>) {
    let (mut producer, consumer) = rtrb::RingBuffer::new(capacity);
    touch_slots(&mut producer);
    (producer, consumer)
}

/// Writes zeros over every free slot without committing any, so the ring's pages are
/// resident now: otherwise a ring whose write position creeps (a desk event per bar) faults
/// a new page in now and then for hours — memory that climbs until the ring has wrapped
/// once, and page faults on the hot path after warm-up.
pub fn touch_slots<T>(producer: &mut rtrb::Producer<T>) {
    let Ok(mut chunk) = producer.write_chunk_uninit(producer.slots()) else { return };
    let (first, second) = chunk.as_mut_slices();
    for slot in first.iter_mut().chain(second.iter_mut()) {
        *slot = std::mem::MaybeUninit::zeroed();
    }
    // The stores must happen although nothing reads them before they are overwritten.
    std::hint::black_box(chunk.as_mut_slices());
    // Dropped uncommitted: the ring stays empty.
}

/// A ring of `capacity` slots (a power of two, checked by config validation) whose consumer
/// nobody wakes (it polls).
pub fn ring(capacity: usize, spin_limit: u32, symbols: usize) -> (RingProducer, RingConsumer) {
    ring_with_doorbell(capacity, spin_limit, symbols, Arc::new(Doorbell::default()))
}

/// A ring whose producer rings `doorbell` after each batch ([`RingProducer::wake`]).
pub fn ring_with_doorbell(
    capacity: usize,
    spin_limit: u32,
    symbols: usize,
    doorbell: Arc<Doorbell>,
) -> (RingProducer, RingConsumer) {
    let (inner_p, inner_c) = spsc(capacity);
    let stats = Arc::new(RingStats::default());
    (
        RingProducer {
            inner: inner_p,
            spin_limit,
            stats: stats.clone(),
            pending_resync: vec![false; symbols],
            any_pending: false,
            doorbell,
        },
        RingConsumer { inner: inner_c, stats },
    )
}

impl RingProducer {
    /// Pushes `record`; on a ring still full after the bounded spin, drops it, counts it and
    /// marks its symbol so a resync notice follows once there is room. Returns false on drop.
    pub fn push(&mut self, record: &Record) -> bool {
        if self.any_pending {
            self.flush_resyncs();
        }
        if self.try_push(record) {
            return true;
        }
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(flag) = self.pending_resync.get_mut(usize::from(record.header.symbol.0)) {
            *flag = true;
            self.any_pending = true;
        }
        false
    }

    /// Pushes `record` if there is room after the bounded spin; no drop accounting (for a
    /// producer that may wait, such as the REST worker).
    pub fn try_push(&mut self, record: &Record) -> bool {
        let mut spins = 0;
        loop {
            if let Ok(mut chunk) = self.inner.write_chunk_uninit(1) {
                let (first, _) = chunk.as_mut_slices();
                let pushed_ns = crate::clock::now_ns();
                let stamped = first[0].write(StampedSlot { pushed_ns, slot: RecordSlot::default() });
                if stamped.slot.write(record).is_err() {
                    return false;
                }
                // SAFETY: the one slot of this chunk was initialised on the line above.
                unsafe { chunk.commit_all() };
                self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if spins >= self.spin_limit {
                return false;
            }
            spins += 1;
            std::hint::spin_loop();
        }
    }

    fn flush_resyncs(&mut self) {
        for i in 0..self.pending_resync.len() {
            if !self.pending_resync[i] {
                continue;
            }
            let notice = Record {
                header: Header { symbol: SymbolId(i as u16), event_time_ms: 0, recv_ns: 0 },
                event: Event::Resync(Resync { reason: ResyncReason::RingDrop }),
            };
            if !self.try_push(&notice) {
                return;
            }
            self.pending_resync[i] = false;
        }
        self.any_pending = false;
    }

    /// This ring's counters.
    pub fn stats(&self) -> Arc<RingStats> {
        self.stats.clone()
    }

    /// Wakes the consumer if it parked (after a batch of pushes: once per read).
    pub fn wake(&self) {
        self.doorbell.ring();
    }
}

impl RingConsumer {
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Hands every queued record, read in place, and its push time (`clock::now_ns`) to
    /// `apply`; returns how many there were.
    pub fn drain(&mut self, mut apply: impl FnMut(&aegis_wire::record::ArchivedRecord, u64)) -> usize {
        let n = self.inner.slots();
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = self.inner.read_chunk(n) else { return 0 };
        let (a, b) = chunk.as_slices();
        for stamped in a.iter().chain(b) {
            // Slots are only written by `RingProducer::push`, so they always validate.
            if let Ok(record) = stamped.slot.read() {
                apply(record, stamped.pushed_ns);
            }
        }
        chunk.commit_all();
        self.stats.drained.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// This ring's counters.
    pub fn stats(&self) -> Arc<RingStats> {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_wire::Trade;

    fn trade(symbol: u16, id: u64) -> Record {
        Record {
            header: Header { symbol: SymbolId(symbol), event_time_ms: 1, recv_ns: 2 },
            event: Event::Trade(Trade {
                trade_id: id,
                price: 1,
                qty: 1,
                trade_time_ms: 1,
                buyer_is_maker: false,
            }),
        }
    }

    #[test]
    fn records_cross_in_order_and_in_place() {
        let (mut p, mut c) = ring(8, 0, 4);
        for id in 0..5 {
            assert!(p.push(&trade(1, id)));
        }
        let before = crate::clock::now_ns();
        let mut ids = Vec::new();
        let mut stamps = Vec::new();
        c.drain(|r, pushed_ns| {
            if let aegis_wire::record::ArchivedEvent::Trade(t) = &r.event {
                ids.push(t.trade_id.to_native());
            }
            stamps.push(pushed_ns);
        });
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "push stamps in order: {stamps:?}");
        assert!(stamps[4] <= before, "stamped at push, before the drain: {stamps:?} vs {before}");
    }

    #[test]
    fn touched_slots_leave_the_ring_empty_and_usable() {
        let (mut p, mut c) = spsc::<u64>(8);
        assert_eq!((p.slots(), c.slots()), (8, 0), "nothing committed");
        for i in 0..8 {
            p.push(i).unwrap();
        }
        assert_eq!((0..8).map(|_| c.pop().unwrap()).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn the_doorbell_wakes_a_parked_consumer() {
        let doorbell = Arc::new(Doorbell::default());
        let (mut p, mut c) = ring_with_doorbell(8, 0, 4, doorbell.clone());
        let consumer = std::thread::spawn(move || {
            // Parks for longer than the test waits: only the doorbell ends it early.
            let start = std::time::Instant::now();
            while c.is_empty() {
                doorbell.park(Duration::from_secs(30), || !c.is_empty());
            }
            (c.drain(|_, _| {}), start.elapsed())
        });
        assert!(p.push(&trade(1, 1)));
        p.wake();
        let (n, waited) = consumer.join().unwrap();
        assert_eq!(n, 1);
        assert!(waited < Duration::from_secs(30), "woken by the doorbell, not the timeout");
    }

    #[test]
    fn a_full_ring_drops_counts_and_announces_a_resync() {
        let (mut p, mut c) = ring(2, 10, 4);
        assert!(p.push(&trade(3, 1)));
        assert!(p.push(&trade(3, 2)));
        assert!(!p.push(&trade(3, 3)), "full: dropped after the spin");
        assert_eq!(p.stats().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(c.drain(|_, _| {}), 2);
        assert!(p.push(&trade(3, 4)));
        let mut seen = Vec::new();
        c.drain(|r, _| seen.push(format!("{:?}", r.event)));
        assert!(seen[0].contains("RingDrop"), "{seen:?}");
        assert!(seen[1].contains("Trade"), "{seen:?}");
    }
}
