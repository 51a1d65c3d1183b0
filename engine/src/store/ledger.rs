//! The durable side of the desk (SPEC §7, §8), run by the writer thread: journal files of
//! closed trades, signals and account snapshots, and the experience log's rings (trade
//! experiences, labelled bar samples), all under the data directory. At start the journals
//! are recovered (a torn tail truncated and reported) and the last account snapshot is
//! handed back so the brain's desk resumes where the previous run stopped.

use super::codec::{
    account_from_json, account_json, experience, experience_from_json, name, recovery_json, trade_json,
};
use crate::desk::events::{AccountSnapshot, DeskEvent, Outcome};
use aegis_journal::{FsyncPolicy, JournalFile};
use aegis_wire::experience::{RingWriter, SAMPLE_WORDS, TRADE_WORDS};
use aegis_wire::SymbolTable;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Where and how durable state is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct DataConfig {
    /// The data directory; `None` keeps nothing.
    pub dir: Option<PathBuf>,
    /// When journal records reach the disk.
    pub fsync: FsyncPolicy,
    /// Capacity of the trade-experience ring.
    pub trade_experiences: usize,
    /// Capacity of the bar-sample ring.
    pub bar_samples: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: None,
            fsync: FsyncPolicy::Interval(FSYNC_INTERVAL),
            trade_experiences: 5_000,
            bar_samples: 262_144,
        }
    }
}

/// How often the `interval` fsync policy syncs by default.
pub const FSYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The journal files, by name.
pub const JOURNALS: [&str; 4] = ["trades", "signals", "positions", "alerts"];

/// The live orders journal, written by the execution gateway (not the writer thread).
pub const ORDERS_JOURNAL: &str = "orders";

