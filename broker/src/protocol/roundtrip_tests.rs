//! Property tests: every packet type, in MQTT 3.1, 3.1.1 and 5.0, with arbitrary (valid)
//! contents and properties, decodes to exactly what was encoded; and a packet cut anywhere is
//! reported incomplete without touching the buffer.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::codec::{decode, decode_from_server, encode, encoded_len};
use super::packet::*;
use super::properties::{self as ids, allowed, PropertyContext, Sender};
use super::wire::MAX_VARINT;

use ProtocolVersion::{V31, V311, V5};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 /é€_-]{0,12}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9é$]{1,6}(/[a-z0-9_]{0,5}){0,3}"
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        topic(),
        Just("#".to_string()),
        Just("+".to_string()),
        "[a-z]{1,4}/\\+/[a-z]{1,3}",
        "[a-z]{1,3}(/\\+)?/#",
        "\\$share/[a-z]{1,4}/[a-z]{1,4}/\\+",
    ]
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

fn properties() -> impl Strategy<Value = Properties> {
    let message = (
        flag(),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic()),
        option::of(data()),
        vec(1..=MAX_VARINT, 0..3),
        vec((text(), text()), 0..3),
    );
    let session = (
        option::of(any::<u32>()),
        option::of(text()),
        option::of(any::<u16>()),
        option::of(text()),
        option::of(data()),
        flag(),
        option::of(any::<u32>()),
        flag(),
        option::of(text()),
        option::of(text()),
    );
    let limits = (
        option::of(text()),
        option::of(1..=u16::MAX),
        option::of(any::<u16>()),
        option::of(1..=u16::MAX),
        flag(),
        flag(),
        option::of(1..=u32::MAX),
        flag(),
        flag(),
        flag(),
    );
    (message, session, limits).prop_map(|(m, s, l)| Properties {
        payload_format_indicator: m.0,
        message_expiry_interval: m.1,
        content_type: m.2,
        response_topic: m.3,
        correlation_data: m.4,
        subscription_identifiers: m.5,
        user_properties: m.6,
        session_expiry_interval: s.0,
        assigned_client_identifier: s.1,
        server_keep_alive: s.2,
        // Authentication data only goes with a method.
        authentication_data: s.4.filter(|_| s.3.is_some()),
        authentication_method: s.3,
        request_problem_information: s.5,
        will_delay_interval: s.6,
        request_response_information: s.7,
        response_information: s.8,
        server_reference: s.9,
        reason_string: l.0,
        receive_maximum: l.1,
        topic_alias_maximum: l.2,
        topic_alias: l.3,
        maximum_qos: l.4,
        retain_available: l.5,
        maximum_packet_size: l.6,
        wildcard_subscription_available: l.7,
        subscription_identifier_available: l.8,
        shared_subscription_available: l.9,
    })
}

fn keep_if<T>(slot: &mut Option<T>, id: u8, ctx: PropertyContext) {
    if !allowed(id, ctx) {
        *slot = None;
    }
}

