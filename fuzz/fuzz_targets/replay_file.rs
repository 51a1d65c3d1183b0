//! Recorded files of any shape: loaded or refused with a file:line error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("aegis-fuzz-replay-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    for name in ["capture.gz", "capture.ws.txt", "series_BTCUSDT_1m.csv", "event.json"] {
        let path = dir.join(name);
        if std::fs::write(&path, data).is_ok() {
            let _ = aegis_recorded::replay::Replay::load(&[path]);
        }
    }
});
