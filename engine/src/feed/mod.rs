//! The feed: bytes from the exchange to records, without allocating per message.
//!
//! - [`handshake`]: the client's upgrade request and the check of the answer.
//! - [`frame`]: server frames decoded in place; our masked frames encoded.
//! - [`json`]: a borrowing JSON object scanner; [`digits`]: digit runs 16 bytes at a time.
//! - [`conn`]: one WebSocket connection as a sans-IO state machine.
//! - [`endpoint`]: one connection a shard keeps open (address, path, streams, symbols).
//! - [`shard`]: a shard's settings and counters, and what both transports do alike.
//! - [`transport`]: the [`transport::Transport`] trait, mio (epoll) and glommio (io_uring).
//! - [`subscription`]: live SUBSCRIBE/UNSUBSCRIBE (rebalancing symbols between shards).
//! - [`binance`]: Binance payloads → `aegis_wire::Record`s; [`fast`]: templates for the
//!   busiest payloads in Binance's exact layout.

pub mod binance;
pub mod conn;
pub mod digits;
pub mod endpoint;
pub mod fast;
pub mod frame;
pub mod handshake;
pub mod json;
pub mod shard;
pub mod subscription;
pub mod transport;
