//! What the engine keeps on disk: the writer thread, the journals and experience log (with
//! restart recovery), and export to CSV and Parquet. Nothing here runs on the hot path: the
//! desk hands its events over a ring ([`crate::desk::events`]).
//!
//! - [`writer`]: the writer thread (bars and features CSV, desk events → ledger).
//! - [`ledger`]: journals and the experience log: open, recover, append.
//! - [`codec`]: journal records as JSON and back.
//! - [`export`]: trades, experiences and samples as CSV and Parquet.

pub mod codec;
#[cfg(feature = "export")]
pub mod export;
pub mod ledger;
pub mod writer;

/// Writes `text` to `path` whole: into a sibling `<name>.tmp`, then renamed over `path`, so
/// a reader (or a crash) never sees half a file.
pub fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
