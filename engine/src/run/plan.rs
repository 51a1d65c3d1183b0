//! Planning a run before any thread starts: which connections each shard opens (symbols
//! round-robin over shards, streams grouped by endpoint tier, at most 200 a connection).

use super::error::RunError;
use crate::brain::BrainConfig;
use crate::config::RunConfig;
use crate::cpu::{Pinning, ThreadPlan};
use crate::feed::binance::StreamHint;
use crate::feed::endpoint::EndpointSpec;
use crate::feed::transport::TransportChoice;
use crate::net::url::split_url;
use crate::rest::client::RestClient;
use crate::ring::Idle;
use aegis_trading::SymbolRules;
use aegis_wire::stream::{classify_channel, tier_of, Tier, MAX_STREAMS_PER_CONNECTION};
use aegis_wire::{EventKind, SymbolId, SymbolTable};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The data directory's copy of the last exchangeInfo read (SPEC §3: cached for restarts).
pub(crate) const EXCHANGE_INFO_CACHE: &str = "exchange_info.json";

/// The run's symbols as the exchange serves them.
pub(crate) struct Symbols {
    /// Interned names, in configuration order.
    pub table: Arc<SymbolTable>,
    /// Trading rules per symbol (`None`: analysed and labelled, never traded).
    pub rules: Vec<Option<SymbolRules>>,
    /// Symbols without usable rules, and why.
    pub untradable: BTreeMap<String, String>,
    /// Traded symbols whose leverage brackets the exchange did not serve: they trade under
    /// the conservative fallback.
    pub fallback_brackets: Vec<String>,
    /// Whether exchangeInfo came from the exchange or from the data directory's cache.
    pub info_source: crate::rest::client::InfoSource,
    /// Per symbol: its `status` is `TRADING` (others get no entry until it is again).
    pub trading: Vec<bool>,
}

