//! Why a trading request failed: what every order channel (REST, the WebSocket API)
//! reports, and what the gateway acts on.

use crate::net::http::RestError;
use std::time::Duration;

/// Why a trading request failed.
#[derive(Debug, thiserror::Error)]
pub enum TradeError {
    /// The request may or may not have reached the exchange (connect, write or read
    /// failed): query by client id before acting on it.
    #[error("transport: {0}")]
    Transport(#[from] RestError),
    /// The exchange refused it, with its code and reason.
    #[error("refused by the exchange (HTTP {status}, code {code}): {msg}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Binance error code.
        code: i32,
        /// Binance's message.
        msg: String,
    },
    /// Over a rate limit (HTTP 429 or 418 from the exchange, or our own order-count limiter
    /// before sending): nothing was done; try again after `retry_after`.
    #[error("rate limited ({reason}); retry after {retry_after:?}")]
    RateLimited {
        /// Which limit.
        reason: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// An answer that is not what the endpoint documents.
    #[error("{path}: unexpected answer: {reason}")]
    Malformed {
        /// The endpoint.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The account is set up in a way the engine does not trade (hedge or Multi-Assets mode).
    #[error("{0}")]
    AccountMode(String),
}
