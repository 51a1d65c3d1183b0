//! `aegisctl`: the operator's command line for a running engine. One request per call over
//! the control socket (versioned, line-delimited JSON); `--json` prints the engine's answer
//! as is, otherwise a terminal-sized summary. A refused request exits 1 with its reason on
//! one line; an unreachable engine exits 2. The binary is [`run`] with the process's
//! arguments and streams; [`top`] is the live dashboard.

use aegis_control::{request_line, Request};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

pub mod top;

#[derive(Parser)]
#[command(name = "aegisctl", version, about = "Operate a running Aegis engine over its control socket")]
struct Cli {
    /// The engine's control socket (default: $AEGIS_CONTROL_SOCKET, else target/aegis-data/aegis.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Print the engine's JSON answer instead of a summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A request to the engine (the control protocol's own commands).
    #[command(flatten)]
    Engine(Request),
    /// A live dashboard: shards, events/s, ring depth, latency, account, positions (q quits).
    Top {
        /// Refresh interval, milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one frame as text and exit (scripts, logs).
        #[arg(long)]
        once: bool,
    },
}

/// Runs one command line (`args` starts with the program name), writing to `out` and
/// `err`; returns the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                let _ = write!(err, "{e}");
                return 64;
            }
            let _ = write!(out, "{e}");
            return 0;
        }
    };
    let socket = cli
        .socket
        .clone()
        .or_else(|| std::env::var_os("AEGIS_CONTROL_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/aegis-data/aegis.sock"));
    let request = match cli.command {
        Command::Top { interval_ms, once } => return top_command(&socket, interval_ms, once, out, err),
        Command::Engine(request) => request,
    };
    let answer = match ask(&socket, &request) {
        Ok(answer) => answer,
        Err(e) => {
            let _ = writeln!(err, "aegisctl: {e:#}");
            return 2;
        }
    };
    let result = match result_of(answer) {
        Ok(result) => result,
        Err(refused) => {
            let _ = writeln!(err, "aegisctl: {refused}");
            return 1;
        }
    };
    let _ = if cli.json { writeln!(out, "{result}") } else { write!(out, "{}", human(&request, &result)) };
    0
}

/// `aegisctl top`: one frame (`--once`) or the live dashboard.
fn top_command(
    socket: &PathBuf,
    interval_ms: u64,
    once: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut ask_one =
        |request: &Request| ask(socket, request).map_err(|e| format!("{e:#}")).and_then(result_of);
    if once {
        return match top::fetch(&mut ask_one, None) {
            Ok(snapshot) => {
                let _ = write!(out, "{}", top::render_text(&snapshot, 110, 32));
                0
            }
            Err(e) => {
                let _ = writeln!(err, "aegisctl: {e}");
                2
            }
        };
    }
    top::live(&mut ask_one, Duration::from_millis(interval_ms.max(100)), err)
}

/// An answer's result, or `refused: <reason>`.
fn result_of(answer: Value) -> Result<Value, String> {
    if answer["ok"] == Value::Bool(true) {
        Ok(answer["result"].clone())
    } else {
        Err(format!("refused: {}", answer["error"].as_str().unwrap_or("no reason given")))
    }
}

/// Sends one request line and reads one answer line.
fn ask(socket: &PathBuf, request: &Request) -> anyhow::Result<Value> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach the engine at {} (is `aegis run` up?)", socket.display()))?;
    // A drain moves symbols one at a time (≈ 0.6 s each): allow for a large shard.
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    writeln!(stream, "{}", request_line(request))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).context("reading the engine's answer")?;
    serde_json::from_str(&line).with_context(|| format!("the engine's answer is not JSON: {line:?}"))
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() != 0.0 => format!("{f:.2}"),
        _ => v.to_string(),
    }
}

