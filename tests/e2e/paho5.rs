//! paho-mqtt 2.x (Python) speaking MQTT 5 to the real broker: CONNECT/CONNACK properties, QoS
//! flows and their reason codes, retained messages, subscription options, shared
//! subscriptions, request/response properties, message expiry, topic aliases, sessions, wills
//! and server-side DISCONNECTs. Each test runs one scenario of a tests/python/paho5_*.py script
//! (the observations are checked there, against exact values) and requires its `PASS` line.
//! paho-mqtt 2.2.0 comes from tests/requirements.txt (scripts/test.sh installs it); a missing
//! paho fails the test rather than skipping it.

use std::net::SocketAddr;

use crate::external::{python_script, Tool, TOOL_WAIT};
use crate::support::{Broker, TCP_ONLY};

/// How long one scenario may run: several round trips, each allowed [`TOOL_WAIT`] / 2 in the
/// script, plus the will-delay waits.
const SCENARIO_WAIT: std::time::Duration = std::time::Duration::from_secs(180);

fn broker() -> Broker {
    Broker::with_config(&format!("sys_interval = 0\n{TCP_ONLY}"))
}

/// Runs `python3 tests/python/<script> <scenario>` against `addr` and returns its PASS line.
fn scenario_over(addr: SocketAddr, transport: &str, script: &str, scenario: &str) -> String {
    let path = format!("tests/python/{script}");
    let output = Tool::run(
        &path,
        python_script(&path)
            .arg(scenario)
            .env("MQTT_HOST", addr.ip().to_string())
            .env("MQTT_PORT", addr.port().to_string())
            .env("MQTT_TRANSPORT", transport)
            .env("MQTT_WS_PATH", "/mqtt")
            .env("TIMEOUT_SECS", (TOOL_WAIT.as_secs() / 2).to_string()),
        SCENARIO_WAIT,
    );
    let pass = format!("PASS {scenario}:");
    output
        .lines()
        .find(|line| line.starts_with(&pass))
        .unwrap_or_else(|| panic!("{path} {scenario} printed no {pass:?} line:\n{output}"))
        .to_owned()
}

/// [`scenario_over`] TCP on a fresh broker with default limits.
fn scenario(script: &str, scenario: &str) -> String {
    let broker = broker();
    scenario_over(broker.addr(), "tcp", script, scenario)
}

// ---- CONNECT / CONNACK -------------------------------------------------------------------

#[test]
fn paho5_connack_announces_the_default_limits_and_capabilities_mqtt_3_2_2() {
    scenario("paho5_connect.py", "connack_properties_default");
}

#[test]
fn paho5_connack_carries_configured_limits_capped_expiry_and_server_keep_alive_mqtt_3_2_2_21() {
    let broker = Broker::with_config(&format!(
        "sys_interval = 0\nmax_keepalive = 20\n{TCP_ONLY}\n[limits]\nreceive_maximum = 50\n\
         topic_alias_maximum = 8\nmax_packet_size = 65536\nmax_session_expiry = 600\n"
    ));
    scenario_over(
        broker.addr(),
        "tcp",
        "paho5_connect.py",
        "configured_connack_properties",
    );
}

#[test]
fn paho5_empty_client_id_gets_a_unique_assigned_client_identifier_mqtt_3_2_2_16() {
    scenario("paho5_connect.py", "assigned_client_identifier");
}

#[test]
fn paho5_publish_over_the_brokers_maximum_packet_size_is_disconnect_0x95_mqtt_3_2_2_15() {
    scenario(
        "paho5_connect.py",
        "packet_over_the_brokers_maximum_is_refused",
    );
}

#[test]
fn paho5_broker_sends_no_more_than_the_clients_receive_maximum_mqtt_3_3_4_9() {
    scenario("paho5_connect.py", "receive_maximum");
}

#[test]
fn paho5_message_over_the_clients_maximum_packet_size_is_not_sent_mqtt_3_1_2_25() {
    scenario("paho5_connect.py", "maximum_packet_size");
}

