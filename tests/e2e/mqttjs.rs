//! MQTT.js (npm `mqtt`, run by Node) against the broker over `ws://` and `wss://` in MQTT 3.1.1
//! and 5.0 (tests/js/mqttjs_roundtrip.mjs), and the per-listener `max_connections` of a
//! WebSocket listener as MQTT.js sees it (tests/js/mqttjs_limit.mjs).

use crate::external::{node_script, toml_path, Pki, Tool, TOOL_WAIT};
use crate::support::{Broker, TCP_ONLY};

/// A broker with a `ws` listener and, when `pki` is given, a `wss` one using its certificate.
fn ws_broker(pki: Option<&Pki>) -> Broker {
    let mut config = format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.ws]\ntype = \"ws\"\nbind = \"127.0.0.1:0\"\n"
    );
    if let Some(pki) = pki {
        let (cert, key) = pki.server();
        config.push_str(&format!(
            "\n[listeners.wss]\ntype = \"wss\"\nbind = \"127.0.0.1:0\"\ncertfile = {}\nkeyfile = {}\n",
            toml_path(&cert),
            toml_path(&key)
        ));
    }
    Broker::with_config(&config)
}

/// Runs the MQTT.js round trip against `url` and checks every step reported OK.
fn roundtrip(url: &str, version: u8, pki: Option<&Pki>) -> String {
    let mut command = node_script("mqttjs_roundtrip.mjs");
    command
        .env("BROKER_URL", url)
        .env("MQTT_VERSION", version.to_string())
        .env("TIMEOUT_MS", TOOL_WAIT.as_millis().to_string());
    if let Some(pki) = pki {
        command.env("CA_FILE", pki.ca_path());
    }
    let output = Tool::run("mqttjs_roundtrip.mjs", &mut command, TOOL_WAIT * 2);
    assert!(
        output.contains("OK received iot/sensors/temperature: {\"sensor_id\":\"sensor_js\""),
        "{output}"
    );
    assert!(
        output.contains("OK received iot/sensors/blob: 102400 bytes"),
        "{output}"
    );
    assert!(output.lines().any(|l| l == "DONE"), "{output}");
    output
}

#[test]
fn mqttjs_mqtt_3_1_1_over_ws_round_trip() {
    let broker = ws_broker(None);
    let url = format!("ws://{}/mqtt", broker.listener("ws"));
    roundtrip(&url, 4, None);
    assert!(broker
        .log
        .wait_for("Client connected: mqttjs-sub-v4,", crate::support::WAIT)
        .is_some());
}

#[test]
fn mqttjs_mqtt_5_over_ws_root_path_round_trip_with_properties() {
    let broker = ws_broker(None);
    let url = format!("ws://{}/", broker.listener("ws"));
    let output = roundtrip(&url, 5, None);
    assert!(output.contains("OK v5 properties forwarded"), "{output}");
}

#[test]
fn mqttjs_mqtt_3_1_1_over_wss_trusting_the_test_ca() {
    let pki = Pki::new();
    let broker = ws_broker(Some(&pki));
    let url = format!("wss://localhost:{}/mqtt", broker.listener("wss").port());
    roundtrip(&url, 4, Some(&pki));
}

#[test]
fn mqttjs_mqtt_5_over_wss_trusting_the_test_ca() {
    let pki = Pki::new();
    let broker = ws_broker(Some(&pki));
    let url = format!("wss://localhost:{}/mqtt", broker.listener("wss").port());
    let output = roundtrip(&url, 5, Some(&pki));
    assert!(output.contains("OK v5 properties forwarded"), "{output}");
}

#[test]
fn ws_listener_over_max_connections_refuses_new_clients_and_keeps_existing_ones() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.ws]\ntype = \"ws\"\nbind = \"127.0.0.1:0\"\n\
         max_connections = 2\n"
    ));
    let url = format!("ws://{}/mqtt", broker.listener("ws"));
    let output = Tool::run(
        "mqttjs_limit.mjs",
        node_script("mqttjs_limit.mjs")
            .env("BROKER_URL", &url)
            .env("LIMIT", "2")
            .env("TIMEOUT_MS", TOOL_WAIT.as_millis().to_string()),
        TOOL_WAIT * 2,
    );
    for step in [
        "OK 2 clients connected",
        "OK over-limit client (MQTT version 5) refused",
        "OK over-limit client (MQTT version 4) refused",
        "OK existing clients unaffected",
        "OK a client that left frees its slot",
    ] {
        assert!(output.contains(step), "{step:?} missing:\n{output}");
    }
    // Counted in the broker's log as refusals, never as connections.
    for client in ["over-limit-v5", "over-limit-v4"] {
        assert!(
            broker
                .log
                .wait_for(&format!("Client refused: {client},"), crate::support::WAIT)
                .is_some(),
            "{client} refusal not logged:\n{}",
            broker.dump_log()
        );
    }
    assert_eq!(
        broker.log.count("Client connected: over-limit-"),
        0,
        "{}",
        broker.dump_log()
    );
}
