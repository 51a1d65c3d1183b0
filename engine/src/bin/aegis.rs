//! `aegis`: the engine's command line (thin: parse, load config, call the library).

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use aegis::config::file::{size_or, SimSection};
use aegis::config::{FileConfig, DEFAULT_CONFIG};

#[derive(Parser)]
#[command(name = "aegis", version, about = "Aegis: a low-latency Binance USDⓈ-M trading engine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine (default: against an in-process exchange-sim, fully offline).
    Run(Box<RunArgs>),
    /// Compute the 18 features and raw indicators of every bar of a kline CSV.
    Features(FeaturesArgs),
    /// Print the journals of a data directory (closed trades, signals, account snapshots, alerts, live orders).
    Journal(JournalArgs),
    /// Backtest: recorded data through the same brain and desk, as fast as possible.
    Replay(ReplayArgs),
    /// Write a data directory's trades and experiences as CSV and Parquet.
    Export(ExportArgs),
    /// Check this host for a pinned low-latency run and say what to fix (exit 0 ok, 1 warnings, 2 failures).
    Doctor(DoctorArgs),
}

#[derive(Parser)]
struct DoctorArgs {
    /// Config whose cores, shards and io_memory are checked (default: embedded).
    #[arg(long)]
    config: Option<PathBuf>,
    /// One JSON array of findings instead of lines.
    #[arg(long)]
    json: bool,
    /// Where the transport measurement is recorded (overrides the config's `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Parser)]
struct ExportArgs {
    /// The data directory.
    dir: PathBuf,
    /// Where trades, experiences and samples go (`.csv` and `.parquet` each).
    #[arg(long)]
    out: PathBuf,
    /// Config whose [ml] ring capacities the data directory was created with (default: embedded).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Parser)]
struct ReplayArgs {
    /// Recorded files (any format of shared/data/README.md), merged by time.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the report (JSON) here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Keep the journals and experience log here (an empty or new directory).
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Write the equity curve as SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Config whose [policy], [risk], [broker], [ml] and [features] apply (default: embedded).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A config setting, `section.key=value` (repeatable), checked like the file's own:
    /// an unknown key or a bad value is refused, naming it.
    #[arg(long, value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// Merge several files by the recorder's receive time instead of the exchange's event
    /// time (for captures whose exchange times are unreliable).
    #[arg(long)]
    receipt_order: bool,
    /// A published weights file (`DATA/models/weights.bin`): the student decides from it once
    /// the teacher's trades are done, as live.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Train as the replay goes: the sidecar (`[ml] sidecar`) trains every `[ml] train_every`
    /// closed trades on what the replay has logged, on the CPU, and what it publishes serves
    /// from the next closed bar.
    #[arg(long)]
    learn: bool,
    /// Seeds of the random-entries baseline (one extra pass each; 0: none).
    #[arg(long, default_value_t = 5)]
    random_seeds: u64,
    /// Check only: the config and its overrides, the input files, the weights file and the
    /// sidecar; print what would replay and exit without replaying.
    #[arg(long)]
    check: bool,
}

#[derive(Parser)]
struct JournalArgs {
    /// The data directory (`data_dir` of the config, or `--data-dir` of `aegis run`).
    dir: PathBuf,
    /// One JSON object per line (`{"journal":…,"record":…}`) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Parser)]
struct FeaturesArgs {
    /// Kline CSV: `open_time_ms,open,high,low,close,volume[,...]`, with or without a header
    /// (Binance's 12-column public-data layout also gives trades, taker-buy volume, VWAP).
    klines: PathBuf,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip refused rows (each reported on stderr) instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Config file whose `[features]` section sizes the analytics (default: embedded).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Parser, Default)]
struct RunArgs {
    /// Config file (default: the embedded config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A config setting, `section.key=value` (repeatable), checked like the file's own.
    #[arg(long, value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// WebSocket base URL of the exchange (both tiers), e.g. ws://127.0.0.1:9000.
    #[arg(long)]
    connect: Option<String>,
    /// REST base URL (default: the --connect host over http).
    #[arg(long)]
    rest: Option<String>,
    /// Symbols, comma-separated (default: the config's, or every simulated symbol).
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Stream kinds per symbol, comma-separated.
    #[arg(long, value_delimiter = ',')]
    streams: Vec<String>,
    /// Feed shards.
    #[arg(long)]
    shards: Option<usize>,
    /// Where durable state lives.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop cleanly after this long (30s, 2m).
    #[arg(long = "for", value_parser = exchange_sim::cli::parse_duration)]
    run_for: Option<Duration>,
    /// Write a JSON summary here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Write closed 1m bars as CSV here.
    #[arg(long)]
    bars_out: Option<PathBuf>,
    /// Write every closed bar's features here (CSV, the columns of `aegis features` after `symbol`).
    #[arg(long)]
    features_out: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// Stop once this many trades have closed (counting trades restored from the journal).
    #[arg(long)]
    stop_after_trades: Option<u64>,
    /// A CA certificate (PEM) to trust for wss:// and https:// besides the webpki roots.
    #[arg(long)]
    extra_ca: Option<PathBuf>,
    /// Transport: auto, glommio or mio (overrides the config).
    #[arg(long)]
    transport: Option<String>,
    /// Thread plan: auto, threads or one-thread (overrides `[cpu] placement`).
    #[arg(long)]
    placement: Option<String>,
    /// Control socket path (overrides `[control] socket`).
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Prometheus endpoint, `127.0.0.1:PORT` (overrides `[metrics] addr`; port 0 picks one).
    #[arg(long)]
    metrics_addr: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or_else(|| Command::Run(Box::default())) {
        Command::Run(args) => run(*args),
        Command::Features(args) => features(args),
        Command::Journal(args) => journal(args),
        Command::Replay(args) => replay(args),
        Command::Export(args) => export(args),
        Command::Doctor(args) => doctor(args),
    }
}

fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    // Only the host-facing sections matter here: a config refused elsewhere is still checked.
    let file = load_config(args.config.as_deref(), &[])?;
    let io_memory = size_or(
        "shards.io_memory",
        &file.shards.io_memory,
        aegis::config::RunConfig::default().feed.io_memory,
    )?;
    let plan = aegis::ops::doctor::Plan {
        shards: file.shards.count.max(1),
        shard_cores: file.shards.cores.clone(),
        brain_core: file.brain.core,
        allow_shared_cores: file.allow_shared_cores,
        io_memory,
        idle: aegis::config::file::idle_policy("shards.idle", &file.shards.idle)?,
    };
    let host = aegis::ops::doctor::Host::read(io_memory);
    let mut findings = aegis::ops::doctor::check(&host, &plan);
    let data_dir = args.data_dir.or(file.data_dir.clone());
    findings.push(aegis::ops::doctor::measure_transports(&plan, &host, data_dir.as_deref()));
    if args.json {
        println!("{}", aegis::ops::doctor::to_json(&findings));
    } else {
        print!("{}", aegis::ops::doctor::render(&findings));
    }
    std::process::exit(aegis::ops::doctor::exit_status(&findings));
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let file = load_config(args.config.as_deref(), &[])?;
    let data = aegis::store::ledger::DataConfig {
        trade_experiences: file.ml.trade_experiences.max(1),
        bar_samples: file.ml.bar_samples.max(1),
        ..Default::default()
    };
    let n = aegis::store::export::export(&args.dir, &args.out, &data)?;
    eprintln!(
        "aegis export: {} trades, {} experiences, {} bar samples → {}",
        n.trades,
        n.experiences,
        n.samples,
        args.out.display()
    );
    Ok(())
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let file = load_config(args.config.as_deref(), &args.set)?;
    let config = aegis::replay::ReplayConfig {
        files: args.files.clone(),
        trading: file.trading()?,
        features: file.features.config()?,
        journal: args.journal.clone(),
        progress: !args.quiet,
        order: if args.receipt_order {
            aegis_recorded::replay::Order::Receipt
        } else {
            aegis_recorded::replay::Order::EventTime
        },
        model: args.model.clone(),
        learn: args.learn.then(|| aegis::replay::Learn {
            sidecar: aegis::config::build::sidecar_binary(&file.ml.sidecar),
            every: file.ml.train_every.max(1),
        }),
        random_seeds: args.random_seeds,
    };
    if args.check {
        println!("{}", serde_json::to_string_pretty(&aegis::replay::check(&config)?)?);
        return Ok(());
    }
    let report = aegis::replay::replay(&config)?;
    let text = serde_json::to_string_pretty(&report.summary)?;
    match &args.summary {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, aegis::replay::plot::equity_svg(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn journal(args: JournalArgs) -> anyhow::Result<()> {
    use std::io::Write;
    // A live engine's last record may be mid-write: read, never repaired, and not torn.
    let writer = aegis_journal::DataDirLock::holder(&args.dir)
        .with_context(|| format!("checking the data dir lock under {}", args.dir.display()))?;
    let records = aegis::store::ledger::read_journals(&args.dir)
        .with_context(|| format!("reading the journals under {}", args.dir.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut torn = 0;
    let mut write = |line: String| -> std::io::Result<()> { writeln!(out, "{line}") };
    for (journal, record) in &records {
        let written = match record {
            Ok(value) if args.json => {
                write(serde_json::json!({ "journal": journal, "record": value }).to_string())
            }
            Ok(value) => write(format!("{journal:<9} {}", human(journal, value))),
            Err(aegis::store::ledger::RecordError::TornTail { at, .. }) if writer.is_some() => {
                let pid = writer.flatten().map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
                eprintln!("aegis journal: {journal}: the record at byte {at} is being written by the running engine ({pid}); not read");
                Ok(())
            }
            Err(what) => {
                torn += 1;
                eprintln!("aegis journal: {journal}: {what}");
                Ok(())
            }
        };
        match written {
            // A reader that stopped early (`| head`) is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if torn > 0 {
        bail!("{torn} journal(s) end in a torn or unreadable record (the engine truncates it at its next start)");
    }
    Ok(())
}

/// One journal record as a line a person reads.
fn human(journal: &str, v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).map(|x| x.to_string().trim_matches('"').to_string()).unwrap_or_default();
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    match journal {
        "trades" => format!(
            "#{} {} {} qty {} {}x  {} → {}  {}  pnl {:.4}  roi {:.2}%  reward {}",
            s("id"),
            s("symbol"),
            s("side"),
            s("qty"),
            s("leverage"),
            s("entry_price"),
            s("exit_price"),
            s("reason"),
            f("pnl"),
            f("roi_pct"),
            s("reward")
        ),
        "signals" => format!(
            "{} {} {} {} at {}  {}",
            s("bar_time_ms"),
            s("symbol"),
            s("side"),
            s("rule"),
            s("price"),
            s("outcome")
        ),
        "alerts" => format!("{} {} {}", s("time_ms"), s("level"), s("what")),
        "orders" => {
            let mut rest = v.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("time_ms");
                o.remove("event");
            }
            format!("{} {} {rest}", s("time_ms"), s("event"))
        }
        _ => format!(
            "{}  wallet {:.4}  equity {:.4}  closed {}  open {}",
            s("time_ms"),
            f("wallet"),
            f("equity"),
            s("closed_trades"),
            v.get("positions").and_then(serde_json::Value::as_array).map_or(0, Vec::len)
        ),
    }
}

fn features(args: FeaturesArgs) -> anyhow::Result<()> {
    use aegis_analytics::report::write_features;
    use std::io::Write;
    let config = load_config(args.config.as_deref(), &[])?.features.config()?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let summary = write_features(&args.klines, &mut out, config, args.skip_bad)?;
    for refused in &summary.skipped {
        eprintln!("skipped {refused}");
    }
    eprintln!(
        "{} bars, {} warm (warm-up {} bars), {} refused",
        summary.rows,
        summary.warm_rows,
        config.warmup_bars(),
        summary.skipped.len()
    );
    Ok(())
}

fn load_config(path: Option<&std::path::Path>, sets: &[String]) -> anyhow::Result<FileConfig> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let name = path.map_or("the embedded config".to_string(), |p| p.display().to_string());
    Ok(aegis::config::parse_with_overrides(&text, &name, sets)?)
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut file = load_config(args.config.as_deref(), &args.set)?;
    // `--data-dir` stands for the file's `data_dir`: the builder derives what follows from it
    // (the default control socket).
    if let Some(dir) = &args.data_dir {
        file.data_dir = Some(dir.clone());
    }
    let mut config = aegis::config::build(&file)?;
    // One engine per data dir: taken first, before the simulator, any REST call, journal
    // recovery, the sidecar or a socket; held until this process ends.
    let _data_lock = config.data.dir.as_deref().map(aegis_journal::DataDirLock::acquire).transpose()?;
    // Paper trading needs no keys; when some are configured they are checked now (a file
    // others can read is refused) and only their masked form is ever shown.
    let api_key =
        aegis::credentials::load(&aegis::credentials::KeySource::from_setting(&file.exchange.keys))?;
    if let Some(key) = &api_key {
        eprintln!("aegis: API key {} from {}", key.masked(), key.origin);
    }
    let live_key = match (&api_key, file.live()) {
        (Some(key), true) => Some(key.clone()),
        (None, true) => bail!("broker.mode = \"live\" needs API keys: set exchange.keys"),
        _ => None,
    };
    let embedded = args.connect.is_none() && file.exchange.mode != "remote";
    let embedded_sim = if embedded {
        // Live against the embedded simulator: it accepts the configured key.
        let sim = start_embedded_sim(&file.sim, live_key.as_ref())?;
        let port = sim.port;
        let base = format!("ws://127.0.0.1:{port}");
        config.exchange.public_ws = format!("{base}/public");
        config.exchange.market_ws = format!("{base}/market");
        config.exchange.rest = format!("http://127.0.0.1:{port}");
        Some(sim)
    } else {
        if let Some(url) = &args.connect {
            config.exchange.public_ws = url.clone();
            config.exchange.market_ws = url.clone();
            config.exchange.rest = url.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
        }
        None
    };
    apply_overrides(&mut config, &args)?;
    // Configured cores are checked by CPU id (online, in this process's cgroup; an isolated
    // CPU counts) before any connection, under `[cpu] pinning`.
    aegis::run::plan::check_placement(&mut config)?;
    if config.feed.symbols.is_empty() {
        config.feed.symbols = exchange_symbols(&config.exchange.rest, config.exchange.extra_ca.as_deref())?;
    }
    if config.feed.streams.is_empty() {
        bail!("no stream kinds: set [streams].kinds or --streams");
    }
    if let Some(key) = live_key {
        config = aegis::config::build::with_live_key(config, &file, key)?;
    }
    if let Some(live) = &config.live {
        eprintln!(
            "aegis: LIVE trading: orders go to {} (user stream {})",
            config.exchange.rest, live.user_ws
        );
    }
    eprintln!(
        "aegis: {} symbols, streams {:?}, {} shard(s), exchange {} (REST {})",
        config.feed.symbols.len(),
        config.feed.streams,
        config.feed.shards,
        config.exchange.public_ws,
        config.exchange.rest
    );
    // SIGINT/SIGTERM stop the run cleanly: shards first, then the brain drains, then the
    // summary is written.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let mut report = aegis::run::run(config, stop)?;
    report.summary["api_key"] = api_key.as_ref().map(|k| k.masked()).into();
    let text = serde_json::to_string_pretty(&report.summary)?;
    match &args.summary {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => eprintln!("{text}"),
    }
    // The market stops after the engine, never under it.
    drop(embedded_sim);
    Ok(())
}

/// The command line's settings over the config file's.
fn apply_overrides(config: &mut aegis::config::RunConfig, args: &RunArgs) -> anyhow::Result<()> {
    if let Some(rest) = &args.rest {
        config.exchange.rest = rest.clone();
    }
    if !args.symbols.is_empty() {
        config.feed.symbols = args.symbols.clone();
    }
    if !args.streams.is_empty() {
        config.feed.streams = args.streams.clone();
    }
    if let Some(shards) = args.shards {
        config.feed.shards = shards;
    }
    if let Some(transport) = &args.transport {
        config.feed.transport = aegis::config::build::transport("shards.transport", transport)?;
    }
    if let Some(plan) = &args.placement {
        config.placement = aegis::config::build::placement("cpu.placement", plan)?;
    }
    if let Some(ca) = &args.extra_ca {
        config.exchange.extra_ca = Some(ca.clone());
    }
    if let Some(socket) = &args.control_socket {
        config.ops.control_socket = Some(socket.clone());
    }
    if let Some(addr) = &args.metrics_addr {
        config.ops.metrics_addr = Some(addr.clone());
    }
    config.ops.progress = !args.quiet;
    config.ops.bars_out = args.bars_out.clone();
    config.ops.features_out = args.features_out.clone();
    config.end.run_for = args.run_for;
    config.end.stop_after_trades = args.stop_after_trades;
    Ok(())
}

/// Starts exchange-sim's synthetic market on a background runtime (accepting `key` on its
/// signed endpoints); it runs until the handle is dropped.
fn start_embedded_sim(
    sim: &SimSection,
    key: Option<&aegis::credentials::ApiKey>,
) -> anyhow::Result<exchange_sim::Embedded> {
    let speed = if sim.speed.is_empty() { "60" } else { sim.speed.as_str() };
    let symbols = if sim.symbols == 0 { 20 } else { sim.symbols };
    let history = if sim.history_bars == 0 { 1000 } else { sim.history_bars };
    let mut args = exchange_sim::cli::Args::synthetic(symbols as usize, sim.seed, history);
    args.speed = exchange_sim::cli::parse_speed(speed).map_err(anyhow::Error::msg)?;
    if let Some(key) = key {
        match (key.hmac_secret(), key.ed25519_public()) {
            (Some(secret), _) => args.api_keys.push((key.key().to_string(), secret.expose().to_string())),
            (None, Some(public)) => args.ed25519_public_keys.push((key.key().to_string(), public)),
            (None, None) => {}
        }
    }
    exchange_sim::spawn(args)
}

/// Every symbol the exchange serves (for a run with no symbol list).
fn exchange_symbols(rest: &str, extra_ca: Option<&std::path::Path>) -> anyhow::Result<Vec<String>> {
    let mut client = aegis::rest::client::RestClient::for_url(rest, extra_ca, Default::default())?;
    Ok(client.exchange_info()?.into_iter().map(|s| s.name).collect())
}
