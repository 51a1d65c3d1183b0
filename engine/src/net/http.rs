//! Blocking HTTP/1.1 over kept-alive connections (ureq, on rustls with ring): one client per
//! base URL and per job, so an order never waits behind a kline fill. Knows nothing of
//! Binance; the market-data client and the trading client build on it.
//!
//! Why ureq: it is blocking (the REST worker and the execution gateway are plain threads;
//! no async runtime to host), speaks rustls with the ring provider the rest of the engine
//! uses, pools connections per host (reused while the server keeps them open, probed
//! before reuse) and resolves the host name for every new connection, so a long run
//! follows the exchange's DNS instead of the address seen at start.

use std::path::Path;
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

/// One HTTP/1.1 request.
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Extra headers (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// Form body (`application/x-www-form-urlencoded`), empty for none.
    pub body: &'a str,
}

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
    headers: ureq::http::HeaderMap,
}

impl HttpResponse {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

/// The largest body read (Binance's full exchangeInfo is a few MB).
const MAX_BODY_BYTES: u64 = 64 << 20;
/// How long an idle connection stays in the pool. Binance closes idle HTTP connections
/// on its side too; a pooled one is probed before reuse either way.
const IDLE_KEPT: Duration = Duration::from_secs(55);

/// A kept-alive HTTP client for one base URL (`http://host:port` or `https://host:port`).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    base: Arc<str>,
}

impl HttpClient {
    /// A client for `base`, trusting the webpki roots and `extra_ca` (PEM) for https.
    pub fn new(base: &str, extra_ca: Option<&Path>) -> Result<Self, crate::net::tls::TlsError> {
        Self::new_with(base, extra_ca, true)
    }

    /// The same; with `keep_alive` false every request opens a new connection (a
    /// benchmark's baseline).
    pub fn new_with(
        base: &str,
        extra_ca: Option<&Path>,
        keep_alive: bool,
    ) -> Result<Self, crate::net::tls::TlsError> {
        let idle = if keep_alive { 4 } else { 0 };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent("aegis")
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(15)))
            .max_idle_age(IDLE_KEPT)
            .max_idle_connections(idle)
            .max_idle_connections_per_host(idle)
            .tls_config(crate::net::tls::http_config(extra_ca)?)
            .build();
        Ok(Self { agent: config.into(), base: base.trim_end_matches('/').into() })
    }

    /// Sends `request` on a pooled connection (opening one when none is idle) and reads
    /// the whole answer.
    pub fn send(&self, request: &HttpRequest) -> Result<HttpResponse, RestError> {
        let path = request.path;
        let malformed = |reason: String| RestError::Malformed { path: path.to_string(), reason };
        let io = |e: ureq::Error| RestError::Io { path: path.to_string(), source: e.into_io() };
        let mut builder =
            ureq::http::Request::builder().method(request.method).uri(format!("{}{path}", self.base));
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        let response = if request.body.is_empty() && matches!(request.method, "GET" | "HEAD") {
            self.agent.run(builder.body(()).map_err(|e| malformed(e.to_string()))?)
        } else if request.body.is_empty() {
            // A sized empty body (`Content-Length: 0`), as Binance's SDK sends it: ureq
            // would send `()` chunked, a terminator some servers read as the next request.
            self.agent.run(builder.body("").map_err(|e| malformed(e.to_string()))?)
        } else {
            let builder = builder.header("Content-Type", "application/x-www-form-urlencoded");
            self.agent.run(builder.body(request.body).map_err(|e| malformed(e.to_string()))?)
        };
        let mut response = response.map_err(io)?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_string().map_err(io)?;
        Ok(HttpResponse { status, body, headers: response.headers().clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server answering each request with its sequence number; closes a connection after
    /// `per_connection` answers (saying so). Returns its port and the accept count.
    fn server(per_connection: usize) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                for n in 1..=per_connection {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    served += 1;
                    let close = if n == per_connection { "close" } else { "keep-alive" };
                    let answer =
                        format!("{{\"n\":{served},\"got\":{}}}", String::from_utf8_lossy(&body).len());
                    let text = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Seen: yes\r\nConnection: {close}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if writer.write_all(text.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (port, accepted)
    }

    /// An empty POST (a listenKey's) goes with `Content-Length: 0` and nothing after its
    /// head: a chunked terminator would reach a server that reads no chunked bodies as the
    /// start of the next request on the kept-alive connection.
    #[test]
    fn an_empty_post_ends_at_its_head() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut heads = Vec::new();
            for _ in 0..2 {
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    head.push(line.trim_end().to_ascii_lowercase());
                }
                heads.push(head);
                writer
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}")
                    .unwrap();
            }
            heads
        });
        let client = HttpClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let post = HttpRequest { method: "POST", path: "/fapi/v1/listenKey", headers: &[], body: "" };
        assert_eq!(client.send(&post).unwrap().status, 200);
        let get = HttpRequest { method: "GET", path: "/fapi/v1/time", headers: &[], body: "" };
        assert_eq!(client.send(&get).unwrap().status, 200);
        let heads = heads.join().unwrap();
        assert!(heads[0].iter().any(|h| h == "content-length: 0"), "{:?}", heads[0]);
        assert!(!heads[0].iter().any(|h| h.starts_with("transfer-encoding")), "{:?}", heads[0]);
        assert_eq!(
            heads[1][0], "get /fapi/v1/time http/1.1",
            "the second request starts where the first ended"
        );
    }

    #[test]
    fn requests_share_one_kept_alive_connection() {
        let (port, accepted) = server(100);
        let client = HttpClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        for n in 1..=5 {
            let get = HttpRequest { method: "GET", path: "/a?x=1", headers: &[], body: "" };
            let answer = client.send(&get).unwrap();
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("{{\"n\":{n},\"got\":0}}").as_str())
            );
            assert_eq!(answer.header("x-seen"), Some("yes"));
        }
        let post = HttpRequest { method: "POST", path: "/b", headers: &[("X-K", "v")], body: "a=1&b=2" };
        assert_eq!(client.send(&post).unwrap().body, "{\"n\":6,\"got\":7}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "six requests, one connection");
    }

    #[test]
    fn without_keep_alive_every_request_opens_a_connection() {
        let (port, accepted) = server(100);
        let client = HttpClient::new_with(&format!("http://127.0.0.1:{port}"), None, false).unwrap();
        let get = HttpRequest { method: "GET", path: "/", headers: &[], body: "" };
        for _ in 0..3 {
            assert_eq!(client.send(&get).unwrap().status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_connection_the_server_closed_is_replaced() {
        let (port, accepted) = server(2);
        let client = HttpClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let get = HttpRequest { method: "GET", path: "/", headers: &[], body: "" };
        let bodies: Vec<String> = (0..5).map(|_| client.send(&get).unwrap().body).collect();
        assert_eq!(bodies.last().unwrap(), "{\"n\":5,\"got\":0}");
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "two answers per connection");
    }

    #[test]
    fn a_dead_port_is_an_io_error_naming_the_path() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = HttpClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let get = HttpRequest { method: "GET", path: "/fapi/v1/ping", headers: &[], body: "" };
        let err = client.send(&get).unwrap_err();
        assert!(matches!(err, RestError::Io { .. }) && err.to_string().contains("/fapi/v1/ping"), "{err}");
    }
}
