//! In-crate end-to-end tests: the broker started on 127.0.0.1:0, driven over real sockets with
//! raw packets (through our codec) and with rumqttc, to prove the loop works.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::config::{Config, ListenerConfig, ListenerType};
use crate::plugins::Hooks;
use crate::protocol::*;

const WAIT: Duration = Duration::from_secs(5);

fn config() -> Config {
    let mut listeners = BTreeMap::new();
    listeners.insert(
        "default".to_owned(),
        ListenerConfig::new(ListenerType::Tcp, "127.0.0.1:0".parse().unwrap()),
    );
    Config {
        listeners,
        ..Config::default()
    }
}

async fn start(config: Config) -> (RunningBroker, std::net::SocketAddr) {
    let running = Broker::start(config, Hooks::none()).await.unwrap();
    let addr = running.local_addr("default").unwrap();
    (running, addr)
}

/// A client speaking raw packets through the broker's own codec.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Raw {
    async fn open(addr: std::net::SocketAddr, version: ProtocolVersion) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            version,
        }
    }

    async fn connect(
        addr: std::net::SocketAddr,
        version: ProtocolVersion,
        client_id: &str,
        clean: bool,
        f: impl FnOnce(&mut Connect),
    ) -> (Raw, ConnAck) {
        let mut raw = Raw::open(addr, version).await;
        let mut connect = Connect {
            protocol: version,
            clean_start: clean,
            keep_alive: 30,
            properties: Properties::default(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        };
        f(&mut connect);
        raw.send(Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        encode(&packet, self.version, &mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next packet, or `None` when the broker closed the connection.
    async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(p) = client_decode(&mut self.buf, self.version) {
                    return Some(p);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("timed out waiting for a packet")
    }

    async fn subscribe(&mut self, filter: &str, options: SubscriptionOptions) -> SubAck {
        self.send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            filters: vec![(filter.into(), options)],
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(s)) => s,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(&mut self, topic: &str, payload: &'static [u8], qos: QoS, retain: bool) {
        self.send(Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id: (qos != QoS::AtMostOnce).then_some(10),
            properties: Properties::default(),
            payload: Bytes::from_static(payload),
        }))
        .await;
    }

    async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

/// Decodes a packet sent by the broker, as a client does.
fn client_decode(buf: &mut BytesMut, version: ProtocolVersion) -> Option<Packet> {
    codec::decode_from_server(buf, version, 16 * 1024 * 1024)
        .expect("broker sent a malformed packet")
}

fn sub(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

#[tokio::test]
async fn publish_qos0_1_2_reaches_subscriber_v311_and_v5() {
    let (broker, addr) = start(config()).await;
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let (mut s, ack) = Raw::connect(addr, version, "sub", true, |_| {}).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let granted = s.subscribe("a/+", sub(QoS::ExactlyOnce)).await;
        assert_eq!(granted.reasons, vec![ReasonCode::GRANTED_QOS_2]);
        let (mut p, _) = Raw::connect(addr, version, "pub", true, |_| {}).await;

        p.publish("a/0", b"zero", QoS::AtMostOnce, false).await;
        let got = s.expect_publish().await;
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            ("a/0", &b"zero"[..])
        );

        p.publish("a/1", b"one", QoS::AtLeastOnce, false).await;
        assert!(matches!(p.recv().await, Some(Packet::PubAck(a)) if a.packet_id == 10));
        let got = s.expect_publish().await;
        assert_eq!(got.qos, QoS::AtLeastOnce);
        s.send(Packet::PubAck(Ack::new(got.packet_id.unwrap())))
            .await;

        p.publish("a/2", b"two", QoS::ExactlyOnce, false).await;
        assert!(matches!(p.recv().await, Some(Packet::PubRec(a)) if a.packet_id == 10));
        p.send(Packet::PubRel(Ack::new(10))).await;
        assert!(matches!(p.recv().await, Some(Packet::PubComp(a)) if a.packet_id == 10));
        let got = s.expect_publish().await;
        assert_eq!(got.qos, QoS::ExactlyOnce);
        let id = got.packet_id.unwrap();
        s.send(Packet::PubRec(Ack::new(id))).await;
        assert_eq!(s.recv().await, Some(Packet::PubRel(Ack::new(id))));
        s.send(Packet::PubComp(Ack::new(id))).await;

        s.send(Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            properties: Properties::default(),
            filters: vec!["a/+".into()],
        }))
        .await;
        assert!(matches!(s.recv().await, Some(Packet::UnsubAck(_))));
        s.send(Packet::PingReq).await;
        assert_eq!(s.recv().await, Some(Packet::PingResp));
        p.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }))
        .await;
        assert_eq!(p.recv().await, None);
        s.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }))
        .await;
        assert_eq!(s.recv().await, None);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn qos2_duplicate_publish_is_not_redelivered_mqtt_4_3_3_9() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "s", true, |_| {}).await;
    s.subscribe("t", sub(QoS::AtMostOnce)).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V5, "p", true, |_| {}).await;
    p.publish("t", b"once", QoS::ExactlyOnce, false).await;
    assert!(matches!(p.recv().await, Some(Packet::PubRec(_))));
    p.publish("t", b"once", QoS::ExactlyOnce, false).await;
    assert!(matches!(p.recv().await, Some(Packet::PubRec(_))));
    p.send(Packet::PubRel(Ack::new(10))).await;
    assert!(matches!(p.recv().await, Some(Packet::PubComp(_))));
    p.publish("t", b"after", QoS::AtMostOnce, false).await;
    assert_eq!(&s.expect_publish().await.payload[..], b"once");
    assert_eq!(&s.expect_publish().await.payload[..], b"after");
    broker.shutdown().await;
}

