//! The session registry: client id -> [`SessionSlot`], sharded so that routing a PUBLISH takes
//! only a short read lock on one shard per subscriber and never a global lock.
//!
//! A slot holds one client's [`Session`] behind its own short mutex, plus who owns it: the
//! connection currently attached (identified by a connection number, with a channel to kick it
//! out on takeover and the `Notify` that wakes it when a message is queued). Lock order is
//! always shard, then slot, then the subscription tree's own lock; none is held across an
//! `.await`. A session's filters leave the tree while its shard is locked, so a client that
//! reconnects at once cannot subscribe before its old session's filters are gone.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;

use crate::persistence::StoredSubscription;
use crate::plugins::ClientInfo;
use crate::protocol::Will;
use crate::routing::{ClientKey, SubscriptionTree};
use crate::session::{Delivery, Enqueued, Session, SessionExpiry, SessionLimits};

const SHARDS: usize = 64;

/// A will kept with its session until it is published or cancelled.
#[derive(Debug, Clone)]
pub struct StoredWill {
    pub will: Will,
    /// Who will "publish" it (authorization, no-local).
    pub client: ClientInfo,
}

impl StoredWill {
    /// The v5 Will Delay Interval in seconds (0 for 3.x).
    pub fn delay(&self) -> u32 {
        self.will.properties.will_delay_interval.unwrap_or(0)
    }
}

/// What became of a delayed will handed to [`SessionSlot::park_will`].
#[derive(Debug)]
pub enum Parking {
    /// Kept in the offline session until its delay passes.
    Parked,
    /// The client came back to the session first: the will is not sent [MQTT-3.1.3-9].
    Cancelled,
    /// A Clean Start ended the session first: the will is due now.
    SessionEnded(Box<StoredWill>),
}

/// The connection attached to a session.
#[derive(Debug)]
struct Owner {
    connection: u64,
    /// Wakes the connection when a message is queued.
    wake: Arc<Notify>,
}

impl Drop for Owner {
    /// A connection that stops owning its session other than by leaving (taken over, or the
    /// session ended) is woken, finds the session no longer its own and closes: one `Notify`
    /// serves as both doorbell and kick, so a connection allocates no channel for takeover.
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// The state behind a slot's lock.
#[derive(Debug)]
pub struct SlotState {
    pub session: Session,
    pub expiry: SessionExpiry,
    /// Filters this session holds in the subscription tree, to remove them when it ends.
    /// Ordered collections: an empty one takes half the room of a hash map, and every
    /// session holds these.
    pub subscriptions: BTreeSet<String>,
    owner: Option<Owner>,
    /// Boxed: most sessions have no will, and a will (with its properties) is large.
    will: Option<Box<StoredWill>>,
    /// Bumped whenever a connection attaches or detaches, so timers armed for one offline
    /// period (will delay, session expiry) do nothing after the client came back.
    generation: u64,
    /// The session is over (expired, or replaced by a clean start); stale handles ignore it.
    ended: bool,
    /// The session is in the persistent store (it outlives its connection and the broker
    /// persists): its changes are written there.
    pub persisted: bool,
    /// Its subscriptions as stored (kept only while `persisted`), to rewrite the session.
    pub stored_subscriptions: BTreeMap<String, StoredSubscription>,
    /// The expiry interval last stored (a DISCONNECT may change the live one).
    pub stored_expiry: u32,
    /// A publisher waits on [`SessionSlot::wait_for_room`]: the owning connection wakes it
    /// once the queue is below its limit again ([`SlotState::release_held_publishers`]).
    held_publishers: bool,
}

impl SlotState {
    pub fn is_owned_by(&self, connection: u64) -> bool {
        !self.ended
            && self
                .owner
                .as_ref()
                .is_some_and(|o| o.connection == connection)
    }

    /// Whether publishers held back by this session's full queue should be woken now (the
    /// queue went below its limit since they started waiting). Call `room.notify_waiters()`
    /// on the slot, after the lock is dropped, when it says so.
    pub fn release_held_publishers(&mut self) -> bool {
        if self.held_publishers && self.session.has_room() {
            self.held_publishers = false;
            true
        } else {
            false
        }
    }
}

/// How a held-back publisher's wait for a subscriber's queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomWait {
    /// The queue is below its limit again, or the session went offline or ended.
    Room,
    /// The connected client took no message for the stall time: the publisher goes on and
    /// further messages to this session are dropped (counted) while it stays stalled.
    Stalled,
}

