"""paho-mqtt 2.x, MQTT 5: PUBLISH properties end to end — the request/response pattern (user
properties, content type, payload format, response topic, correlation data), the message
expiry interval, and topic aliases set by a paho publisher. One scenario per run (see
paho5_common.py); driven by tests/e2e/paho5.rs."""
import time

from paho5_common import (
    OFFLINE, PacketTypes, Peer, check, expect_eq, go_offline, marker, offline_signal, options,
    props, run,
)

PUBLISH = PacketTypes.PUBLISH


def request_response():
    """The broker forwards User Properties unaltered and in order [MQTT-3.3.2-17/18], the
    Content Type [MQTT-3.3.2-20], the Payload Format Indicator [MQTT-3.3.2-4], the Response
    Topic [MQTT-3.3.2-15] and the Correlation Data [MQTT-3.3.2-16], so a responder can answer
    on the response topic with the request's correlation data."""
    requester, responder = Peer("paho5-rr-requester"), Peer("paho5-rr-responder")
    requester.connected()
    responder.connected()
    reply_topic = "paho5/rr/reply/requester"
    expect_eq(requester.subscribe(reply_topic, options(1)), [1], "SUBACK")
    expect_eq(responder.subscribe("paho5/rr/request", options(1)), [1], "SUBACK")
    user = [("trace", "t-1"), ("dup", "a"), ("dup", "b"), ("ünï", "cödé")]
    request = props(PUBLISH, ResponseTopic=reply_topic, CorrelationData=b"\x00\xffcorr-42",
                    ContentType="application/json", PayloadFormatIndicator=1,
                    UserProperty=user)
    expect_eq(requester.publish("paho5/rr/request", b'{"op":"add","args":[2,3]}', qos=1,
                                properties=request), 0, "PUBACK reason for the request")
    got = responder.next_message("the request")
    p = got.properties
    expect_eq(got.payload, b'{"op":"add","args":[2,3]}', "request payload")
    expect_eq(getattr(p, "ResponseTopic", None), reply_topic, "Response Topic")
    expect_eq(getattr(p, "CorrelationData", None), b"\x00\xffcorr-42", "Correlation Data")
    expect_eq(getattr(p, "ContentType", None), "application/json", "Content Type")
    expect_eq(getattr(p, "PayloadFormatIndicator", None), 1, "Payload Format Indicator")
    expect_eq(getattr(p, "UserProperty", None), user, "User Properties (order, duplicates)")

    reply = props(PUBLISH, CorrelationData=p.CorrelationData, ContentType="text/plain",
                  UserProperty=[("status", "ok")])
    responder.publish(p.ResponseTopic, b"5", qos=1, properties=reply)
    answer = requester.next_message("the reply")
    a = answer.properties
    expect_eq((answer.topic, answer.payload), (reply_topic, b"5"), "reply")
    expect_eq(getattr(a, "CorrelationData", None), b"\x00\xffcorr-42", "reply Correlation Data")
    expect_eq(getattr(a, "ContentType", None), "text/plain", "reply Content Type")
    expect_eq(getattr(a, "UserProperty", None), [("status", "ok")], "reply User Properties")
    check(not hasattr(a, "ResponseTopic"), "a Response Topic appeared on the reply")
    requester.disconnect()
    responder.disconnect()
    return "request and reply carried every property unaltered"


