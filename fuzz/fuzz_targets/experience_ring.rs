//! Arbitrary bytes as an experience ring file → the reader the sidecar uses: refused with
//! what differs, or records read; never a panic or an out-of-bounds read.
#![no_main]
use aegis_wire::experience::{RingReader, TradeExperience, TRADE_WORDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("aegis-fuzz-ring-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("trades.ring");
    // A valid header up front half the time, so the fuzzer reaches the record reads.
    let mut file = Vec::with_capacity(64 + data.len());
    if data.first().is_some_and(|b| b & 1 == 1) {
        for word in [u64::from_le_bytes(*b"AEGISEXP"), 1, TRADE_WORDS as u64, 4] {
            file.extend_from_slice(&word.to_le_bytes());
        }
    }
    file.extend_from_slice(data);
    if std::fs::write(&path, &file).is_err() {
        return;
    }
    if let Ok(reader) = RingReader::<TRADE_WORDS>::open(&path, 4) {
        let range = reader.range();
        for n in range.start..range.end.min(range.start.saturating_add(8)) {
            if let Some(words) = reader.get(n) {
                let _ = TradeExperience::from_words(&words);
            }
        }
        let _ = reader.get(u64::MAX);
    }
});
