//! The malformed-packet suite: raw bytes in, the exact reaction out. MQTT 3.1.1 connections are
//! closed without a word; MQTT 5 ones get a DISCONNECT (or CONNACK) with the reason code.
//! Every test also checks the broker still serves a well-behaved client afterwards.

use std::time::Duration;

use crate::support::{bytes, Broker, Raw, V3, WAIT};

/// Connects a raw 3.1.1 client and returns it past its CONNACK.
async fn v311(broker: &Broker, id: &str) -> Raw {
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::connect_v311(id)).await;
    assert_eq!(
        raw.recv(WAIT).await.expect("CONNACK"),
        vec![0x20, 0x02, 0x00, 0x00]
    );
    raw
}

/// Connects a raw 5.0 client and returns it past its CONNACK.
async fn v5(broker: &Broker, id: &str) -> Raw {
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&bytes::connect_v5(id)).await;
    let connack = raw.recv(WAIT).await.expect("CONNACK");
    assert_eq!(
        &connack[..4],
        &[0x20, connack[1], 0x00, 0x00],
        "v5 CONNACK success: {connack:?}"
    );
    raw
}

/// The v3.1.1 reaction: the connection is closed and nothing is sent.
async fn assert_closed_silently(raw: &mut Raw) {
    let (packets, closed) = raw.packets_until_close(WAIT).await;
    assert!(closed, "connection kept open");
    assert!(
        packets.is_empty(),
        "3.1.1 client got {packets:?} instead of a plain close"
    );
}

/// The v5 reaction: DISCONNECT with `reason`, then close.
async fn assert_disconnected_with(raw: &mut Raw, reasons: &[u8]) {
    let (packets, closed) = raw.packets_until_close(WAIT).await;
    assert!(closed, "connection kept open");
    let disconnect = packets
        .iter()
        .find(|p| p[0] == 0xE0)
        .unwrap_or_else(|| panic!("no DISCONNECT in {packets:?}"));
    assert!(
        reasons.contains(&disconnect[2]),
        "DISCONNECT reason {:#04x}, expected one of {reasons:02x?}",
        disconnect[2]
    );
}

async fn assert_still_serving(broker: &Broker) {
    let client = V3::connect(broker.addr(), "still-serving").await;
    client.disconnect().await;
}

#[tokio::test]
async fn publish_with_qos_3_is_malformed_mqtt_3_3_1_4() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "qos3").await;
    let mut body = bytes::string("t");
    body.extend([0, 1]);
    raw.send(&bytes::packet(0x36, &body)).await;
    assert_closed_silently(&mut raw).await;
    let mut raw = v5(&broker, "qos3-5").await;
    let mut body = bytes::string("t");
    body.extend([0, 1, 0]);
    raw.send(&bytes::packet(0x36, &body)).await;
    assert_disconnected_with(&mut raw, &[0x81]).await;
    assert_still_serving(&broker).await;
}

#[tokio::test]
async fn qos0_publish_with_dup_is_malformed_mqtt_3_3_1_2() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "dup0").await;
    raw.send(&bytes::packet(0x38, &bytes::string("t"))).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn invalid_fixed_header_flags_are_malformed_mqtt_2_2_2_2() {
    let broker = Broker::start();
    // PUBREL must be 0110 0010 [MQTT-3.6.1-1]; SUBSCRIBE 1000 0010 [MQTT-3.8.1-1];
    // UNSUBSCRIBE 1010 0010 [MQTT-3.10.1-1]; PINGREQ 1100 0000.
    let cases: [Vec<u8>; 4] = [
        vec![0x60, 0x02, 0x00, 0x01],
        bytes::packet(0x80, &[0, 1, 0, 1, b't', 0]),
        bytes::packet(0xA0, &[0, 1, 0, 1, b't']),
        vec![0xC1, 0x00],
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut raw = v311(&broker, &format!("flags{i}")).await;
        raw.send(case).await;
        assert_closed_silently(&mut raw).await;
    }
    assert_still_serving(&broker).await;
}

#[tokio::test]
async fn packet_identifier_zero_is_refused_mqtt_2_3_1_1() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "pid0").await;
    raw.send(&bytes::subscribe_v311(0, "t", 1)).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn remaining_length_of_five_bytes_is_malformed_section_2_2_3() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "rl5").await;
    raw.send(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).await;
    assert_closed_silently(&mut raw).await;
    assert_still_serving(&broker).await;
}

#[tokio::test]
async fn unknown_protocol_name_closes_without_connack_mqtt_3_1_2_1() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQTX");
    body.extend([4, 0x02, 0, 60]);
    body.extend(bytes::string("bad-name"));
    raw.send(&bytes::packet(0x10, &body)).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn unsupported_protocol_level_is_answered_with_return_code_1_mqtt_3_1_2_2() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQTT");
    body.extend([6, 0x02, 0, 60]);
    body.extend(bytes::string("level-6"));
    raw.send(&bytes::packet(0x10, &body)).await;
    let (packets, closed) = raw.packets_until_close(WAIT).await;
    assert!(closed);
    assert_eq!(packets, vec![vec![0x20, 0x02, 0x00, 0x01]]);
}

