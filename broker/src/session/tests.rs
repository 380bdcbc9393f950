//! Session engine tests, one per rule of the spec they prove.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::protocol::Properties;

fn limits() -> SessionLimits {
    SessionLimits {
        max_inflight: 3,
        max_queued_messages: 5,
        receive_maximum: 2,
        topic_alias_maximum: 4,
    }
}

fn params(version: ProtocolVersion) -> LinkParams {
    LinkParams {
        version,
        receive_maximum: u16::MAX,
        maximum_packet_size: None,
        topic_alias_maximum: 0,
    }
}

fn message(topic: &str, qos: QoS) -> Arc<Message> {
    Arc::new(Message {
        topic: topic.into(),
        payload: Bytes::from_static(b"payload"),
        qos,
        retain: false,
        properties: Properties::default(),
        expires_at: None,
        publisher: "publisher".into(),
    })
}

fn delivery(topic: &str, qos: QoS) -> Delivery {
    Delivery::live(message(topic, qos), qos, false, vec![])
}

fn online(version: ProtocolVersion) -> Session {
    let mut s = Session::new(limits());
    let mut out = Vec::new();
    s.attach(params(version), &mut out);
    assert!(out.is_empty());
    s
}

fn publishes(out: &[Packet]) -> Vec<&Publish> {
    out.iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn inbound(topic: &str, qos: QoS, id: Option<u16>) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    }
}

#[test]
fn qos0_messages_are_not_queued_for_offline_sessions_mqtt_3_1_2_5() {
    let mut s = Session::new(limits());
    assert_eq!(
        s.enqueue(delivery("t", QoS::AtMostOnce)),
        Enqueued::DroppedOffline
    );
    assert_eq!(s.enqueue(delivery("t", QoS::AtLeastOnce)), Enqueued::Queued);
    assert_eq!(s.queued(), 1);
}

#[test]
fn offline_queue_is_bounded_and_overflow_is_counted() {
    let mut s = Session::new(limits());
    for _ in 0..5 {
        assert_eq!(s.enqueue(delivery("t", QoS::AtLeastOnce)), Enqueued::Queued);
    }
    assert_eq!(
        s.enqueue(delivery("t", QoS::AtLeastOnce)),
        Enqueued::DroppedQueueFull
    );
    assert_eq!(s.dropped(), 1);
}

#[test]
fn queued_messages_are_sent_on_reconnect_mqtt_3_1_2_5() {
    let mut s = Session::new(limits());
    s.enqueue(delivery("a", QoS::AtLeastOnce));
    s.enqueue(delivery("b", QoS::ExactlyOnce));
    let now = Instant::now();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V311), &mut out);
    let t = s.poll_transmit(now, &mut out);
    assert_eq!(t.sent, 2);
    let p = publishes(&out);
    assert_eq!(p[0].topic, "a");
    assert_eq!(p[1].topic, "b");
    assert_eq!(p[1].qos, QoS::ExactlyOnce);
    assert!(p.iter().all(|p| !p.dup && p.packet_id.is_some()));
}

