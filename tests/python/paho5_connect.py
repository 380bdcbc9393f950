"""paho-mqtt 2.x, MQTT 5: CONNECT properties the client sends and CONNACK properties the broker
answers with. One scenario per run (see paho5_common.py); driven by tests/e2e/paho5.rs.

The `configured_*` scenarios expect the broker started with
    max_keepalive = 20
    [limits] receive_maximum = 50, topic_alias_maximum = 8, max_packet_size = 65536,
             max_session_expiry = 600
and the others a broker with default limits.
"""
import time

from paho5_common import (
    OFFLINE, Failure, PacketTypes, Peer, check, expect_eq, go_offline, marker, offline_signal,
    options, props, run,
)

CONNECT = PacketTypes.CONNECT


def connack_properties_default():
    """Section 3.2.2.3: a default broker announces its limits and capabilities, and nothing it
    was not asked about (no Server Keep Alive, no Session Expiry, no Assigned Client Id)."""
    peer = Peer("paho5-caps-default")
    session_present, reason, found = peer.connect(
        properties=props(CONNECT, SessionExpiryInterval=120, ReceiveMaximum=10,
                         MaximumPacketSize=65536, TopicAliasMaximum=4))
    expect_eq(reason, 0, "CONNACK reason code")
    expect_eq(session_present, False, "session present")
    expect_eq(found, {
        "ReceiveMaximum": 100,
        "RetainAvailable": 1,
        "MaximumPacketSize": 1024 * 1024,
        "TopicAliasMaximum": 16,
        "WildcardSubscriptionAvailable": 1,
        "SubscriptionIdentifierAvailable": 1,
        "SharedSubscriptionAvailable": 1,
    }, "CONNACK properties")
    peer.disconnect()
    return f"CONNACK {found}"


def configured_connack_properties():
    """The configured limits reach the CONNACK: Receive Maximum, Maximum Packet Size, Topic
    Alias Maximum (and it is enforced), a Session Expiry Interval capped to max_session_expiry
    (3.2.2.3.2) and a Server Keep Alive lowering the client's 60 s or replacing its 0, but not
    raising its 10 [MQTT-3.2.2-21]."""
    peer = Peer("paho5-caps-configured")
    found = peer.connected(keepalive=60,
                           properties=props(CONNECT, SessionExpiryInterval=3600))
    expect_eq(found, {
        "SessionExpiryInterval": 600,
        "ReceiveMaximum": 50,
        "RetainAvailable": 1,
        "MaximumPacketSize": 65536,
        "TopicAliasMaximum": 8,
        "WildcardSubscriptionAvailable": 1,
        "SubscriptionIdentifierAvailable": 1,
        "SharedSubscriptionAvailable": 1,
        "ServerKeepAlive": 20,
    }, "CONNACK properties")
    # paho adopts the Server Keep Alive [MQTT-3.2.2-21].
    expect_eq(peer.client._keepalive, 20, "keep alive paho uses after the CONNACK")
    peer.disconnect()

    # Keep alive 0 (none) is raised to the cap too; 10, under the cap, is left alone.
    for keepalive, expected in ((0, 20), (10, None)):
        other = Peer(f"paho5-caps-keepalive-{keepalive}")
        got = other.connected(keepalive=keepalive).get("ServerKeepAlive")
        expect_eq(got, expected, f"Server Keep Alive for a keep alive of {keepalive}")
        other.disconnect()

    # The configured Topic Alias Maximum is enforced: alias 8 works, 9 is DISCONNECT 0x94.
    aliased = Peer("paho5-caps-alias")
    aliased.connected()
    expect_eq(aliased.publish("paho5/caps/t", b"x", qos=1,
                              properties=props(PacketTypes.PUBLISH, TopicAlias=8)),
              0x10, "PUBACK for alias 8")
    aliased.client.publish("paho5/caps/t", b"x", qos=1,
                           properties=props(PacketTypes.PUBLISH, TopicAlias=9))
    expect_eq(aliased.next_disconnect("alias 9")[0], 0x94, "DISCONNECT reason for alias 9")
    aliased.stop()
    return f"CONNACK {found}"


