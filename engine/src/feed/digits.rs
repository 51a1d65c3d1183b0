//! Runs of ASCII digits, read sixteen bytes at a time.
//!
//! One 16-byte window covers every number in Binance's payloads (13-digit timestamps,
//! 10-digit ids, prices): the run's length comes from one compare and its value from a few
//! multiply-adds, with no loop and one branch. With SSSE3 (the workspace builds for
//! x86-64-v2, see `.cargo/config.toml`) the window is processed as one vector; elsewhere a
//! portable SWAR version does the same on two words. Both are always compiled and tested
//! against each other.

/// `'0'` in each byte of a word.
pub const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// Powers of ten that scale a fraction of `n` digits to eight.
const FRACTION_SCALE: [u64; 9] = [100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

/// Up to sixteen bytes from the front of `bytes`, little-endian; missing bytes read as 0x00.
#[inline(always)]
pub fn load_window(bytes: &[u8]) -> u128 {
    if let Some(head) = bytes.first_chunk::<16>() {
        return u128::from_le_bytes(*head);
    }
    let mut buf = [0u8; 16];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u128::from_le_bytes(buf)
}

/// The count (0–16) of ASCII digits leading `window` (little-endian bytes) and, for counts
/// below 16, their value.
#[inline(always)]
pub fn leading(window: u128) -> (u64, usize) {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        simd::leading(window)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        swar::leading(window)
    }
}

/// The unsigned integer at the front of `bytes` and its length in digits (1–20).
#[inline(always)]
pub fn uint(bytes: &[u8]) -> Option<(u64, usize)> {
    match leading(load_window(bytes)) {
        (_, 0) => None,
        (_, 16) => long_uint(bytes),
        found => Some(found),
    }
}

/// A fraction of 1–8 digits at the front of `bytes`, scaled to eight digits, and its
/// length; `None` for no digit or more than eight.
#[inline(always)]
pub fn fraction8(bytes: &[u8]) -> Option<(u64, usize)> {
    let (value, run) = leading(load_window(bytes));
    if run == 0 || run > 8 {
        return None;
    }
    Some((value * FRACTION_SCALE[run], run))
}

/// A decimal `digits[.digits]` leading `window`, with ≤ 8 digits on each side and room
/// left in the window after it, scaled by 10^8, and its length in bytes; `None` when it
/// does not fit (the caller then reads the parts one by one). One shuffle drops the point.
#[inline(always)]
pub fn short_decimal(window: u128) -> Option<(u64, usize)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        simd::short_decimal(window)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        let _ = window;
        None
    }
}

/// 16 to 20 digits, with overflow checks (ids this long do not occur in Binance's feeds).
#[cold]
fn long_uint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut len = 0;
    while let Some(&b) = bytes.get(len) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len <= 20).then_some((value, len))
}

/// Two 64-bit words at a time. Compiled on every target: where the vector version is used,
/// the tests still compare the two.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "ssse3"), allow(dead_code))]
mod swar {
    use super::ASCII_ZEROS;

    /// See [`super::leading`].
    #[inline(always)]
    pub fn leading(window: u128) -> (u64, usize) {
        let low_run = digit_run(window as u64);
        let run = if low_run < 8 { low_run } else { 8 + digit_run((window >> 64) as u64) };
        if run == 0 || run == 16 {
            return (0, run);
        }
        // Shift the run to the top so the missing leading digits read as zeros. Bytes past
        // the run may borrow in the subtraction, but only upwards, into bytes shifted out.
        let digits = window.wrapping_sub(u128::from(ASCII_ZEROS) * ((1 << 64) + 1)) << (8 * (16 - run));
        (digit_values(digits as u64) * 100_000_000 + digit_values((digits >> 64) as u64), run)
    }

