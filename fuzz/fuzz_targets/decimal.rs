//! The decimal parser never panics, and what it accepts formats back to the same value.
#![no_main]
use aegis_wire::decimal::{format_fixed8, parse_fixed8, parse_fixed8_i128, Sign};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let narrow = parse_fixed8(data, Sign::Allowed);
    let wide = parse_fixed8_i128(data, Sign::Allowed);
    if let Ok(v) = narrow {
        assert_eq!(wide, Ok(i128::from(v)));
        let mut s = String::new();
        format_fixed8(i128::from(v), 8, &mut s);
        assert_eq!(parse_fixed8(s.as_bytes(), Sign::Allowed), Ok(v));
    }
});
