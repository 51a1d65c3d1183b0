//! What the order channels read from the exchange: user-data events and WebSocket API
//! answers in the engine, WebSocket API requests in exchange-sim — read or refused with a
//! reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = aegis::execution::live::user_stream::parse_event(text);
    let _ = aegis::execution::live::ws_api::read_answer(text, "aegis-1", "order.place");
    if let Ok(serde_json::Value::Object(params)) = serde_json::from_str::<serde_json::Value>(text) {
        let head = exchange_sim::ws_api::as_rest("POST", "/fapi/v1/order", &params);
        let _ = head.param("symbol");
    }
});
