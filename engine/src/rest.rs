//! The one REST client (exchangeInfo, klines for warm-up and gap fills, depth snapshots)
//! and the worker thread that serves the brain's requests off the hot path.
//!
//! Every call spends from a request-weight budget taken from exchangeInfo's `rateLimits`
//! (Binance answers overspenders with 429, then bans with 418): the worker waits for the
//! next minute rather than overspend, and backs off on a 429. Results go back to the brain
//! as ordinary records through their own ring.

use crate::brain::bar::MINUTE_MS;
use crate::ring::RingProducer;
use aegis_trading::rules::{Bracket, SymbolRules};
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, Sign};
use aegis_wire::stream::{depth_weight, klines_weight, AGG_TRADES_WEIGHT};
use aegis_wire::{
    AggTrade, DepthChunk, Event, Header, Interval, Kline, Level, Record, Resync, ResyncReason, SymbolId,
    SymbolTable, DEPTH_LEVELS_PER_CHUNK,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the brain asks the REST worker for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestRequest {
    /// Closed 1m klines opening in `[start_ms, end_ms]`; `start_ms = i64::MIN` means the
    /// warm-up (the latest `warmup_bars`), `end_ms = i64::MAX` means up to now.
    Klines {
        /// Symbol.
        symbol: SymbolId,
        /// First open time wanted.
        start_ms: i64,
        /// Last open time wanted.
        end_ms: i64,
    },
    /// A depth snapshot.
    Depth {
        /// Symbol.
        symbol: SymbolId,
    },
    /// The aggTrades with agg ids in `[from_id, to_id]` (missed on the stream).
    AggTrades {
        /// Symbol.
        symbol: SymbolId,
        /// First agg id wanted.
        from_id: u64,
        /// Last agg id wanted.
        to_id: u64,
    },
}

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Connecting, writing or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The request path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The exchange answered with an error status.
    #[error("{path}: HTTP {status}: {body}")]
    Status {
        /// The request path.
        path: String,
        /// Status code.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// The weight budget of this minute is spent; retry after `wait`.
    #[error("request-weight budget spent; next window in {wait:?}")]
    Budget {
        /// Time until the next window.
        wait: Duration,
    },
    /// The body was not what the endpoint documents.
    #[error("{path}: unexpected response: {reason}")]
    Malformed {
        /// The request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Counters of the REST client.
#[derive(Default, Debug)]
pub struct RestStats {
    /// Requests made.
    pub requests: AtomicU64,
    /// Weight used in the current minute (as the exchange reports it).
    pub weight_used: AtomicU64,
    /// 429 answers received.
    pub rate_limited: AtomicU64,
    /// Requests that failed for good.
    pub failures: AtomicU64,
}

/// A blocking HTTP/1.1 client for one exchange base URL, with a weight budget.
pub struct RestClient {
    tls: Option<Arc<rustls::ClientConfig>>,
    addr: SocketAddr,
    host: String,
    weight_limit: u32,
    window_start: Instant,
    window_used: u32,
    stats: Arc<RestStats>,
}

impl RestClient {
    /// A client for `host:port` (plain HTTP).
    pub fn new(addr: SocketAddr, host: &str, stats: Arc<RestStats>) -> Self {
        Self {
            tls: None,
            addr,
            host: host.to_string(),
            weight_limit: 2400,
            window_start: Instant::now(),
            window_used: 0,
            stats,
        }
    }

    /// The same client speaking HTTPS with `config`.
    pub fn with_tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Spends `weight` from this minute's budget, leaving `reserve` untouched, or says how
    /// long until the next window (the caller waits rather than overspend).
    fn spend(&mut self, weight: u32, reserve: u32) -> Result<(), RestError> {
        if self.window_start.elapsed() >= Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.window_used = 0;
        }
        if self.window_used + weight > self.weight_limit.saturating_sub(reserve) {
            return Err(RestError::Budget {
                wait: Duration::from_secs(60).saturating_sub(self.window_start.elapsed()),
            });
        }
        self.window_used += weight;
        Ok(())
    }

    /// GETs `path`, spending `weight`; retries a 429 up to five times.
    pub fn get(&mut self, path: &str, weight: u32) -> Result<String, RestError> {
        self.get_leaving(path, weight, 0)
    }

    /// GETs `path` only if `reserve` weight stays unspent this minute.
    fn get_leaving(&mut self, path: &str, weight: u32, reserve: u32) -> Result<String, RestError> {
        for attempt in 0..5 {
            self.spend(weight, reserve)?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (status, headers, body) = self.exchange(path)?;
            if let Some(used) = header(&headers, "x-mbx-used-weight-1m").and_then(|v| v.parse::<u64>().ok()) {
                self.stats.weight_used.store(used, Ordering::Relaxed);
            }
            match status {
                200 => return Ok(body),
                429 | 418 => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let wait = header(&headers, "retry-after")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1u64 << attempt);
                    std::thread::sleep(Duration::from_secs(wait.min(60)));
                }
                _ => {
                    let body = body.chars().take(200).collect();
                    return Err(RestError::Status { path: path.to_string(), status, body });
                }
            }
        }
        Err(RestError::Status {
            path: path.to_string(),
            status: 429,
            body: "still rate-limited after 5 tries".into(),
        })
    }

    fn exchange(&self, path: &str) -> Result<(u16, String, String), RestError> {
        http_request(
            &self.addr,
            &self.host,
            self.tls.as_ref(),
            &HttpRequest { method: "GET", path, headers: &[], body: "" },
        )
    }

    /// Reads exchangeInfo: the symbols served with their trading rules, and the
    /// request-weight limit (adopted).
    pub fn exchange_info(&mut self) -> Result<Vec<ServedSymbol>, RestError> {
        let path = "/fapi/v1/exchangeInfo";
        let body = self.get(path, 1)?;
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| RestError::Malformed { path: path.into(), reason: e.to_string() })?;
        if let Some(limit) = value["rateLimits"].as_array().and_then(|limits| {
            limits.iter().find(|l| l["rateLimitType"] == "REQUEST_WEIGHT").and_then(|l| l["limit"].as_u64())
        }) {
            self.weight_limit = limit as u32;
        }
        Ok(value["symbols"]
            .as_array()
            .map(|s| {
                s.iter().filter_map(|s| Some((s["symbol"].as_str()?.to_string(), symbol_rules(s)))).collect()
            })
            .unwrap_or_default())
    }

    /// The exchange's clock, ms.
    pub fn server_time(&mut self) -> Result<i64, RestError> {
        let path = "/fapi/v1/time";
        let body = self.get(path, 1)?;
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| RestError::Malformed { path: path.into(), reason: e.to_string() })?;
        value["serverTime"]
            .as_i64()
            .ok_or_else(|| RestError::Malformed { path: path.into(), reason: "no serverTime".into() })
    }

    /// 1m klines of `symbol` as records (closed only), for `start_ms..=end_ms` or the latest
    /// `warmup` bars when `start_ms` is `i64::MIN`.
    pub fn closed_klines(
        &mut self,
        symbol: SymbolId,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        warmup: usize,
    ) -> Result<Vec<Record>, RestError> {
        let now = self.server_time()?;
        let mut out = Vec::new();
        let mut next = start_ms;
        loop {
            // The smallest limit that covers the range keeps the weight down.
            let wanted = if next == i64::MIN {
                warmup
            } else {
                usize::try_from(end_ms.min(now).saturating_sub(next) / MINUTE_MS + 2).unwrap_or(1500)
            };
            let limit = wanted.clamp(1, 1500);
            let path = if next == i64::MIN {
                format!("/fapi/v1/klines?symbol={name}&interval=1m&limit={limit}")
            } else if end_ms == i64::MAX {
                format!("/fapi/v1/klines?symbol={name}&interval=1m&startTime={next}&limit={limit}")
            } else {
                format!("/fapi/v1/klines?symbol={name}&interval=1m&startTime={next}&endTime={end_ms}&limit={limit}")
            };
            let body = self.get(&path, klines_weight(limit))?;
            let rows: Vec<Value> = serde_json::from_str(&body)
                .map_err(|e| RestError::Malformed { path: path.clone(), reason: e.to_string() })?;
            let count = rows.len();
            let before = next;
            for row in &rows {
                let kline = kline_row(row).ok_or_else(|| RestError::Malformed {
                    path: path.clone(),
                    reason: format!("bad kline row {row}"),
                })?;
                if kline.close_time_ms >= now || kline.open_time_ms > end_ms {
                    continue; // still open, or past the range
                }
                next = kline.open_time_ms + MINUTE_MS;
                out.push(Record {
                    header: Header { symbol, event_time_ms: kline.close_time_ms, recv_ns: 0 },
                    event: Event::Kline(kline),
                });
            }
            // Done after the warm-up page (the latest bars, nothing to page through), a short
            // page, the end of the range, or a page of nothing closed yet (the exchange's
            // current minute): asking again would return the same still-open bar forever.
            let warmup_page = start_ms == i64::MIN;
            if warmup_page || next == before || count < limit || next > end_ms || next >= now {
                return Ok(out);
            }
        }
    }

    /// The aggTrades with agg ids in `[from_id, to_id]` the exchange still has, oldest
    /// first, paging by 1,000; then a `TradesFilled` notice.
    pub fn agg_trades(
        &mut self,
        symbol: SymbolId,
        name: &str,
        from_id: u64,
        to_id: u64,
    ) -> Result<Vec<Record>, RestError> {
        let mut out = Vec::new();
        let mut next = from_id;
        while next <= to_id {
            let limit = (to_id - next + 1).min(1_000);
            let path = format!("/fapi/v1/aggTrades?symbol={name}&fromId={next}&limit={limit}");
            // Like depth snapshots, trade fills leave a quarter of the minute's weight to
            // the kline fills the bars wait on.
            let body = self.get_leaving(&path, AGG_TRADES_WEIGHT, self.weight_limit / 4)?;
            let rows: Vec<Value> = serde_json::from_str(&body)
                .map_err(|e| RestError::Malformed { path: path.clone(), reason: e.to_string() })?;
            let before = next;
            for row in &rows {
                let trade = agg_trade_row(row).ok_or_else(|| RestError::Malformed {
                    path: path.clone(),
                    reason: format!("bad aggTrade row {row}"),
                })?;
                if trade.agg_id < next || trade.agg_id > to_id {
                    continue;
                }
                next = trade.agg_id + 1;
                out.push(Record {
                    header: Header { symbol, event_time_ms: trade.trade_time_ms, recv_ns: 0 },
                    event: Event::AggTrade(trade),
                });
            }
            // A short page or no progress: the exchange has nothing more in the range.
            if next == before || (rows.len() as u64) < limit {
                break;
            }
        }
        out.push(Record {
            header: Header { symbol, event_time_ms: 0, recv_ns: 0 },
            event: Event::Resync(Resync { reason: ResyncReason::TradesFilled }),
        });
        Ok(out)
    }

    /// A depth snapshot of `symbol` as snapshot chunks.
    pub fn depth_snapshot(
        &mut self,
        symbol: SymbolId,
        name: &str,
        limit: usize,
    ) -> Result<Vec<Record>, RestError> {
        let path = format!("/fapi/v1/depth?symbol={name}&limit={limit}");
        // Snapshots leave a quarter of the budget to kline fills, which bars wait on.
        let body = self.get_leaving(&path, depth_weight(limit), self.weight_limit / 4)?;
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| RestError::Malformed { path: path.clone(), reason: e.to_string() })?;
        let bad = |reason: &str| RestError::Malformed { path: path.clone(), reason: reason.to_string() };
        let last_update_id = value["lastUpdateId"].as_u64().ok_or_else(|| bad("no lastUpdateId"))?;
        let mut levels = Vec::new();
        for (side, key) in [(true, "bids"), (false, "asks")] {
            for level in value[key].as_array().ok_or_else(|| bad("no levels"))? {
                let p = level[0].as_str().and_then(|s| parse_fixed8(s.as_bytes(), Sign::Forbidden).ok());
                let q = level[1].as_str().and_then(|s| parse_fixed8(s.as_bytes(), Sign::Forbidden).ok());
                let (Some(price), Some(qty)) = (p, q) else { return Err(bad("bad level")) };
                levels.push((side, Level { price, qty }));
            }
        }
        let time = value["T"].as_i64().unwrap_or(0);
        let mut out = Vec::new();
        let chunks: Vec<&[(bool, Level)]> =
            if levels.is_empty() { vec![&[]] } else { levels.chunks(DEPTH_LEVELS_PER_CHUNK).collect() };
        let parts = chunks.len();
        for (part, group) in chunks.into_iter().enumerate() {
            let mut chunk = DepthChunk {
                first_update_id: last_update_id,
                final_update_id: last_update_id,
                prev_final_update_id: -1,
                transaction_time_ms: time,
                snapshot: true,
                part: part as u16,
                last: part + 1 == parts,
                ..DepthChunk::EMPTY
            };
            // Bids precede asks in `levels`, so a chunk's bids come first within it too.
            for (i, (is_bid, level)) in group.iter().enumerate() {
                chunk.levels[i] = *level;
                if *is_bid {
                    chunk.bid_count += 1;
                } else {
                    chunk.ask_count += 1;
                }
            }
            out.push(Record {
                header: Header { symbol, event_time_ms: time, recv_ns: 0 },
                event: Event::Depth(chunk),
            });
        }
        Ok(out)
    }
}

