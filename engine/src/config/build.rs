//! The config file → the typed run settings: each section's keys checked (errors name the
//! key) and mapped once; an empty or missing key keeps [`RunConfig::default`]'s value.
//! Where the exchange is (embedded simulator, `--connect`) and the API key are the
//! binary's to add: they need the process around the library.

use super::file::{duration_or, idle_policy, size_or, ConfigError, FileConfig};
use super::run::{LiveConfig, MlConfig, RunConfig};
use crate::feed::transport::TransportChoice;
use crate::store::ledger::DataConfig;
use std::path::PathBuf;

/// The run settings a checked config file describes (paper or live alike; live keys are
/// added by the caller with [`with_live_key`]).
pub fn build(file: &FileConfig) -> Result<RunConfig, ConfigError> {
    let d = RunConfig::default();
    let mut c = RunConfig::default();
    let x = &file.exchange;
    c.exchange.public_ws = x.public_ws.clone();
    c.exchange.market_ws = x.market_ws.clone();
    c.exchange.rest = x.rest.clone();
    c.exchange.extra_ca = (!x.extra_ca.is_empty()).then(|| PathBuf::from(&x.extra_ca));
    c.exchange.backoff_initial =
        duration_or("exchange.reconnect_initial", &x.reconnect_initial, d.exchange.backoff_initial)?;
    c.exchange.backoff_max = duration_or("exchange.reconnect_max", &x.reconnect_max, d.exchange.backoff_max)?;
    c.exchange.streams_per_connection =
        x.max_streams_per_connection.unwrap_or(d.exchange.streams_per_connection);
    let lifetime =
        duration_or("exchange.connection_lifetime", &x.connection_lifetime, super::run::CONNECTION_LIFETIME)?;
    let early = duration_or(
        "exchange.rotate_before_lifetime_end",
        &x.rotate_before_lifetime_end,
        super::run::ROTATE_BEFORE_LIFETIME_END,
    )?;
    c.exchange.rotate_after = Some(lifetime.saturating_sub(early));
    c.exchange.info_refresh =
        duration_or("exchange.info_refresh", &x.info_refresh, super::run::INFO_REFRESH)?;
    c.exchange.max_message = size_or("shards.max_message", &file.shards.max_message, d.exchange.max_message)?;
    c.exchange.warmup_bars = nonzero(file.streams.warmup_bars, d.exchange.warmup_bars);
    c.exchange.depth_snapshot_limit =
        nonzero(file.streams.depth_snapshot_limit, d.exchange.depth_snapshot_limit);

    c.feed.symbols = file.symbols.list.clone();
    c.feed.streams = file.streams.kinds.clone();
    c.feed.shards = file.shards.count.max(1);
    c.feed.shard_cores = file.shards.cores.clone();
    c.feed.idle = idle_policy("shards.idle", &file.shards.idle)?;
    c.feed.transport = transport("shards.transport", &file.shards.transport)?;
    c.feed.io_memory = size_or("shards.io_memory", &file.shards.io_memory, d.feed.io_memory)?;
    c.feed.ring_capacity = nonzero(file.ring.capacity, d.feed.ring_capacity);
    c.feed.ring_spin = file.ring.full_spin_limit;

    c.pinning = match file.cpu.pinning.as_str() {
        "" => None,
        "required" => Some(crate::cpu::Pinning::Required),
        "best-effort" => Some(crate::cpu::Pinning::BestEffort),
        other => {
            return Err(ConfigError::Invalid(format!(
                "cpu.pinning: {other:?} is not one of required, best-effort"
            )))
        }
    };
    c.placement = placement("cpu.placement", &file.cpu.placement)?;
    c.brain.core = file.brain.core;
    c.brain.idle = idle_policy("brain.idle", &file.brain.idle)?;
    c.brain.features = file.features.config()?;

    c.trading = file.trading()?;
    c.end.flatten_on_shutdown = file.broker.flatten_on_shutdown;
    c.data = DataConfig {
        dir: file.data_dir.clone(),
        fsync: file.fsync()?,
        trade_experiences: file.ml.trade_experiences.max(1),
        bar_samples: file.ml.bar_samples.max(1),
    };
    c.ops.control_socket = if file.control.socket.is_empty() {
        c.data.dir.as_ref().map(|d| d.join("aegis.sock"))
    } else {
        Some(PathBuf::from(&file.control.socket))
    };
    c.ops.metrics_addr = (!file.metrics.addr.is_empty()).then(|| file.metrics.addr.clone());
    c.ml = MlConfig {
        sidecar: file.ml.spawn_sidecar.then(|| sidecar_binary(&file.ml.sidecar)),
        train_every: file.ml.train_every,
        torch_threads: file.ml.torch_threads,
    };
    Ok(c)
}

/// `config` trading live with `key`: the user-data stream on `exchange.user_ws`, else the
/// market tier's host.
pub fn with_live_key(
    mut config: RunConfig,
    file: &FileConfig,
    key: crate::credentials::ApiKey,
) -> Result<RunConfig, ConfigError> {
    let user_ws = if file.exchange.user_ws.is_empty() {
        crate::net::url::origin(&config.exchange.market_ws)
    } else {
        file.exchange.user_ws.clone()
    };
    let keep_alive = duration_or("broker.keep_alive", &file.broker.keep_alive, super::run::KEEP_ALIVE)?;
    let working_type = config.trading.broker.working_type;
    let triggering_timeout = duration_or(
        "broker.triggering_timeout",
        &file.broker.triggering_timeout,
        super::run::TRIGGERING_TIMEOUT,
    )?;
    let max_open_algo_orders = file.broker.max_open_algo_orders;
    let ws_api = (file.broker.order_api != "rest").then(|| {
        if file.exchange.ws_api.is_empty() {
            crate::execution::live::ws_api::url_for(&config.exchange.rest)
        } else {
            file.exchange.ws_api.clone()
        }
    });
    config.live = Some(LiveConfig {
        key,
        user_ws,
        keep_alive,
        working_type,
        triggering_timeout,
        max_open_algo_orders,
        ws_api,
        rest_per_request: false,
    });
    Ok(config)
}

