//! Reading process figures from /proc (broker RSS and CPU time) and raising RLIMIT_NOFILE.

use std::time::Instant;

/// Resident set size of `pid` in KiB (VmRSS), if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a process in clock ticks (`None` = this process).
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; fields after its closing ')' are well-formed.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    // After ')' the fields start at #3 (state); utime is #14 and stime #15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// A CPU-time reading of the broker (if its pid is known) and of this generator.
pub struct CpuSnapshot {
    at: Instant,
    broker: Option<u64>,
    generator: Option<u64>,
}

impl CpuSnapshot {
    pub fn take(broker_pid: Option<u32>) -> Self {
        CpuSnapshot {
            at: Instant::now(),
            broker: broker_pid.and_then(|p| cpu_ticks(Some(p))),
            generator: cpu_ticks(None),
        }
    }

    /// CPU% (100 = one full core) of broker and generator since `earlier`.
    pub fn percent_since(&self, earlier: &CpuSnapshot) -> (Option<f64>, Option<f64>) {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        let tps = ticks_per_second() as f64;
        let pct = |now: Option<u64>, then: Option<u64>| match (now, then) {
            (Some(n), Some(t)) if wall > 0.0 => {
                Some((n.saturating_sub(t)) as f64 / tps / wall * 100.0)
            }
            _ => None,
        };
        (
            pct(self.broker, earlier.broker),
            pct(self.generator, earlier.generator),
        )
    }
}

/// Formats an optional percentage for the RESULT line.
pub fn fmt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "na".to_string(), |v| format!("{v:.0}"))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass by valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_cpu() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap_or(0) > 0);
        assert!(cpu_ticks(Some(me)).is_some());
        assert!(cpu_ticks(None).is_some());
    }
}
