//! Pinning by CPU id, verified from outside: `aegis run` started with its affinity
//! restricted to CPU 0 (as `isolcpus` or a unit's `CPUAffinity` would leave it), pinning
//! required, shard and brain configured on CPU 1 — the kernel's view of each thread
//! (`/proc/<pid>/task/*/status`) shows them on CPU 1. A CPU the host does not have is
//! refused with its key before anything starts.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// The embedded default config with these cores, on mio, pinning required.
fn config(dir: &Path, shard_core: usize, brain_core: usize) -> std::path::PathBuf {
    let text = aegis::config::DEFAULT_CONFIG
        .replace("\ncores = [0]\n", &format!("\ncores = [{shard_core}]\n"))
        .replace("\ncore = 1\n", &format!("\ncore = {brain_core}\n"))
        .replace("\ntransport = \"auto\"\n", "\ntransport = \"mio\"\n")
        .replace("\npinning = \"\"\n", "\npinning = \"required\"\n");
    assert!(
        text.contains(&format!("cores = [{shard_core}]")) && text.contains(&format!("core = {brain_core}"))
    );
    let path = dir.join(format!("pinned-{shard_core}-{brain_core}.toml"));
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

fn aegis(args: &[&str]) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", "0", env!("CARGO_BIN_EXE_aegis")]).args(args);
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command
}

#[test]
fn pinned_threads_run_on_their_cpu_though_the_process_was_started_on_another() {
    let cpus = aegis::cpu::usable();
    assert!(cpus.contains(&0) && cpus.contains(&1), "this test needs CPUs 0 and 1: {cpus:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1, 1);
    let data = dir.path().join("data");
    let summary = dir.path().join("summary.json");
    let mut engine = aegis(&["run", "--quiet", "--for", "60s", "--config", config.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap(), "--summary", summary.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskset");
    let line = common::wait_for_line(&mut engine, "aegis: placement:").expect("the placement line");
    assert_eq!(line, "aegis: placement: aegis-shard-0 → 1, aegis-brain → 1");
    let seen = threads(engine.id());
    for name in ["aegis-shard-0", "aegis-brain"] {
        let (_, allowed) =
            seen.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}: {seen:?}"));
        assert_eq!(allowed, "1", "{name} as the kernel sees it");
    }
    let (_, main) = seen.iter().find(|(n, _)| n == "aegis").expect("the main thread");
    assert_eq!(main, "0", "the rest of the process keeps the mask it was started with");
    let term = Command::new("kill").args(["-TERM", &engine.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(engine.wait().unwrap().success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["placement"]["pinning"], "Required");
    assert_eq!(summary["placement"]["threads"]["aegis-brain"], "1", "{}", summary["placement"]);
    assert_eq!(summary["placement"]["threads"]["aegis-shard-0"], "1", "{}", summary["placement"]);
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
