//! Micro-benchmarks of routing (issue 5): `SubscriptionTree::route` of a 4-level topic over
//! 10k and 100k subscriptions (1 and 10 matching clients), the cost of a subscribe and of a
//! subscribe + unsubscribe on such a tree, and `RetainedStore::matching` of wildcard filters
//! over 100k retained topics.
//!
//! The subscription population models a fleet of devices, each subscribed to its own
//! commands: device `i` lives in site `i % 100` and subscribes, as client `dev-{i}`, to
//! `site/{i%100}/{i}/cmd` (70%), `site/{i%100}/{i}/+` (20%) or `site/{i%100}/{i}/#` (10%).
//! Nine monitoring clients add wildcard filters (`site/0/#`, `+/0/+/cmd`, `site/+/0/cmd`, ...)
//! that all match `site/0/0/cmd` and none of which match `site/7/107/cmd`, so one topic
//! reaches exactly 1 client and the other exactly 10.
//!
//! Run: `cargo bench -p waspmq --bench routing`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use waspmq::protocol::{QoS, SubscriptionOptions};
use waspmq::routing::{ClientKey, RetainedStore, Route, Subscription, SubscriptionTree};

const SITES: usize = 100;
const SIZES: [usize; 2] = [10_000, 100_000];

/// Filters of the monitoring clients: each matches `site/0/0/cmd` (device 0's command topic),
/// none matches `site/7/107/cmd`, and together they make the walk visit `+` and `#` branches
/// at every level.
const MONITOR_FILTERS: [&str; 9] = [
    "site/0/#",
    "site/0/+/cmd",
    "site/0/0/#",
    "site/0/0/+",
    "site/0/0/cmd",
    "site/0/+/+",
    "+/0/0/cmd",
    "+/0/+/cmd",
    "site/+/0/cmd",
];

fn subscription(qos: QoS) -> Subscription {
    Subscription {
        options: SubscriptionOptions::qos(qos),
        identifier: None,
    }
}

fn device_filter(i: usize) -> String {
    let site = i % SITES;
    match i % 10 {
        0..=6 => format!("site/{site}/{i}/cmd"),
        7 | 8 => format!("site/{site}/{i}/+"),
        _ => format!("site/{site}/{i}/#"),
    }
}

/// A tree holding `devices` device subscriptions plus the monitors' ones.
fn fleet_tree(devices: usize) -> SubscriptionTree {
    let tree = SubscriptionTree::new();
    for i in 0..devices {
        let client: ClientKey = Arc::from(format!("dev-{i}"));
        tree.subscribe(&client, &device_filter(i), subscription(QoS::AtLeastOnce));
    }
    for (m, filter) in MONITOR_FILTERS.iter().enumerate() {
        let client: ClientKey = Arc::from(format!("monitor-{m}"));
        tree.subscribe(&client, filter, subscription(QoS::AtMostOnce));
    }
    assert_eq!(tree.len(), devices + MONITOR_FILTERS.len());
    tree
}

/// (benchmark name, topic, number of clients it must reach). Device 107 is in site 7 and
/// subscribed through `site/7/107/+`; device 0 through `site/0/0/cmd`, plus the 9 monitors.
const ROUTES: [(&str, &str, usize); 2] = [
    ("1_match", "site/7/107/cmd", 1),
    ("10_matches", "site/0/0/cmd", 10),
];

fn bench_route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for devices in SIZES {
        let tree = fleet_tree(devices);
        let mut out: Vec<Route> = Vec::with_capacity(16);
        for (name, topic, matches) in ROUTES {
            out.clear();
            tree.route(topic, "publisher", &mut out);
            assert_eq!(out.len(), matches, "{topic} with {devices} subscriptions");
            group.bench_function(BenchmarkId::new(name, devices), |b| {
                b.iter(|| {
                    // Dropping the previous routes is part of the price of a delivery.
                    out.clear();
                    tree.route(black_box(topic), "publisher", &mut out);
                })
            });
        }
    }
    group.finish();
}

fn bench_subscribe(c: &mut Criterion) {
    let mut group = c.benchmark_group("subscribe");
    group.throughput(Throughput::Elements(1));
    for devices in SIZES {
        let tree = fleet_tree(devices);
        // A re-subscription (same client and filter): walks the existing path, replaces.
        let existing: ClientKey = Arc::from("dev-107");
        let existing_filter = device_filter(107);
        group.bench_function(BenchmarkId::new("replace_existing", devices), |b| {
            b.iter(|| {
                tree.subscribe(
                    &existing,
                    black_box(&existing_filter),
                    subscription(QoS::AtLeastOnce),
                )
            })
        });
        // A new device arriving and leaving: creates its trie nodes, then prunes them, so the
        // tree is the same size at every iteration.
        let newcomer: ClientKey = Arc::from("dev-new");
        let new_filter = format!("site/7/{}/cmd", devices + 7);
        group.bench_function(BenchmarkId::new("new_then_unsubscribe", devices), |b| {
            b.iter(|| {
                tree.subscribe(
                    &newcomer,
                    black_box(&new_filter),
                    subscription(QoS::AtLeastOnce),
                );
                tree.unsubscribe(&newcomer, black_box(&new_filter))
            })
        });
        assert_eq!(tree.len(), devices + MONITOR_FILTERS.len());
    }
    group.finish();
}

const RETAINED: usize = 100_000;

/// (benchmark name, filter, number of retained messages it matches) over the topics
/// `site/{i%100}/{i}/status`.
const RETAINED_FILTERS: [(&str, &str, usize); 3] = [
    ("site_plus_status_1k", "site/7/+/status", RETAINED / SITES),
    ("plus_device_status_1", "site/+/107/status", 1),
    ("hash_all_100k", "#", RETAINED),
];

fn bench_retained(c: &mut Criterion) {
    let store: RetainedStore<Bytes> = RetainedStore::new();
    let message = Bytes::from(vec![0x5Au8; 64]);
    for i in 0..RETAINED {
        store.set(&format!("site/{}/{i}/status", i % SITES), message.clone());
    }
    assert_eq!(store.len(), RETAINED);
    let mut group = c.benchmark_group("retained_matching_100k");
    let mut out: Vec<Bytes> = Vec::with_capacity(RETAINED);
    for (name, filter, matches) in RETAINED_FILTERS {
        out.clear();
        store.matching(filter, &mut out);
        assert_eq!(out.len(), matches, "{filter}");
        // Per matched message, so the figures of filters of different reach compare.
        group.throughput(Throughput::Elements(matches as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                store.matching(black_box(filter), &mut out);
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = routing;
    config = config();
    targets = bench_route, bench_subscribe, bench_retained
}
criterion_main!(routing);
