//! Durability: what the broker writes to its persistent [`Store`] and how it comes back at
//! start. Turns in-memory messages (monotonic `Instant` deadlines, `Arc`-shared) into stored
//! records (wall-clock deadlines) and back, turns a session's [`Journal`] into store ops, and
//! rebuilds sessions, subscriptions, queues, in-flight exchanges, retained messages and wills
//! from a [`Snapshot`].
//!
//! Only what must survive a restart is written: persistent sessions (they outlive their
//! connection) and retained messages. With persistence off the broker holds a `MemoryStore`
//! and builds no ops at all (`Broker::durable` is false).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::info;

use super::sessions::StoredWill;
use super::shared::Broker;
use super::stats;
use crate::persistence::{
    Commit, InflightState, Op, Snapshot, Store, StoredInflight, StoredMessage, StoredSession,
    StoredSubscription,
};
use crate::plugins::ClientInfo;
use crate::protocol::{ProtocolVersion, Will};
use crate::session::{Delivery, Journal, Message, OutboundState, Session, SessionExpiry};

/// One reading of both clocks, to convert deadlines between them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub now: Instant,
    pub wall: SystemTime,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    pub fn wall_time(&self, at: Instant) -> SystemTime {
        if at >= self.now {
            self.wall.checked_add(at - self.now).unwrap_or(self.wall)
        } else {
            self.wall
                .checked_sub(self.now - at)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    pub fn instant_of(&self, at: SystemTime) -> Instant {
        match at.duration_since(self.wall) {
            Ok(ahead) => self
                .now
                .checked_add(ahead)
                .unwrap_or(self.now + Duration::from_secs(u64::from(u32::MAX))),
            Err(behind) => self.now.checked_sub(behind.duration()).unwrap_or(self.now),
        }
    }

    /// Time left until `at` (zero if past).
    pub fn until(&self, at: SystemTime) -> Duration {
        at.duration_since(self.wall).unwrap_or(Duration::ZERO)
    }
}

/// The stored form of one delivery to one session (its QoS, retain flag and subscription
/// identifiers, as it is to be sent).
pub(crate) fn stored_delivery(delivery: &Delivery, clock: &Clock) -> StoredMessage {
    let message = &delivery.message;
    let mut properties = StoredMessage::stored_properties(&message.properties);
    properties.message_expiry_interval = None;
    properties.subscription_identifiers = delivery.subscription_ids.clone();
    StoredMessage {
        topic: message.topic.to_string(),
        payload: message.payload.clone(),
        qos: delivery.qos,
        retain: delivery.retain,
        properties,
        expires_at: message.expires_at.map(|at| clock.wall_time(at)),
    }
}

/// The stored form of a retained message.
pub(crate) fn stored_retained(message: &Message, clock: &Clock) -> StoredMessage {
    let mut properties = StoredMessage::stored_properties(&message.properties);
    properties.message_expiry_interval = None;
    properties.subscription_identifiers.clear();
    StoredMessage {
        topic: message.topic.to_string(),
        payload: message.payload.clone(),
        qos: message.qos,
        retain: true,
        properties,
        expires_at: message.expires_at.map(|at| clock.wall_time(at)),
    }
}

/// A stored message back in memory. The publisher is unknown after a restart; No Local was
/// applied when the message was first routed.
fn message_from_stored(mut stored: StoredMessage, clock: &Clock) -> (Arc<Message>, Vec<u32>) {
    let subscription_ids = std::mem::take(&mut stored.properties.subscription_identifiers);
    stored.properties.message_expiry_interval = None;
    let message = Message {
        topic: stored.topic.into(),
        payload: stored.payload,
        qos: stored.qos,
        retain: stored.retain,
        properties: stored.properties,
        expires_at: stored.expires_at.map(|at| clock.instant_of(at)),
        publisher: "".into(),
    };
    (Arc::new(message), subscription_ids)
}

fn delivery_from_stored(stored: StoredMessage, seq: Option<u64>, clock: &Clock) -> Delivery {
    let (qos, retain) = (stored.qos, stored.retain);
    let (message, subscription_ids) = message_from_stored(stored, clock);
    Delivery {
        message,
        qos,
        retain,
        subscription_ids,
        stored: seq,
    }
}

/// The stored form of a will (its delay kept apart).
pub(crate) fn will_record(will: &Will) -> crate::persistence::StoredWill {
    crate::persistence::StoredWill::from_will(will, SystemTime::now())
}

fn will_from_stored(
    stored: crate::persistence::StoredWill,
    client_id: &str,
    clock: &Clock,
) -> StoredWill {
    let mut properties = stored.message.properties.clone();
    properties.subscription_identifiers.clear();
    properties.will_delay_interval = (stored.delay_secs > 0).then_some(stored.delay_secs);
    properties.message_expiry_interval = stored.message.expires_at.map(|at| {
        let left = clock.until(at);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    });
    StoredWill {
        will: Will {
            topic: stored.message.topic,
            payload: stored.message.payload,
            qos: stored.message.qos,
            retain: stored.message.retain,
            properties,
        },
        // Who connected is not stored: the will is published in the client id's name only.
        client: ClientInfo {
            client_id: client_id.into(),
            username: None,
            peer: None,
            listener: "restored".into(),
            protocol: ProtocolVersion::V5,
        },
    }
}

/// The ops recording what a session's engine did (see [`Journal`]).
pub(crate) fn journal_ops(client_id: &str, journal: Vec<Journal>, ops: &mut Vec<Op>) {
    if journal.is_empty() {
        return;
    }
    let clock = Clock::now();
    for entry in journal {
        match entry {
            Journal::Sent {
                seq,
                packet_id,
                delivery,
            } => {
                if let Some(seq) = seq {
                    ops.push(Op::Dequeue {
                        client_id: client_id.to_owned(),
                        seq,
                    });
                }
                ops.push(Op::PutInflight {
                    client_id: client_id.to_owned(),
                    entry: StoredInflight {
                        packet_id,
                        state: InflightState::AwaitingAck,
                        message: stored_delivery(&delivery, &clock),
                    },
                });
            }
            Journal::Dropped { seq } => ops.push(Op::Dequeue {
                client_id: client_id.to_owned(),
                seq,
            }),
            Journal::Removed { packet_id } => ops.push(Op::RemoveInflight {
                client_id: client_id.to_owned(),
                packet_id,
            }),
        }
    }
}

/// A persistent session's record.
pub(crate) fn session_record(
    client_id: &str,
    expiry: SessionExpiry,
    disconnected_at: Option<SystemTime>,
    will: Option<&Will>,
    subscriptions: Vec<StoredSubscription>,
) -> StoredSession {
    StoredSession {
        client_id: client_id.to_owned(),
        expiry_interval: expiry.secs,
        disconnected_at,
        will: will.map(will_record),
        subscriptions,
    }
}

impl Broker {
    /// Whether state changes are written to a persistent store.
    pub(crate) fn durable(&self) -> bool {
        self.shared.durable
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The next sequence number of a queued record (grows across restarts).
    pub(crate) fn next_store_seq(&self) -> u64 {
        self.shared.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands `ops` to the store (nothing when empty or when the broker does not persist).
    /// The batch is applied in the order it was handed over, whether or not the returned
    /// commit is awaited.
    pub(crate) fn persist(&self, ops: Vec<Op>) -> Option<Commit> {
        if ops.is_empty() || !self.shared.durable {
            return None;
        }
        Some(self.shared.store.commit(ops))
    }

    /// Rebuilds the state saved in `snapshot`, loaded at `wall`: retained messages,
    /// persistent sessions with their subscriptions, queues, in-flight exchanges and inbound
    /// QoS 2 ids; then arms each session's expiry (counted from when it went offline) and
    /// publishes, or arms the delay of, the wills still pending.
    pub(crate) fn restore(&self, snapshot: Snapshot, wall: SystemTime) {
        let clock = Clock {
            now: Instant::now(),
            wall,
        };
        let shared = &self.shared;
        for stored in snapshot.retained {
            let topic = stored.topic.clone();
            let (message, _) = message_from_stored(stored, &clock);
            shared.retained.set(&topic, message);
        }
        let mut max_seq = 0;
        let mut offline = Vec::with_capacity(snapshot.sessions.len());
        let sessions = snapshot.sessions.len();
        for restored in snapshot.sessions {
            let record = restored.session;
            max_seq = restored
                .queued
                .iter()
                .map(|(seq, _)| *seq)
                .fold(max_seq, u64::max);
            let queued = restored
                .queued
                .into_iter()
                .map(|(seq, m)| delivery_from_stored(m, Some(seq), &clock));
            let inflight = restored.inflight.into_iter().map(|e| {
                let state = match e.state {
                    InflightState::AwaitingAck => {
                        OutboundState::Published(delivery_from_stored(e.message, None, &clock))
                    }
                    InflightState::AwaitingPubComp => OutboundState::Released,
                };
                (e.packet_id, state)
            });
            let session = Session::restore(shared.limits, queued, inflight, restored.inbound_qos2);
            let expiry = SessionExpiry {
                secs: record.expiry_interval,
                capped: false,
            };
            let will_delay = record.will.as_ref().map(|w| w.delay_secs);
            let will = record
                .will
                .map(|w| will_from_stored(w, &record.client_id, &clock));
            let (slot, generation) = shared.sessions.restore(
                &record.client_id,
                session,
                expiry,
                record.subscriptions,
                will,
            );
            stats::add(&shared.stats.clients_disconnected, 1);
            let since = record.disconnected_at.unwrap_or(wall);
            offline.push((slot, generation, expiry, since, will_delay));
        }
        shared.next_seq.fetch_max(max_seq + 1, Ordering::Relaxed);
        // Timers and wills once every subscription is back in the tree, so a will reaches
        // every restored subscriber.
        for (slot, generation, expiry, since, will_delay) in offline {
            let elapsed = wall.duration_since(since).unwrap_or(Duration::ZERO);
            if let Some(delay) = will_delay {
                let left = Duration::from_secs(u64::from(delay)).saturating_sub(elapsed);
                self.arm_will(&slot, generation, left);
            }
            if expiry.secs != SessionExpiry::NEVER {
                let left = Duration::from_secs(u64::from(expiry.secs)).saturating_sub(elapsed);
                self.arm_expiry(&slot, generation, left);
            }
        }
        info!(
            sessions,
            retained = shared.retained.len(),
            "restored from persistent storage"
        );
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::Config;
    use crate::persistence::{MemoryStore, RestoredSession, NEVER_EXPIRES};
    use crate::plugins::Hooks;
    use crate::protocol::{Packet, Properties, QoS, SubscriptionOptions};
    use crate::session::{LinkParams, SessionLimits};

    fn limits() -> SessionLimits {
        SessionLimits {
            max_inflight: 10,
            max_queued_messages: 100,
            receive_maximum: 10,
            topic_alias_maximum: 0,
        }
    }

    fn params() -> LinkParams {
        LinkParams {
            version: ProtocolVersion::V5,
            receive_maximum: 10,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
        }
    }

    fn stored(topic: &str, qos: QoS) -> StoredMessage {
        StoredMessage::new(topic, Bytes::from_static(b"payload"), qos, false)
    }

    #[test]
    fn deadlines_convert_between_clocks_both_ways() {
        let clock = Clock::now();
        let later = clock.now + Duration::from_secs(90);
        let wall = clock.wall_time(later);
        assert_eq!(wall, clock.wall + Duration::from_secs(90));
        assert_eq!(clock.instant_of(wall), later);
        let earlier = clock.wall - Duration::from_secs(5);
        assert!(clock.instant_of(earlier) <= clock.now);
        assert_eq!(clock.until(earlier), Duration::ZERO);
    }

    #[test]
    fn stored_delivery_keeps_the_granted_qos_and_subscription_identifiers() {
        let clock = Clock::now();
        let mut d = delivery_from_stored(stored("a/b", QoS::ExactlyOnce), Some(3), &clock);
        d.subscription_ids = vec![4, 9];
        d.qos = QoS::AtLeastOnce;
        let back = stored_delivery(&d, &clock);
        assert_eq!(back.qos, QoS::AtLeastOnce);
        assert_eq!(back.properties.subscription_identifiers, vec![4, 9]);
        let again = delivery_from_stored(back, Some(3), &clock);
        assert_eq!(again.subscription_ids, vec![4, 9]);
        assert!(again.message.properties.subscription_identifiers.is_empty());
    }

    #[test]
    fn restored_session_journals_a_sent_message_as_dequeue_and_put_inflight() {
        let clock = Clock::now();
        let queued = vec![delivery_from_stored(
            stored("t", QoS::AtLeastOnce),
            Some(42),
            &clock,
        )];
        let mut session = Session::restore(limits(), queued, Vec::new(), Vec::new());
        let mut out = Vec::new();
        session.attach(params(), &mut out);
        session.poll_transmit(Instant::now(), &mut out);
        let id = match out.as_slice() {
            [Packet::Publish(p)] => p.packet_id.unwrap(),
            other => panic!("expected one PUBLISH, got {other:?}"),
        };
        let mut ops = Vec::new();
        journal_ops("c", session.take_journal(), &mut ops);
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[0],
            Op::Dequeue {
                client_id: "c".into(),
                seq: 42
            }
        );
        match &ops[1] {
            Op::PutInflight { client_id, entry } => {
                assert_eq!(client_id, "c");
                assert_eq!(entry.packet_id, id);
                assert_eq!(entry.state, InflightState::AwaitingAck);
                assert_eq!(entry.message.topic, "t");
            }
            other => panic!("expected PutInflight, got {other:?}"),
        }
        assert!(session.take_journal().is_empty());
    }

    #[test]
    fn restored_in_flight_messages_are_resent_with_dup_and_their_ids_mqtt_4_4_0_1() {
        let clock = Clock::now();
        let inflight = vec![
            (
                7,
                OutboundState::Published(delivery_from_stored(
                    stored("a", QoS::AtLeastOnce),
                    None,
                    &clock,
                )),
            ),
            (9, OutboundState::Released),
        ];
        let mut session = Session::restore(limits(), Vec::new(), inflight, vec![5]);
        let mut out = Vec::new();
        session.attach(params(), &mut out);
        session.poll_transmit(Instant::now(), &mut out);
        let mut publish_ids = Vec::new();
        let mut pubrel_ids = Vec::new();
        for packet in &out {
            match packet {
                Packet::Publish(p) => {
                    assert!(p.dup);
                    publish_ids.push(p.packet_id);
                }
                Packet::PubRel(a) => pubrel_ids.push(a.packet_id),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(publish_ids, vec![Some(7)]);
        assert_eq!(pubrel_ids, vec![9]);
    }

    #[test]
    fn a_message_whose_write_failed_is_withdrawn_from_the_queue() {
        let clock = Clock::now();
        let queued = vec![
            delivery_from_stored(stored("a", QoS::AtLeastOnce), Some(1), &clock),
            delivery_from_stored(stored("b", QoS::AtLeastOnce), Some(2), &clock),
        ];
        let mut session = Session::restore(limits(), queued, Vec::new(), Vec::new());
        assert!(session.withdraw(2));
        assert!(!session.withdraw(2));
        assert_eq!(session.queued(), 1);
    }

    #[tokio::test]
    async fn restore_rebuilds_sessions_subscriptions_and_retained_and_sequence_numbers_grow() {
        let store = Arc::new(MemoryStore::new());
        let broker = Broker::with_store(Config::default(), Hooks::none(), store);
        let mut session = StoredSession::new("c", NEVER_EXPIRES);
        session.subscriptions.push(StoredSubscription {
            filter: "a/#".into(),
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            identifier: Some(3),
        });
        let snapshot = Snapshot {
            sessions: vec![RestoredSession {
                session,
                queued: vec![(17, stored("a/x", QoS::AtLeastOnce))],
                inflight: Vec::new(),
                inbound_qos2: vec![4],
            }],
            retained: vec![StoredMessage {
                retain: true,
                properties: Properties::default(),
                ..stored("r", QoS::AtMostOnce)
            }],
        };
        broker.restore(snapshot, SystemTime::now());
        assert_eq!(broker.session_count(), 1);
        assert_eq!(broker.subscription_count(), 1);
        assert_eq!(broker.retained_count(), 1);
        assert!(broker.next_store_seq() > 17);
        let slot = broker.shared.sessions.get("c").expect("session restored");
        assert!(slot.is_persisted());
    }
}
