//! Order entry over Binance USDⓈ-M's WebSocket API (`wss://ws-fapi.binance.com/ws-fapi/v1`):
//! one persistent connection on the engine's WebSocket client, each request signed (HMAC or
//! Ed25519, over its parameters sorted by name, as Binance's SDK signs them) and matched to
//! its answer by id. The connection is replaced with back-off when it fails and before its
//! 24 hours are up; while it is down the caller uses REST.
//!
//! Binance's USDⓈ-M WebSocket API has no `session.logon` (the official SDK 18.1.0 has no
//! such method for it): every request carries `apiKey` and its signature.

use super::error::TradeError;
use crate::credentials::ApiKey;
use crate::net::ws::WsClient;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Binance closes a WebSocket API connection after 24 h; it is replaced before that.
const ROTATE_AFTER: Duration = Duration::from_secs(23 * 3_600);
/// How long an answer may take before the outcome counts as unknown.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failed connection; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest answer read (an order's answer is under 1 KB; positions of every symbol more).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The WebSocket API method a signed REST call (method, path) has, if it has one.
pub fn method_for(http_method: &str, path: &str) -> Option<&'static str> {
    Some(match (http_method, path) {
        ("POST", "/fapi/v1/order") => "order.place",
        ("DELETE", "/fapi/v1/order") => "order.cancel",
        ("GET", "/fapi/v1/order") => "order.status",
        ("POST", "/fapi/v1/algoOrder") => "algoOrder.place",
        ("DELETE", "/fapi/v1/algoOrder") => "algoOrder.cancel",
        _ => return None,
    })
}

/// The WebSocket API URL for a REST base: Binance's production host has its own
/// (`fapi.binance.com` → `wss://ws-fapi.binance.com/ws-fapi/v1`); any other (exchange-sim,
/// the testnet) serves `/ws-fapi/v1` on the same host.
pub fn url_for(rest: &str) -> String {
    let origin = crate::net::url::origin(rest);
    let ws = origin.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
    let ws = ws.replacen("://fapi.binance.com", "://ws-fapi.binance.com", 1);
    format!("{ws}/ws-fapi/v1")
}

/// Counters of the WebSocket API channel.
#[derive(Debug, Default)]
pub struct WsApiStats {
    /// Requests answered over the WebSocket API.
    pub requests: std::sync::atomic::AtomicU64,
    /// Connections opened (the first, reconnects, rotations).
    pub connects: std::sync::atomic::AtomicU64,
    /// Requests sent over REST because the WebSocket API was down.
    pub fallbacks: std::sync::atomic::AtomicU64,
    /// Messages that answered no request or were not what the API documents.
    pub unexpected: std::sync::atomic::AtomicU64,
    /// The server's pings answered (between requests as during them).
    pub pings_answered: std::sync::atomic::AtomicU64,
    /// `serverShutdown` notices: each replaces the connection before the next request.
    pub shutdown_notices: std::sync::atomic::AtomicU64,
    /// Connections the server ended between requests (replaced before the next one).
    pub ended_while_idle: std::sync::atomic::AtomicU64,
}

/// What an answer's `rateLimits` said was used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Used {
    /// Request weight this minute.
    pub weight: Option<u32>,
    /// New orders in a window (its length, the count), per `ORDERS` entry (10 s and 1 min).
    pub orders: [Option<(Duration, usize)>; 2],
}

/// What a call over the WebSocket API gave.
pub enum WsOutcome {
    /// The exchange answered: the result, or its refusal; what its limits say was used.
    Answered(Result<Value, TradeError>, Used),
    /// Not sent: no connection now (use REST).
    Unavailable,
}

/// One account's persistent WebSocket API connection.
pub struct WsApi {
    url: String,
    tls: Arc<rustls::ClientConfig>,
    /// The connection and when to replace it (its 24 h, or a `serverShutdown` notice).
    conn: Option<(WsClient, Instant)>,
    next_try: Instant,
    backoff: Duration,
    next_id: u64,
    /// When the last request's last byte was written (benchmarks read it).
    last_written: Option<Instant>,
    /// The connection's pings answered, as last added to the counters.
    pings_noted: u64,
    /// Counters.
    pub stats: Arc<WsApiStats>,
}

