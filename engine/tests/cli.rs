//! The `aegis` binary: `aegis run` on the embedded default config runs offline, shows
//! progress, and stops cleanly on SIGINT with its summary written.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn aegis_run_shows_progress_and_stops_cleanly_on_sigint() {
    let dir = std::env::temp_dir().join(format!("aegis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let summary = dir.join("summary.json");
    let bars = dir.join("bars.csv");
    let features = dir.join("features.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--summary", summary.to_str().unwrap(), "--bars-out", bars.to_str().unwrap()])
        .args(["--features-out", features.to_str().unwrap()])
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("aegis");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    // Stop once a progress line reports events, every symbol's features warm from the 300
    // bars of start-up history, and a closed teacher trade (or after 90 lines: then fail).
    let mut progress_lines = 0;
    let mut saw_events = false;
    let mut warmed_up = false;
    let mut traded = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.starts_with("aegis:") && line.contains("events/s") {
            progress_lines += 1;
            let events: u64 = line
                .split("events/s")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            eprintln!("{line}");
            saw_events = events > 0;
            warmed_up = line.contains("features warm 20/20");
            traded = line
                .split("  trades ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0);
            if (saw_events && warmed_up && traded) || progress_lines == 90 {
                break;
            }
        }
    }
    assert!(saw_events, "no events reported in {progress_lines} progress lines");
    assert!(warmed_up, "start-up history not closed in {progress_lines} progress lines");
    assert!(traded, "no teacher trade closed in {progress_lines} s of the default run");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGINT: {exit}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert!(json["events_total"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["symbols"].as_object().unwrap().len(), 20, "the default config's 20 simulated symbols");
    assert!(std::fs::read_to_string(&bars)
        .unwrap()
        .starts_with("symbol,open_time_ms,open,high,low,close,volume,trades"));
    assert!(dir.join("data").is_dir());
    assert_eq!(json["bars_rejected"], 0, "{json}");
    assert_eq!(json["symbols_features_warm"], 20, "300 bars of history warm every symbol");
    assert!(json["trades_closed"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["phase"], "teacher");
    let features = std::fs::read_to_string(&features).unwrap();
    assert!(features.starts_with("symbol,open_time_ms,warm,market_structure,order_blocks_count"));
    let warm_symbols: std::collections::BTreeSet<&str> = features
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("1"))
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(warm_symbols.len(), 20, "warm feature rows for every symbol: {warm_symbols:?}");
}

/// `aegis doctor` reads the colocated example config and names what this host lacks; its
/// exit status says how bad (2 here: a 2-core machine has no cores 2–6).
#[test]
fn doctor_checks_the_colocated_config_against_this_host() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["doctor", "--json", "--config"])
        .arg(common::repo().join("config/colocated.toml"))
        .output()
        .unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let list = findings.as_array().unwrap();
    let checks: Vec<&str> = list.iter().map(|f| f["check"].as_str().unwrap()).collect();
    for check in [
        "configured cores",
        "core isolation",
        "io_uring",
        "locked memory",
        "transparent huge pages",
        "clocksource",
        "cpu governor",
    ] {
        assert!(checks.contains(&check), "{check} missing from {checks:?}");
    }
    let worst = list.iter().map(|f| f["level"].as_str().unwrap()).fold(0, |w, l| {
        w.max(match l {
            "fail" => 2,
            "warn" => 1,
            _ => 0,
        })
    });
    assert_eq!(out.status.code(), Some(worst), "exit status follows the worst finding");
    let cores = std::thread::available_parallelism().unwrap().get();
    if cores < 7 {
        assert_eq!(worst, 2);
        assert!(list[0]["detail"].as_str().unwrap().contains("do not exist"), "{}", list[0]);
    }
    let human = Command::new(env!("CARGO_BIN_EXE_aegis")).args(["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("ok") || l.starts_with("WARN") || l.starts_with("info")),
        "{text}"
    );
}
