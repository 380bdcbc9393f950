//! Unit tests of the codec: one per malformed-packet / protocol-error rule, named after the
//! statement it proves, and exact byte-level encodings checked against the spec's layouts.

use bytes::{Bytes, BytesMut};

use super::codec::{decode, decode_from_server, encode, encoded_len, DecodeError};
use super::connect::connack_return_code;
use super::packet::*;
use super::wire::put_varint;

use ProtocolVersion::{V31, V311, V5};

const MAX: usize = 1 << 20;

/// A packet from its first byte and body (the remaining length is computed).
fn frame(first: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[first]);
    put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

fn decode_client(first: u8, body: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let mut buf = frame(first, body);
    let packet = decode(&mut buf, Some(version), MAX)?.expect("whole packet buffered");
    assert!(buf.is_empty(), "exactly one packet consumed");
    Ok(packet)
}

fn decode_server(first: u8, body: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let mut buf = frame(first, body);
    let packet = decode_from_server(&mut buf, version, MAX)?.expect("whole packet buffered");
    assert!(buf.is_empty());
    Ok(packet)
}

fn decode_connect(body: &[u8]) -> Result<Connect, DecodeError> {
    let mut buf = frame(0x10, body);
    match decode(&mut buf, None, MAX)? {
        Some(Packet::Connect(c)) => Ok(*c),
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out);
    assert_eq!(out.len(), encoded_len(packet, version));
    out.to_vec()
}

fn is_malformed(r: Result<impl std::fmt::Debug, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::Malformed(_)))
}

fn is_protocol(r: Result<impl std::fmt::Debug, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::Protocol(_)))
}

/// A CONNECT body for "MQTT" level 4 with `flags`, keep alive 60, client id "c" and whatever
/// `rest` holds after the client id.
fn connect_v311(flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60, 0, 1, b'c'];
    body.extend_from_slice(rest);
    body
}

/// A v5 CONNECT body with the given property bytes (length prefix included).
fn connect_v5(flags: u8, props: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, flags, 0, 60];
    body.extend_from_slice(props);
    body.extend_from_slice(&[0, 1, b'c']);
    body.extend_from_slice(rest);
    body
}

/// A v5 QoS 0 PUBLISH to "t" with the given property bytes (length prefix included).
fn publish_v5_props(props: &[u8]) -> Result<Packet, DecodeError> {
    let mut body = vec![0, 1, b't'];
    body.extend_from_slice(props);
    body.extend_from_slice(b"x");
    decode_client(0x30, &body, V5)
}

// ---- fixed header ---------------------------------------------------------------------------

#[test]
fn reserved_fixed_header_flags_are_malformed_mqtt_2_2_2_2() {
    // PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry 0010.
    assert!(is_malformed(decode_client(0x60, &[0, 1], V311)));
    assert!(is_malformed(decode_client(
        0x80,
        &[0, 1, 0, 1, b'a', 0],
        V311
    )));
    assert!(is_malformed(decode_client(0xA0, &[0, 1, 0, 1, b'a'], V311)));
    // The others 0000.
    assert!(is_malformed(decode_client(0x42, &[0, 1], V311)));
    assert!(is_malformed(decode_client(0xC1, &[], V5)));
    assert!(is_malformed(decode_client(0xE2, &[], V5)));
    let mut buf = frame(0x11, &connect_v311(0x02, &[]));
    assert!(is_malformed(decode(&mut buf, None, MAX)));
    // The right flags pass.
    assert!(decode_client(0x62, &[0, 1], V311).is_ok());
}

#[test]
fn reserved_packet_types_are_malformed() {
    assert!(is_malformed(decode_client(0x00, &[], V311)));
    // AUTH (15) is reserved before MQTT 5.
    assert!(is_malformed(decode_client(0xF0, &[], V311)));
    assert!(decode_client(0xF0, &[], V5).is_ok());
}

#[test]
fn remaining_length_longer_than_four_bytes_is_malformed_mqtt_1_5_5() {
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
    assert!(is_malformed(decode(&mut buf, Some(V311), usize::MAX)));
}

#[test]
fn remaining_length_not_minimal_is_malformed_mqtt_1_5_5_1() {
    let mut buf = BytesMut::from(&[0xC0, 0x80, 0x00][..]);
    assert!(is_malformed(decode(&mut buf, Some(V311), MAX)));
}

