//! Config file text → the loader: parsed and checked, or refused with a message naming the
//! file or key; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match aegis::config::parse(text, "fuzz.toml") {
        Ok(file) => {
            // Whatever was accepted converts without a further failure.
            assert!(file.trading().is_ok() && file.fsync().is_ok() && file.features.config().is_ok());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
