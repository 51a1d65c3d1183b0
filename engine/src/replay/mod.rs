//! Replay as backtest (issue 5): recorded data in any format exchange-sim reads goes
//! through the same parser, ring, brain and desk as a live run — on one thread, as fast as
//! it can, with no sockets and no clock — so the same input gives byte-identical journals
//! and report. No REST: warm-up comes from the data itself (241 bars), books are not kept,
//! and a gap is counted, not filled.
//!
//! - [`book`]: equity curve, closed trades and per-phase figures.
//! - [`baseline`]: buy-and-hold and random entries over the same bars.
//! - [`learn`]: training inside the replay (`--learn`); [`error`]: why a replay cannot run.
//! - [`plot`]: the report as an SVG a trader reads at a glance.

pub mod baseline;
pub mod book;
pub mod error;
pub mod learn;
pub mod plot;

use crate::brain::stats::BrainStats;
use crate::brain::{Brain, BrainConfig};
use crate::desk::events::DeskEvent;
use crate::desk::stats::DeskStats;
use crate::desk::{Desk, Entries, TradingConfig};
use crate::feed::binance::parse_message;
use crate::ring::ring;
use crate::ring::Idle;
use crate::store::ledger::{DataConfig, Ledger};
use aegis_recorded::market::Source;
use aegis_wire::stream::classify_channel;
use aegis_wire::{EventKind, SymbolTable};
use book::{Book, Mark, Phases};
pub use error::ReplayError;
pub use learn::Learn;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Seeds of the random-entries baseline (1, 2, … this many; 0: none).
    pub random_seeds: u64,
}

/// The outcome: the report (deterministic), the equity curve, the trades and the
/// baselines' curves.
pub struct ReplayReport {
    /// Trades, win rate, PnL, drawdown, Sharpe, exposure, phases, baselines, counts.
    pub summary: Value,
    /// (exchange time ms, equity) after every fill or close, starting equity first.
    pub equity_curve: Vec<(i64, f64)>,
    /// Every closed trade.
    pub trades: Vec<Mark>,
    /// Each baseline's equity curve, named (buy-and-hold, the teacher alone, random seeds).
    pub baselines: Vec<(String, Vec<(i64, f64)>)>,
}

/// One pass over the input and what the baselines need from it.
struct Pass {
    report: ReplayReport,
    /// Entries the desk made, and its chances to enter.
    entries: u64,
    chances: u64,
}

/// The input, read once: every pass replays a clone of it.
struct Input {
    source: aegis_recorded::replay::Replay,
    infos: Vec<aegis_recorded::market::SymbolInfo>,
    table: Arc<SymbolTable>,
}

impl Input {
    /// Reads every file (a bad line is named with its file and line) and its symbols.
    fn load(config: &ReplayConfig) -> Result<Self, ReplayError> {
        let source = aegis_recorded::replay::Replay::load_ordered(&config.files, config.order)?;
        let infos = source.symbols();
        if infos.is_empty() {
            return Err(ReplayError::Empty("no symbol in the input".into()));
        }
        let mut table = SymbolTable::with_capacity(infos.len());
        for info in &infos {
            table
                .intern(&info.symbol)
                .map_err(|e| ReplayError::Empty(format!("symbol {}: {e}", info.symbol)))?;
        }
        Ok(Self { source, infos, table: Arc::new(table) })
    }
}

/// The weights file `--model` names (read and validated as the live loader does), after
/// checking that `--learn` has its sidecar.
fn preflight(config: &ReplayConfig) -> Result<Option<Box<aegis_wire::weights::ModelParams>>, ReplayError> {
    if let Some(learn) = config.learn.as_ref().filter(|l| !l.sidecar.is_file()) {
        return Err(ReplayError::Learn(format!("aegis-sidecar not found at {}", learn.sidecar.display())));
    }
    Ok(config.model.as_deref().map(crate::model_loader::read_published).transpose()?)
}

