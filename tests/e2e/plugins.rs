//! Wasm plugins through the real binary: the shipped plugins decide what clients may do, a
//! misbehaving plugin never takes the broker down, and a plugin file swapped on disk changes
//! decisions while connected clients keep going.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{repo_root, Broker, Raw, V3, V5, WAIT};

/// A built plugin (`scripts/build-plugins.sh` builds them for wasm32-wasip2).
pub(crate) fn plugin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: run scripts/build-plugins.sh",
        path.display()
    );
    path
}

pub(crate) fn toml_path(path: &std::path::Path) -> String {
    path.display().to_string().replace('\\', "/")
}

fn config(plugins: &str) -> String {
    format!("sys_interval = 0\n{}\n{plugins}", crate::support::TCP_ONLY)
}

fn taboo_config() -> String {
    config(&format!(
        "[[plugins]]\nname = \"topic-taboo\"\npath = \"{}\"\n[plugins.config]\ntopics = [\"prohibited\", \"top-secret\", \"data/classified/#\"]\n",
        toml_path(&plugin("topic_taboo"))
    ))
}

#[tokio::test]
async fn auth_anonymous_refuses_clients_without_credentials_when_configured() {
    let broker = Broker::with_config(&config(&format!(
        "[[plugins]]\nname = \"auth-anonymous\"\npath = \"{}\"\nrequired = true\n[plugins.config]\nallow_anonymous = false\n",
        toml_path(&plugin("auth_anonymous"))
    )));
    let refused = V3::try_connect_with(broker.addr(), "anon-311", |_| {}).await;
    assert!(refused.is_err(), "anonymous 3.1.1 client accepted");
    let refused5 = V5::try_connect_with(broker.addr(), "anon-5", |_| {}).await;
    let error = refused5.err().expect("anonymous v5 client refused");
    assert!(
        error.contains("NotAuthorized") || error.contains("BadUserNamePassword"),
        "{error}"
    );
    let named = V3::connect_with(broker.addr(), "named", |o| {
        o.set_credentials("alice", "pw");
    })
    .await;
    named.disconnect().await;
}

#[tokio::test]
async fn auth_anonymous_allows_clients_without_credentials_by_default() {
    let broker = Broker::with_config(&config(&format!(
        "[[plugins]]\nname = \"auth-anonymous\"\npath = \"{}\"\n",
        toml_path(&plugin("auth_anonymous"))
    )));
    let client = V3::connect(broker.addr(), "anon-ok").await;
    client.disconnect().await;
}

#[tokio::test]
async fn topic_taboo_refuses_publish_with_0x87_on_v5_and_drops_silently_on_v311() {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let broker = Broker::with_config(&taboo_config());
    let mut watcher = V3::connect(broker.addr(), "taboo-watch").await;
    watcher.subscribe("#", rumqttc::QoS::AtLeastOnce).await;

    let mut v5 = V5::connect(broker.addr(), "taboo-5").await;
    v5.client
        .publish(
            "data/classified/x",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "secret",
        )
        .await
        .expect("publish");
    let reason = v5
        .packet(WAIT, |p| match p {
            Packet::PubAck(ack) => Some(ack.reason),
            _ => None,
        })
        .await
        .expect("PUBACK");
    assert_eq!(format!("{reason:?}"), "NotAuthorized");

    let v3 = V3::connect(broker.addr(), "taboo-311").await;
    v3.client
        .publish("prohibited", rumqttc::QoS::AtLeastOnce, false, "secret")
        .await
        .expect("publish");
    v3.client
        .publish("allowed/topic", rumqttc::QoS::AtLeastOnce, false, "fine")
        .await
        .expect("publish");
    let got = watcher.publish(WAIT).await.expect("the allowed message");
    assert_eq!(got.topic, "allowed/topic", "a taboo message was routed");
    assert!(watcher.publish(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn topic_taboo_refuses_subscribe_with_0x87_on_v5_and_0x80_on_v311() {
    let broker = Broker::with_config(&taboo_config());
    let mut v3 = V3::connect(broker.addr(), "taboo-sub-311").await;
    let ack = v3
        .subscribe("data/classified/#", rumqttc::QoS::AtLeastOnce)
        .await;
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Failure]
    );
    let ack = v3.subscribe("weather/#", rumqttc::QoS::AtLeastOnce).await;
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Success(
            rumqttc::QoS::AtLeastOnce
        )]
    );

    let mut v5 = V5::connect(broker.addr(), "taboo-sub-5").await;
    let ack = v5
        .subscribe("top-secret", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await;
    assert_eq!(format!("{:?}", ack.return_codes), "[NotAuthorized]");
}