#[test]
fn partial_packet_returns_none_and_leaves_buffer_untouched() {
    let whole = frame(0x32, &[0, 1, b't', 0, 7, b'p', b'a', b'y']);
    for cut in 0..whole.len() {
        let mut buf = BytesMut::from(&whole[..cut]);
        assert_eq!(decode(&mut buf, Some(V311), MAX), Ok(None), "cut at {cut}");
        assert_eq!(&buf[..], &whole[..cut]);
    }
}

#[test]
fn packet_over_maximum_packet_size_is_refused_before_its_body_arrives_sec_3_2_2_3_6() {
    // Header announces 1000 bytes; only 3 bytes of the packet are buffered.
    let mut buf = BytesMut::from(&[0x30, 0xE8, 0x07][..]);
    assert_eq!(
        decode(&mut buf, Some(V5), 100),
        Err(DecodeError::TooLarge(1003))
    );
    assert_eq!(
        DecodeError::TooLarge(1003).reason(),
        ReasonCode::PACKET_TOO_LARGE
    );
    // The limit counts the whole packet: a 4-byte PUBACK fits in 4, not in 3.
    let ack = frame(0x40, &[0, 1]);
    assert!(decode(&mut ack.clone(), Some(V311), 4).is_ok());
    assert!(matches!(
        decode(&mut ack.clone(), Some(V311), 3),
        Err(DecodeError::TooLarge(4))
    ));
}

#[test]
fn two_packets_in_one_buffer_are_decoded_one_at_a_time() {
    let mut buf = frame(0xC0, &[]);
    buf.extend_from_slice(&frame(0x40, &[0, 9]));
    assert_eq!(decode(&mut buf, Some(V311), MAX), Ok(Some(Packet::PingReq)));
    assert_eq!(
        decode(&mut buf, Some(V311), MAX),
        Ok(Some(Packet::PubAck(Ack::new(9))))
    );
    assert_eq!(decode(&mut buf, Some(V311), MAX), Ok(None));
}

#[test]
fn first_packet_must_be_connect_mqtt_3_1_0_1() {
    let mut buf = frame(0xC0, &[]);
    assert!(is_protocol(decode(&mut buf, None, MAX)));
    let mut buf = frame(0x30, &[0, 1, b't']);
    assert!(is_protocol(decode(&mut buf, None, MAX)));
}

#[test]
fn second_connect_is_a_protocol_error_mqtt_3_1_0_2() {
    assert!(is_protocol(decode_client(
        0x10,
        &connect_v311(0x02, &[]),
        V311
    )));
}

#[test]
fn server_only_packets_from_a_client_are_protocol_errors() {
    assert!(is_protocol(decode_client(0x20, &[0, 0], V311)));
    assert!(is_protocol(decode_client(0x90, &[0, 1, 0], V311)));
    assert!(is_protocol(decode_client(0xB0, &[0, 1], V311)));
    assert!(is_protocol(decode_client(0xD0, &[], V311)));
}

// ---- CONNECT --------------------------------------------------------------------------------

#[test]
fn connect_protocol_name_and_level_pick_the_version() {
    assert_eq!(
        decode_connect(&connect_v311(0x02, &[])).unwrap().protocol,
        V311
    );
    assert_eq!(
        decode_connect(&connect_v5(0x02, &[0], &[]))
            .unwrap()
            .protocol,
        V5
    );
    let mut v31 = vec![
        0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 1, b'c',
    ];
    assert_eq!(decode_connect(&v31).unwrap().protocol, V31);
    v31[8] = 4;
    assert_eq!(
        decode_connect(&v31),
        Err(DecodeError::UnsupportedProtocolVersion(4))
    );
}

