//! The Aegis engine.
//!
//! - [`feed`]: RFC 6455 frames and handshake (client side), Binance JSON → records, the
//!   sans-IO connection, and the feed shard (mio transport).
//! - [`ring`]: the shard → brain SPSC hand-off and its full-ring policy.
//! - [`brain`]: bars, roll-ups, order books, de-duplication, gap detection, features.
//! - [`clock`]: the process-wide monotonic clock shards stamp reads with.
//! - [`rest`]: the REST client with its weight budget, and the worker serving the brain.
//! - [`run`]: wiring a run together and its summary.
//!
//! Planned: policy, risk, broker, journal, control plane — see ARCHITECTURE.md.

pub mod brain;
pub mod clock;
pub mod feed;
pub mod rest;
pub mod ring;
pub mod run;
