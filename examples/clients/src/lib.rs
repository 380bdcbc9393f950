//! Shared bits of the sample clients: where the broker is (`MQTT_HOST`, `MQTT_PORT`, default
//! localhost:1883, as the seed's clients hard-coded it).

use std::time::Duration;

pub fn broker_host() -> String {
    std::env::var("MQTT_HOST").unwrap_or_else(|_| "localhost".to_owned())
}

pub fn broker_port() -> u16 {
    std::env::var("MQTT_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1883)
}

/// Seconds between readings (`PUBLISH_INTERVAL`, default 5 as in the seed).
pub fn publish_interval() -> Duration {
    let secs = std::env::var("PUBLISH_INTERVAL")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs.max(0.01))
}
