//! The seed's `clients/publisher.py`: sensor `sensor_001` publishes a JSON reading to
//! `iot/sensors/temperature` every 5 seconds.

use std::time::{SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use waspmq_examples::{broker_host, broker_port, publish_interval};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = MqttOptions::new("sensor_001", broker_host(), broker_port());
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(publish_interval());
        loop {
            ticker.tick().await;
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let data = serde_json::json!({
                "sensor_id": "sensor_001",
                "temperature": 25.4,
                "humidity": 60.2,
                "timestamp": timestamp,
            });
            if client
                .publish(
                    "iot/sensors/temperature",
                    QoS::AtMostOnce,
                    false,
                    data.to_string(),
                )
                .await
                .is_err()
            {
                break;
            }
            println!("Published: {data}");
        }
    });
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => println!("Connected to broker successfully"),
            Ok(_) => {}
            Err(e) => anyhow::bail!("connection to the broker lost: {e}"),
        }
    }
}
