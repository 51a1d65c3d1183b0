//! The listener: one port for WebSocket and REST, optional TLS, and the WebSocket session
//! (subscriptions, Binance's limits, pings, lifetime, connection faults).

use crate::cli::Speed;
use crate::fault::{due, Faults};
use crate::market::{Msg, Source};
use crate::rest::{self, parse_head, RequestHead, WeightBudget};
use crate::stats::{LocalCounts, Stats};
use crate::ws::{self, close_code, opcode};
use aegis_wire::stream::Tier;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch, Notify};

/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest client frame accepted (subscription requests are small).
const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;
/// Flush buffered frames once this many bytes wait.
const FLUSH_BYTES: usize = 64 * 1024;

/// Settings of the WebSocket side.
#[derive(Clone, Debug)]
pub struct WsLimits {
    /// Server ping interval.
    pub ping_interval: Duration,
    /// Close when the last pong is older than this.
    pub pong_timeout: Duration,
    /// Disconnect after this lifetime.
    pub lifetime: Duration,
    /// Messages per second per connection, if limited.
    pub rate: Option<u32>,
    /// Streams per connection.
    pub max_streams: usize,
    /// Incoming messages per second before the connection is closed.
    pub max_incoming_per_s: u32,
}

/// State shared by the listener, the feeder and every connection.
pub struct Shared {
    /// The market source (streams and REST read it).
    pub source: Mutex<Box<dyn Source>>,
    /// The feed every connection filters.
    pub feed: broadcast::Sender<Arc<Msg>>,
    /// Summary counters.
    pub stats: Mutex<Stats>,
    /// WebSocket limits.
    pub limits: WsLimits,
    /// Fault plan.
    pub faults: Faults,
    /// Pacing.
    pub speed: Speed,
    /// REST weight budget.
    pub budget: Mutex<WeightBudget>,
    /// REST weight limit (for messages).
    pub weight_limit: u32,
    /// Set once any connection holds a stream: the feeder waits for it.
    pub started: AtomicBool,
    /// Wakes the feeder when `started` flips.
    pub start_signal: Notify,
    /// Flips to true on shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Source seed, mixed into per-connection fault randomness.
    pub seed: u64,
    /// The signed trading API: keys, orders, matching.
    pub venue: Mutex<crate::venue::Venue>,
    /// Shutdown notices to the WebSocket API connections: each carries its grace.
    pub ws_api_notices: broadcast::Sender<Duration>,
    next_conn_id: AtomicU64,
}

