//! What a replay's report is computed from: the account's equity curve and closed trades
//! ([`Book`]), cut into phases — the teacher, then each model generation the student served
//! ([`Phases`]) — and the trades as marks for the plot ([`Mark`]).

use crate::desk::events::DeskEvent;
use serde_json::{json, Value};

/// One closed trade, for the plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    /// When the position filled (exchange time, ms).
    pub entry_ms: i64,
    /// When it closed.
    pub exit_ms: i64,
    /// Net PnL.
    pub pnl: f64,
    /// A long (else a short).
    pub long: bool,
}

impl Mark {
    /// The mark of a closed trade.
    pub fn of(trade: &aegis_trading::ClosedTrade) -> Self {
        Self {
            entry_ms: trade.entry_time_ms,
            exit_ms: trade.exit_time_ms,
            pnl: trade.pnl,
            long: trade.side == aegis_trading::Side::Long,
        }
    }
}

/// What a report is computed from: the equity curve and each closed trade.
pub(crate) struct Book {
    pub(crate) start: f64,
    pub(crate) curve: Vec<(i64, f64)>,
    /// Net PnL and return on equity-at-close of each trade.
    trades: Vec<(f64, f64)>,
    fees: f64,
    exposed_ms: i64,
    open_since: Option<i64>,
    pub(crate) first_ms: Option<i64>,
    last_ms: i64,
}

impl Book {
    pub(crate) fn new(start: f64) -> Self {
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

    pub(crate) fn note(&mut self, event: &DeskEvent) {
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
    pub(crate) fn report(&self, equity: f64, end_ms: i64) -> Value {
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

/// The run cut into phases (the teacher, then each model generation the student served),
/// each with its own book: trades closed while it held.
#[derive(Default)]
pub(crate) struct Phases {
    list: Vec<(Option<u64>, i64, Book)>,
}

impl Phases {
    /// Starts a new phase, from `equity` at `at_ms`, when `generation` is not the current one.
    pub(crate) fn enter(&mut self, generation: Option<u64>, equity: f64, at_ms: i64) {
        if self.list.last().is_none_or(|(current, _, _)| *current != generation) {
            self.list.push((generation, at_ms, Book::new(equity)));
        }
    }

    pub(crate) fn note(&mut self, event: &DeskEvent) {
        if let Some((_, _, book)) = self.list.last_mut() {
            book.note(event);
        }
    }

    /// Per phase: when it began and its trades, win rate, PnL net of fees, drawdown and
    /// Sharpe; each ends with the next one's starting equity.
    pub(crate) fn report(&self, equity: f64, end_ms: i64) -> Value {
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
    }
}
