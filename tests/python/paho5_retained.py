"""paho-mqtt 2.x, MQTT 5: retained messages under the subscription options Retain Handling
(0/1/2) and Retain As Published. One scenario per run (see paho5_common.py); driven by
tests/e2e/paho5.rs."""
from paho5_common import Peer, expect_eq, marker, options, run

TOPIC = "paho5/retained/t"
MARK = "paho5/retained/marker"


def retained_on_subscribe(peer, opts):
    """Subscribes TOPIC with `opts`, then returns what arrived before a marker published
    after the SUBACK (retained messages are sent with the subscription)."""
    expect_eq(peer.subscribe(TOPIC, opts), [opts.QoS], f"SUBACK for {opts}")
    marker(peer, MARK)
    return [(m.payload, m.retain) for m in peer.messages_before(MARK)]


def retain_handling():
    """Retain Handling 0 sends the retained message on every SUBSCRIBE [MQTT-3.3.1-9];
    1 only when the subscription is new [MQTT-3.3.1-10]; 2 never [MQTT-3.3.1-11]. Retained
    messages sent for a subscription carry RETAIN=1."""
    pub = Peer("paho5-rh-pub")
    pub.connected()
    expect_eq(pub.publish(TOPIC, b"kept", qos=1, retain=True), 0x10, "PUBACK (no subscriber yet)")
    seen = {}
    for handling in (0, 1, 2):
        peer = Peer(f"paho5-rh-{handling}")
        peer.connected()
        expect_eq(peer.subscribe(MARK, options(1)), [1], "SUBACK for the marker")
        first = retained_on_subscribe(peer, options(1, retain_handling=handling))
        again = retained_on_subscribe(peer, options(1, retain_handling=handling))
        seen[handling] = (first, again)
        peer.disconnect()
    expect_eq(seen[0], ([(b"kept", True)], [(b"kept", True)]), "Retain Handling 0 (new, existing)")
    expect_eq(seen[1], ([(b"kept", True)], []), "Retain Handling 1 (new, existing)")
    expect_eq(seen[2], ([], []), "Retain Handling 2 (new, existing)")

    # An empty retained payload clears it: a new RH 0 subscriber then gets nothing.
    pub.publish(TOPIC, b"", qos=1, retain=True)
    late = Peer("paho5-rh-late")
    late.connected()
    expect_eq(late.subscribe(MARK, options(1)), [1], "SUBACK for the marker")
    expect_eq(retained_on_subscribe(late, options(1)), [], "after clearing the retained message")
    late.disconnect()
    pub.disconnect()
    return f"RH0/1/2 saw {seen}"


def retain_as_published():
    """A live message published with RETAIN=1 is forwarded with RETAIN=0 unless the
    subscription set Retain As Published [MQTT-3.3.1-12], then with RETAIN=1 [MQTT-3.3.1-13];
    a non-retained message is RETAIN=0 for both."""
    plain, rap = Peer("paho5-rap-plain"), Peer("paho5-rap-on")
    for peer, flag in ((plain, False), (rap, True)):
        peer.connected()
        expect_eq(peer.subscribe("paho5/rap/#", options(1, retain_as_published=flag,
                                                        retain_handling=2)), [1], "SUBACK")
    pub = Peer("paho5-rap-pub")
    pub.connected()
    pub.publish("paho5/rap/t", b"retained", qos=1, retain=True)
    pub.publish("paho5/rap/t", b"live", qos=1, retain=False)
    marker(pub, "paho5/rap/marker")
    got = {}
    for name, peer in (("plain", plain), ("rap", rap)):
        got[name] = [(m.payload, m.retain) for m in peer.messages_before("paho5/rap/marker")]
    expect_eq(got["plain"], [(b"retained", False), (b"live", False)], "Retain As Published 0")
    expect_eq(got["rap"], [(b"retained", True), (b"live", False)], "Retain As Published 1")
    pub.publish("paho5/rap/t", b"", qos=1, retain=True)
    for peer in (plain, rap, pub):
        peer.disconnect()
    return f"{got}"


run({
    "retain_handling": retain_handling,
    "retain_as_published": retain_as_published,
})
