//! Tests of both stores: record round trips, restart, restore rules, group commit, durability
//! across a killed process, full / corrupt / unwritable storage. The same scenarios run on the
//! memory store and the SQLite store and must give the same snapshot.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::*;
use crate::config::SyncPolicy;
use crate::protocol::{Properties, QoS, ReasonCode, RetainHandling, SubscriptionOptions};

/// A fixed "now" with whole milliseconds (stores keep times to the millisecond).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn full_message(topic: &str, payload: &str, qos: QoS) -> StoredMessage {
    let mut m = StoredMessage::new(topic, Bytes::from(payload.to_owned()), qos, false);
    m.properties = Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        content_type: Some("application/json".into()),
        response_topic: Some(format!("{topic}/reply")),
        correlation_data: Some(Bytes::from_static(b"\x01\x02\x03")),
        subscription_identifiers: vec![7, 9],
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..Properties::default()
    };
    m.expires_at = Some(now() + secs(3600));
    m
}

fn subscription(filter: &str, qos: QoS, identifier: Option<u32>) -> StoredSubscription {
    StoredSubscription {
        filter: filter.into(),
        options: SubscriptionOptions {
            qos,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendIfNew,
        },
        identifier,
    }
}

fn sqlite(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, SqliteOptions::default()).expect("opens")
}

fn commit(store: &dyn Store, ops: Vec<Op>) {
    store.commit(ops).wait().expect("commit succeeds");
}

/// One session of each kind of record, and what a load must give back for it.
fn every_record(store: &dyn Store) -> Snapshot {
    let mut session = StoredSession::new("dev-1", NEVER_EXPIRES);
    session.disconnected_at = Some(now() - secs(30));
    session.will = Some(StoredWill {
        message: full_message("dev-1/status", "offline", QoS::AtLeastOnce),
        delay_secs: 5,
    });
    session.subscriptions = vec![
        subscription("cmd/#", QoS::ExactlyOnce, Some(42)),
        subscription("a/+/b", QoS::AtMostOnce, None),
    ];
    let mut retained = full_message("status/x", "on", QoS::AtLeastOnce);
    retained.retain = true;
    let plain_retained = StoredMessage::new("plain", &b""[..], QoS::AtMostOnce, true);
    let q1 = full_message("cmd/1", "one", QoS::AtLeastOnce);
    let q2 = StoredMessage::new("cmd/2", &b"\x00\xff"[..], QoS::ExactlyOnce, true);
    let f1 = StoredInflight {
        packet_id: 1,
        state: InflightState::AwaitingAck,
        message: full_message("cmd/0", "zero", QoS::ExactlyOnce),
    };
    let f2 = StoredInflight {
        packet_id: 65535,
        state: InflightState::AwaitingPubComp,
        message: StoredMessage::new("cmd/z", &b"z"[..], QoS::ExactlyOnce, false),
    };
    commit(
        store,
        vec![
            Op::SaveSession(session.clone()),
            Op::SetRetained(retained.clone()),
            Op::SetRetained(plain_retained.clone()),
            Op::Enqueue {
                client_id: "dev-1".into(),
                seq: 10,
                message: q1.clone(),
            },
            Op::Enqueue {
                client_id: "dev-1".into(),
                seq: 11,
                message: q2.clone(),
            },
            Op::PutInflight {
                client_id: "dev-1".into(),
                entry: f2.clone(),
            },
            Op::PutInflight {
                client_id: "dev-1".into(),
                entry: f1.clone(),
            },
            Op::AddInboundQos2 {
                client_id: "dev-1".into(),
                packet_id: 300,
            },
            Op::AddInboundQos2 {
                client_id: "dev-1".into(),
                packet_id: 2,
            },
        ],
    );
    session
        .subscriptions
        .sort_by(|a, b| a.filter.cmp(&b.filter));
    Snapshot {
        sessions: vec![RestoredSession {
            session,
            queued: vec![(10, q1), (11, q2)],
            inflight: vec![f1, f2],
            inbound_qos2: vec![2, 300],
        }],
        retained: vec![plain_retained, retained],
    }
}

#[test]
fn every_record_type_round_trips_in_memory() {
    let store = MemoryStore::new();
    let expected = every_record(&store);
    assert_eq!(store.load(now()).expect("loads"), expected);
}

#[test]
fn every_record_type_round_trips_in_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    let expected = every_record(&store);
    assert_eq!(store.load(now()).expect("loads"), expected);
}

