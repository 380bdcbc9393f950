"""paho-mqtt 2.x, MQTT 5: QoS 0/1/2 flows with the reason codes of SUBACK, PUBACK, PUBREC and
UNSUBACK. One scenario per run (see paho5_common.py); driven by tests/e2e/paho5.rs."""
from paho5_common import PUBRECS, TIMEOUT, Peer, check, expect_eq, marker, options, run


def pubrec_reason(mid):
    """The reason code of the PUBREC the broker sent for our message `mid`."""
    while True:
        got_mid, reason = PUBRECS.get(timeout=5)
        if got_mid == mid:
            return reason


def publish_qos2(peer, topic, payload):
    """A QoS 2 publish; returns (PUBREC reason, PUBCOMP reason)."""
    info = peer.client.publish(topic, payload, qos=2)
    expect_eq(info.rc, 0, "QoS 2 publish queued")
    pubcomp = peer._wait_ack(("PUBLISH", info.mid))
    return pubrec_reason(info.mid), pubcomp


def qos_levels_and_ack_reason_codes():
    """SUBACK grants the QoS asked for (0x00/0x01/0x02) [MQTT-3.9.3]; a message delivered at
    each QoS arrives once at that QoS with its payload; PUBACK and PUBREC say 0x00 (Success)
    when someone matched and 0x10 (No matching subscribers) when nobody did [MQTT-3.4.2-1]."""
    sub = Peer("paho5-qos-sub")
    sub.connected()
    for qos in (0, 1, 2):
        expect_eq(sub.subscribe(f"paho5/qos/{qos}", options(qos)), [qos], f"SUBACK for QoS {qos}")
    pub = Peer("paho5-qos-pub")
    pub.connected()
    expect_eq(pub.publish("paho5/qos/0", b"zero", qos=0), 0, "QoS 0 publish")
    expect_eq(pub.publish("paho5/qos/1", b"one", qos=1), 0, "PUBACK reason (matched)")
    expect_eq(publish_qos2(pub, "paho5/qos/2", b"two"), (0, 0), "PUBREC/PUBCOMP reasons (matched)")
    got = [(m.topic, m.payload, m.qos) for m in
           (sub.next_message("QoS 0"), sub.next_message("QoS 1"), sub.next_message("QoS 2"))]
    expect_eq(got, [("paho5/qos/0", b"zero", 0), ("paho5/qos/1", b"one", 1),
                    ("paho5/qos/2", b"two", 2)], "deliveries")

    expect_eq(pub.publish("paho5/nobody", b"x", qos=1), 0x10, "PUBACK reason (no subscriber)")
    expect_eq(publish_qos2(pub, "paho5/nobody", b"x"), (0x10, 0),
              "PUBREC/PUBCOMP reasons (no subscriber)")
    marker(pub, "paho5/qos/1")
    expect_eq([m.payload for m in sub.messages_before("paho5/qos/1")], [],
              "duplicates before the marker")
    sub.disconnect()
    pub.disconnect()
    return f"granted [0,1,2]; delivered {got}; 0x10 without subscribers"


def delivery_qos_is_the_minimum():
    """[MQTT-3.8.4-8] A message is delivered at the lower of its QoS and the subscription's:
    QoS 2 to a QoS 1 subscription arrives at QoS 1, QoS 1 to a QoS 2 subscription at QoS 1,
    QoS 2 to a QoS 0 subscription at QoS 0."""
    sub = Peer("paho5-min-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/min/s0", options(0)), [0], "SUBACK")
    expect_eq(sub.subscribe("paho5/min/s1", options(1)), [1], "SUBACK")
    expect_eq(sub.subscribe("paho5/min/s2", options(2)), [2], "SUBACK")
    pub = Peer("paho5-min-pub")
    pub.connected()
    publish_qos2(pub, "paho5/min/s1", b"2-to-1")
    pub.publish("paho5/min/s2", b"1-to-2", qos=1)
    publish_qos2(pub, "paho5/min/s0", b"2-to-0")
    got = [(m.payload, m.qos) for m in (sub.next_message("a"), sub.next_message("b"),
                                         sub.next_message("c"))]
    expect_eq(got, [(b"2-to-1", 1), (b"1-to-2", 1), (b"2-to-0", 0)], "delivered QoS")
    sub.disconnect()
    pub.disconnect()
    return f"delivered {got}"


