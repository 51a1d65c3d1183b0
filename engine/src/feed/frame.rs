//! RFC 6455 frames, client side: decoding the server's frames in place from the read
//! buffer, and encoding our masked frames into a caller's buffer.
//!
//! An unfragmented message is handed out as a slice of the read buffer (no copy). A
//! fragmented one is assembled in a message buffer reserved once at the configured maximum
//! size, so after warm-up nothing here allocates. Control frames may arrive between
//! fragments. Text is UTF-8 validated. Every protocol violation is an error carrying the
//! close code the RFC prescribes; none panics.

pub use aegis_wire::websocket::{close_code, opcode};

/// Why the server's bytes violate the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RSV bits set without a negotiated extension.
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode the RFC does not define.
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
    /// Servers must not mask frames (§5.1).
    #[error("masked frame from the server")]
    Masked,
    /// A control frame over 125 bytes or fragmented (§5.5).
    #[error("invalid control frame")]
    BadControl,
    /// A continuation with no message in progress.
    #[error("continuation without a message")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is in progress.
    #[error("data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A message larger than the configured maximum.
    #[error("message of {size} bytes exceeds {max}")]
    TooBig {
        /// Size so far.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A text message that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte payload, a bad code, or a non-UTF-8 reason.
    #[error("malformed close frame")]
    BadClose,
}

impl FrameError {
    /// The close code to send back for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooBig { .. } => close_code::TOO_BIG,
            FrameError::InvalidUtf8 => close_code::INVALID_DATA,
            _ => close_code::PROTOCOL,
        }
    }
}

/// A complete message or control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// A text message (UTF-8 checked).
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping; answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame: code (if any) and reason.
    Close(Option<u16>, &'a [u8]),
}

/// The result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not enough bytes for a whole frame.
    NeedMore,
    /// A fragment was absorbed into the message buffer; drop this many bytes.
    Fragment(usize),
    /// A message; drop this many bytes once done with it.
    Message(WsMessage<'a>, usize),
}

/// Decodes server frames; holds the buffer fragmented messages are assembled in.
pub struct FrameDecoder {
    max_message: usize,
    assembling: Option<u8>,
    message: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder refusing messages over `max_message` bytes (the buffer is reserved now).
    pub fn new(max_message: usize) -> Self {
        Self { max_message, assembling: None, message: Vec::with_capacity(max_message) }
    }

    /// Decodes the frame at the front of `buf`.
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        let Some(head) = FrameHead::parse(buf)? else { return Ok(Decoded::NeedMore) };
        let payload_len = head.payload_len;
        let is_control = head.opcode >= 0x8;
        if is_control && (payload_len > 125 || !head.fin) {
            return Err(FrameError::BadControl);
        }
        let so_far = if head.opcode == opcode::CONTINUATION { self.message.len() as u64 } else { 0 };
        // Saturating: a 64-bit length near u64::MAX after earlier fragments must not wrap.
        let size = so_far.saturating_add(payload_len);
        if !is_control && size > self.max_message as u64 {
            return Err(FrameError::TooBig { size, max: self.max_message });
        }
        let total = head.header_len + payload_len as usize;
        if buf.len() < total {
            return Ok(Decoded::NeedMore);
        }
        let payload = &buf[head.header_len..total];
        match (head.opcode, self.assembling) {
            (opcode::PING, _) => Ok(Decoded::Message(WsMessage::Ping(payload), total)),
            (opcode::PONG, _) => Ok(Decoded::Message(WsMessage::Pong(payload), total)),
            (opcode::CLOSE, _) => Ok(Decoded::Message(parse_close(payload)?, total)),
            (opcode::CONTINUATION, None) => Err(FrameError::UnexpectedContinuation),
            (opcode::TEXT | opcode::BINARY, Some(_)) => Err(FrameError::ExpectedContinuation),
            (op, None) if head.fin => Ok(Decoded::Message(data_message(op, payload)?, total)),
            (op, None) => {
                self.message.clear();
                self.message.extend_from_slice(payload);
                self.assembling = Some(op);
                Ok(Decoded::Fragment(total))
            }
            (opcode::CONTINUATION, Some(op)) => {
                self.message.extend_from_slice(payload);
                if !head.fin {
                    return Ok(Decoded::Fragment(total));
                }
                self.assembling = None;
                Ok(Decoded::Message(data_message(op, &self.message)?, total))
            }
            (op, _) => Err(FrameError::BadOpcode(op)),
        }
    }
}

