//! HTTP/1.1 requests and the REST endpoints: exchangeInfo, leverageBracket, klines, depth,
//! ping and time, with Binance's request weights and its 429/418 answers to overspenders.

use crate::market::{push_quoted, roll_up, Source, SymbolInfo};
use aegis_wire::decimal::format_fixed8;
pub use aegis_wire::stream::{depth_weight, klines_weight};
use aegis_wire::{Interval, SCALE};
use std::collections::HashMap;
use std::fmt::Write;
use std::time::Instant;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method (`GET`).
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// Headers with lowercase names.
    pub headers: HashMap<String, String>,
}

impl RequestHead {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    }
}

/// Parses the head of an HTTP request (up to the blank line, which is excluded).
pub fn parse_head(head: &str) -> Result<RequestHead, String> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported version {version:?}"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("malformed header {line:?}"))?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Ok(RequestHead { method: method.to_string(), path: path.to_string(), query: query.to_string(), headers })
}

/// A REST answer.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// Weight used in the current minute, reported in `X-MBX-USED-WEIGHT-1M`.
    pub used_weight: u32,
}

impl Response {
    /// The full HTTP response bytes.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            418 => "I'm a teapot",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-MBX-USED-WEIGHT-1M: {}\r\nConnection: {}\r\n\r\n",
            self.status,
            self.body.len(),
            self.used_weight,
            if keep_alive { "keep-alive" } else { "close" }
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

fn error_body(code: i32, msg: &str) -> String {
    serde_json::json!({ "code": code, "msg": msg }).to_string()
}

/// Request weight spent per minute, and the bans Binance hands out.
#[derive(Debug)]
pub struct WeightBudget {
    limit: u32,
    window_start: Instant,
    used: u32,
    rejected_in_window: u32,
}

impl WeightBudget {
    /// A budget of `limit` weight per minute.
    pub fn new(limit: u32) -> Self {
        Self { limit, window_start: Instant::now(), used: 0, rejected_in_window: 0 }
    }

    /// Charges `weight`; `Err(status)` with 429, or 418 for a client that keeps going after
    /// being told, when over budget.
    pub fn charge(&mut self, weight: u32, now: Instant) -> Result<u32, (u16, u32)> {
        if now.duration_since(self.window_start).as_secs() >= 60 {
            self.window_start = now;
            self.used = 0;
            self.rejected_in_window = 0;
        }
        if self.used + weight > self.limit {
            self.rejected_in_window += 1;
            let status = if self.rejected_in_window > 10 { 418 } else { 429 };
            return Err((status, self.used));
        }
        self.used += weight;
        Ok(self.used)
    }
}

/// Answers one REST request against the source.
pub fn handle(
    head: &RequestHead,
    source: &dyn Source,
    budget: &mut WeightBudget,
    limits: Limits,
    listing: &crate::venue::Listing,
) -> Response {
    let weight_limit = limits.weight_per_minute;
    let bad = |code: i32, msg: &str| (400, error_body(code, msg));
    if head.method != "GET" {
        return Response { status: 405, body: error_body(-1000, "only GET is served"), used_weight: 0 };
    }
    let weight = match head.path.as_str() {
        "/fapi/v1/klines" => klines_weight(limit_param(head, 500, 1500).unwrap_or(500)),
        "/fapi/v1/depth" => depth_weight(limit_param(head, 500, 1000).unwrap_or(500)),
        "/fapi/v1/aggTrades" => aegis_wire::stream::AGG_TRADES_WEIGHT,
        "/fapi/v1/exchangeInfo" | "/fapi/v1/ping" | "/fapi/v1/time" => 1,
        _ => {
            let body = error_body(-1000, &format!("unknown endpoint {}", head.path));
            return Response { status: 404, body, used_weight: 0 };
        }
    };
    let used = match budget.charge(weight, Instant::now()) {
        Ok(used) => used,
        Err((status, used)) => {
            let msg = if status == 418 {
                "Way too many requests; IP banned for the rest of this minute.".to_string()
            } else {
                format!("Too many requests; current limit is {weight_limit} request weight per 1 MINUTE. Please use the websocket for live updates to avoid polling the API.")
            };
            return Response { status, body: error_body(-1003, &msg), used_weight: used };
        }
    };
    let (status, body) = match head.path.as_str() {
        "/fapi/v1/ping" => (200, "{}".to_string()),
        "/fapi/v1/time" => (200, format!("{{\"serverTime\":{}}}", source.now_ms())),
        "/fapi/v1/exchangeInfo" => (200, exchange_info(source, limits, listing)),
        "/fapi/v1/klines" => klines(head, source).unwrap_or_else(|(code, msg)| bad(code, &msg)),
        "/fapi/v1/depth" => depth(head, source).unwrap_or_else(|(code, msg)| bad(code, &msg)),
        "/fapi/v1/aggTrades" => agg_trades(head, source).unwrap_or_else(|(code, msg)| bad(code, &msg)),
        _ => bad(-1000, "unreachable"),
    };
    Response { status, body, used_weight: used }
}

fn agg_trades(head: &RequestHead, source: &dyn Source) -> Result<(u16, String), (i32, String)> {
    let symbol = symbol_param(head)?;
    let limit = limit_param(head, 500, 1000)?;
    let from = head
        .param("fromId")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| (-1100, "Illegal characters found in parameter 'fromId'.".to_string()))
        })
        .transpose()?;
    Ok((200, source.agg_trades(symbol, from, limit).map_err(query_error)?))
}

