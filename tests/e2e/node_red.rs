//! Node-RED (npm `node-red`) against the broker: a real Node-RED on a free loopback port with a
//! temporary user folder gets examples/node-red/flow.json deployed through its admin API; the
//! Python example publisher's readings then reach the flow's MQTT-in node, its debug node prints
//! them in the seed's words, and the flow's GET /sensors/latest endpoint returns the last one.

use crate::external::{js_dir, node_script, python_publisher, Tool, TOOL_WAIT};
use crate::support::{repo_root, Broker, WAIT};

#[test]
fn node_red_flow_deployed_through_the_admin_api_receives_published_readings() {
    let broker = Broker::start();
    let user_dir = tempfile::tempdir().expect("temp dir");
    let js = js_dir();
    let node_red = Tool::spawn(
        "node-red",
        std::process::Command::new("node")
            .arg(js.join("node_modules/node-red/red.js"))
            .args(["--port", "0", "--userDir"])
            .arg(user_dir.path())
            .arg("--settings")
            .arg(js.join("node_red_settings.js"))
            .current_dir(user_dir.path()),
    );
    // `... [info] Server now running at http://127.0.0.1:41234/`
    let running = node_red.expect_line("Server now running at ", TOOL_WAIT);
    let url = running
        .rsplit("Server now running at ")
        .next()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .expect("Node-RED URL");
    node_red.expect_line("Started flows", TOOL_WAIT);

    let publisher = python_publisher(broker.addr(), "0.5");
    publisher.expect_line("Published: {", TOOL_WAIT);

    let output = Tool::run(
        "node_red_deploy.mjs",
        node_script("node_red_deploy.mjs")
            .env("NODE_RED_URL", &url)
            .env("FLOW_FILE", repo_root().join("examples/node-red/flow.json"))
            .env("MQTT_HOST", broker.addr().ip().to_string())
            .env("MQTT_PORT", broker.addr().port().to_string())
            .env("TIMEOUT_MS", TOOL_WAIT.as_millis().to_string()),
        TOOL_WAIT * 2,
    );
    assert!(output.contains("OK flow deployed"), "{output}");
    assert!(
        output.contains("OK reading reached the flow: {\"topic\":\"iot/sensors/temperature\",\"payload\":{\"sensor_id\":\"sensor_001\""),
        "{output}"
    );
    node_red.expect_line(
        "[mqtt-broker:WaspMQ] Connected to broker: node-red-sensors@mqtt://",
        TOOL_WAIT,
    );
    let debug = node_red.expect_line(
        "[debug:Dashboard] Received data from iot/sensors/temperature: {",
        TOOL_WAIT,
    );
    assert!(debug.contains("\"temperature\":25.4"), "{debug}");
    assert!(
        broker
            .log
            .wait_for("Client connected: node-red-sensors,", WAIT)
            .is_some(),
        "{}",
        broker.dump_log()
    );
}
