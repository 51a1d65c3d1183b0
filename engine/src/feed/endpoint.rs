//! One connection a shard keeps open: where it goes, which streams its URL carries, which
//! symbols it delivers. Plain data; the transports connect it and the subscription code
//! edits its stream list.

use super::binance::StreamHint;
use aegis_wire::stream::Tier;
use aegis_wire::SymbolId;
use std::net::SocketAddr;
use std::sync::Arc;

/// One connection a shard keeps open.
#[derive(Clone, Debug)]
pub struct EndpointSpec {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Request path with the stream list.
    pub path: String,
    /// Symbols whose streams it carries (for resync notices).
    pub symbols: Vec<SymbolId>,
    /// The stream kind of a raw single-stream path, if that is what `path` is.
    pub raw_hint: Option<StreamHint>,
    /// TLS settings for a `wss://` endpoint.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The endpoint tier it connects to (`Unrouted`: one URL for both).
    pub tier: Tier,
}