#[tokio::test]
async fn sqlite_conn_log_writes_a_row_per_connection_and_closes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("clients.db");
    let broker = Broker::in_dir(
        dir,
        &config(&format!(
            "[[plugins]]\nname = \"sqlite-conn-log\"\npath = \"{}\"\nsql = {{ connections = \"clients.db\" }}\n[plugins.config]\ndatabase = \"connections\"\n",
            toml_path(&plugin("sqlite_conn_log"))
        )),
        &[],
    );
    let live = |db: &std::path::Path| -> Option<i64> {
        let conn = rusqlite::Connection::open(db).ok()?;
        conn.query_row(
            "SELECT COUNT(*) FROM connections WHERE disconnect_time IS NULL",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    let client = V3::connect_with(broker.addr(), "logged-sensor", |o| {
        o.set_credentials("sensor-user", "pw");
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while live(&db) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "no open row; log:\n{}",
            broker.dump_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let (client_id, username, ip): (String, Option<String>, String) = conn
        .query_row(
            "SELECT client_id, username, ip_address FROM connections",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!(client_id, "logged-sensor");
    assert_eq!(username.as_deref(), Some("sensor-user"));
    assert!(ip.starts_with("127.0.0.1"), "{ip}");
    client.disconnect().await;
    let deadline = Instant::now() + WAIT;
    while live(&db) != Some(0) {
        assert!(Instant::now() < deadline, "disconnect_time never set");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn misbehaving(mode: &str, on_error: &str) -> String {
    config(&format!(
        "[[plugins]]\nname = \"misbehave\"\npath = \"{}\"\non_error = \"{on_error}\"\ntimeout_ms = 100\nmemory_mb = 16\n[plugins.config]\nmode = \"{mode}\"\n",
        toml_path(&plugin("misbehave"))
    ))
}

async fn refused_quickly(broker: &Broker, id: &str) {
    let started = Instant::now();
    let result = V5::try_connect_with(broker.addr(), id, |_| {}).await;
    assert!(
        result.is_err(),
        "{id}: the failing plugin's on_error = deny must refuse"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{id}: took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_plugin_that_loops_forever_is_cut_off_and_the_broker_keeps_serving() {
    let broker = Broker::with_config(&misbehaving("loop", "deny"));
    for i in 0..3 {
        refused_quickly(&broker, &format!("looped-{i}")).await;
    }
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(&crate::support::bytes::PINGREQ).await;
    assert!(
        raw.closed(WAIT).await,
        "the broker still frames other connections"
    );
}

#[tokio::test]
async fn a_plugin_that_traps_follows_on_error_allow() {
    let broker = Broker::with_config(&misbehaving("trap", "allow"));
    for i in 0..3 {
        let client = V3::connect(broker.addr(), &format!("trapped-{i}")).await;
        client.disconnect().await;
    }
}

#[tokio::test]
async fn a_plugin_that_allocates_without_bound_is_stopped_by_its_memory_limit() {
    let broker = Broker::with_config(&misbehaving("alloc", "deny"));
    for i in 0..2 {
        refused_quickly(&broker, &format!("hoarder-{i}")).await;
    }
}

#[tokio::test]
async fn hot_swap_changes_decisions_without_dropping_clients_and_a_broken_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live_plugin = dir.path().join("auth.wasm");
    std::fs::copy(plugin("auth_anonymous"), &live_plugin).expect("copy plugin");
    let broker = Broker::in_dir(
        dir,
        &config(
            "[[plugins]]\nname = \"auth\"\npath = \"auth.wasm\"\n[plugins.config]\nallow_anonymous = false\n",
        ),
        &[],
    );
    // A subscriber with credentials stays connected through every swap.
    let mut sub = V3::connect_with(broker.addr(), "swap-sub", |o| {
        o.set_credentials("watcher", "pw");
    })
    .await;
    sub.subscribe("swap/t", rumqttc::QoS::AtLeastOnce).await;
    let publisher = V3::connect_with(broker.addr(), "swap-pub", |o| {
        o.set_credentials("publisher", "pw");
    })
    .await;
    assert!(V3::try_connect_with(broker.addr(), "anon-before", |_| {})
        .await
        .is_err());

    // The new version: a plugin without an authenticate hook, so the broker's default
    // (anonymous allowed) decides.
    let staging = broker.path("staging.wasm");
    std::fs::copy(plugin("topic_taboo"), &staging).expect("copy");
    std::fs::rename(&staging, broker.path("auth.wasm")).expect("swap file");
    let mut sent = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        publisher
            .client
            .publish("swap/t", rumqttc::QoS::AtLeastOnce, false, sent.to_string())
            .await
            .expect("publish");
        sent += 1;
        if let Ok(client) = V3::try_connect_with(broker.addr(), "anon-after", |_| {}).await {
            client.disconnect().await;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "swap never took effect:\n{}",
            broker.dump_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..sent {
        let got = sub
            .publish(WAIT)
            .await
            .unwrap_or_else(|| panic!("message {i} lost during the swap"));
        assert_eq!(String::from_utf8_lossy(&got.payload), i.to_string());
    }

    // A broken file is refused; the version that works stays.
    std::fs::write(broker.path("staging.wasm"), b"\0asm garbage").expect("write");
    std::fs::rename(broker.path("staging.wasm"), broker.path("auth.wasm")).expect("swap file");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = V3::try_connect_with(broker.addr(), "anon-later", |_| {}).await;
    assert!(
        still.is_ok(),
        "the working version was replaced by a broken file"
    );
    assert!(broker.log.count("auth") > 0);
    publisher
        .client
        .publish("swap/t", rumqttc::QoS::AtLeastOnce, false, "after")
        .await
        .expect("publish");
    assert_eq!(
        &sub.publish(WAIT).await.expect("still subscribed").payload[..],
        b"after"
    );
}