fn data_message(op: u8, payload: &[u8]) -> Result<WsMessage<'_>, FrameError> {
    if op == opcode::TEXT {
        simdutf8::basic::from_utf8(payload).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(WsMessage::Text(payload))
    } else {
        Ok(WsMessage::Binary(payload))
    }
}

fn parse_close(payload: &[u8]) -> Result<WsMessage<'_>, FrameError> {
    match payload {
        [] => Ok(WsMessage::Close(None, b"")),
        [_] => Err(FrameError::BadClose),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid || simdutf8::basic::from_utf8(reason).is_err() {
                return Err(FrameError::BadClose);
            }
            Ok(WsMessage::Close(Some(code), reason))
        }
    }
}

struct FrameHead {
    fin: bool,
    opcode: u8,
    payload_len: u64,
    header_len: usize,
}

impl FrameHead {
    fn parse(buf: &[u8]) -> Result<Option<Self>, FrameError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        if b0 & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let op = b0 & 0x0F;
        if !matches!(op, 0x0..=0x2 | 0x8..=0xA) {
            return Err(FrameError::BadOpcode(op));
        }
        if b1 & 0x80 != 0 {
            return Err(FrameError::Masked);
        }
        let (payload_len, header_len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    (u64::from_be_bytes(be), 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        Ok(Some(Self { fin: b0 & 0x80 != 0, opcode: op, payload_len, header_len }))
    }
}

/// Largest header of a masked client frame.
pub const MAX_CLIENT_HEADER: usize = 14;

/// Writes a masked client frame into `out`; returns the bytes written, or `None` when `out`
/// is too small. No allocation.
pub fn encode_client_frame(out: &mut [u8], op: u8, payload: &[u8], mask: [u8; 4]) -> Option<usize> {
    let len = payload.len();
    let mut at = 2;
    let first = [0x80 | (op & 0x0F), 0];
    out.get_mut(..2)?.copy_from_slice(&first);
    if len < 126 {
        out[1] = 0x80 | len as u8;
    } else if len <= usize::from(u16::MAX) {
        out[1] = 0x80 | 126;
        out.get_mut(2..4)?.copy_from_slice(&(len as u16).to_be_bytes());
        at = 4;
    } else {
        out[1] = 0x80 | 127;
        out.get_mut(2..10)?.copy_from_slice(&(len as u64).to_be_bytes());
        at = 10;
    }
    out.get_mut(at..at + 4)?.copy_from_slice(&mask);
    at += 4;
    let body = out.get_mut(at..at + len)?;
    for (i, (dst, src)) in body.iter_mut().zip(payload).enumerate() {
        *dst = src ^ mask[i & 3];
    }
    Some(at + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= 65_535 => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn unfragmented_text_is_borrowed_from_the_buffer() {
        let bytes = server_frame(true, opcode::TEXT, b"{\"a\":1}");
        let mut d = FrameDecoder::new(1024);
        assert_eq!(d.decode(&bytes[..3]).unwrap(), Decoded::NeedMore);
        let Decoded::Message(WsMessage::Text(t), used) = d.decode(&bytes).unwrap() else { panic!() };
        assert_eq!((t, used), (&b"{\"a\":1}"[..], bytes.len()));
        assert_eq!(t.as_ptr(), bytes[2..].as_ptr(), "no copy");
    }

    #[test]
    fn fragments_with_a_ping_between_reassemble() {
        let mut stream = server_frame(false, opcode::TEXT, b"hel");
        stream.extend(server_frame(true, opcode::PING, b"p"));
        stream.extend(server_frame(false, opcode::CONTINUATION, b"lo "));
        stream.extend(server_frame(true, opcode::CONTINUATION, b"world"));
        let mut d = FrameDecoder::new(1024);
        let mut at = 0;
        let mut got = Vec::new();
        while at < stream.len() {
            match d.decode(&stream[at..]).unwrap() {
                Decoded::NeedMore => panic!("complete stream"),
                Decoded::Fragment(n) => at += n,
                Decoded::Message(m, n) => {
                    got.push(format!("{m:?}"));
                    at += n;
                }
            }
        }
        assert_eq!(
            got,
            vec![format!("{:?}", WsMessage::Ping(b"p")), format!("{:?}", WsMessage::Text(b"hello world"))]
        );
    }

    #[test]
    fn protocol_violations_carry_their_close_codes() {
        struct Case {
            name: &'static str,
            bytes: Vec<u8>,
            want: FrameError,
        }
        let mut masked = server_frame(true, opcode::TEXT, b"x");
        masked[1] |= 0x80;
        let mut rsv = server_frame(true, opcode::TEXT, b"x");
        rsv[0] |= 0x20;
        let cases = [
            Case { name: "masked", bytes: masked, want: FrameError::Masked },
            Case { name: "rsv", bytes: rsv, want: FrameError::ReservedBits },
            Case { name: "opcode", bytes: server_frame(true, 0x3, b""), want: FrameError::BadOpcode(3) },
            Case {
                name: "long ping",
                bytes: server_frame(true, opcode::PING, &[0; 126]),
                want: FrameError::BadControl,
            },
            Case {
                name: "fragmented ping",
                bytes: server_frame(false, opcode::PING, b""),
                want: FrameError::BadControl,
            },
            Case {
                name: "lone continuation",
                bytes: server_frame(true, opcode::CONTINUATION, b"x"),
                want: FrameError::UnexpectedContinuation,
            },
            Case {
                name: "too big",
                bytes: server_frame(true, opcode::TEXT, &[b'a'; 65]),
                want: FrameError::TooBig { size: 65, max: 64 },
            },
            Case {
                name: "bad utf8",
                bytes: server_frame(true, opcode::TEXT, &[0xff, 0xfe]),
                want: FrameError::InvalidUtf8,
            },
            Case {
                name: "one-byte close",
                bytes: server_frame(true, opcode::CLOSE, &[3]),
                want: FrameError::BadClose,
            },
            Case {
                name: "close 1005",
                bytes: server_frame(true, opcode::CLOSE, &1005u16.to_be_bytes()),
                want: FrameError::BadClose,
            },
        ];
        for case in cases {
            assert_eq!(
                FrameDecoder::new(64).decode(&case.bytes).err(),
                Some(case.want),
                "case {}",
                case.name
            );
        }
        assert_eq!(FrameError::TooBig { size: 1, max: 0 }.close_code(), 1009);
        assert_eq!(FrameError::InvalidUtf8.close_code(), 1007);
        assert_eq!(FrameError::Masked.close_code(), 1002);
        let mut d = FrameDecoder::new(64);
        let start = server_frame(false, opcode::TEXT, b"a");
        assert!(matches!(d.decode(&start), Ok(Decoded::Fragment(_))));
        assert_eq!(
            d.decode(&server_frame(true, opcode::TEXT, b"b")).err(),
            Some(FrameError::ExpectedContinuation)
        );
        // Found by fuzzing: a continuation claiming a 64-bit length near u64::MAX after an
        // earlier fragment overflowed the size check.
        let mut d = FrameDecoder::new(64);
        assert!(matches!(d.decode(&start), Ok(Decoded::Fragment(_))));
        let mut huge = vec![0x00, 0x7F];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(d.decode(&huge).err(), Some(FrameError::TooBig { size: u64::MAX, max: 64 }));
    }

    #[test]
    fn client_frames_are_masked_and_sized() {
        let mut out = [0u8; 256];
        let n = encode_client_frame(&mut out, opcode::PONG, b"abc", [1, 2, 3, 4]).unwrap();
        assert_eq!(&out[..n], &[0x8A, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]);
        assert_eq!(encode_client_frame(&mut out, opcode::TEXT, &[0; 200], [0; 4]), Some(4 + 4 + 200));
        assert_eq!(encode_client_frame(&mut out[..10], opcode::TEXT, b"0123456789", [0; 4]), None);
    }
}
