//! The server side of RFC 6455: the upgrade answer and frame encoding/decoding.
//!
//! Written by hand (not a WebSocket library) because fault injection needs to send what a
//! library refuses to: fragments at chosen points, oversize frames, raw bytes.

pub use aegis_wire::websocket::{accept_key, close_code, opcode};

/// Appends an unmasked server frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, op: u8, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | (op & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a text message split into `fragments` frames (1 = unfragmented).
pub fn encode_text(out: &mut Vec<u8>, text: &[u8], fragments: usize) {
    let fragments = fragments.clamp(1, text.len().max(1));
    let chunk = text.len().div_ceil(fragments).max(1);
    let mut pieces = text.chunks(chunk).peekable();
    if pieces.peek().is_none() {
        encode_frame(out, true, opcode::TEXT, b"");
        return;
    }
    let mut first = true;
    while let Some(piece) = pieces.next() {
        let op = if first { opcode::TEXT } else { opcode::CONTINUATION };
        encode_frame(out, pieces.peek().is_none(), op, piece);
        first = false;
    }
}

/// Appends a close frame with `code` and a reason (truncated to fit a control frame).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode_frame(out, true, opcode::CLOSE, &payload);
}

/// A frame received from a client, unmasked.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFrame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

/// Why a client frame was refused, with the close code the RFC prescribes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Client frames must be masked (RFC 6455 §5.1).
    #[error("client frame not masked")]
    Unmasked,
    /// Reserved bits set without an extension.
    #[error("reserved bits set")]
    ReservedBits,
    /// Opcode not defined by the RFC.
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
    /// A control frame over 125 bytes or fragmented.
    #[error("invalid control frame")]
    BadControl,
    /// Payload larger than the server accepts from clients.
    #[error("client frame of {0} bytes exceeds the limit")]
    TooBig(u64),
}

impl FrameError {
    /// The close code for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooBig(_) => close_code::TOO_BIG,
            _ => close_code::PROTOCOL,
        }
    }
}

/// Tries to decode one client frame from the front of `buf`.
/// Returns the frame and the bytes it used, or `Ok(None)` when more bytes are needed.
pub fn decode_client_frame(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(ClientFrame, usize)>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    if buf[0] & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let op = buf[0] & 0x0F;
    if !matches!(op, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA) {
        return Err(FrameError::BadOpcode(op));
    }
    if buf[1] & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if op >= 0x8 && (len > 125 || !fin) {
        return Err(FrameError::BadControl);
    }
    if len > max_payload as u64 {
        return Err(FrameError::TooBig(len));
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    let payload = buf[at..at + len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
    Ok(Some((ClientFrame { fin, opcode: op, payload }, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        assert!(payload.len() < 126);
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn decodes_masked_frames_and_waits_for_more() {
        let bytes = masked(opcode::TEXT, true, b"{\"id\":1}");
        assert_eq!(decode_client_frame(&bytes[..5], 1024), Ok(None));
        let (frame, used) = decode_client_frame(&bytes, 1024).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame, ClientFrame { fin: true, opcode: opcode::TEXT, payload: b"{\"id\":1}".to_vec() });
    }

    #[test]
    fn refuses_protocol_violations() {
        let mut unmasked = Vec::new();
        encode_frame(&mut unmasked, true, opcode::TEXT, b"x");
        assert_eq!(decode_client_frame(&unmasked, 1024), Err(FrameError::Unmasked));
        assert_eq!(decode_client_frame(&masked(0x3, true, b""), 1024), Err(FrameError::BadOpcode(3)));
        assert_eq!(decode_client_frame(&masked(opcode::PING, false, b""), 1024), Err(FrameError::BadControl));
        let mut rsv = masked(opcode::TEXT, true, b"x");
        rsv[0] |= 0x40;
        assert_eq!(decode_client_frame(&rsv, 1024), Err(FrameError::ReservedBits));
        assert_eq!(
            decode_client_frame(&masked(opcode::TEXT, true, b"abcdef"), 4),
            Err(FrameError::TooBig(6))
        );
    }

    #[test]
    fn fragments_reassemble_to_the_message() {
        let mut out = Vec::new();
        encode_text(&mut out, b"hello world", 3);
        // Three frames: TEXT(!fin), CONT(!fin), CONT(fin).
        assert_eq!(out[0], opcode::TEXT);
        let mut at = 0;
        let mut text = Vec::new();
        let mut frames = 0;
        while at < out.len() {
            let len = usize::from(out[at + 1]);
            text.extend_from_slice(&out[at + 2..at + 2 + len]);
            frames += 1;
            let fin = out[at] & 0x80 != 0;
            at += 2 + len;
            assert_eq!(fin, at == out.len());
        }
        assert_eq!(frames, 3);
        assert_eq!(text, b"hello world");
    }

    #[test]
    fn lengths_use_the_right_encoding() {
        for (len, header) in [(125usize, 2usize), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            encode_frame(&mut out, true, opcode::TEXT, &vec![b'a'; len]);
            assert_eq!(out.len(), header + len, "len {len}");
        }
    }
}
