//! The harness's outputs: the result JSON, a markdown report with the SPEC §11 bars beside
//! each measured figure, and a latency plot (percentile distribution, SVG).

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// Quantiles the plot draws, as "nines" (0 = p0, 1 = p90, 2 = p99, … 5 = p99.999).
const NINES: [f64; 26] = [
    0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.2, 3.4, 3.6, 3.8, 4.0,
    4.2, 4.4, 4.6, 4.8, 5.0,
];

/// A curve: its label and the histogram it comes from.
pub struct Curve<'a> {
    /// Legend text.
    pub label: String,
    /// The latencies, ns.
    pub histogram: &'a Histogram<u64>,
}

/// Writes the percentile-distribution plot of `curves` (µs, log scale) as SVG.
pub fn plot(path: &Path, title: &str, curves: &[Curve]) -> Result<(), String> {
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            NINES
                .iter()
                .filter(|n| c.histogram.len() as f64 >= 10f64.powf(**n))
                .map(|n| (*n, c.histogram.value_at_quantile(1.0 - 10f64.powf(-n)).max(1) as f64 / 1e3))
                .collect()
        })
        .collect();
    let all = points.iter().flatten().map(|p| p.1);
    let (low, high) = all.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if high <= 0.0 {
        return Err("nothing to plot".into());
    }
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, ((low / 2.0).max(0.01)..high * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|n| match *n as i64 {
            0 => "p0".into(),
            1 => "p90".into(),
            2 => "p99".into(),
            3 => "p99.9".into(),
            4 => "p99.99".into(),
            _ => "p99.999".into(),
        })
        .x_labels(6)
        .draw()
        .map_err(|e| e.to_string())?;
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (curve, pts)) in curves.iter().zip(&points).enumerate() {
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(curve.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// ns as µs with sensible digits.
fn us(v: &Value) -> String {
    let ns = v.as_f64().unwrap_or(0.0);
    if ns >= 100_000.0 {
        format!("{:.0}", ns / 1e3)
    } else {
        format!("{:.1}", ns / 1e3)
    }
}

/// One row of percentiles (µs).
fn row(name: &str, p: &Value) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} |\n",
        p["count"],
        us(&p["p50_ns"]),
        us(&p["p90_ns"]),
        us(&p["p99_ns"]),
        us(&p["p999_ns"]),
        us(&p["p9999_ns"]),
        us(&p["max_ns"])
    )
}