fn limit_param(head: &RequestHead, default: usize, max: usize) -> Result<usize, (i32, String)> {
    match head.param("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err((-1130, format!("Data sent for parameter 'limit' is not valid (1..{max})."))),
        },
    }
}

fn symbol_param(head: &RequestHead) -> Result<&str, (i32, String)> {
    head.param("symbol").filter(|s| !s.is_empty()).ok_or_else(|| {
        (-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.".to_string())
    })
}

fn time_param(head: &RequestHead, name: &str) -> Result<Option<i64>, (i32, String)> {
    head.param(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| (-1100, format!("Illegal characters found in parameter '{name}'.")))
        })
        .transpose()
}

fn query_error(e: crate::market::QueryError) -> (i32, String) {
    match e {
        crate::market::QueryError::UnknownSymbol => (-1121, "Invalid symbol.".into()),
        crate::market::QueryError::Unavailable(m) => (-1000, m),
    }
}

fn klines(head: &RequestHead, source: &dyn Source) -> Result<(u16, String), (i32, String)> {
    let symbol = symbol_param(head)?;
    let interval = head
        .param("interval")
        .and_then(|i| Interval::parse(i.as_bytes()))
        .filter(|i| *i != Interval::Mo1)
        .ok_or((-1120, "Invalid interval.".to_string()))?;
    let limit = limit_param(head, 500, 1500)?;
    let start = time_param(head, "startTime")?;
    let end = time_param(head, "endTime")?;
    let bars = source.bars_1m(symbol).map_err(query_error)?;
    // Weeks start on Monday 00:00 UTC; the epoch was a Thursday.
    let offset = if interval == Interval::W1 { 4 * 86_400_000 } else { 0 };
    let bars = if interval == Interval::M1 { bars } else { roll_up(&bars, interval.millis(), offset) };
    let in_range = |t: i64| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e);
    let selected: Vec<_> = bars.iter().filter(|b| in_range(b.open_time_ms)).collect();
    // With a start time Binance answers from the start forward, otherwise the latest bars.
    let window = if start.is_some() {
        &selected[..selected.len().min(limit)]
    } else {
        &selected[selected.len().saturating_sub(limit)..]
    };
    let info = source
        .symbols()
        .into_iter()
        .find(|i| i.symbol == symbol)
        .ok_or((-1121, "Invalid symbol.".to_string()))?;
    let mut body = String::with_capacity(window.len() * 160 + 2);
    body.push('[');
    for (i, bar) in window.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        bar.write_rest_row(&info, &mut body);
    }
    body.push(']');
    Ok((200, body))
}

fn depth(head: &RequestHead, source: &dyn Source) -> Result<(u16, String), (i32, String)> {
    let symbol = symbol_param(head)?;
    let limit = limit_param(head, 500, 1000)?;
    if ![5, 10, 20, 50, 100, 500, 1000].contains(&limit) {
        return Err((
            -1130,
            "Data sent for parameter 'limit' is not valid (5, 10, 20, 50, 100, 500, 1000).".into(),
        ));
    }
    source.depth_snapshot(symbol, limit).map(|b| (200, b)).map_err(query_error)
}

fn fixed(value: i64, decimals: u32) -> String {
    let mut s = String::new();
    format_fixed8(i128::from(value), decimals, &mut s);
    s
}