/// Runs the replay: the decisions as configured, then the baselines over the same bars —
/// the teacher alone when a model serves, and random entries with one pass per seed.
pub fn replay(config: &ReplayConfig) -> Result<ReplayReport, ReplayError> {
    // A weights file that cannot serve, or a missing sidecar, stops the replay before it starts.
    let model = preflight(config)?;
    let input = Input::load(config)?;
    let main = pass(config, &input, model, Entries::Policy)?;
    let mut report = main.report;
    let (hold, hold_curve) = baseline::buy_and_hold(
        &input.source,
        &input.infos.iter().map(|i| i.symbol.clone()).collect::<Vec<_>>(),
        config.trading.broker.starting_equity,
        config.trading.broker.taker_fee,
        config.features.realized_vol_long + 1,
    );
    let mut curves = Vec::new();
    if hold["available"] == true {
        curves.push(("buy-and-hold".to_string(), hold_curve));
    }
    let mut baselines = json!({ "buy_and_hold": hold });
    let baseline_config =
        ReplayConfig { model: None, learn: None, journal: None, progress: false, ..config.clone() };
    let (mut entries, mut chances) = (main.entries, main.chances);
    if config.model.is_some() || config.learn.is_some() {
        // The same bars, the teacher alone: what the student must beat.
        let alone = pass(&baseline_config, &input, None, Entries::Policy)?;
        let keep = ["trades", "win_rate", "pnl_net", "fees", "max_drawdown", "sharpe_per_trade", "exposure"];
        baselines["teacher_alone"] =
            keep.iter().map(|k| (k.to_string(), alone.report.summary[*k].clone())).collect();
        curves.push(("teacher alone".to_string(), alone.report.equity_curve));
        (entries, chances) = (alone.entries, alone.chances);
    }
    let probability = baseline::entry_rate(entries, chances);
    let mut runs = Vec::new();
    for seed in 1..=config.random_seeds {
        let coin = Entries::Random { rng: aegis_trading::rng::Rng::new(seed), probability };
        let random = pass(&baseline_config, &input, None, coin)?;
        curves.push((format!("random entries, seed {seed}"), random.report.equity_curve));
        runs.push((seed, random.report.summary));
    }
    baselines["random_entries"] = baseline::random_entries(probability, entries, chances, &runs);
    report.summary["baselines"] = baselines;
    report.baselines = curves;
    Ok(report)
}

/// Checks what a replay would need without replaying: the weights file, the sidecar, every
/// input file (read and parsed, a bad line named with its file and line) and its symbols.
pub fn check(config: &ReplayConfig) -> Result<Value, ReplayError> {
    preflight(config)?;
    let input = Input::load(config)?;
    Ok(json!({
        "check": "ok",
        "files": config.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "messages": input.source.remaining(),
        "symbols": input.infos.iter().map(|i| i.symbol.as_str()).collect::<Vec<_>>(),
        "learn": config.learn.is_some(),
        "model": config.model.as_ref().map(|p| p.display().to_string()),
    }))
}

