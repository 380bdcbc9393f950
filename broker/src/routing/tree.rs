//! The subscription tree: a trie keyed by topic level that answers "which sessions must get a
//! PUBLISH to this topic" in time proportional to the topic's depth (times the wildcard
//! branches that actually exist), never by scanning every subscription.
//!
//! The trie sits behind one `parking_lot::RwLock`: every connection task routes under the
//! read lock, concurrently; SUBSCRIBE/UNSUBSCRIBE take the write lock briefly. Shared-group
//! round-robin cursors are atomics, so routing never needs the write lock. Every walk is a
//! loop with an explicit stack (no recursion), because a filter may have tens of thousands of
//! levels and a deep recursion would overflow a task's stack.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::filter::{levels, split_shared, Level};
use super::shared::SharedGroup;
use crate::protocol::{QoS, SubscriptionOptions};

/// A session's client identifier, shared cheaply between the tree and the session table.
pub type ClientKey = Arc<str>;

/// What a client asked for when it subscribed to one filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub options: SubscriptionOptions,
    /// The v5 Subscription Identifier, if the SUBSCRIBE carried one.
    pub identifier: Option<u32>,
}

/// One delivery a PUBLISH must make. `qos` is the (merged) subscription QoS; the session
/// engine delivers at the minimum of it and the PUBLISH's QoS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub client: ClientKey,
    pub qos: QoS,
    pub retain_as_published: bool,
    /// Identifiers of every matching subscription that had one (v5 sends them all
    /// [MQTT-3.3.4-3]).
    pub identifiers: Vec<u32>,
}

impl Route {
    pub(crate) fn for_subscription(client: &ClientKey, sub: &Subscription) -> Route {
        let mut identifiers = Vec::new();
        if let Some(id) = sub.identifier {
            identifiers.push(id);
        }
        Route {
            client: client.clone(),
            qos: sub.options.qos,
            retain_as_published: sub.options.retain_as_published,
            identifiers,
        }
    }

    /// Folds another matching subscription of the same client into this route
    /// [MQTT-3.3.4-2]: the highest QoS, every identifier, retain-as-published if any asks.
    fn merge(&mut self, other: &mut Route) {
        self.qos = self.qos.max(other.qos);
        self.retain_as_published |= other.retain_as_published;
        self.identifiers.append(&mut other.identifiers);
    }
}

/// Handle to the shared subscription trie; clones are cheap and see the same tree.
#[derive(Clone, Default)]
pub struct SubscriptionTree {
    inner: Arc<TreeInner>,
}

#[derive(Default)]
struct TreeInner {
    root: RwLock<Node>,
    /// Number of (client, filter) subscriptions, shared ones included.
    count: AtomicUsize,
}

/// The subscriptions whose filter ends at one point of the trie.
#[derive(Default)]
struct Subscribers {
    direct: HashMap<ClientKey, Subscription>,
    shared: HashMap<Box<str>, SharedGroup>,
}

impl Subscribers {
    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.shared.is_empty()
    }

    fn insert(&mut self, group: Option<&str>, client: &ClientKey, sub: Subscription) -> bool {
        match group {
            None => self.direct.insert(client.clone(), sub).is_some(),
            Some(group) => self
                .shared
                .entry(group.into())
                .or_default()
                .insert(client, sub),
        }
    }

    fn remove(&mut self, group: Option<&str>, client: &str) -> bool {
        match group {
            None => self.direct.remove(client).is_some(),
            Some(group) => {
                let Some(members) = self.shared.get_mut(group) else {
                    return false;
                };
                let removed = members.remove(client);
                if members.is_empty() {
                    self.shared.remove(group);
                }
                removed
            }
        }
    }

    /// Pushes one route per direct subscriber (no merging here); returns whether any was
    /// pushed.
    fn route_direct(&self, publisher: &str, out: &mut Vec<Route>) -> bool {
        let before = out.len();
        for (client, sub) in &self.direct {
            if sub.options.no_local && &**client == publisher {
                continue; // [MQTT-3.8.3-3]
            }
            out.push(Route::for_subscription(client, sub));
        }
        out.len() > before
    }

    fn route_shared(&self, publisher: &str, out: &mut Vec<Route>) {
        for group in self.shared.values() {
            group.route_next(publisher, out);
        }
    }
}

