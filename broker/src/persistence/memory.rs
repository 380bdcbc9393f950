//! [`MemoryStore`]: the store used with `[persistence] enabled = false` and in tests. It keeps
//! the same records and applies the same restore rules as the SQLite store, in a map behind a
//! mutex; commits complete at once and nothing survives the process.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use parking_lot::Mutex;

use super::record::{
    RestoredSession, Snapshot, StoredInflight, StoredMessage, StoredSession, StoredSubscription,
};
use super::store::{Commit, Op, Store, StoreError, StoreStats};

#[derive(Debug, Default)]
struct ClientRecords {
    session: Option<StoredSession>,
    queued: BTreeMap<u64, StoredMessage>,
    inflight: BTreeMap<u16, StoredInflight>,
    inbound_qos2: BTreeSet<u16>,
}

#[derive(Debug, Default)]
struct State {
    clients: BTreeMap<String, ClientRecords>,
    retained: BTreeMap<String, StoredMessage>,
    stats: StoreStats,
}

/// An in-memory [`Store`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl State {
    fn client(&mut self, client_id: &str) -> &mut ClientRecords {
        self.clients.entry(client_id.to_owned()).or_default()
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::SaveSession(session) => {
                let id = session.client_id.clone();
                self.client(&id).session = Some(session);
            }
            Op::SetDisconnected { client_id, at } => {
                if let Some(s) = self.client(&client_id).session.as_mut() {
                    s.disconnected_at = at;
                }
            }
            Op::SetWill { client_id, will } => {
                if let Some(s) = self.client(&client_id).session.as_mut() {
                    s.will = will;
                }
            }
            Op::DeleteSession { client_id } => {
                self.clients.remove(&client_id);
            }
            Op::AddSubscription {
                client_id,
                subscription,
            } => {
                if let Some(s) = self.client(&client_id).session.as_mut() {
                    upsert_subscription(&mut s.subscriptions, subscription);
                }
            }
            Op::RemoveSubscription { client_id, filter } => {
                if let Some(s) = self.client(&client_id).session.as_mut() {
                    s.subscriptions.retain(|sub| sub.filter != filter);
                }
            }
            Op::SetRetained(message) => {
                self.retained.insert(message.topic.clone(), message);
            }
            Op::ClearRetained { topic } => {
                self.retained.remove(&topic);
            }
            Op::Enqueue {
                client_id,
                seq,
                message,
            } => {
                self.client(&client_id).queued.insert(seq, message);
            }
            Op::Dequeue { client_id, seq } => {
                self.client(&client_id).queued.remove(&seq);
            }
            Op::PutInflight { client_id, entry } => {
                self.client(&client_id)
                    .inflight
                    .insert(entry.packet_id, entry);
            }
            Op::SetInflightState {
                client_id,
                packet_id,
                state,
            } => {
                if let Some(e) = self.client(&client_id).inflight.get_mut(&packet_id) {
                    e.state = state;
                }
            }
            Op::RemoveInflight {
                client_id,
                packet_id,
            } => {
                self.client(&client_id).inflight.remove(&packet_id);
            }
            Op::AddInboundQos2 {
                client_id,
                packet_id,
            } => {
                self.client(&client_id).inbound_qos2.insert(packet_id);
            }
            Op::RemoveInboundQos2 {
                client_id,
                packet_id,
            } => {
                self.client(&client_id).inbound_qos2.remove(&packet_id);
            }
        }
    }

    /// Applies the restore rules (see [`Store::load`]) to the state itself and returns it.
    fn restore(&mut self, now: SystemTime) -> Snapshot {
        self.retained.retain(|_, m| !m.is_expired(now));
        self.clients.retain(|_, c| match &c.session {
            Some(s) => !s.is_expired(now),
            None => false,
        });
        let mut sessions = Vec::with_capacity(self.clients.len());
        for c in self.clients.values_mut() {
            c.queued.retain(|_, m| !m.is_expired(now));
            let Some(session) = c.session.as_mut() else {
                continue;
            };
            if session.disconnected_at.is_none() {
                session.disconnected_at = Some(now);
            }
            // The same order the SQLite store restores them in.
            session
                .subscriptions
                .sort_by(|a, b| a.filter.cmp(&b.filter));
            sessions.push(RestoredSession {
                session: session.clone(),
                queued: c.queued.iter().map(|(k, m)| (*k, m.clone())).collect(),
                inflight: c.inflight.values().cloned().collect(),
                inbound_qos2: c.inbound_qos2.iter().copied().collect(),
            });
        }
        Snapshot {
            sessions,
            retained: self.retained.values().cloned().collect(),
        }
    }
}

/// Replaces the subscription with the same filter, or appends.
pub(crate) fn upsert_subscription(subs: &mut Vec<StoredSubscription>, sub: StoredSubscription) {
    match subs.iter_mut().find(|s| s.filter == sub.filter) {
        Some(existing) => *existing = sub,
        None => subs.push(sub),
    }
}

impl Store for MemoryStore {
    fn commit(&self, ops: Vec<Op>) -> Commit {
        let mut state = self.state.lock();
        let n = ops.len() as u64;
        for op in ops {
            state.apply(op);
        }
        state.stats.commits += 1;
        state.stats.transactions += 1;
        state.stats.ops += n;
        Commit::ready(Ok(()))
    }

    fn load(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        Ok(self.state.lock().restore(now))
    }

    fn sync(&self) -> Commit {
        Commit::ready(Ok(()))
    }

    fn stats(&self) -> StoreStats {
        self.state.lock().stats
    }
}