#[tokio::test]
async fn first_packet_not_connect_closes_the_connection_mqtt_3_1_0_1() {
    let (broker, addr) = start(config()).await;
    let mut raw = Raw::open(addr, ProtocolVersion::V311).await;
    raw.send(Packet::PingReq).await;
    assert_eq!(raw.recv().await, None);
    broker.shutdown().await;
}

#[tokio::test]
async fn second_connect_is_a_protocol_error_mqtt_3_1_0_2() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "twice", true, |_| {}).await;
    c.send(Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::default(),
        client_id: "twice".into(),
        will: None,
        username: None,
        password: None,
    })))
    .await;
    match c.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert_eq!(c.recv().await, None);
    broker.shutdown().await;
}

#[tokio::test]
async fn retained_message_is_delivered_on_subscribe_with_retain_set_mqtt_3_3_1_6() {
    let (broker, addr) = start(config()).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V311, "p", true, |_| {}).await;
    p.publish("r/1", b"kept", QoS::AtLeastOnce, true).await;
    assert!(matches!(p.recv().await, Some(Packet::PubAck(_))));
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V311, "s", true, |_| {}).await;
    s.subscribe("r/#", sub(QoS::AtMostOnce)).await;
    let got = s.expect_publish().await;
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"kept");
    // an empty retained payload clears it [MQTT-3.3.1-10]
    p.publish("r/1", b"", QoS::AtLeastOnce, true).await;
    assert!(matches!(p.recv().await, Some(Packet::PubAck(_))));
    let live = s.expect_publish().await;
    assert!(!live.retain);
    assert_eq!(broker.broker.retained_count(), 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn empty_client_id_gets_an_assigned_identifier_mqtt_3_2_2_16() {
    let (broker, addr) = start(config()).await;
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V5, "", true, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.properties.assigned_client_identifier.is_some());
    assert_eq!(ack.properties.shared_subscription_available, Some(1));
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V311, "", false, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    broker.shutdown().await;
}

#[tokio::test]
async fn session_takeover_closes_the_old_connection_with_0x8e_mqtt_3_1_4_3() {
    let (broker, addr) = start(config()).await;
    let (mut old, _) = Raw::connect(addr, ProtocolVersion::V5, "same", true, |_| {}).await;
    let (_new, ack) = Raw::connect(addr, ProtocolVersion::V5, "same", false, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    match old.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER),
        other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
    }
    assert_eq!(old.recv().await, None);
    broker.shutdown().await;
}

