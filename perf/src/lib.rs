//! Aegis benchmarks: the pieces of the `aegis-bench` harness (criterion benches live in
//! `benches/`).
//!
//! - [`scenario`]: the seeded synthetic market both pipelines read, generated up front.
//! - [`feeder`]: the loopback WebSocket server that writes it, paced or flat out.
//! - [`baseline`]: tokio + tokio-tungstenite + serde_json + a channel into the same brain.
//! - [`owned`]: Binance payloads as owned serde structs (the baselines' parse).
//! - [`cpu`]: CPU seconds per thread group and resident memory, from `/proc`.
//! - [`model`]: a deterministic model for the hot-swap measurements.
//! - [`report`]: markdown with the SPEC §11 bars, and the latency plot.

pub mod baseline;
pub mod cpu;
pub mod feeder;
pub mod model;
pub mod owned;
pub mod report;
pub mod scenario;
