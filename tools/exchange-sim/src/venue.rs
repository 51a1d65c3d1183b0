//! The signed trading API and its matching engine: API keys, signature and timestamp checks,
//! orders (MARKET, LIMIT), cancels and queries, filled against the source's book and, for
//! resting orders, its later trades in price-time priority (partial fills included); and
//! the Algo Service's conditional orders ([`algo`]: STOP_MARKET and TAKE_PROFIT_MARKET,
//! triggered by the mark or the last price), which the order endpoint refuses with -4120
//! as Binance has since 2025-12-09.

pub mod algo;

use algo::{AlgoAnswer, AlgoOrder, AlgoStatus, WorkingType, MAX_OPEN_ALGO_ORDERS};

use crate::market::Book;
use aegis_wire::decimal::{parse_fixed8, Sign};
use aegis_wire::SCALE;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest `recvWindow` Binance accepts, ms.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// `recvWindow` when a request gives none, ms.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5_000;

/// HMAC-SHA256 of `payload` with `secret`, lowercase hex (Binance's `signature`).
pub fn sign(secret: &str, payload: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, payload.as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` (base64, percent-encoded as a query carries it) is `public`'s Ed25519
/// signature of `payload`.
fn verify_ed25519(public: &[u8], payload: &str, given: &str) -> bool {
    use base64::Engine;
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(percent_decode(given)) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(payload.as_bytes(), &signature)
        .is_ok()
}

/// `%XX` escapes decoded (and `+` as a space), as a form-encoded value is written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The 32-byte key of an Ed25519 public key in PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo).
pub fn ed25519_public_key(pem: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body.trim()).map_err(|e| e.to_string())?;
    match der.strip_prefix(&SPKI_PREFIX[..]) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err("not an Ed25519 public key (SubjectPublicKeyInfo, 44 bytes)".into()),
    }
}

/// Order side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// BUY.
    Buy,
    /// SELL.
    Sell,
}

/// Order type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    /// Fills at once against the book.
    Market,
    /// Fills at its price or better; the rest waits.
    Limit,
}

/// Order status, as Binance names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Accepted, nothing filled.
    New,
    /// Some filled, the rest waiting.
    PartiallyFilled,
    /// All filled.
    Filled,
    /// Cancelled by its owner.
    Canceled,
    /// A market order the book could not fill completely: the rest expired.
    Expired,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    fn open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled)
    }
}

/// One order.
#[derive(Clone, Debug)]
pub struct Order {
    /// Exchange id.
    pub order_id: u64,
    /// The client's id (`newClientOrderId`).
    pub client_order_id: String,
    /// Whose.
    pub api_key: String,
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Limit price (fixed-point ×1e8), 0 for market orders.
    pub price: i64,
    /// Quantity ordered (fixed-point ×1e8).
    pub orig_qty: i64,
    /// Quantity filled.
    pub executed_qty: i64,
    /// Quote filled (price × qty, fixed-point ×1e8).
    pub cum_quote: i128,
    /// Status.
    pub status: Status,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Last change, ms.
    pub update_time: i64,
    /// Creation, ms.
    pub time: i64,
}

/// Which endpoint an order answers: the fields differ by endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `POST /fapi/v1/order`, `order.place`.
    Placed,
    /// `GET /fapi/v1/order`, `order.status`, open orders.
    Queried,
    /// `DELETE /fapi/v1/order`, `order.cancel`.
    Cancelled,
}

impl Order {
    fn remaining(&self) -> i64 {
        self.orig_qty - self.executed_qty
    }

    fn fill(&mut self, price: i64, qty: i64, now_ms: i64) {
        self.executed_qty += qty;
        self.cum_quote += i128::from(price) * i128::from(qty) / i128::from(SCALE);
        self.status = if self.remaining() == 0 { Status::Filled } else { Status::PartiallyFilled };
        self.update_time = now_ms;
    }

    /// The order as Binance's order endpoints answer it, each in the fields Binance's SDK
    /// 18.1.0 models for that endpoint (`activatePrice`/`priceRate` only for trailing
    /// stops, which are never placed here).
    pub fn json(&self, shape: Answer) -> String {
        let mut v = self.value();
        let Some(o) = v.as_object_mut() else { return v.to_string() };
        for (key, value) in [
            ("positionSide", serde_json::json!("BOTH")),
            ("closePosition", serde_json::json!(false)),
            ("workingType", serde_json::json!("CONTRACT_PRICE")),
            ("priceProtect", serde_json::json!(false)),
            ("priceMatch", serde_json::json!("NONE")),
            ("selfTradePreventionMode", serde_json::json!("NONE")),
            ("goodTillDate", serde_json::json!(0)),
        ] {
            o.insert(key.into(), value);
        }
        let cum_qty = o["executedQty"].clone();
        match shape {
            // The documented example (and the fill price the engine reads) carries avgPrice
            // and cumQuote; the SDK's new-order model lacks them.
            Answer::Placed => {
                o.insert("cumQty".into(), cum_qty);
            }
            Answer::Queried => {
                o.insert("time".into(), serde_json::json!(self.time));
            }
            Answer::Cancelled => {
                o.insert("cumQty".into(), cum_qty);
                o.remove("avgPrice");
                o.remove("cumQuote");
            }
        }
        v.to_string()
    }

    /// The same as a JSON value (user-data events pick fields from it).
    fn value(&self) -> serde_json::Value {
        let avg = if self.executed_qty > 0 {
            (self.cum_quote * i128::from(SCALE) / i128::from(self.executed_qty)) as i64
        } else {
            0
        };
        let kind = match self.kind {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
        };
        let side = if self.side == Side::Buy { "BUY" } else { "SELL" };
        serde_json::json!({
            "orderId": self.order_id,
            "symbol": self.symbol,
            "status": self.status.name(),
            "clientOrderId": self.client_order_id,
            "price": fixed(i128::from(self.price)),
            "avgPrice": fixed(i128::from(avg)),
            "origQty": fixed(i128::from(self.orig_qty)),
            "executedQty": fixed(i128::from(self.executed_qty)),
            "cumQuote": fixed(self.cum_quote),
            "timeInForce": if self.kind == OrderType::Limit { "GTC" } else { "GTE_GTC" },
            "type": kind,
            "origType": kind,
            "reduceOnly": self.reduce_only,
            "side": side,
            "stopPrice": fixed(0),
            "updateTime": self.update_time,
        })
    }
}

/// A key's position in one symbol (one-way mode: `positionSide = BOTH`).
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// Signed quantity (fixed-point ×1e8): positive long, negative short.
    pub amount: i64,
    /// Average entry price (fixed-point ×1e8).
    pub entry_price: i64,
    /// Leverage set for the symbol.
    pub leverage: u32,
    /// Isolated margin (else cross).
    pub isolated: bool,
}

impl Default for Position {
    fn default() -> Self {
        Self { amount: 0, entry_price: 0, leverage: 20, isolated: false }
    }
}

impl Position {
    /// Applies a fill of `qty` at `price` on `side`.
    fn fill(&mut self, side: Side, price: i64, qty: i64) {
        let delta = if side == Side::Buy { qty } else { -qty };
        let after = self.amount + delta;
        if self.amount == 0 || self.amount.signum() == delta.signum() {
            // Opening or adding: the entry becomes the quantity-weighted average.
            let old = i128::from(self.amount.abs()) * i128::from(self.entry_price);
            let new = i128::from(qty) * i128::from(price);
            self.entry_price = ((old + new) / i128::from(after.abs().max(1))) as i64;
        } else if after != 0 && after.signum() != self.amount.signum() {
            self.entry_price = price; // flipped: the rest opened at this price
        }
        if after == 0 {
            self.entry_price = 0;
        }
        self.amount = after;
    }
}

/// A fixed-point ×1e8 value as a decimal string with 8 places.
fn fixed(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:08}", a / SCALE as u128, a % SCALE as u128)
}

/// A refusal with Binance's error code, HTTP status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Binance error code.
    pub code: i32,
    /// Message.
    pub msg: String,
}

fn refuse(status: u16, code: i32, msg: impl Into<String>) -> Refusal {
    Refusal { status, code, msg: msg.into() }
}

/// The parameters of a signed request (query string and body, as sent).
pub struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    signed_part: String,
}

impl<'a> Params<'a> {
    /// Splits `query` and `body` (both `a=1&b=2`); the signature covers `query` then `body`
    /// without the `signature` pair.
    pub fn new(query: &'a str, body: &'a str) -> Self {
        let pairs: Vec<(&str, &str)> = [query, body]
            .into_iter()
            .flat_map(|s| s.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .collect();
        let unsigned =
            |s: &str| s.split('&').filter(|kv| !kv.starts_with("signature=")).collect::<Vec<_>>().join("&");
        let signed_part = unsigned(query) + &unsigned(body);
        Self { pairs, signed_part }
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn required(&self, name: &str) -> Result<&'a str, Refusal> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            refuse(
                400,
                -1102,
                format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
            )
        })
    }

    fn decimal(&self, name: &str) -> Result<i64, Refusal> {
        let v = self.required(name)?;
        parse_fixed8(v.as_bytes(), Sign::Forbidden)
            .map_err(|_| refuse(400, -1100, format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")))
    }
}

/// Whether `path` is one of the signed trading endpoints [`handle`] serves.
pub fn is_trading_path(path: &str) -> bool {
    matches!(
        path,
        "/fapi/v1/order"
            | "/fapi/v1/algoOrder"
            | "/fapi/v1/openAlgoOrders"
            | "/fapi/v1/allAlgoOrders"
            | "/fapi/v1/algoOpenOrders"
            | "/fapi/v1/openOrders"
            | "/fapi/v1/allOpenOrders"
            | "/fapi/v1/leverage"
            | "/fapi/v1/marginType"
            | "/fapi/v2/positionRisk"
            | "/fapi/v3/positionRisk"
            | "/fapi/v1/leverageBracket"
            | "/fapi/v1/listenKey"
            | "/fapi/v1/positionSide/dual"
            | "/fapi/v1/multiAssetsMargin"
    )
}

/// Request weight (`x-mbx-used-weight-1m`) of a trading endpoint, as Binance documents it:
/// new orders count against the order limits instead (0 here), an all-symbol open-orders
/// query is 40.
pub fn request_weight(method: &str, path: &str, query: &str) -> u32 {
    match (method, path) {
        ("POST", "/fapi/v1/order" | "/fapi/v1/algoOrder") => 0,
        ("GET", "/fapi/v1/openOrders" | "/fapi/v1/openAlgoOrders") if !query.contains("symbol=") => 40,
        ("GET", "/fapi/v1/allAlgoOrders") => 5,
        ("GET", "/fapi/v2/positionRisk" | "/fapi/v3/positionRisk") => 5,
        ("GET", "/fapi/v1/positionSide/dual" | "/fapi/v1/multiAssetsMargin") => 30,
        _ => 1,
    }
}

/// Serves one signed trading request: authenticates it, then places, queries, cancels or
/// lists orders. The source gives the clock and the book.
pub fn handle(
    venue: &mut Venue,
    head: &crate::rest::RequestHead,
    body: &str,
    source: &dyn crate::market::Source,
    pace: f64,
) -> Result<String, Refusal> {
    if head.path == "/fapi/v1/listenKey" {
        // USER_STREAM security: the API key header only, no signature.
        let key = head
            .header("x-mbx-apikey")
            .filter(|k| venue.keys.contains_key(*k))
            .ok_or_else(|| refuse(401, -2015, "Invalid API-key, IP, or permissions for action."))?;
        return venue.listen_key(&head.method, key);
    }
    let params = Params::new(&head.query, body);
    // The exchange's clock is the market's (what `/fapi/v1/time` serves), so a client that
    // syncs to it signs valid timestamps; at an accelerated speed the window scales. A
    // client signing with its own wall clock (Binance's SDK has no time offset) is accepted
    // too, as Binance accepts it.
    let now_ms = source.now_ms();
    let wall = crate::server::wall_ms() as i64;
    let key = venue.authenticate(head.header("x-mbx-apikey"), &params, [now_ms, wall], pace)?;
    match (head.method.as_str(), head.path.as_str()) {
        ("POST", "/fapi/v1/order") => {
            let symbol = params.required("symbol")?;
            let book = source.book(symbol, 20).map_err(|e| match e {
                crate::market::QueryError::UnknownSymbol => refuse(400, -1121, "Invalid symbol."),
                crate::market::QueryError::Unavailable(m) => refuse(400, -1000, m),
            })?;
            check_filters(source, &venue.listing, symbol, &params, "price")?;
            venue.place(&key, &params, &book, now_ms)
        }
        ("POST", "/fapi/v1/algoOrder") => {
            let symbol = params.required("symbol")?;
            check_filters(source, &venue.listing, symbol, &params, "triggerPrice")?;
            let book = source.book(symbol, 1).map_err(|e| match e {
                crate::market::QueryError::UnknownSymbol => refuse(400, -1121, "Invalid symbol."),
                crate::market::QueryError::Unavailable(m) => refuse(400, -1000, m),
            })?;
            let mid = match (book.bids.first(), book.asks.first()) {
                (Some(b), Some(a)) => Some((b.0 + a.0) / 2),
                _ => None,
            };
            venue.place_algo(&key, &params, mid, now_ms)
        }
        ("GET", "/fapi/v1/algoOrder") => venue.query_algo(&key, &params),
        ("DELETE", "/fapi/v1/algoOrder") => venue.cancel_algo(&key, &params, now_ms),
        ("GET", "/fapi/v1/openAlgoOrders") => Ok(venue.algo_orders(&key, &params, true)),
        ("GET", "/fapi/v1/allAlgoOrders") => {
            params.required("symbol")?;
            Ok(venue.algo_orders(&key, &params, false))
        }
        ("DELETE", "/fapi/v1/algoOpenOrders") => venue.cancel_all_algo(&key, &params, now_ms),
        ("GET", "/fapi/v1/leverageBracket") => {
            crate::rest::leverage_brackets(&relisted(source.symbols(), &venue.listing), params.get("symbol"))
                .map_err(|(code, msg)| refuse(400, code, msg))
        }
        ("GET", "/fapi/v1/order") => venue.query(&key, &params),
        ("DELETE", "/fapi/v1/order") => venue.cancel(&key, &params, now_ms),
        ("GET", "/fapi/v1/openOrders") => Ok(venue.open_orders(&key, &params)),
        ("DELETE", "/fapi/v1/allOpenOrders") => venue.cancel_all(&key, &params, now_ms),
        ("POST", "/fapi/v1/leverage") => venue.set_leverage(&key, &params),
        ("POST", "/fapi/v1/marginType") => venue.set_margin_type(&key, &params),
        ("GET", "/fapi/v1/positionSide/dual") => {
            Ok(format!("{{\"dualSidePosition\":{}}}", venue.modes(&key).dual_side))
        }
        ("POST", "/fapi/v1/positionSide/dual") => venue.set_position_mode(&key, &params),
        ("GET", "/fapi/v1/multiAssetsMargin") => {
            Ok(format!("{{\"multiAssetsMargin\":{}}}", venue.modes(&key).multi_assets))
        }
        ("POST", "/fapi/v1/multiAssetsMargin") => venue.set_multi_assets(&key, &params),
        ("GET", path @ ("/fapi/v2/positionRisk" | "/fapi/v3/positionRisk")) => {
            let v3 = path.starts_with("/fapi/v3");
            Ok(venue.position_risk(&key, &params, v3, |symbol| {
                let book = source.book(symbol, 1).ok()?;
                Some((book.bids.first()?.0 + book.asks.first()?.0) / 2)
            }))
        }
        _ => Err(refuse(405, -1000, format!("{} {} is not served", head.method, head.path))),
    }
}

/// Binance's symbol filters on a new order: `quantity` a multiple of `LOT_SIZE.stepSize`
/// (-1111), the price parameter `price_key` (when sent) a multiple of
/// `PRICE_FILTER.tickSize` (-4014).
fn check_filters(
    source: &dyn crate::market::Source,
    listing: &Listing,
    symbol: &str,
    params: &Params,
    price_key: &str,
) -> Result<(), Refusal> {
    let Some(info) = relisted(source.symbols(), listing).into_iter().find(|i| i.symbol == symbol) else {
        return Ok(());
    };
    let off = |key: &str, unit: i64| -> Result<bool, Refusal> {
        Ok(params.get(key).is_some() && unit > 0 && params.decimal(key)? % unit != 0)
    };
    if off("quantity", info.step_size)? {
        return Err(refuse(400, -1111, "Precision is over the maximum defined for this asset."));
    }
    if off(price_key, info.tick_size)? {
        return Err(refuse(400, -4014, "Price not increased by tick size."));
    }
    Ok(())
}

/// One user-data stream event for the API key it concerns.
#[derive(Clone, Debug)]
pub struct UserEvent {
    /// Whose.
    pub api_key: Arc<str>,
    /// The event's JSON.
    pub json: Arc<str>,
}

/// API keys and every order.
pub struct Venue {
    keys: HashMap<String, String>,
    /// Ed25519 API keys: key → 32-byte public key.
    ed25519: HashMap<String, Vec<u8>>,
    orders: Vec<Order>,
    next_order_id: u64,
    order_limit_10s: u32,
    recent_new_orders: HashMap<String, std::collections::VecDeque<std::time::Instant>>,
    positions: HashMap<(String, String), Position>,
    /// listenKey → (API key, expiry).
    listen_keys: HashMap<String, (String, std::time::Instant)>,
    listen_key_ttl: std::time::Duration,
    events: tokio::sync::broadcast::Sender<UserEvent>,
    /// Per API key: position mode and Multi-Assets mode (Binance's defaults: one-way, off).
    modes: HashMap<String, AccountModes>,
    /// Conditional orders (Algo Service), every key's.
    algos: Vec<AlgoOrder>,
    next_algo_id: u64,
    /// The latest mark price per symbol (from the source's markPrice stream).
    marks: HashMap<String, i64>,
    /// What a triggered conditional order meets in the matching engine.
    trigger_outcome: TriggerOutcome,
    /// Listing changes made while running (`POST /sim/v1/listing`).
    listing: Listing,
}

/// Listing changes made while running, per symbol: what exchangeInfo then serves and new
/// orders are checked against, as when Binance halts a symbol or changes its filters.
pub type Listing = HashMap<String, Relisting>;

/// One symbol's changed listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Relisting {
    /// exchangeInfo's `status` (`TRADING` when unset).
    pub status: Option<String>,
    /// `LOT_SIZE.stepSize`, fixed-point ×10^8 (the source's when unset).
    pub step_size: Option<i64>,
    /// The first leverage bracket's leverage (the source's when unset): the brackets follow.
    pub max_leverage: Option<u32>,
}

/// `symbols` with the listing changes made so far applied (step sizes, leverage).
pub fn relisted(
    mut symbols: Vec<crate::market::SymbolInfo>,
    listing: &Listing,
) -> Vec<crate::market::SymbolInfo> {
    for info in &mut symbols {
        if let Some(r) = listing.get(&info.symbol) {
            info.step_size = r.step_size.unwrap_or(info.step_size);
            info.max_leverage = r.max_leverage.unwrap_or(info.max_leverage);
        }
    }
    symbols
}

/// What a triggered conditional order meets in the matching engine (`--trigger-outcome`):
/// Binance fills a triggered market order against the book, so a thin book fills part of it
/// and a failed check (price protection, margin) rejects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// Filled at the triggering price.
    Filled,
    /// Half filled at the triggering price; the rest expires (FINISHED with less).
    Partial,
    /// REJECTED, with a reason.
    Rejected,
    /// Left TRIGGERING: no order reaches the matching engine.
    Stuck,
}

/// Binance's answer to a setting that took.
const SUCCESS: &str = "{\"code\":200,\"msg\":\"success\"}";

/// A `true`/`false` parameter.
fn flag(params: &Params, name: &str) -> Result<bool, Refusal> {
    match params.required(name)? {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(refuse(
            400,
            -1100,
            format!("Illegal characters found in parameter '{name}'; legal range is 'true|false'."),
        )),
    }
}

/// An account's modes, as `GET /fapi/v1/positionSide/dual` and `/fapi/v1/multiAssetsMargin`
/// report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountModes {
    /// Hedge mode (`dualSidePosition`): a long and a short position per symbol.
    pub dual_side: bool,
    /// Multi-Assets mode: margin shared across assets (no isolated margin).
    pub multi_assets: bool,
}

impl Default for Venue {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

impl Venue {
    /// A venue accepting `keys` (api key → secret), 300 new orders per 10 s per key.
    pub fn new(keys: HashMap<String, String>) -> Self {
        Self {
            keys,
            ed25519: HashMap::new(),
            orders: Vec::new(),
            next_order_id: 1,
            order_limit_10s: 300,
            recent_new_orders: HashMap::new(),
            positions: HashMap::new(),
            listen_keys: HashMap::new(),
            listen_key_ttl: std::time::Duration::from_secs(3_600),
            modes: HashMap::new(),
            events: tokio::sync::broadcast::channel(4_096).0,
            algos: Vec::new(),
            next_algo_id: 1_000_000_001,
            marks: HashMap::new(),
            trigger_outcome: TriggerOutcome::Filled,
            listing: Listing::new(),
        }
    }

    /// Changes `symbol`'s listing from now on: the fields `change` sets.
    pub fn relist(&mut self, symbol: &str, change: Relisting) -> Relisting {
        let entry = self.listing.entry(symbol.to_string()).or_default();
        entry.status = change.status.or(entry.status.take());
        entry.step_size = change.step_size.or(entry.step_size);
        entry.max_leverage = change.max_leverage.or(entry.max_leverage);
        entry.clone()
    }

    /// Listing changes made so far.
    pub fn listing(&self) -> &Listing {
        &self.listing
    }

    /// The same also accepting these Ed25519 keys (key → 32-byte public key).
    pub fn with_ed25519_keys(mut self, keys: HashMap<String, Vec<u8>>) -> Self {
        self.ed25519 = keys;
        self
    }

    /// The same with triggered conditional orders meeting `outcome`.
    pub fn with_trigger_outcome(mut self, outcome: TriggerOutcome) -> Self {
        self.trigger_outcome = outcome;
        self
    }

    /// The same with listenKeys valid for `ttl` after their last keep-alive (Binance: 60 min).
    pub fn with_listen_key_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.listen_key_ttl = ttl;
        self
    }

    /// User-data events as they happen (every key's; a stream filters its own).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// The API key a live listenKey belongs to, or `None` (unknown or expired).
    pub fn listen_key_owner(&self, listen_key: &str) -> Option<String> {
        let (owner, expires) = self.listen_keys.get(listen_key)?;
        (std::time::Instant::now() < *expires).then(|| owner.clone())
    }

    /// `POST`/`PUT`/`DELETE /fapi/v1/listenKey`: create (or return the key's live one,
    /// extended), keep alive, close.
    pub fn listen_key(&mut self, method: &str, key: &str) -> Result<String, Refusal> {
        let now = std::time::Instant::now();
        let live = self
            .listen_keys
            .iter()
            .find(|(_, (owner, exp))| owner == key && now < *exp)
            .map(|(k, _)| k.clone());
        match (method, live) {
            ("POST", Some(lk)) | ("PUT", Some(lk)) => {
                self.listen_keys.insert(lk.clone(), (key.to_string(), now + self.listen_key_ttl));
                Ok(serde_json::json!({ "listenKey": lk }).to_string())
            }
            ("POST", None) => {
                let lk = format!(
                    "lk{:016x}{:08x}",
                    self.next_order_id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    self.listen_keys.len()
                );
                self.next_order_id += 1;
                self.listen_keys.insert(lk.clone(), (key.to_string(), now + self.listen_key_ttl));
                Ok(serde_json::json!({ "listenKey": lk }).to_string())
            }
            ("DELETE", Some(lk)) => {
                self.listen_keys.remove(&lk);
                Ok("{}".into())
            }
            (_, None) => Err(refuse(400, -1125, "This listenKey does not exist.")),
            _ => Err(refuse(405, -1000, "unsupported method")),
        }
    }

    /// Publishes an ORDER_TRADE_UPDATE for `order` (execution type `exec`, last fill).
    fn emit_order(&self, order: &Order, exec: &str, last_qty: i64, last_price: i64) {
        let v = order.value();
        let event = serde_json::json!({
            "e": "ORDER_TRADE_UPDATE",
            "E": order.update_time,
            "T": order.update_time,
            "o": {
                "s": order.symbol, "c": order.client_order_id, "S": v["side"], "o": v["type"],
                "q": v["origQty"], "p": v["price"], "ap": v["avgPrice"], "sp": v["stopPrice"],
                "x": exec, "X": v["status"], "i": order.order_id,
                "l": fixed(i128::from(last_qty)), "z": v["executedQty"], "L": fixed(i128::from(last_price)),
                "T": order.update_time, "R": order.reduce_only, "ps": "BOTH",
            }
        });
        let _ = self
            .events
            .send(UserEvent { api_key: order.api_key.as_str().into(), json: event.to_string().into() });
    }

    /// Publishes an ACCOUNT_UPDATE with `key`'s position in `symbol`.
    fn emit_account(&self, key: &str, symbol: &str, now_ms: i64) {
        let p = self.positions.get(&(key.to_string(), symbol.to_string())).cloned().unwrap_or_default();
        let event = serde_json::json!({
            "e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms,
            "a": { "m": "ORDER", "B": [], "P": [{
                "s": symbol, "pa": fixed(i128::from(p.amount)), "ep": fixed(i128::from(p.entry_price)),
                "mt": if p.isolated { "isolated" } else { "cross" }, "ps": "BOTH",
            }]}
        });
        let _ = self.events.send(UserEvent { api_key: key.into(), json: event.to_string().into() });
    }

    /// The same with `limit` new orders per 10 s per key.
    pub fn with_order_limit(mut self, limit: u32) -> Self {
        self.order_limit_10s = limit;
        self
    }

    /// New orders allowed per 10 s per key.
    pub fn order_limit_10s(&self) -> u32 {
        self.order_limit_10s
    }

    /// Whether any order rests or waits for its trigger (so trades and marks need matching).
    pub fn has_resting(&self) -> bool {
        self.orders.iter().any(|o| o.status.open()) || self.algos.iter().any(AlgoOrder::is_open)
    }

    /// Counts a new order of `key` against the 10 s order limit (wall clock, as Binance's).
    /// New orders `key` placed in the last 10 s (the `ORDERS` count the WebSocket API
    /// reports in `rateLimits`).
    pub fn new_orders_10s(&self, key: &str) -> usize {
        let now = std::time::Instant::now();
        self.recent_new_orders.get(key).map_or(0, |recent| {
            recent.iter().filter(|t| now.duration_since(**t) < std::time::Duration::from_secs(10)).count()
        })
    }

    fn count_new_order(&mut self, key: &str) -> Result<(), Refusal> {
        let now = std::time::Instant::now();
        let recent = self.recent_new_orders.entry(key.to_string()).or_default();
        while recent.front().is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(10)) {
            recent.pop_front();
        }
        if recent.len() >= self.order_limit_10s as usize {
            return Err(refuse(
                429,
                -1015,
                format!(
                    "Too many new orders; current limit is {} orders per TEN_SECONDS.",
                    self.order_limit_10s
                ),
            ));
        }
        recent.push_back(now);
        Ok(())
    }

    /// Checks the API key header, the signature and the timestamp against the exchange's
    /// clocks `[market, wall]`: the market's runs `pace` times as fast as the wall clock's
    /// (the window accepted against it scales with it); returns the key.
    pub fn authenticate(
        &self,
        api_key: Option<&str>,
        params: &Params,
        [now_ms, wall_ms]: [i64; 2],
        pace: f64,
    ) -> Result<String, Refusal> {
        let key = api_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| refuse(401, -2015, "Invalid API-key, IP, or permissions for action."))?;
        if !self.keys.contains_key(key) && !self.ed25519.contains_key(key) {
            return Err(refuse(401, -2015, "Invalid API-key, IP, or permissions for action."));
        }
        let timestamp: i64 = params
            .required("timestamp")?
            .parse()
            .map_err(|_| refuse(400, -1100, "Illegal characters found in parameter 'timestamp'."))?;
        let window = match params.get("recvWindow") {
            None => DEFAULT_RECV_WINDOW_MS,
            Some(w) => w
                .parse::<i64>()
                .ok()
                .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
                .ok_or_else(|| refuse(400, -1131, "recvWindow must be less than 60000"))?,
        };
        let scaled = |ms: i64| (ms as f64 * pace.max(1.0)) as i64;
        let on_market = timestamp <= now_ms + scaled(1_000) && now_ms - timestamp <= scaled(window);
        let on_wall = timestamp <= wall_ms + 1_000 && wall_ms - timestamp <= window;
        if !(on_market || on_wall) {
            return Err(refuse(400, -1021, "Timestamp for this request is outside of the recvWindow."));
        }
        let given = params.required("signature")?;
        let valid = match (self.keys.get(key), self.ed25519.get(key)) {
            (Some(secret), _) => given.eq_ignore_ascii_case(&sign(secret, &params.signed_part)),
            (None, Some(public)) => verify_ed25519(public, &params.signed_part, given),
            (None, None) => false,
        };
        if !valid {
            return Err(refuse(400, -1022, "Signature for this request is not valid."));
        }
        Ok(key.to_string())
    }

    /// `POST /fapi/v1/order`: validates, then fills what the book allows at once.
    pub fn place(&mut self, key: &str, params: &Params, book: &Book, now_ms: i64) -> Result<String, Refusal> {
        let symbol = params.required("symbol")?.to_string();
        let side = match params.required("side")? {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return Err(refuse(400, -1117, "Invalid side.")),
        };
        let kind = match params.required("type")? {
            "MARKET" => OrderType::Market,
            "LIMIT" => OrderType::Limit,
            "STOP" | "STOP_MARKET" | "TAKE_PROFIT" | "TAKE_PROFIT_MARKET" | "TRAILING_STOP_MARKET" => {
                return Err(refuse(
                    400,
                    -4120,
                    "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
                ))
            }
            _ => return Err(refuse(400, -1116, "Invalid orderType.")),
        };
        let orig_qty = params.decimal("quantity")?;
        if orig_qty <= 0 {
            return Err(refuse(400, -4003, "Quantity less than or equal to zero."));
        }
        let price = if kind == OrderType::Limit {
            params.required("timeInForce")?;
            params.decimal("price")?
        } else {
            0
        };
        let client_order_id = match params.get("newClientOrderId") {
            Some(id) if id.is_empty() || id.len() > 36 => {
                return Err(refuse(400, -4015, "Client order id is not valid."))
            }
            Some(id) => id.to_string(),
            None => format!("sim-{}", self.next_order_id),
        };
        if self
            .orders
            .iter()
            .any(|o| o.api_key == key && o.client_order_id == client_order_id && o.status.open())
        {
            return Err(refuse(400, -4116, "ClientOrderId is duplicated."));
        }
        self.count_new_order(key)?;
        let mut order = Order {
            order_id: self.next_order_id,
            client_order_id,
            api_key: key.to_string(),
            symbol,
            side,
            kind,
            price,
            orig_qty,
            executed_qty: 0,
            cum_quote: 0,
            status: Status::New,
            reduce_only: params.get("reduceOnly") == Some("true"),
            update_time: now_ms,
            time: now_ms,
        };
        if order.reduce_only {
            let reducible = self.reducible(&order);
            if reducible == 0 {
                return Err(refuse(400, -2022, "ReduceOnly Order is rejected."));
            }
            order.orig_qty = order.orig_qty.min(reducible);
        }
        self.next_order_id += 1;
        self.emit_order(&order, "NEW", 0, 0);
        let before = (order.executed_qty, order.cum_quote);
        sweep(&mut order, book, now_ms);
        self.book_fill(&order, before);
        if order.executed_qty > 0 {
            let avg = (order.cum_quote * i128::from(SCALE) / i128::from(order.executed_qty)) as i64;
            self.emit_order(
                &Order {
                    status: if order.remaining() == 0 { Status::Filled } else { Status::PartiallyFilled },
                    ..order.clone()
                },
                "TRADE",
                order.executed_qty,
                avg,
            );
            self.emit_account(key, &order.symbol, now_ms);
        }
        if order.status == Status::Expired {
            self.emit_order(&order, "EXPIRED", 0, 0);
        }
        let answer = order.json(Answer::Placed);
        self.orders.push(order);
        Ok(answer)
    }

    /// The order `orderId` or `origClientOrderId` names, of this key.
    fn find(&mut self, key: &str, params: &Params) -> Result<&mut Order, Refusal> {
        let symbol = params.required("symbol")?;
        let by_id = params.get("orderId").and_then(|v| v.parse::<u64>().ok());
        let by_client = params.get("origClientOrderId");
        if by_id.is_none() && by_client.is_none() {
            return Err(refuse(400, -1102, "Either orderId or origClientOrderId must be sent."));
        }
        self.orders
            .iter_mut()
            .rev()
            .find(|o| {
                o.api_key == key
                    && o.symbol == symbol
                    && by_id.is_none_or(|id| o.order_id == id)
                    && by_client.is_none_or(|c| o.client_order_id == c)
            })
            .ok_or_else(|| refuse(400, -2013, "Order does not exist."))
    }

    /// `GET /fapi/v1/order`.
    pub fn query(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        Ok(self.find(key, params)?.json(Answer::Queried))
    }

    /// `DELETE /fapi/v1/order`: an open order becomes CANCELED; anything else is refused.
    pub fn cancel(&mut self, key: &str, params: &Params, now_ms: i64) -> Result<String, Refusal> {
        let order = self.find(key, params)?;
        if !order.status.open() {
            return Err(refuse(400, -2011, "Unknown order sent."));
        }
        order.status = Status::Canceled;
        order.update_time = now_ms;
        let order = order.clone();
        self.emit_order(&order, "CANCELED", 0, 0);
        Ok(order.json(Answer::Cancelled))
    }

    /// How much of `order`'s side would reduce its key's position in its symbol.
    fn reducible(&self, order: &Order) -> i64 {
        self.reducible_by(&order.api_key, &order.symbol, order.side)
    }

    /// How much an order of `side` would reduce `key`'s position in `symbol`.
    fn reducible_by(&self, key: &str, symbol: &str, side: Side) -> i64 {
        let amount = self.positions.get(&(key.to_string(), symbol.to_string())).map_or(0, |p| p.amount);
        match side {
            Side::Sell if amount > 0 => amount,
            Side::Buy if amount < 0 => -amount,
            _ => 0,
        }
    }

    /// Books what `order` filled since `before` (executed qty, cumulative quote) into its
    /// key's position.
    fn book_fill(&mut self, order: &Order, before: (i64, i128)) {
        let qty = order.executed_qty - before.0;
        if qty == 0 {
            return;
        }
        let price = ((order.cum_quote - before.1) * i128::from(SCALE) / i128::from(qty)) as i64;
        let position = self.positions.entry((order.api_key.clone(), order.symbol.clone())).or_default();
        position.fill(order.side, price, qty);
    }

    /// `POST /fapi/v1/leverage`.
    pub fn set_leverage(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        let symbol = params.required("symbol")?;
        let leverage: u32 = params
            .required("leverage")?
            .parse()
            .ok()
            .filter(|l| (1..=125).contains(l))
            .ok_or_else(|| refuse(400, -4028, "Leverage is not valid"))?;
        self.positions.entry((key.to_string(), symbol.to_string())).or_default().leverage = leverage;
        Ok(serde_json::json!({"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol})
            .to_string())
    }

    /// `POST /fapi/v1/marginType`; not allowed while a position is open.
    pub fn set_margin_type(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        let symbol = params.required("symbol")?;
        let isolated = match params.required("marginType")? {
            "ISOLATED" => true,
            "CROSSED" => false,
            _ => return Err(refuse(400, -4044, "The margin type cannot be recognized.")),
        };
        let position = self.positions.entry((key.to_string(), symbol.to_string())).or_default();
        if position.isolated == isolated {
            return Err(refuse(400, -4046, "No need to change margin type."));
        }
        if position.amount != 0 {
            return Err(refuse(400, -4048, "Margin type cannot be changed if there exists position."));
        }
        position.isolated = isolated;
        Ok(SUCCESS.into())
    }

    /// `key`'s account modes.
    pub fn modes(&self, key: &str) -> AccountModes {
        self.modes.get(key).copied().unwrap_or_default()
    }

    /// `POST /fapi/v1/positionSide/dual`: Hedge Mode on (`true`) or off. As Binance does, a
    /// change to the mode already set is refused (-4059), and so is one while a position
    /// (-4068) or an order (-4067) is open.
    pub fn set_position_mode(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        let hedge = flag(params, "dualSidePosition")?;
        if self.modes(key).dual_side == hedge {
            return Err(refuse(400, -4059, "No need to change position side."));
        }
        if self.positions.iter().any(|((k, _), p)| k == key && p.amount != 0) {
            return Err(refuse(400, -4068, "Position side cannot be changed if there exists position."));
        }
        if self.orders.iter().any(|o| o.api_key == key && o.status.open()) {
            return Err(refuse(400, -4067, "Position side cannot be changed if there exists open orders."));
        }
        self.modes.entry(key.to_string()).or_default().dual_side = hedge;
        Ok(SUCCESS.into())
    }

    /// `POST /fapi/v1/multiAssetsMargin`: Multi-Assets Mode on or off (always accepted here:
    /// Binance's refusals for it are not modelled).
    pub fn set_multi_assets(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        self.modes.entry(key.to_string()).or_default().multi_assets = flag(params, "multiAssetsMargin")?;
        Ok(SUCCESS.into())
    }

    /// `GET /fapi/v2/positionRisk` (one symbol, or every symbol with a position or setting)
    /// and, `v3`, `/fapi/v3/positionRisk` (positions only, without leverage and margin
    /// type, with margins), in the fields Binance's SDK 18.1.0 models. The mark is the
    /// source's markPrice, else `mark` (the book's mid).
    pub fn position_risk(
        &self,
        key: &str,
        params: &Params,
        v3: bool,
        mark: impl Fn(&str) -> Option<i64>,
    ) -> String {
        let symbol = params.get("symbol");
        let mut rows: Vec<(&String, &Position)> = self
            .positions
            .iter()
            .filter(|((k, s), p)| k == key && symbol.is_none_or(|want| s == want) && !(v3 && p.amount == 0))
            .map(|((_, s), p)| (s, p))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let rows: Vec<String> = rows
            .into_iter()
            .map(|(s, p)| {
                let mark = self.marks.get(s).copied().or_else(|| mark(s)).unwrap_or(p.entry_price);
                let pnl = i128::from(p.amount) * i128::from(mark - p.entry_price) / i128::from(SCALE);
                let notional = i128::from(p.amount) * i128::from(mark) / i128::from(SCALE);
                let mut row = serde_json::json!({
                    "symbol": s,
                    "positionSide": "BOTH",
                    "positionAmt": fixed(i128::from(p.amount)),
                    "entryPrice": fixed(i128::from(p.entry_price)),
                    "markPrice": fixed(i128::from(mark)),
                    "unRealizedProfit": fixed(pnl),
                    "notional": fixed(notional),
                    "breakEvenPrice": fixed(i128::from(p.entry_price)),
                    "liquidationPrice": fixed(0),
                    "updateTime": 0,
                });
                let margin = notional.abs() / i128::from(p.leverage.max(1));
                if v3 {
                    row["marginAsset"] = "USDT".into();
                    row["maintMargin"] = fixed(notional.abs() / 200).into();
                    row["openOrderInitialMargin"] = fixed(0).into();
                    row["askNotional"] = fixed(0).into();
                    row["bidNotional"] = fixed(0).into();
                    row["adl"] = 0.into();
                    row["initialMargin"] = fixed(margin).into();
                    row["positionInitialMargin"] = fixed(margin).into();
                    row["isolatedMargin"] = fixed(if p.isolated { margin + pnl } else { 0 }).into();
                    row["isolatedWallet"] = fixed(if p.isolated { margin } else { 0 }).into();
                } else {
                    row["leverage"] = p.leverage.to_string().into();
                    row["marginType"] = (if p.isolated { "isolated" } else { "cross" }).into();
                    row["isolatedMargin"] = fixed(if p.isolated { margin + pnl } else { 0 }).into();
                    row["isolatedWallet"] = fixed(if p.isolated { margin } else { 0 }).into();
                    row["isAutoAddMargin"] = "false".into();
                    row["maxNotionalValue"] = fixed(1_000_000 * i128::from(SCALE)).into();
                }
                row.to_string()
            })
            .collect();
        format!("[{}]", rows.join(","))
    }

    /// `POST /fapi/v1/algoOrder`: a conditional order waits for its trigger. Refused when the
    /// account already holds [`MAX_OPEN_ALGO_ORDERS`] (-4045), when its client id is taken
    /// by an open one (-4116), or when the price (the mark, else the book's mid) is already
    /// past the trigger (-2021).
    pub fn place_algo(
        &mut self,
        key: &str,
        params: &Params,
        mid: Option<i64>,
        now_ms: i64,
    ) -> Result<String, Refusal> {
        let order = AlgoOrder::from_request(params, key, self.next_algo_id, now_ms)?;
        let open = self.algos.iter().filter(|a| a.api_key == key && a.is_open());
        if open.clone().any(|a| a.client_algo_id == order.client_algo_id) {
            return Err(refuse(400, -4116, "ClientOrderId is duplicated."));
        }
        if open.count() >= MAX_OPEN_ALGO_ORDERS {
            return Err(refuse(400, -4045, "Reach max stop order limit."));
        }
        let reference = match order.working_type {
            WorkingType::MarkPrice => self.marks.get(&order.symbol).copied().or(mid),
            WorkingType::ContractPrice => mid,
        };
        if reference.is_some_and(|price| order.reached(price)) {
            return Err(refuse(400, -2021, "Order would immediately trigger."));
        }
        self.count_new_order(key)?;
        self.next_algo_id += 1;
        self.emit_algo(&order);
        let answer = order.answer(AlgoAnswer::Placed);
        self.algos.push(order);
        Ok(answer)
    }

    /// The conditional order `algoId` or `clientAlgoId` names, of this key (the latest).
    fn find_algo(&mut self, key: &str, params: &Params) -> Result<&mut AlgoOrder, Refusal> {
        let by_id = params.get("algoId").and_then(|v| v.parse::<u64>().ok());
        let by_client = params.get("clientAlgoId");
        if by_id.is_none() && by_client.is_none() {
            return Err(refuse(400, -1102, "Either algoId or clientAlgoId must be sent."));
        }
        self.algos
            .iter_mut()
            .rev()
            .find(|a| {
                a.api_key == key
                    && by_id.is_none_or(|id| a.algo_id == id)
                    && by_client.is_none_or(|c| a.client_algo_id == c)
            })
            .ok_or_else(|| refuse(400, -2013, "Order does not exist."))
    }

    /// `GET /fapi/v1/algoOrder`.
    pub fn query_algo(&mut self, key: &str, params: &Params) -> Result<String, Refusal> {
        Ok(self.find_algo(key, params)?.answer(AlgoAnswer::Queried))
    }

    /// `DELETE /fapi/v1/algoOrder`: a conditional order still waiting becomes CANCELED.
    pub fn cancel_algo(&mut self, key: &str, params: &Params, now_ms: i64) -> Result<String, Refusal> {
        let algo = self.find_algo(key, params)?;
        if !algo.is_open() {
            return Err(refuse(400, -2011, "Unknown order sent."));
        }
        algo.status = AlgoStatus::Canceled;
        algo.update_time = now_ms;
        let algo = algo.clone();
        self.emit_algo(&algo);
        Ok(serde_json::json!({
            "algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success",
        })
        .to_string())
    }

    /// `GET /fapi/v1/openAlgoOrders` (`open_only`; one symbol or all) and
    /// `/fapi/v1/allAlgoOrders`.
    pub fn algo_orders(&self, key: &str, params: &Params, open_only: bool) -> String {
        let symbol = params.get("symbol");
        let rows: Vec<String> = self
            .algos
            .iter()
            .filter(|a| {
                a.api_key == key && (!open_only || a.is_open()) && symbol.is_none_or(|s| a.symbol == s)
            })
            .map(|a| a.answer(AlgoAnswer::Listed))
            .collect();
        format!("[{}]", rows.join(","))
    }

    /// `DELETE /fapi/v1/algoOpenOrders`: cancels every waiting conditional order of the symbol.
    pub fn cancel_all_algo(&mut self, key: &str, params: &Params, now_ms: i64) -> Result<String, Refusal> {
        let symbol = params.required("symbol")?;
        let mut cancelled = Vec::new();
        for a in self.algos.iter_mut().filter(|a| a.api_key == key && a.symbol == symbol && a.is_open()) {
            a.status = AlgoStatus::Canceled;
            a.update_time = now_ms;
            cancelled.push(a.clone());
        }
        for a in &cancelled {
            self.emit_algo(a);
        }
        Ok(SUCCESS.into())
    }

    /// A mark price from the source: conditional orders working on the mark trigger.
    pub fn on_mark(&mut self, symbol: &str, price: i64, now_ms: i64) {
        match self.marks.get_mut(symbol) {
            Some(mark) => *mark = price,
            None => {
                self.marks.insert(symbol.to_string(), price);
            }
        }
        self.trigger_reached(symbol, price, now_ms, |w| w == WorkingType::MarkPrice);
    }

    /// Triggers the waiting conditional orders of `symbol` that `price` reaches, among those
    /// `watches` picks by working type.
    fn trigger_reached(
        &mut self,
        symbol: &str,
        price: i64,
        now_ms: i64,
        watches: impl Fn(WorkingType) -> bool,
    ) {
        for i in 0..self.algos.len() {
            let a = &self.algos[i];
            if a.symbol == symbol && a.is_open() && watches(a.working_type) && a.reached(price) {
                self.trigger(i, price, now_ms);
            }
        }
    }

    /// Conditional order `i` triggers at `price`: TRIGGERING, then a reduce-only market
    /// order in the matching engine (TRIGGERED), filled at `price` as `trigger_outcome`
    /// says (FINISHED), or REJECTED; EXPIRED when a reduce-only order has nothing to reduce.
    fn trigger(&mut self, i: usize, price: i64, now_ms: i64) {
        let mut algo = self.algos[i].clone();
        algo.status = AlgoStatus::Triggering;
        algo.trigger_time = now_ms;
        algo.update_time = now_ms;
        self.emit_algo(&algo);
        let reducible = self.reducible_by(&algo.api_key, &algo.symbol, algo.side);
        let qty = if algo.reduce_only { algo.quantity.min(reducible) } else { algo.quantity };
        if self.trigger_outcome == TriggerOutcome::Stuck {
            self.algos[i] = algo;
            return;
        }
        if self.trigger_outcome == TriggerOutcome::Rejected {
            algo.status = AlgoStatus::Rejected;
            algo.reason =
                "Order was rejected by the matching engine (exchange-sim --trigger-outcome rejected).".into();
        } else if qty == 0 {
            algo.status = AlgoStatus::Expired;
        } else {
            let mut order = Order {
                order_id: self.next_order_id,
                client_order_id: format!("autoalgo-{}", algo.algo_id),
                api_key: algo.api_key.clone(),
                symbol: algo.symbol.clone(),
                side: algo.side,
                kind: OrderType::Market,
                price: 0,
                orig_qty: qty,
                executed_qty: 0,
                cum_quote: 0,
                status: Status::New,
                reduce_only: algo.reduce_only,
                update_time: now_ms,
                time: now_ms,
            };
            self.next_order_id += 1;
            algo.status = AlgoStatus::Triggered;
            algo.actual_order_id = Some(order.order_id);
            self.emit_algo(&algo);
            self.emit_order(&order, "NEW", 0, 0);
            let fill = if self.trigger_outcome == TriggerOutcome::Partial { (qty / 2).max(1) } else { qty };
            order.fill(price, fill, now_ms);
            self.book_fill(&order, (0, 0));
            self.emit_order(&order, "TRADE", fill, price);
            self.emit_account(&algo.api_key, &algo.symbol, now_ms);
            if order.remaining() > 0 {
                order.status = Status::Expired;
                self.emit_order(&order, "EXPIRED", 0, 0);
            }
            algo.status = AlgoStatus::Finished;
            algo.actual_qty = order.executed_qty;
            algo.actual_price = price;
            self.orders.push(order);
        }
        self.emit_algo(&algo);
        self.algos[i] = algo;
    }

    /// Publishes an ALGO_UPDATE for `algo`.
    fn emit_algo(&self, algo: &AlgoOrder) {
        let event =
            UserEvent { api_key: algo.api_key.as_str().into(), json: algo.event().to_string().into() };
        let _ = self.events.send(event);
    }

    /// `DELETE /fapi/v1/allOpenOrders`: cancels every open order of the symbol.
    pub fn cancel_all(&mut self, key: &str, params: &Params, now_ms: i64) -> Result<String, Refusal> {
        let symbol = params.required("symbol")?;
        for o in self.orders.iter_mut().filter(|o| o.api_key == key && o.symbol == symbol && o.status.open())
        {
            o.status = Status::Canceled;
            o.update_time = now_ms;
        }
        Ok("{\"code\":200,\"msg\":\"The operation of cancel all open order is done.\"}".into())
    }

    /// `GET /fapi/v1/openOrders` (one symbol, or all).
    pub fn open_orders(&self, key: &str, params: &Params) -> String {
        let symbol = params.get("symbol");
        let open: Vec<String> = self
            .orders
            .iter()
            .filter(|o| o.api_key == key && o.status.open() && symbol.is_none_or(|s| o.symbol == s))
            .map(|o| o.json(Answer::Queried))
            .collect();
        format!("[{}]", open.join(","))
    }

    /// A trade printed on the market: resting limit orders it reaches fill against it in
    /// price-time priority (best price first, then the oldest), up to its quantity; then the
    /// conditional orders working on the last price (or on a mark the source never sent)
    /// that it reaches trigger.
    pub fn on_trade(&mut self, symbol: &str, price: i64, qty: i64, now_ms: i64) {
        self.match_limits(symbol, price, qty, now_ms);
        let no_mark = !self.marks.contains_key(symbol);
        self.trigger_reached(symbol, price, now_ms, |w| w == WorkingType::ContractPrice || no_mark);
    }

    fn match_limits(&mut self, symbol: &str, price: i64, qty: i64, now_ms: i64) {
        let mut left = qty;
        let mut resting: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.symbol == symbol && o.status.open() && reaches(o, price)
            })
            .collect();
        // Best price first (highest bid, lowest ask), then time (order id).
        resting.sort_by_key(|&i| {
            let o = &self.orders[i];
            let rank = if o.side == Side::Buy { -o.price } else { o.price };
            (rank, o.order_id)
        });
        for i in resting {
            if left == 0 {
                break;
            }
            let mut order = self.orders[i].clone();
            let mut fill = order.remaining().min(left);
            if order.reduce_only {
                fill = fill.min(self.reducible(&order));
                if fill == 0 {
                    // Nothing left to reduce: a reduce-only order expires.
                    order.status = Status::Expired;
                    order.update_time = now_ms;
                    self.emit_order(&order, "EXPIRED", 0, 0);
                    self.orders[i] = order;
                    continue;
                }
            }
            let before = (order.executed_qty, order.cum_quote);
            order.fill(price, fill, now_ms);
            self.book_fill(&order, before);
            self.emit_order(&order, "TRADE", fill, price);
            self.emit_account(&order.api_key, &order.symbol, now_ms);
            self.orders[i] = order;
            left -= fill;
        }
    }
}

/// Whether a trade at `price` reaches `order`.
fn reaches(order: &Order, price: i64) -> bool {
    match (order.kind, order.side) {
        (OrderType::Limit, Side::Buy) => price <= order.price,
        (OrderType::Limit, Side::Sell) => price >= order.price,
        (OrderType::Market, _) => false,
    }
}

/// Fills `order` against the opposite side of `book` as far as its price allows; a market
/// order's unfilled rest expires.
fn sweep(order: &mut Order, book: &Book, now_ms: i64) {
    let levels = if order.side == Side::Buy { &book.asks } else { &book.bids };
    for &(price, qty) in levels {
        if order.remaining() == 0 {
            break;
        }
        let acceptable = match (order.kind, order.side) {
            (OrderType::Market, _) => true,
            (_, Side::Buy) => price <= order.price,
            (_, Side::Sell) => price >= order.price,
        };
        if !acceptable {
            break;
        }
        order.fill(price, order.remaining().min(qty), now_ms);
    }
    if order.kind == OrderType::Market && order.remaining() > 0 {
        order.status = Status::Expired;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

    #[test]
    fn signatures_match_binances_documented_examples() {
        // USDⓈ-M futures "SIGNED endpoint examples for POST /fapi/v1/order" (HMAC).
        assert_eq!(
            sign(SECRET, "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"),
            "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
        // Spot API's example (same scheme).
        assert_eq!(
            sign(
                "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
                "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
            ),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    fn venue() -> Venue {
        Venue::new(HashMap::from([(KEY.to_string(), SECRET.to_string())]))
    }

    fn signed(query: &str, now: i64) -> String {
        let q = format!("{query}&timestamp={now}");
        format!("{q}&signature={}", sign(SECRET, &q))
    }

    #[test]
    fn requests_are_authenticated_by_key_signature_and_time() {
        let v = venue();
        let now = 1_700_000_000_000;
        let ok = signed("symbol=BTCUSDT", now);
        assert_eq!(v.authenticate(Some(KEY), &Params::new(&ok, ""), [now + 10, 0], 1.0).unwrap(), KEY);
        // Split between query and body, the signature covers the query then the body,
        // concatenated as they are (Binance's totalParams).
        let body = format!("timestamp={now}");
        let body = format!("{body}&signature={}", sign(SECRET, &format!("symbol=BTCUSDT{body}")));
        assert!(v.authenticate(Some(KEY), &Params::new("symbol=BTCUSDT", &body), [now, 0], 1.0).is_ok());
        let tampered = ok.replace("BTCUSDT", "ETHUSDT");
        assert_eq!(
            v.authenticate(Some(KEY), &Params::new(&tampered, ""), [now, 0], 1.0).unwrap_err().code,
            -1022
        );
        assert_eq!(
            v.authenticate(Some("nope"), &Params::new(&ok, ""), [now, 0], 1.0).unwrap_err().code,
            -2015
        );
        assert_eq!(v.authenticate(None, &Params::new(&ok, ""), [now, 0], 1.0).unwrap_err().code, -2015);
        assert_eq!(
            v.authenticate(Some(KEY), &Params::new(&ok, ""), [now + 6_000, 0], 1.0).unwrap_err().code,
            -1021
        );
        assert_eq!(
            v.authenticate(Some(KEY), &Params::new(&ok, ""), [now - 2_000, 0], 1.0).unwrap_err().code,
            -1021
        );
        assert!(
            v.authenticate(Some(KEY), &Params::new(&ok, ""), [now + 6_000, 0], 60.0).is_ok(),
            "a 60× clock, a 60× window"
        );
        // Signed with the wall clock (as Binance's SDK signs), far from the market's.
        assert!(v.authenticate(Some(KEY), &Params::new(&ok, ""), [42, now + 10], 60.0).is_ok());
        assert_eq!(
            v.authenticate(Some(KEY), &Params::new(&ok, ""), [42, now + 6_000], 60.0).unwrap_err().code,
            -1021,
            "the wall clock's window does not scale"
        );
    }

    fn book() -> Book {
        let p = |x: i64| x * SCALE;
        Book { bids: vec![(p(99), p(1)), (p(98), p(2))], asks: vec![(p(101), p(1)), (p(102), p(2))] }
    }

    fn place(v: &mut Venue, query: &str) -> Result<serde_json::Value, Refusal> {
        v.place(KEY, &Params::new(query, ""), &book(), 0).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn a_limit_order_fills_partly_at_once_then_from_later_trades_in_price_time_priority() {
        let mut v = venue();
        let o = place(
            &mut v,
            "symbol=X&side=BUY&type=LIMIT&timeInForce=GTC&quantity=3&price=101&newClientOrderId=a",
        )
        .unwrap();
        assert_eq!(
            (o["status"].as_str(), o["executedQty"].as_str()),
            (Some("PARTIALLY_FILLED"), Some("1.00000000"))
        );
        let worse = place(
            &mut v,
            "symbol=X&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100&newClientOrderId=b",
        )
        .unwrap();
        assert_eq!(worse["status"], "NEW");
        let dup = place(
            &mut v,
            "symbol=X&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100&newClientOrderId=b",
        );
        assert_eq!(dup.unwrap_err().code, -4116);
        // A trade of 1.5 at 100 reaches both; the better price (101) takes it first.
        v.on_trade("X", 100 * SCALE, 3 * SCALE / 2, 5);
        let a: serde_json::Value =
            serde_json::from_str(&v.query(KEY, &Params::new("symbol=X&origClientOrderId=a", "")).unwrap())
                .unwrap();
        assert_eq!(
            (a["status"].as_str(), a["executedQty"].as_str()),
            (Some("PARTIALLY_FILLED"), Some("2.50000000"))
        );
        v.on_trade("X", 100 * SCALE, SCALE, 6);
        let a: serde_json::Value =
            serde_json::from_str(&v.query(KEY, &Params::new("symbol=X&origClientOrderId=a", "")).unwrap())
                .unwrap();
        assert_eq!(a["status"], "FILLED");
        assert_eq!(a["avgPrice"], "100.33333333", "(101 + 1.5×100 + 0.5×100) / 3");
        let b: serde_json::Value =
            serde_json::from_str(&v.query(KEY, &Params::new("symbol=X&origClientOrderId=b", "")).unwrap())
                .unwrap();
        assert_eq!(b["executedQty"], "0.50000000", "time and price priority: b gets what a left");
        let cancelled: serde_json::Value = serde_json::from_str(
            &v.cancel(KEY, &Params::new("symbol=X&origClientOrderId=b", ""), 7).unwrap(),
        )
        .unwrap();
        assert_eq!(cancelled["status"], "CANCELED");
        assert_eq!(
            v.cancel(KEY, &Params::new("symbol=X&origClientOrderId=b", ""), 8).unwrap_err().code,
            -2011
        );
        assert_eq!(v.open_orders(KEY, &Params::new("symbol=X", "")), "[]");
    }

    #[test]
    fn market_orders_sweep_the_book_and_conditional_ones_are_sent_to_the_algo_service() {
        let mut v = venue();
        let m = place(&mut v, "symbol=X&side=SELL&type=MARKET&quantity=2").unwrap();
        assert_eq!((m["status"].as_str(), m["avgPrice"].as_str()), (Some("FILLED"), Some("98.50000000")));
        let thin = place(&mut v, "symbol=X&side=BUY&type=MARKET&quantity=5").unwrap();
        assert_eq!(
            (thin["status"].as_str(), thin["executedQty"].as_str()),
            (Some("EXPIRED"), Some("3.00000000"))
        );
        for kind in ["STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"] {
            let query = format!("symbol=X&side=SELL&type={kind}&quantity=1&stopPrice=95&reduceOnly=true");
            assert_eq!(place(&mut v, &query).unwrap_err().code, -4120, "{kind}");
        }
    }

    fn algo(v: &mut Venue, query: &str) -> Result<serde_json::Value, Refusal> {
        let query = format!("algoType=CONDITIONAL&symbol=X&reduceOnly=true&{query}");
        v.place_algo(KEY, &Params::new(&query, ""), Some(100 * SCALE), 0)
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    fn algo_statuses(events: &mut tokio::sync::broadcast::Receiver<UserEvent>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
            if v["e"] == "ALGO_UPDATE" {
                seen.push(v["o"]["X"].as_str().unwrap().to_string());
            }
        }
        seen
    }

    #[test]
    fn conditional_orders_wait_for_their_price_then_close_through_the_matching_engine() {
        let mut v = venue();
        let mut events = v.subscribe_events();
        place(&mut v, "symbol=X&side=BUY&type=MARKET&quantity=1").unwrap(); // long 1 @ 101
        let stop =
            algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=95&quantity=1&clientAlgoId=s").unwrap();
        assert_eq!(
            (stop["algoStatus"].as_str(), stop["workingType"].as_str()),
            (Some("NEW"), Some("CONTRACT_PRICE"))
        );
        let take = algo(&mut v, "side=SELL&type=TAKE_PROFIT_MARKET&triggerPrice=110&quantity=1&workingType=MARK_PRICE&clientAlgoId=t").unwrap();
        assert_eq!(take["algoStatus"], "NEW");
        // Past the trigger already (the mid is 100): refused.
        assert_eq!(
            algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=101&quantity=1").unwrap_err().code,
            -2021
        );
        assert_eq!(
            algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=90&quantity=1&clientAlgoId=s")
                .unwrap_err()
                .code,
            -4116
        );
        let open = |v: &Venue| v.algo_orders(KEY, &Params::new("", ""), true).matches("algoId").count();
        assert_eq!(open(&v), 2);

        // A trade at 110 does not reach a mark-price take profit; a mark of 110 does.
        v.on_mark("X", 100 * SCALE, 1);
        v.on_trade("X", 110 * SCALE, SCALE, 2);
        v.on_trade("X", 96 * SCALE, SCALE, 3);
        assert_eq!(open(&v), 2, "nothing reached yet");
        v.on_mark("X", 110 * SCALE, 4);
        let t = &v.algos[1];
        assert_eq!((t.status, t.actual_qty, t.actual_price), (AlgoStatus::Finished, SCALE, 110 * SCALE));
        let triggered = v.orders.last().unwrap();
        assert_eq!((triggered.order_id, triggered.status), (t.actual_order_id.unwrap(), Status::Filled));
        assert_eq!(algo_statuses(&mut events), ["NEW", "NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]);
        // The sibling, on a flat position, ends EXPIRED when it triggers.
        v.on_trade("X", 95 * SCALE, SCALE, 5);
        assert_eq!(v.algos[0].status, AlgoStatus::Expired);
        assert_eq!(algo_statuses(&mut events), ["TRIGGERING", "EXPIRED"]);
        assert_eq!(open(&v), 0);

        // Cancels: one, then all of a symbol; an ended order cannot be cancelled.
        let c = algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=90&quantity=1&clientAlgoId=c").unwrap();
        let by_id = format!("algoId={}", c["algoId"]);
        assert!(v.query_algo(KEY, &Params::new(&by_id, "")).unwrap().contains("\"NEW\""));
        assert!(v.cancel_algo(KEY, &Params::new(&by_id, ""), 6).unwrap().contains("\"success\""));
        assert_eq!(v.cancel_algo(KEY, &Params::new(&by_id, ""), 6).unwrap_err().code, -2011);
        algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=90&quantity=1&clientAlgoId=d").unwrap();
        v.cancel_all_algo(KEY, &Params::new("symbol=X", ""), 7).unwrap();
        assert_eq!(open(&v), 0);
        assert_eq!(v.algo_orders(KEY, &Params::new("symbol=X", ""), false).matches("algoId").count(), 4);
    }

    #[test]
    fn an_account_holds_at_most_200_conditional_orders_and_triggers_can_fail() {
        let mut v = venue();
        for i in 0..MAX_OPEN_ALGO_ORDERS {
            algo(&mut v, &format!("side=SELL&type=STOP_MARKET&triggerPrice=90&quantity=1&clientAlgoId=a{i}"))
                .unwrap();
        }
        let over = algo(&mut v, "side=SELL&type=STOP_MARKET&triggerPrice=90&quantity=1").unwrap_err();
        assert_eq!((over.code, over.msg.as_str()), (-4045, "Reach max stop order limit."));

        for (outcome, status, filled) in [
            (TriggerOutcome::Partial, AlgoStatus::Finished, 1),
            (TriggerOutcome::Rejected, AlgoStatus::Rejected, 0),
        ] {
            let mut v = venue().with_trigger_outcome(outcome);
            place(&mut v, "symbol=X&side=SELL&type=MARKET&quantity=2").unwrap(); // short 2
            algo(&mut v, "side=BUY&type=STOP_MARKET&triggerPrice=105&quantity=2").unwrap();
            v.on_trade("X", 106 * SCALE, SCALE, 1);
            let a = &v.algos[0];
            assert_eq!((a.status, a.actual_qty), (status, filled * SCALE), "{outcome:?}");
            assert_eq!(a.reason.is_empty(), status != AlgoStatus::Rejected);
        }
    }

    #[test]
    fn fills_build_positions_and_reduce_only_orders_only_reduce() {
        let mut v = venue();
        assert_eq!(
            place(&mut v, "symbol=X&side=SELL&type=MARKET&quantity=1&reduceOnly=true").unwrap_err().code,
            -2022
        );
        place(&mut v, "symbol=X&side=BUY&type=MARKET&quantity=2").unwrap(); // 1 @ 101, 1 @ 102
        let risk = |v: &Venue| -> serde_json::Value {
            serde_json::from_str(
                &v.position_risk(KEY, &Params::new("symbol=X", ""), false, |_| Some(100 * SCALE)),
            )
            .unwrap()
        };
        assert_eq!(
            (risk(&v)[0]["positionAmt"].as_str(), risk(&v)[0]["entryPrice"].as_str()),
            (Some("2.00000000"), Some("101.50000000"))
        );
        assert_eq!(risk(&v)[0]["unRealizedProfit"], "-3.00000000");
        assert_eq!(risk(&v)[0]["notional"], "200.00000000");
        let v3: serde_json::Value =
            serde_json::from_str(&v.position_risk(KEY, &Params::new("", ""), true, |_| Some(100 * SCALE)))
                .unwrap();
        assert_eq!(
            (v3[0]["positionAmt"].as_str(), v3[0]["initialMargin"].as_str()),
            (Some("2.00000000"), Some("10.00000000"))
        );
        assert!(v3[0].get("leverage").is_none(), "v3 has no leverage (the engine reads v2's)");
        assert_eq!(
            v.set_margin_type(KEY, &Params::new("symbol=X&marginType=ISOLATED", "")).unwrap_err().code,
            -4048
        );
        // A reduce-only sell of 5 is cut to the 2 held.
        let closed = place(&mut v, "symbol=X&side=SELL&type=MARKET&quantity=5&reduceOnly=true").unwrap();
        assert_eq!(closed["executedQty"], "2.00000000");
        assert_eq!(risk(&v)[0]["positionAmt"], "0.00000000");
        assert!(v.set_margin_type(KEY, &Params::new("symbol=X&marginType=ISOLATED", "")).is_ok());
        assert_eq!(
            v.set_margin_type(KEY, &Params::new("symbol=X&marginType=ISOLATED", "")).unwrap_err().code,
            -4046
        );
        assert!(v.set_leverage(KEY, &Params::new("symbol=X&leverage=7", "")).is_ok());
        assert_eq!(risk(&v)[0]["leverage"], "7");
        assert_eq!(v.set_leverage(KEY, &Params::new("symbol=X&leverage=200", "")).unwrap_err().code, -4028);
        // A stop with nothing to reduce expires when triggered.
        algo(&mut v, "side=SELL&type=STOP_MARKET&quantity=1&triggerPrice=95").unwrap();
        v.on_trade("X", 90 * SCALE, SCALE, 1);
        assert_eq!(v.algos.last().unwrap().status, AlgoStatus::Expired);
    }

    #[test]
    fn new_orders_past_the_ten_second_limit_get_429() {
        let mut v = venue().with_order_limit(2);
        for id in ["a", "b"] {
            assert!(place(
                &mut v,
                &format!(
                    "symbol=X&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=90&newClientOrderId={id}"
                )
            )
            .is_ok());
        }
        let third = place(
            &mut v,
            "symbol=X&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=90&newClientOrderId=c",
        );
        let refusal = third.unwrap_err();
        assert_eq!((refusal.status, refusal.code), (429, -1015));
    }

    #[test]
    fn bad_orders_are_refused_with_binances_codes() {
        let mut v = venue();
        for (query, code) in [
            ("symbol=X&side=UP&type=MARKET&quantity=1", -1117),
            ("symbol=X&side=BUY&type=ICEBERG&quantity=1", -1116),
            ("symbol=X&side=BUY&type=LIMIT&quantity=1&price=100", -1102),
            ("symbol=X&side=BUY&type=MARKET&quantity=0", -4003),
            ("symbol=X&side=BUY&type=MARKET&quantity=abc", -1100),
            ("symbol=X&side=BUY&type=STOP_MARKET&quantity=1", -4120),
            ("side=BUY&type=MARKET&quantity=1", -1102),
        ] {
            assert_eq!(place(&mut v, query).unwrap_err().code, code, "{query}");
        }
        assert_eq!(v.query(KEY, &Params::new("symbol=X&orderId=99", "")).unwrap_err().code, -2013);
    }
}