impl WsApi {
    /// A channel to `url` (connected on first use); `tls` serves `wss://`; counts go to
    /// `stats`.
    pub fn new(url: &str, tls: Arc<rustls::ClientConfig>, stats: Arc<WsApiStats>) -> Self {
        Self {
            url: url.to_string(),
            tls,
            conn: None,
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            next_id: 1,
            last_written: None,
            pings_noted: 0,
            stats,
        }
    }

    /// The URL in use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// When the last request's last byte was written to the socket.
    pub fn last_written(&self) -> Option<Instant> {
        self.last_written
    }

    /// Whether a connection is open now.
    pub fn is_up(&self) -> bool {
        self.conn.is_some()
    }

    /// Keeps the connection alive between requests, without waiting: reads what came
    /// (answering the server's pings, which it closes the connection without), notices a
    /// `serverShutdown` or a close, and connects again then, so the next order finds a live
    /// connection instead of a dead one and an unknown outcome.
    pub fn tend(&mut self) {
        while let Some((ws, _)) = self.conn.as_mut() {
            let polled = ws.poll();
            self.note_pings();
            match polled {
                Ok(Some(text)) => self.unexpected(&text),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e.reason, "WebSocket API connection ended between requests: connecting again");
                    self.stats.ended_while_idle.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Nothing was in flight: connect again now, not after a back-off.
                    self.conn = None;
                    self.next_try = Instant::now();
                }
            }
        }
        self.ensure();
    }

    /// Adds the pings the connection answered since last noted to the counters.
    fn note_pings(&mut self) {
        if let Some((ws, _)) = self.conn.as_ref() {
            let answered = ws.pings_answered();
            let noted = std::mem::replace(&mut self.pings_noted, answered);
            self.stats.pings_answered.fetch_add(answered - noted, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A message that answers no request (an answer given up on, or an event): counted and
    /// logged; a server shutdown notice replaces the connection before the next request.
    fn unexpected(&mut self, text: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        let shown: String = text.chars().take(200).collect();
        if text.contains("serverShutdown") {
            tracing::warn!(url = %self.url, message = %shown, "WebSocket API: the server is shutting down: connecting again");
            self.stats.shutdown_notices.fetch_add(1, Relaxed);
            self.next_try = Instant::now();
            if let Some((_, replace_at)) = self.conn.as_mut() {
                *replace_at = Instant::now();
            }
            return;
        }
        self.stats.unexpected.fetch_add(1, Relaxed);
        tracing::warn!(url = %self.url, message = %shown, "WebSocket API: a message that answers no request");
    }

    /// Connects unless connected, or waiting out a back-off; replaces a connection near
    /// its 24 hours. True when a connection is open.
    pub fn ensure(&mut self) -> bool {
        if self.conn.as_ref().is_some_and(|(_, replace_at)| Instant::now() >= *replace_at) {
            self.conn = None;
        }
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_try {
            return false;
        }
        match WsClient::connect(&self.url, &self.tls, MAX_ANSWER_BYTES) {
            Ok(ws) => {
                self.conn = Some((ws, Instant::now() + ROTATE_AFTER));
                self.pings_noted = 0;
                self.backoff = FIRST_BACKOFF;
                self.stats.connects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e.reason, "WebSocket API unreachable: orders go over REST");
                self.down();
                false
            }
        }
    }

    /// Drops the connection; the next attempt waits the back-off.
    fn down(&mut self) {
        self.conn = None;
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Sends `method` with `params` (`k=v&…`, as REST takes them) signed by `key` at
    /// `timestamp_ms`, and waits for its answer. A connection lost after sending is a
    /// [`TradeError::Transport`]: the outcome is unknown.
    pub fn call(
        &mut self,
        method: &str,
        params: &str,
        key: &ApiKey,
        timestamp_ms: i64,
        recv_window_ms: u64,
    ) -> WsOutcome {
        if !self.ensure() {
            self.stats.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return WsOutcome::Unavailable;
        }
        let id = format!("aegis-{}", self.next_id);
        self.next_id += 1;
        let request = signed_request(&id, method, params, key, timestamp_ms, recv_window_ms);
        let lost = |reason: String| {
            TradeError::Transport(crate::net::http::RestError::Io {
                path: method.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, reason),
            })
        };
        let Some((ws, _)) = self.conn.as_mut() else { return WsOutcome::Unavailable };
        if let Err(e) = ws.send_text(&request) {
            // Not written whole: the exchange may still have read it.
            self.down();
            return WsOutcome::Answered(Err(lost(e.reason)), Used::default());
        }
        let written = Instant::now();
        self.last_written = Some(written);
        let deadline = written + ANSWER_TIMEOUT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let text = match self.conn.as_mut().map(|(ws, _)| ws.next_text(wait)) {
                Some(Ok(Some(text))) => text,
                Some(Ok(None)) if Instant::now() < deadline => continue,
                Some(Ok(None)) => {
                    self.down();
                    return WsOutcome::Answered(
                        Err(lost(format!("no answer within {ANSWER_TIMEOUT:?}"))),
                        Used::default(),
                    );
                }
                Some(Err(e)) => {
                    self.down();
                    return WsOutcome::Answered(Err(lost(e.reason)), Used::default());
                }
                None => return WsOutcome::Answered(Err(lost("connection gone".into())), Used::default()),
            };
            self.note_pings();
            match read_answer(&text, &id, method) {
                Some(outcome) => {
                    self.stats.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return outcome;
                }
                None => self.unexpected(&text),
            }
        }
    }
}

