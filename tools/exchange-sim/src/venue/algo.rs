//! Conditional orders of Binance's Algo Service (`/fapi/v1/algoOrder`, since 2025-12-09 the
//! only home of stop and take-profit orders): what a request asks for, how the order is
//! reported (REST answers and `ALGO_UPDATE` events, as Binance's SDK 18.1.0 models them),
//! and when a price reaches its trigger.

use super::{fixed, refuse, Params, Refusal, Side};
use serde_json::{json, Value};

/// Open conditional orders one account may hold (Binance, since 2025-12-29).
pub const MAX_OPEN_ALGO_ORDERS: usize = 200;

/// Conditional order types the simulator models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoKind {
    /// A market order once the price moves against the position to the trigger.
    StopMarket,
    /// A market order once the price moves in the position's favour to the trigger.
    TakeProfitMarket,
}

/// Which price a trigger watches (`workingType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkingType {
    /// The mark price (markPrice stream).
    MarkPrice,
    /// The last traded price (aggTrade stream); Binance's default.
    ContractPrice,
}

impl WorkingType {
    fn name(self) -> &'static str {
        match self {
            WorkingType::MarkPrice => "MARK_PRICE",
            WorkingType::ContractPrice => "CONTRACT_PRICE",
        }
    }
}

/// Which endpoint a conditional order answers: the fields differ by endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoAnswer {
    /// `POST /fapi/v1/algoOrder`, `algoOrder.place`.
    Placed,
    /// `GET /fapi/v1/algoOrder`.
    Queried,
    /// `openAlgoOrders`, `allAlgoOrders`.
    Listed,
}

/// An algo order's status (`algoStatus`, `ALGO_UPDATE`'s `X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoStatus {
    /// Waiting for its trigger.
    New,
    /// Triggered, being sent to the matching engine.
    Triggering,
    /// Placed in the matching engine.
    Triggered,
    /// Done in the matching engine (filled, or its rest expired).
    Finished,
    /// Cancelled by its owner.
    Canceled,
    /// Refused when it triggered.
    Rejected,
    /// Ended without an order (a reduce-only leg with nothing left to reduce).
    Expired,
}

impl AlgoStatus {
    fn name(self) -> &'static str {
        match self {
            AlgoStatus::New => "NEW",
            AlgoStatus::Triggering => "TRIGGERING",
            AlgoStatus::Triggered => "TRIGGERED",
            AlgoStatus::Finished => "FINISHED",
            AlgoStatus::Canceled => "CANCELED",
            AlgoStatus::Rejected => "REJECTED",
            AlgoStatus::Expired => "EXPIRED",
        }
    }
}

/// One conditional order.
#[derive(Clone, Debug)]
pub struct AlgoOrder {
    /// Exchange id (`algoId`).
    pub algo_id: u64,
    /// The client's id (`clientAlgoId`).
    pub client_algo_id: String,
    /// Whose.
    pub api_key: String,
    /// Symbol.
    pub symbol: String,
    /// Side of the order it becomes.
    pub side: Side,
    /// Type.
    pub kind: AlgoKind,
    /// Trigger price (fixed-point ×1e8).
    pub trigger_price: i64,
    /// Quantity (fixed-point ×1e8).
    pub quantity: i64,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Which price triggers it.
    pub working_type: WorkingType,
    /// Status.
    pub status: AlgoStatus,
    /// The matching engine's order, once triggered.
    pub actual_order_id: Option<u64>,
    /// Quantity filled in the matching engine.
    pub actual_qty: i64,
    /// Average fill price in the matching engine.
    pub actual_price: i64,
    /// Why it was rejected (`rm`), empty otherwise.
    pub reason: String,
    /// Placed, ms.
    pub create_time: i64,
    /// Last change, ms.
    pub update_time: i64,
    /// Triggered, ms (0 before).
    pub trigger_time: i64,
}