def message_expiry():
    """[MQTT-3.3.2-6] The Message Expiry Interval sent on is the published one minus the time
    the message waited in the broker (a retained message 2 s old arrives with at most 58 of
    60 s left; a live one with its interval intact, give or take a slow machine);
    [MQTT-3.3.2-5] an expired one is not delivered; a message without an interval gets none."""
    pub = Peer("paho5-exp-pub")
    pub.connected()
    pub.publish("paho5/exp/long", b"long", qos=1, retain=True,
                properties=props(PUBLISH, MessageExpiryInterval=60))
    pub.publish("paho5/exp/short", b"short", qos=1, retain=True,
                properties=props(PUBLISH, MessageExpiryInterval=1))
    pub.publish("paho5/exp/forever", b"forever", qos=1, retain=True)
    stored_at = time.monotonic()
    # The interval is whole seconds: the waits below are the property under test.
    time.sleep(2.2)
    sub = Peer("paho5-exp-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/exp/#", options(1)), [1], "SUBACK")
    marker(sub, "paho5/exp/marker")
    waited = time.monotonic() - stored_at
    retained = {m.topic: m for m in sub.messages_before("paho5/exp/marker")}
    expect_eq(sorted(retained), ["paho5/exp/forever", "paho5/exp/long"], "retained delivered")
    left = getattr(retained["paho5/exp/long"].properties, "MessageExpiryInterval", None)
    check(left is not None, "the retained message lost its Message Expiry Interval")
    check(60 - waited - 1 <= left <= 58,
          f"Message Expiry Interval {left} after {waited:.1f}s waiting (published with 60)")
    check(not hasattr(retained["paho5/exp/forever"].properties, "MessageExpiryInterval"),
          "a message published without expiry was given one")

    pub.publish("paho5/exp/live", b"live", qos=1,
                properties=props(PUBLISH, MessageExpiryInterval=600))
    live = sub.next_message("live message")
    live_left = getattr(live.properties, "MessageExpiryInterval", None)
    check(live_left is not None and 590 <= live_left <= 600,
          f"live message Message Expiry Interval {live_left} (published with 600)")
    for topic in ("paho5/exp/long", "paho5/exp/short", "paho5/exp/forever"):
        pub.publish(topic, b"", qos=1, retain=True)
    sub.disconnect()
    pub.disconnect()
    return f"retained: {left}s left after {waited:.1f}s; live: {live_left}s; expired one dropped"


def topic_alias_from_publisher():
    """[MQTT-3.3.2-12] A paho publisher sets alias 1 with a topic, then publishes with an
    empty topic and the alias; remapping alias 1 to another topic takes effect; subscribers
    get the full topic names and no alias of the publisher's. An alias above the broker's
    Topic Alias Maximum (16) is answered with DISCONNECT 0x94 (Topic Alias invalid)
    [MQTT-3.3.2-9]."""
    sub = Peer("paho5-alias-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/alias/#", options(1)), [1], "SUBACK")
    pub = Peer("paho5-alias-pub")
    maximum = pub.connected().get("TopicAliasMaximum")
    expect_eq(maximum, 16, "broker's Topic Alias Maximum")
    alias = lambda n: props(PUBLISH, TopicAlias=n)
    steps = [("paho5/alias/a", 1, b"1"), ("", 1, b"2"), ("", 1, b"3"),
             ("paho5/alias/b", 1, b"4"), ("", 1, b"5"), ("paho5/alias/c", 16, b"6"),
             ("", 16, b"7"), ("", 1, b"8")]
    for topic, n, payload in steps:
        expect_eq(pub.publish(topic, payload, qos=1, properties=alias(n)), 0,
                  f"PUBACK reason for alias {n} topic {topic!r}")
    got = [sub.next_message(f"message {n + 1}") for n in range(len(steps))]
    seen = [(m.topic, m.payload) for m in got]
    expect_eq(seen, [("paho5/alias/a", b"1"), ("paho5/alias/a", b"2"), ("paho5/alias/a", b"3"),
                     ("paho5/alias/b", b"4"), ("paho5/alias/b", b"5"), ("paho5/alias/c", b"6"),
                     ("paho5/alias/c", b"7"), ("paho5/alias/b", b"8")], "topics delivered")
    for m in got:
        check(not hasattr(m.properties, "TopicAlias"),
              f"publisher's alias leaked to a subscriber without Topic Alias Maximum: {m.topic}")

    pub.client.publish("paho5/alias/d", b"too far", qos=1, properties=alias(17))
    reason, _ = pub.next_disconnect("DISCONNECT for alias 17")
    expect_eq(reason, 0x94, "DISCONNECT reason for an alias above the maximum")
    pub.stop()
    marker(sub, "paho5/alias/end")
    expect_eq([(m.topic, m.payload) for m in sub.messages_before("paho5/alias/end")], [],
              "messages after the refused alias")
    sub.disconnect()
    return f"delivered {seen}; alias 17 -> DISCONNECT 0x94"


