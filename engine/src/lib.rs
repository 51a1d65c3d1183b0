//! The Aegis engine.
//!
//! Built so far (issue 3 in progress): the market-data parsing half of a feed shard.
//! - [`feed`]: RFC 6455 frames and handshake (client side), Binance JSON → records.
//!
//! Planned: transports (glommio, mio), shards, rings, the brain, risk, broker, journal,
//! control plane — see ARCHITECTURE.md.

pub mod feed;