#[derive(Debug)]
pub struct SessionSlot {
    client_id: ClientKey,
    state: Mutex<SlotState>,
    /// Wakes publishers held back by this session's full queue.
    room: Notify,
}

impl SessionSlot {
    fn new(
        client_id: ClientKey,
        limits: SessionLimits,
        expiry: SessionExpiry,
        owner: Owner,
    ) -> SessionSlot {
        SessionSlot::with_state(client_id, Session::new(limits), expiry, Some(owner))
    }

    fn with_state(
        client_id: ClientKey,
        session: Session,
        expiry: SessionExpiry,
        owner: Option<Owner>,
    ) -> SessionSlot {
        SessionSlot {
            client_id,
            state: Mutex::new(SlotState {
                session,
                expiry,
                subscriptions: BTreeSet::new(),
                owner,
                will: None,
                generation: 0,
                ended: false,
                persisted: false,
                stored_subscriptions: BTreeMap::new(),
                stored_expiry: 0,
                held_publishers: false,
            }),
            room: Notify::new(),
        }
    }

    pub fn client_id(&self) -> &ClientKey {
        &self.client_id
    }

    /// Queues a routed message for this session and wakes its connection. Short lock, no
    /// await. [`Enqueued::QueuedOverLimit`]: the caller holds its publisher back with
    /// [`SessionSlot::wait_for_room`] (see [`Session::offer`]).
    pub fn deliver(&self, delivery: Delivery, now: Instant, stall: Duration) -> Enqueued {
        let mut state = self.state.lock();
        if state.ended {
            return Enqueued::DroppedOffline;
        }
        let qos = delivery.qos;
        let result = state.session.offer(delivery, now, stall);
        if matches!(result, Enqueued::Queued | Enqueued::QueuedOverLimit)
            && state.session.can_send_now(qos)
        {
            if let Some(owner) = &state.owner {
                owner.wake.notify_one();
            }
        }
        result
    }

    /// Takes a message that could not be stored back out of the queue, if still there.
    pub fn withdraw(&self, seq: u64) {
        self.state.lock().session.withdraw(seq);
    }

    /// Whether the session is in the persistent store.
    pub fn is_persisted(&self) -> bool {
        self.state.lock().persisted
    }

    /// Waits until this session's queue is below its limit, the session is no longer
    /// connected, or its client took no message for `stall` (see [`Session::is_stalled`]).
    /// The lock is held only to check; the wait itself holds nothing. Cancel-safe.
    pub async fn wait_for_room(&self, stall: Duration) -> RoomWait {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up between check and wait is not lost.
            notified.as_mut().enable();
            let stalls_at = {
                let mut state = self.state.lock();
                if state.ended || state.owner.is_none() || state.session.has_room() {
                    return RoomWait::Room;
                }
                let Some(at) = state.session.stalls_at(stall) else {
                    return RoomWait::Room;
                };
                if Instant::now() >= at {
                    return RoomWait::Stalled;
                }
                state.held_publishers = true;
                at
            };
            let _ = tokio::time::timeout_at(stalls_at.into(), notified).await;
        }
    }

    /// Wakes held-back publishers so they look again: the owner's transmit made room (see
    /// [`SlotState::release_held_publishers`]), or the session went offline or ended.
    pub fn wake_held_publishers(&self) {
        self.room.notify_waiters();
    }

    /// The state, if `connection` still owns the session (it was not taken over).
    pub fn lock_owned(&self, connection: u64) -> Option<MutexGuard<'_, SlotState>> {
        let state = self.state.lock();
        state.is_owned_by(connection).then_some(state)
    }

    /// Arms the will of the connection that owns the session.
    pub fn set_will(&self, connection: u64, will: Option<StoredWill>) {
        if let Some(mut state) = self.lock_owned(connection) {
            state.will = will.map(Box::new);
        }
    }

    /// Keeps a delayed will while the session is offline. Between the release that handed the
    /// will out and this call a new connection may have opened the session: coming back to it
    /// cancels the will [MQTT-3.1.3-9], but a Clean Start ends it, and a session that ends
    /// before the delay has passed publishes its will at once (section 3.1.3.2.2).
    pub fn park_will(&self, generation: u64, will: StoredWill) -> Parking {
        let mut state = self.state.lock();
        if state.ended {
            Parking::SessionEnded(Box::new(will))
        } else if state.generation == generation && state.owner.is_none() {
            state.will = Some(Box::new(will));
            Parking::Parked
        } else {
            Parking::Cancelled
        }
    }

    /// The parked will, if the offline period it was parked for is still going on.
    pub fn take_parked_will(&self, generation: u64) -> Option<StoredWill> {
        let mut state = self.state.lock();
        if state.generation == generation && state.owner.is_none() {
            state.will.take().map(|will| *will)
        } else {
            None
        }
    }
}