#[test]
fn restart_restores_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = every_record(&sqlite(dir.path()));
    // The first store is dropped (closed) above; a new one reads the same file.
    let reopened = sqlite(dir.path());
    assert_eq!(reopened.load(now()).expect("loads"), expected);
    // Loading twice gives the same: restore rules are idempotent.
    drop(reopened);
    assert_eq!(sqlite(dir.path()).load(now()).expect("loads"), expected);
}

/// Updates and removals of every kind, applied to a store filled by `every_record`.
fn update_everything(store: &dyn Store) {
    let id = || "dev-1".to_owned();
    commit(
        store,
        vec![
            Op::SetDisconnected {
                client_id: id(),
                at: Some(now() - secs(1)),
            },
            Op::SetWill {
                client_id: id(),
                will: None,
            },
            Op::AddSubscription {
                client_id: id(),
                subscription: subscription("cmd/#", QoS::AtLeastOnce, None),
            },
            Op::AddSubscription {
                client_id: id(),
                subscription: subscription("z", QoS::AtMostOnce, Some(1)),
            },
            Op::RemoveSubscription {
                client_id: id(),
                filter: "a/+/b".into(),
            },
            Op::ClearRetained {
                topic: "plain".into(),
            },
            Op::Dequeue {
                client_id: id(),
                seq: 10,
            },
            Op::SetInflightState {
                client_id: id(),
                packet_id: 1,
                state: InflightState::AwaitingPubComp,
            },
            Op::RemoveInflight {
                client_id: id(),
                packet_id: 65535,
            },
            Op::RemoveInboundQos2 {
                client_id: id(),
                packet_id: 300,
            },
            Op::SaveSession(StoredSession::new("gone", NEVER_EXPIRES)),
            Op::Enqueue {
                client_id: "gone".into(),
                seq: 1,
                message: StoredMessage::new("t", &b"x"[..], QoS::AtLeastOnce, false),
            },
        ],
    );
    commit(
        store,
        vec![Op::DeleteSession {
            client_id: "gone".into(),
        }],
    );
}

#[test]
fn updates_and_removals_give_the_same_snapshot_in_both_stores() {
    let memory = MemoryStore::new();
    every_record(&memory);
    update_everything(&memory);
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = {
        let store = sqlite(dir.path());
        every_record(&store);
        update_everything(&store);
        store.load(now()).expect("loads")
    };
    assert_eq!(memory.load(now()).expect("loads"), expected);
    assert_eq!(sqlite(dir.path()).load(now()).expect("loads"), expected);

    let s = &expected.sessions;
    assert_eq!(s.len(), 1, "deleted session is gone");
    let dev = &s[0];
    assert_eq!(dev.session.will, None);
    assert_eq!(dev.session.disconnected_at, Some(now() - secs(1)));
    let filters: Vec<(&str, QoS, Option<u32>)> = dev
        .session
        .subscriptions
        .iter()
        .map(|s| (s.filter.as_str(), s.options.qos, s.identifier))
        .collect();
    assert_eq!(
        filters,
        vec![
            ("cmd/#", QoS::AtLeastOnce, None),
            ("z", QoS::AtMostOnce, Some(1))
        ]
    );
    assert_eq!(dev.queued.iter().map(|q| q.0).collect::<Vec<_>>(), vec![11]);
    assert_eq!(dev.inflight.len(), 1);
    assert_eq!(dev.inflight[0].state, InflightState::AwaitingPubComp);
    assert_eq!(dev.inbound_qos2, vec![2]);
    assert_eq!(expected.retained.len(), 1);
    assert_eq!(expected.retained[0].topic, "status/x");
}

