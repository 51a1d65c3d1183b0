//! The network edge shared by every client: URLs, blocking HTTP/1.1 and rustls settings.
//! Knows nothing of Binance.
//!
//! - [`url`]: `ws(s)://` and `http(s)://` URLs → address, host, path, TLS.
//! - [`http`]: one request per connection, over TCP or TLS.
//! - [`tls`]: rustls client settings (webpki roots plus an extra CA).

pub mod http;
pub mod tls;
pub mod url;
