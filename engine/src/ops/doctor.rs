//! `aegis doctor`: checks the host against what a pinned, low-latency run needs (SPEC §9) —
//! cores and their isolation, io_uring and locked memory, transparent huge pages, the clock
//! source, CPU frequency governors, the configured cores — and says what to fix.
//!
//! The checks are pure functions of a [`Host`] snapshot (read from `/proc` and `/sys` by
//! [`Host::read`]), so each verdict is tested against fixtures; [`measure_transports`]
//! measures both transports on this host and records the result for `transport = "auto"`.

use serde_json::{json, Value};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Worth knowing, nothing to fix.
    Info,
    /// Costs latency or features; the engine still runs.
    Warn,
    /// The configuration cannot run as written.
    Fail,
}

/// One finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What was checked.
    pub check: &'static str,
    /// Verdict.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when nothing).
    pub fix: String,
    /// Measured figures, when the check measures (`--json` reports them).
    pub figures: Option<Value>,
}

/// What the host looks like.
#[derive(Clone, Debug)]
pub struct Host {
    /// Online CPUs.
    pub cores: usize,
    /// CPUs this process may pin to (online, in its cgroup's cpuset; isolated ones count).
    pub usable: Vec<usize>,
    /// `/sys/devices/system/cpu/isolated`.
    pub isolated: String,
    /// `/proc/cmdline`.
    pub cmdline: String,
    /// Soft `Max locked memory` in bytes (`None`: unlimited).
    pub memlock: Option<u64>,
    /// `Err(reason)` when io_uring (glommio) could not start.
    pub io_uring: Result<(), crate::feed::transport::glommio::UringError>,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`.
    pub thp: String,
    /// Current clock source.
    pub clocksource: String,
    /// Governor per core (`None`: no cpufreq, as in most VMs).
    pub governors: Vec<Option<String>>,
}

/// What the configuration asks of the host.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Shards.
    pub shards: usize,
    /// Cores pinned for shards.
    pub shard_cores: Vec<usize>,
    /// The brain's core.
    pub brain_core: Option<usize>,
    /// Two roles may share a core.
    pub allow_shared_cores: bool,
    /// glommio's registered memory per shard.
    pub io_memory: usize,
    /// How an idle shard waits.
    pub idle: crate::ring::Idle,
}

impl Host {
    /// Reads this machine.
    pub fn read(io_memory: usize) -> Host {
        let text = |path: &str| std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
        let usable = crate::cpu::usable();
        let cores = crate::cpu::host_cpus(&usable);
        Host {
            cores,
            usable,
            isolated: text("/sys/devices/system/cpu/isolated"),
            cmdline: text("/proc/cmdline"),
            memlock: memlock_from_limits(&text("/proc/self/limits")),
            io_uring: crate::feed::transport::glommio::probe(io_memory),
            thp: text("/sys/kernel/mm/transparent_hugepage/enabled"),
            clocksource: text("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            governors: (0..cores)
                .map(|c| {
                    std::fs::read_to_string(format!(
                        "/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
                    ))
                    .ok()
                })
                .map(|g| g.map(|g| g.trim().to_string()))
                .collect(),
        }
    }
}

/// The soft limit of `Max locked memory` in `/proc/self/limits` (`None`: unlimited).
pub fn memlock_from_limits(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max locked memory"))?;
    let soft = line.trim_start_matches("Max locked memory").split_whitespace().next()?;
    soft.parse().ok()
}

/// CPU list syntax (`2-5,8`) as core numbers (nothing for a malformed list).
fn cpu_list(list: &str) -> Vec<usize> {
    crate::cpu::parse_list(list).unwrap_or_default()
}

/// Every finding for `plan` on `host`.
pub fn check(host: &Host, plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |check, level, detail: String, fix: &str| {
        out.push(Finding { check, level, detail, fix: fix.to_string(), figures: None })
    };
    // Configured cores: they exist, and two roles do not share one.
    let mut pinned: Vec<usize> = plan.shard_cores.clone();
    pinned.extend(plan.brain_core);
    let keyed = crate::cpu::configured(&plan.shard_cores, plan.brain_core);
    let mut sorted = pinned.clone();
    sorted.sort_unstable();
    let shared = sorted.windows(2).any(|w| w[0] == w[1]);
    if let Err(e) = crate::cpu::check(&keyed, &host.usable, host.cores) {
        add(
            "configured cores",
            Level::Fail,
            e.to_string(),
            "pin to CPUs this process can have ([shards] cores, [brain] core; no AllowedCPUs= fencing them off)",
        );
    } else if shared && !plan.allow_shared_cores {
        add(
            "configured cores",
            Level::Fail,
            format!("two roles share a core: {pinned:?}"),
            "give each shard and the brain its own core, or set allow_shared_cores = true",
        );
    } else if plan.shard_cores.len() < plan.shards {
        add(
            "configured cores",
            Level::Warn,
            format!("{} shards but {} shard cores", plan.shards, plan.shard_cores.len()),
            "list a core per shard in [shards] cores",
        );
    } else if shared {
        add(
            "configured cores",
            Level::Warn,
            format!("roles share cores {pinned:?} (allow_shared_cores)"),
            "fine for development; give each role its own core in production",
        );
    } else {
        let usable = crate::cpu::format_list(&host.usable);
        add(
            "configured cores",
            Level::Ok,
            format!("{pinned:?}; usable here: {usable} of {} CPUs", host.cores),
            "",
        );
    }
    // Isolation of the pinned cores from the scheduler and the timer tick.
    let isolated = cpu_list(&host.isolated);
    let nohz = host
        .cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix("nohz_full="))
        .map(cpu_list)
        .unwrap_or_default();
    let not_isolated: Vec<usize> = pinned.iter().copied().filter(|c| !isolated.contains(c)).collect();
    if pinned.is_empty() {
        add("core isolation", Level::Info, "nothing pinned".into(), "");
    } else if not_isolated.is_empty() {
        add("core isolation", Level::Ok, format!("pinned cores isolated ({})", host.isolated), "");
    } else {
        add(
            "core isolation",
            Level::Warn,
            format!("pinned cores {not_isolated:?} are not in isolcpus ({:?})", host.isolated),
            "boot with isolcpus=<cores> nohz_full=<cores> rcu_nocbs=<cores> (see config/TUNING.md)",
        );
    }
    let no_tick: Vec<usize> = pinned.iter().copied().filter(|c| !nohz.contains(c)).collect();
    if !pinned.is_empty() && !no_tick.is_empty() {
        add(
            "timer tick",
            Level::Warn,
            format!("pinned cores {no_tick:?} are not nohz_full"),
            "add nohz_full=<cores> to the kernel command line",
        );
    }
    // io_uring and the locked memory glommio registers.
    match &host.io_uring {
        Ok(()) => add("io_uring", Level::Ok, "glommio starts".into(), ""),
        Err(reason) => add(
            "io_uring",
            Level::Warn,
            format!("glommio cannot start: {reason}; transport auto uses mio"),
            "a kernel ≥ 5.8 with io_uring enabled, and enough locked memory",
        ),
    }
    let need = (plan.io_memory * plan.shards.max(1)) as u64;
    match host.memlock {
        None => add("locked memory", Level::Ok, "unlimited".into(), ""),
        Some(limit) if limit >= need => {
            add("locked memory", Level::Ok, format!("{limit} bytes ≥ {need} needed"), "")
        }
        Some(limit) => add(
            "locked memory",
            Level::Warn,
            format!("{limit} bytes < {need} needed by glommio"),
            "raise it: LimitMEMLOCK=infinity in the systemd unit, or `ulimit -l unlimited`",
        ),
    }
    // Transparent huge pages: compaction stalls.
    if host.thp.contains("[always]") {
        add(
            "transparent huge pages",
            Level::Warn,
            "always".into(),
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (khugepaged compaction stalls)",
        );
    } else if host.thp.is_empty() {
        add("transparent huge pages", Level::Info, "not reported".into(), "");
    } else {
        add("transparent huge pages", Level::Ok, host.thp.clone(), "");
    }
    // Clock source: the engine reads the clock per record.
    if host.clocksource == "tsc" {
        add("clocksource", Level::Ok, "tsc".into(), "");
    } else {
        add(
            "clocksource",
            Level::Warn,
            format!("{:?}: clock reads cost more than with tsc", host.clocksource),
            "boot with tsc=reliable clocksource=tsc if the TSC is invariant",
        );
    }
    // Frequency governors of the pinned cores.
    let slow: Vec<String> = pinned
        .iter()
        .filter_map(|c| match host.governors.get(*c) {
            Some(Some(g)) if g != "performance" => Some(format!("cpu{c}: {g}")),
            _ => None,
        })
        .collect();
    let known = pinned.iter().any(|c| matches!(host.governors.get(*c), Some(Some(_))));
    if !slow.is_empty() {
        add("cpu governor", Level::Warn, slow.join(", "), "cpupower frequency-set -g performance");
    } else if known {
        add("cpu governor", Level::Ok, "performance".into(), "");
    } else {
        add(
            "cpu governor",
            Level::Info,
            "no cpufreq for the pinned cores (a VM, or nothing pinned)".into(),
            "",
        );
    }
    out
}

/// Round trips each transport makes in [`measure_transports`] (after a tenth as many to warm).
const RTT_SAMPLES: u64 = 5_000;

/// Measures both transports' loopback round trip on the plan's cores and idle policy (see
/// [`crate::feed::transport::rtt`]) and records it in `data_dir`, where `transport = "auto"`
/// finds it. A data dir a live engine holds is left alone: its cores may be spinning, so
/// nothing is measured and its record (if any) is reported instead.
pub fn measure_transports(plan: &Plan, host: &Host, data_dir: Option<&std::path::Path>) -> Finding {
    use crate::feed::transport::rtt::{self, Record};
    let finding = |level, detail: String, figures| Finding {
        check: "transport",
        level,
        detail,
        fix: String::new(),
        figures,
    };
    let _lock = match data_dir.map(aegis_journal::DataDirLock::acquire) {
        Some(Err(aegis_journal::LockError::Held { pid, .. })) => {
            let pid = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
            let kept = data_dir.and_then(Record::load);
            let record = kept.as_ref().map_or("no record there".to_string(), Record::summary);
            let detail = format!("not measured: a live engine ({pid}) holds the data dir and may spin on these cores; {record}");
            return finding(Level::Info, detail, kept.map(|r| json!(r)));
        }
        Some(Err(e)) => return finding(Level::Warn, format!("not measured: {e}"), None),
        Some(Ok(lock)) => Some(lock),
        None => None,
    };
    let options = rtt_options(plan, host);
    let measured = match rtt::measure(&options) {
        Ok(m) => m,
        Err(e) => return finding(Level::Warn, format!("not measured: {e}"), None),
    };
    let record = Record::new(measured, &options);
    let kept = match data_dir.map(|dir| record.save(dir).map(|()| dir)) {
        Some(Ok(dir)) => format!("recorded in {}", Record::path(dir).display()),
        Some(Err(e)) => format!("not recorded: {e}"),
        None => "not recorded (no data dir)".to_string(),
    };
    let detail = format!("{}; auto picks {} here; {kept}", record.summary(), record.choice);
    finding(Level::Ok, detail, Some(json!(record)))
}

/// The measurement's cores: the client on the first shard core, the echo server on the
/// brain's (else another usable CPU); a core this process cannot have is left unpinned.
fn rtt_options(plan: &Plan, host: &Host) -> crate::feed::transport::rtt::RttOptions {
    let usable = |c: &usize| host.usable.contains(c);
    let client = plan.shard_cores.first().copied().filter(usable);
    let server = plan
        .brain_core
        .filter(|c| usable(c) && Some(*c) != client)
        .or_else(|| host.usable.iter().rev().copied().find(|c| Some(*c) != client));
    crate::feed::transport::rtt::RttOptions {
        client_core: client,
        server_core: server,
        idle: plan.idle,
        count: RTT_SAMPLES,
        warmup: RTT_SAMPLES / 10,
        size: 200,
        io_memory: plan.io_memory,
    }
}

/// Exit status for scripts: 0 nothing to fix, 1 warnings, 2 a configuration that cannot run.
pub fn exit_status(findings: &[Finding]) -> i32 {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fail) => 2,
        Some(Level::Warn) => 1,
        _ => 0,
    }
}

/// One line per finding: the level, the check, what was found, and the fix.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let level = match f.level {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{level:<5} {:<23} {}", f.check, f.detail));
        if !f.fix.is_empty() {
            out.push_str(&format!("\n      {:<23} fix: {}", "", f.fix));
        }
        out.push('\n');
    }
    out
}

/// The findings as JSON.
pub fn to_json(findings: &[Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                let mut v = json!({ "check": f.check, "level": format!("{:?}", f.level).to_lowercase(), "detail": f.detail, "fix": f.fix });
                if let Some(figures) = &f.figures {
                    v["figures"] = figures.clone();
                }
                v
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuned() -> Host {
        Host {
            cores: 16,
            usable: (0..16).collect(),
            isolated: "2-15".into(),
            cmdline: "ro quiet isolcpus=2-15 nohz_full=2-15 rcu_nocbs=2-15".into(),
            memlock: None,
            io_uring: Ok(()),
            thp: "always [madvise] never".into(),
            clocksource: "tsc".into(),
            governors: vec![Some("performance".into()); 16],
        }
    }

    fn plan() -> Plan {
        Plan {
            shards: 2,
            shard_cores: vec![2, 3],
            brain_core: Some(4),
            allow_shared_cores: false,
            io_memory: 512 << 10,
            idle: crate::ring::Idle::Spin,
        }
    }

    #[test]
    fn a_tuned_host_has_nothing_to_fix() {
        let findings = check(&tuned(), &plan());
        assert_eq!(exit_status(&findings), 0, "{}", render(&findings));
    }

    #[test]
    fn each_problem_is_named_with_its_fix() {
        let mut host = tuned();
        host.isolated = "".into();
        host.cmdline = "ro quiet".into();
        host.memlock = Some(65536);
        host.io_uring = Err(crate::feed::transport::glommio::UringError::Failed("memlock too low".into()));
        host.thp = "[always] madvise never".into();
        host.clocksource = "kvm-clock".into();
        host.governors[3] = Some("powersave".into());
        let findings = check(&host, &plan());
        let text = render(&findings);
        for needle in [
            "isolcpus",
            "nohz_full",
            "LimitMEMLOCK",
            "glommio cannot start",
            "madvise",
            "kvm-clock",
            "cpu3: powersave",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(exit_status(&findings), 1);
    }

    #[test]
    fn impossible_cores_fail() {
        let mut p = plan();
        p.brain_core = Some(40);
        assert_eq!(exit_status(&check(&tuned(), &p)), 2);
        let mut p = plan();
        p.brain_core = Some(2);
        let findings = check(&tuned(), &p);
        assert!(render(&findings).contains("share a core"));
        assert_eq!(exit_status(&findings), 2);
    }

    #[test]
    fn limits_and_cpu_lists_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         8388608              8388608              bytes\n";
        assert_eq!(memlock_from_limits(limits), Some(8_388_608));
        assert_eq!(
            memlock_from_limits("Max locked memory         unlimited            unlimited            bytes"),
            None
        );
        assert_eq!(cpu_list("2-4,7, 9"), vec![2, 3, 4, 7, 9]);
        assert!(cpu_list("").is_empty());
    }

    #[test]
    fn configured_cores_are_checked_by_cpu_id_not_by_count() {
        let configured = |host: &Host| {
            let findings = check(host, &plan());
            let f = findings.into_iter().find(|f| f.check == "configured cores").unwrap();
            (f.level, f.detail)
        };
        // isolcpus leaves the process's own mask at 0-1; the isolated CPUs are still usable.
        let (level, _) = configured(&tuned());
        assert_eq!(level, Level::Ok);
        // A cgroup cpuset (AllowedCPUs=0-1) fences them off: the first one is named.
        let fenced = Host { usable: vec![0, 1], ..tuned() };
        let (level, detail) = configured(&fenced);
        assert_eq!(level, Level::Fail);
        assert_eq!(
            detail,
            "shards.cores: CPU 2 is offline or outside this process's cgroup cpuset (usable here: 0-1)"
        );
        let small = Host { cores: 2, usable: vec![0, 1], ..tuned() };
        assert!(configured(&small).1.contains("does not exist on this host"));
    }
}