#[test]
fn outbound_window_is_bounded_by_client_receive_maximum_mqtt_3_3_4_9() {
    let mut s = Session::new(SessionLimits {
        max_queued_messages: 100,
        ..limits()
    });
    let mut out = Vec::new();
    let now = Instant::now();
    s.attach(
        LinkParams {
            receive_maximum: 2,
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    for _ in 0..4 {
        s.enqueue(delivery("t", QoS::AtLeastOnce));
    }
    assert_eq!(s.poll_transmit(now, &mut out).sent, 2);
    assert_eq!(s.inflight(), 2);
    let first = publishes(&out)[0].packet_id.unwrap();
    out.clear();
    assert_eq!(s.poll_transmit(now, &mut out).sent, 0);
    assert!(s.on_puback(&Ack::new(first)));
    assert_eq!(s.poll_transmit(now, &mut out).sent, 1);
}

#[test]
fn outbound_window_is_bounded_by_max_inflight() {
    let mut s = online(ProtocolVersion::V311);
    for _ in 0..5 {
        s.enqueue(delivery("t", QoS::ExactlyOnce));
    }
    let mut out = Vec::new();
    assert_eq!(s.poll_transmit(Instant::now(), &mut out).sent, 3);
}

#[test]
fn a_full_window_holds_back_later_qos0_to_keep_order_mqtt_4_6_0_6() {
    let mut s = Session::new(limits());
    let now = Instant::now();
    let mut out = Vec::new();
    s.attach(
        LinkParams {
            receive_maximum: 1,
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    s.enqueue(delivery("1", QoS::AtLeastOnce));
    s.enqueue(delivery("2", QoS::AtLeastOnce));
    s.enqueue(delivery("3", QoS::AtMostOnce));
    s.poll_transmit(now, &mut out);
    assert_eq!(publishes(&out).len(), 1);
    let id = publishes(&out)[0].packet_id.unwrap();
    out.clear();
    s.on_puback(&Ack::new(id));
    s.poll_transmit(now, &mut out);
    let topics: Vec<&str> = publishes(&out).iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, vec!["2", "3"]);
}

#[test]
fn unacknowledged_publish_is_resent_with_dup_and_same_id_on_resume_mqtt_4_4_0_1() {
    let mut s = online(ProtocolVersion::V311);
    let now = Instant::now();
    s.enqueue(delivery("q1", QoS::AtLeastOnce));
    s.enqueue(delivery("q2", QoS::ExactlyOnce));
    let mut out = Vec::new();
    s.poll_transmit(now, &mut out);
    let ids: Vec<u16> = publishes(&out)
        .iter()
        .map(|p| p.packet_id.unwrap())
        .collect();
    s.detach();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V311), &mut out);
    assert!(out.is_empty());
    s.enqueue(delivery("later", QoS::AtLeastOnce));
    s.poll_transmit(now, &mut out);
    let p = publishes(&out);
    assert_eq!(p.len(), 3);
    // re-sent ones first, then the queue
    assert_eq!(p[2].topic, "later");
    assert!(!p[2].dup);
    assert!(p[..2].iter().all(|p| p.dup));
    assert_eq!(p[0].packet_id, Some(ids[0]));
    assert_eq!(p[1].packet_id, Some(ids[1]));
    assert_eq!(p[0].topic, "q1");
}

#[test]
fn pubrel_is_resent_for_pubrecd_messages_on_resume_mqtt_4_4_0_1() {
    let mut s = online(ProtocolVersion::V5);
    let now = Instant::now();
    s.enqueue(delivery("q2", QoS::ExactlyOnce));
    let mut out = Vec::new();
    s.poll_transmit(now, &mut out);
    let id = publishes(&out)[0].packet_id.unwrap();
    out.clear();
    s.on_pubrec(&Ack::new(id), &mut out);
    assert_eq!(out, vec![Packet::PubRel(Ack::new(id))]);
    s.detach();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V5), &mut out);
    assert_eq!(out, vec![Packet::PubRel(Ack::new(id))]);
    assert!(s.on_pubcomp(&Ack::new(id)));
    assert_eq!(s.inflight(), 0);
}

#[test]
fn qos0_queued_messages_are_discarded_when_the_client_goes_offline() {
    let mut s = Session::new(SessionLimits {
        max_inflight: 1,
        ..limits()
    });
    let now = Instant::now();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V311), &mut out);
    s.enqueue(delivery("a", QoS::AtLeastOnce));
    s.enqueue(delivery("b", QoS::AtLeastOnce));
    s.enqueue(delivery("c", QoS::AtMostOnce));
    s.poll_transmit(now, &mut out);
    s.detach();
    assert_eq!(s.queued(), 1);
}

