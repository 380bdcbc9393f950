//! Wills: published when a client vanishes, not after a normal DISCONNECT; v5 will delay.

use std::time::Duration;

use crate::support::{Broker, V3, V5, WAIT};
use rumqttc::QoS;

#[tokio::test]
async fn will_is_published_when_the_connection_drops_mqtt_3_1_2_8() {
    let broker = Broker::start();
    let mut watcher = V3::connect(broker.addr(), "will-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let dying = V3::connect_with(broker.addr(), "will-dies", |o| {
        o.set_last_will(rumqttc::LastWill::new(
            "wills/dies",
            "gone",
            QoS::AtLeastOnce,
            false,
        ));
    })
    .await;
    dying.abort();
    let got = watcher.publish(WAIT).await.expect("will published");
    assert_eq!(got.topic, "wills/dies");
    assert_eq!(&got.payload[..], b"gone");
}

#[tokio::test]
async fn no_will_after_a_normal_disconnect_mqtt_3_1_2_10() {
    let broker = Broker::start();
    let mut watcher = V3::connect(broker.addr(), "nowill-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let polite = V3::connect_with(broker.addr(), "will-polite", |o| {
        o.set_last_will(rumqttc::LastWill::new(
            "wills/polite",
            "gone",
            QoS::AtLeastOnce,
            false,
        ));
    })
    .await;
    polite.disconnect().await;
    assert!(
        watcher.publish(Duration::from_millis(800)).await.is_none(),
        "will published after DISCONNECT"
    );
}

#[tokio::test]
async fn retained_will_is_kept_as_a_retained_message() {
    let broker = Broker::start();
    let dying = V3::connect_with(broker.addr(), "will-retained", |o| {
        o.set_last_will(rumqttc::LastWill::new(
            "wills/status",
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    })
    .await;
    dying.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut late = V3::connect(broker.addr(), "will-late").await;
    late.subscribe("wills/status", QoS::AtLeastOnce).await;
    let got = late.publish(WAIT).await.expect("retained will");
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"offline");
}

#[tokio::test]
async fn v5_will_delay_is_cancelled_by_a_reconnect_in_time_mqtt_3_1_3_9() {
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let broker = Broker::start();
    let mut watcher = V5::connect(broker.addr(), "delay-watch").await;
    watcher.subscribe("wills/#", Q5::AtLeastOnce).await;
    let with_will = |o: &mut rumqttc::v5::MqttOptions| {
        let props = LastWillProperties {
            delay_interval: Some(2),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: vec![],
        };
        o.set_last_will(LastWill::new(
            "wills/delayed",
            "late",
            Q5::AtLeastOnce,
            false,
            Some(props),
        ));
        o.set_clean_start(false);
        o.set_connect_properties(rumqttc::v5::mqttbytes::v5::ConnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        });
    };
    let first = V5::connect_with(broker.addr(), "delay-client", with_will).await;
    first.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = V5::connect_with(broker.addr(), "delay-client", with_will).await;
    assert!(
        watcher.publish(Duration::from_secs(3)).await.is_none(),
        "will sent although the client came back"
    );
    second.abort();
    let got = watcher
        .publish(Duration::from_secs(6))
        .await
        .expect("delayed will after the delay");
    assert_eq!(&got.payload[..], b"late");
}

/// A client that says DISCONNECT, sees the connection close and at once reconnects with the
/// same client id, thirty times: the will is never published [MQTT-3.1.2-10]. (The broker
/// disarms it before closing the socket, so a takeover landing before the old connection has
/// released the session finds no will.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_will_when_a_reconnect_follows_the_normal_disconnect_at_once_mqtt_3_1_2_10() {
    use crate::support::bytes::{packet, string, DISCONNECT};
    use crate::support::Raw;

    fn connect(client_id: &str, will: bool) -> Vec<u8> {
        let mut body = string("MQTT");
        // Clean Session 0 so the second connection takes over the session; QoS 1 will.
        let flags = if will { 0x04 | 0x08 } else { 0 };
        body.extend([4, flags, 0, 60]);
        body.extend(string(client_id));
        if will {
            body.extend(string("wills/raced"));
            body.extend(string("gone"));
        }
        packet(0x10, &body)
    }

    let broker = Broker::start();
    let mut watcher = V3::connect(broker.addr(), "race-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    for _ in 0..30 {
        let mut first = Raw::connect(broker.addr()).await;
        first.send(&connect("will-race", true)).await;
        first.recv_type(2, WAIT).await.expect("CONNACK");
        first.send(&DISCONNECT).await;
        assert!(first.closed(WAIT).await, "broker closes after DISCONNECT");
        let mut second = Raw::connect(broker.addr()).await;
        second.send(&connect("will-race", false)).await;
        second.recv_type(2, WAIT).await.expect("CONNACK");
        second.send(&DISCONNECT).await;
        assert!(second.closed(WAIT).await, "broker closes after DISCONNECT");
    }
    assert!(
        watcher.publish(Duration::from_millis(800)).await.is_none(),
        "will published after a normal DISCONNECT"
    );
}
