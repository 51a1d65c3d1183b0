//! The network edge shared by every client: URLs, blocking HTTP/1.1, a blocking WebSocket
//! and rustls settings. Knows nothing of Binance.
//!
//! - [`url`]: `ws(s)://` and `http(s)://` URLs → address, host, path, TLS.
//! - [`http`]: requests on kept-alive connections (ureq), over TCP or TLS.
//! - [`ws`]: the feed's WebSocket connection on a blocking socket, for threads off the hot path.
//! - [`tls`]: rustls client settings (webpki roots plus an extra CA).

pub mod http;
pub mod tls;
pub mod url;
pub mod ws;