#[test]
fn unsupported_protocol_level_is_reported_for_connack_0x84_mqtt_3_1_2_2() {
    let mut body = connect_v311(0x02, &[]);
    body[6] = 6;
    let err = decode_connect(&body).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedProtocolVersion(6));
    assert_eq!(err.reason(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert!(!err.connack_is_v5());
    assert_eq!(connack_return_code(err.reason()), 1);
    assert!(DecodeError::UnsupportedProtocolVersion(5).connack_is_v5());
}

#[test]
fn unknown_protocol_name_closes_without_connack_mqtt_3_1_2_1() {
    let mut body = connect_v311(0x02, &[]);
    body[5] = b'X';
    assert_eq!(decode_connect(&body), Err(DecodeError::UnknownProtocolName));
}

#[test]
fn connect_reserved_flag_is_malformed_mqtt_3_1_2_3() {
    assert!(is_malformed(decode_connect(&connect_v311(0x03, &[]))));
    assert!(is_malformed(decode_connect(&connect_v5(0x03, &[0], &[]))));
}

#[test]
fn will_qos_without_will_flag_is_malformed_mqtt_3_1_2_11_and_13() {
    assert!(is_malformed(decode_connect(&connect_v311(
        0x02 | 0x08,
        &[]
    ))));
    assert!(is_malformed(decode_connect(&connect_v311(
        0x02 | 0x10,
        &[]
    ))));
}

#[test]
fn will_qos_3_is_malformed_mqtt_3_1_2_14() {
    let will = [0, 1, b'w', 0, 1, b'm'];
    assert!(is_malformed(decode_connect(&connect_v311(
        0x02 | 0x04 | 0x18,
        &will
    ))));
}

#[test]
fn will_retain_without_will_flag_is_malformed_mqtt_3_1_2_15() {
    assert!(is_malformed(decode_connect(&connect_v311(
        0x02 | 0x20,
        &[]
    ))));
}

#[test]
fn will_fields_are_decoded_sec_3_1_3() {
    let c = decode_connect(&connect_v311(0x04 | 0x08 | 0x20, &[0, 1, b'w', 0, 2, 1, 2])).unwrap();
    let will = c.will.unwrap();
    assert_eq!(will.topic, "w");
    assert_eq!(&will.payload[..], &[1, 2]);
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert!(will.retain);
    assert!(!c.clean_start);
}

#[test]
fn will_topic_with_wildcard_is_refused() {
    let err = decode_connect(&connect_v311(0x04, &[0, 1, b'#', 0, 0])).unwrap_err();
    assert_eq!(err.reason(), ReasonCode::TOPIC_NAME_INVALID);
}

#[test]
fn password_without_username_is_malformed_in_3_1_1_mqtt_3_1_2_22() {
    assert!(is_malformed(decode_connect(&connect_v311(
        0x40,
        &[0, 1, b'p']
    ))));
}

#[test]
fn password_without_username_is_allowed_in_v5_sec_3_1_2_9() {
    let c = decode_connect(&connect_v5(0x40, &[0], &[0, 1, b'p'])).unwrap();
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
}

#[test]
fn connect_with_trailing_bytes_is_malformed() {
    assert!(is_malformed(decode_connect(&connect_v311(0x02, &[0]))));
}

#[test]
fn connect_fields_running_past_the_packet_are_malformed() {
    // Username flag set but no username.
    assert!(is_malformed(decode_connect(&connect_v311(0x80, &[]))));
    // Client id length beyond the body.
    let mut body = connect_v311(0x02, &[]);
    body[11] = 9;
    assert!(is_malformed(decode_connect(&body)));
}

#[test]
fn client_id_with_invalid_utf8_is_malformed_mqtt_1_5_3_1() {
    let mut body = connect_v311(0x02, &[]);
    body[12] = 0xFF;
    assert!(is_malformed(decode_connect(&body)));
}

#[test]
fn client_id_with_null_character_is_malformed_mqtt_1_5_3_2() {
    let mut body = connect_v311(0x02, &[]);
    body[12] = 0;
    assert!(is_malformed(decode_connect(&body)));
}

#[test]
fn connect_v311_spec_layout_round_trips_byte_for_byte() {
    // §3.1.2.10 example flags 0xCE: user name, password, will QoS 1, will, clean session.
    let body = connect_v311(0xCE, &[0, 1, b'w', 0, 1, b'm', 0, 1, b'u', 0, 1, b'p']);
    let c = decode_connect(&body).unwrap();
    assert_eq!(c.keep_alive, 60);
    assert!(c.clean_start);
    assert_eq!(c.client_id, "c");
    assert_eq!(c.username.as_deref(), Some("u"));
    assert_eq!(c.will.as_ref().map(|w| w.qos), Some(QoS::AtLeastOnce));
    assert_eq!(
        encoded(&Packet::Connect(Box::new(c)), V311),
        frame(0x10, &body).to_vec()
    );
}

#[test]
fn connect_v5_spec_example_properties_encode_exactly() {
    // §3.1.2.12 example: keep alive 10, properties: session expiry interval 10.
    let c = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 10,
        properties: Properties {
            session_expiry_interval: Some(10),
            ..Default::default()
        },
        client_id: String::new(),
        will: None,
        username: None,
        password: None,
    };
    let bytes = encoded(&Packet::Connect(Box::new(c.clone())), V5);
    let body = [
        0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 10, 5, 0x11, 0, 0, 0, 10, 0, 0,
    ];
    assert_eq!(bytes, frame(0x10, &body).to_vec());
    assert_eq!(decode_connect(&body).unwrap(), c);
}

