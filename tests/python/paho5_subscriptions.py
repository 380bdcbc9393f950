"""paho-mqtt 2.x, MQTT 5: subscription options and kinds — No Local, Subscription
Identifiers, shared subscriptions. One scenario per run (see paho5_common.py); driven by
tests/e2e/paho5.rs."""
from paho5_common import PacketTypes, Peer, check, expect_eq, marker, options, props, run


def no_local():
    """[MQTT-3.8.3-3] With No Local set, the subscriber's own messages are not sent back to it,
    while another subscriber of the same topic receives them, and the No Local subscriber
    still receives the other client's messages."""
    own = Peer("paho5-nl-own")
    own.connected()
    expect_eq(own.subscribe("paho5/nl/t", options(1, no_local=True)), [1], "SUBACK (No Local)")
    expect_eq(own.subscribe("paho5/nl/marker", options(1)), [1], "SUBACK")
    other = Peer("paho5-nl-other")
    other.connected()
    expect_eq(other.subscribe("paho5/nl/#", options(1)), [1], "SUBACK")
    own.publish("paho5/nl/t", b"from own", qos=1)
    other.publish("paho5/nl/t", b"from other", qos=1)
    marker(own, "paho5/nl/marker")
    own_saw = [m.payload for m in own.messages_before("paho5/nl/marker")]
    other_saw = [m.payload for m in other.messages_before("paho5/nl/marker")]
    expect_eq(own_saw, [b"from other"], "No Local subscriber's messages")
    expect_eq(other_saw, [b"from own", b"from other"], "other subscriber's messages")
    for peer in (own, other):
        peer.disconnect()
    return f"own saw {own_saw}, other saw {other_saw}"


def subscription_identifiers():
    """[MQTT-3.3.4-3] A delivered message carries the Subscription Identifier of the matching
    subscription; overlapping subscriptions with ids 7 and 9 yield both ids (on one copy or
    one per copy [MQTT-3.3.4-4/5]); a subscription without an id yields none; replacing a
    subscription replaces its id."""
    sub = Peer("paho5-sid")
    sub.connected()
    sid = lambda n: props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=n)
    expect_eq(sub.subscribe("paho5/sid/+", options(1), sid(7)), [1], "SUBACK id 7")
    expect_eq(sub.subscribe("paho5/sid/#", options(1), sid(9)), [1], "SUBACK id 9")
    expect_eq(sub.subscribe("paho5/plain/#", options(1)), [1], "SUBACK without id")
    pub = Peer("paho5-sid-pub")
    pub.connected()
    pub.publish("paho5/sid/a", b"both", qos=1)
    pub.publish("paho5/sid/a/b", b"hash only", qos=1)
    pub.publish("paho5/plain/x", b"no id", qos=1)
    marker(pub, "paho5/sid/marker")  # matches both: ids 7 and 9 again
    seen, marker_ids = [], []
    # The marker matches both subscriptions too: read until its ids 7 and 9 have both come,
    # on one copy or on two.
    while sorted(marker_ids) != [7, 9]:
        message = sub.next_message("sid messages")
        got = list(getattr(message.properties, "SubscriptionIdentifier", []))
        seen.append((message.topic, message.payload, sorted(got)))
        if message.topic == "paho5/sid/marker":
            marker_ids.extend(got)
    both = sorted(i for t, p, g in seen if p == b"both" for i in g)
    expect_eq(both, [7, 9], "ids on paho5/sid/a (over all copies)")
    expect_eq([g for t, p, g in seen if p == b"hash only"], [[9]], "ids on paho5/sid/a/b")
    expect_eq([g for t, p, g in seen if p == b"no id"], [[]], "ids on paho5/plain/x")

    # Re-subscribing paho5/sid/+ with id 11 replaces id 7.
    expect_eq(sub.subscribe("paho5/sid/+", options(1), sid(11)), [1], "SUBACK id 11")
    expect_eq(sub.subscribe("paho5/end", options(1)), [1], "SUBACK")
    pub.publish("paho5/sid/c", b"replaced", qos=1)
    marker(pub, "paho5/end")
    after = sorted(i for m in sub.messages_before("paho5/end")
                   for i in getattr(m.properties, "SubscriptionIdentifier", []))
    expect_eq(after, [9, 11], "ids after replacing the subscription")
    for peer in (sub, pub):
        peer.disconnect()
    return f"seen {seen}; after replace {after}"


