//! paho-mqtt (Python) against the broker: the examples' publisher and subscriber pair (paho-mqtt
//! 2.x) over TCP and over WebSocket, and the older paho-mqtt 1.6.1 with MQTT 3.1.1 (installed by
//! scripts/test.sh into tests/python/.deps/paho-mqtt-1.6.1) over TCP and over WebSocket on `/`.

use std::net::SocketAddr;

use crate::external::{python_script, Tool, TOOL_WAIT};
use crate::support::{repo_root, Broker, TCP_ONLY, WAIT};

fn tcp_and_ws_broker() -> Broker {
    Broker::with_config(&format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.ws]\ntype = \"ws\"\nbind = \"127.0.0.1:0\"\n"
    ))
}

/// Runs examples/python/subscriber.py and publisher.py (paho-mqtt 2.x) against `addr` with
/// the given transport; the subscriber must print the seed's `Received data from` line.
fn example_pair(broker: &Broker, addr: SocketAddr, transport: &str, ws_path: &str) {
    let endpoint = |command: &mut std::process::Command| {
        command
            .env("MQTT_HOST", addr.ip().to_string())
            .env("MQTT_PORT", addr.port().to_string())
            .env("MQTT_TRANSPORT", transport)
            .env("MQTT_WS_PATH", ws_path);
    };
    let mut sub_command = python_script("examples/python/subscriber.py");
    endpoint(&mut sub_command);
    let subscriber = Tool::spawn("examples/python/subscriber.py", &mut sub_command);
    subscriber.expect_line("Connected to broker successfully", TOOL_WAIT);

    // The subscriber subscribes from its on_connect callback without waiting for the SUBACK,
    // so the publisher keeps publishing (every 200 ms) until a reading comes through.
    let mut pub_command = python_script("examples/python/publisher.py");
    endpoint(&mut pub_command);
    pub_command
        .env("PUBLISH_INTERVAL", "0.2")
        .env("PUBLISH_COUNT", "0");
    let publisher = Tool::spawn("examples/python/publisher.py", &mut pub_command);
    publisher.expect_line("Published: {", TOOL_WAIT);

    let line = subscriber.expect_line("Received data from iot/sensors/temperature: {", TOOL_WAIT);
    for field in [
        "'sensor_id': 'sensor_001'",
        "'temperature': 25.4",
        "'humidity': 60.2",
        "'timestamp': ",
    ] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
    for client in ["dashboard", "sensor_001"] {
        assert!(
            broker
                .log
                .wait_for(&format!("Client connected: {client},"), WAIT)
                .is_some(),
            "{client} not logged:\n{}",
            broker.dump_log()
        );
    }
}

#[test]
fn paho2_example_publisher_and_subscriber_over_tcp() {
    let broker = tcp_and_ws_broker();
    example_pair(&broker, broker.addr(), "tcp", "/mqtt");
}

#[test]
fn paho2_example_publisher_and_subscriber_over_websocket() {
    let broker = tcp_and_ws_broker();
    example_pair(&broker, broker.listener("ws"), "websockets", "/mqtt");
}

/// tests/python/paho1_roundtrip.py with paho-mqtt 1.6.1 on PYTHONPATH.
fn paho1_roundtrip(addr: SocketAddr, transport: &str, ws_path: &str) -> String {
    let paho1 = repo_root().join("tests/python/.deps/paho-mqtt-1.6.1");
    assert!(
        paho1.join("paho/mqtt/client.py").is_file(),
        "{} is missing: scripts/test.sh installs it with \
         `pip install --target tests/python/.deps/paho-mqtt-1.6.1 paho-mqtt==1.6.1`",
        paho1.display()
    );
    Tool::run(
        "tests/python/paho1_roundtrip.py",
        python_script("tests/python/paho1_roundtrip.py")
            .env("PYTHONPATH", &paho1)
            .env("MQTT_HOST", addr.ip().to_string())
            .env("MQTT_PORT", addr.port().to_string())
            .env("MQTT_TRANSPORT", transport)
            .env("MQTT_WS_PATH", ws_path)
            .env("TIMEOUT_SECS", TOOL_WAIT.as_secs().to_string()),
        TOOL_WAIT + WAIT,
    )
}

#[test]
fn paho1_mqtt_3_1_1_qos1_round_trip_over_tcp() {
    let broker = tcp_and_ws_broker();
    let output = paho1_roundtrip(broker.addr(), "tcp", "/mqtt");
    assert!(
        output.contains("Connected with paho-mqtt 1.6.1 over tcp"),
        "{output}"
    );
    assert!(
        output.contains("Received data from iot/sensors/temperature: {'sensor_id': 'sensor_paho1'"),
        "{output}"
    );
    assert!(output.contains("(QoS 1)"), "{output}");
}

#[test]
fn paho1_mqtt_3_1_1_qos1_round_trip_over_websocket_root_path() {
    let broker = tcp_and_ws_broker();
    let output = paho1_roundtrip(broker.listener("ws"), "websockets", "/");
    assert!(
        output.contains("Connected with paho-mqtt 1.6.1 over websockets"),
        "{output}"
    );
    assert!(
        output.contains("Received data from iot/sensors/temperature: {'sensor_id': 'sensor_paho1'"),
        "{output}"
    );
}

#[test]
fn paho2_example_pair_over_the_default_ws_listener_placed_by_mqtt_ws_bind() {
    // The seed's way: no listener in the config, only the environment moves the defaults.
    let broker = Broker::in_dir(
        tempfile::tempdir().expect("temp dir"),
        "sys_interval = 0\n",
        &[
            ("MQTT_BIND_ADDRESS", "127.0.0.1:0"),
            ("MQTT_WS_BIND", "127.0.0.1:0"),
        ],
    );
    example_pair(&broker, broker.listener("ws"), "websockets", "/mqtt");
}
