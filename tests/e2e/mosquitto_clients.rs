//! Debian's `mosquitto-clients` against the broker: `mosquitto_sub -t 'iot/sensors/#' -v` sees
//! what `mosquitto_pub` sends, over TCP in MQTT 3.1.1 and 5.0, over TLS trusting a test CA, and
//! over mutual TLS where the client certificate's CN becomes the username.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::external::{toml_path, Pki, Tool, TOOL_WAIT};
use crate::support::{Broker, TCP_ONLY, WAIT};

const READING: &str = r#"{"sensor_id": "sensor_001", "temperature": 25.4, "humidity": 60.2}"#;

/// Host, port, protocol version and TLS options shared by `mosquitto_sub` and `mosquitto_pub`.
fn mosquitto(program: &str, host: &str, addr: SocketAddr, version: &str, tls: &[&Path]) -> Command {
    // Line-buffered stdout: the test reacts to `received SUBACK` while the program still runs.
    let mut command = Command::new("stdbuf");
    command
        .args(["-oL", program])
        .args(["-h", host, "-p", &addr.port().to_string(), "-V", version])
        .arg("-d");
    let mut tls = tls.iter();
    if let Some(ca) = tls.next() {
        command.arg("--cafile").arg(ca);
    }
    if let (Some(cert), Some(key)) = (tls.next(), tls.next()) {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    command
}

/// `mosquitto_sub` waits for one message on `iot/sensors/#`; once its SUBACK is in,
/// `mosquitto_pub` sends a reading at QoS 1; the subscriber prints `topic payload` and exits.
fn sub_sees_pub(host: &str, addr: SocketAddr, version: &str, tls: &[&Path], sub_id: &str) {
    let mut sub = Tool::spawn(
        "mosquitto_sub",
        mosquitto("mosquitto_sub", host, addr, version, tls).args([
            "-i",
            sub_id,
            "-t",
            "iot/sensors/#",
            "-v",
            "-C",
            "1",
            "-W",
            "60",
        ]),
    );
    sub.expect_line("received SUBACK", TOOL_WAIT);
    Tool::run(
        "mosquitto_pub",
        mosquitto("mosquitto_pub", host, addr, version, tls).args([
            "-i",
            &format!("{sub_id}-pub"),
            "-t",
            "iot/sensors/temperature",
            "-q",
            "1",
            "-m",
            READING,
        ]),
        TOOL_WAIT,
    );
    let output = sub.expect_success(TOOL_WAIT);
    let line = format!("iot/sensors/temperature {READING}");
    assert!(
        output.lines().any(|l| l == line),
        "mosquitto_sub did not print {line:?}:\n{output}"
    );
}

#[test]
fn mosquitto_sub_receives_mosquitto_pub_over_tcp_mqtt_3_1_1() {
    let broker = Broker::start();
    sub_sees_pub("127.0.0.1", broker.addr(), "mqttv311", &[], "mosq-sub-311");
    assert!(
        broker
            .log
            .wait_for("Client connected: mosq-sub-311", WAIT)
            .is_some(),
        "{}",
        broker.dump_log()
    );
}

#[test]
fn mosquitto_sub_receives_mosquitto_pub_over_tcp_mqtt_5() {
    let broker = Broker::start();
    sub_sees_pub("127.0.0.1", broker.addr(), "mqttv5", &[], "mosq-sub-5");
}

fn tls_broker(pki: &Pki, mutual: bool) -> Broker {
    let (cert, key) = pki.server();
    let mut config = format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.secure]\ntype = \"tls\"\nbind = \"127.0.0.1:0\"\n\
         certfile = {}\nkeyfile = {}\n",
        toml_path(&cert),
        toml_path(&key)
    );
    if mutual {
        config.push_str(&format!(
            "cafile = {}\nrequire_certificate = true\nuse_identity_as_username = true\n",
            toml_path(&pki.ca_path())
        ));
    }
    Broker::with_config(&config)
}

#[test]
fn mosquitto_clients_over_tls_trust_the_test_ca() {
    let pki = Pki::new();
    let broker = tls_broker(&pki, false);
    let ca = pki.ca_path();
    sub_sees_pub(
        "localhost",
        broker.listener("secure"),
        "mqttv311",
        &[&ca],
        "tls-sub-311",
    );
    sub_sees_pub(
        "localhost",
        broker.listener("secure"),
        "mqttv5",
        &[&ca],
        "tls-sub-5",
    );
}