/// Drops what `ctx` may not carry, so the result is what a correct peer could send.
fn restrict(mut p: Properties, ctx: PropertyContext, sender: Sender) -> Properties {
    keep_if(
        &mut p.payload_format_indicator,
        ids::PAYLOAD_FORMAT_INDICATOR,
        ctx,
    );
    keep_if(
        &mut p.message_expiry_interval,
        ids::MESSAGE_EXPIRY_INTERVAL,
        ctx,
    );
    keep_if(&mut p.content_type, ids::CONTENT_TYPE, ctx);
    keep_if(&mut p.response_topic, ids::RESPONSE_TOPIC, ctx);
    keep_if(&mut p.correlation_data, ids::CORRELATION_DATA, ctx);
    match (ctx, sender) {
        (PropertyContext::Publish, Sender::Server) => {}
        (PropertyContext::Subscribe, _) => p.subscription_identifiers.truncate(1),
        _ => p.subscription_identifiers.clear(),
    }
    keep_if(
        &mut p.session_expiry_interval,
        ids::SESSION_EXPIRY_INTERVAL,
        ctx,
    );
    keep_if(
        &mut p.assigned_client_identifier,
        ids::ASSIGNED_CLIENT_IDENTIFIER,
        ctx,
    );
    keep_if(&mut p.server_keep_alive, ids::SERVER_KEEP_ALIVE, ctx);
    keep_if(
        &mut p.authentication_method,
        ids::AUTHENTICATION_METHOD,
        ctx,
    );
    keep_if(&mut p.authentication_data, ids::AUTHENTICATION_DATA, ctx);
    keep_if(
        &mut p.request_problem_information,
        ids::REQUEST_PROBLEM_INFORMATION,
        ctx,
    );
    keep_if(&mut p.will_delay_interval, ids::WILL_DELAY_INTERVAL, ctx);
    keep_if(
        &mut p.request_response_information,
        ids::REQUEST_RESPONSE_INFORMATION,
        ctx,
    );
    keep_if(&mut p.response_information, ids::RESPONSE_INFORMATION, ctx);
    keep_if(&mut p.server_reference, ids::SERVER_REFERENCE, ctx);
    keep_if(&mut p.reason_string, ids::REASON_STRING, ctx);
    keep_if(&mut p.receive_maximum, ids::RECEIVE_MAXIMUM, ctx);
    keep_if(&mut p.topic_alias_maximum, ids::TOPIC_ALIAS_MAXIMUM, ctx);
    keep_if(&mut p.topic_alias, ids::TOPIC_ALIAS, ctx);
    keep_if(&mut p.maximum_qos, ids::MAXIMUM_QOS, ctx);
    keep_if(&mut p.retain_available, ids::RETAIN_AVAILABLE, ctx);
    keep_if(&mut p.maximum_packet_size, ids::MAXIMUM_PACKET_SIZE, ctx);
    keep_if(
        &mut p.wildcard_subscription_available,
        ids::WILDCARD_SUBSCRIPTION_AVAILABLE,
        ctx,
    );
    keep_if(
        &mut p.subscription_identifier_available,
        ids::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        ctx,
    );
    keep_if(
        &mut p.shared_subscription_available,
        ids::SHARED_SUBSCRIPTION_AVAILABLE,
        ctx,
    );
    p
}

fn props_for(
    version: ProtocolVersion,
    ctx: PropertyContext,
    sender: Sender,
) -> BoxedStrategy<Properties> {
    if version.is_v5() {
        properties()
            .prop_map(move |p| restrict(p, ctx, sender))
            .boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn reason_from(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

fn connect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let will = (
        topic(),
        data(),
        qos(),
        any::<bool>(),
        props_for(version, PropertyContext::Will, Sender::Client),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        props_for(version, PropertyContext::Connect, Sender::Client),
        "[a-zA-Z0-9]{0,23}",
        option::of(will),
        option::of(text()),
        option::of(data()),
    )
        .prop_map(
            move |(clean_start, keep_alive, properties, client_id, will, username, password)| {
                // 3.x: no password without a user name [MQTT-3.1.2-22].
                let password = password.filter(|_| version.is_v5() || username.is_some());
                Packet::Connect(Box::new(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        )
        .boxed()
}

fn publish(version: ProtocolVersion, sender: Sender) -> BoxedStrategy<Packet> {
    let topic = if version.is_v5() {
        prop_oneof![topic(), Just(String::new())].boxed()
    } else {
        topic().boxed()
    };
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic,
        1..=u16::MAX,
        props_for(version, PropertyContext::Publish, sender),
        data(),
    )
        .prop_map(|(dup, qos, retain, topic, id, properties, payload)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !at_most_once,
                qos,
                retain,
                topic,
                packet_id: (!at_most_once).then_some(id),
                properties,
                payload,
            })
        })
        .boxed()
}

fn ack(version: ProtocolVersion, sender: Sender) -> BoxedStrategy<Packet> {
    let publish_reasons: &'static [u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    let release_reasons: &'static [u8] = &[0x00, 0x92];
    (
        0..4u8,
        1..=u16::MAX,
        reason_from(publish_reasons),
        reason_from(release_reasons),
        props_for(version, PropertyContext::Ack, sender),
    )
        .prop_map(
            move |(kind, packet_id, pub_reason, rel_reason, properties)| {
                let mut ack = Ack::new(packet_id);
                if version.is_v5() {
                    ack.reason = if kind < 2 { pub_reason } else { rel_reason };
                    ack.properties = properties;
                }
                match kind {
                    0 => Packet::PubAck(ack),
                    1 => Packet::PubRec(ack),
                    2 => Packet::PubRel(ack),
                    _ => Packet::PubComp(ack),
                }
            },
        )
        .boxed()
}

fn subscription_options(version: ProtocolVersion) -> impl Strategy<Value = SubscriptionOptions> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RetainHandling::SendAtSubscribe),
            Just(RetainHandling::SendIfNew),
            Just(RetainHandling::DoNotSend)
        ],
    )
        .prop_map(
            move |(qos, no_local, retain_as_published, retain_handling)| {
                if version.is_v5() {
                    SubscriptionOptions {
                        qos,
                        no_local,
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions::qos(qos)
                }
            },
        )
}

