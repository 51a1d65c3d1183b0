//! CPU time per pipeline: a sampler reads every thread's user + system time from
//! `/proc/self/task/*/stat` every 20 ms and keeps each thread's latest figure, so threads
//! that exit before the end (the engine joins its own) still count up to their last sample.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `/proc` reports CPU time in clock ticks of USER_HZ, 100 per second on Linux's ABI.
const TICKS_PER_S: f64 = 100.0;

/// A running sampler.
pub struct CpuSampler {
    latest: Arc<Mutex<HashMap<u32, (String, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CpuSampler {
    /// Starts sampling (the CPU already spent by live threads is the starting point).
    pub fn start() -> CpuSampler {
        let latest = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = read_threads();
        let thread = {
            let (latest, stop) = (latest.clone(), stop.clone());
            std::thread::Builder::new()
                .name("cpu-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let now = read_threads();
                        if let Ok(mut map) = latest.lock() {
                            for (tid, (name, ticks)) in now {
                                let before = baseline.get(&tid).map_or(0, |(_, t)| *t);
                                map.insert(tid, (name, ticks.saturating_sub(before)));
                            }
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
                .ok()
        };
        CpuSampler { latest, stop, thread }
    }

    /// Stops sampling; returns CPU seconds per thread-name prefix of `prefixes`.
    pub fn finish(mut self, prefixes: &[&str]) -> Vec<(String, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let map = self.latest.lock().map(|m| m.clone()).unwrap_or_default();
        prefixes
            .iter()
            .map(|p| {
                let ticks: u64 = map.values().filter(|(name, _)| name.starts_with(p)).map(|(_, t)| t).sum();
                (p.to_string(), ticks as f64 / TICKS_PER_S)
            })
            .collect()
    }
}

/// (thread id → (name, user + system ticks)) of this process.
fn read_threads() -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some(parsed) = parse_stat(&stat) {
            out.insert(tid, parsed);
        }
    }
    out
}

/// The name and utime + stime of one `stat` line (the name may hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    // After ") ": state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
    let mut fields = stat.get(close + 2..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// Resident and peak resident memory of a process (`/proc/<pid>/status`), bytes.
pub fn rss(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_an_awkward_name_parses() {
        let line = "4242 (aegis-br (x) n) R 1 2 3 4 5 6 7 8 9 10 250 37 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("aegis-br (x) n".to_string(), 287)));
    }

    #[test]
    fn a_busy_named_thread_is_counted_under_its_prefix() {
        let sampler = CpuSampler::start();
        let latest = sampler.latest.clone();
        let spin = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(move || {
                // Spin until the sampler has seen this thread use CPU.
                let mut x = 0u64;
                loop {
                    for _ in 0..100_000 {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    let seen = latest.lock().unwrap().values().any(|(n, t)| n == "cpu-test-spin" && *t > 0);
                    if seen {
                        return;
                    }
                }
            })
            .unwrap();
        spin.join().unwrap();
        let cpu = sampler.finish(&["cpu-test-spin", "nobody-has-this-name"]);
        assert!(cpu[0].1 > 0.0, "{cpu:?}");
        assert_eq!(cpu[1].1, 0.0);
        let (rss, peak) = rss("self").unwrap();
        assert!(rss > 0 && peak >= rss);
    }
}
