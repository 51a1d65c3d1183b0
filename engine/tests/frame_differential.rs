//! Differential test: the same server byte stream, cut at random points, decoded by our
//! frame decoder and by tungstenite's client, yields the same messages in the same order.

mod common;

use aegis::feed::frame::{Decoded, FrameDecoder, WsMessage};
use common::shared_data;
use proptest::prelude::*;
use std::io::{Read, Write};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message;

/// A socket stand-in whose writes go to a Vec (used to let tungstenite encode frames).
#[derive(Default)]
struct Sink(Vec<u8>);

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads the given bytes in the given chunk sizes, then reports end of stream.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    cuts: Vec<usize>,
    next_cut: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.cuts.get(self.next_cut).copied().unwrap_or(usize::MAX).max(1);
        self.next_cut += 1;
        let n = want.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Chunked {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String, usize),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        ("[ -~é€]{0,300}", 1usize..4).prop_map(|(s, k)| Piece::Text(s, k)),
        proptest::collection::vec(any::<u8>(), 0..70_000).prop_map(Piece::Binary),
        proptest::collection::vec(any::<u8>(), 0..125).prop_map(Piece::Ping),
    ]
}

/// Encodes the pieces as a server would (tungstenite, server role), text split into k fragments.
fn server_bytes(pieces: &[Piece]) -> Vec<u8> {
    let mut ws = WebSocket::from_raw_socket(Sink::default(), Role::Server, None);
    for p in pieces {
        match p {
            Piece::Text(s, k) => {
                let bytes = s.as_bytes();
                let step = bytes.len().div_ceil(*k).max(1);
                let chunks: Vec<&[u8]> =
                    if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(step).collect() };
                for (i, c) in chunks.iter().enumerate() {
                    let op = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
                    let frame = Frame::message(c.to_vec(), op, i + 1 == chunks.len());
                    ws.write(Message::Frame(frame)).unwrap();
                }
            }
            Piece::Binary(b) => ws.write(Message::binary(b.clone())).unwrap(),
            Piece::Ping(b) => ws.write(Message::Ping(b.clone().into())).unwrap(),
        }
    }
    ws.flush().unwrap();
    ws.get_ref().0.clone()
}

fn ours(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    let mut cut = cuts.iter().cycle();
    while fed < bytes.len() || !buf.is_empty() {
        let step = (*cut.next().unwrap_or(&usize::MAX)).max(1).min(bytes.len() - fed);
        buf.extend_from_slice(&bytes[fed..fed + step]);
        fed += step;
        loop {
            match decoder.decode(&buf).expect("valid stream") {
                Decoded::NeedMore => break,
                Decoded::Fragment(n) => {
                    buf.drain(..n);
                }
                Decoded::Message(m, n) => {
                    out.push(match m {
                        WsMessage::Text(t) => format!("text {}", String::from_utf8_lossy(t)),
                        WsMessage::Binary(b) => format!("binary {:?}", b),
                        WsMessage::Ping(p) => format!("ping {:?}", p),
                        WsMessage::Pong(p) => format!("pong {:?}", p),
                        WsMessage::Close(c, r) => format!("close {c:?} {:?}", r),
                    });
                    buf.drain(..n);
                }
            }
        }
        if fed == bytes.len() && !buf.is_empty() {
            panic!("trailing bytes");
        }
    }
    out
}

fn theirs(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
    let reader = Chunked { data: bytes.to_vec(), at: 0, cuts: cuts.to_vec(), next_cut: 0 };
    let mut ws = WebSocket::from_raw_socket(reader, Role::Client, None);
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => out.push(format!("text {}", t.as_str())),
            Ok(Message::Binary(b)) => out.push(format!("binary {:?}", b.to_vec())),
            Ok(Message::Ping(p)) => out.push(format!("ping {:?}", p.to_vec())),
            Ok(Message::Pong(p)) => out.push(format!("pong {:?}", p.to_vec())),
            Ok(Message::Close(_)) | Ok(Message::Frame(_)) => {}
            Err(_) => return out, // end of the stream
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn same_messages_as_tungstenite_under_random_splits(
        pieces in proptest::collection::vec(piece(), 1..12),
        cuts in proptest::collection::vec(1usize..700, 1..40),
    ) {
        let bytes = server_bytes(&pieces);
        let mine = ours(&bytes, &cuts);
        let reference = theirs(&bytes, &cuts);
        prop_assert_eq!(mine.len(), pieces.len());
        prop_assert_eq!(mine, reference);
    }
}

#[test]
fn a_recorded_capture_framed_by_tungstenite_decodes_identically() {
    let file = shared_data().join("ws/cryptofeed_usdm_20210722.ws.txt");
    let text = std::fs::read_to_string(file).unwrap();
    let pieces: Vec<Piece> = text
        .lines()
        .filter_map(|l| l.find("{\"stream\"").map(|i| Piece::Text(l[i..].to_string(), 1)))
        .collect();
    let bytes = server_bytes(&pieces);
    let cuts = [1, 7, 300, 4096, 13];
    let mine = ours(&bytes, &cuts);
    assert_eq!(mine.len(), pieces.len());
    assert_eq!(mine, theirs(&bytes, &cuts));
}
