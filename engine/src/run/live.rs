//! Live trading's part of a run: the execution gateway, connected and reconciled before the
//! brain starts, on a thread of its own.

use super::error::RunError;
use crate::config::run::LiveConfig;
use crate::config::RunConfig;
use crate::execution::live::client::TradeClient;
use crate::execution::live::gateway::{Gateway, GatewayLinks, GatewaySettings, StartReport};
use aegis_wire::SymbolTable;
use std::sync::Arc;
use std::time::Duration;

/// How long the gateway keeps working on closes and kill switches after the brain stopped.
pub(crate) const GATEWAY_DRAIN: Duration = Duration::from_secs(10);

/// Live: the account's own leverage brackets (signed `GET /fapi/v1/leverageBracket`;
/// Binance serves them only signed, and per account) replace exchangeInfo's, or the
/// conservative fallback, for every traded symbol. Returns the symbols still on the
/// fallback (none served for them).
pub(crate) fn account_brackets(
    config: &RunConfig,
    live: &LiveConfig,
    table: &SymbolTable,
    rules: &mut [Option<aegis_trading::SymbolRules>],
) -> Result<Vec<String>, RunError> {
    let fail = |e: &dyn std::fmt::Display| RunError::Config(format!("live trading: leverage brackets: {e}"));
    let mut client =
        TradeClient::new(&config.exchange.rest, live.key.clone(), config.exchange.extra_ca.as_deref())
            .map_err(|e| fail(&e))?;
    client.sync_clock().map_err(|e| fail(&e))?;
    let served = client.leverage_brackets().map_err(|e| fail(&e))?;
    let mut fallback = Vec::new();
    for (id, name) in table.iter() {
        let Some(Some(r)) = rules.get_mut(usize::from(id.0)) else { continue };
        match served.iter().find(|(s, _)| s == name) {
            Some((_, brackets)) => {
                *r = r.with_brackets(brackets.clone()).map_err(|e| fail(&format!("{name}: {e}")))?
            }
            None => {
                *r = r
                    .with_brackets(aegis_trading::SymbolRules::conservative_brackets())
                    .map_err(|e| fail(&e))?;
                fallback.push(name.to_string());
            }
        }
    }
    Ok(fallback)
}

/// The signed client the exchangeInfo refresh reads the account's leverage brackets with
/// (its own connections, apart from the gateway's orders).
pub(crate) fn refresh_client(config: &RunConfig, live: &LiveConfig) -> Result<TradeClient, RunError> {
    let fail =
        |e: &dyn std::fmt::Display| RunError::Config(format!("live trading: the refresh's client: {e}"));
    let mut client =
        TradeClient::new(&config.exchange.rest, live.key.clone(), config.exchange.extra_ca.as_deref())
            .map_err(|e| fail(&e))?;
    client.sync_clock().map_err(|e| fail(&e))?;
    Ok(client)
}

/// Connects the execution gateway (clock, limits, restart reconciliation, user stream).
pub(crate) fn start_gateway(
    config: &RunConfig,
    live: &LiveConfig,
    tls: &Arc<rustls::ClientConfig>,
    table: Arc<SymbolTable>,
    restored: &[aegis_trading::Position],
    links: GatewayLinks,
) -> Result<(Gateway, StartReport), RunError> {
    let extra_ca = config.exchange.extra_ca.as_deref();
    let client =
        TradeClient::new_with(&config.exchange.rest, live.key.clone(), extra_ca, !live.rest_per_request)
            .map_err(|e| RunError::Config(format!("live trading: {e}")))?;
    let client = match &live.ws_api {
        Some(url) => {
            eprintln!("aegis: orders go over the WebSocket API at {url} (REST while it is down)");
            client.with_ws_api(url, tls.clone(), links.stats.ws_api.clone())
        }
        None => client,
    };
    let settings = GatewaySettings {
        ws_base: live.user_ws.clone(),
        tls: tls.clone(),
        keep_alive: live.keep_alive,
        journal: config
            .data
            .dir
            .as_ref()
            .map(|d| d.join("journal").join(format!("{}.journal", crate::store::ledger::ORDERS_JOURNAL))),
        fsync: config.data.fsync,
        working_type: live.working_type,
        triggering_timeout: live.triggering_timeout,
        max_open_algo_orders: live.max_open_algo_orders,
    };
    Gateway::start(client, settings, table, restored, links)
        .map_err(|e| RunError::Config(format!("live trading: starting the gateway: {e}")))
}