#[test]
fn connect_v31_uses_mqisdp() {
    let c = decode_connect(&[
        0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 5, 0, 1, b'x',
    ])
    .unwrap();
    let bytes = encoded(&Packet::Connect(Box::new(c)), V31);
    assert_eq!(&bytes[2..10], &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p']);
}

// ---- CONNACK --------------------------------------------------------------------------------

#[test]
fn connack_3_1_1_return_codes_map_from_v5_reasons_mqtt_3_2_2_3() {
    for (reason, code) in [
        (0x00, 0),
        (0x84, 1),
        (0x85, 2),
        (0x88, 3),
        (0x89, 3),
        (0x86, 4),
        (0x87, 5),
        (0x8C, 4),
        (0x8A, 5),
        (0x80, 3),
        (0x97, 3),
    ] {
        assert_eq!(connack_return_code(ReasonCode(reason)), code, "{reason:#x}");
        let ack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode(reason),
            properties: Properties::default(),
        });
        assert_eq!(encoded(&ack, V311), vec![0x20, 2, 0, code]);
    }
}

#[test]
fn connack_session_present_is_0_with_a_refusal_mqtt_3_2_2_4() {
    let ack = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::NOT_AUTHORIZED,
        properties: Properties::default(),
    });
    assert_eq!(encoded(&ack, V311), vec![0x20, 2, 0, 5]);
    assert_eq!(encoded(&ack, V5), vec![0x20, 3, 0, 0x87, 0]);
}

#[test]
fn connack_encodings_per_version() {
    let mut ack = ConnAck {
        session_present: true,
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    assert_eq!(
        encoded(&Packet::ConnAck(ack.clone()), V311),
        vec![0x20, 2, 1, 0]
    );
    // MQTT 3.1 has no session present flag.
    assert_eq!(
        encoded(&Packet::ConnAck(ack.clone()), V31),
        vec![0x20, 2, 0, 0]
    );
    ack.properties.receive_maximum = Some(20);
    ack.properties.maximum_qos = Some(1);
    let bytes = encoded(&Packet::ConnAck(ack.clone()), V5);
    assert_eq!(bytes, vec![0x20, 8, 1, 0, 5, 0x21, 0, 20, 0x24, 1]);
    assert_eq!(
        decode_server(0x20, &bytes[2..], V5),
        Ok(Packet::ConnAck(ack))
    );
}

// ---- PUBLISH --------------------------------------------------------------------------------

#[test]
fn publish_qos_3_is_malformed_mqtt_3_3_1_4() {
    assert!(is_malformed(decode_client(0x36, &[0, 1, b't', 0, 1], V311)));
}

#[test]
fn qos0_publish_with_dup_is_malformed_mqtt_3_3_1_2() {
    assert!(is_malformed(decode_client(0x38, &[0, 1, b't'], V311)));
    assert!(is_malformed(decode_client(0x38, &[0, 1, b't', 0], V5)));
}

#[test]
fn publish_packet_id_0_is_malformed_mqtt_2_3_1_1() {
    assert!(is_malformed(decode_client(0x32, &[0, 1, b't', 0, 0], V311)));
    assert!(is_malformed(decode_client(
        0x34,
        &[0, 1, b't', 0, 0, 0],
        V5
    )));
}

#[test]
fn publish_topic_with_wildcards_is_invalid_mqtt_3_3_2_2() {
    for topic in [&b"a/+"[..], b"#", b"a#"] {
        let mut body = vec![0, topic.len() as u8];
        body.extend_from_slice(topic);
        let err = decode_client(0x30, &body, V311).unwrap_err();
        assert_eq!(err.reason(), ReasonCode::TOPIC_NAME_INVALID);
    }
}

#[test]
fn publish_empty_topic_is_invalid_in_3_1_1_mqtt_4_7_3_1() {
    let err = decode_client(0x30, &[0, 0, b'x'], V311).unwrap_err();
    assert!(matches!(err, DecodeError::TopicNameInvalid(_)));
}

#[test]
fn publish_empty_topic_is_decoded_in_v5_for_topic_alias_sec_3_3_2_3_4() {
    let Ok(Packet::Publish(p)) = decode_client(0x30, &[0, 0, 3, 0x23, 0, 1], V5) else {
        panic!("expected PUBLISH")
    };
    assert_eq!(p.topic, "");
    assert_eq!(p.properties.topic_alias, Some(1));
}

#[test]
fn publish_topic_with_invalid_utf8_is_malformed_mqtt_1_5_3_1() {
    assert!(is_malformed(decode_client(0x30, &[0, 2, 0xC0, 0x80], V311)));
}

#[test]
fn publish_qos1_v311_encodes_exactly() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(10),
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    });
    let bytes = vec![0x32, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i'];
    assert_eq!(encoded(&p, V311), bytes);
    assert_eq!(decode_client(bytes[0], &bytes[2..], V311), Ok(p.clone()));
    // v5 adds an empty property length.
    let v5 = vec![0x32, 10, 0, 3, b'a', b'/', b'b', 0, 10, 0, b'h', b'i'];
    assert_eq!(encoded(&p, V5), v5);
}

