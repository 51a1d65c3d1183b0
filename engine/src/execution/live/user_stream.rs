//! The user-data stream: order updates (new, fills, cancels, expiries), conditional (algo)
//! order updates and account updates (positions) pushed by the exchange over a WebSocket
//! named by a listenKey, and recovery when the listenKey expires or the connection drops.

use super::client::{TradeClient, TradeError};
use super::order::{exact_field, AlgoState, Fixed8, OrderStatus};
use crate::net::ws::WsClient;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One order's change, from `ORDER_TRADE_UPDATE`.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderUpdate {
    /// Symbol.
    pub symbol: String,
    /// Exchange id (how an order a conditional order placed is linked to it).
    pub order_id: u64,
    /// Our client id (the exchange's own for an order a conditional order placed).
    pub client_id: String,
    /// What happened: `NEW`, `TRADE`, `CANCELED`, `EXPIRED`, …
    pub execution: String,
    /// The order's status after it.
    pub status: OrderStatus,
    /// Quantity of this fill (0 when not a fill).
    pub last_qty: Fixed8,
    /// Price of this fill.
    pub last_price: f64,
    /// Quantity filled so far.
    pub filled_qty: Fixed8,
    /// Average price of what filled so far.
    pub avg_price: f64,
}

/// A position after an `ACCOUNT_UPDATE`.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionUpdate {
    /// Symbol.
    pub symbol: String,
    /// Signed quantity.
    pub amount: f64,
    /// Average entry price.
    pub entry_price: f64,
}

/// One user-data event.
#[derive(Clone, Debug, PartialEq)]
pub enum UserEvent {
    /// An order changed.
    Order(OrderUpdate),
    /// A conditional (algo) order changed (`ALGO_UPDATE`).
    Algo(AlgoState),
    /// Positions changed.
    Account(Vec<PositionUpdate>),
    /// The listenKey lapsed: the stream is over; [`UserStream::recover`] opens a new one.
    Expired,
    /// A message of a kind used here that could not be read (what is wrong, and the text).
    Unreadable(String),
}