#[tokio::test]
async fn persistent_session_gets_queued_messages_on_reconnect_mqtt_3_1_2_5() {
    let (broker, addr) = start(config()).await;
    let (mut s, ack) = Raw::connect(addr, ProtocolVersion::V311, "keep", false, |_| {}).await;
    assert!(!ack.session_present);
    s.subscribe("q", sub(QoS::AtLeastOnce)).await;
    drop(s);
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V311, "p", true, |_| {}).await;
    // wait until the broker saw the subscriber go
    for _ in 0..50 {
        if broker.broker.stats().snapshot().clients_disconnected == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.publish("q", b"while away", QoS::AtLeastOnce, false).await;
    assert!(matches!(p.recv().await, Some(Packet::PubAck(_))));
    p.publish("q", b"qos0 dropped", QoS::AtMostOnce, false)
        .await;
    p.send(Packet::PingReq).await;
    assert_eq!(p.recv().await, Some(Packet::PingResp));
    let (mut s, ack) = Raw::connect(addr, ProtocolVersion::V311, "keep", false, |_| {}).await;
    assert!(ack.session_present);
    let got = s.expect_publish().await;
    assert_eq!(&got.payload[..], b"while away");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn will_is_published_on_abnormal_close_not_on_disconnect_mqtt_3_1_2_8() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V311, "watcher", true, |_| {}).await;
    s.subscribe("wills/#", sub(QoS::AtMostOnce)).await;
    let will = |topic: &str| Will {
        topic: topic.into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    };
    let (clean, _) = Raw::connect(addr, ProtocolVersion::V311, "clean", true, |c| {
        c.will = Some(will("wills/clean"))
    })
    .await;
    let (mut polite, _) = Raw::connect(addr, ProtocolVersion::V311, "polite", true, |c| {
        c.will = Some(will("wills/polite"))
    })
    .await;
    polite
        .send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }))
        .await;
    assert_eq!(polite.recv().await, None);
    drop(clean);
    let got = s.expect_publish().await;
    assert_eq!(got.topic, "wills/clean");
    broker.shutdown().await;
}

#[tokio::test]
async fn keep_alive_timeout_closes_silent_client_mqtt_3_1_2_24() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "quiet", true, |c| {
        c.keep_alive = 1
    })
    .await;
    let started = std::time::Instant::now();
    match c.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT),
        other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(1400));
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_v5_clients_disconnect_0x8b() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "c", true, |_| {}).await;
    broker.shutdown().await;
    match c.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SERVER_SHUTTING_DOWN),
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
}

#[tokio::test]
async fn rumqttc_v311_client_publishes_and_receives() {
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions};
    let (broker, addr) = start(config()).await;
    let mut options = MqttOptions::new("rumqttc-311", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .subscribe("hello/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, async {
        let mut published = false;
        loop {
            match events.poll().await.unwrap() {
                Event::Incoming(Incoming::SubAck(_)) if !published => {
                    published = true;
                    client
                        .publish("hello/world", rumqttc::QoS::AtLeastOnce, false, "hi")
                        .await
                        .unwrap();
                }
                Event::Incoming(Incoming::Publish(p)) => return p,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.topic, "hello/world");
    assert_eq!(&got.payload[..], b"hi");
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v5_client_publishes_and_receives_with_user_properties() {
    use rumqttc::v5::mqttbytes::v5::{Packet as V5Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let (broker, addr) = start(config()).await;
    let mut options = MqttOptions::new("rumqttc-5", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .subscribe("v5/#", rumqttc::v5::mqttbytes::QoS::ExactlyOnce)
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, async {
        let mut published = false;
        loop {
            match events.poll().await.unwrap() {
                Event::Incoming(V5Packet::SubAck(_)) if !published => {
                    published = true;
                    let props = PublishProperties {
                        user_properties: vec![("k".into(), "v".into())],
                        response_topic: Some("v5/reply".into()),
                        ..Default::default()
                    };
                    client
                        .publish_with_properties(
                            "v5/x",
                            rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
                            false,
                            "payload",
                            props,
                        )
                        .await
                        .unwrap();
                }
                Event::Incoming(V5Packet::Publish(p)) => return p,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&got.topic[..], b"v5/x");
    let props = got.properties.unwrap();
    assert_eq!(
        props.user_properties,
        vec![("k".to_owned(), "v".to_owned())]
    );
    assert_eq!(props.response_topic.as_deref(), Some("v5/reply"));
    broker.shutdown().await;
}

fn v5_will(topic: &str, delay: Option<u32>) -> Will {
    Will {
        topic: topic.into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: delay,
            ..Properties::default()
        },
    }
}

fn disconnect(reason: ReasonCode) -> Packet {
    Packet::Disconnect(Disconnect {
        reason,
        properties: Properties::default(),
    })
}

#[tokio::test]
async fn disconnect_with_will_message_0x04_publishes_the_will() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "w", true, |_| {}).await;
    s.subscribe("will/#", sub(QoS::AtMostOnce)).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "c", true, |c| {
        c.will = Some(v5_will("will/c", None))
    })
    .await;
    c.send(disconnect(ReasonCode::DISCONNECT_WITH_WILL)).await;
    assert_eq!(s.expect_publish().await.topic, "will/c");
    broker.shutdown().await;
}

#[tokio::test]
async fn will_delay_postpones_the_will_and_reconnect_cancels_it_mqtt_3_1_3_9() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "w", true, |_| {}).await;
    s.subscribe("will/#", sub(QoS::AtMostOnce)).await;
    let expiry = |c: &mut Connect| c.properties.session_expiry_interval = Some(60);
    // delayed, then published
    let (c, _) = Raw::connect(addr, ProtocolVersion::V5, "late", false, |c| {
        expiry(c);
        c.will = Some(v5_will("will/late", Some(1)));
    })
    .await;
    let dropped_at = std::time::Instant::now();
    drop(c);
    assert_eq!(s.expect_publish().await.topic, "will/late");
    assert!(dropped_at.elapsed() >= Duration::from_millis(900));
    // delayed, then cancelled by a reconnect
    let (c, _) = Raw::connect(addr, ProtocolVersion::V5, "back", false, |c| {
        expiry(c);
        c.will = Some(v5_will("will/back", Some(1)));
    })
    .await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_again, ack) = Raw::connect(addr, ProtocolVersion::V5, "back", false, expiry).await;
    assert!(ack.session_present);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    s.publish("will/marker", b"m", QoS::AtMostOnce, false).await;
    assert_eq!(s.expect_publish().await.topic, "will/marker");
    broker.shutdown().await;
}