#[test]
fn paho5_outbound_topic_aliases_stay_within_the_clients_maximum_mqtt_3_1_2_26_and_27() {
    scenario("paho5_connect.py", "topic_alias_maximum");
}

// ---- QoS flows and reason codes ----------------------------------------------------------

#[test]
fn paho5_qos_0_1_2_round_trip_with_suback_puback_pubrec_reason_codes_mqtt_3_4_2_1() {
    scenario("paho5_qos.py", "qos_levels_and_ack_reason_codes");
}

#[test]
fn paho5_delivery_qos_is_the_minimum_of_published_and_granted_mqtt_3_8_4_8() {
    scenario("paho5_qos.py", "delivery_qos_is_the_minimum");
}

#[test]
fn paho5_unsuback_says_0x11_for_a_subscription_that_did_not_exist_mqtt_3_11_3_1() {
    scenario("paho5_qos.py", "unsubscribe_reason_codes");
}

#[test]
fn paho5_one_subscribe_with_three_filters_gets_their_granted_qos_in_order_mqtt_3_9_3_1() {
    scenario("paho5_qos.py", "several_filters_in_one_subscribe");
}

#[test]
fn paho5_hash_does_not_match_dollar_topics_and_sys_publish_is_0x87_mqtt_4_7_2_1() {
    scenario("paho5_qos.py", "dollar_topics");
}

#[test]
fn paho5_pipelined_qos1_and_qos2_bursts_arrive_once_each_in_order_mqtt_4_6_0_6() {
    scenario("paho5_qos.py", "ordered_burst");
}

// ---- retained messages -------------------------------------------------------------------

#[test]
fn paho5_retain_handling_0_1_2_mqtt_3_3_1_9_to_11() {
    scenario("paho5_retained.py", "retain_handling");
}

#[test]
fn paho5_retain_as_published_keeps_the_retain_flag_mqtt_3_3_1_12_and_13() {
    scenario("paho5_retained.py", "retain_as_published");
}

// ---- subscription options and kinds ------------------------------------------------------

#[test]
fn paho5_no_local_subscriber_does_not_get_its_own_messages_mqtt_3_8_3_3() {
    scenario("paho5_subscriptions.py", "no_local");
}

#[test]
fn paho5_subscription_identifiers_are_delivered_mqtt_3_3_4_3() {
    scenario("paho5_subscriptions.py", "subscription_identifiers");
}

#[test]
fn paho5_shared_subscription_splits_messages_between_two_members_section_4_8_2() {
    scenario("paho5_subscriptions.py", "shared_subscription");
}

#[test]
fn paho5_retained_message_carries_the_subscription_identifier_and_skips_shared_mqtt_3_3_4_3() {
    scenario("paho5_subscriptions.py", "retained_messages_on_subscribe");
}

#[test]
fn paho5_no_local_on_a_shared_subscription_is_disconnect_0x82_mqtt_3_8_3_4() {
    scenario(
        "paho5_subscriptions.py",
        "shared_subscription_with_no_local_is_a_protocol_error",
    );
}

// ---- PUBLISH properties ------------------------------------------------------------------

#[test]
fn paho5_request_response_properties_pass_through_unaltered_mqtt_3_3_2_15_to_20() {
    scenario("paho5_properties.py", "request_response");
}

#[test]
fn paho5_message_expiry_interval_is_decremented_by_the_time_waited_mqtt_3_3_2_6() {
    scenario("paho5_properties.py", "message_expiry");
}

#[test]
fn paho5_queued_message_expires_or_arrives_with_its_interval_lowered_mqtt_3_3_2_5_and_6() {
    scenario("paho5_properties.py", "message_expiry_in_an_offline_queue");
}

#[test]
fn paho5_topic_aliases_set_by_the_publisher_stand_for_their_topics_mqtt_3_3_2_12() {
    scenario("paho5_properties.py", "topic_alias_from_publisher");
}

