//! Conformance with Binance's official USDⓈ-M SDK (binance-sdk-derivatives-trading-usds-futures
//! 18.1.0, installed into the project's `.venv` by `scripts/setup.sh`): the SDK's REST client
//! trades against the simulator's signed endpoints and parses every answer with its own
//! models — the order endpoint's -4120 for conditional types, the Algo Service's endpoints, a
//! leg triggered through the matching engine, positions v2 and v3.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn binances_own_sdk_trades_conditional_orders_on_the_algo_service() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (key, secret) = ("sdk-peer-key-0123456789", "sdk-peer-secret-0123456789");
    let sim = common::Sim::spawn(&[
        "--synthetic",
        "--symbols",
        "3",
        "--seed",
        "8",
        "--speed",
        "60",
        "--api-key",
        &format!("{key}:{secret}"),
    ]);
    let out = Command::new(common::python())
        .arg(root.join("tests/python/binance_sdk_peer.py"))
        .args([sim.http.as_str(), key, secret])
        .output()
        .expect("run the SDK peer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed") && !stdout.contains("FAIL"), "{stdout}");
}
