//! The signed trading client: places, cancels and queries orders on Binance USDⓈ-M (or
//! exchange-sim), with the exchange's clock, idempotent retries and the order-count limits
//! from exchangeInfo's `rateLimits`.

pub use super::error::TradeError;
pub use super::limits::{OrderLimiter, WeightBudget};
use super::order::{AlgoRequest, AlgoState, Fixed8, OrderRequest, OrderState};
use super::sign::{local_ms, signed_params, ServerClock};
use crate::credentials::ApiKey;
use crate::net::http::{HttpClient, HttpRequest};
use serde_json::Value;
use std::time::{Duration, Instant};

/// An account's position mode and Multi-Assets mode, as the exchange reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountModes {
    /// Hedge Mode (`dualSidePosition`): a long and a short position per symbol.
    pub hedge: bool,
    /// Multi-Assets Mode (`multiAssetsMargin`): margin shared across assets, cross only.
    pub multi_assets: bool,
}

impl AccountModes {
    /// Why the engine cannot trade this account, if it cannot. Aegis holds one-way positions
    /// (its orders carry no `positionSide`) on isolated margin, which Multi-Assets Mode does
    /// not allow.
    pub fn refusal(&self) -> Option<String> {
        if self.hedge {
            return Some(
                "the account is in Hedge Mode (GET /fapi/v1/positionSide/dual: dualSidePosition = true); \
                 Aegis trades one-way positions: switch the account to One-way Mode (no position or order \
                 may be open) and start again"
                    .into(),
            );
        }
        self.multi_assets.then(|| {
            "the account is in Multi-Assets Mode (GET /fapi/v1/multiAssetsMargin: multiAssetsMargin = true), \
             which allows cross margin only; Aegis trades on isolated margin: switch Multi-Assets Mode off \
             and start again"
                .into()
        })
    }
}

/// Binance's code for a `timestamp` outside `recvWindow` of its clock.
const TIMESTAMP_OUTSIDE_WINDOW: i32 = -1021;
/// Binance's code for a `newClientOrderId` already used by an open order.
const CLIENT_ID_DUPLICATED: i32 = -4116;
/// Binance's code for a margin type that is already the one asked for.
const NO_NEED_TO_CHANGE_MARGIN_TYPE: i32 = -4046;
/// Tries of a placement whose outcome was unknown (same client id each time).
const PLACE_TRIES: usize = 3;

/// A signed trading client for one exchange base URL, on connections of its own (kept
/// alive, never shared with market data).
pub struct TradeClient {
    http: HttpClient,
    /// Order entry over the WebSocket API, when chosen (REST while it is down).
    ws: Option<super::ws_api::WsApi>,
    key: ApiKey,
    clock: ServerClock,
    recv_window_ms: u64,
    limiter: OrderLimiter,
    weight: WeightBudget,
    /// New orders sent again after an unknown outcome that the query did not find.
    resent: u64,
}

impl TradeClient {
    /// A client for `base` (`http://host:port` or `https://host:port`), trusting `extra_ca`
    /// besides the webpki roots.
    pub fn new(base: &str, key: ApiKey, extra_ca: Option<&std::path::Path>) -> Result<Self, TradeError> {
        Self::new_with(base, key, extra_ca, true)
    }

    /// The same; with `keep_alive` false every REST request opens a new connection (a
    /// benchmark's baseline).
    pub fn new_with(
        base: &str,
        key: ApiKey,
        extra_ca: Option<&std::path::Path>,
        keep_alive: bool,
    ) -> Result<Self, TradeError> {
        let malformed = |reason: String| TradeError::Malformed { path: base.to_string(), reason };
        crate::net::url::split_url(base).map_err(|e| malformed(e.to_string()))?;
        Ok(Self {
            http: HttpClient::new_with(base, extra_ca, keep_alive).map_err(|e| malformed(e.to_string()))?,
            ws: None,
            key,
            clock: ServerClock::default(),
            recv_window_ms: 5_000,
            limiter: OrderLimiter::default(),
            weight: WeightBudget::default(),
            resent: 0,
        })
    }

