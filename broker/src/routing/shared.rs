//! One shared-subscription group (`$share/{group}/{filter}`) at one node of the subscription
//! trie: its members and the round-robin cursor that picks which one gets the next message.
//! The cursor is an atomic so that routing needs only the trie's read lock.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::tree::{ClientKey, Route, Subscription};

#[derive(Debug, Default)]
pub(crate) struct SharedGroup {
    /// Each client at most once, in subscribe order.
    members: Vec<(ClientKey, Subscription)>,
    next: AtomicUsize,
}

impl SharedGroup {
    /// Adds or replaces `client`'s membership; true if it was already a member.
    pub(crate) fn insert(&mut self, client: &ClientKey, sub: Subscription) -> bool {
        match self.members.iter_mut().find(|(c, _)| c == client) {
            Some((_, existing)) => {
                *existing = sub;
                true
            }
            None => {
                self.members.push((client.clone(), sub));
                false
            }
        }
    }

    /// Removes `client`; true if it was a member.
    pub(crate) fn remove(&mut self, client: &str) -> bool {
        match self.members.iter().position(|(c, _)| &**c == client) {
            Some(index) => {
                self.members.remove(index);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Pushes the route to the next member in turn. A member whose subscription has no_local
    /// set (a protocol error on shared subscriptions in v5 [MQTT-3.8.3-4], so only reachable
    /// through a bug elsewhere) is passed over when it is the publisher.
    pub(crate) fn route_next(&self, publisher: &str, out: &mut Vec<Route>) {
        let count = self.members.len();
        if count == 0 {
            return;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for step in 0..count {
            let Some((client, sub)) = self.members.get(start.wrapping_add(step) % count) else {
                continue;
            };
            if sub.options.no_local && &**client == publisher {
                continue;
            }
            out.push(Route::for_subscription(client, sub));
            return;
        }
    }
}
