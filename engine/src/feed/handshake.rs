//! The client's opening handshake (RFC 6455 §4.1): the upgrade request, and the check of
//! the server's answer including `Sec-WebSocket-Accept`.

use base64::Engine;
/// Largest response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Why the server's answer is not a valid upgrade.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The head exceeded [`MAX_RESPONSE_HEAD`].
    #[error("response head over {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLong,
    /// The status line is not `HTTP/1.1 101`.
    #[error("server answered {0:?} instead of 101 Switching Protocols")]
    Status(String),
    /// A required header is missing or wrong.
    #[error("bad or missing header {0}")]
    Header(&'static str),
    /// `Sec-WebSocket-Accept` does not match our key.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    AcceptMismatch,
}

/// The `Sec-WebSocket-Accept` value for `key`.
pub fn accept_for(key: &str) -> String {
    aegis_wire::websocket::accept_key(key)
}

/// A fresh `Sec-WebSocket-Key` from 16 random bytes.
pub fn new_key(random: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// The upgrade request for `path` (with query) on `host` (`host:port`).
pub fn request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: aegis\r\n\r\n"
    )
}

/// Checks the server's response in `buf`; returns the head's length (frames may follow),
/// or `Ok(None)` when the head is not complete yet.
pub fn check_response(buf: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_RESPONSE_HEAD { Err(HandshakeError::HeadTooLong) } else { Ok(None) };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.split(' ');
    if !(parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) && parts.next() == Some("101")) {
        return Err(HandshakeError::Status(status.to_string()));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => connection = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")),
            "sec-websocket-accept" => accept = Some(value.to_string()),
            _ => {}
        }
    }
    if !upgrade {
        return Err(HandshakeError::Header("Upgrade"));
    }
    if !connection {
        return Err(HandshakeError::Header("Connection"));
    }
    match accept {
        Some(a) if a == accept_for(key) => Ok(Some(end + 4)),
        Some(_) => Err(HandshakeError::AcceptMismatch),
        None => Err(HandshakeError::Header("Sec-WebSocket-Accept")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn rfc_example_accepts() {
        assert_eq!(accept_for(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x01a";
        assert_eq!(check_response(resp, KEY), Ok(Some(resp.len() - 3)));
        assert_eq!(check_response(&resp[..20], KEY), Ok(None));
    }

    #[test]
    fn bad_answers_are_named() {
        let cases: [(&[u8], HandshakeError); 4] = [
            (b"HTTP/1.1 404 Not Found\r\n\r\n", HandshakeError::Status("HTTP/1.1 404 Not Found".into())),
            (b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n", HandshakeError::Header("Upgrade")),
            (b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", HandshakeError::Header("Sec-WebSocket-Accept")),
            (b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n", HandshakeError::AcceptMismatch),
        ];
        for (resp, want) in cases {
            assert_eq!(check_response(resp, KEY), Err(want));
        }
        assert_eq!(check_response(&vec![b'a'; MAX_RESPONSE_HEAD + 1], KEY), Err(HandshakeError::HeadTooLong));
    }
}
