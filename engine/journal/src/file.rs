//! One journal file: recovery on open, appends under an fsync policy.

use crate::frame::{encode, FrameReader, Torn, MAX_RECORD};
use crate::JournalError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When appended records are forced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every record.
    Always,
    /// At most once per interval (and when the file is synced or dropped).
    Interval(Duration),
    /// Never explicitly (the OS decides; a crash of the machine may lose the tail).
    Never,
}

/// What opening a journal file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Whole records kept.
    pub records: u64,
    /// Bytes of whole records kept.
    pub kept_bytes: u64,
    /// Bytes cut off the end (a torn last record, or damage and everything after it).
    pub truncated_bytes: u64,
    /// Why the cut was made.
    pub torn: Option<Torn>,
}

/// An append-only journal file.
pub struct JournalFile {
    path: PathBuf,
    file: File,
    policy: FsyncPolicy,
    last_sync: Instant,
    dirty: bool,
    frame: Vec<u8>,
}

impl JournalFile {
    /// Opens (creating) `path`, reads it through, truncates a torn tail and reports it;
    /// `each` sees every whole record's payload in order (to restore state).
    pub fn open(
        path: &Path,
        policy: FsyncPolicy,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(Self, Recovery), JournalError> {
        let io = |source| JournalError::Io { path: path.display().to_string(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut reader = FrameReader::new(&bytes);
        let mut records = 0;
        for payload in reader.by_ref() {
            each(payload);
            records += 1;
        }
        let kept = reader.offset() as u64;
        let recovery = Recovery {
            records,
            kept_bytes: kept,
            truncated_bytes: bytes.len() as u64 - kept,
            torn: reader.torn(),
        };
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        if recovery.truncated_bytes > 0 {
            file.set_len(kept).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let journal = Self {
            path: path.to_path_buf(),
            file,
            policy,
            last_sync: Instant::now(),
            dirty: false,
            frame: Vec::with_capacity(4096),
        };
        Ok((journal, recovery))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (one `write` of the whole frame), syncing as the policy says.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        if payload.len() > MAX_RECORD {
            return Err(JournalError::TooLarge { len: payload.len() });
        }
        self.frame.clear();
        encode(payload, &mut self.frame);
        self.file.write_all(&self.frame).map_err(|source| self.io(source))?;
        self.dirty = true;
        match self.policy {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(())
    }

    /// Forces appended records to disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.dirty {
            self.file.sync_data().map_err(|source| self.io(source))?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io { path: self.path.display().to_string(), source }
    }
}

impl Drop for JournalFile {
    fn drop(&mut self) {
        if self.policy != FsyncPolicy::Never {
            let _ = self.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(path: &Path) -> (Vec<Vec<u8>>, Recovery) {
        let mut seen = Vec::new();
        let (_, recovery) = JournalFile::open(path, FsyncPolicy::Always, |p| seen.push(p.to_vec())).unwrap();
        (seen, recovery)
    }

    #[test]
    fn a_torn_tail_is_truncated_and_reported_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal/trades.journal");
        {
            let (mut j, r) = JournalFile::open(&path, FsyncPolicy::Always, |_| {}).unwrap();
            assert_eq!(r, Recovery { records: 0, kept_bytes: 0, truncated_bytes: 0, torn: None });
            for i in 0..3u8 {
                j.append(&[i; 10]).unwrap();
            }
        }
        // A crash in the middle of the fourth write: its header and half its payload.
        let mut frame = Vec::new();
        encode(&[9; 10], &mut frame);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&frame[..13]).unwrap();
        drop(f);
        let (seen, r) = reopen(&path);
        assert_eq!(seen, vec![vec![0; 10], vec![1; 10], vec![2; 10]]);
        assert_eq!(
            (r.records, r.kept_bytes, r.truncated_bytes, r.torn),
            (3, 54, 13, Some(Torn::ShortPayload { len: 10 }))
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 54, "truncated on disk");
        {
            let (mut j, r) =
                JournalFile::open(&path, FsyncPolicy::Interval(Duration::from_secs(60)), |_| {}).unwrap();
            assert_eq!(r.truncated_bytes, 0, "a second open finds nothing to cut");
            j.append(b"after").unwrap();
        }
        let (seen, _) = reopen(&path);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[3], b"after");
    }

    #[test]
    fn damage_in_the_last_record_is_never_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signals.journal");
        {
            let (mut j, _) = JournalFile::open(&path, FsyncPolicy::Never, |_| {}).unwrap();
            j.append(b"{\"a\":1}").unwrap();
            j.append(b"{\"a\":2}").unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] = b'9';
        std::fs::write(&path, &bytes).unwrap();
        let (seen, r) = reopen(&path);
        assert_eq!(seen, vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(r.torn, Some(Torn::BadChecksum));
        let (mut j, _) = JournalFile::open(&path, FsyncPolicy::Never, |_| {}).unwrap();
        assert!(matches!(j.append(&vec![0; MAX_RECORD + 1]), Err(JournalError::TooLarge { .. })));
    }
}
