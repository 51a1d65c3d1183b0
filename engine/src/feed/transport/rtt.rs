//! Measuring the transports on this host: the loopback round trip of one WebSocket-sized
//! message through mio and through glommio, on the configured cores with the configured
//! idle policy, against a busy-polling echo server. `aegis doctor` measures and records the
//! result in the data dir ([`Record`]); `transport = "auto"` follows the record made on
//! this host, and `perf`'s `transport-rtt` runs the same measurement for every idle policy.

use crate::latency::histogram;
use crate::ring::Idle;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hdrhistogram::Histogram;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct RttOptions {
    /// The client's core (the shard's).
    pub client_core: Option<usize>,
    /// The echo server's core (another one).
    pub server_core: Option<usize>,
    /// How the client waits, as a shard would.
    pub idle: Idle,
    /// Round trips measured.
    pub count: u64,
    /// Round trips before measuring.
    pub warmup: u64,
    /// Message size in bytes.
    pub size: usize,
    /// glommio's registered memory.
    pub io_memory: usize,
}

/// Round-trip percentiles, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rtt {
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile (what the choice compares: the tail is what a trading engine pays).
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

impl Rtt {
    fn of(h: &Histogram<u64>) -> Rtt {
        let q = |p| h.value_at_quantile(p);
        Rtt { p50_ns: q(0.5), p90_ns: q(0.9), p99_ns: q(0.99), p999_ns: q(0.999), max_ns: h.max() }
    }
}

/// Why a transport could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum RttError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// Which step.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// glommio could not run (io_uring or memlock).
    #[error("glommio: {0}")]
    Glommio(String),
    /// The measuring thread panicked.
    #[error("the {0} client panicked")]
    Panicked(&'static str),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RttError {
    move |source| RttError::Io { what, source }
}

/// Both transports' round trips on this host (a transport that cannot run: its reason).
#[derive(Debug)]
pub struct Measured {
    /// mio (epoll).
    pub mio: Result<Rtt, RttError>,
    /// glommio (io_uring).
    pub glommio: Result<Rtt, RttError>,
}

/// Measures mio, then glommio, against one echo server pinned to `server_core`.
pub fn measure(o: &RttOptions) -> Result<Measured, RttError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind the echo server"))?;
    let addr = listener.local_addr().map_err(io("echo server address"))?;
    let server_core = o.server_core;
    let server = std::thread::Builder::new()
        .name("aegis-rtt-echo".into())
        .spawn(move || echo_server(listener, server_core, 2))
        .map_err(io("start the echo server"))?;
    let mio = mio_round_trips(addr, o);
    if mio.is_err() {
        // The server still waits for mio's connection: make it and leave.
        let _ = TcpStream::connect(addr);
    }
    let glommio = glommio_round_trips(addr, o);
    if glommio.is_err() {
        let _ = TcpStream::connect(addr);
    }
    let _ = server.join();
    Ok(Measured { mio, glommio })
}

fn pin(core: Option<usize>) {
    if let Some(cpu) = core {
        let _ = crate::cpu::pin_current(cpu, &crate::cpu::Placement::default());
    }
}

/// Echoes `connections` connections one after another, busy-polling so that the server's
/// own wake-up is not what is measured.
fn echo_server(listener: TcpListener, core: Option<usize>, connections: usize) {
    pin(core);
    let mut buf = vec![0u8; 64 << 10];
    for _ in 0..connections {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_nonblocking(true);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if write_all_spinning(&mut stream, &buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(_) => break,
            }
        }
    }
}

