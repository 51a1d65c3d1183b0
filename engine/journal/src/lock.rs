//! One engine per data directory: an exclusive advisory lock (`flock`) on `DIR/aegis.lock`,
//! which holds the owner's pid for whoever is refused. The kernel drops the lock when its
//! process dies, so a restart after `kill -9` is never blocked by a stale file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "aegis.lock";

/// Data directories this process holds (a second lock from the same process would conflict
/// with its own: `flock` is per open file).
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("data dir {} is in use by another engine ({}); one engine per data dir", dir.display(), holder_text(*pid))]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it (`None`: not written yet or unreadable).
        pid: Option<u32>,
    },
    /// The lock file could not be opened or written.
    #[error("data dir lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}"))
}

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the data directory `dir` (created if missing) for this process, or says who
    /// holds it. Never waits.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held { dir: dir.to_path_buf(), pid: read_pid(&mut file) })
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_data().map_err(io)?;
        let dir = canonical(dir);
        held().push(dir.clone());
        Ok(Self { file, dir })
    }

    /// The pid of the live process holding `dir`, if any (`Some(None)`: held, pid unknown).
    /// Reading takes no lock that lasts: a check from the holder itself says `None`.
    pub fn holder(dir: &Path) -> Result<Option<Option<u32>>, std::io::Error> {
        if Self::held_here(dir) {
            return Ok(None);
        }
        let mut file = match File::open(dir.join(LOCK_FILE)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None), // nobody holds it exclusively (released when `file` drops)
            Err(TryLockError::WouldBlock) => Ok(Some(read_pid(&mut file))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether this process holds `dir`.
    pub fn held_here(dir: &Path) -> bool {
        held().contains(&canonical(dir))
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        held().retain(|d| *d != self.dir);
        // Closing the file releases the lock; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}

fn held() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn canonical(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        assert!(DataDirLock::held_here(&data));
        assert_eq!(DataDirLock::holder(&data).unwrap(), None, "the holder itself sees no other holder");
        // Another open file description in this process conflicts like another process would.
        let mut other = OpenOptions::new().read(true).write(true).open(data.join(LOCK_FILE)).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        assert_eq!(read_pid(&mut other), Some(std::process::id()));
        let refused = DataDirLock::acquire(&data).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "data dir {} is in use by another engine (pid {}); one engine per data dir",
                data.display(),
                std::process::id()
            )
        );
        drop(first);
        assert!(!DataDirLock::held_here(&data));
        assert_eq!(DataDirLock::holder(&data).unwrap(), None);
        let again = DataDirLock::acquire(&data).unwrap();
        assert_eq!(again.dir(), data.canonicalize().unwrap());
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "4194303\n").unwrap();
        assert_eq!(DataDirLock::holder(dir.path()).unwrap(), None);
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string(), "the new owner's pid replaces the old");
        drop(lock);
    }
}
