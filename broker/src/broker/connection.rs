//! One client connection, one task: read CONNECT (within `connect_timeout_secs`), attach the
//! session, then loop — read and decode whatever arrived, feed each packet to the session
//! engine, pull queued messages when woken, and write everything produced as one batch —
//! until the client leaves, breaks a rule, goes silent past its keep-alive, is taken over, or
//! the broker shuts down.
//!
//! With persistence on, an acknowledgement that promises something is stored (PUBACK /
//! PUBREC of a QoS 1/2 PUBLISH, PUBCOMP, SUBACK of a persistent session) is *held*: kept at
//! its place in the outgoing batch until the commit of what it promises resolves, awaited
//! once per read batch with no lock held (group commit makes the batch share one fsync). A
//! failed commit is never acknowledged: v5 clients get the store's reason code (0x97 / 0x80),
//! 3.x clients (no negative PUBACK) are disconnected.
//!
//! Flow control: when a PUBLISH took a connected subscriber's queue over its limit, this
//! connection holds that PUBLISH's PUBACK / PUBREC ([`Held`]) and stops reading — it still
//! writes what its own session has to send — until every congested subscriber has room or
//! is stalled. The publisher's in-flight window then paces it at the subscriber's speed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{FutureExt, OptionFuture};

use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit};
use tracing::{debug, info, warn};

use super::connect::Admission;
use super::durable::journal_ops;
use super::publish::FLOW_CONTROL_STALL;
use super::sessions::{RoomWait, SessionSlot};
use super::shared::Broker;
use super::wire::Wire;
use crate::persistence::{Commit, InflightState, Op, StoreError};
use crate::plugins::ClientInfo;
use crate::protocol::QoS;
use crate::protocol::{
    encoded_len, Ack, DecodeError, Disconnect, Packet, Properties, ProtocolVersion, ReasonCode,
};
use crate::session::{InboundPublish, KeepAlive, Violation};
use crate::transport::{Accepted, Incoming};

/// Why a connection ended, for the log, the will and the DISCONNECT sent to v5 clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Close {
    /// DISCONNECT from the client; `with_will` for reason 0x04.
    ClientDisconnect {
        with_will: bool,
    },
    ConnectionLost(String),
    KeepAliveTimeout,
    TakenOver,
    ServerShutdown,
    /// The client broke a rule: v5 clients get DISCONNECT with this reason.
    Protocol {
        reason: ReasonCode,
        message: String,
    },
}

impl Close {
    pub fn violation(v: Violation) -> Close {
        Close::Protocol {
            reason: v.reason,
            message: v.message.to_owned(),
        }
    }

    pub fn protocol(reason: ReasonCode, message: &str) -> Close {
        Close::Protocol {
            reason,
            message: message.to_owned(),
        }
    }