impl AlgoOrder {
    /// Reads a `POST /fapi/v1/algoOrder` request (`algoType=CONDITIONAL`, STOP_MARKET or
    /// TAKE_PROFIT_MARKET with `triggerPrice` and `quantity`).
    pub fn from_request(params: &Params, api_key: &str, algo_id: u64, now_ms: i64) -> Result<Self, Refusal> {
        if params.required("algoType")? != "CONDITIONAL" {
            return Err(refuse(400, -1116, "Invalid algoType."));
        }
        let side = match params.required("side")? {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return Err(refuse(400, -1117, "Invalid side.")),
        };
        let kind = match params.required("type")? {
            "STOP_MARKET" => AlgoKind::StopMarket,
            "TAKE_PROFIT_MARKET" => AlgoKind::TakeProfitMarket,
            "STOP" | "TAKE_PROFIT" | "TRAILING_STOP_MARKET" => {
                return Err(refuse(400, -1116, "Invalid orderType (not modelled by exchange-sim)."))
            }
            _ => return Err(refuse(400, -1116, "Invalid orderType.")),
        };
        let working_type = match params.get("workingType") {
            None | Some("CONTRACT_PRICE") => WorkingType::ContractPrice,
            Some("MARK_PRICE") => WorkingType::MarkPrice,
            Some(_) => {
                return Err(refuse(400, -1100, "Illegal characters found in parameter 'workingType'."))
            }
        };
        let quantity = params.decimal("quantity")?;
        if quantity <= 0 {
            return Err(refuse(400, -4003, "Quantity less than or equal to zero."));
        }
        let trigger_price = params.decimal("triggerPrice")?;
        if trigger_price <= 0 {
            return Err(refuse(400, -4006, "Stop price less than or equal to zero."));
        }
        let client_algo_id = match params.get("clientAlgoId") {
            Some(id) if id.is_empty() || id.len() > 36 => {
                return Err(refuse(400, -4015, "Client order id is not valid."))
            }
            Some(id) => id.to_string(),
            None => format!("sim-algo-{algo_id}"),
        };
        Ok(Self {
            algo_id,
            client_algo_id,
            api_key: api_key.to_string(),
            symbol: params.required("symbol")?.to_string(),
            side,
            kind,
            trigger_price,
            quantity,
            reduce_only: params.get("reduceOnly") == Some("true"),
            working_type,
            status: AlgoStatus::New,
            actual_order_id: None,
            actual_qty: 0,
            actual_price: 0,
            reason: String::new(),
            create_time: now_ms,
            update_time: now_ms,
            trigger_time: 0,
        })
    }

    /// Waiting for its trigger (what `openAlgoOrders` lists and a cancel may end).
    pub fn is_open(&self) -> bool {
        self.status == AlgoStatus::New
    }

