//! The simulator's client-frame decoder never panics and never claims more bytes than given.
#![no_main]
use exchange_sim::ws::decode_client_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = decode_client_frame(data, 1 << 16) {
        assert!(used <= data.len());
        assert!(frame.payload.len() <= used);
    }
});
