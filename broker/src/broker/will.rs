//! Wills and the end of sessions. A will is published when its connection closes without a
//! normal DISCONNECT [MQTT-3.1.2-8], after its v5 Will Delay Interval unless the client comes
//! back first [MQTT-3.1.3-9] or the session ends first. An offline session ends when its
//! expiry runs out; its subscriptions then leave the tree.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info};

use super::durable::{session_record, will_record};
use super::sessions::{Parking, Released, SessionSlot, StoredWill};
use super::shared::Broker;
use super::stats;
use crate::persistence::Op;
use crate::protocol::Publish;
use crate::session::SessionExpiry;

impl Broker {
    /// Publishes a will now, in a task of its own (it goes through authorization).
    pub(crate) fn spawn_will(&self, will: StoredWill) {
        let broker = self.clone();
        tokio::spawn(async move { broker.publish_will(will).await });
    }

    pub(crate) async fn publish_will(&self, stored: StoredWill) {
        let mut properties = stored.will.properties;
        properties.will_delay_interval = None;
        let publish = Publish {
            dup: false,
            qos: stored.will.qos,
            retain: stored.will.retain,
            topic: stored.will.topic,
            packet_id: None,
            properties,
            payload: stored.will.payload,
        };
        debug!(client = %stored.client.client_id, topic = %publish.topic, "publishing will");
        // A will is nobody's to acknowledge (its writes are not awaited) and comes from no
        // live connection (nobody to hold back).
        let _ = self
            .publish_as(&stored.client, publish, Vec::new(), &mut Vec::new())
            .await;
    }

    /// What happens to a session after its connection closed: its will (published now,
    /// delayed, or not at all) and, if it outlives the connection, its expiry.
    pub(crate) fn after_close(&self, slot: &Arc<SessionSlot>, released: Released, will: bool) {
        let will = released.will.filter(|_| will);
        let client_id = slot.client_id().to_string();
        if released.ended {
            if released.persisted {
                let _ = self.persist(vec![Op::DeleteSession { client_id }]);
            }
            if let Some(w) = will {
                self.spawn_will(w);
            }
            return;
        }
        stats::add(&self.shared.stats.clients_disconnected, 1);
        let mut parked = None;
        if let Some(w) = will {
            let delay = w.delay();
            if delay == 0 {
                self.spawn_will(w);
            } else {
                let kept = w.will.clone();
                match slot.park_will(released.generation, w) {
                    Parking::Parked => {
                        parked = Some(kept);
                        self.arm_will(
                            slot,
                            released.generation,
                            Duration::from_secs(u64::from(delay)),
                        );
                    }
                    Parking::Cancelled => {}
                    // A Clean Start ended the session while the will was being parked.
                    Parking::SessionEnded(w) => self.spawn_will(*w),
                }
            }
        }
        if released.persisted {
            // Offline from now: the expiry counts from here, and only a will still waiting
            // for its delay stays. Targeted updates, not a rewrite, so they cannot undo the
            // subscriptions of a client that reconnects at once.
            let now = SystemTime::now();
            let ops = if released.expiry_changed {
                let record = session_record(
                    &client_id,
                    released.expiry,
                    Some(now),
                    parked.as_ref(),
                    released.subscriptions,
                );
                vec![Op::SaveSession(record)]
            } else {
                vec![
                    Op::SetDisconnected {
                        client_id: client_id.clone(),
                        at: Some(now),
                    },
                    Op::SetWill {
                        client_id,
                        will: parked.as_ref().map(will_record),
                    },
                ]
            };
            let _ = self.persist(ops);
        }
        if released.expiry.secs != SessionExpiry::NEVER {
            let after = Duration::from_secs(u64::from(released.expiry.secs));
            self.arm_expiry(slot, released.generation, after);
        }
    }

    /// Publishes the will parked in an offline session after `delay`, unless the client came
    /// back or the session ended first.
    pub(crate) fn arm_will(&self, slot: &Arc<SessionSlot>, generation: u64, delay: Duration) {
        let broker = self.clone();
        let slot = slot.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(w) = slot.take_parked_will(generation) {
                let _ = broker.persist(vec![Op::SetWill {
                    client_id: slot.client_id().to_string(),
                    will: None,
                }]);
                broker.publish_will(w).await;
            }
        });
    }

    /// Ends the offline session after `after`, unless a client came back to it meanwhile.
    pub(crate) fn arm_expiry(&self, slot: &Arc<SessionSlot>, generation: u64, after: Duration) {
        let broker = self.clone();
        let slot = slot.clone();
        let at = Instant::now() + after;
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if let Some(expired) = broker.shared.sessions.expire(&slot, generation) {
                let client_id = slot.client_id().clone();
                info!("Session expired: {client_id}");
                if expired.persisted {
                    let _ = broker.persist(vec![Op::DeleteSession {
                        client_id: client_id.to_string(),
                    }]);
                }
                stats::sub(&broker.shared.stats.clients_disconnected, 1);
                if let Some(w) = expired.will {
                    broker.publish_will(w).await;
                }
                broker.shared.hooks.session_expired(&client_id);
            }
        });
    }
}
