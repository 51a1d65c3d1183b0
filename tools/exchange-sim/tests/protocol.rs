//! Binance's WebSocket rules as the simulator enforces them, TLS, faults and the summary.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::sync::Arc;
use tungstenite::Message;

fn send(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).expect("send");
}

/// Reads text messages until one carries `"id"`.
fn next_reply(ws: &mut Client) -> Value {
    loop {
        let v: Value = serde_json::from_str(&next_text(ws)).unwrap();
        if v.get("id").is_some() {
            return v;
        }
    }
}

#[test]
fn subscribe_unsubscribe_and_list_answer_like_binance() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "3", "--speed", "60", "--for", "60s"]);
    let mut ws = connect(&format!("{}/market/stream", sim.ws));
    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","ethusdt@kline_1m"],"id":1}"#);
    assert_eq!(next_reply(&mut ws), serde_json::json!({"result": null, "id": 1}));
    let msg: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
    assert!(["btcusdt@aggTrade", "ethusdt@kline_1m"].contains(&msg["stream"].as_str().unwrap()), "{msg}");
    send(&mut ws, r#"{"method":"UNSUBSCRIBE","params":["ethusdt@kline_1m"],"id":2}"#);
    assert_eq!(next_reply(&mut ws)["id"], 2);
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#);
    assert_eq!(next_reply(&mut ws), serde_json::json!({"result": ["btcusdt@aggTrade"], "id": 3}));
    // Bad requests get an error and change nothing.
    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":4}"#);
    let reply = next_reply(&mut ws);
    assert_eq!(reply["id"], 4);
    assert!(reply["error"]["msg"].as_str().unwrap().contains("unknown stream"), "{reply}");
    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":5}"#);
    let reply = next_reply(&mut ws);
    assert!(reply["error"]["msg"].as_str().unwrap().contains("/public"), "wrong tier: {reply}");
    send(&mut ws, "{not json");
    assert_eq!(next_reply(&mut ws)["error"]["code"], 3);
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":6}"#);
    assert_eq!(next_reply(&mut ws)["result"], serde_json::json!(["btcusdt@aggTrade"]));
}

#[test]
fn more_than_200_streams_closes_with_a_reason() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "41", "--for", "60s"]);
    let (status, body) = http_get(&sim.http, "/fapi/v1/exchangeInfo");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<String> = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let l = s["symbol"].as_str().unwrap().to_ascii_lowercase();
            ["aggTrade", "kline_1m", "markPrice@1s", "forceOrder", "markPrice"].map(|c| format!("{l}@{c}"))
        })
        .collect();
    assert_eq!(names.len(), 205);
    let mut ws = connect(&format!("{}/market/stream?streams={}", sim.ws, names.join("/")));
    let (code, reason) = read_until_close(&mut ws).expect("close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("too many streams"), "{reason}");
    // 200 exactly is fine.
    let mut ws = connect(&format!("{}/market/stream?streams={}", sim.ws, names[..200].join("/")));
    assert!(next_text(&mut ws).starts_with("{\"stream\""));
}

#[test]
fn more_than_10_incoming_messages_per_second_closes_the_connection() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "1", "--for", "60s"]);
    let mut ws = connect(&format!("{}/ws", sim.ws));
    for id in 0..11 {
        send(&mut ws, &format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#));
    }
    let (code, reason) = read_until_close(&mut ws).expect("close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("too many incoming messages"), "{reason}");
}

#[test]
fn unknown_streams_and_wrong_tiers_in_the_url_close_with_a_reason() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "1", "--for", "60s"]);
    let mut ws = connect(&format!("{}/ws/dogeusdt@trade", sim.ws));
    let (code, reason) = read_until_close(&mut ws).unwrap();
    assert_eq!((code, reason.as_str()), (1008, "unknown stream dogeusdt@trade"));
    let mut ws = connect(&format!("{}/public/ws/btcusdt@aggTrade", sim.ws));
    let (code, reason) = read_until_close(&mut ws).unwrap();
    assert_eq!(code, 1008);
    assert!(reason.contains("/market"), "{reason}");
}

#[test]
fn server_pings_and_closes_clients_that_never_pong() {
    let sim = Sim::spawn(&[
        "--synthetic",
        "--symbols",
        "1",
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "500ms",
        "--for",
        "60s",
    ]);
    // tungstenite answers pings itself: it stays connected across several ping intervals.
    let mut polite = connect(&format!("{}/ws/btcusdt@markPrice@1s", sim.ws));
    let mut pings = 0;
    while pings < 4 {
        if let Message::Ping(payload) = polite.read().unwrap() {
            assert!(!payload.is_empty());
            pings += 1;
        }
    }
    // A raw socket that completes the handshake and then never answers gets closed.
    let addr = sim.ws.trim_start_matches("ws://");
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    write!(raw, "GET /ws/btcusdt@markPrice@1s HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    raw.read_to_end(&mut bytes).unwrap(); // returns when the server closes
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "accept key");
    assert!(text.contains("pong timeout"), "close reason in {} bytes", bytes.len());
}

