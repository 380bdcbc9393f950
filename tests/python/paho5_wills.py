"""paho-mqtt 2.x, MQTT 5: will messages — the Will Delay Interval after a dropped connection,
no will after a normal DISCONNECT or a reconnect within the delay, the will at session end
when that comes first, and DISCONNECT 0x04 (Disconnect with Will Message). One scenario per
run (see paho5_common.py); driven by tests/e2e/paho5.rs."""
import time

from paho5_common import PacketTypes, Peer, check, expect_eq, marker, options, props, run

WILLS = "paho5/will/#"
MARK = "paho5/will/marker"


def watcher():
    peer = Peer("paho5-will-watcher")
    peer.connected()
    expect_eq(peer.subscribe(WILLS, options(1)), [1], "SUBACK")
    return peer


def with_will(client_id, delay, session_expiry):
    """A connected Peer whose will is `<client_id> gone` on paho5/will/<client_id> at QoS 1,
    with Will Delay Interval `delay` (None: absent) and a content type and user property."""
    will = props(PacketTypes.WILLMESSAGE, ContentType="text/plain",
                 UserProperty=[("reason", "test")])
    if delay is not None:
        will.WillDelayInterval = delay
    peer = Peer(client_id)
    connect = {}
    if session_expiry:
        connect["properties"] = props(PacketTypes.CONNECT, SessionExpiryInterval=session_expiry)
    peer.connected(will=(f"paho5/will/{client_id}", f"{client_id} gone".encode(), 1, will),
                   **connect)
    return peer


def expect_will(watch, client_id):
    """The next message on the watcher is `client_id`'s will, with its properties."""
    message = watch.next_message(f"will of {client_id}")
    expect_eq((message.topic, message.payload, message.qos),
              (f"paho5/will/{client_id}", f"{client_id} gone".encode(), 1), "will message")
    p = message.properties
    expect_eq(getattr(p, "ContentType", None), "text/plain", "will Content Type")
    expect_eq(getattr(p, "UserProperty", None), [("reason", "test")], "will User Property")
    check(not hasattr(p, "WillDelayInterval"), "Will Delay Interval forwarded to a subscriber")
    return message


def expect_no_will(watch, after_secs):
    """Nothing but the marker reaches the watcher once `after_secs` have passed."""
    time.sleep(after_secs)
    marker(watch, MARK)
    expect_eq([(m.topic, m.payload) for m in watch.messages_before(MARK)], [], "wills published")


def will_delay_after_a_dropped_connection():
    """[MQTT-3.1.3-9] section 3.1.3.2.2: after the connection drops, the will waits the Will
    Delay Interval (2 s) before it is published, with its properties."""
    watch = watcher()
    peer = with_will("paho5-delayed", delay=2, session_expiry=60)
    peer.drop()
    dropped = time.monotonic()
    expect_will(watch, "paho5-delayed")
    waited = time.monotonic() - dropped
    check(waited >= 1.9, f"will published {waited:.2f}s after the drop (delay 2 s)")
    watch.disconnect()
    return f"will published {waited:.1f}s after the drop"


def no_will_after_a_normal_disconnect():
    """[MQTT-3.14.4-3] [MQTT-3.1.2-10] A DISCONNECT with reason 0x00 discards the will,
    whether it has a delay (1 s) or not."""
    watch = watcher()
    for client_id, delay in (("paho5-normal-delayed", 1), ("paho5-normal-now", None)):
        peer = with_will(client_id, delay=delay, session_expiry=60)
        peer.disconnect(reason=0)
    expect_no_will(watch, after_secs=2.5)
    watch.disconnect()
    return "no will after DISCONNECT 0x00 (with and without a delay)"


