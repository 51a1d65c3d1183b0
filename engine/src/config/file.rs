//! The config file (TOML) as users write it: its sections, and the checks serde cannot
//! make. Every error names the key it is about. An empty or missing value means the
//! default, which lives once in [`super::run`].

use super::run::{
    ExchangeSettings, CONNECTION_LIFETIME, INFO_REFRESH, KEEP_ALIVE, MAX_OPEN_ALGO_ORDERS,
    ROTATE_BEFORE_LIFETIME_END, TRIGGERING_TIMEOUT,
};
use crate::desk::TradingConfig;
use crate::store::ledger::{DataConfig, FSYNC_INTERVAL};
use aegis_trading::broker::WorkingType;
use std::time::Duration;

/// A config that cannot be used: unreadable TOML, or a value the engine refuses.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a key or type the file format does not have.
    #[error("parsing {name}: {message}")]
    Toml {
        /// Which file.
        name: String,
        /// The TOML error, with its line and column.
        message: String,
    },
    /// A value outside what the engine accepts; the message starts with its key.
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, ConfigError>;

macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(ConfigError::Invalid(format!($($arg)*)))
    };
}

/// Parses and checks a config file's text; `name` says which file in errors.
pub fn parse(text: &str, name: &str) -> Result<FileConfig> {
    let file: FileConfig = toml::from_str(text)
        .map_err(|e| ConfigError::Toml { name: name.to_string(), message: e.to_string() })?;
    file.validate().map_err(|e| ConfigError::Invalid(format!("checking {name}: {e}")))?;
    Ok(file)
}

