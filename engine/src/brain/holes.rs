//! Missing aggTrade ids of one symbol: a hole opens when the stream skips ahead, and closes
//! as the missing ids arrive — late on the stream (a reordered message) or from a REST fill —
//! or when a fill has answered without them (the exchange no longer has them).
//!
//! Fixed capacity, no allocation: the brain keeps one per symbol.

/// Holes tracked per symbol; opening one more gives up the oldest.
pub const MAX_HOLES: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hole {
    first: u64,
    last: u64,
    opened_ns: u64,
    requested: bool,
}

impl Hole {
    fn len(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// The open holes of one symbol, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Holes {
    holes: [Hole; MAX_HOLES],
    len: usize,
}

impl Holes {
    /// No id is missing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ids missing now.
    pub fn missing(&self) -> u64 {
        self.holes[..self.len].iter().map(Hole::len).sum()
    }

    /// Records `[first, last]` as missing since `now_ns`; returns how many ids of the oldest
    /// hole were given up to make room (0 when there was room).
    pub fn open(&mut self, first: u64, last: u64, now_ns: u64) -> u64 {
        if first > last {
            return 0;
        }
        let given_up = if self.len == MAX_HOLES { self.remove(0).len() } else { 0 };
        self.holes[self.len] = Hole { first, last, opened_ns: now_ns, requested: false };
        self.len += 1;
        given_up
    }

    /// Takes `id` out of the hole holding it: true when it was missing (apply it), false
    /// when it is in no hole (a duplicate). Splitting a hole with no room left gives up the
    /// oldest hole; how many ids that gave up is added to `given_up`.
    pub fn take(&mut self, id: u64, given_up: &mut u64) -> bool {
        let Some(i) = self.holes[..self.len].iter().position(|h| h.first <= id && id <= h.last) else {
            return false;
        };
        let hole = self.holes[i];
        match (id == hole.first, id == hole.last) {
            (true, true) => {
                self.remove(i);
            }
            (true, false) => self.holes[i].first += 1,
            (false, true) => self.holes[i].last -= 1,
            (false, false) => {
                self.holes[i].last = id - 1;
                let upper = Hole { first: id + 1, ..hole };
                if self.len == MAX_HOLES {
                    *given_up += self.remove(0).len();
                }
                // The upper half goes last: "oldest first" is by position, and both halves
                // keep the original opening time and request state.
                self.holes[self.len] = upper;
                self.len += 1;
            }
        }
        true
    }

    /// The range a REST fill should ask for: the oldest hole open at least `patience_ns`,
    /// with every other due hole that fits in the same `span` ids (one page of the
    /// endpoint), all marked requested — unless a fill is already out. `None` when there is
    /// nothing to ask.
    pub fn due(&mut self, now_ns: u64, patience_ns: u64, span: u64) -> Option<(u64, u64)> {
        let holes = &mut self.holes[..self.len];
        if holes.iter().any(|h| h.requested) {
            return None;
        }
        let is_due = |h: &Hole| h.opened_ns.saturating_add(patience_ns) <= now_ns;
        let oldest = holes.iter().find(|h| is_due(h))?.first;
        let (mut first, mut last) = (u64::MAX, 0);
        let joins =
            |h: &Hole| h.first == oldest || (h.first > oldest && h.last < oldest.saturating_add(span));
        for h in holes.iter_mut().filter(|h| is_due(h) && joins(h)) {
            h.requested = true;
            (first, last) = (first.min(h.first), last.max(h.last));
        }
        Some((first, last))
    }

    /// A fill has answered: what it did not deliver is no longer to be had. Gives up the
    /// requested holes; returns how many ids they still held.
    pub fn close_requested(&mut self) -> u64 {
        let mut given_up = 0;
        let mut kept = 0;
        for i in 0..self.len {
            let h = self.holes[i];
            if h.requested {
                given_up += h.len();
            } else {
                self.holes[kept] = h;
                kept += 1;
            }
        }
        self.len = kept;
        given_up
    }

