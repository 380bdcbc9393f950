//! MQTT 5 enhanced authentication (section 4.12) through the real binary and the
//! `auth-scram` plugin: a raw-socket client runs SCRAM-SHA-256 (RFC 5802 / 7677) over CONNECT,
//! AUTH and CONNACK, then re-authenticates with AUTH 0x19. Packets are encoded and decoded
//! with the broker's own codec; the SCRAM client side is written here from the RFC. MQTT.js
//! runs the same exchange through its `handleAuth` (tests/js/mqttjs_scram.mjs).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use waspmq::protocol::{
    decode_from_server, encode, Auth, Connect, Packet, Properties, ProtocolVersion, ReasonCode,
};

use crate::plugins::{plugin, toml_path};
use crate::support::{Broker, Raw, WAIT};

const METHOD: &str = "SCRAM-SHA-256";

/// The SCRAM plugin with two users, anonymous clients refused, and `extra` config.
fn scram_broker(extra: &str) -> Broker {
    Broker::with_config(&format!(
        "sys_interval = 0\n{}\n{extra}\n[auth]\nallow_anonymous = false\n\n[[plugins]]\nname = \"scram\"\npath = \"{}\"\nrequired = true\non_error = \"deny\"\ntimeout_ms = 2000\n[plugins.config]\niterations = 4096\nusers = {{ alice = \"secret\", bob = \"hunter2\" }}\n",
        crate::support::TCP_ONLY,
        toml_path(&plugin("auth_scram")),
    ))
}

fn auth_properties(method: &str, data: Option<&[u8]>) -> Properties {
    Properties {
        authentication_method: Some(method.to_owned()),
        authentication_data: data.map(Bytes::copy_from_slice),
        ..Properties::default()
    }
}

fn connect(client_id: &str, method: Option<&str>, data: Option<&[u8]>) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        properties: match method {
            Some(m) => auth_properties(m, data),
            None => Properties::default(),
        },
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
    }))
}

fn auth(reason: ReasonCode, method: &str, data: &[u8]) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: auth_properties(method, Some(data)),
    })
}

async fn send(raw: &mut Raw, packet: &Packet) {
    let mut out = BytesMut::new();
    encode(packet, ProtocolVersion::V5, &mut out);
    raw.send(&out).await;
}

async fn recv(raw: &mut Raw) -> Option<Packet> {
    let bytes = raw.recv(WAIT).await?;
    let mut buf = BytesMut::from(&bytes[..]);
    Some(
        decode_from_server(&mut buf, ProtocolVersion::V5, 1 << 20)
            .expect("broker packet decodes")
            .expect("whole packet"),
    )
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The client side of one SCRAM-SHA-256 exchange.
struct ScramClient {
    user: String,
    password: String,
    nonce: String,
    expected_server_final: Option<String>,
}

impl ScramClient {
    fn new(user: &str, password: &str) -> ScramClient {
        ScramClient {
            user: user.to_owned(),
            password: password.to_owned(),
            nonce: "fyko+d2lbbFgONRv9qkxdawL".to_owned(),
            expected_server_final: None,
        }
    }

    fn bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare()).into_bytes()
    }

    /// The client-final-message answering `server_first`.
    fn last(&mut self, server_first: &[u8]) -> Vec<u8> {
        let server_first = std::str::from_utf8(server_first).expect("server-first is UTF-8");
        let mut fields = server_first.split(',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .expect("r=");
        assert!(nonce.starts_with(&self.nonce), "server nonce extends ours");
        assert!(nonce.len() > self.nonce.len(), "server added its nonce");
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .map(|s| B64.decode(s).expect("salt base64"))
            .expect("s=");
        let iterations: u32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .expect("i=");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare());
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_final = Some(format!(
            "v={}",
            B64.encode(hmac(&server_key, auth_message.as_bytes()))
        ));
        format!("{without_proof},p={}", B64.encode(proof)).into_bytes()
    }
}

/// Expects AUTH 0x18 carrying the method [MQTT-4.12.0-2] [MQTT-4.12.0-5]; its data.
async fn expect_challenge(raw: &mut Raw) -> Bytes {
    match recv(raw).await {
        Some(Packet::Auth(a)) => {
            assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            a.properties.authentication_data.expect("server-first")
        }
        other => panic!("expected AUTH 0x18, got {other:?}"),
    }
}

/// Expects a CONNACK refusing with `reason`, then the close [MQTT-4.12.0-4].
async fn expect_refusal(raw: &mut Raw, reason: ReasonCode) {
    match recv(raw).await {
        Some(Packet::ConnAck(c)) => assert_eq!(c.reason, reason),
        other => panic!("expected CONNACK {reason}, got {other:?}"),
    }
    assert!(raw.closed(WAIT).await, "connection closed after refusal");
}

