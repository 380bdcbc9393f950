//! What travels through the broker once a PUBLISH is accepted: a [`Message`] (read once, shared
//! by every subscriber behind an `Arc`, payload a `Bytes` that is never copied) and a
//! [`Delivery`] (one subscriber's view of it: granted QoS, retain flag, subscription ids).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::{Properties, ProtocolVersion, Publish, QoS};

/// An application message as the broker keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// The v5 properties forwarded untouched (payload format, content type, response topic,
    /// correlation data, user properties). Topic alias, subscription identifiers and the
    /// message expiry interval are per hop and are not kept here.
    pub properties: Properties,
    /// When the Message Expiry Interval runs out; `None` = never.
    pub expires_at: Option<Instant>,
    /// The publishing client's id ("" for the broker itself), for No Local.
    pub publisher: Arc<str>,
}

impl Message {
    /// Builds the broker's copy of an inbound PUBLISH whose topic alias is already resolved.
    pub fn from_publish(publish: Publish, publisher: Arc<str>, now: Instant) -> Message {
        let mut properties = publish.properties;
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        Message {
            topic: publish.topic.into(),
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            publisher,
        }
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The Message Expiry Interval to send now: the received value minus the time the message
    /// waited in the broker [MQTT-3.3.2-6], rounded up so a live message never says 0.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// The QoS it is delivered with: the lower of the published and the granted QoS.
    pub qos: QoS,
    /// The RETAIN flag to send: set for retained messages sent because of a subscription
    /// [MQTT-3.3.1-8]; on live forwarding only with Retain As Published [MQTT-3.3.1-9].
    pub retain: bool,
    /// Identifiers of the subscriptions that matched (v5).
    pub subscription_ids: Vec<u32>,
    /// The sequence number of its queued record in the persistent store, when it has one
    /// (a QoS 1/2 message queued for a persistent session with persistence on).
    pub stored: Option<u64>,
}

impl Delivery {
    /// Live forwarding of `message` to a subscription granted `granted` QoS.
    pub fn live(
        message: Arc<Message>,
        granted: QoS,
        retain_as_published: bool,
        subscription_ids: Vec<u32>,
    ) -> Delivery {
        Delivery {
            qos: granted.min(message.qos),
            retain: retain_as_published && message.retain,
            message,
            subscription_ids,
            stored: None,
        }
    }

    /// A retained message sent because a subscription was made.
    pub fn retained(message: Arc<Message>, granted: QoS, subscription_ids: Vec<u32>) -> Delivery {
        Delivery {
            qos: granted.min(message.qos),
            retain: true,
            message,
            subscription_ids,
            stored: None,
        }
    }

    /// The PUBLISH packet for this delivery, for a client speaking `version`. MQTT 3.x packets
    /// carry no properties.
    pub fn to_publish(
        &self,
        version: ProtocolVersion,
        packet_id: Option<u16>,
        dup: bool,
        now: Instant,
    ) -> Publish {
        let properties = if version.is_v5() {
            let mut properties = self.message.properties.clone();
            properties.message_expiry_interval = self.message.remaining_expiry(now);
            properties.subscription_identifiers = self.subscription_ids.clone();
            properties
        } else {
            Properties::default()
        };
        Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic: self.message.topic.to_string(),
            packet_id,
            properties,
            payload: self.message.payload.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: &'static [u8], qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: true,
            topic: topic.to_owned(),
            packet_id: (qos != QoS::AtMostOnce).then_some(7),
            properties: Properties::default(),
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn message_expiry_is_decremented_by_waiting_time_mqtt_3_3_2_6() {
        let now = Instant::now();
        let mut p = publish("a/b", b"x", QoS::AtLeastOnce);
        p.properties.message_expiry_interval = Some(10);
        let msg = Arc::new(Message::from_publish(p, "pub".into(), now));
        let d = Delivery::live(msg.clone(), QoS::AtLeastOnce, false, vec![]);
        let later = now + Duration::from_secs(4);
        let out = d.to_publish(ProtocolVersion::V5, Some(1), false, later);
        assert_eq!(out.properties.message_expiry_interval, Some(6));
        assert!(!msg.is_expired(later));
        assert!(msg.is_expired(now + Duration::from_secs(10)));
    }

    #[test]
    fn live_forwarding_clears_retain_unless_retain_as_published_mqtt_3_3_1_9() {
        let now = Instant::now();
        let msg = Arc::new(Message::from_publish(
            publish("t", b"x", QoS::AtMostOnce),
            "p".into(),
            now,
        ));
        assert!(!Delivery::live(msg.clone(), QoS::AtMostOnce, false, vec![]).retain);
        assert!(Delivery::live(msg.clone(), QoS::AtMostOnce, true, vec![]).retain);
    }

    #[test]
    fn retained_message_sent_for_new_subscription_has_retain_set_mqtt_3_3_1_8() {
        let now = Instant::now();
        let msg = Arc::new(Message::from_publish(
            publish("t", b"x", QoS::ExactlyOnce),
            "p".into(),
            now,
        ));
        let d = Delivery::retained(msg, QoS::AtLeastOnce, vec![3]);
        assert!(d.retain);
        assert_eq!(d.qos, QoS::AtLeastOnce);
    }

    #[test]
    fn delivered_qos_is_the_minimum_of_published_and_granted_mqtt_3_8_4_6() {
        let now = Instant::now();
        let msg = Arc::new(Message::from_publish(
            publish("t", b"x", QoS::AtLeastOnce),
            "p".into(),
            now,
        ));
        assert_eq!(
            Delivery::live(msg.clone(), QoS::ExactlyOnce, false, vec![]).qos,
            QoS::AtLeastOnce
        );
        assert_eq!(
            Delivery::live(msg, QoS::AtMostOnce, false, vec![]).qos,
            QoS::AtMostOnce
        );
    }

    #[test]
    fn subscription_identifiers_are_sent_to_v5_clients_only_mqtt_3_3_4_3() {
        let now = Instant::now();
        let msg = Arc::new(Message::from_publish(
            publish("t", b"x", QoS::AtMostOnce),
            "p".into(),
            now,
        ));
        let d = Delivery::live(msg, QoS::AtMostOnce, false, vec![1, 9]);
        let v5 = d.to_publish(ProtocolVersion::V5, None, false, now);
        assert_eq!(v5.properties.subscription_identifiers, vec![1, 9]);
        let v3 = d.to_publish(ProtocolVersion::V311, None, false, now);
        assert!(v3.properties.is_empty());
    }
}
