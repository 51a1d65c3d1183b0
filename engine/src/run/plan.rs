//! Planning a run before any thread starts: which connections each shard opens (symbols
//! round-robin over shards, streams grouped by endpoint tier, at most 200 a connection).

use super::error::RunError;
use crate::config::RunConfig;
use crate::feed::binance::StreamHint;
use crate::feed::endpoint::EndpointSpec;
use crate::net::url::split_url;
use aegis_wire::stream::{classify_channel, tier_of, Tier, MAX_STREAMS_PER_CONNECTION};
use aegis_wire::{SymbolId, SymbolTable};
use std::sync::Arc;

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
