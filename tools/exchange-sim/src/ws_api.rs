//! Binance USDⓈ-M's WebSocket API (`/ws-fapi/v1`): JSON requests `{"id","method","params"}`
//! signed over their parameters sorted by name (HMAC-SHA256 hex, or Ed25519 base64), each
//! answered `{"id","status","result"|"error","rateLimits"}` by the same venue, weights and
//! limits as the REST endpoints the methods mirror.

use crate::rest::RequestHead;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Where the WebSocket API is served.
pub const PATH: &str = "/ws-fapi/v1";

/// The REST endpoint (method, path) a WebSocket API method mirrors.
pub fn route(method: &str) -> Option<(&'static str, &'static str)> {
    Some(match method {
        "order.place" => ("POST", "/fapi/v1/order"),
        "order.cancel" => ("DELETE", "/fapi/v1/order"),
        "order.status" => ("GET", "/fapi/v1/order"),
        "algoOrder.place" => ("POST", "/fapi/v1/algoOrder"),
        "algoOrder.cancel" => ("DELETE", "/fapi/v1/algoOrder"),
        "account.position" => ("GET", "/fapi/v2/positionRisk"),
        "v2/account.position" => ("GET", "/fapi/v3/positionRisk"),
        _ => return None,
    })
}

/// One request as the REST handler takes it: the parameters sorted by name and
/// form-encoded (what the signature covers), the signature last, the key as its header.
pub fn as_rest(method: &str, path: &str, params: &serde_json::Map<String, Value>) -> RequestHead {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    };
    let mut pairs: Vec<(&String, String)> =
        params.iter().filter(|(k, _)| *k != "signature").map(|(k, v)| (k, text(v))).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
    if let Some(signature) = params.get("signature") {
        query.push(format!("signature={}", form_encode(&text(signature))));
    }
    let mut headers = HashMap::new();
    if let Some(key) = params.get("apiKey").map(text) {
        headers.insert("x-mbx-apikey".to_string(), key);
    }
    RequestHead { method: method.into(), path: path.into(), query: query.join("&"), headers }
}

/// A value as a form encodes it (Python's `urlencode`, which Binance's SDK signs).
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How much of its limits a request left: the minute's request weight (limit, used) and,
/// for a new order, the key's orders in 10 s (limit, placed).
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Request weight per minute: (limit, used).
    pub weight: (u32, u32),
    /// New orders per 10 s: (limit, placed); `None` for requests that place none.
    pub orders_10s: Option<(u32, usize)>,
}

/// The answer frame for request `id`: the REST handler's `status` and JSON `body` as
/// `result` or `error`, with the limits' counts (`rateLimits`).
pub fn frame(id: &Value, status: u16, body: &str, usage: Usage) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| json!({ "code": -1000, "msg": body }));
    let mut limits = vec![json!({
        "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
        "limit": usage.weight.0, "count": usage.weight.1,
    })];
    if let Some((limit, count)) = usage.orders_10s {
        limits.push(json!({
            "rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limit, "count": count,
        }));
    }
    let outcome = if status == 200 { "result" } else { "error" };
    json!({ "id": id, "status": status, outcome: body, "rateLimits": limits }).to_string()
}

/// A request that is not one: malformed JSON, no id or method, an unknown method.
pub fn refusal(id: &Value, msg: &str) -> String {
    json!({ "id": id, "status": 400, "error": { "code": -1000, "msg": msg } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_sorted_signed_queries() {
        let params: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.01","apiKey":"k","timestamp":"1","reduceOnly":true,"signature":"a+b/c="}"#,
        )
        .unwrap();
        let head = as_rest("POST", "/fapi/v1/order", &params);
        assert_eq!(
            head.query,
            "apiKey=k&quantity=0.01&reduceOnly=true&side=BUY&symbol=BTCUSDT&timestamp=1&type=MARKET&signature=a%2Bb%2Fc%3D"
        );
        assert_eq!(head.header("x-mbx-apikey"), Some("k"));
        assert_eq!(route("algoOrder.place"), Some(("POST", "/fapi/v1/algoOrder")));
        assert_eq!(route("order.modify"), None);
        let placing = Usage { weight: (2400, 3), orders_10s: Some((300, 2)) };
        let ok = frame(&json!("r1"), 200, r#"{"orderId":1}"#, placing);
        let v: Value = serde_json::from_str(&ok).unwrap();
        assert_eq!((v["status"].as_u64(), v["result"]["orderId"].as_u64()), (Some(200), Some(1)));
        assert_eq!(v["rateLimits"][0]["count"], 3);
        let orders = &v["rateLimits"][1];
        assert_eq!((orders["rateLimitType"].as_str(), orders["count"].as_u64()), (Some("ORDERS"), Some(2)));
        let reading = Usage { weight: (2400, 1), orders_10s: None };
        let refused: Value =
            serde_json::from_str(&frame(&json!(7), 400, r#"{"code":-2019,"msg":"m"}"#, reading)).unwrap();
        assert_eq!(refused["error"]["code"], -2019);
        assert!(refused.get("result").is_none());
    }
}
