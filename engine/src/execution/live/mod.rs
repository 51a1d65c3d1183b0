//! Live trading on Binance USDⓈ-M: signed requests, orders, the trading client and the
//! execution gateway behind the desk. Paper trading stays the default; nothing here runs
//! unless `broker.mode = "live"` is configured with keys.
//!
//! - [`sign`]: HMAC-SHA256 signatures, `timestamp`/`recvWindow`, the exchange's clock.
//! - [`order`]: order requests, statuses and answers, `newClientOrderId`s.
//! - [`error`]: why a trading request failed, on any channel.
//! - [`limits`]: order-count and request-weight limits kept on this side.
//! - [`client`]: place, cancel, query, open orders, positions, leverage, margin type, the
//!   flatten kill switch; idempotent retries, order-count limits.
//! - [`reconcile`]: the journal's open positions against the exchange's, at restart.
//! - [`user_stream`]: order and account updates pushed over the listenKey WebSocket.
//! - [`ws_api`]: order entry over the WebSocket API on one persistent connection.
//! - [`gateway`]: the execution thread between the desk's rings and the exchange.

pub mod client;
pub mod error;
pub mod gateway;
pub mod limits;
pub mod order;
pub mod reconcile;
pub mod sign;
pub mod user_stream;
pub mod ws_api;
