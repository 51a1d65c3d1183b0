//! The feed: bytes from the exchange to records, without allocating per message.
//!
//! - [`handshake`]: the client's upgrade request and the check of the answer.
//! - [`frame`]: server frames decoded in place; our masked frames encoded.
//! - [`json`]: a borrowing JSON object scanner; [`digits`]: digit runs 16 bytes at a time.
//! - [`conn`]: one WebSocket connection as a sans-IO state machine.
//! - [`shard`]: a pinned thread driving connections with mio and feeding its ring.
//! - [`subscription`]: live SUBSCRIBE/UNSUBSCRIBE (rebalancing symbols between shards).
//! - [`tls`]: rustls client settings (webpki roots plus an extra CA).
//! - [`uring`]: the glommio (io_uring) transport for a shard.
//! - [`binance`]: Binance payloads → `aegis_wire::Record`s; [`fast`]: templates for the
//!   busiest payloads in Binance's exact layout.

pub mod binance;
pub mod conn;
pub mod digits;
pub mod fast;
pub mod frame;
pub mod handshake;
pub mod json;
pub mod shard;
pub mod subscription;
pub mod tls;
pub mod uring;
