//! Pinning by CPU id, checked: the CPUs this process may pin a thread to (online and in its
//! cgroup's cpuset — an isolated CPU is a valid target even when the process's own mask
//! leaves it out), and pinning that reads the thread's affinity back.

use std::sync::atomic::{AtomicI64, Ordering};

/// What a failed pin does (`[cpu] pinning`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// A core that cannot be had stops start-up, naming the core and the reason.
    Required,
    /// A core that cannot be had is a warning; the thread runs unpinned.
    BestEffort,
}

/// Which threads carry the feed and the brain (`[cpu] placement`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThreadPlan {
    /// One thread when the host cannot give each role a core (one shard, fewer usable CPUs
    /// than shards + brain + one spare), else a thread per role.
    #[default]
    Auto,
    /// A thread per shard and one for the brain, handing records over rings.
    Threads,
    /// One thread reads, parses and runs the brain on what it just pushed (one shard, mio).
    OneThread,
}

impl ThreadPlan {
    /// The config word for it.
    pub fn name(self) -> &'static str {
        match self {
            ThreadPlan::Auto => "auto",
            ThreadPlan::Threads => "threads",
            ThreadPlan::OneThread => "one-thread",
        }
    }
}

/// A thread's placement as it reports it: its CPU, or one of the values below.
pub const PENDING: i64 = -3;
/// The thread asked for a CPU and did not get it.
pub const FAILED: i64 = -2;
/// The thread was not asked to pin.
pub const UNPINNED: i64 = -1;

/// A thread's placement: written by the thread once it has pinned (or not), read by anyone.
#[derive(Debug)]
pub struct Placement(AtomicI64);

impl Default for Placement {
    fn default() -> Self {
        Self(AtomicI64::new(PENDING))
    }
}

impl Placement {
    /// The CPU, or [`PENDING`], [`FAILED`], [`UNPINNED`].
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, value: i64) {
        self.0.store(value, Ordering::Release);
    }
}

/// The CPU ids of a kernel CPU list (`0-3,8,10-11`); `None` if it is not one.
pub fn parse_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// Writes CPU ids as a kernel list (`0-3,8`).
pub fn format_list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start { start.to_string() } else { format!("{start}-{}", cpus[i]) });
        i += 1;
    }
    out.join(",")
}

/// The CPUs a thread of this process may be pinned to: online, and in the cgroup's
/// effective cpuset when there is one. Where the host does not say, the CPUs 0..n of the
/// process's own parallelism.
pub fn usable() -> Vec<usize> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok().and_then(|t| parse_list(&t));
    match (online, cgroup_cpuset()) {
        (Some(online), Some(allowed)) => online.into_iter().filter(|c| allowed.contains(c)).collect(),
        (Some(online), None) => online,
        (None, _) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// CPUs the host has (`/sys/devices/system/cpu/possible`), to tell a CPU that does not exist
/// from one this process cannot have; else one past the highest of `usable`.
pub fn host_cpus(usable: &[usize]) -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|t| parse_list(&t))
        .filter(|all| !all.is_empty())
        .map_or(usable.iter().max().map_or(1, |m| m + 1), |all| all.len())
}

/// The configured cores by setting: each shard's (`shards.cores`), then the brain's.
pub fn configured(shard_cores: &[usize], brain: Option<usize>) -> Vec<(&'static str, usize)> {
    let shards = shard_cores.iter().map(|&c| ("shards.cores", c));
    shards.chain(brain.map(|c| ("brain.core", c))).collect()
}

/// The engine's pinned threads by name (each shard, then the brain) and their placements.
pub fn threads<'a>(
    shards: impl IntoIterator<Item = &'a Placement>,
    brain: &'a Placement,
) -> Vec<(String, &'a Placement)> {
    let named = shards.into_iter().enumerate().map(|(i, p)| (format!("aegis-shard-{i}"), p));
    named.chain([("aegis-brain".to_string(), brain)]).collect()
}

/// Where each thread runs, as a JSON object of thread name → [`describe`].
pub fn to_json(threads: &[(String, &Placement)]) -> serde_json::Value {
    threads.iter().map(|(name, p)| (name.clone(), serde_json::Value::from(describe(p.get())))).collect()
}

/// The effective cpuset of this process's cgroup (v2), if the host has one.
fn cgroup_cpuset() -> Option<Vec<usize>> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let file = format!("/sys/fs/cgroup{}/cpuset.cpus.effective", path.trim_end_matches('/'));
    let text = std::fs::read_to_string(file).ok()?;
    parse_list(&text).filter(|cpus| !cpus.is_empty())
}