/// Sessions and messages with every expiry case; returns nothing, the test checks the load.
fn expiry_cases(store: &dyn Store) {
    let mut expired = StoredSession::new("expired", 60);
    expired.disconnected_at = Some(now() - secs(61));
    let mut alive = StoredSession::new("alive", 60);
    alive.disconnected_at = Some(now() - secs(59));
    let zero = StoredSession::new("zero", 0);
    let connected = StoredSession::new("connected", 10);
    let mut old_msg = StoredMessage::new("old", &b"o"[..], QoS::AtLeastOnce, false);
    old_msg.expires_at = Some(now() - secs(1));
    let mut fresh_msg = StoredMessage::new("fresh", &b"f"[..], QoS::AtLeastOnce, false);
    fresh_msg.expires_at = Some(now() + secs(1));
    let mut ops = vec![
        Op::SaveSession(expired),
        Op::SaveSession(alive),
        Op::SaveSession(zero),
        Op::SaveSession(connected),
    ];
    for client in ["expired", "alive", "zero"] {
        ops.push(Op::Enqueue {
            client_id: client.into(),
            seq: 1,
            message: old_msg.clone(),
        });
        ops.push(Op::Enqueue {
            client_id: client.into(),
            seq: 2,
            message: fresh_msg.clone(),
        });
        ops.push(Op::PutInflight {
            client_id: client.into(),
            entry: StoredInflight {
                packet_id: 5,
                state: InflightState::AwaitingAck,
                message: old_msg.clone(),
            },
        });
        ops.push(Op::AddInboundQos2 {
            client_id: client.into(),
            packet_id: 9,
        });
    }
    let mut old_retained = old_msg.clone();
    old_retained.topic = "r/old".into();
    let mut fresh_retained = fresh_msg.clone();
    fresh_retained.topic = "r/fresh".into();
    ops.push(Op::SetRetained(old_retained));
    ops.push(Op::SetRetained(fresh_retained));
    // A queue entry of a client that has no session is never restored.
    ops.push(Op::Enqueue {
        client_id: "nobody".into(),
        seq: 1,
        message: fresh_msg,
    });
    commit(store, ops);
}

fn check_expiry(snapshot: &Snapshot) {
    let ids: Vec<&str> = snapshot
        .sessions
        .iter()
        .map(|s| s.session.client_id.as_str())
        .collect();
    assert_eq!(ids, vec!["alive", "connected"]);
    let alive = snapshot.session("alive").expect("alive restored");
    assert_eq!(
        alive
            .queued
            .iter()
            .map(|q| q.1.topic.as_str())
            .collect::<Vec<_>>(),
        vec!["fresh"],
        "expired queued message dropped [MQTT-3.3.2-5]"
    );
    assert_eq!(
        alive.inflight.len(),
        1,
        "in-flight kept: delivery had started"
    );
    assert_eq!(alive.inbound_qos2, vec![9]);
    let connected = snapshot.session("connected").expect("connected restored");
    assert_eq!(connected.session.disconnected_at, Some(now()));
    let topics: Vec<&str> = snapshot.retained.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, vec!["r/fresh"]);
}

#[test]
fn expired_sessions_and_messages_are_not_restored_from_memory() {
    let store = MemoryStore::new();
    expiry_cases(&store);
    check_expiry(&store.load(now()).expect("loads"));
}

#[test]
fn expired_sessions_and_messages_are_not_restored_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    expiry_cases(&sqlite(dir.path()));
    let first = sqlite(dir.path()).load(now()).expect("loads");
    check_expiry(&first);
    // The expired records were deleted, not just skipped: a later load (even with the clock
    // set back) does not bring them back.
    let again = sqlite(dir.path()).load(now() - secs(3600)).expect("loads");
    assert_eq!(
        again
            .sessions
            .iter()
            .map(|s| s.session.client_id.as_str())
            .collect::<Vec<_>>(),
        vec!["alive", "connected"]
    );
    assert_eq!(again.session("alive").expect("alive").queued.len(), 1);
    assert_eq!(again.retained.len(), 1);
}