#[test]
fn paho5_retained_message_sent_through_an_alias_is_served_by_topic_name_mqtt_3_3_2_12() {
    scenario(
        "paho5_properties.py",
        "retained_message_published_through_an_alias",
    );
}

// ---- sessions ----------------------------------------------------------------------------

#[test]
fn paho5_persistent_session_resumes_with_its_queued_qos1_messages_mqtt_3_1_2_5() {
    scenario("paho5_sessions.py", "resume_with_queued_messages");
}

#[test]
fn paho5_clean_start_discards_the_stored_session_mqtt_3_1_2_4() {
    scenario("paho5_sessions.py", "clean_start_discards_the_session");
}

#[test]
fn paho5_session_is_gone_after_its_expiry_interval_section_3_1_2_11_2() {
    scenario("paho5_sessions.py", "session_expires");
}

#[test]
fn paho5_old_client_sees_disconnect_0x8e_on_session_takeover_mqtt_3_1_4_3() {
    scenario("paho5_sessions.py", "session_takeover");
}

#[test]
fn paho5_unacknowledged_qos1_is_resent_with_dup_to_the_resuming_connection_mqtt_4_4_0_1() {
    scenario(
        "paho5_sessions.py",
        "unacknowledged_message_is_resent_with_dup",
    );
}

// ---- wills -------------------------------------------------------------------------------

#[test]
fn paho5_will_is_published_after_the_will_delay_when_the_connection_drops_mqtt_3_1_3_9() {
    scenario("paho5_wills.py", "will_delay_after_a_dropped_connection");
}

#[test]
fn paho5_normal_disconnect_discards_the_will_mqtt_3_14_4_3() {
    scenario("paho5_wills.py", "no_will_after_a_normal_disconnect");
}

#[test]
fn paho5_reconnecting_within_the_will_delay_cancels_the_will_mqtt_3_1_3_9() {
    scenario(
        "paho5_wills.py",
        "no_will_when_reconnected_within_the_delay",
    );
}

#[test]
fn paho5_will_is_published_at_session_end_when_that_comes_before_the_delay_section_3_1_3_2_2() {
    scenario("paho5_wills.py", "will_at_session_end_before_the_delay");
}

#[test]
fn paho5_clean_start_reconnect_publishes_the_delayed_will_at_once_section_3_1_3_2_2() {
    scenario(
        "paho5_wills.py",
        "will_published_when_clean_start_ends_the_session",
    );
}

#[test]
fn paho5_disconnect_0x04_publishes_the_will_section_3_14_2_1() {
    scenario("paho5_wills.py", "disconnect_with_will_message_0x04");
}

#[test]
fn paho5_silent_client_gets_disconnect_0x8d_and_its_will_is_published_mqtt_3_1_2_22() {
    scenario(
        "paho5_wills.py",
        "keep_alive_timeout_disconnects_0x8d_and_publishes_the_will",
    );
}

// ---- MQTT 5 over WebSocket ---------------------------------------------------------------

fn tcp_and_ws_broker() -> Broker {
    Broker::with_config(&format!(
        "sys_interval = 0\n{TCP_ONLY}\n[listeners.ws]\ntype = \"ws\"\nbind = \"127.0.0.1:0\"\n"
    ))
}

#[test]
fn paho5_over_websocket_qos_0_1_2_with_reason_codes() {
    let broker = tcp_and_ws_broker();
    let pass = scenario_over(
        broker.listener("ws"),
        "websockets",
        "paho5_qos.py",
        "qos_levels_and_ack_reason_codes",
    );
    assert!(pass.contains("0x10 without subscribers"), "{pass}");
}

#[test]
fn paho5_over_websocket_session_takeover_disconnects_the_old_client_0x8e() {
    let broker = tcp_and_ws_broker();
    scenario_over(
        broker.listener("ws"),
        "websockets",
        "paho5_sessions.py",
        "session_takeover",
    );
}
