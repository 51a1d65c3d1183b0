//! The benchmark's exchange side of the WebSocket: a loopback server that answers the
//! upgrade, waits for the go, then writes each connection's share of the scenario as
//! pre-encoded frames — on a global schedule of `rate` messages per second, or flat out.
//! Frames are encoded before the go, so the feeder costs a `write` per batch, not JSON work.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How fast messages go out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Message `i` (of the whole scenario) is due `i / rate` seconds after the go.
    Rate(f64),
    /// As fast as the socket takes them.
    Flat,
}

/// A running feeder.
pub struct Feeder {
    /// Its port on 127.0.0.1.
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    frames: Vec<(u32, Vec<u8>)>,
    stream_index: HashMap<String, u32>,
    pace: Pace,
    connected: AtomicUsize,
    go: AtomicBool,
    start: OnceLock<Instant>,
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Feeder {
    /// Starts a feeder for `messages` ((stream index, envelope)) of `streams`.
    pub fn start(streams: &[String], messages: &[(u32, String)], pace: Pace) -> std::io::Result<Feeder> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let frames = messages
            .iter()
            .map(|(i, text)| {
                let mut frame = Vec::with_capacity(text.len() + 10);
                exchange_sim::ws::encode_text(&mut frame, text.as_bytes(), 1);
                (*i, frame)
            })
            .collect();
        let shared = Arc::new(Shared {
            frames,
            stream_index: streams.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect(),
            pace,
            connected: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            start: OnceLock::new(),
            sent: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        listener.set_nonblocking(true)?;
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("feeder-accept".into())
                .spawn(move || accept_loop(listener, shared))?
        };
        Ok(Feeder { port, shared, accept: Some(accept) })
    }

    /// WebSocket connections upgraded so far.
    pub fn connected(&self) -> usize {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Starts the clock and the sending.
    pub fn go(&self) {
        let _ = self.shared.start.set(Instant::now());
        self.shared.go.store(true, Ordering::Release);
    }

    /// Messages written so far (all connections).
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((socket, _)) => {
                let shared = shared.clone();
                if let Ok(t) = std::thread::Builder::new().name("feeder-conn".into()).spawn(move || {
                    if let Err(e) = serve(socket, &shared) {
                        if !shared.stop.load(Ordering::Relaxed) {
                            eprintln!("feeder: connection ended: {e}");
                        }
                    }
                }) {
                    connections.push(t);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => {
                eprintln!("feeder: accept: {e}");
                return;
            }
        }
    }
    for t in connections {
        let _ = t.join();
    }
}

/// Reads the upgrade request; returns the request line's path and the key.
fn read_upgrade(socket: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf)?;
        if n == 0 || request.len() > 1 << 20 {
            return Err(std::io::Error::other("closed or oversized before the end of the upgrade request"));
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    let key = text
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")))
        .map(|(_, v)| v.trim().to_string())
        .ok_or_else(|| std::io::Error::other("no Sec-WebSocket-Key"))?;
    Ok((path, key))
}

fn serve(mut socket: TcpStream, shared: &Shared) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let (path, key) = read_upgrade(&mut socket)?;
    let wanted: Vec<u32> = path
        .split_once("streams=")
        .map(|(_, list)| list.split('/').filter_map(|s| shared.stream_index.get(s).copied()).collect())
        .unwrap_or_default();
    let mut subscribed = vec![false; shared.stream_index.len()];
    for i in wanted {
        subscribed[i as usize] = true;
    }
    // (global position, frame) of this connection's share, in order.
    let mine: Vec<(usize, &[u8])> = shared
        .frames
        .iter()
        .enumerate()
        .filter(|(_, (stream, _))| subscribed[*stream as usize])
        .map(|(at, (_, frame))| (at, frame.as_slice()))
        .collect();
    let accept = aegis_wire::websocket::accept_key(&key);
    write!(
        socket,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    shared.connected.fetch_add(1, Ordering::AcqRel);
    while !shared.go.load(Ordering::Acquire) {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = *shared.start.get().unwrap_or(&Instant::now());
    send(&mut socket, &mine, shared, start)?;
    // Keep the connection open (a close would make the client reconnect and resync) and
    // read whatever the client sends (pongs) until the benchmark ends.
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut sink = [0u8; 4096];
    while !shared.stop.load(Ordering::Relaxed) {
        match socket.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn send(
    socket: &mut TcpStream,
    mine: &[(usize, &[u8])],
    shared: &Shared,
    start: Instant,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(1 << 16);
    let mut next = 0;
    while next < mine.len() {
        let due = match shared.pace {
            Pace::Flat => usize::MAX,
            Pace::Rate(rate) => (start.elapsed().as_secs_f64() * rate) as usize,
        };
        out.clear();
        let first = next;
        while next < mine.len() && mine[next].0 <= due && out.len() < 1 << 16 {
            out.extend_from_slice(mine[next].1);
            next += 1;
        }
        if out.is_empty() {
            if let Pace::Rate(rate) = shared.pace {
                // Sleep until the next message is due (the kernel wakes us ~60 µs late at best).
                let at = Duration::from_secs_f64(mine[next].0 as f64 / rate);
                let wait = at.saturating_sub(start.elapsed());
                if wait > Duration::from_micros(100) {
                    std::thread::sleep(wait - Duration::from_micros(50));
                } else {
                    std::thread::yield_now();
                }
            }
            continue;
        }
        socket.write_all(&out)?;
        shared.sent.fetch_add((next - first) as u64, Ordering::Relaxed);
    }
    Ok(())
}