#[test]
fn publish_encoding_never_sets_dup_on_qos0_mqtt_3_3_1_2() {
    let p = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    });
    assert_eq!(encoded(&p, V311), vec![0x31, 3, 0, 1, b't']);
}

#[test]
fn publish_payload_is_shared_not_copied() {
    let mut buf = frame(0x30, &[0, 1, b't', 1, 2, 3]);
    let start = buf.as_ptr() as usize;
    let Ok(Some(Packet::Publish(p))) = decode(&mut buf, Some(V311), MAX) else {
        panic!("expected PUBLISH")
    };
    assert_eq!(p.payload.as_ptr() as usize, start + 5);
}

#[test]
fn client_publish_with_subscription_identifier_is_protocol_error_mqtt_3_3_4_6() {
    assert!(is_protocol(publish_v5_props(&[2, 0x0B, 1])));
}

#[test]
fn server_publish_may_carry_several_subscription_identifiers_mqtt_3_3_4_4() {
    let p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties {
            subscription_identifiers: vec![1, 300],
            ..Default::default()
        },
        payload: Bytes::new(),
    };
    let bytes = encoded(&Packet::Publish(p.clone()), V5);
    assert_eq!(
        bytes,
        vec![0x30, 9, 0, 1, b't', 5, 0x0B, 1, 0x0B, 0xAC, 0x02]
    );
    assert_eq!(
        decode_server(bytes[0], &bytes[2..], V5),
        Ok(Packet::Publish(p))
    );
}

// ---- properties -----------------------------------------------------------------------------

#[test]
fn unknown_property_identifier_is_malformed_sec_2_2_2_2() {
    assert!(is_malformed(publish_v5_props(&[2, 0x7F, 0])));
    assert!(is_malformed(publish_v5_props(&[2, 0x00, 0])));
}

#[test]
fn property_not_allowed_in_the_packet_is_malformed() {
    // Session expiry interval in PUBLISH.
    assert!(is_malformed(publish_v5_props(&[5, 0x11, 0, 0, 0, 1])));
    // Will delay interval in CONNECT's own properties.
    assert!(is_malformed(decode_connect(&connect_v5(
        0x02,
        &[5, 0x18, 0, 0, 0, 1],
        &[]
    ))));
    // Reason string in a client's SUBSCRIBE.
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 4, 0x1F, 0, 1, b'x', 0, 1, b'a', 0],
        V5
    )));
}

#[test]
fn duplicated_property_is_a_protocol_error_sec_2_2_2_2() {
    assert!(is_protocol(publish_v5_props(&[
        10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2
    ])));
    assert!(is_protocol(publish_v5_props(&[4, 0x01, 0, 0x01, 1])));
}

#[test]
fn user_property_may_repeat_sec_3_3_2_3_7() {
    let props = [
        14, 0x26, 0, 1, b'k', 0, 1, b'v', 0x26, 0, 1, b'k', 0, 1, b'w',
    ];
    let Ok(Packet::Publish(p)) = publish_v5_props(&props) else {
        panic!("expected PUBLISH")
    };
    assert_eq!(
        p.properties.user_properties,
        vec![("k".into(), "v".into()), ("k".into(), "w".into())]
    );
}

#[test]
fn subscription_identifier_0_is_a_protocol_error_sec_3_8_2_1_2() {
    assert!(is_protocol(decode_client(
        0x82,
        &[0, 1, 2, 0x0B, 0, 0, 1, b'a', 0],
        V5
    )));
}

#[test]
fn subscribe_with_two_subscription_identifiers_is_a_protocol_error() {
    let body = [0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, b'a', 0];
    assert!(is_protocol(decode_client(0x82, &body, V5)));
}

