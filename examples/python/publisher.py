"""The seed's clients/publisher.py for paho-mqtt 2.x: sensor_001 publishes a JSON reading to
iot/sensors/temperature every 5 seconds.

Environment: MQTT_HOST (localhost), MQTT_PORT (1883), MQTT_TRANSPORT (tcp | websockets),
MQTT_WS_PATH (/mqtt), PUBLISH_INTERVAL (5), PUBLISH_COUNT (0 = forever).
"""
import json
import os
import time

import paho.mqtt.client as mqtt

host = os.getenv("MQTT_HOST", "localhost")
port = int(os.getenv("MQTT_PORT", "1883"))
transport = os.getenv("MQTT_TRANSPORT", "tcp")
interval = float(os.getenv("PUBLISH_INTERVAL", "5"))
count = int(os.getenv("PUBLISH_COUNT", "0"))

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sensor_001", transport=transport)
if transport == "websockets":
    client.ws_set_options(path=os.getenv("MQTT_WS_PATH", "/mqtt"))
client.connect(host, port)
client.loop_start()

sent = 0
while count == 0 or sent < count:
    data = {
        "sensor_id": "sensor_001",
        "temperature": 25.4,
        "humidity": 60.2,
        "timestamp": time.time(),
    }
    client.publish("iot/sensors/temperature", json.dumps(data)).wait_for_publish(10)
    print(f"Published: {json.dumps(data)}", flush=True)
    sent += 1
    time.sleep(interval)

client.disconnect()
client.loop_stop()
