//! `aegis-bench` end to end on a tiny scenario: both pipelines see every message, the
//! hot-swap scenario runs, the result JSON has the keys the issues name, and the report and
//! plot are written.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_small_run_measures_both_pipelines_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("copy.json");
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-bench"))
        .args(["--quick", "--symbols", "3", "--latency-events", "3000", "--rate", "5000"])
        .args(["--throughput-events", "6000", "--memory-symbols", "30", "--no-sweeps"])
        // Each order path runs until two trades closed (at most 180 s): entries are events
        // to wait for, not a count a fixed time gives on a loaded machine.
        .args(["--tick-to-trade-trades", "2", "--tick-to-trade-seconds", "180"])
        .arg("--out")
        .arg(dir.path())
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("running aegis-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aegis-bench failed:\n{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let same: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(r, same);
    for key in ["p50_ns", "p99_ns", "p999_ns"] {
        assert!(r["e2e"][key].as_u64().unwrap() > 0, "e2e.{key}: {}", r["e2e"]);
    }
    for key in ["p50_ns", "p99_ns"] {
        assert!(r["baseline"]["e2e"][key].as_u64().unwrap() > 0, "baseline.e2e.{key}");
    }
    assert!(r["events_per_s"].as_f64().unwrap() > 0.0);
    // Tick-to-trade: every order path entered and measured; to the last byte written only
    // over the WebSocket API.
    let paths = r["tick_to_trade"]["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["websocket-api", "rest-kept-alive", "rest-per-connection"]);
    for p in paths {
        assert!(p["tick_to_trade"]["to_acknowledged"]["samples"].as_u64().unwrap_or(0) > 0, "{p}");
    }
    assert!(paths[0]["tick_to_trade"]["to_last_byte_written"]["p50_ns"].as_u64().unwrap() > 0);
    assert!(paths[1]["tick_to_trade"]["to_last_byte_written"].is_null());
    assert!(r["baseline"]["events_per_s"].as_f64().unwrap() > 0.0);
    for (scenario, messages) in [("latency", 3000u64), ("throughput", 6000)] {
        let s = &r["scenarios"][scenario];
        // Every message reached each brain (the engine counts events it applied or dropped).
        let engine =
            s["engine"]["events_applied"].as_u64().unwrap() + s["engine"]["ring_drops"].as_u64().unwrap();
        assert_eq!(engine, messages, "{scenario}: engine events");
        assert_eq!(
            s["baseline"]["events_applied"].as_u64().unwrap(),
            messages,
            "{scenario}: baseline events"
        );
        assert_eq!(s["baseline"]["parse_errors"], 0);
        // The first 5 % are warm-up; the rest are measured on both sides.
        let measured = messages - messages / 20;
        assert_eq!(s["engine"]["latency"]["wire_to_decision"]["count"].as_u64().unwrap(), measured);
        assert_eq!(s["baseline"]["latency"]["wire_to_decision"]["count"].as_u64().unwrap(), measured);
    }
    // Hot swap: the latency scenario again, quiet and while models are published; every
    // event measured in both, and no more swaps than models on offer.
    let swap = &r["hot_swap"];
    assert_eq!(swap["measured"], true, "{swap}");
    let runs = swap["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0]["run"].as_str(), runs[0]["published"].as_u64()), (Some("quiet"), Some(0)));
    assert!(runs[1]["published"].as_u64().unwrap() > 0, "{swap}");
    for run in runs {
        assert_eq!(run["wire_to_decision"]["count"].as_u64(), Some(3000 - 3000 / 20), "{run}");
        assert!(run["swaps"].as_u64().unwrap() <= run["published"].as_u64().unwrap() + 1, "{run}");
    }
    let mem = &r["memory"];
    assert_eq!(mem["symbols"], 30);
    assert!(mem["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{mem}");
    // Both placements, the one auto picks first, each with its ratios against the baseline.
    let placements = &r["placements"];
    let runs = placements["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|p| p["placement"].as_str().unwrap()).collect();
    assert_eq!(names[0], placements["auto_picks"].as_str().unwrap(), "{placements}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["one-thread", "threads"], "{placements}");
    for run in runs {
        assert!(run["e2e"]["p99_ns"].as_u64().unwrap() > 0, "{run}");
        assert!(run["ratios"]["p99_baseline_over_aegis"].as_f64().unwrap() > 0.0, "{run}");
    }
    assert_eq!(runs[0]["e2e"], r["e2e"], "the headline is auto's placement");
    let bars = r["bars"].as_array().unwrap();
    assert!(bars.iter().any(|b| b["what"].as_str().unwrap().contains("p99 against the baseline")));
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("SPEC §11 bars") && report.contains("baseline: wire_to_decision"));
    assert!(report.contains("## Placements") && report.contains("| one-thread |"), "the placements table");
    assert!(report.contains("| publishing |"), "the hot-swap table");
    let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("baseline"));
}

/// `order-rtt` measures the three order paths in one run over TLS: every sample an order
/// the exchange accepted, last byte written where the client exposes it.
#[test]
fn order_rtt_measures_the_three_order_paths_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("order_rtt.json");
    let out = Command::new(env!("CARGO_BIN_EXE_order-rtt"))
        .args(["--count", "30", "--warmup", "5", "--tls", "--json"])
        .arg(&json_path)
        .output()
        .expect("running order-rtt");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let paths = r["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["websocket-api", "rest-kept-alive", "rest-per-connection"]);
    for p in paths {
        assert_eq!(p["acknowledged"]["samples"], 30, "{p}");
        assert!(p["acknowledged"]["p50_ns"].as_u64().unwrap() > 0, "{p}");
    }
    assert!(
        paths[0]["last_byte_written"]["p50_ns"].as_u64().unwrap()
            < paths[0]["acknowledged"]["p50_ns"].as_u64().unwrap()
    );
    assert!(paths[1]["last_byte_written"].is_null(), "ureq does not expose its last write");
}