/// Reads one user-data message: `Ok(None)` for kinds not used here; an error naming what is
/// wrong for one that is not JSON, or a kind used here with a field missing, malformed or
/// unknown (an order or algo status never documented).
pub fn parse_event(text: &str) -> Result<Option<UserEvent>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let kind = v["e"].as_str().ok_or("no event type `e`")?;
    let bad = |what: &str| format!("{kind}: {what}: {}", truncated(text));
    let event = match kind {
        "ORDER_TRADE_UPDATE" => order_update(&v["o"]).map(UserEvent::Order).map_err(|what| bad(&what))?,
        "ACCOUNT_UPDATE" => {
            account_update(&v).map(UserEvent::Account).ok_or_else(|| bad("a position field missing"))?
        }
        "ALGO_UPDATE" => AlgoState::from_event(&v["o"])
            .map(UserEvent::Algo)
            .ok_or_else(|| bad("an algo field missing or unknown"))?,
        "listenKeyExpired" => UserEvent::Expired,
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// At most 200 characters of `text`, for a journal line.
fn truncated(text: &str) -> String {
    text.chars().take(200).collect()
}

fn num(x: &Value) -> Option<f64> {
    x.as_str()?.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn order_update(o: &Value) -> Result<OrderUpdate, String> {
    let text = |key: &str| o[key].as_str().ok_or_else(|| format!("o.{key} missing"));
    let decimal = |key: &str| num(&o[key]).ok_or_else(|| format!("o.{key} missing or not a decimal"));
    let exact = |key: &str| exact_field(o, key).ok_or_else(|| format!("o.{key} missing or not a decimal"));
    let status = match text("X")? {
        "NEW" => OrderStatus::New,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" => OrderStatus::Canceled,
        "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
        "REJECTED" => OrderStatus::Rejected,
        other => return Err(format!("unknown order status {other:?}")),
    };
    Ok(OrderUpdate {
        symbol: text("s")?.to_string(),
        order_id: o["i"].as_u64().ok_or("o.i missing")?,
        client_id: text("c")?.to_string(),
        execution: text("x")?.to_string(),
        status,
        last_qty: exact("l")?,
        last_price: decimal("L")?,
        filled_qty: exact("z")?,
        avg_price: decimal("ap")?,
    })
}

fn account_update(v: &Value) -> Option<Vec<PositionUpdate>> {
    v["a"]["P"]
        .as_array()?
        .iter()
        .map(|p| {
            Some(PositionUpdate {
                symbol: p["s"].as_str()?.to_string(),
                amount: num(&p["pa"])?,
                entry_price: num(&p["ep"])?,
            })
        })
        .collect()
}

/// The user-data events the engine subscribes to: `events` is an allow list, so every kind
/// read here is named.
pub const EVENTS: &str = "ORDER_TRADE_UPDATE/ALGO_UPDATE/ACCOUNT_UPDATE/listenKeyExpired";

/// The largest user-data message read (Binance's are a few KB; an `ACCOUNT_UPDATE` of many
/// positions is the longest).
const MAX_EVENT_BYTES: usize = 1 << 20;

/// A connected user-data stream.
pub struct UserStream {
    ws: WsClient,
    ws_base: String,
    tls: Arc<rustls::ClientConfig>,
    /// The listenKey it is named by.
    pub listen_key: String,
}

impl UserStream {
    /// Creates a listenKey through `client` and connects to Binance's routed private
    /// endpoint, `ws_base/private/ws?listenKey=<listenKey>&events=<`[`EVENTS`]`>` (the
    /// unrouted root no longer serves user data), on the engine's WebSocket client with
    /// `tls` for `wss://`.
    pub fn open(
        client: &mut TradeClient,
        ws_base: &str,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, TradeError> {
        let listen_key = client.create_listen_key()?;
        let url =
            format!("{}/private/ws?listenKey={listen_key}&events={EVENTS}", ws_base.trim_end_matches('/'));
        let ws = WsClient::connect(&url, tls, MAX_EVENT_BYTES).map_err(|e| TradeError::Malformed {
            path: url.clone(),
            reason: format!("user stream connect: {}", e.reason),
        })?;
        Ok(Self { ws, ws_base: ws_base.to_string(), tls: tls.clone(), listen_key })
    }

    /// The next event, waiting at most about `timeout`; `Ok(None)` when none came.
    /// Message kinds not used here are skipped; a closed connection is an error.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<UserEvent>, TradeError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            match self.ws.next_text(wait) {
                Ok(Some(text)) => match parse_event(&text) {
                    Ok(Some(event)) => return Ok(Some(event)),
                    Ok(None) => {}
                    Err(what) => return Ok(Some(UserEvent::Unreadable(what))),
                },
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(TradeError::Malformed {
                        path: format!("user stream {}", self.listen_key),
                        reason: format!("closed: {}", e.reason),
                    })
                }
            }
        }
    }

    /// After an expiry or a dropped connection: a new listenKey and connection. Events in
    /// between are not replayed: re-read open orders and positions through the client.
    pub fn recover(self, client: &mut TradeClient) -> Result<Self, TradeError> {
        let (base, tls) = (self.ws_base.clone(), self.tls.clone());
        drop(self);
        Self::open(client, &base, &tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Event shapes from Binance's USDⓈ-M user-data stream documentation.
    #[test]
    fn documented_events_are_read() {
        let order = r#"{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0","sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","T":1568879465650,"t":0,"R":false,"ps":"BOTH"}}"#;
        assert_eq!(
            parse_event(order),
            Ok(Some(UserEvent::Order(OrderUpdate {
                symbol: "BTCUSDT".into(),
                order_id: 8886774,
                client_id: "TEST".into(),
                execution: "NEW".into(),
                status: OrderStatus::New,
                last_qty: Fixed8::ZERO,
                last_price: 0.0,
                filled_qty: Fixed8::ZERO,
                avg_price: 0.0,
            })))
        );
        let account = r#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000","ps":"BOTH"},{"s":"BTCUSDT","pa":"20","ep":"6563.66500","bep":"6563.6","cr":"0","up":"2850.21200","mt":"isolated","iw":"13200.70726908","ps":"LONG"}]}}"#;
        let Ok(Some(UserEvent::Account(p))) = parse_event(account) else { panic!("account update") };
        assert_eq!((p.len(), p[1].amount, p[1].entry_price), (2, 20.0, 6563.665));
        assert_eq!(
            parse_event(r#"{"e":"listenKeyExpired","E":1576653824250,"listenKey":"x"}"#),
            Ok(Some(UserEvent::Expired))
        );
        // ALGO_UPDATE as Binance's SDK 18.1.0 models it (AlgoUpdate, AlgoUpdateO).
        let algo = r#"{"e":"ALGO_UPDATE","T":1750515742297,"E":1750515742303,"o":{"caid":"Q5xaq5EGKgXXa0fD7fs0Ip","aid":2148719,"at":"CONDITIONAL","o":"TAKE_PROFIT","s":"BNBUSDT","S":"SELL","ps":"BOTH","f":"GTC","q":"0.01","X":"CANCELED","ai":"","ap":"0.00000","aq":"0.00000","act":"0","tp":"750","p":"750","V":"EXPIRE_MAKER","wt":"CONTRACT_PRICE","pm":"NONE","cp":false,"pP":false,"R":false,"tt":0,"gtd":0,"rm":"Reduce Only reject"}}"#;
        let Ok(Some(UserEvent::Algo(a))) = parse_event(algo) else { panic!("algo update") };
        assert_eq!(
            (a.algo_id, a.status, a.order_id, a.reason.as_str()),
            (2148719, super::super::order::AlgoStatus::Canceled, None, "Reduce Only reject")
        );
        assert_eq!(parse_event(r#"{"e":"MARGIN_CALL"}"#), Ok(None), "a kind not used here");
        assert!(parse_event("not json").unwrap_err().contains("not JSON"));
        let unknown_status = order.replace(r#""X":"NEW""#, r#""X":"PENDING_WHATEVER""#);
        let e = parse_event(&unknown_status).unwrap_err();
        assert!(e.starts_with("ORDER_TRADE_UPDATE") && e.contains("PENDING_WHATEVER"), "{e}");
        let no_id = algo.replace(r#""aid":2148719,"#, "");
        assert!(parse_event(&no_id).unwrap_err().starts_with("ALGO_UPDATE"));
    }
}