#[test]
fn many_concurrent_commits_share_few_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    commit(
        &store,
        vec![Op::SaveSession(StoredSession::new("s", NEVER_EXPIRES))],
    );
    let before = store.stats();
    const N: u64 = 2000;
    // All batches are handed over before any is awaited, as many connection tasks would.
    let pending: Vec<Commit> = (0..N)
        .map(|seq| {
            store.enqueue(
                "s",
                seq,
                StoredMessage::new("t", Bytes::from(seq.to_string()), QoS::AtLeastOnce, false),
            )
        })
        .collect();
    for c in pending {
        c.wait().expect("commit succeeds");
    }
    let after = store.stats();
    let commits = after.commits - before.commits;
    let transactions = after.transactions - before.transactions;
    assert_eq!(commits, N);
    assert!(
        transactions * 10 <= commits,
        "{commits} commits took {transactions} transactions"
    );
    let snapshot = store.load(now()).expect("loads");
    assert_eq!(snapshot.sessions[0].queued.len(), N as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_awaiting_commits_are_grouped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(sqlite(dir.path()));
    let mut tasks = Vec::new();
    for task in 0..50u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                let msg = StoredMessage::new("t", &b"x"[..], QoS::AtLeastOnce, true);
                store
                    .commit(vec![
                        Op::Enqueue {
                            client_id: format!("c{task}"),
                            seq: i,
                            message: msg.clone(),
                        },
                        Op::SetRetained(StoredMessage {
                            topic: format!("r/{task}"),
                            ..msg
                        }),
                    ])
                    .await?;
            }
            Ok::<(), StoreError>(())
        }));
    }
    for t in tasks {
        t.await.expect("task ran").expect("commits succeed");
    }
    let stats = store.stats();
    assert_eq!(stats.commits, 1000);
    assert_eq!(stats.ops, 2000);
    assert!(
        stats.transactions < stats.commits / 2,
        "{} commits took {} transactions",
        stats.commits,
        stats.transactions
    );
}

#[test]
fn a_commit_dropped_unawaited_is_still_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    drop(store.save_session(StoredSession::new("s", NEVER_EXPIRES)));
    store.sync().wait().expect("sync");
    assert!(store.load(now()).expect("loads").session("s").is_some());
}

#[test]
fn a_failing_batch_does_not_fail_the_batches_grouped_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    commit(
        &store,
        vec![Op::SaveSession(StoredSession::new("s", NEVER_EXPIRES))],
    );
    let msg = StoredMessage::new("t", &b"x"[..], QoS::AtLeastOnce, false);
    // Sequence numbers beyond 2^63 cannot be stored: that one batch must fail alone.
    let pending: Vec<(u64, Commit)> = (0..200u64)
        .map(|i| {
            let seq = if i == 100 { u64::MAX } else { i };
            (seq, store.enqueue("s", seq, msg.clone()))
        })
        .collect();
    for (seq, c) in pending {
        let result = c.wait();
        if seq == u64::MAX {
            assert!(
                matches!(result, Err(StoreError::Other { .. })),
                "{result:?}"
            );
        } else {
            assert_eq!(result, Ok(()), "seq {seq}");
        }
    }
    let queued = &store.load(now()).expect("loads").sessions[0].queued;
    assert_eq!(queued.len(), 199);
    assert_eq!(store.stats().failures, 1);
}

