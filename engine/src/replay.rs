//! Replay as backtest (issue 5): recorded data in any format exchange-sim reads goes
//! through the same parser, ring, brain and desk as a live run — on one thread, as fast as
//! it can, with no sockets and no clock — so the same input gives byte-identical journals
//! and report. No REST: warm-up comes from the data itself (241 bars), books are not kept,
//! and a gap is counted, not filled.

use crate::brain::stats::BrainStats;
use crate::brain::{Brain, BrainConfig};
use crate::desk::events::DeskEvent;
use crate::desk::stats::DeskStats;
use crate::desk::{Desk, TradingConfig};
use crate::feed::binance::parse_message;
use crate::ring::ring;
use crate::ring::Idle;
use crate::store::ledger::{DataConfig, Ledger};
use aegis_recorded::market::Source;
use aegis_wire::stream::classify_channel;
use aegis_wire::{EventKind, SymbolTable};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a replay needs.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Recorded files, merged by time.
    pub files: Vec<PathBuf>,
    /// Decision and money settings.
    pub trading: TradingConfig,
    /// Per-symbol analytics sizes.
    pub features: aegis_analytics::FeatureConfig,
    /// Where journals and the experience log go (`None`: a temporary directory, removed).
    pub journal: Option<PathBuf>,
    /// Print progress to stderr.
    pub progress: bool,
    /// How several files merge: by the exchange's event time (default) or by receipt.
    pub order: aegis_recorded::replay::Order,
    /// A published weights file: the student serves it (after the teacher's trades, as live).
    pub model: Option<PathBuf>,
    /// Train as the replay goes (`--learn`), as the sidecar does live.
    pub learn: Option<Learn>,
}

