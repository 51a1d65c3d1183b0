//! Interop with an independent peer: our WebSocket client (handshake, frames, fragment
//! reassembly, pongs) against Python's `websockets` server, over real loopback TCP.

mod common;

use aegis::feed::conn::{ConnError, WsConn};
use common::{repo, shared_data};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn our_client_reads_a_python_websockets_server_and_answers_its_pings() {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup.sh", python.display());
    let capture = shared_data().join("ws/cryptofeed_usdm_20210722.ws.txt");
    let mut server = Command::new(python)
        .arg(repo().join("tests/python/ws_server.py"))
        .arg(&capture)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("port ").expect("port line").parse().unwrap();

    let want: Vec<String> = std::fs::read_to_string(&capture)
        .unwrap()
        .lines()
        .filter_map(|l| l.find("{\"stream\"").map(|i| l[i..].to_string()))
        .collect();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut conn = WsConn::new(&format!("127.0.0.1:{port}"), "/", 1 << 20, 7);
    let mut got: Vec<String> = Vec::new();
    let end = loop {
        conn.write_to(&mut stream).unwrap();
        match conn.read_from(&mut stream) {
            Ok(0) => break None,
            Ok(_) => {}
            Err(e) => panic!("read: {e}"),
        }
        match conn.process(&mut |text| got.push(String::from_utf8(text.to_vec()).unwrap())) {
            Ok(()) => {}
            Err(ConnError::Closed { code, reason }) => break Some((code, reason)),
            Err(e) => panic!("protocol: {e}"),
        }
    };
    conn.write_to(&mut stream).unwrap(); // our close echo
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    drop(stream); // the client closes TCP after the closing handshake (RFC 6455 §7.1.1)
    let status = server.wait().unwrap();
    assert_eq!(end, Some((Some(1000), "done".to_string())), "closed normally by the server");
    assert!(status.success(), "server exit {status}");
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    assert!(conn.pings > 0, "the server pinged and we answered");
}