/// What [`SessionRegistry::open`] found and did.
#[derive(Debug)]
pub struct Opened {
    pub slot: Arc<SessionSlot>,
    /// An existing session was resumed (CONNACK Session Present).
    pub session_present: bool,
    /// Another connection held the session and was told to close [MQTT-3.1.4-3].
    pub took_over: bool,
    /// The previous session was offline and kept (for the disconnected-clients gauge).
    pub resumed_offline: bool,
    /// The will of the previous connection, armed or parked, taken out of the session: the
    /// caller publishes it if the session ended (clean start) or its delay is 0, else drops it
    /// because the client reconnected in time [MQTT-3.1.3-9].
    pub previous_will: Option<StoredWill>,
    /// A previous session was discarded by Clean Start (its filters already left the tree).
    pub discarded: bool,
    /// The discarded session was in the persistent store.
    pub discarded_persisted: bool,
}

/// What [`SessionRegistry::release`] found and did.
#[derive(Debug)]
pub struct Released {
    /// The offline period's generation, for will delay and expiry timers.
    pub generation: u64,
    pub expiry: SessionExpiry,
    pub will: Option<StoredWill>,
    /// The session ended with the connection (expiry 0); its filters already left the tree.
    pub ended: bool,
    /// The session is in the persistent store.
    pub persisted: bool,
    /// Its stored subscriptions, when it must be rewritten: persisted, not ended, and its
    /// expiry changed since stored (v5 DISCONNECT).
    pub subscriptions: Vec<StoredSubscription>,
    /// The expiry differs from the stored one.
    pub expiry_changed: bool,
}

/// An expired session's leftovers.
#[derive(Debug)]
pub struct Expired {
    pub will: Option<StoredWill>,
    /// The session was in the persistent store.
    pub persisted: bool,
}

pub struct SessionRegistry {
    shards: Vec<RwLock<HashMap<ClientKey, Arc<SessionSlot>>>>,
    hasher: RandomState,
    tree: SubscriptionTree,
}

impl SessionRegistry {
    pub fn new(tree: SubscriptionTree) -> SessionRegistry {
        SessionRegistry {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            tree,
        }
    }

    /// Removes an ending session's filters from the tree.
    fn forget(&self, client_id: &ClientKey, filters: BTreeSet<String>) {
        for filter in filters {
            self.tree.unsubscribe(client_id, &filter);
        }
    }

    fn shard(&self, client_id: &str) -> &RwLock<HashMap<ClientKey, Arc<SessionSlot>>> {
        let index = (self.hasher.hash_one(client_id) as usize) % SHARDS;
        &self.shards[index]
    }

