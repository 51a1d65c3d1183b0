//! The binary's contract where no engine is needed: an unreachable socket exits 2 with one
//! line naming the socket; bad usage exits 64.

use std::process::Command;

#[test]
fn an_unreachable_engine_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_aegisctl"))
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("absent.sock") && err.contains("is `aegis run` up?"), "{err}");
}

#[test]
fn bad_usage_exits_64() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegisctl")).args(["rebalance", "BTCUSDT"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to"));
}
