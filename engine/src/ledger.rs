//! The durable side of the desk (SPEC §7, §8), run by the writer thread: journal files of
//! closed trades, signals and account snapshots, and the experience log's rings (trade
//! experiences, labelled bar samples), all under the data directory. At start the journals
//! are recovered (a torn tail truncated and reported) and the last account snapshot is
//! handed back so the brain's desk resumes where the previous run stopped.

use crate::brain::desk::{AccountSnapshot, DeskEvent, Outcome, SNAPSHOT_POSITIONS};
use aegis_journal::{FsyncPolicy, JournalFile, Recovery};
use aegis_trading::{ClosedTrade, ExitReason, Position, Rule, Side};
use aegis_wire::experience::{RingWriter, TradeExperience, SAMPLE_WORDS, TRADE_WORDS};
use aegis_wire::{SymbolId, SymbolTable};
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
            fsync: FsyncPolicy::Interval(std::time::Duration::from_secs(1)),
            trade_experiences: 5_000,
            bar_samples: 262_144,
        }
    }
}

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

fn name(symbols: &SymbolTable, symbol: u16) -> String {
    symbols.name(SymbolId(symbol)).unwrap_or("?").to_string()
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

fn recovery_json(r: &Recovery) -> Value {
    json!({
        "records": r.records,
        "truncated_bytes": r.truncated_bytes,
        "torn": r.torn.map(|t| t.to_string()),
    })
}

fn experience(t: &ClosedTrade) -> TradeExperience {
    TradeExperience {
        trade_id: t.id,
        symbol: t.symbol,
        entry_time_ms: t.entry_time_ms,
        exit_time_ms: t.exit_time_ms,
        side: t.side.sign() as i8,
        roi_pct: t.roi_pct,
        reward: f64::from(t.reward),
        weight: f64::from(t.reward).abs(),
        features: t.features,
    }
}

fn exit_name(reason: ExitReason) -> (&'static str, Option<&'static str>) {
    match reason {
        ExitReason::SignalDecay(d) => (reason.name(), Some(d.name())),
        other => (other.name(), None),
    }
}

/// A closed trade as the trades journal holds it (SPEC §6's fields).
pub fn trade_json(t: &ClosedTrade, symbols: &SymbolTable) -> Value {
    let (reason, decay) = exit_name(t.reason);
    json!({
        "id": t.id, "symbol": name(symbols, t.symbol), "side": t.side.name(), "qty": t.qty,
        "leverage": t.leverage, "entry_price": t.entry_price, "entry_time_ms": t.entry_time_ms,
        "exit_price": t.exit_price, "exit_time_ms": t.exit_time_ms, "reason": reason, "decay": decay,
        "rule": t.rule.name(), "roi_pct": t.roi_pct, "pnl": t.pnl, "fees": t.fees, "funding": t.funding,
        "progress": t.progress, "reward": t.reward, "features": t.features.to_vec(),
    })
}

/// The trade experience a trades-journal record describes.
fn experience_from_json(v: &Value, symbols: &SymbolTable) -> Option<TradeExperience> {
    let features: Vec<f64> = v["features"].as_array()?.iter().filter_map(Value::as_f64).collect();
    let reward = v["reward"].as_f64()?;
    Some(TradeExperience {
        trade_id: v["id"].as_u64()?,
        symbol: symbols.get(v["symbol"].as_str()?.as_bytes())?.0,
        entry_time_ms: v["entry_time_ms"].as_i64()?,
        exit_time_ms: v["exit_time_ms"].as_i64()?,
        side: if v["side"] == "LONG" { 1 } else { -1 },
        roi_pct: v["roi_pct"].as_f64()?,
        reward,
        weight: reward.abs(),
        features: features.try_into().ok()?,
    })
}

/// A position as the positions journal (and the control socket) shows it.
pub fn position_json(p: &Position, symbols: &SymbolTable) -> Value {
    json!({
        "id": p.id, "symbol": name(symbols, p.symbol), "side": p.side.name(), "qty": p.qty,
        "leverage": p.leverage, "entry_price": p.entry_price, "entry_time_ms": p.entry_time_ms,
        "stop": p.stop, "target": p.target, "margin": p.margin, "liquidation": p.liquidation,
        "fees": p.fees, "funding": p.funding, "rule": p.rule.name(), "strength": p.strength,
        "entry_gap": p.entry_gap, "features": p.features.to_vec(), "filled": p.filled,
        "closing": p.closing.map(|r| exit_name(r).0),
    })
}

/// An account snapshot as the positions journal holds it.
pub fn account_json(a: &AccountSnapshot, symbols: &SymbolTable) -> Value {
    json!({
        "time_ms": a.time_ms, "wallet": a.wallet, "equity": a.equity, "closed_trades": a.closed_trades,
        "next_id": a.next_id,
        "positions": a.positions.iter().flatten().map(|p| position_json(p, symbols)).collect::<Vec<_>>(),
    })
}

fn rule_named(text: &str) -> Option<Rule> {
    [Rule::LiquidityGrab, Rule::OrderBlock, Rule::Momentum, Rule::Model]
        .into_iter()
        .find(|r| r.name() == text)
}

fn position_from_json(v: &Value, symbols: &SymbolTable) -> Option<Position> {
    let f = |key: &str| v.get(key).and_then(Value::as_f64);
    let features: Vec<f64> = v.get("features")?.as_array()?.iter().filter_map(Value::as_f64).collect();
    let symbol = symbols.get(v.get("symbol")?.as_str()?.as_bytes())?;
    Some(Position {
        id: v.get("id")?.as_u64()?,
        symbol: symbol.0,
        side: if v.get("side")?.as_str()? == "LONG" { Side::Long } else { Side::Short },
        qty: f("qty")?,
        leverage: f("leverage")?,
        entry_price: f("entry_price")?,
        entry_time_ms: v.get("entry_time_ms")?.as_i64()?,
        stop: f("stop")?,
        target: f("target")?,
        margin: f("margin")?,
        liquidation: f("liquidation")?,
        fees: f("fees")?,
        funding: f("funding")?,
        rule: rule_named(v.get("rule")?.as_str()?)?,
        strength: f("strength")?,
        entry_gap: v.get("entry_gap").and_then(Value::as_u64),
        features: features.try_into().ok()?,
        filled: v.get("filled")?.as_bool()?,
        // A close that was pending at the crash is decided again on the next bar.
        closing: None,
    })
}

/// Parses a positions-journal record back; `None` for anything malformed (a symbol no
/// longer configured drops its position, which the summary's restore count shows).
pub fn account_from_json(v: &Value, symbols: &SymbolTable) -> Option<AccountSnapshot> {
    let mut positions = [None; SNAPSHOT_POSITIONS];
    for (slot, p) in positions
        .iter_mut()
        .zip(v.get("positions")?.as_array()?.iter().filter_map(|p| position_from_json(p, symbols)))
    {
        *slot = Some(p);
    }
    Some(AccountSnapshot {
        time_ms: v.get("time_ms")?.as_i64()?,
        wallet: v.get("wallet")?.as_f64()?,
        equity: v.get("equity")?.as_f64()?,
        closed_trades: v.get("closed_trades")?.as_u64()?,
        next_id: v.get("next_id")?.as_u64()?,
        positions,
    })
}

/// One journal record as read back: the journal's name and the record, or why it could not
/// be read.
pub type JournalRecord = (String, Result<Value, String>);

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
pub fn read_journal(dir: &Path, name: &str) -> Result<Vec<Result<Value, String>>, std::io::Error> {
    let path = dir.join("journal").join(format!("{name}.journal"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = aegis_journal::FrameReader::new(&bytes);
    let mut out: Vec<Result<Value, String>> =
        reader.by_ref().map(|p| serde_json::from_slice(p).map_err(|e| format!("not JSON: {e}"))).collect();
    if let Some(torn) = reader.torn() {
        let (at, left) = (reader.offset(), bytes.len() - reader.offset());
        out.push(Err(format!("torn tail at byte {at} ({torn}): {left} bytes not read")));
    }
    Ok(out)
}

/// Rows written by [`export`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Closed trades.
    pub trades: usize,
    /// Trade experiences.
    pub experiences: usize,
    /// Bar samples.
    pub samples: usize,
}

/// One exported column.
enum Column {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(Vec<String>),
}

impl Column {
    fn cell(&self, row: usize) -> String {
        match self {
            Column::Int(v) => v[row].to_string(),
            Column::Float(v) => v[row].to_string(),
            Column::Text(v) => v[row].clone(),
        }
    }
}

/// A named table of equally long columns.
struct Table {
    name: &'static str,
    columns: Vec<(String, Column)>,
    rows: usize,
}

impl Table {
    fn csv(&self) -> String {
        let mut text = self.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(",");
        text.push('\n');
        for row in 0..self.rows {
            let cells: Vec<String> = self.columns.iter().map(|(_, c)| c.cell(row)).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        text
    }

    fn parquet(&self, path: &Path) -> Result<(), String> {
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        use parquet::file::writer::SerializedFileWriter;
        let err = |e: parquet::errors::ParquetError| format!("{}: {e}", path.display());
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|(name, c)| match c {
                Column::Int(_) => format!("REQUIRED INT64 {name};"),
                Column::Float(_) => format!("REQUIRED DOUBLE {name};"),
                Column::Text(_) => format!("REQUIRED BYTE_ARRAY {name} (UTF8);"),
            })
            .collect();
        let schema = parquet::schema::parser::parse_message_type(&format!(
            "message {} {{ {} }}",
            self.name,
            fields.join(" ")
        ))
        .map_err(err)?;
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut writer =
            SerializedFileWriter::new(file, std::sync::Arc::new(schema), Default::default()).map_err(err)?;
        let mut group = writer.next_row_group().map_err(err)?;
        for (_, column) in &self.columns {
            let Some(mut w) = group.next_column().map_err(err)? else { break };
            match column {
                Column::Int(v) => w.typed::<Int64Type>().write_batch(v, None, None).map_err(err)?,
                Column::Float(v) => w.typed::<DoubleType>().write_batch(v, None, None).map_err(err)?,
                Column::Text(v) => {
                    let bytes: Vec<ByteArray> = v.iter().map(|t| ByteArray::from(t.as_str())).collect();
                    w.typed::<ByteArrayType>().write_batch(&bytes, None, None).map_err(err)?
                }
            };
            w.close().map_err(err)?;
        }
        group.close().map_err(err)?;
        writer.close().map_err(err)?;
        Ok(())
    }
}

/// The trades journal as a table.
fn trades_table(dir: &Path) -> Result<Table, String> {
    let records: Vec<Value> = read_journal(dir, "trades")
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let int = |k: &str| Column::Int(records.iter().map(|v| v[k].as_i64().unwrap_or(0)).collect());
    let float = |k: &str| Column::Float(records.iter().map(|v| v[k].as_f64().unwrap_or(f64::NAN)).collect());
    let text =
        |k: &str| Column::Text(records.iter().map(|v| v[k].as_str().unwrap_or("").to_string()).collect());
    let mut columns =
        vec![("id".to_string(), int("id")), ("symbol".into(), text("symbol")), ("side".into(), text("side"))];
    for k in ["qty", "leverage", "entry_price"] {
        columns.push((k.into(), float(k)));
    }
    columns.push(("entry_time_ms".into(), int("entry_time_ms")));
    columns.push(("exit_price".into(), float("exit_price")));
    columns.push(("exit_time_ms".into(), int("exit_time_ms")));
    for k in ["reason", "decay", "rule"] {
        columns.push((k.into(), text(k)));
    }
    for k in ["roi_pct", "pnl", "fees", "funding", "progress"] {
        columns.push((k.into(), float(k)));
    }
    columns.push(("reward".into(), int("reward")));
    Ok(Table { name: "trades", columns, rows: records.len() })
}

/// Feature columns named as SPEC §4 names them.
fn feature_columns(rows: &[[f64; aegis_wire::experience::FEATURE_COUNT]]) -> Vec<(String, Column)> {
    aegis_analytics::NAMES
        .iter()
        .enumerate()
        .map(|(k, name)| (name.to_string(), Column::Float(rows.iter().map(|f| f[k]).collect())))
        .collect()
}

/// Writes the trades journal and the experience rings (oldest first) under `out`, each as
/// CSV and Parquet: `trades`, `experiences`, `samples` `.csv`/`.parquet`. The rings'
/// capacities must be the ones they were created with (`[ml]`).
pub fn export(dir: &Path, out: &Path, config: &DataConfig) -> Result<Exported, String> {
    use aegis_wire::experience::{BarSample, RingReader};
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let ring_err = |e: aegis_wire::experience::RingFileError| e.to_string();
    let ring = RingReader::<TRADE_WORDS>::open(&dir.join("experience/trades.ring"), config.trade_experiences)
        .map_err(ring_err)?;
    let experiences: Vec<TradeExperience> =
        ring.range().filter_map(|i| ring.get(i)).map(|w| TradeExperience::from_words(&w)).collect();
    let ring = RingReader::<SAMPLE_WORDS>::open(&dir.join("experience/samples.ring"), config.bar_samples)
        .map_err(ring_err)?;
    let samples: Vec<BarSample> =
        ring.range().filter_map(|i| ring.get(i)).map(|w| BarSample::from_words(&w)).collect();
    let mut e_columns = vec![
        ("trade_id".to_string(), Column::Int(experiences.iter().map(|e| e.trade_id as i64).collect())),
        ("symbol".into(), Column::Int(experiences.iter().map(|e| i64::from(e.symbol)).collect())),
        ("entry_time_ms".into(), Column::Int(experiences.iter().map(|e| e.entry_time_ms).collect())),
        ("exit_time_ms".into(), Column::Int(experiences.iter().map(|e| e.exit_time_ms).collect())),
        ("side".into(), Column::Int(experiences.iter().map(|e| i64::from(e.side)).collect())),
        ("roi_pct".into(), Column::Float(experiences.iter().map(|e| e.roi_pct).collect())),
        ("reward".into(), Column::Float(experiences.iter().map(|e| e.reward).collect())),
        ("weight".into(), Column::Float(experiences.iter().map(|e| e.weight).collect())),
    ];
    e_columns.extend(feature_columns(&experiences.iter().map(|e| e.features).collect::<Vec<_>>()));
    let mut s_columns = vec![
        ("symbol".to_string(), Column::Int(samples.iter().map(|s| i64::from(s.symbol)).collect())),
        ("open_time_ms".into(), Column::Int(samples.iter().map(|s| s.open_time_ms).collect())),
        ("horizon".into(), Column::Int(samples.iter().map(|s| i64::from(s.horizon)).collect())),
        ("forward_return".into(), Column::Float(samples.iter().map(|s| s.forward_return).collect())),
    ];
    s_columns.extend(feature_columns(&samples.iter().map(|s| s.features).collect::<Vec<_>>()));
    let tables = [
        trades_table(dir)?,
        Table { name: "experiences", columns: e_columns, rows: experiences.len() },
        Table { name: "samples", columns: s_columns, rows: samples.len() },
    ];
    for table in &tables {
        let csv = out.join(format!("{}.csv", table.name));
        std::fs::write(&csv, table.csv()).map_err(|e| format!("{}: {e}", csv.display()))?;
        table.parquet(&out.join(format!("{}.parquet", table.name)))?;
    }
    Ok(Exported { trades: tables[0].rows, experiences: tables[1].rows, samples: tables[2].rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_analytics::FEATURES;
    use aegis_trading::decay::Decay;

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