/// A terminal-sized rendering of an answer.
fn human(request: &Request, r: &Value) -> String {
    let mut out = String::new();
    match request {
        Request::Status => {
            for key in [
                "uptime_s",
                "transport",
                "threads",
                "shards",
                "symbols",
                "events",
                "ring_drops",
                "bars_closed",
                "trades_closed",
                "open_positions",
                "pnl",
                "equity",
                "phase",
                "paused",
                "alerts",
                "model_generation",
            ] {
                out.push_str(&format!("{key:<18}{}\n", num(&r[key]).trim_matches('"')));
            }
            if let Some(threads) = r["placement"].as_object() {
                let placed: Vec<String> =
                    threads.iter().map(|(t, cpu)| format!("{t} → {}", cpu.as_str().unwrap_or("?"))).collect();
                out.push_str(&format!("{:<18}{}\n", "placement", placed.join(", ")));
            }
        }
        Request::Shards => {
            out.push_str(&format!(
                "{:>5} {:>8} {:>12} {:>10} {:>8} {:>10}\n",
                "shard", "symbols", "messages", "ring", "drops", "reconnects"
            ));
            for s in r["shards"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:>5} {:>8} {:>12} {:>10} {:>8} {:>10}\n",
                    s["shard"],
                    s["symbols"].as_array().map_or(0, Vec::len),
                    s["messages"],
                    s["ring_depth"],
                    s["ring_drops"],
                    s["reconnects"]
                ));
            }
        }
        Request::Symbols => {
            out.push_str(&format!(
                "{:<14} {:>5} {:>10} {:>6} {:>9} {:>6}\n",
                "symbol", "shard", "events", "bars", "id gaps", "dups"
            ));
            for s in r["symbols"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<14} {:>5} {:>10} {:>6} {:>9} {:>6}\n",
                    s["symbol"].as_str().unwrap_or("?"),
                    s["shard"],
                    s["events"],
                    s["bars_closed"],
                    s["trade_id_gaps"],
                    s["duplicates_dropped"]
                ));
            }
        }
        Request::Positions => {
            let list = r["positions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                out.push_str("no open positions\n");
            }
            for p in list {
                out.push_str(&format!(
                    "#{:<5} {:<12} {:<5} qty {:<12} {}x entry {:<12} stop {:<12} target {:<12}{}\n",
                    p["id"],
                    p["symbol"].as_str().unwrap_or("?"),
                    p["side"].as_str().unwrap_or("?"),
                    num(&p["qty"]),
                    num(&p["leverage"]),
                    num(&p["entry_price"]),
                    num(&p["stop"]),
                    num(&p["target"]),
                    if p["filled"] == Value::Bool(true) { "" } else { " (pending)" }
                ));
            }
        }
        Request::Latency => {
            out.push_str(&format!(
                "{:<18} {:>10} {:>12} {:>12} {:>12} {:>12}\n",
                "stage", "events", "p50 ≤ ns", "p90 ≤ ns", "p99 ≤ ns", "p99.9 ≤ ns"
            ));
            for l in r["stages"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<18} {:>10} {:>12} {:>12} {:>12} {:>12}\n",
                    l["stage"].as_str().unwrap_or("?"),
                    l["count"],
                    l["p50_le_ns"],
                    l["p90_le_ns"],
                    l["p99_le_ns"],
                    l["p999_le_ns"]
                ));
            }
        }
        Request::Alerts => {
            out.push_str(&format!("{} alerts\n", r["count"]));
            for a in r["recent"].as_array().into_iter().flatten() {
                out.push_str(&format!("{a}\n"));
            }
        }
        _ => out.push_str(&format!("{r}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_the_thread_plan_and_where_each_pinned_thread_runs() {
        let answer = serde_json::json!({
            "shards": 1,
            "threads": "one-thread (configured)",
            "placement": { "aegis-brain": "2", "aegis-shard-0": "2" },
        });
        let text = human(&Request::Status, &answer);
        let line = text.lines().find(|l| l.starts_with("placement")).expect(&text);
        assert_eq!(line, "placement         aegis-brain → 2, aegis-shard-0 → 2");
        let line = text.lines().find(|l| l.starts_with("threads")).expect(&text);
        assert_eq!(line, "threads           one-thread (configured)");
    }
}
