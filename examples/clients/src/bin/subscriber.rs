//! The seed's `clients/subscriber.py`: the `dashboard` client subscribes to `iot/sensors/#` and
//! prints `Received data from <topic>: <payload>` for every reading.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use waspmq_examples::{broker_host, broker_port};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = MqttOptions::new("dashboard", broker_host(), broker_port());
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                println!("Connected to broker successfully");
                client.subscribe("iot/sensors/#", QoS::AtMostOnce).await?;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let payload = String::from_utf8_lossy(&publish.payload);
                let shown = serde_json::from_str::<serde_json::Value>(&payload)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| payload.into_owned());
                println!("Received data from {}: {shown}", publish.topic);
            }
            Ok(_) => {}
            Err(e) => anyhow::bail!("connection to the broker lost: {e}"),
        }
    }
}