/// Training inside a replay: the sidecar's one-shot run (`aegis-sidecar train --once`, on the
/// CPU, one libtorch thread, fixed seed) at the same trigger as live — every `every` closed
/// trades — on the experience the replay has logged so far; what it publishes is handed to
/// the student, who takes it at the next closed bar.
#[derive(Clone, Debug)]
pub struct Learn {
    /// The aegis-sidecar binary.
    pub sidecar: PathBuf,
    /// Closed trades between trainings (`ml.train_every`).
    pub every: u64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A recorded file could not be read.
    #[error(transparent)]
    Input(#[from] aegis_recorded::replay::ReplayError),
    /// The journal directory holds a previous run.
    #[error("{0}: already holds journals; a backtest writes into an empty directory")]
    NotEmpty(String),
    /// Journals or rings could not be opened.
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
    /// The input has no symbol or no stream the engine reads.
    #[error("nothing to replay: {0}")]
    Empty(String),
    /// Another engine holds the journal directory.
    #[error(transparent)]
    Locked(#[from] aegis_journal::LockError),
    /// Files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The weights file given with `--model` cannot serve.
    #[error("--model {0}")]
    Model(#[from] crate::model_loader::ModelFileError),
    /// `--learn` cannot train: the sidecar is missing or could not be started.
    #[error("--learn: {0}")]
    Learn(String),
}

/// The outcome: the report (deterministic) and the equity curve.
pub struct ReplayReport {
    /// Trades, win rate, PnL, drawdown, Sharpe, exposure, counts.
    pub summary: Value,
    /// (exchange time ms, equity) after every fill or close, starting equity first.
    pub equity_curve: Vec<(i64, f64)>,
}

/// Runs the replay.
pub fn replay(config: &ReplayConfig) -> Result<ReplayReport, ReplayError> {
    // The model first: a weights file that cannot serve stops the replay before it starts.
    let mut student = (config.model.is_some() || config.learn.is_some()).then(crate::model_loader::fed_link);
    if let (Some(path), Some((feed, _))) = (&config.model, student.as_mut()) {
        feed.hand_over(crate::model_loader::read_published(path)?);
    }
    if let Some(learn) = config.learn.as_ref().filter(|l| !l.sidecar.is_file()) {
        return Err(ReplayError::Learn(format!("aegis-sidecar not found at {}", learn.sidecar.display())));
    }
    let mut source = aegis_recorded::replay::Replay::load_ordered(&config.files, config.order)?;
    let total = source.remaining();
    let infos = source.symbols();
    if infos.is_empty() {
        return Err(ReplayError::Empty("no symbol in the input".into()));
    }
    let mut table = SymbolTable::with_capacity(infos.len());
    for info in &infos {
        table.intern(&info.symbol).map_err(|e| ReplayError::Empty(format!("symbol {}: {e}", info.symbol)))?;
    }
    let table = Arc::new(table);
    let kinds: Vec<(EventKind, bool)> = source
        .stream_names()
        .iter()
        .filter_map(|name| name.split_once('@').and_then(|(_, channel)| classify_channel(channel.as_bytes())))
        .collect();
    let has = |kind: EventKind| kinds.iter().any(|(k, _)| *k == kind);
    let brain_config = BrainConfig {
        bars_from_trades: !has(EventKind::Kline) && has(EventKind::Trade),
        books: false,
        core: None,
        idle: Idle::Spin,
        features: config.features,
        flow_from_agg_trades: has(EventKind::AggTrade),
        flatten_on_shutdown: false,
        prints_from_klines: !has(EventKind::AggTrade) && !has(EventKind::Trade),
        fill_gaps: false,
        latency_skip_events: 0,
    };
    // A kept journal directory is a data dir: no engine may write into it meanwhile.
    let _lock = config.journal.as_deref().map(aegis_journal::DataDirLock::acquire).transpose()?;
    let scratch;
    let dir: &Path = match &config.journal {
        Some(dir) => {
            if dir.join("journal").is_dir() && std::fs::read_dir(dir.join("journal"))?.next().is_some() {
                return Err(ReplayError::NotEmpty(dir.display().to_string()));
            }
            dir
        }
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path()
        }
    };
    let data = DataConfig {
        dir: Some(dir.to_path_buf()),
        fsync: aegis_journal::FsyncPolicy::Never,
        ..DataConfig::default()
    };
    let mut ledger = Ledger::open(&data, dir, table.clone())?.ledger;
    let (mut producer, consumer) = ring(1 << 16, 0, table.len());
    let (desk_tx, mut desk_rx) = rtrb::RingBuffer::<DeskEvent>::new(1 << 16);
    let desk_stats = Arc::new(DeskStats::default());
    let rules = infos.iter().map(rules_of).collect();
    let desk = Desk::new(config.trading, rules, Some(desk_tx), desk_stats.clone());
    let brain_stats = Arc::new(BrainStats::new(table.len()));
    let mut brain = Brain::offline(brain_config, table.len(), consumer, desk, brain_stats.clone());
    let (mut feed, model_stats) = match student {
        Some((feed, link)) => {
            let stats = feed.stats().clone();
            brain = brain.with_student(crate::brain::student::Student::new(link, table.len()));
            (Some(feed), Some(stats))
        }
        None => (None, None),
    };
    let mut trainings = Vec::new();
    let mut next_training = config.learn.as_ref().map_or(u64::MAX, |l| l.every.max(1));
    let start_equity = config.trading.broker.starting_equity;
    let mut book = Book::new(start_equity);
    let mut phases = Phases::default();
    // Before the stream moves on: the buy-and-hold baseline reads the recorded bars.
    let hold = buy_and_hold(
        &source,
        &infos.iter().map(|i| i.symbol.clone()).collect::<Vec<_>>(),
        start_equity,
        config.trading.broker.taker_fee,
        config.features.realized_vol_long + 1,
    );
    phases.enter(None, start_equity, 0);
    let (mut messages, mut parse_errors) = (0u64, 0u64);
    let started = std::time::Instant::now();
    let mut next_progress = started + std::time::Duration::from_secs(1);
    let mut end_ms = 0i64;
    while let Some(batch) = source.next_batch() {
        end_ms = end_ms.max((batch.time_ns / 1_000_000) as i64);
        for msg in &batch.msgs {
            messages += 1;
            let parsed = parse_message(msg.envelope.as_bytes(), None, &table, 0, &mut |r| {
                producer.push(r);
            });
            parse_errors += u64::from(parsed.is_err());
        }
        // One batch (messages sharing a timestamp) is far below the ring's 65,536 slots, so
        // draining after each batch never drops (the report's ring_drops says so).
        brain.poll_once();
        while let Ok(event) = desk_rx.pop() {
            book.note(&event);
            phases.note(&event);
            ledger.write(&event);
        }
        phases.enter(serving_generation(&desk_stats, model_stats.as_deref()), desk_stats.equity(), end_ms);
        let closed = desk_stats.trades_closed.load(std::sync::atomic::Ordering::Relaxed);
        if let (Some(learn), Some(feed), true) = (&config.learn, feed.as_mut(), closed >= next_training) {
            ledger.sync();
            trainings.push(train(learn, dir, closed, end_ms, feed)?);
            next_training = closed + learn.every.max(1);
        }
        if config.progress && std::time::Instant::now() >= next_progress {
            next_progress += std::time::Duration::from_secs(1);
            eprintln!(
                "replay: {messages}/{total} messages ({:.0} %)",
                100.0 * messages as f64 / total.max(1) as f64
            );
        }
    }
    brain.poll_once();
    while let Ok(event) = desk_rx.pop() {
        book.note(&event);
        phases.note(&event);
        ledger.write(&event);
    }
    ledger.sync();
    if config.progress {
        eprintln!("replay: {messages} messages in {:.2} s", started.elapsed().as_secs_f64());
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let bars: u64 = brain_stats.symbols.iter().map(|s| load(&s.bars_closed)).sum();
    let mut summary = book.report(desk_stats.equity(), end_ms);
    summary["messages"] = json!(messages);
    summary["order"] = json!(match config.order {
        aegis_recorded::replay::Order::EventTime => "exchange event time",
        aegis_recorded::replay::Order::Receipt => "receive time",
    });
    summary["parse_errors"] = json!(parse_errors);
    summary["bars_closed"] = json!(bars);
    summary["symbols"] = json!(table.iter().map(|(_, n)| n.to_string()).collect::<Vec<_>>());
    summary["signals"] = json!(load(&desk_stats.signals));
    summary["signals_not_taken"] = json!(load(&desk_stats.signals_not_taken));
    summary["open_positions"] = json!(load(&desk_stats.open_positions));
    summary["ring_drops"] = json!(load(&producer.stats().dropped));
    summary["model"] = match &model_stats {
        Some(stats) => json!({
            "weights": config.model.as_ref().map(|p| p.display().to_string()),
            "generation": load(&stats.generation),
            "serving": load(&stats.serving),
            "swaps": load(&stats.swaps),
            "phase_at_end": if load(&desk_stats.phase) == 1 { "student" } else { "teacher" },
        }),
        None => Value::Null,
    };
    if let Some(learn) = &config.learn {
        summary["learning"] = json!({ "every": learn.every, "trainings": trainings });
    }
    summary["phases"] = phases.report(desk_stats.equity(), end_ms);
    summary["fills"] = json!(fill_realism(
        has(EventKind::AggTrade) || has(EventKind::Trade),
        has(EventKind::MarkPriceUpdate)
    ));
    let mut baselines = json!({ "buy_and_hold": hold });
    if config.model.is_some() || config.learn.is_some() {
        // The same bars, the teacher alone: what the student must beat.
        let alone = replay(&ReplayConfig {
            model: None,
            learn: None,
            journal: None,
            progress: false,
            ..config.clone()
        })?;
        let keep = ["trades", "win_rate", "pnl_net", "fees", "max_drawdown", "sharpe_per_trade", "exposure"];
        baselines["teacher_alone"] =
            keep.iter().map(|k| (k.to_string(), alone.summary[*k].clone())).collect();
    }
    baselines["random_entries"] = json!({ "available": false, "why": "not built yet (issue 22, item 3)" });
    summary["baselines"] = baselines;
    Ok(ReplayReport { summary, equity_curve: book.curve })
}

/// What the fills of this replay can and cannot know, in words for the report.
fn fill_realism(trades: bool, marks: bool) -> String {
    let fills = if trades {
        "paper fills at the next recorded trade print (plus slippage)"
    } else {
        "klines only: fills at the bar close (plus slippage)"
    };
    let funding =
        if marks { "funding from the recorded markPrice" } else { "no markPrice in the data: no funding" };
    format!("{fills}; {funding}; taker fees on every fill")
}

/// The model generation the student trades on, or `None` while the teacher decides.
fn serving_generation(desk: &DeskStats, model: Option<&crate::model_loader::ModelStats>) -> Option<u64> {
    let student = desk.phase.load(std::sync::atomic::Ordering::Relaxed) == 1;
    model.map(|m| m.serving.load(std::sync::atomic::Ordering::Relaxed)).filter(|_| student)
}

/// The run cut into phases (the teacher, then each model generation the student served),
/// each with its own book: trades closed while it held.
#[derive(Default)]
struct Phases {
    list: Vec<(Option<u64>, i64, Book)>,
}

impl Phases {
    /// Starts a new phase, from `equity` at `at_ms`, when `generation` is not the current one.
    fn enter(&mut self, generation: Option<u64>, equity: f64, at_ms: i64) {
        if self.list.last().is_none_or(|(current, _, _)| *current != generation) {
            self.list.push((generation, at_ms, Book::new(equity)));
        }
    }

    fn note(&mut self, event: &DeskEvent) {
        if let Some((_, _, book)) = self.list.last_mut() {
            book.note(event);
        }
    }

    /// Per phase: when it began and its trades, win rate, PnL net of fees, drawdown and
    /// Sharpe; each ends with the next one's starting equity.
    fn report(&self, equity: f64, end_ms: i64) -> Value {
        let ends: Vec<(f64, i64)> = self.list.iter().skip(1).map(|(_, at, b)| (b.start, *at)).collect();
        let rows: Vec<Value> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, (generation, from, book))| {
                let (end_equity, to) = ends.get(i).copied().unwrap_or((equity, end_ms));
                let mut row = book.report(end_equity, to);
                row["phase"] =
                    json!(generation.map_or("teacher".to_string(), |g| format!("student, generation {g}")));
                // The first phase holds from the first event the desk saw.
                row["from_ms"] = json!(if i == 0 { book.first_ms.unwrap_or(*from) } else { *from });
                row["to_ms"] = json!(to);
                row
            })
            .collect();
        Value::Array(rows)
    }
}

/// Buy-and-hold over the same bars: equal weight in every symbol from the first bar the
/// engine could trade on (its features warm: `warm_bars`) to the last, a taker fee in and
/// out. Unavailable without 1m klines in the data.
fn buy_and_hold(source: &impl Source, symbols: &[String], start: f64, fee: f64, warm_bars: usize) -> Value {
    let series: Vec<Vec<(i64, f64)>> = symbols
        .iter()
        .filter_map(|s| source.bars_1m(s).ok())
        .map(|bars| {
            let closes = bars.iter().skip(warm_bars.saturating_sub(1));
            closes.map(|b| (b.open_time_ms + b.interval_ms, b.close as f64)).collect::<Vec<_>>()
        })
        .filter(|closes| closes.len() >= 2 && closes[0].1 > 0.0)
        .collect();
    if series.is_empty() {
        return json!({ "available": false, "why": "no 1m klines past the warm-up in the data" });
    }
    let mut times: Vec<i64> = series.iter().flatten().map(|p| p.0).collect();
    times.sort_unstable();
    times.dedup();
    let invested = start * (1.0 - fee);
    let share = invested / series.len() as f64;
    let mut at = vec![0usize; series.len()];
    let (mut value, mut peak, mut max_drawdown) = (invested, f64::MIN, 0.0f64);
    for t in &times {
        value = 0.0;
        for (k, closes) in series.iter().enumerate() {
            while at[k] + 1 < closes.len() && closes[at[k] + 1].0 <= *t {
                at[k] += 1;
            }
            value += share * closes[at[k]].1 / closes[0].1;
        }
        peak = peak.max(value);
        max_drawdown = max_drawdown.max((peak - value) / peak);
    }
    let end = value * (1.0 - fee);
    json!({
        "available": true,
        "symbols": series.len(),
        "from_ms": times[0],
        "to_ms": times[times.len() - 1],
        "pnl_net": end - start,
        "return": end / start - 1.0,
        "fees": start * fee + value * fee,
        "max_drawdown": max_drawdown,
    })
}

/// One training in a replay: the sidecar's one-shot run on `dir`'s experience log so far;
/// a newly published model goes to the student. A run that fails (too few samples yet) is
/// reported and the replay goes on. Nothing timed goes into the entry, so the report stays
/// byte-identical from run to run.
fn train(
    learn: &Learn,
    dir: &Path,
    closed_trades: u64,
    at_ms: i64,
    feed: &mut crate::model_loader::ModelFeed,
) -> Result<Value, ReplayError> {
    let before = feed.stats().generation.load(std::sync::atomic::Ordering::Relaxed);
    let output = std::process::Command::new(&learn.sidecar)
        .args(["train", "--once", "--cpu", "--threads", "1", "--data-dir"])
        .arg(dir)
        .args(["--parent", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ReplayError::Learn(format!("{}: {e}", learn.sidecar.display())))?;
    let mut entry = json!({ "after_trades": closed_trades, "at_ms": at_ms });
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        entry["error"] = json!(stderr.lines().last().unwrap_or("the sidecar failed").trim());
        return Ok(entry);
    }
    let report_path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let report: Value = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    entry["generation"] = report["generation"].clone();
    entry["published"] = report["published"].clone();
    entry["reason"] = report["reason"].clone();
    entry["test_log_loss"] = report["test"]["log_loss"].clone();
    entry["samples"] = report["samples"].clone();
    let weights = dir.join("models").join("weights.bin");
    if report["published"] == true {
        let model = crate::model_loader::read_published(&weights)?;
        if model.generation > before {
            feed.hand_over(model);
        }
    }
    Ok(entry)
}

/// Rules for a replayed symbol from the filters exchange-sim derives for it (tick and step
/// from the data's precision), with Binance's published brackets.
pub fn rules_of(info: &aegis_recorded::market::SymbolInfo) -> Option<aegis_trading::SymbolRules> {
    let fixed = |v: i64| v as f64 / 1e8;
    let brackets = aegis_trading::SymbolRules::usdm_default().brackets().to_vec();
    aegis_trading::SymbolRules::new(
        fixed(info.step_size),
        fixed(info.step_size),
        fixed(info.tick_size),
        fixed(info.min_notional),
        brackets,
    )
    .ok()
}

/// What the report is computed from.
struct Book {
    start: f64,
    curve: Vec<(i64, f64)>,
    /// Net PnL and return on equity-at-close of each trade.
    trades: Vec<(f64, f64)>,
    fees: f64,
    exposed_ms: i64,
    open_since: Option<i64>,
    first_ms: Option<i64>,
    last_ms: i64,
}

impl Book {
    fn new(start: f64) -> Self {
        Self {
            start,
            curve: vec![(0, start)],
            trades: Vec::new(),
            fees: 0.0,
            exposed_ms: 0,
            open_since: None,
            first_ms: None,
            last_ms: 0,
        }
    }

