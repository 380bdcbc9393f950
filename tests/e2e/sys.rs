//! `$SYS/broker/...` statistics, under the names Mosquitto uses.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::{Broker, V3};
use rumqttc::QoS;

#[tokio::test]
async fn sys_topics_report_version_uptime_clients_messages_and_bytes() {
    let broker = Broker::with_config(&format!("sys_interval = 1\n{}", crate::support::TCP_ONLY));
    let publisher = V3::connect(broker.addr(), "sys-pub").await;
    for _ in 0..3 {
        publisher
            .client
            .publish("sys/test", QoS::AtLeastOnce, true, "x")
            .await
            .expect("publish");
    }
    let mut watcher = V3::connect(broker.addr(), "sys-watch").await;
    watcher.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    let mut seen: HashMap<String, String> = HashMap::new();
    let wanted = [
        "$SYS/broker/version",
        "$SYS/broker/uptime",
        "$SYS/broker/clients/connected",
        "$SYS/broker/clients/total",
        "$SYS/broker/clients/maximum",
        "$SYS/broker/clients/disconnected",
        "$SYS/broker/messages/received",
        "$SYS/broker/messages/sent",
        "$SYS/broker/bytes/received",
        "$SYS/broker/bytes/sent",
        "$SYS/broker/subscriptions/count",
        "$SYS/broker/retained messages/count",
    ];
    // The first values may be the retained ones from before the clients came: wait for a
    // round that counts them.
    let counted = |seen: &HashMap<String, String>| {
        wanted.iter().all(|t| seen.contains_key(*t))
            && seen["$SYS/broker/clients/connected"]
                .parse::<u64>()
                .unwrap_or(0)
                >= 2
            && seen["$SYS/broker/messages/received"]
                .parse::<u64>()
                .unwrap_or(0)
                >= 3
            && seen["$SYS/broker/retained messages/count"]
                .parse::<u64>()
                .unwrap_or(0)
                >= 1
            && seen["$SYS/broker/subscriptions/count"]
                .parse::<u64>()
                .unwrap_or(0)
                >= 1
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while !counted(&seen) && std::time::Instant::now() < deadline {
        if let Some(p) = watcher.publish(Duration::from_secs(3)).await {
            seen.insert(
                p.topic.clone(),
                String::from_utf8_lossy(&p.payload).into_owned(),
            );
        }
    }
    for topic in wanted {
        assert!(
            seen.contains_key(topic),
            "{topic} not published; saw {:?}",
            seen.keys()
        );
    }
    assert!(
        seen["$SYS/broker/version"].contains("WaspMQ"),
        "{}",
        seen["$SYS/broker/version"]
    );
    assert!(seen["$SYS/broker/uptime"].ends_with("seconds"));
    let connected: u64 = seen["$SYS/broker/clients/connected"]
        .parse()
        .expect("number");
    assert!(connected >= 2, "two clients connected: {connected}");
    let received: u64 = seen["$SYS/broker/messages/received"]
        .parse()
        .expect("number");
    assert!(received >= 3);
    assert!(
        seen["$SYS/broker/retained messages/count"]
            .parse::<u64>()
            .expect("number")
            >= 1
    );
    assert!(
        seen["$SYS/broker/subscriptions/count"]
            .parse::<u64>()
            .expect("number")
            >= 1
    );
}

#[tokio::test]
async fn sys_interval_zero_publishes_nothing() {
    let broker = Broker::start();
    let mut watcher = V3::connect(broker.addr(), "nosys").await;
    watcher.subscribe("$SYS/#", QoS::AtMostOnce).await;
    assert!(watcher.publish(Duration::from_millis(1500)).await.is_none());
}

#[tokio::test]
async fn wildcard_subscription_does_not_receive_sys_topics_mqtt_4_7_2_1() {
    let broker = Broker::with_config(&format!("sys_interval = 1\n{}", crate::support::TCP_ONLY));
    let mut everything = V3::connect(broker.addr(), "hash-all").await;
    everything.subscribe("#", QoS::AtMostOnce).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while let Some(p) = everything.publish(Duration::from_millis(200)).await {
        assert!(!p.topic.starts_with('$'), "`#` matched {}", p.topic);
    }
}