/// The calling thread's allowed CPUs, as the kernel reports them.
pub fn current_allowed() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_list(list)
}

/// Why the configured cores cannot all be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: CPU {cpu} {why} (usable here: {usable})")]
pub struct CoreError {
    /// The setting (`shards.cores`, `brain.core`).
    pub key: String,
    /// The CPU asked for.
    pub cpu: usize,
    /// What is wrong with it.
    pub why: &'static str,
    /// The CPUs that could be had.
    pub usable: String,
}

/// Checks each `(key, cpu)` against the usable CPUs (and the host's CPU count, to tell a CPU
/// that does not exist from one that is taken away).
pub fn check(cores: &[(&str, usize)], usable: &[usize], host_cpus: usize) -> Result<(), CoreError> {
    for &(key, cpu) in cores {
        if usable.contains(&cpu) {
            continue;
        }
        let why = if cpu >= host_cpus {
            "does not exist on this host"
        } else {
            "is offline or outside this process's cgroup cpuset"
        };
        return Err(CoreError { key: key.to_string(), cpu, why, usable: format_list(usable) });
    }
    Ok(())
}

/// Pins the calling thread to `cpu`, reads its affinity back and records the outcome in
/// `report` (the CPU, or [`FAILED`]); `Err` says what the thread got instead.
pub fn pin_current(cpu: usize, report: &Placement) -> Result<(), String> {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    verify_current(cpu, report)
}

/// Reads back the calling thread's affinity (pinned by someone else, e.g. glommio's
/// placement) and records the outcome in `report`.
pub fn verify_current(cpu: usize, report: &Placement) -> Result<(), String> {
    match current_allowed() {
        Some(allowed) if allowed == [cpu] => {
            report.set(cpu as i64);
            Ok(())
        }
        other => {
            report.set(FAILED);
            let got = other.map_or_else(|| "unknown".to_string(), |a| format_list(&a));
            Err(format!("asked for CPU {cpu}, runs on CPUs {got}"))
        }
    }
}

/// Pins the calling thread when `cpu` is set (recording [`UNPINNED`] otherwise); a failure is
/// logged and recorded, for the run to act on under its [`Pinning`] policy.
pub fn place_current(thread: &str, cpu: Option<usize>, report: &Placement) {
    let Some(cpu) = cpu else {
        report.set(UNPINNED);
        return;
    };
    if let Err(why) = pin_current(cpu, report) {
        tracing::error!(thread, %why, "pinning failed");
    }
}

/// A placement report as text: `"3"`, `"unpinned"`, `"failed"` or `"pending"`.
pub fn describe(report: i64) -> String {
    match report {
        UNPINNED => "unpinned".into(),
        FAILED => "failed".into(),
        PENDING => "pending".into(),
        cpu => cpu.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_cpu_lists_read_and_write_back() {
        let cases: [(&str, Option<Vec<usize>>); 6] = [
            ("0-3", Some(vec![0, 1, 2, 3])),
            ("0,2-3,8\n", Some(vec![0, 2, 3, 8])),
            ("5", Some(vec![5])),
            ("", Some(vec![])),
            ("3-1", None),
            ("a-b", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_list(text), want, "{text:?}");
            if let Some(cpus) = want.filter(|c| !c.is_empty()) {
                assert_eq!(parse_list(&format_list(&cpus)), Some(cpus), "{text:?} round trip");
            }
        }
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn a_core_outside_the_usable_set_is_named_with_its_key() {
        let usable = [0, 1];
        assert_eq!(check(&[("shards.cores", 1), ("brain.core", 0)], &usable, 2), Ok(()));
        let missing = check(&[("shards.cores", 1), ("brain.core", 9)], &usable, 2).unwrap_err();
        assert_eq!(missing.to_string(), "brain.core: CPU 9 does not exist on this host (usable here: 0-1)");
        let fenced = check(&[("shards.cores", 3)], &usable, 4).unwrap_err();
        assert_eq!(
            fenced.to_string(),
            "shards.cores: CPU 3 is offline or outside this process's cgroup cpuset (usable here: 0-1)"
        );
    }

    #[test]
    fn a_pinned_thread_reads_its_own_cpu_back() {
        let cpu = *usable().first().expect("a usable CPU");
        let report = Placement::default();
        assert_eq!(report.get(), PENDING);
        std::thread::scope(|s| {
            s.spawn(|| pin_current(cpu, &report).unwrap());
        });
        assert_eq!(report.get(), cpu as i64);
    }
}
