//! How a shard's bytes move: one [`Transport`] trait, two implementations — [`mio`] (epoll,
//! readiness) and [`glommio`] (io_uring, completion). Both drive the same sans-IO
//! connection ([`crate::feed::conn`]) and deliver through the same
//! [`crate::feed::shard::deliver`], so the records a ring sees do not depend on the transport.
//!
//! A shard runs with everything it owns in one [`ShardRun`]; a later placement that runs the
//! brain inside the shard's own poll loop (hosts with fewer cores than pinned roles) adds a
//! poll hook and a waker there, behind the same trait. io_uring is syscall batching, not
//! kernel bypass: an AF_XDP or vendor-bypass transport would be a third implementation.

pub mod glommio;
pub mod mio;

use crate::feed::shard::{ShardConfig, ShardStats};
use crate::feed::subscription::ShardCommand;
use crate::ring::RingProducer;
use aegis_wire::SymbolTable;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Which transport a shard's sockets use, as configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportChoice {
    /// glommio where io_uring is usable, else mio (the reason is logged and reported).
    #[default]
    Auto,
    /// glommio (io_uring).
    Glommio,
    /// mio (epoll).
    Mio,
}

/// Everything one shard thread owns while it runs.
pub struct ShardRun {
    /// Its settings and connections.
    pub config: ShardConfig,
    /// The symbols, for names in stream lists.
    pub symbols: Arc<SymbolTable>,
    /// Its ring into the brain.
    pub ring: RingProducer,
    /// Its counters.
    pub stats: Arc<ShardStats>,
    /// Set to stop it.
    pub stop: Arc<AtomicBool>,
    /// Live (un)subscriptions from the control plane.
    pub commands: Option<rtrb::Consumer<ShardCommand>>,
}

/// A way of moving a shard's bytes.
pub trait Transport: Send + Sync {
    /// Runs one shard on the calling thread until its stop flag is set.
    fn run(&self, shard: ShardRun) -> std::io::Result<()>;
}

/// The epoll transport.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mio;

impl Transport for Mio {
    fn run(&self, shard: ShardRun) -> std::io::Result<()> {
        mio::run_shard(shard.config, shard.symbols, shard.ring, shard.stats, shard.stop, shard.commands)
    }
}

/// The io_uring transport, with the registered I/O memory each shard's executor gets.
#[derive(Clone, Copy, Debug)]
pub struct Glommio {
    /// Registered I/O memory per shard (counts against memlock).
    pub io_memory: usize,
}

impl Transport for Glommio {
    fn run(&self, shard: ShardRun) -> std::io::Result<()> {
        glommio::run_shard(
            shard.config,
            shard.symbols,
            shard.ring,
            shard.stats,
            shard.stop,
            self.io_memory,
            shard.commands,
        )
    }
}

/// The transport `choice` asks for on this host, and a note saying what was chosen and why.
/// `Glommio` where io_uring cannot start is an error naming the reason; `Auto` then falls
/// back to mio and says so.
pub fn choose(
    choice: TransportChoice,
    io_memory: usize,
) -> Result<(Arc<dyn Transport>, String), glommio::UringError> {
    let glommio = || -> Arc<dyn Transport> { Arc::new(Glommio { io_memory }) };
    Ok(match choice {
        TransportChoice::Mio => (Arc::new(Mio), "mio (configured)".to_string()),
        TransportChoice::Glommio => {
            glommio::probe(io_memory)?;
            (glommio(), "glommio (configured)".to_string())
        }
        TransportChoice::Auto => match glommio::probe(io_memory) {
            Ok(()) => (glommio(), "glommio (auto: io_uring usable)".to_string()),
            Err(reason) => {
                tracing::warn!(%reason, "io_uring not usable; using the mio transport");
                (Arc::new(Mio), format!("mio (auto: {reason})"))
            }
        },
    })
}