#[tokio::test]
async fn session_expires_after_its_expiry_interval_mqtt_3_1_2_23() {
    let (broker, addr) = start(config()).await;
    let short = |c: &mut Connect| c.properties.session_expiry_interval = Some(1);
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "exp", true, short).await;
    c.subscribe("x", sub(QoS::AtLeastOnce)).await;
    c.send(disconnect(ReasonCode::SUCCESS)).await;
    assert_eq!(c.recv().await, None);
    let (c, ack) = Raw::connect(addr, ProtocolVersion::V5, "exp", false, short).await;
    assert!(ack.session_present);
    drop(c);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V5, "exp", false, short).await;
    assert!(!ack.session_present);
    assert_eq!(broker.broker.subscription_count(), 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn disconnect_setting_expiry_after_zero_is_a_protocol_error_mqtt_3_14_2_2() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "z", true, |_| {}).await;
    c.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            session_expiry_interval: Some(30),
            ..Properties::default()
        },
    }))
    .await;
    match c.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT 0x82, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn exceeding_receive_maximum_is_disconnect_0x93_mqtt_3_3_4_7() {
    let mut cfg = config();
    cfg.limits.receive_maximum = 1;
    let (broker, addr) = start(cfg).await;
    let (mut c, ack) = Raw::connect(addr, ProtocolVersion::V5, "rm", true, |_| {}).await;
    assert_eq!(ack.properties.receive_maximum, Some(1));
    for id in [1u16, 2] {
        c.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t".into(),
            packet_id: Some(id),
            properties: Properties::default(),
            payload: Bytes::new(),
        }))
        .await;
    }
    assert!(matches!(c.recv().await, Some(Packet::PubRec(_))));
    match c.recv().await {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
        }
        other => panic!("expected DISCONNECT 0x93, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn inbound_topic_alias_routes_by_the_aliased_topic_mqtt_3_3_2_12() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "s", true, |_| {}).await;
    s.subscribe("alias/t", sub(QoS::AtMostOnce)).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V5, "p", true, |_| {}).await;
    for (topic, body) in [("alias/t", &b"1"[..]), ("", &b"2"[..])] {
        p.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            properties: Properties {
                topic_alias: Some(1),
                ..Properties::default()
            },
            payload: Bytes::copy_from_slice(body),
        }))
        .await;
    }
    assert_eq!(&s.expect_publish().await.payload[..], b"1");
    let second = s.expect_publish().await;
    assert_eq!(
        (second.topic.as_str(), &second.payload[..]),
        ("alias/t", &b"2"[..])
    );
    // alias above our Topic Alias Maximum
    p.send(Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "x".into(),
        packet_id: None,
        properties: Properties {
            topic_alias: Some(1000),
            ..Properties::default()
        },
        payload: Bytes::new(),
    }))
    .await;
    match p.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::TOPIC_ALIAS_INVALID),
        other => panic!("expected DISCONNECT 0x94, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn listener_over_max_connections_refuses_with_quota_exceeded_or_server_unavailable() {
    let mut cfg = config();
    if let Some(l) = cfg.listeners.get_mut("default") {
        l.max_connections = Some(1);
    }
    let (broker, addr) = start(cfg).await;
    let (_first, ack) = Raw::connect(addr, ProtocolVersion::V5, "one", true, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V5, "two", true, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::QUOTA_EXCEEDED);
    let mut raw = Raw::open(addr, ProtocolVersion::V311).await;
    // CONNECT 3.1.1, clean session, keep alive 60, client id "x"
    raw.stream
        .write_all(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'x',
        ])
        .await
        .unwrap();
    let mut reply = [0u8; 4];
    raw.stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [0x20, 2, 0, 3]);
    assert_eq!(broker.broker.stats().snapshot().connections_refused, 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn anonymous_client_is_refused_when_not_allowed() {
    let mut cfg = config();
    cfg.auth.allow_anonymous = false;
    let (broker, addr) = start(cfg).await;
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V5, "anon", true, |_| {}).await;
    assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
    let (_c, ack) = Raw::connect(addr, ProtocolVersion::V5, "named", true, |c| {
        c.username = Some("alice".into())
    })
    .await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    broker.shutdown().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_return_code_1_mqtt_3_1_2_2() {
    let (broker, addr) = start(config()).await;
    let mut raw = Raw::open(addr, ProtocolVersion::V311).await;
    raw.stream
        .write_all(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60, 0, 1, b'x',
        ])
        .await
        .unwrap();
    let mut reply = [0u8; 4];
    raw.stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [0x20, 2, 0, 1]);
    broker.shutdown().await;
}

