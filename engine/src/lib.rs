//! The Aegis engine, by thread and role. Data flows top to bottom; imports only point down
//! (wiring → threads → their ports → the domain crates → `aegis_wire`), which
//! `tests/module_cycles.rs` checks.
//!
//! Threads and what they own:
//! - [`feed`]: the shards — WebSocket connections (RFC 6455 over mio or glommio, rustls),
//!   Binance JSON → records, pushed into each shard's ring.
//! - [`ring`]: the shard → brain SPSC hand-off, its full-ring policy, the doorbell and the
//!   idle policy of pinned threads.
//! - [`brain`]: bars, roll-ups, order books, de-duplication and gap detection, features;
//!   [`brain::port`] is its command port (control thread → brain).
//! - [`desk`]: decisions, sizing and the account, on the brain's thread; [`desk::venue`]
//!   (the `Execution` port: order intents out, execution reports back — `Paper` answers
//!   inside the broker on the brain's thread, `Live` goes to the gateway) and
//!   [`desk::events`] (what the writer makes durable) are its ports.
//! - [`execution`]: the live venue behind the desk's port: the gateway thread and its
//!   signed Binance client.
//! - [`store`]: the writer thread, the journals and experience log, recovery, export
//!   (feature `export`).
//! - [`rest`]: market-data REST (history, snapshots) and its worker thread.
//! - [`model_loader`]: the thread that validates published models for the brain.
//! - [`ops`]: the control socket, Prometheus metrics, the watchdog, host checks.
//!
//! Shared pieces: [`config`] (the file and the typed run settings), [`net`] (URLs, HTTP,
//! TLS), [`latency`] (per-stage histograms), [`cpu`] (checked pinning), [`clock`],
//! [`credentials`].
//!
//! Wiring: [`run`] plans and starts the threads of a live run; [`replay`] drives the same
//! brain and desk from recorded files (read by `aegis-recorded`).
//!
//! Features: `cli` (default) builds the `aegis` binary with its edge crates (clap, anyhow,
//! logging, signals, the embedded exchange-sim); `export` (default, part of `cli`) adds
//! Parquet export. Without them the library links neither the simulator nor a runtime.

pub mod brain;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod credentials;
pub mod desk;
pub mod execution;
pub mod feed;
pub mod latency;
pub mod model_loader;
pub mod net;
pub mod ops;
pub mod replay;
pub mod rest;
pub mod ring;
pub mod run;
pub mod store;
