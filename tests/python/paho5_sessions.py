"""paho-mqtt 2.x, MQTT 5: sessions — a persistent session resumed with the QoS 1 messages
queued while it was offline, Clean Start discarding one, the Session Expiry Interval ending
one, and a session taken over by a second connection. One scenario per run (see
paho5_common.py); driven by tests/e2e/paho5.rs."""
import time

from paho5_common import (
    OFFLINE, PacketTypes, Peer, check, expect_eq, go_offline, marker, offline_signal, options,
    props, run,
)

CONNECT = PacketTypes.CONNECT


def persistent(client_id, expiry=300):
    return dict(properties=props(CONNECT, SessionExpiryInterval=expiry))


def offline_session(client_id, topic):
    """Connects `client_id` with a 300 s session, subscribes `topic` at QoS 1 and goes
    offline; returns a connected publisher that saw the session go offline."""
    pub = Peer(f"{client_id}-pub")
    pub.connected()
    expect_eq(pub.subscribe(OFFLINE + "#", options(1)), [1], "SUBACK")
    peer = Peer(client_id)
    session_present, reason, _ = peer.connect(clean_start=True, will=offline_signal(client_id),
                                              **persistent(client_id))
    expect_eq((session_present, reason), (False, 0), "first CONNACK (session present, reason)")
    expect_eq(peer.subscribe(topic, options(1)), [1], "SUBACK")
    go_offline(peer, pub)
    return pub


def resume_with_queued_messages():
    """[MQTT-3.1.2-5] Clean Start 0 resumes the session: CONNACK says Session Present
    [MQTT-3.2.2-3], the subscription is still there, and the QoS 1 messages published while
    the client was away arrive in order, once each."""
    pub = offline_session("paho5-resume", "paho5/resume/#")
    for n in range(1, 4):
        expect_eq(pub.publish("paho5/resume/t", f"q{n}".encode(), qos=1), 0,
                  "PUBACK reason (the offline session matched)")
    back = Peer("paho5-resume")
    session_present, reason, _ = back.connect(clean_start=False, **persistent("paho5-resume"))
    expect_eq((session_present, reason), (True, 0), "CONNACK on resume (session present, reason)")
    queued = [back.next_message(f"queued q{n}") for n in range(1, 4)]
    expect_eq([(m.topic, m.payload, m.qos) for m in queued],
              [("paho5/resume/t", f"q{n}".encode(), 1) for n in range(1, 4)], "queued messages")
    marker(pub, "paho5/resume/marker")  # the resumed subscription still matches
    rest = [m.payload for m in back.messages_before("paho5/resume/marker")]
    expect_eq(rest, [], "anything else delivered after the queue")
    back.disconnect()
    pub.disconnect()
    return f"session present, queued {[m.payload for m in queued]}"


def clean_start_discards_the_session():
    """[MQTT-3.1.2-4] Clean Start 1 discards the stored session: CONNACK says no session, the
    queued messages are not delivered and the old subscription is gone (PUBACK 0x10)."""
    pub = offline_session("paho5-clean", "paho5/clean/#")
    expect_eq(pub.publish("paho5/clean/t", b"queued", qos=1), 0, "PUBACK reason (queued)")
    fresh = Peer("paho5-clean")
    session_present, reason, _ = fresh.connect(clean_start=True, **persistent("paho5-clean"))
    expect_eq((session_present, reason), (False, 0), "CONNACK with Clean Start 1")
    expect_eq(fresh.subscribe("paho5/clean-marker", options(1)), [1], "SUBACK")
    expect_eq(pub.publish("paho5/clean/t", b"after", qos=1), 0x10,
              "PUBACK reason (old subscription gone)")
    marker(pub, "paho5/clean-marker")
    expect_eq([m.payload for m in fresh.messages_before("paho5/clean-marker")], [],
              "messages delivered to the fresh session")
    fresh.disconnect()
    pub.disconnect()
    return "no session present, nothing delivered, subscription gone"