#[test]
fn mutual_tls_client_certificate_cn_becomes_the_username() {
    let pki = Pki::new();
    let broker = tls_broker(&pki, true);
    let ca = pki.ca_path();
    let (cert, key) = pki.client("sensor-gateway-7");
    sub_sees_pub(
        "localhost",
        broker.listener("secure"),
        "mqttv5",
        &[&ca, &cert, &key],
        "mtls-sub",
    );
    let line = broker
        .log
        .wait_for("Client connected: mtls-sub,", WAIT)
        .unwrap_or_else(|| panic!("no connect line:\n{}", broker.dump_log()));
    assert!(line.contains("Username: sensor-gateway-7"), "{line}");

    // Without a client certificate the handshake is refused: mosquitto_pub fails.
    let mut anonymous = Tool::spawn(
        "mosquitto_pub without a certificate",
        mosquitto(
            "mosquitto_pub",
            "localhost",
            broker.listener("secure"),
            "mqttv5",
            &[&ca],
        )
        .args([
            "-i",
            "no-cert",
            "-t",
            "iot/sensors/temperature",
            "-m",
            READING,
        ]),
    );
    let status = anonymous.wait_exit(TOOL_WAIT).expect("mosquitto_pub exits");
    assert!(
        !status.success(),
        "accepted without a certificate:\n{}",
        anonymous.output()
    );
    assert!(
        broker.log.count("Client connected: no-cert") == 0,
        "{}",
        broker.dump_log()
    );
}

#[test]
fn sighup_reloads_the_tls_certificate_without_dropping_a_connected_mosquitto_sub() {
    let old_ca = Pki::new();
    let broker = tls_broker(&old_ca, false);
    let secure = broker.listener("secure");
    let old_trust = old_ca.ca_path();
    let mut sub = Tool::spawn(
        "mosquitto_sub",
        mosquitto(
            "mosquitto_sub",
            "localhost",
            secure,
            "mqttv311",
            &[&old_trust],
        )
        .args([
            "-i",
            "reload-sub",
            "-t",
            "iot/sensors/#",
            "-v",
            "-C",
            "1",
            "-W",
            "120",
        ]),
    );
    sub.expect_line("received SUBACK", TOOL_WAIT);

    // A certificate from another CA replaces the files the listener was configured with.
    let new_ca = Pki::new();
    let (new_cert, new_key) = new_ca.server();
    let (cert, key) = (
        old_ca.dir.path().join("server.crt"),
        old_ca.dir.path().join("server.key"),
    );
    std::fs::copy(&new_cert, &cert).expect("replace certificate");
    std::fs::copy(&new_key, &key).expect("replace key");
    broker.signal("HUP");
    assert!(
        broker.log.wait_for("SIGHUP", WAIT).is_some(),
        "{}",
        broker.dump_log()
    );

    // New connections get the new certificate (polled: the reload follows the log line).
    let new_trust = new_ca.ca_path();
    let publish = |trust: &Path, id: &str| {
        let mut publisher = Tool::spawn(
            "mosquitto_pub",
            mosquitto("mosquitto_pub", "localhost", secure, "mqttv311", &[trust]).args([
                "-i",
                id,
                "-t",
                "iot/sensors/temperature",
                "-q",
                "1",
                "-m",
                READING,
            ]),
        );
        publisher
            .wait_exit(TOOL_WAIT)
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + TOOL_WAIT;
    let mut attempt = 0;
    while !publish(&new_trust, &format!("reload-pub-{attempt}")) {
        attempt += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served:\n{}",
            broker.dump_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !publish(&old_trust, "stale-trust-pub"),
        "the old certificate is still served"
    );

    // The subscriber connected before the reload is still there and gets the reading.
    let output = sub.expect_success(TOOL_WAIT);
    let line = format!("iot/sensors/temperature {READING}");
    assert!(output.lines().any(|l| l == line), "{output}");
    // One connection throughout (libmosquitto would have reconnected after a drop), closed by
    // the subscriber's own DISCONNECT once it had its message.
    assert_eq!(
        broker.log.count("Client connected: reload-sub,"),
        1,
        "{}",
        broker.dump_log()
    );
    let closed = broker
        .log
        .wait_for("Client disconnected: reload-sub,", WAIT)
        .unwrap_or_else(|| panic!("no disconnect line:\n{}", broker.dump_log()));
    assert!(closed.contains("normal disconnect"), "{closed}");
}