#[tokio::test]
async fn second_connect_is_a_protocol_violation_mqtt_3_1_0_2() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "twice").await;
    raw.send(&bytes::connect_v311("twice")).await;
    assert_closed_silently(&mut raw).await;
    let mut raw = v5(&broker, "twice-5").await;
    raw.send(&bytes::connect_v5("twice-5")).await;
    assert_disconnected_with(&mut raw, &[0x82]).await;
}

#[tokio::test]
async fn wildcards_in_a_publish_topic_are_refused_mqtt_3_3_2_2() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "wild").await;
    raw.send(&bytes::publish_v311("a/+/c", b"x")).await;
    assert_closed_silently(&mut raw).await;
    let mut raw = v5(&broker, "wild-5").await;
    let mut body = bytes::string("a/#");
    body.push(0);
    raw.send(&bytes::packet(0x30, &body)).await;
    assert_disconnected_with(&mut raw, &[0x90, 0x81]).await;
}

#[tokio::test]
async fn null_character_in_a_topic_is_malformed_mqtt_1_5_4_2() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "nul").await;
    raw.send(&bytes::publish_v311("a\0b", b"x")).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn password_without_username_is_malformed_in_3_1_1_mqtt_3_1_2_22() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQTT");
    body.extend([4, 0x42, 0, 60]);
    body.extend(bytes::string("pw-only"));
    body.extend(bytes::string("secret"));
    raw.send(&bytes::packet(0x10, &body)).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn reserved_connect_flag_is_malformed_mqtt_3_1_2_3() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQTT");
    body.extend([4, 0x03, 0, 60]);
    body.extend(bytes::string("reserved"));
    raw.send(&bytes::packet(0x10, &body)).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn truncated_packet_then_close_leaves_the_broker_serving() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "trunc").await;
    raw.send(&[0x30, 0x20, 0x00, 0x05, b'a']).await;
    drop(raw);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_still_serving(&broker).await;
}

#[tokio::test]
async fn v5_duplicated_property_is_a_protocol_error_section_2_2_2_2() {
    let broker = Broker::start();
    let mut raw = v5(&broker, "dupprop").await;
    // PUBLISH QoS 0 with two Payload Format Indicator properties.
    let mut body = bytes::string("t");
    body.extend([4, 0x01, 0x00, 0x01, 0x00]);
    raw.send(&bytes::packet(0x30, &body)).await;
    assert_disconnected_with(&mut raw, &[0x82]).await;
}

#[tokio::test]
async fn v5_unknown_property_is_malformed_section_2_2_2_2() {
    let broker = Broker::start();
    let mut raw = v5(&broker, "unknownprop").await;
    let mut body = bytes::string("t");
    body.extend([2, 0x7F, 0x00]);
    raw.send(&bytes::packet(0x30, &body)).await;
    assert_disconnected_with(&mut raw, &[0x81]).await;
}

#[tokio::test]
async fn v5_topic_alias_zero_is_a_protocol_error_mqtt_3_3_2_8() {
    let broker = Broker::start();
    let mut raw = v5(&broker, "alias0").await;
    let mut body = bytes::string("t");
    body.extend([3, 0x23, 0x00, 0x00]);
    raw.send(&bytes::packet(0x30, &body)).await;
    assert_disconnected_with(&mut raw, &[0x94]).await;
}

#[tokio::test]
async fn v5_packet_over_maximum_packet_size_is_refused_with_0x95_mqtt_3_2_2_15() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\n{}\n[limits]\nmax_packet_size = 1024\n",
        crate::support::TCP_ONLY
    ));
    let mut raw = v5(&broker, "big").await;
    let mut body = bytes::string("t");
    body.push(0);
    body.extend(vec![b'x'; 4000]);
    raw.try_send(&bytes::packet(0x30, &body)).await;
    assert_disconnected_with(&mut raw, &[0x95]).await;
    assert_still_serving(&broker).await;
}

#[tokio::test]
async fn subscribe_without_filters_is_refused_mqtt_3_8_3_3() {
    let broker = Broker::start();
    let mut raw = v311(&broker, "nofilters").await;
    raw.send(&[0x82, 0x02, 0x00, 0x01]).await;
    assert_closed_silently(&mut raw).await;
}

#[tokio::test]
async fn will_qos_3_is_malformed_mqtt_3_1_2_12() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    let mut body = bytes::string("MQTT");
    body.extend([4, 0x1E, 0, 60]); // will flag + will QoS 3 + clean session
    body.extend(bytes::string("willqos3"));
    body.extend(bytes::string("w/t"));
    body.extend(bytes::string("bye"));
    raw.send(&bytes::packet(0x10, &body)).await;
    assert_closed_silently(&mut raw).await;
}