    /// Whether `price`, of the kind it watches, reaches its trigger (Binance's rule: a
    /// BUY stop or SELL take-profit at or above, a SELL stop or BUY take-profit at or below).
    pub fn reached(&self, price: i64) -> bool {
        match (self.kind, self.side) {
            (AlgoKind::StopMarket, Side::Buy) | (AlgoKind::TakeProfitMarket, Side::Sell) => {
                price >= self.trigger_price
            }
            (AlgoKind::StopMarket, Side::Sell) | (AlgoKind::TakeProfitMarket, Side::Buy) => {
                price <= self.trigger_price
            }
        }
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            AlgoKind::StopMarket => "STOP_MARKET",
            AlgoKind::TakeProfitMarket => "TAKE_PROFIT_MARKET",
        }
    }

    fn side_name(&self) -> &'static str {
        if self.side == Side::Buy {
            "BUY"
        } else {
            "SELL"
        }
    }

    /// The order as `GET /fapi/v1/algoOrder` (and the other algo endpoints) answer it.
    pub fn value(&self) -> Value {
        json!({
            "algoId": self.algo_id,
            "clientAlgoId": self.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": self.type_name(),
            "symbol": self.symbol,
            "side": self.side_name(),
            "positionSide": "BOTH",
            "timeInForce": "GTC",
            "quantity": fixed(i128::from(self.quantity)),
            "algoStatus": self.status.name(),
            "actualOrderId": self.actual_order_id.map(|id| id.to_string()).unwrap_or_default(),
            "actualPrice": fixed(i128::from(self.actual_price)),
            "actualQty": fixed(i128::from(self.actual_qty)),
            "triggerPrice": fixed(i128::from(self.trigger_price)),
            "price": fixed(0),
            "workingType": self.working_type.name(),
            "closePosition": false,
            "priceProtect": false,
            "reduceOnly": self.reduce_only,
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "triggerTime": self.trigger_time,
            "actualType": if self.actual_order_id.is_some() { "MARKET" } else { "" },
            "icebergQuantity": null,
            "tpOrderType": "",
            "selfTradePreventionMode": "NONE",
            "priceMatch": "NONE",
            "goodTillDate": 0,
        })
    }

    /// The order in the fields Binance's SDK 18.1.0 models for `endpoint`'s answer: the
    /// query's (all of [`Self::value`]), the placement's (nothing of a triggered order),
    /// or a listing's (the attached take-profit/stop-loss prices, no fill quantity).
    pub fn answer(&self, endpoint: AlgoAnswer) -> String {
        let mut v = self.value();
        if let Some(o) = v.as_object_mut() {
            match endpoint {
                AlgoAnswer::Queried => {}
                AlgoAnswer::Placed => {
                    for key in ["actualOrderId", "actualPrice", "actualQty", "actualType", "tpOrderType"] {
                        o.remove(key);
                    }
                }
                AlgoAnswer::Listed => {
                    for key in ["actualQty", "actualType"] {
                        o.remove(key);
                    }
                    for key in ["tpTriggerPrice", "tpPrice", "slTriggerPrice", "slPrice"] {
                        o.insert(key.into(), json!(fixed(0)));
                    }
                }
            }
        }
        v.to_string()
    }

    /// The order as an `ALGO_UPDATE` user-data event.
    pub fn event(&self) -> Value {
        let mut o = json!({
            "caid": self.client_algo_id, "aid": self.algo_id, "at": "CONDITIONAL",
            "o": self.type_name(), "s": self.symbol, "S": self.side_name(), "ps": "BOTH",
            "f": "GTC", "q": fixed(i128::from(self.quantity)), "X": self.status.name(),
            "tp": fixed(i128::from(self.trigger_price)), "p": fixed(0),
            "wt": self.working_type.name(), "cp": false, "pP": false, "R": self.reduce_only,
            "tt": self.trigger_time, "rm": self.reason, "V": "NONE", "pm": "NONE", "gtd": 0,
            "ia": false,
        });
        if let Some(id) = self.actual_order_id {
            o["ai"] = json!(id.to_string());
            o["ap"] = json!(fixed(i128::from(self.actual_price)));
            o["aq"] = json!(fixed(i128::from(self.actual_qty)));
            o["act"] = json!("MARKET");
        }
        json!({"e": "ALGO_UPDATE", "E": self.update_time, "T": self.update_time, "o": o})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(query: &str) -> Result<AlgoOrder, Refusal> {
        AlgoOrder::from_request(&Params::new(query, ""), "k", 7, 1_000)
    }

    #[test]
    fn requests_are_read_and_triggers_follow_binances_rule() {
        let stop = order("algoType=CONDITIONAL&symbol=X&side=SELL&type=STOP_MARKET&triggerPrice=95&quantity=1&reduceOnly=true&workingType=MARK_PRICE&clientAlgoId=a.1.s").unwrap();
        assert_eq!(
            (stop.working_type, stop.reduce_only, stop.client_algo_id.as_str()),
            (WorkingType::MarkPrice, true, "a.1.s")
        );
        assert!(stop.reached(95 * aegis_wire::SCALE) && !stop.reached(96 * aegis_wire::SCALE));
        let take = order(
            "algoType=CONDITIONAL&symbol=X&side=SELL&type=TAKE_PROFIT_MARKET&triggerPrice=105&quantity=1",
        )
        .unwrap();
        assert_eq!(take.working_type, WorkingType::ContractPrice, "Binance's default");
        assert!(take.reached(105 * aegis_wire::SCALE) && !take.reached(104 * aegis_wire::SCALE));
        let v = stop.value();
        assert_eq!((v["algoStatus"].as_str(), v["actualOrderId"].as_str()), (Some("NEW"), Some("")));
        assert!(stop.event()["o"].get("ai").is_none(), "ai only once triggered");
    }

    #[test]
    fn bad_requests_are_refused_with_binances_codes() {
        for (query, code) in [
            ("algoType=VP&symbol=X&side=SELL&type=STOP_MARKET&triggerPrice=1&quantity=1", -1116),
            ("algoType=CONDITIONAL&symbol=X&side=SELL&type=LIMIT&triggerPrice=1&quantity=1", -1116),
            ("algoType=CONDITIONAL&symbol=X&side=SELL&type=STOP_MARKET&quantity=1", -1102),
            ("algoType=CONDITIONAL&symbol=X&side=SELL&type=STOP_MARKET&triggerPrice=1&quantity=0", -4003),
            ("algoType=CONDITIONAL&symbol=X&side=UP&type=STOP_MARKET&triggerPrice=1&quantity=1", -1117),
        ] {
            assert_eq!(order(query).unwrap_err().code, code, "{query}");
        }
    }
}