    /// How many of the word's bytes, from the first, are ASCII digits.
    #[inline(always)]
    fn digit_run(word: u64) -> usize {
        // A byte is a digit when its high nibble is 3 and adding 6 does not carry into it.
        let not_digit = (word & 0xF0F0_F0F0_F0F0_F0F0 ^ 0x3030_3030_3030_3030)
            | ((word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030);
        (not_digit.trailing_zeros() / 8) as usize
    }

    /// The value of eight digit values 0–9 packed little-endian (first digit in the low byte).
    #[inline(always)]
    fn digit_values(w: u64) -> u64 {
        let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00FF_00FF_00FF_00FF;
        let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_FFFF_0000_FFFF;
        (w.wrapping_mul(10_000) + (w >> 32)) & 0xFFFF_FFFF
    }
}

/// One SSSE3 vector.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
mod simd {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cvtsi128_si64,
        _mm_madd_epi16, _mm_maddubs_epi16, _mm_movemask_epi8, _mm_or_si128, _mm_packs_epi32, _mm_set1_epi16,
        _mm_set1_epi32, _mm_set1_epi8, _mm_set_epi64x, _mm_setr_epi8, _mm_setzero_si128, _mm_shuffle_epi8,
        _mm_sub_epi8, _mm_subs_epu8,
    };

    /// The window's bytes minus `'0'`, and a bit per lane that holds a digit.
    #[inline(always)]
    fn digit_lanes(window: u128) -> (__m128i, u32) {
        // SAFETY: this module is compiled only when the build enables SSSE3 (its
        // cfg(target_feature)), the only requirement of these intrinsics; none touches memory.
        unsafe {
            let bytes = _mm_set_epi64x((window >> 64) as i64, window as i64);
            let values = _mm_sub_epi8(bytes, _mm_set1_epi8(b'0' as i8));
            // Unsigned: a digit's value minus 9 saturates to zero, anything else does not.
            let over_nine = _mm_subs_epu8(values, _mm_set1_epi8(9));
            (values, _mm_movemask_epi8(_mm_cmpeq_epi8(over_nine, _mm_setzero_si128())) as u32)
        }
    }

    /// Gathers digit values into 16 lanes by `index` (a lane with the high bit set reads as
    /// zero) and returns the 16-digit number they spell.
    #[inline(always)]
    fn gather16(values: __m128i, index: __m128i) -> u64 {
        // SAFETY: as in `digit_lanes`.
        let eights = unsafe {
            let aligned = _mm_shuffle_epi8(values, index);
            // Pairs (×10, ×1), then quads (×100, ×1), then eights (×10⁴, ×1).
            let pairs = _mm_maddubs_epi16(aligned, _mm_set1_epi16(0x010A));
            let quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
            let quads = _mm_packs_epi32(quads, quads);
            _mm_cvtsi128_si64(_mm_madd_epi16(quads, _mm_set1_epi32(0x0001_2710))) as u64
        };
        (eights & 0xFFFF_FFFF) * 100_000_000 + (eights >> 32)
    }

