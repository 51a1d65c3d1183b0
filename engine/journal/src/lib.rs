//! Append-only journal files (SPEC §8): each record is framed as
//! `[length: u32 LE][crc32c(payload): u32 LE][payload]`, so a reader can tell a complete
//! record from a torn one after a crash.
//!
//! - [`frame`]: encoding and the checked reader, which stops at the first frame that is
//!   short, oversized or fails its checksum and says why and where.
//! - [`file`]: one journal file: opened with recovery (a torn tail is truncated and
//!   reported, never misread), appended to under an fsync policy.
//! - [`lock`]: one writer per data directory (an exclusive `flock` naming its pid).
//!
//! Payloads are opaque bytes here; the engine writes one JSON object per record.

pub mod file;
pub mod frame;
pub mod lock;

pub use file::{FsyncPolicy, JournalFile, Recovery};
pub use frame::{FrameReader, Torn, MAX_RECORD};
pub use lock::{DataDirLock, LockError};

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused (the path says which file).
    #[error("{path}: {source}")]
    Io {
        /// The journal file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A record larger than [`MAX_RECORD`] was offered.
    #[error("record of {len} bytes exceeds the {MAX_RECORD}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
}
