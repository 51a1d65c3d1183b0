//! Live trading on Binance USDⓈ-M (issue 10, in progress): signed requests, orders and the
//! trading client. Paper trading stays the default; nothing here runs unless a live broker
//! is configured with keys.
//!
//! - [`sign`]: HMAC-SHA256 signatures, `timestamp`/`recvWindow`, the exchange's clock.
//! - [`order`]: order requests, statuses and answers, `newClientOrderId`s.
//! - [`client`]: place, cancel, query, open orders, positions, leverage, margin type, the
//!   flatten kill switch; idempotent retries, order-count limits.
//! - [`reconcile`]: the journal's open positions against the exchange's, at restart.
//! - [`user_stream`]: order and account updates pushed over the listenKey WebSocket.

pub mod client;
pub mod order;
pub mod reconcile;
pub mod sign;
pub mod user_stream;
