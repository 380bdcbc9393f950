//! CONNECT: the first packet of a connection [MQTT-3.1.0-1], read within the connect timeout,
//! then admission — listener limit, client identifier, authentication, keep-alive — and the
//! session attached (new, resumed, or taken over from another connection), answered with a
//! CONNACK whose properties tell the truth about this broker.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::auth::{self, proven_username, ConnectionAuth, Handshake};
use super::connection::Client;
use super::durable::session_record;
use super::sessions::StoredWill;
use super::shared::Broker;
use super::stats;
use super::wire::Wire;
use crate::persistence::Op;
use crate::plugins::{ClientInfo, Decision};
use crate::protocol::{
    ConnAck, Connect, DecodeError, Packet, Properties, ProtocolVersion, ReasonCode,
};
use crate::session::{connack_properties, AuthOutcome, KeepAlive, LinkParams, SessionExpiry};

/// What the transport told us about a connection that has not sent CONNECT yet.
pub(crate) struct Admission {
    pub broker: Broker,
    pub peer: SocketAddr,
    pub listener: Arc<str>,
    pub tls_username: Option<String>,
    pub over_limit: bool,
}

/// An identifier for a client that sent an empty one [MQTT-3.1.3-6]: unique per broker run
/// (a counter) and unpredictable across runs (a random key).
fn assign_client_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one(n);
    format!("waspmq-{random:016x}{n:x}")
}

/// A CONNACK refusing the connection.
fn refusal(reason: ReasonCode) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    })
}

/// The layout of the CONNACK refusing protocol level `level`: v5 only for level 5.
fn refusal_layout(level: u8) -> ProtocolVersion {
    if DecodeError::UnsupportedProtocolVersion(level).connack_is_v5() {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V311
    }
}

