//! The browser dashboard (examples/dashboard/index.html) in headless Chromium (Debian's
//! `chromium`, driven by npm `playwright-core`): while the Python example publisher sends
//! readings over TCP, the page, connected over WebSocket with MQTT.js, shows them and charts them.

use std::path::Path;

use crate::external::{node_script, python_publisher, Tool, TOOL_WAIT};
use crate::support::{Broker, TCP_ONLY, WAIT};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn dashboard_page_shows_live_readings_from_the_python_publisher() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: scripts/test.sh installs Debian's `chromium`"
    );
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.ws]\ntype = \"ws\"\nbind = \"127.0.0.1:0\"\n"
    ));
    let publisher = python_publisher(broker.addr(), "0.5");
    publisher.expect_line("Published: {", TOOL_WAIT);

    let screenshot = broker.path("dashboard.png");
    let output = Tool::run(
        "dashboard_check.mjs",
        node_script("dashboard_check.mjs")
            .env(
                "BROKER_WS_URL",
                format!("ws://{}/mqtt", broker.listener("ws")),
            )
            .env("CHROMIUM", CHROMIUM)
            .env("SCREENSHOT", &screenshot)
            .env("TIMEOUT_MS", TOOL_WAIT.as_millis().to_string()),
        // Browser start, two page-load attempts and the value checks, each bounded by TOOL_WAIT.
        TOOL_WAIT * 5,
    );
    assert!(
        output.contains("OK page connected to the broker"),
        "{output}"
    );
    assert!(
        output.contains("\"sensor\":\"sensor_001\",\"temperature\":\"25.4\""),
        "{output}"
    );
    assert!(output.contains("OK chart has "), "{output}");
    assert!(screenshot.is_file(), "no screenshot written:\n{output}");
    assert!(
        broker
            .log
            .wait_for("Client connected: dashboard-web-", WAIT)
            .is_some(),
        "{}",
        broker.dump_log()
    );
}
