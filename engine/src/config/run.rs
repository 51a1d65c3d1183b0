//! The typed run settings: everything `aegis run` needs, nested by the thread or role that
//! reads it, with `Default` holding every default once. [`crate::config::build`] fills
//! them from the config file; tests and the benchmark harness start from `Default` and
//! change what their scenario needs. A new key is one field here, its default in the
//! `Default` impl beside it, and one line in the builder.

use crate::desk::TradingConfig;
use crate::feed::transport::TransportChoice;
use crate::ring::Idle;
use crate::store::ledger::DataConfig;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Everything a run needs to know.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// Where the exchange is and how connections to it behave.
    pub exchange: ExchangeSettings,
    /// What is subscribed, and the shards and rings that carry it.
    pub feed: FeedSettings,
    /// The brain's thread and its per-symbol analytics.
    pub brain: BrainSettings,
    /// Policy, sizing, broker and labelling settings (the desk).
    pub trading: TradingConfig,
    /// The data directory and what is kept in it.
    pub data: DataConfig,
    /// The learned model: the loader (with a data dir) and the sidecar to start.
    pub ml: MlConfig,
    /// Trade at the exchange (`broker.mode = "live"`); `None`: paper.
    pub live: Option<LiveConfig>,
    /// The control socket, metrics and progress lines.
    pub ops: OpsSettings,
    /// When the run ends and what it leaves behind.
    pub end: EndSettings,
    /// `[cpu] pinning`; `None`: required when a pinned thread spins, else best effort.
    pub pinning: Option<crate::cpu::Pinning>,
    /// `[cpu] placement`: a thread per role, one thread, or chosen by the host's cores.
    pub placement: crate::cpu::ThreadPlan,
    /// Benchmarks only (`aegis-bench`'s tick-to-trade; never read from a config file): enter
    /// at every chance with this probability (the random-entries coin), not by the policy.
    pub bench_entries: Option<f64>,
}

/// `[exchange]` and the connection rules of `[shards]`.
#[derive(Clone, Debug)]
pub struct ExchangeSettings {
    /// WebSocket base URL of the `/public` tier (e.g. `ws://127.0.0.1:9000/public`).
    pub public_ws: String,
    /// WebSocket base URL of the `/market` tier; equal to `public_ws` for one connection.
    pub market_ws: String,
    /// REST base URL.
    pub rest: String,
    /// A CA certificate (PEM) to trust besides the webpki roots.
    pub extra_ca: Option<PathBuf>,
    /// First reconnect delay (doubling, with jitter).
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Streams carried by one connection (≤ 200, Binance's limit).
    pub streams_per_connection: usize,
    /// Replace connections after this long, make-before-break (`None`: never).
    pub rotate_after: Option<Duration>,
    /// Largest WebSocket message.
    pub max_message: usize,
    /// 1m bars fetched per symbol at start-up.
    pub warmup_bars: usize,
    /// Depth snapshot size used to sync books.
    pub depth_snapshot_limit: usize,
    /// How often exchangeInfo is read again (status and filters applied while running).
    pub info_refresh: Duration,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        Self {
            // No default exchange: the embedded simulator or the config file names it.
            public_ws: String::new(),
            market_ws: String::new(),
            rest: String::new(),
            extra_ca: None,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            streams_per_connection: aegis_wire::stream::MAX_STREAMS_PER_CONNECTION,
            // Binance closes a connection after 24 h: replace it 30 min before.
            rotate_after: Some(CONNECTION_LIFETIME - ROTATE_BEFORE_LIFETIME_END),
            max_message: 4 << 20,
            warmup_bars: 300,
            depth_snapshot_limit: 1000,
            info_refresh: INFO_REFRESH,
        }
    }
}

/// How often exchangeInfo is read again (SPEC §3: hourly).
pub const INFO_REFRESH: Duration = Duration::from_secs(3_600);

/// How long Binance keeps a WebSocket connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(24 * 3_600);
/// How long before that lifetime ends a connection is replaced.
pub const ROTATE_BEFORE_LIFETIME_END: Duration = Duration::from_secs(30 * 60);

