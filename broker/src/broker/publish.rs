//! The path of a PUBLISH through the broker once its session accepted it: authorization, the
//! message hooks, the retained store, then fan-out. Fan-out looks each matching client up in
//! the sharded session registry and pushes an `Arc<Message>` into its queue under that
//! session's own short lock; the payload is never copied per subscriber.
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

use super::sessions::SessionSlot;
use super::shared::Broker;
use crate::plugins::{ClientInfo, Decision, MessageVerdict};
use crate::protocol::{Properties, Publish, QoS, ReasonCode};
use crate::session::{Delivery, Enqueued, Message};

/// How long a connected subscriber with a full queue may take no message before publishers
/// stop waiting for it and its further messages are dropped (counted) instead.
pub(crate) const FLOW_CONTROL_STALL: Duration = Duration::from_secs(5);

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
        // QoS 0 is never held back, so nothing is congested.
        self.route(message, Instant::now(), &mut Vec::new());
    }

    /// A PUBLISH from a client, after its session's checks. Returns the reason code for its
    /// PUBACK / PUBREC; `congested` receives the subscribers whose full queue took it over
    /// their limit (the publisher is held back until they have room).
    pub(crate) async fn publish_from_client(
        &self,
        client: &ClientInfo,
        publish: Publish,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> ReasonCode {
        if publish.topic == "$SYS" || publish.topic.starts_with("$SYS/") {
            // Only the broker writes its own statistics.
            return ReasonCode::NOT_AUTHORIZED;
        }
        self.publish_as(client, publish, congested).await
    }

    /// Authorizes, passes through the message hooks, retains and routes one PUBLISH made in
    /// the name of `client` (a client's PUBLISH or its will).
    pub(crate) async fn publish_as(
        &self,
        client: &ClientInfo,
        mut publish: Publish,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> ReasonCode {
        let hooks = &self.shared.hooks;
        match hooks
            .authorize_publish(client, &publish.topic, publish.qos, publish.retain)
            .await
        {
            Decision::Deny(code) => {
                return if code.is_error() {
                    code
                } else {
                    ReasonCode::NOT_AUTHORIZED
                }
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
                        return ReasonCode::SUCCESS;
                    }
                    publish.topic = topic;
                    publish.payload = payload;
                }
                MessageVerdict::Drop => return ReasonCode::SUCCESS,
            }
        }
        let now = Instant::now();
        let message = Arc::new(Message::from_publish(
            publish,
            client.client_id.clone(),
            now,
        ));
        if message.retain {
            self.store_retained(&message);
        }
        if self.route(message, now, congested) == 0 {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        }
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

    /// Fans `message` out to every matching subscription. Returns how many sessions matched;
    /// the sessions it took over their queue limit are pushed onto `congested`.
    pub(crate) fn route(
        &self,
        message: Arc<Message>,
        now: Instant,
        congested: &mut Vec<Arc<SessionSlot>>,
    ) -> usize {
        let shared = &self.shared;
        let mut routes = Vec::new();
        shared
            .tree
            .route(&message.topic, &message.publisher, &mut routes);
        let matched = routes.len();
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
        matched
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