impl Shared {
    /// Builds the shared state; `feed_capacity` bounds how far a subscriber may lag.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Box<dyn Source>,
        feed_capacity: usize,
        limits: WsLimits,
        faults: Faults,
        speed: Speed,
        weight_limit: u32,
        shutdown: watch::Receiver<bool>,
        seed: u64,
    ) -> Arc<Self> {
        let (feed, _) = broadcast::channel(feed_capacity);
        Arc::new(Self {
            source: Mutex::new(source),
            feed,
            stats: Mutex::new(Stats::default()),
            limits,
            faults,
            speed,
            budget: Mutex::new(WeightBudget::new(weight_limit)),
            weight_limit,
            started: AtomicBool::new(false),
            start_signal: Notify::new(),
            shutdown,
            seed,
            venue: Mutex::new(crate::venue::Venue::default()),
            ws_api_notices: broadcast::channel(4).0,
            next_conn_id: AtomicU64::new(1),
        })
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn source(&self) -> std::sync::MutexGuard<'_, Box<dyn Source>> {
        self.source.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one accepted connection: REST requests until close, or one WebSocket session.
pub async fn serve_connection<S>(mut io: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut io, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(reason) => {
                let body = format!("{{\"code\":-1000,\"msg\":{}}}", serde_json::Value::from(reason));
                let resp = rest::Response { status: 400, body, used_weight: 0 };
                let _ = io.write_all(&resp.to_bytes(false)).await;
                return;
            }
        };
        let is_upgrade = head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if is_upgrade {
            ws_session(io, head, buf, shared).await;
            return;
        }
        let keep_alive = !head.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        // Every request's body is read, whatever the endpoint, so the next request on a
        // kept-alive connection starts where this one ends.
        let Some(body) = read_body(&mut io, &mut buf, &head).await else { return };
        if head.path == LISTING_PATH || head.path == WS_API_SHUTDOWN_PATH {
            let response = if head.path == LISTING_PATH {
                relist(&shared, &head)
            } else {
                announce_shutdown(&shared, &head)
            };
            if io.write_all(&response.to_bytes(keep_alive)).await.is_err() || !keep_alive {
                return;
            }
            continue;
        }
        if crate::venue::is_trading_path(&head.path) {
            let response = trading(&shared, &head, &body);
            shared.stats().rest(&head.path, response.status);
            if io.write_all(&response.to_bytes(keep_alive)).await.is_err() || !keep_alive {
                return;
            }
            continue;
        }
        let response = {
            let source = shared.source();
            let mut budget = shared.budget.lock().unwrap_or_else(|p| p.into_inner());
            let venue = shared.venue.lock().unwrap_or_else(|p| p.into_inner());
            let limits = rest::Limits {
                weight_per_minute: shared.weight_limit,
                orders_per_10s: venue.order_limit_10s(),
            };
            rest::handle(&head, source.as_ref(), &mut budget, limits, venue.listing())
        };
        shared.stats().rest(&head.path, response.status);
        if io.write_all(&response.to_bytes(keep_alive)).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// exchange-sim's own endpoint (not Binance's) changing a symbol's listing while it runs:
/// `POST /sim/v1/listing?symbol=ETHUSDT&status=BREAK&stepSize=0.01&maxLeverage=20`, as
/// Binance halts a symbol or changes its filters or brackets. exchangeInfo and
/// leverageBracket serve the change and new orders are checked against it.
pub const LISTING_PATH: &str = "/sim/v1/listing";

/// An answer of exchange-sim's own control endpoints (they spend no request weight).
fn control_answer(status: u16, body: serde_json::Value) -> rest::Response {
    rest::Response { status, body: body.to_string(), used_weight: 0 }
}

fn relist(shared: &Shared, head: &RequestHead) -> rest::Response {
    let refuse = |msg: String| control_answer(400, serde_json::json!({ "code": -1102, "msg": msg }));
    if head.method != "POST" {
        return control_answer(405, serde_json::json!({ "code": -1000, "msg": "POST only" }));
    }
    let Some(symbol) = head.param("symbol") else { return refuse("symbol is required".into()) };
    if !shared.source().symbols().iter().any(|s| s.symbol == symbol) {
        return refuse(format!("{symbol} is not served"));
    }
    let step = match head
        .param("stepSize")
        .map(|t| aegis_wire::parse_fixed8(t.as_bytes(), aegis_wire::Sign::Forbidden))
    {
        None => None,
        Some(Ok(step)) if step > 0 => Some(step),
        Some(_) => return refuse("stepSize must be a positive decimal".into()),
    };
    let max_leverage = match head.param("maxLeverage").map(str::parse::<u32>) {
        None => None,
        Some(Ok(l)) if (1..=125).contains(&l) => Some(l),
        Some(_) => return refuse("maxLeverage must be a whole number in 1..=125".into()),
    };
    let change = crate::venue::Relisting {
        status: head.param("status").map(str::to_string),
        step_size: step,
        max_leverage,
    };
    let now = shared.venue.lock().unwrap_or_else(|p| p.into_inner()).relist(symbol, change);
    let step = now.step_size.map(|s| aegis_wire::decimal::to_f64(i128::from(s)));
    control_answer(
        200,
        serde_json::json!({ "symbol": symbol, "status": now.status.as_deref().unwrap_or("TRADING"), "stepSize": step, "maxLeverage": now.max_leverage }),
    )
}

/// The largest request body read (a signed order is a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the body `Content-Length` announces, or a chunked one (HTTP/1.1 clients may send
/// either; ureq sends an unsized body chunked), after the head (partly in `buf` already).
async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    head: &RequestHead,
) -> Option<String> {
    let chunked =
        head.header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let len: usize = head.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        if len > MAX_BODY_BYTES {
            return None;
        }
        fill(io, buf, len).await?;
        return String::from_utf8(buf.drain(..len).collect()).ok();
    }
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if buf.len() > 64 {
                return None;
            }
            let have = buf.len();
            fill(io, buf, have + 1).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if body.len() + size > MAX_BODY_BYTES {
            return None;
        }
        // The chunk and its CRLF; the last (empty) chunk is followed by the final CRLF
        // (trailers are not read).
        fill(io, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return String::from_utf8(body).ok();
        }
    }
}

/// Reads until `buf` holds at least `len` bytes; `None` when the connection ends first.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>, len: usize) -> Option<()> {
    while buf.len() < len {
        let mut chunk = [0u8; 4096];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(())
}

/// Answers a signed trading request against the venue, the book and the source's clock.
fn trading(shared: &Shared, head: &RequestHead, body: &str) -> rest::Response {
    // Trading endpoints spend from the same per-minute request weight as market data.
    // Only GET openOrders depends on a parameter, and GET parameters are in the query.
    let weight = crate::venue::request_weight(&head.method, &head.path, &head.query);
    let used = {
        let mut budget = shared.budget.lock().unwrap_or_else(|p| p.into_inner());
        match budget.charge(weight, Instant::now()) {
            Ok(used) => used,
            Err((status, used)) => {
                let body = format!(
                    "{{\"code\":-1003,\"msg\":\"Too many requests; current limit is {} request weight per 1 MINUTE.\"}}",
                    shared.weight_limit
                );
                return rest::Response { status, body, used_weight: used };
            }
        }
    };
    // A trading client starts the market as a stream subscriber does: its signed
    // timestamps, triggers and fills need a clock that moves.
    if !shared.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
        shared.start_signal.notify_one();
    }
    let source = shared.source();
    let mut venue = shared.venue.lock().unwrap_or_else(|p| p.into_inner());
    let pace = match shared.speed {
        crate::cli::Speed::Factor(f) => f,
        crate::cli::Speed::Max => 1_000.0,
    };
    let answer = crate::venue::handle(&mut venue, head, body, source.as_ref(), pace);
    let (status, body) = match answer {
        Ok(body) => (200, body),
        Err(r) => (r.status, format!("{{\"code\":{},\"msg\":{}}}", r.code, serde_json::Value::from(r.msg))),
    };
    rest::Response { status, body, used_weight: used }
}

