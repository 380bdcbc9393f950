//! Persistence end to end: the broker is stopped (SIGTERM) or killed (SIGKILL) and restarted on
//! the same data folder; nothing it acknowledged is lost, QoS 2 stays exactly once, expired
//! sessions and messages do not come back, and a full store refuses instead of acknowledging.
//! Clients are raw byte-level ones so every acknowledgement is seen exactly as sent.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::bytes::{packet, string};
use crate::support::{Broker, Raw, TCP_ONLY, WAIT};

fn config(extra: &str) -> String {
    format!(
        "sys_interval = 0\n{TCP_ONLY}\n[limits]\nmax_queued_messages = 50000\n\n\
         [persistence]\nenabled = true\npath = \"data\"\nsync = \"always\"\n{extra}"
    )
}

/// Restarts a broker on the folder of one that was stopped or killed.
fn restart(dir: tempfile::TempDir, toml: &str) -> Broker {
    Broker::in_dir(dir, toml, &[])
}

/// CONNECT 3.1.1 with the given Clean Session flag, keep-alive 60.
fn connect_v311(client_id: &str, clean: bool) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend([4, if clean { 0x02 } else { 0x00 }, 0, 60]);
    body.extend(string(client_id));
    packet(0x10, &body)
}

/// CONNECT 5.0 with Clean Start and a Session Expiry Interval.
fn connect_v5(client_id: &str, clean: bool, session_expiry: u32) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend([5, if clean { 0x02 } else { 0x00 }, 0, 60]);
    body.extend([5, 0x11]);
    body.extend(session_expiry.to_be_bytes());
    body.extend(string(client_id));
    packet(0x10, &body)
}

fn publish_v311(topic: &str, qos: u8, packet_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = string(topic);
    if qos > 0 {
        body.extend(packet_id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &body)
}

/// PUBLISH 5.0, optionally retained and with a Message Expiry Interval.
fn publish_v5(
    topic: &str,
    qos: u8,
    retain: bool,
    packet_id: u16,
    expiry: Option<u32>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic);
    if qos > 0 {
        body.extend(packet_id.to_be_bytes());
    }
    match expiry {
        Some(secs) => {
            body.extend([5, 0x02]);
            body.extend(secs.to_be_bytes());
        }
        None => body.push(0),
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &body)
}

fn subscribe(v5: bool, packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    body.extend(string(filter));
    body.push(qos);
    packet(0x82, &body)
}

fn ack(kind: u8, packet_id: u16) -> Vec<u8> {
    let mut out = vec![kind, 2];
    out.extend(packet_id.to_be_bytes());
    out
}

/// Offset of the variable header (after the fixed header's remaining length).
fn body_start(p: &[u8]) -> usize {
    let mut i = 1;
    while i < p.len() && p[i] & 0x80 != 0 {
        i += 1;
    }
    i + 1
}

