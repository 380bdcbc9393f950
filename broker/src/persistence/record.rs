//! The records the broker keeps across restarts: messages, subscriptions, sessions, outbound
//! in-flight entries. They are plain values independent of the session engine's in-memory
//! types, with wall-clock (`SystemTime`) deadlines because `Instant` means nothing after a
//! restart. The expiry rules applied on restore live here too, so every store applies the same.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::protocol::{Properties, QoS, SubscriptionOptions};

/// The session expiry interval meaning "the session never expires" (MQTT 5, 3.1.2.11.2).
pub const NEVER_EXPIRES: u32 = 0xFFFF_FFFF;

/// An application message as stored: a retained message, a will, a message queued for an
/// offline session or one in flight to a client.
///
/// For queued and in-flight messages `qos` and `retain` are the ones of that delivery (already
/// lowered to the granted QoS) and `properties.subscription_identifiers` holds the identifiers
/// of the subscriptions that matched, so the PUBLISH can be rebuilt as it was meant to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// The v5 properties passed through to subscribers. Stored: payload format indicator,
    /// message expiry interval, content type, response topic, correlation data, subscription
    /// identifiers and user properties; every other property is per hop and is not stored.
    pub properties: Properties,
    /// Absolute wall-clock expiry (from the Message Expiry Interval); `None` = never. Stores
    /// keep it with millisecond precision.
    pub expires_at: Option<SystemTime>,
}

impl StoredMessage {
    /// A message without properties or expiry (MQTT 3.x style).
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Self {
        StoredMessage {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            properties: Properties::default(),
            expires_at: None,
        }
    }

    /// True once the message's expiry has passed: it must not be delivered any more
    /// [MQTT-3.3.2-5].
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Only the properties the store keeps (see the field's doc); used to compare a message
    /// with what a store gives back.
    pub fn stored_properties(properties: &Properties) -> Properties {
        Properties {
            payload_format_indicator: properties.payload_format_indicator,
            message_expiry_interval: properties.message_expiry_interval,
            content_type: properties.content_type.clone(),
            response_topic: properties.response_topic.clone(),
            correlation_data: properties.correlation_data.clone(),
            subscription_identifiers: properties.subscription_identifiers.clone(),
            user_properties: properties.user_properties.clone(),
            ..Properties::default()
        }
    }
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub filter: String,
    pub options: SubscriptionOptions,
    /// The v5 Subscription Identifier given in the SUBSCRIBE, if any.
    pub identifier: Option<u32>,
}

/// A will message with its v5 Will Delay Interval in seconds (0 for MQTT 3.x).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    pub message: StoredMessage,
    pub delay_secs: u32,
}

/// A persistent session: everything but its message queues (those are separate records so a
/// message can be added or removed without rewriting the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub client_id: String,
    /// Seconds the session outlives its network connection; [`NEVER_EXPIRES`] = forever,
    /// 0 = ends with the connection (such a session is not restored after a restart).
    pub expiry_interval: u32,
    /// When the client went away; `None` while it is connected. A session still connected
    /// when the broker stopped is restored with the restart time here, so its expiry clock
    /// starts when the broker comes back.
    pub disconnected_at: Option<SystemTime>,
    /// The will still pending (not yet published nor discarded).
    pub will: Option<StoredWill>,
    /// One per filter; restored sorted by filter.
    pub subscriptions: Vec<StoredSubscription>,
}

impl StoredSession {
    /// A connected session with no will and no subscriptions.
    pub fn new(client_id: impl Into<String>, expiry_interval: u32) -> Self {
        StoredSession {
            client_id: client_id.into(),
            expiry_interval,
            disconnected_at: None,
            will: None,
            subscriptions: Vec::new(),
        }
    }

    /// True when the session must not be restored at `now`: its expiry interval ran out while
    /// it was disconnected, or it had interval 0 (it ended when its connection did, at the
    /// latest when the broker stopped).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        if self.expiry_interval == 0 {
            return true;
        }
        if self.expiry_interval == NEVER_EXPIRES {
            return false;
        }
        match self.disconnected_at {
            None => false,
            Some(at) => {
                let deadline = at.checked_add(Duration::from_secs(u64::from(self.expiry_interval)));
                deadline.is_some_and(|deadline| now >= deadline)
            }
        }
    }
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InflightState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2). Resent with DUP set on
    /// reconnect.
    AwaitingAck,
    /// PUBREC received, PUBREL sent; waiting for PUBCOMP. On reconnect the PUBREL is resent,
    /// never the PUBLISH.
    AwaitingPubComp,
}

impl InflightState {
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            InflightState::AwaitingAck => 0,
            InflightState::AwaitingPubComp => 1,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Option<InflightState> {
        match v {
            0 => Some(InflightState::AwaitingAck),
            1 => Some(InflightState::AwaitingPubComp),
            _ => None,
        }
    }
}

/// One outbound QoS 1/2 message of a session, by packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInflight {
    pub packet_id: u16,
    pub state: InflightState,
    pub message: StoredMessage,
}

/// A session with its queues, as restored at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoredSession {
    pub session: StoredSession,
    /// Messages waiting for the client, in `seq` order (the order they must be delivered in).
    pub queued: Vec<(u64, StoredMessage)>,
    /// Outbound in-flight messages, by packet id (ascending). Kept even when their message
    /// expired: onward delivery had started [MQTT-3.3.2-5].
    pub inflight: Vec<StoredInflight>,
    /// Inbound QoS 2 packet ids whose PUBREC was sent and PUBREL not yet received: a
    /// re-sent PUBLISH with one of these ids must not be delivered again [MQTT-4.3.3-10].
    pub inbound_qos2: Vec<u16>,
}

impl Default for StoredSession {
    fn default() -> Self {
        StoredSession::new("", NEVER_EXPIRES)
    }
}

/// Everything a store holds, for start-up: expired sessions and expired queued or retained
/// messages already left out (and removed from the store).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Sorted by client id.
    pub sessions: Vec<RestoredSession>,
    /// Sorted by topic.
    pub retained: Vec<StoredMessage>,
}

impl Snapshot {
    pub fn session(&self, client_id: &str) -> Option<&RestoredSession> {
        self.sessions
            .iter()
            .find(|s| s.session.client_id == client_id)
    }
}

/// `SystemTime` as milliseconds since the Unix epoch (times before it are clamped to 0).
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    let ms = u64::try_from(ms).unwrap_or(0);
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