    fn remove(&mut self, i: usize) -> Hole {
        let hole = self.holes[i];
        self.holes.copy_within(i + 1..self.len, i);
        self.len -= 1;
        hole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn late_ids_fill_a_hole_once_each() {
        let mut holes = Holes::default();
        let mut given_up = 0;
        holes.open(10, 14, 0);
        assert_eq!(holes.missing(), 5);
        for id in [12, 10, 14, 11, 13] {
            assert!(holes.take(id, &mut given_up), "{id} was missing");
            assert!(!holes.take(id, &mut given_up), "{id} only once");
        }
        assert!(holes.is_empty());
        assert!(!holes.take(9, &mut given_up));
        assert_eq!(given_up, 0);
    }

    #[test]
    fn a_fill_is_asked_once_after_the_patience_and_closes_what_it_asked_for() {
        let mut holes = Holes::default();
        holes.open(5, 6, 1_000);
        assert_eq!(holes.due(1_400, 500, 1_000), None, "too soon: the stream may still deliver it");
        holes.open(20, 20, 1_450);
        assert_eq!(holes.due(1_500, 500, 1_000), Some((5, 6)));
        assert_eq!(holes.due(2_000, 500, 1_000), None, "one fill out at a time");
        let mut given_up = 0;
        assert!(holes.take(5, &mut given_up));
        assert_eq!(holes.close_requested(), 1, "6 never came");
        assert_eq!(holes.missing(), 1, "20 was opened after the request");
        assert_eq!(holes.due(2_000, 500, 1_000), Some((20, 20)));
    }

    #[test]
    fn due_holes_within_one_page_share_a_fill() {
        let mut holes = Holes::default();
        holes.open(100, 110, 0);
        holes.open(500, 520, 0);
        holes.open(1_200, 1_201, 0);
        assert_eq!(holes.due(10, 0, 1_000), Some((100, 520)), "1,200 is past the page");
        assert_eq!(holes.close_requested(), 11 + 21);
        assert_eq!(holes.due(10, 0, 1_000), Some((1_200, 1_201)));
        holes.close_requested();
        holes.open(5_000, 9_999, 0);
        assert_eq!(holes.due(10, 0, 1_000), Some((5_000, 9_999)), "a long hole is asked for whole");
    }

    #[test]
    fn the_oldest_hole_is_given_up_when_full() {
        let mut holes = Holes::default();
        let mut given_up = 0;
        for k in 0..MAX_HOLES as u64 {
            assert_eq!(holes.open(k * 10, k * 10 + 1, k), 0);
        }
        assert_eq!(holes.open(500, 500, 99), 2, "0..=1 given up");
        assert!(!holes.take(0, &mut given_up), "given up: a later arrival is a duplicate");
        assert!(holes.take(40, &mut given_up));
        assert!(holes.take(500, &mut given_up));
    }

    proptest! {
        /// Whatever order ids arrive in, each missing id is taken exactly once and the
        /// missing count plus what was taken plus what was given up is what was opened.
        #[test]
        fn ids_are_conserved(gaps in proptest::collection::vec((0u64..5, 1u64..6), 1..12), order in any::<u64>()) {
            let mut holes = Holes::default();
            let mut opened = 0;
            let mut given_up = 0;
            let mut next = 0;
            let mut ids = Vec::new();
            for (skip, len) in gaps {
                next += skip;
                given_up += holes.open(next, next + len - 1, 0);
                opened += len;
                ids.extend(next..next + len);
                next += len + 1;
            }
            let mut state = order | 1;
            for i in (1..ids.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                ids.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut taken = 0;
            for id in &ids {
                if holes.take(*id, &mut given_up) { taken += 1; }
                prop_assert!(!holes.take(*id, &mut given_up));
            }
            prop_assert_eq!(taken + given_up + holes.missing(), opened);
        }
    }
}
