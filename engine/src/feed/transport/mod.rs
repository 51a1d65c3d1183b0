//! How a shard's bytes move: one [`Transport`] trait, two implementations — [`mio`] (epoll,
//! readiness) and [`glommio`] (io_uring, completion). Both drive the same sans-IO
//! connection ([`crate::feed::conn`]) and deliver through the same
//! [`crate::feed::shard::deliver`], so the records a ring sees do not depend on the transport.
//!
//! A shard runs with everything it owns in one [`ShardRun`]. The one-thread placement (hosts
//! with fewer cores than pinned roles) runs the brain inside a mio shard's poll loop
//! ([`mio::run_shard_with_brain`]), woken there by the brain's doorbell. io_uring is
//! syscall batching, not kernel bypass: an AF_XDP or vendor-bypass transport would be a
//! third implementation.

pub mod glommio;
pub mod mio;
pub mod rtt;

pub use crate::feed::shard::ShardRun;
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
/// `Glommio` where io_uring cannot start is an error naming the reason. `Auto` follows
/// `record` (`aegis doctor`'s measurement in the data dir) when it was made on this host,
/// and otherwise takes mio: this project's measurements on VMs put mio's loopback round
/// trip well ahead (busy-poll 8.6–9.5 µs against glommio's 25–26 µs; parked, level).
pub fn choose(
    choice: TransportChoice,
    io_memory: usize,
    record: Option<&rtt::Record>,
) -> Result<(Arc<dyn Transport>, String), glommio::UringError> {
    let glommio = || -> Arc<dyn Transport> { Arc::new(Glommio { io_memory }) };
    Ok(match choice {
        TransportChoice::Mio => (Arc::new(Mio), "mio (configured)".to_string()),
        TransportChoice::Glommio => {
            glommio::probe(io_memory)?;
            (glommio(), "glommio (configured)".to_string())
        }
        TransportChoice::Auto => {
            let here = rtt::HostId::here();
            match record {
                Some(r) if r.host == here && r.choice == "glommio" => match glommio::probe(io_memory) {
                    Ok(()) => (glommio(), format!("glommio (auto, measured: {})", r.summary())),
                    Err(reason) => {
                        tracing::warn!(%reason, "io_uring not usable; using the mio transport");
                        (Arc::new(Mio), format!("mio (auto: measured glommio faster, but now {reason})"))
                    }
                },
                Some(r) if r.host == here => (Arc::new(Mio), format!("mio (auto, measured: {})", r.summary())),
                Some(r) => (
                    Arc::new(Mio),
                    format!(
                        "mio (auto: the transport record was made on {} ({}), not here; `aegis doctor` measures this host)",
                        r.host.hostname, r.host.cpu_model
                    ),
                ),
                None => (
                    Arc::new(Mio),
                    "mio (auto: no measurement for this host — `aegis doctor` makes one; measured on VMs, \
                     mio's loopback round trip leads glommio's: busy-poll 8.6–9.5 µs against 25–26 µs)"
                        .to_string(),
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::rtt::{HostId, Record, Rtt};
    use super::*;

    fn record(choice: &str, host: HostId) -> Record {
        let rtt = Rtt { p50_ns: 9_000, p90_ns: 10_000, p99_ns: 20_000, p999_ns: 30_000, max_ns: 40_000 };
        Record {
            host,
            date: "2026-12-06".into(),
            idle: "spin".into(),
            cores: (Some(0), Some(1)),
            size_bytes: 200,
            samples: 5_000,
            mio: Ok(rtt),
            glommio: Ok(rtt),
            choice: choice.into(),
        }
    }

    #[test]
    fn auto_follows_this_hosts_record_and_otherwise_takes_mio_saying_why() {
        let note = |r: Option<&Record>| choose(TransportChoice::Auto, 512 << 10, r).unwrap().1;
        assert!(note(None).starts_with("mio (auto: no measurement for this host"), "{}", note(None));
        let mio_here = record("mio", HostId::here());
        assert!(note(Some(&mio_here)).starts_with("mio (auto, measured: mio p50 9.0 µs p99 20.0 µs"));
        let elsewhere = record("glommio", HostId { hostname: "other".into(), ..HostId::here() });
        assert!(note(Some(&elsewhere)).starts_with("mio (auto: the transport record was made on other"));
        let glommio_here = record("glommio", HostId::here());
        let expected = match glommio::probe(512 << 10) {
            Ok(()) => "glommio (auto, measured: ",
            Err(_) => "mio (auto: measured glommio faster, but now ",
        };
        assert!(note(Some(&glommio_here)).starts_with(expected), "{}", note(Some(&glommio_here)));
        assert_eq!(
            choose(TransportChoice::Mio, 512 << 10, Some(&glommio_here)).unwrap().1,
            "mio (configured)"
        );
    }
}
