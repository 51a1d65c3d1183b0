//! One WebSocket connection as a state machine, independent of how bytes move (sans-IO):
//! a transport hands it readable bytes and asks it for bytes to write.
//!
//! It sends the upgrade request, checks the answer, decodes frames in place from a read
//! buffer sized once at creation, answers pings with their payload, echoes a close, and
//! hands every text message to the caller. After the handshake nothing here allocates on
//! the plain-TCP path; over TLS (rustls) the record layer's own buffers are rustls's.

use super::frame::{
    encode_client_frame, opcode, Decoded, FrameDecoder, FrameError, WsMessage, MAX_CLIENT_HEADER,
};
use super::handshake::{self, HandshakeError};
use std::io::{self, Read, Write};

/// Most bytes one plain read takes. Records of one read share its timestamp and wait while
/// those before them parse: 64 KiB (≈ 300 messages, tens of µs) bounds that wait under a
/// burst at little syscall cost, where a read filling the whole buffer held them for ms.
const READ_CHUNK: usize = 64 << 10;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The upgrade failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The server broke RFC 6455 (we sent the close code).
    #[error("protocol: {0}")]
    Protocol(#[from] FrameError),
    /// The server closed the connection.
    #[error("closed by server (code {code:?}): {reason}")]
    Closed {
        /// Close code, if sent.
        code: Option<u16>,
        /// Reason text (truncated to the buffer it arrived in).
        reason: String,
    },
    /// The socket ended without a close frame.
    #[error("connection reset (end of stream)")]
    Eof,
    /// An I/O error.
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshaking,
    Open,
    Closed,
}

/// A client WebSocket connection's protocol state and buffers.
pub struct WsConn {
    tls: Option<Box<rustls::ClientConnection>>,
    key: String,
    state: State,
    rx: Vec<u8>,
    head: usize,
    tail: usize,
    tx: Vec<u8>,
    tx_sent: usize,
    decoder: FrameDecoder,
    mask_state: u64,
    /// Text messages received.
    pub messages: u64,
    /// Pings answered.
    pub pings: u64,
}

impl WsConn {
    /// A connection to `path` on `host` (`host:port`); `seed` drives the handshake key and
    /// the frame masks. `max_message` bounds a message; the read buffer is twice that.
    pub fn new(host: &str, path: &str, max_message: usize, seed: u64) -> Self {
        Self::with_tls(host, path, max_message, seed, None)
    }

