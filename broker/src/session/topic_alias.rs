//! MQTT 5 topic aliases, both directions. Aliases live for one network connection only
//! [MQTT-3.3.2-7]: both maps are created fresh when a client (re)connects.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Violation;
use crate::protocol::{Publish, ReasonCode};

/// Aliases the client sets towards the broker, up to the Topic Alias Maximum we announced.
#[derive(Debug, Default)]
pub struct InboundAliases {
    max: u16,
    topics: BTreeMap<u16, String>,
}

impl InboundAliases {
    pub fn new(max: u16) -> InboundAliases {
        InboundAliases {
            max,
            topics: BTreeMap::new(),
        }
    }

    /// Replaces an empty topic by the one its alias stands for, or records a new mapping, and
    /// strips the alias property so the message is routed by name.
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<(), Violation> {
        let Some(alias) = publish.properties.topic_alias.take() else {
            if publish.topic.is_empty() {
                return Err(Violation::new(
                    ReasonCode::PROTOCOL_ERROR,
                    "empty topic name without a topic alias",
                ));
            }
            return Ok(());
        };
        if alias == 0 || alias > self.max {
            // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
            return Err(Violation::new(
                ReasonCode::TOPIC_ALIAS_INVALID,
                "topic alias is 0 or above the Topic Alias Maximum",
            ));
        }
        if publish.topic.is_empty() {
            match self.topics.get(&alias) {
                Some(topic) => publish.topic.clone_from(topic),
                None => {
                    return Err(Violation::new(
                        ReasonCode::PROTOCOL_ERROR,
                        "topic alias used before it was set",
                    ))
                }
            }
        } else {
            self.topics.insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}

/// Aliases the broker sets towards the client, up to the client's Topic Alias Maximum. The
/// first `max` distinct topics get an alias; later PUBLISHes on them carry an empty topic.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    max: u16,
    by_topic: BTreeMap<Arc<str>, u16>,
}

/// How a PUBLISH to the client names its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundAlias {
    /// No alias: send the topic name.
    None,
    /// Send the topic name and this alias, which then becomes known to the client.
    Set(u16),
    /// Send an empty topic name and this alias.
    Use(u16),
}

impl OutboundAliases {
    pub fn new(max: u16) -> OutboundAliases {
        OutboundAliases {
            max,
            by_topic: BTreeMap::new(),
        }
    }

    /// Whether the client accepts aliases at all (Topic Alias Maximum > 0).
    pub fn is_enabled(&self) -> bool {
        self.max > 0
    }

    /// The alias to use for `topic`; call [`OutboundAliases::commit`] once the packet is sent.
    pub fn choose(&self, topic: &Arc<str>) -> OutboundAlias {
        if let Some(alias) = self.by_topic.get(topic) {
            return OutboundAlias::Use(*alias);
        }
        let next = self.by_topic.len();
        if next < usize::from(self.max) {
            // Aliases are 1..=max; `next` < max keeps this in range.
            OutboundAlias::Set(u16::try_from(next + 1).unwrap_or(self.max))
        } else {
            OutboundAlias::None
        }
    }

    pub fn commit(&mut self, topic: &Arc<str>, alias: OutboundAlias) {
        if let OutboundAlias::Set(a) = alias {
            self.by_topic.insert(topic.clone(), a);
        }
    }

    /// Applies `alias` to a PUBLISH about to be sent.
    pub fn apply(alias: OutboundAlias, publish: &mut Publish) {
        match alias {
            OutboundAlias::None => {}
            OutboundAlias::Set(a) => publish.properties.topic_alias = Some(a),
            OutboundAlias::Use(a) => {
                publish.properties.topic_alias = Some(a);
                publish.topic.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::{Properties, QoS};

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            properties: Properties {
                topic_alias: alias,
                ..Properties::default()
            },
            payload: Bytes::new(),
        }
    }

    #[test]
    fn topic_alias_sets_then_replaces_empty_topic_mqtt_3_3_2_12() {
        let mut a = InboundAliases::new(4);
        let mut p = publish("a/b", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "a/b");
        assert_eq!(p.properties.topic_alias, None);
        let mut p = publish("", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "a/b");
        // a mapping can be changed
        let mut p = publish("c", Some(2));
        a.resolve(&mut p).unwrap();
        let mut p = publish("", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "c");
    }

    #[test]
    fn topic_alias_zero_is_invalid_mqtt_3_3_2_8() {
        let mut a = InboundAliases::new(4);
        let err = a.resolve(&mut publish("a", Some(0))).unwrap_err();
        assert_eq!(err.reason, ReasonCode::TOPIC_ALIAS_INVALID);
    }

    #[test]
    fn topic_alias_above_maximum_is_invalid_mqtt_3_3_2_9() {
        let mut a = InboundAliases::new(4);
        let err = a.resolve(&mut publish("a", Some(5))).unwrap_err();
        assert_eq!(err.reason, ReasonCode::TOPIC_ALIAS_INVALID);
        let mut none = InboundAliases::new(0);
        let err = none.resolve(&mut publish("a", Some(1))).unwrap_err();
        assert_eq!(err.reason, ReasonCode::TOPIC_ALIAS_INVALID);
    }

    #[test]
    fn unknown_topic_alias_with_empty_topic_is_a_protocol_error() {
        let mut a = InboundAliases::new(4);
        let err = a.resolve(&mut publish("", Some(3))).unwrap_err();
        assert_eq!(err.reason, ReasonCode::PROTOCOL_ERROR);
        let err = a.resolve(&mut publish("", None)).unwrap_err();
        assert_eq!(err.reason, ReasonCode::PROTOCOL_ERROR);
    }

    #[test]
    fn outbound_aliases_stay_within_client_maximum_mqtt_3_3_2_11() {
        let mut a = OutboundAliases::new(1);
        let t1: Arc<str> = "one".into();
        let t2: Arc<str> = "two".into();
        let c = a.choose(&t1);
        assert_eq!(c, OutboundAlias::Set(1));
        a.commit(&t1, c);
        assert_eq!(a.choose(&t1), OutboundAlias::Use(1));
        assert_eq!(a.choose(&t2), OutboundAlias::None);
        let zero = OutboundAliases::new(0);
        assert_eq!(zero.choose(&t1), OutboundAlias::None);
    }
}
