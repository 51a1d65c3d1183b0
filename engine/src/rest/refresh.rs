//! The periodic exchangeInfo refresh (SPEC §3: hourly), run by the REST worker between
//! requests: each traded symbol's status and filters compared with what the brain holds,
//! and every change sent to the brain over a ring; the copy in the data dir renewed.

use super::client::RestClient;
use super::rules::ServedSymbol;
use crate::desk::listing::{Brackets, ListingChange};
use crate::execution::live::client::TradeClient;
use aegis_trading::rules::Bracket;
use aegis_wire::SymbolTable;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the refresh keeps between reads.
pub struct InfoRefresh {
    every: Duration,
    next: Instant,
    cache: Option<PathBuf>,
    /// Per symbol: its listing as the brain holds it; `None`: never traded.
    known: Vec<Option<ListingChange>>,
    changes: rtrb::Producer<ListingChange>,
    /// Live: the account's signed client, whose leverage brackets replace exchangeInfo's.
    account: Option<TradeClient>,
}

/// How long a failed read waits before the next try (not a whole period).
const RETRY: Duration = Duration::from_secs(30);

impl InfoRefresh {
    /// A refresh every `every`, starting from `known` (what the run started with), sending
    /// changes to `changes`, renewing `cache` when given.
    pub fn new(
        every: Duration,
        cache: Option<PathBuf>,
        known: Vec<Option<ListingChange>>,
        changes: rtrb::Producer<ListingChange>,
    ) -> Self {
        Self { every, next: Instant::now() + every, cache, known, changes, account: None }
    }

    /// Reads the account's leverage brackets with `client` (signed) at each refresh, as a
    /// live run does at start (Binance serves them only signed, per account).
    pub fn with_account(mut self, client: TradeClient) -> Self {
        self.account = Some(client);
        self
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
                let account = self.account_brackets();
                self.compare(&served, account.as_deref(), symbols);
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

    /// The account's brackets per symbol (live), or `None` (paper, or the read failed:
    /// the brackets in use stay).
    fn account_brackets(&mut self) -> Option<Vec<(String, Vec<Bracket>)>> {
        let client = self.account.as_mut()?;
        match client.leverage_brackets() {
            Ok(list) => Some(list),
            Err(e) => {
                eprintln!("aegis: leverage brackets refresh failed ({e}); the brackets in use stay");
                None
            }
        }
    }

    /// Sends each traded symbol whose status, filters or brackets differ from what is held.
    fn compare(
        &mut self,
        served: &[ServedSymbol],
        account: Option<&[(String, Vec<Bracket>)]>,
        symbols: &SymbolTable,
    ) {
        for (id, name) in symbols.iter() {
            let Some(Some(was)) = self.known.get(usize::from(id.0)).copied() else { continue };
            let entry = served.iter().find(|s| s.name == name);
            let (trading, filters, listed_brackets, why) = match entry.map(|s| (s.trading, &s.rules)) {
                Some((trading, Ok(rules))) => {
                    (trading, rules.filters(), Brackets::from_slice(rules.brackets()), None)
                }
                Some((_, Err(e))) => {
                    (false, was.filters, None, Some(format!("its rules are unreadable ({e})")))
                }
                None => (false, was.filters, None, Some("it is no longer listed".to_string())),
            };
            // Live: the account's brackets (exchangeInfo's are not the account's); paper:
            // exchangeInfo's; either way the ones in use when none are read.
            let brackets = if self.account.is_some() {
                account
                    .and_then(|a| a.iter().find(|(s, _)| s == name))
                    .and_then(|(_, b)| Brackets::from_slice(b))
            } else {
                listed_brackets
            }
            .unwrap_or(was.brackets);
            let now = ListingChange { symbol: id.0, trading, filters, brackets };
            if now == was {
                continue;
            }
            if self.changes.push(now).is_err() {
                eprintln!(
                    "aegis: exchangeInfo refresh: {name}: the change ring is full; tried again next refresh"
                );
                continue;
            }
            self.known[usize::from(id.0)] = Some(now);
            eprintln!("aegis: exchangeInfo refresh: {name}: {}", describe(&was, &now, why));
        }
    }
}

/// What changed, for the operator.
fn describe(was: &ListingChange, now: &ListingChange, why: Option<String>) -> String {
    let mut parts = Vec::new();
    if was.trading != now.trading {
        parts.push(match (now.trading, why) {
            (true, _) => "TRADING again: entries allowed".to_string(),
            (false, Some(why)) => {
                format!("not traded: {why}; no new entries, an open position stays protected")
            }
            (false, None) => "stopped TRADING: no new entries, an open position stays protected".to_string(),
        });
    }
    let (a, b) = (&was.filters, &now.filters);
    for (field, x, y) in [
        ("stepSize", a.step_size, b.step_size),
        ("minQty", a.min_qty, b.min_qty),
        ("tickSize", a.tick_size, b.tick_size),
        ("minNotional", a.min_notional, b.min_notional),
    ] {
        if x != y {
            parts.push(format!("{field} {x} → {y}"));
        }
    }
    if was.brackets != now.brackets {
        let top = |b: &Brackets| b.as_slice().first().map_or(0.0, |b| b.max_leverage);
        parts.push(format!(
            "leverage brackets changed ({} → {} brackets, highest leverage {}× → {}×)",
            was.brackets.as_slice().len(),
            now.brackets.as_slice().len(),
            top(&was.brackets),
            top(&now.brackets)
        ));
    }
    parts.join("; ")
}