#[test]
fn connections_are_closed_at_the_end_of_their_lifetime() {
    let sim = Sim::spawn(&[
        "--synthetic",
        "--symbols",
        "1",
        "--speed",
        "10",
        "--conn-lifetime",
        "1s",
        "--for",
        "60s",
    ]);
    let mut ws = connect(&format!("{}/ws/btcusdt@aggTrade", sim.ws));
    let (code, reason) = read_until_close(&mut ws).unwrap();
    assert_eq!((code, reason.as_str()), (1001, "connection lifetime reached"));
}

#[test]
fn tls_serves_a_client_that_trusts_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let sim = Sim::spawn(&[
        "--synthetic",
        "--symbols",
        "1",
        "--tls",
        "--ca-out",
        ca.to_str().unwrap(),
        "--for",
        "60s",
    ]);
    assert!(sim.ws.starts_with("wss://") && sim.http.starts_with("https://"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(&ca).unwrap())) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let url = format!("{}/ws/btcusdt@aggTrade", sim.ws);
    let tcp = std::net::TcpStream::connect(sim.ws.trim_start_matches("wss://")).unwrap();
    let (mut ws, _) = tungstenite::client_tls_with_config(
        url,
        tcp,
        None,
        Some(tungstenite::Connector::Rustls(Arc::new(config))),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
    assert_eq!(v["e"], "aggTrade");
}

