//! MQTT 5 enhanced authentication on a connection (section 4.12): the AUTH exchange between
//! CONNECT and CONNACK (inside the connect timeout, which bounds all of admission) and
//! re-authentication (AUTH 0x19) after CONNACK. The protocol rules are
//! [`EnhancedAuth`]'s (sans-IO, in `session`); the decisions are the plugins'
//! ([`Hooks::auth_start`] / [`Hooks::auth_continue`]). A CONNECT with an Authentication
//! Method is decided here only: the plain `authenticate` hook is not called for it, since the
//! method defines what the CONNECT's user name and password mean.

use std::sync::Arc;

use bytes::Bytes;
use tracing::info;

use super::connection::{Client, Close};
use super::wire::Wire;
use crate::plugins::{AuthExchange, AuthStep, ClientInfo, Hooks};
use crate::protocol::{Auth, Connect, Packet, ProtocolVersion, ReasonCode};
use crate::session::{AuthOutcome, ClientAuth, EarlyEnd, EnhancedAuth, PluginAnswer};

/// A connection's enhanced authentication: the rules' state and the plugin exchange in
/// progress, if any.
#[derive(Debug)]
pub(crate) struct ConnectionAuth {
    machine: EnhancedAuth,
    exchange: Option<AuthExchange>,
}

/// How the exchange before CONNACK ended.
pub(crate) enum Handshake {
    /// The client is in: its CONNACK carries the method and `data`; `username` (if the plugin
    /// named one) replaces the CONNECT user name.
    Accepted {
        auth: Box<ConnectionAuth>,
        username: Option<String>,
        data: Option<Bytes>,
    },
    /// Refuse with this CONNACK reason code and close [MQTT-4.12.0-4].
    Refused {
        reason: ReasonCode,
        why: &'static str,
    },
    /// The client left (or the connection broke): close without an answer.
    Gone,
}

impl ConnectionAuth {
    /// The method of CONNECT, carried by every AUTH and the CONNACK [MQTT-4.12.0-5].
    pub fn method(&self) -> &str {
        self.machine.method()
    }

    /// The plugins' step as the rules see it; keeps the exchange and the proven user name.
    fn answer(&mut self, step: AuthStep, username: &mut Option<String>) -> PluginAnswer {
        match step {
            AuthStep::Success {
                username: proven,
                data,
            } => {
                *username = proven;
                PluginAnswer::Success { data }
            }
            AuthStep::Challenge { data, exchange } => {
                self.exchange = Some(exchange);
                PluginAnswer::Challenge { data }
            }
            AuthStep::Deny(code) => PluginAnswer::Deny(code),
            AuthStep::Unsupported => PluginAnswer::Unsupported,
        }
    }

    /// Hands the client's data to the plugins for the step `client` opens.
    async fn ask(
        &mut self,
        hooks: &Hooks,
        info: &ClientInfo,
        client: ClientAuth,
        reauth: bool,
    ) -> AuthStep {
        let method = self.machine.method().to_owned();
        match client {
            ClientAuth::Reauthenticate { data } => {
                hooks.auth_start(info, &method, data.as_ref(), reauth).await
            }
            ClientAuth::Continue { data } => match self.exchange.take() {
                Some(exchange) => {
                    hooks
                        .auth_continue(info, &method, data.as_ref(), exchange)
                        .await
                }
                // The rules only continue after a challenge, which always leaves an exchange.
                None => AuthStep::Deny(ReasonCode::UNSPECIFIED_ERROR),
            },
        }
    }
}

/// The next whole packet from the client; `Ok(None)` when it closed the connection.
async fn read_packet(wire: &mut Wire) -> Result<Option<Packet>, ReasonCode> {
    loop {
        match wire.next_packet(Some(ProtocolVersion::V5)) {
            Ok(Some(packet)) => return Ok(Some(packet)),
            Ok(None) => match wire.read_more().await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            },
            Err(e) => return Err(e.reason()),
        }
    }
}

