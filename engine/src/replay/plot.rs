//! The replay's report as one SVG a trader reads at a glance: equity against exchange time
//! (UTC) with both axes labelled, the phases (the teacher, each model generation) shaded and
//! named, every entry and exit marked, the baselines drawn beside it, and the drawdown
//! beneath.

use super::book::Mark;
use super::ReplayReport;
use crate::clock::Utc;
use std::fmt::Write;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
/// The equity panel's top and bottom, then the drawdown panel's.
const EQUITY: (f64, f64) = (60.0, 390.0);
const DRAWDOWN: (f64, f64) = (420.0, 520.0);
const HEIGHT: f64 = 580.0;
const PHASE_FILLS: [&str; 4] = ["#f0f0f0", "#e3eefa", "#e6f5e3", "#fbeee0"];

/// Time (ms) and value to pixels.
struct Frame {
    t0: i64,
    t1: i64,
    lo: f64,
    hi: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.t0) as f64 / ((self.t1 - self.t0) as f64).max(1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        self.bottom - (v - self.lo) / (self.hi - self.lo).max(1e-9) * (self.bottom - self.top)
    }
}

/// The report's plot: equity, phases, trades, baselines, drawdown.
pub fn equity_svg(report: &ReplayReport) -> String {
    let curve = &report.equity_curve;
    let all = || curve.iter().chain(report.baselines.iter().flat_map(|(_, c)| c.iter()));
    let timed = || all().filter(|p| p.0 > 0);
    let t0 = timed().map(|p| p.0).min().unwrap_or(0);
    let t1 = timed().map(|p| p.0).max().unwrap_or(t0 + 60_000).max(t0 + 60_000);
    let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0) - 1.0, lo.max(0.0) + 1.0) };
    let pad = (hi - lo) * 0.05;
    let equity = Frame { t0, t1, lo: lo - pad, hi: hi + pad, top: EQUITY.0, bottom: EQUITY.1 };
    let drawdowns = drawdown(curve);
    let deepest = drawdowns.iter().map(|p| p.1).fold(0.0f64, f64::max).max(0.01);
    let under = Frame { t0, t1, lo: -deepest, hi: 0.0, top: DRAWDOWN.0, bottom: DRAWDOWN.1 };

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    title(&mut svg, report, t0, t1);
    phases(&mut svg, report, &equity);
    value_axis(&mut svg, &equity, "equity", |v| format!("{v:.0}"));
    value_axis(&mut svg, &under, "drawdown", |v| format!("{:.1} %", (-v * 100.0).max(0.0)));
    time_axis(&mut svg, &equity, &under);
    let mut legend = vec![("#1f77b4", "", "this run")];
    for (name, points) in &report.baselines {
        let (colour, dash) = baseline_style(name);
        polyline(&mut svg, &equity, points, colour, dash, 1.0);
        if !legend.iter().any(|l| l.0 == colour) {
            legend.push((colour, dash, legend_name(name)));
        }
    }
    polyline(&mut svg, &equity, curve, "#1f77b4", "", 1.8);
    trades(&mut svg, &equity, curve, &report.trades);
    let dd: Vec<(i64, f64)> = drawdowns.iter().map(|&(t, d)| (t, -d)).collect();
    area(&mut svg, &under, &dd);
    legend_box(&mut svg, &legend);
    svg.push_str("</svg>\n");
    svg
}

fn title(svg: &mut String, report: &ReplayReport, t0: i64, t1: i64) {
    let s = &report.summary;
    let (from, to) = (Utc::of_ms(t0), Utc::of_ms(t1));
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"14\">equity {:.2} → {:.2} · {} trades · win rate {:.0} % · \
         max drawdown {:.1} %</text>\n<text x=\"{LEFT}\" y=\"40\" fill=\"#555\">{} {} → {} {} UTC · {}</text>",
        s["starting_equity"].as_f64().unwrap_or(0.0),
        s["equity"].as_f64().unwrap_or(0.0),
        s["trades"].as_u64().unwrap_or(0),
        s["win_rate"].as_f64().unwrap_or(0.0) * 100.0,
        s["max_drawdown"].as_f64().unwrap_or(0.0) * 100.0,
        from.date(),
        from.time(),
        to.date(),
        to.time(),
        s["fills"].as_str().unwrap_or(""),
    );
}

/// Each phase shaded across both panels and named at its top.
fn phases(svg: &mut String, report: &ReplayReport, f: &Frame) {
    let Some(rows) = report.summary["phases"].as_array() else { return };
    for (i, row) in rows.iter().enumerate() {
        let from = row["from_ms"].as_i64().unwrap_or(f.t0).max(f.t0);
        let to = row["to_ms"].as_i64().unwrap_or(f.t1).min(f.t1);
        let (x0, x1) = (f.x(from), f.x(to));
        if x1 <= x0 {
            continue;
        }
        let fill = PHASE_FILLS[i % PHASE_FILLS.len()];
        let _ = writeln!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>",
            EQUITY.0,
            x1 - x0,
            DRAWDOWN.1 - EQUITY.0,
        );
        // The name where it fits, else the generation alone, else nothing (the report has it).
        let name = format!(
            "{} ({} trades)",
            row["phase"].as_str().unwrap_or("?"),
            row["trades"].as_u64().unwrap_or(0)
        );
        let short = row["phase"].as_str().unwrap_or("?").rsplit(' ').next().unwrap_or("?").to_string();
        let fits = |text: &str| text.chars().count() as f64 * 6.5 + 8.0 <= x1 - x0;
        if let Some(label) = [name, short].into_iter().find(|t| fits(t)) {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#444\">{label}</text>",
                x0 + 4.0,
                EQUITY.0 + 12.0
            );
        }
    }
}

