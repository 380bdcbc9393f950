//! The Rust sample clients (examples/clients, rumqttc): `subscriber` prints the readings that
//! `publisher` sends. Cargo only gives tests the binaries of their own package, so these are the
//! ones `cargo build -p waspmq-examples --bins` put next to this test binary's folder
//! (scripts/test.sh builds them before running the tests).

use std::path::PathBuf;
use std::process::Command;

use crate::external::{Tool, TOOL_WAIT};
use crate::support::{Broker, WAIT};

/// `<target>/debug/<name>`: this test runs from `<target>/debug/deps/e2e-<hash>`.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .expect("target folder");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p waspmq-examples --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

#[test]
fn rust_example_subscriber_prints_what_the_rust_example_publisher_sends() {
    let broker = Broker::start();
    let endpoint = |name: &str| {
        let mut command = Command::new(example_binary(name));
        command
            .env("MQTT_HOST", broker.addr().ip().to_string())
            .env("MQTT_PORT", broker.addr().port().to_string());
        command
    };
    let subscriber = Tool::spawn("examples subscriber", &mut endpoint("subscriber"));
    subscriber.expect_line("Connected to broker successfully", TOOL_WAIT);
    // It subscribes after its CONNACK without waiting for the SUBACK: publish until one arrives.
    let publisher = Tool::spawn(
        "examples publisher",
        endpoint("publisher").env("PUBLISH_INTERVAL", "0.2"),
    );
    publisher.expect_line("Published: {", TOOL_WAIT);
    let line = subscriber.expect_line("Received data from iot/sensors/temperature: {", TOOL_WAIT);
    for field in [
        "\"sensor_id\":\"sensor_001\"",
        "\"temperature\":25.4",
        "\"humidity\":60.2",
    ] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
    for client in ["dashboard", "sensor_001"] {
        assert!(
            broker
                .log
                .wait_for(&format!("Client connected: {client},"), WAIT)
                .is_some(),
            "{}",
            broker.dump_log()
        );
    }
}