/// The child side of the SIGKILL test: commits until killed, printing each acknowledged seq.
fn durability_child(dir: &Path) {
    let store = Arc::new(sqlite(dir));
    commit(
        &*store,
        vec![Op::SaveSession(StoredSession::new("sub", NEVER_EXPIRES))],
    );
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    let seq = i * 4 + t;
                    let msg = StoredMessage::new(
                        "fleet/data",
                        Bytes::from(format!("m{seq}")),
                        QoS::ExactlyOnce,
                        false,
                    );
                    let ops = vec![
                        Op::Enqueue {
                            client_id: "sub".into(),
                            seq,
                            message: msg,
                        },
                        Op::AddInboundQos2 {
                            client_id: "sub".into(),
                            packet_id: (seq % 65_535 + 1) as u16,
                        },
                    ];
                    if store.commit(ops).wait().is_ok() {
                        println!("ACK {seq}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_commits_survive_sigkill_of_the_broker_process() {
    const CHILD_ENV: &str = "WASPMQ_PERSISTENCE_CHILD_DIR";
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        durability_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "persistence::tests::acknowledged_commits_survive_sigkill_of_the_broker_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acked = Vec::new();
    let mut killed = false;
    // Every line is read, also those written between the kill and the pipe's close: each is a
    // commit that was acknowledged before the process died.
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(seq) = line.strip_prefix("ACK ") {
            acked.push(seq.parse::<u64>().expect("seq"));
        }
        if !killed && acked.len() >= 500 {
            child.kill().expect("SIGKILL");
            killed = true;
        }
    }
    let _ = child.wait();
    assert!(killed, "child stopped before 500 acknowledged commits");

    let store = sqlite(dir.path());
    let snapshot = store.load(now()).expect("loads after the kill");
    let sub = snapshot.session("sub").expect("session survives");
    let stored: BTreeMap<u64, &StoredMessage> = sub.queued.iter().map(|(s, m)| (*s, m)).collect();
    for seq in &acked {
        let msg = stored
            .get(seq)
            .unwrap_or_else(|| panic!("acked {seq} lost"));
        assert_eq!(msg.payload, Bytes::from(format!("m{seq}")));
        let packet_id = (seq % 65_535 + 1) as u16;
        assert!(sub.inbound_qos2.contains(&packet_id));
    }
    // The queue is in sequence order.
    assert!(sub.queued.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn full_store_refuses_with_quota_exceeded_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite(dir.path());
    commit(
        &store,
        vec![Op::SaveSession(StoredSession::new("s", NEVER_EXPIRES))],
    );
    // The file has a few pages now; allow only a few more.
    store.set_max_pages(40).wait().expect("cap set");
    let mut acked = Vec::new();
    let mut refused = None;
    for seq in 0..1000u64 {
        let payload = Bytes::from(vec![seq as u8; 2000]);
        let msg = StoredMessage::new("big", payload, QoS::AtLeastOnce, false);
        match store.enqueue("s", seq, msg).wait() {
            Ok(()) => acked.push(seq),
            Err(e) => {
                refused = Some((seq, e));
                break;
            }
        }
    }
    let (refused_seq, err) = refused.expect("the store filled up");
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert_eq!(err.reason_code(), ReasonCode::QUOTA_EXCEEDED);
    assert!(
        err.to_string()
            .contains(&store.path().display().to_string()),
        "{err}"
    );
    assert!(!acked.is_empty());
    // Freeing room still works when full.
    store.dequeue("s", 0).wait().expect("dequeue while full");
    drop(store);

    let snapshot = sqlite(dir.path()).load(now()).expect("loads");
    let queued: Vec<u64> = snapshot.sessions[0].queued.iter().map(|q| q.0).collect();
    assert_eq!(
        queued,
        acked[1..].to_vec(),
        "acked ones kept, refused {refused_seq} absent"
    );
    for (seq, msg) in &snapshot.sessions[0].queued {
        assert_eq!(msg.payload, Bytes::from(vec![*seq as u8; 2000]));
    }
}

#[test]
fn max_size_mb_caps_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions {
        max_size_mb: Some(1),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir.path(), options).expect("opens");
    commit(
        &store,
        vec![Op::SaveSession(StoredSession::new("s", NEVER_EXPIRES))],
    );
    let mut result = Ok(());
    for seq in 0..200u64 {
        let msg = StoredMessage::new("t", vec![1u8; 32 * 1024], QoS::AtLeastOnce, false);
        result = store.enqueue("s", seq, msg).wait();
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(StoreError::Full { .. })), "{result:?}");
}

#[test]
fn corrupt_file_is_refused_with_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(DB_FILE);
    std::fs::write(&file, vec![0xA5u8; 8192]).expect("write garbage");
    let err = SqliteStore::open(dir.path(), SqliteOptions::default()).expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn damaged_pages_in_a_real_database_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = sqlite(dir.path());
        every_record(&store);
        for seq in 0..200u64 {
            let msg = StoredMessage::new("t", vec![7u8; 500], QoS::AtLeastOnce, false);
            store
                .enqueue("dev-1", seq + 100, msg)
                .wait()
                .expect("commit");
        }
    }
    let file = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&file).expect("read db");
    assert!(bytes.len() > 8192);
    // Keep the header page, overwrite the next pages' b-tree headers.
    for b in &mut bytes[4096..8192] {
        *b = 0x5A;
    }
    std::fs::write(&file, &bytes).expect("write damaged db");
    let err = SqliteStore::open(dir.path(), SqliteOptions::default()).expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn unwritable_data_folder_is_reported_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where the folder should be: creating the folder fails even as root.
    let blocked = dir.path().join("data");
    std::fs::write(&blocked, b"not a folder").expect("write");
    let err =
        SqliteStore::open(&blocked.join("inner"), SqliteOptions::default()).expect_err("refused");
    assert!(matches!(err, StoreError::Unwritable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&blocked.display().to_string()),
        "{err}"
    );
    assert_eq!(err.reason_code(), ReasonCode::UNSPECIFIED_ERROR);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sqlite(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump version");
    drop(conn);
    let err = SqliteStore::open(dir.path(), SqliteOptions::default()).expect_err("refused");
    assert!(
        matches!(err, StoreError::UnsupportedSchema { .. }),
        "{err:?}"
    );
}