/// A value axis: five round ticks, gridlines and a title.
fn value_axis(svg: &mut String, f: &Frame, name: &str, label: impl Fn(f64) -> String) {
    let step = nice_step((f.hi - f.lo) / 5.0);
    let mut v = (f.lo / step).ceil() * step;
    while v <= f.hi + step * 1e-9 {
        let y = f.y(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(v)
        );
        v += step;
    }
    let mid = (f.top + f.bottom) / 2.0;
    let _ = writeln!(
        svg,
        "<text transform=\"translate(14 {mid:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">{name}</text>\n\
         <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#888\"/>",
        f.top,
        WIDTH - LEFT - RIGHT,
        f.bottom - f.top
    );
}

/// Exchange time (UTC) under both panels: round ticks, dated where the day changes.
fn time_axis(svg: &mut String, upper: &Frame, lower: &Frame) {
    const STEPS: [i64; 14] = [1, 5, 15, 30, 60, 120, 180, 360, 720, 1_440, 2_880, 10_080, 20_160, 43_200];
    let span_min = (upper.t1 - upper.t0) / 60_000;
    let step =
        STEPS.iter().map(|m| m * 60_000).find(|s| span_min * 60_000 / s <= 8).unwrap_or(43_200 * 60_000);
    let mut t = upper.t0.div_euclid(step) * step;
    let mut last_day = None;
    while t <= upper.t1 {
        if t >= upper.t0 {
            let x = upper.x(t);
            let at = Utc::of_ms(t);
            let day = (at.year, at.month, at.day);
            let text = if step >= 86_400_000 || last_day.is_none() || last_day != Some(day) {
                format!("{} {}", at.date(), at.time())
            } else {
                at.time()
            };
            last_day = Some(day);
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
                 <line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                upper.top,
                upper.bottom,
                lower.top,
                lower.bottom,
                lower.bottom + 16.0,
            );
        }
        t += step;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">exchange time (UTC)</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        lower.bottom + 34.0
    );
}

/// The first of 1, 2, 5 × 10ⁿ at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

/// The curve's drawdown from its running peak, a fraction, at each point.
fn drawdown(curve: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut peak = f64::MIN;
    curve
        .iter()
        .map(|&(t, e)| {
            peak = peak.max(e);
            (t, if peak > 0.0 { (peak - e) / peak } else { 0.0 })
        })
        .collect()
}