/// Reads one request head; bytes after it stay in `buf`.
async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<RequestHead>, String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head =
                std::str::from_utf8(&buf[..end]).map_err(|_| "request head is not UTF-8".to_string())?;
            let parsed = parse_head(head)?;
            buf.drain(..end + 4);
            return Ok(Some(parsed));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(format!("request head over {MAX_HEAD_BYTES} bytes"));
        }
        let mut chunk = [0u8; 4096];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// How a connection wants messages framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `/ws…`: payload only.
    Raw,
    /// `/stream…`: `{"stream":…,"data":…}`.
    Combined,
}

/// Splits a WebSocket path into tier, mode and the streams it names.
fn route(head: &RequestHead) -> Result<(Tier, Mode, Vec<String>), String> {
    let (tier, rest) = if let Some(r) = head.path.strip_prefix("/public") {
        (Tier::Public, r)
    } else if let Some(r) = head.path.strip_prefix("/market") {
        (Tier::Market, r)
    } else {
        (Tier::Unrouted, head.path.as_str())
    };
    if rest == "/ws" || rest == "/ws/" {
        return Ok((tier, Mode::Raw, Vec::new()));
    }
    if let Some(names) = rest.strip_prefix("/ws/") {
        return Ok((tier, Mode::Raw, names.split('/').filter(|n| !n.is_empty()).map(String::from).collect()));
    }
    if rest == "/stream" {
        let names = head.param("streams").unwrap_or("");
        return Ok((
            tier,
            Mode::Combined,
            names.split('/').filter(|n| !n.is_empty()).map(String::from).collect(),
        ));
    }
    Err(format!("no WebSocket endpoint at {}", head.path))
}

/// What one user-data connection asked for.
struct UserFeed {
    /// Its listenKeys and the API key each belongs to (named in the URL, or added by
    /// `SUBSCRIBE` as Binance's SDK does).
    keys: Vec<(String, String)>,
    /// The event types delivered (`events`, an allow list); empty: all.
    events: Vec<String>,
    /// Stream mode: each event wrapped as `{"stream":<listenKey>,"data":…}`.
    combined: bool,
}

impl UserFeed {
    /// The frame payload for event `json` (of type `kind`) of API key `owner`, or `None`
    /// when no listenKey of this connection is its or it was not asked for.
    fn payload(&self, owner: &str, kind: &str, json: &str) -> Option<String> {
        let (listen_key, _) = self.keys.iter().find(|(_, o)| o == owner)?;
        if !self.events.is_empty() && !self.events.iter().any(|e| e == kind) {
            return None;
        }
        Some(if self.combined {
            format!("{{\"stream\":{},\"data\":{json}}}", serde_json::Value::from(listen_key.as_str()))
        } else {
            json.to_string()
        })
    }

    /// Answers a `SUBSCRIBE`/`UNSUBSCRIBE` of listenKeys (`{"method":…,"params":[…],"id":…}`);
    /// a key that is not live is refused, as Binance refuses an unknown stream.
    fn request(&mut self, text: &[u8], owner_of: impl Fn(&str) -> Option<String>) -> String {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else {
            return r#"{"error":{"code":2,"msg":"Invalid request"}}"#.into();
        };
        let id = v["id"].clone();
        let keys: Vec<&str> =
            v["params"].as_array().map(|p| p.iter().filter_map(|k| k.as_str()).collect()).unwrap_or_default();
        match v["method"].as_str() {
            Some("SUBSCRIBE") => {
                for key in &keys {
                    let Some(owner) = owner_of(key) else {
                        return serde_json::json!({"error": {"code": 2, "msg": format!("Invalid listenKey {key}")}, "id": id}).to_string();
                    };
                    if !self.keys.iter().any(|(k, _)| k == key) {
                        self.keys.push((key.to_string(), owner));
                    }
                }
            }
            Some("UNSUBSCRIBE") => self.keys.retain(|(k, _)| !keys.contains(&k.as_str())),
            Some("LIST_SUBSCRIPTIONS") => {
                let listed: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
                return serde_json::json!({"result": listed, "id": id}).to_string();
            }
            _ => {
                return serde_json::json!({"error": {"code": 2, "msg": "Invalid request"}, "id": id})
                    .to_string()
            }
        }
        serde_json::json!({"result": null, "id": id}).to_string()
    }
}

/// The `e` of an event's JSON.
fn event_kind(json: &str) -> &str {
    let Some(at) = json.find("\"e\":\"") else { return "" };
    let rest = &json[at + 5..];
    rest.split('"').next().unwrap_or("")
}

