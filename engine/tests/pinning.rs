//! Pinning by CPU id, verified from outside: `aegis run` started with its affinity
//! restricted to CPU 0 (as `isolcpus` or a unit's `CPUAffinity` would leave it), pinning
//! required, shard and brain configured on CPU 1 — the kernel's view of each thread
//! (`/proc/<pid>/task/*/status`) shows them on CPU 1. A CPU the host does not have is
//! refused with its key before anything starts.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// The embedded default config with these cores and thread plan, on mio, pinning required.
fn config_with(dir: &Path, shard_core: usize, brain_core: usize, placement: &str) -> std::path::PathBuf {
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\ncores = [0]\n", &format!("\ncores = [{shard_core}]\n"))
        .replace("\ncore = 1\n", &format!("\ncore = {brain_core}\n"))
        .replace("\ntransport = \"auto\"\n", "\ntransport = \"mio\"\n")
        .replace("\npinning = \"\"\n", "\npinning = \"required\"\n")
        .replace("\nplacement = \"auto\"\n", &format!("\nplacement = \"{placement}\"\n"));
    assert!(
        text.contains(&format!("cores = [{shard_core}]"))
            && text.contains(&format!("core = {brain_core}"))
            && text.contains(&format!("placement = \"{placement}\""))
    );
    let path = dir.join(format!("pinned-{shard_core}-{brain_core}-{placement}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Each thread of `pid` by name, with its `Cpus_allowed_list`.
fn threads(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let cpus = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("").trim();
        out.push((name.trim().to_string(), cpus.to_string()));
    }
    out
}

/// A thread per role.
fn config(dir: &Path, shard_core: usize, brain_core: usize) -> std::path::PathBuf {
    config_with(dir, shard_core, brain_core, "threads")
}

fn aegis(args: &[&str]) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", "0", env!("CARGO_BIN_EXE_aegis")]).args(args);
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command
}

/// `aegis run` on `config` under `taskset -c 0`, and its placement line once it is out.
fn start(config: &Path, data: &Path, summary: &Path) -> (std::process::Child, String) {
    let mut engine = aegis(&["run", "--quiet", "--for", "60s", "--config", config.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap(), "--summary", summary.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskset");
    let line = common::wait_for_line(&mut engine, "aegis: placement:").expect("the placement line");
    (engine, line)
}

/// Stops `engine` with SIGTERM; its summary.
fn stop(mut engine: std::process::Child, summary: &Path) -> serde_json::Value {
    let term = Command::new("kill").args(["-TERM", &engine.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(engine.wait().unwrap().success());
    serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap()
}

#[test]
fn pinned_threads_run_on_their_cpu_though_the_process_was_started_on_another() {
    let cpus = aegis::cpu::usable();
    assert!(cpus.contains(&0) && cpus.contains(&1), "this test needs CPUs 0 and 1: {cpus:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1, 1);
    let data = dir.path().join("data");
    let summary = dir.path().join("summary.json");
    let (engine, line) = start(&config, &data, &summary);
    assert_eq!(line, "aegis: placement: aegis-shard-0 → 1, aegis-brain → 1 — threads (configured)");
    let seen = threads(engine.id());
    for name in ["aegis-shard-0", "aegis-brain"] {
        let (_, allowed) =
            seen.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}: {seen:?}"));
        assert_eq!(allowed, "1", "{name} as the kernel sees it");
    }
    let (_, main) = seen.iter().find(|(n, _)| n == "aegis").expect("the main thread");
    assert_eq!(main, "0", "the rest of the process keeps the mask it was started with");
    let summary = stop(engine, &summary);
    assert_eq!(summary["placement"]["pinning"], "Required");
    assert_eq!(summary["placement"]["threads"]["aegis-brain"], "1", "{}", summary["placement"]);
    assert_eq!(summary["placement"]["threads"]["aegis-shard-0"], "1", "{}", summary["placement"]);
}

/// The one-thread placement: one thread (the shard's, on its core) reads, parses and runs
/// the brain; there is no brain thread, and the brain reports the shard's core.
#[test]
fn the_one_thread_placement_runs_feed_and_brain_on_one_pinned_thread() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), 1, 0, "one-thread");
    let (data, summary) = (dir.path().join("data"), dir.path().join("summary.json"));
    let (engine, line) = start(&config, &data, &summary);
    assert_eq!(line, "aegis: placement: aegis-shard-0 → 1, aegis-brain → 1 — one-thread (configured)");
    let seen = threads(engine.id());
    let (_, allowed) = seen.iter().find(|(n, _)| n == "aegis-shard-0").expect("the one thread");
    assert_eq!(allowed, "1", "the one thread as the kernel sees it");
    assert!(!seen.iter().any(|(n, _)| n == "aegis-brain"), "no brain thread: {seen:?}");
    let summary = stop(engine, &summary);
    assert_eq!(summary["placement"]["plan"], "one-thread", "{}", summary["placement"]);
    assert_eq!(summary["transport"], "mio (the one-thread placement runs on mio)");
}

/// A thread plan that cannot work is refused with its key before anything starts.
#[test]
fn an_impossible_thread_plan_is_refused_with_its_key_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (&["--shards", "2"], "cpu.placement: \"one-thread\" runs one shard; shards.count = 2"),
        (
            &["--transport", "glommio"],
            "cpu.placement: \"one-thread\" runs on mio; shards.transport = \"glommio\"",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(["run", "--quiet", "--for", "10s", "--placement", "one-thread"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}: refused");
        assert_eq!(stderr.lines().last().unwrap_or(""), format!("Error: config: {want}"), "{stderr}");
        for started in ["sidecar started", "control socket", "aegis: placement:"] {
            assert!(!stderr.contains(started), "{want}: nothing starts ({started}): {stderr}");
        }
    }
}

#[test]
fn a_cpu_the_host_does_not_have_is_refused_with_its_key_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (config(dir.path(), 4095, 1), "shards.cores: CPU 4095 does not exist on this host"),
        (config(dir.path(), 1, 4095), "brain.core: CPU 4095 does not exist on this host"),
    ];
    for (config, want) in cases {
        let data = dir.path().join("data");
        let out = aegis(&["run", "--quiet", "--for", "10s", "--config", config.to_str().unwrap()])
            .args(["--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}: refused");
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.starts_with(&format!("Error: config: {want} (usable here: ")), "{want}: {stderr}");
        assert!(last.ends_with("; [cpu] pinning = \"required\""), "{stderr}");
        for started in ["sidecar started", "control socket", "placement"] {
            assert!(!stderr.contains(started), "{want}: nothing starts ({started}): {stderr}");
        }
    }
}
