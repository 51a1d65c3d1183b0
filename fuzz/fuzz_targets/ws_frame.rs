//! The engine's frame decoder on arbitrary server bytes: messages or protocol errors with a
//! close code, never a panic, never more bytes consumed than given.
#![no_main]
use aegis::feed::frame::{Decoded, FrameDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::new(4096);
    let mut at = 0;
    while at < data.len() {
        match decoder.decode(&data[at..]) {
            Ok(Decoded::NeedMore) => break,
            Ok(Decoded::Fragment(n)) | Ok(Decoded::Message(_, n)) => {
                assert!(n > 0 && n <= data.len() - at);
                at += n;
            }
            Err(e) => {
                assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
                break;
            }
        }
    }
});
