//! The MQTT session engine, sans-IO: one client's protocol state (QoS 1/2 handshakes, inflight
//! window, receive maximum, topic aliases, keep-alive, expiry) as plain structs whose methods
//! take packets and the time and return packets to send. No sockets, no clock.
//!
//! A [`Session`] is the state the spec says outlives a network connection (subscriptions'
//! bookkeeping, the outbound inflight window, inbound QoS 2 exchanges awaiting PUBREL, queued
//! messages) plus a [`Link`] holding what lives for one connection only (the client's receive
//! maximum and maximum packet size, topic aliases).

mod auth;
mod connect;
mod inflight;
mod keepalive;
mod message;
mod topic_alias;

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

pub use auth::{AuthOutcome, ClientAuth, EarlyEnd, EnhancedAuth, PluginAnswer, MAX_AUTH_ROUNDS};
pub use connect::{connack_properties, SessionExpiry};
pub use inflight::{InflightWindow, OutboundState, PubRecOutcome};
pub use keepalive::KeepAlive;
pub use message::{Delivery, Message};
pub use topic_alias::{InboundAliases, OutboundAlias, OutboundAliases};

use crate::config::Limits;
use crate::protocol::{
    encoded_len, Ack, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
};

/// A rule broken by the client: the connection ends with this reason (v5 DISCONNECT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub reason: ReasonCode,
    pub message: &'static str,
}

impl Violation {
    pub fn new(reason: ReasonCode, message: &'static str) -> Violation {
        Violation { reason, message }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.reason)
    }
}

/// The broker's limits a session applies (from `[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Outbound QoS 1/2 messages unacknowledged at once (further capped by the client's
    /// Receive Maximum).
    pub max_inflight: u16,
    /// Messages waiting to be sent (offline or behind a full window) before new ones drop.
    pub max_queued_messages: usize,
    /// The Receive Maximum the broker announces to v5 clients.
    pub receive_maximum: u16,
    /// The Topic Alias Maximum the broker announces to v5 clients.
    pub topic_alias_maximum: u16,
}

impl SessionLimits {
    pub fn from_config(limits: &Limits) -> SessionLimits {
        SessionLimits {
            max_inflight: limits.max_inflight.max(1),
            max_queued_messages: limits.max_queued_messages,
            receive_maximum: limits.receive_maximum.max(1),
            topic_alias_maximum: limits.topic_alias_maximum,
        }
    }
}

/// What the client announced in CONNECT about itself, for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    pub version: ProtocolVersion,
    /// The client's Receive Maximum (65,535 when absent).
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size; `None` = no limit beyond the protocol's.
    pub maximum_packet_size: Option<u32>,
    /// The client's Topic Alias Maximum (0 when absent: no outbound aliases).
    pub topic_alias_maximum: u16,
}

impl LinkParams {
    pub fn from_connect(connect: &Connect) -> LinkParams {
        let p = &connect.properties;
        LinkParams {
            version: connect.protocol,
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX).max(1),
            maximum_packet_size: p.maximum_packet_size,
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
        }
    }
}

/// The connection-scoped part of a session: exists while a client is connected.
#[derive(Debug)]
pub struct Link {
    params: LinkParams,
    /// min(client Receive Maximum, limits.max_inflight).
    window: usize,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    /// Unacknowledged PUBLISHes of an earlier connection still to be re-sent on this one.
    resend: VecDeque<u16>,
}

/// What became of a message offered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// QoS 0 messages are not kept for offline sessions.
    DroppedOffline,
    /// The queue is at `max_queued_messages`.
    DroppedQueueFull,
    /// A QoS 1/2 message for a connected client whose queue is at `max_queued_messages` was
    /// queued anyway: the publisher must be held back (flow control) until
    /// [`Session::has_room`], or until the client stops taking messages for the stall time.
    QueuedOverLimit,
}

/// An inbound PUBLISH after the session's checks.
// A short-lived return value moved straight into routing: boxing would cost an allocation
// per PUBLISH for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundPublish {
    /// A new message to authorize and route (topic alias resolved).
    Route(Publish),
    /// A QoS 2 PUBLISH whose packet id awaits PUBREL: acknowledge with PUBREC again but do not
    /// route it a second time [MQTT-4.3.3-9].
    Duplicate { packet_id: u16 },
}

