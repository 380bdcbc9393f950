//! Keep-alive: what interval applies to a connection and when it has been silent too long.
//! The broker closes a connection that sent nothing for one and a half times the keep-alive
//! [MQTT-3.1.2-24] (v5: [MQTT-3.1.2-22]).

use std::time::{Duration, Instant};

use crate::protocol::{ProtocolVersion, ReasonCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// The keep-alive in force, in seconds; 0 = none.
    pub secs: u16,
    /// v5: the Server Keep Alive to put in CONNACK because the broker changed the value.
    pub server_keep_alive: Option<u16>,
}

impl KeepAlive {
    /// Settles the keep-alive from the client's request and the broker's cap (`max_keepalive`).
    ///
    /// v5 clients are told the capped value with Server Keep Alive, which they must use
    /// [MQTT-3.2.2-21]; a request of 0 (no keep-alive) is capped too. MQTT 3.x has no way to
    /// tell the client, so a 3.x request above the cap (or 0 under a cap) is refused with
    /// "identifier rejected", as Mosquitto does, rather than disconnecting the client later
    /// for pinging at the interval it chose.
    pub fn negotiate(
        version: ProtocolVersion,
        requested: u16,
        cap: Option<u16>,
    ) -> Result<KeepAlive, ReasonCode> {
        match cap {
            Some(cap) if cap > 0 && (requested == 0 || requested > cap) => {
                if version.is_v5() {
                    Ok(KeepAlive {
                        secs: cap,
                        server_keep_alive: Some(cap),
                    })
                } else {
                    Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
                }
            }
            _ => Ok(KeepAlive {
                secs: requested,
                server_keep_alive: None,
            }),
        }
    }

    /// The instant after which a connection whose last packet arrived at `last_packet` is
    /// dead; `None` when keep-alive is off.
    pub fn deadline(&self, last_packet: Instant) -> Option<Instant> {
        (self.secs > 0).then(|| last_packet + Duration::from_millis(u64::from(self.secs) * 1500))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_is_closed_after_one_and_a_half_keep_alives_mqtt_3_1_2_24() {
        let k = KeepAlive::negotiate(ProtocolVersion::V311, 10, None).unwrap();
        let t = Instant::now();
        assert_eq!(k.deadline(t), Some(t + Duration::from_secs(15)));
        let off = KeepAlive::negotiate(ProtocolVersion::V311, 0, None).unwrap();
        assert_eq!(off.deadline(t), None);
    }

    #[test]
    fn server_keep_alive_overrides_a_larger_client_value_mqtt_3_2_2_21() {
        let k = KeepAlive::negotiate(ProtocolVersion::V5, 120, Some(60)).unwrap();
        assert_eq!(k.secs, 60);
        assert_eq!(k.server_keep_alive, Some(60));
        let zero = KeepAlive::negotiate(ProtocolVersion::V5, 0, Some(60)).unwrap();
        assert_eq!(zero.server_keep_alive, Some(60));
        let within = KeepAlive::negotiate(ProtocolVersion::V5, 30, Some(60)).unwrap();
        assert_eq!(within.secs, 30);
        assert_eq!(within.server_keep_alive, None);
    }

    #[test]
    fn v3_keep_alive_above_cap_is_refused() {
        assert_eq!(
            KeepAlive::negotiate(ProtocolVersion::V311, 120, Some(60)),
            Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
        assert!(KeepAlive::negotiate(ProtocolVersion::V311, 60, Some(60)).is_ok());
    }
}
