//! The records the broker keeps across restarts: messages, subscriptions, sessions, outbound
//! in-flight entries. They are plain values independent of the session engine's in-memory
//! types, with wall-clock (`SystemTime`) deadlines because `Instant` means nothing after a
//! restart. The expiry rules applied on restore live here too, so every store applies the same.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::protocol::{Properties, Publish, QoS, SubscriptionOptions, Will};

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

    /// The stored form of an inbound PUBLISH received at `now` (topic alias already resolved):
    /// the Message Expiry Interval becomes the absolute `expires_at`; per-hop properties
    /// (topic alias, subscription identifiers, ...) are dropped.
    pub fn from_publish(publish: &Publish, now: SystemTime) -> StoredMessage {
        let mut properties = StoredMessage::stored_properties(&publish.properties);
        properties.subscription_identifiers.clear();
        let expires_at = properties
            .message_expiry_interval
            .take()
            .and_then(|secs| now.checked_add(Duration::from_secs(u64::from(secs))));
        StoredMessage {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
        }
    }

    /// The PUBLISH to send at `now`: the Message Expiry Interval is what is left of it,
    /// rounded up so a live message never says 0 [MQTT-3.3.2-6]. `dup` is set on a
    /// redelivery after reconnect [MQTT-3.3.1-1]. For an MQTT 3.x client the caller sends it
    /// without properties.
    pub fn to_publish(&self, packet_id: Option<u16>, dup: bool, now: SystemTime) -> Publish {
        let mut properties = self.properties.clone();
        if let Some(at) = self.expires_at {
            let left = at.duration_since(now).unwrap_or(Duration::ZERO);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            properties.message_expiry_interval = Some(u32::try_from(secs).unwrap_or(u32::MAX));
        }
        Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.clone(),
            packet_id,
            properties,
            payload: self.payload.clone(),
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

impl StoredWill {
    /// The stored form of the will of a CONNECT received at `now`, with its Will Delay
    /// Interval (0 when absent or for MQTT 3.x).
    pub fn from_will(will: &Will, now: SystemTime) -> StoredWill {
        let publish = Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic.clone(),
            packet_id: None,
            properties: will.properties.clone(),
            payload: will.payload.clone(),
        };
        StoredWill {
            message: StoredMessage::from_publish(&publish, now),
            delay_secs: will.properties.will_delay_interval.unwrap_or(0),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn expiry_interval_becomes_absolute_and_is_decremented_on_send_mqtt_3_3_2_6() {
        let mut properties = Properties {
            message_expiry_interval: Some(10),
            content_type: Some("text/plain".into()),
            topic_alias: Some(3),
            subscription_identifiers: vec![4],
            ..Properties::default()
        };
        properties.user_properties.push(("k".into(), "v".into()));
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: Some(1),
            properties,
            payload: Bytes::from_static(b"x"),
        };
        let stored = StoredMessage::from_publish(&publish, t0());
        assert_eq!(stored.expires_at, Some(t0() + Duration::from_secs(10)));
        assert_eq!(stored.properties.message_expiry_interval, None);
        assert_eq!(stored.properties.topic_alias, None);
        assert!(stored.properties.subscription_identifiers.is_empty());
        assert_eq!(
            stored.properties.content_type.as_deref(),
            Some("text/plain")
        );

        let later = t0() + Duration::from_millis(3_500);
        let out = stored.to_publish(Some(9), true, later);
        assert_eq!(out.properties.message_expiry_interval, Some(7));
        assert!(out.dup);
        assert_eq!(out.packet_id, Some(9));
        assert_eq!(
            out.properties.user_properties,
            vec![("k".into(), "v".into())]
        );
        assert!(!stored.is_expired(later));
        assert!(stored.is_expired(t0() + Duration::from_secs(10)));
    }

    #[test]
    fn will_keeps_its_delay_interval() {
        let will = Will {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: Some(30),
                ..Properties::default()
            },
        };
        let stored = StoredWill::from_will(&will, t0());
        assert_eq!(stored.delay_secs, 30);
        assert_eq!(stored.message.expires_at, None);
        assert_eq!(stored.message.properties.will_delay_interval, None);
    }

    #[test]
    fn session_expires_its_interval_after_disconnect_never_or_with_the_connection() {
        let mut s = StoredSession::new("c", 60);
        assert!(!s.is_expired(t0()), "connected sessions do not expire");
        s.disconnected_at = Some(t0());
        assert!(!s.is_expired(t0() + Duration::from_secs(59)));
        assert!(s.is_expired(t0() + Duration::from_secs(60)));
        s.expiry_interval = NEVER_EXPIRES;
        assert!(!s.is_expired(t0() + Duration::from_secs(1 << 40)));
        s.expiry_interval = 0;
        assert!(s.is_expired(t0()));
    }
}