/// Re-authenticates with AUTH 0x19 and answers the server's challenge; the caller reads the
/// outcome.
async fn reauthenticate(raw: &mut Raw, client: &mut ScramClient) {
    send(
        raw,
        &auth(ReasonCode::REAUTHENTICATE, METHOD, &client.first()),
    )
    .await;
    let server_first = expect_challenge(raw).await;
    let last = client.last(&server_first);
    send(
        raw,
        &auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &last),
    )
    .await;
}

async fn expect_disconnect(raw: &mut Raw, reason: ReasonCode) {
    match recv(raw).await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason),
        other => panic!("expected DISCONNECT {reason}, got {other:?}"),
    }
}

/// Runs the whole exchange for `client` and returns the open connection.
async fn scram_connect(broker: &Broker, id: &str, client: &mut ScramClient) -> Raw {
    let mut raw = Raw::connect(broker.addr()).await;
    send(&mut raw, &connect(id, Some(METHOD), Some(&client.first()))).await;
    let server_first = expect_challenge(&mut raw).await;
    let last = client.last(&server_first);
    send(
        &mut raw,
        &auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &last),
    )
    .await;
    match recv(&mut raw).await {
        Some(Packet::ConnAck(c)) => {
            assert_eq!(c.reason, ReasonCode::SUCCESS);
            assert_eq!(c.properties.authentication_method.as_deref(), Some(METHOD));
            let expected = client.expected_server_final.clone().expect("final sent");
            assert_eq!(
                c.properties.authentication_data.as_deref(),
                Some(expected.as_bytes())
            );
        }
        other => panic!("expected CONNACK 0x00, got {other:?}"),
    }
    raw
}

async fn ping(raw: &mut Raw) {
    raw.send(&[0xC0, 0x00]).await;
    assert_eq!(recv(raw).await, Some(Packet::PingResp));
}

#[tokio::test]
async fn scram_exchange_connects_and_connack_carries_method_and_data_mqtt_4_12_0_5() {
    let broker = scram_broker("");
    // No user name in CONNECT and anonymous clients refused: the SCRAM user is the identity.
    let mut raw = scram_connect(
        &broker,
        "scram-ok",
        &mut ScramClient::new("alice", "secret"),
    )
    .await;
    ping(&mut raw).await;
    assert!(broker
        .log
        .wait_for("Client connected: scram-ok, Username: alice", WAIT)
        .is_some());
}

#[tokio::test]
async fn wrong_password_or_unknown_user_is_refused_with_0x86_mqtt_4_12_0_4() {
    let broker = scram_broker("");
    for (id, user, password) in [("wrong-pw", "alice", "nope"), ("unknown", "mallory", "x")] {
        let mut client = ScramClient::new(user, password);
        let mut raw = Raw::connect(broker.addr()).await;
        send(&mut raw, &connect(id, Some(METHOD), Some(&client.first()))).await;
        let server_first = expect_challenge(&mut raw).await;
        let last = client.last(&server_first);
        send(
            &mut raw,
            &auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &last),
        )
        .await;
        expect_refusal(&mut raw, ReasonCode::BAD_USER_NAME_OR_PASSWORD).await;
    }
}