#[test]
fn a_second_broker_cannot_open_the_same_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = sqlite(dir.path());
    commit(&first, vec![Op::SaveSession(StoredSession::new("s", 10))]);
    let second = SqliteStore::open(dir.path(), SqliteOptions::default());
    assert!(second.is_err(), "second open succeeded");
    drop(first);
    assert!(SqliteStore::open(dir.path(), SqliteOptions::default()).is_ok());
}

#[test]
fn periodic_sync_keeps_commits_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions {
        sync: SyncPolicy::Periodic,
        sync_interval: Duration::from_millis(20),
        max_size_mb: None,
    };
    let expected = {
        let store = SqliteStore::open(dir.path(), options).expect("opens");
        let expected = every_record(&store);
        store.sync().wait().expect("sync");
        // Let a periodic checkpoint run too.
        std::thread::sleep(Duration::from_millis(50));
        expected
    };
    let store = SqliteStore::open(dir.path(), options).expect("reopens");
    assert_eq!(store.load(now()).expect("loads"), expected);
}

#[test]
fn open_from_config_picks_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = crate::config::PersistenceConfig {
        enabled: false,
        ..Default::default()
    };
    let memory = open(&config, dir.path()).expect("memory store");
    memory
        .set_retained(StoredMessage::new("t", &b"x"[..], QoS::AtMostOnce, true))
        .wait()
        .expect("commit");
    assert!(!dir.path().join("data").exists());
    config.enabled = true;
    let store = open(&config, dir.path()).expect("sqlite store");
    store
        .set_retained(StoredMessage::new("t", &b"x"[..], QoS::AtMostOnce, true))
        .wait()
        .expect("commit");
    assert!(dir.path().join("data").join(DB_FILE).exists());
}

#[test]
fn persistence_config_reads_sync_policy_and_size_cap() {
    let config: crate::config::PersistenceConfig = toml::from_str(
        "enabled = true\npath = \"d\"\nsync = \"periodic\"\nsync_interval_ms = 250\nmax_size_mb = 64\n",
    )
    .expect("parses");
    assert_eq!(config.sync, SyncPolicy::Periodic);
    assert_eq!(config.sync_interval_ms, 250);
    assert_eq!(config.max_size_mb, Some(64));
    let defaults: crate::config::PersistenceConfig = toml::from_str("").expect("parses");
    assert_eq!(defaults.sync, SyncPolicy::Always);
    assert_eq!(defaults.max_size_mb, None);
    assert!(toml::from_str::<crate::config::PersistenceConfig>("sync = \"never\"").is_err());
}

/// Commit rates of the two sync policies: one client waiting for each commit, and 32
/// concurrent clients. Run with
/// `cargo test -p waspmq --release --lib persistence::tests::commit_rate -- --ignored --nocapture`.
#[test]
#[ignore]
fn commit_rate_always_vs_periodic() {
    for sync in [SyncPolicy::Always, SyncPolicy::Periodic] {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SqliteOptions {
            sync,
            sync_interval: Duration::from_millis(1000),
            max_size_mb: None,
        };
        let store = Arc::new(SqliteStore::open(dir.path(), options).expect("opens"));
        commit(
            &*store,
            vec![Op::SaveSession(StoredSession::new("s", NEVER_EXPIRES))],
        );
        let msg = StoredMessage::new("bench/t", vec![0u8; 64], QoS::AtLeastOnce, false);

        let n = 1000u64;
        let start = Instant::now();
        for seq in 0..n {
            store.enqueue("s", seq, msg.clone()).wait().expect("commit");
        }
        let sequential = n as f64 / start.elapsed().as_secs_f64();

        let before = store.stats();
        let start = Instant::now();
        let threads: Vec<_> = (0..32u64)
            .map(|t| {
                let store = store.clone();
                let msg = msg.clone();
                std::thread::spawn(move || {
                    for i in 0..500u64 {
                        let seq = 1_000_000 + t * 1000 + i;
                        store.enqueue("s", seq, msg.clone()).wait().expect("commit");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let elapsed = start.elapsed().as_secs_f64();
        let after = store.stats();
        let commits = after.commits - before.commits;
        let transactions = after.transactions - before.transactions;
        println!(
            "sync={sync:?}: 1 client {sequential:.0} commits/s; 32 clients {:.0} commits/s \
             ({commits} commits in {transactions} transactions)",
            commits as f64 / elapsed
        );
    }
}
