//! A blocking WebSocket client for threads off the hot path (the user-data stream): the
//! feed's own sans-IO connection ([`WsConn`]) driven over a blocking socket, so the engine's
//! rustls settings (webpki roots plus `exchange.extra_ca`) apply here as on the feed.

use crate::feed::conn::{ConnError, WsConn};
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a WebSocket connection failed or ended.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct WsError {
    /// The URL (its query included).
    pub url: String,
    /// What happened.
    pub reason: String,
}

/// How long connecting and the opening handshake (TCP, TLS, upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected WebSocket on a blocking socket.
pub struct WsClient {
    conn: WsConn,
    stream: TcpStream,
    received: VecDeque<String>,
    /// Why the connection ended, told once the messages before it are read.
    ended: Option<String>,
    url: String,
}

impl WsClient {
    /// Connects to `url` (`ws://` or `wss://`, resolved now) and completes the upgrade;
    /// `tls` serves `wss://`. A message may hold up to `max_message` bytes.
    pub fn connect(url: &str, tls: &Arc<rustls::ClientConfig>, max_message: usize) -> Result<Self, WsError> {
        let fail = |reason: String| WsError { url: url.to_string(), reason };
        let (addr, host, path, secure) = crate::net::url::split_url(url).map_err(|e| fail(e.to_string()))?;
        let session = if secure {
            let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
            Some(crate::net::tls::session(tls, name).map_err(|e| fail(e.to_string()))?)
        } else {
            None
        };
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
        let path = if path.is_empty() { "/".to_string() } else { path };
        let seed = crate::clock::now_ns() ^ u64::from(addr.port());
        let conn = WsConn::with_tls(&host, &path, max_message, seed, session);
        let mut client = Self { conn, stream, received: VecDeque::new(), ended: None, url: url.to_string() };
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while !client.conn.is_open() {
            if Instant::now() >= deadline {
                return Err(fail("no WebSocket upgrade within 10 s".into()));
            }
            client.pump(deadline)?;
        }
        Ok(client)
    }

    /// The next text message, waiting at most `timeout`; `Ok(None)` when none came.
    /// Pings are answered meanwhile; a close or a broken connection is an error, once the
    /// messages that came before it are read.
    pub fn next_text(&mut self, timeout: Duration) -> Result<Option<String>, WsError> {
        let deadline = Instant::now() + timeout;
        while self.received.is_empty() && self.ended.is_none() && Instant::now() < deadline {
            if let Err(e) = self.pump(deadline) {
                self.ended = Some(e.reason);
            }
        }
        self.take_next()
    }

    /// The next text message already here, without waiting: what the socket holds is read
    /// (pings answered meanwhile); `Ok(None)` when nothing came. A close or a broken
    /// connection is an error, once the messages before it are read.
    pub fn poll(&mut self) -> Result<Option<String>, WsError> {
        if self.received.is_empty() && self.ended.is_none() {
            if let Err(e) = self.pump_now() {
                self.ended = Some(e.reason);
            }
        }
        self.take_next()
    }

    /// The oldest message read, else why the connection ended, else nothing.
    fn take_next(&mut self) -> Result<Option<String>, WsError> {
        match (self.received.pop_front(), &self.ended) {
            (Some(text), _) => Ok(Some(text)),
            (None, Some(reason)) => Err(self.error(reason.clone())),
            (None, None) => Ok(None),
        }
    }

    /// Pings answered on this connection.
    pub fn pings_answered(&self) -> u64 {
        self.conn.pings
    }

    /// Sends one text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.conn.send_text(text.as_bytes());
        self.flush()
    }

    /// Writes what waits, reads once (until `deadline` at most) and handles what came.
    fn pump(&mut self, deadline: Instant) -> Result<(), WsError> {
        self.flush()?;
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(wait)).map_err(|e| self.error(e.to_string()))?;
        if self.read_once()? {
            self.handle()?;
        }
        Ok(())
    }

    /// Writes what waits, reads what the socket holds now without waiting, handles it.
    fn pump_now(&mut self) -> Result<(), WsError> {
        self.flush()?;
        self.stream.set_nonblocking(true).map_err(|e| self.error(e.to_string()))?;
        let read = self.read_once();
        // Blocking again before anything is written (a pong): writes go whole.
        self.stream.set_nonblocking(false).map_err(|e| self.error(e.to_string()))?;
        if read? {
            self.handle()?;
        }
        Ok(())
    }

    /// Reads once: true when bytes came, false when the read would have waited longer.
    fn read_once(&mut self) -> Result<bool, WsError> {
        match self.conn.read_from(&mut self.stream) {
            Ok(0) => Err(self.error(ConnError::Eof.to_string())),
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(self.error(e.to_string())),
        }
    }

    /// Handles what was read: messages queued, pings answered, a close echoed.
    fn handle(&mut self) -> Result<(), WsError> {
        let received = &mut self.received;
        let outcome = self.conn.process(&mut |text: &[u8]| {
            received.push_back(String::from_utf8_lossy(text).into_owned());
        });
        // A pong, or the echo of a close, goes out before an error is reported.
        let flushed = self.flush();
        outcome.map_err(|e| self.error(e.to_string()))?;
        flushed
    }

    /// Writes what may go now (on a blocking socket, all of it; data queued behind a TLS
    /// handshake goes once the handshake is done).
    fn flush(&mut self) -> Result<(), WsError> {
        self.conn.write_to(&mut self.stream).map_err(|e| self.error(e.to_string()))
    }

    fn error(&self, reason: String) -> WsError {
        WsError { url: self.url.clone(), reason }
    }
}
