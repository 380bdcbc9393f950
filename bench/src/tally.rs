//! Per-subscriber delivery accounting: which sequence numbers arrived from which publisher
//! (for loss, duplicates and reordering) and the latency histogram.

use std::collections::HashMap;

use hdrhistogram::Histogram;

use crate::stamp::Stamp;

/// Sequence numbers above this are treated as corrupt rather than growing the bitmap.
const MAX_SEQ: u64 = 1 << 34;
/// Latencies are recorded in nanoseconds up to one minute, 3 significant digits.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one subscriber saw from one publisher.
#[derive(Debug, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    distinct: u64,
    duplicates: u64,
    reordered: u64,
    highest: Option<u64>,
}

impl SeqTracker {
    /// Records one arrival of `seq`.
    pub fn record(&mut self, seq: u64) {
        let word = (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        let Some(slot) = self.seen.get_mut(word) else {
            return;
        };
        if *slot & bit != 0 {
            self.duplicates += 1;
            return;
        }
        *slot |= bit;
        self.distinct += 1;
        match self.highest {
            // A new sequence number below one already seen overtook it: out of order.
            Some(h) if seq < h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }

    /// Messages with sequence numbers `0..sent` that never arrived.
    pub fn missing(&self, sent: u64) -> u64 {
        let below_sent = if sent == 0 {
            0
        } else {
            let full_words = (sent / 64) as usize;
            let mut n: u64 = self
                .seen
                .iter()
                .take(full_words)
                .map(|w| u64::from(w.count_ones()))
                .sum();
            let rest = sent % 64;
            if rest > 0 {
                if let Some(w) = self.seen.get(full_words) {
                    n += u64::from((w & ((1u64 << rest) - 1)).count_ones());
                }
            }
            n
        };
        sent - below_sent
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    pub fn distinct(&self) -> u64 {
        self.distinct
    }
}

/// Everything one subscriber measured.
pub struct Tally {
    pub per_publisher: HashMap<u32, SeqTracker>,
    pub latency: Histogram<u64>,
    /// Deliveries that carried a valid stamp (duplicates included).
    pub received: u64,
    /// Payloads without our stamp or with an absurd sequence number.
    pub foreign: u64,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            per_publisher: HashMap::new(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            received: 0,
            foreign: 0,
            first_ns: None,
            last_ns: 0,
        }
    }

    /// Records a delivered payload at time `now_ns` (same clock as the stamp); returns the
    /// publisher it came from, or `None` for a payload that is not ours.
    pub fn record(&mut self, payload: &[u8], now_ns: u64) -> Option<u32> {
        let Some(stamp) = Stamp::read_from(payload).filter(|s| s.seq < MAX_SEQ) else {
            self.foreign += 1;
            return None;
        };
        self.received += 1;
        self.first_ns.get_or_insert(now_ns);
        self.last_ns = self.last_ns.max(now_ns);
        self.latency
            .saturating_record(now_ns.saturating_sub(stamp.sent_ns).max(1));
        self.per_publisher
            .entry(stamp.publisher)
            .or_default()
            .record(stamp.seq);
        Some(stamp.publisher)
    }

    /// Loss / duplicate / reorder totals against what each expected publisher sent.
    pub fn delivery(&self, expected: &[(u32, u64)]) -> Delivery {
        let mut d = Delivery::default();
        for &(publisher, sent) in expected {
            match self.per_publisher.get(&publisher) {
                Some(t) => d.lost += t.missing(sent),
                None => d.lost += sent,
            }
        }
        for t in self.per_publisher.values() {
            d.duplicates += t.duplicates();
            d.reordered += t.reordered();
            d.distinct += t.distinct();
        }
        d
    }
}

/// Summed delivery accounting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub distinct: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

impl std::ops::AddAssign for Delivery {
    fn add_assign(&mut self, o: Delivery) {
        self.distinct += o.distinct;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(publisher: u32, seq: u64, sent_ns: u64) -> Vec<u8> {
        let mut p = vec![0u8; 32];
        Stamp {
            publisher,
            seq,
            sent_ns,
        }
        .write_into(&mut p);
        p
    }

    #[test]
    fn in_order_complete_stream_has_no_loss_dup_or_reorder() {
        let mut t = SeqTracker::default();
        for s in 0..1000 {
            t.record(s);
        }
        assert_eq!(
            (t.missing(1000), t.duplicates(), t.reordered(), t.distinct()),
            (0, 0, 0, 1000)
        );
    }

    #[test]
    fn gaps_count_as_missing_only_below_sent() {
        let mut t = SeqTracker::default();
        for s in (0..200).filter(|s| s % 10 != 3) {
            t.record(s);
        }
        assert_eq!(t.missing(200), 20);
        // Nothing beyond what was sent counts.
        assert_eq!(t.missing(64), 7);
        assert_eq!(t.missing(0), 0);
        assert_eq!(t.missing(250), 20 + 50);
    }

    #[test]
    fn repeated_sequence_is_a_duplicate_not_a_new_message() {
        let mut t = SeqTracker::default();
        for s in [0, 1, 1, 2, 2, 2] {
            t.record(s);
        }
        assert_eq!(
            (t.distinct(), t.duplicates(), t.reordered(), t.missing(3)),
            (3, 3, 0, 0)
        );
    }

    #[test]
    fn late_arrival_below_the_highest_is_reordered() {
        let mut t = SeqTracker::default();
        for s in [0, 2, 1, 3, 5, 4] {
            t.record(s);
        }
        assert_eq!((t.reordered(), t.duplicates(), t.missing(6)), (2, 0, 0));
    }

    #[test]
    fn tally_accounts_per_publisher_and_for_silent_publishers() {
        let mut tally = Tally::new();
        tally.record(&payload(1, 0, 100), 1_100);
        tally.record(&payload(1, 1, 200), 2_200);
        tally.record(&payload(2, 1, 300), 3_300);
        tally.record(&payload(2, 1, 300), 3_400);
        tally.record(b"not ours", 5_000);
        let d = tally.delivery(&[(1, 2), (2, 2), (3, 5)]);
        assert_eq!(
            d,
            Delivery {
                distinct: 3,
                lost: 1 + 5,
                duplicates: 1,
                reordered: 0
            }
        );
        assert_eq!(tally.received, 4);
        assert_eq!(tally.foreign, 1);
        assert_eq!(tally.first_ns, Some(1_100));
        assert_eq!(tally.last_ns, 3_400);
        // Latencies 1000, 2000, 3000, 3100 ns.
        assert_eq!(tally.latency.len(), 4);
        assert!(
            tally.latency.value_at_quantile(0.5) >= 1_990
                && tally.latency.value_at_quantile(0.5) <= 2_010
        );
    }

    #[test]
    fn corrupt_huge_sequence_is_foreign_not_a_giant_allocation() {
        let mut tally = Tally::new();
        tally.record(&payload(1, u64::MAX, 0), 10);
        assert_eq!((tally.received, tally.foreign), (0, 1));
    }
}
