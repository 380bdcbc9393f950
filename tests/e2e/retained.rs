//! Retained messages: kept per topic, replaced, cleared by an empty payload, sent on subscribe.

use std::time::Duration;

use crate::support::{Broker, V3, V5, WAIT};
use rumqttc::QoS;

#[tokio::test]
async fn retained_message_is_sent_on_subscribe_with_retain_set_mqtt_3_3_1_6() {
    let broker = Broker::start();
    let publisher = V3::connect(broker.addr(), "ret-pub").await;
    publisher
        .client
        .publish("ret/a", QoS::AtLeastOnce, true, "first")
        .await
        .expect("publish");
    publisher
        .client
        .publish("ret/a", QoS::AtLeastOnce, true, "second")
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sub = V3::connect(broker.addr(), "ret-sub").await;
    sub.subscribe("ret/+", QoS::AtLeastOnce).await;
    let got = sub.publish(WAIT).await.expect("retained delivered");
    assert!(got.retain, "retain flag set [MQTT-3.3.1-8]");
    assert_eq!(&got.payload[..], b"second", "replaced [MQTT-3.3.1-5]");
    assert!(
        sub.publish(Duration::from_millis(300)).await.is_none(),
        "only the latest is kept"
    );
}

#[tokio::test]
async fn empty_retained_payload_clears_the_retained_message_mqtt_3_3_1_10_and_11() {
    let broker = Broker::start();
    let publisher = V3::connect(broker.addr(), "clr-pub").await;
    publisher
        .client
        .publish("clr/a", QoS::AtLeastOnce, true, "x")
        .await
        .expect("publish");
    publisher
        .client
        .publish("clr/a", QoS::AtLeastOnce, true, "")
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sub = V3::connect(broker.addr(), "clr-sub").await;
    sub.subscribe("clr/#", QoS::AtLeastOnce).await;
    assert!(
        sub.publish(Duration::from_millis(500)).await.is_none(),
        "cleared message still sent"
    );
}

#[tokio::test]
async fn live_forwarded_retained_message_has_retain_cleared_mqtt_3_3_1_9() {
    let broker = Broker::start();
    let mut sub = V3::connect(broker.addr(), "live-sub").await;
    sub.subscribe("live/t", QoS::AtMostOnce).await;
    let publisher = V3::connect(broker.addr(), "live-pub").await;
    publisher
        .client
        .publish("live/t", QoS::AtMostOnce, true, "now")
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("delivered");
    assert!(!got.retain);
}

#[tokio::test]
async fn retain_as_published_keeps_the_flag_and_retain_handling_2_sends_nothing_v5() {
    use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let broker = Broker::start();
    let publisher = V5::connect(broker.addr(), "rap-pub").await;
    publisher
        .client
        .publish("rap/t", Q5::AtLeastOnce, true, "kept")
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sub = V5::connect(broker.addr(), "rap-sub").await;
    let mut filter = Filter::new("rap/t", Q5::AtLeastOnce);
    filter.retain_forward_rule = RetainForwardRule::Never;
    filter.preserve_retain = true;
    sub.client
        .subscribe_many(vec![filter])
        .await
        .expect("subscribe");
    assert!(
        sub.publish(Duration::from_millis(500)).await.is_none(),
        "retain handling 2 must not send retained messages [MQTT-3.3.1-11]"
    );
    publisher
        .client
        .publish("rap/t", Q5::AtLeastOnce, true, "live")
        .await
        .expect("publish");
    let got = sub.publish(WAIT).await.expect("live delivery");
    assert!(got.retain, "retain as published [MQTT-3.3.1-12]");
}
