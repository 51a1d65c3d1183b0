//! Orders as Binance USDⓈ-M takes and reports them: what to send, and what came back —
//! ordinary orders (`/fapi/v1/order`) and the Algo Service's conditional orders
//! (`/fapi/v1/algoOrder`, since 2025-12-09 the only home of stop and take-profit orders).

pub use aegis_wire::Fixed8;
use serde_json::Value;

/// Which price triggers a conditional order: the paper broker's, so paper and live agree.
pub use aegis_trading::broker::WorkingType;
/// Order side: the market records' `Side` (BUY or SELL), one enum for the whole engine.
pub use aegis_wire::record::Side;

/// What kind of order, with its prices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderKind {
    /// Fills at once at the book's prices.
    Market,
    /// Good till cancelled at `price` or better.
    Limit {
        /// Limit price (on the symbol's tick).
        price: Fixed8,
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
    pub quantity: Fixed8,
    /// `newClientOrderId`: the same id on a retry makes the retry idempotent.
    pub client_id: String,
}

impl OrderRequest {
    /// The request's parameters (before `recvWindow`, `timestamp`, `signature`).
    pub fn params(&self) -> String {
        let mut p = format!("symbol={}&side={}", self.symbol, side_name(self.side));
        match self.kind {
            OrderKind::Market => p.push_str("&type=MARKET"),
            OrderKind::Limit { price } => p.push_str(&format!("&type=LIMIT&timeInForce=GTC&price={price}")),
        }
        p.push_str(&format!("&quantity={}&newClientOrderId={}", self.quantity, self.client_id));
        p
    }
}

/// Which protective leg a conditional order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegKind {
    /// STOP_MARKET: triggers when the price moves against the position.
    StopLoss,
    /// TAKE_PROFIT_MARKET: triggers when the price moves in the position's favour.
    TakeProfit,
}

/// A new conditional order: a reduce-only leg with an explicit quantity (so a resize can
/// place it again at the new size), sent to `POST /fapi/v1/algoOrder`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlgoRequest {
    /// Symbol.
    pub symbol: String,
    /// Side of the order it becomes (the closing side).
    pub side: Side,
    /// Stop loss or take profit.
    pub kind: LegKind,
    /// Trigger price (on the symbol's tick).
    pub trigger: Fixed8,
    /// Quantity (already on the symbol's step).
    pub quantity: Fixed8,
    /// Which price triggers it.
    pub working_type: WorkingType,
    /// `clientAlgoId`: the same id on a retry makes the retry idempotent.
    pub client_algo_id: String,
}

impl AlgoRequest {
    /// The request's parameters (before `recvWindow`, `timestamp`, `signature`).
    pub fn params(&self) -> String {
        let kind = match self.kind {
            LegKind::StopLoss => "STOP_MARKET",
            LegKind::TakeProfit => "TAKE_PROFIT_MARKET",
        };
        format!(
            "algoType=CONDITIONAL&symbol={}&side={}&type={kind}&triggerPrice={}&quantity={}&reduceOnly=true&workingType={}&clientAlgoId={}",
            self.symbol,
            side_name(self.side),
            self.trigger,
            self.quantity,
            self.working_type.name(),
            self.client_algo_id
        )
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// A conditional order's status (`algoStatus`; `ALGO_UPDATE`'s `X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoStatus {
    /// Waiting for its trigger.
    New,
    /// Triggered, on its way to the matching engine.
    Triggering,
    /// Placed in the matching engine (`actualOrderId` names the order).
    Triggered,
    /// Done in the matching engine: filled, or its rest expired or was cancelled there.
    Finished,
    /// Cancelled before it triggered.
    Canceled,
    /// Refused when it triggered (the reason comes with it).
    Rejected,
    /// Ended without an order (e.g. a reduce-only leg with nothing left to reduce).
    Expired,
}

impl AlgoStatus {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "NEW" => Self::New,
            "TRIGGERING" => Self::Triggering,
            "TRIGGERED" => Self::Triggered,
            "FINISHED" => Self::Finished,
            "CANCELED" => Self::Canceled,
            "REJECTED" => Self::Rejected,
            "EXPIRED" => Self::Expired,
            _ => return None,
        })
    }
}

