//! What CONNECT settles for a session: its expiry, and the CONNACK properties that tell the
//! client the truth about this broker (MQTT 5 section 3.2.2.3).

use super::{KeepAlive, SessionLimits, Violation};
use crate::protocol::{Connect, Properties, ProtocolVersion, ReasonCode};

/// How long a session outlives its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpiry {
    /// Seconds; 0 = ends with the connection; `u32::MAX` = never expires.
    pub secs: u32,
    /// The client asked for more than `max_session_expiry` (v5: CONNACK says the value used).
    pub capped: bool,
}

impl SessionExpiry {
    pub const NEVER: u32 = u32::MAX;

    /// From CONNECT: v5 Session Expiry Interval (absent = 0), capped at `max`; MQTT 3.x Clean
    /// Session = 0 keeps the session without expiry, Clean Session = 1 ends it with the
    /// connection [MQTT-3.1.2-6].
    pub fn from_connect(connect: &Connect, max: u32) -> SessionExpiry {
        if connect.protocol.is_v5() {
            let asked = connect.properties.session_expiry_interval.unwrap_or(0);
            SessionExpiry {
                secs: asked.min(max),
                capped: asked > max,
            }
        } else {
            SessionExpiry {
                secs: if connect.clean_start { 0 } else { Self::NEVER },
                capped: false,
            }
        }
    }

    /// A v5 DISCONNECT may change the expiry, but not from 0 to non-zero [MQTT-3.14.2-2].
    pub fn on_disconnect(
        self,
        requested: Option<u32>,
        max: u32,
    ) -> Result<SessionExpiry, Violation> {
        match requested {
            None => Ok(self),
            Some(asked) if self.secs == 0 && asked != 0 => Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "DISCONNECT set a Session Expiry Interval after CONNECT set 0",
            )),
            Some(asked) => Ok(SessionExpiry {
                secs: asked.min(max),
                capped: asked > max,
            }),
        }
    }
}

/// The CONNACK properties for a v5 client that was accepted.
pub fn connack_properties(
    version: ProtocolVersion,
    limits: &SessionLimits,
    max_packet_size: u32,
    keep_alive: KeepAlive,
    expiry: SessionExpiry,
    assigned_client_identifier: Option<String>,
) -> Properties {
    if !version.is_v5() {
        return Properties::default();
    }
    Properties {
        receive_maximum: (limits.receive_maximum != u16::MAX).then_some(limits.receive_maximum),
        // Maximum QoS absent: QoS 2 is supported.
        retain_available: Some(1),
        maximum_packet_size: Some(max_packet_size),
        topic_alias_maximum: (limits.topic_alias_maximum > 0).then_some(limits.topic_alias_maximum),
        wildcard_subscription_available: Some(1),
        subscription_identifier_available: Some(1),
        shared_subscription_available: Some(1),
        server_keep_alive: keep_alive.server_keep_alive,
        session_expiry_interval: expiry.capped.then_some(expiry.secs),
        assigned_client_identifier,
        ..Properties::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(version: ProtocolVersion, clean: bool, expiry: Option<u32>) -> Connect {
        Connect {
            protocol: version,
            clean_start: clean,
            keep_alive: 30,
            properties: Properties {
                session_expiry_interval: expiry,
                ..Properties::default()
            },
            client_id: "c".into(),
            will: None,
            username: None,
            password: None,
        }
    }

    #[test]
    fn v311_clean_session_zero_keeps_the_session_mqtt_3_1_2_4() {
        let e = SessionExpiry::from_connect(&connect(ProtocolVersion::V311, false, None), 60);
        assert_eq!(e.secs, SessionExpiry::NEVER);
        let e = SessionExpiry::from_connect(&connect(ProtocolVersion::V311, true, None), 60);
        assert_eq!(e.secs, 0);
    }

    #[test]
    fn v5_absent_session_expiry_means_the_session_ends_with_the_connection() {
        let e = SessionExpiry::from_connect(&connect(ProtocolVersion::V5, false, None), 60);
        assert_eq!(e.secs, 0);
        let e = SessionExpiry::from_connect(&connect(ProtocolVersion::V5, false, Some(30)), 60);
        assert_eq!(
            e,
            SessionExpiry {
                secs: 30,
                capped: false
            }
        );
    }

    #[test]
    fn v5_session_expiry_above_broker_max_is_capped_and_announced() {
        let e = SessionExpiry::from_connect(&connect(ProtocolVersion::V5, false, Some(999)), 60);
        assert_eq!(
            e,
            SessionExpiry {
                secs: 60,
                capped: true
            }
        );
        let limits = SessionLimits {
            max_inflight: 10,
            max_queued_messages: 10,
            receive_maximum: 10,
            topic_alias_maximum: 5,
        };
        let keep = KeepAlive {
            secs: 30,
            server_keep_alive: None,
        };
        let p = connack_properties(ProtocolVersion::V5, &limits, 1000, keep, e, None);
        assert_eq!(p.session_expiry_interval, Some(60));
    }

    #[test]
    fn disconnect_cannot_set_expiry_after_connect_set_zero_mqtt_3_14_2_2() {
        let zero = SessionExpiry {
            secs: 0,
            capped: false,
        };
        assert_eq!(
            zero.on_disconnect(Some(10), 60).unwrap_err().reason,
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(zero.on_disconnect(Some(0), 60).unwrap().secs, 0);
        let some = SessionExpiry {
            secs: 10,
            capped: false,
        };
        assert_eq!(some.on_disconnect(Some(0), 60).unwrap().secs, 0);
        assert_eq!(some.on_disconnect(None, 60).unwrap().secs, 10);
    }

    #[test]
    fn connack_properties_tell_the_truth() {
        let limits = SessionLimits {
            max_inflight: 10,
            max_queued_messages: 10,
            receive_maximum: 50,
            topic_alias_maximum: 8,
        };
        let keep = KeepAlive {
            secs: 60,
            server_keep_alive: Some(60),
        };
        let e = SessionExpiry {
            secs: 0,
            capped: false,
        };
        let p = connack_properties(
            ProtocolVersion::V5,
            &limits,
            4096,
            keep,
            e,
            Some("auto-1".into()),
        );
        assert_eq!(p.receive_maximum, Some(50));
        assert_eq!(p.maximum_qos, None);
        assert_eq!(p.retain_available, Some(1));
        assert_eq!(p.maximum_packet_size, Some(4096));
        assert_eq!(p.topic_alias_maximum, Some(8));
        assert_eq!(p.wildcard_subscription_available, Some(1));
        assert_eq!(p.subscription_identifier_available, Some(1));
        assert_eq!(p.shared_subscription_available, Some(1));
        assert_eq!(p.server_keep_alive, Some(60));
        assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
        assert_eq!(p.session_expiry_interval, None);
        assert!(connack_properties(ProtocolVersion::V311, &limits, 4096, keep, e, None).is_empty());
    }
}