fn subscribe(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        1..=u16::MAX,
        props_for(version, PropertyContext::Subscribe, Sender::Client),
        vec((filter(), subscription_options(version)), 1..5),
    )
        .prop_map(|(packet_id, properties, mut filters)| {
            // No Local is not allowed on a shared subscription [MQTT-3.8.3-4].
            for (filter, options) in &mut filters {
                if filter.starts_with("$share/") {
                    options.no_local = false;
                }
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

fn suback(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes: &'static [u8] = if version.is_v5() {
        &[
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
        ]
    } else {
        &[0x00, 0x01, 0x02, 0x80]
    };
    (
        1..=u16::MAX,
        props_for(version, PropertyContext::SubAck, Sender::Server),
        vec(reason_from(codes), 1..5),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        })
        .boxed()
}

fn unsubscribe(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        1..=u16::MAX,
        props_for(version, PropertyContext::Unsubscribe, Sender::Client),
        vec(filter(), 1..5),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

fn unsuback(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes: &'static [u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    (
        1..=u16::MAX,
        props_for(version, PropertyContext::UnsubAck, Sender::Server),
        vec(reason_from(codes), 1..5),
    )
        .prop_map(move |(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                // 3.x UNSUBACK carries no reason codes.
                reasons: if version.is_v5() { reasons } else { Vec::new() },
            })
        })
        .boxed()
}

fn connack(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes: &'static [u8] = if version.is_v5() {
        &[
            0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
            0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
        ]
    } else {
        // The v5 codes that the 3.x return codes decode back to.
        &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87]
    };
    (
        any::<bool>(),
        reason_from(codes),
        props_for(version, PropertyContext::ConnAck, Sender::Server),
    )
        .prop_map(move |(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: session_present
                    && !reason.is_error()
                    && version != ProtocolVersion::V31,
                reason,
                properties,
            })
        })
        .boxed()
}

fn disconnect(version: ProtocolVersion, sender: Sender) -> BoxedStrategy<Packet> {
    let codes: &'static [u8] = match sender {
        Sender::Client => &[
            0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        ],
        Sender::Server => &[
            0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
            0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
        ],
    };
    (
        reason_from(codes),
        props_for(version, PropertyContext::Disconnect, sender),
    )
        .prop_map(move |(reason, mut properties)| {
            if sender == Sender::Server {
                // [MQTT-3.14.2-2]
                properties.session_expiry_interval = None;
            }
            Packet::Disconnect(Disconnect {
                reason: if version.is_v5() {
                    reason
                } else {
                    ReasonCode::SUCCESS
                },
                properties,
            })
        })
        .boxed()
}

