//! Arbitrary bytes as a data dir's journals and experience ring → restart recovery and the
//! journal reader: recovered or refused with a reason, never a panic.
#![no_main]
use aegis::store::ledger::{DataConfig, Ledger, JOURNALS};
use aegis_wire::SymbolTable;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("aegis-fuzz-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(dir.join("journal")).is_err() {
        return;
    }
    // The first two bytes say where the input splits between the trades and positions journals.
    let (cut, rest) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
        _ => (0, data),
    };
    let cut = cut.min(rest.len());
    let _ = std::fs::write(dir.join("journal").join("trades.journal"), &rest[..cut]);
    let _ = std::fs::write(dir.join("journal").join("positions.journal"), &rest[cut..]);
    for record in aegis::store::ledger::read_journals(&dir).unwrap_or_default() {
        if let (_, Err(reason)) = record {
            assert!(!reason.to_string().is_empty());
        }
    }
    let mut symbols = SymbolTable::with_capacity(2);
    let _ = symbols.intern("BTCUSDT");
    let _ = symbols.intern("ETHUSDT");
    let config = DataConfig { trade_experiences: 8, bar_samples: 8, ..DataConfig::default() };
    if let Ok(opened) = Ledger::open(&config, &dir, Arc::new(symbols)) {
        assert!(opened.recovery.get(JOURNALS[0]).is_some());
    }
});