/// (initial leverage, notional floor, notional cap, maintenance margin rate in 1e-4).
fn brackets(max_leverage: u32) -> Vec<(u32, i64, i64, i64)> {
    if max_leverage >= 125 {
        vec![
            (125, 0, 50_000, 40),
            (100, 50_000, 600_000, 50),
            (75, 600_000, 3_000_000, 65),
            (50, 3_000_000, 12_000_000, 100),
            (25, 12_000_000, 70_000_000, 200),
            (20, 70_000_000, 100_000_000, 250),
            (10, 100_000_000, 230_000_000, 500),
            (5, 230_000_000, 480_000_000, 1_000),
            (4, 480_000_000, 600_000_000, 1_250),
            (3, 600_000_000, 800_000_000, 1_500),
            (2, 800_000_000, 1_200_000_000, 2_500),
            (1, 1_200_000_000, 1_800_000_000, 5_000),
        ]
    } else {
        vec![
            (max_leverage, 0, 5_000, 100),
            (20, 5_000, 25_000, 250),
            (10, 25_000, 100_000, 500),
            (5, 100_000, 250_000, 1_000),
            (2, 250_000, 1_000_000, 1_250),
            (1, 1_000_000, 5_000_000, 5_000),
        ]
    }
}

fn bracket_list(info: &SymbolInfo) -> String {
    let mut out = String::from("[");
    let mut cum: i64 = 0; // in 1e-4 quote units
    let mut prev_rate = 0;
    for (i, (leverage, floor, cap, rate)) in brackets(info.max_leverage).into_iter().enumerate() {
        cum += floor * (rate - prev_rate);
        prev_rate = rate;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"bracket\":{},\"initialLeverage\":{leverage},\"notionalCap\":{cap},\"notionalFloor\":{floor},\"maintMarginRatio\":{},\"cum\":{}}}",
            i + 1,
            fixed(rate * 10_000, 4),
            fixed(cum * 10_000, 4),
        );
    }
    out.push(']');
    out
}

/// `GET /fapi/v1/leverageBracket` (signed, as Binance serves it): one symbol's brackets or
/// every symbol's; an unknown symbol is refused with -1121.
pub fn leverage_brackets(
    symbols: &[SymbolInfo],
    symbol: Option<&str>,
) -> Result<String, (i32, &'static str)> {
    match symbol {
        Some(s) => match symbols.iter().find(|i| i.symbol == s) {
            Some(info) => Ok(format!("[{}]", bracket_entry(info))),
            None => Err((-1121, "Invalid symbol.")),
        },
        None => {
            let all: Vec<String> = symbols.iter().map(bracket_entry).collect();
            Ok(format!("[{}]", all.join(",")))
        }
    }
}

fn bracket_entry(info: &SymbolInfo) -> String {
    // `notionalCoef`: the user's bracket multiplier relative to the symbol's (1 unless set).
    format!("{{\"symbol\":\"{}\",\"notionalCoef\":1.0,\"brackets\":{}}}", info.symbol, bracket_list(info))
}

/// The rate limits exchangeInfo announces (and the server enforces).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Request weight per minute.
    pub weight_per_minute: u32,
    /// New orders per 10 s per key.
    pub orders_per_10s: u32,
}