/// Serves a user-data stream: the order, algo and account events of its listenKeys' owners
/// that it asked for, as they happen; `listenKeyExpired` once a key lapses, and a close when
/// none is left.
async fn user_session<R, W>(
    reader: R,
    mut writer: W,
    leftover: Vec<u8>,
    shared: Arc<Shared>,
    mut user: UserFeed,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let venue = || shared.venue.lock().unwrap_or_else(|p| p.into_inner());
    let mut events = venue().subscribe_events();
    let (ctrl_tx, mut ctrl_rx) = mpsc::channel(64);
    let reader_task = tokio::spawn(read_frames(reader, leftover, ctrl_tx, shared.limits.max_incoming_per_s));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut out = Vec::new();
    loop {
        out.clear();
        let mut done = false;
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => match user.payload(&e.api_key, event_kind(&e.json), &e.json) {
                    Some(payload) => ws::encode_text(&mut out, payload.as_bytes(), 1),
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            _ = tick.tick() => {
                let lapsed: Vec<(String, String)> = {
                    let v = venue();
                    user.keys.iter().filter(|(k, _)| v.listen_key_owner(k).is_none()).cloned().collect()
                };
                if lapsed.is_empty() {
                    continue;
                }
                for (key, owner) in &lapsed {
                    let expired = serde_json::json!({ "e": "listenKeyExpired", "E": wall_ms(), "listenKey": key });
                    if let Some(payload) = user.payload(owner, "listenKeyExpired", &expired.to_string()) {
                        ws::encode_text(&mut out, payload.as_bytes(), 1);
                    }
                }
                user.keys.retain(|k| !lapsed.contains(k));
                if user.keys.is_empty() {
                    ws::encode_close(&mut out, close_code::NORMAL, "listenKey expired");
                    done = true;
                }
            }
            ctrl = ctrl_rx.recv() => match ctrl {
                Some(Ctrl::Ping(payload)) => ws::encode_frame(&mut out, true, opcode::PONG, &payload),
                Some(Ctrl::Pong) => continue,
                Some(Ctrl::Request(text)) => {
                    let answer = user.request(&text, |k| venue().listen_key_owner(k));
                    ws::encode_text(&mut out, answer.as_bytes(), 1);
                }
                Some(Ctrl::Close { .. }) | None => {
                    ws::encode_close(&mut out, close_code::NORMAL, "");
                    done = true;
                }
            },
        }
        if writer.write_all(&out).await.is_err() || done {
            break;
        }
    }
    reader_task.abort();
}

/// A WebSocket API connection: each text request answered in order, on the same venue as
/// REST (see [`crate::ws_api`]). Like Binance's, it pings on the stream interval and closes
/// a connection whose pongs stop or whose lifetime is up; a shutdown notice (see
/// [`WS_API_SHUTDOWN_PATH`]) is sent as a `serverShutdown` event, the close following after
/// its grace.
async fn ws_api_session<R, W>(reader: R, mut writer: W, leftover: Vec<u8>, shared: Arc<Shared>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    shared.stats().connection_opened();
    let (ctrl_tx, mut ctrl_rx) = mpsc::channel(64);
    // Order entry may burst well past a stream client's subscription rate.
    let reader_task = tokio::spawn(read_frames(reader, leftover, ctrl_tx, 1_000));
    let limits = shared.limits.clone();
    let mut notices = shared.ws_api_notices.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + limits.ping_interval, limits.ping_interval);
    let lifetime = tokio::time::sleep(limits.lifetime);
    tokio::pin!(lifetime);
    // Set by a shutdown notice: when the connection closes.
    let closing = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(closing);
    let mut last_pong = Instant::now();
    let mut out = Vec::new();
    let why: &str = loop {
        out.clear();
        let mut ends = None;
        tokio::select! {
            ctrl = ctrl_rx.recv() => match ctrl {
                Some(Ctrl::Ping(payload)) => ws::encode_frame(&mut out, true, opcode::PONG, &payload),
                Some(Ctrl::Pong) => {
                    last_pong = Instant::now();
                    continue;
                }
                Some(Ctrl::Request(text)) => {
                    let answer = ws_api_answer(&shared, &String::from_utf8_lossy(&text));
                    ws::encode_text(&mut out, answer.as_bytes(), 1);
                }
                Some(Ctrl::Close { code, reason, .. }) => {
                    ws::encode_close(&mut out, code, &reason);
                    ends = Some("ws-api: client closed");
                }
                None => break "ws-api: client gone",
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > limits.pong_timeout {
                    ws::encode_close(&mut out, close_code::POLICY, "pong timeout");
                    ends = Some("ws-api: pong timeout");
                } else {
                    ws::encode_frame(&mut out, true, opcode::PING, wall_ms().to_string().as_bytes());
                }
            },
            notice = notices.recv() => match notice {
                Ok(grace) => {
                    let event = serde_json::json!({ "event": { "e": "serverShutdown", "E": wall_ms() } });
                    ws::encode_text(&mut out, event.to_string().as_bytes(), 1);
                    closing.as_mut().reset(tokio::time::Instant::now() + grace);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break "ws-api: server gone",
            },
            _ = &mut closing => {
                ws::encode_close(&mut out, close_code::GOING_AWAY, "server shutting down");
                ends = Some("ws-api: server shutdown notice");
            },
            _ = &mut lifetime => {
                ws::encode_close(&mut out, close_code::GOING_AWAY, "connection lifetime reached");
                ends = Some("ws-api: lifetime reached");
            },
            _ = shutdown.changed() => {
                ws::encode_close(&mut out, close_code::GOING_AWAY, "server shutting down");
                ends = Some("ws-api: server shutting down");
            },
        }
        if writer.write_all(&out).await.is_err() {
            break "ws-api: write failed";
        }
        if let Some(why) = ends {
            break why;
        }
    };
    shared.stats().connection_closed(why);
    reader_task.abort();
}

