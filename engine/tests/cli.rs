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
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["doctor", "--json", "--config"])
        .arg(common::repo().join("config/colocated.toml"))
        .arg("--data-dir")
        .arg(data.path())
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
        "transport",
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
        assert!(list[0]["detail"].as_str().unwrap().contains("does not exist on this host"), "{}", list[0]);
    }
    let human = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["doctor", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("ok") || l.starts_with("WARN") || l.starts_with("info")),
        "{text}"
    );
}

/// Every file under `dir`, recursively (the data dir's journals, rings and socket).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

/// API keys come only from the environment or a file only its owner can read; a run shows
/// the key masked and the secret nowhere: not in its log (at debug level), its summary or
/// anything it wrote to its data dir.
#[test]
fn api_keys_come_from_env_or_a_private_file_and_never_reach_the_logs() {
    use std::os::unix::fs::PermissionsExt;
    const KEY: &str = "AKEYabcdefghijklmnopqrstWXYZ";
    const SECRET: &str = "SECRET-must-never-appear-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys.toml");
    std::fs::write(&key_file, format!("key = \"{KEY}\"\nsecret = \"{SECRET}\"\n")).unwrap();
    let with_keys = |setting: &str, name: &str| {
        let text = aegis::config::DEFAULT_CONFIG.replacen("keys = \"\"", &format!("keys = {setting:?}"), 1);
        assert_ne!(text, aegis::config::DEFAULT_CONFIG, "the default config has a keys setting");
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let run = |config: &std::path::Path, label: &str, env: bool| {
        let data = dir.path().join(format!("data-{label}"));
        let summary = dir.path().join(format!("summary-{label}.json"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis"));
        cmd.args(["run", "--for", "3s", "--config"])
            .arg(config)
            .arg("--summary")
            .arg(&summary)
            .arg("--data-dir")
            .arg(&data)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .env("RUST_LOG", "debug")
            .env_remove("AEGIS_API_KEY")
            .env_remove("AEGIS_API_SECRET");
        if env {
            cmd.env("AEGIS_API_KEY", KEY).env("AEGIS_API_SECRET", SECRET);
        }
        let out = cmd.output().unwrap();
        let mut seen = [out.stdout, out.stderr].concat();
        for file in files_under(&data).into_iter().chain([summary.clone()]) {
            seen.extend(std::fs::read(file).unwrap_or_default());
        }
        let seen_text = String::from_utf8_lossy(&seen).into_owned();
        assert!(!seen_text.contains(SECRET), "{label}: the secret leaked");
        assert!(!seen_text.contains(KEY), "{label}: the whole key leaked");
        (out.status, seen_text, std::fs::read_to_string(&summary).ok())
    };

    let env_config = with_keys("env", "env.toml");
    let (status, log, summary) = run(&env_config, "env", true);
    assert!(status.success(), "{log}");
    assert!(log.contains("API key AKEY…WXYZ from the environment"), "{log}");
    let summary: serde_json::Value = serde_json::from_str(&summary.unwrap()).unwrap();
    assert_eq!(summary["api_key"], "AKEY…WXYZ");

    let (status, log, _) = run(&env_config, "env-missing", false);
    assert!(!status.success() && log.contains("AEGIS_API_KEY is not set"), "{log}");

    let file_config = with_keys(key_file.to_str().unwrap(), "file.toml");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, log, _) = run(&file_config, "file-0644", false);
    assert!(!status.success(), "a key file others can read is refused: {log}");
    assert!(log.contains("mode 0644") && log.contains(key_file.to_str().unwrap()), "{log}");

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (status, log, _) = run(&file_config, "file-0600", false);
    assert!(status.success(), "{log}");
    assert!(log.contains(&format!("API key AKEY…WXYZ from {}", key_file.display())), "{log}");
}

/// `aegis doctor` measures both transports' loopback round trip on this host, prints them
/// with its choice and records them in the data dir; the next `aegis run` with
/// `transport = "auto"` (threads placement: the one-thread placement is always mio) takes
/// that choice and says so.
#[test]
fn doctor_measures_both_transports_and_auto_follows_the_record() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["doctor", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let transport = findings.as_array().unwrap().iter().find(|f| f["check"] == "transport").unwrap().clone();
    let figures = &transport["figures"];
    let mio_p99 = figures["mio"]["Ok"]["p99_ns"].as_u64().expect("mio measured");
    assert!(mio_p99 > 0, "{figures}");
    assert!(
        figures["glommio"]["Ok"]["p99_ns"].as_u64().is_some() || figures["glommio"]["Err"].is_string(),
        "glommio measured or its reason: {figures}"
    );
    let choice = figures["choice"].as_str().unwrap().to_string();
    assert!(
        transport["detail"].as_str().unwrap().contains(&format!("auto picks {choice} here")),
        "{transport}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("transport.json")).unwrap()).unwrap();
    assert_eq!(&record, figures, "the record is what --json reported");

    let mut run = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "30s", "--placement", "threads", "--transport", "auto"])
        .arg("--data-dir")
        .arg(data.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = common::wait_for_line(&mut run, "aegis: transport:").expect("the transport line");
    assert!(line.starts_with(&format!("aegis: transport: {choice} (auto, measured: mio p50 ")), "{line}");
    let _ = run.kill();
    let _ = run.wait();
}
