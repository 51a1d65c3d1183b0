//! Orders as Binance USDⓈ-M takes and reports them: what to send, and what came back.

use aegis_wire::decimal::{parse_fixed8, Sign};
use serde_json::Value;

/// Order side: the market records' `Side` (BUY or SELL), one enum for the whole engine.
pub use aegis_wire::record::Side;

/// What kind of order, with its prices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderKind {
    /// Fills at once at the book's prices.
    Market,
    /// Good till cancelled at `price` or better.
    Limit {
        /// Limit price.
        price: f64,
    },
    /// Reduce-only stop loss: a market order once the price reaches `stop`.
    StopMarket {
        /// Trigger price.
        stop: f64,
    },
    /// Reduce-only take profit: a market order once the price reaches `stop`.
    TakeProfitMarket {
        /// Trigger price.
        stop: f64,
    },
}

/// A new order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRequest {
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Kind and prices.
    pub kind: OrderKind,
    /// Quantity (already on the symbol's step).
    pub quantity: f64,
    /// `newClientOrderId`: the same id on a retry makes the retry idempotent.
    pub client_id: String,
}

impl OrderRequest {
    /// The request's parameters (before `recvWindow`, `timestamp`, `signature`).
    pub fn params(&self) -> String {
        let side = match self.side {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        };
        let mut p = format!("symbol={}&side={side}", self.symbol);
        match self.kind {
            OrderKind::Market => p.push_str("&type=MARKET"),
            OrderKind::Limit { price } => {
                p.push_str(&format!("&type=LIMIT&timeInForce=GTC&price={}", decimal(price)))
            }
            OrderKind::StopMarket { stop } => {
                p.push_str(&format!("&type=STOP_MARKET&stopPrice={}&reduceOnly=true", decimal(stop)))
            }
            OrderKind::TakeProfitMarket { stop } => {
                p.push_str(&format!("&type=TAKE_PROFIT_MARKET&stopPrice={}&reduceOnly=true", decimal(stop)))
            }
        }
        p.push_str(&format!("&quantity={}&newClientOrderId={}", decimal(self.quantity), self.client_id));
        p
    }
}

/// A price or quantity as Binance wants it: plain decimal, no exponent, no trailing zeros.
pub fn decimal(v: f64) -> String {
    let text = format!("{v:.8}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// An order's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, nothing filled.
    New,
    /// Partly filled, the rest open.
    PartiallyFilled,
    /// Filled.
    Filled,
    /// Cancelled.
    Canceled,
    /// Expired (a market order's unfillable rest, or a GTX refusal).
    Expired,
    /// Rejected by the matching engine.
    Rejected,
}

impl OrderStatus {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "NEW" => Self::New,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "CANCELED" => Self::Canceled,
            "EXPIRED" | "EXPIRED_IN_MATCH" => Self::Expired,
            "REJECTED" => Self::Rejected,
            _ => return None,
        })
    }

    /// Still working at the exchange.
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled)
    }
}

/// An order as the exchange reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderState {
    /// Exchange id.
    pub order_id: u64,
    /// Our id.
    pub client_id: String,
    /// Symbol.
    pub symbol: String,
    /// Status.
    pub status: OrderStatus,
    /// Quantity ordered.
    pub orig_qty: f64,
    /// Quantity filled.
    pub executed_qty: f64,
    /// Average fill price (0 before any fill).
    pub avg_price: f64,
}

impl OrderState {
    /// Reads an order answer (`POST`/`GET`/`DELETE /fapi/v1/order`, `openOrders` entries);
    /// `None` when a field is missing or malformed.
    pub fn from_json(v: &Value) -> Option<Self> {
        let num = |key: &str| -> Option<f64> {
            let fixed = parse_fixed8(v[key].as_str()?.as_bytes(), Sign::Forbidden).ok()?;
            Some(aegis_wire::decimal::to_f64(fixed.into()))
        };
        Some(Self {
            order_id: v["orderId"].as_u64()?,
            client_id: v["clientOrderId"].as_str()?.to_string(),
            symbol: v["symbol"].as_str()?.to_string(),
            status: OrderStatus::parse(v["status"].as_str()?)?,
            orig_qty: num("origQty")?,
            executed_qty: num("executedQty")?,
            avg_price: num("avgPrice")?,
        })
    }
}

/// `newClientOrderId`s unique across restarts: a per-run prefix (start time, base 36) and a
/// counter; at most 36 characters of `[A-Za-z0-9-_.]`, as Binance requires.
#[derive(Clone, Debug)]
pub struct ClientIds {
    prefix: String,
    next: u64,
}

impl ClientIds {
    /// Ids for a run started at `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self { prefix: format!("aegis-{}", base36(start_ms.unsigned_abs())), next: 1 }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        let id = format!("{}-{}", self.prefix, base36(self.next));
        self.next += 1;
        id
    }
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_binances_parameters() {
        let limit = OrderRequest {
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Limit { price: 9000.0 },
            quantity: 1.0,
            client_id: "c1".into(),
        };
        assert_eq!(
            limit.params(),
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&price=9000&quantity=1&newClientOrderId=c1"
        );
        let stop = OrderRequest {
            side: Side::Sell,
            kind: OrderKind::StopMarket { stop: 61_234.5 },
            quantity: 0.003,
            ..limit
        };
        assert_eq!(
            stop.params(),
            "symbol=BTCUSDT&side=SELL&type=STOP_MARKET&stopPrice=61234.5&reduceOnly=true&quantity=0.003&newClientOrderId=c1"
        );
        assert_eq!(decimal(1e-8), "0.00000001");
        assert_eq!(decimal(0.0), "0");
    }

    #[test]
    fn client_ids_are_unique_short_and_legal() {
        let mut ids = ClientIds::new(1_767_225_600_000);
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert!(a.len() <= 36 && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{a}");
        assert_ne!(ClientIds::new(1_767_225_600_001).next_id(), ClientIds::new(1_767_225_600_000).next_id());
    }

    #[test]
    fn order_answers_are_read_or_refused() {
        let v: Value = serde_json::from_str(
            r#"{"orderId":7,"clientOrderId":"c1","symbol":"BTCUSDT","status":"PARTIALLY_FILLED","origQty":"3","executedQty":"1.5","avgPrice":"100.25"}"#,
        )
        .unwrap();
        let s = OrderState::from_json(&v).unwrap();
        assert_eq!((s.status, s.executed_qty, s.avg_price), (OrderStatus::PartiallyFilled, 1.5, 100.25));
        assert!(s.status.is_open());
        assert!(OrderState::from_json(&serde_json::json!({"orderId": 7})).is_none());
    }
}
