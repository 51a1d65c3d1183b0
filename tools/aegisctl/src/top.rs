//! `aegisctl top`: a live terminal dashboard of a running engine — shards (symbols,
//! events/s, ring depth, drops, restarts), per-stage latency, the account and the model,
//! positions — refreshed from the control socket. `--once` prints one frame as text.

use aegis_control::Request;
use ratatui::backend::{Backend, CrosstermBackend, TestBackend};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::{Frame, Terminal};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// One refresh: the engine's answers, and events/s per shard since the previous one.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `status`.
    pub status: Value,
    /// `shards`.
    pub shards: Value,
    /// `latency`.
    pub latency: Value,
    /// `positions`.
    pub positions: Value,
    /// Messages per second per shard (empty on the first refresh).
    pub rates: Vec<f64>,
}

/// Asks the engine for everything the dashboard shows.
pub fn fetch(
    ask: &mut dyn FnMut(&Request) -> Result<Value, String>,
    previous: Option<(&Snapshot, Instant)>,
) -> Result<Snapshot, String> {
    let mut snap = Snapshot {
        status: ask(&Request::Status)?,
        shards: ask(&Request::Shards)?,
        latency: ask(&Request::Latency)?,
        positions: ask(&Request::Positions)?,
        rates: Vec::new(),
    };
    if let Some((before, at)) = previous {
        let dt = at.elapsed().as_secs_f64().max(1e-3);
        let messages = |s: &Value| -> Vec<u64> {
            s["shards"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x["messages"].as_u64().unwrap_or(0))
                .collect()
        };
        snap.rates = messages(&snap.shards)
            .iter()
            .zip(messages(&before.shards))
            .map(|(now, then)| now.saturating_sub(then) as f64 / dt)
            .collect();
    }
    Ok(snap)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn bound(v: &Value) -> String {
    match v.as_u64() {
        None => "—".into(),
        Some(u64::MAX) => "> 1 s".into(),
        Some(ns) if ns >= 1_000_000 => format!("≤ {:.1} ms", ns as f64 / 1e6),
        Some(ns) if ns >= 1_000 => format!("≤ {:.1} µs", ns as f64 / 1e3),
        Some(ns) => format!("≤ {ns} ns"),
    }
}

/// Draws one frame.
pub fn draw(frame: &mut Frame, snap: &Snapshot) {
    let s = &snap.status;
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(4), Constraint::Min(4), Constraint::Length(7), Constraint::Min(3)])
        .split(frame.area());
    let header = format!(
        "equity {}  pnl {}  trades {}  open {}  phase {}  model gen {}  paused {}\nevents {}  bars {}  ring drops {}  restarts {}  watchdog alerts {}  transport {}  up {}s",
        text(&s["equity"]),
        text(&s["pnl"]),
        text(&s["trades_closed"]),
        text(&s["open_positions"]),
        text(&s["phase"]),
        text(&s["model_generation"]),
        text(&s["paused"]),
        text(&s["events"]),
        text(&s["bars_closed"]),
        text(&s["ring_drops"]),
        text(&s["shard_restarts"]),
        text(&s["watchdog_alerts"]),
        text(&s["transport"]),
        s["uptime_s"].as_f64().unwrap_or(0.0) as u64,
    );
    frame.render_widget(
        Paragraph::new(header).block(Block::default().borders(Borders::ALL).title(" aegis ")),
        rows[0],
    );
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let shard_rows: Vec<Row> = snap.shards["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, sh)| {
            Row::new(vec![
                text(&sh["shard"]),
                sh["symbols"].as_array().map_or(0, Vec::len).to_string(),
                snap.rates.get(i).map_or("—".into(), |r| format!("{r:.0}")),
                text(&sh["ring_depth"]),
                text(&sh["ring_drops"]),
                text(&sh["reconnects"]),
                text(&sh["restarts"]),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(9),
    ];
    let shards = Table::new(shard_rows, widths)
        .header(
            Row::new(vec!["shard", "symbols", "events/s", "ring", "drops", "reconnects", "restarts"])
                .style(bold),
        )
        .block(Block::default().borders(Borders::ALL).title(" shards "));
    frame.render_widget(shards, rows[1]);
    let latency_rows: Vec<Row> = snap.latency["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            Row::new(vec![
                text(&l["stage"]),
                bound(&l["p50_le_ns"]),
                bound(&l["p99_le_ns"]),
                bound(&l["p999_le_ns"]),
            ])
        })
        .collect();
    let widths =
        [Constraint::Length(18), Constraint::Length(12), Constraint::Length(12), Constraint::Length(12)];
    let latency = Table::new(latency_rows, widths)
        .header(Row::new(vec!["stage", "p50", "p99", "p99.9"]).style(bold))
        .block(Block::default().borders(Borders::ALL).title(" latency "));
    frame.render_widget(latency, rows[2]);
    let position_rows: Vec<Row> = snap.positions["positions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            Row::new(vec![
                text(&p["symbol"]),
                text(&p["side"]),
                text(&p["qty"]),
                text(&p["entry_price"]),
                text(&p["stop"]),
                text(&p["target"]),
                if p["filled"] == Value::Bool(true) { "open".into() } else { "pending".into() },
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(8),
    ];
    let positions = Table::new(position_rows, widths)
        .header(Row::new(vec!["symbol", "side", "qty", "entry", "stop", "target", ""]).style(bold))
        .block(Block::default().borders(Borders::ALL).title(" positions "));
    frame.render_widget(positions, rows[3]);
}