#[tokio::test]
async fn packet_above_maximum_packet_size_is_disconnect_0x95() {
    let mut cfg = config();
    cfg.limits.max_packet_size = 64;
    let (broker, addr) = start(cfg).await;
    let (mut c, ack) = Raw::connect(addr, ProtocolVersion::V5, "big", true, |_| {}).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(64));
    c.send(Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0u8; 200]),
    }))
    .await;
    match c.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PACKET_TOO_LARGE),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn no_local_subscription_does_not_receive_own_messages_mqtt_3_8_3_3() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "self", true, |_| {}).await;
    let mut options = sub(QoS::AtMostOnce);
    options.no_local = true;
    c.subscribe("own", options).await;
    c.subscribe("marker", sub(QoS::AtMostOnce)).await;
    c.publish("own", b"mine", QoS::AtMostOnce, false).await;
    c.publish("marker", b"m", QoS::AtMostOnce, false).await;
    assert_eq!(c.expect_publish().await.topic, "marker");
    broker.shutdown().await;
}

#[tokio::test]
async fn retain_handling_1_sends_retained_only_for_new_subscriptions_mqtt_3_3_1_10() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "rh", true, |_| {}).await;
    c.publish("rh/t", b"kept", QoS::AtMostOnce, true).await;
    let mut options = sub(QoS::AtMostOnce);
    options.retain_handling = RetainHandling::SendIfNew;
    c.subscribe("rh/#", options).await;
    assert!(c.expect_publish().await.retain);
    c.subscribe("rh/#", options).await;
    let mut never = sub(QoS::AtMostOnce);
    never.retain_handling = RetainHandling::DoNotSend;
    c.subscribe("rh/t", never).await;
    c.publish("rh/marker", b"m", QoS::AtMostOnce, false).await;
    assert_eq!(c.expect_publish().await.topic, "rh/marker");
    broker.shutdown().await;
}

