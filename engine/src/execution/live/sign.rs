//! Binance request signing: HMAC-SHA256 over the parameters in lowercase hex, or Ed25519 in
//! base64, with the `timestamp` and `recvWindow` every signed request carries.

use crate::credentials::{ApiKey, Secret};

/// HMAC-SHA256 of `payload` keyed with `secret`, lowercase hex.
pub fn signature(secret: &Secret, payload: &str) -> String {
    secret.hmac_sha256_hex(payload)
}

/// `params` with `recvWindow`, `timestamp` and the `signature` over all of them appended
/// (percent-encoded: an Ed25519 signature is base64).
pub fn signed_params(params: &str, timestamp_ms: i64, recv_window_ms: u64, key: &ApiKey) -> String {
    let sep = if params.is_empty() { "" } else { "&" };
    let unsigned = format!("{params}{sep}recvWindow={recv_window_ms}&timestamp={timestamp_ms}");
    let signature = percent_encode(&key.sign(&unsigned));
    format!("{unsigned}&signature={signature}")
}

/// `text` with every byte outside `A-Z a-z 0-9 - _ . ~` written `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The exchange's clock as seen from here: local time plus an offset measured from
/// `/fapi/v1/time` (signed requests outside `recvWindow` of the exchange's time are refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerClock {
    /// Exchange time minus local time, ms.
    pub offset_ms: i64,
}

impl ServerClock {
    /// The offset from one round trip: `server_ms` was read between `sent_ms` and
    /// `received_ms` (local), assumed at the midpoint.
    pub fn from_round_trip(sent_ms: i64, server_ms: i64, received_ms: i64) -> Self {
        Self { offset_ms: server_ms - (sent_ms + (received_ms - sent_ms) / 2) }
    }

    /// The exchange's time now, ms.
    pub fn now_ms(&self) -> i64 {
        local_ms() + self.offset_ms
    }
}

/// Local wall-clock time, ms since the epoch.
pub fn local_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        crate::credentials::test_secret(s)
    }

    /// The HMAC examples of Binance's API documentation.
    #[test]
    fn signatures_match_binances_documented_examples() {
        // USDⓈ-M futures, "SIGNED endpoint examples for POST /fapi/v1/order".
        let futures = secret("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9");
        assert_eq!(
            signature(
                &futures,
                "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
            ),
            "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
        assert_eq!(
            signed_params(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC",
                1_591_702_613_943,
                5_000,
                &ApiKey::new("k", futures.expose(), "the docs")
            ),
            "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
        // Spot API, the same scheme.
        let spot = secret("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
        assert_eq!(
            signature(
                &spot,
                "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
            ),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn the_server_clock_takes_the_round_trips_midpoint() {
        assert_eq!(ServerClock::from_round_trip(1_000, 1_600, 1_200).offset_ms, 500);
        assert_eq!(ServerClock::from_round_trip(1_000, 900, 1_000).offset_ms, -100);
    }
}
