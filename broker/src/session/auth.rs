//! MQTT 5 enhanced authentication (section 4.12), sans-IO: the rules of the AUTH exchange for
//! one connection. The broker feeds it the client's packets and the plugins' answers; it says
//! what to send (AUTH 0x18 / 0x00, the CONNACK's authentication properties) or how the
//! connection ends (CONNACK refusal before CONNACK, DISCONNECT after). Who decides — the
//! plugins — is not its business: it only sees a [`PluginAnswer`].

use bytes::Bytes;

use super::Violation;
use crate::protocol::{
    encoded_len, Auth, Connect, Packet, Properties, ProtocolVersion, ReasonCode,
};

/// Challenges one exchange may take before the broker gives up on it: SCRAM needs one, Kerberos
/// a few; a plugin that never concludes must not keep a connection (and a plugin call per
/// round) busy for ever.
pub const MAX_AUTH_ROUNDS: u8 = 16;
/// Room kept in the CONNACK for the properties other than the authentication ones (the
/// broker's limits, an assigned client identifier): well above what they take.
const CONNACK_OTHER_PROPERTIES: usize = 192;

/// Where the exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// No exchange open (after CONNACK, between re-authentications).
    Idle,
    /// The client's data went to the plugins; their answer is awaited.
    Deciding,
    /// AUTH 0x18 sent; the client's AUTH 0x18 is awaited.
    AwaitingClient,
}

/// One connection's enhanced authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedAuth {
    /// The Authentication Method of CONNECT: every AUTH and the CONNACK carry it
    /// [MQTT-4.12.0-5].
    method: String,
    /// CONNACK was sent: further exchanges are re-authentications.
    connected: bool,
    step: Step,
    /// Challenges sent in the current exchange.
    rounds: u8,
    /// The client's Maximum Packet Size: no AUTH or CONNACK beyond it [MQTT-3.1.2-24].
    max_packet_size: Option<u32>,
}

/// A client AUTH the plugins must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// AUTH 0x19 after CONNACK: a re-authentication begins (the plugins' `auth-start`).
    Reauthenticate { data: Option<Bytes> },
    /// AUTH 0x18 answering a challenge (the plugins' `auth-continue`).
    Continue { data: Option<Bytes> },
}

/// What the plugins answered to the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAnswer {
    /// Authenticated; the data goes to the client.
    Success { data: Option<Bytes> },
    /// One more round: this data goes to the client in AUTH 0x18.
    Challenge { data: Bytes },
    /// Refused with this reason code (an error code: >= 0x80).
    Deny(ReasonCode),
    /// No plugin handles the method.
    Unsupported,
}

/// What the broker does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Send this AUTH 0x18 and wait for the client's answer.
    Challenge(Packet),
    /// Before CONNACK: the client is in; its CONNACK carries these Authentication Method and
    /// Data properties (see [`AuthOutcome::apply_to`]).
    Accepted { method: String, data: Option<Bytes> },
    /// Re-authentication succeeded: send this AUTH 0x00.
    Reauthenticated(Packet),
    /// Before CONNACK: refuse with this CONNACK reason code and close [MQTT-4.12.0-4].
    Refuse(ReasonCode),
    /// After CONNACK: DISCONNECT with this reason code and close [MQTT-4.12.1-2].
    Disconnect(ReasonCode),
}

impl AuthOutcome {
    /// Puts the Authentication Method (and Data) of an accepted exchange into the CONNACK's
    /// properties [MQTT-4.12.0-5].
    pub fn apply_to(method: &str, data: Option<Bytes>, properties: &mut Properties) {
        properties.authentication_method = Some(method.to_owned());
        properties.authentication_data = data;
    }
}

/// How a packet received before CONNACK ends the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyEnd {
    /// The client sent DISCONNECT: it may abandon the exchange at any time (section 4.12).
    ClientLeft,
    /// Refuse with this CONNACK reason code and close.
    Refuse(Violation),
}

/// An AUTH packet from the broker with the connection's method.
fn auth_packet(reason: ReasonCode, method: &str, data: Option<Bytes>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(method.to_owned()),
            authentication_data: data,
            ..Properties::default()
        },
    })
}