    pub fn get(&self, client_id: &str) -> Option<Arc<SessionSlot>> {
        self.shard(client_id).read().get(client_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Wakes the connection attached to every session. At shutdown, after the signal is
    /// raised: a connection attached later finds the signal already raised.
    pub fn wake_connections(&self) {
        for shard in &self.shards {
            for slot in shard.read().values() {
                if let Some(owner) = &slot.state.lock().owner {
                    owner.wake.notify_one();
                }
            }
        }
    }

    /// Attaches connection `connection` to the session of `client_id`: takes over a session
    /// held by another connection [MQTT-3.1.4-3], resumes it unless `clean_start`
    /// [MQTT-3.1.2-5], else starts a new one [MQTT-3.1.2-4].
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &self,
        client_id: &str,
        clean_start: bool,
        connection: u64,
        wake: Arc<Notify>,
        expiry: SessionExpiry,
        limits: SessionLimits,
    ) -> Opened {
        let owner = Owner { connection, wake };
        let mut shard = self.shard(client_id).write();
        let mut opened = Opened {
            slot: match shard.get(client_id) {
                Some(slot) => slot.clone(),
                None => {
                    let key: ClientKey = client_id.into();
                    let slot = Arc::new(SessionSlot::new(key.clone(), limits, expiry, owner));
                    shard.insert(key, slot.clone());
                    return Opened {
                        slot,
                        session_present: false,
                        took_over: false,
                        resumed_offline: false,
                        previous_will: None,
                        discarded: false,
                        discarded_persisted: false,
                    };
                }
            },
            session_present: false,
            took_over: false,
            resumed_offline: false,
            previous_will: None,
            discarded: false,
            discarded_persisted: false,
        };
        let existing = opened.slot.clone();
        let mut state = existing.state.lock();
        // Dropping the old owner wakes its connection, which then closes [MQTT-3.1.4-3].
        if state.owner.take().is_some() {
            opened.took_over = true;
        }
        opened.resumed_offline = !opened.took_over;
        opened.previous_will = state.will.take().map(|will| *will);
        state.generation += 1;
        if clean_start {
            state.ended = true;
            state.session.detach();
            existing.wake_held_publishers();
            opened.discarded = true;
            opened.discarded_persisted = state.persisted;
            let filters = std::mem::take(&mut state.subscriptions);
            drop(state);
            self.forget(&existing.client_id, filters);
            let key = existing.client_id.clone();
            let slot = Arc::new(SessionSlot::new(key.clone(), limits, expiry, owner));
            shard.insert(key, slot.clone());
            opened.slot = slot;
        } else {
            state.owner = Some(owner);
            state.expiry = expiry;
            opened.session_present = true;
        }
        opened
    }

    /// Detaches `connection` from its session when the connection ends. `None` if the
    /// connection no longer owned it (taken over: the new owner already handled the will).
    pub fn release(&self, slot: &Arc<SessionSlot>, connection: u64) -> Option<Released> {
        let mut shard = self.shard(&slot.client_id).write();
        let mut state = slot.state.lock();
        if !state.is_owned_by(connection) {
            return None;
        }
        state.owner = None;
        state.generation += 1;
        state.session.detach();
        let will = state.will.take().map(|will| *will);
        let ended = state.expiry.secs == 0;
        // Only needed to rewrite a session whose expiry a DISCONNECT changed.
        let subscriptions = if state.persisted && !ended && state.expiry.secs != state.stored_expiry
        {
            state.stored_subscriptions.values().cloned().collect()
        } else {
            Vec::new()
        };
        state.held_publishers = false;
        slot.wake_held_publishers();
        let released = Released {
            generation: state.generation,
            expiry: state.expiry,
            will,
            ended,
            persisted: state.persisted,
            subscriptions,
            expiry_changed: state.expiry.secs != state.stored_expiry,
        };
        if ended {
            state.ended = true;
            if shard
                .get(&slot.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, slot))
            {
                shard.remove(&slot.client_id);
            }
            let filters = std::mem::take(&mut state.subscriptions);
            drop(state);
            self.forget(&slot.client_id, filters);
        }
        drop(shard);
        Some(released)
    }

    /// Ends an offline session whose expiry ran out, if no client came back since `generation`.
    pub fn expire(&self, slot: &Arc<SessionSlot>, generation: u64) -> Option<Expired> {
        let mut shard = self.shard(&slot.client_id).write();
        let mut state = slot.state.lock();
        if state.ended || state.owner.is_some() || state.generation != generation {
            return None;
        }
        state.ended = true;
        slot.wake_held_publishers();
        if shard
            .get(&slot.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            shard.remove(&slot.client_id);
        }
        let filters = std::mem::take(&mut state.subscriptions);
        let will = state.will.take().map(|will| *will);
        let persisted = state.persisted;
        drop(state);
        self.forget(&slot.client_id, filters);
        drop(shard);
        Some(Expired { will, persisted })
    }

