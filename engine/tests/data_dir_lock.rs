//! One engine per data dir: a second `aegis run` on a live engine's data dir is refused at
//! once — one line naming the dir and the holder's pid, before the simulator, any journal
//! recovery, the sidecar or a socket — and the live engine's journals stay whole. (The
//! restart after `kill -9` is `crash.rs`: the lock dies with its process.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each journal's whole records (a live engine's last one may be mid-write), by journal.
fn records(data: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut by_journal: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (name, record) in aegis::store::ledger::read_journals(data).unwrap() {
        by_journal.entry(name).or_default().extend(record.ok());
    }
    by_journal
}

fn count(records: &BTreeMap<String, Vec<serde_json::Value>>) -> usize {
    records.values().map(Vec::len).sum()
}

/// Every journal of `earlier` is a prefix of the same journal in `later`.
fn kept(
    earlier: &BTreeMap<String, Vec<serde_json::Value>>,
    later: &BTreeMap<String, Vec<serde_json::Value>>,
    what: &str,
) {
    for (name, records) in earlier {
        let now = later.get(name).map_or(&[][..], Vec::as_slice);
        assert!(now.len() >= records.len(), "{what}: {name} lost records");
        assert_eq!(&now[..records.len()], &records[..], "{what}: {name} records changed");
    }
}

fn aegis(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aegis"));
    // The operator's view: an error is its line, without a backtrace.
    command.args(args).env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command
}

#[test]
fn a_second_engine_on_a_live_data_dir_is_refused_at_once_and_the_first_keeps_its_journals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let mut live = aegis(&["run", "--quiet", "--for", "120s", "--data-dir", data_arg])
        .stderr(Stdio::piped())
        .spawn()
        .expect("aegis");
    // Live: the control socket is bound after the journals are open and the sidecar started.
    common::wait_for_line(&mut live, "aegis: control socket").expect("the first engine's control socket");
    common::eventually("the first engine to journal something", || count(&records(&data)) > 0);
    let before = records(&data);

    let started = Instant::now();
    let second = aegis(&["run", "--quiet", "--for", "30s", "--data-dir", data_arg]).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second engine must not run: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!(
            "Error: data dir {} is in use by another engine (pid {}); one engine per data dir",
            data.display(),
            live.id()
        )],
        "one line, and nothing before it (no simulator, recovery, sidecar or socket)"
    );
    assert!(took < Duration::from_secs(20), "refused at once, not after a start-up ({took:?})");

    // The live engine's records are all still there, in order, and it goes on writing.
    let during = records(&data);
    kept(&before, &during, "the refused engine touched no journal");
    let reading = aegis(&["journal", data_arg]).stdout(Stdio::null()).output().unwrap();
    assert!(
        reading.status.success(),
        "reading a live engine's journals is not an error: {}",
        String::from_utf8_lossy(&reading.stderr)
    );

    // A clean stop, then the engine's own reader finds every record it wrote.
    let term = Command::new("kill").args(["-TERM", &live.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(live.wait().unwrap().success(), "the first engine stops cleanly");
    let after = records(&data);
    kept(&during, &after, "nothing the live engine wrote was lost");
    let reading = aegis(&["journal", "--json", data_arg]).output().unwrap();
    assert!(reading.status.success(), "{}", String::from_utf8_lossy(&reading.stderr));
    let read = String::from_utf8_lossy(&reading.stdout).lines().count();
    assert_eq!(read, count(&after), "`aegis journal` reads every record, none torn");

    // Released with its process: the next engine starts.
    let next = aegis(&["run", "--quiet", "--for", "1s", "--data-dir", data_arg]).output().unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
}
