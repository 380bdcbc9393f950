//! MQTT 5 features end to end: CONNACK capabilities, subscription identifiers, no-local, shared
//! subscriptions, message expiry, topic aliases, properties passed through, server keep alive.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    ConnectProperties, Filter, Packet, PublishProperties, SubscribeProperties,
};
use rumqttc::v5::mqttbytes::QoS;

use crate::support::{bytes as raw_bytes, Broker, Raw, V5, WAIT};

#[tokio::test]
async fn connack_capabilities_tell_the_truth_mqtt_3_2_2() {
    let broker = Broker::start();
    let client = V5::connect(broker.addr(), "caps").await;
    let props = client
        .connack
        .properties
        .clone()
        .expect("CONNACK properties");
    assert_eq!(
        props.receive_max,
        Some(100),
        "Receive Maximum = limits.receive_maximum"
    );
    assert_eq!(props.topic_alias_max, Some(16));
    assert_eq!(props.max_packet_size, Some(1024 * 1024));
    assert!(
        props.max_qos.is_none() || props.max_qos == Some(2),
        "all QoS supported"
    );
    assert!(props.retain_available.unwrap_or(1) == 1);
    assert!(props.wildcard_subscription_available.unwrap_or(1) == 1);
    assert!(props.subscription_identifiers_available.unwrap_or(1) == 1);
    assert!(props.shared_subscription_available.unwrap_or(1) == 1);
}

#[tokio::test]
async fn delivered_publish_carries_the_subscription_identifier_mqtt_3_3_4_3() {
    let broker = Broker::start();
    let mut sub = V5::connect(broker.addr(), "subid").await;
    let props = SubscribeProperties {
        id: Some(42),
        user_properties: vec![],
    };
    sub.client
        .subscribe_with_properties("ids/+", QoS::AtLeastOnce, props)
        .await
        .expect("subscribe");
    sub.packet(WAIT, |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await
        .expect("SUBACK");
    let publisher = V5::connect(broker.addr(), "subid-pub").await;
    publisher
        .client
        .publish("ids/a", QoS::AtLeastOnce, false, "x")
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("delivered");
    assert_eq!(
        got.properties.expect("properties").subscription_identifiers,
        vec![42]
    );
}

#[tokio::test]
async fn no_local_subscription_does_not_receive_its_own_messages_mqtt_3_8_3_3() {
    let broker = Broker::start();
    let mut client = V5::connect(broker.addr(), "nolocal").await;
    let mut filter = Filter::new("nl/t", QoS::AtLeastOnce);
    filter.nolocal = true;
    client
        .client
        .subscribe_many(vec![filter])
        .await
        .expect("subscribe");
    client
        .packet(WAIT, |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await
        .expect("SUBACK");
    client
        .client
        .publish("nl/t", QoS::AtLeastOnce, false, "mine")
        .await
        .expect("publish");
    assert!(
        client.publish(Duration::from_millis(500)).await.is_none(),
        "own message delivered"
    );
    let other = V5::connect(broker.addr(), "nolocal-other").await;
    other
        .client
        .publish("nl/t", QoS::AtLeastOnce, false, "theirs")
        .await
        .expect("publish");
    assert_eq!(
        &client.publish(WAIT).await.expect("other's message").payload[..],
        b"theirs"
    );
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_to_one_member_round_robin_section_4_8_2() {
    let broker = Broker::start();
    let mut a = V5::connect(broker.addr(), "share-a").await;
    let mut b = V5::connect(broker.addr(), "share-b").await;
    a.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce).await;
    b.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce).await;
    let publisher = V5::connect(broker.addr(), "share-pub").await;
    for i in 0..10 {
        publisher
            .client
            .publish("jobs/x", QoS::AtLeastOnce, false, format!("{i}"))
            .await
            .expect("publish");
    }
    let mut seen = Vec::new();
    let (mut count_a, mut count_b) = (0, 0);
    while seen.len() < 10 {
        tokio::select! {
            Some(p) = a.publish(WAIT) => { count_a += 1; seen.push(p.payload); }
            Some(p) = b.publish(WAIT) => { count_b += 1; seen.push(p.payload); }
            else => break,
        }
    }
    assert_eq!(seen.len(), 10, "every message delivered once");
    assert!(
        count_a > 0 && count_b > 0,
        "both members served: {count_a}/{count_b}"
    );
    assert!(a.publish(Duration::from_millis(300)).await.is_none());
    assert!(b.publish(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn expired_message_is_not_delivered_to_a_returning_session_mqtt_3_3_2_5() {
    let broker = Broker::start();
    let persistent = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_clean_start(false);
        o.set_connect_properties(ConnectProperties {
            session_expiry_interval: Some(300),
            ..Default::default()
        });
    };
    let mut sub = V5::connect_with(broker.addr(), "expiry-sub", persistent).await;
    sub.subscribe("exp/t", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let publisher = V5::connect(broker.addr(), "expiry-pub").await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties("exp/t", QoS::AtLeastOnce, false, "short", short)
        .await
        .expect("publish");
    let long = PublishProperties {
        message_expiry_interval: Some(100),
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties("exp/t", QoS::AtLeastOnce, false, "long", long)
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut back = V5::connect_with(broker.addr(), "expiry-sub", persistent).await;
    let got = back.publish(WAIT).await.expect("unexpired message");
    assert_eq!(&got.payload[..], b"long");
    let left = got
        .properties
        .and_then(|p| p.message_expiry_interval)
        .expect("expiry forwarded");
    assert!(
        (95..100).contains(&left),
        "expiry decremented by the time waited [MQTT-3.3.2-6]: {left}"
    );
    assert!(
        back.publish(Duration::from_millis(300)).await.is_none(),
        "expired message delivered"
    );
}

#[tokio::test]
async fn request_response_and_user_properties_are_passed_through_mqtt_3_3_2_17_and_18() {
    let broker = Broker::start();
    let mut sub = V5::connect(broker.addr(), "props-sub").await;
    sub.subscribe("req/t", QoS::AtMostOnce).await;
    let publisher = V5::connect(broker.addr(), "props-pub").await;
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("resp/t".into()),
        correlation_data: Some(Bytes::from_static(b"\x01\x02")),
        user_properties: vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ],
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties("req/t", QoS::AtMostOnce, false, "{}", props)
        .await
        .expect("publish");
    let got = sub
        .publish(WAIT)
        .await
        .expect("delivered")
        .properties
        .expect("properties");
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.response_topic.as_deref(), Some("resp/t"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x01\x02"[..]));
    assert_eq!(
        got.user_properties,
        vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into())
        ],
        "order kept [MQTT-3.3.2-18]"
    );
}

#[tokio::test]
async fn inbound_topic_alias_stands_for_its_topic_mqtt_3_3_2_12() {
    let broker = Broker::start();
    let mut sub = V5::connect(broker.addr(), "alias-sub").await;
    sub.subscribe("alias/long/topic", QoS::AtMostOnce).await;
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&raw_bytes::connect_v5("alias-pub")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    let mut first = raw_bytes::string("alias/long/topic");
    first.extend([3, 0x23, 0x00, 0x01]);
    first.extend_from_slice(b"one");
    raw.send(&raw_bytes::packet(0x30, &first)).await;
    let mut second = raw_bytes::string("");
    second.extend([3, 0x23, 0x00, 0x01]);
    second.extend_from_slice(b"two");
    raw.send(&raw_bytes::packet(0x30, &second)).await;
    for expected in [&b"one"[..], b"two"] {
        let got = sub.publish(WAIT).await.expect("delivered");
        assert_eq!(&got.topic[..], b"alias/long/topic");
        assert_eq!(&got.payload[..], expected);
    }
}

#[tokio::test]
async fn server_keep_alive_caps_the_clients_keep_alive_mqtt_3_2_2_21() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\nmax_keepalive = 10\n{}",
        crate::support::TCP_ONLY
    ));
    let client = V5::connect_with(broker.addr(), "ka-cap", |o| {
        o.set_keep_alive(Duration::from_secs(60));
    })
    .await;
    let props = client.connack.properties.clone().expect("properties");
    assert_eq!(props.server_keep_alive, Some(10));
}