    /// Sends orders, cancels and order queries over the WebSocket API at `url` (one
    /// persistent connection; REST while it is down), connecting now if it can.
    pub fn with_ws_api(
        mut self,
        url: &str,
        tls: std::sync::Arc<rustls::ClientConfig>,
        stats: std::sync::Arc<super::ws_api::WsApiStats>,
    ) -> Self {
        let mut ws = super::ws_api::WsApi::new(url, tls, stats);
        ws.ensure();
        self.ws = Some(ws);
        self
    }

    /// Counts new orders against these limits from now on.
    pub fn with_limiter(mut self, limiter: OrderLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Keeps signed calls within this request-weight budget from now on.
    pub fn with_weight_budget(mut self, budget: WeightBudget) -> Self {
        self.weight = budget;
        self
    }

    /// Takes the order-count and request-weight limits from the exchange's exchangeInfo.
    pub fn load_rate_limits(&mut self) -> Result<(), TradeError> {
        let info = self.send("GET", "/fapi/v1/exchangeInfo", "", false)?;
        self.limiter = OrderLimiter::from_rate_limits(&info["rateLimits"]);
        self.weight = WeightBudget::from_rate_limits(&info["rateLimits"]);
        Ok(())
    }

    /// Keeps the WebSocket API connection alive between requests (see [`WsApi::tend`]);
    /// nothing over REST alone.
    ///
    /// [`WsApi::tend`]: super::ws_api::WsApi::tend
    pub fn tend_ws_api(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            ws.tend();
        }
    }

    /// When the WebSocket API last wrote a request's last byte (none over REST).
    pub fn ws_last_written(&self) -> Option<Instant> {
        self.ws.as_ref().and_then(super::ws_api::WsApi::last_written)
    }

    /// New orders sent again after an unknown outcome (the query by client id found none).
    pub fn resent(&self) -> u64 {
        self.resent
    }

    /// The exchange clock in use.
    pub fn clock(&self) -> ServerClock {
        self.clock
    }

    /// Replaces the clock (tests skew it; `sync_clock` measures it).
    pub fn set_clock(&mut self, clock: ServerClock) {
        self.clock = clock;
    }

    /// Measures the exchange clock's offset from `/fapi/v1/time`.
    pub fn sync_clock(&mut self) -> Result<ServerClock, TradeError> {
        let sent = local_ms();
        let v = self.send("GET", "/fapi/v1/time", "", false)?;
        let received = local_ms();
        let server = v["serverTime"].as_i64().ok_or_else(|| TradeError::Malformed {
            path: "/fapi/v1/time".into(),
            reason: "no serverTime".into(),
        })?;
        self.clock = ServerClock::from_round_trip(sent, server, received);
        Ok(self.clock)
    }

    /// Places `order`. An unknown outcome is retried with the same client id (so it lands
    /// at most once: a retry told the id is taken reads the order that landed).
    pub fn place(&mut self, order: &OrderRequest) -> Result<OrderState, TradeError> {
        let params = order.params();
        self.place_once("/fapi/v1/order", &params, state, |c| c.query(&order.symbol, &order.client_id))
    }

    /// Places a conditional order (Algo Service) `order`, idempotently as [`Self::place`]
    /// does (counted against the same order limits).
    pub fn place_algo(&mut self, order: &AlgoRequest) -> Result<AlgoState, TradeError> {
        let params = order.params();
        self.place_once(ALGO_ORDER, &params, algo_state, |c| c.query_algo(&order.client_algo_id))
    }

