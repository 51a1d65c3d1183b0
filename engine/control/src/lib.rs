//! The control protocol (SPEC §9): versioned, line-delimited JSON over the engine's
//! control socket. One definition for both ends: the engine parses [`Request`]s and answers
//! with [`ok_line`] or [`error_line`]; `aegisctl` builds its command line from the same enum
//! (feature `clap`) and sends [`request_line`]. No runtime, no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The protocol version every request names (`"v": 1`).
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest request line, bytes; a longer one is refused and the connection closed.
pub const MAX_LINE: usize = 64 * 1024;

/// One request (`{"v":1,"cmd":"close","symbol":"BTCUSDT"}`); unknown fields are refused.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Subcommand))]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The run at a glance.
    Status,
    /// Each shard: symbols, events, ring depth, drops, reconnects.
    Shards,
    /// Each symbol with its shard and counters.
    Symbols,
    /// Move a symbol to a shard (make-before-break).
    Rebalance {
        /// The symbol.
        symbol: String,
        /// The target shard.
        #[cfg_attr(feature = "clap", arg(long))]
        to: usize,
    },
    /// Move every symbol of a shard to the others.
    Drain {
        /// The shard to empty.
        shard: usize,
    },
    /// Stop opening positions (open ones are still managed).
    Pause,
    /// Open positions again.
    Resume,
    /// Open positions and pending entries.
    Positions,
    /// Close one symbol's position at its next trade.
    Close {
        /// The symbol.
        symbol: String,
    },
    /// Close every position now (the kill switch).
    Flatten,
    /// The model in use.
    Model,
    /// Ask the sidecar to train now.
    Train,
    /// Recent alerts.
    Alerts,
    /// Per-stage latency (bucket bounds of p50, p90, p99, p99.9).
    Latency,
    /// Export trades and experiences (CSV and Parquet) to a directory.
    Export {
        /// The output directory (as the engine sees it).
        #[cfg_attr(feature = "clap", arg(long))]
        out: String,
    },
}

/// Why a request line was refused; the text goes back to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("a request is a JSON object")]
    NotAnObject,
    /// `v` names another protocol version.
    #[error("unsupported protocol version {0}; this engine speaks v{PROTOCOL_VERSION}")]
    Version(String),
    /// No `v`.
    #[error("missing \"v\" (the protocol version, {PROTOCOL_VERSION})")]
    NoVersion,
    /// No `cmd`.
    #[error("missing \"cmd\"")]
    NoCommand,
    /// A field the command does not have.
    #[error("bad request: unknown field `{field}` for cmd {cmd:?}")]
    UnknownField {
        /// The command.
        cmd: String,
        /// The field.
        field: String,
    },
    /// An unknown command, a missing field or a value of the wrong type.
    #[error("bad request: {0}")]
    Bad(String),
}

/// Parses one request line: JSON, an object, `v` equal to [`PROTOCOL_VERSION`], a known
/// `cmd` with exactly its fields.
pub fn parse_request(line: &str) -> Result<Request, ProtocolError> {
    let mut value: Value = serde_json::from_str(line).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let object = value.as_object_mut().ok_or(ProtocolError::NotAnObject)?;
    match object.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(other) => return Err(ProtocolError::Version(other.to_string())),
        None => return Err(ProtocolError::NoVersion),
    }
    let cmd = object.get("cmd").ok_or(ProtocolError::NoCommand)?.as_str().unwrap_or("").to_string();
    // serde ignores extra fields on unit variants of a tagged enum: check them here.
    let allowed: &[&str] = match cmd.as_str() {
        "rebalance" => &["symbol", "to"],
        "drain" => &["shard"],
        "close" => &["symbol"],
        "export" => &["out"],
        _ => &[],
    };
    if let Some(extra) = object.keys().find(|k| *k != "cmd" && !allowed.contains(&k.as_str())) {
        return Err(ProtocolError::UnknownField { cmd, field: extra.clone() });
    }
    serde_json::from_value(value).map_err(|e| ProtocolError::Bad(e.to_string()))
}

/// The request line a client sends for `request` (without the newline).
pub fn request_line(request: &Request) -> String {
    let mut value = serde_json::to_value(request).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), Value::from(PROTOCOL_VERSION));
    }
    value.to_string()
}

/// A success line.
pub fn ok_line(result: Value) -> String {
    json!({ "v": PROTOCOL_VERSION, "ok": true, "result": result }).to_string()
}

/// A refusal line.
pub fn error_line(error: &str) -> String {
    json!({ "v": PROTOCOL_VERSION, "ok": false, "error": error }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        assert_eq!(parse_request(r#"{"v":1,"cmd":"status"}"#), Ok(Request::Status));
        assert_eq!(
            parse_request(r#"{"v":1,"cmd":"rebalance","symbol":"BTCUSDT","to":1}"#),
            Ok(Request::Rebalance { symbol: "BTCUSDT".into(), to: 1 })
        );
        let refused = [
            ("{", "malformed JSON"),
            ("[1]", "a JSON object"),
            (r#"{"cmd":"status"}"#, "missing \"v\""),
            (r#"{"v":2,"cmd":"status"}"#, "unsupported protocol version 2"),
            (r#"{"v":1}"#, "missing \"cmd\""),
            (r#"{"v":1,"cmd":"launch"}"#, "unknown variant `launch`"),
            (r#"{"v":1,"cmd":"status","extra":1}"#, "unknown field `extra`"),
            (r#"{"v":1,"cmd":"close"}"#, "missing field `symbol`"),
            (r#"{"v":1,"cmd":"rebalance","symbol":"X","to":-1}"#, "bad request"),
        ];
        for (line, expected) in refused {
            let err = parse_request(line).expect_err(line).to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn every_request_line_a_client_builds_parses_back_to_itself() {
        let requests = [
            Request::Status,
            Request::Rebalance { symbol: "ETHUSDT".into(), to: 2 },
            Request::Drain { shard: 1 },
            Request::Close { symbol: "BTCUSDT".into() },
            Request::Export { out: "/tmp/x".into() },
            Request::Latency,
        ];
        for request in requests {
            let line = request_line(&request);
            assert_eq!(parse_request(&line), Ok(request.clone()), "{line}");
        }
    }
}