#[tokio::test]
async fn silent_client_is_closed_after_one_and_a_half_keep_alives_mqtt_3_1_2_24() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = raw_bytes::string("MQTT");
    body.extend([4, 0x02, 0, 1]); // keep alive 1 s
    body.extend(raw_bytes::string("silent"));
    raw.send(&raw_bytes::packet(0x10, &body)).await;
    raw.recv(WAIT).await.expect("CONNACK");
    let started = std::time::Instant::now();
    assert!(
        raw.closed(Duration::from_secs(5)).await,
        "silent client kept"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "closed too early: {waited:?}"
    );
    assert!(broker
        .log
        .wait_for("Client disconnected: silent", WAIT)
        .is_some());
}

#[tokio::test]
async fn pubrel_for_an_unknown_packet_id_is_answered_with_pubcomp_0x92_v5() {
    // PUBREL for a packet id never received: v5 answers PUBCOMP 0x92 (Packet Identifier not
    // found) and the connection stays up.
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&raw_bytes::connect_v5("pubrel-unknown")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    raw.send(&[0x62, 0x02, 0x00, 0x09]).await;
    let pubcomp = raw.recv(WAIT).await.expect("PUBCOMP");
    assert_eq!(pubcomp[0], 0x70);
    assert_eq!(&pubcomp[2..4], &[0x00, 0x09]);
    assert_eq!(
        pubcomp.get(4).copied(),
        Some(0x92),
        "Packet Identifier not found"
    );
}

/// CONNECT v5 with a property block (already encoded, length prefix included).
fn connect_v5_with(client_id: &str, flags: u8, properties: &[u8]) -> Vec<u8> {
    let mut body = raw_bytes::string("MQTT");
    body.extend([5, flags, 0, 60]);
    body.extend_from_slice(properties);
    body.extend(raw_bytes::string(client_id));
    raw_bytes::packet(0x10, &body)
}

