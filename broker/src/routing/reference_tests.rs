//! Property tests: the tries must agree with a naive reference (every subscription / retained
//! topic checked one by one with `filter_matches`) on random filters, topics and operations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use super::{
    filter_matches, split_shared, ClientKey, RetainedStore, Subscription, SubscriptionTree,
};
use crate::protocol::{QoS, SubscriptionOptions};

const CLIENTS: [&str; 4] = ["c0", "c1", "c2", "c3"];

fn topic_level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(String::new()),
        Just("$s".to_string()),
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(topic_level(), 1..5).prop_map(|levels| levels.join("/"))
}

fn plain_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        3 => topic_level(),
        2 => Just("+".to_string()),
    ];
    (prop::collection::vec(level, 0..4), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash || levels.is_empty() {
            levels.push("#".to_string());
        }
        levels.join("/")
    })
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => plain_filter(),
        1 => (0..2u8, plain_filter()).prop_map(|(g, f)| format!("$share/g{g}/{f}")),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        client: usize,
        filter: String,
        qos: u8,
        id: Option<u32>,
        no_local: bool,
        rap: bool,
    },
    Unsubscribe {
        client: usize,
        filter: String,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..CLIENTS.len(), filter(), 0..3u8, prop::option::of(1..100u32), any::<bool>(), any::<bool>())
            .prop_map(|(client, filter, qos, id, no_local, rap)| Op::Subscribe {
                client, filter, qos, id, no_local, rap
            }),
        1 => (0..CLIENTS.len(), filter()).prop_map(|(client, filter)| Op::Unsubscribe { client, filter }),
    ]
}

/// The expected ordinary delivery of one client: (qos, retain_as_published, sorted ids).
type Expected = BTreeMap<String, (QoS, bool, Vec<u32>)>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn route_agrees_with_naive_matcher(
        ops in prop::collection::vec(op(), 1..40),
        topics in prop::collection::vec(topic(), 1..10),
        publisher in 0..CLIENTS.len(),
    ) {
        let tree = SubscriptionTree::new();
        let mut model: HashMap<(usize, String), Subscription> = HashMap::new();
        for op in ops {
            match op {
                Op::Subscribe { client, filter, qos, id, no_local, rap } => {
                    // no_local on a shared subscription is a protocol error the codec rejects.
                    let no_local = no_local && split_shared(&filter).is_none();
                    let mut options = SubscriptionOptions::qos(QoS::from_u8(qos).unwrap());
                    options.no_local = no_local;
                    options.retain_as_published = rap;
                    let sub = Subscription { options, identifier: id };
                    let key: ClientKey = Arc::from(CLIENTS[client]);
                    let existed = tree.subscribe(&key, &filter, sub.clone());
                    prop_assert_eq!(existed, model.insert((client, filter), sub).is_some());
                }
                Op::Unsubscribe { client, filter } => {
                    let key: ClientKey = Arc::from(CLIENTS[client]);
                    let existed = tree.unsubscribe(&key, &filter);
                    prop_assert_eq!(existed, model.remove(&(client, filter)).is_some());
                }
            }
            prop_assert_eq!(tree.len(), model.len());
        }

        let publisher_name = CLIENTS[publisher];
        for topic in topics {
            let mut expected = Expected::new();
            // (group, filter) -> members
            let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for ((client, filter), sub) in &model {
                let name = CLIENTS[*client];
                match split_shared(filter) {
                    Some(shared) => {
                        if filter_matches(shared.filter, &topic) {
                            groups
                                .entry((shared.group.to_string(), shared.filter.to_string()))
                                .or_default()
                                .push(name.to_string());
                        }
                    }
                    None => {
                        if !filter_matches(filter, &topic)
                            || (sub.options.no_local && name == publisher_name)
                        {
                            continue;
                        }
                        let entry = expected
                            .entry(name.to_string())
                            .or_insert((QoS::AtMostOnce, false, Vec::new()));
                        entry.0 = entry.0.max(sub.options.qos);
                        entry.1 |= sub.options.retain_as_published;
                        entry.2.extend(sub.identifier);
                        entry.2.sort_unstable();
                    }
                }
            }

            let mut out = Vec::new();
            tree.route(&topic, publisher_name, &mut out);
            prop_assert_eq!(out.len(), expected.len() + groups.len(), "topic {}", topic);
            let (direct, shared) = out.split_at(expected.len());
            let mut got = Expected::new();
            for route in direct {
                let mut ids = route.identifiers.clone();
                ids.sort_unstable();
                let previous = got.insert(
                    route.client.to_string(),
                    (route.qos, route.retain_as_published, ids),
                );
                prop_assert!(previous.is_none(), "client routed twice: {}", route.client);
            }
            prop_assert_eq!(&got, &expected, "topic {}", topic);
            for route in shared {
                prop_assert!(
                    groups.values().any(|members| members.iter().any(|m| **m == *route.client)),
                    "shared route to a non-member {}", route.client
                );
            }
        }

        // Unsubscribing everything leaves an empty tree.
        for (client, filter) in model.keys() {
            let key: ClientKey = Arc::from(CLIENTS[*client]);
            prop_assert!(tree.unsubscribe(&key, filter));
        }
        prop_assert!(tree.is_empty());
        let mut out = Vec::new();
        tree.route("a", "c0", &mut out);
        prop_assert!(out.is_empty());
    }

    #[test]
    fn retained_matching_agrees_with_naive_matcher(
        ops in prop::collection::vec((topic(), any::<bool>()), 1..40),
        filters in prop::collection::vec(plain_filter(), 1..10),
    ) {
        let store = RetainedStore::new();
        let mut model: BTreeMap<String, usize> = BTreeMap::new();
        for (step, (topic, set)) in ops.into_iter().enumerate() {
            if set {
                store.set(&topic, step);
                model.insert(topic, step);
            } else {
                prop_assert_eq!(store.remove(&topic), model.remove(&topic).is_some());
            }
            prop_assert_eq!(store.len(), model.len());
        }
        for filter in filters {
            let mut expected: Vec<usize> = model
                .iter()
                .filter(|(topic, _)| filter_matches(&filter, topic))
                .map(|(_, step)| *step)
                .collect();
            expected.sort_unstable();
            let mut got = Vec::new();
            store.matching(&filter, &mut got);
            got.sort_unstable();
            prop_assert_eq!(got, expected, "filter {}", filter);
        }
    }
}
