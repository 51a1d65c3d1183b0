//! A control-socket request line → the strict parser: a request or a reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(reason) = aegis_control::parse_request(&text) {
        let reason = reason.to_string();
        assert!(!reason.is_empty());
        // The refusal is sent back as one JSON line.
        let line = aegis_control::error_line(&reason);
        assert!(serde_json::from_str::<serde_json::Value>(line.trim_end()).is_ok());
    }
});
