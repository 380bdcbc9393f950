//! Micro-benchmarks of the MQTT codec (issue 5): `decode` and `encode` of one packet, per
//! packet type and protocol version, as a client sends them (CONNECT, PUBLISH, PUBACK,
//! SUBSCRIBE, PINGREQ, DISCONNECT). Each iteration is one packet (`Throughput::Elements(1)`).
//!
//! Run: `cargo bench -p waspmq --bench codec` (add a name filter such as `decode/publish` to
//! run a subset). Sample counts are kept small so the whole run takes about a minute.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use waspmq::protocol::{
    decode, encode, encoded_len, Ack, Connect, Disconnect, Packet, Properties, ProtocolVersion,
    Publish, QoS, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions,
};

use ProtocolVersion::{V311, V5};

/// Large enough for every case; the limit is checked, not approached.
const MAX_PACKET_SIZE: usize = 1 << 20;

/// One benchmarked packet: its name, the version it is encoded for, and the version the
/// server has negotiated when it arrives (`None` for CONNECT, which is read before that).
struct Case {
    name: &'static str,
    packet: Packet,
    version: ProtocolVersion,
    negotiated: Option<ProtocolVersion>,
}

fn user_property() -> Vec<(String, String)> {
    vec![("trace-id".to_string(), "4bf92f3577b34da6".to_string())]
}

fn connect(version: ProtocolVersion) -> Packet {
    let properties = if version.is_v5() {
        Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(100),
            maximum_packet_size: Some(256 * 1024),
            topic_alias_maximum: Some(16),
            user_properties: user_property(),
            ..Properties::default()
        }
    } else {
        Properties::default()
    };
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        properties,
        client_id: "sensor-site42-device4242".to_string(),
        will: None,
        username: Some("device4242".to_string()),
        password: Some(Bytes::from_static(b"s3cr3t-t0ken-0123456789")),
    }))
}

fn publish(qos: QoS, properties: Properties) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: "site/42/device/4242/temperature".to_string(),
        packet_id: (qos != QoS::AtMostOnce).then_some(17),
        properties,
        payload: Bytes::from(vec![0x5Au8; 64]),
    })
}

fn publish_v5_properties() -> Properties {
    Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(300),
        content_type: Some("application/json".to_string()),
        user_properties: user_property(),
        ..Properties::default()
    }
}

fn subscribe(version: ProtocolVersion) -> Packet {
    let options = |qos| SubscriptionOptions {
        qos,
        no_local: version.is_v5(),
        retain_as_published: false,
        retain_handling: RetainHandling::SendAtSubscribe,
    };
    let properties = if version.is_v5() {
        Properties {
            subscription_identifiers: vec![7],
            ..Properties::default()
        }
    } else {
        Properties::default()
    };
    Packet::Subscribe(Subscribe {
        packet_id: 3,
        properties,
        filters: vec![
            (
                "site/42/device/4242/cmd".to_string(),
                options(QoS::AtLeastOnce),
            ),
            ("site/42/+/alarm".to_string(), options(QoS::AtMostOnce)),
            ("site/42/config/#".to_string(), options(QoS::ExactlyOnce)),
        ],
    })
}

fn cases() -> Vec<Case> {
    let case = |name, packet, version| Case {
        name,
        packet,
        version,
        negotiated: Some(version),
    };
    vec![
        Case {
            negotiated: None,
            ..case("connect_v311", connect(V311), V311)
        },
        Case {
            negotiated: None,
            ..case("connect_v5_props", connect(V5), V5)
        },
        case(
            "publish_qos0_64B_v311",
            publish(QoS::AtMostOnce, Properties::default()),
            V311,
        ),
        case(
            "publish_qos0_64B_v5_props",
            publish(QoS::AtMostOnce, publish_v5_properties()),
            V5,
        ),
        case(
            "publish_qos1_64B_v311",
            publish(QoS::AtLeastOnce, Properties::default()),
            V311,
        ),
        case(
            "publish_qos1_64B_v5",
            publish(QoS::AtLeastOnce, Properties::default()),
            V5,
        ),
        case("puback_v311", Packet::PubAck(Ack::new(17)), V311),
        case("puback_v5", Packet::PubAck(Ack::new(17)), V5),
        case("subscribe_3_filters_v311", subscribe(V311), V311),
        case("subscribe_3_filters_v5", subscribe(V5), V5),
        case("pingreq_v311", Packet::PingReq, V311),
        case(
            "disconnect_v5",
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::DISCONNECT_WITH_WILL,
                properties: Properties::default(),
            }),
            V5,
        ),
    ]
}

fn encoded(case: &Case) -> BytesMut {
    let mut wire = BytesMut::new();
    encode(&case.packet, case.version, &mut wire);
    wire
}

/// A benchmark of something that does not do what it claims measures nothing: check that
/// every case survives a round trip before timing it.
fn check_round_trip(case: &Case) {
    let mut wire = encoded(case);
    assert_eq!(wire.len(), encoded_len(&case.packet, case.version));
    let decoded = decode(&mut wire, case.negotiated, MAX_PACKET_SIZE);
    assert_eq!(
        decoded,
        Ok(Some(case.packet.clone())),
        "{} does not round-trip",
        case.name
    );
    assert!(wire.is_empty(), "{} left bytes behind", case.name);
}

/// Packets decoded between two clock readings: enough to make the reading negligible, few
/// enough that a chunk's read buffer (under 100 KiB) stays in cache.
const CHUNK: u64 = 512;

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for case in cases() {
        check_round_trip(&case);
        let wire = encoded(&case);
        // Like a connection's read buffer holding packets back to back: filling it is setup,
        // outside the timing; splitting each packet off it, decoding it and dropping the
        // decoded packet is timed. The figure is per packet.
        group.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let mut buf = BytesMut::with_capacity(wire.len() * n as usize);
                    for _ in 0..n {
                        buf.extend_from_slice(&wire);
                    }
                    let start = Instant::now();
                    for _ in 0..n {
                        let packet = decode(&mut buf, case.negotiated, MAX_PACKET_SIZE);
                        black_box(packet.ok().flatten());
                    }
                    timed += start.elapsed();
                    left -= n;
                }
                timed
            })
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    for case in cases() {
        // Like a connection's write buffer: reused, so its allocation is not measured.
        let mut out = BytesMut::with_capacity(1024);
        group.bench_function(case.name, |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(&case.packet), case.version, &mut out);
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = codec;
    config = config();
    targets = bench_decode, bench_encode
}
criterion_main!(codec);