fn packet_id_of(p: &[u8]) -> u16 {
    let at = body_start(p);
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// A received PUBLISH.
struct Received {
    qos: u8,
    retain: bool,
    packet_id: u16,
    topic: String,
    payload: Vec<u8>,
}

fn parse_publish(p: &[u8], v5: bool) -> Received {
    let qos = (p[0] >> 1) & 3;
    let mut at = body_start(p);
    let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
    let topic = String::from_utf8_lossy(&p[at + 2..at + 2 + len]).into_owned();
    at += 2 + len;
    let mut packet_id = 0;
    if qos > 0 {
        packet_id = u16::from_be_bytes([p[at], p[at + 1]]);
        at += 2;
    }
    if v5 {
        // Property length (one-byte varint suffices for these tests' properties).
        let mut props = 0usize;
        let mut shift = 0;
        loop {
            let b = p[at];
            at += 1;
            props |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        at += props;
    }
    Received {
        qos,
        retain: p[0] & 1 == 1,
        packet_id,
        topic,
        payload: p[at..].to_vec(),
    }
}

/// Connects and returns the connection with CONNACK's Session Present flag.
async fn open(addr: SocketAddr, connect: Vec<u8>) -> (Raw, bool) {
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect).await;
    let connack = raw.recv_type(2, WAIT).await.expect("CONNACK");
    let reason = connack[3];
    assert_eq!(reason, 0, "CONNACK refused: {connack:?}");
    (raw, connack[2] & 1 == 1)
}

/// Receives PUBLISHes, acknowledging each as a well-behaved client does (PUBACK; PUBREC then
/// PUBCOMP on PUBREL), until nothing arrives for `quiet`.
async fn drain(raw: &mut Raw, v5: bool, quiet: Duration) -> Vec<Received> {
    let mut got = Vec::new();
    while let Some(p) = raw.recv(quiet).await {
        match p[0] >> 4 {
            3 => {
                let r = parse_publish(&p, v5);
                match r.qos {
                    1 => raw.send(&ack(0x40, r.packet_id)).await,
                    2 => raw.send(&ack(0x50, r.packet_id)).await,
                    _ => {}
                }
                got.push(r);
            }
            6 => raw.send(&ack(0x70, packet_id_of(&p))).await,
            _ => {}
        }
    }
    got
}

/// What the publisher saw acknowledged: payload indexes by QoS.
#[derive(Default)]
struct Acked {
    qos1: HashSet<usize>,
    qos2: HashSet<usize>,
}

impl Acked {
    fn len(&self) -> usize {
        self.qos1.len() + self.qos2.len()
    }
}

/// Publishes `total` messages alternating QoS 1 and QoS 2 (payload `q<qos>-<index>`), with up
/// to `window` unacknowledged at once, recording each acknowledged one (PUBACK, or PUBREC for
/// QoS 2, after which PUBREL/PUBCOMP finish the exchange). Ends when all are done or the
/// connection drops.
async fn publish_recording(
    addr: SocketAddr,
    total: usize,
    window: usize,
    acked: Arc<Mutex<Acked>>,
) {
    let (mut raw, _) = open(addr, connect_v311("publisher", true)).await;
    let mut free: Vec<u16> = (1..=window as u16).rev().collect();
    // packet id -> (qos, index)
    let mut in_flight: HashMap<u16, (u8, usize)> = HashMap::new();
    let mut next = 0;
    loop {
        let mut batch = Vec::new();
        while next < total {
            let Some(id) = free.pop() else { break };
            let qos = if next % 2 == 0 { 1 } else { 2 };
            batch.extend(publish_v311(
                &format!("persist/q{qos}"),
                qos,
                id,
                format!("q{qos}-{next}").as_bytes(),
            ));
            in_flight.insert(id, (qos, next));
            next += 1;
        }
        if !batch.is_empty() && !raw.try_send(&batch).await {
            return;
        }
        if in_flight.is_empty() {
            return;
        }
        let Some(p) = raw.recv(WAIT).await else {
            return;
        };
        let id = packet_id_of(&p);
        match p[0] >> 4 {
            4 => {
                if let Some((_, index)) = in_flight.remove(&id) {
                    acked.lock().unwrap().qos1.insert(index);
                    free.push(id);
                }
            }
            5 => {
                if let Some((_, index)) = in_flight.get(&id) {
                    acked.lock().unwrap().qos2.insert(*index);
                }
                if !raw.try_send(&ack(0x62, id)).await {
                    return;
                }
            }
            7 if in_flight.remove(&id).is_some() => free.push(id),
            _ => {}
        }
    }
}

/// A number in `low..high` that differs from run to run (the kill moment).
fn random_between(low: usize, high: usize) -> usize {
    use std::hash::BuildHasher;
    let seed = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    low + (seed as usize) % (high - low)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_publishing_loses_no_acknowledged_message_and_qos2_stays_exactly_once() {
    const TOTAL: usize = 20_000;
    let toml = config("");
    let broker = Broker::with_config(&toml);
    let addr = broker.addr();
    // A persistent 3.1.1 subscriber, then offline.
    let (mut sub, _) = open(addr, connect_v311("durable-sub", false)).await;
    sub.send(&subscribe(false, 1, "persist/#", 2)).await;
    sub.recv_type(9, WAIT).await.expect("SUBACK");
    sub.send(&crate::support::bytes::DISCONNECT).await;
    drop(sub);

    let acked = Arc::new(Mutex::new(Acked::default()));
    let kill_at = random_between(1_000, TOTAL - 1_000);
    eprintln!("killing the broker after {kill_at} acknowledgements");
    let publisher = tokio::spawn(publish_recording(addr, TOTAL, 200, acked.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < kill_at {
        assert!(Instant::now() < deadline, "publishing too slow");
        assert!(!publisher.is_finished(), "publisher stopped early");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let dir = broker.kill();
    let _ = publisher.await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= kill_at);

    let broker = restart(dir, &toml);
    let (mut sub, present) = open(broker.addr(), connect_v311("durable-sub", false)).await;
    assert!(present, "the persistent session survived the kill");
    let got = drain(&mut sub, false, Duration::from_secs(2)).await;
    let mut q1 = HashSet::new();
    let mut q2: HashMap<usize, usize> = HashMap::new();
    for r in &got {
        let text = String::from_utf8_lossy(&r.payload).into_owned();
        let (kind, index) = text.split_once('-').expect("payload q<qos>-<index>");
        let index: usize = index.parse().expect("index");
        match kind {
            "q1" => {
                assert_eq!(r.topic, "persist/q1");
                q1.insert(index);
            }
            "q2" => {
                assert_eq!(r.qos, 2, "QoS 2 message delivered at QoS 2");
                *q2.entry(index).or_default() += 1;
            }
            other => panic!("unexpected payload {other}"),
        }
    }
    let lost1: Vec<_> = acked.qos1.iter().filter(|i| !q1.contains(i)).collect();
    let lost2: Vec<_> = acked.qos2.iter().filter(|i| !q2.contains_key(i)).collect();
    assert!(
        lost1.is_empty(),
        "acknowledged QoS 1 lost: {} e.g. {:?}",
        lost1.len(),
        lost1.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        lost2.is_empty(),
        "acknowledged QoS 2 lost: {} e.g. {:?}",
        lost2.len(),
        lost2.iter().take(5).collect::<Vec<_>>()
    );
    let twice: Vec<_> = q2.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "QoS 2 delivered more than once: {twice:?}"
    );
    eprintln!(
        "acknowledged {} QoS 1 + {} QoS 2; delivered after restart {} + {}",
        acked.qos1.len(),
        acked.qos2.len(),
        q1.len(),
        q2.len()
    );
}

/// Session expiry 3600 s subscriber "keeper" and 1 s subscriber "brief", both offline with a
/// queued message; a retained message with no expiry and one expiring in 1 s.
async fn seed(addr: SocketAddr) {
    for (id, expiry) in [("keeper", 3600), ("brief", 1)] {
        let (mut c, _) = open(addr, connect_v5(id, true, expiry)).await;
        c.send(&subscribe(true, 1, "queue/#", 1)).await;
        c.recv_type(9, WAIT).await.expect("SUBACK");
        c.send(&[0xE0, 0x00]).await;
    }
    let (mut p, _) = open(addr, connect_v5("seeder", true, 0)).await;
    let messages = [
        publish_v5("retained/keep", 1, true, 1, None, b"kept"),
        publish_v5("retained/brief", 1, true, 2, Some(1), b"gone"),
        publish_v5("queue/a", 1, false, 3, None, b"queued"),
        publish_v5("queue/brief", 1, false, 4, Some(1), b"expired"),
    ];
    for m in messages {
        p.send(&m).await;
        p.recv_type(4, WAIT).await.expect("PUBACK");
    }
    p.send(&[0xE0, 0x00]).await;
}

async fn retained_topics(addr: SocketAddr) -> Vec<(String, Vec<u8>)> {
    let (mut c, _) = open(addr, connect_v5("reader", true, 0)).await;
    c.send(&subscribe(true, 1, "retained/#", 1)).await;
    let mut got: Vec<_> = drain(&mut c, true, Duration::from_millis(500))
        .await
        .into_iter()
        .inspect(|r| assert!(r.retain))
        .map(|r| (r.topic, r.payload))
        .collect();
    got.sort();
    got
}

async fn check_restored(addr: SocketAddr, expect_queue: &[&str]) {
    assert_eq!(
        retained_topics(addr).await,
        vec![("retained/keep".to_owned(), b"kept".to_vec())],
        "the retained message without expiry is back, the expired one is not"
    );
    let (_c, present) = open(addr, connect_v5("brief", false, 1)).await;
    assert!(
        !present,
        "a session whose expiry ran out while down is gone"
    );
    let (mut keeper, present) = open(addr, connect_v5("keeper", false, 3600)).await;
    assert!(present, "the persistent session is back");
    let topics: Vec<String> = drain(&mut keeper, true, Duration::from_millis(800))
        .await
        .into_iter()
        .map(|r| r.topic)
        .collect();
    assert_eq!(
        topics, expect_queue,
        "queued messages (minus the expired one)"
    );
    keeper.send(&[0xE0, 0x00]).await;
    // Give the broker a moment to store the acknowledgements and the disconnect.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_and_sessions_survive_sigterm_and_sigkill_expired_ones_do_not() {
    let toml = config("");
    let mut broker = Broker::with_config(&toml);
    seed(broker.addr()).await;
    broker.signal("TERM");
    assert!(broker.wait_exit(WAIT).is_some(), "clean stop");
    let dir = broker.kill();
    // Down long enough for the 1 s expiries to pass.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let broker = restart(dir, &toml);
    check_restored(broker.addr(), &["queue/a"]).await;

    // Once more, killed this time: what was delivered and acknowledged stays delivered.
    seed(broker.addr()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dir = broker.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let broker = restart(dir, &toml);
    check_restored(broker.addr(), &["queue/a"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_store_refuses_qos1_with_quota_exceeded_and_the_broker_keeps_serving() {
    let toml = config("max_size_mb = 1\n");
    let broker = Broker::with_config(&toml);
    let addr = broker.addr();
    let (mut sub, _) = open(addr, connect_v5("hoarder", true, 3600)).await;
    sub.send(&subscribe(true, 1, "big/#", 1)).await;
    sub.recv_type(9, WAIT).await.expect("SUBACK");
    sub.send(&[0xE0, 0x00]).await;

    let (mut p, _) = open(addr, connect_v5("filler", true, 0)).await;
    let payload = vec![0x5a; 64 * 1024];
    let mut refused_after = None;
    for i in 0..64u16 {
        p.send(&publish_v5("big/x", 1, false, i + 1, None, &payload))
            .await;
        let puback = p.recv_type(4, WAIT).await.expect("PUBACK");
        let reason = puback.get(4).copied().unwrap_or(0);
        if reason == 0x97 {
            refused_after = Some(i);
            break;
        }
        assert!(reason < 0x80, "unexpected PUBACK reason {reason:#x}");
    }
    let accepted = refused_after.expect("a 1 MiB store fills up within 4 MiB of messages");
    assert!(accepted > 0, "some messages fit before the store is full");

    // Still serving: PINGREQ, and a QoS 1 message nobody stores is acknowledged.
    p.send(&[0xC0, 0x00]).await;
    assert!(p.recv_type(13, WAIT).await.is_some(), "PINGRESP");
    p.send(&publish_v5("elsewhere", 1, false, 100, None, b"x"))
        .await;
    let puback = p.recv_type(4, WAIT).await.expect("PUBACK");
    assert!(puback.get(4).copied().unwrap_or(0) < 0x80);

    // What was acknowledged is delivered.
    let (mut sub, present) = open(addr, connect_v5("hoarder", false, 3600)).await;
    assert!(present);
    let got = drain(&mut sub, true, Duration::from_millis(800)).await;
    assert_eq!(
        got.len(),
        usize::from(accepted),
        "every acknowledged message, only those"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_and_inbound_qos2_state_survive_sigkill_dup_redelivery_and_no_second_routing_mqtt_4_3_3_9(
) {
    let toml = config("");
    let broker = Broker::with_config(&toml);
    let addr = broker.addr();
    let (mut sub, _) = open(addr, connect_v311("dup-sub", false)).await;
    sub.send(&subscribe(false, 1, "x/#", 2)).await;
    sub.recv_type(9, WAIT).await.expect("SUBACK");

    let (mut publisher, _) = open(addr, connect_v311("dup-pub", false)).await;
    publisher.send(&publish_v311("x/a", 2, 7, b"once")).await;
    let pubrec = publisher.recv_type(5, WAIT).await.expect("PUBREC");
    assert_eq!(packet_id_of(&pubrec), 7);
    publisher.send(&publish_v311("x/b", 1, 8, b"again")).await;
    publisher.recv_type(4, WAIT).await.expect("PUBACK");

    // The subscriber gets both and acknowledges neither.
    let mut sent_ids = HashMap::new();
    for _ in 0..2 {
        let p = sub.recv_type(3, WAIT).await.expect("PUBLISH");
        let r = parse_publish(&p, false);
        sent_ids.insert(r.topic, (r.qos, r.packet_id));
    }
    // The in-flight records are written before the PUBLISHes leave; let them reach the disk.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = broker.kill();
    drop((sub, publisher));

    let broker = restart(dir, &toml);
    let addr = broker.addr();
    let (mut sub, present) = open(addr, connect_v311("dup-sub", false)).await;
    assert!(present);
    let mut resent = HashMap::new();
    for _ in 0..2 {
        let p = sub.recv_type(3, WAIT).await.expect("re-sent PUBLISH");
        assert!(p[0] & 0x08 != 0, "DUP set on redelivery [MQTT-3.3.1-1]");
        let r = parse_publish(&p, false);
        resent.insert(r.topic, (r.qos, r.packet_id));
    }
    assert_eq!(
        resent, sent_ids,
        "same messages, same packet ids [MQTT-4.4.0-1]"
    );

    // The publisher re-sends its QoS 2 PUBLISH whose PUBREC it got: acknowledged again, not
    // routed again.
    let (mut publisher, present) = open(addr, connect_v311("dup-pub", false)).await;
    assert!(present);
    let mut again = publish_v311("x/a", 2, 7, b"once");
    again[0] |= 0x08;
    publisher.send(&again).await;
    let pubrec = publisher.recv_type(5, WAIT).await.expect("PUBREC");
    assert_eq!(packet_id_of(&pubrec), 7);
    publisher.send(&ack(0x62, 7)).await;
    let pubcomp = publisher.recv_type(7, WAIT).await.expect("PUBCOMP");
    assert_eq!(packet_id_of(&pubcomp), 7);

    // Finish the subscriber's exchanges; nothing else arrives.
    let (_, id_a) = sent_ids["x/a"];
    let (_, id_b) = sent_ids["x/b"];
    sub.send(&ack(0x50, id_a)).await;
    sub.send(&ack(0x40, id_b)).await;
    let more = drain(&mut sub, false, Duration::from_millis(800)).await;
    assert!(
        more.is_empty(),
        "no message routed twice: got {:?}",
        more.iter().map(|r| r.topic.clone()).collect::<Vec<_>>()
    );
}

/// CONNECT 3.1.1, Clean Session 0, with a QoS 1 will.
fn connect_v311_with_will(client_id: &str, topic: &str, message: &[u8]) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend([4, 0x04 | 0x08, 0, 60]);
    body.extend(string(client_id));
    body.extend(string(topic));
    body.extend((message.len() as u16).to_be_bytes());
    body.extend_from_slice(message);
    packet(0x10, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_of_a_session_connected_when_the_broker_was_killed_is_published_at_restart_mqtt_3_1_2_8(
) {
    let toml = config("");
    let broker = Broker::with_config(&toml);
    let addr = broker.addr();
    let (mut watcher, _) = open(addr, connect_v311("will-watcher", false)).await;
    watcher.send(&subscribe(false, 1, "wills/#", 1)).await;
    watcher.recv_type(9, WAIT).await.expect("SUBACK");
    watcher.send(&crate::support::bytes::DISCONNECT).await;
    let (_device, _) = open(
        addr,
        connect_v311_with_will("device-7", "wills/device-7", b"offline"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = broker.kill();

    let broker = restart(dir, &toml);
    // The will goes out at start, to the restored subscription; queued for the offline watcher.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut watcher, present) = open(broker.addr(), connect_v311("will-watcher", false)).await;
    assert!(present);
    let got = drain(&mut watcher, false, Duration::from_millis(800)).await;
    let wills: Vec<_> = got
        .iter()
        .map(|r| (r.topic.as_str(), r.payload.as_slice()))
        .collect();
    assert_eq!(wills, vec![("wills/device-7", b"offline".as_slice())]);
}

#[test]
fn corrupt_database_stops_the_start_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(dir.path().join("data/waspmq.db"), vec![0x42u8; 64 * 1024])
        .expect("write garbage");
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, config_text()).expect("write config");
    let output = std::process::Command::new(crate::support::binary())
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .expect("run waspmq");
    assert!(!output.status.success(), "the broker must not start");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("waspmq.db") && text.contains("corrupt"),
        "error names the file: {text}"
    );
}

fn config_text() -> String {
    format!("{}\n[log]\ndir = \"logs\"\n", config(""))
}