/// Checks the configured symbols against exchangeInfo (the exchange's, kept in
/// `DATA/exchange_info.json`; that copy when the exchange cannot be read) and reads their
/// trading rules. A symbol the exchange does not list is an error; one whose rules cannot be
/// read is not traded.
pub(crate) fn resolve_symbols(config: &RunConfig, client: &mut RestClient) -> Result<Symbols, RunError> {
    let cache = config.data.dir.as_ref().map(|d| d.join(EXCHANGE_INFO_CACHE));
    let (served, info_source) = client
        .exchange_info_cached(cache.as_deref())
        .map_err(|e| RunError::Config(format!("exchangeInfo: {e}")))?;
    if let crate::rest::client::InfoSource::Cache { age_s } = info_source {
        eprintln!("aegis: exchangeInfo unreachable: trading rules from the cached copy ({age_s} s old)");
    }
    let mut table = SymbolTable::with_capacity(config.feed.symbols.len().max(1));
    let mut rules = Vec::with_capacity(config.feed.symbols.len());
    let mut untradable = BTreeMap::new();
    let mut fallback_brackets = Vec::new();
    let mut trading = Vec::with_capacity(config.feed.symbols.len());
    for symbol in &config.feed.symbols {
        let upper = symbol.to_ascii_uppercase();
        let entry = served.iter().find(|s| s.name == upper);
        if !served.is_empty() && entry.is_none() {
            return Err(RunError::Config(format!("symbols: {upper} is not in the exchange's exchangeInfo")));
        }
        table.intern(&upper).map_err(|e| RunError::Config(format!("symbols: {upper}: {e}")))?;
        trading.push(entry.is_none_or(|s| s.trading));
        if entry.is_some_and(|s| !s.trading) {
            eprintln!("aegis: {upper} is not TRADING at the exchange: no entries on it until it is");
        }
        let read = match entry.map(|s| &s.rules) {
            Some(Ok(r)) => Ok(r.clone()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("not in exchangeInfo".to_string()),
        };
        match read {
            Ok(r) => {
                if entry.is_some_and(|s| !s.brackets_served) {
                    fallback_brackets.push(upper);
                }
                rules.push(Some(r));
            }
            Err(reason) => {
                tracing::warn!(symbol = %upper, %reason, "no trading rules: the symbol is not traded");
                untradable.insert(upper, reason);
                rules.push(None);
            }
        }
    }
    if !fallback_brackets.is_empty() {
        tracing::warn!(
            symbols = fallback_brackets.len(),
            "exchangeInfo serves no leverage brackets (Binance serves them signed, GET /fapi/v1/leverageBracket, \
             which only a live run reads, with its key): these symbols trade under the conservative fallback, \
             at most 10x with a 5 % maintenance rate"
        );
    }
    Ok(Symbols { table: Arc::new(table), rules, untradable, fallback_brackets, info_source, trading })
}

/// What the brain does with the subscribed streams: bars from klines or trades, books when a
/// diff-depth stream comes, order flow from aggTrades when they come.
pub(crate) fn brain_config(config: &RunConfig) -> BrainConfig {
    let has = |pred: &dyn Fn(EventKind, bool) -> bool| {
        config.feed.streams.iter().filter_map(|c| classify_channel(c.as_bytes())).any(|(k, p)| pred(k, p))
    };
    BrainConfig {
        bars_from_trades: !has(&|k, _| k == EventKind::Kline) && has(&|k, _| k == EventKind::Trade),
        books: has(&|k, partial| k == EventKind::DepthUpdate && !partial),
        core: config.brain.core,
        idle: config.brain.idle,
        features: config.brain.features,
        flow_from_agg_trades: has(&|k, _| k == EventKind::AggTrade),
        flatten_on_shutdown: config.end.flatten_on_shutdown,
        prints_from_klines: !has(&|k, _| k == EventKind::AggTrade || k == EventKind::Trade),
        fill_gaps: true,
        latency_skip_events: config.brain.latency_skip_events,
    }
}

/// Plans each shard's connections: symbols round-robin over shards, one connection per tier
/// (one for both when the tiers share a URL), at most 200 streams each; and per tier an
/// empty connection for live subscriptions to open.
pub(crate) fn plan_endpoints(
    config: &RunConfig,
    table: &SymbolTable,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Vec<Vec<EndpointSpec>>, Vec<EndpointSpec>), RunError> {
    let mut per_shard = vec![Vec::new(); config.feed.shards.max(1)];
    let mut templates = Vec::new();
    let mut kinds = Vec::new();
    for channel in &config.feed.streams {
        let (kind, partial) = classify_channel(channel.as_bytes())
            .ok_or_else(|| RunError::Config(format!("streams: {channel:?} is not a Binance stream kind")))?;
        kinds.push((channel.clone(), kind, partial));
    }
    let shared_url = config.exchange.public_ws == config.exchange.market_ws;
    for (shard, endpoints) in per_shard.iter_mut().enumerate() {
        let symbols: Vec<(SymbolId, &str)> =
            table.iter().filter(|(id, _)| usize::from(id.0) % config.feed.shards.max(1) == shard).collect();
        let tiers: &[Tier] = if shared_url { &[Tier::Unrouted] } else { &[Tier::Public, Tier::Market] };
        for &tier in tiers {
            let url =
                if tier == Tier::Market { &config.exchange.market_ws } else { &config.exchange.public_ws };
            let (addr, host, prefix, secure) = split_url(url)?;
            let spec = |path: String, symbols: Vec<SymbolId>| EndpointSpec {
                addr,
                host: host.clone(),
                path,
                symbols,
                raw_hint: None::<StreamHint>,
                tls: if secure { tls.cloned() } else { None },
                tier,
            };
            if shard == 0 {
                templates.push(spec(format!("{prefix}/stream?streams="), Vec::new()));
            }
            let mut streams: Vec<(String, SymbolId)> = Vec::new();
            for (id, name) in &symbols {
                for (channel, kind, _) in &kinds {
                    if tier == Tier::Unrouted || tier_of(*kind) == tier {
                        streams.push((format!("{}@{channel}", name.to_ascii_lowercase()), *id));
                    }
                }
            }
            for group in
                streams.chunks(config.exchange.streams_per_connection.clamp(1, MAX_STREAMS_PER_CONNECTION))
            {
                let names: Vec<&str> = group.iter().map(|(n, _)| n.as_str()).collect();
                let mut ids: Vec<SymbolId> = group.iter().map(|(_, id)| *id).collect();
                ids.dedup();
                endpoints.push(spec(format!("{prefix}/stream?streams={}", names.join("/")), ids));
            }
        }
    }
    Ok((per_shard, templates))
}

/// How the run's threads are placed, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// What a failed pin does.
    pub pinning: Pinning,
    /// Which threads carry the feed and the brain ([`ThreadPlan::Auto`] resolved).
    pub plan: ThreadPlan,
    /// Why that plan, in words (`one-thread (auto: 2 usable CPUs …)`).
    pub why: String,
}

