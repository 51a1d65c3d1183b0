//! The market-data REST client: exchangeInfo, klines, aggTrades and depth snapshots, each
//! spending from the request-weight budget taken from exchangeInfo's `rateLimits`.

use super::rules::{brackets_served, is_trading, symbol_rules, ServedSymbol};
use super::RestStats;
use crate::net::http::{HttpClient, HttpRequest, RestError};
use aegis_wire::decimal::{parse_fixed8, parse_fixed8_i128, Sign};
use aegis_wire::stream::{depth_weight, klines_weight, AGG_TRADES_WEIGHT};
use aegis_wire::units::MINUTE_MS;
use aegis_wire::{
    AggTrade, DepthChunk, Event, Header, Interval, Kline, Level, Record, Resync, ResyncReason, SymbolId,
    DEPTH_LEVELS_PER_CHUNK,
};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXCHANGE_INFO: &str = "/fapi/v1/exchangeInfo";

/// Where a run's exchangeInfo came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoSource {
    /// The exchange, now.
    Exchange,
    /// The disk cache of an earlier run (the exchange could not be read).
    Cache {
        /// How old the cached copy is, s.
        age_s: u64,
    },
}

/// A blocking market-data client for one exchange base URL (its own kept-alive
/// connections), with a weight budget.
pub struct RestClient {
    http: HttpClient,
    weight_limit: u32,
    window_start: Instant,
    window_used: u32,
    pub(crate) stats: Arc<RestStats>,
}

impl RestClient {
    /// A client for a `http(s)://` base URL, trusting `extra_ca` besides the webpki roots.
    pub fn for_url(
        url: &str,
        extra_ca: Option<&std::path::Path>,
        stats: Arc<RestStats>,
    ) -> Result<Self, crate::net::tls::TlsError> {
        Ok(Self {
            http: HttpClient::new(url, extra_ca)?,
            weight_limit: 2400,
            window_start: Instant::now(),
            window_used: 0,
            stats,
        })
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
            let answer = self.http.send(&HttpRequest { method: "GET", path, headers: &[], body: "" })?;
            if let Some(used) = answer.header("x-mbx-used-weight-1m").and_then(|v| v.parse::<u64>().ok()) {
                self.stats.weight_used.store(used, Ordering::Relaxed);
            }
            match answer.status {
                200 => return Ok(answer.body),
                429 | 418 => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let wait =
                        answer.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(1u64 << attempt);
                    std::thread::sleep(Duration::from_secs(wait.min(60)));
                }
                status => {
                    let body = answer.body.chars().take(200).collect();
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

    /// Reads exchangeInfo: the symbols served with their trading rules, and the
    /// request-weight limit (adopted).
    pub fn exchange_info(&mut self) -> Result<Vec<ServedSymbol>, RestError> {
        let body = self.get(EXCHANGE_INFO, 1)?;
        self.read_exchange_info(&body, EXCHANGE_INFO)
    }

    /// exchangeInfo from the exchange, kept in `cache` (written whole, then renamed into
    /// place) for a restart that finds the exchange unreachable; when the exchange cannot
    /// be read, the cached copy and its age. Without a cache, or with an unreadable one,
    /// the exchange's error.
    pub fn exchange_info_cached(
        &mut self,
        cache: Option<&std::path::Path>,
    ) -> Result<(Vec<ServedSymbol>, InfoSource), RestError> {
        match (self.exchange_info_kept(cache), cache) {
            (Ok(served), _) => Ok((served, InfoSource::Exchange)),
            (Err(fetch), Some(path)) => {
                let Ok(body) = std::fs::read_to_string(path) else { return Err(fetch) };
                let at = path.display().to_string();
                let served = self.read_exchange_info(&body, &at)?;
                let age_s = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map_or(0, |d| d.as_secs());
                tracing::warn!(error = %fetch, cache = %at, age_s, "exchangeInfo unreachable: using the cached copy");
                Ok((served, InfoSource::Cache { age_s }))
            }
            (Err(fetch), None) => Err(fetch),
        }
    }

    /// exchangeInfo from the exchange (the refresh's read), kept in `cache` when given.
    pub fn exchange_info_kept(
        &mut self,
        cache: Option<&std::path::Path>,
    ) -> Result<Vec<ServedSymbol>, RestError> {
        let body = self.get(EXCHANGE_INFO, 1)?;
        let served = self.read_exchange_info(&body, EXCHANGE_INFO)?;
        if let Some(path) = cache {
            if let Err(e) = crate::store::write_whole(path, &body) {
                tracing::warn!(path = %path.display(), error = %e, "exchangeInfo cache not written");
            }
        }
        Ok(served)
    }

    /// Reads an exchangeInfo body (from `from`): the symbols and their rules; adopts its
    /// request-weight limit.
    fn read_exchange_info(&mut self, body: &str, from: &str) -> Result<Vec<ServedSymbol>, RestError> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| RestError::Malformed { path: from.into(), reason: e.to_string() })?;
        if let Some(limit) = value["rateLimits"].as_array().and_then(|limits| {
            limits.iter().find(|l| l["rateLimitType"] == "REQUEST_WEIGHT").and_then(|l| l["limit"].as_u64())
        }) {
            self.weight_limit = limit as u32;
        }
        Ok(value["symbols"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| {
                        Some(ServedSymbol {
                            name: s["symbol"].as_str()?.to_string(),
                            rules: symbol_rules(s),
                            brackets_served: brackets_served(s),
                            trading: is_trading(s),
                        })
                    })
                    .collect()
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
