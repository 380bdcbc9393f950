//! The outbound inflight window: QoS 1 and 2 messages sent to the client and not yet fully
//! acknowledged, keyed by packet identifier, with the PUBACK / PUBREC / PUBREL / PUBCOMP state
//! machine of the sending side. The window survives a reconnect (it is session state) and is
//! replayed in its original order when the session resumes [MQTT-4.4.0-1].

use std::collections::BTreeMap;

use super::message::Delivery;
use crate::protocol::{QoS, ReasonCode};

/// Where one outbound QoS > 0 exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Delivery),
    /// PUBREC received and PUBREL sent; waiting for PUBCOMP.
    Released,
}

#[derive(Debug)]
struct Entry {
    /// Send order, for in-order redelivery.
    seq: u64,
    state: OutboundState,
}

/// What a PUBREC means for the exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum PubRecOutcome {
    /// Send PUBREL with this reason code.
    Release(ReasonCode),
    /// The receiver refused the message (reason >= 0x80): the exchange is over.
    Refused,
}

#[derive(Debug)]
pub struct InflightWindow {
    /// Ordered maps here and in the session: empty, they take half the room of a hash map
    /// (every connected client holds several), and packet ids are small keys.
    entries: BTreeMap<u16, Entry>,
    next_id: u16,
    next_seq: u64,
}

impl Default for InflightWindow {
    fn default() -> Self {
        InflightWindow::new()
    }
}

