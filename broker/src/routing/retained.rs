//! The retained store: the last retained message per topic, in a trie keyed by topic level so
//! that a new subscription's filter finds its retained messages by walking only the branches
//! it can match, not by scanning every retained topic.
//!
//! Like the subscription tree it sits behind a `parking_lot::RwLock` (lookups share the read
//! lock) and every walk is a loop, never a recursion, so very deep topics cannot overflow the
//! stack.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// Handle to the shared retained store; clones are cheap and see the same messages.
#[derive(Clone)]
pub struct RetainedStore<T: Clone> {
    inner: Arc<StoreInner<T>>,
}

struct StoreInner<T> {
    root: RwLock<RetainedNode<T>>,
    count: AtomicUsize,
}

struct RetainedNode<T> {
    children: HashMap<Box<str>, RetainedNode<T>>,
    message: Option<T>,
}

impl<T> Default for RetainedNode<T> {
    fn default() -> Self {
        RetainedNode {
            children: HashMap::new(),
            message: None,
        }
    }
}

impl<T> Drop for RetainedNode<T> {
    // Iterative, so a very deep topic cannot overflow the stack when its branch is dropped.
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut pending: Vec<RetainedNode<T>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = pending.pop() {
            pending.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

impl<T: Clone> Default for RetainedStore<T> {
    fn default() -> Self {
        RetainedStore {
            inner: Arc::new(StoreInner {
                root: RwLock::new(RetainedNode::default()),
                count: AtomicUsize::new(0),
            }),
        }
    }
}

/// Whether a topic level at the root may be matched by a leading wildcard [MQTT-4.7.2-1].
fn wildcard_may_match(at_root: bool, level: &str) -> bool {
    !(at_root && level.starts_with('$'))
}

impl<T: Clone> RetainedStore<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `message` as the retained message of `topic`, replacing any previous one
    /// [MQTT-3.3.1-5].
    pub fn set(&self, topic: &str, message: T) {
        let mut root = self.inner.root.write();
        let mut node: &mut RetainedNode<T> = &mut root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.replace(message).is_none() {
            self.inner.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes `topic`'s retained message (a retained PUBLISH with an empty payload does this
    /// [MQTT-3.3.1-6]); true if there was one.
    pub fn remove(&self, topic: &str) -> bool {
        let mut root = self.inner.root.write();
        let removed = remove_locked(&mut root, topic);
        if removed {
            self.inner.count.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// The retained message of exactly `topic`, if any.
    pub fn get(&self, topic: &str) -> Option<T> {
        let root = self.inner.root.read();
        let mut node: &RetainedNode<T> = &root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.clone()
    }

    /// Appends every retained message whose topic matches the plain filter `filter` to `out`
    /// (for a new subscription [MQTT-3.3.1-9]).
    pub fn matching(&self, filter: &str, out: &mut Vec<T>) {
        let root = self.inner.root.read();
        // (node, remaining filter levels, node is the root)
        let mut pending: Vec<(&RetainedNode<T>, Option<&str>, bool)> =
            vec![(&root, Some(filter), true)];
        // Nodes under a `#`: their message and all their descendants' match.
        let mut whole_subtrees: Vec<&RetainedNode<T>> = Vec::new();
        while let Some((node, rest, at_root)) = pending.pop() {
            let Some(rest) = rest else {
                out.extend(node.message.iter().cloned());
                continue;
            };
            let (level, next) = match rest.split_once('/') {
                Some((level, next)) => (level, Some(next)),
                None => (rest, None),
            };
            match (level, next) {
                ("#", None) => {
                    // [MQTT-4.7.1-2]: the parent level matches too.
                    out.extend(node.message.iter().cloned());
                    whole_subtrees.extend(
                        node.children
                            .iter()
                            .filter(|(name, _)| wildcard_may_match(at_root, name))
                            .map(|(_, child)| child),
                    );
                }
                ("+", _) => pending.extend(
                    node.children
                        .iter()
                        .filter(|(name, _)| wildcard_may_match(at_root, name))
                        .map(|(_, child)| (child, next, false)),
                ),
                (literal, _) => {
                    if let Some(child) = node.children.get(literal) {
                        pending.push((child, next, false));
                    }
                }
            }
        }
        while let Some(node) = whole_subtrees.pop() {
            out.extend(node.message.iter().cloned());
            whole_subtrees.extend(node.children.values());
        }
    }

    /// Number of retained messages, in O(1).
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the retained messages for which `keep(topic, message)` is true (used by
    /// expiry sweeps [MQTT-3.3.2-5]); removes the others and prunes their empty branches.
    pub fn retain_where(&self, mut keep: impl FnMut(&str, &T) -> bool) {
        let mut root = self.inner.root.write();
        let mut doomed: Vec<String> = Vec::new();
        {
            let mut topic = String::new();
            // (node, its name, length of its parent's topic in `topic`, parent is the root)
            let mut pending: Vec<(&RetainedNode<T>, &str, usize, bool)> = root
                .children
                .iter()
                .map(|(name, child)| (child, &**name, 0, true))
                .collect();
            while let Some((node, name, parent_len, parent_is_root)) = pending.pop() {
                topic.truncate(parent_len);
                if !parent_is_root {
                    topic.push('/');
                }
                topic.push_str(name);
                if let Some(message) = &node.message {
                    if !keep(&topic, message) {
                        doomed.push(topic.clone());
                    }
                }
                let len = topic.len();
                pending.extend(
                    node.children
                        .iter()
                        .map(|(name, child)| (child, &**name, len, false)),
                );
            }
        }
        for topic in doomed {
            if remove_locked(&mut root, &topic) {
                self.inner.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Takes `topic`'s message out of the trie and cuts the branch that held only it.
fn remove_locked<T>(root: &mut RetainedNode<T>, topic: &str) -> bool {
    let mut node: &mut RetainedNode<T> = root;
    for level in topic.split('/') {
        match node.children.get_mut(level) {
            Some(child) => node = child,
            None => return false,
        }
    }
    if node.message.take().is_none() {
        return false;
    }
    if node.children.is_empty() {
        prune(root, topic);
    }
    true
}

/// Cuts the edge below the deepest node on `topic`'s path that must stay (the root, or one
/// holding a message or another branch); everything below it held only the removed message.
fn prune<T>(root: &mut RetainedNode<T>, topic: &str) {
    let mut keep_depth = 0usize;
    let mut node: &RetainedNode<T> = root;
    for (index, level) in topic.split('/').enumerate() {
        let Some(child) = node.children.get(level) else {
            return;
        };
        if child.message.is_some() || child.children.len() > 1 {
            keep_depth = index + 1;
        }
        node = child;
    }
    let mut node: &mut RetainedNode<T> = root;
    for (index, level) in topic.split('/').enumerate() {
        if index == keep_depth {
            node.children.remove(level);
            return;
        }
        match node.children.get_mut(level) {
            Some(child) => node = child,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::filter::filter_matches;

    fn sorted(store: &RetainedStore<String>, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        store.matching(filter, &mut out);
        out.sort();
        out
    }

    fn store_with(topics: &[&str]) -> RetainedStore<String> {
        let store = RetainedStore::new();
        for topic in topics {
            store.set(topic, topic.to_string());
        }
        store
    }

    #[test]
    fn retained_message_is_replaced_mqtt_3_3_1_5() {
        let store = RetainedStore::new();
        store.set("a/b", 1);
        store.set("a/b", 2);
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("a/b"), Some(2));
        let mut out = Vec::new();
        store.matching("a/b", &mut out);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn empty_retained_payload_removes_message_mqtt_3_3_1_6() {
        let store = store_with(&["a/b", "a/b/c", "a"]);
        assert!(store.remove("a/b"));
        assert!(!store.remove("a/b"));
        assert!(!store.remove("x/y"));
        assert_eq!(store.len(), 2);
        assert_eq!(sorted(&store, "a/#"), vec!["a", "a/b/c"]);
        assert!(store.remove("a/b/c"));
        assert!(store.remove("a"));
        assert!(store.is_empty());
        assert!(store.inner.root.read().children.is_empty());
    }

    #[test]
    fn remove_prunes_only_the_dead_branch() {
        let store = store_with(&["a/b/c", "a/x"]);
        assert!(store.remove("a/b/c"));
        let root = store.inner.root.read();
        let a = root.children.get("a").unwrap();
        assert!(!a.children.contains_key("b"));
        assert!(a.children.contains_key("x"));
    }

    #[test]
    fn retained_matching_uses_wildcards_mqtt_3_3_1_9() {
        let store = store_with(&[
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player2",
            "sport/golf",
            "sport",
            "/x",
            "a//b",
        ]);
        assert_eq!(
            sorted(&store, "sport/tennis/+"),
            vec!["sport/tennis/player1", "sport/tennis/player2"]
        );
        assert_eq!(
            sorted(&store, "sport/#"),
            vec![
                "sport",
                "sport/golf",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player2"
            ]
        );
        assert_eq!(sorted(&store, "sport/+/player1/#").len(), 2);
        assert_eq!(sorted(&store, "+/x"), vec!["/x"]);
        assert_eq!(sorted(&store, "a/+/b"), vec!["a//b"]);
        assert_eq!(sorted(&store, "sport/golf"), vec!["sport/golf"]);
        assert!(sorted(&store, "sport/golf/+").is_empty());
        assert_eq!(sorted(&store, "#").len(), 7);
    }

    #[test]
    fn retained_dollar_topics_are_not_matched_by_leading_wildcards_mqtt_4_7_2_1() {
        let store = store_with(&["$SYS/broker/uptime", "$SYS", "plain", "a/$b"]);
        assert_eq!(sorted(&store, "#"), vec!["a/$b", "plain"]);
        assert_eq!(sorted(&store, "+/broker/+"), Vec::<String>::new());
        assert_eq!(sorted(&store, "+/+"), vec!["a/$b"]);
        assert_eq!(sorted(&store, "$SYS/#"), vec!["$SYS", "$SYS/broker/uptime"]);
        assert_eq!(sorted(&store, "$SYS/+/uptime"), vec!["$SYS/broker/uptime"]);
    }

    #[test]
    fn retain_where_removes_rejected_messages_and_passes_full_topics() {
        let store = store_with(&["a", "a/b", "a/b/c", "/x", "x/", "$SYS/y"]);
        let mut seen = Vec::new();
        store.retain_where(|topic, message| {
            assert_eq!(topic, message);
            seen.push(topic.to_string());
            !topic.contains('b')
        });
        seen.sort();
        assert_eq!(seen, vec!["$SYS/y", "/x", "a", "a/b", "a/b/c", "x/"]);
        assert_eq!(store.len(), 4);
        assert_eq!(store.get("a/b"), None);
        assert_eq!(store.get("a"), Some("a".to_string()));
        assert!(store.inner.root.read().children["a"].children.is_empty());
    }

    #[test]
    fn deep_retained_topics_do_not_overflow_the_stack() {
        let store = RetainedStore::new();
        let deep = "a/".repeat(60_000);
        store.set(&deep, 1u8);
        let mut out = Vec::new();
        store.matching("#", &mut out);
        assert_eq!(out, vec![1]);
        out.clear();
        store.matching(&deep, &mut out);
        assert_eq!(out, vec![1]);
        store.retain_where(|_, _| true);
        assert_eq!(store.len(), 1);
        assert!(store.remove(&deep));
        store.set(&deep, 2);
        drop(store);
    }

    #[test]
    fn matching_agrees_with_reference_matcher() {
        let topics = ["a", "a/b", "a/b/c", "/", "//", "$x/a", "b/a", "a/"];
        let store = store_with(&topics);
        let filters = [
            "#", "+", "+/+", "a/#", "+/a", "/+", "+/#", "$x/#", "a/+/c", "a/+",
        ];
        for filter in filters {
            let mut expected: Vec<String> = topics
                .iter()
                .filter(|t| filter_matches(filter, t))
                .map(|t| t.to_string())
                .collect();
            expected.sort();
            assert_eq!(sorted(&store, filter), expected, "{filter}");
        }
    }
}
