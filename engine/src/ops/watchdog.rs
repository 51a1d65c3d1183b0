//! The watchdog (SPEC §9): every thread that must keep moving publishes a progress counter
//! (the shards and the brain count their loop iterations, which continue while idle); the
//! run's main thread shows them to the watchdog every few milliseconds, and it reports a
//! thread whose counter has not moved for `stall_after` — and again once it moves.

use std::time::{Duration, Instant};

/// What the watchdog noticed.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// A thread has not made progress for this long.
    Stalled {
        /// The thread (`shard 0`, `brain`).
        name: String,
        /// How long it has been still.
        still: Duration,
    },
    /// A stalled thread moves again.
    Recovered {
        /// The thread.
        name: String,
    },
}

/// One watched counter.
#[derive(Debug)]
struct Watched {
    name: String,
    last: u64,
    since: Instant,
    stalled: bool,
}

/// Progress counters and when each last moved.
#[derive(Debug)]
pub struct Watchdog {
    stall_after: Duration,
    watched: Vec<Watched>,
}

impl Watchdog {
    /// Watches counters named `names` (in the order `observe` is given their values).
    pub fn new(names: Vec<String>, stall_after: Duration, now: Instant) -> Self {
        let watched =
            names.into_iter().map(|name| Watched { name, last: 0, since: now, stalled: false }).collect();
        Watchdog { stall_after, watched }
    }

    /// Takes the counters' current values; returns what changed.
    pub fn observe(&mut self, now: Instant, counters: &[u64]) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for (w, &value) in self.watched.iter_mut().zip(counters) {
            if value != w.last {
                w.last = value;
                w.since = now;
                if std::mem::take(&mut w.stalled) {
                    events.push(WatchEvent::Recovered { name: w.name.clone() });
                }
            } else if !w.stalled && now.duration_since(w.since) >= self.stall_after {
                w.stalled = true;
                events.push(WatchEvent::Stalled { name: w.name.clone(), still: now.duration_since(w.since) });
            }
        }
        events
    }

    /// Names of the threads stalled now.
    pub fn stalled(&self) -> Vec<&str> {
        self.watched.iter().filter(|w| w.stalled).map(|w| w.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_still_counter_is_reported_once_then_its_recovery() {
        let t0 = Instant::now();
        let mut dog = Watchdog::new(vec!["shard 0".into(), "brain".into()], Duration::from_secs(2), t0);
        assert!(dog.observe(t0 + Duration::from_millis(500), &[1, 1]).is_empty());
        assert!(dog.observe(t0 + Duration::from_millis(1500), &[2, 1]).is_empty());
        let events = dog.observe(t0 + Duration::from_millis(2600), &[3, 1]);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], WatchEvent::Stalled { name, still } if name == "brain" && *still >= Duration::from_secs(2))
        );
        assert_eq!(dog.stalled(), vec!["brain"]);
        assert!(dog.observe(t0 + Duration::from_secs(5), &[4, 1]).is_empty(), "reported once");
        let events = dog.observe(t0 + Duration::from_secs(6), &[5, 2]);
        assert_eq!(events, vec![WatchEvent::Recovered { name: "brain".into() }]);
        assert!(dog.stalled().is_empty());
    }
}
