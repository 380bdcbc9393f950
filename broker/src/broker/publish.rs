//! The path of a PUBLISH through the broker once its session accepted it: authorization, the
//! message hooks, the retained store, then fan-out. Fan-out looks each matching client up in
//! the sharded session registry and pushes an `Arc<Message>` into its queue under that
//! session's own short lock; the payload is never copied per subscriber.
//!
//! With persistence on, the writes a QoS 1/2 message implies (the retained message, one
//! queued record per persistent subscriber, the caller's own ops such as the inbound QoS 2
//! id) go to the store as one batch, handed over BEFORE any subscriber sees the message — so
//! a subscriber's later dequeue can never reach the store ahead of the enqueue — and the
//! returned [`Commit`] is what the publisher's acknowledgement waits for.
//!
//! Flow control: a QoS 1/2 message for a connected subscriber whose queue is full is queued
//! anyway and that subscriber's slot is handed back as *congested*; the publisher's connection
//! then holds the PUBACK / PUBREC and stops reading until the queue has room again (see
//! `connection`), so the publisher's own in-flight window throttles it end to end and no
//! acknowledged message is dropped. Only a subscriber that takes no message for
//! `FLOW_CONTROL_STALL` (or is offline) falls back to the bounded queue with counted drops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::warn;

use super::durable::{stored_delivery, stored_retained, Clock};
use super::sessions::SessionSlot;
use super::shared::Broker;
use crate::persistence::{Commit, Op};
use crate::plugins::{ClientInfo, Decision, MessageVerdict};
use crate::protocol::{Properties, Publish, QoS, ReasonCode};
use crate::session::{Delivery, Enqueued, Message};

/// How long a connected subscriber with a full queue may take no message before publishers
/// stop waiting for it and its further messages are dropped (counted) instead.
pub(crate) const FLOW_CONTROL_STALL: Duration = Duration::from_secs(5);

/// The writes of an accepted message: their commit, and the sessions it was queued for under
/// a stored record (withdrawn from their queues if the commit fails, since the message is then
/// refused).
pub(crate) struct Durable {
    pub commit: Commit,
    pub queued: Vec<(Arc<SessionSlot>, u64)>,
}

impl Durable {
    fn of(commit: Option<Commit>) -> Option<Durable> {
        commit.map(|commit| Durable {
            commit,
            queued: Vec::new(),
        })
    }
}

impl Broker {
    /// Routes a message the broker itself publishes (e.g. `$SYS`). The publisher id is empty,
    /// so No Local never matches it.
    pub fn publish_internal(&self, topic: &str, payload: Bytes, retain: bool) {
        let message = Arc::new(Message {
            topic: topic.into(),
            payload,
            qos: QoS::AtMostOnce,
            retain,
            properties: Properties::default(),
            expires_at: None,
            publisher: "".into(),
        });
        if retain {
            self.store_retained(&message);
        }
        // The broker's own messages ($SYS) are rebuilt on start, never stored; QoS 0 is never
        // held back, so nothing is congested.
        let _ = self.route(message, Instant::now(), Vec::new(), &mut Vec::new());
    }