/// Runs the exchange a CONNECT with an Authentication Method opens; `None` for any other
/// CONNECT (no AUTH is ever sent then [MQTT-4.12.0-6]).
pub(crate) async fn handshake(
    wire: &mut Wire,
    hooks: &Hooks,
    info: &ClientInfo,
    connect: &Connect,
) -> Option<Handshake> {
    let (machine, data) = EnhancedAuth::from_connect(connect)?;
    let mut auth = ConnectionAuth {
        machine,
        exchange: None,
    };
    let method = auth.machine.method().to_owned();
    let mut username = None;
    let mut step = hooks.auth_start(info, &method, data.as_ref(), false).await;
    loop {
        let answer = auth.answer(step, &mut username);
        let packet = match auth.machine.on_answer(answer) {
            AuthOutcome::Accepted { data, .. } => {
                return Some(Handshake::Accepted {
                    auth: Box::new(auth),
                    username,
                    data,
                })
            }
            AuthOutcome::Refuse(ReasonCode::BAD_AUTHENTICATION_METHOD) => {
                return Some(Handshake::Refused {
                    reason: ReasonCode::BAD_AUTHENTICATION_METHOD,
                    why: "no plugin supports the authentication method",
                })
            }
            AuthOutcome::Refuse(reason) | AuthOutcome::Disconnect(reason) => {
                return Some(Handshake::Refused {
                    reason,
                    why: "enhanced authentication refused",
                })
            }
            AuthOutcome::Reauthenticated(_) => {
                return Some(Handshake::Refused {
                    reason: ReasonCode::UNSPECIFIED_ERROR,
                    why: "re-authentication before CONNACK",
                })
            }
            AuthOutcome::Challenge(packet) => packet,
        };
        wire.queue(&packet, ProtocolVersion::V5);
        if wire.flush().await.is_err() {
            return Some(Handshake::Gone);
        }
        let reply = match read_packet(wire).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Some(Handshake::Gone),
            Err(reason) => {
                return Some(Handshake::Refused {
                    reason,
                    why: "malformed packet during enhanced authentication",
                })
            }
        };
        let client = match auth.machine.before_connack(&reply) {
            Ok(client) => client,
            Err(EarlyEnd::ClientLeft) => return Some(Handshake::Gone),
            Err(EarlyEnd::Refuse(v)) => {
                return Some(Handshake::Refused {
                    reason: v.reason,
                    why: v.message,
                })
            }
        };
        step = auth.ask(hooks, info, client, false).await;
    }
}

impl Client {
    /// An AUTH after CONNACK: re-authentication [MQTT-4.12.1-1]. A client whose CONNECT had no
    /// Authentication Method may send none [MQTT-4.12.0-7]; a failed re-authentication ends
    /// the connection with DISCONNECT [MQTT-4.12.1-2]. The identity may not change.
    pub(crate) async fn on_auth(&mut self, packet: Auth) -> Result<(), Close> {
        let Some(auth) = self.auth.as_mut() else {
            return Err(Close::protocol(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-7]",
            ));
        };
        let client = auth.machine.on_auth(&packet).map_err(Close::violation)?;
        let step = auth
            .ask(&self.broker.shared.hooks, &self.info, client, true)
            .await;
        let mut username = None;
        let mut answer = auth.answer(step, &mut username);
        if let (PluginAnswer::Success { .. }, Some(proven)) = (&answer, &username) {
            if self.info.username.as_deref() != Some(proven.as_str()) {
                answer = PluginAnswer::Deny(ReasonCode::NOT_AUTHORIZED);
            }
        }
        let client_id = &self.info.client_id;
        match auth.machine.on_answer(answer) {
            AuthOutcome::Challenge(packet) => self.out.push(packet),
            AuthOutcome::Reauthenticated(packet) => {
                info!("Client re-authenticated: {client_id}");
                self.out.push(packet);
            }
            AuthOutcome::Disconnect(reason) | AuthOutcome::Refuse(reason) => {
                info!("Client re-authentication failed: {client_id} ({reason})");
                return Err(Close::protocol(
                    reason,
                    "re-authentication failed [MQTT-4.12.1-2]",
                ));
            }
            AuthOutcome::Accepted { .. } => {
                return Err(Close::protocol(
                    ReasonCode::UNSPECIFIED_ERROR,
                    "authentication concluded twice",
                ))
            }
        }
        Ok(())
    }
}

/// The user name a connection carries after enhanced authentication: the one the plugin
/// proved, else the one it had.
pub(crate) fn proven_username(
    proven: Option<String>,
    claimed: Option<Arc<str>>,
) -> Option<Arc<str>> {
    proven.map(Arc::from).or(claimed)
}