fn write_all_spinning(stream: &mut impl Write, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Round trips through mio on the calling thread's poll, waiting as a shard does under `idle`.
pub fn mio_round_trips(addr: SocketAddr, o: &RttOptions) -> Result<Rtt, RttError> {
    let o = o.clone();
    std::thread::spawn(move || {
        pin(o.client_core);
        let std_stream = TcpStream::connect(addr).map_err(io("connect"))?;
        std_stream.set_nodelay(true).map_err(io("nodelay"))?;
        std_stream.set_nonblocking(true).map_err(io("non-blocking"))?;
        let mut stream = mio::net::TcpStream::from_std(std_stream);
        let mut poll = mio::Poll::new().map_err(io("epoll"))?;
        poll.registry()
            .register(&mut stream, mio::Token(0), mio::Interest::READABLE)
            .map_err(io("register"))?;
        let mut events = mio::Events::with_capacity(8);
        let (message, mut reply) = (vec![b'x'; o.size], vec![0u8; o.size]);
        let mut hist = histogram();
        for i in 0..o.warmup + o.count {
            let start = Instant::now();
            write_all_spinning(&mut stream, &message).map_err(io("write"))?;
            let (mut got, mut idle_spins) = (0, 0u32);
            while got < o.size {
                match stream.read(&mut reply[got..]) {
                    Ok(0) => return Err(io("read")(ErrorKind::UnexpectedEof.into())),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        let timeout = o.idle.poll_timeout(idle_spins);
                        idle_spins = idle_spins.saturating_add(1);
                        poll.poll(&mut events, Some(timeout)).map_err(io("poll"))?;
                    }
                    Err(e) => return Err(io("read")(e)),
                }
            }
            if i >= o.warmup {
                let _ = hist.record(start.elapsed().as_nanos() as u64);
            }
        }
        Ok(Rtt::of(&hist))
    })
    .join()
    .unwrap_or(Err(RttError::Panicked("mio")))
}

/// Round trips through a glommio executor set up as a shard's is under `idle`.
pub fn glommio_round_trips(addr: SocketAddr, o: &RttOptions) -> Result<Rtt, RttError> {
    let (count, warmup, size) = (o.count, o.warmup, o.size);
    let handle = super::glommio::builder("aegis-rtt-uring", o.client_core, o.idle, o.io_memory)
        .spawn(move || async move {
            let mut stream = glommio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (message, mut reply) = (vec![b'x'; size], vec![0u8; size]);
            let mut hist = histogram();
            for i in 0..warmup + count {
                let start = Instant::now();
                stream.write_all(&message).await.map_err(|e| e.to_string())?;
                stream.read_exact(&mut reply).await.map_err(|e| e.to_string())?;
                if i >= warmup {
                    let _ = hist.record(start.elapsed().as_nanos() as u64);
                }
            }
            Ok::<_, String>(Rtt::of(&hist))
        })
        .map_err(|e| RttError::Glommio(format!("executor did not start: {e}")))?;
    handle
        .join()
        .map_err(|e| RttError::Glommio(format!("executor failed (io_uring or memlock): {e}")))?
        .map_err(RttError::Glommio)
}

/// Which host a measurement was made on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostId {
    /// `/proc/sys/kernel/hostname`.
    pub hostname: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// The first `model name` in `/proc/cpuinfo`.
    pub cpu_model: String,
}

impl HostId {
    /// This host.
    pub fn here() -> HostId {
        let text = |path: &str| std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
        let cpuinfo = text("/proc/cpuinfo");
        let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).unwrap_or("");
        HostId {
            hostname: text("/proc/sys/kernel/hostname"),
            kernel: text("/proc/sys/kernel/osrelease"),
            cpu_model: model.trim_start_matches([' ', '\t', ':']).trim().to_string(),
        }
    }
}

/// A measurement kept in the data dir: where, when, how, the figures and the choice.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The host measured.
    pub host: HostId,
    /// When (UTC date, `YYYY-MM-DD`).
    pub date: String,
    /// The idle policy the client waited under (`spin`, `spin-then-park`, `park`).
    pub idle: String,
    /// The client's and the echo server's cores.
    pub cores: (Option<usize>, Option<usize>),
    /// Message size and samples.
    pub size_bytes: usize,
    /// Round trips measured per transport.
    pub samples: u64,
    /// mio's round trip, or why it could not run.
    pub mio: Result<Rtt, String>,
    /// glommio's round trip, or why it could not run.
    pub glommio: Result<Rtt, String>,
    /// `mio` or `glommio`: the lower p99 (mio on a tie, or when glommio cannot run).
    pub choice: String,
}

/// The record's file name in the data dir.
pub const RECORD_FILE: &str = "transport.json";