#[test]
fn receive_maximum_0_is_a_protocol_error_sec_3_1_2_11_3() {
    assert!(is_protocol(decode_connect(&connect_v5(
        0x02,
        &[3, 0x21, 0, 0],
        &[]
    ))));
}

#[test]
fn maximum_packet_size_0_is_a_protocol_error_sec_3_1_2_11_4() {
    assert!(is_protocol(decode_connect(&connect_v5(
        0x02,
        &[5, 0x27, 0, 0, 0, 0],
        &[]
    ))));
}

#[test]
fn payload_format_indicator_other_than_0_or_1_is_a_protocol_error() {
    assert!(is_protocol(publish_v5_props(&[2, 0x01, 2])));
    let Ok(Packet::Publish(p)) = publish_v5_props(&[2, 0x01, 1]) else {
        panic!("expected PUBLISH")
    };
    assert_eq!(p.properties.payload_format_indicator, Some(1));
}

#[test]
fn request_problem_information_other_than_0_or_1_is_a_protocol_error() {
    assert!(is_protocol(decode_connect(&connect_v5(
        0x02,
        &[2, 0x17, 2],
        &[]
    ))));
    assert!(is_protocol(decode_connect(&connect_v5(
        0x02,
        &[2, 0x19, 7],
        &[]
    ))));
}

#[test]
fn topic_alias_0_is_decoded_for_the_session_to_refuse_with_0x94_mqtt_3_3_2_8() {
    match publish_v5_props(&[3, 0x23, 0, 0]) {
        Ok(Packet::Publish(p)) => assert_eq!(p.properties.topic_alias, Some(0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_topic_with_wildcard_is_a_protocol_error_mqtt_3_3_2_14() {
    assert!(is_protocol(publish_v5_props(&[4, 0x08, 0, 1, b'#'])));
}

#[test]
fn authentication_data_without_method_is_a_protocol_error() {
    assert!(is_protocol(decode_connect(&connect_v5(
        0x02,
        &[4, 0x16, 0, 1, 9],
        &[]
    ))));
}

#[test]
fn property_length_past_the_packet_is_malformed() {
    assert!(is_malformed(publish_v5_props(&[9, 0x01, 0])));
}

#[test]
fn property_value_cut_short_is_malformed() {
    // Message expiry interval needs four bytes; the property list holds two.
    assert!(is_malformed(publish_v5_props(&[3, 0x02, 0, 0])));
}

#[test]
fn non_minimal_property_length_is_malformed_mqtt_1_5_5_1() {
    assert!(is_malformed(publish_v5_props(&[0x80, 0x00])));
}

#[test]
fn will_properties_are_decoded_separately_from_connect_properties() {
    let will = [7, 0x18, 0, 0, 0, 5, 0x01, 1, 0, 1, b'w', 0, 0];
    let c = decode_connect(&connect_v5(0x04, &[0], &will)).unwrap();
    let w = c.will.unwrap();
    assert_eq!(w.properties.will_delay_interval, Some(5));
    assert_eq!(w.properties.payload_format_indicator, Some(1));
    assert!(c.properties.is_empty());
}

// ---- acknowledgements -----------------------------------------------------------------------

#[test]
fn v5_ack_with_remaining_length_2_means_success_sec_3_4_2_1() {
    assert_eq!(
        decode_client(0x40, &[0, 7], V5),
        Ok(Packet::PubAck(Ack::new(7)))
    );
    assert_eq!(
        encoded(&Packet::PubAck(Ack::new(7)), V5),
        vec![0x40, 2, 0, 7]
    );
}

#[test]
fn v5_ack_with_reason_only_omits_properties() {
    let ack = Ack {
        packet_id: 7,
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: Properties::default(),
    };
    assert_eq!(
        encoded(&Packet::PubAck(ack.clone()), V5),
        vec![0x40, 3, 0, 7, 0x10]
    );
    assert_eq!(
        decode_client(0x40, &[0, 7, 0x10], V5),
        Ok(Packet::PubAck(ack))
    );
}

#[test]
fn v5_ack_with_reason_string_encodes_exactly() {
    let ack = Ack {
        packet_id: 1,
        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        properties: Properties {
            reason_string: Some("x".into()),
            ..Default::default()
        },
    };
    let bytes = encoded(&Packet::PubComp(ack.clone()), V5);
    assert_eq!(bytes, vec![0x70, 8, 0, 1, 0x92, 4, 0x1F, 0, 1, b'x']);
    assert_eq!(
        decode_client(0x70, &bytes[2..], V5),
        Ok(Packet::PubComp(ack))
    );
}

#[test]
fn ack_with_invalid_reason_code_is_a_protocol_error_mqtt_3_4_2_1() {
    // 0x10 is a PUBACK code, not a PUBREL one.
    assert!(is_protocol(decode_client(0x62, &[0, 1, 0x10], V5)));
    assert!(is_protocol(decode_client(0x40, &[0, 1, 0x04], V5)));
}

#[test]
fn v311_ack_with_trailing_bytes_is_malformed() {
    assert!(is_malformed(decode_client(0x40, &[0, 1, 0], V311)));
    assert!(is_malformed(decode_client(0x40, &[0], V311)));
}

#[test]
fn ack_packet_id_0_is_malformed_mqtt_2_3_1_1() {
    assert!(is_malformed(decode_client(0x50, &[0, 0], V311)));
}

#[test]
fn pubrel_encodes_with_flags_0010_mqtt_3_6_1_1() {
    assert_eq!(
        encoded(&Packet::PubRel(Ack::new(258)), V311),
        vec![0x62, 2, 1, 2]
    );
}

// ---- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

#[test]
fn subscribe_without_filters_is_a_protocol_error_mqtt_3_8_3_3() {
    assert!(is_protocol(decode_client(0x82, &[0, 1], V311)));
    assert!(is_protocol(decode_client(0x82, &[0, 1, 0], V5)));
}

#[test]
fn subscribe_packet_id_0_is_malformed_mqtt_2_3_1_1() {
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 0, 0, 1, b'a', 0],
        V311
    )));
}

