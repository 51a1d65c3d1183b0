//! Parses one message in a tight loop, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/parse_loop 200000 [MESSAGE_FILE]`
//! (an aggTrade envelope when no file is given). Prints ns/message when run plainly.

use aegis::feed::binance::parse_message;
use aegis_wire::{Record, SymbolTable};
use std::hint::black_box;

const AGG_TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256311,"a":2181386234,"s":"BTCUSDT","p":"61234.50","q":"0.013","f":5123107832,"l":5123107835,"T":1723161256310,"m":true}}"#;

fn main() -> anyhow::Result<()> {
    let mut table = SymbolTable::with_capacity(4);
    table.intern("BTCUSDT")?;
    table.intern("ETHUSDT")?;
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5_000_000);
    let owned = args.next().map(std::fs::read_to_string).transpose()?;
    let text = owned.as_deref().map_or(AGG_TRADE, str::trim);
    let start = std::time::Instant::now();
    for _ in 0..n {
        parse_message(black_box(text.as_bytes()), None, &table, 0, &mut |r: &Record| {
            black_box(r);
        })?;
    }
    println!("{:.1} ns/message", start.elapsed().as_nanos() as f64 / n as f64);
    Ok(())
}