/// A change to a session's state that a persistent store must record (kept only while the
/// session is journaling, see [`Session::set_journaling`]). The broker turns these into store
/// operations after each [`Session::poll_transmit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    /// A queued message left the queue and went out as in-flight exchange `packet_id`.
    Sent {
        seq: Option<u64>,
        packet_id: u16,
        delivery: Delivery,
    },
    /// A queued message was dropped (expired, or too large for the client).
    Dropped { seq: u64 },
    /// An in-flight exchange was given up (too large for the client's new limit).
    Removed { packet_id: u16 },
}

/// Counts from one [`Session::poll_transmit`] call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transmitted {
    pub sent: usize,
    /// Dropped because their Message Expiry Interval had passed [MQTT-3.3.2-5].
    pub expired: usize,
    /// Dropped because they exceed the client's Maximum Packet Size [MQTT-3.1.2-25].
    pub too_large: usize,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    limits: SessionLimits,
    inflight: InflightWindow,
    /// Messages waiting to go out, in order.
    pending: VecDeque<Delivery>,
    /// Inbound QoS 2 packet ids PUBREC'd and awaiting PUBREL.
    awaiting_pubrel: BTreeSet<u16>,
    /// Messages dropped because the queue was full, over the session's life.
    dropped: u64,
    /// While the queue is at or over `max_queued_messages`: when it got there, or when a
    /// message last left it since. A connected client whose queue has been full this long
    /// without taking a message is stalled: publishers are no longer held back for it.
    full_since: Option<Instant>,
    link: Option<Link>,
    /// Whether changes are recorded in `journal` for the persistent store.
    journaling: bool,
    journal: Vec<Journal>,
}

impl Session {
    pub fn new(limits: SessionLimits) -> Session {
        Session {
            limits,
            inflight: InflightWindow::new(),
            pending: VecDeque::new(),
            awaiting_pubrel: BTreeSet::new(),
            dropped: 0,
            full_since: None,
            link: None,
            journaling: false,
            journal: Vec::new(),
        }
    }

    /// A session restored from the persistent store, offline: its queued messages in order,
    /// its outbound in-flight exchanges in send order, and the inbound QoS 2 packet ids still
    /// awaiting PUBREL. It journals its changes.
    pub fn restore(
        limits: SessionLimits,
        queued: impl IntoIterator<Item = Delivery>,
        inflight: impl IntoIterator<Item = (u16, OutboundState)>,
        awaiting_pubrel: impl IntoIterator<Item = u16>,
    ) -> Session {
        let mut session = Session::new(limits);
        session.pending.extend(queued);
        for (id, state) in inflight {
            session.inflight.restore(id, state);
        }
        session.awaiting_pubrel.extend(awaiting_pubrel);
        session.journaling = true;
        session
    }

    /// Starts or stops recording [`Journal`] entries (on for persistent sessions when the
    /// broker persists).
    pub fn set_journaling(&mut self, on: bool) {
        self.journaling = on;
        if !on {
            self.journal.clear();
        }
    }

    /// The changes recorded since the last call.
    pub fn take_journal(&mut self) -> Vec<Journal> {
        std::mem::take(&mut self.journal)
    }

    pub fn is_online(&self) -> bool {
        self.link.is_some()
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.link.as_ref().map(|l| l.params.version)
    }

