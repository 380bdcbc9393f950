"""Shared driver for the paho-mqtt 2.x MQTT 5 end-to-end scripts (tests/python/paho5_*.py).

Each script runs ONE scenario named on its command line against the broker given by the
environment (MQTT_HOST, MQTT_PORT, MQTT_TRANSPORT = tcp | websockets, MQTT_WS_PATH, TIMEOUT_SECS)
and either prints `PASS <scenario>: <what was observed>` and exits 0, or prints
`FAIL <scenario>: <what differed>` and exits 1. tests/e2e/paho5.rs starts the real broker and
runs the scripts.

`Peer` wraps one paho client (VERSION2 callbacks, protocol MQTTv5, network loop in its own
thread) and turns every callback into something a scenario can wait for: the CONNACK, the
SUBACK/UNSUBACK/PUBACK of a given message id, the next received message, the DISCONNECT.
Absence ("nothing else arrived") is never proven by sleeping alone: scenarios publish a marker
after the point of interest and check what arrived before it.
"""
import os
import queue
import socket
import sys
import threading
import time
import traceback

try:
    import paho.mqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt import _packet
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as missing:
    sys.exit(f"FAIL: paho-mqtt 2.x is not importable ({missing}): "
             "`pip install -r tests/requirements.txt` (scripts/test.sh does)")

HOST = os.getenv("MQTT_HOST", "127.0.0.1")
PORT = int(os.getenv("MQTT_PORT", "1883"))
TRANSPORT = os.getenv("MQTT_TRANSPORT", "tcp")
WS_PATH = os.getenv("MQTT_WS_PATH", "/mqtt")
# One step (a CONNACK, an acknowledgement, a delivery) may take this long on a loaded machine.
TIMEOUT = float(os.getenv("TIMEOUT_SECS", "30"))

if not paho.mqtt.__version__.startswith("2."):
    sys.exit(f"FAIL: expected paho-mqtt 2.x, found {paho.mqtt.__version__}")

# paho hands the reason code of a PUBREC to nobody (its on_publish fires on PUBCOMP), so the
# PUBREC decoder is wrapped to record what the broker sent. Observation only: the decoded
# result is returned unchanged.
PUBRECS = queue.Queue()
_decode_pubrec = _packet.decode_pubrec


def _recording_decode_pubrec(*args, **kwargs):
    result = _decode_pubrec(*args, **kwargs)
    PUBRECS.put((result.mid, int(result.reason.value) if result.reason is not None else 0))
    return result


_packet.decode_pubrec = _recording_decode_pubrec


