//! The stamp every benchmark payload starts with: who sent it, its sequence number and when
//! (nanoseconds since the process-wide [`Clock`] base), so subscribers can measure latency,
//! loss, duplicates and reordering without any side channel.

use std::time::Instant;

/// Marks a payload as ours; anything else on the topic is counted as foreign.
const MAGIC: [u8; 4] = *b"WBv1";
/// Bytes the stamp occupies at the start of every payload.
pub const STAMP_LEN: usize = 24;

/// Monotonic time base shared by every task of one generator process.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the base (u64 lasts ~584 years).
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `payload`.
    /// The caller guarantees the payload is at least that long (checked at start-up).
    pub fn write_into(&self, payload: &mut [u8]) {
        if let Some(head) = payload.get_mut(..STAMP_LEN) {
            head[0..4].copy_from_slice(&MAGIC);
            head[4..8].copy_from_slice(&self.publisher.to_be_bytes());
            head[8..16].copy_from_slice(&self.seq.to_be_bytes());
            head[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        }
    }

    /// Reads a stamp back; `None` for a payload that is not one of ours.
    pub fn read_from(payload: &[u8]) -> Option<Stamp> {
        let head = payload.get(..STAMP_LEN)?;
        if head[0..4] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_be_bytes(head[i..i + 8].try_into().unwrap_or_default());
        Some(Stamp {
            publisher: u32_at(4),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_through_a_padded_payload() {
        let stamp = Stamp {
            publisher: 0xdead_beef,
            seq: u64::MAX - 3,
            sent_ns: 123_456_789_012,
        };
        let mut payload = vec![0u8; 64];
        stamp.write_into(&mut payload);
        assert_eq!(Stamp::read_from(&payload), Some(stamp));
        // Padding after the stamp is untouched.
        assert!(payload[STAMP_LEN..].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_or_foreign_payloads_are_not_stamps() {
        let stamp = Stamp {
            publisher: 1,
            seq: 2,
            sent_ns: 3,
        };
        let mut payload = vec![0u8; STAMP_LEN];
        stamp.write_into(&mut payload);
        assert_eq!(Stamp::read_from(&payload[..STAMP_LEN - 1]), None);
        payload[0] = b'X';
        assert_eq!(Stamp::read_from(&payload), None);
        assert_eq!(Stamp::read_from(b""), None);
    }

    #[test]
    fn clock_is_monotonic() {
        let clock = Clock::new();
        let a = clock.now_ns();
        let b = clock.now_ns();
        assert!(b >= a);
    }
}