/// One trie node: the topic levels seen so far lead here.
#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// The `+` edge.
    single: Option<Box<Node>>,
    /// Filters that end exactly here.
    exact: Subscribers,
    /// Filters that end here with a trailing `#` (so they also match this node's own topic).
    multi: Subscribers,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.single.is_none()
            && self.exact.is_empty()
            && self.multi.is_empty()
    }

    fn edge_count(&self) -> usize {
        self.children.len() + usize::from(self.single.is_some())
    }

    fn child(&self, level: Level<'_>) -> Option<&Node> {
        match level {
            Level::Literal(name) => self.children.get(name),
            Level::SingleWildcard => self.single.as_deref(),
            Level::MultiWildcard => None,
        }
    }

    fn child_mut(&mut self, level: Level<'_>) -> Option<&mut Node> {
        match level {
            Level::Literal(name) => self.children.get_mut(name),
            Level::SingleWildcard => self.single.as_deref_mut(),
            Level::MultiWildcard => None,
        }
    }

    fn remove_child(&mut self, level: Level<'_>) {
        match level {
            Level::Literal(name) => {
                self.children.remove(name);
            }
            Level::SingleWildcard => self.single = None,
            Level::MultiWildcard => {}
        }
    }
}

impl Drop for Node {
    // Dropping a deep chain of nodes recursively could overflow the stack; move the
    // descendants onto a heap stack instead so each node drops with no children.
    fn drop(&mut self) {
        if self.children.is_empty() && self.single.is_none() {
            return;
        }
        let mut pending: Vec<Node> = Vec::new();
        pending.extend(self.children.drain().map(|(_, node)| node));
        pending.extend(self.single.take().map(|node| *node));
        while let Some(mut node) = pending.pop() {
            pending.extend(node.children.drain().map(|(_, node)| node));
            pending.extend(node.single.take().map(|node| *node));
        }
    }
}

/// A shared filter's group and the filter the trie stores it under.
fn group_and_filter(filter: &str) -> (Option<&str>, &str) {
    match split_shared(filter) {
        Some(shared) => (Some(shared.group), shared.filter),
        None => (None, filter),
    }
}

/// The edges a filter walks in the trie, and whether it ends with `#`.
fn edges(filter: &str) -> impl Iterator<Item = Level<'_>> {
    levels(filter).filter(|level| *level != Level::MultiWildcard)
}

fn ends_with_multi(filter: &str) -> bool {
    levels(filter).last() == Some(Level::MultiWildcard)
}

/// A pending step of the routing walk: `node` matched the topic's levels before `rest`
/// (`None` once every level is consumed).
#[derive(Clone, Copy)]
struct Frame<'t, 'n> {
    node: &'n Node,
    rest: Option<&'t str>,
    at_root: bool,
}

/// The walk's stack: inline for ordinary depths, spilling to the heap only for very deep
/// tries, so routing a PUBLISH does not allocate. With at most two edges per step (literal
/// and `+`) the walk keeps at most one pending sibling per level.
struct FrameStack<'t, 'n> {
    inline: [Option<Frame<'t, 'n>>; INLINE_FRAMES],
    inline_len: usize,
    spill: Vec<Frame<'t, 'n>>,
}

const INLINE_FRAMES: usize = 32;

impl<'t, 'n> FrameStack<'t, 'n> {
    fn new(first: Frame<'t, 'n>) -> Self {
        let mut stack = FrameStack {
            inline: [None; INLINE_FRAMES],
            inline_len: 0,
            spill: Vec::new(),
        };
        stack.push(first);
        stack
    }

    fn push(&mut self, frame: Frame<'t, 'n>) {
        match self.inline.get_mut(self.inline_len) {
            Some(slot) if self.spill.is_empty() => {
                *slot = Some(frame);
                self.inline_len += 1;
            }
            _ => self.spill.push(frame),
        }
    }

    fn pop(&mut self) -> Option<Frame<'t, 'n>> {
        if let Some(frame) = self.spill.pop() {
            return Some(frame);
        }
        let index = self.inline_len.checked_sub(1)?;
        self.inline_len = index;
        self.inline.get_mut(index).and_then(Option::take)
    }
}