def assigned_client_identifier():
    """[MQTT-3.2.2-16] An empty client id gets an Assigned Client Identifier, unique per
    session; the assigned id is a working identity (a message reaches it) and names the
    session, which a later connection with that id resumes."""
    watcher = Peer("paho5-assigned-watcher")
    watcher.connected()
    expect_eq(watcher.subscribe(OFFLINE + "#", options(1)), [1], "SUBACK")
    first, second = Peer(""), Peer("")
    # The offline signal (a will on the client's id) needs the id, known only now: the
    # first connection has no will and is dropped; its resumption carries the signal.
    one = first.connected(properties=props(CONNECT, SessionExpiryInterval=300)).get(
        "AssignedClientIdentifier")
    two = second.connected().get("AssignedClientIdentifier")
    check(isinstance(one, str) and one, f"no Assigned Client Identifier: {one!r}")
    check(isinstance(two, str) and two, f"no Assigned Client Identifier: {two!r}")
    check(one != two, f"two sessions were assigned the same id {one!r}")
    expect_eq(first.subscribe("paho5/assigned", options(1)), [1], "SUBACK")
    expect_eq(second.publish("paho5/assigned", b"to " + one.encode(), qos=1), 0, "PUBACK reason")
    message = first.next_message("on paho5/assigned")
    expect_eq(message.payload, b"to " + one.encode(), "payload")
    first.drop()

    again = Peer(one)
    session_present, reason, found = again.connect(
        clean_start=False, will=offline_signal(one),
        properties=props(CONNECT, SessionExpiryInterval=300))
    expect_eq((session_present, reason), (True, 0), f"CONNACK resuming {one!r}")
    check("AssignedClientIdentifier" not in found, "an id was assigned to a named client")
    go_offline(again, watcher)
    expect_eq(second.publish("paho5/assigned", b"queued", qos=1), 0, "PUBACK (offline session)")
    last = Peer(one)
    session_present, reason, _ = last.connect(
        clean_start=False, properties=props(CONNECT, SessionExpiryInterval=0))
    expect_eq((session_present, reason), (True, 0), "CONNACK on the second resume")
    expect_eq(last.next_message("queued for the assigned id").payload, b"queued", "payload")
    last.disconnect()
    second.disconnect()
    watcher.disconnect()
    return f"assigned {one!r} and {two!r}; {one!r} resumed twice"


def packet_over_the_brokers_maximum_is_refused():
    """[MQTT-3.2.2-15] section 4.13: a PUBLISH larger than the broker's Maximum Packet Size
    ends the connection with DISCONNECT 0x95 (Packet too large) and is not delivered."""
    sub = Peer("paho5-toolarge-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/toolarge/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-toolarge")
    maximum = pub.connected()["MaximumPacketSize"]
    pub.client.publish("paho5/toolarge/t", b"x" * maximum, qos=1)
    reason, found = pub.next_disconnect("DISCONNECT for a packet over the maximum")
    expect_eq(reason, 0x95, "DISCONNECT reason")
    pub.stop()
    marker(sub, "paho5/toolarge/marker")
    expect_eq([m.payload[:8] for m in sub.messages_before("paho5/toolarge/marker")], [],
              "messages delivered")
    sub.disconnect()
    return f"DISCONNECT 0x95 {found.get('ReasonString')!r} for a {maximum}-byte payload"


