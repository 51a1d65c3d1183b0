//! One monotonic clock for the whole process, so a timestamp taken on a shard core can be
//! compared on the brain core (`Instant` reads the vDSO: no syscall).

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's clock epoch (the first call).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn threads_share_one_epoch() {
        let before = super::now_ns();
        let on_other_thread = std::thread::spawn(super::now_ns).join().unwrap();
        assert!(on_other_thread >= before);
        assert!(super::now_ns() >= on_other_thread);
    }
}