#[test]
fn subscribe_options_reserved_bits_are_malformed_in_3_1_1_mqtt_3_8_3_4() {
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 1, b'a', 0x04],
        V311
    )));
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 1, b'a', 0x80],
        V311
    )));
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 1, b'a', 3],
        V311
    )));
}

#[test]
fn subscribe_options_reserved_bits_are_malformed_in_v5_mqtt_3_8_3_5() {
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 0, 1, b'a', 0x40],
        V5
    )));
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 0, 1, b'a', 0x80],
        V5
    )));
}

#[test]
fn subscribe_qos_3_and_retain_handling_3_are_protocol_errors_in_v5() {
    assert!(is_protocol(decode_client(
        0x82,
        &[0, 1, 0, 0, 1, b'a', 0x03],
        V5
    )));
    assert!(is_protocol(decode_client(
        0x82,
        &[0, 1, 0, 0, 1, b'a', 0x30],
        V5
    )));
}

#[test]
fn subscribe_v5_options_are_decoded() {
    let Ok(Packet::Subscribe(s)) = decode_client(0x82, &[0, 1, 0, 0, 1, b'a', 0x2E], V5) else {
        panic!("expected SUBSCRIBE")
    };
    let options = s.filters[0].1;
    assert_eq!(options.qos, QoS::ExactlyOnce);
    assert!(options.no_local);
    assert!(options.retain_as_published);
    assert_eq!(options.retain_handling, RetainHandling::DoNotSend);
}

#[test]
fn subscribe_invalid_filters_are_malformed_mqtt_4_7_1() {
    for filter in [
        &b"a/#/b"[..],
        b"a+",
        b"",
        b"$share//a",
        b"$share/g",
        b"$share/g+/a",
    ] {
        let mut body = vec![0, 1, 0, filter.len() as u8];
        body.extend_from_slice(filter);
        body.push(0);
        assert!(is_malformed(decode_client(0x82, &body, V311)), "{filter:?}");
    }
}

#[test]
fn shared_subscription_with_no_local_is_a_protocol_error_mqtt_3_8_3_4() {
    let mut body = vec![0, 1, 0, 0, 10];
    body.extend_from_slice(b"$share/g/a");
    body.push(0x04);
    assert!(is_protocol(decode_client(0x82, &body, V5)));
    // Without No Local it is accepted.
    *body.last_mut().unwrap() = 0x01;
    assert!(decode_client(0x82, &body, V5).is_ok());
}

#[test]
fn subscribe_filter_running_past_the_packet_is_malformed() {
    assert!(is_malformed(decode_client(
        0x82,
        &[0, 1, 0, 9, b'a', 0],
        V311
    )));
    // The options byte missing.
    assert!(is_malformed(decode_client(0x82, &[0, 1, 0, 1, b'a'], V311)));
}