    /// Puts back an offline session restored from the persistent store, with its
    /// subscriptions (into the tree) and its pending will. Returns its slot and the
    /// generation of this offline period, for will delay and expiry timers.
    pub fn restore(
        &self,
        client_id: &str,
        session: Session,
        expiry: SessionExpiry,
        subscriptions: Vec<StoredSubscription>,
        will: Option<StoredWill>,
    ) -> (Arc<SessionSlot>, u64) {
        let key: ClientKey = client_id.into();
        let slot = Arc::new(SessionSlot::with_state(key.clone(), session, expiry, None));
        let generation = {
            let mut state = slot.state.lock();
            state.persisted = true;
            state.stored_expiry = expiry.secs;
            state.will = will.map(Box::new);
            for sub in subscriptions {
                state.subscriptions.insert(sub.filter.clone());
                self.tree.subscribe(
                    &key,
                    &sub.filter,
                    crate::routing::Subscription {
                        options: sub.options,
                        identifier: sub.identifier,
                    },
                );
                state.stored_subscriptions.insert(sub.filter.clone(), sub);
            }
            state.generation
        };
        self.shard(client_id).write().insert(key, slot.clone());
        (slot, generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_inflight: 10,
            max_queued_messages: 10,
            receive_maximum: 10,
            topic_alias_maximum: 0,
        }
    }

    fn keep(secs: u32) -> SessionExpiry {
        SessionExpiry {
            secs,
            capped: false,
        }
    }

    fn open(
        r: &SessionRegistry,
        id: &str,
        clean: bool,
        conn: u64,
        expiry: u32,
    ) -> (Opened, Arc<Notify>) {
        let wake = Arc::new(Notify::new());
        (
            r.open(id, clean, conn, wake.clone(), keep(expiry), limits()),
            wake,
        )
    }