class Failure(Exception):
    """An observation that differs from what the spec requires."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def props_of(properties):
    """The properties present in a paho Properties object, as a dict (empty when none)."""
    if properties is None:
        return {}
    found = {}
    for name in properties.names:
        compressed = name.replace(" ", "")
        if hasattr(properties, compressed):
            found[compressed] = getattr(properties, compressed)
    return found


def props(packet_type, **values):
    """A paho Properties object for `packet_type` (e.g. PacketTypes.CONNECT) with `values`."""
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def code(reason):
    """The numeric value of a paho ReasonCode (or of an int)."""
    return int(reason.value) if isinstance(reason, ReasonCode) else int(reason)


def options(qos, no_local=False, retain_as_published=False, retain_handling=0):
    return SubscribeOptions(
        qos=qos,
        noLocal=no_local,
        retainAsPublished=retain_as_published,
        retainHandling=retain_handling,
    )


class Peer:
    """One paho-mqtt 2.x MQTT 5 client whose callbacks feed queues a scenario waits on."""

    def __init__(self, client_id, manual_ack=False):
        self.client_id = client_id
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            transport=TRANSPORT,
            manual_ack=manual_ack,
        )
        if TRANSPORT == "websockets":
            self.client.ws_set_options(path=WS_PATH)
        # A scenario decides when to reconnect; paho's own retry would race with it.
        self.client.reconnect_delay_set(min_delay=3600, max_delay=3600)
        self.connacks = queue.Queue()
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        self._acks = {}
        self._acked = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_ack("SUBACK")
        self.client.on_unsubscribe = self._on_ack("UNSUBACK")
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect

    # -- callbacks (paho's network thread) ------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.put((flags, code(reason_code), props_of(properties)))

    def _on_message(self, client, userdata, message):
        self.messages.put(message)

    def _record(self, key, value):
        with self._acked:
            self._acks[key] = value
            self._acked.notify_all()

    def _on_ack(self, kind):
        def callback(client, userdata, mid, reason_codes, properties):
            self._record((kind, mid), [code(r) for r in reason_codes])

        return callback

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self._record(("PUBLISH", mid), code(reason_code))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnects.put((code(reason_code), props_of(properties)))

    # -- actions ----------------------------------------------------------------------------
    def _wait_ack(self, key):
        deadline = time.monotonic() + TIMEOUT
        with self._acked:
            while key not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"{self.client_id}: no {key[0]} for message id {key[1]}")
                self._acked.wait(left)
            return self._acks.pop(key)

    def connect(self, clean_start=True, properties=None, keepalive=60, will=None):
        """Connects and returns (session_present, reason code, CONNACK properties)."""
        if will is not None:
            topic, payload, qos, will_props = will
            self.client.will_set(topic, payload, qos=qos, retain=False, properties=will_props)
        self.client.connect(
            HOST,
            PORT,
            keepalive=keepalive,
            clean_start=clean_start,
            properties=properties,
        )
        self.client.loop_start()
        try:
            flags, reason, connack_props = self.connacks.get(timeout=TIMEOUT)
        except queue.Empty:
            raise Failure(f"{self.client_id}: no CONNACK within {TIMEOUT}s") from None
        return flags.session_present, reason, connack_props

    def connected(self, **kwargs):
        """connect(), insisting on reason code 0 (Success); returns the CONNACK properties."""
        _, reason, connack_props = self.connect(**kwargs)
        expect_eq(reason, 0, f"{self.client_id}: CONNACK reason code")
        return connack_props

    def subscribe(self, topic_filter, opts, properties=None):
        """Subscribes and returns the SUBACK reason codes."""
        result, mid = self.client.subscribe(topic_filter, options=opts, properties=properties)
        expect_eq(result, mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: subscribe queued")
        return self._wait_ack(("SUBACK", mid))

    def unsubscribe(self, filters):
        """Unsubscribes and returns the UNSUBACK reason codes."""
        result, mid = self.client.unsubscribe(filters)
        expect_eq(result, mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: unsubscribe queued")
        return self._wait_ack(("UNSUBACK", mid))

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        """Publishes and waits for the flow to complete (sent for QoS 0, PUBACK for QoS 1,
        PUBCOMP for QoS 2); returns paho's reason code (PUBACK's for QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        expect_eq(info.rc, mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: publish to {topic!r} queued")
        return self._wait_ack(("PUBLISH", info.mid))

    def next_message(self, what, timeout=None):
        try:
            return self.messages.get(timeout=TIMEOUT if timeout is None else timeout)
        except queue.Empty:
            raise Failure(f"{self.client_id}: no message ({what}) within {TIMEOUT}s") from None

    def messages_before(self, marker_topic):
        """Every message received before the next one on `marker_topic` (which is consumed)."""
        before = []
        while True:
            message = self.next_message(f"marker on {marker_topic}")
            if message.topic == marker_topic:
                return before
            before.append(message)

    def no_message_pending(self):
        return self.messages.empty()

    def next_disconnect(self, what):
        try:
            return self.disconnects.get(timeout=TIMEOUT)
        except queue.Empty:
            raise Failure(f"{self.client_id}: no disconnect ({what}) within {TIMEOUT}s") from None

    def disconnect(self, reason=None, properties=None):
        """A normal DISCONNECT (reason 0 unless given), then stops the network thread."""
        reasoncode = None
        if reason is not None:
            reasoncode = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
        self.client.disconnect(reasoncode=reasoncode, properties=properties)
        self.next_disconnect("after our DISCONNECT")
        self.client.loop_stop()

    def flush(self):
        """Returns once the broker has read everything this client sent so far (PUBACKs paho
        sends after on_message included): a QoS 1 publish queued behind them is answered."""
        reason = self.publish("paho5/flush", b"", qos=1)
        check(reason < 0x80, f"{self.client_id}: PUBACK {reason:#x} for the flush")

    def drop(self):
        """Closes the network connection without a DISCONNECT packet (the broker sees it
        drop, as when a device loses power), then stops the network thread. What was sent
        before (acknowledgements included) has reached the broker."""
        self.flush()
        self.client.loop_stop()
        sock = self.client.socket()
        check(sock is not None, f"{self.client_id}: no socket to drop")
        # For WebSocket paho wraps the socket; the TCP socket underneath is what is closed.
        raw = getattr(sock, "_socket", sock)
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raw.close()

    def stop(self):
        """Stops the network thread of a client the broker already disconnected."""
        self.client.loop_stop()


OFFLINE = "paho5/offline/"


def offline_signal(client_id):
    """A will for connect(will=...) that `go_offline` turns into a signal."""
    return (OFFLINE + client_id, b"offline", 1, None)


def go_offline(peer, watcher):
    """Disconnects `peer` (connected with `offline_signal` as its will) with DISCONNECT 0x04
    and waits until `watcher` (subscribed to paho5/offline/#) receives that will. The broker
    publishes it only after it has processed the DISCONNECT and put the session offline, so
    what is published afterwards is queued for the offline session, never sent to the
    closing connection (paho reports its own disconnect as soon as the packet is written)."""
    peer.disconnect(reason=0x04)
    signal = watcher.next_message(f"offline signal of {peer.client_id}")
    expect_eq((signal.topic, signal.payload), (OFFLINE + peer.client_id, b"offline"),
              "offline signal")


def marker(peer, topic):
    """Publishes a QoS 1 marker on `topic` from `peer` (a subscriber of `topic` then knows
    everything published before it has been routed)."""
    expect_eq(peer.publish(topic, b"marker", qos=1), 0, f"PUBACK reason for marker on {topic}")


def run(scenarios):
    """Runs the scenario named by argv[1] and reports PASS/FAIL."""
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        sys.exit(f"usage: {sys.argv[0]} <{' | '.join(scenarios)}>")
    name = sys.argv[1]
    try:
        summary = scenarios[name]()
    except Failure as failure:
        print(f"FAIL {name}: {failure}", flush=True)
        sys.exit(1)
    except Exception:  # an unexpected error is a failure too, with its traceback
        traceback.print_exc()
        print(f"FAIL {name}: unexpected error", flush=True)
        sys.exit(1)
    print(f"PASS {name}: {summary}", flush=True)
    # paho's network threads are daemons; exit without waiting on any of them.
    sys.stdout.flush()
    os._exit(0)
