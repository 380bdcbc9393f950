//! SUBSCRIBE and UNSUBSCRIBE: authorization per filter, the subscription tree, the session's
//! own record of its filters, and retained messages sent per Retain Handling — after the
//! SUBACK, with RETAIN set [MQTT-3.3.1-8]; never for shared subscriptions. A persistent
//! session's SUBACK waits until its new subscriptions are stored.

use std::time::Instant;

use super::connection::{Client, Close, Promised};
use crate::persistence::{Op, StoredSubscription};
use crate::plugins::Decision;
use crate::protocol::topic::{parse_shared, valid_topic_filter};
use crate::protocol::{
    Packet, Properties, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::routing::Subscription;
use crate::session::{Delivery, Enqueued};

impl Client {
    pub(crate) async fn subscribe(&mut self, subscribe: Subscribe) -> Result<(), Close> {
        let broker = self.broker.clone();
        let shared = &broker.shared;
        let key = self.slot.client_id().clone();
        let identifier = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        let mut ops = Vec::new();
        let now = Instant::now();
        for (filter, options) in &subscribe.filters {
            if !valid_topic_filter(filter) {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            }
            let is_shared = parse_shared(filter).is_some();
            if is_shared && options.no_local && self.version.is_v5() {
                return Err(Close::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "No Local on a shared subscription [MQTT-3.8.3-4]",
                ));
            }
            match shared
                .hooks
                .authorize_subscribe(&self.info, filter, options.qos)
                .await
            {
                Decision::Deny(code) => {
                    reasons.push(if code.is_error() {
                        code
                    } else {
                        ReasonCode::NOT_AUTHORIZED
                    });
                    continue;
                }
                Decision::Allow | Decision::Defer => {}
            }
            // Under the session's lock, so a takeover that discards this session cannot
            // miss a filter added concurrently.
            let existed = {
                let mut state = self
                    .slot
                    .lock_owned(self.connection)
                    .ok_or(Close::TakenOver)?;
                state.subscriptions.insert(filter.clone());
                if state.persisted {
                    let stored = StoredSubscription {
                        filter: filter.clone(),
                        options: *options,
                        identifier,
                    };
                    state
                        .stored_subscriptions
                        .insert(filter.clone(), stored.clone());
                    ops.push(Op::AddSubscription {
                        client_id: key.to_string(),
                        subscription: stored,
                    });
                }
                shared.tree.subscribe(
                    &key,
                    filter,
                    Subscription {
                        options: *options,
                        identifier,
                    },
                )
            };
            reasons.push(ReasonCode(options.qos as u8));
            shared.hooks.subscribed(&self.info, filter, options.qos);
            let send_retained = !is_shared
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                let mut messages = Vec::new();
                shared.retained.matching(filter, &mut messages);
                retained.extend(
                    messages
                        .into_iter()
                        .filter(|m| !m.is_expired(now))
                        .map(|m| {
                            Delivery::retained(m, options.qos, identifier.into_iter().collect())
                        }),
                );
            }
        }
        let suback = Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Properties::default(),
            reasons,
        });
        let commit = broker.persist(ops);
        self.hold(commit, Promised::Packet(Box::new(suback)))?;
        if !retained.is_empty() {
            let mut state = self
                .slot
                .lock_owned(self.connection)
                .ok_or(Close::TakenOver)?;
            for delivery in retained {
                if state.session.enqueue(delivery) == Enqueued::DroppedQueueFull {
                    super::stats::add(&shared.stats.publish_dropped, 1);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Result<(), Close> {
        let shared = &self.broker.shared;
        let key = self.slot.client_id().clone();
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = {
                let mut state = self
                    .slot
                    .lock_owned(self.connection)
                    .ok_or(Close::TakenOver)?;
                state.subscriptions.remove(filter);
                if state.persisted && state.stored_subscriptions.remove(filter).is_some() {
                    self.ops.push(Op::RemoveSubscription {
                        client_id: key.to_string(),
                        filter: filter.clone(),
                    });
                }
                shared.tree.unsubscribe(&key, filter)
            };
            if existed {
                shared.hooks.unsubscribed(&self.info, filter);
                reasons.push(ReasonCode::SUCCESS);
            } else {
                reasons.push(ReasonCode::NO_SUBSCRIPTION_EXISTED);
            }
        }
        self.out.push(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Properties::default(),
            reasons,
        }));
        Ok(())
    }
}