    fn decode(err: &DecodeError) -> Close {
        Close::Protocol {
            reason: err.reason(),
            message: err.to_string(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Close::ClientDisconnect { with_will: false } => "normal disconnect".to_owned(),
            Close::ClientDisconnect { with_will: true } => {
                "disconnect with will message".to_owned()
            }
            Close::ConnectionLost(why) => format!("connection lost: {why}"),
            Close::KeepAliveTimeout => "keep-alive timeout".to_owned(),
            Close::TakenOver => "session taken over".to_owned(),
            Close::ServerShutdown => "server shutting down".to_owned(),
            Close::Protocol { message, .. } => format!("protocol error: {message}"),
        }
    }

    /// The DISCONNECT reason the broker sends a v5 client, if any.
    fn disconnect_reason(&self) -> Option<ReasonCode> {
        match self {
            Close::ClientDisconnect { .. } | Close::ConnectionLost(_) => None,
            Close::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            Close::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
            Close::ServerShutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
            Close::Protocol { reason, .. } => Some(*reason),
        }
    }

    /// Whether the will is published: not after a normal DISCONNECT [MQTT-3.14.4-3], and not
    /// on takeover (the new connection already dealt with it).
    fn publishes_will(&self) -> bool {
        !matches!(
            self,
            Close::ClientDisconnect { with_will: false } | Close::TakenOver
        )
    }
}

/// A connected client, after CONNECT was accepted.
pub(crate) struct Client {
    pub broker: Broker,
    pub wire: Wire,
    pub version: ProtocolVersion,
    pub info: ClientInfo,
    pub slot: Arc<SessionSlot>,
    pub connection: u64,
    pub keep_alive: KeepAlive,
    /// The client's Maximum Packet Size (v5).
    pub max_packet_size: Option<u32>,
    /// Woken when a message is queued for the client, and when the session stops being this
    /// connection's (taken over): [`Client::transmit`] then finds it gone.
    pub wake: Arc<Notify>,
    /// Packets produced and not yet encoded.
    pub out: Vec<Packet>,
    /// The session is in the persistent store: its changes are written there.
    pub persisted: bool,
    /// Store writes nothing waits for (subscriber-side acks, unsubscribes), handed to the
    /// store once per batch.
    pub ops: Vec<Op>,
    /// Acknowledgements waiting for their commit, in order.
    pub pending_acks: Vec<PendingAck>,
    /// A PUBLISH's acknowledgement held back until congested subscribers have room; while
    /// set, nothing more is read from this client. Boxed: rare, and a `Packet` is large.
    pub held: Option<Box<Held>>,
    /// Scratch list for [`Broker::publish_from_client`]'s congested subscribers.
    pub congested: Vec<Arc<SessionSlot>>,
    /// MQTT 5 enhanced authentication, when CONNECT named a method (see `auth`).
    pub auth: Option<Box<super::auth::ConnectionAuth>>,
}

/// An acknowledgement held back by flow control.
pub(crate) struct Held {
    /// Subscribers whose queue this client's PUBLISH took over the limit.
    slots: Vec<Arc<SessionSlot>>,
    /// The PUBACK / PUBREC to send once they have room (none for QoS 0).
    ack: Option<Packet>,
}

/// Resolves at the keep-alive deadline; never without one.
async fn keep_alive_expired(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Held {
    /// With `held` (the congested subscribers): [`Held::wait`], boxed, as it is rare and
    /// its future large. Never resolves without.
    async fn room(held: Option<&[Arc<SessionSlot>]>, broker: &Broker) {
        match held {
            Some(slots) => Box::pin(Held::wait(slots, broker)).await,
            None => std::future::pending().await,
        }
    }

    /// Waits until every congested subscriber has room (or stalled, or went away).
    async fn wait(slots: &[Arc<SessionSlot>], broker: &Broker) {
        for slot in slots {
            if slot.wait_for_room(FLOW_CONTROL_STALL).await == RoomWait::Stalled {
                super::stats::add(&broker.shared.stats.publishers_released_on_stall, 1);
            }
        }
    }
}

/// An acknowledgement held until what it promises is durable.
pub(crate) struct PendingAck {
    commit: Commit,
    /// Its place in `Client::out` (before the packets produced after it).
    position: usize,
    ack: Promised,
}

pub(crate) enum Promised {
    /// PUBACK / PUBREC of an inbound PUBLISH, built once the outcome is known.
    Publish {
        qos: QoS,
        packet_id: Option<u16>,
        reason: ReasonCode,
        /// Where the message was queued under a stored record: withdrawn if not stored.
        queued: Vec<(Arc<SessionSlot>, u64)>,
    },
    /// A ready packet (PUBCOMP, SUBACK) sent only if the commit succeeds.
    Packet(Box<Packet>),
}

/// Serves one accepted TCP connection to its end. `done` is dropped when the task ends, which
/// is how shutdown knows every connection finished.
///
/// The task of an idle connection is as large as its future's largest state, so the two
/// phases are chained rather than awaited in one `async fn`: the handshake and CONNECT phase
/// runs boxed (its futures — TLS, WebSocket, the authentication hooks — are large and over
/// once the client is in), and the connection loop then takes the task's room alone (an
/// `async fn` would also keep room for the admitted client it moves into the loop).
pub(crate) fn serve(
    broker: Broker,
    incoming: Incoming,
    done: mpsc::Sender<()>,
) -> impl Future<Output = ()> + Send + 'static {
    Box::pin(admit(broker, incoming)).then(move |admitted| {
        OptionFuture::from(
            admitted.map(|(client, shutdown, permit)| client.run(shutdown, permit, done)),
        )
        .map(|_| ())
    })
}

/// The transport handshake, then CONNECT within `connect_timeout_secs`: the admitted client,
/// the shutdown signal and the listener's connection permit, or `None` if it never got in.
async fn admit(
    broker: Broker,
    incoming: Incoming,
) -> Option<(Client, watch::Receiver<bool>, Option<OwnedSemaphorePermit>)> {
    let peer = incoming.peer();
    let accepted: Accepted = match incoming.handshake().await {
        Ok(accepted) => accepted,
        Err(e) => {
            debug!(%peer, "handshake failed: {e}");
            return None;
        }
    };
    let mut shutdown = broker.shutdown_signal();
    if *shutdown.borrow_and_update() {
        return None;
    }
    let permit = accepted.permit;
    let wire = Wire::new(accepted.stream, broker.clone());
    let connect_timeout = Duration::from_secs(broker.config().limits.connect_timeout_secs);
    let admission = Admission {
        broker: broker.clone(),
        peer: accepted.peer,
        listener: accepted.listener,
        tls_username: accepted.tls_username,
        over_limit: accepted.over_limit,
    };
    let client = tokio::select! {
        r = tokio::time::timeout(connect_timeout, admission.admit(wire)) => match r {
            Ok(Some(client)) => client,
            Ok(None) => return None,
            Err(_) => {
                // Dropping the stream closes it.
                debug!(%peer, "no CONNECT within {connect_timeout:?}; closing");
                return None;
            }
        },
        _ = shutdown.changed() => return None,
    };
    Some((client, shutdown, permit))
}

impl Client {
    /// The connection loop. The task of an idle connection is as large as this future's
    /// largest state, so everything awaited that is large and not waiting for the client —
    /// handling a read batch (PUBLISH routing with its plugin hooks, store commits), a
    /// flow-control wait, the close — runs boxed, allocated only while it runs.
    pub(crate) async fn run(
        mut self,
        shutdown: watch::Receiver<bool>,
        _permit: Option<OwnedSemaphorePermit>,
        _done: mpsc::Sender<()>,
    ) {
        let mut last_packet = Instant::now();
        // Packets that arrived in the same read as CONNECT are already buffered.
        let mut pending = Box::pin(self.handle_incoming(&mut last_packet)).await;
        let close = loop {
            if let Err(close) = pending {
                break close;
            }
            // Shutdown raises the signal, then wakes every attached connection
            // (`SessionRegistry::wake_connections`): seen here, not awaited in `select!`,
            // which keeps a signal future out of every idle connection.
            if *shutdown.borrow() {
                break Close::ServerShutdown;
            }
            // Everything the last step produced, plus queued messages, leaves as one batch.
            if let Err(close) = self.transmit() {
                break close;
            }
            if let Err(e) = self.wire.flush().await {
                break Close::ConnectionLost(e.to_string());
            }
            // While held back, the client is not read, so its silence is ours, not its own.
            let held = self.held.as_ref().map(|h| h.slots.as_slice());
            let deadline = match held {
                Some(_) => None,
                None => self.keep_alive.deadline(last_packet),
            };
            // Every future is built inside `select!`: one bound to a local first would take
            // room twice in this (idle connection's) future, as the local and in `select!`.
            let step = tokio::select! {
                read = self.wire.read_more(), if held.is_none() => match read {
                    Ok(0) => Err(Close::ConnectionLost("closed by peer".to_owned())),
                    Err(e) => Err(Close::ConnectionLost(e.to_string())),
                    Ok(_) => Box::pin(self.handle_incoming(&mut last_packet)).await,
                },
                _ = Held::room(held, &self.broker) => {
                    if let Some(held) = self.held.take() {
                        self.out.extend(held.ack);
                    }
                    last_packet = Instant::now();
                    Box::pin(self.handle_incoming(&mut last_packet)).await
                },
                _ = self.wake.notified() => Ok(()),
                _ = keep_alive_expired(deadline) => Err(Close::KeepAliveTimeout),
            };
            pending = step;
        };
        Box::pin(self.finish(close)).await;
    }

