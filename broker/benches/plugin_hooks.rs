//! Cost of the plugin hooks on the PUBLISH path, in ns per call: `authorize_publish` with no
//! plugin, with topic-taboo on a topic outside its declared filters (no Wasm call) and on a
//! taboo topic (a Wasm call), and `on_message` with the rewrite plugin.
//!
//! Build the plugins first:
//! `cargo build --target wasm32-wasip2 --release -p topic-taboo -p rewrite`, then
//! `cargo bench -p waspmq --bench plugin_hooks`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use waspmq::config::Config;
use waspmq::plugins::{ClientInfo, Hooks};
use waspmq::protocol::{ProtocolVersion, QoS};

fn wasm(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --target wasm32-wasip2 --release -p topic-taboo -p rewrite` first",
        path.display()
    );
    path
}

fn hooks(rt: &tokio::runtime::Runtime, toml_text: &str) -> Hooks {
    let mut config: Config = toml::from_str(toml_text).expect("config");
    config.base_dir = PathBuf::from("/");
    rt.block_on(Hooks::load(&config)).expect("plugins load")
}

fn client() -> ClientInfo {
    ClientInfo {
        client_id: Arc::from("bench-client"),
        username: Some(Arc::from("bench")),
        peer: Some("127.0.0.1:40000".parse().expect("addr")),
        listener: Arc::from("default"),
        protocol: ProtocolVersion::V5,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let taboo = hooks(
        &rt,
        &format!(
            r#"
            [[plugins]]
            name = "topic-taboo"
            path = "{}"
            [plugins.config]
            topics = ["prohibited", "top-secret", "data/classified/#"]
            "#,
            wasm("topic_taboo").display()
        ),
    );
    let rewrite = hooks(
        &rt,
        &format!(
            r#"
            [[plugins]]
            name = "rewrite"
            path = "{}"
            "#,
            wasm("rewrite").display()
        ),
    );
    let none = Hooks::none();
    // What the broker runs with an empty `[[plugins]]` list: a chain without plugins.
    let empty = hooks(&rt, "");
    let client = client();
    let payload = Bytes::from(vec![b'x'; 64]);

    let mut group = c.benchmark_group("plugin_hooks");
    group.bench_function("authorize_publish/no_plugins", |b| {
        b.to_async(&rt)
            .iter(|| none.authorize_publish(&client, "sensors/t1", QoS::AtLeastOnce, false))
    });
    group.bench_function("authorize_publish/empty_chain", |b| {
        b.to_async(&rt)
            .iter(|| empty.authorize_publish(&client, "sensors/t1", QoS::AtLeastOnce, false))
    });
    // "sensors/t1" is outside the taboo filters the plugin declares: the broker skips the call.
    group.bench_function("authorize_publish/topic_taboo_allowed", |b| {
        b.to_async(&rt)
            .iter(|| taboo.authorize_publish(&client, "sensors/t1", QoS::AtLeastOnce, false))
    });
    // A taboo topic: the Wasm call happens.
    group.bench_function("authorize_publish/topic_taboo_denied", |b| {
        b.to_async(&rt)
            .iter(|| taboo.authorize_publish(&client, "data/classified/x", QoS::AtLeastOnce, false))
    });
    group.bench_function("authorize_subscribe/topic_taboo", |b| {
        b.to_async(&rt)
            .iter(|| taboo.authorize_subscribe(&client, "sensors/#", QoS::AtLeastOnce))
    });
    group.bench_function("on_message/rewrite_64B", |b| {
        b.to_async(&rt)
            .iter(|| rewrite.on_message(&client, "sensors/t1", &payload, QoS::AtLeastOnce, false))
    });
    group.bench_function("has_message_hooks/rewrite", |b| {
        b.iter(|| rewrite.has_message_hooks())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