#[tokio::test]
async fn unsupported_method_is_refused_with_0x8c_mqtt_4_12_0_1() {
    let broker = scram_broker("");
    let mut raw = Raw::connect(broker.addr()).await;
    send(&mut raw, &connect("kerberos", Some("GS2-KRB5"), None)).await;
    expect_refusal(&mut raw, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
    // No plugin at all: no method is supported.
    let plain = Broker::start();
    let mut raw = Raw::connect(plain.addr()).await;
    send(
        &mut raw,
        &connect("none", Some(METHOD), Some(b"n,,n=a,r=b")),
    )
    .await;
    expect_refusal(&mut raw, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
}

#[tokio::test]
async fn auth_with_another_method_is_refused_mqtt_4_12_0_5() {
    let broker = scram_broker("");
    let client = ScramClient::new("alice", "secret");
    let mut raw = Raw::connect(broker.addr()).await;
    send(
        &mut raw,
        &connect("switch", Some(METHOD), Some(&client.first())),
    )
    .await;
    expect_challenge(&mut raw).await;
    send(
        &mut raw,
        &auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            "PLAIN",
            b"\0alice\0secret",
        ),
    )
    .await;
    expect_refusal(&mut raw, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
}

#[tokio::test]
async fn client_answer_other_than_0x18_is_refused_mqtt_4_12_0_3() {
    let broker = scram_broker("");
    let client = ScramClient::new("alice", "secret");
    let mut raw = Raw::connect(broker.addr()).await;
    send(
        &mut raw,
        &connect("reauth-early", Some(METHOD), Some(&client.first())),
    )
    .await;
    expect_challenge(&mut raw).await;
    send(&mut raw, &auth(ReasonCode::REAUTHENTICATE, METHOD, b"x")).await;
    expect_refusal(&mut raw, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn only_auth_or_disconnect_before_connack_mqtt_3_1_2_30() {
    let broker = scram_broker("");
    let client = ScramClient::new("alice", "secret");
    let mut raw = Raw::connect(broker.addr()).await;
    send(
        &mut raw,
        &connect("eager", Some(METHOD), Some(&client.first())),
    )
    .await;
    expect_challenge(&mut raw).await;
    raw.send(&[0xC0, 0x00]).await; // PINGREQ before CONNACK
    expect_refusal(&mut raw, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn the_connect_timeout_covers_the_whole_exchange() {
    let broker = scram_broker("[limits]\nconnect_timeout_secs = 1\n");
    let client = ScramClient::new("alice", "secret");
    let mut raw = Raw::connect(broker.addr()).await;
    send(
        &mut raw,
        &connect("silent", Some(METHOD), Some(&client.first())),
    )
    .await;
    expect_challenge(&mut raw).await;
    // Never answers the challenge: closed without CONNACK.
    let (packets, closed) = raw.packets_until_close(Duration::from_secs(5)).await;
    assert!(closed, "closed after the connect timeout");
    assert!(packets.is_empty(), "no CONNACK: {packets:?}");
}

#[tokio::test]
async fn reauthentication_succeeds_with_auth_0x00_mqtt_4_12_1_1() {
    let broker = scram_broker("");
    let mut raw = scram_connect(&broker, "reauth", &mut ScramClient::new("alice", "secret")).await;
    let mut again = ScramClient::new("alice", "secret");
    again.nonce = "rOprNGfwEbeRWgbNEkqO".to_owned();
    reauthenticate(&mut raw, &mut again).await;
    match recv(&mut raw).await {
        Some(Packet::Auth(a)) => {
            assert_eq!(a.reason, ReasonCode::SUCCESS);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            let expected = again.expected_server_final.clone().expect("final");
            assert_eq!(
                a.properties.authentication_data.as_deref(),
                Some(expected.as_bytes())
            );
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    ping(&mut raw).await;
    // Re-authenticating with another method is a protocol error.
    send(&mut raw, &auth(ReasonCode::REAUTHENTICATE, "PLAIN", b"x")).await;
    expect_disconnect(&mut raw, ReasonCode::PROTOCOL_ERROR).await;
    assert!(raw.closed(WAIT).await);
}

#[tokio::test]
async fn failed_reauthentication_disconnects_mqtt_4_12_1_2() {
    let broker = scram_broker("");
    let mut raw = scram_connect(
        &broker,
        "reauth-bad",
        &mut ScramClient::new("alice", "secret"),
    )
    .await;
    let mut wrong = ScramClient::new("alice", "not-the-password");
    reauthenticate(&mut raw, &mut wrong).await;
    // 0x86 exists in CONNACK only: the DISCONNECT says 0x87 Not authorized.
    expect_disconnect(&mut raw, ReasonCode::NOT_AUTHORIZED).await;
    assert!(raw.closed(WAIT).await);
}

#[tokio::test]
async fn reauthentication_as_another_user_disconnects() {
    let broker = scram_broker("");
    let mut raw = scram_connect(
        &broker,
        "reauth-bob",
        &mut ScramClient::new("alice", "secret"),
    )
    .await;
    let mut bob = ScramClient::new("bob", "hunter2");
    reauthenticate(&mut raw, &mut bob).await;
    expect_disconnect(&mut raw, ReasonCode::NOT_AUTHORIZED).await;
}

#[tokio::test]
async fn without_a_method_no_auth_is_exchanged_mqtt_4_12_0_6_and_mqtt_4_12_0_7() {
    let broker = Broker::start();
    let mut raw = Raw::connect(broker.addr()).await;
    send(&mut raw, &connect("plain", None, None)).await;
    match recv(&mut raw).await {
        Some(Packet::ConnAck(c)) => {
            assert_eq!(c.reason, ReasonCode::SUCCESS);
            assert_eq!(c.properties.authentication_method, None);
            assert_eq!(c.properties.authentication_data, None);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    send(&mut raw, &auth(ReasonCode::REAUTHENTICATE, METHOD, b"x")).await;
    expect_disconnect(&mut raw, ReasonCode::PROTOCOL_ERROR).await;
    assert!(raw.closed(WAIT).await);
}

#[test]
fn mqttjs_runs_scram_through_handle_auth() {
    use crate::external::{node_script, Tool, TOOL_WAIT};
    let broker = scram_broker("");
    let mut command = node_script("mqttjs_scram.mjs");
    command
        .env("BROKER_URL", format!("mqtt://{}", broker.addr()))
        .env("SCRAM_USER", "bob")
        .env("SCRAM_PASSWORD", "hunter2")
        .env("TIMEOUT_MS", TOOL_WAIT.as_millis().to_string());
    let output = Tool::run("mqttjs_scram.mjs", &mut command, TOOL_WAIT * 2);
    assert!(
        output.contains("OK connected with SCRAM-SHA-256, server signature verified"),
        "{output}"
    );
    assert!(output.contains("error code 134"), "0x86 refusal: {output}");
    assert!(output.lines().any(|l| l == "DONE"), "{output}");
}