/// exchange-sim's own endpoint (not Binance's) announcing a server shutdown on every open
/// WebSocket API connection: `POST /sim/v1/ws-api/shutdown?graceMs=1000` sends each a
/// `serverShutdown` event and closes it `graceMs` later (default 1000, at most 600000).
/// Answers how many connections were told.
pub const WS_API_SHUTDOWN_PATH: &str = "/sim/v1/ws-api/shutdown";

fn announce_shutdown(shared: &Shared, head: &RequestHead) -> rest::Response {
    if head.method != "POST" {
        return control_answer(405, serde_json::json!({ "code": -1000, "msg": "POST only" }));
    }
    let grace = match head.param("graceMs").map(str::parse::<u64>) {
        None => 1_000,
        Some(Ok(ms)) if ms <= 600_000 => ms,
        Some(_) => {
            return control_answer(
                400,
                serde_json::json!({ "code": -1102, "msg": "graceMs must be a whole number in 0..=600000" }),
            )
        }
    };
    let told = shared.ws_api_notices.send(Duration::from_millis(grace)).unwrap_or(0);
    control_answer(200, serde_json::json!({ "connections": told, "graceMs": grace }))
}

/// One WebSocket API request answered through the REST handler it mirrors.
fn ws_api_answer(shared: &Shared, text: &str) -> String {
    let Ok(request) = serde_json::from_str::<serde_json::Value>(text) else {
        return crate::ws_api::refusal(&serde_json::Value::Null, "malformed JSON request");
    };
    let id = &request["id"];
    if id.is_null() {
        return crate::ws_api::refusal(id, "request without an id");
    }
    let Some((method, path)) = request["method"].as_str().and_then(crate::ws_api::route) else {
        return crate::ws_api::refusal(id, &format!("unknown method {}", request["method"]));
    };
    let empty = serde_json::Map::new();
    let params = request["params"].as_object().unwrap_or(&empty);
    let head = crate::ws_api::as_rest(method, path, params);
    let response = trading(shared, &head, "");
    shared.stats().rest(path, response.status);
    let orders_10s = (method == "POST").then(|| {
        let venue = shared.venue.lock().unwrap_or_else(|p| p.into_inner());
        let key = head.header("x-mbx-apikey").unwrap_or("");
        (venue.order_limit_10s(), venue.new_orders_10s(key))
    });
    let usage = crate::ws_api::Usage { weight: (shared.weight_limit, response.used_weight), orders_10s };
    crate::ws_api::frame(id, response.status, &response.body, usage)
}

/// Wall-clock ms since the epoch (ping payloads, user-stream event times).
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Messages from the reader half to the writer half.
enum Ctrl {
    Ping(Vec<u8>),
    Pong,
    Request(Vec<u8>),
    Close { code: u16, reason: String, echo: bool },
}

/// Per-connection subscription state, owned by the writer.
struct Subscriptions {
    /// Canonical stream → the names the client used for it.
    streams: HashMap<Arc<str>, Vec<String>>,
    count: usize,
}

impl Subscriptions {
    fn names(&self) -> Vec<String> {
        let mut all: Vec<String> = self.streams.values().flatten().cloned().collect();
        all.sort();
        all
    }
}

