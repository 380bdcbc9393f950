"""paho-mqtt 1.6.x (the 1.x callback API) with MQTT 3.1.1: subscribe to iot/sensors/# at QoS 1,
publish one sensor reading at QoS 1 once the SUBACK is in, and print it when it comes back.

Run with PYTHONPATH pointing at a folder holding paho-mqtt 1.6.1 (scripts/test.sh installs it
into tests/python/.deps/paho-mqtt-1.6.1). Environment: MQTT_HOST, MQTT_PORT, MQTT_TRANSPORT
(tcp | websockets), MQTT_WS_PATH (/mqtt). Exits 0 after the round trip, 1 on timeout or error.
"""
import json
import os
import sys
import threading

import paho.mqtt
import paho.mqtt.client as mqtt

if not paho.mqtt.__version__.startswith("1."):
    sys.exit(f"expected paho-mqtt 1.x, found {paho.mqtt.__version__}")

host = os.getenv("MQTT_HOST", "localhost")
port = int(os.getenv("MQTT_PORT", "1883"))
transport = os.getenv("MQTT_TRANSPORT", "tcp")
done = threading.Event()
failure = []
reading = {"sensor_id": "sensor_paho1", "temperature": 25.4, "humidity": 60.2}


def on_connect(client, userdata, flags, rc):
    if rc != 0:
        failure.append(f"CONNACK return code {rc}")
        done.set()
        return
    print(f"Connected with paho-mqtt {paho.mqtt.__version__} over {transport}", flush=True)
    client.subscribe("iot/sensors/#", qos=1)


def on_subscribe(client, userdata, mid, granted_qos):
    if list(granted_qos) != [1]:
        failure.append(f"SUBACK granted {granted_qos}")
        done.set()
        return
    client.publish("iot/sensors/temperature", json.dumps(reading), qos=1)


def on_message(client, userdata, msg):
    payload = json.loads(msg.payload.decode())
    print(f"Received data from {msg.topic}: {payload} (QoS {msg.qos})", flush=True)
    if payload != reading or msg.qos != 1:
        failure.append(f"unexpected message {payload} at QoS {msg.qos}")
    done.set()


client = mqtt.Client(client_id="paho1-client", protocol=mqtt.MQTTv311, transport=transport)
if transport == "websockets":
    client.ws_set_options(path=os.getenv("MQTT_WS_PATH", "/mqtt"))
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port)
client.loop_start()
finished = done.wait(float(os.getenv("TIMEOUT_SECS", "30")))
client.disconnect()
client.loop_stop()
if not finished:
    sys.exit("timed out waiting for the round trip")
if failure:
    sys.exit("; ".join(failure))
print("DONE", flush=True)