def no_will_when_reconnected_within_the_delay():
    """[MQTT-3.1.3-9] A new connection to the session before the Will Delay Interval (10 s)
    has passed cancels the will."""
    watch = watcher()
    peer = with_will("paho5-comeback", delay=10, session_expiry=60)
    peer.drop()
    dropped = time.monotonic()
    back = Peer("paho5-comeback")
    session_present, reason, _ = back.connect(
        clean_start=False, properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    expect_eq((session_present, reason), (True, 0), "CONNACK of the reconnect")
    took = time.monotonic() - dropped
    check(took < 9, f"reconnecting took {took:.1f}s, too slow to prove anything")
    expect_no_will(watch, after_secs=max(0.0, 11 - took))
    # The new connection has no will: ending it normally publishes nothing either.
    back.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    expect_no_will(watch, after_secs=0.5)
    watch.disconnect()
    return f"reconnected {took:.1f}s after the drop; no will"


def will_at_session_end_before_the_delay():
    """Section 3.1.3.2.2: the will is published when the Will Delay Interval passes or the
    session ends, whichever is first: Session Expiry 1 s beats a 30 s Will Delay."""
    watch = watcher()
    peer = with_will("paho5-short-session", delay=30, session_expiry=1)
    peer.drop()
    dropped = time.monotonic()
    expect_will(watch, "paho5-short-session")
    waited = time.monotonic() - dropped
    check(0.9 <= waited < 25, f"will published {waited:.2f}s after the drop (session 1 s)")
    watch.disconnect()
    return f"will published {waited:.1f}s after the drop, at session end"


def will_published_when_clean_start_ends_the_session():
    """Section 3.1.3.2.2 [MQTT-3.1.2-4]: a reconnect with Clean Start 1 ends the old session,
    and with it the wait: the will (delay 30 s) is published at once, not cancelled."""
    watch = watcher()
    peer = with_will("paho5-restart", delay=30, session_expiry=60)
    peer.drop()
    dropped = time.monotonic()
    fresh = Peer("paho5-restart")
    session_present, reason, _ = fresh.connect(clean_start=True)
    expect_eq((session_present, reason), (False, 0), "CONNACK with Clean Start 1")
    expect_will(watch, "paho5-restart")
    waited = time.monotonic() - dropped
    check(waited < 25, f"will published {waited:.1f}s after the drop: it waited for the delay")
    fresh.disconnect()
    expect_no_will(watch, after_secs=0.5)
    watch.disconnect()
    return f"will published {waited:.1f}s after the drop, when Clean Start ended the session"


def disconnect_with_will_message_0x04():
    """Section 3.14.2.1: DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes
    the will; the connection ends cleanly on the client's side."""
    watch = watcher()
    peer = with_will("paho5-0x04", delay=None, session_expiry=0)
    peer.disconnect(reason=0x04)
    expect_will(watch, "paho5-0x04")
    marker(watch, MARK)
    expect_eq([(m.topic, m.payload) for m in watch.messages_before(MARK)], [],
              "anything after the will (a second copy?)")
    watch.disconnect()
    return "DISCONNECT 0x04 published the will once"


def keep_alive_timeout_disconnects_0x8d_and_publishes_the_will():
    """[MQTT-3.1.2-22] A client silent for 1.5 times its Keep Alive (1 s) is disconnected:
    the broker sends DISCONNECT 0x8D (Keep Alive timeout), which paho reads once its network
    loop runs again, and the will is published (no DISCONNECT came from the client)."""
    watch = watcher()
    peer = Peer("paho5-silent")
    will = props(PacketTypes.WILLMESSAGE, ContentType="text/plain",
                 UserProperty=[("reason", "test")])
    peer.connected(keepalive=1, will=("paho5/will/paho5-silent", b"paho5-silent gone", 1, will))
    silent_since = time.monotonic()
    peer.client.loop_stop()  # paho sends no PINGREQ while its loop is stopped
    # No lower bound on the wait: paho's last PINGREQ went out at some unknown point before.
    expect_will(watch, "paho5-silent")
    waited = time.monotonic() - silent_since
    peer.client.loop_start()
    reason, _ = peer.next_disconnect("the broker's DISCONNECT")
    expect_eq(reason, 0x8D, "DISCONNECT reason after the keep-alive timeout")
    peer.stop()
    watch.disconnect()
    return f"DISCONNECT 0x8D and will {waited:.1f}s after going silent"


run({
    "keep_alive_timeout_disconnects_0x8d_and_publishes_the_will":
        keep_alive_timeout_disconnects_0x8d_and_publishes_the_will,
    "will_delay_after_a_dropped_connection": will_delay_after_a_dropped_connection,
    "no_will_after_a_normal_disconnect": no_will_after_a_normal_disconnect,
    "no_will_when_reconnected_within_the_delay": no_will_when_reconnected_within_the_delay,
    "will_at_session_end_before_the_delay": will_at_session_end_before_the_delay,
    "will_published_when_clean_start_ends_the_session":
        will_published_when_clean_start_ends_the_session,
    "disconnect_with_will_message_0x04": disconnect_with_will_message_0x04,
})
