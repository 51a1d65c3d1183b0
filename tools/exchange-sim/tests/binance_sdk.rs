//! Conformance with Binance's official USDⓈ-M SDK (binance-sdk-derivatives-trading-usds-futures
//! 18.1.0, installed into the project's `.venv` by `scripts/setup.sh`): the SDK's REST client
//! trades against the simulator's signed endpoints and parses every answer with its own
//! models — the order endpoint's -4120 for conditional types, the Algo Service's endpoints, a
//! leg triggered through the matching engine, positions v2 and v3 — and its WebSocket API
//! client places, queries and cancels orders and legs over `/ws-fapi/v1`, signed with an
//! HMAC key and with an Ed25519 key; every answer's key set is checked against the SDK's
//! models.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn binances_own_sdk_trades_conditional_orders_on_the_algo_service() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (key, secret) = ("sdk-peer-key-0123456789", "sdk-peer-secret-0123456789");
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("ed25519.pem"), dir.path().join("ed25519.pub.pem"));
    let (private_pem, public_pem) = aegis_testkit::ed25519_pair();
    std::fs::write(&private, private_pem).unwrap();
    std::fs::write(&public, public_pem).unwrap();
    let ed25519_key = "sdk-peer-ed25519-key-0123456789";
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
        "--ed25519-key",
        &format!("{ed25519_key}:{}", public.display()),
    ]);
    let out = Command::new(common::python())
        .arg(root.join("tests/python/binance_sdk_peer.py"))
        .args([sim.http.as_str(), key, secret, ed25519_key, private.to_str().unwrap()])
        .output()
        .expect("run the SDK peer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed") && !stdout.contains("FAIL"), "{stdout}");
}