/// Visits every set of subscribers whose filter matches `topic`.
fn for_each_match<'n>(root: &'n Node, topic: &str, mut visit: impl FnMut(&'n Subscribers)) {
    // [MQTT-4.7.2-1]: a topic starting with `$` is not matched by a filter whose first level
    // is a wildcard.
    let dollar = topic.starts_with('$');
    let mut stack = FrameStack::new(Frame {
        node: root,
        rest: Some(topic),
        at_root: true,
    });
    while let Some(Frame {
        node,
        rest,
        at_root,
    }) = stack.pop()
    {
        let wildcards_allowed = !(at_root && dollar);
        if wildcards_allowed {
            visit(&node.multi); // [MQTT-4.7.1-2]: `#` also matches the parent level
        }
        let Some(rest) = rest else {
            visit(&node.exact);
            continue;
        };
        let (level, next) = match rest.split_once('/') {
            Some((level, next)) => (level, Some(next)),
            None => (rest, None),
        };
        if wildcards_allowed {
            if let Some(single) = node.single.as_deref() {
                stack.push(Frame {
                    node: single,
                    rest: next,
                    at_root: false,
                });
            }
        }
        if let Some(child) = node.children.get(level) {
            stack.push(Frame {
                node: child,
                rest: next,
                at_root: false,
            });
        }
    }
}

/// Merges the routes in `out[start..]` that are for the same client into one each.
fn merge_same_client(out: &mut Vec<Route>, start: usize) {
    let Some(tail) = out.get_mut(start..) else {
        return;
    };
    if tail.len() < 2 {
        return;
    }
    tail.sort_unstable_by(|a, b| a.client.cmp(&b.client));
    let mut write = 0;
    for read in 1..tail.len() {
        let (kept, rest) = tail.split_at_mut(read);
        let (Some(current), Some(next)) = (kept.get_mut(write), rest.first_mut()) else {
            continue;
        };
        if current.client == next.client {
            current.merge(next);
        } else {
            write += 1;
            tail.swap(write, read);
        }
    }
    out.truncate(start + write + 1);
}

