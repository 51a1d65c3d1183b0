//! `exchange-sim` binary: parse arguments, run the simulator.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = exchange_sim::cli::Args::parse();
    if let Some(path) = &args.dump {
        let config = exchange_sim::synthetic::SyntheticConfig {
            symbols: args.symbols as usize,
            seed: args.seed,
            start_ms: args.start_time.unwrap_or(exchange_sim::synthetic::SyntheticConfig::default().start_ms),
            history_bars: args.history_bars,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        let lines = exchange_sim::synthetic::Synthetic::new(&config).dump(
            args.dump_minutes,
            &args.dump_streams,
            &mut out,
        )?;
        std::io::Write::flush(&mut out)?;
        eprintln!("exchange-sim: {lines} messages written to {}", path.display());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(exchange_sim::run(args))
}
