//! `$SYS/broker/...`: the broker's statistics published every `sys_interval` seconds as
//! retained messages, under the topic names Mosquitto uses so existing dashboards work.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::shared::Broker;

/// Starts the `$SYS` publisher; `None` when `interval_secs` is 0 (disabled).
pub fn spawn(broker: Broker, interval_secs: u64) -> Option<JoinHandle<()>> {
    if interval_secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut shutdown = broker.shutdown_signal();
        let mut ticker = tokio::time::interval(Duration::from_secs(interval_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => publish_all(&broker),
            }
        }
    }))
}

/// The topics and their current values, in publishing order.
pub fn current(broker: &Broker) -> Vec<(&'static str, String)> {
    let s = broker.stats().snapshot();
    vec![
        (
            "$SYS/broker/version",
            format!("WaspMQ version {}", Broker::version()),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", broker.uptime().as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            s.clients_connected.to_string(),
        ),
        (
            "$SYS/broker/clients/active",
            s.clients_connected.to_string(),
        ),
        (
            "$SYS/broker/clients/disconnected",
            s.clients_disconnected.to_string(),
        ),
        (
            "$SYS/broker/clients/inactive",
            s.clients_disconnected.to_string(),
        ),
        (
            "$SYS/broker/clients/total",
            (s.clients_connected + s.clients_disconnected).to_string(),
        ),
        ("$SYS/broker/clients/maximum", s.clients_maximum.to_string()),
        (
            "$SYS/broker/clients/refused",
            s.connections_refused.to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            s.messages_received.to_string(),
        ),
        ("$SYS/broker/messages/sent", s.messages_sent.to_string()),
        (
            "$SYS/broker/publish/messages/received",
            s.publish_received.to_string(),
        ),
        (
            "$SYS/broker/publish/messages/sent",
            s.publish_sent.to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped",
            s.publish_dropped.to_string(),
        ),
        ("$SYS/broker/bytes/received", s.bytes_received.to_string()),
        ("$SYS/broker/bytes/sent", s.bytes_sent.to_string()),
        (
            "$SYS/broker/subscriptions/count",
            broker.subscription_count().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            broker.retained_count().to_string(),
        ),
    ]
}

fn publish_all(broker: &Broker) {
    for (topic, value) in current(broker) {
        broker.publish_internal(topic, Bytes::from(value), true);
    }
}