fn exchange_info(source: &dyn Source, limits: Limits, listing: &crate::venue::Listing) -> String {
    let (weight_limit, orders_10s) = (limits.weight_per_minute, limits.orders_per_10s);
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "{{\"timezone\":\"UTC\",\"serverTime\":{},\"futuresType\":\"U_MARGINED\",\"rateLimits\":[{{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":{weight_limit}}},{{\"rateLimitType\":\"ORDERS\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":1200}},{{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":{orders_10s}}}],\"exchangeFilters\":[],\"symbols\":[",
        source.now_ms()
    );
    for (i, info) in crate::venue::relisted(source.symbols(), listing).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let status = listing.get(&info.symbol).and_then(|r| r.status.as_deref()).unwrap_or("TRADING");
        let (pp, qp) = (info.price_precision, info.qty_precision);
        let _ = write!(
            out,
            "{{\"symbol\":\"{s}\",\"pair\":\"{s}\",\"contractType\":\"PERPETUAL\",\"deliveryDate\":4133404800000,\"onboardDate\":1569398400000,\"status\":\"{status}\",\"maintMarginPercent\":\"2.5000\",\"requiredMarginPercent\":\"5.0000\",\"baseAsset\":\"{b}\",\"quoteAsset\":\"{q}\",\"marginAsset\":\"{q}\",\"pricePrecision\":{pp},\"quantityPrecision\":{qp},\"baseAssetPrecision\":8,\"quotePrecision\":8,\"underlyingType\":\"COIN\",\"triggerProtect\":\"0.0500\",\"liquidationFee\":\"0.012500\",\"marketTakeBound\":\"0.05\",\"filters\":[",
            s = info.symbol,
            b = info.base,
            q = info.quote,
        );
        let tick = fixed(info.tick_size, pp);
        let step = fixed(info.step_size, qp);
        let _ = write!(
            out,
            "{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"{tick}\",\"maxPrice\":\"{}\",\"tickSize\":\"{tick}\"}},",
            fixed(info.tick_size.saturating_mul(100_000_000).min(1_000_000 * SCALE), pp)
        );
        let _ = write!(out, "{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"{step}\",\"maxQty\":\"{}\",\"stepSize\":\"{step}\"}},", fixed(10_000_000 * SCALE / 10, qp));
        let _ = write!(out, "{{\"filterType\":\"MARKET_LOT_SIZE\",\"minQty\":\"{step}\",\"maxQty\":\"{}\",\"stepSize\":\"{step}\"}},", fixed(100_000 * SCALE, qp));
        out.push_str("{\"filterType\":\"MAX_NUM_ORDERS\",\"limit\":200},");
        out.push_str("{\"filterType\":\"MIN_NOTIONAL\",\"notional\":");
        push_quoted(&mut out, i128::from(info.min_notional), 0);
        out.push_str("},{\"filterType\":\"PERCENT_PRICE\",\"multiplierUp\":\"1.0500\",\"multiplierDown\":\"0.9500\",\"multiplierDecimal\":\"4\"}],");
        out.push_str("\"orderTypes\":[\"LIMIT\",\"MARKET\",\"STOP\",\"STOP_MARKET\",\"TAKE_PROFIT\",\"TAKE_PROFIT_MARKET\",\"TRAILING_STOP_MARKET\"],\"timeInForce\":[\"GTC\",\"IOC\",\"FOK\",\"GTX\"],");
        // Not in Binance's exchangeInfo (it lives behind the signed /fapi/v1/leverageBracket,
        // also served here): included so one unsigned call carries everything sizing needs.
        let _ = write!(out, "\"leverageBrackets\":{}}}", bracket_list(&info));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        let head = parse_head("GET /fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=5 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket").unwrap();
        assert_eq!(head.path, "/fapi/v1/klines");
        assert_eq!(head.param("symbol"), Some("BTCUSDT"));
        assert_eq!(head.param("limit"), Some("5"));
        assert_eq!(head.param("sym"), None);
        assert_eq!(head.header("upgrade"), Some("websocket"));
        assert!(parse_head("GARBAGE").is_err());
        assert!(parse_head("GET / SPDY/3").is_err());
    }

    #[test]
    fn weights_follow_binance() {
        assert_eq!(
            [klines_weight(99), klines_weight(100), klines_weight(500), klines_weight(1500)],
            [1, 2, 5, 10]
        );
        assert_eq!(
            [depth_weight(5), depth_weight(100), depth_weight(500), depth_weight(1000)],
            [2, 5, 10, 20]
        );
    }

    #[test]
    fn budget_answers_429_then_418() {
        let mut budget = WeightBudget::new(10);
        let now = Instant::now();
        assert_eq!(budget.charge(6, now), Ok(6));
        assert_eq!(budget.charge(5, now), Err((429, 6)));
        for _ in 0..9 {
            assert_eq!(budget.charge(5, now).unwrap_err().0, 429);
        }
        assert_eq!(budget.charge(5, now).unwrap_err().0, 418);
        assert_eq!(budget.charge(5, now + std::time::Duration::from_secs(61)), Ok(5));
    }

    #[test]
    fn brackets_accumulate_maintenance_amounts() {
        let info = SymbolInfo {
            symbol: "BTCUSDT".into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            price_precision: 1,
            qty_precision: 3,
            tick_size: 10_000_000,
            step_size: 100_000,
            min_notional: 100 * SCALE,
            max_leverage: 125,
        };
        let list: serde_json::Value = serde_json::from_str(&bracket_list(&info)).unwrap();
        // Binance's BTCUSDT bracket 2: floor 50,000, rate 0.005, cum 50.
        assert_eq!(list[1]["cum"], serde_json::json!(50.0));
        assert_eq!(list[1]["maintMarginRatio"], serde_json::json!(0.005));
        assert_eq!(list[0]["initialLeverage"], 125);
    }
}