/// One pass: every message of a clone of `input` through the parser, the ring, the brain
/// and the desk, with `entries` proposing the desk's entries; `model`, the published weights
/// the student starts from.
fn pass(
    config: &ReplayConfig,
    input: &Input,
    model: Option<Box<aegis_wire::weights::ModelParams>>,
    entries: Entries,
) -> Result<Pass, ReplayError> {
    let mut student = (model.is_some() || config.learn.is_some()).then(crate::model_loader::fed_link);
    if let (Some(model), Some((feed, _))) = (model, student.as_mut()) {
        feed.hand_over(model);
    }
    let mut source = input.source.clone();
    let total = source.remaining();
    let (infos, table) = (&input.infos, &input.table);
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
    let ledger = Ledger::open(&data, dir, table.clone())?.ledger;
    let (mut producer, consumer) = ring(1 << 16, 0, table.len());
    let (desk_tx, mut desk_rx) = rtrb::RingBuffer::<DeskEvent>::new(1 << 16);
    let desk_stats = Arc::new(DeskStats::default());
    let rules = infos.iter().map(rules_of).collect();
    let desk = Desk::new(config.trading, rules, Some(desk_tx), desk_stats.clone()).with_entries(entries);
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
    let mut tally =
        Tally { book: Book::new(start_equity), phases: Phases::default(), marks: Vec::new(), ledger };
    tally.phases.enter(None, start_equity, 0);
    let (mut messages, mut parse_errors) = (0u64, 0u64);
    let started = std::time::Instant::now();
    let mut next_progress = started + std::time::Duration::from_secs(1);
    let mut end_ms = 0i64;
    while let Some(batch) = source.next_batch() {
        end_ms = end_ms.max((batch.time_ns / 1_000_000) as i64);
        for msg in &batch.msgs {
            messages += 1;
            let parsed = parse_message(msg.envelope.as_bytes(), None, table, 0, &mut |r| {
                producer.push(r);
            });
            parse_errors += u64::from(parsed.is_err());
        }
        // One batch (messages sharing a timestamp) is far below the ring's 65,536 slots, so
        // draining after each batch never drops (the report's ring_drops says so).
        brain.poll_once();
        tally.drain(&mut desk_rx);
        tally.phases.enter(
            serving_generation(&desk_stats, model_stats.as_deref()),
            desk_stats.equity(),
            end_ms,
        );
        let closed = load(&desk_stats.trades_closed);
        if let (Some(learn), Some(feed), true) = (&config.learn, feed.as_mut(), closed >= next_training) {
            tally.ledger.sync();
            trainings.push(learn::train(learn, dir, closed, end_ms, feed)?);
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
    tally.drain(&mut desk_rx);
    tally.ledger.sync();
    if config.progress {
        eprintln!("replay: {messages} messages in {:.2} s", started.elapsed().as_secs_f64());
    }
    let bars_per_symbol: Vec<u64> = brain_stats.symbols.iter().map(|s| load(&s.bars_closed)).collect();
    let bars: u64 = bars_per_symbol.iter().sum();
    let mut summary = tally.book.report(desk_stats.equity(), end_ms);
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
    summary["length"] = length(
        bars_per_symbol.iter().copied().max().unwrap_or(0),
        config.features.realized_vol_long as u64 + 1,
        load(&desk_stats.trades_closed),
        config.trading.policy.teacher_trades,
        config.learn.as_ref().map(|l| l.every),
    );
    summary["phases"] = tally.phases.report(desk_stats.equity(), end_ms);
    summary["fills"] = json!(fill_realism(
        has(EventKind::AggTrade) || has(EventKind::Trade),
        has(EventKind::MarkPriceUpdate)
    ));
    let entries = load(&desk_stats.signals) - load(&desk_stats.signals_not_taken);
    let report =
        ReplayReport { summary, equity_curve: tally.book.curve, trades: tally.marks, baselines: Vec::new() };
    Ok(Pass { report, entries, chances: load(&desk_stats.flat_bars) })
}

/// Where the desk's events go in a replay: the books, the phases, the marks and the journals.
struct Tally {
    book: Book,
    phases: Phases,
    marks: Vec<Mark>,
    ledger: Ledger,
}

impl Tally {
    /// Takes every event the desk has emitted.
    fn drain(&mut self, desk: &mut rtrb::Consumer<DeskEvent>) {
        while let Ok(event) = desk.pop() {
            self.book.note(&event);
            self.phases.note(&event);
            if let DeskEvent::Closed(trade) = &event {
                self.marks.push(Mark::of(trade));
            }
            self.ledger.write(&event);
        }
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
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

/// Whether the input was long enough to learn from, in words: bars per symbol against the
/// warm-up, closed trades against the teacher's quota (the first training) and `every`.
fn length(bars: u64, warm_up: u64, trades: u64, teacher_trades: u64, every: Option<u64>) -> Value {
    let first_training = teacher_trades.max(every.unwrap_or(teacher_trades));
    let verdict = if bars <= warm_up {
        format!("too short to trade or train: {bars} bars per symbol at most, and the features warm up over {warm_up}")
    } else if trades < first_training {
        format!(
            "too short to train: {bars} bars per symbol ({warm_up} of them warm-up) closed {trades} trades; \
             the first training needs {first_training} (policy.teacher_trades = {teacher_trades}{})",
            every.map_or(String::new(), |e| format!(", ml.train_every = {e}"))
        )
    } else {
        format!("long enough to train: {trades} closed trades over {bars} bars per symbol")
    };
    json!({
        "bars_per_symbol": bars,
        "warm_up_bars": warm_up,
        "trades_closed": trades,
        "first_training_after": first_training,
        "trainable": bars > warm_up && trades >= first_training,
        "verdict": verdict,
    })
}

/// The model generation the student trades on, or `None` while the teacher decides.
fn serving_generation(desk: &DeskStats, model: Option<&crate::model_loader::ModelStats>) -> Option<u64> {
    let student = load(&desk.phase) == 1;
    model.map(|m| load(&m.serving)).filter(|_| student)
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