/// The reason a server DISCONNECT may carry for a failed re-authentication: the codes only
/// CONNACK knows (0x86 bad user name or password, 0x8A banned, 0x8C bad authentication method)
/// become 0x87 Not authorized, other codes not allowed in DISCONNECT (section 3.14.2.1)
/// become 0x80.
pub fn reauth_disconnect_reason(code: ReasonCode) -> ReasonCode {
    match code.0 {
        0x86 | 0x8A | 0x8C => ReasonCode::NOT_AUTHORIZED,
        0x80 | 0x81 | 0x82 | 0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2 => code,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// The reason a CONNACK may carry for a refused authentication (section 3.2.2.2); another
/// error code becomes 0x80, a success code too (a plugin can never make a refusal look like
/// a success).
pub fn connack_refusal_reason(code: ReasonCode) -> ReasonCode {
    match code.0 {
        0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F => code,
        _ => ReasonCode::UNSPECIFIED_ERROR,
    }
}

impl EnhancedAuth {
    /// A v5 CONNECT with an Authentication Method opens an exchange; the returned data (its
    /// Authentication Data, if any) goes to the plugins' `auth-start`. `None` for any other
    /// CONNECT: then the broker never sends AUTH nor an Authentication Method [MQTT-4.12.0-6].
    pub fn from_connect(connect: &Connect) -> Option<(EnhancedAuth, Option<Bytes>)> {
        if !connect.protocol.is_v5() {
            return None;
        }
        let method = connect.properties.authentication_method.clone()?;
        let auth = EnhancedAuth {
            method,
            connected: false,
            step: Step::Deciding,
            rounds: 0,
            max_packet_size: connect.properties.maximum_packet_size,
        };
        Some((auth, connect.properties.authentication_data.clone()))
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// A packet the client sent before CONNACK. Only AUTH and DISCONNECT are allowed
    /// [MQTT-3.1.2-30]; an AUTH must answer a challenge with 0x18 [MQTT-4.12.0-3] and the same
    /// method [MQTT-4.12.0-5].
    pub fn before_connack(&mut self, packet: &Packet) -> Result<ClientAuth, EarlyEnd> {
        let auth = match packet {
            Packet::Auth(auth) => auth,
            Packet::Disconnect(_) => return Err(EarlyEnd::ClientLeft),
            _ => {
                return Err(EarlyEnd::Refuse(Violation::new(
                    ReasonCode::PROTOCOL_ERROR,
                    "only AUTH or DISCONNECT may come before CONNACK [MQTT-3.1.2-30]",
                )))
            }
        };
        self.check_method(auth).map_err(EarlyEnd::Refuse)?;
        if self.connected || self.step != Step::AwaitingClient {
            return Err(EarlyEnd::Refuse(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH that answers no challenge",
            )));
        }
        if auth.reason != ReasonCode::CONTINUE_AUTHENTICATION {
            return Err(EarlyEnd::Refuse(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH answering a challenge must carry 0x18 [MQTT-4.12.0-3]",
            )));
        }
        self.step = Step::Deciding;
        Ok(ClientAuth::Continue {
            data: auth.properties.authentication_data.clone(),
        })
    }

    /// An AUTH the client sent after CONNACK: 0x19 starts a re-authentication with the same
    /// method [MQTT-4.12.1-1], 0x18 answers the broker's challenge [MQTT-4.12.0-3]; anything
    /// else is a protocol error.
    pub fn on_auth(&mut self, auth: &Auth) -> Result<ClientAuth, Violation> {
        if !self.connected {
            return Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH before CONNACK outside the exchange",
            ));
        }
        if auth.properties.authentication_method.as_deref() != Some(self.method.as_str()) {
            // DISCONNECT has no 0x8C: a different method is a protocol error (section 3.15).
            return Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH must carry the Authentication Method of CONNECT [MQTT-4.12.1-1]",
            ));
        }
        let data = auth.properties.authentication_data.clone();
        match (auth.reason, self.step) {
            (ReasonCode::REAUTHENTICATE, Step::Idle) => {
                self.step = Step::Deciding;
                self.rounds = 0;
                Ok(ClientAuth::Reauthenticate { data })
            }
            (ReasonCode::CONTINUE_AUTHENTICATION, Step::AwaitingClient) => {
                self.step = Step::Deciding;
                Ok(ClientAuth::Continue { data })
            }
            (ReasonCode::REAUTHENTICATE, _) => Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH 0x19 while a re-authentication is in progress",
            )),
            (ReasonCode::CONTINUE_AUTHENTICATION, _) => Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH 0x18 that answers no challenge",
            )),
            _ => Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH 0x00 is sent by the server only",
            )),
        }
    }

    fn check_method(&self, auth: &Auth) -> Result<(), Violation> {
        match auth.properties.authentication_method.as_deref() {
            Some(m) if m == self.method => Ok(()),
            Some(_) => Err(Violation::new(
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "AUTH with another Authentication Method than CONNECT [MQTT-4.12.0-5]",
            )),
            None => Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an Authentication Method (section 3.15.2.2.2)",
            )),
        }
    }

    /// Whether a packet of `len` bytes may go to the client [MQTT-3.1.2-24].
    fn fits(&self, len: usize) -> bool {
        self.max_packet_size.is_none_or(|max| len <= max as usize)
    }

    /// The plugins' answer to the step the last [`ClientAuth`] (or CONNECT) began; an answer
    /// whose packet would exceed the client's Maximum Packet Size ends the exchange with 0x95.
    pub fn on_answer(&mut self, answer: PluginAnswer) -> AuthOutcome {
        let outcome = self.decide(answer);
        let fits = match &outcome {
            AuthOutcome::Challenge(p) | AuthOutcome::Reauthenticated(p) => {
                self.fits(encoded_len(p, ProtocolVersion::V5))
            }
            AuthOutcome::Accepted { method, data } => self.fits(
                method.len() + data.as_ref().map_or(0, |d| d.len()) + CONNACK_OTHER_PROPERTIES,
            ),
            AuthOutcome::Refuse(_) | AuthOutcome::Disconnect(_) => true,
        };
        if fits {
            return outcome;
        }
        self.step = Step::Idle;
        if self.connected && !matches!(outcome, AuthOutcome::Accepted { .. }) {
            AuthOutcome::Disconnect(ReasonCode::PACKET_TOO_LARGE)
        } else {
            self.connected = false;
            AuthOutcome::Refuse(ReasonCode::PACKET_TOO_LARGE)
        }
    }

    fn decide(&mut self, answer: PluginAnswer) -> AuthOutcome {
        let refuse = |connected: bool, code: ReasonCode| {
            if connected {
                AuthOutcome::Disconnect(reauth_disconnect_reason(code))
            } else {
                AuthOutcome::Refuse(connack_refusal_reason(code))
            }
        };
        if self.step != Step::Deciding {
            // Only reachable through a broker bug: end the connection rather than guess.
            return refuse(self.connected, ReasonCode::UNSPECIFIED_ERROR);
        }
        match answer {
            PluginAnswer::Challenge { data } => {
                if self.rounds >= MAX_AUTH_ROUNDS {
                    self.step = Step::Idle;
                    return refuse(self.connected, ReasonCode::NOT_AUTHORIZED);
                }
                self.rounds += 1;
                self.step = Step::AwaitingClient;
                // [MQTT-4.12.0-2]: a challenge is AUTH 0x18, with the method [MQTT-4.12.0-5].
                AuthOutcome::Challenge(auth_packet(
                    ReasonCode::CONTINUE_AUTHENTICATION,
                    &self.method,
                    Some(data),
                ))
            }
            PluginAnswer::Success { data } => {
                self.step = Step::Idle;
                self.rounds = 0;
                if self.connected {
                    AuthOutcome::Reauthenticated(auth_packet(
                        ReasonCode::SUCCESS,
                        &self.method,
                        data,
                    ))
                } else {
                    self.connected = true;
                    AuthOutcome::Accepted {
                        method: self.method.clone(),
                        data,
                    }
                }
            }
            PluginAnswer::Deny(code) => {
                self.step = Step::Idle;
                refuse(self.connected, code)
            }
            // [MQTT-4.12.0-1]: 0x8C before CONNACK; DISCONNECT has no 0x8C (0x87 instead).
            PluginAnswer::Unsupported => {
                self.step = Step::Idle;
                refuse(self.connected, ReasonCode::BAD_AUTHENTICATION_METHOD)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Disconnect, ProtocolVersion};

    fn connect(version: ProtocolVersion, method: Option<&str>, data: Option<&[u8]>) -> Connect {
        Connect {
            protocol: version,
            clean_start: true,
            keep_alive: 30,
            properties: Properties {
                authentication_method: method.map(str::to_owned),
                authentication_data: data.map(Bytes::copy_from_slice),
                ..Properties::default()
            },
            client_id: "c".into(),
            will: None,
            username: None,
            password: None,
        }
    }

    fn auth(reason: ReasonCode, method: Option<&str>, data: &[u8]) -> Auth {
        Auth {
            reason,
            properties: Properties {
                authentication_method: method.map(str::to_owned),
                authentication_data: Some(Bytes::copy_from_slice(data)),
                ..Properties::default()
            },
        }
    }

    fn started() -> EnhancedAuth {
        let (a, data) = EnhancedAuth::from_connect(&connect(
            ProtocolVersion::V5,
            Some("SCRAM-SHA-256"),
            Some(b"first"),
        ))
        .expect("exchange");
        assert_eq!(data.as_deref(), Some(&b"first"[..]));
        a
    }

    fn challenge(data: &[u8]) -> PluginAnswer {
        PluginAnswer::Challenge {
            data: Bytes::copy_from_slice(data),
        }
    }

    /// An exchange that reached CONNACK.
    fn connected() -> EnhancedAuth {
        let mut a = started();
        assert!(matches!(
            a.on_answer(PluginAnswer::Success { data: None }),
            AuthOutcome::Accepted { .. }
        ));
        a
    }

    const M: Option<&str> = Some("SCRAM-SHA-256");

    #[test]
    fn connect_without_method_opens_no_exchange_mqtt_4_12_0_6() {
        assert!(EnhancedAuth::from_connect(&connect(ProtocolVersion::V5, None, None)).is_none());
        // 3.1.1 has no properties: never enhanced authentication.
        let mut c = connect(ProtocolVersion::V311, M, None);
        c.properties.authentication_method = Some("x".into());
        assert!(EnhancedAuth::from_connect(&c).is_none());
    }

    #[test]
    fn unsupported_method_refuses_with_0x8c_mqtt_4_12_0_1() {
        let mut a = started();
        assert_eq!(
            a.on_answer(PluginAnswer::Unsupported),
            AuthOutcome::Refuse(ReasonCode::BAD_AUTHENTICATION_METHOD)
        );
    }

    #[test]
    fn challenge_is_auth_0x18_with_the_method_mqtt_4_12_0_2() {
        let mut a = started();
        let AuthOutcome::Challenge(Packet::Auth(sent)) = a.on_answer(challenge(b"c1")) else {
            panic!("expected AUTH")
        };
        assert_eq!(sent.reason, ReasonCode::CONTINUE_AUTHENTICATION);
        assert_eq!(sent.properties.authentication_method.as_deref(), M);
        assert_eq!(
            sent.properties.authentication_data.as_deref(),
            Some(&b"c1"[..])
        );
    }

    #[test]
    fn client_answer_must_be_0x18_mqtt_4_12_0_3() {
        let mut a = started();
        a.on_answer(challenge(b"c1"));
        let wrong = Packet::Auth(auth(ReasonCode::REAUTHENTICATE, M, b"r"));
        assert!(matches!(
            a.before_connack(&wrong),
            Err(EarlyEnd::Refuse(v)) if v.reason == ReasonCode::PROTOCOL_ERROR
        ));
        let mut a = started();
        a.on_answer(challenge(b"c1"));
        let right = Packet::Auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, M, b"r"));
        assert_eq!(
            a.before_connack(&right),
            Ok(ClientAuth::Continue {
                data: Some(Bytes::from_static(b"r"))
            })
        );
    }

    #[test]
    fn rejection_at_any_point_refuses_with_an_error_code_mqtt_4_12_0_4() {
        let mut a = started();
        assert_eq!(
            a.on_answer(PluginAnswer::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD)),
            AuthOutcome::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        // After a round too, and a success code can never be the refusal.
        let mut a = started();
        a.on_answer(challenge(b"c"));
        a.before_connack(&Packet::Auth(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            M,
            b"r",
        )))
        .expect("continue");
        assert_eq!(
            a.on_answer(PluginAnswer::Deny(ReasonCode::SUCCESS)),
            AuthOutcome::Refuse(ReasonCode::UNSPECIFIED_ERROR)
        );
    }

    #[test]
    fn every_auth_and_the_connack_carry_the_connect_method_mqtt_4_12_0_5() {
        let mut a = started();
        a.on_answer(challenge(b"c"));
        let other = Packet::Auth(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            Some("PLAIN"),
            b"",
        ));
        assert!(matches!(
            a.before_connack(&other),
            Err(EarlyEnd::Refuse(v)) if v.reason == ReasonCode::BAD_AUTHENTICATION_METHOD
        ));
        let mut a = started();
        a.on_answer(challenge(b"c"));
        let none = Packet::Auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, None, b""));
        assert!(matches!(
            a.before_connack(&none),
            Err(EarlyEnd::Refuse(v)) if v.reason == ReasonCode::PROTOCOL_ERROR
        ));
        let mut a = started();
        let data = Some(Bytes::from_static(b"v=proof"));
        let AuthOutcome::Accepted { method, data: sent } =
            a.on_answer(PluginAnswer::Success { data: data.clone() })
        else {
            panic!("expected acceptance")
        };
        let mut props = Properties::default();
        AuthOutcome::apply_to(&method, sent, &mut props);
        assert_eq!(props.authentication_method.as_deref(), M);
        assert_eq!(props.authentication_data, data);
    }

    #[test]
    fn only_auth_or_disconnect_before_connack_mqtt_3_1_2_30() {
        let mut a = started();
        a.on_answer(challenge(b"c"));
        assert_eq!(
            a.before_connack(&Packet::PingReq),
            Err(EarlyEnd::Refuse(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "only AUTH or DISCONNECT may come before CONNACK [MQTT-3.1.2-30]",
            )))
        );
        let disconnect = Packet::Disconnect(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        });
        assert_eq!(a.before_connack(&disconnect), Err(EarlyEnd::ClientLeft));
    }

    #[test]
    fn reauthentication_is_auth_0x19_with_the_same_method_mqtt_4_12_1_1() {
        let mut a = connected();
        assert_eq!(
            a.on_auth(&auth(ReasonCode::REAUTHENTICATE, M, b"again")),
            Ok(ClientAuth::Reauthenticate {
                data: Some(Bytes::from_static(b"again"))
            })
        );
        let AuthOutcome::Challenge(_) = a.on_answer(challenge(b"c")) else {
            panic!("expected challenge")
        };
        assert!(a
            .on_auth(&auth(ReasonCode::CONTINUE_AUTHENTICATION, M, b"r"))
            .is_ok());
        let AuthOutcome::Reauthenticated(Packet::Auth(ok)) =
            a.on_answer(PluginAnswer::Success { data: None })
        else {
            panic!("expected AUTH 0x00")
        };
        assert_eq!(ok.reason, ReasonCode::SUCCESS);
        assert_eq!(ok.properties.authentication_method.as_deref(), M);
        // A different method is refused.
        let mut a = connected();
        assert_eq!(
            a.on_auth(&auth(ReasonCode::REAUTHENTICATE, Some("PLAIN"), b""))
                .unwrap_err()
                .reason,
            ReasonCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn reauthentication_out_of_order_is_a_protocol_error_mqtt_3_15_2_1() {
        let mut a = connected();
        // 0x18 without a challenge, 0x00 from a client.
        assert!(a
            .on_auth(&auth(ReasonCode::CONTINUE_AUTHENTICATION, M, b""))
            .is_err());
        let mut a = connected();
        assert!(a.on_auth(&auth(ReasonCode::SUCCESS, M, b"")).is_err());
        // 0x19 during a re-authentication.
        let mut a = connected();
        a.on_auth(&auth(ReasonCode::REAUTHENTICATE, M, b""))
            .expect("start");
        a.on_answer(challenge(b"c"));
        assert!(a
            .on_auth(&auth(ReasonCode::REAUTHENTICATE, M, b""))
            .is_err());
    }

    #[test]
    fn failed_reauthentication_disconnects_with_a_disconnect_reason_mqtt_4_12_1_2() {
        let mut a = connected();
        a.on_auth(&auth(ReasonCode::REAUTHENTICATE, M, b""))
            .expect("start");
        // 0x86 is a CONNACK-only code: DISCONNECT says 0x87.
        assert_eq!(
            a.on_answer(PluginAnswer::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD)),
            AuthOutcome::Disconnect(ReasonCode::NOT_AUTHORIZED)
        );
        let mut a = connected();
        a.on_auth(&auth(ReasonCode::REAUTHENTICATE, M, b""))
            .expect("start");
        assert_eq!(
            a.on_answer(PluginAnswer::Unsupported),
            AuthOutcome::Disconnect(ReasonCode::NOT_AUTHORIZED)
        );
        assert_eq!(
            reauth_disconnect_reason(ReasonCode::ADMINISTRATIVE_ACTION),
            ReasonCode::ADMINISTRATIVE_ACTION
        );
        assert_eq!(
            reauth_disconnect_reason(ReasonCode(0x05)),
            ReasonCode::UNSPECIFIED_ERROR
        );
    }

    #[test]
    fn an_exchange_that_never_concludes_is_refused_after_max_rounds() {
        let mut a = started();
        for _ in 0..MAX_AUTH_ROUNDS {
            let AuthOutcome::Challenge(_) = a.on_answer(challenge(b"c")) else {
                panic!("expected challenge")
            };
            a.before_connack(&Packet::Auth(auth(
                ReasonCode::CONTINUE_AUTHENTICATION,
                M,
                b"r",
            )))
            .expect("continue");
        }
        assert_eq!(
            a.on_answer(challenge(b"c")),
            AuthOutcome::Refuse(ReasonCode::NOT_AUTHORIZED)
        );
    }

    #[test]
    fn nothing_beyond_the_client_maximum_packet_size_mqtt_3_1_2_24() {
        let mut c = connect(ProtocolVersion::V5, M, Some(b"first"));
        c.properties.maximum_packet_size = Some(300);
        let (mut a, _) = EnhancedAuth::from_connect(&c).expect("exchange");
        assert!(matches!(
            a.on_answer(challenge(&[b'x'; 100])),
            AuthOutcome::Challenge(_)
        ));
        a.before_connack(&Packet::Auth(auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            M,
            b"r",
        )))
        .expect("continue");
        assert_eq!(
            a.on_answer(challenge(&[b'x'; 400])),
            AuthOutcome::Refuse(ReasonCode::PACKET_TOO_LARGE)
        );
        let (mut a, _) = EnhancedAuth::from_connect(&c).expect("exchange");
        assert_eq!(
            a.on_answer(PluginAnswer::Success {
                data: Some(Bytes::from(vec![0; 200]))
            }),
            AuthOutcome::Refuse(ReasonCode::PACKET_TOO_LARGE)
        );
    }

    #[test]
    fn connack_refusals_use_connack_reason_codes() {
        assert_eq!(
            connack_refusal_reason(ReasonCode::NOT_AUTHORIZED),
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            connack_refusal_reason(ReasonCode::SESSION_TAKEN_OVER),
            ReasonCode::UNSPECIFIED_ERROR
        );
        assert_eq!(
            connack_refusal_reason(ReasonCode::CONTINUE_AUTHENTICATION),
            ReasonCode::UNSPECIFIED_ERROR
        );
    }
}
