//! Exact decimal strings ⇄ fixed-point integers with 8 fractional digits.
//!
//! Binance sends prices and quantities as decimal strings. They become `i64` (single prices
//! and quantities) or `i128` (sums and products) scaled by 10^8, digit by digit: no float
//! round-trip, no allocation. Digits past the 8th are accepted only when they are zeros, so
//! the conversion is always exact.

use thiserror::Error;

/// Fractional digits kept by every fixed-point value.
pub const SCALE_DIGITS: u32 = 8;
/// 10^8: the fixed-point value of 1.
pub const SCALE: i64 = 100_000_000;

/// Whether a leading `-` (or `+`) is acceptable for the field being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// Prices, quantities: a sign is an error.
    Forbidden,
    /// Funding rates, price changes: a leading `-` or `+` is accepted.
    Allowed,
}

/// Why a decimal string was refused; offsets are byte offsets into the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecimalError {
    /// The input had no digits at all.
    #[error("empty decimal")]
    Empty,
    /// A non-zero digit appeared after the 8th fractional digit.
    #[error("more than 8 significant fractional digits (at byte {offset})")]
    TooManyFractionalDigits {
        /// Offset of the first digit that cannot be represented.
        offset: usize,
    },
    /// The value does not fit the target integer.
    #[error("decimal out of range for a fixed-point {bits}-bit integer")]
    Overflow {
        /// Width of the target integer.
        bits: u32,
    },
    /// Scientific notation (`1e5`) is not accepted.
    #[error("exponent notation not accepted (at byte {offset})")]
    Exponent {
        /// Offset of the `e`/`E`.
        offset: usize,
    },
    /// A byte that cannot appear in a decimal.
    #[error("unexpected byte {byte:#04x} at byte {offset}")]
    StrayCharacter {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// A sign where the field forbids one.
    #[error("sign not allowed here (at byte {offset})")]
    SignNotAllowed {
        /// Offset of the sign.
        offset: usize,
    },
}

/// Parses `input` into an `i64` scaled by 10^8.
pub fn parse_fixed8(input: &[u8], sign: Sign) -> Result<i64, DecimalError> {
    let (negative, magnitude) = parse_magnitude::<u64>(input, sign)?;
    let overflow = DecimalError::Overflow { bits: 64 };
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX's.
        if magnitude > i64::MAX as u64 + 1 {
            return Err(overflow);
        }
        Ok((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).map_err(|_| overflow)
    }
}

/// Parses `input` into an `i128` scaled by 10^8 (for volumes and notionals).
pub fn parse_fixed8_i128(input: &[u8], sign: Sign) -> Result<i128, DecimalError> {
    let (negative, magnitude) = parse_magnitude::<u128>(input, sign)?;
    let value = i128::try_from(magnitude).map_err(|_| DecimalError::Overflow { bits: 128 })?;
    Ok(if negative { -value } else { value })
}

/// The unsigned accumulator a parse runs in: `u64` for prices, `u128` for sums.
trait Accumulator: Copy {
    const BITS: u32;
    const ZERO: Self;
    fn push_digit(self, digit: u8) -> Option<Self>;
    fn scale_by_pow10(self, exponent: u32) -> Option<Self>;
}

impl Accumulator for u64 {
    const BITS: u32 = 64;
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u64::from(digit))
    }
    fn scale_by_pow10(self, exponent: u32) -> Option<Self> {
        self.checked_mul(10u64.pow(exponent))
    }
}

impl Accumulator for u128 {
    const BITS: u32 = 128;
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u128::from(digit))
    }
    fn scale_by_pow10(self, exponent: u32) -> Option<Self> {
        self.checked_mul(10u128.pow(exponent))
    }
}