async fn ws_session<S>(io: S, head: RequestHead, leftover: Vec<u8>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(io);
    let Some(key) = head.header("sec-websocket-key").map(str::to_string) else {
        let _ = writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
        return;
    };
    if head.path == crate::ws_api::PATH {
        let accept = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            ws::accept_key(&key)
        );
        if writer.write_all(accept.as_bytes()).await.is_ok() {
            ws_api_session(reader, writer, leftover, shared).await;
        }
        return;
    }
    // `/private/ws?listenKey=…&events=…` (or `/private/stream?…`): a user-data stream, as
    // Binance routes it since 2026; the unrouted root no longer serves user data.
    let owner_of = |lk: &str| shared.venue.lock().unwrap_or_else(|p| p.into_inner()).listen_key_owner(lk);
    if let Some(mode) = head.path.strip_prefix("/private") {
        let combined = mode == "/stream";
        // A listenKey in the URL must be live; stream mode may also start with none and
        // `SUBSCRIBE` its keys (as Binance's SDK does).
        let listen = match head.param("listenKey") {
            Some(lk) => owner_of(lk).map(|owner| vec![(lk.to_string(), owner)]),
            None if combined => Some(Vec::new()),
            None => None,
        };
        let Some(keys) = listen.filter(|_| combined || mode == "/ws") else {
            let body = "{\"code\":-1125,\"msg\":\"This listenKey does not exist.\"}";
            let resp = format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = writer.write_all(resp.as_bytes()).await;
            return;
        };
        // `A/B`, or `A%2FB` from a client that encodes the slash.
        let events = head.param("events").unwrap_or("").replace("%2F", "/").replace("%2f", "/");
        let events: Vec<String> = events.split('/').filter(|e| !e.is_empty()).map(String::from).collect();
        let accept = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            ws::accept_key(&key)
        );
        if writer.write_all(accept.as_bytes()).await.is_ok() {
            let user = UserFeed { keys, events, combined };
            user_session(reader, writer, leftover, shared, user).await;
        }
        return;
    }
    if head.path.strip_prefix("/ws/").and_then(owner_of).is_some() {
        let body = "{\"code\":-1000,\"msg\":\"user data is served on /private/ws?listenKey=<listenKey>&events=<EVENT>/<EVENT>\"}";
        let resp = format!("HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let _ = writer.write_all(resp.as_bytes()).await;
        return;
    }
    let route = route(&head);
    if let Err(reason) = &route {
        let body = format!("{{\"code\":-1000,\"msg\":{}}}", serde_json::Value::from(reason.as_str()));
        let resp = format!("HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let _ = writer.write_all(resp.as_bytes()).await;
        return;
    }
    let Ok((tier, mode, initial)) = route else { return };
    let accept = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(&key)
    );
    if writer.write_all(accept.as_bytes()).await.is_err() {
        return;
    }
    let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    shared.stats().connection_opened();
    // Subscribe to the feed before resolving streams so nothing published after is missed.
    let feed = shared.feed.subscribe();
    let (ctrl_tx, ctrl_rx) = mpsc::channel(64);
    let reader_task = tokio::spawn(read_frames(reader, leftover, ctrl_tx, shared.limits.max_incoming_per_s));
    let mut session = Session {
        shared: shared.clone(),
        tier,
        mode,
        subs: Subscriptions { streams: HashMap::new(), count: 0 },
        out: Vec::with_capacity(FLUSH_BYTES * 2),
        counts: LocalCounts::default(),
        sent: 0,
        rng: crate::rng::Rng::new(shared.seed ^ conn_id.wrapping_mul(0x9E37_79B9)),
        last_pong: Instant::now(),
        rate_window: (Instant::now(), 0),
    };
    let reason = match session.subscribe_names(&initial) {
        Err(reason) => session.close(&mut writer, close_code::POLICY, &reason).await,
        Ok(()) => session.run(&mut writer, feed, ctrl_rx).await,
    };
    reader_task.abort();
    let _ = writer.shutdown().await;
    let mut stats = shared.stats();
    stats.merge_sent(&mut session.counts);
    stats.connection_closed(&reason);
}

struct Session {
    shared: Arc<Shared>,
    tier: Tier,
    mode: Mode,
    subs: Subscriptions,
    out: Vec<u8>,
    counts: LocalCounts,
    sent: u64,
    rng: crate::rng::Rng,
    last_pong: Instant,
    rate_window: (Instant, u32),
}

/// Why a session ended (also the summary's close reason).
type EndReason = String;

impl Session {
    /// Validates and adds streams; on error nothing is added.
    fn subscribe_names(&mut self, names: &[String]) -> Result<(), String> {
        let source = self.shared.source();
        let mut resolved = Vec::with_capacity(names.len());
        for name in names {
            let Some(kind) = source.stream_kind(name) else {
                return Err(format!("unknown stream {name}"));
            };
            if !self.tier.serves(kind) {
                let home = aegis_wire::stream::tier_of(kind).prefix();
                return Err(format!("stream {name} is served on {home}, not {}", self.tier.prefix()));
            }
            resolved.push((canonical_name(source.as_ref(), name), name.clone()));
        }
        drop(source);
        let added =
            resolved.iter().filter(|(c, n)| !self.subs.streams.get(c).is_some_and(|v| v.contains(n))).count();
        let limit = self.shared.limits.max_streams;
        if self.subs.count + added > limit {
            return Err(format!(
                "too many streams: {} requested, limit {limit} per connection",
                self.subs.count + added
            ));
        }
        for (canonical, name) in resolved {
            let names = self.subs.streams.entry(canonical).or_default();
            if !names.contains(&name) {
                names.push(name);
                self.subs.count += 1;
            }
        }
        if self.subs.count > 0 && !self.shared.started.swap(true, Ordering::AcqRel) {
            self.shared.start_signal.notify_one();
        }
        Ok(())
    }

    fn unsubscribe_names(&mut self, names: &[String]) {
        let source = self.shared.source();
        for name in names {
            let canonical = canonical_name(source.as_ref(), name);
            if let Some(list) = self.subs.streams.get_mut(&canonical) {
                if let Some(pos) = list.iter().position(|n| n == name) {
                    list.remove(pos);
                    self.subs.count -= 1;
                }
                if list.is_empty() {
                    self.subs.streams.remove(&canonical);
                }
            }
        }
    }

