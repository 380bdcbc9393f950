//! The plugin sandbox through the real binary: a plugin written with plain Rust `std`
//! (plugins/testing/sandbox-probe) tries to read the broker's environment, its config file and
//! /etc/passwd, list folders, create a file and open a TCP connection, both in `init` and
//! inside a hook. Every attempt must fail, and the broker must keep serving clients.

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;

use crate::plugins::{plugin, toml_path};
use crate::support::{Broker, V5, WAIT};

/// A variable set in the broker's environment that the plugin must not see.
const SECRET_VAR: &str = "WASPMQ_SANDBOX_PROBE_SECRET";

#[tokio::test]
async fn plugin_cannot_read_env_files_folders_or_open_connections_and_the_broker_keeps_serving() {
    // Something to connect to: if the sandbox let the plugin out, this listener would see it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_addr = trap.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_file = dir.path().join("broker.toml");
    let escape_file = dir.path().join("escaped.txt");
    let toml = format!(
        "sys_interval = 0\n{}\n[[plugins]]\nname = \"sandbox-probe\"\npath = \"{}\"\nrequired = true\non_error = \"deny\"\n[plugins.config]\nenv = \"{SECRET_VAR}\"\nfiles = [\"/etc/passwd\", \"{}\", \"broker.toml\"]\ndirs = [\"/\", \".\", \"{}\"]\nwrite = \"{}\"\nconnect = \"{trap_addr}\"\n",
        crate::support::TCP_ONLY,
        toml_path(&plugin("sandbox_probe")),
        toml_path(&config_file),
        toml_path(dir.path()),
        toml_path(&escape_file),
    );
    let broker = Broker::in_dir(dir, &toml, &[(SECRET_VAR, "do-not-leak")]);

    // init: every probe logged as blocked, none escaped.
    let summary = broker
        .log
        .wait_for("sandbox-probe: init tried", WAIT)
        .expect("the probe's summary line");
    assert!(
        summary.contains("tried 10 escapes, 0 got through"),
        "{summary}\n{}",
        broker.dump_log()
    );
    // What the plugin saw, for `--nocapture` readers.
    for line in broker.log.lines() {
        if line.contains("sandbox-probe: ") {
            println!("{line}");
        }
    }
    assert_eq!(broker.log.count("ESCAPED"), 0, "{}", broker.dump_log());
    assert!(broker.log.count("blocked") >= 10, "{}", broker.dump_log());

    // Inside a hook: each kind of probe answers 0x87 (every attempt blocked).
    let mut client = V5::connect(broker.addr(), "probe-client").await;
    for kind in ["env", "file", "dir", "write", "connect"] {
        client
            .client
            .publish(format!("probe/{kind}"), QoS::AtLeastOnce, false, "x")
            .await
            .expect("publish queued");
        let reason = client
            .packet(WAIT, |p| match p {
                Packet::PubAck(ack) => Some(ack.reason),
                _ => None,
            })
            .await
            .expect("PUBACK");
        assert_eq!(
            format!("{reason:?}"),
            "NotAuthorized",
            "probe/{kind} (0x87 = blocked, Success = escaped)\n{}",
            broker.dump_log()
        );
    }
    assert_eq!(broker.log.count("ESCAPED"), 0, "{}", broker.dump_log());
    assert!(
        !broker.log.lines().iter().any(|l| l.contains("do-not-leak")),
        "the secret reached the log"
    );
    assert!(!escape_file.exists(), "the plugin created a file");
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin opened a TCP connection"
    );

    // The broker keeps serving: an ordinary PUBLISH (outside the probe's filters) is routed.
    let mut listener = V5::connect(broker.addr(), "probe-listener").await;
    listener.subscribe("chat/#", QoS::AtLeastOnce).await;
    client
        .client
        .publish("chat/room", QoS::AtLeastOnce, false, "still here")
        .await
        .expect("publish queued");
    let got = listener.publish(WAIT).await.expect("the chat message");
    assert_eq!(got.topic.as_ref(), b"chat/room");
    assert_eq!(got.payload.as_ref(), b"still here");
    assert_eq!(
        broker.log.count("plugin call failed"),
        0,
        "a probe trapped instead of failing cleanly"
    );
    client.disconnect().await;
    listener.disconnect().await;
}
