//! Blocking HTTP/1.1 over TCP or rustls: one request per connection. Knows nothing of
//! Binance; the market-data client and the trading client build on it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Connecting, writing or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The request path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The exchange answered with an error status.
    #[error("{path}: HTTP {status}: {body}")]
    Status {
        /// The request path.
        path: String,
        /// Status code.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// The weight budget of this minute is spent; retry after `wait`.
    #[error("request-weight budget spent; next window in {wait:?}")]
    Budget {
        /// Time until the next window.
        wait: Duration,
    },
    /// The body was not what the endpoint documents.
    #[error("{path}: unexpected response: {reason}")]
    Malformed {
        /// The request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// One HTTP/1.1 request (`Connection: close`).
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, `DELETE`.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Extra headers (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// Form body (`application/x-www-form-urlencoded`), empty for none.
    pub body: &'a str,
}

/// Sends `request` to `addr` (TLS when `tls` is given, verifying `host`), reads the answer
/// to the end; returns the status, the head (lowercase) and the body.
pub fn http_request(
    addr: &SocketAddr,
    host: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &HttpRequest,
) -> Result<(u16, String, String), RestError> {
    let path = request.path;
    let io = |source| RestError::Io { path: path.to_string(), source };
    let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    let mut text = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aegis\r\nConnection: close\r\n",
        request.method
    );
    for (name, value) in request.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() {
        text.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            request.body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(request.body);
    let mut raw = Vec::new();
    match tls {
        None => {
            let mut stream = stream;
            stream.write_all(text.as_bytes()).map_err(io)?;
            stream.read_to_end(&mut raw).map_err(io)?;
        }
        Some(config) => {
            let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let session = crate::net::tls::session(config, name)
                .map_err(|e| RestError::Malformed { path: path.to_string(), reason: e.to_string() })?;
            let mut tls = rustls::StreamOwned::new(session, stream);
            tls.write_all(text.as_bytes()).map_err(io)?;
            // A server may end without close_notify; what was read so far is the answer.
            if let Err(e) = tls.read_to_end(&mut raw) {
                if raw.is_empty() {
                    return Err(io(e));
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let malformed =
        |reason: &str| RestError::Malformed { path: path.to_string(), reason: reason.to_string() };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| malformed("no header end"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| malformed("no status"))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// A header's value in a lowercase response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
}
