//! HTTP request heads: parsed or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(head) = exchange_sim::rest::parse_head(text) {
            let _ = head.param("symbol");
        }
    }
});