    /// As [`WsConn::new`], over TLS when `tls` is given (rustls; the handshake runs inside
    /// the same read/write calls).
    pub fn with_tls(
        host: &str,
        path: &str,
        max_message: usize,
        seed: u64,
        tls: Option<rustls::ClientConnection>,
    ) -> Self {
        let mut mask_state = seed | 1;
        let mut key_bytes = [0u8; 16];
        for chunk in key_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&next_random(&mut mask_state).to_le_bytes());
        }
        let key = handshake::new_key(key_bytes);
        let request = handshake::request(host, path, &key);
        let mut tx = Vec::with_capacity(request.len().max(4096));
        tx.extend_from_slice(request.as_bytes());
        Self {
            tls: tls.map(Box::new),
            key,
            state: State::Handshaking,
            rx: vec![0; 2 * max_message + MAX_CLIENT_HEADER],
            head: 0,
            tail: 0,
            tx,
            tx_sent: 0,
            decoder: FrameDecoder::new(max_message),
            mask_state,
            messages: 0,
            pings: 0,
        }
    }

    /// True once the upgrade succeeded.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True while bytes wait to be written.
    pub fn wants_write(&self) -> bool {
        self.tx_sent < self.tx.len() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Reads whatever `src` has into the buffer; `Ok(0)` means end of stream.
    pub fn read_from(&mut self, src: &mut impl Read) -> io::Result<usize> {
        if self.tail == self.rx.len() {
            self.compact();
        }
        if self.tail == self.rx.len() {
            // A frame larger than the buffer: the decoder reports it as too big first.
            return Err(io::Error::new(io::ErrorKind::InvalidData, "read buffer full"));
        }
        let Some(tls) = self.tls.as_mut() else {
            let end = self.rx.len().min(self.tail + READ_CHUNK);
            let n = src.read(&mut self.rx[self.tail..end])?;
            self.tail += n;
            return Ok(n);
        };
        let n = tls.read_tls(src)?;
        if n == 0 {
            return Ok(0);
        }
        tls.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        loop {
            if self.tail == self.rx.len() {
                break;
            }
            match tls.reader().read(&mut self.rx[self.tail..]) {
                Ok(0) => break,
                Ok(m) => self.tail += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn compact(&mut self) {
        self.rx.copy_within(self.head..self.tail, 0);
        self.tail -= self.head;
        self.head = 0;
    }

    /// Handles buffered bytes: the handshake answer, then frames. Text messages go to
    /// `on_text`; pings are answered; a close is echoed and ends the connection.
    pub fn process(&mut self, on_text: &mut impl FnMut(&[u8])) -> Result<(), ConnError> {
        if self.state == State::Handshaking {
            match handshake::check_response(&self.rx[self.head..self.tail], &self.key)? {
                None => return Ok(()),
                Some(used) => {
                    self.head += used;
                    self.state = State::Open;
                }
            }
        }
        while self.state == State::Open && self.head < self.tail {
            let decoded = self.decoder.decode(&self.rx[self.head..self.tail]);
            let (reply, used) = match decoded {
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Fragment(n)) => (None, n),
                Ok(Decoded::Message(WsMessage::Text(text), n)) => {
                    self.messages += 1;
                    on_text(text);
                    (None, n)
                }
                Ok(Decoded::Message(WsMessage::Ping(payload), n)) => {
                    self.pings += 1;
                    (Some((opcode::PONG, PingCopy::from(payload))), n)
                }
                Ok(Decoded::Message(WsMessage::Close(code, reason), _)) => {
                    let reason = String::from_utf8_lossy(reason).into_owned();
                    self.queue_frame(opcode::CLOSE, &code.unwrap_or(1000).to_be_bytes());
                    self.state = State::Closed;
                    return Err(ConnError::Closed { code, reason });
                }
                Ok(Decoded::Message(_, n)) => (None, n),
                Err(e) => {
                    self.queue_frame(opcode::CLOSE, &e.close_code().to_be_bytes());
                    self.state = State::Closed;
                    return Err(e.into());
                }
            };
            self.head += used;
            if let Some((op, payload)) = reply {
                self.queue_frame(op, payload.as_slice());
            }
        }
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Ok(())
    }

    /// Queues a close frame with `code` (we are leaving, e.g. after a rotation).
    pub fn send_close(&mut self, code: u16) {
        self.queue_frame(opcode::CLOSE, &code.to_be_bytes());
        self.state = State::Closed;
    }

    /// Queues a masked text message (a subscription request, for instance).
    pub fn send_text(&mut self, text: &[u8]) {
        self.queue_frame(opcode::TEXT, text);
    }

    fn queue_frame(&mut self, op: u8, payload: &[u8]) {
        if self.tx_sent == self.tx.len() {
            self.tx.clear();
            self.tx_sent = 0;
        }
        let mask = (next_random(&mut self.mask_state) as u32).to_le_bytes();
        let start = self.tx.len();
        self.tx.resize(start + MAX_CLIENT_HEADER + payload.len(), 0);
        let written = encode_client_frame(&mut self.tx[start..], op, payload, mask).unwrap_or(0);
        self.tx.truncate(start + written);
    }

    /// Writes queued bytes to `dst` until done or it would block.
    pub fn write_to(&mut self, dst: &mut impl Write) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            if !tls.is_handshaking() && self.tx_sent < self.tx.len() {
                tls.writer().write_all(&self.tx[self.tx_sent..])?;
                self.tx_sent = self.tx.len();
            }
            while tls.wants_write() {
                match tls.write_tls(dst) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        while self.tx_sent < self.tx.len() {
            match dst.write(&self.tx[self.tx_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A ping payload (≤ 125 bytes) copied out of the read buffer, on the stack.
struct PingCopy {
    len: usize,
    bytes: [u8; 125],
}

impl PingCopy {
    fn from(payload: &[u8]) -> Self {
        let len = payload.len().min(125);
        let mut bytes = [0u8; 125];
        bytes[..len].copy_from_slice(&payload[..len]);
        Self { len, bytes }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// xorshift64*: mask keys and handshake keys (unpredictable enough for RFC 6455 masking).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(op: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | op, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn handshake_then_messages_pings_and_close() {
        let mut conn = WsConn::new("127.0.0.1:1", "/stream?streams=a@trade", 1024, 42);
        let mut wire = Vec::new();
        conn.write_to(&mut wire).unwrap();
        let request = String::from_utf8(wire).unwrap();
        let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().to_string();
        let mut incoming = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            handshake::accept_for(&key)
        )
        .into_bytes();
        incoming.extend(server_frame(opcode::TEXT, b"one"));
        incoming.extend(server_frame(opcode::PING, b"stamp"));
        incoming.extend(server_frame(opcode::TEXT, b"two"));
        let mut texts = Vec::new();
        // Feed in small reads to exercise partial frames.
        for chunk in incoming.chunks(7) {
            conn.read_from(&mut &chunk[..]).unwrap();
            conn.process(&mut |t| texts.push(t.to_vec())).unwrap();
        }
        assert!(conn.is_open());
        assert_eq!(texts, vec![b"one".to_vec(), b"two".to_vec()]);
        let mut out = Vec::new();
        conn.write_to(&mut out).unwrap();
        // A masked pong carrying "stamp".
        assert_eq!(out[0], 0x8A);
        assert_eq!(out[1], 0x80 | 5);
        let mask = &out[2..6];
        let payload: Vec<u8> = out[6..11].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(payload, b"stamp");
        let close = server_frame(opcode::CLOSE, &[0x03, 0xE9, b'b', b'y', b'e']);
        conn.read_from(&mut &close[..]).unwrap();
        let err = conn.process(&mut |_| {}).unwrap_err();
        assert!(matches!(err, ConnError::Closed { code: Some(1001), .. }), "{err}");
    }

    #[test]
    fn a_bad_answer_fails_the_handshake() {
        let mut conn = WsConn::new("h:1", "/ws", 64, 1);
        conn.read_from(&mut &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..]).unwrap();
        assert!(matches!(conn.process(&mut |_| {}), Err(ConnError::Handshake(HandshakeError::Status(_)))));
    }
}