#[test]
fn expired_messages_are_not_delivered_mqtt_3_3_2_5() {
    let mut s = online(ProtocolVersion::V5);
    let now = Instant::now();
    let mut msg = (*message("t", QoS::AtLeastOnce)).clone();
    msg.expires_at = Some(now + Duration::from_secs(5));
    s.enqueue(Delivery::live(
        Arc::new(msg),
        QoS::AtLeastOnce,
        false,
        vec![],
    ));
    let mut out = Vec::new();
    let t = s.poll_transmit(now + Duration::from_secs(6), &mut out);
    assert_eq!(t.expired, 1);
    assert!(out.is_empty());
    assert_eq!(s.inflight(), 0);
}

#[test]
fn message_expiry_interval_is_decremented_on_delivery_mqtt_3_3_2_6() {
    let mut s = online(ProtocolVersion::V5);
    let now = Instant::now();
    let mut msg = (*message("t", QoS::AtMostOnce)).clone();
    msg.expires_at = Some(now + Duration::from_secs(30));
    s.enqueue(Delivery::live(
        Arc::new(msg),
        QoS::AtMostOnce,
        false,
        vec![],
    ));
    let mut out = Vec::new();
    s.poll_transmit(now + Duration::from_secs(10), &mut out);
    assert_eq!(
        publishes(&out)[0].properties.message_expiry_interval,
        Some(20)
    );
}