/// Sign and magnitude (scaled by 10^8) of a decimal string.
fn parse_magnitude<T: Accumulator>(input: &[u8], sign: Sign) -> Result<(bool, T), DecimalError> {
    let (negative, digits_start) = match input.first() {
        Some(b'-') | Some(b'+') if sign == Sign::Forbidden => {
            return Err(DecimalError::SignNotAllowed { offset: 0 })
        }
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let overflow = DecimalError::Overflow { bits: T::BITS };
    let mut magnitude = T::ZERO;
    let mut int_digits = 0usize;
    let mut frac_digits = 0u32;
    let mut seen_point = false;
    for (offset, &byte) in input.iter().enumerate().skip(digits_start) {
        match byte {
            b'0'..=b'9' => {
                if seen_point {
                    if frac_digits == SCALE_DIGITS {
                        if byte != b'0' {
                            return Err(DecimalError::TooManyFractionalDigits { offset });
                        }
                        continue;
                    }
                    frac_digits += 1;
                } else {
                    int_digits += 1;
                }
                magnitude = magnitude.push_digit(byte - b'0').ok_or(overflow)?;
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => return Err(DecimalError::Exponent { offset }),
            b'-' | b'+' if sign == Sign::Forbidden => return Err(DecimalError::SignNotAllowed { offset }),
            _ => return Err(DecimalError::StrayCharacter { byte, offset }),
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        // "", "-", "." and "-." carry no digits.
        return Err(DecimalError::Empty);
    }
    let scaled = magnitude.scale_by_pow10(SCALE_DIGITS - frac_digits).ok_or(overflow)?;
    Ok((negative, scaled))
}

/// Writes `value` (scaled by 10^8) with exactly `decimals` fractional digits, truncating
/// digits beyond `decimals` (callers pass a precision the value already respects).
pub fn format_fixed8(value: i128, decimals: u32, out: &mut String) {
    use std::fmt::Write;
    let decimals = decimals.min(SCALE_DIGITS);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let whole = magnitude / SCALE as u128;
    let frac = magnitude % SCALE as u128;
    // Writing to a String cannot fail.
    let _ = write!(out, "{sign}{whole}");
    if decimals > 0 {
        let frac = frac / 10_u128.pow(SCALE_DIGITS - decimals);
        let _ = write!(out, ".{frac:0width$}", width = decimals as usize);
    }
}

/// Converts a fixed-point value to `f64` (for features and statistics only).
pub fn to_f64(value: i128) -> f64 {
    value as f64 / SCALE as f64
}

/// An exact price or quantity, in units of 10^-8: what an order carries out to the exchange
/// (written digit by digit, never through a float's formatting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed8(i64);

/// Which way a value off the grid moves onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// To the grid point at or below.
    Down,
    /// To the grid point at or above.
    Up,
}

/// How far (in grid steps) a float may sit from a grid point and still count as on it:
/// `f64` arithmetic leaves 0.3 / 0.1 at 2.9999999999999996 steps.
const ON_GRID: f64 = 1e-6;

impl Fixed8 {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// The value `raw` × 10^-8.
    pub const fn from_raw(raw: i64) -> Self {
        Self(raw)
    }

    /// Units of 10^-8.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// Parses a decimal string (no sign) exactly.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        parse_fixed8(text.as_bytes(), Sign::Forbidden).map(Self)
    }

    /// Parses a decimal string that may carry a sign (a position amount) exactly.
    pub fn parse_signed(text: &str) -> Result<Self, DecimalError> {
        parse_fixed8(text.as_bytes(), Sign::Allowed).map(Self)
    }

    /// The magnitude.
    pub fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// Whether the value is below zero (a short position).
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self - other`, at least zero (what is left of a quantity).
    pub fn minus(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0).max(0))
    }

    /// `self + other`.
    pub fn plus(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// `value` on the grid of `step` (a tick or a lot step, ≥ 10^-8): a float within a
    /// hair of a grid point is that point, any other moves by `rounding`. `None` for a
    /// value or step that is not finite and positive-ranged, or out of range.
    pub fn on_grid(value: f64, step: f64, rounding: Rounding) -> Option<Self> {
        let units = (step * SCALE as f64).round();
        if !(value.is_finite() && value >= 0.0 && units.is_finite() && units >= 1.0) {
            return None;
        }
        let steps = value * SCALE as f64 / units;
        let nearest = steps.round();
        let steps = if (steps - nearest).abs() <= ON_GRID {
            nearest
        } else {
            match rounding {
                Rounding::Down => steps.floor(),
                Rounding::Up => steps.ceil(),
            }
        };
        let raw = steps * units;
        (raw <= i64::MAX as f64 / 2.0).then_some(Self(raw as i64))
    }

    /// The 10^-8 nearest to `value`: exact for a float read from a decimal of at most 8
    /// places (below 9·10^7 in magnitude), as a journal's quantities and prices are.
    /// `None` when not finite or out of range.
    pub fn nearest(value: f64) -> Option<Self> {
        let raw = (value * SCALE as f64).round();
        (raw.is_finite() && raw.abs() <= i64::MAX as f64 / 2.0).then_some(Self(raw as i64))
    }

    /// The value as `f64` (for accounting, never for what is sent).
    pub fn to_f64(self) -> f64 {
        to_f64(i128::from(self.0))
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Fixed8 {
    /// Plain decimal, as Binance takes it: no exponent, no trailing zeros (`0.001`, `64000`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (whole, frac) = (magnitude / SCALE as u64, magnitude % SCALE as u64);
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let mut digits = SCALE_DIGITS as usize;
        let mut frac = frac;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{sign}{whole}.{frac:0digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_values_sit_on_the_grid_and_print_exactly() {
        let on = |v: f64, step: f64, r: Rounding| Fixed8::on_grid(v, step, r).map(|f| f.to_string());
        assert_eq!(on(0.3, 0.1, Rounding::Down).as_deref(), Some("0.3"), "float noise is not a step lost");
        assert_eq!(on(0.0129, 0.001, Rounding::Down).as_deref(), Some("0.012"));
        assert_eq!(on(0.0121, 0.001, Rounding::Up).as_deref(), Some("0.013"));
        assert_eq!(on(64_000.05, 0.1, Rounding::Down).as_deref(), Some("64000"));
        assert_eq!(on(64_000.05, 0.1, Rounding::Up).as_deref(), Some("64000.1"));
        assert_eq!(on(1.0e-8, 1.0e-8, Rounding::Down).as_deref(), Some("0.00000001"));
        assert_eq!(on(123_456.789, 1.0, Rounding::Up).as_deref(), Some("123457"));
        assert_eq!(on(f64::NAN, 0.1, Rounding::Down), None);
        assert_eq!(on(-1.0, 0.1, Rounding::Down), None);
        assert_eq!(on(1.0, 0.0, Rounding::Down), None, "no step");
        assert_eq!(on(1e12, 0.1, Rounding::Down), None, "out of range");
        assert_eq!(Fixed8::parse("0.00100000").unwrap().to_string(), "0.001");
        assert_eq!(Fixed8::nearest(64_000.1).unwrap().to_string(), "64000.1", "a float read from text");
        assert_eq!(Fixed8::nearest(-0.3).unwrap().to_string(), "-0.3");
        assert_eq!(Fixed8::nearest(f64::INFINITY), None);
        assert_eq!(Fixed8::from_raw(-150_000_000).to_string(), "-1.5");
        assert_eq!(Fixed8::ZERO.to_string(), "0");
    }

    proptest! {
        /// Every fixed value prints as a string that parses back to itself.
        #[test]
        fn fixed_values_round_trip_through_text(raw in 0i64..i64::MAX / 4) {
            let v = Fixed8::from_raw(raw);
            prop_assert_eq!(Fixed8::parse(&v.to_string()), Ok(v));
        }

        /// A value moved onto a grid is on it, within one step, on the side asked.
        #[test]
        fn on_grid_moves_the_way_asked(value in 0.0f64..1.0e6, step_exp in 0u32..8, up in any::<bool>()) {
            let step = 10f64.powi(-(step_exp as i32));
            let rounding = if up { Rounding::Up } else { Rounding::Down };
            let fixed = Fixed8::on_grid(value, step, rounding).unwrap();
            let units = 10i64.pow(SCALE_DIGITS - step_exp);
            prop_assert_eq!(fixed.raw() % units, 0);
            let moved = fixed.to_f64() - value;
            prop_assert!(moved.abs() <= step * (1.0 + 1e-6), "{} -> {}", value, fixed);
            let tolerance = step * ON_GRID * 2.0;
            match rounding {
                Rounding::Down => prop_assert!(moved <= tolerance, "{} -> {}", value, fixed),
                Rounding::Up => prop_assert!(moved >= -tolerance, "{} -> {}", value, fixed),
            }
        }
    }

    struct Case {
        name: &'static str,
        input: &'static str,
        sign: Sign,
        want: Result<i64, DecimalError>,
    }

    #[test]
    fn table() {
        use DecimalError::*;
        let cases = [
            Case { name: "integer", input: "42", sign: Sign::Forbidden, want: Ok(42 * SCALE) },
            Case { name: "price", input: "2681.62", sign: Sign::Forbidden, want: Ok(268_162_000_000) },
            Case { name: "eight digits", input: "0.00000001", sign: Sign::Forbidden, want: Ok(1) },
            Case {
                name: "trailing zeros past 8",
                input: "1.0000000000",
                sign: Sign::Forbidden,
                want: Ok(SCALE),
            },
            Case { name: "leading point", input: ".5", sign: Sign::Forbidden, want: Ok(SCALE / 2) },
            Case { name: "trailing point", input: "7.", sign: Sign::Forbidden, want: Ok(7 * SCALE) },
            Case { name: "negative rate", input: "-0.00038167", sign: Sign::Allowed, want: Ok(-38_167) },
            Case { name: "plus", input: "+1", sign: Sign::Allowed, want: Ok(SCALE) },
            Case { name: "max", input: "92233720368.54775807", sign: Sign::Forbidden, want: Ok(i64::MAX) },
            Case { name: "min", input: "-92233720368.54775808", sign: Sign::Allowed, want: Ok(i64::MIN) },
            Case { name: "empty", input: "", sign: Sign::Forbidden, want: Err(Empty) },
            Case { name: "lone point", input: ".", sign: Sign::Forbidden, want: Err(Empty) },
            Case { name: "lone minus", input: "-", sign: Sign::Allowed, want: Err(Empty) },
            Case {
                name: "nine digits",
                input: "0.000000001",
                sign: Sign::Forbidden,
                want: Err(TooManyFractionalDigits { offset: 10 }),
            },
            Case {
                name: "overflow",
                input: "92233720368.54775808",
                sign: Sign::Forbidden,
                want: Err(Overflow { bits: 64 }),
            },
            Case {
                name: "huge",
                input: "1000000000000000000000000000000000000000",
                sign: Sign::Forbidden,
                want: Err(Overflow { bits: 64 }),
            },
            Case { name: "exponent", input: "1e5", sign: Sign::Forbidden, want: Err(Exponent { offset: 1 }) },
            Case {
                name: "stray",
                input: "12a",
                sign: Sign::Forbidden,
                want: Err(StrayCharacter { byte: b'a', offset: 2 }),
            },
            Case {
                name: "two points",
                input: "1.2.3",
                sign: Sign::Forbidden,
                want: Err(StrayCharacter { byte: b'.', offset: 3 }),
            },
            Case {
                name: "space",
                input: " 1",
                sign: Sign::Forbidden,
                want: Err(StrayCharacter { byte: b' ', offset: 0 }),
            },
            Case {
                name: "sign forbidden",
                input: "-1",
                sign: Sign::Forbidden,
                want: Err(SignNotAllowed { offset: 0 }),
            },
            Case {
                name: "inner sign",
                input: "1-2",
                sign: Sign::Allowed,
                want: Err(StrayCharacter { byte: b'-', offset: 1 }),
            },
        ];
        for case in cases {
            assert_eq!(parse_fixed8(case.input.as_bytes(), case.sign), case.want, "case {}", case.name);
        }
    }

    #[test]
    fn wide_parse_overflows_at_128_bits() {
        let huge = "1".repeat(40);
        assert_eq!(
            parse_fixed8_i128(huge.as_bytes(), Sign::Forbidden),
            Err(DecimalError::Overflow { bits: 128 })
        );
    }

    #[test]
    fn wide_sums_exceed_i64() {
        let v = parse_fixed8_i128(b"123456789012345.12345678", Sign::Forbidden).unwrap();
        assert_eq!(v, 12_345_678_901_234_512_345_678);
        assert_eq!(
            parse_fixed8(b"123456789012345.1", Sign::Forbidden),
            Err(DecimalError::Overflow { bits: 64 })
        );
    }

    #[test]
    fn formats_with_precision() {
        let mut s = String::new();
        format_fixed8(268_162_000_000, 2, &mut s);
        assert_eq!(s, "2681.62");
        s.clear();
        format_fixed8(-38_167, 8, &mut s);
        assert_eq!(s, "-0.00038167");
        s.clear();
        format_fixed8(i128::from(5 * SCALE), 0, &mut s);
        assert_eq!(s, "5");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(v in any::<i64>()) {
            let mut s = String::new();
            format_fixed8(i128::from(v), 8, &mut s);
            prop_assert_eq!(parse_fixed8(s.as_bytes(), Sign::Allowed), Ok(v));
        }

        #[test]
        fn narrow_and_wide_agree_where_both_fit(bytes in "[-+]?[0-9]{0,10}(\\.[0-9]{0,10})?") {
            let narrow = parse_fixed8(bytes.as_bytes(), Sign::Allowed);
            let wide = parse_fixed8_i128(bytes.as_bytes(), Sign::Allowed);
            prop_assert_eq!(narrow.map(i128::from), wide);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_fixed8(&bytes, Sign::Allowed);
            let _ = parse_fixed8_i128(&bytes, Sign::Forbidden);
        }

        #[test]
        fn agrees_with_integer_arithmetic(whole in 0u64..92_233_720_367, frac in 0u32..100_000_000) {
            let s = format!("{whole}.{frac:08}");
            prop_assert_eq!(parse_fixed8(s.as_bytes(), Sign::Forbidden), Ok(whole as i64 * SCALE + i64::from(frac)));
        }
    }
}