    pub fn queued(&self) -> usize {
        self.pending.len()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A client (re)connects to this session. PUBREL is re-sent at once for PUBREC'd messages;
    /// unacknowledged PUBLISHes are queued for re-sending with DUP=1 and their original packet
    /// ids, in their original order [MQTT-4.4.0-1], by [`Session::poll_transmit`] — as the
    /// client's Receive Maximum allows [MQTT-3.3.4-9], and before any queued message.
    pub fn attach(&mut self, params: LinkParams, out: &mut Vec<Packet>) {
        let window = usize::from(params.receive_maximum.min(self.limits.max_inflight)).max(1);
        let v5 = params.version.is_v5();
        let mut resend = VecDeque::new();
        for (id, state) in self.inflight.in_send_order() {
            match state {
                OutboundState::Published(_) => resend.push_back(id),
                OutboundState::Released => out.push(Packet::PubRel(Ack::new(id))),
            }
        }
        self.link = Some(Link {
            params,
            window,
            inbound_aliases: InboundAliases::new(if v5 {
                self.limits.topic_alias_maximum
            } else {
                0
            }),
            outbound_aliases: OutboundAliases::new(if v5 { params.topic_alias_maximum } else { 0 }),
            resend,
        });
        // A queue filled while offline is not stalled: the client just arrived.
        self.full_since = None;
    }

    /// The connection ended; the session (if kept) goes offline.
    pub fn detach(&mut self) {
        self.link = None;
        // QoS 0 messages are not kept for an offline client.
        self.pending.retain(|d| d.qos != QoS::AtMostOnce);
    }

    /// Offers a message to this session with a hard bound: a full queue drops it (counted).
    /// For retained messages sent on subscription and for offline sessions.
    pub fn enqueue(&mut self, delivery: Delivery) -> Enqueued {
        if self.link.is_none() && delivery.qos == QoS::AtMostOnce {
            return Enqueued::DroppedOffline;
        }
        if self.pending.len() >= self.limits.max_queued_messages {
            self.dropped += 1;
            return Enqueued::DroppedQueueFull;
        }
        self.pending.push_back(delivery);
        Enqueued::Queued
    }

    /// Removes the queued message with store sequence `seq` (one whose store write failed),
    /// if it has not left the queue yet. Returns whether it was found.
    pub fn withdraw(&mut self, seq: u64) -> bool {
        match self.pending.iter().rposition(|d| d.stored == Some(seq)) {
            Some(at) => self.pending.remove(at).is_some(),
            None => false,
        }
    }

    /// Offers a routed message to this session, with flow control instead of loss: when the
    /// queue is full and the client is connected and not stalled (it took a message within
    /// `stall` of `now`), a QoS 1/2 message is queued over the limit and
    /// [`Enqueued::QueuedOverLimit`] tells the caller to hold its publisher back. QoS 0 to a
    /// full queue, and anything to a full offline or stalled session, is dropped and counted
    /// (an offline session's queue is the bounded store of `max_queued_messages`).
    pub fn offer(&mut self, delivery: Delivery, now: Instant, stall: Duration) -> Enqueued {
        if self.link.is_none() && delivery.qos == QoS::AtMostOnce {
            return Enqueued::DroppedOffline;
        }
        if self.pending.len() < self.limits.max_queued_messages {
            self.push(delivery, now);
            return Enqueued::Queued;
        }
        if self.link.is_some() && delivery.qos != QoS::AtMostOnce && !self.is_stalled(now, stall) {
            self.push(delivery, now);
            return Enqueued::QueuedOverLimit;
        }
        self.dropped += 1;
        Enqueued::DroppedQueueFull
    }

    fn push(&mut self, delivery: Delivery, now: Instant) {
        self.pending.push_back(delivery);
        if self.full_since.is_none() && !self.has_room() {
            self.full_since = Some(now);
        }
    }

    /// Whether a message just queued can leave at once (connected, and the window is open
    /// or the message needs none): only then is the connection worth waking. A full window
    /// reopens when the client acknowledges, and the connection transmits after that anyway.
    pub fn can_send_now(&self, qos: QoS) -> bool {
        self.link
            .as_ref()
            .is_some_and(|link| qos == QoS::AtMostOnce || self.inflight.len() < link.window)
    }

    /// Whether the queue is below `max_queued_messages` (a held-back publisher may go on).
    pub fn has_room(&self) -> bool {
        self.pending.len() < self.limits.max_queued_messages
    }

    /// Whether the queue has been full for `stall` without a message leaving it.
    pub fn is_stalled(&self, now: Instant, stall: Duration) -> bool {
        self.full_since
            .is_some_and(|since| now.saturating_duration_since(since) >= stall)
    }

    /// When a full queue counts as stalled if no message leaves it before; `None` when the
    /// queue is not full.
    pub fn stalls_at(&self, stall: Duration) -> Option<Instant> {
        self.full_since.map(|since| since + stall)
    }

    /// Whether `packet` is within the client's Maximum Packet Size [MQTT-3.1.2-24].
    fn within_limit(link: &Link, packet: &Packet) -> bool {
        link.params
            .maximum_packet_size
            .is_none_or(|max| encoded_len(packet, link.params.version) <= max as usize)
    }

    /// Applies outbound topic aliases and the client's Maximum Packet Size; `None` = drop.
    /// `topic` is the message's shared topic (no copy is made to look up or keep an alias).
    fn fit(link: &mut Link, mut publish: Publish, topic: &std::sync::Arc<str>) -> Option<Packet> {
        let alias = if publish.topic.is_empty() || !link.outbound_aliases.is_enabled() {
            OutboundAlias::None
        } else {
            link.outbound_aliases.choose(topic)
        };
        OutboundAliases::apply(alias, &mut publish);
        let packet = Packet::Publish(publish);
        if !Self::within_limit(link, &packet) {
            return None;
        }
        link.outbound_aliases.commit(topic, alias);
        Some(packet)
    }

    /// Moves queued messages onto the wire while the client's window allows, in order.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<Packet>) -> Transmitted {
        let queued_before = self.pending.len();
        let stats = self.transmit_queued(now, out);
        if self.pending.len() < queued_before {
            // The client is taking messages: a full queue is not stalled.
            self.full_since = if self.has_room() { None } else { Some(now) };
        }
        stats
    }