/// Why the ledger could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A journal file.
    #[error(transparent)]
    Journal(#[from] aegis_journal::JournalError),
    /// An experience ring.
    #[error(transparent)]
    Ring(#[from] aegis_wire::experience::RingFileError),
}

/// Open journals and rings.
pub struct Ledger {
    journals: [JournalFile; 4],
    experiences: RingWriter<TRADE_WORDS>,
    samples: RingWriter<SAMPLE_WORDS>,
    symbols: std::sync::Arc<SymbolTable>,
    line: Vec<u8>,
    failures: u64,
}

/// What opening the ledger found.
pub struct Opened {
    /// The ledger, for the writer thread.
    pub ledger: Ledger,
    /// The last account snapshot, to restore.
    pub account: Option<AccountSnapshot>,
    /// Per journal: records kept, bytes truncated and why (for the summary).
    pub recovery: Value,
}

impl Ledger {
    /// Opens (creating) everything under `dir`, recovering each journal; the last account
    /// snapshot comes back reconciled with the trades journal.
    pub fn open(
        config: &DataConfig,
        dir: &Path,
        symbols: std::sync::Arc<SymbolTable>,
    ) -> Result<Opened, LedgerError> {
        let mut account = None;
        let mut closed: Vec<(u64, f64)> = Vec::new();
        let mut trade_records: Vec<Value> = Vec::new();
        let mut recovery = serde_json::Map::new();
        let mut open = |name: &str| -> Result<JournalFile, LedgerError> {
            let path = dir.join("journal").join(format!("{name}.journal"));
            let (file, found) = JournalFile::open(&path, config.fsync, |payload| {
                let Ok(v) = serde_json::from_slice::<Value>(payload) else { return };
                match name {
                    "trades" => {
                        if let (Some(id), Some(pnl)) = (v["id"].as_u64(), v["pnl"].as_f64()) {
                            closed.push((id, pnl));
                        }
                        trade_records.push(v);
                    }
                    "positions" => {
                        if let Some(a) = account_from_json(&v, &symbols) {
                            account = Some(a);
                        }
                    }
                    _ => {}
                }
            })?;
            recovery.insert(name.to_string(), recovery_json(&found));
            Ok(file)
        };
        let journals = [open(JOURNALS[0])?, open(JOURNALS[1])?, open(JOURNALS[2])?, open(JOURNALS[3])?];
        let reconciled = account.as_mut().map_or(0, |a| reconcile(a, &closed));
        recovery.insert("positions_closed_per_trades_journal".into(), json!(reconciled));
        let mut experiences =
            RingWriter::open(&dir.join("experience").join("trades.ring"), config.trade_experiences)?;
        // A crash between a trade's journal record and its experience leaves the ring one
        // short: rebuild what is missing from the journal.
        let behind = (trade_records.len() as u64).saturating_sub(experiences.written());
        for v in &trade_records[trade_records.len() - behind as usize..] {
            if let Some(e) = experience_from_json(v, &symbols) {
                experiences.append(&e.to_words());
            }
        }
        recovery.insert("experiences_rebuilt".into(), json!(behind));
        let samples = RingWriter::open(&dir.join("experience").join("samples.ring"), config.bar_samples)?;
        let ledger =
            Ledger { journals, experiences, samples, symbols, line: Vec::with_capacity(4096), failures: 0 };
        Ok(Opened { ledger, account, recovery: Value::Object(recovery) })
    }

    /// Journal appends that failed (disk full, …); each is also logged.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Makes one desk event durable.
    pub fn write(&mut self, event: &DeskEvent) {
        let (journal, value) = match event {
            DeskEvent::Closed(t) => (0, trade_json(t, &self.symbols)),
            DeskEvent::Signal(s) => {
                let outcome = match s.outcome {
                    Outcome::Submitted(id) => json!({ "submitted": id }),
                    Outcome::Skipped(skip) => json!({ "skipped": skip.to_string() }),
                    Outcome::Refused(r) => json!({ "refused": r.to_string() }),
                };
                let value = json!({
                    "symbol": name(&self.symbols, s.symbol), "bar_time_ms": s.bar_time_ms, "side": s.side.name(),
                    "rule": s.rule.name(), "price": s.price, "outcome": outcome,
                });
                (1, value)
            }
            DeskEvent::Sample(sample) => {
                self.samples.append(&sample.to_words());
                return;
            }
            DeskEvent::Account(a) => (2, account_json(a, &self.symbols)),
            DeskEvent::Alert(a) => (3, json!({ "time_ms": a.time_ms, "level": a.level, "what": a.what })),
        };
        self.line.clear();
        if serde_json::to_writer(&mut self.line, &value).is_err() {
            return;
        }
        if let Err(e) = self.journals[journal].append(&self.line) {
            self.failures += 1;
            tracing::error!(error = %e, "journal append failed");
        }
        // The journal first: it is the truth a restart rebuilds a missing experience from.
        if let DeskEvent::Closed(t) = event {
            self.experiences.append(&experience(t).to_words());
        }
    }

    /// Syncs every journal (at shutdown).
    pub fn sync(&mut self) {
        for j in &mut self.journals {
            if let Err(e) = j.sync() {
                tracing::error!(error = %e, "journal sync failed");
            }
        }
    }
}

/// Makes the last account snapshot agree with the trades journal, the source of truth for
/// closed trades: a crash between a close's trade record and the snapshot after it leaves
/// the position in the snapshot although it closed. Such a position is dropped and its
/// close booked (`pnl` plus what the snapshot had already charged it: entry fee, funding);
/// the trade count and next id follow the journal. Returns the positions dropped.
fn reconcile(account: &mut AccountSnapshot, closed: &[(u64, f64)]) -> usize {
    let mut dropped = 0;
    for slot in account.positions.iter_mut() {
        let Some(p) = slot else { continue };
        if let Some(&(_, pnl)) = closed.iter().find(|(id, _)| *id == p.id) {
            if p.filled {
                account.wallet += pnl + p.fees + p.funding;
            }
            *slot = None;
            dropped += 1;
        }
    }
    let mut ids: Vec<u64> = closed.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    account.closed_trades = ids.len() as u64;
    account.next_id = account.next_id.max(ids.last().map_or(1, |m| m + 1));
    dropped
}

/// One journal record as read back: the journal's name and the record, or why it could not
/// be read.
pub type JournalRecord = (String, Result<Value, RecordError>);

/// A journal record that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A whole frame whose payload is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The file ends inside a frame (a crash mid-write): the rest is not read.
    #[error("torn tail at byte {at} ({reason}): {left} bytes not read")]
    TornTail {
        /// Offset of the torn frame.
        at: usize,
        /// What is wrong with it.
        reason: aegis_journal::Torn,
        /// Bytes left unread.
        left: usize,
    },
}