    /// Lane numbers 0–15.
    #[inline(always)]
    fn iota() -> __m128i {
        // SAFETY: as in `digit_lanes`.
        unsafe { _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) }
    }

    /// See [`super::short_decimal`].
    #[inline(always)]
    pub fn short_decimal(window: u128) -> Option<(u64, usize)> {
        let (values, digits) = digit_lanes(window);
        let int_len = (!digits).trailing_zeros() as usize;
        if int_len == 0 || int_len > 8 {
            return None;
        }
        let frac_len = if (window >> (8 * int_len)) as u8 == b'.' {
            let frac_len = (!(digits >> (int_len + 1))).trailing_zeros() as usize;
            if frac_len == 0 || frac_len > 8 || int_len + 1 + frac_len >= 16 {
                return None;
            }
            frac_len
        } else {
            0
        };
        // Lanes 0–7: the integer part right-aligned; lanes 8–15: the fraction left-aligned
        // (skipping the point); everything else zero — so the 16 digits read int × 10^8 + frac.
        // SAFETY: as in `digit_lanes`.
        let index = unsafe {
            let low = _mm_add_epi8(iota(), _mm_set1_epi8(int_len as i8 - 8));
            let high = _mm_add_epi8(iota(), _mm_set1_epi8(int_len as i8 - 7));
            let halves = _mm_set_epi64x(-1, 0);
            let index = _mm_or_si128(_mm_and_si128(halves, high), _mm_and_si128(_mm_set_epi64x(0, -1), low));
            _mm_or_si128(index, _mm_cmpgt_epi8(iota(), _mm_set1_epi8(7 + frac_len as i8)))
        };
        let len = if frac_len == 0 { int_len } else { int_len + 1 + frac_len };
        Some((gather16(values, index), len))
    }

    /// See [`super::leading`].
    #[inline(always)]
    pub fn leading(window: u128) -> (u64, usize) {
        let (values, digits) = digit_lanes(window);
        let run = (!digits).trailing_zeros() as usize;
        if run == 16 {
            return (0, 16);
        }
        // Right-align the run: lane i takes lane i - (16 - run); a negative index has its
        // high bit set, which makes the shuffle write zero — the missing leading digits.
        // SAFETY: as in `digit_lanes`.
        let index = unsafe { _mm_add_epi8(iota(), _mm_set1_epi8(run as i8 - 16)) };
        (gather16(values, index), run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window(text: &[u8]) -> u128 {
        load_window(text)
    }

    proptest! {
        #[test]
        fn the_window_reads_the_leading_run(digits in "[0-9]{0,18}", tail in "[^0-9]{0,4}") {
            let text = format!("{digits}{tail}");
            let (value, run) = leading(window(text.as_bytes()));
            let want_run = digits.len().min(16);
            prop_assert_eq!(run, want_run);
            if (1..16).contains(&run) {
                prop_assert_eq!(value, digits.parse::<u64>().unwrap());
            }
            prop_assert_eq!(swar::leading(window(text.as_bytes())), (value, run));
        }

        #[test]
        fn any_bytes_give_the_same_answer_both_ways(bytes in proptest::array::uniform16(any::<u8>())) {
            let w = u128::from_le_bytes(bytes);
            prop_assert_eq!(leading(w), swar::leading(w));
        }

        #[test]
        fn integers_of_every_length(n in any::<u64>(), tail in "[,}a-z\"]{0,3}") {
            let text = format!("{n}{tail}");
            prop_assert_eq!(uint(text.as_bytes()), Some((n, n.to_string().len())));
        }

        #[test]
        fn short_decimals_are_exact_or_refused(int in "[0-9]{0,10}", frac in "(\\.[0-9]{0,9})?", tail in "[\"x.]{0,2}") {
            let text = format!("{int}{frac}{tail}");
            if let Some((value, len)) = short_decimal(window(text.as_bytes())) {
                let exact = aegis_wire::decimal::parse_fixed8(&text.as_bytes()[..len], aegis_wire::decimal::Sign::Forbidden);
                prop_assert_eq!(Ok(value as i64), exact);
                prop_assert_eq!(len, int.len() + frac.len());
            } else if cfg!(all(target_arch = "x86_64", target_feature = "ssse3")) {
                // Refused only when it does not fit the window or a point has no digit after it.
                let bare_point = frac.len() == 1 || (frac.is_empty() && tail.starts_with('.'));
                prop_assert!(int.is_empty() || int.len() > 8 || bare_point || frac.len() > 9 || int.len() + frac.len() >= 16);
            }
        }

        #[test]
        fn fractions_scale_to_eight_digits(digits in "[0-9]{1,8}", tail in "[\"x]{0,2}") {
            let text = format!("{digits}{tail}");
            let want = format!("{digits:0<8}").parse::<u64>().unwrap();
            prop_assert_eq!(fraction8(text.as_bytes()), Some((want, digits.len())));
        }
    }

    #[test]
    fn edges() {
        assert_eq!(uint(b""), None);
        assert_eq!(uint(b"x1"), None);
        assert_eq!(uint(b"18446744073709551615"), Some((u64::MAX, 20)));
        assert_eq!(uint(b"18446744073709551616"), None, "overflow");
        assert_eq!(uint(b"123456789012345678901"), None, "21 digits");
        assert_eq!(fraction8(b"123456789"), None);
        assert_eq!(fraction8(b"."), None);
        // Bytes just outside the digit range on either side.
        assert_eq!(leading(window(b"/:")), (0, 0));
        assert_eq!(leading(window(b"9/")), (9, 1));
    }
}
