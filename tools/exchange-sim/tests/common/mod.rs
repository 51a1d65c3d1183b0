//! Helpers shared by the exchange-sim integration tests: a child simulator process, a stock
//! WebSocket client (tungstenite), a minimal HTTP GET.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The shared data folder beside the repository (override with AEGIS_SHARED_DIR).
pub fn shared_data() -> PathBuf {
    let root = std::env::var_os("AEGIS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let data = root.join("data");
    assert!(data.is_dir(), "shared data not found at {} (set AEGIS_SHARED_DIR)", data.display());
    data
}

/// The project's `.venv` Python (the independent peers' interpreter).
#[allow(dead_code)] // not every test file runs a Python peer
pub fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup.sh (the README's test command does)",
        python.display()
    );
    python
}

/// A running simulator; killed on drop.
pub struct Sim {
    pub child: Child,
    pub ws: String,
    pub http: String,
}

impl Sim {
    /// Starts `exchange-sim ARGS --port 0` and reads its first stdout line.
    pub fn spawn(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_exchange-sim"))
            .args(args)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn exchange-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts.len(), 3, "first line {line:?}");
        assert_eq!(parts[0], "listening", "first line {line:?}");
        Sim { child, ws: parts[1].to_string(), http: parts[2].to_string() }
    }

    /// Waits for a clean exit (e.g. after `--for`) and returns stderr.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// Connects a stock tungstenite client.
pub fn connect(url: &str) -> Client {
    let (ws, response) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    ws
}

/// The next text message; pings are answered by tungstenite itself.
pub fn next_text(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return t.to_string(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; returns the close code and reason, if any.
pub fn read_until_close(ws: &mut Client) -> Option<(u16, String)> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// A blocking HTTP GET; returns status and body.
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect http");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read http");
    let (head, body) = raw.split_once("\r\n\r\n").expect("http head");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, body.to_string())
}

/// The stream envelopes of a WebSocket capture, in file order, exactly as recorded.
pub fn capture_envelopes(path: &std::path::Path) -> Vec<String> {
    let raw = std::fs::read(path).unwrap();
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2_decode(&raw, &mut s);
        s
    } else {
        String::from_utf8(raw).unwrap()
    };
    text.lines()
        .filter_map(|line| {
            let json_start = line.find("{\"stream\"")?;
            Some(line[json_start..].to_string())
        })
        .collect()
}

fn flate2_decode(raw: &[u8], out: &mut String) {
    // gzip via the system's `gzip -dc` keeps the test independent of the simulator's decoder.
    let mut child =
        Command::new("gzip").arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = raw.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    child.stdout.take().unwrap().read_to_string(out).unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
}

/// Stream names of a replay file, from `--list-streams`.
pub fn list_streams(file: &std::path::Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_exchange-sim"))
        .arg("--replay")
        .arg(file)
        .arg("--list-streams")
        .output()
        .expect("list streams");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}