    #[test]
    fn new_connection_with_same_client_id_takes_over_mqtt_3_1_4_3() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, kicked) = open(&r, "c", false, 1, 100);
        assert!(!first.session_present);
        let (second, _) = open(&r, "c", false, 2, 100);
        assert!(second.took_over);
        assert!(second.session_present);
        assert!(Arc::ptr_eq(&first.slot, &second.slot));
        // the old connection is woken to find it no longer owns the session
        assert!(kicked.notified().now_or_never().is_some());
        // the old connection no longer owns the session
        assert!(first.slot.lock_owned(1).is_none());
        assert!(r.release(&first.slot, 1).is_none());
        assert!(second.slot.lock_owned(2).is_some());
    }

    #[test]
    fn clean_start_discards_the_existing_session_mqtt_3_1_2_4() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 100);
        let key: ClientKey = "c".into();
        {
            let mut state = first.slot.lock_owned(1).unwrap();
            state.subscriptions.insert("a/#".into());
            r.tree.subscribe(
                &key,
                "a/#",
                crate::routing::Subscription {
                    options: crate::protocol::SubscriptionOptions::qos(
                        crate::protocol::QoS::AtMostOnce,
                    ),
                    identifier: None,
                },
            );
        }
        r.release(&first.slot, 1).unwrap();
        assert_eq!(r.tree.len(), 1);
        let (second, _) = open(&r, "c", true, 2, 100);
        assert!(!second.session_present);
        assert!(!Arc::ptr_eq(&first.slot, &second.slot));
        assert!(second.discarded);
        assert_eq!(r.tree.len(), 0);
        assert!(Arc::ptr_eq(&r.get("c").unwrap(), &second.slot));
    }

    #[test]
    fn session_with_expiry_zero_ends_with_the_connection() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 0);
        let released = r.release(&first.slot, 1).unwrap();
        assert!(released.ended);
        assert!(r.get("c").is_none());
    }

    #[test]
    fn offline_session_expires_unless_the_client_came_back_mqtt_3_1_2_23() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 10);
        let released = r.release(&first.slot, 1).unwrap();
        assert!(!released.ended);
        // the client comes back: the old timer's generation is stale
        let (second, _) = open(&r, "c", false, 2, 10);
        assert!(r.expire(&second.slot, released.generation).is_none());
        let released = r.release(&second.slot, 2).unwrap();
        assert!(r.expire(&second.slot, released.generation).is_some());
        assert!(r.get("c").is_none());
    }

    #[test]
    fn reconnect_takes_the_parked_will_out_mqtt_3_1_3_9() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 100);
        let released = r.release(&first.slot, 1).unwrap();
        let will = StoredWill {
            will: Will {
                topic: "w".into(),
                payload: bytes::Bytes::new(),
                qos: crate::protocol::QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            },
            client: ClientInfo {
                client_id: "c".into(),
                username: None,
                peer: None,
                listener: "default".into(),
                protocol: crate::protocol::ProtocolVersion::V5,
            },
        };
        assert!(matches!(
            first.slot.park_will(released.generation, will),
            Parking::Parked
        ));
        let (second, _) = open(&r, "c", false, 2, 100);
        assert!(second.previous_will.is_some());
        assert!(second.slot.take_parked_will(released.generation).is_none());
    }

    fn delayed_will() -> StoredWill {
        StoredWill {
            will: Will {
                topic: "w".into(),
                payload: bytes::Bytes::new(),
                qos: crate::protocol::QoS::AtMostOnce,
                retain: false,
                properties: crate::protocol::Properties {
                    will_delay_interval: Some(30),
                    ..Default::default()
                },
            },
            client: ClientInfo {
                client_id: "c".into(),
                username: None,
                peer: None,
                listener: "default".into(),
                protocol: crate::protocol::ProtocolVersion::V5,
            },
        }
    }

    #[test]
    fn clean_start_between_release_and_parking_publishes_the_delayed_will_section_3_1_3_2_2() {
        // The connection released the session (taking its will out to park it), and a new
        // connection with Clean Start opened it before the will was parked: the session ended
        // before the delay, so the will is due now rather than lost.
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 100);
        let released = r.release(&first.slot, 1).unwrap();
        let (second, _) = open(&r, "c", true, 2, 100);
        assert!(second.previous_will.is_none());
        match first.slot.park_will(released.generation, delayed_will()) {
            Parking::SessionEnded(will) => assert_eq!(will.delay(), 30),
            other => panic!("expected the will to be due, got {other:?}"),
        }
        assert!(second.slot.take_parked_will(released.generation).is_none());
    }

    #[test]
    fn resume_between_release_and_parking_cancels_the_delayed_will_mqtt_3_1_3_9() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let (first, _) = open(&r, "c", false, 1, 100);
        let released = r.release(&first.slot, 1).unwrap();
        let (second, _) = open(&r, "c", false, 2, 100);
        assert!(second.session_present);
        assert!(matches!(
            first.slot.park_will(released.generation, delayed_will()),
            Parking::Cancelled
        ));
        // Nothing was parked in the resumed session for a timer to publish later.
        assert!(second.previous_will.is_none());
        let released = r.release(&second.slot, 2).unwrap();
        assert!(released.will.is_none());
    }

    #[test]
    fn deliver_wakes_the_owning_connection() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let wake = Arc::new(Notify::new());
        let opened = r.open("c", true, 1, wake.clone(), keep(0), limits());
        opened
            .slot
            .lock_owned(1)
            .unwrap()
            .session
            .attach(link(), &mut Vec::new());
        let msg = Arc::new(crate::session::Message {
            topic: "t".into(),
            payload: bytes::Bytes::new(),
            qos: crate::protocol::QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            publisher: "p".into(),
        });
        let d = Delivery::live(msg, crate::protocol::QoS::AtLeastOnce, false, vec![]);
        assert_eq!(
            opened
                .slot
                .deliver(d, Instant::now(), Duration::from_secs(5)),
            Enqueued::Queued
        );
        // the permit is stored: a later wait returns at once
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
                .await
                .unwrap()
        });
    }

    fn message(qos: crate::protocol::QoS) -> Delivery {
        let msg = Arc::new(crate::session::Message {
            topic: "t".into(),
            payload: bytes::Bytes::new(),
            qos,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            publisher: "p".into(),
        });
        Delivery::live(msg, qos, false, vec![])
    }

    #[test]
    fn deliver_does_not_wake_a_connection_whose_window_is_full() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let wake = Arc::new(Notify::new());
        let opened = r.open("c", true, 1, wake.clone(), keep(0), limits());
        {
            let mut state = opened.slot.lock_owned(1).unwrap();
            state.session.attach(link(), &mut Vec::new());
        }
        let (now, stall) = (Instant::now(), Duration::from_secs(5));
        // fill the window (10): these wake the connection
        for _ in 0..10 {
            opened
                .slot
                .deliver(message(crate::protocol::QoS::AtLeastOnce), now, stall);
        }
        opened
            .slot
            .lock_owned(1)
            .unwrap()
            .session
            .poll_transmit(now, &mut Vec::new());
        runtime().block_on(async {
            // consume the stored wake-up
            tokio::time::timeout(Duration::from_secs(1), wake.notified())
                .await
                .unwrap();
            opened
                .slot
                .deliver(message(crate::protocol::QoS::AtLeastOnce), now, stall);
            assert!(
                tokio::time::timeout(Duration::from_millis(50), wake.notified())
                    .await
                    .is_err(),
                "the window is full: the acknowledgement will wake it, not the queue"
            );
            // a QoS 0 message needs no window slot: it wakes the connection
            opened
                .slot
                .deliver(message(crate::protocol::QoS::AtMostOnce), now, stall);
            tokio::time::timeout(Duration::from_secs(1), wake.notified())
                .await
                .unwrap();
        });
    }

    fn online_with_full_queue(r: &SessionRegistry) -> Opened {
        let opened = r.open("sub", true, 1, Arc::new(Notify::new()), keep(0), limits());
        opened
            .slot
            .lock_owned(1)
            .unwrap()
            .session
            .attach(link(), &mut Vec::new());
        let now = Instant::now();
        let stall = Duration::from_secs(5);
        for _ in 0..10 {
            assert_eq!(
                opened
                    .slot
                    .deliver(message(crate::protocol::QoS::AtLeastOnce), now, stall),
                Enqueued::Queued
            );
        }
        assert_eq!(
            opened
                .slot
                .deliver(message(crate::protocol::QoS::AtLeastOnce), now, stall),
            Enqueued::QueuedOverLimit
        );
        opened
    }

    fn link() -> crate::session::LinkParams {
        crate::session::LinkParams {
            version: crate::protocol::ProtocolVersion::V311,
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn held_publisher_goes_on_once_the_subscriber_takes_messages() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let opened = online_with_full_queue(&r);
        let slot = opened.slot.clone();
        runtime().block_on(async move {
            let waiter = {
                let slot = slot.clone();
                tokio::spawn(async move { slot.wait_for_room(Duration::from_secs(5)).await })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "held while the queue is full");
            // the subscriber's connection transmits (window 10 takes 10 of 11) and wakes it
            let release = {
                let mut state = slot.lock_owned(1).unwrap();
                state.session.poll_transmit(Instant::now(), &mut Vec::new());
                state.release_held_publishers()
            };
            assert!(release);
            slot.wake_held_publishers();
            let outcome = tokio::time::timeout(Duration::from_secs(1), waiter)
                .await
                .expect("woken")
                .unwrap();
            assert_eq!(outcome, RoomWait::Room);
        });
    }

    #[test]
    fn held_publisher_is_let_go_when_the_subscriber_stalls() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let opened = online_with_full_queue(&r);
        runtime().block_on(async move {
            let outcome = tokio::time::timeout(
                Duration::from_secs(2),
                opened.slot.wait_for_room(Duration::from_millis(50)),
            )
            .await
            .expect("a stalled subscriber does not hold publishers forever");
            assert_eq!(outcome, RoomWait::Stalled);
        });
    }

    #[test]
    fn held_publisher_goes_on_when_the_subscriber_disconnects() {
        let r = SessionRegistry::new(SubscriptionTree::new());
        let opened = online_with_full_queue(&r);
        let slot = opened.slot.clone();
        runtime().block_on(async move {
            let waiter = {
                let slot = slot.clone();
                tokio::spawn(async move { slot.wait_for_room(Duration::from_secs(5)).await })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            r.release(&slot, 1).unwrap();
            let outcome = tokio::time::timeout(Duration::from_secs(1), waiter)
                .await
                .expect("woken")
                .unwrap();
            assert_eq!(outcome, RoomWait::Room);
        });
    }
}