/// Every record of every journal under `dir` (the live orders journal last), in file order; a torn tail is reported,
/// never read (and left on disk: reading does not repair).
pub fn read_journals(dir: &Path) -> Result<Vec<JournalRecord>, std::io::Error> {
    let mut out = Vec::new();
    for name in JOURNALS.into_iter().chain([ORDERS_JOURNAL]) {
        out.extend(read_journal(dir, name)?.into_iter().map(|r| (name.to_string(), r)));
    }
    Ok(out)
}

/// The records of the journal `name` under `dir` (none when it does not exist), then, if
/// its tail is torn, an error saying where.
pub fn read_journal(dir: &Path, name: &str) -> Result<Vec<Result<Value, RecordError>>, std::io::Error> {
    let path = dir.join("journal").join(format!("{name}.journal"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = aegis_journal::FrameReader::new(&bytes);
    let mut out: Vec<Result<Value, RecordError>> =
        reader.by_ref().map(|p| serde_json::from_slice(p).map_err(RecordError::from)).collect();
    if let Some(torn) = reader.torn() {
        let (at, left) = (reader.offset(), bytes.len() - reader.offset());
        out.push(Err(RecordError::TornTail { at, reason: torn, left }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::events::SNAPSHOT_POSITIONS;
    use aegis_analytics::FEATURES;
    use aegis_trading::decay::Decay;
    use aegis_trading::{ExitReason, Position, Rule, Side};

    #[test]
    fn a_snapshot_behind_the_trades_journal_is_reconciled() {
        let p = |id: u64| Position {
            id,
            symbol: 0,
            side: Side::Long,
            qty: 1.0,
            leverage: 3.0,
            entry_price: 100.0,
            entry_time_ms: 0,
            stop: 98.0,
            target: 105.0,
            margin: 33.3,
            liquidation: 0.0,
            fees: 0.05,
            funding: 0.01,
            rule: Rule::Momentum,
            strength: 0.8,
            entry_gap: None,
            features: [0.0; FEATURES],
            filled: true,
            closing: None,
        };
        let mut positions = [None; SNAPSHOT_POSITIONS];
        positions[0] = Some(p(3));
        positions[1] = Some(p(4));
        let mut a = AccountSnapshot {
            time_ms: 0,
            wallet: 1_000.0,
            equity: 1_000.0,
            closed_trades: 2,
            next_id: 5,
            positions,
        };
        // Trade 4 closed (net −1.06) but the crash came before the snapshot after it.
        let dropped = reconcile(&mut a, &[(1, 2.0), (2, -1.0), (4, -1.06)]);
        assert_eq!(dropped, 1);
        assert_eq!(a.positions.iter().flatten().map(|p| p.id).collect::<Vec<_>>(), vec![3]);
        assert!((a.wallet - (1_000.0 - 1.06 + 0.05 + 0.01)).abs() < 1e-9);
        assert_eq!((a.closed_trades, a.next_id), (3, 5));
    }

    #[test]
    fn an_account_snapshot_survives_the_journal_round_trip() {
        let mut table = SymbolTable::with_capacity(2);
        table.intern("BTCUSDT").unwrap();
        table.intern("ETHUSDT").unwrap();
        let p = Position {
            id: 4,
            symbol: 1,
            side: Side::Short,
            qty: 0.25,
            leverage: 3.0,
            entry_price: 2_500.5,
            entry_time_ms: 1_700_000_000_000,
            stop: 2_550.0,
            target: 2_375.0,
            margin: 208.375,
            liquidation: 3_300.0,
            fees: 0.3125,
            funding: -0.01,
            rule: Rule::OrderBlock,
            strength: 0.9,
            entry_gap: Some(77),
            features: std::array::from_fn(|i| i as f64 / 7.0),
            filled: true,
            closing: Some(ExitReason::SignalDecay(Decay::AdverseMove)),
        };
        let mut positions = [None; SNAPSHOT_POSITIONS];
        positions[0] = Some(p);
        let a = AccountSnapshot {
            time_ms: 5,
            wallet: 9_990.5,
            equity: 9_991.0,
            closed_trades: 3,
            next_id: 5,
            positions,
        };
        let text = serde_json::to_string(&account_json(&a, &table)).unwrap();
        let back = account_from_json(&serde_json::from_str(&text).unwrap(), &table).unwrap();
        let restored = back.positions[0].unwrap();
        assert_eq!(restored, Position { closing: None, ..p }, "every field but a pending close");
        assert_eq!((back.wallet, back.closed_trades, back.next_id), (9_990.5, 3, 5));
        assert_eq!(restored.features.len(), FEATURES);
    }
}
