//! Binance payloads as a typical Rust client reads them: serde_json into owned structs with
//! `String` decimals — the baselines the benchmarks and `aegis-bench` compare against.
// Field names are Binance's payload keys (documented by Binance), renamed only where Rust
// needs it; a doc line per key would repeat that table.
#![allow(missing_docs)]

use serde::Deserialize;

/// The combined-stream envelope, owned.
#[derive(Deserialize)]
pub struct Envelope {
    pub stream: String,
    pub data: Box<serde_json::value::RawValue>,
}

/// `<symbol>@aggTrade`, owned.
#[derive(Deserialize)]
pub struct AggTradeMsg {
    pub e: String,
    #[serde(rename = "E")]
    pub event_time: i64,
    pub s: String,
    pub a: u64,
    pub p: String,
    pub q: String,
    /// Today's shape only: the quantity without RPI-order trades.
    #[serde(default)]
    pub nq: Option<String>,
    pub f: u64,
    pub l: u64,
    #[serde(rename = "T")]
    pub trade_time: i64,
    pub m: bool,
}

/// `<symbol>@bookTicker`, owned.
#[derive(Deserialize)]
pub struct BookTickerMsg {
    pub e: String,
    pub u: u64,
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(rename = "T")]
    pub transaction_time: i64,
    pub s: String,
    pub b: String,
    #[serde(rename = "B")]
    pub bid_qty: String,
    pub a: String,
    #[serde(rename = "A")]
    pub ask_qty: String,
}

/// `<symbol>@kline_1m`, owned.
#[derive(Deserialize)]
pub struct KlineMsg {
    pub e: String,
    #[serde(rename = "E")]
    pub event_time: i64,
    pub s: String,
    pub k: KlineBody,
}

#[derive(Deserialize)]
pub struct KlineBody {
    pub t: i64,
    #[serde(rename = "T")]
    pub close_time: i64,
    pub s: String,
    pub i: String,
    pub f: i64,
    #[serde(rename = "L")]
    pub last_trade: i64,
    pub o: String,
    pub c: String,
    pub h: String,
    pub l: String,
    pub v: String,
    pub n: u64,
    pub x: bool,
    pub q: String,
    #[serde(rename = "V")]
    pub taker_volume: String,
    #[serde(rename = "Q")]
    pub taker_quote_volume: String,
}

/// `<symbol>@markPrice@1s`, owned.
#[derive(Deserialize)]
pub struct MarkPriceMsg {
    pub e: String,
    #[serde(rename = "E")]
    pub event_time: i64,
    pub s: String,
    pub p: String,
    pub i: String,
    #[serde(rename = "P")]
    pub settle: String,
    pub r: String,
    #[serde(rename = "T")]
    pub next_funding: i64,
}

/// `<symbol>@trade`, owned.
#[derive(Deserialize)]
pub struct TradeMsg {
    pub e: String,
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(rename = "T")]
    pub t: i64,
    pub s: String,
    #[serde(rename = "t")]
    pub id: u64,
    pub p: String,
    pub q: String,
    #[serde(rename = "X")]
    pub x: String,
    pub m: bool,
}

/// `<symbol>@depth`, owned.
#[derive(Deserialize)]
pub struct DepthMsg {
    pub e: String,
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(rename = "T")]
    pub t: i64,
    pub s: String,
    #[serde(rename = "U")]
    pub first: u64,
    pub u: u64,
    pub pu: u64,
    pub b: Vec<[String; 2]>,
    pub a: Vec<[String; 2]>,
}