/// The config file. Unknown keys are refused (with their line) in every section the engine
/// reads; the sections of later issues are accepted as tables until their code reads them.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Where journals, the experience log and the control socket live.
    pub data_dir: Option<std::path::PathBuf>,
    /// Lets the brain share a core with a shard.
    pub allow_shared_cores: bool,
    /// `[policy]`.
    pub policy: PolicySection,
    /// `[risk]`.
    pub risk: RiskSection,
    /// `[broker]`.
    pub broker: BrokerSection,
    /// `[ml]`.
    pub ml: MlSection,
    /// `[journal]`.
    pub journal: JournalSection,
    /// `[cpu]`.
    pub cpu: CpuSection,
    /// `[control]`.
    pub control: ControlSection,
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[exchange]`.
    pub exchange: ExchangeSection,
    /// `[streams]`.
    pub streams: StreamsSection,
    /// `[symbols]`.
    pub symbols: SymbolsSection,
    /// `[sim]`.
    pub sim: SimSection,
    /// `[shards]`.
    pub shards: ShardsSection,
    /// `[ring]`.
    pub ring: RingSection,
    /// `[brain]`.
    pub brain: BrainSection,
    /// `[features]`.
    pub features: FeaturesSection,
}

/// `[control]`: the control socket.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSection {
    /// Socket path; empty: `<data_dir>/aegis.sock` (none without a data dir).
    pub socket: String,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Loopback address; empty disables.
    pub addr: String,
}

/// `[features]`: per-symbol analytics sizes; anything left out keeps its default.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesSection {
    /// Bars either side of a swing high or low.
    pub swing_lookback: Option<usize>,
    /// Bars searched back for an order block.
    pub order_block_search: Option<usize>,
    /// Order blocks kept.
    pub order_blocks: Option<usize>,
    /// Fair-value gaps kept.
    pub fair_value_gaps: Option<usize>,
    /// Swing levels kept.
    pub swing_levels: Option<usize>,
    /// Bars in the momentum window.
    pub momentum_bars: Option<usize>,
    /// Bars in the short realised-volatility window.
    pub realized_vol_short: Option<usize>,
    /// Bars in the long realised-volatility window.
    pub realized_vol_long: Option<usize>,
}

impl FeaturesSection {
    /// The feature sizes, each checked.
    pub fn config(&self) -> Result<aegis_analytics::FeatureConfig> {
        let d = aegis_analytics::FeatureConfig::default();
        let c = aegis_analytics::FeatureConfig {
            swing_lookback: self.swing_lookback.unwrap_or(d.swing_lookback),
            order_block_search: self.order_block_search.unwrap_or(d.order_block_search),
            order_blocks: self.order_blocks.unwrap_or(d.order_blocks),
            fair_value_gaps: self.fair_value_gaps.unwrap_or(d.fair_value_gaps),
            swing_levels: self.swing_levels.unwrap_or(d.swing_levels),
            momentum_bars: self.momentum_bars.unwrap_or(d.momentum_bars),
            realized_vol_short: self.realized_vol_short.unwrap_or(d.realized_vol_short),
            realized_vol_long: self.realized_vol_long.unwrap_or(d.realized_vol_long),
        };
        let positive = [
            ("swing_lookback", c.swing_lookback),
            ("order_block_search", c.order_block_search),
            ("order_blocks", c.order_blocks),
            ("fair_value_gaps", c.fair_value_gaps),
            ("swing_levels", c.swing_levels),
            ("momentum_bars", c.momentum_bars),
            ("realized_vol_short", c.realized_vol_short),
        ];
        for (key, value) in positive {
            if value == 0 || value > 4096 {
                invalid!("features.{key}: {value} is outside 1..=4096");
            }
        }
        if c.realized_vol_long <= c.realized_vol_short || c.realized_vol_long > 4096 {
            invalid!(
                "features.realized_vol_long: {} must exceed realized_vol_short ({}) and be at most 4096",
                c.realized_vol_long,
                c.realized_vol_short
            );
        }
        Ok(c)
    }
}

/// `[policy]` (SPEC §5).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Closed trades the teacher makes before the student may.
    pub teacher_trades: u64,
    /// The teacher's leverage cap.
    pub teacher_max_leverage: f64,
    /// Signals below this confidence are not traded.
    pub min_confidence: f64,
    trend_filter_1h: bool,
    /// Adverse move (fraction) that counts as signal decay.
    pub decay_adverse_move: f64,
}

impl Default for PolicySection {
    fn default() -> Self {
        let d = aegis_trading::PolicyConfig::default();
        Self {
            teacher_trades: d.teacher_trades,
            teacher_max_leverage: d.teacher_max_leverage,
            min_confidence: d.min_confidence,
            trend_filter_1h: d.trend_filter_1h,
            decay_adverse_move: 0.01,
        }
    }
}

/// `[risk]` (SPEC §6).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSection {
    /// The paper wallet at the first start (USDT).
    pub starting_equity: String,
    /// `fixed_risk` or `kelly`.
    pub sizing: String,
    /// Equity risked per trade.
    pub risk_pct: f64,
    /// Cap on the risk per trade.
    pub max_risk_pct: f64,
    /// `percent` or `atr`.
    pub stop_mode: String,
    /// Take-profit distance.
    pub take_profit: f64,
    /// Stop-loss distance.
    pub stop_loss: f64,
    /// Leverage cap.
    pub max_leverage: f64,
    /// Open positions at once (1..=4).
    pub max_positions: usize,
    /// Close the weakest position for a stronger signal.
    pub rotation: bool,
    /// Daily loss that halts trading.
    pub max_daily_loss_pct: f64,
    /// Drawdown that halts trading.
    pub max_drawdown_pct: f64,
    /// Gross notional cap, in multiples of equity.
    pub max_gross_exposure: f64,
    /// Market data older than this blocks new entries.
    pub stale_after: String,
}

impl Default for RiskSection {
    fn default() -> Self {
        let (s, b) = (aegis_trading::SizingConfig::default(), aegis_trading::broker::BrokerConfig::default());
        Self {
            starting_equity: b.starting_equity.to_string(),
            sizing: "fixed_risk".into(),
            risk_pct: s.risk_pct,
            max_risk_pct: s.max_risk_pct,
            stop_mode: "percent".into(),
            take_profit: s.take_profit,
            stop_loss: s.stop_loss,
            max_leverage: aegis_trading::PolicyConfig::default().max_leverage,
            max_positions: b.max_positions,
            rotation: b.rotation,
            max_daily_loss_pct: b.max_daily_loss_pct,
            max_drawdown_pct: b.max_drawdown_pct,
            max_gross_exposure: s.max_gross_exposure,
            stale_after: String::new(),
        }
    }
}

/// `[broker]` (SPEC §6).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSection {
    /// `paper` (the default) or `live` (orders at the exchange; needs `exchange.keys`).
    pub mode: String,
    /// Taker fee rate.
    pub taker_fee: f64,
    /// Maker fee rate.
    pub maker_fee: f64,
    /// Paper fills' slippage, basis points.
    pub slippage_bps: f64,
    /// Close every position when the run stops.
    pub flatten_on_shutdown: bool,
    /// Live: how often the user-data listenKey is kept alive.
    pub keep_alive: String,
    /// Live: which price triggers the stop and take-profit legs (`MARK_PRICE`, the
    /// default, or `CONTRACT_PRICE`).
    pub working_type: String,
    /// Live: how long a leg may stay TRIGGERING before the position is closed as
    /// unprotected.
    pub triggering_timeout: String,
    /// Live: open conditional orders the account may hold (Binance's cap: 200).
    pub max_open_algo_orders: usize,
    /// Live: how orders, cancels and order queries go: `websocket` (the default: Binance's
    /// WebSocket API on one persistent connection, REST while it is down) or `rest`.
    pub order_api: String,
}

impl Default for BrokerSection {
    fn default() -> Self {
        let b = aegis_trading::broker::BrokerConfig::default();
        Self {
            mode: "paper".into(),
            taker_fee: b.taker_fee,
            maker_fee: 0.0002,
            slippage_bps: b.slippage_bps,
            flatten_on_shutdown: false,
            keep_alive: String::new(),
            working_type: "MARK_PRICE".into(),
            triggering_timeout: String::new(),
            max_open_algo_orders: MAX_OPEN_ALGO_ORDERS,
            order_api: "websocket".into(),
        }
    }
}

/// `[ml]` (SPEC §7): the parts the engine reads now.
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlSection {
    /// Start the ML sidecar with the run.
    pub spawn_sidecar: bool,
    /// Bars ahead a sample's label looks.
    pub label_horizon: usize,
    /// Capacity of the bar-sample ring.
    pub bar_samples: usize,
    /// Capacity of the trade-experience ring.
    pub trade_experiences: usize,
    /// Threads libtorch may use.
    pub torch_threads: usize,
    /// The sidecar trains again after this many more closed trades.
    pub train_every: u64,
    /// The sidecar binary; empty: `aegis-sidecar` beside the `aegis` binary.
    pub sidecar: String,
}

impl Default for MlSection {
    fn default() -> Self {
        let (data, ml) = (DataConfig::default(), super::run::MlConfig::default());
        Self {
            spawn_sidecar: true,
            label_horizon: TradingConfig::default().label_horizon,
            bar_samples: data.bar_samples,
            trade_experiences: data.trade_experiences,
            torch_threads: ml.torch_threads,
            train_every: ml.train_every,
            sidecar: String::new(),
        }
    }
}

/// `[journal]` (SPEC §8).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSection {
    /// `always`, `interval` or `never`.
    pub fsync: String,
    /// How often `interval` syncs.
    pub fsync_interval: String,
}

impl Default for JournalSection {
    fn default() -> Self {
        Self { fsync: "interval".into(), fsync_interval: String::new() }
    }
}

/// Checks a fraction setting lies in `range`, naming the key.
pub fn fraction(key: &str, value: f64, range: std::ops::RangeInclusive<f64>) -> Result<f64> {
    if !value.is_finite() || !range.contains(&value) {
        invalid!("{key}: {value} is outside {}..={}", range.start(), range.end());
    }
    Ok(value)
}

impl FileConfig {
    /// Whether orders go to the exchange (`broker.mode = "live"`).
    pub fn live(&self) -> bool {
        self.broker.mode == "live"
    }

    /// The decision and money settings, each checked with its key path.
    pub fn trading(&self) -> Result<TradingConfig> {
        let (p, r, b) = (&self.policy, &self.risk, &self.broker);
        if !matches!(b.mode.as_str(), "paper" | "live") {
            invalid!("broker.mode: {:?} is not one of paper, live", b.mode);
        }
        if b.mode == "live" && self.exchange.keys.is_empty() {
            invalid!("broker.mode: \"live\" needs exchange.keys (\"env\" or a 0600 key file)");
        }
        let keep_alive = duration_or("broker.keep_alive", &b.keep_alive, KEEP_ALIVE)?;
        if keep_alive.is_zero() || keep_alive >= Duration::from_secs(3_600) {
            invalid!("broker.keep_alive: {keep_alive:?} must be above zero and under the listenKey's 60 min");
        }
        let timeout = duration_or("broker.triggering_timeout", &b.triggering_timeout, TRIGGERING_TIMEOUT)?;
        if timeout.is_zero() || timeout > Duration::from_secs(300) {
            invalid!("broker.triggering_timeout: {timeout:?} must be above zero and at most 5 min");
        }
        if !matches!(b.order_api.as_str(), "websocket" | "rest") {
            invalid!("broker.order_api: {:?} is not one of websocket, rest", b.order_api);
        }
        if !(2..=MAX_OPEN_ALGO_ORDERS).contains(&b.max_open_algo_orders) {
            invalid!(
                "broker.max_open_algo_orders: {} is outside 2..={MAX_OPEN_ALGO_ORDERS} (a trade's two legs; Binance's cap)",
                b.max_open_algo_orders
            );
        }
        let starting_equity: f64 = r.starting_equity.parse().map_err(|_| {
            ConfigError::Invalid(format!("risk.starting_equity: {:?} is not a number", r.starting_equity))
        })?;
        let max_leverage = fraction("risk.max_leverage", r.max_leverage, 1.0..=125.0)?;
        if r.max_positions == 0 || r.max_positions > 4 {
            invalid!("risk.max_positions: {} is outside 1..=4", r.max_positions);
        }
        if self.ml.label_horizon == 0 || self.ml.label_horizon > 1_440 {
            invalid!("ml.label_horizon: {} is outside 1..=1440", self.ml.label_horizon);
        }
        let policy = aegis_trading::PolicyConfig {
            teacher_trades: p.teacher_trades,
            teacher_max_leverage: fraction(
                "policy.teacher_max_leverage",
                p.teacher_max_leverage,
                1.0..=125.0,
            )?,
            min_confidence: fraction("policy.min_confidence", p.min_confidence, 0.0..=1.0)?,
            trend_filter_1h: p.trend_filter_1h,
            max_leverage,
        };
        let sizing = aegis_trading::SizingConfig {
            mode: match r.sizing.as_str() {
                "fixed_risk" => aegis_trading::sizing::SizingMode::FixedRisk,
                "kelly" => aegis_trading::sizing::SizingMode::Kelly,
                other => invalid!("risk.sizing: {other:?} is not one of fixed_risk, kelly"),
            },
            risk_pct: fraction("risk.risk_pct", r.risk_pct, 0.0..=0.5)?,
            max_risk_pct: fraction("risk.max_risk_pct", r.max_risk_pct, 0.0..=0.5)?,
            stop_mode: match r.stop_mode.as_str() {
                "percent" => aegis_trading::sizing::StopMode::Percent,
                "atr" => aegis_trading::sizing::StopMode::Atr,
                other => invalid!("risk.stop_mode: {other:?} is not one of percent, atr"),
            },
            take_profit: fraction("risk.take_profit", r.take_profit, 1e-6..=100.0)?,
            stop_loss: fraction("risk.stop_loss", r.stop_loss, 1e-6..=100.0)?,
            max_gross_exposure: fraction("risk.max_gross_exposure", r.max_gross_exposure, 0.0..=1_000.0)?,
        };
        if sizing.stop_mode == aegis_trading::sizing::StopMode::Percent && sizing.stop_loss >= 1.0 {
            invalid!("risk.stop_loss: {} would put a long's stop at or below zero", sizing.stop_loss);
        }
        let broker = aegis_trading::broker::BrokerConfig {
            starting_equity: fraction("risk.starting_equity", starting_equity, 1e-8..=1e15)?,
            taker_fee: fraction("broker.taker_fee", b.taker_fee, 0.0..=0.1)?,
            slippage_bps: fraction("broker.slippage_bps", b.slippage_bps, 0.0..=1_000.0)?,
            max_positions: r.max_positions,
            rotation: r.rotation,
            max_daily_loss_pct: fraction("risk.max_daily_loss_pct", r.max_daily_loss_pct, 0.0..=1.0)?,
            max_drawdown_pct: fraction("risk.max_drawdown_pct", r.max_drawdown_pct, 0.0..=1.0)?,
            working_type: WorkingType::parse(&b.working_type).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "broker.working_type: {:?} is not one of MARK_PRICE, CONTRACT_PRICE",
                    b.working_type
                ))
            })?,
        };
        fraction("broker.maker_fee", b.maker_fee, 0.0..=0.1)?;
        Ok(TradingConfig {
            policy,
            sizing,
            broker,
            decay_adverse_move: fraction("policy.decay_adverse_move", p.decay_adverse_move, 0.0..=1.0)?,
            label_horizon: self.ml.label_horizon,
            stale_after_ms: duration_or("risk.stale_after", &r.stale_after, stale_after_default())?
                .as_millis() as i64,
        })
    }

    /// The journal's fsync policy.
    pub fn fsync(&self) -> Result<aegis_journal::FsyncPolicy> {
        Ok(match self.journal.fsync.as_str() {
            "always" => aegis_journal::FsyncPolicy::Always,
            "never" => aegis_journal::FsyncPolicy::Never,
            "interval" => aegis_journal::FsyncPolicy::Interval(duration_or(
                "journal.fsync_interval",
                &self.journal.fsync_interval,
                FSYNC_INTERVAL,
            )?),
            other => invalid!("journal.fsync: {other:?} is not one of always, interval, never"),
        })
    }
}

/// `[exchange]`: where the exchange is and how connections behave.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeSection {
    /// `embedded` (an in-process exchange-sim) or `remote`.
    pub mode: String,
    /// Public WebSocket base URL.
    pub public_ws: String,
    /// Market WebSocket base URL.
    pub market_ws: String,
    /// REST base URL.
    pub rest: String,
    /// A PEM file of extra trusted roots.
    pub extra_ca: String,
    /// How long the exchange keeps a connection.
    pub connection_lifetime: String,
    /// How early a connection is replaced before its lifetime ends.
    pub rotate_before_lifetime_end: String,
    /// Streams per connection (1..=200).
    pub max_streams_per_connection: Option<usize>,
    /// First reconnect back-off.
    pub reconnect_initial: String,
    /// Longest reconnect back-off.
    pub reconnect_max: String,
    /// API credentials: empty (none; paper needs none), `env`, or a 0600 key file's path.
    pub keys: String,
    /// User-data stream WebSocket base (`…/private/ws?listenKey=…`); empty: the market tier's host.
    pub user_ws: String,
    /// WebSocket API URL for order entry; empty: derived from `rest`.
    pub ws_api: String,
    /// How often exchangeInfo is read again (`1h` when empty).
    pub info_refresh: String,
}

/// `[streams]`: what is subscribed per symbol.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsSection {
    /// Stream kinds subscribed per symbol.
    pub kinds: Vec<String>,
    /// Closed 1m bars fetched at start.
    pub warmup_bars: usize,
    /// Levels in a depth snapshot.
    pub depth_snapshot_limit: usize,
}

/// `[symbols]`: what is traded.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolsSection {
    /// Symbols traded; empty: every symbol the exchange serves.
    pub list: Vec<String>,
}

/// `[sim]`: the embedded exchange-sim's market.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Synthetic symbols.
    pub symbols: u32,
    /// The synthetic market's seed.
    pub seed: u64,
    /// Clock speed-up (`60`, `max`).
    pub speed: String,
    /// Bars of history served.
    pub history_bars: usize,
}

/// `[cpu]`: how pinning failures are treated.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CpuSection {
    /// `required` (a core that cannot be had stops start-up), `best-effort` (a warning), or
    /// empty: required when a pinned thread spins, else best effort.
    pub pinning: String,
    /// `threads` (a thread per role), `one-thread` (one shard's thread also runs the brain:
    /// mio, one shard), or `auto`/empty: one thread when the host has fewer usable CPUs
    /// than shards + brain + one spare.
    pub placement: String,
}

/// `[shards]`: feed shards, their cores and transport.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ShardsSection {
    /// Feed shards.
    pub count: usize,
    /// Cores the shards are pinned to.
    pub cores: Vec<usize>,
    /// What an idle shard does.
    pub idle: String,
    /// Largest message accepted (`1MiB`).
    pub max_message: String,
    /// `auto`, `mio` or `glommio`.
    pub transport: String,
    /// glommio's io_uring buffer memory.
    pub io_memory: String,
}

/// `[ring]`: the shard → brain rings.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RingSection {
    /// Slots per shard → brain ring (a power of two).
    pub capacity: usize,
    /// Spins on a full ring before dropping.
    pub full_spin_limit: u32,
}

/// `[brain]`: the brain's core and idle policy.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BrainSection {
    /// Core the brain is pinned to.
    pub core: Option<usize>,
    /// What an idle brain does.
    pub idle: String,
}

/// An idle policy by name, `key` naming the setting in errors.
pub fn idle_policy(key: &str, text: &str) -> Result<crate::ring::Idle> {
    use crate::ring::Idle;
    Ok(match text {
        "spin" => Idle::Spin,
        "park" => Idle::Park,
        "spin-then-park" | "" => Idle::SpinThenPark,
        other => invalid!("{key}: {other:?} is not one of spin, spin-then-park, park"),
    })
}

/// A duration (`100ms`, `5s`, `10m`), or `default` when empty; `key` names it in errors.
pub fn duration_or(key: &str, text: &str, default: Duration) -> Result<Duration> {
    if text.is_empty() {
        return Ok(default);
    }
    aegis_wire::units::parse_duration(text).map_err(|e| ConfigError::Invalid(format!("{key}: {e}")))
}

/// A size (`N`, `N KiB`, `N MiB`), or `default` when empty; `key` names it in errors.
pub fn size_or(key: &str, text: &str, default: usize) -> Result<usize> {
    if text.is_empty() {
        return Ok(default);
    }
    aegis_wire::units::parse_size(text).map_err(|e| ConfigError::Invalid(format!("{key}: {e}")))
}

/// `[risk] stale_after`'s default, from the desk's.
fn stale_after_default() -> Duration {
    Duration::from_millis(TradingConfig::default().stale_after_ms.max(0) as u64)
}

impl FileConfig {
    /// Checks what serde cannot: limits, powers of two, core assignments. Errors name the key.
    pub fn validate(&self) -> Result<()> {
        let capacity = self.ring.capacity;
        if capacity != 0 && (capacity < 2 || !capacity.is_power_of_two()) {
            invalid!("ring.capacity: {capacity} is not a power of two (≥ 2)");
        }
        if let Some(n) = self.exchange.max_streams_per_connection {
            if !(1..=200).contains(&n) {
                invalid!("exchange.max_streams_per_connection: {n} is outside 1..=200 (Binance closes a connection past 200)");
            }
        }
        let cores = &self.shards.cores;
        if let Some(dup) = cores.iter().enumerate().find_map(|(i, c)| cores[..i].contains(c).then_some(c)) {
            invalid!("shards.cores: core {dup} is given to two shards");
        }
        if !cores.is_empty() && cores.len() < self.shards.count.max(1) {
            invalid!("shards.cores: {} core(s) for {} shards", cores.len(), self.shards.count);
        }
        if let Some(brain) = self.brain.core.filter(|c| cores.contains(c) && !self.allow_shared_cores) {
            invalid!("brain.core: core {brain} is also a shard's (set allow_shared_cores = true to share)");
        }
        idle_policy("shards.idle", &self.shards.idle)?;
        idle_policy("brain.idle", &self.brain.idle)?;
        let d = ExchangeSettings::default();
        let initial =
            duration_or("exchange.reconnect_initial", &self.exchange.reconnect_initial, d.backoff_initial)?;
        let max = duration_or("exchange.reconnect_max", &self.exchange.reconnect_max, d.backoff_max)?;
        if initial.is_zero() || initial > max {
            invalid!("exchange.reconnect_initial: {initial:?} must be positive and at most reconnect_max ({max:?})");
        }
        for (key, size) in
            [("shards.max_message", &self.shards.max_message), ("shards.io_memory", &self.shards.io_memory)]
        {
            if !size.is_empty() {
                size_or(key, size, 0)?;
            }
        }
        if !matches!(self.shards.transport.as_str(), "auto" | "" | "glommio" | "mio") {
            invalid!("shards.transport: {:?} is not one of auto, glommio, mio", self.shards.transport);
        }
        let lifetime = duration_or(
            "exchange.connection_lifetime",
            &self.exchange.connection_lifetime,
            CONNECTION_LIFETIME,
        )?;
        let early = duration_or(
            "exchange.rotate_before_lifetime_end",
            &self.exchange.rotate_before_lifetime_end,
            ROTATE_BEFORE_LIFETIME_END,
        )?;
        if early >= lifetime {
            invalid!("exchange.rotate_before_lifetime_end: {early:?} must be shorter than connection_lifetime ({lifetime:?})");
        }
        let refresh = duration_or("exchange.info_refresh", &self.exchange.info_refresh, INFO_REFRESH)?;
        if refresh < Duration::from_secs(1) {
            invalid!("exchange.info_refresh: {refresh:?} is under 1 s (exchangeInfo costs request weight; Binance changes it rarely)");
        }
        if let crate::credentials::KeySource::File(path) =
            crate::credentials::KeySource::from_setting(&self.exchange.keys)
        {
            if path.as_os_str().is_empty() || path.is_dir() {
                invalid!("exchange.keys: {:?} is not \"env\" or a key file", self.exchange.keys);
            }
        }
        self.features.config()?;
        self.trading()?;
        self.fsync()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;

    fn refusal(text: &str) -> String {
        match parse(text, "test.toml") {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_embedded_config_is_valid() {
        parse(DEFAULT_CONFIG, "the embedded config").expect("default config");
    }

    #[test]
    fn each_refusal_names_its_key() {
        assert!(
            refusal("[shards]\nmax_message = \"99999999999999999999 MiB\"").contains("shards.max_message")
        );
        assert!(refusal("[shards]\nio_memory = \"18446744073709551615 MiB\"").contains("too large"));
        assert!(refusal("[shards]\ntransport = \"dpdk\"").contains("shards.transport"));
        assert!(refusal("[exchange]\nconnection_lifetime = \"10m\"\nrotate_before_lifetime_end = \"30m\"")
            .contains("exchange.rotate_before_lifetime_end"));
        assert!(refusal("[ring]\ncapacity = 1000").contains("ring.capacity"));
        let toml = refusal("[ring]\nbogus = 1");
        assert!(toml.contains("test.toml") && toml.contains("bogus"), "{toml}");
    }

    #[test]
    fn live_trading_is_asked_for_explicitly_and_needs_keys() {
        let paper = parse(DEFAULT_CONFIG, "the embedded config").unwrap();
        assert!(!paper.live(), "paper is the default");
        assert!(refusal("[broker]\nmode = \"live\"").contains("needs exchange.keys"));
        assert!(refusal("[broker]\nmode = \"real\"").contains("broker.mode"));
        let live = parse("[broker]\nmode = \"live\"\n[exchange]\nkeys = \"env\"", "test.toml").unwrap();
        assert!(live.live());
        assert!(refusal("[broker]\nkeep_alive = \"90m\"").contains("broker.keep_alive"));
        assert!(refusal("[broker]\nkeep_alive = \"0s\"").contains("broker.keep_alive"));
        assert!(refusal("[broker]\nworking_type = \"LAST\"").contains("broker.working_type"));
        assert!(refusal("[broker]\ntriggering_timeout = \"1h\"").contains("broker.triggering_timeout"));
        assert!(refusal("[broker]\nmax_open_algo_orders = 201").contains("broker.max_open_algo_orders"));
    }
}