/// One frame as plain text lines (`--once`, tests).
pub fn render_text(snap: &Snapshot, width: u16, height: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => return format!("cannot render: {e}"),
    };
    if let Err(e) = terminal.draw(|f| draw(f, snap)) {
        return format!("cannot render: {e}");
    }
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The live dashboard until `q`, Esc or Ctrl-C.
pub fn live(
    ask: &mut dyn FnMut(&Request) -> Result<Value, String>,
    interval: Duration,
    err: &mut dyn Write,
) -> i32 {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    use ratatui::crossterm::terminal::{
        disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
    };
    use ratatui::crossterm::ExecutableCommand;
    if enable_raw_mode().is_err() {
        let _ = writeln!(err, "aegisctl: top needs a terminal (try --once)");
        return 2;
    }
    let _ = std::io::stdout().execute(EnterAlternateScreen);
    let mut terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(t) => t,
        Err(e) => {
            let _ = disable_raw_mode();
            let _ = writeln!(err, "aegisctl: {e}");
            return 2;
        }
    };
    let mut previous: Option<(Snapshot, Instant)> = None;
    let code = loop {
        let at = Instant::now();
        let snap = match fetch(ask, previous.as_ref().map(|(s, t)| (s, *t))) {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let _ = terminal.draw(|f| draw(f, &snap));
        previous = Some((snap, at));
        let deadline = at + interval;
        let mut quit = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if !event::poll(left).unwrap_or(false) {
                break;
            }
            if let Ok(Event::Key(key)) = event::read() {
                let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if key.code == KeyCode::Char('q') || key.code == KeyCode::Esc || ctrl_c {
                    quit = true;
                    break;
                }
            }
        }
        if quit {
            break Ok(());
        }
    };
    let _ = Backend::flush(terminal.backend_mut());
    let _ = disable_raw_mode();
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
    match code {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "aegisctl: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_frame_shows_shards_rates_latency_and_positions() {
        let before = Snapshot {
            shards: json!({ "shards": [{ "shard": 0, "messages": 1000 }] }),
            ..Default::default()
        };
        let mut answers = vec![
            ("status", json!({ "equity": 10012.5, "phase": "teacher", "model_generation": 0, "trades_closed": 7, "transport": "mio (configured)", "uptime_s": 12.0 })),
            ("shards", json!({ "shards": [{ "shard": 0, "symbols": ["BTCUSDT", "ETHUSDT"], "messages": 3000, "ring_depth": 3, "ring_drops": 0, "reconnects": 0, "restarts": 1 }] })),
            ("latency", json!({ "stages": [{ "stage": "wire_to_decision", "p50_le_ns": 8192, "p99_le_ns": 131072, "p999_le_ns": u64::MAX }] })),
            ("positions", json!({ "positions": [{ "symbol": "BTCUSDT", "side": "LONG", "qty": 0.01, "entry_price": 60000.0, "stop": 58800.0, "target": 63000.0, "filled": true }] })),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>();
        let mut ask = |request: &Request| {
            let what = match request {
                Request::Status => "status",
                Request::Shards => "shards",
                Request::Latency => "latency",
                Request::Positions => "positions",
                other => panic!("the dashboard does not ask for {other:?}"),
            };
            answers.remove(what).ok_or(format!("asked twice for {what}"))
        };
        let snap = fetch(&mut ask, Some((&before, Instant::now() - Duration::from_secs(2)))).unwrap();
        assert!((snap.rates[0] - 1000.0).abs() < 50.0, "{:?}", snap.rates);
        let frame = render_text(&snap, 100, 30);
        for needle in [
            "equity 10012.50",
            "phase teacher",
            "model gen 0",
            "shards",
            "wire_to_decision",
            "≤ 8.2 µs",
            "≤ 131.1 µs",
            "> 1 s",
            "BTCUSDT",
            "LONG",
            "open",
        ] {
            assert!(frame.contains(needle), "{needle} missing:\n{frame}");
        }
        let rate = format!("{:.0}", snap.rates[0]);
        assert!(
            frame.lines().any(|l| l.contains(&rate) && l.contains('2')),
            "the shard row with its rate {rate}:\n{frame}"
        );
    }
}