/// One HTTP/1.1 request (`Connection: close`).
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, `DELETE`.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Extra headers (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// Form body (`application/x-www-form-urlencoded`), empty for none.
    pub body: &'a str,
}

/// Sends `request` to `addr` (TLS when `tls` is given, verifying `host`), reads the answer
/// to the end; returns the status, the head (lowercase) and the body.
pub fn http_request(
    addr: &SocketAddr,
    host: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &HttpRequest,
) -> Result<(u16, String, String), RestError> {
    let path = request.path;
    let io = |source| RestError::Io { path: path.to_string(), source };
    let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    let mut text = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aegis\r\nConnection: close\r\n",
        request.method
    );
    for (name, value) in request.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() {
        text.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            request.body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(request.body);
    let mut raw = Vec::new();
    match tls {
        None => {
            let mut stream = stream;
            stream.write_all(text.as_bytes()).map_err(io)?;
            stream.read_to_end(&mut raw).map_err(io)?;
        }
        Some(config) => {
            let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let session = crate::feed::tls::session(config, name)
                .map_err(|e| RestError::Malformed { path: path.to_string(), reason: e.to_string() })?;
            let mut tls = rustls::StreamOwned::new(session, stream);
            tls.write_all(text.as_bytes()).map_err(io)?;
            // A server may end without close_notify; what was read so far is the answer.
            if let Err(e) = tls.read_to_end(&mut raw) {
                if raw.is_empty() {
                    return Err(io(e));
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let malformed =
        |reason: &str| RestError::Malformed { path: path.to_string(), reason: reason.to_string() };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| malformed("no header end"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| malformed("no status"))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// A header's value in a lowercase response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
}

/// One row of `/fapi/v1/aggTrades`.
fn agg_trade_row(row: &Value) -> Option<AggTrade> {
    let px = |key: &str| parse_fixed8(row[key].as_str()?.as_bytes(), Sign::Forbidden).ok();
    Some(AggTrade {
        agg_id: row["a"].as_u64()?,
        price: px("p")?,
        qty: px("q")?,
        first_trade_id: row["f"].as_u64()?,
        last_trade_id: row["l"].as_u64()?,
        trade_time_ms: row["T"].as_i64()?,
        buyer_is_maker: row["m"].as_bool()?,
    })
}

fn kline_row(row: &Value) -> Option<Kline> {
    let px = |i: usize| parse_fixed8(row[i].as_str()?.as_bytes(), Sign::Forbidden).ok();
    let vol = |i: usize| parse_fixed8_i128(row[i].as_str()?.as_bytes(), Sign::Forbidden).ok();
    Some(Kline {
        interval: Interval::M1,
        open_time_ms: row[0].as_i64()?,
        close_time_ms: row[6].as_i64()?,
        first_trade_id: -1,
        last_trade_id: -1,
        open: px(1)?,
        high: px(2)?,
        low: px(3)?,
        close: px(4)?,
        volume: vol(5)?,
        quote_volume: vol(7)?,
        trades: row[8].as_u64()?,
        taker_buy_volume: vol(9)?,
        taker_buy_quote_volume: vol(10)?,
        closed: true,
    })
}

/// Serves the brain's requests until `stop`: fetches, converts, pushes results.
pub fn run_worker(
    mut client: RestClient,
    symbols: Arc<SymbolTable>,
    mut requests: rtrb::Consumer<RestRequest>,
    mut results: RingProducer,
    warmup: usize,
    depth_limit: usize,
    stop: Arc<AtomicBool>,
) {
    let mut queue: std::collections::VecDeque<RestRequest> = std::collections::VecDeque::new();
    // Set while depth snapshots and trade fills are out of budget: kline fills still go
    // (from the reserve those two leave).
    let mut low_priority_blocked_until: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(req) = requests.pop() {
            // Requests already queued are merged (staggering re-snapshots). Kline fills jump
            // the queue: they are cheap, and a symbol's bars (and features) wait on them,
            // while a storm of depth re-snapshots or trade fills (weight 20 each) could
            // otherwise starve them of weight.
            if queue.contains(&req) {
                continue;
            }
            match req {
                RestRequest::Klines { .. } => queue.push_front(req),
                RestRequest::Depth { .. } | RestRequest::AggTrades { .. } => queue.push_back(req),
            }
        }
        let low_priority_blocked = low_priority_blocked_until.is_some_and(|t| Instant::now() < t);
        let next = if low_priority_blocked {
            queue.iter().position(|r| matches!(r, RestRequest::Klines { .. })).and_then(|i| queue.remove(i))
        } else {
            queue.pop_front()
        };
        let Some(req) = next else {
            std::thread::sleep(Duration::from_millis(if low_priority_blocked { 20 } else { 1 }));
            continue;
        };
        let outcome = match req {
            RestRequest::Klines { symbol, start_ms, end_ms } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.closed_klines(symbol, &name, start_ms, end_ms, warmup).map(|mut records| {
                    records.push(Record {
                        header: Header { symbol, event_time_ms: 0, recv_ns: 0 },
                        event: Event::Resync(Resync { reason: ResyncReason::GapFilled }),
                    });
                    records
                })
            }
            RestRequest::Depth { symbol } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.depth_snapshot(symbol, &name, depth_limit)
            }
            RestRequest::AggTrades { symbol, from_id, to_id } => {
                let name = symbols.name(symbol).unwrap_or_default().to_string();
                client.agg_trades(symbol, &name, from_id, to_id)
            }
        };
        match outcome {
            Ok(records) => {
                for record in &records {
                    while !results.try_push(record) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                results.wake();
            }
            Err(RestError::Budget { wait }) if !matches!(req, RestRequest::Klines { .. }) => {
                low_priority_blocked_until = Some(Instant::now() + wait);
                queue.push_front(req);
            }
            Err(RestError::Budget { wait }) => {
                // Wait for the next window in small steps, so a stop is honoured.
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                queue.push_front(req);
            }
            Err(e) => {
                client.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "REST request failed; retrying later");
                std::thread::sleep(Duration::from_millis(200));
                queue.push_back(req);
            }
        }
    }
}

/// A symbol exchangeInfo lists, with its trading rules or why they could not be read.
pub type ServedSymbol = (String, Result<SymbolRules, String>);

/// A symbol's trading rules from its exchangeInfo entry: `PRICE_FILTER.tickSize`,
/// `LOT_SIZE.stepSize`/`minQty`, `MIN_NOTIONAL.notional`, and leverage brackets from
/// `leverageBrackets` when the exchange includes them (exchange-sim does; Binance serves
/// them from a signed endpoint) else Binance's published BTCUSDT brackets. A missing or
/// unreadable filter is an error naming it: the engine then refuses to trade the symbol.
pub fn symbol_rules(entry: &Value) -> Result<SymbolRules, String> {
    let filters = entry["filters"].as_array().ok_or("no filters")?;
    let filter = |kind: &str, key: &str| -> Result<f64, String> {
        let f = filters.iter().find(|f| f["filterType"] == kind).ok_or(format!("no {kind} filter"))?;
        let text = f[key].as_str().map(str::to_string).or_else(|| f[key].as_f64().map(|v| v.to_string()));
        text.and_then(|t| t.parse::<f64>().ok()).ok_or(format!("{kind}.{key} missing or not a number"))
    };
    let brackets = match entry["leverageBrackets"].as_array() {
        Some(list) => list
            .iter()
            .map(|b| {
                let num = |k: &str| b[k].as_f64().or_else(|| b[k].as_str().and_then(|t| t.parse().ok()));
                Some(Bracket {
                    notional_cap: num("notionalCap")?,
                    max_leverage: num("initialLeverage")?,
                    maint_margin_rate: num("maintMarginRatio")?,
                    maint_amount: num("cum")?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("leverageBrackets entry missing a field")?,
        None => SymbolRules::usdm_default().brackets().to_vec(),
    };
    SymbolRules::new(
        filter("LOT_SIZE", "stepSize")?,
        filter("LOT_SIZE", "minQty")?,
        filter("PRICE_FILTER", "tickSize")?,
        filter("MIN_NOTIONAL", "notional")?,
        brackets,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_info_filters_become_rules_or_a_named_refusal() {
        let entry: Value = serde_json::from_str(
            r#"{"symbol":"ETHUSDT","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"100000","tickSize":"0.01"},
            {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"10000","stepSize":"0.001"},
            {"filterType":"MIN_NOTIONAL","notional":"20"}]}"#,
        )
        .unwrap();
        let rules = symbol_rules(&entry).unwrap();
        assert_eq!(
            (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional),
            (0.01, 0.001, 0.001, 20.0)
        );
        assert_eq!(
            rules.brackets(),
            SymbolRules::usdm_default().brackets(),
            "Binance's brackets when none are served"
        );
        let mut no_lot = entry.clone();
        no_lot["filters"].as_array_mut().unwrap().remove(1);
        assert_eq!(symbol_rules(&no_lot).unwrap_err(), "no LOT_SIZE filter");
        let mut bad_tick = entry.clone();
        bad_tick["filters"][0]["tickSize"] = Value::from("x");
        assert_eq!(symbol_rules(&bad_tick).unwrap_err(), "PRICE_FILTER.tickSize missing or not a number");
        let mut zero = entry;
        zero["filters"][1]["stepSize"] = Value::from("0");
        assert!(symbol_rules(&zero).unwrap_err().contains("step_size"));
    }
}