/// Chooses the thread plan (see [`thread_plan`]) and checks the configured cores under the
/// run's pinning policy (see [`check_cores`]). Idempotent: the binary calls it before it
/// opens any connection, and [`crate::run::run`] again for library callers. In the one-thread
/// placement the one thread takes the shard's core (else the brain's), and the transport is
/// mio.
pub fn check_placement(config: &mut RunConfig) -> Result<Placed, RunError> {
    let usable = crate::cpu::usable();
    let (plan, why) = thread_plan(config, usable.len())?;
    if plan == ThreadPlan::OneThread {
        let core = config.feed.shard_cores.first().copied().or(config.brain.core);
        config.feed.shard_cores = core.into_iter().collect();
        config.brain.core = None;
        config.feed.transport = TransportChoice::Mio;
    }
    let pinning = pinning_policy(config);
    check_cores(config, pinning, &usable)?;
    Ok(Placed { pinning, plan, why })
}

/// The thread plan for `config` on a host where this process may use `cpus` CPUs, and why.
/// Forced one-thread needs one shard on mio; auto picks it only then, and when the host has
/// fewer usable CPUs than shards + brain + one spare (the REST worker, the writer, the OS).
pub fn thread_plan(config: &RunConfig, cpus: usize) -> Result<(ThreadPlan, String), RunError> {
    let shards = config.feed.shards.max(1);
    let glommio = config.feed.transport == TransportChoice::Glommio;
    let needed = shards + 2;
    Ok(match config.placement {
        ThreadPlan::Threads => (ThreadPlan::Threads, "threads (configured)".to_string()),
        ThreadPlan::OneThread if shards != 1 => {
            return Err(RunError::Config(format!(
                "cpu.placement: \"one-thread\" runs one shard; shards.count = {shards}"
            )))
        }
        ThreadPlan::OneThread if glommio => {
            return Err(RunError::Config(
                "cpu.placement: \"one-thread\" runs on mio; shards.transport = \"glommio\"".to_string(),
            ))
        }
        ThreadPlan::OneThread => (ThreadPlan::OneThread, "one-thread (configured)".to_string()),
        ThreadPlan::Auto if shards == 1 && !glommio && cpus < needed => (
            ThreadPlan::OneThread,
            format!("one-thread (auto: {cpus} usable CPU(s), fewer than one shard + brain + one spare)"),
        ),
        ThreadPlan::Auto => {
            let reason = if shards > 1 {
                format!("{shards} shards")
            } else if glommio {
                "shards.transport = \"glommio\"".to_string()
            } else {
                format!("{cpus} usable CPUs for {needed} roles")
            };
            (ThreadPlan::Threads, format!("threads (auto: {reason})"))
        }
    })
}

/// The pinning policy: as configured, else required when a pinned thread spins (a spinning
/// thread on a shared CPU starves its neighbour), else best effort.
pub(crate) fn pinning_policy(config: &RunConfig) -> Pinning {
    config.pinning.unwrap_or_else(|| {
        let shards_spin = !config.feed.shard_cores.is_empty() && config.feed.idle == Idle::Spin;
        let brain_spins = config.brain.core.is_some() && config.brain.idle == Idle::Spin;
        if shards_spin || brain_spins {
            Pinning::Required
        } else {
            Pinning::BestEffort
        }
    })
}