/// The request frame: `params` plus `apiKey`, `recvWindow` and `timestamp`, sorted by name,
/// signed over `k=v&…` of that order, every value a string (as Binance's SDK sends them).
pub fn signed_request(
    id: &str,
    method: &str,
    params: &str,
    key: &ApiKey,
    timestamp_ms: i64,
    recv_window_ms: u64,
) -> String {
    let mut pairs: Vec<(String, String)> = params
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').map_or((kv.to_string(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect();
    pairs.push(("apiKey".into(), key.key().to_string()));
    pairs.push(("recvWindow".into(), recv_window_ms.to_string()));
    pairs.push(("timestamp".into(), timestamp_ms.to_string()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let payload: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}={}", super::sign::percent_encode(v))).collect();
    let signature = key.sign(&payload.join("&"));
    let mut object = serde_json::Map::new();
    for (k, v) in pairs {
        object.insert(k, Value::String(v));
    }
    object.insert("signature".into(), Value::String(signature));
    json!({ "id": id, "method": method, "params": object }).to_string()
}

/// What `rateLimits` says was used: the minute's weight, and new orders per window.
fn used(limits: &Value) -> Used {
    let mut out = Used::default();
    let mut slots = out.orders.iter_mut();
    for l in limits.as_array().into_iter().flatten() {
        let count = l["count"].as_u64();
        match l["rateLimitType"].as_str() {
            Some("REQUEST_WEIGHT") if l["interval"] == "MINUTE" => out.weight = count.map(|c| c as u32),
            Some("ORDERS") => {
                if let (Some(span), Some(count), Some(slot)) = (super::limits::window(l), count, slots.next())
                {
                    *slot = Some((span, count as usize));
                }
            }
            _ => {}
        }
    }
    out
}

/// The answer to request `id` in `text`, if it is one: its result or refusal, and the
/// request weight used this minute (`rateLimits`).
pub fn read_answer(text: &str, id: &str, method: &str) -> Option<WsOutcome> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v["id"].as_str() != Some(id) {
        return None;
    }
    let used = used(&v["rateLimits"]);
    let status = v["status"].as_u64().unwrap_or(0) as u16;
    let outcome = match status {
        200 => match v.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(TradeError::Malformed {
                path: method.into(),
                reason: format!("status 200 without a result: {v}"),
            }),
        },
        0 => Err(TradeError::Malformed {
            path: method.into(),
            reason: format!("an answer without a status: {v}"),
        }),
        429 | 418 => {
            let now = super::sign::local_ms();
            let retry_at = v["error"]["data"]["retryAfter"].as_i64().unwrap_or(now + 1_000);
            Err(TradeError::RateLimited {
                reason: format!("WebSocket API {status}, code {}: {}", v["error"]["code"], v["error"]["msg"]),
                retry_after: Duration::from_millis((retry_at - now).clamp(1, 600_000) as u64),
            })
        }
        _ => Err(TradeError::Rejected {
            status,
            code: v["error"]["code"].as_i64().unwrap_or(0) as i32,
            msg: v["error"]["msg"].as_str().unwrap_or("").to_string(),
        }),
    };
    Some(WsOutcome::Answered(outcome, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_sorted_signed_and_all_strings() {
        let key = ApiKey::new("k1", "s3cret", "the test");
        let text =
            signed_request("aegis-1", "order.place", "symbol=BTCUSDT&side=BUY&quantity=0.01", &key, 17, 5000);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((v["id"].as_str(), v["method"].as_str()), (Some("aegis-1"), Some("order.place")));
        let names: Vec<&String> = v["params"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["apiKey", "quantity", "recvWindow", "side", "signature", "symbol", "timestamp"]);
        let signed = "apiKey=k1&quantity=0.01&recvWindow=5000&side=BUY&symbol=BTCUSDT&timestamp=17";
        assert_eq!(v["params"]["signature"].as_str(), Some(key.sign(signed).as_str()));
        assert!(v["params"].as_object().unwrap().values().all(Value::is_string));
    }

    #[test]
    fn answers_are_matched_by_id_and_read_as_binance_writes_them() {
        let ok = r#"{"id":"a1","status":200,"result":{"orderId":7},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":12}]}"#;
        assert!(read_answer(ok, "other", "order.place").is_none(), "another request's answer");
        let Some(WsOutcome::Answered(Ok(result), used)) = read_answer(ok, "a1", "order.place") else {
            panic!("answered")
        };
        assert_eq!((result["orderId"].as_u64(), used.weight), (Some(7), Some(12)));
        let placed = r#"{"id":"a6","status":200,"result":{},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":1},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":4},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200,"count":9}]}"#;
        let Some(WsOutcome::Answered(Ok(_), used)) = read_answer(placed, "a6", "order.place") else {
            panic!()
        };
        assert_eq!(used.orders, [Some((Duration::from_secs(10), 4)), Some((Duration::from_secs(60), 9))]);
        let refused = r#"{"id":"a2","status":400,"error":{"code":-2019,"msg":"Margin is insufficient."}}"#;
        match read_answer(refused, "a2", "order.place") {
            Some(WsOutcome::Answered(Err(TradeError::Rejected { status: 400, code: -2019, .. }), _)) => {}
            _ => panic!("a refusal with its code"),
        }
        let limited = r#"{"id":"a3","status":429,"error":{"code":-1003,"msg":"Too many requests"}}"#;
        assert!(matches!(
            read_answer(limited, "a3", "order.place"),
            Some(WsOutcome::Answered(Err(TradeError::RateLimited { .. }), _))
        ));
        let odd = r#"{"id":"a4","status":200}"#;
        assert!(matches!(
            read_answer(odd, "a4", "order.place"),
            Some(WsOutcome::Answered(Err(TradeError::Malformed { .. }), _))
        ));
        assert!(read_answer("not json", "a5", "order.place").is_none());
    }

    #[test]
    fn the_url_follows_the_rest_host() {
        assert_eq!(url_for("https://fapi.binance.com"), "wss://ws-fapi.binance.com/ws-fapi/v1");
        assert_eq!(
            url_for("https://testnet.binancefuture.com"),
            "wss://testnet.binancefuture.com/ws-fapi/v1"
        );
        assert_eq!(url_for("http://127.0.0.1:9000"), "ws://127.0.0.1:9000/ws-fapi/v1");
        assert_eq!(method_for("POST", "/fapi/v1/algoOrder"), Some("algoOrder.place"));
        assert_eq!(method_for("GET", "/fapi/v1/algoOrder"), None, "no algoOrder.status: REST");
    }
}
