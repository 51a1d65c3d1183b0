//! What a replay's decisions are judged against, over the same bars: buy-and-hold, and
//! random entries with the same exits, sizing and fees (several seeds, with their spread).
//! The teacher alone is a second pass of the replay itself.

use aegis_recorded::market::Source;
use serde_json::{json, Value};

/// Buy-and-hold over the same bars: equal weight in every symbol from the first bar the
/// engine could trade on (its features warm: `warm_bars`) to the last, a taker fee in and
/// out; with its value at each bar close (the fee out not yet paid). Unavailable without 1m
/// klines in the data.
pub fn buy_and_hold(
    source: &impl Source,
    symbols: &[String],
    start: f64,
    fee: f64,
    warm_bars: usize,
) -> (Value, Vec<(i64, f64)>) {
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
        return (
            json!({ "available": false, "why": "no 1m klines past the warm-up in the data" }),
            Vec::new(),
        );
    }
    let mut times: Vec<i64> = series.iter().flatten().map(|p| p.0).collect();
    times.sort_unstable();
    times.dedup();
    let invested = start * (1.0 - fee);
    let share = invested / series.len() as f64;
    let mut at = vec![0usize; series.len()];
    let mut curve = Vec::with_capacity(times.len());
    let (mut peak, mut max_drawdown) = (f64::MIN, 0.0f64);
    for t in &times {
        let mut value = 0.0;
        for (k, closes) in series.iter().enumerate() {
            while at[k] + 1 < closes.len() && closes[at[k] + 1].0 <= *t {
                at[k] += 1;
            }
            value += share * closes[at[k]].1 / closes[0].1;
        }
        peak = peak.max(value);
        max_drawdown = max_drawdown.max((peak - value) / peak);
        curve.push((*t, value));
    }
    let value = curve.last().map_or(invested, |c| c.1);
    let end = value * (1.0 - fee);
    let summary = json!({
        "available": true,
        "symbols": series.len(),
        "from_ms": times[0],
        "to_ms": times[times.len() - 1],
        "pnl_net": end - start,
        "return": end / start - 1.0,
        "fees": start * fee + value * fee,
        "max_drawdown": max_drawdown,
    });
    (summary, curve)
}

/// The entry rate the random baseline uses: the teacher's entries per chance to enter, so
/// the coin trades about as often as the rules did.
pub fn entry_rate(teacher_entries: u64, chances: u64) -> f64 {
    if chances == 0 {
        0.0
    } else {
        (teacher_entries as f64 / chances as f64).clamp(0.0, 1.0)
    }
}

/// The random-entries baseline's section of the report: each seed's figures (`runs`, one
/// report per seed) and, for PnL, Sharpe and drawdown, the mean, standard deviation, lowest
/// and highest across seeds.
pub fn random_entries(probability: f64, teacher_entries: u64, chances: u64, runs: &[(u64, Value)]) -> Value {
    if runs.is_empty() {
        return json!({ "available": false, "why": "--random-seeds 0" });
    }
    let keep = ["trades", "win_rate", "pnl_net", "fees", "max_drawdown", "sharpe_per_trade"];
    let seeds: Vec<Value> = runs
        .iter()
        .map(|(seed, report)| {
            let mut row: serde_json::Map<String, Value> =
                keep.iter().map(|k| (k.to_string(), report[*k].clone())).collect();
            row.insert("seed".into(), json!(seed));
            Value::Object(row)
        })
        .collect();
    let spread = |key: &str| {
        let values: Vec<f64> = runs.iter().filter_map(|(_, r)| r[key].as_f64()).collect();
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        json!({
            "mean": mean,
            "sd": var.sqrt(),
            "min": values.iter().copied().fold(f64::INFINITY, f64::min),
            "max": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    };
    json!({
        "available": true,
        "entry_probability": probability,
        "from": format!("the teacher's {teacher_entries} entries over {chances} chances to enter (fresh, warm bars of a flat symbol)"),
        "exits_sizing_fees": "the teacher's: fixed-risk sizing, ATR stops and targets, signal decay, taker fees",
        "seeds": seeds,
        "pnl_net": spread("pnl_net"),
        "sharpe_per_trade": spread("sharpe_per_trade"),
        "max_drawdown": spread("max_drawdown"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_over_seeds() {
        let runs = [
            (1, json!({ "pnl_net": 10.0, "sharpe_per_trade": 1.0, "max_drawdown": 0.1 })),
            (2, json!({ "pnl_net": -20.0, "sharpe_per_trade": -1.0, "max_drawdown": 0.3 })),
        ];
        let r = random_entries(0.1, 5, 50, &runs);
        assert_eq!(r["pnl_net"]["mean"], json!(-5.0));
        assert_eq!(r["pnl_net"]["min"], json!(-20.0));
        assert_eq!(r["pnl_net"]["max"], json!(10.0));
        assert!((r["pnl_net"]["sd"].as_f64().unwrap() - 450f64.sqrt()).abs() < 1e-12);
        assert_eq!(r["seeds"][1]["seed"], json!(2));
        assert_eq!(entry_rate(5, 50), 0.1);
        assert_eq!(entry_rate(5, 0), 0.0);
        assert_eq!(random_entries(0.1, 5, 50, &[])["available"], json!(false));
    }
}