#[test]
fn packets_above_client_maximum_packet_size_are_discarded_mqtt_3_1_2_25() {
    let mut s = Session::new(limits());
    let now = Instant::now();
    let mut out = Vec::new();
    s.attach(
        LinkParams {
            maximum_packet_size: Some(20),
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    let big = Arc::new(Message {
        payload: Bytes::from(vec![0u8; 100]),
        ..(*message("t", QoS::AtLeastOnce)).clone()
    });
    s.enqueue(Delivery::live(big, QoS::AtLeastOnce, false, vec![]));
    s.enqueue(delivery("small", QoS::AtLeastOnce));
    let t = s.poll_transmit(now, &mut out);
    assert_eq!(t.too_large, 1);
    assert_eq!(t.sent, 1);
    assert_eq!(s.inflight(), 1);
    assert_eq!(publishes(&out)[0].topic, "small");
}

#[test]
fn outbound_topic_alias_replaces_repeated_topic_mqtt_3_3_2_11() {
    let mut s = Session::new(limits());
    let now = Instant::now();
    let mut out = Vec::new();
    s.attach(
        LinkParams {
            topic_alias_maximum: 2,
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    s.enqueue(delivery("sensor/1", QoS::AtMostOnce));
    s.enqueue(delivery("sensor/1", QoS::AtMostOnce));
    s.poll_transmit(now, &mut out);
    let p = publishes(&out);
    assert_eq!(p[0].topic, "sensor/1");
    assert_eq!(p[0].properties.topic_alias, Some(1));
    assert_eq!(p[1].topic, "");
    assert_eq!(p[1].properties.topic_alias, Some(1));
}

#[test]
fn qos2_duplicate_publish_is_not_routed_again_mqtt_4_3_3_9() {
    let mut s = online(ProtocolVersion::V311);
    let p = inbound("t", QoS::ExactlyOnce, Some(7));
    assert!(matches!(
        s.receive_publish(p.clone()),
        Ok(InboundPublish::Route(_))
    ));
    assert_eq!(
        s.acknowledge_publish(QoS::ExactlyOnce, Some(7), ReasonCode::SUCCESS),
        Some(Packet::PubRec(Ack::new(7)))
    );
    let mut dup = p.clone();
    dup.dup = true;
    assert_eq!(
        s.receive_publish(dup),
        Ok(InboundPublish::Duplicate { packet_id: 7 })
    );
    assert_eq!(s.on_pubrel(&Ack::new(7)), Packet::PubComp(Ack::new(7)));
    // After PUBREL the id is free: the same id is a new message [MQTT-4.3.3-11].
    assert!(matches!(s.receive_publish(p), Ok(InboundPublish::Route(_))));
}

#[test]
fn inbound_qos2_state_survives_reconnect_mqtt_4_4_0_1() {
    let mut s = online(ProtocolVersion::V5);
    s.receive_publish(inbound("t", QoS::ExactlyOnce, Some(3)))
        .unwrap();
    s.acknowledge_publish(QoS::ExactlyOnce, Some(3), ReasonCode::SUCCESS);
    s.detach();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V5), &mut out);
    assert_eq!(
        s.receive_publish(inbound("t", QoS::ExactlyOnce, Some(3))),
        Ok(InboundPublish::Duplicate { packet_id: 3 })
    );
}

#[test]
fn pubrel_for_unknown_id_gets_packet_identifier_not_found_in_v5() {
    let mut s = online(ProtocolVersion::V5);
    assert_eq!(
        s.on_pubrel(&Ack::new(9)),
        Packet::PubComp(Ack {
            reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ..Ack::new(9)
        })
    );
    let mut v3 = online(ProtocolVersion::V311);
    assert_eq!(v3.on_pubrel(&Ack::new(9)), Packet::PubComp(Ack::new(9)));
}

#[test]
fn exceeding_our_receive_maximum_is_disconnect_0x93_mqtt_3_3_4_7() {
    let mut s = online(ProtocolVersion::V5);
    for id in 1..=2 {
        s.receive_publish(inbound("t", QoS::ExactlyOnce, Some(id)))
            .unwrap();
        s.acknowledge_publish(QoS::ExactlyOnce, Some(id), ReasonCode::SUCCESS);
    }
    let err = s
        .receive_publish(inbound("t", QoS::AtLeastOnce, Some(3)))
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
    // QoS 0 is not counted
    assert!(s
        .receive_publish(inbound("t", QoS::AtMostOnce, None))
        .is_ok());
}

#[test]
fn refused_qos2_publish_does_not_hold_its_packet_id() {
    let mut s = online(ProtocolVersion::V5);
    s.receive_publish(inbound("t", QoS::ExactlyOnce, Some(1)))
        .unwrap();
    let ack = s.acknowledge_publish(QoS::ExactlyOnce, Some(1), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(
        ack,
        Some(Packet::PubRec(Ack {
            reason: ReasonCode::NOT_AUTHORIZED,
            ..Ack::new(1)
        }))
    );
    assert!(matches!(
        s.receive_publish(inbound("t", QoS::ExactlyOnce, Some(1))),
        Ok(InboundPublish::Route(_))
    ));
}

#[test]
fn v3_refusal_is_acknowledged_with_success() {
    let mut s = online(ProtocolVersion::V311);
    assert_eq!(
        s.acknowledge_publish(QoS::AtLeastOnce, Some(4), ReasonCode::NOT_AUTHORIZED),
        Some(Packet::PubAck(Ack::new(4)))
    );
}

#[test]
fn inbound_topic_alias_is_resolved_per_connection_mqtt_3_3_2_7() {
    let mut s = online(ProtocolVersion::V5);
    let mut p = inbound("a/b", QoS::AtMostOnce, None);
    p.properties.topic_alias = Some(1);
    s.receive_publish(p).unwrap();
    let mut p = inbound("", QoS::AtMostOnce, None);
    p.properties.topic_alias = Some(1);
    match s.receive_publish(p.clone()).unwrap() {
        InboundPublish::Route(r) => assert_eq!(r.topic, "a/b"),
        other => panic!("{other:?}"),
    }
    // A new connection starts with no aliases.
    s.detach();
    let mut out = Vec::new();
    s.attach(params(ProtocolVersion::V5), &mut out);
    assert_eq!(
        s.receive_publish(p).unwrap_err().reason,
        ReasonCode::PROTOCOL_ERROR
    );
}

#[test]
fn inbound_topic_alias_above_our_maximum_is_disconnect_0x94_mqtt_3_3_2_9() {
    let mut s = online(ProtocolVersion::V5);
    let mut p = inbound("a", QoS::AtMostOnce, None);
    p.properties.topic_alias = Some(5);
    assert_eq!(
        s.receive_publish(p).unwrap_err().reason,
        ReasonCode::TOPIC_ALIAS_INVALID
    );
}

#[test]
fn v3_publishes_carry_no_properties() {
    let mut s = online(ProtocolVersion::V311);
    let mut msg = (*message("t", QoS::AtMostOnce)).clone();
    msg.properties
        .user_properties
        .push(("k".into(), "v".into()));
    s.enqueue(Delivery::live(
        Arc::new(msg),
        QoS::AtMostOnce,
        false,
        vec![1],
    ));
    let mut out = Vec::new();
    s.poll_transmit(Instant::now(), &mut out);
    assert!(publishes(&out)[0].properties.is_empty());
}

#[test]
fn v5_user_properties_are_forwarded_untouched_mqtt_3_3_2_17() {
    let mut s = online(ProtocolVersion::V5);
    let mut msg = (*message("t", QoS::AtMostOnce)).clone();
    msg.properties.user_properties = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    msg.properties.response_topic = Some("reply".into());
    msg.properties.correlation_data = Some(Bytes::from_static(b"c"));
    msg.properties.content_type = Some("text/plain".into());
    msg.properties.payload_format_indicator = Some(1);
    let expected = msg.properties.clone();
    s.enqueue(Delivery::live(
        Arc::new(msg),
        QoS::AtMostOnce,
        false,
        vec![],
    ));
    let mut out = Vec::new();
    s.poll_transmit(Instant::now(), &mut out);
    assert_eq!(publishes(&out)[0].properties, expected);
}

#[test]
fn redelivery_on_resume_respects_the_new_receive_maximum_mqtt_3_3_4_9() {
    let mut s = online(ProtocolVersion::V5);
    let now = Instant::now();
    for topic in ["1", "2", "3"] {
        s.enqueue(delivery(topic, QoS::AtLeastOnce));
    }
    let mut out = Vec::new();
    s.poll_transmit(now, &mut out);
    assert_eq!(s.inflight(), 3);
    s.detach();
    let mut out = Vec::new();
    s.attach(
        LinkParams {
            receive_maximum: 1,
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    s.poll_transmit(now, &mut out);
    let first = publishes(&out);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].topic, "1");
    assert!(first[0].dup);
    let id = first[0].packet_id.unwrap();
    let mut out = Vec::new();
    s.poll_transmit(now, &mut out);
    assert!(out.is_empty());
    s.on_puback(&Ack::new(id));
    s.poll_transmit(now, &mut out);
    assert_eq!(publishes(&out).len(), 1);
    assert_eq!(publishes(&out)[0].topic, "2");
}

#[test]
fn ack_for_a_message_not_yet_resent_on_resume_is_accepted() {
    let mut s = online(ProtocolVersion::V5);
    let now = Instant::now();
    for topic in ["1", "2"] {
        s.enqueue(delivery(topic, QoS::AtLeastOnce));
    }
    let mut out = Vec::new();
    s.poll_transmit(now, &mut out);
    let ids: Vec<u16> = publishes(&out).iter().filter_map(|p| p.packet_id).collect();
    s.detach();
    let mut out = Vec::new();
    s.attach(
        LinkParams {
            receive_maximum: 1,
            ..params(ProtocolVersion::V5)
        },
        &mut out,
    );
    // the client acknowledges both before the broker re-sent anything
    s.on_puback(&Ack::new(ids[0]));
    s.on_puback(&Ack::new(ids[1]));
    s.poll_transmit(now, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.inflight(), 0);
    s.enqueue(delivery("3", QoS::AtLeastOnce));
    s.poll_transmit(now, &mut out);
    assert_eq!(publishes(&out).len(), 1);
}

const STALL: Duration = Duration::from_secs(5);

#[test]
fn full_queue_of_a_connected_client_takes_qos1_over_the_limit_and_asks_for_flow_control() {
    let mut s = online(ProtocolVersion::V311);
    let now = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            s.offer(delivery("t", QoS::AtLeastOnce), now, STALL),
            Enqueued::Queued
        );
    }
    assert!(!s.has_room());
    assert_eq!(
        s.offer(delivery("t", QoS::ExactlyOnce), now, STALL),
        Enqueued::QueuedOverLimit
    );
    assert_eq!(s.queued(), 6, "an acknowledged message is never dropped");
    assert_eq!(s.dropped(), 0);
}

#[test]
fn full_queue_of_a_connected_client_drops_qos0_and_counts_it() {
    let mut s = online(ProtocolVersion::V311);
    let now = Instant::now();
    for _ in 0..5 {
        s.offer(delivery("t", QoS::AtLeastOnce), now, STALL);
    }
    assert_eq!(
        s.offer(delivery("t", QoS::AtMostOnce), now, STALL),
        Enqueued::DroppedQueueFull
    );
    assert_eq!(s.dropped(), 1);
}

#[test]
fn offline_session_keeps_the_bounded_queue_with_counted_overflow() {
    let mut s = Session::new(limits());
    let now = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            s.offer(delivery("t", QoS::AtLeastOnce), now, STALL),
            Enqueued::Queued
        );
    }
    assert_eq!(
        s.offer(delivery("t", QoS::AtLeastOnce), now, STALL),
        Enqueued::DroppedQueueFull
    );
    assert_eq!(s.dropped(), 1);
}