    async fn run<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        mut feed: broadcast::Receiver<Arc<Msg>>,
        mut ctrl: mpsc::Receiver<Ctrl>,
    ) -> EndReason {
        let limits = self.shared.limits.clone();
        let mut shutdown = self.shared.shutdown.clone();
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        let lifetime = tokio::time::sleep(limits.lifetime);
        tokio::pin!(lifetime);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return self.close(writer, close_code::GOING_AWAY, "server shutting down").await,
                c = ctrl.recv() => match c {
                    None => return "client gone".into(),
                    Some(Ctrl::Ping(payload)) => ws::encode_frame(&mut self.out, true, opcode::PONG, &payload),
                    Some(Ctrl::Pong) => self.last_pong = Instant::now(),
                    Some(Ctrl::Request(text)) => self.handle_request(&text),
                    Some(Ctrl::Close { code, reason, echo }) => {
                        if echo {
                            ws::encode_close(&mut self.out, code, "");
                            let _ = self.flush(writer).await;
                            return "client closed".into();
                        }
                        return self.close(writer, code, &reason).await;
                    }
                },
                _ = ping.tick() => {
                    if self.last_pong.elapsed() > limits.pong_timeout {
                        return self.close(writer, close_code::POLICY, "pong timeout").await;
                    }
                    let stamp = wall_ms().to_string();
                    ws::encode_frame(&mut self.out, true, opcode::PING, stamp.as_bytes());
                },
                _ = &mut lifetime => return self.close(writer, close_code::GOING_AWAY, "connection lifetime reached").await,
                m = feed.recv() => match m {
                    Ok(msg) => {
                        if let Some(end) = self.deliver(writer, &msg).await {
                            return end;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.counts.fault("slow_consumer");
                        return self.close(writer, close_code::POLICY, &format!("slow consumer: {n} messages behind")).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return self.close(writer, close_code::GOING_AWAY, "feed ended").await,
                },
            }
            if (feed.is_empty() || self.out.len() >= FLUSH_BYTES) && self.flush(writer).await.is_err() {
                return "write failed".into();
            }
            if self.counts.total >= 4096 {
                self.shared.stats().merge_sent(&mut self.counts);
            }
        }
    }

    /// Sends one feed message if subscribed, applying connection faults; `Some` ends the session.
    async fn deliver<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, msg: &Msg) -> Option<EndReason> {
        let names = self.subs.streams.get(&msg.stream)?.clone();
        for name in names {
            self.throttle(writer).await;
            self.sent += 1;
            let shared = self.shared.clone();
            let faults = &shared.faults;
            if due(self.sent, faults.drop_after)
                || (faults.drop_prob > 0.0 && self.rng.chance(faults.drop_prob))
            {
                self.counts.fault("drop");
                let _ = self.flush(writer).await;
                return Some("dropped (fault)".into());
            }
            if faults.oversize_after == Some(self.sent) {
                self.counts.fault("oversize");
                let mut big = Vec::with_capacity(faults.oversize_bytes + 16);
                big.extend_from_slice(b"{\"oversize\":\"");
                big.resize(faults.oversize_bytes.saturating_sub(2).max(big.len()), b'x');
                big.extend_from_slice(b"\"}");
                ws::encode_frame(&mut self.out, true, opcode::TEXT, &big);
            }
            let text: std::borrow::Cow<'_, str> = match self.mode {
                Mode::Raw => msg.payload().into(),
                Mode::Combined if *name == *msg.stream => msg.envelope.as_str().into(),
                Mode::Combined => format!("{{\"stream\":\"{name}\",\"data\":{}}}", msg.payload()).into(),
            };
            let fragments = if faults.fragments > 1 && due(self.sent, Some(faults.fragment_every)) {
                self.counts.fault("fragmented");
                faults.fragments
            } else {
                1
            };
            ws::encode_text(&mut self.out, text.as_bytes(), fragments);
            self.counts.message(msg.kind.name(), &msg.symbol);
            if due(self.sent, faults.stall_every) {
                self.counts.fault("stall");
                if self.flush(writer).await.is_err() {
                    return Some("write failed".into());
                }
                tokio::time::sleep(faults.stall_for).await;
            }
        }
        None
    }

    /// Waits for the per-connection rate limit, if any.
    async fn throttle<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) {
        let Some(rate) = self.shared.limits.rate else { return };
        let (start, count) = &mut self.rate_window;
        if start.elapsed() >= Duration::from_secs(1) {
            *start = Instant::now();
            *count = 0;
        }
        if *count >= rate {
            let wait = Duration::from_secs(1).saturating_sub(start.elapsed());
            let _ = self.flush(writer).await;
            tokio::time::sleep(wait).await;
            self.rate_window = (Instant::now(), 0);
        }
        self.rate_window.1 += 1;
    }

    fn handle_request(&mut self, text: &[u8]) {
        let answer = self.answer_request(text);
        self.shared.stats().control_request(answer.is_ok());
        let body = answer.unwrap_or_else(|e| e);
        ws::encode_text(&mut self.out, body.as_bytes(), 1);
    }

    /// Answers SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS like Binance.
    fn answer_request(&mut self, text: &[u8]) -> Result<String, String> {
        let error = |code: i32, msg: &str, id: &serde_json::Value| {
            serde_json::json!({ "error": { "code": code, "msg": msg }, "id": id }).to_string()
        };
        let value: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| error(3, &format!("Invalid JSON: {e}"), &serde_json::Value::Null))?;
        let id = value.get("id").cloned().unwrap_or(serde_json::Value::Null);
        if !(id.is_u64() || id.is_string() || id.is_null()) {
            return Err(error(2, "Invalid request: request ID must be an unsigned integer or a string", &id));
        }
        let method = value
            .get("method")
            .and_then(|m| m.as_str())
            .ok_or_else(|| error(2, "Invalid request: missing method", &id))?;
        let params = || -> Result<Vec<String>, String> {
            let list = value
                .get("params")
                .and_then(|p| p.as_array())
                .ok_or_else(|| error(2, "Invalid request: params must be an array", &id))?;
            list.iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| error(2, "Invalid request: params must be strings", &id))
                })
                .collect()
        };
        match method {
            "SUBSCRIBE" => {
                let names = params()?;
                self.subscribe_names(&names)
                    .map_err(|reason| error(2, &format!("Invalid request: {reason}"), &id))?;
                Ok(serde_json::json!({ "result": null, "id": id }).to_string())
            }
            "UNSUBSCRIBE" => {
                let names = params()?;
                self.unsubscribe_names(&names);
                Ok(serde_json::json!({ "result": null, "id": id }).to_string())
            }
            "LIST_SUBSCRIPTIONS" => {
                Ok(serde_json::json!({ "result": self.subs.names(), "id": id }).to_string())
            }
            other => Err(error(2, &format!("Invalid request: unknown method {other}"), &id)),
        }
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = writer.write_all(&self.out).await;
        self.out.clear();
        result?;
        writer.flush().await
    }

    async fn close<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, code: u16, reason: &str) -> EndReason {
        ws::encode_close(&mut self.out, code, reason);
        let _ = self.flush(writer).await;
        reason.to_string()
    }
}