/// A conditional order as the exchange reported it (REST answer or `ALGO_UPDATE`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlgoState {
    /// Exchange id (`algoId`).
    pub algo_id: u64,
    /// Our id (`clientAlgoId`).
    pub client_algo_id: String,
    /// Symbol.
    pub symbol: String,
    /// Status.
    pub status: AlgoStatus,
    /// Quantity ordered.
    pub quantity: Fixed8,
    /// The matching engine's order once triggered.
    pub order_id: Option<u64>,
    /// Quantity filled in the matching engine (0 before).
    pub executed_qty: Fixed8,
    /// Average fill price in the matching engine (0 before).
    pub avg_price: f64,
    /// Why it was rejected (empty otherwise).
    pub reason: String,
}

impl AlgoState {
    /// Reads an algo order answer (`POST`/`GET /fapi/v1/algoOrder`, `openAlgoOrders`
    /// entries); `None` when a field is missing or malformed.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            algo_id: v["algoId"].as_u64()?,
            client_algo_id: v["clientAlgoId"].as_str()?.to_string(),
            symbol: v["symbol"].as_str()?.to_string(),
            status: AlgoStatus::parse(v["algoStatus"].as_str()?)?,
            quantity: exact_field(v, "quantity")?,
            order_id: order_id_field(&v["actualOrderId"])?,
            executed_qty: optional_exact_field(v, "actualQty")?,
            avg_price: optional_fixed_field(v, "actualPrice")?,
            reason: String::new(),
        })
    }

    /// Reads an `ALGO_UPDATE` event's order (`o`).
    pub fn from_event(o: &Value) -> Option<Self> {
        Some(Self {
            algo_id: o["aid"].as_u64()?,
            client_algo_id: o["caid"].as_str()?.to_string(),
            symbol: o["s"].as_str()?.to_string(),
            status: AlgoStatus::parse(o["X"].as_str()?)?,
            quantity: exact_field(o, "q")?,
            order_id: order_id_field(&o["ai"])?,
            executed_qty: optional_exact_field(o, "aq")?,
            avg_price: optional_fixed_field(o, "ap")?,
            reason: o["rm"].as_str().unwrap_or("").to_string(),
        })
    }
}

/// A decimal-string field as `f64` (Binance sends prices and quantities as strings).
fn fixed_field(v: &Value, key: &str) -> Option<f64> {
    exact_field(v, key).map(Fixed8::to_f64)
}

/// The same, 0 when absent (Binance omits fill fields before a fill).
fn optional_fixed_field(v: &Value, key: &str) -> Option<f64> {
    if v.get(key).is_none_or(Value::is_null) {
        Some(0.0)
    } else {
        fixed_field(v, key)
    }
}

/// A quantity field exactly (what a later order's quantity is made of).
pub(crate) fn exact_field(v: &Value, key: &str) -> Option<Fixed8> {
    Fixed8::parse(v[key].as_str()?).ok()
}

/// The same, 0 when absent.
fn optional_exact_field(v: &Value, key: &str) -> Option<Fixed8> {
    if v.get(key).is_none_or(Value::is_null) {
        Some(Fixed8::ZERO)
    } else {
        exact_field(v, key)
    }
}

/// `actualOrderId`/`ai`: absent or empty before the trigger, the order id (a string) after.
fn order_id_field(v: &Value) -> Option<Option<u64>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) if s.is_empty() => Some(None),
        Value::String(s) => s.parse().ok().map(Some),
        Value::Number(n) => n.as_u64().map(Some),
        _ => None,
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
    pub orig_qty: Fixed8,
    /// Quantity filled.
    pub executed_qty: Fixed8,
    /// Average fill price (0 before any fill).
    pub avg_price: f64,
}