impl Admission {
    /// Reads CONNECT and admits the client, or answers and closes. `None` when the connection
    /// ended here.
    pub async fn admit(self, mut wire: Wire) -> Option<Client> {
        let connect = loop {
            let v5 = wire.looks_like_v5_connect();
            match wire.next_packet(None) {
                Ok(Some(Packet::Connect(connect))) => break connect,
                Ok(Some(other)) => {
                    debug!(peer = %self.peer, "first packet is {} not CONNECT; closing [MQTT-3.1.0-1]", other.name());
                    wire.close().await;
                    return None;
                }
                Ok(None) => match wire.read_more().await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
                Err(DecodeError::UnsupportedProtocolVersion(level)) => {
                    // [MQTT-3.1.2-2]: CONNACK 0x84 (3.x return code 1), then close.
                    debug!(peer = %self.peer, "unsupported protocol level {level}");
                    wire.queue(
                        &refusal(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
                        refusal_layout(level),
                    );
                    wire.close().await;
                    return None;
                }
                Err(e) => {
                    debug!(peer = %self.peer, "bad CONNECT: {e}");
                    if v5 && e != DecodeError::UnknownProtocolName {
                        wire.queue(&refusal(e.reason()), ProtocolVersion::V5);
                    }
                    wire.close().await;
                    return None;
                }
            }
        };
        self.connect(wire, *connect).await
    }

    async fn refuse(
        &self,
        mut wire: Wire,
        version: ProtocolVersion,
        client_id: &str,
        reason: ReasonCode,
        why: &str,
    ) -> Option<Client> {
        info!("Client refused: {client_id}, Reason: {why} ({reason})");
        wire.queue(&refusal(reason), version);
        wire.close().await;
        None
    }

    async fn connect(self, mut wire: Wire, connect: Connect) -> Option<Client> {
        let broker = self.broker.clone();
        let config = broker.config();
        let version = connect.protocol;
        if self.over_limit {
            stats::add(&broker.shared.stats.connections_refused, 1);
            let reason = if version.is_v5() {
                ReasonCode::QUOTA_EXCEEDED
            } else {
                ReasonCode::SERVER_UNAVAILABLE
            };
            return self
                .refuse(
                    wire,
                    version,
                    &connect.client_id,
                    reason,
                    "listener at max_connections",
                )
                .await;
        }
        let mut assigned = None;
        let client_id = if connect.client_id.is_empty() {
            // 3.1.1 with Clean Session and v5 get an identifier [MQTT-3.1.3-6]; 3.1.1 without
            // Clean Session is refused with return code 2 [MQTT-3.1.3-8]; 3.1 requires one.
            let allowed = match version {
                ProtocolVersion::V5 => true,
                ProtocolVersion::V311 => connect.clean_start,
                ProtocolVersion::V31 => false,
            };
            if !allowed {
                return self
                    .refuse(
                        wire,
                        version,
                        "",
                        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                        "empty client identifier",
                    )
                    .await;
            }
            let id = assign_client_id();
            if version.is_v5() {
                assigned = Some(id.clone());
            }
            id
        } else {
            connect.client_id.clone()
        };
        let username = self.tls_username.clone().or(connect.username.clone());
        let mut info = ClientInfo {
            client_id: client_id.as_str().into(),
            username: username.as_deref().map(Arc::from),
            peer: Some(self.peer),
            listener: self.listener.clone(),
            protocol: version,
        };
        // A CONNECT with an Authentication Method is decided by the AUTH exchange alone.
        let hooks = &broker.shared.hooks;
        let mut enhanced = None;
        match auth::handshake(&mut wire, hooks, &info, &connect).await {
            Some(Handshake::Accepted {
                auth,
                username,
                data,
            }) => {
                info.username = proven_username(username, info.username.take());
                enhanced = Some((auth, data));
            }
            Some(Handshake::Refused { reason, why }) => {
                return self.refuse(wire, version, &client_id, reason, why).await
            }
            Some(Handshake::Gone) => {
                wire.close().await;
                return None;
            }
            None => {
                if let Some(refused) = self.authenticate(&info, &connect).await {
                    let (reason, why) = refused;
                    return self.refuse(wire, version, &client_id, reason, why).await;
                }
            }
        }
        let keep_alive =
            match KeepAlive::negotiate(version, connect.keep_alive, config.max_keepalive) {
                Ok(k) => k,
                Err(code) => {
                    return self
                        .refuse(
                            wire,
                            version,
                            &client_id,
                            code,
                            "keep-alive above max_keepalive",
                        )
                        .await
                }
            };
        let expiry = SessionExpiry::from_connect(&connect, config.limits.max_session_expiry);
        Some(
            self.attach(
                wire, connect, info, client_id, assigned, keep_alive, expiry, enhanced,
            )
            .await,
        )
    }

    /// The plain `authenticate` hook, then `[auth] allow_anonymous`: the refusal, if any.
    async fn authenticate(
        &self,
        info: &ClientInfo,
        connect: &Connect,
    ) -> Option<(ReasonCode, &'static str)> {
        let config = self.broker.config();
        match self
            .broker
            .shared
            .hooks
            .authenticate(info, connect.password.as_ref())
            .await
        {
            Decision::Allow => None,
            Decision::Deny(code) => {
                let code = if code.is_error() {
                    code
                } else {
                    ReasonCode::NOT_AUTHORIZED
                };
                Some((code, "authentication denied"))
            }
            Decision::Defer if info.username.is_none() && !config.auth.allow_anonymous => Some((
                ReasonCode::NOT_AUTHORIZED,
                "anonymous clients are not allowed",
            )),
            Decision::Defer => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attach(
        self,
        mut wire: Wire,
        connect: Connect,
        mut info: ClientInfo,
        client_id: String,
        assigned: Option<String>,
        keep_alive: KeepAlive,
        expiry: SessionExpiry,
        enhanced: Option<(Box<ConnectionAuth>, Option<Bytes>)>,
    ) -> Client {
        let broker = self.broker.clone();
        let shared = &broker.shared;
        let version = connect.protocol;
        let connection = broker.next_connection_id();
        let wake = Arc::new(Notify::new());
        let opened = shared.sessions.open(
            &client_id,
            connect.clean_start,
            connection,
            wake.clone(),
            expiry,
            shared.limits,
        );
        if opened.resumed_offline {
            stats::sub(&shared.stats.clients_disconnected, 1);
        }
        if let Some(will) = opened.previous_will {
            // The old connection's will: its session ended (clean start) or its delay is 0,
            // so it goes now; otherwise the client came back in time [MQTT-3.1.3-9].
            if connect.clean_start || will.delay() == 0 {
                broker.spawn_will(will);
            }
        }
        let slot = opened.slot;
        // One copy of the client identifier per connection: the session's.
        info.client_id = slot.client_id().clone();
        let persisted = self
            .persist_session(
                &slot,
                connection,
                &connect,
                &client_id,
                expiry,
                opened.discarded_persisted,
            )
            .await;
        slot.set_will(
            connection,
            connect.will.clone().map(|will| StoredWill {
                will,
                client: info.clone(),
            }),
        );
        let mut properties = connack_properties(
            version,
            &shared.limits,
            shared.config.limits.max_packet_size,
            keep_alive,
            expiry,
            assigned,
        );
        let enhanced = enhanced.map(|(auth, data)| {
            AuthOutcome::apply_to(auth.method(), data, &mut properties);
            auth
        });
        let mut out = vec![Packet::ConnAck(ConnAck {
            session_present: opened.session_present,
            reason: ReasonCode::SUCCESS,
            properties,
        })];
        if let Some(mut state) = slot.lock_owned(connection) {
            state
                .session
                .attach(LinkParams::from_connect(&connect), &mut out);
        }
        for packet in &out {
            wire.queue(packet, version);
        }
        let username = info.username.as_deref().unwrap_or("None");
        info!("Client connected: {client_id}, Username: {username}");
        shared.stats.client_connected();
        shared.hooks.connected(&info);
        Client {
            broker: broker.clone(),
            wire,
            version,
            info,
            slot,
            connection,
            keep_alive,
            max_packet_size: connect.properties.maximum_packet_size,
            wake,
            out: Vec::new(),
            persisted,
            ops: Vec::new(),
            pending_acks: Vec::new(),
            held: None,
            congested: Vec::new(),
            auth: enhanced,
        }
    }

    /// With persistence on: removes the session a clean start discarded from the store and
    /// stores a session that outlives its connection (before CONNACK). Returns whether the
    /// session is in the store.
    async fn persist_session(
        &self,
        slot: &super::sessions::SessionSlot,
        connection: u64,
        connect: &Connect,
        client_id: &str,
        expiry: SessionExpiry,
        discarded_persisted: bool,
    ) -> bool {
        let broker = &self.broker;
        if !broker.durable() {
            return false;
        }
        let mut ops = Vec::new();
        if discarded_persisted {
            ops.push(Op::DeleteSession {
                client_id: client_id.to_owned(),
            });
        }
        let persisted = match slot.lock_owned(connection) {
            Some(mut state) => {
                if expiry.secs > 0 {
                    state.persisted = true;
                    state.stored_expiry = expiry.secs;
                    let subscriptions = state.stored_subscriptions.values().cloned().collect();
                    ops.push(Op::SaveSession(session_record(
                        client_id,
                        expiry,
                        None,
                        connect.will.as_ref(),
                        subscriptions,
                    )));
                }
                // A resumed stored session asking for expiry 0 stays stored until it ends
                // with this connection.
                let persisted = state.persisted;
                state.session.set_journaling(persisted);
                persisted
            }
            None => false,
        };
        if let Some(commit) = broker.persist(ops) {
            if let Err(e) = commit.await {
                // The session lives on in memory; what it is later acknowledged for is
                // still only acknowledged once stored.
                warn!("Client {client_id}: session not stored: {e}");
            }
        }
        persisted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_client_identifiers_are_unique_mqtt_3_1_3_6() {
        let a = assign_client_id();
        let b = assign_client_id();
        assert_ne!(a, b);
        assert!(a.starts_with("waspmq-"));
        assert!(a.len() <= 65535);
    }
}