/// At most two points (the lowest and highest) per pixel column, so a long run's curve
/// stays a small file and keeps its shape.
fn thin(f: &Frame, points: &[(i64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    // The pixel column being filled, with its lowest and highest point so far.
    type Column = (i64, (f64, f64), (f64, f64));
    let mut column: Option<Column> = None;
    for &(t, v) in points.iter().filter(|p| p.0 >= f.t0) {
        let (x, y) = (f.x(t), f.y(v));
        let pixel = x as i64;
        match column.as_mut() {
            Some((p, low, high)) if *p == pixel => {
                if y > low.1 {
                    *low = (x, y);
                }
                if y < high.1 {
                    *high = (x, y);
                }
            }
            _ => {
                if let Some((_, low, high)) = column.take() {
                    out.extend(if low.0 <= high.0 { [low, high] } else { [high, low] });
                }
                column = Some((pixel, (x, y), (x, y)));
            }
        }
    }
    if let Some((_, low, high)) = column {
        out.extend(if low.0 <= high.0 { [low, high] } else { [high, low] });
    }
    out.dedup();
    out
}

/// The curve thinned, held at its last value to the plot's end (no event, no change).
fn to_end(f: &Frame, points: &[(i64, f64)]) -> Vec<(f64, f64)> {
    let mut thinned = thin(f, points);
    if let Some(&(x, y)) = thinned.last() {
        if x < f.x(f.t1) {
            thinned.push((f.x(f.t1), y));
        }
    }
    thinned
}

fn polyline(svg: &mut String, f: &Frame, points: &[(i64, f64)], colour: &str, dash: &str, width: f64) {
    let thinned = to_end(f, points);
    if thinned.is_empty() {
        return;
    }
    let _ = write!(svg, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"");
    if !dash.is_empty() {
        let _ = write!(svg, " stroke-dasharray=\"{dash}\"");
    }
    svg.push_str(" points=\"");
    for (x, y) in thinned {
        let _ = write!(svg, "{x:.1},{y:.1} ");
    }
    svg.push_str("\"/>\n");
}

fn area(svg: &mut String, f: &Frame, points: &[(i64, f64)]) {
    let thinned = to_end(f, points);
    let (Some(first), Some(last)) = (thinned.first(), thinned.last()) else { return };
    let zero = f.y(0.0);
    let _ = write!(
        svg,
        "<polygon fill=\"#d62728\" fill-opacity=\"0.35\" stroke=\"#d62728\" points=\"{:.1},{zero:.1} ",
        first.0
    );
    for (x, y) in &thinned {
        let _ = write!(svg, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(svg, "{:.1},{zero:.1}\"/>", last.0);
}

/// The equity just before `t` (the curve is a step: it moves at fills and closes).
fn equity_at(curve: &[(i64, f64)], t: i64) -> f64 {
    let i = curve.partition_point(|p| p.0 <= t);
    curve.get(i.saturating_sub(1)).map_or(0.0, |p| p.1)
}

/// Entries as triangles (up for a long, down for a short), exits as dots (green won, red lost).
fn trades(svg: &mut String, f: &Frame, curve: &[(i64, f64)], marks: &[Mark]) {
    for m in marks {
        let (x, y) = (f.x(m.entry_ms), f.y(equity_at(curve, m.entry_ms)));
        let (tip, base, colour) = if m.long { (-5.0, 4.0, "#2ca02c") } else { (5.0, -4.0, "#d62728") };
        let _ = writeln!(
            svg,
            "<polygon points=\"{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"/>",
            y + tip,
            x - 4.0,
            y + base,
            x + 4.0,
            y + base
        );
        let (x, y) = (f.x(m.exit_ms), f.y(equity_at(curve, m.exit_ms)));
        let colour = if m.pnl > 0.0 { "#2ca02c" } else { "#d62728" };
        let _ = writeln!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"white\" stroke=\"{colour}\" stroke-width=\"1.5\"/>"
        );
    }
}

fn baseline_style(name: &str) -> (&'static str, &'static str) {
    if name.starts_with("buy-and-hold") {
        ("#ff7f0e", "6 3")
    } else if name.starts_with("teacher") {
        ("#2ca02c", "2 2")
    } else {
        ("#aaaaaa", "")
    }
}

fn legend_name(name: &str) -> &str {
    if name.starts_with("random") {
        "random entries (one line per seed)"
    } else {
        name
    }
}

fn legend_box(svg: &mut String, items: &[(&str, &str, &str)]) {
    let mut x = LEFT;
    let y = HEIGHT - 8.0;
    for (colour, dash, name) in items {
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/>\n\
             <text x=\"{:.1}\" y=\"{y:.1}\">{name}</text>",
            x + 24.0,
            y - 4.0,
            y - 4.0,
            x + 28.0
        );
        x += 40.0 + name.len() as f64 * 6.0;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\">▲ long entry ▼ short entry ○ exit (green won, red lost)</text>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plot_names_its_axes_phases_trades_and_baselines() {
        let start = 1_709_251_140_000; // 2024-02-29 23:59 UTC
        let report = ReplayReport {
            summary: json!({
                "starting_equity": 100.0, "equity": 90.0, "trades": 1, "win_rate": 0.0, "max_drawdown": 0.2,
                "fills": "klines only",
                "phases": [
                    { "phase": "teacher", "from_ms": start, "to_ms": start + 3_600_000, "trades": 1 },
                    { "phase": "student, generation 1", "from_ms": start + 3_600_000, "to_ms": start + 7_200_000, "trades": 0 },
                ],
            }),
            equity_curve: vec![
                (start, 100.0),
                (start + 600_000, 110.0),
                (start + 1_200_000, 88.0),
                (start + 7_200_000, 90.0),
            ],
            trades: vec![Mark {
                entry_ms: start + 600_000,
                exit_ms: start + 1_200_000,
                pnl: -22.0,
                long: false,
            }],
            baselines: vec![("buy-and-hold".into(), vec![(start, 100.0), (start + 7_200_000, 104.0)])],
        };
        let svg = equity_svg(&report);
        for expected in [
            "exchange time (UTC)",
            "2024-02-29 23:59",
            "03-01",
            "student, generation 1",
            "buy-and-hold",
            "drawdown",
            "<circle",
        ] {
            assert!(svg.contains(expected), "{expected} missing from the plot");
        }
        // The loss is marked red at the exit; a short entry points down.
        assert!(svg.contains("stroke=\"#d62728\" stroke-width=\"1.5\""));
        // 110 → 88 is the deepest fall: 20 %, the drawdown axis reaches it.
        assert!(svg.contains("20.0 %"));
    }

    #[test]
    fn long_curves_are_thinned_to_the_pixel_columns() {
        let f = Frame { t0: 0, t1: 1_000_000, lo: 0.0, hi: 1.0, top: 0.0, bottom: 100.0 };
        let points: Vec<(i64, f64)> = (0..1_000_000).step_by(10).map(|t| (t, (t % 7) as f64 / 7.0)).collect();
        let thinned = thin(&f, &points);
        assert!(thinned.len() <= 2 * (WIDTH - LEFT - RIGHT + 1.0) as usize, "{}", thinned.len());
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(nice_step(23.0), 50.0);
        assert_eq!(nice_step(0.3), 0.5);
    }
}