fn summary_after(args: &[&str], stream: &str, read: usize) -> (Vec<String>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let mut all = args.to_vec();
    all.extend(["--summary", summary.to_str().unwrap()]);
    let sim = Sim::spawn(&all);
    let mut ws = connect(&format!("{}/stream?streams={stream}", sim.ws));
    let mut got = Vec::new();
    while got.len() < read {
        match ws.read() {
            Ok(Message::Text(t)) => got.push(t.to_string()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    drop(ws);
    let (status, err) = sim.wait();
    assert!(status.success(), "{err}");
    (got, serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap())
}

#[test]
fn fragmented_frames_reassemble_to_the_recorded_messages() {
    let file = shared_data().join("ws/cryptofeed_spot_20211012.ws.txt");
    let streams = list_streams(&file).join("/");
    let want = capture_envelopes(&file);
    let args =
        ["--replay", file.to_str().unwrap(), "--speed", "max", "--for", "3s", "--fault", "fragment=4/2"];
    let (got, summary) = summary_after(&args, &streams, want.len());
    assert_eq!(got, want);
    assert_eq!(summary["faults"]["fragmented"], want.len() as u64 / 2);
    assert_eq!(summary["messages_sent"], want.len() as u64);
}

#[test]
fn stream_faults_are_injected_and_counted() {
    let args = [
        "--synthetic",
        "--symbols",
        "1",
        "--speed",
        "max",
        "--for",
        "3s",
        "--fault",
        "malformed-every=50",
        "--fault",
        "duplicate-every=70",
        "--fault",
        "depth-gap-every=20",
    ];
    let (got, summary) = summary_after(&args, "btcusdt@depth@100ms/btcusdt@aggTrade", 2000);
    let malformed = got.iter().filter(|m| serde_json::from_str::<Value>(m).is_err()).count();
    assert!(malformed >= 30, "{malformed} malformed");
    let mut gaps = 0;
    let mut prev_u = None;
    for m in got.iter().filter_map(|m| serde_json::from_str::<Value>(m).ok()) {
        if m["data"]["e"] == "depthUpdate" {
            let (pu, u) = (m["data"]["pu"].as_u64().unwrap(), m["data"]["u"].as_u64().unwrap());
            if prev_u.is_some_and(|p| p != pu && p != u) {
                gaps += 1;
            }
            prev_u = Some(u);
        }
    }
    assert!(gaps > 0, "no depth gap seen");
    assert_faults_counted(&summary, &["malformed", "duplicate", "depth_gap"]);
}

#[test]
fn drop_fault_cuts_each_connection_after_n_messages() {
    let args =
        ["--synthetic", "--symbols", "1", "--speed", "max", "--for", "3s", "--fault", "drop-after=100"];
    let (got, summary) = summary_after(&args, "btcusdt@aggTrade", 1000);
    assert_eq!(got.len(), 99, "the 100th message is where the connection drops");
    assert_eq!(summary["faults"]["drop"], 1);
    assert_eq!(summary["connections"]["close_reasons"]["dropped (fault)"], 1);
}

#[test]
fn oversize_frames_exceed_a_clients_limit() {
    let sim = Sim::spawn(&[
        "--synthetic",
        "--symbols",
        "1",
        "--speed",
        "max",
        "--for",
        "60s",
        "--fault",
        "oversize-after=5",
        "--fault",
        "oversize-bytes=2000000",
    ]);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (mut ws, _) =
        tungstenite::client::connect_with_config(format!("{}/ws/btcusdt@aggTrade", sim.ws), Some(config), 3)
            .unwrap();
    let mut ok = 0;
    let err = loop {
        match ws.read() {
            Ok(Message::Text(_)) => ok += 1,
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(ok, 4);
    assert!(matches!(err, tungstenite::Error::Capacity(_)), "{err}");
}

#[test]
fn the_summary_counts_messages_per_kind_and_symbol() {
    let args = ["--synthetic", "--symbols", "2", "--speed", "max", "--for", "2s"];
    let (got, summary) = summary_after(&args, "btcusdt@aggTrade/ethusdt@bookTicker", 500);
    assert_eq!(got.len(), 500);
    let sent = summary["messages_sent"].as_u64().unwrap();
    assert!(sent >= 500);
    let by_kind = &summary["messages_sent_by_kind"];
    assert_eq!(by_kind["aggTrade"].as_u64().unwrap() + by_kind["bookTicker"].as_u64().unwrap(), sent);
    let by_symbol = &summary["messages_sent_by_symbol"];
    assert_eq!(by_symbol["BTCUSDT"].as_u64().unwrap() + by_symbol["ETHUSDT"].as_u64().unwrap(), sent);
    assert!(summary["events_generated"].as_u64().unwrap() >= sent);
    assert_eq!(summary["connections"]["opened"], 1);
}

#[test]
fn reorder_missing_kline_and_stall_faults_are_injected_and_counted() {
    let args = [
        "--synthetic",
        "--symbols",
        "1",
        "--speed",
        "max",
        "--for",
        "4s",
        "--fault",
        "reorder-every=25",
        "--fault",
        "missing-kline-every=2",
        "--fault",
        "stall=300/50ms",
    ];
    let (got, summary) = summary_after(&args, "btcusdt@aggTrade/btcusdt@kline_1m", 50_000);
    let parsed: Vec<Value> = got.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    let agg_ids: Vec<u64> = parsed
        .iter()
        .filter(|m| m["data"]["e"] == "aggTrade")
        .map(|m| m["data"]["a"].as_u64().unwrap())
        .collect();
    assert!(agg_ids.windows(2).any(|w| w[1] < w[0]), "no out-of-order aggTrade");
    let closed: Vec<i64> = parsed
        .iter()
        .filter(|m| m["data"]["e"] == "kline" && m["data"]["k"]["x"] == true)
        .map(|m| m["data"]["k"]["t"].as_i64().unwrap())
        .collect();
    assert!(closed.len() >= 2, "{} closed klines of {} messages", closed.len(), got.len());
    assert!(
        closed.windows(2).all(|w| w[1] - w[0] == 120_000),
        "every other closed kline is missing: {closed:?}"
    );
    assert_faults_counted(&summary, &["reorder", "missing_kline", "stall"]);
}

#[test]
fn the_rate_limit_caps_messages_per_connection() {
    // An upper bound only: a loaded machine may send fewer, never more. The connection lives
    // the 2 s run plus at most 2 s of shutdown, so at most five 1 s windows of 25; unlimited,
    // the same run sends thousands.
    let args = ["--synthetic", "--symbols", "2", "--speed", "max", "--rate", "25", "--for", "2s"];
    let (got, summary) = summary_after(&args, "btcusdt@aggTrade/ethusdt@aggTrade", 1_000);
    let sent = summary["messages_sent"].as_u64().unwrap();
    assert_eq!(got.len() as u64, sent);
    assert!(sent <= 25 * 5, "{sent} messages in a 2 s run at 25/s");
    assert!(sent >= 1);
}

/// Every fault in `faults` shows a non-zero count in the simulator's summary.
fn assert_faults_counted(summary: &serde_json::Value, faults: &[&str]) {
    for fault in faults {
        let count = summary["faults"][*fault].as_u64().unwrap_or(0);
        assert!(count > 0, "{fault} not counted: {}", summary["faults"]);
    }
}

/// HTTP/1.1 bodies come sized or chunked: a chunked POST's body is read whole (its
/// terminator included), so the next request on the kept-alive connection is answered as
/// itself, not as a malformed request line "0".
#[test]
fn a_chunked_request_body_is_read_and_the_next_request_answered() {
    let sim = Sim::spawn(&["--synthetic", "--symbols", "1"]);
    let addr = sim.http.trim_start_matches("http://").to_string();
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    let listing =
        "POST /sim/v1/listing?symbol=BTCUSDT&status=BREAK HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    let body = "note=a+chunked+body";
    let chunked = format!("{listing}{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let time = "GET /fapi/v1/time HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    raw.write_all(format!("{chunked}{time}").as_bytes()).unwrap();
    let mut answers = String::new();
    raw.read_to_string(&mut answers).unwrap();
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 2, "{answers}");
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
    assert!(answers.contains("\"status\":\"BREAK\""), "{answers}");
    assert!(answers.contains("serverTime"), "{answers}");
}