    /// A PUBLISH from a client, after its session's checks. Returns the reason code for its
    /// PUBACK / PUBREC and, with persistence on, the commit it must wait for (see
    /// [`Broker::publish_as`]); `congested` receives the subscribers whose full queue took it
    /// over their limit (the publisher is held back until they have room).
    pub(crate) async fn publish_from_client(
        &self,
        client: &ClientInfo,
        publish: Publish,
        ops: Vec<Op>,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> (ReasonCode, Option<Durable>) {
        if publish.topic == "$SYS" || publish.topic.starts_with("$SYS/") {
            // Only the broker writes its own statistics.
            return (ReasonCode::NOT_AUTHORIZED, None);
        }
        self.publish_as(client, publish, ops, congested).await
    }

    /// Authorizes, passes through the message hooks, retains and routes one PUBLISH made in
    /// the name of `client` (a client's PUBLISH or its will). `ops` are the caller's own
    /// writes, stored with the message's only if it is accepted. The commit (persistence on
    /// and something to write) resolves once all of them are durable.
    pub(crate) async fn publish_as(
        &self,
        client: &ClientInfo,
        mut publish: Publish,
        mut ops: Vec<Op>,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> (ReasonCode, Option<Durable>) {
        let hooks = &self.shared.hooks;
        match hooks
            .authorize_publish(client, &publish.topic, publish.qos, publish.retain)
            .await
        {
            Decision::Deny(code) => {
                let code = if code.is_error() {
                    code
                } else {
                    ReasonCode::NOT_AUTHORIZED
                };
                return (code, None);
            }
            Decision::Allow | Decision::Defer => {}
        }
        if hooks.has_message_hooks() {
            match hooks
                .on_message(
                    client,
                    &publish.topic,
                    &publish.payload,
                    publish.qos,
                    publish.retain,
                )
                .await
            {
                MessageVerdict::Pass => {}
                MessageVerdict::Rewrite { topic, payload } => {
                    if !crate::protocol::topic::valid_topic_name(&topic) {
                        warn!(client = %client.client_id, %topic, "plugin rewrote a PUBLISH to an invalid topic; dropped");
                        return (ReasonCode::SUCCESS, Durable::of(self.persist(ops)));
                    }
                    publish.topic = topic;
                    publish.payload = payload;
                }
                MessageVerdict::Drop => {
                    return (ReasonCode::SUCCESS, Durable::of(self.persist(ops)))
                }
            }
        }
        let now = Instant::now();
        let message = Arc::new(Message::from_publish(
            publish,
            client.client_id.clone(),
            now,
        ));
        if message.retain {
            if self.durable() {
                ops.push(if message.payload.is_empty() {
                    Op::ClearRetained {
                        topic: message.topic.to_string(),
                    }
                } else {
                    Op::SetRetained(stored_retained(&message, &Clock::now()))
                });
            }
            self.store_retained(&message);
        }
        let (matched, commit) = self.route(message, now, ops, congested);
        let reason = if matched == 0 {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        (reason, commit)
    }

    /// Sets, replaces or (empty payload) clears the retained message of a topic
    /// [MQTT-3.3.1-5], [MQTT-3.3.1-10].
    pub(crate) fn store_retained(&self, message: &Arc<Message>) {
        if message.payload.is_empty() {
            self.shared.retained.remove(&message.topic);
        } else {
            self.shared.retained.set(&message.topic, message.clone());
        }
    }

    /// Fans `message` out to every matching subscription. Returns how many sessions matched,
    /// and the commit of `ops` plus the queued records of persistent subscribers (with
    /// persistence on and something to write). The sessions it took over their queue limit
    /// are pushed onto `congested`.
    pub(crate) fn route(
        &self,
        message: Arc<Message>,
        now: Instant,
        ops: Vec<Op>,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> (usize, Option<Durable>) {
        let shared = &self.shared;
        let mut routes = Vec::new();
        shared
            .tree
            .route(&message.topic, &message.publisher, &mut routes);
        let matched = routes.len();
        if shared.durable && message.qos != QoS::AtMostOnce {
            return (
                matched,
                self.route_durably(message, now, routes, ops, congested),
            );
        }
        let commit = Durable::of(self.persist(ops));
        for route in routes {
            let Some(slot) = shared.sessions.get(&route.client) else {
                continue;
            };
            let delivery = Delivery::live(
                message.clone(),
                route.qos,
                route.retain_as_published,
                route.identifiers,
            );
            match slot.deliver(delivery, now, FLOW_CONTROL_STALL) {
                Enqueued::Queued | Enqueued::DroppedOffline => {}
                Enqueued::QueuedOverLimit => congested.push(slot),
                Enqueued::DroppedQueueFull => self.count_queue_full(&route.client, &message),
            }
        }
        (matched, commit)
    }

    /// Fan-out of a QoS 1/2 message with persistence on: a queued record for each persistent
    /// subscriber joins `ops`, the batch goes to the store, and only then are the deliveries
    /// queued (a record dropped by a full queue is removed again).
    fn route_durably(
        &self,
        message: Arc<Message>,
        now: Instant,
        routes: Vec<crate::routing::Route>,
        mut ops: Vec<Op>,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> Option<Durable> {
        let shared = &self.shared;
        let clock = Clock::now();
        let mut deliveries = Vec::with_capacity(routes.len());
        for route in routes {
            let Some(slot) = shared.sessions.get(&route.client) else {
                continue;
            };
            let mut delivery = Delivery::live(
                message.clone(),
                route.qos,
                route.retain_as_published,
                route.identifiers,
            );
            if delivery.qos != QoS::AtMostOnce && slot.is_persisted() {
                let seq = self.next_store_seq();
                ops.push(Op::Enqueue {
                    client_id: route.client.to_string(),
                    seq,
                    message: stored_delivery(&delivery, &clock),
                });
                delivery.stored = Some(seq);
            }
            deliveries.push((slot, delivery));
        }
        let commit = self.persist(ops);
        let mut undo = Vec::new();
        let mut queued = Vec::new();
        for (slot, delivery) in deliveries {
            let seq = delivery.stored;
            let enqueued = slot.deliver(delivery, now, FLOW_CONTROL_STALL);
            if let (Enqueued::Queued | Enqueued::QueuedOverLimit, Some(seq)) = (enqueued, seq) {
                queued.push((slot.clone(), seq));
            }
            if enqueued == Enqueued::QueuedOverLimit {
                congested.push(slot.clone());
            }
            if enqueued == Enqueued::DroppedQueueFull {
                self.count_queue_full(slot.client_id(), &message);
                if let Some(seq) = seq {
                    undo.push(Op::Dequeue {
                        client_id: slot.client_id().to_string(),
                        seq,
                    });
                }
            }
        }
        let _ = self.persist(undo);
        commit.map(|commit| Durable { commit, queued })
    }

    /// A message dropped because an offline or stalled session's queue was full.
    fn count_queue_full(&self, client: &str, message: &Message) {
        let shared = &self.shared;
        let dropped = shared
            .stats
            .publish_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        // Logged at 1, 2, 4, 8, ... drops so a stuck client cannot flood the log.
        if dropped.is_power_of_two() {
            warn!(
                client = %client,
                topic = %message.topic,
                "message queue full (max_queued_messages = {}); message dropped ({dropped} dropped so far)",
                shared.limits.max_queued_messages
            );
        }
    }
}