fn subscribe_v5(packet_id: u16, filter: &str, options: u8) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.push(0);
    body.extend(raw_bytes::string(filter));
    body.push(options);
    raw_bytes::packet(0x82, &body)
}

#[tokio::test]
async fn broker_respects_the_clients_receive_maximum_mqtt_3_3_4_9() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    // Receive Maximum = 2.
    raw.send(&connect_v5_with("recv-max", 0x02, &[3, 0x21, 0x00, 0x02]))
        .await;
    raw.recv(WAIT).await.expect("CONNACK");
    raw.send(&subscribe_v5(1, "rm/t", 1)).await;
    raw.recv_type(9, WAIT).await.expect("SUBACK");
    let publisher = V5::connect(broker.addr(), "recv-max-pub").await;
    for i in 0..5 {
        publisher
            .client
            .publish("rm/t", QoS::AtLeastOnce, false, format!("{i}"))
            .await
            .expect("publish");
    }
    let first = raw.recv_type(3, WAIT).await.expect("first");
    let _second = raw.recv_type(3, WAIT).await.expect("second");
    assert!(
        raw.recv_type(3, Duration::from_millis(600)).await.is_none(),
        "a third PUBLISH before any PUBACK exceeds Receive Maximum 2"
    );
    // Acknowledge the first: exactly one more may come.
    let topic_len = u16::from_be_bytes([first[2], first[3]]) as usize;
    let id = [first[4 + topic_len], first[5 + topic_len]];
    raw.send(&[0x40, 0x02, id[0], id[1]]).await;
    assert!(
        raw.recv_type(3, WAIT).await.is_some(),
        "one more after a PUBACK"
    );
    assert!(raw.recv_type(3, Duration::from_millis(400)).await.is_none());
}

#[tokio::test]
async fn message_larger_than_the_clients_maximum_packet_size_is_not_sent_mqtt_3_1_2_25() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    // Maximum Packet Size = 64 bytes.
    raw.send(&connect_v5_with("small-max", 0x02, &[5, 0x27, 0, 0, 0, 64]))
        .await;
    raw.recv(WAIT).await.expect("CONNACK");
    raw.send(&subscribe_v5(1, "mps/t", 0)).await;
    raw.recv_type(9, WAIT).await.expect("SUBACK");
    let publisher = V5::connect(broker.addr(), "small-max-pub").await;
    publisher
        .client
        .publish("mps/t", QoS::AtMostOnce, false, vec![b'x'; 200])
        .await
        .expect("publish");
    publisher
        .client
        .publish("mps/t", QoS::AtMostOnce, false, "small")
        .await
        .expect("publish");
    let got = raw.recv_type(3, WAIT).await.expect("the small one");
    assert!(got.len() <= 64);
    assert!(got.ends_with(b"small"), "{got:?}");
}

#[tokio::test]
async fn retain_handling_1_sends_retained_only_for_a_new_subscription_mqtt_3_8_4_4() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.addr(), "rh1-pub").await;
    publisher
        .client
        .publish("rh1/t", QoS::AtLeastOnce, true, "kept")
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&raw_bytes::connect_v5("rh1")).await;
    raw.recv(WAIT).await.expect("CONNACK");
    // Retain Handling 1 (bits 4-5 = 01), QoS 0.
    raw.send(&subscribe_v5(1, "rh1/t", 0x10)).await;
    raw.recv_type(9, WAIT).await.expect("SUBACK");
    assert!(
        raw.recv_type(3, WAIT).await.is_some(),
        "retained sent for the new subscription"
    );
    raw.send(&subscribe_v5(2, "rh1/t", 0x10)).await;
    raw.recv_type(9, WAIT).await.expect("second SUBACK");
    assert!(
        raw.recv_type(3, Duration::from_millis(500)).await.is_none(),
        "retained sent again for an existing subscription"
    );
}

#[tokio::test]
async fn will_properties_are_passed_to_subscribers_mqtt_3_1_3_10() {
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};
    let broker = Broker::start();
    let mut watcher = V5::connect(broker.addr(), "willprops-watch").await;
    watcher.subscribe("wp/#", QoS::AtLeastOnce).await;
    let dying = V5::connect_with(broker.addr(), "willprops", |o| {
        let props = LastWillProperties {
            delay_interval: None,
            payload_format_indicator: Some(1),
            message_expiry_interval: None,
            content_type: Some("text/plain".into()),
            response_topic: Some("wp/reply".into()),
            correlation_data: None,
            user_properties: vec![("k".into(), "v".into())],
        };
        o.set_last_will(LastWill::new(
            "wp/gone",
            "bye",
            QoS::AtLeastOnce,
            false,
            Some(props),
        ));
    })
    .await;
    dying.abort();
    let got = watcher.publish(WAIT).await.expect("will");
    let props = got.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("wp/reply"));
    assert_eq!(
        props.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
}
