//! First contact: a client connects, subscribes, publishes and receives, in both versions; the
//! broker logs who came and went, in the seed's words.

use std::time::Duration;

use crate::support::{bytes, Broker, Raw, V3, V5, WAIT};

#[tokio::test]
async fn v311_client_connects_subscribes_and_receives_its_publish() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "smoke-sub").await;
    sub.subscribe("iot/sensors/#", rumqttc::QoS::AtMostOnce)
        .await;
    let publisher = V3::connect(broker.addr(), "smoke-pub").await;
    publisher
        .client
        .publish(
            "iot/sensors/temperature",
            rumqttc::QoS::AtMostOnce,
            false,
            "21.5",
        )
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("message delivered");
    assert_eq!(got.topic, "iot/sensors/temperature");
    assert_eq!(&got.payload[..], b"21.5");
    assert!(!got.retain);
}

#[tokio::test]
async fn v5_client_connects_subscribes_and_receives_its_publish() {
    use rumqttc::v5::mqttbytes::QoS;
    let broker = Broker::start();
    let mut sub = V5::connect(broker.addr(), "smoke5-sub").await;
    sub.subscribe("a/+/c", QoS::AtLeastOnce).await;
    let publisher = V5::connect(broker.addr(), "smoke5-pub").await;
    publisher
        .client
        .publish("a/b/c", QoS::AtLeastOnce, false, "hello")
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("message delivered");
    assert_eq!(&got.topic[..], b"a/b/c");
    assert_eq!(&got.payload[..], b"hello");
    assert_eq!(got.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn connects_and_disconnects_are_logged_in_the_seed_format() {
    let broker = Broker::start();
    let client = V3::connect(broker.addr(), "logged-client").await;
    assert!(
        broker
            .log
            .wait_for("Client connected: logged-client, Username: None", WAIT)
            .is_some(),
        "{}",
        broker.dump_log()
    );
    client.disconnect().await;
    let line = broker
        .log
        .wait_for("Client disconnected: logged-client", WAIT)
        .expect("disconnect logged");
    assert!(line.contains("Reason:"), "{line}");
    let with_user = V3::connect_with(broker.addr(), "named-client", |o| {
        o.set_credentials("alice", "secret");
    })
    .await;
    assert!(broker
        .log
        .wait_for("Client connected: named-client, Username: alice", WAIT)
        .is_some());
    with_user.disconnect().await;
}

#[tokio::test]
async fn first_packet_other_than_connect_closes_the_connection_mqtt_3_1_0_1() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::PINGREQ).await;
    let (packets, closed) = raw.packets_until_close(WAIT).await;
    assert!(closed, "connection stays open");
    assert!(packets.is_empty(), "broker answered {packets:?}");
}

#[tokio::test]
async fn connack_is_the_first_packet_and_ping_is_answered_mqtt_3_2_0_1_and_3_12_4_1() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::connect_v311("raw-ping")).await;
    assert_eq!(
        raw.recv(WAIT).await.expect("CONNACK"),
        vec![0x20, 0x02, 0x00, 0x00]
    );
    raw.send(&bytes::PINGREQ).await;
    assert_eq!(raw.recv(WAIT).await.expect("PINGRESP"), vec![0xD0, 0x00]);
    raw.send(&bytes::DISCONNECT).await;
    assert!(raw.closed(WAIT).await);
}

#[tokio::test]
async fn a_client_that_never_sends_connect_is_closed_after_the_connect_timeout() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\n{}\n[limits]\nconnect_timeout_secs = 1\n",
        crate::support::TCP_ONLY
    ));
    let mut raw = Raw::connect(broker.addr()).await;
    assert!(
        raw.closed(Duration::from_secs(5)).await,
        "silent connection kept open"
    );
}

#[test]
fn log_file_is_written_with_the_seed_name_and_line_format() {
    let broker = Broker::start();
    let logs = broker.path("logs");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let files: Vec<String> = std::fs::read_dir(&logs)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(name) = files
            .iter()
            .find(|n| n.starts_with("broker_") && n.ends_with(".log"))
        {
            assert_eq!(name.len(), "broker_20261205_100000.log".len(), "{name}");
            let text = std::fs::read_to_string(logs.join(name)).unwrap_or_default();
            if text.contains(" - INFO - ") && text.contains("started") {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log file with the start line in {logs:?}: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn mqtt_3_1_client_with_mqisdp_connects_and_publishes() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "v31-sub").await;
    sub.subscribe("v31/t", rumqttc::QoS::AtMostOnce).await;
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQIsdp");
    body.extend([3, 0x02, 0, 60]);
    body.extend(bytes::string("old-client"));
    raw.send(&bytes::packet(0x10, &body)).await;
    let connack = raw.recv(WAIT).await.expect("CONNACK");
    assert_eq!(
        (connack[0], connack[1], connack[3]),
        (0x20, 0x02, 0x00),
        "accepted: {connack:?}"
    );
    raw.send(&bytes::publish_v311("v31/t", b"from 3.1")).await;
    let got = sub.publish(WAIT).await.expect("delivered");
    assert_eq!(&got.payload[..], b"from 3.1");
}

#[tokio::test]
async fn unsubscribe_is_acknowledged_and_stops_delivery_mqtt_3_10_4_4() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "unsub").await;
    sub.subscribe("uns/t", rumqttc::QoS::AtLeastOnce).await;
    sub.client.unsubscribe("uns/t").await.expect("unsubscribe");
    sub.packet(WAIT, |p| {
        matches!(p, rumqttc::Packet::UnsubAck(_)).then_some(())
    })
    .await
    .expect("UNSUBACK");
    let publisher = V3::connect(broker.addr(), "unsub-pub").await;
    publisher
        .client
        .publish("uns/t", rumqttc::QoS::AtLeastOnce, false, "x")
        .await
        .expect("publish");
    assert!(sub.publish(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos_mqtt_3_3_4_2() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "overlap").await;
    sub.subscribe("ov/+", rumqttc::QoS::AtMostOnce).await;
    sub.subscribe("ov/#", rumqttc::QoS::AtLeastOnce).await;
    let publisher = V3::connect(broker.addr(), "overlap-pub").await;
    publisher
        .client
        .publish("ov/a", rumqttc::QoS::ExactlyOnce, false, "x")
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("delivered");
    assert_eq!(got.qos, rumqttc::QoS::AtLeastOnce);
    assert!(
        sub.publish(Duration::from_millis(400)).await.is_none(),
        "delivered twice"
    );
}