#[tokio::test]
async fn server_keep_alive_is_announced_when_capped_mqtt_3_2_2_21() {
    let mut cfg = config();
    cfg.max_keepalive = Some(10);
    let (broker, addr) = start(cfg).await;
    let (_c, ack) =
        Raw::connect(addr, ProtocolVersion::V5, "k", true, |c| c.keep_alive = 300).await;
    assert_eq!(ack.properties.server_keep_alive, Some(10));
    broker.shutdown().await;
}

#[tokio::test]
async fn subscription_identifier_is_sent_with_matching_publishes_mqtt_3_3_4_3() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "sid", true, |_| {}).await;
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 3,
        properties: Properties {
            subscription_identifiers: vec![42],
            ..Properties::default()
        },
        filters: vec![("sid/+".into(), sub(QoS::AtMostOnce))],
    }))
    .await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    c.publish("sid/a", b"x", QoS::AtMostOnce, false).await;
    assert_eq!(
        c.expect_publish().await.properties.subscription_identifiers,
        vec![42]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_to_one_member() {
    let (broker, addr) = start(config()).await;
    let (mut a, _) = Raw::connect(addr, ProtocolVersion::V5, "a", true, |_| {}).await;
    let (mut b, _) = Raw::connect(addr, ProtocolVersion::V5, "b", true, |_| {}).await;
    a.subscribe("$share/g/jobs", sub(QoS::AtMostOnce)).await;
    b.subscribe("$share/g/jobs", sub(QoS::AtMostOnce)).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V5, "p", true, |_| {}).await;
    p.publish("jobs", b"1", QoS::AtMostOnce, false).await;
    p.publish("jobs", b"2", QoS::AtMostOnce, false).await;
    let first = a.expect_publish().await;
    let second = b.expect_publish().await;
    assert_ne!(first.payload, second.payload);
    broker.shutdown().await;
}

#[tokio::test]
async fn publish_internal_reaches_subscribers_and_is_retained() {
    let (broker, addr) = start(config()).await;
    broker
        .broker
        .publish_internal("$SYS/broker/version", Bytes::from_static(b"x"), true);
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V311, "sys", true, |_| {}).await;
    c.subscribe("$SYS/#", sub(QoS::AtMostOnce)).await;
    let got = c.expect_publish().await;
    assert_eq!(got.topic, "$SYS/broker/version");
    assert!(got.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_publish_is_redelivered_with_dup_on_resume_mqtt_4_4_0_1() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V311, "slow", false, |_| {}).await;
    s.subscribe("redo", sub(QoS::AtLeastOnce)).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V311, "p", true, |_| {}).await;
    p.publish("redo", b"again", QoS::AtLeastOnce, false).await;
    assert!(matches!(p.recv().await, Some(Packet::PubAck(_))));
    let first = s.expect_publish().await;
    assert!(!first.dup);
    drop(s); // no PUBACK
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut s, ack) = Raw::connect(addr, ProtocolVersion::V311, "slow", false, |_| {}).await;
    assert!(ack.session_present);
    let again = s.expect_publish().await;
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(&again.payload[..], b"again");
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_without_clean_start_keeps_subscriptions_mqtt_3_1_2_5() {
    let (broker, addr) = start(config()).await;
    let keep = |c: &mut Connect| c.properties.session_expiry_interval = Some(60);
    let (mut old, _) = Raw::connect(addr, ProtocolVersion::V5, "move", true, keep).await;
    old.subscribe("mv", sub(QoS::AtLeastOnce)).await;
    let (mut new, ack) = Raw::connect(addr, ProtocolVersion::V5, "move", false, keep).await;
    assert!(ack.session_present);
    assert!(matches!(old.recv().await, Some(Packet::Disconnect(_))));
    new.publish("mv", b"still here", QoS::AtMostOnce, false)
        .await;
    assert_eq!(&new.expect_publish().await.payload[..], b"still here");
    broker.shutdown().await;
}

