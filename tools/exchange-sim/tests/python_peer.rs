//! Replay conformance against an independent peer: Python's `websockets` library
//! (installed into the project's `.venv` by `scripts/setup.sh`).

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_websockets_client_receives_every_capture_message_identical() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/replay_peer.py");
    for capture in ["ws/cryptofeed_usdm_20210722.ws.txt", "ws/hftbacktest_spot_btcusdt_20240809.gz"] {
        let file = common::shared_data().join(capture);
        let out = Command::new(common::python())
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_exchange-sim"))
            .arg(&file)
            .output()
            .expect("run the Python peer");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{capture}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    }
}