    /// POSTs a new order to `path`, after the order-count limiter. An outcome lost with a
    /// connection is asked for by client id (`landed`, on whichever channel is up) before
    /// any retry; a retry sends the same parameters (so the same client id), and one told
    /// the id is taken returns what `landed` reads.
    fn place_once<T>(
        &mut self,
        path: &str,
        params: &str,
        read: fn(&Value, &str) -> Result<T, TradeError>,
        landed: impl Fn(&mut Self) -> Result<T, TradeError>,
    ) -> Result<T, TradeError> {
        self.limiter.take(Instant::now()).map_err(|wait| TradeError::RateLimited {
            reason: "order-count limit from exchangeInfo".into(),
            retry_after: wait,
        })?;
        let mut last = None;
        for attempt in 0..PLACE_TRIES {
            if attempt > 0 {
                self.resent += 1;
            }
            match self.signed("POST", path, params) {
                Ok(v) => return read(&v, path),
                Err(TradeError::Transport(e)) => {
                    if let Ok(found) = landed(self) {
                        return Ok(found);
                    }
                    last = Some(TradeError::Transport(e));
                }
                Err(TradeError::Rejected { code: CLIENT_ID_DUPLICATED, .. }) if attempt > 0 => {
                    return landed(self)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| TradeError::Malformed { path: path.into(), reason: "no attempt made".into() }))
    }

    /// The conditional order with client id `client_algo_id` (the Algo Service finds it
    /// without a symbol).
    pub fn query_algo(&mut self, client_algo_id: &str) -> Result<AlgoState, TradeError> {
        let v = self.signed("GET", ALGO_ORDER, &format!("clientAlgoId={client_algo_id}"))?;
        algo_state(&v, ALGO_ORDER)
    }

    /// Cancels the conditional order with client id `client_algo_id` while it waits for its
    /// trigger.
    pub fn cancel_algo(&mut self, client_algo_id: &str) -> Result<(), TradeError> {
        self.signed("DELETE", ALGO_ORDER, &format!("clientAlgoId={client_algo_id}")).map(|_| ())
    }

    /// Conditional orders waiting for their trigger, of `symbol` or of every symbol.
    pub fn open_algo_orders(&mut self, symbol: Option<&str>) -> Result<Vec<AlgoState>, TradeError> {
        const PATH: &str = "/fapi/v1/openAlgoOrders";
        let params = symbol.map(|s| format!("symbol={s}")).unwrap_or_default();
        let v = self.signed("GET", PATH, &params)?;
        v.as_array()
            .ok_or_else(|| TradeError::Malformed { path: PATH.into(), reason: "not an array".into() })?
            .iter()
            .map(|o| algo_state(o, PATH))
            .collect()
    }

    /// The account's leverage brackets per symbol (signed `GET /fapi/v1/leverageBracket`,
    /// every symbol in one request): Binance serves them only signed, and per account.
    pub fn leverage_brackets(
        &mut self,
    ) -> Result<Vec<(String, Vec<aegis_trading::rules::Bracket>)>, TradeError> {
        const PATH: &str = "/fapi/v1/leverageBracket";
        let v = self.signed("GET", PATH, "")?;
        let malformed = |reason: String| TradeError::Malformed { path: PATH.into(), reason };
        v.as_array()
            .ok_or_else(|| malformed("not an array".into()))?
            .iter()
            .map(|entry| {
                let symbol =
                    entry["symbol"].as_str().ok_or_else(|| malformed(format!("no symbol in {entry}")))?;
                let list = crate::rest::rules::brackets(&entry["brackets"])
                    .ok_or_else(|| malformed(format!("{symbol}: brackets unreadable")))?;
                Ok((symbol.to_string(), list))
            })
            .collect()
    }

    /// Cancels every waiting conditional order of `symbol`.
    pub fn cancel_all_algo(&mut self, symbol: &str) -> Result<(), TradeError> {
        self.signed("DELETE", "/fapi/v1/algoOpenOrders", &format!("symbol={symbol}")).map(|_| ())
    }

    /// The order with client id `client_id`.
    pub fn query(&mut self, symbol: &str, client_id: &str) -> Result<OrderState, TradeError> {
        let v =
            self.signed("GET", "/fapi/v1/order", &format!("symbol={symbol}&origClientOrderId={client_id}"))?;
        state(&v, "/fapi/v1/order")
    }

    /// Cancels the order with client id `client_id`.
    pub fn cancel(&mut self, symbol: &str, client_id: &str) -> Result<OrderState, TradeError> {
        let v = self.signed(
            "DELETE",
            "/fapi/v1/order",
            &format!("symbol={symbol}&origClientOrderId={client_id}"),
        )?;
        state(&v, "/fapi/v1/order")
    }

    /// Open orders of `symbol`, or of every symbol.
    pub fn open_orders(&mut self, symbol: Option<&str>) -> Result<Vec<OrderState>, TradeError> {
        let params = symbol.map(|s| format!("symbol={s}")).unwrap_or_default();
        let v = self.signed("GET", "/fapi/v1/openOrders", &params)?;
        v.as_array()
            .ok_or_else(|| TradeError::Malformed {
                path: "/fapi/v1/openOrders".into(),
                reason: "not an array".into(),
            })?
            .iter()
            .map(|o| state(o, "/fapi/v1/openOrders"))
            .collect()
    }

    /// Sends a signed request; one refused for its timestamp is re-signed once after the
    /// clock is measured again (the local clock drifted, or was never synced).
    /// Sets `symbol`'s leverage.
    pub fn set_leverage(&mut self, symbol: &str, leverage: u32) -> Result<(), TradeError> {
        self.signed("POST", "/fapi/v1/leverage", &format!("symbol={symbol}&leverage={leverage}")).map(|_| ())
    }

    /// Sets `symbol`'s margin type; already being that type is success.
    pub fn set_margin_type(&mut self, symbol: &str, isolated: bool) -> Result<(), TradeError> {
        let kind = if isolated { "ISOLATED" } else { "CROSSED" };
        match self.signed("POST", "/fapi/v1/marginType", &format!("symbol={symbol}&marginType={kind}")) {
            Ok(_) | Err(TradeError::Rejected { code: NO_NEED_TO_CHANGE_MARGIN_TYPE, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The account's position mode and Multi-Assets mode (two signed reads, weight 30 each).
    pub fn account_modes(&mut self) -> Result<AccountModes, TradeError> {
        let mut flag = |path: &str, key: &str| -> Result<bool, TradeError> {
            let v = self.signed("GET", path, "")?;
            v.get(key).and_then(Value::as_bool).ok_or_else(|| TradeError::Malformed {
                path: path.into(),
                reason: format!("no boolean `{key}` in {v}"),
            })
        };
        Ok(AccountModes {
            hedge: flag("/fapi/v1/positionSide/dual", "dualSidePosition")?,
            multi_assets: flag("/fapi/v1/multiAssetsMargin", "multiAssetsMargin")?,
        })
    }

    /// Switches the account to Hedge Mode (`true`) or One-way Mode (`false`).
    pub fn set_position_mode(&mut self, hedge: bool) -> Result<(), TradeError> {
        self.signed("POST", "/fapi/v1/positionSide/dual", &format!("dualSidePosition={hedge}")).map(|_| ())
    }

    /// Switches Multi-Assets Mode on or off.
    pub fn set_multi_assets_mode(&mut self, on: bool) -> Result<(), TradeError> {
        self.signed("POST", "/fapi/v1/multiAssetsMargin", &format!("multiAssetsMargin={on}")).map(|_| ())
    }

    /// Open positions (non-zero amounts) at the exchange.
    pub fn positions(&mut self) -> Result<Vec<ExchangePosition>, TradeError> {
        let v = self.signed("GET", "/fapi/v2/positionRisk", "")?;
        let rows = v.as_array().ok_or_else(|| TradeError::Malformed {
            path: "/fapi/v2/positionRisk".into(),
            reason: "not an array".into(),
        })?;
        let mut out = Vec::new();
        for row in rows {
            let p = ExchangePosition::from_json(row).ok_or_else(|| TradeError::Malformed {
                path: "/fapi/v2/positionRisk".into(),
                reason: format!("not a position: {row}"),
            })?;
            if !p.amount.is_zero() {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Cancels every open order of `symbol`.
    pub fn cancel_all(&mut self, symbol: &str) -> Result<(), TradeError> {
        self.signed("DELETE", "/fapi/v1/allOpenOrders", &format!("symbol={symbol}")).map(|_| ())
    }

    /// The kill switch: cancels every open order and every waiting conditional order (the
    /// ordinary endpoints neither list nor cancel those), then closes every position with a
    /// reduce-only market order (client ids from `ids`). Returns the closing orders.
    pub fn flatten(&mut self, ids: &mut super::order::ClientIds) -> Result<Vec<OrderState>, TradeError> {
        let orders: Vec<String> = self.open_orders(None)?.into_iter().map(|o| o.symbol).collect();
        let mut algos: Vec<String> = self.open_algo_orders(None)?.into_iter().map(|o| o.symbol).collect();
        algos.sort();
        algos.dedup();
        for symbol in &algos {
            self.cancel_all_algo(symbol)?;
        }
        let positions = self.positions()?;
        let mut symbols = orders;
        symbols.extend(positions.iter().map(|p| p.symbol.clone()));
        symbols.sort();
        symbols.dedup();
        for symbol in &symbols {
            self.cancel_all(symbol)?;
        }
        let mut closes = Vec::new();
        for p in positions {
            let side =
                if p.amount.is_negative() { super::order::Side::Buy } else { super::order::Side::Sell };
            let order = OrderRequest {
                symbol: p.symbol.clone(),
                side,
                kind: super::order::OrderKind::Market,
                quantity: p.amount.abs(),
                client_id: ids.next_id(),
            };
            closes.push(self.place_reduce_only(&order)?);
        }
        Ok(closes)
    }

    /// Places `order` with `reduceOnly=true` (it can only shrink a position).
    pub fn place_reduce_only(&mut self, order: &OrderRequest) -> Result<OrderState, TradeError> {
        let params = format!("{}&reduceOnly=true", order.params());
        let v = self.signed("POST", "/fapi/v1/order", &params)?;
        state(&v, "/fapi/v1/order")
    }

    /// Creates (or returns the live) user-data listenKey; valid 60 min from its last
    /// keep-alive.
    pub fn create_listen_key(&mut self) -> Result<String, TradeError> {
        let v = self.send("POST", "/fapi/v1/listenKey", "", true)?;
        v["listenKey"].as_str().map(str::to_string).ok_or_else(|| TradeError::Malformed {
            path: "/fapi/v1/listenKey".into(),
            reason: format!("no listenKey in {v}"),
        })
    }

    /// Extends the listenKey's life (Binance asks for one every 60 min at most; send one
    /// every 30). Refused with -1125 once it has expired.
    pub fn keep_alive_listen_key(&mut self) -> Result<(), TradeError> {
        self.send("PUT", "/fapi/v1/listenKey", "", true).map(|_| ())
    }

    fn signed(&mut self, method: &str, path: &str, params: &str) -> Result<Value, TradeError> {
        match self.signed_once(method, path, params) {
            Err(TradeError::Rejected { code: TIMESTAMP_OUTSIDE_WINDOW, .. }) => {
                self.sync_clock()?;
                self.signed_once(method, path, params)
            }
            other => other,
        }
    }

    /// One signed request: over the WebSocket API when it serves the endpoint and is up,
    /// else over REST.
    fn signed_once(&mut self, method: &str, path: &str, params: &str) -> Result<Value, TradeError> {
        if let (Some(ws), Some(ws_method)) = (self.ws.as_mut(), super::ws_api::method_for(method, path)) {
            self.weight.check(request_weight(method, path, params), Instant::now()).map_err(|wait| {
                TradeError::RateLimited {
                    reason: "request-weight budget from exchangeInfo".into(),
                    retry_after: wait,
                }
            })?;
            let now_ms = self.clock.now_ms();
            if let super::ws_api::WsOutcome::Answered(result, used) =
                ws.call(ws_method, params, &self.key, now_ms, self.recv_window_ms)
            {
                if let Some(weight) = used.weight {
                    self.weight.reported(weight);
                }
                for (span, count) in used.orders.into_iter().flatten() {
                    self.limiter.reported(span, count, Instant::now());
                }
                return result;
            }
        }
        let query = signed_params(params, self.clock.now_ms(), self.recv_window_ms, &self.key);
        self.send(method, path, &query, true)
    }

    /// Sends one request (refused here, unsent, when it would overspend the minute's
    /// request weight); POST parameters go in the body, others in the query string.
    fn send(&mut self, method: &str, path: &str, params: &str, with_key: bool) -> Result<Value, TradeError> {
        self.weight.check(request_weight(method, path, params), Instant::now()).map_err(|wait| {
            TradeError::RateLimited {
                reason: "request-weight budget from exchangeInfo".into(),
                retry_after: wait,
            }
        })?;
        let (target, body) = match (method, params.is_empty()) {
            ("POST", _) => (path.to_string(), params),
            (_, true) => (path.to_string(), ""),
            (_, false) => (format!("{path}?{params}"), ""),
        };
        let key_header = [("X-MBX-APIKEY", self.key.key())];
        let headers: &[(&str, &str)] = if with_key { &key_header } else { &[] };
        let request = HttpRequest { method, path: &target, headers, body };
        let answer = self.http.send(&request)?;
        if let Some(used) = answer.header("x-mbx-used-weight-1m").and_then(|v| v.parse().ok()) {
            self.weight.reported(used);
        }
        let value: Value = serde_json::from_str(&answer.body).map_err(|e| TradeError::Malformed {
            path: path.to_string(),
            reason: format!("not JSON ({e})"),
        })?;
        let code = value["code"].as_i64().unwrap_or(0) as i32;
        let msg = || value["msg"].as_str().unwrap_or("").to_string();
        match answer.status {
            200 => Ok(value),
            status @ (429 | 418) => Err(TradeError::RateLimited {
                reason: format!("HTTP {status}, code {code}: {}", msg()),
                retry_after: Duration::from_secs(
                    answer.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(1),
                ),
            }),
            status => Err(TradeError::Rejected { status, code, msg: msg() }),
        }
    }
}

/// A position as `/fapi/v2/positionRisk` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangePosition {
    /// Symbol.
    pub symbol: String,
    /// Signed quantity, exactly: positive long, negative short.
    pub amount: Fixed8,
    /// Average entry price.
    pub entry_price: f64,
    /// Leverage set.
    pub leverage: u32,
}

impl ExchangePosition {
    /// Reads one `positionRisk` row.
    pub fn from_json(v: &Value) -> Option<Self> {
        let num = |key: &str| v[key].as_str()?.parse::<f64>().ok().filter(|x| x.is_finite());
        Some(Self {
            symbol: v["symbol"].as_str()?.to_string(),
            amount: Fixed8::parse_signed(v["positionAmt"].as_str()?).ok()?,
            entry_price: num("entryPrice")?,
            leverage: v["leverage"].as_str()?.parse().ok()?,
        })
    }
}

/// Request weight of a trading endpoint (Binance's documentation): new orders count
/// against the order limits instead, an all-symbol open-orders query is 40.
fn request_weight(method: &str, path: &str, params: &str) -> u32 {
    match (method, path) {
        ("POST", "/fapi/v1/order" | ALGO_ORDER) => 0,
        ("GET", "/fapi/v1/openOrders" | "/fapi/v1/openAlgoOrders") if !params.contains("symbol=") => 40,
        ("GET", "/fapi/v1/allAlgoOrders") => 5,
        ("GET", "/fapi/v2/positionRisk") => 5,
        _ => 1,
    }
}

/// The Algo Service's order endpoint (place, query, cancel).
const ALGO_ORDER: &str = "/fapi/v1/algoOrder";

fn algo_state(v: &Value, path: &str) -> Result<AlgoState, TradeError> {
    AlgoState::from_json(v).ok_or_else(|| TradeError::Malformed {
        path: path.to_string(),
        reason: format!("not an algo order: {v}"),
    })
}

fn state(v: &Value, path: &str) -> Result<OrderState, TradeError> {
    OrderState::from_json(v)
        .ok_or_else(|| TradeError::Malformed { path: path.to_string(), reason: format!("not an order: {v}") })
}