impl SubscriptionTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `client`'s subscription to `filter` (which may be
    /// `$share/{group}/{filter}`). Returns true if one already existed, which v5 retain
    /// handling 1 needs [MQTT-3.3.1-10].
    pub fn subscribe(&self, client: &ClientKey, filter: &str, sub: Subscription) -> bool {
        let (group, filter) = group_and_filter(filter);
        let mut root = self.inner.root.write();
        let mut node: &mut Node = &mut root;
        for level in edges(filter) {
            node = match level {
                Level::Literal(name) => node.children.entry(name.into()).or_default(),
                _ => node.single.get_or_insert_with(Default::default),
            };
        }
        let subscribers = if ends_with_multi(filter) {
            &mut node.multi
        } else {
            &mut node.exact
        };
        let existed = subscribers.insert(group, client, sub);
        if !existed {
            self.inner.count.fetch_add(1, Ordering::Relaxed);
        }
        existed
    }

    /// Removes `client`'s subscription to `filter`, pruning trie nodes left empty. Returns
    /// true if it existed.
    pub fn unsubscribe(&self, client: &ClientKey, filter: &str) -> bool {
        let (group, filter) = group_and_filter(filter);
        let mut root = self.inner.root.write();

        let mut node: &mut Node = &mut root;
        for level in edges(filter) {
            match node.child_mut(level) {
                Some(child) => node = child,
                None => return false,
            }
        }
        let subscribers = if ends_with_multi(filter) {
            &mut node.multi
        } else {
            &mut node.exact
        };
        if !subscribers.remove(group, client) {
            return false;
        }
        self.inner.count.fetch_sub(1, Ordering::Relaxed);
        if node.is_empty() {
            prune(&mut root, filter);
        }
        true
    }

    /// Appends the routes for a PUBLISH to `topic` from `publisher` to `out`: one per client
    /// with matching ordinary subscriptions (merged), then one per matching shared group
    /// (its next member in turn). Subscriptions with no_local are skipped for the publisher.
    pub fn route(&self, topic: &str, publisher: &str, out: &mut Vec<Route>) {
        let start = out.len();
        let root = self.inner.root.read();
        let mut sources = 0usize;
        let mut any_shared = false;
        for_each_match(&root, topic, |subscribers| {
            if subscribers.route_direct(publisher, out) {
                sources += 1;
            }
            any_shared |= !subscribers.shared.is_empty();
        });
        // A client appears once per set of subscribers, so merging is only needed when more
        // than one matching filter contributed.
        if sources > 1 {
            merge_same_client(out, start);
        }
        // Shared deliveries are separate from a client's ordinary ones (both are made), so
        // they are added after the merge; a second walk only happens when one exists.
        if any_shared {
            for_each_match(&root, topic, |subscribers| {
                subscribers.route_shared(publisher, out);
            });
        }
    }

    /// Number of subscriptions (shared ones included), in O(1).
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the chain of nodes along `filter`'s path that hold nothing but that path, now that
/// its last node is empty: cuts the edge below the deepest node that must stay.
fn prune(root: &mut Node, filter: &str) {
    let mut keep_depth = 0usize;
    let mut node: &Node = root;
    for (index, level) in edges(filter).enumerate() {
        let Some(child) = node.child(level) else {
            return;
        };
        let depth = index + 1;
        let sole_path = child.edge_count() <= 1 && child.exact.is_empty() && child.multi.is_empty();
        if !sole_path {
            keep_depth = depth;
        }
        node = child;
    }
    let mut node: &mut Node = root;
    for (index, level) in edges(filter).enumerate() {
        if index == keep_depth {
            node.remove_child(level);
            return;
        }
        match node.child_mut(level) {
            Some(child) => node = child,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RetainHandling;

    fn key(name: &str) -> ClientKey {
        Arc::from(name)
    }

    fn sub(qos: QoS) -> Subscription {
        Subscription {
            options: SubscriptionOptions::qos(qos),
            identifier: None,
        }
    }

    fn sub_with_id(qos: QoS, id: u32) -> Subscription {
        Subscription {
            options: SubscriptionOptions::qos(qos),
            identifier: Some(id),
        }
    }

    fn clients(tree: &SubscriptionTree, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.route(topic, "publisher", &mut out);
        let mut names: Vec<String> = out.iter().map(|r| r.client.to_string()).collect();
        names.sort();
        names
    }

    fn tree_with(filters: &[(&str, &str)]) -> SubscriptionTree {
        let tree = SubscriptionTree::new();
        for (client, filter) in filters {
            tree.subscribe(&key(client), filter, sub(QoS::AtMostOnce));
        }
        tree
    }

    #[test]
    fn single_level_wildcard_matches_exactly_one_level_mqtt_4_7_1_3() {
        let tree = tree_with(&[("c", "sport/tennis/+")]);
        assert_eq!(clients(&tree, "sport/tennis/player1"), vec!["c"]);
        assert_eq!(clients(&tree, "sport/tennis/"), vec!["c"]);
        assert!(clients(&tree, "sport/tennis/player1/ranking").is_empty());
        assert!(clients(&tree, "sport/tennis").is_empty());

        let tree = tree_with(&[("c", "+/+"), ("d", "/+"), ("e", "+")]);
        assert_eq!(clients(&tree, "/finance"), vec!["c", "d"]);
        assert!(clients(&tree, "/finance").iter().all(|c| c != "e"));
        assert_eq!(clients(&tree, "sport"), vec!["e"]);
    }

    #[test]
    fn multi_level_wildcard_matches_parent_mqtt_4_7_1_2() {
        let tree = tree_with(&[("c", "sport/tennis/player1/#")]);
        assert_eq!(clients(&tree, "sport/tennis/player1"), vec!["c"]);
        assert_eq!(clients(&tree, "sport/tennis/player1/ranking"), vec!["c"]);
        assert_eq!(
            clients(&tree, "sport/tennis/player1/score/wimbledon"),
            vec!["c"]
        );
        assert!(clients(&tree, "sport/tennis").is_empty());
        assert!(clients(&tree, "sport/tennis/player2").is_empty());

        let tree = tree_with(&[("all", "#"), ("plus_hash", "+/#")]);
        assert_eq!(clients(&tree, "a"), vec!["all", "plus_hash"]);
        assert_eq!(clients(&tree, "a/b/c"), vec!["all", "plus_hash"]);
        assert_eq!(clients(&tree, "/"), vec!["all", "plus_hash"]);
    }

    #[test]
    fn empty_levels_are_levels_mqtt_4_7_3() {
        let tree = tree_with(&[("ab", "a//b"), ("slash", "/x"), ("trail", "a/"), ("a", "a")]);
        assert_eq!(clients(&tree, "a//b"), vec!["ab"]);
        assert!(clients(&tree, "a/b").is_empty());
        assert_eq!(clients(&tree, "/x"), vec!["slash"]);
        assert!(clients(&tree, "x").is_empty());
        assert_eq!(clients(&tree, "a/"), vec!["trail"]);
        assert_eq!(clients(&tree, "a"), vec!["a"]);
    }

    #[test]
    fn topic_matching_is_case_sensitive_mqtt_4_7_3_1() {
        let tree = tree_with(&[("c", "ACCOUNTS")]);
        assert!(clients(&tree, "Accounts").is_empty());
        assert_eq!(clients(&tree, "ACCOUNTS"), vec!["c"]);
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards_mqtt_4_7_2_1() {
        let tree = tree_with(&[
            ("hash", "#"),
            ("plus", "+/monitor/Clients"),
            ("plus_hash", "+/#"),
            ("sys", "$SYS/#"),
            ("sys_plus", "$SYS/monitor/+"),
            ("inner_plus", "$SYS/+/Clients"),
        ]);
        assert_eq!(
            clients(&tree, "$SYS/monitor/Clients"),
            vec!["inner_plus", "sys", "sys_plus"]
        );
        assert_eq!(clients(&tree, "$SYS"), vec!["sys"]);
        assert_eq!(
            clients(&tree, "x/monitor/Clients"),
            vec!["hash", "plus", "plus_hash"]
        );
        // `$` only matters as the first character of the topic.
        assert_eq!(clients(&tree, "a/$b"), vec!["hash", "plus_hash"]);
    }

    #[test]
    fn overlapping_subscriptions_are_merged_per_client_mqtt_3_3_4_2() {
        let tree = SubscriptionTree::new();
        let c = key("c");
        tree.subscribe(&c, "a/+", sub_with_id(QoS::AtMostOnce, 1));
        tree.subscribe(&c, "a/#", sub_with_id(QoS::ExactlyOnce, 2));
        let mut rap = sub(QoS::AtLeastOnce);
        rap.options.retain_as_published = true;
        tree.subscribe(&c, "a/b", rap);
        tree.subscribe(&key("d"), "a/b", sub(QoS::AtLeastOnce));

        let mut out = Vec::new();
        tree.route("a/b", "p", &mut out);
        assert_eq!(out.len(), 2);
        let route_c = out.iter().find(|r| &*r.client == "c").unwrap();
        assert_eq!(route_c.qos, QoS::ExactlyOnce);
        assert!(route_c.retain_as_published);
        let mut ids = route_c.identifiers.clone();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        let route_d = out.iter().find(|r| &*r.client == "d").unwrap();
        assert_eq!(route_d.qos, QoS::AtLeastOnce);
        assert!(!route_d.retain_as_published);
        assert!(route_d.identifiers.is_empty());
    }

    #[test]
    fn route_appends_without_touching_existing_entries() {
        let tree = tree_with(&[("x", "a/#"), ("x2", "a/b"), ("y", "a/b")]);
        let earlier = Route::for_subscription(&key("x"), &sub(QoS::AtMostOnce));
        let mut out = vec![earlier.clone()];
        tree.route("a/b", "p", &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], earlier);
    }

    #[test]
    fn no_local_skips_the_publisher_only_mqtt_3_8_3_3() {
        let tree = SubscriptionTree::new();
        let mut local = sub(QoS::AtLeastOnce);
        local.options.no_local = true;
        tree.subscribe(&key("me"), "t", local.clone());
        tree.subscribe(&key("other"), "t", local);

        let mut out = Vec::new();
        tree.route("t", "me", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].client, "other");

        // Another matching subscription of the publisher without no_local still delivers.
        tree.subscribe(&key("me"), "#", sub_with_id(QoS::AtMostOnce, 9));
        out.clear();
        tree.route("t", "me", &mut out);
        let mine = out.iter().find(|r| &*r.client == "me").unwrap();
        assert_eq!(mine.qos, QoS::AtMostOnce);
        assert_eq!(mine.identifiers, vec![9]);
    }

    #[test]
    fn subscribe_reports_existing_and_replaces_options_mqtt_3_8_4_3() {
        let tree = SubscriptionTree::new();
        let c = key("c");
        assert!(!tree.subscribe(&c, "a/b", sub(QoS::AtMostOnce)));
        let mut replaced = sub_with_id(QoS::ExactlyOnce, 4);
        replaced.options.retain_handling = RetainHandling::SendIfNew;
        assert!(tree.subscribe(&c, "a/b", replaced));
        assert_eq!(tree.len(), 1);
        let mut out = Vec::new();
        tree.route("a/b", "p", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].qos, QoS::ExactlyOnce);
        assert_eq!(out[0].identifiers, vec![4]);
    }

    #[test]
    fn unsubscribe_removes_and_reports_existence_mqtt_3_10_4_1() {
        let tree = tree_with(&[("c", "a/+"), ("d", "a/+")]);
        assert_eq!(tree.len(), 2);
        assert!(tree.unsubscribe(&key("c"), "a/+"));
        assert!(!tree.unsubscribe(&key("c"), "a/+"));
        assert!(!tree.unsubscribe(&key("c"), "never/subscribed"));
        assert!(!tree.unsubscribe(&key("c"), "a/#"));
        assert_eq!(tree.len(), 1);
        assert_eq!(clients(&tree, "a/x"), vec!["d"]);
    }

    #[test]
    fn unsubscribe_cleans_empty_trie_nodes() {
        let tree = SubscriptionTree::new();
        let c = key("c");
        let filters = [
            "a/b/c/d",
            "a/b/+/#",
            "a/b",
            "+/x",
            "#",
            "$share/g/a/b/c",
            "//",
        ];
        for filter in filters {
            tree.subscribe(&c, filter, sub(QoS::AtMostOnce));
        }
        assert_eq!(tree.len(), filters.len());
        // Removing a filter that shares a prefix with others keeps their nodes.
        assert!(tree.unsubscribe(&c, "a/b/c/d"));
        assert_eq!(clients(&tree, "a/b"), vec!["c"]);
        assert_eq!(clients(&tree, "a/b/c"), vec!["c", "c"]);
        for filter in filters.iter().skip(1) {
            assert!(tree.unsubscribe(&c, filter), "{filter}");
        }
        assert_eq!(tree.len(), 0);
        assert!(tree.is_empty());
        assert!(tree.inner.root.read().is_empty());
    }

    #[test]
    fn unsubscribe_prunes_only_the_dead_branch() {
        let tree = tree_with(&[("c", "a/b/c"), ("c", "a/x")]);
        assert!(tree.unsubscribe(&key("c"), "a/b/c"));
        let root = tree.inner.root.read();
        let a = root.children.get("a").unwrap();
        assert!(!a.children.contains_key("b"));
        assert!(a.children.contains_key("x"));
    }

    #[test]
    fn shared_subscription_delivers_to_one_member_round_robin_mqtt_4_8_2() {
        let tree = SubscriptionTree::new();
        let members = ["m1", "m2", "m3"];
        for member in members {
            tree.subscribe(&key(member), "$share/g/sensors/+", sub(QoS::AtLeastOnce));
        }
        assert_eq!(tree.len(), 3);
        let mut counts = HashMap::new();
        for _ in 0..300 {
            let mut out = Vec::new();
            tree.route("sensors/t1", "p", &mut out);
            assert_eq!(out.len(), 1);
            *counts.entry(out[0].client.to_string()).or_insert(0) += 1;
        }
        for member in members {
            assert_eq!(counts.get(member), Some(&100), "{counts:?}");
        }
        // Consecutive messages go to different members.
        let mut first = Vec::new();
        let mut second = Vec::new();
        tree.route("sensors/t1", "p", &mut first);
        tree.route("sensors/t1", "p", &mut second);
        assert_ne!(first[0].client, second[0].client);
    }

    #[test]
    fn shared_groups_and_plain_subscriptions_each_deliver_mqtt_4_8_2() {
        let tree = SubscriptionTree::new();
        let c = key("c");
        tree.subscribe(&c, "$share/g1/a/b", sub_with_id(QoS::AtMostOnce, 1));
        tree.subscribe(&c, "$share/g2/a/+", sub_with_id(QoS::AtLeastOnce, 2));
        tree.subscribe(&c, "a/b", sub_with_id(QoS::ExactlyOnce, 3));
        tree.subscribe(&c, "a/#", sub_with_id(QoS::AtMostOnce, 4));
        let mut out = Vec::new();
        tree.route("a/b", "p", &mut out);
        // One merged ordinary delivery plus one per group, each with its own options.
        assert_eq!(out.len(), 3);
        let mut ids: Vec<Vec<u32>> = out
            .iter()
            .map(|r| {
                let mut ids = r.identifiers.clone();
                ids.sort();
                ids
            })
            .collect();
        ids.sort();
        assert_eq!(ids, vec![vec![1], vec![2], vec![3, 4]]);
        let g2 = out.iter().find(|r| r.identifiers == vec![2]).unwrap();
        assert_eq!(g2.qos, QoS::AtLeastOnce);
    }

    #[test]
    fn shared_member_leaving_keeps_group_working() {
        let tree = SubscriptionTree::new();
        tree.subscribe(&key("m1"), "$share/g/t", sub(QoS::AtMostOnce));
        tree.subscribe(&key("m2"), "$share/g/t", sub(QoS::AtMostOnce));
        assert!(tree.subscribe(&key("m2"), "$share/g/t", sub(QoS::AtLeastOnce)));
        assert_eq!(tree.len(), 2);
        assert!(tree.unsubscribe(&key("m1"), "$share/g/t"));
        assert!(!tree.unsubscribe(&key("m1"), "$share/g/t"));
        assert!(!tree.unsubscribe(&key("m2"), "$share/other/t"));
        for _ in 0..3 {
            assert_eq!(clients(&tree, "t"), vec!["m2"]);
        }
        assert!(tree.unsubscribe(&key("m2"), "$share/g/t"));
        assert!(clients(&tree, "t").is_empty());
        assert!(tree.inner.root.read().is_empty());
    }

    #[test]
    fn shared_filter_follows_dollar_rule_mqtt_4_7_2_1() {
        let tree = tree_with(&[("m", "$share/g/#")]);
        assert!(clients(&tree, "$SYS/x").is_empty());
        assert_eq!(clients(&tree, "x"), vec!["m"]);
    }

    #[test]
    fn shared_no_local_member_is_passed_over_for_its_own_message() {
        let tree = SubscriptionTree::new();
        let mut local = sub(QoS::AtMostOnce);
        local.options.no_local = true;
        tree.subscribe(&key("me"), "$share/g/t", local);
        tree.subscribe(&key("other"), "$share/g/t", sub(QoS::AtMostOnce));
        for _ in 0..4 {
            let mut out = Vec::new();
            tree.route("t", "me", &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(&*out[0].client, "other");
        }
    }

    #[test]
    fn deep_filters_do_not_overflow_the_stack() {
        let tree = SubscriptionTree::new();
        let deep = "a/".repeat(50_000) + "#";
        let c = key("c");
        tree.subscribe(&c, &deep, sub(QoS::AtMostOnce));
        tree.subscribe(&c, &"+/".repeat(200), sub(QoS::AtMostOnce));
        let topic = "a/".repeat(60_000);
        assert_eq!(clients(&tree, &topic), vec!["c"]);
        assert!(tree.unsubscribe(&c, &deep));
        drop(tree);
    }

    #[test]
    fn many_subscriptions_route() {
        let tree = SubscriptionTree::new();
        for i in 0..100_000u32 {
            let client = key(&format!("client-{i}"));
            let j = i / 4;
            let filter = match i % 4 {
                0 => format!("devices/{}/telemetry", j % 1000),
                1 => format!("devices/+/telemetry/{}", j % 50),
                2 => format!("devices/{}/#", j % 500),
                _ => format!("fleet/{}/{}", j % 100, j),
            };
            tree.subscribe(&client, &filter, sub(QoS::AtLeastOnce));
        }
        assert_eq!(tree.len(), 100_000);
        let mut out = Vec::new();
        for n in 0..1000 {
            out.clear();
            tree.route(&format!("devices/{n}/telemetry"), "p", &mut out);
            // 25 exact subscribers per device id, plus 50 `devices/{n}/#` for n < 500.
            let expected = if n < 500 { 75 } else { 25 };
            assert_eq!(out.len(), expected, "devices/{n}/telemetry");
        }
        out.clear();
        tree.route("devices/3/telemetry/7", "p", &mut out);
        assert_eq!(out.len(), 500 + 50);
        out.clear();
        tree.route("fleet/7/1007", "p", &mut out);
        assert_eq!(out.len(), 1);
    }
}