    fn note(&mut self, event: &DeskEvent) {
        match event {
            DeskEvent::Closed(t) => {
                let equity = self.curve.last().map_or(self.start, |c| c.1);
                self.trades.push((t.pnl, t.pnl / equity.max(f64::MIN_POSITIVE)));
                self.fees += t.fees;
            }
            DeskEvent::Account(a) => {
                if self.curve.len() == 1 {
                    self.curve[0].0 = a.time_ms;
                }
                self.curve.push((a.time_ms, a.equity));
                self.first_ms.get_or_insert(a.time_ms);
                self.last_ms = self.last_ms.max(a.time_ms);
                let open = a.positions.iter().flatten().any(|p| p.filled);
                match (open, self.open_since) {
                    (true, None) => self.open_since = Some(a.time_ms),
                    (false, Some(since)) => {
                        self.exposed_ms += a.time_ms - since;
                        self.open_since = None;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Trades, win rate, PnL net of fees, max drawdown, per-trade Sharpe, exposure (from
    /// the first fill or close to `end_ms`, the data's last time).
    fn report(&self, equity: f64, end_ms: i64) -> Value {
        let n = self.trades.len();
        let wins = self.trades.iter().filter(|t| t.0 > 0.0).count();
        let pnl: f64 = self.trades.iter().map(|t| t.0).sum();
        let returns: Vec<f64> = self.trades.iter().map(|t| t.1).collect();
        let mean = returns.iter().sum::<f64>() / n.max(1) as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let sharpe = if n >= 2 && var > 0.0 { mean / var.sqrt() * (n as f64).sqrt() } else { 0.0 };
        let (mut peak, mut max_drawdown) = (f64::MIN, 0.0f64);
        for &(_, e) in &self.curve {
            peak = peak.max(e);
            max_drawdown = max_drawdown.max((peak - e) / peak);
        }
        let end = end_ms.max(self.last_ms);
        let span = self.first_ms.map_or(0, |first| end - first);
        let exposed = self.exposed_ms + self.open_since.map_or(0, |since| end - since);
        json!({
            "trades": n,
            "wins": wins,
            "win_rate": if n > 0 { wins as f64 / n as f64 } else { 0.0 },
            "pnl_net": pnl,
            "fees": self.fees,
            "starting_equity": self.start,
            "equity": equity,
            "max_drawdown": max_drawdown,
            "sharpe_per_trade": sharpe,
            "exposure": if span > 0 { exposed as f64 / span as f64 } else { 0.0 },
        })
    }
}

/// The equity curve as an SVG line chart (time on x, equity on y, start and end labelled).
pub fn equity_svg(curve: &[(i64, f64)]) -> String {
    let (w, h, pad) = (800.0, 300.0, 40.0);
    let (t0, t1) = (curve.first().map_or(0, |c| c.0), curve.last().map_or(1, |c| c.0));
    let lo = curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    let hi = curve.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    let (span_t, span_e) = (((t1 - t0) as f64).max(1.0), (hi - lo).max(1e-9));
    let points: Vec<String> = curve
        .iter()
        .map(|&(t, e)| {
            let x = pad + (t - t0) as f64 / span_t * (w - 2.0 * pad);
            let y = h - pad - (e - lo) / span_e * (h - 2.0 * pad);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let end = curve.last().map_or(0.0, |c| c.1);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"20\" font-family=\"sans-serif\" font-size=\"14\">equity: {:.2} → {end:.2} (low {lo:.2}, high {hi:.2})</text>\n\
         <polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/>\n</svg>\n",
        curve.first().map_or(0.0, |c| c.1),
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawdown_exposure_and_sharpe_follow_the_curve() {
        let mut b = Book::new(100.0);
        b.curve = vec![(0, 100.0), (10, 120.0), (20, 90.0), (30, 130.0)];
        b.trades = vec![(10.0, 0.1), (-5.0, -0.05), (20.0, 0.2)];
        b.first_ms = Some(0);
        b.last_ms = 40;
        b.exposed_ms = 10;
        let r = b.report(130.0, 40);
        assert!((r["max_drawdown"].as_f64().unwrap() - 0.25).abs() < 1e-12);
        assert_eq!((r["trades"].as_u64(), r["wins"].as_u64()), (Some(3), Some(2)));
        assert!((r["exposure"].as_f64().unwrap() - 0.25).abs() < 1e-12);
        let mean = 0.25 / 3.0;
        let sd = ((0.1f64 - mean).powi(2) + (-0.05f64 - mean).powi(2) + (0.2f64 - mean).powi(2)) / 2.0;
        assert!((r["sharpe_per_trade"].as_f64().unwrap() - mean / sd.sqrt() * 3f64.sqrt()).abs() < 1e-12);
        assert!(equity_svg(&b.curve).contains("<polyline"));
    }
}