    fn transmit_queued(&mut self, now: Instant, out: &mut Vec<Packet>) -> Transmitted {
        let mut stats = Transmitted::default();
        let Some(link) = self.link.as_mut() else {
            return stats;
        };
        let version = link.params.version;
        // Re-sent messages count against the client's Receive Maximum once sent again; the
        // ones still waiting in `resend` do not yet.
        while let Some(&id) = link.resend.front() {
            // `resend` may hold ids the client acknowledged meanwhile: saturate.
            if self.inflight.len().saturating_sub(link.resend.len()) >= link.window {
                return stats;
            }
            link.resend.pop_front();
            let Some(OutboundState::Published(delivery)) = self.inflight.get(id) else {
                continue;
            };
            let publish = delivery.to_publish(version, Some(id), true, now);
            match Self::fit(link, publish, &delivery.message.topic) {
                Some(packet) => {
                    out.push(packet);
                    stats.sent += 1;
                }
                None => {
                    self.inflight.remove(id);
                    if self.journaling {
                        self.journal.push(Journal::Removed { packet_id: id });
                    }
                    stats.too_large += 1;
                }
            }
        }
        while let Some(front) = self.pending.front() {
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= link.window {
                // A full window holds back everything behind it, QoS 0 included, so
                // messages leave in the order they arrived [MQTT-4.6.0-6].
                break;
            }
            let Some(delivery) = self.pending.pop_front() else {
                break;
            };
            if delivery.message.is_expired(now) {
                stats.expired += 1;
                if let (true, Some(seq)) = (self.journaling, delivery.stored) {
                    self.journal.push(Journal::Dropped { seq });
                }
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                let publish = delivery.to_publish(version, None, false, now);
                match Self::fit(link, publish, &delivery.message.topic) {
                    Some(packet) => {
                        out.push(packet);
                        stats.sent += 1;
                    }
                    None => stats.too_large += 1,
                }
                continue;
            }
            let candidate = Packet::Publish(delivery.to_publish(version, Some(1), false, now));
            // Checked before taking a packet id: a message the client cannot accept is
            // discarded as if sent [MQTT-3.1.2-25].
            if !Self::within_limit(link, &candidate) {
                stats.too_large += 1;
                if let (true, Some(seq)) = (self.journaling, delivery.stored) {
                    self.journal.push(Journal::Dropped { seq });
                }
                continue;
            }
            let Packet::Publish(candidate) = candidate else {
                continue;
            };
            let journaled = self.journaling.then(|| delivery.clone());
            let topic = delivery.message.topic.clone();
            let Some(id) = self.inflight.insert(delivery) else {
                break;
            };
            let mut publish = candidate;
            publish.packet_id = Some(id);
            match Self::fit(link, publish, &topic) {
                Some(packet) => {
                    out.push(packet);
                    stats.sent += 1;
                    if let Some(delivery) = journaled {
                        self.journal.push(Journal::Sent {
                            seq: delivery.stored,
                            packet_id: id,
                            delivery,
                        });
                    }
                }
                None => {
                    self.inflight.remove(id);
                    stats.too_large += 1;
                    if let Some(seq) = journaled.and_then(|d| d.stored) {
                        self.journal.push(Journal::Dropped { seq });
                    }
                }
            }
        }
        stats
    }

