//! Live trading's part of a run: the execution gateway, connected and reconciled before the
//! brain starts, on a thread of its own.

use super::error::RunError;
use crate::config::run::LiveConfig;
use crate::config::RunConfig;
use crate::execution::live::client::TradeClient;
use crate::execution::live::gateway::{Gateway, GatewayLinks, GatewaySettings, StartReport};
use crate::net::url::split_url;
use aegis_wire::SymbolTable;
use std::sync::Arc;
use std::time::Duration;

/// How long the gateway keeps working on closes and kill switches after the brain stopped.
pub(crate) const GATEWAY_DRAIN: Duration = Duration::from_secs(10);

/// Connects the execution gateway (clock, limits, restart reconciliation, user stream).
pub(crate) fn start_gateway(
    config: &RunConfig,
    live: &LiveConfig,
    tls: &Arc<rustls::ClientConfig>,
    table: Arc<SymbolTable>,
    restored: &[aegis_trading::Position],
    links: GatewayLinks,
) -> Result<(Gateway, StartReport), RunError> {
    let (_, _, _, https) = split_url(&config.exchange.rest)?;
    let client = TradeClient::new(&config.exchange.rest, live.key.clone(), https.then(|| tls.clone()))
        .map_err(|e| RunError::Config(format!("live trading: {e}")))?;
    let settings = GatewaySettings {
        ws_base: live.user_ws.clone(),
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