impl Record {
    /// The record of `measured` under `o`, on this host, today.
    pub fn new(measured: Measured, o: &RttOptions) -> Record {
        let mio = measured.mio.map_err(|e| e.to_string());
        let glommio = measured.glommio.map_err(|e| e.to_string());
        let choice = match (&mio, &glommio) {
            (Ok(m), Ok(g)) if g.p99_ns < m.p99_ns => "glommio",
            (Err(_), Ok(_)) => "glommio",
            _ => "mio",
        };
        Record {
            host: HostId::here(),
            date: utc_date(std::time::SystemTime::now()),
            idle: idle_name(o.idle).to_string(),
            cores: (o.client_core, o.server_core),
            size_bytes: o.size,
            samples: o.count,
            mio,
            glommio,
            choice: choice.to_string(),
        }
    }

    /// Where the record of data dir `dir` lives.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(RECORD_FILE)
    }

    /// The record in `dir`, if there is a readable one.
    pub fn load(dir: &Path) -> Option<Record> {
        serde_json::from_str(&std::fs::read_to_string(Self::path(dir)).ok()?).ok()
    }

    /// Writes the record into `dir` (whole, through a temporary file).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::store::write_whole(&Self::path(dir), &text)
    }

    /// One line: both round trips and the choice.
    pub fn summary(&self) -> String {
        let side = |name: &str, r: &Result<Rtt, String>| match r {
            Ok(r) => format!("{name} p50 {:.1} µs p99 {:.1} µs", us(r.p50_ns), us(r.p99_ns)),
            Err(e) => format!("{name} unavailable ({e})"),
        };
        format!(
            "{}, {} (idle {}, measured {} on {})",
            side("mio", &self.mio),
            side("glommio", &self.glommio),
            self.idle,
            self.date,
            self.host.hostname
        )
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

/// The config word for an idle policy.
pub fn idle_name(idle: Idle) -> &'static str {
    match idle {
        Idle::Spin => "spin",
        Idle::SpinThenPark => "spin-then-park",
        Idle::Park => "park",
    }
}

/// `YYYY-MM-DD` (UTC) of `time`.
pub fn utc_date(time: std::time::SystemTime) -> String {
    crate::clock::Utc::of_system_time(time).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtt(p99_ns: u64) -> Rtt {
        Rtt { p50_ns: p99_ns / 2, p90_ns: p99_ns, p99_ns, p999_ns: p99_ns, max_ns: p99_ns }
    }

    fn options() -> RttOptions {
        RttOptions {
            client_core: None,
            server_core: None,
            idle: Idle::Spin,
            count: 200,
            warmup: 20,
            size: 200,
            io_memory: 512 << 10,
        }
    }

    #[test]
    fn the_lower_tail_wins_and_mio_when_glommio_cannot_run() {
        let record = |mio, glommio| Record::new(Measured { mio, glommio }, &options()).choice;
        assert_eq!(record(Ok(rtt(9_000)), Ok(rtt(25_000))), "mio");
        assert_eq!(record(Ok(rtt(30_000)), Ok(rtt(25_000))), "glommio");
        assert_eq!(record(Ok(rtt(9_000)), Ok(rtt(9_000))), "mio", "a tie keeps mio");
        assert_eq!(record(Ok(rtt(9_000)), Err(RttError::Glommio("memlock".into()))), "mio");
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        let at = |secs| utc_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_796_515_200), "2026-12-06");
        assert_eq!(at(1_796_515_199), "2026-12-05");
    }

    #[test]
    fn both_transports_are_measured_over_real_loopback_and_the_record_round_trips() {
        let measured = measure(&options()).unwrap();
        let mio = measured.mio.as_ref().expect("mio runs everywhere");
        assert!(mio.p50_ns > 0 && mio.p50_ns <= mio.p99_ns && mio.p99_ns <= mio.max_ns, "{mio:?}");
        let record = Record::new(measured, &options());
        let dir = tempfile::tempdir().unwrap();
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()).as_ref(), Some(&record));
        assert_eq!(record.host, HostId::here());
        assert!(record.summary().starts_with("mio p50 "), "{}", record.summary());
    }
}
