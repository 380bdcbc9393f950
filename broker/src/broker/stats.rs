//! Broker-wide counters, updated with relaxed atomics on the hot path and read by `$SYS`.
//! Subscription and retained-message counts are not kept here: they are read from the
//! subscription tree and the retained store, which know them exactly.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters. All `u64`, monotonic except the `*_now`-style gauges noted below.
#[derive(Debug, Default)]
pub struct Stats {
    /// Gauge: clients connected right now.
    pub clients_connected: AtomicU64,
    /// The highest `clients_connected` seen.
    pub clients_maximum: AtomicU64,
    /// Connections accepted (CONNACK success) since start.
    pub connections_total: AtomicU64,
    /// Gauge: persistent sessions whose client is offline.
    pub clients_disconnected: AtomicU64,
    /// Connections refused at CONNECT because a listener was at `max_connections`.
    pub connections_refused: AtomicU64,
    /// Every MQTT packet received / sent.
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    /// PUBLISH packets received from clients / sent to clients.
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
    /// Messages that could not be delivered to a subscriber: queue full, expired, too large.
    pub publish_dropped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Flow control: PUBLISHes whose acknowledgement was held back because they took a
    /// connected subscriber's queue over `max_queued_messages`.
    pub publishers_held: AtomicU64,
    /// Flow control: held publishers let go because a subscriber took no message for the
    /// stall time (its further messages are then dropped and counted in `publish_dropped`).
    pub publishers_released_on_stall: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub clients_connected: u64,
    pub clients_maximum: u64,
    pub connections_total: u64,
    pub clients_disconnected: u64,
    pub connections_refused: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_dropped: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    // Gauges never go below zero even if an event is counted twice on a racy path.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Stats {
    pub(crate) fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
        add(&self.connections_total, 1);
    }

    pub(crate) fn client_disconnected(&self) {
        sub(&self.clients_connected, 1);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            clients_connected: get(&self.clients_connected),
            clients_maximum: get(&self.clients_maximum),
            connections_total: get(&self.connections_total),
            clients_disconnected: get(&self.clients_disconnected),
            connections_refused: get(&self.connections_refused),
            messages_received: get(&self.messages_received),
            messages_sent: get(&self.messages_sent),
            publish_received: get(&self.publish_received),
            publish_sent: get(&self.publish_sent),
            publish_dropped: get(&self.publish_dropped),
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximum_tracks_the_peak_of_connected_clients() {
        let s = Stats::default();
        s.client_connected();
        s.client_connected();
        s.client_disconnected();
        s.client_connected();
        s.client_disconnected();
        let snap = s.snapshot();
        assert_eq!(snap.clients_connected, 1);
        assert_eq!(snap.clients_maximum, 2);
        assert_eq!(snap.connections_total, 3);
        sub(&s.clients_connected, 5);
        assert_eq!(s.snapshot().clients_connected, 0);
    }
}
