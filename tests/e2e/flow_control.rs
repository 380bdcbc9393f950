//! Flow control end to end: many fast publishers and one slow subscriber whose queue
//! (`limits.max_queued_messages`) is far smaller than what the publishers have in flight. The
//! broker must hold the publishers back instead of dropping acknowledged QoS 1/2 messages:
//! every acknowledged message arrives exactly once, in order per publisher [MQTT-4.6.0-5].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{bytes, Broker, Raw};

const PUBLISHERS: u8 = 10;
const MESSAGES: u32 = 2000;
const WINDOW: usize = 20;
const TOPIC: &str = "fc/load";
/// Generous: the subscriber is slow on purpose.
const RUN: Duration = Duration::from_secs(60);

fn config() -> String {
    format!(
        "sys_interval = 0\n[limits]\nmax_queued_messages = 10\nmax_inflight = 5\n{}",
        crate::support::TCP_ONLY
    )
}

/// The fixed header's length (type byte + remaining length bytes) of a framed packet.
fn header_len(packet: &[u8]) -> usize {
    1 + packet[1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(4, |i| i + 1)
}

fn ack(first: u8, id: u16) -> Vec<u8> {
    bytes::packet(first, &id.to_be_bytes())
}

fn publish(qos: u8, id: u16, publisher: u8, seq: u32) -> Vec<u8> {
    let mut body = bytes::string(TOPIC);
    body.extend(id.to_be_bytes());
    body.push(publisher);
    body.extend(seq.to_be_bytes());
    bytes::packet(0x30 | (qos << 1), &body)
}

async fn connect(addr: SocketAddr, client_id: &str) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.send(&bytes::connect_v311(client_id)).await;
    let connack = raw.recv(RUN).await.expect("CONNACK");
    assert_eq!(connack, vec![0x20, 2, 0, 0], "connection accepted");
    raw
}

/// One publisher: `MESSAGES` messages at `qos`, at most `WINDOW` unacknowledged. Returns how
/// many were acknowledged (all of them, or the test fails).
async fn run_publisher(addr: SocketAddr, qos: u8, publisher: u8) -> u32 {
    let mut raw = connect(addr, &format!("fc-pub-{publisher}")).await;
    let mut in_flight: HashSet<u16> = HashSet::new();
    let mut next_seq = 0u32;
    let mut completed = 0u32;
    while completed < MESSAGES {
        while in_flight.len() < WINDOW && next_seq < MESSAGES {
            let id = (next_seq % 60_000) as u16 + 1;
            raw.send(&publish(qos, id, publisher, next_seq)).await;
            in_flight.insert(id);
            next_seq += 1;
        }
        let packet = raw
            .recv(RUN)
            .await
            .expect("acknowledgement from the broker");
        let id = u16::from_be_bytes([packet[2], packet[3]]);
        match packet[0] {
            // PUBACK ends QoS 1
            0x40 if qos == 1 => {
                assert!(in_flight.remove(&id), "PUBACK for unknown id {id}");
                completed += 1;
            }
            // PUBREC -> PUBREL
            0x50 if qos == 2 => raw.send(&ack(0x62, id)).await,
            // PUBCOMP ends QoS 2
            0x70 if qos == 2 => {
                assert!(in_flight.remove(&id), "PUBCOMP for unknown id {id}");
                completed += 1;
            }
            other => panic!("publisher got unexpected packet type {other:#x}"),
        }
    }
    raw.send(&bytes::DISCONNECT).await;
    completed
}

/// The slow subscriber: acknowledges every message, pausing now and then. Returns per
/// publisher the sequence numbers received, in arrival order.
async fn run_subscriber(mut raw: Raw, qos: u8, expected: usize) -> Vec<Vec<u32>> {
    let mut received = vec![Vec::new(); usize::from(PUBLISHERS)];
    let mut total = 0usize;
    while total < expected {
        let Some(packet) = raw.recv(Duration::from_secs(20)).await else {
            panic!("subscriber: delivery stopped after {total} of {expected} messages");
        };
        match packet[0] >> 4 {
            3 => {
                let got_qos = (packet[0] >> 1) & 3;
                assert_eq!(got_qos, qos, "delivered at the published QoS");
                let h = header_len(&packet);
                let topic_len = usize::from(u16::from_be_bytes([packet[h], packet[h + 1]]));
                let at = h + 2 + topic_len;
                let id = u16::from_be_bytes([packet[at], packet[at + 1]]);
                let payload = &packet[at + 2..];
                let publisher = usize::from(payload[0]);
                let seq = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                received[publisher].push(seq);
                total += 1;
                if qos == 1 {
                    raw.send(&ack(0x40, id)).await;
                } else {
                    raw.send(&ack(0x50, id)).await;
                }
                // Slow on purpose: a pause every 200 messages.
                if total.is_multiple_of(200) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            // PUBREL -> PUBCOMP
            6 => {
                let id = u16::from_be_bytes([packet[2], packet[3]]);
                raw.send(&ack(0x70, id)).await;
            }
            other => panic!("subscriber got unexpected packet type {other}"),
        }
    }
    received
}

async fn fan_in_loses_and_duplicates_nothing(qos: u8) {
    let broker = Broker::with_config(&config());
    let addr = broker.addr();
    let mut sub = connect(addr, &format!("fc-sub-q{qos}")).await;
    sub.send(&bytes::subscribe_v311(1, TOPIC, qos)).await;
    let suback = sub.recv(RUN).await.expect("SUBACK");
    assert_eq!(suback, vec![0x90, 3, 0, 1, qos], "subscription granted");

    let expected = usize::from(PUBLISHERS) * MESSAGES as usize;
    let subscriber = tokio::spawn(run_subscriber(sub, qos, expected));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| tokio::spawn(run_publisher(addr, qos, p)))
        .collect();
    for p in publishers {
        let acked = tokio::time::timeout(RUN, p)
            .await
            .expect("publisher finished in time")
            .expect("publisher task");
        assert_eq!(acked, MESSAGES);
    }
    let received = tokio::time::timeout(RUN, subscriber)
        .await
        .expect("subscriber finished in time")
        .expect("subscriber task");
    for (publisher, seqs) in received.iter().enumerate() {
        let expected: Vec<u32> = (0..MESSAGES).collect();
        assert_eq!(
            seqs, &expected,
            "publisher {publisher}: every acknowledged message exactly once, in order"
        );
    }
    assert_eq!(
        broker.log.count("message dropped"),
        0,
        "no message dropped:\n{}",
        broker.dump_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_fan_in_to_slow_subscriber_loses_nothing_with_small_queue() {
    fan_in_loses_and_duplicates_nothing(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_fan_in_to_slow_subscriber_loses_and_duplicates_nothing_with_small_queue() {
    fan_in_loses_and_duplicates_nothing(2).await;
}