fn canonical_name(source: &dyn Source, name: &str) -> Arc<str> {
    source.canonical_stream(name).unwrap_or_else(|| name.into())
}

/// Reads client frames, answers protocol errors, enforces the incoming-message limit.
async fn read_frames<R: AsyncRead + Unpin>(
    mut reader: R,
    mut buf: Vec<u8>,
    ctrl: mpsc::Sender<Ctrl>,
    max_per_s: u32,
) {
    let mut window = std::collections::VecDeque::new();
    let mut message: Option<Vec<u8>> = None;
    let mut chunk = vec![0u8; 8192];
    loop {
        loop {
            let (frame, used) = match ws::decode_client_frame(&buf, MAX_CLIENT_FRAME_BYTES) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let _ = ctrl
                        .send(Ctrl::Close { code: e.close_code(), reason: e.to_string(), echo: false })
                        .await;
                    return;
                }
            };
            buf.drain(..used);
            let now = Instant::now();
            window.push_back(now);
            while window.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1)) {
                window.pop_front();
            }
            if window.len() > max_per_s as usize {
                let reason = format!("too many incoming messages: limit {max_per_s} per second");
                let _ = ctrl.send(Ctrl::Close { code: close_code::POLICY, reason, echo: false }).await;
                return;
            }
            let next = match frame.opcode {
                opcode::PING => Ctrl::Ping(frame.payload),
                opcode::PONG => Ctrl::Pong,
                opcode::CLOSE => Ctrl::Close { code: close_code::NORMAL, reason: String::new(), echo: true },
                opcode::BINARY => Ctrl::Close {
                    code: close_code::UNSUPPORTED,
                    reason: "binary frames not accepted".into(),
                    echo: false,
                },
                opcode::TEXT | opcode::CONTINUATION => {
                    let part = match (frame.opcode, message.take()) {
                        (opcode::TEXT, None) => frame.payload,
                        (opcode::CONTINUATION, Some(mut m)) => {
                            m.extend_from_slice(&frame.payload);
                            m
                        }
                        _ => {
                            let reason = "continuation frame out of sequence".to_string();
                            let _ = ctrl
                                .send(Ctrl::Close { code: close_code::PROTOCOL, reason, echo: false })
                                .await;
                            return;
                        }
                    };
                    if part.len() > MAX_CLIENT_FRAME_BYTES {
                        let _ = ctrl
                            .send(Ctrl::Close {
                                code: close_code::TOO_BIG,
                                reason: "message too big".into(),
                                echo: false,
                            })
                            .await;
                        return;
                    }
                    if !frame.fin {
                        message = Some(part);
                        continue;
                    }
                    if std::str::from_utf8(&part).is_err() {
                        let reason = "text message is not UTF-8".to_string();
                        let _ = ctrl.send(Ctrl::Close { code: 1007, reason, echo: false }).await;
                        return;
                    }
                    Ctrl::Request(part)
                }
                _ => continue,
            };
            let closing = matches!(next, Ctrl::Close { .. });
            if ctrl.send(next).await.is_err() || closing {
                return;
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