#[test]
fn queue_has_room_again_once_the_client_takes_messages() {
    let mut s = online(ProtocolVersion::V311);
    let now = Instant::now();
    for _ in 0..6 {
        s.offer(delivery("t", QoS::AtLeastOnce), now, STALL);
    }
    assert!(!s.has_room());
    assert!(s.stalls_at(STALL).is_some());
    let mut out = Vec::new();
    // the window (3) takes three: 3 left, below the limit of 5
    s.poll_transmit(now, &mut out);
    assert_eq!(publishes(&out).len(), 3);
    assert!(s.has_room());
    assert_eq!(s.stalls_at(STALL), None);
}

#[test]
fn client_that_takes_no_message_for_the_stall_time_no_longer_holds_publishers_back() {
    let mut s = online(ProtocolVersion::V311);
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..5 {
        s.offer(delivery("t", QoS::AtLeastOnce), start, STALL);
    }
    // three go out and are never acknowledged: nothing leaves the queue any more
    s.poll_transmit(start, &mut out);
    for _ in 0..3 {
        s.offer(delivery("t", QoS::AtLeastOnce), start, STALL);
    }
    assert_eq!(s.stalls_at(STALL), Some(start + STALL));
    let almost = start + STALL - Duration::from_millis(1);
    assert!(!s.is_stalled(almost, STALL));
    assert_eq!(
        s.offer(delivery("t", QoS::AtLeastOnce), almost, STALL),
        Enqueued::QueuedOverLimit
    );
    let later = start + STALL;
    assert!(s.is_stalled(later, STALL));
    assert_eq!(
        s.offer(delivery("t", QoS::AtLeastOnce), later, STALL),
        Enqueued::DroppedQueueFull
    );
    assert_eq!(s.dropped(), 1);
}

#[test]
fn a_message_leaving_a_full_queue_restarts_the_stall_clock() {
    let mut s = online(ProtocolVersion::V311);
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..9 {
        s.offer(delivery("t", QoS::AtLeastOnce), start, STALL);
    }
    let later = start + Duration::from_secs(4);
    // three leave (9 -> 6): still full, but the client is alive
    s.poll_transmit(later, &mut out);
    assert!(!s.has_room());
    assert_eq!(s.stalls_at(STALL), Some(later + STALL));
    assert!(!s.is_stalled(start + STALL, STALL));
}