def session_expires():
    """Section 3.1.2.11.2: a session with Session Expiry Interval 1 is gone once the interval has
    passed after the disconnect: reconnecting with Clean Start 0 finds no session."""
    offline_session_peer = Peer("paho5-expire")
    offline_session_peer.connected(clean_start=True, **persistent("paho5-expire", expiry=1))
    expect_eq(offline_session_peer.subscribe("paho5/expire/#", options(1)), [1], "SUBACK")
    offline_session_peer.disconnect()
    pub = Peer("paho5-expire-pub")
    pub.connected()
    # Poll the subscription's existence through PUBACK reason codes rather than sleeping a
    # fixed time: 0x00 while the session lives, 0x10 once it has expired.
    deadline = time.monotonic() + 30
    reasons = []
    while True:
        reason = pub.publish("paho5/expire/t", b"probe", qos=1)
        reasons.append(reason)
        if reason == 0x10:
            break
        check(time.monotonic() < deadline, f"session never expired: PUBACK reasons {reasons}")
        time.sleep(0.2)
    back = Peer("paho5-expire")
    session_present, reason, _ = back.connect(clean_start=False, **persistent("paho5-expire"))
    expect_eq((session_present, reason), (False, 0), "CONNACK after expiry")
    expect_eq(back.subscribe("paho5/expire-marker", options(1)), [1], "SUBACK")
    marker(pub, "paho5/expire-marker")
    expect_eq([m.payload for m in back.messages_before("paho5/expire-marker")], [],
              "messages from the expired session")
    back.disconnect()
    pub.disconnect()
    return f"PUBACK reasons while polling {reasons[:1]}..{reasons[-1:]}; no session present"


def session_takeover():
    """[MQTT-3.1.4-3] A second connection with the same client id takes the session over: the
    first paho client receives DISCONNECT 0x8E (Session taken over), the second is told the
    session is present (Clean Start 0) and keeps its subscription."""
    old = Peer("paho5-takeover")
    old.connected(**persistent("paho5-takeover"))
    expect_eq(old.subscribe("paho5/takeover/#", options(1)), [1], "SUBACK")
    new = Peer("paho5-takeover")
    session_present, reason, _ = new.connect(clean_start=False, **persistent("paho5-takeover"))
    expect_eq((session_present, reason), (True, 0), "CONNACK of the new connection")
    old_reason, _ = old.next_disconnect("DISCONNECT on the old connection")
    expect_eq(old_reason, 0x8E, "DISCONNECT reason seen by the old client")
    old.stop()
    pub = Peer("paho5-takeover-pub")
    pub.connected()
    expect_eq(pub.publish("paho5/takeover/t", b"to the new one", qos=1), 0, "PUBACK reason")
    expect_eq(new.next_message("on the taken-over subscription").payload, b"to the new one",
              "payload")
    check(old.no_message_pending(), "the old connection received a message")
    new.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    pub.disconnect()
    return "old client got DISCONNECT 0x8E; new one resumed the session"


def unacknowledged_message_is_resent_with_dup():
    """[MQTT-4.4.0-1] A session resumed by a new connection gets its unacknowledged QoS 1
    message again, with the original packet identifier and DUP=1 [MQTT-3.3.1-1]; the one
    acknowledged before is not resent, and new messages flow with DUP=0."""
    old = Peer("paho5-inflight", manual_ack=True)
    old.connected(**persistent("paho5-inflight"))
    expect_eq(old.subscribe("paho5/inflight", options(1)), [1], "SUBACK")
    pub = Peer("paho5-inflight-pub")
    pub.connected()
    pub.publish("paho5/inflight", b"acked", qos=1)
    pub.publish("paho5/inflight", b"unacked", qos=1)
    acked, unacked = old.next_message("acked"), old.next_message("unacked")
    expect_eq((acked.payload, unacked.payload), (b"acked", b"unacked"), "first deliveries")
    expect_eq((acked.dup, unacked.dup), (False, False), "DUP on first delivery")
    old.client.ack(acked.mid, 1)
    # The PUBACK must reach the broker before the takeover: a marker QoS 1 publish from the
    # same connection is answered only after the PUBACK ahead of it was read.
    expect_eq(old.publish("paho5/inflight-marker", b"marker", qos=1), 0x10, "PUBACK reason")
    new = Peer("paho5-inflight")
    session_present, reason, _ = new.connect(clean_start=False, **persistent("paho5-inflight"))
    expect_eq((session_present, reason), (True, 0), "CONNACK of the taking-over connection")
    expect_eq(old.next_disconnect("takeover")[0], 0x8E, "DISCONNECT reason on the old one")
    old.stop()
    again = new.next_message("the resent message")
    expect_eq((again.payload, again.dup, again.mid), (b"unacked", True, unacked.mid),
              "resent message (payload, DUP, packet id)")
    pub.publish("paho5/inflight", b"fresh", qos=1)
    fresh = new.next_message("a new message")
    expect_eq((fresh.payload, fresh.dup), (b"fresh", False), "new message after the resend")
    new.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    pub.disconnect()
    return f"resent {again.payload!r} with DUP=1 and packet id {again.mid}"


run({
    "unacknowledged_message_is_resent_with_dup": unacknowledged_message_is_resent_with_dup,
    "resume_with_queued_messages": resume_with_queued_messages,
    "clean_start_discards_the_session": clean_start_discards_the_session,
    "session_expires": session_expires,
    "session_takeover": session_takeover,
})
