//! The process's open-file limit (`RLIMIT_NOFILE`): every connection costs one descriptor, and
//! the soft limit a process starts with (often 1,024) is far below what a broker needs, so the
//! broker raises it to the hard limit at start and says when even that is below what the
//! configuration allows.

use std::io;

/// The open-file limits after [`raise_to_hard_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit before the raise.
    pub was: u64,
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the most an unprivileged process may set).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_to_hard_limit() -> io::Result<FileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let was = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(FileLimit {
        was,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Descriptors the broker keeps for itself (listeners, store, log files, plugins, epoll).
pub const RESERVED: u64 = 64;

/// The connections the limit leaves room for.
pub fn connections_allowed(limit: &FileLimit) -> u64 {
    limit.soft.saturating_sub(RESERVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_is_raised_to_the_hard_limit() {
        let limit = raise_to_hard_limit().expect("getrlimit/setrlimit on this process");
        assert_eq!(limit.soft, limit.hard);
        assert!(limit.was <= limit.soft);
        assert_eq!(
            connections_allowed(&limit),
            limit.soft.saturating_sub(RESERVED)
        );
    }
}