/// `[streams]`, `[symbols]`, `[shards]` and `[ring]`.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Symbols (any case).
    pub symbols: Vec<String>,
    /// Stream kinds per symbol (`aggTrade`, `kline_1m`, `depth@100ms`, …).
    pub streams: Vec<String>,
    /// Feed shards.
    pub shards: usize,
    /// Cores for the shards (in order), if pinned.
    pub shard_cores: Vec<usize>,
    /// Idle policy of the shards.
    pub idle: Idle,
    /// Transport.
    pub transport: TransportChoice,
    /// glommio's registered I/O memory per shard (counts against memlock).
    pub io_memory: usize,
    /// Slots per shard ring (a power of two).
    pub ring_capacity: usize,
    /// Spins on a full ring before dropping.
    pub ring_spin: u32,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            symbols: Vec::new(),
            streams: DEFAULT_STREAMS.iter().map(|s| s.to_string()).collect(),
            shards: 1,
            shard_cores: Vec::new(),
            idle: Idle::SpinThenPark,
            transport: TransportChoice::Auto,
            io_memory: 512 << 10,
            ring_capacity: 1 << 16,
            ring_spin: 1 << 10,
        }
    }
}

/// The default subscription per symbol (SPEC §3).
pub const DEFAULT_STREAMS: [&str; 5] = ["aggTrade", "kline_1m", "bookTicker", "depth@100ms", "markPrice@1s"];

/// `[brain]` and `[features]`.
#[derive(Clone, Debug)]
pub struct BrainSettings {
    /// Core for the brain, if pinned.
    pub core: Option<usize>,
    /// Idle policy of the brain.
    pub idle: Idle,
    /// Per-symbol analytics sizes.
    pub features: aegis_analytics::FeatureConfig,
    /// Exchange events left out of the latency histograms at start.
    pub latency_skip_events: u64,
}

impl Default for BrainSettings {
    fn default() -> Self {
        Self {
            core: None,
            idle: Idle::SpinThenPark,
            features: aegis_analytics::FeatureConfig::default(),
            latency_skip_events: 0,
        }
    }
}

/// The control socket, metrics and what the run prints and writes.
#[derive(Clone, Debug, Default)]
pub struct OpsSettings {
    /// Serve the control socket here (mode 0600).
    pub control_socket: Option<PathBuf>,
    /// Serve Prometheus metrics on this loopback address (`127.0.0.1:0` picks a port).
    pub metrics_addr: Option<String>,
    /// Print a progress line every second.
    pub progress: bool,
    /// Write closed 1m bars here.
    pub bars_out: Option<PathBuf>,
    /// Write every closed bar's features here.
    pub features_out: Option<PathBuf>,
}

/// When the run ends, and how.
#[derive(Clone, Debug, Default)]
pub struct EndSettings {
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// Stop once this many exchange events reached the brain or were dropped on a full ring
    /// (tests, benchmarks).
    pub stop_after_events: Option<u64>,
    /// Stop once the desk has closed this many trades in total (tests, benchmarks).
    pub stop_after_trades: Option<u64>,
    /// Close every position with reason SHUTDOWN at a graceful stop.
    pub flatten_on_shutdown: bool,
    /// Set once every symbol's features are warm (at once with no warm-up bars): a
    /// benchmark's feed waits for it.
    pub warm: Option<Arc<AtomicBool>>,
}

/// The learned model's settings.
#[derive(Clone, Debug)]
pub struct MlConfig {
    /// Start this sidecar binary (`None`: start none; a model published by other means is
    /// still loaded).
    pub sidecar: Option<PathBuf>,
    /// The sidecar trains again after this many more closed trades.
    pub train_every: u64,
    /// libtorch threads for the sidecar.
    pub torch_threads: usize,
}

impl Default for MlConfig {
    fn default() -> Self {
        Self { sidecar: None, train_every: 50, torch_threads: 1 }
    }
}

/// What live trading needs besides the market data settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The API key (signs every trading request).
    pub key: crate::credentials::ApiKey,
    /// User-data stream WebSocket base (`/private/ws?listenKey=…&events=…` is appended).
    pub user_ws: String,
    /// How often the listenKey is kept alive.
    pub keep_alive: Duration,
    /// Which price triggers the stop and take-profit legs.
    pub working_type: crate::execution::live::order::WorkingType,
    /// How long a leg may stay TRIGGERING before the position counts as unprotected.
    pub triggering_timeout: Duration,
    /// Open conditional orders the account may hold.
    pub max_open_algo_orders: usize,
    /// The WebSocket API URL orders go to; `None`: orders go over REST only.
    pub ws_api: Option<String>,
    /// Benchmarks only: a new connection per REST request (the client before kept-alive
    /// connections), as a baseline.
    pub rest_per_request: bool,
}

/// Open conditional orders Binance lets one account hold (since 2025-12-29).
pub const MAX_OPEN_ALGO_ORDERS: usize = 200;

/// How long a leg may stay TRIGGERING by default before its position counts as unprotected.
pub const TRIGGERING_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the listenKey is kept alive by default (it lapses after 60 min).
pub const KEEP_ALIVE: Duration = Duration::from_secs(30 * 60);
