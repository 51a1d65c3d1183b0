//! The periodic exchangeInfo refresh (SPEC §3: hourly), run by the REST worker between
//! requests: each traded symbol's status and filters compared with what the brain holds,
//! and every change sent to the brain over a ring; the copy in the data dir renewed.

use super::client::RestClient;
use super::rules::ServedSymbol;
use crate::desk::listing::ListingChange;
use aegis_trading::rules::Filters;
use aegis_wire::SymbolTable;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the refresh keeps between reads.
pub struct InfoRefresh {
    every: Duration,
    next: Instant,
    cache: Option<PathBuf>,
    /// Per symbol: (trading, filters) as the brain holds them; `None`: never traded.
    known: Vec<Option<(bool, Filters)>>,
    changes: rtrb::Producer<ListingChange>,
}

/// How long a failed read waits before the next try (not a whole period).
const RETRY: Duration = Duration::from_secs(30);

impl InfoRefresh {
    /// A refresh every `every`, starting from `known` (what the run started with), sending
    /// changes to `changes`, renewing `cache` when given.
    pub fn new(
        every: Duration,
        cache: Option<PathBuf>,
        known: Vec<Option<(bool, Filters)>>,
        changes: rtrb::Producer<ListingChange>,
    ) -> Self {
        Self { every, next: Instant::now() + every, cache, known, changes }
    }

    /// Reads exchangeInfo when a period has passed; sends what changed. A failed read is
    /// logged and tried again sooner; what the brain holds stays as it was.
    pub fn run_if_due(&mut self, client: &mut RestClient, symbols: &SymbolTable) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        match client.exchange_info_kept(self.cache.as_deref()) {
            Ok(served) => {
                client.stats.info_refreshes.fetch_add(1, Ordering::Relaxed);
                self.next = now + self.every;
                self.compare(&served, symbols);
            }
            Err(e) => {
                client.stats.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "aegis: exchangeInfo refresh failed ({e}); the rules in use stay, next try in {RETRY:?}"
                );
                self.next = now + RETRY.min(self.every);
            }
        }
    }

    /// Sends each traded symbol whose status or filters differ from what is held.
    fn compare(&mut self, served: &[ServedSymbol], symbols: &SymbolTable) {
        for (id, name) in symbols.iter() {
            let Some(Some((was_trading, was))) = self.known.get(usize::from(id.0)).copied() else { continue };
            let entry = served.iter().find(|s| s.name == name);
            let (trading, filters, why) = match entry.map(|s| (s.trading, &s.rules)) {
                Some((trading, Ok(rules))) => (trading, rules.filters(), None),
                Some((_, Err(e))) => (false, was, Some(format!("its rules are unreadable ({e})"))),
                None => (false, was, Some("it is no longer listed".to_string())),
            };
            if trading == was_trading && filters == was {
                continue;
            }
            let change = ListingChange { symbol: id.0, trading, filters };
            if self.changes.push(change).is_err() {
                eprintln!(
                    "aegis: exchangeInfo refresh: {name}: the change ring is full; tried again next refresh"
                );
                continue;
            }
            self.known[usize::from(id.0)] = Some((trading, filters));
            eprintln!(
                "aegis: exchangeInfo refresh: {name}: {}",
                describe(was_trading, &was, trading, &filters, why)
            );
        }
    }
}

/// What changed, for the operator.
fn describe(was_trading: bool, was: &Filters, trading: bool, now: &Filters, why: Option<String>) -> String {
    let mut parts = Vec::new();
    if was_trading != trading {
        parts.push(match (trading, why) {
            (true, _) => "TRADING again: entries allowed".to_string(),
            (false, Some(why)) => {
                format!("not traded: {why}; no new entries, an open position stays protected")
            }
            (false, None) => "stopped TRADING: no new entries, an open position stays protected".to_string(),
        });
    }
    for (field, a, b) in [
        ("stepSize", was.step_size, now.step_size),
        ("minQty", was.min_qty, now.min_qty),
        ("tickSize", was.tick_size, now.tick_size),
        ("minNotional", was.min_notional, now.min_notional),
    ] {
        if a != b {
            parts.push(format!("{field} {a} → {b}"));
        }
    }
    parts.join("; ")
}