def shared_subscription():
    """[MQTT-4.8.2] `$share/g/...` members split the messages: each of 20 QoS 1 messages
    reaches exactly one of the two paho members, both members get some, a non-shared
    subscriber of the same topic gets all 20, and the SUBACK grants the QoS."""
    members = [Peer("paho5-share-a"), Peer("paho5-share-b")]
    for member in members:
        member.connected()
        expect_eq(member.subscribe("$share/g/paho5/share/#", options(1)), [1], "SUBACK shared")
        expect_eq(member.subscribe("paho5/share-marker", options(1)), [1], "SUBACK marker")
    watcher = Peer("paho5-share-watch")
    watcher.connected()
    expect_eq(watcher.subscribe("paho5/share/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-share-pub")
    pub.connected()
    sent = [f"m{n:02}".encode() for n in range(20)]
    for payload in sent:
        expect_eq(pub.publish("paho5/share/t", payload, qos=1), 0, "PUBACK reason")
    marker(pub, "paho5/share-marker")
    got = [[m.payload for m in member.messages_before("paho5/share-marker")]
           for member in members]
    expect_eq(sorted(got[0] + got[1]), sent, "union of the members' messages (each once)")
    check(got[0] and got[1], f"one member got nothing: {got}")
    for share in got:
        expect_eq(share, sorted(share), "order within one member")
    watched = [watcher.next_message("watcher").payload for _ in sent]
    expect_eq(watched, sent, "non-shared subscriber")
    for peer in members + [watcher, pub]:
        peer.disconnect()
    return f"split {len(got[0])}/{len(got[1])}"


def retained_messages_on_subscribe():
    """A retained message sent because of a new subscription carries that subscription's
    identifier [MQTT-3.3.4-3] and RETAIN=1 [MQTT-3.3.1-9]; a shared subscription gets no
    retained messages when it is made [MQTT-3.8.4 / section 4.8.2]."""
    pub = Peer("paho5-rsub-pub")
    pub.connected()
    pub.publish("paho5/rsub/t", b"kept", qos=1, retain=True)
    sub = Peer("paho5-rsub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/rsub-marker", options(1)), [1], "SUBACK")
    expect_eq(sub.subscribe("$share/g/paho5/rsub/#", options(1)), [1], "SUBACK (shared)")
    marker(pub, "paho5/rsub-marker")
    expect_eq([m.payload for m in sub.messages_before("paho5/rsub-marker")], [],
              "retained messages for the shared subscription")
    expect_eq(sub.subscribe("paho5/rsub/+", options(1),
                            props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=321)),
              [1], "SUBACK (id 321)")
    retained = sub.next_message("the retained message")
    expect_eq((retained.topic, retained.payload, retained.retain),
              ("paho5/rsub/t", b"kept", True), "retained message")
    expect_eq(getattr(retained.properties, "SubscriptionIdentifier", None), [321],
              "Subscription Identifier on the retained message")
    pub.publish("paho5/rsub/t", b"", qos=1, retain=True)
    sub.disconnect()
    pub.disconnect()
    return "retained message carried id [321]; none for the shared subscription"


def shared_subscription_with_no_local_is_a_protocol_error():
    """[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error: the broker
    answers with DISCONNECT 0x82 (Protocol Error), which paho reports."""
    peer = Peer("paho5-share-nl")
    peer.connected()
    peer.client.subscribe("$share/g/paho5/nl", options=options(1, no_local=True))
    reason, found = peer.next_disconnect("DISCONNECT for No Local on a shared subscription")
    expect_eq(reason, 0x82, "DISCONNECT reason")
    check("ReasonString" in found, f"DISCONNECT without a Reason String: {found}")
    peer.stop()
    return f"DISCONNECT 0x82 {found.get('ReasonString')!r}"


run({
    "retained_messages_on_subscribe": retained_messages_on_subscribe,
    "shared_subscription_with_no_local_is_a_protocol_error":
        shared_subscription_with_no_local_is_a_protocol_error,
    "no_local": no_local,
    "subscription_identifiers": subscription_identifiers,
    "shared_subscription": shared_subscription,
})