/// Checks every configured core against the CPUs this process may pin to, before any
/// connection opens. Required: the first core that cannot be had is an error naming its
/// key. Best effort: it is a warning, and that role runs unpinned.
fn check_cores(config: &mut RunConfig, policy: Pinning, usable: &[usize]) -> Result<(), RunError> {
    let cores = |c: &RunConfig| crate::cpu::configured(&c.feed.shard_cores, c.brain.core);
    if cores(config).is_empty() {
        return Ok(());
    }
    let host_cpus = crate::cpu::host_cpus(usable);
    while let Err(e) = crate::cpu::check(&cores(config), usable, host_cpus) {
        if policy == Pinning::Required {
            return Err(RunError::Config(format!("{e}; [cpu] pinning = \"required\"")));
        }
        tracing::warn!(error = %e, "pinning: best effort, that role runs unpinned");
        eprintln!("aegis: {e}: runs unpinned ([cpu] pinning = \"best-effort\")");
        match e.key.as_str() {
            "brain.core" => config.brain.core = None,
            _ => config.feed.shard_cores.clear(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shards: usize, transport: TransportChoice, placement: ThreadPlan) -> RunConfig {
        let mut c = RunConfig::default();
        c.feed.shards = shards;
        c.feed.transport = transport;
        c.placement = placement;
        c
    }

    #[test]
    fn auto_runs_one_thread_only_for_one_mio_shard_on_a_host_short_of_cores() {
        use ThreadPlan::{Auto, OneThread, Threads};
        use TransportChoice::{Glommio, Mio};
        let plan = |shards, transport, cpus| thread_plan(&config(shards, transport, Auto), cpus).unwrap();
        let (chosen, why) = plan(1, TransportChoice::Auto, 2);
        assert_eq!(chosen, OneThread);
        assert_eq!(why, "one-thread (auto: 2 usable CPU(s), fewer than one shard + brain + one spare)");
        assert_eq!(plan(1, Mio, 1).0, OneThread);
        assert_eq!(plan(1, Mio, 3), (Threads, "threads (auto: 3 usable CPUs for 3 roles)".to_string()));
        assert_eq!(plan(2, Mio, 2), (Threads, "threads (auto: 2 shards)".to_string()));
        assert_eq!(
            plan(1, Glommio, 2),
            (Threads, "threads (auto: shards.transport = \"glommio\")".to_string())
        );
    }

    #[test]
    fn a_forced_plan_is_kept_or_refused_naming_the_key() {
        use ThreadPlan::{OneThread, Threads};
        let plan = |c: RunConfig| thread_plan(&c, 2);
        assert_eq!(plan(config(1, TransportChoice::Mio, Threads)).unwrap().0, Threads);
        assert_eq!(plan(config(1, TransportChoice::Auto, OneThread)).unwrap().0, OneThread);
        let refused = |c| match plan(c) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("accepted: {p:?}"),
        };
        assert_eq!(
            refused(config(2, TransportChoice::Mio, OneThread)),
            "config: cpu.placement: \"one-thread\" runs one shard; shards.count = 2"
        );
        assert_eq!(
            refused(config(1, TransportChoice::Glommio, OneThread)),
            "config: cpu.placement: \"one-thread\" runs on mio; shards.transport = \"glommio\""
        );
    }

    #[test]
    fn one_thread_takes_the_shards_core_else_the_brains_and_runs_on_mio() {
        let mut c = config(1, TransportChoice::Auto, ThreadPlan::OneThread);
        c.brain.core = Some(0);
        c.pinning = Some(Pinning::BestEffort);
        let placed = check_placement(&mut c).unwrap();
        assert_eq!(placed.plan, ThreadPlan::OneThread);
        assert_eq!((c.feed.shard_cores.clone(), c.brain.core), (vec![0], None));
        assert_eq!(c.feed.transport, TransportChoice::Mio);
        assert_eq!(check_placement(&mut c).unwrap(), placed, "idempotent");
    }
}