def receive_maximum():
    """[MQTT-3.3.4-9] The broker keeps at most the client's Receive Maximum (2) QoS 1
    messages unacknowledged; each PUBACK lets exactly one more through, in order, and a QoS 0
    message published after them keeps its place behind them."""
    sub = Peer("paho5-rm-sub", manual_ack=True)
    sub.connected(properties=props(CONNECT, ReceiveMaximum=2))
    expect_eq(sub.subscribe("paho5/rm/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-rm-pub")
    pub.connected()
    for n in range(1, 6):
        expect_eq(pub.publish("paho5/rm/q1", f"m{n}".encode(), qos=1), 0, "PUBACK reason")
    pub.publish("paho5/rm/marker", b"marker", qos=0)
    pending = [sub.next_message("m1"), sub.next_message("m2")]
    expect_eq([m.payload for m in pending], [b"m1", b"m2"], "first two deliveries")
    # Nothing signals "the broker is holding the rest", so absence is checked after a grace
    # period; a slow machine can only make this pass more easily, never fail it wrongly.
    time.sleep(1.0)
    if not sub.no_message_pending():
        extra = sub.next_message("the early one")
        raise Failure(f"{extra.payload!r} arrived while m1 and m2 were unacknowledged")
    seen = [m.payload for m in pending]
    while len(seen) < 5:
        acked = pending.pop(0)
        sub.client.ack(acked.mid, 1)
        released = sub.next_message(f"release after acking {acked.payload!r}")
        pending.append(released)
        seen.append(released.payload)
    expect_eq(seen, [b"m1", b"m2", b"m3", b"m4", b"m5"], "delivery order")
    for m in pending:
        sub.client.ack(m.mid, 1)
    last = sub.next_message("the QoS 0 marker")
    expect_eq((last.topic, last.qos), ("paho5/rm/marker", 0), "message after m5")
    sub.disconnect()
    pub.disconnect()
    return "window of 2 held m3..m5 until PUBACKs; order m1..m5 then the QoS 0 marker"


def maximum_packet_size():
    """[MQTT-3.1.2-25] A message larger than the client's Maximum Packet Size (512) is not
    sent to it (and the connection stays up); a smaller one after it is."""
    sub = Peer("paho5-mps-sub")
    sub.connected(properties=props(CONNECT, MaximumPacketSize=512))
    expect_eq(sub.subscribe("paho5/mps/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-mps-pub")
    pub.connected()
    pub.publish("paho5/mps/big", b"x" * 2000, qos=1)
    pub.publish("paho5/mps/small", b"fits", qos=1)
    marker(pub, "paho5/mps/marker")
    before = sub.messages_before("paho5/mps/marker")
    expect_eq([(m.topic, m.payload) for m in before], [("paho5/mps/small", b"fits")],
              "messages delivered under a 512-byte Maximum Packet Size")
    sub.disconnect()
    pub.disconnect()
    return "2000-byte message withheld, small one delivered"


def topic_alias_maximum():
    """[MQTT-3.1.2-26] With Topic Alias Maximum 2 the broker uses aliases 1..2 only, each
    alias first sent with its topic, then with an empty topic; resolving them gives back the
    published topics in order. [MQTT-3.1.2-27] A client that sets no maximum gets no alias."""
    aliased = Peer("paho5-tam-aliased")
    aliased.connected(properties=props(CONNECT, TopicAliasMaximum=2))
    plain = Peer("paho5-tam-plain")
    plain.connected()
    for peer in (aliased, plain):
        expect_eq(peer.subscribe("paho5/tam/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-tam-pub")
    pub.connected()
    topics = ["paho5/tam/a", "paho5/tam/b", "paho5/tam/c",
              "paho5/tam/a", "paho5/tam/b", "paho5/tam/a", "paho5/tam/a"]
    for n, topic in enumerate(topics):
        pub.publish(topic, f"{n}".encode(), qos=1)
    marker(pub, "paho5/tam/marker")

    # paho 2.2.0 does not resolve aliases itself: keep the map as a client must.
    aliases, resolved, used = {}, [], set()
    for message in aliased.messages_before("paho5/tam/marker"):
        alias = getattr(message.properties, "TopicAlias", None)
        topic = message.topic
        if alias is not None:
            check(1 <= alias <= 2, f"alias {alias} above the Topic Alias Maximum 2")
            used.add(alias)
            if topic:
                aliases[alias] = topic
            else:
                check(alias in aliases, f"alias {alias} used before it was set")
                topic = aliases[alias]
        check(topic, "empty topic without an alias")
        resolved.append((topic, message.payload))
    expected = [(t, f"{n}".encode()) for n, t in enumerate(topics)]
    expect_eq(resolved, expected, "resolved topics and payloads")
    check(used, "the broker used no topic alias for repeated topics")

    plain_seen = plain.messages_before("paho5/tam/marker")
    for message in plain_seen:
        check(not hasattr(message.properties, "TopicAlias"),
              f"alias sent to a client without Topic Alias Maximum on {message.topic}")
    expect_eq([(m.topic, m.payload) for m in plain_seen], expected, "plain client's messages")
    for peer in (aliased, plain, pub):
        peer.disconnect()
    return f"aliases used {sorted(used)}"


run({
    "connack_properties_default": connack_properties_default,
    "configured_connack_properties": configured_connack_properties,
    "assigned_client_identifier": assigned_client_identifier,
    "packet_over_the_brokers_maximum_is_refused": packet_over_the_brokers_maximum_is_refused,
    "receive_maximum": receive_maximum,
    "maximum_packet_size": maximum_packet_size,
    "topic_alias_maximum": topic_alias_maximum,
})