    /// Decodes and handles every whole packet buffered, then waits for what their
    /// acknowledgements promise to be stored.
    async fn handle_incoming(&mut self, last_packet: &mut Instant) -> Result<(), Close> {
        let handled = self.handle_buffered(last_packet).await;
        let settled = self.settle().await;
        handled.and(settled)
    }

    /// ... until one is held back by flow control.
    async fn handle_buffered(&mut self, last_packet: &mut Instant) -> Result<(), Close> {
        // One clock read per batch: the packets of one read arrived together.
        let mut stamped = false;
        while self.held.is_none() {
            match self.wire.next_packet(Some(self.version)) {
                Ok(Some(packet)) => {
                    if !stamped {
                        *last_packet = Instant::now();
                        stamped = true;
                    }
                    self.handle(packet).await?;
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(Close::decode(&e)),
            }
        }
        Ok(())
    }

    /// Hands the batch's unawaited writes to the store, then waits for each held
    /// acknowledgement's commit and puts the acknowledgement at its place in the batch.
    async fn settle(&mut self) -> Result<(), Close> {
        if !self.ops.is_empty() {
            let _ = self.broker.persist(std::mem::take(&mut self.ops));
        }
        let pending = std::mem::take(&mut self.pending_acks);
        for (inserted, held) in pending.into_iter().enumerate() {
            let outcome = held.commit.await;
            if let Some(packet) = self.resolve(held.ack, outcome)? {
                let at = (held.position + inserted).min(self.out.len());
                self.out.insert(at, packet);
            }
        }
        Ok(())
    }

    /// The acknowledgement a promise turns into once its commit resolved with `outcome`. A
    /// refused PUBLISH is withdrawn from the queues still holding it.
    pub(crate) fn resolve(
        &mut self,
        ack: Promised,
        outcome: Result<(), StoreError>,
    ) -> Result<Option<Packet>, Close> {
        if let (Promised::Publish { queued, .. }, Err(_)) = (&ack, &outcome) {
            // Refused, so not delivered where it still waits (an online subscriber may
            // already have it).
            for (slot, seq) in queued {
                slot.withdraw(*seq);
            }
        }
        match (ack, outcome) {
            (
                Promised::Publish {
                    qos,
                    packet_id,
                    reason,
                    ..
                },
                Ok(()),
            ) => self.session(|s| s.session.acknowledge_publish(qos, packet_id, reason)),
            (Promised::Publish { qos, packet_id, .. }, Err(e)) if self.version.is_v5() => {
                warn!(client = %self.info.client_id, "PUBLISH refused: {e}");
                let reason = e.reason_code();
                self.session(|s| s.session.acknowledge_publish(qos, packet_id, reason))
            }
            (Promised::Packet(packet), Ok(())) => Ok(Some(*packet)),
            (_, Err(e)) => {
                warn!(client = %self.info.client_id, "closing: {e}");
                Err(Close::Protocol {
                    reason: e.reason_code(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// Holds `ack` until `commit` resolves (or sends it now if there is nothing to wait for).
    pub(crate) fn hold(&mut self, commit: Option<Commit>, ack: Promised) -> Result<(), Close> {
        match commit {
            Some(commit) => self.pending_acks.push(PendingAck {
                commit,
                position: self.out.len(),
                ack,
            }),
            None => {
                let packet = self.resolve(ack, Ok(()))?;
                self.out.extend(packet);
            }
        }
        Ok(())
    }

    /// Pulls queued messages into the batch and encodes it.
    fn transmit(&mut self) -> Result<(), Close> {
        let now = Instant::now();
        {
            let Some(mut state) = self.slot.lock_owned(self.connection) else {
                return Err(Close::TakenOver);
            };
            let t = state.session.poll_transmit(now, &mut self.out);
            let journal = if self.persisted {
                state.session.take_journal()
            } else {
                Vec::new()
            };
            let release = state.release_held_publishers();
            drop(state);
            if release {
                self.slot.wake_held_publishers();
            }
            if !journal.is_empty() || !self.ops.is_empty() {
                // Handed over before the PUBLISHes leave, so their acks' ops come after.
                let mut ops = std::mem::take(&mut self.ops);
                journal_ops(self.info.client_id.as_ref(), journal, &mut ops);
                let _ = self.broker.persist(ops);
            }
            let dropped = (t.expired + t.too_large) as u64;
            if dropped > 0 {
                super::stats::add(&self.broker.shared.stats.publish_dropped, dropped);
            }
        }
        for packet in self.out.drain(..) {
            self.wire.queue(&packet, self.version);
        }
        Ok(())
    }

    fn session<R>(&self, f: impl FnOnce(&mut super::sessions::SlotState) -> R) -> Result<R, Close> {
        match self.slot.lock_owned(self.connection) {
            Some(mut state) => Ok(f(&mut state)),
            None => Err(Close::TakenOver),
        }
    }

    async fn handle(&mut self, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(publish) => {
                super::stats::add(&self.broker.shared.stats.publish_received, 1);
                let inbound = self.session(|s| s.session.receive_publish(publish))?;
                match inbound.map_err(Close::violation)? {
                    InboundPublish::Duplicate { packet_id } => {
                        self.out.push(Packet::PubRec(Ack::new(packet_id)));
                    }
                    InboundPublish::Route(publish) => {
                        let (qos, packet_id) = (publish.qos, publish.packet_id);
                        let mut ops = Vec::new();
                        if let (true, QoS::ExactlyOnce, Some(packet_id)) =
                            (self.persisted, qos, packet_id)
                        {
                            // Remembered with the message, so a PUBLISH re-sent after a
                            // restart is not routed twice [MQTT-4.3.3-9].
                            ops.push(Op::AddInboundQos2 {
                                client_id: self.info.client_id.to_string(),
                                packet_id,
                            });
                        }
                        let mut congested = std::mem::take(&mut self.congested);
                        let (reason, durable) = self
                            .broker
                            .publish_from_client(&self.info, publish, ops, &mut congested)
                            .await;
                        // QoS 0 is never acknowledged, so nothing waits for its writes.
                        let (commit, queued) = match durable {
                            Some(d) if qos != QoS::AtMostOnce => (Some(d.commit), d.queued),
                            _ => (None, Vec::new()),
                        };
                        let ack = Promised::Publish {
                            qos,
                            packet_id,
                            reason,
                            queued,
                        };
                        // Our own queue never holds us back: we drain it ourselves.
                        congested.retain(|slot| !Arc::ptr_eq(slot, &self.slot));
                        if congested.is_empty() {
                            self.hold(commit, ack)?;
                            self.congested = congested;
                        } else {
                            // Held back by flow control: the acknowledgement waits for room,
                            // and before that for its commit (awaited here, no lock held).
                            let outcome = match commit {
                                Some(commit) => commit.await,
                                None => Ok(()),
                            };
                            let ack = self.resolve(ack, outcome)?;
                            super::stats::add(&self.broker.shared.stats.publishers_held, 1);
                            self.held = Some(Box::new(Held {
                                slots: congested,
                                ack,
                            }));
                        }
                    }
                }
            }
            Packet::PubAck(ack) => {
                let matched = self.session(|s| s.session.on_puback(&ack))?;
                if matched && self.persisted {
                    self.ops.push(Op::RemoveInflight {
                        client_id: self.info.client_id.to_string(),
                        packet_id: ack.packet_id,
                    });
                }
            }
            Packet::PubRec(ack) => {
                let out = &mut self.out;
                let before = out.len();
                match self.slot.lock_owned(self.connection) {
                    Some(mut s) => s.session.on_pubrec(&ack, out),
                    None => return Err(Close::TakenOver),
                }
                if self.persisted {
                    let client_id = self.info.client_id.to_string();
                    let released = matches!(
                        self.out.get(before),
                        Some(Packet::PubRel(rel)) if !rel.reason.is_error()
                    );
                    self.ops.push(if released {
                        Op::SetInflightState {
                            client_id,
                            packet_id: ack.packet_id,
                            state: InflightState::AwaitingPubComp,
                        }
                    } else {
                        Op::RemoveInflight {
                            client_id,
                            packet_id: ack.packet_id,
                        }
                    });
                }
            }
            Packet::PubRel(ack) => {
                let comp = self.session(|s| s.session.on_pubrel(&ack))?;
                let commit = if self.persisted {
                    // The id must be free in the store too before PUBCOMP lets the client
                    // reuse it for a new message.
                    self.broker.persist(vec![Op::RemoveInboundQos2 {
                        client_id: self.info.client_id.to_string(),
                        packet_id: ack.packet_id,
                    }])
                } else {
                    None
                };
                self.hold(commit, Promised::Packet(Box::new(comp)))?;
            }
            Packet::PubComp(ack) => {
                let matched = self.session(|s| s.session.on_pubcomp(&ack))?;
                if matched && self.persisted {
                    self.ops.push(Op::RemoveInflight {
                        client_id: self.info.client_id.to_string(),
                        packet_id: ack.packet_id,
                    });
                }
            }
            // Boxed: SUBSCRIBE is rare and its future (authorization hooks) large.
            Packet::Subscribe(subscribe) => Box::pin(self.subscribe(subscribe)).await?,
            Packet::Unsubscribe(unsubscribe) => self.unsubscribe(unsubscribe)?,
            Packet::PingReq => self.out.push(Packet::PingResp),
            Packet::Disconnect(disconnect) => return Err(self.client_disconnect(disconnect)),
            Packet::Connect(_) => {
                return Err(Close::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "second CONNECT [MQTT-3.1.0-2]",
                ))
            }
            // Boxed: rare, and its future (the plugin calls) large.
            Packet::Auth(auth) => Box::pin(self.on_auth(auth)).await?,
            other => {
                return Err(Close::Protocol {
                    reason: ReasonCode::PROTOCOL_ERROR,
                    message: format!("{} is not sent by clients", other.name()),
                })
            }
        }
        Ok(())
    }

    /// DISCONNECT from the client: may change the session expiry (v5), and says whether the
    /// will is published (reason 0x04) or discarded [MQTT-3.14.4-3].
    fn client_disconnect(&mut self, disconnect: Disconnect) -> Close {
        if self.version.is_v5() {
            let max = self.broker.config().limits.max_session_expiry;
            let requested = disconnect.properties.session_expiry_interval;
            let updated =
                self.session(|s| s.expiry.on_disconnect(requested, max).map(|e| s.expiry = e));
            match updated {
                Ok(Ok(())) => {}
                Ok(Err(v)) => return Close::violation(v),
                Err(close) => return close,
            }
        }
        Close::ClientDisconnect {
            with_will: disconnect.reason == ReasonCode::DISCONNECT_WITH_WILL,
        }
    }

    /// Ends the connection: DISCONNECT to v5 clients when the broker closes, the session goes
    /// offline (or ends), the will is dealt with, and the disconnect is logged.
    async fn finish(mut self, close: Close) {
        if matches!(close, Close::ClientDisconnect { with_will: false }) {
            // Disarmed before anything awaits: a CONNECT for the same client id handled while
            // this connection closes takes over a session without a will [MQTT-3.1.2-10].
            self.slot.set_will(self.connection, None);
        }
        if close != Close::TakenOver {
            // Answers produced before the end (e.g. PUBACKs in the same batch) still go out;
            // a held one too: its message is queued for its subscribers.
            if let Some(held) = self.held.take() {
                self.out.extend(held.ack);
            }
            for packet in self.out.drain(..) {
                self.wire.queue(&packet, self.version);
            }
        }
        if let Some(reason) = close.disconnect_reason().filter(|_| self.version.is_v5()) {
            let reason_string = match &close {
                Close::Protocol { message, .. } => Some(message.clone()),
                _ => None,
            };
            let mut packet = Packet::Disconnect(Disconnect {
                reason,
                properties: Properties {
                    reason_string,
                    ..Properties::default()
                },
            });
            let too_large = self
                .max_packet_size
                .is_some_and(|max| encoded_len(&packet, self.version) > max as usize);
            if too_large {
                // The reason string is optional: left out if the client could not take it.
                packet = Packet::Disconnect(Disconnect {
                    reason,
                    properties: Properties::default(),
                });
            }
            self.wire.queue(&packet, self.version);
        }
        self.wire.close().await;
        let broker = self.broker.clone();
        if let Some(released) = broker.shared.sessions.release(&self.slot, self.connection) {
            broker.after_close(&self.slot, released, close.publishes_will());
        }
        let reason = close.describe();
        info!(
            "Client disconnected: {}, Reason: {reason}",
            self.info.client_id
        );
        broker.shared.stats.client_disconnected();
        broker.shared.hooks.disconnected(&self.info, &reason);
    }
}
