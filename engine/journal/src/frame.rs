//! Record framing: `[length u32 LE][crc32c u32 LE][payload]`.

/// Bytes before each payload.
pub const HEADER: usize = 8;
/// Largest payload accepted (a length beyond it can only be damage).
pub const MAX_RECORD: usize = 16 << 20;

/// Appends one framed record to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Why reading stopped before the end of the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    /// Fewer than 8 bytes left: a header cut short.
    ShortHeader,
    /// The header announces more bytes than remain.
    ShortPayload {
        /// Announced payload length.
        len: u32,
    },
    /// The announced length is beyond [`MAX_RECORD`].
    Oversized {
        /// Announced payload length.
        len: u32,
    },
    /// The payload does not match its checksum.
    BadChecksum,
}

impl std::fmt::Display for Torn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Torn::ShortHeader => write!(f, "header cut short"),
            Torn::ShortPayload { len } => write!(f, "payload of {len} bytes cut short"),
            Torn::Oversized { len } => write!(f, "length {len} beyond the {MAX_RECORD}-byte limit"),
            Torn::BadChecksum => write!(f, "checksum mismatch"),
        }
    }
}

/// Reads framed records from a byte slice, front to back.
pub struct FrameReader<'a> {
    bytes: &'a [u8],
    offset: usize,
    torn: Option<Torn>,
}

impl<'a> FrameReader<'a> {
    /// A reader over a whole journal file's bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0, torn: None }
    }

    /// Where the next record starts: after iteration, the end of the last good record.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Why iteration stopped early, if it did.
    pub fn torn(&self) -> Option<Torn> {
        self.torn
    }

    fn check(&self) -> Result<&'a [u8], Torn> {
        let rest = &self.bytes[self.offset..];
        let header: &[u8; HEADER] = rest.first_chunk().ok_or(Torn::ShortHeader)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len as usize > MAX_RECORD {
            return Err(Torn::Oversized { len });
        }
        let payload = rest.get(HEADER..HEADER + len as usize).ok_or(Torn::ShortPayload { len })?;
        if crc32c::crc32c(payload) != crc {
            return Err(Torn::BadChecksum);
        }
        Ok(payload)
    }
}

impl<'a> Iterator for FrameReader<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.torn.is_some() || self.offset == self.bytes.len() {
            return None;
        }
        match self.check() {
            Ok(payload) => {
                self.offset += HEADER + payload.len();
                Some(payload)
            }
            Err(torn) => {
                self.torn = Some(torn);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    #[test]
    fn every_way_of_tearing_is_named() {
        let bytes = framed(&[b"one", b"two"]);
        let whole: Vec<&[u8]> = FrameReader::new(&bytes).collect();
        assert_eq!(whole, vec![&b"one"[..], &b"two"[..]]);
        for (cut, want) in [(bytes.len() - 1, Torn::ShortPayload { len: 3 }), (11 + 4, Torn::ShortHeader)] {
            let mut r = FrameReader::new(&bytes[..cut]);
            assert_eq!(r.by_ref().count(), 1);
            assert_eq!((r.torn(), r.offset()), (Some(want), 11));
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut r = FrameReader::new(&flipped);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.torn(), Some(Torn::BadChecksum));
        let mut huge = bytes.clone();
        huge[11..15].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = FrameReader::new(&huge);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.torn(), Some(Torn::Oversized { len: u32::MAX }));
    }

    proptest! {
        #[test]
        fn any_prefix_reads_back_a_prefix_of_the_records(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
            cut in any::<proptest::sample::Index>(),
        ) {
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let bytes = framed(&refs);
            let cut = cut.index(bytes.len() + 1);
            let mut reader = FrameReader::new(&bytes[..cut]);
            let read: Vec<&[u8]> = reader.by_ref().collect();
            prop_assert_eq!(&read[..], &refs[..read.len()]);
            // Everything whole before the cut is read; a stop before the end is reported.
            let whole = refs.iter().scan(0, |at, r| { *at += HEADER + r.len(); Some(*at) }).filter(|&end| end <= cut).count();
            prop_assert_eq!(read.len(), whole);
            prop_assert_eq!(reader.torn().is_some(), reader.offset() != cut);
        }
    }
}