/// A thread plan by name (`auto` or empty, `threads`, `one-thread`), `key` naming the
/// setting in errors.
pub fn placement(key: &str, text: &str) -> Result<crate::cpu::ThreadPlan, ConfigError> {
    use crate::cpu::ThreadPlan;
    [ThreadPlan::Auto, ThreadPlan::Threads, ThreadPlan::OneThread]
        .into_iter()
        .find(|plan| plan.name() == text || (text.is_empty() && *plan == ThreadPlan::Auto))
        .ok_or_else(|| {
            ConfigError::Invalid(format!("{key}: {text:?} is not one of auto, threads, one-thread"))
        })
}

/// A transport by name, `key` naming the setting in errors.
pub fn transport(key: &str, text: &str) -> Result<TransportChoice, ConfigError> {
    Ok(match text {
        "glommio" => TransportChoice::Glommio,
        "mio" => TransportChoice::Mio,
        "auto" | "" => TransportChoice::Auto,
        other => {
            return Err(ConfigError::Invalid(format!("{key}: {other:?} is not one of auto, glommio, mio")))
        }
    })
}

/// `value`, or `default` where the file left it 0 (unset).
fn nonzero(value: usize, default: usize) -> usize {
    if value == 0 {
        default
    } else {
        value
    }
}

/// The sidecar binary: the configured path, else `aegis-sidecar` beside this binary.
/// The sidecar binary `[ml] sidecar` names, else `aegis-sidecar` beside this executable.
pub fn sidecar_binary(configured: &str) -> PathBuf {
    if !configured.is_empty() {
        return PathBuf::from(configured);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("aegis-sidecar")))
        .unwrap_or_else(|| PathBuf::from("aegis-sidecar"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, DEFAULT_CONFIG};

    #[test]
    fn the_embedded_config_builds_the_documented_run() {
        let c = build(&parse(DEFAULT_CONFIG, "the embedded config").unwrap()).unwrap();
        assert_eq!(c.feed.ring_capacity, 65_536);
        assert_eq!(c.feed.ring_spin, 1_024);
        assert_eq!(c.exchange.max_message, 4 << 20);
        assert_eq!(c.feed.io_memory, 512 << 10);
        assert_eq!(c.exchange.rotate_after, Some(std::time::Duration::from_secs(23 * 3_600 + 30 * 60)));
        assert_eq!(c.feed.streams.len(), 5);
        assert_eq!(c.ops.control_socket, Some(PathBuf::from("target/aegis-data/aegis.sock")));
        assert_eq!(c.ml.train_every, 50);
    }

    #[test]
    fn keys_left_out_keep_the_run_defaults() {
        let (c, d) = (build(&parse("", "empty.toml").unwrap()).unwrap(), RunConfig::default());
        assert_eq!(c.feed.ring_capacity, d.feed.ring_capacity);
        assert_eq!(c.exchange.max_message, d.exchange.max_message);
        assert_eq!(c.exchange.backoff_initial, d.exchange.backoff_initial);
        assert_eq!(c.exchange.warmup_bars, d.exchange.warmup_bars);
        assert_eq!(c.trading, d.trading);
        assert_eq!(c.ops.control_socket, None, "no data dir, no socket");
        assert!(transport("shards.transport", "dpdk").unwrap_err().to_string().contains("shards.transport"));
    }

    #[test]
    fn the_thread_plan_is_named_or_auto() {
        let plan = |text: &str| build(&parse(&format!("[cpu]\nplacement = {text:?}\n"), "cpu.toml").unwrap());
        assert_eq!(plan("").unwrap().placement, crate::cpu::ThreadPlan::Auto);
        assert_eq!(plan("auto").unwrap().placement, crate::cpu::ThreadPlan::Auto);
        assert_eq!(plan("threads").unwrap().placement, crate::cpu::ThreadPlan::Threads);
        assert_eq!(plan("one-thread").unwrap().placement, crate::cpu::ThreadPlan::OneThread);
        let refused = plan("two").unwrap_err().to_string();
        assert_eq!(refused, "cpu.placement: \"two\" is not one of auto, threads, one-thread");
    }

    #[test]
    fn the_pinning_policy_is_one_of_two_or_left_to_the_idle_policy() {
        let policy = |text: &str| build(&parse(&format!("[cpu]\npinning = {text:?}\n"), "cpu.toml").unwrap());
        assert_eq!(policy("required").unwrap().pinning, Some(crate::cpu::Pinning::Required));
        assert_eq!(policy("best-effort").unwrap().pinning, Some(crate::cpu::Pinning::BestEffort));
        assert_eq!(policy("").unwrap().pinning, None);
        let refused = policy("sometimes").expect_err("refused").to_string();
        assert_eq!(refused, "cpu.pinning: \"sometimes\" is not one of required, best-effort");
    }
}