impl OrderState {
    /// Reads an order answer (`POST`/`GET`/`DELETE /fapi/v1/order`, `openOrders` entries);
    /// `None` when a field is missing or malformed.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            order_id: v["orderId"].as_u64()?,
            client_id: v["clientOrderId"].as_str()?.to_string(),
            symbol: v["symbol"].as_str()?.to_string(),
            status: OrderStatus::parse(v["status"].as_str()?)?,
            orig_qty: exact_field(v, "origQty")?,
            executed_qty: exact_field(v, "executedQty")?,
            // Absent from a cancel's answer (Binance documents none there).
            avg_price: optional_fixed_field(v, "avgPrice")?,
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
            kind: OrderKind::Limit { price: Fixed8::parse("9000.00").unwrap() },
            quantity: Fixed8::parse("1").unwrap(),
            client_id: "c1".into(),
        };
        assert_eq!(
            limit.params(),
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&price=9000&quantity=1&newClientOrderId=c1"
        );
        let stop = AlgoRequest {
            symbol: "BTCUSDT".into(),
            side: Side::Sell,
            kind: LegKind::StopLoss,
            trigger: Fixed8::parse("61234.5").unwrap(),
            quantity: Fixed8::parse("0.003").unwrap(),
            working_type: WorkingType::default(),
            client_algo_id: "aegis.7.s".into(),
        };
        // The parameters Binance's SDK 18.1.0 sends for new_algo_order, camel-cased.
        assert_eq!(
            stop.params(),
            "algoType=CONDITIONAL&symbol=BTCUSDT&side=SELL&type=STOP_MARKET&triggerPrice=61234.5&quantity=0.003&reduceOnly=true&workingType=MARK_PRICE&clientAlgoId=aegis.7.s"
        );
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
        assert_eq!(
            (s.status, s.executed_qty, s.avg_price),
            (OrderStatus::PartiallyFilled, Fixed8::parse("1.5").unwrap(), 100.25)
        );
        assert!(s.status.is_open());
        assert!(OrderState::from_json(&serde_json::json!({"orderId": 7})).is_none());
        // A cancel's answer as Binance documents it: no avgPrice.
        let cancelled: Value = serde_json::from_str(
            r#"{"clientOrderId":"c2","cumQty":"0","executedQty":"0","orderId":8,"origQty":"1","origType":"LIMIT","price":"9000","reduceOnly":false,"side":"BUY","positionSide":"BOTH","status":"CANCELED","stopPrice":"0","closePosition":false,"symbol":"BTCUSDT","timeInForce":"GTC","type":"LIMIT","updateTime":1,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0}"#,
        )
        .unwrap();
        let c = OrderState::from_json(&cancelled).unwrap();
        assert_eq!((c.status, c.avg_price), (OrderStatus::Canceled, 0.0));
    }

    /// Shapes as Binance's SDK 18.1.0 models them (QueryAlgoOrderResponse, AlgoUpdateO).
    #[test]
    fn algo_answers_and_events_are_read_or_refused() {
        let waiting: Value = serde_json::from_str(
            r#"{"algoId":2146760,"clientAlgoId":"aegis.7.s","algoType":"CONDITIONAL","orderType":"STOP_MARKET","symbol":"BNBUSDT","side":"SELL","positionSide":"BOTH","timeInForce":"GTC","quantity":"0.01","algoStatus":"NEW","actualOrderId":"","actualPrice":"0.00000","triggerPrice":"750.000","price":"0.000","workingType":"MARK_PRICE","reduceOnly":true,"createTime":1750485492076,"updateTime":1750485492076,"triggerTime":0}"#,
        )
        .unwrap();
        let s = AlgoState::from_json(&waiting).unwrap();
        assert_eq!(
            (s.algo_id, s.status, s.order_id, s.quantity, s.executed_qty),
            (2146760, AlgoStatus::New, None, Fixed8::parse("0.01").unwrap(), Fixed8::ZERO)
        );
        let finished: Value = serde_json::from_str(
            r#"{"caid":"aegis.7.t","aid":2148719,"at":"CONDITIONAL","o":"TAKE_PROFIT_MARKET","s":"BNBUSDT","S":"SELL","ps":"BOTH","f":"GTC","q":"0.01","X":"FINISHED","ai":"8886774","ap":"751.20","aq":"0.006","act":"MARKET","tp":"751.000","p":"0.000","wt":"MARK_PRICE","R":true,"tt":1750485493000,"rm":""}"#,
        )
        .unwrap();
        let f = AlgoState::from_event(&finished).unwrap();
        assert_eq!(
            (f.status, f.order_id, f.executed_qty, f.avg_price),
            (AlgoStatus::Finished, Some(8886774), Fixed8::parse("0.006").unwrap(), 751.2)
        );
        let mut bad = finished.clone();
        bad["X"] = "DONE".into();
        assert!(AlgoState::from_event(&bad).is_none(), "an unknown status is refused, not guessed");
        bad["X"] = "NEW".into();
        bad["ai"] = "x1".into();
        assert!(AlgoState::from_event(&bad).is_none());
    }
}
