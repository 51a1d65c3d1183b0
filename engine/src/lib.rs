//! The Aegis engine.
//!
//! - [`feed`]: RFC 6455 frames and handshake (client side), Binance JSON → records, the
//!   sans-IO connection, and the feed shard (mio transport).
//! - [`ring`]: the shard → brain SPSC hand-off and its full-ring policy.
//! - [`brain`]: bars, roll-ups, order books, de-duplication, gap detection, features, and
//!   the desk (decisions, sizing, the paper broker).
//! - [`model`]: the model-loader thread: validated models from the weights file to the brain.
//! - [`ledger`]: the writer side of the desk: journals, the experience log, restart recovery.
//! - [`live`]: signed trading requests and the order client for Binance USDⓈ-M (in progress).
//! - [`control`]: the control socket (versioned line-delimited JSON) and the brain's command ring.
//! - [`credentials`]: exchange API keys from the environment or a 0600 file, never logged.
//! - [`metrics`]: the Prometheus endpoint and the latency buckets it reads.
//! - [`doctor`]: host checks for a pinned low-latency run (`aegis doctor`).
//! - [`config`]: the config file, its sections and their checks.
//! - [`clock`]: the process-wide monotonic clock shards stamp reads with.
//! - [`latency`]: per-stage latency histograms (read → parsed → brain → decision).
//! - [`rest`]: the REST client with its weight budget, and the worker serving the brain.
//! - [`run`]: wiring a run together and its summary.
//! - [`replay`]: recorded data through the same brain and desk, as a deterministic backtest.
//!
//! - [`watchdog`]: progress counters checked for stalls.

pub mod brain;
pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod doctor;
pub mod feed;
pub mod latency;
pub mod ledger;
pub mod live;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod rest;
pub mod ring;
pub mod run;
pub mod watchdog;
