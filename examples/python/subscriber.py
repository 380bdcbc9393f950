"""The seed's clients/subscriber.py for paho-mqtt 2.x: the dashboard subscribes to
iot/sensors/# and prints every reading.

Environment: MQTT_HOST (localhost), MQTT_PORT (1883), MQTT_TRANSPORT (tcp | websockets),
MQTT_WS_PATH (/mqtt).
"""
import json
import os

import paho.mqtt.client as mqtt

host = os.getenv("MQTT_HOST", "localhost")
port = int(os.getenv("MQTT_PORT", "1883"))
transport = os.getenv("MQTT_TRANSPORT", "tcp")


def on_connect(client, userdata, flags, reason_code, properties):
    print("Connected to broker successfully", flush=True)
    client.subscribe("iot/sensors/#")


def on_message(client, userdata, msg):
    topic = msg.topic
    payload = json.loads(msg.payload.decode())
    print(f"Received data from {topic}: {payload}", flush=True)


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dashboard", transport=transport)
if transport == "websockets":
    client.ws_set_options(path=os.getenv("MQTT_WS_PATH", "/mqtt"))
client.on_connect = on_connect
client.on_message = on_message

client.connect(host, port)
client.loop_forever()
