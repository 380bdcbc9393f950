//! Sessions: clean and persistent, queued messages for offline clients, takeover.

use std::time::Duration;

use crate::support::{Broker, V3, V5, WAIT};
use rumqttc::QoS;

#[tokio::test]
async fn persistent_session_keeps_subscriptions_and_queues_qos1_offline_v311_mqtt_3_1_2_5() {
    let broker = Broker::start();
    let persistent = |o: &mut rumqttc::MqttOptions| {
        o.set_clean_session(false);
    };
    let mut sub = V3::connect_with(broker.addr(), "persist-311", persistent).await;
    sub.subscribe("persist/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let publisher = V3::connect(broker.addr(), "persist-pub").await;
    for i in 0..5 {
        publisher
            .client
            .publish("persist/x", QoS::AtLeastOnce, false, format!("m{i}"))
            .await
            .expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = V3::connect_with(broker.addr(), "persist-311", persistent).await;
    assert!(
        back.connack.session_present,
        "session present [MQTT-3.2.2-2]"
    );
    for i in 0..5 {
        let got = back
            .publish(WAIT)
            .await
            .unwrap_or_else(|| panic!("queued message {i} missing"));
        assert_eq!(String::from_utf8_lossy(&got.payload), format!("m{i}"));
    }
}

#[tokio::test]
async fn clean_session_discards_the_previous_session_mqtt_3_1_2_6() {
    let broker = Broker::start();
    let mut sub = V3::connect_with(broker.addr(), "clean-311", |o| {
        o.set_clean_session(false);
    })
    .await;
    sub.subscribe("clean/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let mut back = V3::connect(broker.addr(), "clean-311").await;
    assert!(!back.connack.session_present);
    let publisher = V3::connect(broker.addr(), "clean-pub").await;
    publisher
        .client
        .publish("clean/x", QoS::AtLeastOnce, false, "m")
        .await
        .expect("publish");
    assert!(
        back.publish(Duration::from_millis(500)).await.is_none(),
        "old subscription survived"
    );
}

#[tokio::test]
async fn session_takeover_closes_the_old_v311_connection_mqtt_3_1_4_2() {
    let broker = Broker::start();
    let mut old = V3::connect(broker.addr(), "takeover-311").await;
    let _new = V3::connect(broker.addr(), "takeover-311").await;
    let closed = old
        .packet(WAIT, |p| {
            matches!(p, rumqttc::Packet::Disconnect).then_some(())
        })
        .await;
    assert!(
        closed.is_some() || old.incoming.recv().await.is_none(),
        "old connection not closed"
    );
}

#[tokio::test]
async fn session_takeover_sends_0x8e_to_the_old_v5_connection_mqtt_3_1_4_3() {
    use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet};
    let broker = Broker::start();
    let mut old = V5::connect(broker.addr(), "takeover-5").await;
    let _new = V5::connect(broker.addr(), "takeover-5").await;
    let reason = old
        .packet(WAIT, |p| match p {
            Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        })
        .await
        .expect("DISCONNECT to the old connection");
    assert_eq!(reason, DisconnectReasonCode::SessionTakenOver);
}

#[tokio::test]
async fn v5_session_expires_after_its_interval_mqtt_3_1_2_23() {
    use rumqttc::v5::mqttbytes::v5::ConnectProperties;
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let broker = Broker::start();
    let expiring = |secs: u32| {
        move |o: &mut rumqttc::v5::MqttOptions| {
            o.set_clean_start(false);
            o.set_connect_properties(ConnectProperties {
                session_expiry_interval: Some(secs),
                ..Default::default()
            });
        }
    };
    let mut sub = V5::connect_with(broker.addr(), "expiring-5", expiring(1)).await;
    sub.subscribe("exp/#", Q5::AtLeastOnce).await;
    sub.disconnect().await;
    let back = V5::connect_with(broker.addr(), "expiring-5", expiring(1)).await;
    assert!(back.connack.session_present, "kept within the interval");
    back.disconnect().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = V5::connect_with(broker.addr(), "expiring-5", expiring(1)).await;
    assert!(
        !later.connack.session_present,
        "session outlived its expiry interval"
    );
}

#[tokio::test]
async fn empty_client_id_gets_an_assigned_identifier_v5_mqtt_3_2_2_16() {
    let broker = Broker::start();
    let client = V5::connect(broker.addr(), "").await;
    let assigned = client
        .connack
        .properties
        .as_ref()
        .and_then(|p| p.assigned_client_identifier.clone())
        .expect("Assigned Client Identifier");
    assert!(!assigned.is_empty());
}

#[tokio::test]
async fn offline_queue_is_bounded_by_max_queued_messages_and_overflow_is_logged() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\n{}\n[limits]\nmax_queued_messages = 5\n",
        crate::support::TCP_ONLY
    ));
    let persistent = |o: &mut rumqttc::MqttOptions| {
        o.set_clean_session(false);
    };
    let mut sub = V3::connect_with(broker.addr(), "bounded", persistent).await;
    sub.subscribe("bounded/t", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let publisher = V3::connect(broker.addr(), "bounded-pub").await;
    for i in 0..12 {
        publisher
            .client
            .publish("bounded/t", QoS::AtLeastOnce, false, format!("{i}"))
            .await
            .expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut back = V3::connect_with(broker.addr(), "bounded", persistent).await;
    let mut got = Vec::new();
    while let Some(p) = back.publish(Duration::from_millis(700)).await {
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    assert_eq!(got.len(), 5, "queue bound kept: {got:?}");
    assert!(
        broker
            .log
            .lines()
            .iter()
            .any(|l| l.contains("bounded") && (l.contains("queue") || l.contains("dropped"))),
        "overflow not logged:\n{}",
        broker.dump_log()
    );
}