    /// PUBACK from the client.
    pub fn on_puback(&mut self, ack: &Ack) -> bool {
        self.inflight.on_puback(ack.packet_id)
    }

    /// PUBREC from the client: answer with PUBREL (unless the client refused the message).
    pub fn on_pubrec(&mut self, ack: &Ack, out: &mut Vec<Packet>) {
        if let PubRecOutcome::Release(reason) = self.inflight.on_pubrec(ack.packet_id, ack.reason) {
            out.push(Packet::PubRel(Ack {
                reason: self.v5_reason(reason),
                ..Ack::new(ack.packet_id)
            }));
        }
    }

    /// PUBCOMP from the client.
    pub fn on_pubcomp(&mut self, ack: &Ack) -> bool {
        self.inflight.on_pubcomp(ack.packet_id)
    }

    fn v5_reason(&self, reason: ReasonCode) -> ReasonCode {
        match self.version() {
            Some(ProtocolVersion::V5) => reason,
            _ => ReasonCode::SUCCESS,
        }
    }

    /// An inbound PUBLISH: resolves its topic alias, enforces our Receive Maximum and detects
    /// QoS 2 duplicates.
    pub fn receive_publish(&mut self, mut publish: Publish) -> Result<InboundPublish, Violation> {
        let Some(link) = self.link.as_mut() else {
            return Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "PUBLISH on a session without a connection",
            ));
        };
        let v5 = link.params.version.is_v5();
        if v5 {
            link.inbound_aliases.resolve(&mut publish)?;
        } else if publish.topic.is_empty() {
            return Err(Violation::new(
                ReasonCode::TOPIC_NAME_INVALID,
                "empty topic name",
            ));
        }
        if let Some(id) = publish.packet_id {
            if publish.qos == QoS::ExactlyOnce && self.awaiting_pubrel.contains(&id) {
                return Ok(InboundPublish::Duplicate { packet_id: id });
            }
            // QoS 1 is acknowledged before the next packet is read, so the unacknowledged
            // QoS > 0 publishes are the QoS 2 ones awaiting PUBREL plus this one.
            if v5 && self.awaiting_pubrel.len() >= usize::from(self.limits.receive_maximum) {
                return Err(Violation::new(
                    ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                    "more unacknowledged QoS > 0 PUBLISHes than the Receive Maximum",
                ));
            }
        }
        Ok(InboundPublish::Route(publish))
    }

    /// The acknowledgement of an inbound PUBLISH once it was handled: PUBACK for QoS 1, PUBREC
    /// for QoS 2 (and the id is remembered until PUBREL unless `reason` refuses the message).
    /// MQTT 3.x acknowledgements carry no reason, so a refusal there is silent.
    pub fn acknowledge_publish(
        &mut self,
        qos: QoS,
        packet_id: Option<u16>,
        reason: ReasonCode,
    ) -> Option<Packet> {
        let id = packet_id?;
        let reason = self.v5_reason(reason);
        let ack = Ack {
            reason,
            ..Ack::new(id)
        };
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if !reason.is_error() {
                    self.awaiting_pubrel.insert(id);
                }
                Some(Packet::PubRec(ack))
            }
        }
    }

    /// PUBREL from the client: the QoS 2 exchange ends with PUBCOMP; the packet id is free
    /// again, so a later PUBLISH with it is a new message [MQTT-4.3.3-11].
    pub fn on_pubrel(&mut self, ack: &Ack) -> Packet {
        let reason = if self.awaiting_pubrel.remove(&ack.packet_id) {
            ReasonCode::SUCCESS
        } else {
            self.v5_reason(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        };
        Packet::PubComp(Ack {
            reason,
            ..Ack::new(ack.packet_id)
        })
    }
}

#[cfg(test)]
mod tests;