def unsubscribe_reason_codes():
    """UNSUBACK has one reason code per filter: 0x00 for a subscription that existed, 0x11
    (No subscription existed) for one that did not [MQTT-3.11.3-1 / section 3.11.3]; after it
    the topic has no subscriber (PUBACK 0x10) and nothing more is delivered."""
    sub = Peer("paho5-unsub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/unsub/a", options(1)), [1], "SUBACK")
    expect_eq(sub.subscribe("paho5/unsub/marker", options(1)), [1], "SUBACK")
    codes = sub.unsubscribe(["paho5/unsub/a", "paho5/unsub/never"])
    expect_eq(codes, [0x00, 0x11], "UNSUBACK reason codes")
    expect_eq(sub.unsubscribe(["paho5/unsub/a"]), [0x11], "UNSUBACK for a second unsubscribe")
    pub = Peer("paho5-unsub-pub")
    pub.connected()
    expect_eq(pub.publish("paho5/unsub/a", b"late", qos=1), 0x10, "PUBACK after unsubscribe")
    marker(pub, "paho5/unsub/marker")
    expect_eq(sub.messages_before("paho5/unsub/marker"), [], "messages after unsubscribe")
    sub.disconnect()
    pub.disconnect()
    return f"UNSUBACK {codes}"


def several_filters_in_one_subscribe():
    """[MQTT-3.8.4-6] [MQTT-3.9.3-1] One SUBSCRIBE with three filters is answered by one
    SUBACK whose reason codes follow the filters' order: the QoS granted to each."""
    sub = Peer("paho5-multi")
    sub.connected()
    result, mid = sub.client.subscribe([
        ("paho5/multi/zero", options(0)),
        ("$share/g/paho5/multi/two", options(2)),
        ("paho5/multi/+/one", options(1)),
    ])
    expect_eq(result, 0, "subscribe queued")
    codes = sub._wait_ack(("SUBACK", mid))
    expect_eq(codes, [0, 2, 1], "SUBACK reason codes")
    pub = Peer("paho5-multi-pub")
    pub.connected()
    for topic in ("paho5/multi/zero", "paho5/multi/two", "paho5/multi/x/one"):
        publish_qos2(pub, topic, topic.encode())
    got = sorted((m.topic, m.qos) for m in (sub.next_message("1"), sub.next_message("2"),
                                            sub.next_message("3")))
    expect_eq(got, [("paho5/multi/two", 2), ("paho5/multi/x/one", 1), ("paho5/multi/zero", 0)],
              "deliveries")
    sub.disconnect()
    pub.disconnect()
    return f"SUBACK {codes}"


def dollar_topics():
    """[MQTT-4.7.2-1] A `#` subscription does not match topics starting with `$`; a client
    publishing to $SYS is refused with PUBACK 0x87 (Not authorized)."""
    sub = Peer("paho5-dollar")
    sub.connected()
    expect_eq(sub.subscribe("#", options(1)), [1], "SUBACK for #")
    expect_eq(sub.publish("$SYS/paho5", b"x", qos=1), 0x87, "PUBACK for a $SYS topic")
    expect_eq(sub.publish("$paho5/t", b"x", qos=1), 0x10, "PUBACK for a $ topic nobody matches")
    marker(sub, "paho5/dollar/marker")
    expect_eq([m.topic for m in sub.messages_before("paho5/dollar/marker")], [],
              "messages # received before the marker")
    sub.disconnect()
    return "# skipped $ topics; $SYS publish got 0x87"


def ordered_burst():
    """[MQTT-4.6.0-6] Topics are ordered: 300 QoS 1 and then 200 QoS 2 messages pipelined by
    paho (as many in flight as the broker's Receive Maximum allows) reach a subscriber once
    each, in the order published, at their QoS."""
    sub = Peer("paho5-burst-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/burst/#", options(2)), [2], "SUBACK")
    pub = Peer("paho5-burst-pub")
    pub.connected()
    result = {}
    for qos, count in ((1, 300), (2, 200)):
        topic = f"paho5/burst/q{qos}"
        infos = [pub.client.publish(topic, f"{qos}-{n}".encode(), qos=qos) for n in range(count)]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            check(info.is_published(), f"QoS {qos} message {info.mid} never acknowledged")
        got = [sub.next_message(f"QoS {qos} burst") for _ in range(count)]
        expect_eq([(m.topic, m.payload, m.qos) for m in got],
                  [(topic, f"{qos}-{n}".encode(), qos) for n in range(count)],
                  f"QoS {qos} burst as received")
        result[qos] = count
    marker(pub, "paho5/burst/marker")
    expect_eq(len(sub.messages_before("paho5/burst/marker")), 0, "extra copies")
    sub.disconnect()
    pub.disconnect()
    return f"in order, once each: {result}"


run({
    "ordered_burst": ordered_burst,
    "several_filters_in_one_subscribe": several_filters_in_one_subscribe,
    "dollar_topics": dollar_topics,
    "qos_levels_and_ack_reason_codes": qos_levels_and_ack_reason_codes,
    "delivery_qos_is_the_minimum": delivery_qos_is_the_minimum,
    "unsubscribe_reason_codes": unsubscribe_reason_codes,
})