def message_expiry_in_an_offline_queue():
    """[MQTT-3.3.2-5] A message queued for an offline session that expires before the session
    returns is not delivered; [MQTT-3.3.2-6] one that has not expired is delivered with its
    interval lowered by the time it waited."""
    pub = Peer("paho5-qexp-pub")
    pub.connected()
    expect_eq(pub.subscribe(OFFLINE + "#", options(1)), [1], "SUBACK")
    sub = Peer("paho5-qexp")
    sub.connected(will=offline_signal("paho5-qexp"),
                  properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    expect_eq(sub.subscribe("paho5/qexp/#", options(1)), [1], "SUBACK")
    go_offline(sub, pub)
    pub.publish("paho5/qexp/long", b"long", qos=1,
                properties=props(PUBLISH, MessageExpiryInterval=30))
    pub.publish("paho5/qexp/short", b"short", qos=1,
                properties=props(PUBLISH, MessageExpiryInterval=1))
    queued_at = time.monotonic()
    time.sleep(2.2)  # the whole seconds of the intervals are what is under test
    back = Peer("paho5-qexp")
    session_present, reason, _ = back.connect(
        clean_start=False, properties=props(PacketTypes.CONNECT, SessionExpiryInterval=0))
    expect_eq((session_present, reason), (True, 0), "CONNACK on resume")
    marker(pub, "paho5/qexp/marker")
    waited = time.monotonic() - queued_at
    got = back.messages_before("paho5/qexp/marker")
    expect_eq([m.payload for m in got], [b"long"], "queued messages delivered")
    left = getattr(got[0].properties, "MessageExpiryInterval", None)
    check(left is not None and 30 - waited - 1 <= left <= 28,
          f"Message Expiry Interval {left} after {waited:.1f}s queued (published with 30)")
    back.disconnect()
    pub.disconnect()
    return f"expired one dropped; the other arrived with {left}s left after {waited:.1f}s"


def retained_message_published_through_an_alias():
    """[MQTT-3.3.2-12] [MQTT-3.1.2-27] A retained message a publisher sent with an empty topic
    and an alias is stored under the alias's topic and served to a later subscriber by its
    name, without the publisher's alias."""
    pub = Peer("paho5-aret-pub")
    pub.connected()
    pub.publish("paho5/aret/t", b"first", qos=1, retain=True,
                properties=props(PUBLISH, TopicAlias=3))
    pub.publish("", b"second", qos=1, retain=True, properties=props(PUBLISH, TopicAlias=3))
    sub = Peer("paho5-aret-sub")
    sub.connected()
    expect_eq(sub.subscribe("paho5/aret/#", options(1)), [1], "SUBACK")
    kept = sub.next_message("the retained message")
    expect_eq((kept.topic, kept.payload, kept.retain), ("paho5/aret/t", b"second", True),
              "retained message")
    check(not hasattr(kept.properties, "TopicAlias"), "the publisher's alias was served")
    pub.publish("paho5/aret/t", b"", qos=1, retain=True)
    marker(pub, "paho5/aret/marker")
    expect_eq([m.payload for m in sub.messages_before("paho5/aret/marker")], [b""],
              "the clearing message")
    sub.disconnect()
    pub.disconnect()
    return "retained under paho5/aret/t, served without alias"


run({
    "message_expiry_in_an_offline_queue": message_expiry_in_an_offline_queue,
    "retained_message_published_through_an_alias": retained_message_published_through_an_alias,
    "request_response": request_response,
    "message_expiry": message_expiry,
    "topic_alias_from_publisher": topic_alias_from_publisher,
})
