//! Quality of service end to end: QoS 1 and 2 acknowledged and delivered, the QoS 2 handshake
//! suppresses duplicates, delivery QoS is the minimum of publish and subscription QoS.

use crate::support::{bytes, Broker, Raw, V3, V5, WAIT};
use rumqttc::QoS;

#[tokio::test]
async fn qos1_and_qos2_messages_are_delivered_in_order_v311() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "q-sub").await;
    sub.subscribe("q/#", QoS::ExactlyOnce).await;
    let publisher = V3::connect(broker.addr(), "q-pub").await;
    for i in 0..50u32 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        publisher
            .client
            .publish("q/order", qos, false, i.to_string())
            .await
            .expect("publish");
    }
    for i in 0..50u32 {
        let got = sub
            .publish(WAIT)
            .await
            .unwrap_or_else(|| panic!("message {i} missing"));
        assert_eq!(
            String::from_utf8_lossy(&got.payload),
            i.to_string(),
            "ordered delivery [MQTT-4.6.0-5]"
        );
        let expected = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        assert_eq!(got.qos, expected);
    }
}

#[tokio::test]
async fn delivery_qos_is_the_minimum_of_publish_and_subscription_qos_mqtt_3_8_4_8() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "min-sub").await;
    sub.subscribe("min/t", QoS::AtLeastOnce).await;
    let publisher = V3::connect(broker.addr(), "min-pub").await;
    publisher
        .client
        .publish("min/t", QoS::ExactlyOnce, false, "x")
        .await
        .expect("publish");
    assert_eq!(
        sub.publish(WAIT).await.expect("delivered").qos,
        QoS::AtLeastOnce
    );
    publisher
        .client
        .publish("min/t", QoS::AtMostOnce, false, "y")
        .await
        .expect("publish");
    assert_eq!(
        sub.publish(WAIT).await.expect("delivered").qos,
        QoS::AtMostOnce
    );
}

#[tokio::test]
async fn qos2_resent_publish_before_pubrel_is_delivered_once_mqtt_4_3_3() {
    let broker = Broker::start();
    let mut sub = V5::connect(broker.addr(), "dup-sub").await;
    sub.subscribe("dup/t", rumqttc::v5::mqttbytes::QoS::ExactlyOnce)
        .await;
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::connect_v311("dup-pub")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    let mut body = bytes::string("dup/t");
    body.extend([0x00, 0x07]);
    body.extend_from_slice(b"once");
    raw.send(&bytes::packet(0x34, &body)).await; // QoS 2, id 7
    assert_eq!(
        raw.recv(WAIT).await.expect("PUBREC"),
        vec![0x50, 0x02, 0x00, 0x07]
    );
    raw.send(&bytes::packet(0x3C, &body)).await; // DUP re-send, same id
    assert_eq!(
        raw.recv(WAIT).await.expect("PUBREC again"),
        vec![0x50, 0x02, 0x00, 0x07]
    );
    raw.send(&[0x62, 0x02, 0x00, 0x07]).await; // PUBREL
    assert_eq!(
        raw.recv(WAIT).await.expect("PUBCOMP"),
        vec![0x70, 0x02, 0x00, 0x07]
    );
    let first = sub.publish(WAIT).await.expect("delivered");
    assert_eq!(&first.payload[..], b"once");
    assert!(
        sub.publish(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "delivered twice"
    );
}

#[tokio::test]
async fn qos1_publish_is_acknowledged_with_puback_mqtt_4_3_2() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::connect_v311("ack-pub")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    let mut body = bytes::string("ack/t");
    body.extend([0x12, 0x34]);
    body.extend_from_slice(b"p");
    raw.send(&bytes::packet(0x32, &body)).await;
    assert_eq!(
        raw.recv(WAIT).await.expect("PUBACK"),
        vec![0x40, 0x02, 0x12, 0x34]
    );
}

#[tokio::test]
async fn qos1_message_to_a_raw_subscriber_is_redelivered_with_dup_after_reconnect_mqtt_4_4_0_1() {
    let broker = Broker::start();
    // A persistent 3.1.1 session (clean session = 0) that never acknowledges.
    let connect = |id: &str| {
        let mut body = bytes::string("MQTT");
        body.extend([4, 0x00, 0, 60]);
        body.extend(bytes::string(id));
        bytes::packet(0x10, &body)
    };
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&connect("redeliver")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    raw.send(&bytes::subscribe_v311(1, "re/t", 1)).await;
    raw.recv_type(9, WAIT).await.expect("SUBACK");
    let publisher = V3::connect(broker.addr(), "re-pub").await;
    publisher
        .client
        .publish("re/t", QoS::AtLeastOnce, false, "again")
        .await
        .expect("publish");
    let first = raw.recv_type(3, WAIT).await.expect("PUBLISH");
    assert_eq!(first[0] & 0x08, 0, "first delivery has DUP=0");
    drop(raw);
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&connect("redeliver")).await;
    let connack = raw.recv(WAIT).await.expect("CONNACK");
    assert_eq!(connack, vec![0x20, 0x02, 0x01, 0x00], "session present");
    let again = raw.recv_type(3, WAIT).await.expect("redelivered PUBLISH");
    assert_eq!(again[0] & 0x08, 0x08, "DUP set on redelivery");
    assert_eq!(
        &again[2..],
        &first[2..],
        "same packet id, topic and payload"
    );
}