impl InflightWindow {
    pub fn new() -> InflightWindow {
        InflightWindow {
            entries: BTreeMap::new(),
            next_id: 1,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A packet identifier not used by any unacknowledged outbound exchange
    /// [MQTT-2.2.1-4]; `None` only when all 65,535 are in use.
    fn allocate_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_id;
            self.next_id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.entries.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Records a QoS 1/2 delivery about to be sent and returns its packet identifier.
    pub fn insert(&mut self, delivery: Delivery) -> Option<u16> {
        debug_assert!(delivery.qos != QoS::AtMostOnce);
        let id = self.allocate_id()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            id,
            Entry {
                seq,
                state: OutboundState::Published(delivery),
            },
        );
        Some(id)
    }

    /// Puts back an exchange restored from the persistent store, with its packet identifier;
    /// exchanges restored one after another are replayed in that order.
    pub fn restore(&mut self, id: u16, state: OutboundState) {
        if id == 0 {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(id, Entry { seq, state });
        self.next_id = if id == u16::MAX { 1 } else { id + 1 };
    }

    /// PUBACK: ends a QoS 1 exchange. Returns whether it matched one; an unknown identifier is
    /// ignored (it may be a late ack of an exchange already discarded).
    pub fn on_puback(&mut self, id: u16) -> bool {
        match self.entries.get(&id) {
            Some(Entry {
                state: OutboundState::Published(d),
                ..
            }) if d.qos == QoS::AtLeastOnce => {
                self.entries.remove(&id);
                true
            }
            _ => false,
        }
    }

    /// PUBREC: the QoS 2 message is owned by the receiver; from now on only PUBREL is resent,
    /// never the PUBLISH [MQTT-4.3.3-4].
    pub fn on_pubrec(&mut self, id: u16, reason: ReasonCode) -> PubRecOutcome {
        match self.entries.get_mut(&id) {
            Some(entry) => match &entry.state {
                OutboundState::Published(d) if d.qos == QoS::ExactlyOnce => {
                    if reason.is_error() {
                        self.entries.remove(&id);
                        PubRecOutcome::Refused
                    } else {
                        entry.state = OutboundState::Released;
                        PubRecOutcome::Release(ReasonCode::SUCCESS)
                    }
                }
                // A repeated PUBREC: answer with PUBREL again.
                OutboundState::Released => PubRecOutcome::Release(ReasonCode::SUCCESS),
                OutboundState::Published(_) => PubRecOutcome::Refused,
            },
            None => PubRecOutcome::Release(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
        }
    }

    /// PUBCOMP: ends a QoS 2 exchange.
    pub fn on_pubcomp(&mut self, id: u16) -> bool {
        if matches!(
            self.entries.get(&id),
            Some(Entry {
                state: OutboundState::Released,
                ..
            })
        ) {
            self.entries.remove(&id);
            true
        } else {
            false
        }
    }

    pub fn get(&self, id: u16) -> Option<&OutboundState> {
        self.entries.get(&id).map(|e| &e.state)
    }

    /// Drops one exchange (e.g. a message the client can no longer accept).
    pub fn remove(&mut self, id: u16) {
        self.entries.remove(&id);
    }

    /// Every unacknowledged exchange in the order it was first sent.
    pub fn in_send_order(&self) -> Vec<(u16, OutboundState)> {
        let mut all: Vec<(u64, u16, &OutboundState)> = self
            .entries
            .iter()
            .map(|(id, e)| (e.seq, *id, &e.state))
            .collect();
        all.sort_unstable_by_key(|(seq, _, _)| *seq);
        all.into_iter()
            .map(|(_, id, state)| (id, state.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::protocol::Properties;
    use crate::session::message::Message;

    fn delivery(qos: QoS) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                topic: "t".into(),
                payload: Bytes::from_static(b"x"),
                qos,
                retain: false,
                properties: Properties::default(),
                expires_at: None::<Instant>,
                publisher: "p".into(),
            }),
            qos,
            retain: false,
            subscription_ids: vec![],
            stored: None,
        }
    }

    #[test]
    fn packet_ids_are_unique_among_unacknowledged_exchanges_mqtt_2_2_1_4() {
        let mut w = InflightWindow::new();
        let a = w.insert(delivery(QoS::AtLeastOnce)).unwrap();
        let b = w.insert(delivery(QoS::AtLeastOnce)).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert!(w.on_puback(a));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn packet_id_allocation_wraps_and_skips_ids_in_use() {
        let mut w = InflightWindow::new();
        let first = w.insert(delivery(QoS::AtLeastOnce)).unwrap();
        w.next_id = u16::MAX;
        assert_eq!(w.insert(delivery(QoS::AtLeastOnce)), Some(u16::MAX));
        // wraps to 1, which is still in use, so 2 is chosen
        assert_eq!(first, 1);
        assert_eq!(w.insert(delivery(QoS::AtLeastOnce)), Some(2));
    }

    #[test]
    fn qos1_exchange_ends_with_puback_mqtt_4_3_2_1() {
        let mut w = InflightWindow::new();
        let id = w.insert(delivery(QoS::AtLeastOnce)).unwrap();
        assert!(!w.on_pubcomp(id));
        assert!(w.on_puback(id));
        assert!(w.is_empty());
        assert!(!w.on_puback(id));
    }

    #[test]
    fn qos2_pubrec_turns_publish_into_pubrel_mqtt_4_3_3_4() {
        let mut w = InflightWindow::new();
        let id = w.insert(delivery(QoS::ExactlyOnce)).unwrap();
        assert!(!w.on_puback(id));
        assert_eq!(
            w.on_pubrec(id, ReasonCode::SUCCESS),
            PubRecOutcome::Release(ReasonCode::SUCCESS)
        );
        assert_eq!(w.in_send_order(), vec![(id, OutboundState::Released)]);
        // a duplicate PUBREC is answered again
        assert_eq!(
            w.on_pubrec(id, ReasonCode::SUCCESS),
            PubRecOutcome::Release(ReasonCode::SUCCESS)
        );
        assert!(w.on_pubcomp(id));
        assert!(w.is_empty());
    }

    #[test]
    fn qos2_pubrec_with_error_ends_the_exchange() {
        let mut w = InflightWindow::new();
        let id = w.insert(delivery(QoS::ExactlyOnce)).unwrap();
        assert_eq!(
            w.on_pubrec(id, ReasonCode::QUOTA_EXCEEDED),
            PubRecOutcome::Refused
        );
        assert!(w.is_empty());
    }

    #[test]
    fn pubrec_for_unknown_id_gets_pubrel_packet_identifier_not_found() {
        let mut w = InflightWindow::new();
        assert_eq!(
            w.on_pubrec(42, ReasonCode::SUCCESS),
            PubRecOutcome::Release(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
    }

    #[test]
    fn unacknowledged_exchanges_are_replayed_in_send_order_mqtt_4_6_0_1() {
        let mut w = InflightWindow::new();
        let ids: Vec<u16> = (0..5)
            .map(|_| w.insert(delivery(QoS::AtLeastOnce)).unwrap())
            .collect();
        w.on_puback(ids[2]);
        let order: Vec<u16> = w.in_send_order().into_iter().map(|(id, _)| id).collect();
        assert_eq!(order, vec![ids[0], ids[1], ids[3], ids[4]]);
    }
}