#[tokio::test]
async fn clients_cannot_publish_to_sys_topics() {
    let (broker, addr) = start(config()).await;
    let (mut c, _) = Raw::connect(addr, ProtocolVersion::V5, "c", true, |_| {}).await;
    c.subscribe("$SYS/#", sub(QoS::AtMostOnce)).await;
    c.publish("$SYS/broker/fake", b"x", QoS::AtLeastOnce, false)
        .await;
    match c.recv().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected PUBACK 0x87, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn connection_without_connect_is_closed_after_the_connect_timeout() {
    let mut cfg = config();
    cfg.limits.connect_timeout_secs = 1;
    let (broker, addr) = start(cfg).await;
    let mut raw = Raw::open(addr, ProtocolVersion::V311).await;
    let started = std::time::Instant::now();
    assert_eq!(raw.recv().await, None);
    assert!(started.elapsed() >= Duration::from_millis(900));
    broker.shutdown().await;
}

#[tokio::test]
async fn will_properties_are_passed_through_mqtt_3_1_3_10() {
    let (broker, addr) = start(config()).await;
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "s", true, |_| {}).await;
    s.subscribe("will/#", sub(QoS::AtMostOnce)).await;
    let mut will = v5_will("will/props", None);
    will.properties.content_type = Some("text/plain".into());
    will.properties.user_properties = vec![("why".into(), "crash".into())];
    will.properties.response_topic = Some("will/reply".into());
    let (c, _) = Raw::connect(addr, ProtocolVersion::V5, "c", true, |c| {
        c.will = Some(will)
    })
    .await;
    drop(c);
    let got = s.expect_publish().await;
    assert_eq!(got.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        got.properties.user_properties,
        vec![("why".to_owned(), "crash".to_owned())]
    );
    assert_eq!(got.properties.response_topic.as_deref(), Some("will/reply"));
    broker.shutdown().await;
}

#[tokio::test]
async fn expired_message_is_not_delivered_to_a_returning_session_mqtt_3_3_2_5() {
    let (broker, addr) = start(config()).await;
    let keep = |c: &mut Connect| c.properties.session_expiry_interval = Some(60);
    let (mut s, _) = Raw::connect(addr, ProtocolVersion::V5, "away", true, keep).await;
    s.subscribe("exp/#", sub(QoS::AtLeastOnce)).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut p, _) = Raw::connect(addr, ProtocolVersion::V5, "p", true, |_| {}).await;
    for (topic, expiry) in [("exp/short", 1), ("exp/long", 100)] {
        p.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: Some(1),
            properties: Properties {
                message_expiry_interval: Some(expiry),
                ..Properties::default()
            },
            payload: Bytes::from_static(b"x"),
        }))
        .await;
        assert!(matches!(p.recv().await, Some(Packet::PubAck(_))));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (mut s, ack) = Raw::connect(addr, ProtocolVersion::V5, "away", false, keep).await;
    assert!(ack.session_present);
    let got = s.expect_publish().await;
    assert_eq!(got.topic, "exp/long");
    let left = got.properties.message_expiry_interval.unwrap();
    assert!((98..=99).contains(&left), "expiry left {left}");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_client_connects_with_mqisdp() {
    let (broker, addr) = start(config()).await;
    let mut raw = Raw::open(addr, ProtocolVersion::V31).await;
    // CONNECT "MQIsdp" level 3, clean session, keep alive 60, client id "old"
    raw.stream
        .write_all(&[
            0x10, 17, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60, 0, 3, b'o', b'l', b'd',
        ])
        .await
        .unwrap();
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::SUCCESS),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn packets_sent_together_with_connect_are_handled() {
    let (broker, addr) = start(config()).await;
    let mut raw = Raw::open(addr, ProtocolVersion::V311).await;
    let mut bytes = BytesMut::new();
    for packet in [
        Packet::Connect(Box::new(Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 30,
            properties: Properties::default(),
            client_id: "eager".into(),
            will: None,
            username: None,
            password: None,
        })),
        Packet::Subscribe(Subscribe {
            packet_id: 5,
            properties: Properties::default(),
            filters: vec![("e".into(), sub(QoS::AtMostOnce))],
        }),
        Packet::PingReq,
    ] {
        encode(&packet, ProtocolVersion::V311, &mut bytes);
    }
    raw.stream.write_all(&bytes).await.unwrap();
    assert!(matches!(raw.recv().await, Some(Packet::ConnAck(_))));
    assert!(matches!(raw.recv().await, Some(Packet::SubAck(s)) if s.packet_id == 5));
    assert_eq!(raw.recv().await, Some(Packet::PingResp));
    broker.shutdown().await;
}
