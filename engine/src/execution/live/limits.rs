//! The exchange's rate limits kept on this side: new orders per window (`ORDERS`) and the
//! minute's request weight (`REQUEST_WEIGHT`), from exchangeInfo's `rateLimits` and kept in
//! step with what the exchange reports back (headers, the WebSocket API's `rateLimits`).

use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One order-count window (`rateLimitType = ORDERS`).
#[derive(Clone, Debug)]
struct Window {
    span: Duration,
    limit: usize,
    sent: VecDeque<Instant>,
}

impl Window {
    /// Forgets the orders placed longer ago than the window.
    fn expire(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.span) {
            self.sent.pop_front();
        }
    }
}

/// The length of a `rateLimits` entry's window (`interval` × `intervalNum`), as exchangeInfo
/// and the WebSocket API's answers write it.
pub fn window(limit: &Value) -> Option<Duration> {
    let unit = match limit["interval"].as_str()? {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3_600,
        "DAY" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(unit * limit["intervalNum"].as_u64()?))
}

/// Counts new orders against exchangeInfo's `ORDERS` limits and refuses, before sending,
/// one that would break them.
#[derive(Clone, Debug, Default)]
pub struct OrderLimiter {
    windows: Vec<Window>,
}

impl OrderLimiter {
    /// Limits from exchangeInfo's `rateLimits` array (entries other than `ORDERS` ignored).
    pub fn from_rate_limits(rate_limits: &Value) -> Self {
        let windows = rate_limits
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["rateLimitType"] == "ORDERS")
            .filter_map(|l| {
                Some(Window { span: window(l)?, limit: l["limit"].as_u64()? as usize, sent: VecDeque::new() })
            })
            .collect();
        Self { windows }
    }

    /// Adopts the exchange's count of new orders in the window `span` long (the WebSocket
    /// API reports it with each answer): orders it knows of that this limiter does not are
    /// counted as placed `now`, so the limiter never lets more through than the exchange.
    pub fn reported(&mut self, span: Duration, count: usize, now: Instant) {
        for w in self.windows.iter_mut().filter(|w| w.span == span) {
            w.expire(now);
            for _ in w.sent.len()..count {
                w.sent.push_back(now);
            }
        }
    }

    /// Takes one order from every window at `now`, or says how long until one frees up.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        for w in &mut self.windows {
            w.expire(now);
        }
        if let Some(wait) = self
            .windows
            .iter()
            .filter(|w| w.sent.len() >= w.limit)
            .filter_map(|w| w.sent.front().map(|t| w.span.saturating_sub(now.duration_since(*t))))
            .max()
        {
            return Err(wait);
        }
        for w in &mut self.windows {
            w.sent.push_back(now);
        }
        Ok(())
    }
}

/// The request weight used this minute, as the exchange last reported it
/// (`X-MBX-USED-WEIGHT-1M`), against exchangeInfo's `REQUEST_WEIGHT` limit.
#[derive(Clone, Debug, Default)]
pub struct WeightBudget {
    limit: Option<u32>,
    used: u32,
    window: Option<Instant>,
}

impl WeightBudget {
    /// The limit from exchangeInfo's `rateLimits` (none: unlimited until told).
    pub fn from_rate_limits(rate_limits: &Value) -> Self {
        let limit = rate_limits
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| {
                l["rateLimitType"] == "REQUEST_WEIGHT" && l["interval"] == "MINUTE" && l["intervalNum"] == 1
            })
            .and_then(|l| l["limit"].as_u64())
            .map(|l| l as u32);
        Self { limit, used: 0, window: None }
    }

    /// Whether `weight` more fits this minute; else how long until the minute turns.
    pub(crate) fn check(&mut self, weight: u32, now: Instant) -> Result<(), Duration> {
        let start = *self.window.get_or_insert(now);
        if now.duration_since(start) >= Duration::from_secs(60) {
            (self.window, self.used) = (Some(now), 0);
        }
        match self.limit {
            Some(limit) if self.used + weight > limit => {
                Err(Duration::from_secs(60).saturating_sub(now.duration_since(start)))
            }
            _ => Ok(()),
        }
    }

    /// Adopts the exchange's count after an answer.
    pub(crate) fn reported(&mut self, used: u32) {
        self.used = used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_budget_refuses_what_would_overspend_the_minute() {
        let limits: Value = serde_json::from_str(
            r#"[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":10}]"#,
        )
        .unwrap();
        let mut budget = WeightBudget::from_rate_limits(&limits);
        let t0 = Instant::now();
        assert!(budget.check(5, t0).is_ok());
        budget.reported(8);
        assert_eq!(budget.check(5, t0 + Duration::from_secs(20)), Err(Duration::from_secs(40)));
        assert!(budget.check(2, t0 + Duration::from_secs(20)).is_ok());
        assert!(budget.check(5, t0 + Duration::from_secs(60)).is_ok(), "a new minute");
        assert!(WeightBudget::default().check(1_000_000, t0).is_ok(), "no limit known: nothing refused");
    }

    #[test]
    fn the_order_limiter_follows_exchange_info() {
        let limits: Value = serde_json::from_str(
            r#"[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400},
                {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":2},
                {"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":3}]"#,
        )
        .unwrap();
        let mut limiter = OrderLimiter::from_rate_limits(&limits);
        let t0 = Instant::now();
        assert!(limiter.take(t0).is_ok() && limiter.take(t0).is_ok());
        assert_eq!(
            limiter.take(t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(9)),
            "10 s window full"
        );
        assert!(limiter.take(t0 + Duration::from_secs(10)).is_ok(), "the 10 s window freed up");
        let mut told = OrderLimiter::from_rate_limits(&limits);
        told.reported(Duration::from_secs(10), 2, t0);
        assert!(told.take(t0).is_err(), "the exchange counted 2 in 10 s: the window is full");
        told.reported(Duration::from_secs(10), 1, t0);
        assert!(told.take(t0 + Duration::from_secs(11)).is_ok(), "a lower count never frees room early");
        let wait = limiter.take(t0 + Duration::from_secs(11)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(49), "the minute window: 3 sent since t0");
    }
}
