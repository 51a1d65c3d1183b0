//! Live trading on Binance USDⓈ-M (issue 10, in progress): signed requests, orders and the
//! trading client. Paper trading stays the default; nothing here runs unless a live broker
//! is configured with keys.
//!
//! - [`sign`]: HMAC-SHA256 signatures, `timestamp`/`recvWindow`, the exchange's clock.
//! - [`order`]: order requests, statuses and answers, `newClientOrderId`s.
//! - [`client`]: place, cancel, query, open orders; idempotent retries, order-count limits.

pub mod client;
pub mod order;
pub mod sign;