fn auth(sender: Sender) -> BoxedStrategy<Packet> {
    (
        reason_from(&[0x00, 0x18, 0x19]),
        props_for(V5, PropertyContext::Auth, sender),
    )
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
        .boxed()
}

fn client_packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut choices = vec![
        connect(version),
        publish(version, Sender::Client),
        ack(version, Sender::Client),
        subscribe(version),
        unsubscribe(version),
        Just(Packet::PingReq).boxed(),
        disconnect(version, Sender::Client),
    ];
    if version.is_v5() {
        choices.push(auth(Sender::Client));
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn server_packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut choices = vec![
        connack(version),
        publish(version, Sender::Server),
        ack(version, Sender::Server),
        suback(version),
        unsuback(version),
        Just(Packet::PingResp).boxed(),
    ];
    if version.is_v5() {
        choices.push(disconnect(version, Sender::Server));
        choices.push(auth(Sender::Server));
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn decode_as(
    buf: &mut BytesMut,
    packet: &Packet,
    version: ProtocolVersion,
    sender: Sender,
) -> Result<Option<Packet>, super::codec::DecodeError> {
    match (sender, packet) {
        (Sender::Client, Packet::Connect(_)) => decode(buf, None, usize::MAX),
        (Sender::Client, _) => decode(buf, Some(version), usize::MAX),
        (Sender::Server, _) => decode_from_server(buf, version, usize::MAX),
    }
}

fn round_trip(
    packet: Packet,
    version: ProtocolVersion,
    sender: Sender,
    cut: Option<proptest::sample::Index>,
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    encode(&packet, version, &mut buf);
    prop_assert_eq!(buf.len(), encoded_len(&packet, version));

    // Any strict prefix is incomplete and left alone.
    if let Some(cut) = cut {
        let mut prefix = BytesMut::from(&buf[..cut.index(buf.len())]);
        let before = prefix.clone();
        prop_assert_eq!(decode_as(&mut prefix, &packet, version, sender), Ok(None));
        prop_assert_eq!(prefix, before);
    }

    let decoded = decode_as(&mut buf, &packet, version, sender);
    prop_assert_eq!(decoded, Ok(Some(packet)));
    prop_assert!(buf.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v5_client_packets_round_trip(p in client_packet(V5), cut: proptest::sample::Index) {
        round_trip(p, V5, Sender::Client, Some(cut))?;
    }

    #[test]
    fn v5_server_packets_round_trip(p in server_packet(V5), cut: proptest::sample::Index) {
        round_trip(p, V5, Sender::Server, Some(cut))?;
    }

    #[test]
    fn v311_client_packets_round_trip(p in client_packet(V311), cut: proptest::sample::Index) {
        round_trip(p, V311, Sender::Client, Some(cut))?;
    }

    #[test]
    fn v311_server_packets_round_trip(p in server_packet(V311), cut: proptest::sample::Index) {
        round_trip(p, V311, Sender::Server, Some(cut))?;
    }

    #[test]
    fn v31_client_packets_round_trip(p in client_packet(V31), cut: proptest::sample::Index) {
        round_trip(p, V31, Sender::Client, Some(cut))?;
    }

    #[test]
    fn v31_server_packets_round_trip(p in server_packet(V31), cut: proptest::sample::Index) {
        round_trip(p, V31, Sender::Server, Some(cut))?;
    }

    /// Arbitrary bytes never panic the decoder, whatever the version or direction, and
    /// whatever it accepts re-encodes to something that decodes to the same packet.
    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_equal(bytes in vec(any::<u8>(), 0..64)) {
        for version in [None, Some(V31), Some(V311), Some(V5)] {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(packet)) = decode(&mut buf, version, 1 << 16) {
                let version = match &packet {
                    Packet::Connect(c) => c.protocol,
                    _ => version.unwrap_or(V5),
                };
                round_trip(packet, version, Sender::Client, None)?;
            }
        }
        for version in [V31, V311, V5] {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(packet)) = decode_from_server(&mut buf, version, 1 << 16) {
                round_trip(packet, version, Sender::Server, None)?;
            }
        }
    }
}
