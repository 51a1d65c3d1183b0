//! A shard that panics is restarted in place, without taking the process down: its
//! connections come back, its symbols resume, and the minutes the restart missed are
//! filled from REST (every 1m bar once, consecutive).

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

fn status(socket: &std::path::Path, what: &str) -> Value {
    common::aegisctl_json(socket, &[what]).unwrap()
}

#[test]
fn a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled_on_mio() {
    a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled("mio", "threads");
}

/// The same on glommio shards (io_uring), where glommio can start.
#[test]
fn a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled_on_glommio() {
    common::on_glommio(env!("CARGO_BIN_EXE_aegis"), || {
        a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled("glommio", "threads")
    });
}

/// In the one-thread placement the feed panics on the brain's own thread: the feed restarts,
/// and the brain's state (bars, de-duplication, positions) carries on — every bar once, in
/// order, as with a thread per role.
#[test]
fn a_panicking_feed_in_the_one_thread_placement_restarts_and_the_brain_carries_on() {
    a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled("mio", "one-thread");
}

fn a_panicking_shard_is_restarted_and_its_symbols_resume_with_gaps_filled(transport: &str, placement: &str) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let (summary, bars) = (dir.path().join("summary.json"), dir.path().join("bars.csv"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .env("AEGIS_FAULT_SHARD_PANIC_AFTER", "20000")
        .args(["run", "--quiet", "--for", "300s", "--transport", transport, "--placement", placement])
        .args(["--streams", "aggTrade,kline_1m"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--control-socket")
        .arg(&socket)
        .arg("--summary")
        .arg(&summary)
        .arg("--bars-out")
        .arg(&bars)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(common::wait_for_line(&mut child, "aegis: control socket").is_some());

    common::eventually("the injected panic and the restart", || {
        status(&socket, "shards")["shards"][0]["restarts"] == 1
    });
    let events_then = status(&socket, "status")["events"].as_u64().unwrap();
    let bars_then = status(&socket, "status")["bars_closed"].as_u64().unwrap();
    common::eventually("events and bars after the restart", || {
        let s = status(&socket, "status");
        s["events"].as_u64().unwrap() > events_then + 5_000
            && s["bars_closed"].as_u64().unwrap() > bars_then + 60
    });
    assert_eq!(status(&socket, "status")["shard_restarts"], 1, "it panics once");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "the process survived the shard's panic");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["shard_restarts"], 1);
    assert_eq!(summary["placement"]["plan"], placement, "{}", summary["placement"]);
    // Each of the 20 symbols was resynced and its missing minutes asked of REST and applied.
    assert!(summary["gaps_filled"].as_u64().unwrap() >= 20, "{}", summary["gaps_filled"]);
    let mut opens: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in std::fs::read_to_string(&bars).unwrap().lines().skip(1) {
        let mut f = line.split(',');
        let symbol = f.next().unwrap().to_string();
        opens.entry(symbol).or_default().push(f.next().unwrap().parse().unwrap());
    }
    assert_eq!(opens.len(), 20);
    for (symbol, times) in &opens {
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], 60_000, "{symbol}: bars {} then {}", pair[0], pair[1]);
        }
    }
}
