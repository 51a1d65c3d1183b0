//! `ws(s)://` and `http(s)://` URLs: where to connect, the `Host` header, the path prefix,
//! whether TLS is on. Resolves names once, when asked.

use std::net::{SocketAddr, ToSocketAddrs};

/// A URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("bad URL {url:?}: {reason}")]
pub struct UrlError {
    /// The URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// Address, `host:port`, path prefix and whether TLS is on, of a `ws(s)://` or
/// `http(s)://` URL.
pub fn split_url(url: &str) -> Result<(SocketAddr, String, String, bool), UrlError> {
    let bad = |reason: &str| UrlError { url: url.to_string(), reason: reason.to_string() };
    let (rest, tls) = if let Some(r) = url.strip_prefix("ws://").or_else(|| url.strip_prefix("http://")) {
        (r, false)
    } else if let Some(r) = url.strip_prefix("wss://").or_else(|| url.strip_prefix("https://")) {
        (r, true)
    } else {
        return Err(bad("expected ws://, wss://, http:// or https://"));
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let host = if host.contains(':') { host.to_string() } else { format!("{host}:{default_port}") };
    let addr =
        host.to_socket_addrs().map_err(|e| bad(&e.to_string()))?.next().ok_or_else(|| bad("no address"))?;
    Ok((addr, host, path.to_string(), tls))
}

/// `scheme://host:port` of a URL (its path dropped).
pub fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_string(),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_path_and_tls() {
        struct Case {
            url: &'static str,
            want: (&'static str, &'static str, bool),
        }
        let cases = [
            Case { url: "ws://127.0.0.1:9000/public", want: ("127.0.0.1:9000", "/public", false) },
            Case { url: "https://127.0.0.1/", want: ("127.0.0.1:443", "", true) },
            Case { url: "http://127.0.0.1", want: ("127.0.0.1:80", "", false) },
            Case { url: "wss://127.0.0.1:8443/private/ws/", want: ("127.0.0.1:8443", "/private/ws", true) },
        ];
        for case in cases {
            let (addr, host, path, tls) = split_url(case.url).unwrap_or_else(|e| panic!("{}: {e}", case.url));
            assert_eq!((host.as_str(), path.as_str(), tls), case.want, "{}", case.url);
            assert_eq!(addr.to_string(), case.want.0, "{}", case.url);
        }
        let refused = split_url("ftp://127.0.0.1").unwrap_err().to_string();
        assert!(refused.contains("ftp://127.0.0.1") && refused.contains("expected ws://"), "{refused}");
    }

    #[test]
    fn an_origin_drops_the_path() {
        assert_eq!(origin("ws://127.0.0.1:9000/market"), "ws://127.0.0.1:9000");
        assert_eq!(origin("wss://fstream.binance.com"), "wss://fstream.binance.com");
    }
}
