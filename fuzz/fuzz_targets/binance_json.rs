//! Binance JSON → records on arbitrary bytes: records or a named error, never a panic.
#![no_main]
use aegis::feed::binance::parse_message;
use aegis_wire::SymbolTable;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static TABLE: OnceLock<SymbolTable> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = SymbolTable::with_capacity(4);
        t.intern("BTCUSDT").unwrap();
        t
    });
    let _ = parse_message(data, None, table, 0, &mut |r| {
        let _ = r.header.symbol;
    });
});