#[test]
fn unsubscribe_without_filters_is_a_protocol_error_mqtt_3_10_3_2() {
    assert!(is_protocol(decode_client(0xA2, &[0, 1], V311)));
    assert!(is_protocol(decode_client(0xA2, &[0, 1, 0], V5)));
}

#[test]
fn unsubscribe_invalid_filter_is_malformed() {
    assert!(is_malformed(decode_client(
        0xA2,
        &[0, 1, 0, 2, b'#', b'a'],
        V311
    )));
}

#[test]
fn suback_v311_maps_every_failure_to_0x80_mqtt_3_9_3_2() {
    let ack = Packet::SubAck(SubAck {
        packet_id: 1,
        properties: Properties::default(),
        reasons: vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::SUCCESS,
            ReasonCode::TOPIC_FILTER_INVALID,
        ],
    });
    assert_eq!(encoded(&ack, V311), vec![0x90, 6, 0, 1, 1, 0x80, 0, 0x80]);
    assert_eq!(encoded(&ack, V5), vec![0x90, 7, 0, 1, 0, 1, 0x87, 0, 0x8F]);
}

#[test]
fn unsuback_v311_has_no_reason_codes_on_the_wire() {
    let ack = Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        properties: Properties::default(),
        reasons: vec![ReasonCode::SUCCESS],
    });
    assert_eq!(encoded(&ack, V311), vec![0xB0, 2, 0, 3]);
    assert_eq!(encoded(&ack, V5), vec![0xB0, 4, 0, 3, 0, 0]);
}

// ---- PING / DISCONNECT / AUTH ---------------------------------------------------------------

#[test]
fn ping_packets_encode_exactly_sec_3_12_and_3_13() {
    assert_eq!(encoded(&Packet::PingReq, V311), vec![0xC0, 0]);
    assert_eq!(encoded(&Packet::PingResp, V5), vec![0xD0, 0]);
    assert_eq!(decode_client(0xC0, &[], V5), Ok(Packet::PingReq));
}

#[test]
fn pingreq_with_a_body_is_malformed() {
    assert!(is_malformed(decode_client(0xC0, &[0], V311)));
}

#[test]
fn v5_disconnect_with_remaining_length_0_is_normal_sec_3_14_2_1() {
    let normal = Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    assert_eq!(
        decode_client(0xE0, &[], V5),
        Ok(Packet::Disconnect(normal.clone()))
    );
    assert_eq!(encoded(&Packet::Disconnect(normal), V5), vec![0xE0, 0]);
}

#[test]
fn v5_disconnect_with_will_and_session_expiry() {
    let d = Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties {
            session_expiry_interval: Some(0),
            ..Default::default()
        },
    };
    let bytes = encoded(&Packet::Disconnect(d.clone()), V5);
    assert_eq!(bytes, vec![0xE0, 7, 0x04, 5, 0x11, 0, 0, 0, 0]);
    assert_eq!(
        decode_client(0xE0, &bytes[2..], V5),
        Ok(Packet::Disconnect(d))
    );
}

#[test]
fn v311_disconnect_with_a_body_is_malformed() {
    assert!(is_malformed(decode_client(0xE0, &[0], V311)));
}

#[test]
fn disconnect_invalid_reason_code_is_a_protocol_error_mqtt_3_14_2_1() {
    assert!(is_protocol(decode_client(0xE0, &[0x01], V5)));
    // Server-only codes from a client, client-only codes from a server.
    assert!(is_protocol(decode_client(0xE0, &[0x8B], V5)));
    assert!(is_protocol(decode_server(0xE0, &[0x04], V5)));
    assert!(decode_server(0xE0, &[0x8B], V5).is_ok());
}

#[test]
fn server_disconnect_with_session_expiry_is_a_protocol_error_mqtt_3_14_2_2() {
    assert!(is_protocol(decode_server(
        0xE0,
        &[0x00, 5, 0x11, 0, 0, 0, 1],
        V5
    )));
    assert!(decode_client(0xE0, &[0x00, 5, 0x11, 0, 0, 0, 1], V5).is_ok());
}

#[test]
fn auth_reason_codes_and_properties_sec_3_15_2_1() {
    let body = [0x18, 7, 0x15, 0, 1, b'm', 0x16, 0, 0];
    let Ok(Packet::Auth(a)) = decode_client(0xF0, &body, V5) else {
        panic!("expected AUTH")
    };
    assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(a.properties.authentication_method.as_deref(), Some("m"));
    assert!(is_protocol(decode_client(0xF0, &[0x01], V5)));
}