/// The markdown report of a result.
pub fn markdown(result: &Value) -> String {
    let mut md = String::new();
    let m = &result["machine"];
    let _ = writeln!(md, "# aegis-bench results\n");
    let _ = writeln!(md, "- command: `{}`", result["command"].as_str().unwrap_or(""));
    let _ = writeln!(
        md,
        "- machine: {} cores, {}, kernel {}, clocksource {}",
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        m["clocksource"].as_str().unwrap_or("?")
    );
    let _ = writeln!(md, "- when: {}", result["date"].as_str().unwrap_or("?"));
    let _ = writeln!(md, "- scenario: {}\n", result["scenario"]);
    let _ = writeln!(md, "## SPEC §11 bars\n");
    let _ = writeln!(md, "| what | bar | measured | met |\n|---|---|---|---|");
    for bar in result["bars"].as_array().into_iter().flatten() {
        let met = match &bar["met"] {
            Value::Bool(true) => "yes",
            Value::Bool(false) => "no",
            _ => "not measured",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {met} |",
            bar["what"].as_str().unwrap_or(""),
            bar["bar"].as_str().unwrap_or(""),
            bar["measured"].as_str().unwrap_or("")
        );
    }
    if let Some(runs) = result["placements"]["runs"].as_array() {
        let _ = writeln!(md, "\n## Placements (the same scenarios, the same baseline)\n");
        let _ = writeln!(md, "`auto` picks {} here.\n", result["placements"]["why"].as_str().unwrap_or("?"));
        let _ = writeln!(
            md,
            "| placement | paced wire-to-decision p50 / p99 / p99.9 µs | parsed → brain p50 / p99 µs | p50 / p99 ratio vs baseline | flat-out events/s | CPU s paced / flat |\n|---|---|---|---|---|---|"
        );
        for run in runs {
            let (e, hop, ratios) = (&run["e2e"], &run["stages"]["parsed_to_brain"], &run["ratios"]);
            let _ = writeln!(
                md,
                "| {} | {} / {} / {} | {} / {} | {:.1}× / {:.1}× | {:.0} | {:.2} / {:.2} |",
                run["placement"].as_str().unwrap_or("?"),
                us(&e["p50_ns"]),
                us(&e["p99_ns"]),
                us(&e["p999_ns"]),
                us(&hop["p50_ns"]),
                us(&hop["p99_ns"]),
                ratios["p50_baseline_over_aegis"].as_f64().unwrap_or(0.0),
                ratios["p99_baseline_over_aegis"].as_f64().unwrap_or(0.0),
                run["events_per_s"].as_f64().unwrap_or(0.0),
                run["cpu_s"]["paced"].as_f64().unwrap_or(0.0),
                run["cpu_s"]["flat"].as_f64().unwrap_or(0.0),
            );
        }
    }
    let header = "| stage | events | p50 µs | p90 µs | p99 µs | p99.9 µs | p99.99 µs | max µs |\n|---|---|---|---|---|---|---|---|\n";
    for (title, key) in [("Latency, paced feed", "latency"), ("Throughput, flat-out feed", "throughput")] {
        let s = &result["scenarios"][key];
        if s.is_null() {
            continue;
        }
        let _ = writeln!(md, "\n## {title}\n");
        let _ = writeln!(md, "{}\n", s["note"].as_str().unwrap_or(""));
        md.push_str(header);
        for (who, l) in [("aegis", &s["engine"]["latency"]), ("baseline", &s["baseline"]["latency"])] {
            for stage in ["read_to_parsed", "parsed_to_brain", "brain_to_decision", "wire_to_decision"] {
                md.push_str(&row(&format!("{who}: {stage}"), &l[stage]));
            }
        }
        let _ = writeln!(
            md,
            "\nevents/s: aegis {:.0}, baseline {:.0}; CPU seconds: aegis {}, baseline {}",
            s["engine"]["latency"]["events_per_s"].as_f64().unwrap_or(0.0),
            s["baseline"]["latency"]["events_per_s"].as_f64().unwrap_or(0.0),
            s["engine"]["cpu_s"],
            s["baseline"]["cpu_s"]
        );
    }
    if let Some(sweep) = result["idle_sweep"].as_array().filter(|s| !s.is_empty()) {
        let _ = writeln!(md, "\n## Idle policies (paced feed, aegis wire-to-decision)\n");
        md.push_str(header);
        for s in sweep {
            md.push_str(&row(s["variant"].as_str().unwrap_or(""), &s["latency"]["wire_to_decision"]));
        }
        let cpu: Vec<String> = sweep.iter().map(|s| format!("{}", s["cpu_s"])).collect();
        let _ = writeln!(md, "\nCPU seconds, in the same order: {}", cpu.join(", "));
    }
    if let Some(sweeps) = result["sweeps"].as_array().filter(|s| !s.is_empty()) {
        let _ = writeln!(md, "\n## Sweeps (flat-out feed, aegis only)\n");
        let _ = writeln!(
            md,
            "| variant | events/s | p50 µs | p99 µs | p99.9 µs | ring drops | CPU s |\n|---|---|---|---|---|---|---|"
        );
        for s in sweeps {
            let l = &s["latency"]["wire_to_decision"];
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {} | {} | {} | {} |",
                s["variant"].as_str().unwrap_or(""),
                s["latency"]["events_per_s"].as_f64().unwrap_or(0.0),
                us(&l["p50_ns"]),
                us(&l["p99_ns"]),
                us(&l["p999_ns"]),
                s["ring_drops"],
                s["cpu_s"]
            );
        }
    }
    let mem = &result["memory"];
    if !mem.is_null() {
        let _ = writeln!(md, "\n## Memory\n");
        let _ = writeln!(md, "{}", mem["note"].as_str().unwrap_or(""));
    }
    let swap = &result["hot_swap"];
    let _ = writeln!(md, "\n## Weight hot-swap\n\n{}", swap["note"].as_str().unwrap_or(""));
    if let Some(runs) = swap["runs"].as_array() {
        let _ = writeln!(
            md,
            "\n| run | published | swaps | refused | all events p50 / p99 / p99.9 / max µs | bar closes (count) p50 / p99 / max µs |\n|---|---|---|---|---|---|"
        );
        for r in runs {
            let (all, bars) = (&r["wire_to_decision"], &r["bar_close_wire_to_decision"]);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} / {} / {} / {} | ({}) {} / {} / {} |",
                r["run"].as_str().unwrap_or(""),
                r["published"],
                r["swaps"],
                r["refused"],
                us(&all["p50_ns"]),
                us(&all["p99_ns"]),
                us(&all["p999_ns"]),
                us(&all["max_ns"]),
                bars["count"],
                us(&bars["p50_ns"]),
                us(&bars["p99_ns"]),
                us(&bars["max_ns"]),
            );
        }
    }
    let tick = &result["tick_to_trade"];
    let _ = writeln!(md, "\n## Tick-to-trade\n\n{}", tick["note"].as_str().unwrap_or(""));
    if let Some(paths) = tick["paths"].as_array() {
        let _ = writeln!(
            md,
            "\n| order path | entries | to last byte written p50 / p90 / p99 µs | to acknowledged p50 / p90 / p99 µs |\n|---|---|---|---|"
        );
        for p in paths {
            let (w, a) =
                (&p["tick_to_trade"]["to_last_byte_written"], &p["tick_to_trade"]["to_acknowledged"]);
            let written = if w.is_null() {
                "—".to_string()
            } else {
                format!("{} / {} / {}", us(&w["p50_ns"]), us(&w["p90_ns"]), us(&w["p99_ns"]))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {written} | {} / {} / {} |",
                p["path"].as_str().unwrap_or(""),
                p["entries"],
                us(&a["p50_ns"]),
                us(&a["p90_ns"]),
                us(&a["p99_ns"]),
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_an_svg_with_both_curves() {
        let mut a = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut b = a.clone();
        for i in 1..10_000u64 {
            a.record(1_000 + i).unwrap();
            b.record(20_000 + 3 * i).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        plot(
            &path,
            "test",
            &[
                Curve { label: "aegis".into(), histogram: &a },
                Curve { label: "baseline".into(), histogram: &b },
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        assert!(svg.contains("aegis") && svg.contains("baseline") && svg.contains("p99.9"));
    }
}
