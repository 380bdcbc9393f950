//! The plugin host, tested through `Hooks` with the real shipped and test-only plugins.
//!
//! The plugins must be built first (the test script does it):
//! `cargo build --target wasm32-wasip2 --release -p auth-anonymous -p topic-taboo \
//!  -p sqlite-conn-log -p misbehave -p rewrite`. If they are missing, the helper builds them
//! into a separate target folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use waspmq::config::Config;
use waspmq::plugins::{ClientInfo, Decision, Hooks, MessageVerdict};
use waspmq::protocol::{ProtocolVersion, QoS, ReasonCode};

const PLUGINS: [&str; 5] = [
    "auth_anonymous",
    "topic_taboo",
    "sqlite_conn_log",
    "misbehave",
    "rewrite",
];

/// The folder holding the built `.wasm` plugins.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let built = target.join("wasm32-wasip2/release");
        if PLUGINS
            .iter()
            .all(|p| built.join(format!("{p}.wasm")).is_file())
        {
            return built;
        }
        // Not built yet: build them into a folder of their own (the outer cargo holds the
        // main target folder).
        let own = target.join("plugin-tests");
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(&workspace)
            .args([
                "build",
                "--target",
                "wasm32-wasip2",
                "--release",
                "--target-dir",
            ])
            .arg(&own)
            .args([
                "-p",
                "auth-anonymous",
                "-p",
                "topic-taboo",
                "-p",
                "sqlite-conn-log",
            ])
            .args(["-p", "misbehave", "-p", "rewrite"])
            .status()
            .expect("run cargo to build the plugins");
        assert!(status.success(), "building the wasm plugins failed");
        own.join("wasm32-wasip2/release")
    })
}

fn wasm(name: &str) -> PathBuf {
    wasm_dir().join(format!("{name}.wasm"))
}

/// A config in a fresh folder, from a TOML text whose plugin paths are file names in it;
/// `files` says which built plugin each file is a copy of.
fn setup(toml_text: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, plugin) in files {
        std::fs::copy(wasm(plugin), dir.path().join(file)).expect("copy plugin");
    }
    let mut config: Config = toml::from_str(toml_text).expect("config parses");
    config.base_dir = dir.path().to_path_buf();
    (dir, config)
}

fn client(id: &str, username: Option<&str>) -> ClientInfo {
    ClientInfo {
        client_id: Arc::from(id),
        username: username.map(Arc::from),
        peer: Some("127.0.0.1:50000".parse().expect("addr")),
        listener: Arc::from("default"),
        protocol: ProtocolVersion::V5,
    }
}

const NOT_AUTHORIZED: Decision = Decision::Deny(ReasonCode::NOT_AUTHORIZED);

fn auth_config(allow: Option<bool>, broker_allow: bool) -> String {
    let plugin_allow = allow
        .map(|a| format!("allow_anonymous = {a}"))
        .unwrap_or_default();
    format!(
        r#"
        [auth]
        allow_anonymous = {broker_allow}
        [[plugins]]
        name = "auth-anonymous"
        path = "auth.wasm"
        required = true
        [plugins.config]
        {plugin_allow}
        "#
    )
}

#[tokio::test]
async fn anonymous_client_is_allowed_when_the_plugin_allows_anonymous() {
    let (_dir, config) = setup(
        &auth_config(Some(true), false),
        &[("auth.wasm", "auth_anonymous")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    assert_eq!(
        hooks.authenticate(&client("c1", None), None).await,
        Decision::Allow
    );
}

#[tokio::test]
async fn anonymous_client_is_refused_with_not_authorized_when_the_plugin_refuses_anonymous() {
    let (_dir, config) = setup(
        &auth_config(Some(false), true),
        &[("auth.wasm", "auth_anonymous")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    assert_eq!(
        hooks.authenticate(&client("c1", None), None).await,
        NOT_AUTHORIZED
    );
    // A client with a username is left to the next plugin, then the broker's default.
    let password = Bytes::from_static(b"secret");
    let named = hooks
        .authenticate(&client("c2", Some("alice")), Some(&password))
        .await;
    assert_eq!(named, Decision::Defer);
}

#[tokio::test]
async fn auth_anonymous_defaults_to_the_brokers_allow_anonymous() {
    let (_dir, config) = setup(
        &auth_config(None, false),
        &[("auth.wasm", "auth_anonymous")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    assert_eq!(
        hooks.authenticate(&client("c1", None), None).await,
        NOT_AUTHORIZED
    );

    let (_dir, config) = setup(&auth_config(None, true), &[("auth.wasm", "auth_anonymous")]);
    let hooks = Hooks::load(&config).await.expect("load");
    assert_eq!(
        hooks.authenticate(&client("c1", None), None).await,
        Decision::Allow
    );
}

const TABOO: &str = r#"
    [[plugins]]
    name = "topic-taboo"
    path = "taboo.wasm"
    [plugins.config]
    topics = ["prohibited", "top-secret", "data/classified/#"]
"#;

#[tokio::test]
async fn taboo_publish_is_refused_with_0x87_and_other_topics_are_left_alone() {
    let (_dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("pub", None);
    for topic in [
        "prohibited",
        "top-secret",
        "data/classified",
        "data/classified/x/y",
    ] {
        let d = hooks
            .authorize_publish(&c, topic, QoS::AtLeastOnce, false)
            .await;
        assert_eq!(d, NOT_AUTHORIZED, "publish to {topic}");
    }
    for topic in ["allowed", "prohibited/sub", "data/public", "top-secret-not"] {
        let d = hooks
            .authorize_publish(&c, topic, QoS::AtMostOnce, false)
            .await;
        assert_eq!(d, Decision::Defer, "publish to {topic}");
    }
    assert!(!hooks.has_message_hooks());
}

#[tokio::test]
async fn publish_outside_the_declared_authorize_publish_filters_never_reaches_the_plugin() {
    let (_dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("pub", None);
    let calls = |hooks: &Hooks| hooks.plugin_status()[0].calls;
    for topic in ["allowed", "sensors/t1", "prohibited/sub", "data/public"] {
        let d = hooks
            .authorize_publish(&c, topic, QoS::AtMostOnce, false)
            .await;
        assert_eq!(d, Decision::Defer, "publish to {topic}");
    }
    assert_eq!(
        calls(&hooks),
        0,
        "the broker skipped topics outside the filters"
    );
    let d = hooks
        .authorize_publish(&c, "data/classified/x", QoS::AtMostOnce, false)
        .await;
    assert_eq!(d, NOT_AUTHORIZED);
    assert_eq!(calls(&hooks), 1, "a matching topic is asked about");
}

#[tokio::test]
async fn plugin_declaring_no_authorize_publish_filters_is_asked_about_every_publish() {
    // misbehave declares the flag and no filters: every topic reaches it.
    let (_dir, config) = setup(
        &misbehave_config("deny", "skip", 1000, 64),
        &[("misbehave.wasm", "misbehave")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("pub", None);
    for topic in ["a", "sensors/t1", "x/y/z"] {
        let d = hooks
            .authorize_publish(&c, topic, QoS::AtMostOnce, false)
            .await;
        assert_eq!(d, Decision::Deny(ReasonCode(0x86)), "publish to {topic}");
    }
    assert_eq!(hooks.plugin_status()[0].calls, 3);
}

#[tokio::test]
async fn invalid_authorize_publish_filter_refuses_the_plugin() {
    let toml_text = r#"
        [[plugins]]
        name = "topic-taboo"
        path = "taboo.wasm"
        required = true
        [plugins.config]
        topics = ["fine/#", "bad/#/filter"]
    "#;
    let (_dir, config) = setup(toml_text, &[("taboo.wasm", "topic_taboo")]);
    let error = match Hooks::load(&config).await {
        Ok(_) => panic!("a plugin declaring an invalid filter was loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("bad/#/filter"), "{error}");
}

#[tokio::test]
async fn taboo_subscribe_is_refused_with_0x87_for_filters_inside_a_taboo() {
    let (_dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("sub", None);
    for filter in [
        "prohibited",
        "data/classified/#",
        "data/classified/+",
        "top-secret",
    ] {
        let d = hooks.authorize_subscribe(&c, filter, QoS::AtMostOnce).await;
        assert_eq!(d, NOT_AUTHORIZED, "subscribe to {filter}");
    }
    for filter in ["allowed/#", "data/public", "#", "data/#"] {
        let d = hooks.authorize_subscribe(&c, filter, QoS::AtMostOnce).await;
        assert_eq!(d, Decision::Defer, "subscribe to {filter}");
    }
}

#[tokio::test]
async fn decisions_chain_in_config_order_first_non_defer_wins() {
    let toml_text = r#"
        [[plugins]]
        name = "auth-anonymous"
        path = "auth.wasm"
        [plugins.config]
        allow_anonymous = true
        [[plugins]]
        name = "deny-all"
        path = "deny.wasm"
        [plugins.config]
        mode = "deny"
    "#;
    let (_dir, config) = setup(
        toml_text,
        &[("auth.wasm", "auth_anonymous"), ("deny.wasm", "misbehave")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    // The first plugin decides for anonymous clients...
    assert_eq!(
        hooks.authenticate(&client("a", None), None).await,
        Decision::Allow
    );
    // ...and defers for named ones, so the second decides.
    let named = hooks.authenticate(&client("b", Some("bob")), None).await;
    assert_eq!(named, Decision::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
}

#[tokio::test]
async fn sqlite_conn_log_writes_a_row_per_connection_and_closes_it_on_disconnect() {
    let toml_text = r#"
        [[plugins]]
        name = "sqlite-conn-log"
        path = "connlog.wasm"
        sql = { connections = "clients.db" }
        [plugins.config]
        database = "connections"
    "#;
    let (dir, config) = setup(toml_text, &[("connlog.wasm", "sqlite_conn_log")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let db = dir.path().join("clients.db");
    let count = |sql: &str| -> i64 {
        let conn = rusqlite::Connection::open(&db).expect("open db");
        conn.query_row(sql, [], |row| row.get(0)).expect("query")
    };
    let alice = client("alice-1", Some("alice"));
    let bob = client("bob-1", None);
    hooks.connected(&alice);
    hooks.connected(&bob);
    let live = "SELECT COUNT(*) FROM connections WHERE disconnect_time IS NULL";
    wait_until(|| count(live) == 2).await;
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let (user, ip): (String, String) = conn
        .query_row(
            "SELECT username, ip_address FROM connections WHERE client_id = 'alice-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("alice's row");
    assert_eq!((user.as_str(), ip.as_str()), ("alice", "127.0.0.1"));

    hooks.disconnected(&alice, "normal");
    wait_until(|| count(live) == 1).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM connections WHERE disconnect_time IS NOT NULL"),
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM connections"), 2);
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "condition not reached in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn misbehave_config(mode: &str, on_error: &str, timeout_ms: u64, memory_mb: u64) -> String {
    format!(
        r#"
        [[plugins]]
        name = "misbehave"
        path = "misbehave.wasm"
        on_error = "{on_error}"
        timeout_ms = {timeout_ms}
        memory_mb = {memory_mb}
        [plugins.config]
        mode = "{mode}"
        "#
    )
}

async fn misbehaving(mode: &str, on_error: &str, timeout_ms: u64) -> (tempfile::TempDir, Hooks) {
    let (dir, config) = setup(
        &misbehave_config(mode, on_error, timeout_ms, 16),
        &[("misbehave.wasm", "misbehave")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    (dir, hooks)
}

#[tokio::test]
async fn plugin_looping_forever_is_cut_off_at_timeout_ms_and_on_error_decides() {
    for (on_error, expected) in [
        ("deny", Decision::Deny(ReasonCode::UNSPECIFIED_ERROR)),
        ("allow", Decision::Allow),
        ("skip", Decision::Defer),
    ] {
        let (_dir, hooks) = misbehaving("loop", on_error, 50).await;
        let started = Instant::now();
        let d = hooks.authenticate(&client("c", None), None).await;
        let took = started.elapsed();
        assert_eq!(d, expected, "on_error = {on_error}");
        assert!(
            took >= Duration::from_millis(45),
            "cut off too early: {took:?}"
        );
        assert!(
            took < Duration::from_millis(500),
            "not cut off in time: {took:?}"
        );
        // The host keeps serving with a fresh instance.
        let ok = hooks
            .authorize_publish(&client("c", None), "ok/1", QoS::AtMostOnce, false)
            .await;
        assert_eq!(ok, Decision::Allow);
        let status = &hooks.plugin_status()[0];
        assert_eq!(status.timeouts, 1);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn plugin_looping_forever_does_not_stall_other_tasks_on_its_thread() {
    let (_dir, hooks) = misbehaving("loop", "deny", 400).await;
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let d = hooks.authenticate(&client("c", None), None).await;
    ticker.abort();
    assert_eq!(d, Decision::Deny(ReasonCode::UNSPECIFIED_ERROR));
    // On a single-threaded runtime the ticker only runs if the guest yields while it loops.
    let ticked = ticks.load(Ordering::Relaxed);
    assert!(
        ticked >= 10,
        "other tasks stalled while the plugin looped: {ticked} ticks"
    );
}

#[tokio::test]
async fn plugin_that_traps_gets_on_error_and_the_host_keeps_serving() {
    let (_dir, hooks) = misbehaving("trap", "deny", 50).await;
    let c = client("c", None);
    let d = hooks
        .authorize_publish(&c, "a/b", QoS::AtMostOnce, false)
        .await;
    assert_eq!(d, Decision::Deny(ReasonCode::UNSPECIFIED_ERROR));
    assert_eq!(
        hooks
            .authorize_publish(&c, "ok/x", QoS::AtMostOnce, false)
            .await,
        Decision::Allow
    );
    let d = hooks.authenticate(&c, None).await;
    assert_eq!(d, Decision::Deny(ReasonCode::UNSPECIFIED_ERROR));
    assert_eq!(
        hooks
            .authorize_publish(&c, "ok/y", QoS::AtMostOnce, false)
            .await,
        Decision::Allow
    );
    assert_eq!(hooks.plugin_status()[0].traps, 2);
}

#[tokio::test]
async fn plugin_allocating_without_bound_hits_memory_mb_and_the_host_keeps_serving() {
    let (_dir, hooks) = misbehaving("alloc", "allow", 2000).await;
    let c = client("c", None);
    let started = Instant::now();
    assert_eq!(hooks.authenticate(&c, None).await, Decision::Allow);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped by the limit, not the timeout"
    );
    assert_eq!(hooks.plugin_status()[0].out_of_memory, 1);
    assert_eq!(
        hooks
            .authorize_publish(&c, "ok/x", QoS::AtMostOnce, false)
            .await,
        Decision::Allow
    );
}

#[tokio::test]
async fn plugin_failing_repeatedly_is_rested_with_on_error_answers() {
    let (_dir, hooks) = misbehaving("trap", "skip", 50).await;
    let c = client("c", None);
    for _ in 0..5 {
        assert_eq!(hooks.authenticate(&c, None).await, Decision::Defer);
    }
    let status = &hooks.plugin_status()[0];
    assert_eq!(
        status.traps, 3,
        "after 3 failures in a row the plugin rests"
    );
    assert_eq!(status.rested, 2);
}

#[tokio::test]
async fn message_hook_rewrites_and_drops_only_under_its_filters() {
    let toml_text = r#"
        [[plugins]]
        name = "rewrite"
        path = "rewrite.wasm"
        [plugins.config]
        filters = ["sensors/#", "drop/#"]
        prefix = "clean/"
    "#;
    let (_dir, config) = setup(toml_text, &[("rewrite.wasm", "rewrite")]);
    let hooks = Hooks::load(&config).await.expect("load");
    assert!(hooks.has_message_hooks());
    let c = client("c", None);
    let payload = Bytes::from_static(b"twenty degrees");
    let v = hooks
        .on_message(&c, "sensors/t1", &payload, QoS::AtMostOnce, false)
        .await;
    assert_eq!(
        v,
        MessageVerdict::Rewrite {
            topic: "clean/sensors/t1".into(),
            payload: Bytes::from_static(b"TWENTY DEGREES")
        }
    );
    let v = hooks
        .on_message(&c, "drop/me", &payload, QoS::AtMostOnce, false)
        .await;
    assert_eq!(v, MessageVerdict::Drop);
    let v = hooks
        .on_message(&c, "other/topic", &payload, QoS::AtMostOnce, false)
        .await;
    assert_eq!(v, MessageVerdict::Pass);
    assert_eq!(
        hooks.plugin_status()[0].calls,
        2,
        "no call for topics outside the filters"
    );
}

/// Replaces `file` the way a deploy should: write a temporary file, rename it over.
fn deploy(dir: &Path, file: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join(file)).expect("rename");
}

#[tokio::test]
async fn hot_swap_changes_decisions_and_a_broken_file_keeps_the_old_version() {
    let (dir, config) = setup(
        &auth_config(Some(true), true),
        &[("auth.wasm", "auth_anonymous")],
    );
    let hooks = Hooks::load(&config).await.expect("load");
    let anon = client("anon", None);
    assert_eq!(hooks.authenticate(&anon, None).await, Decision::Allow);

    // A different version: refuses everyone.
    let new_version = std::fs::read(wasm("misbehave")).expect("read");
    deploy(dir.path(), "auth.wasm", &new_version);
    let refused = Decision::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let start = Instant::now();
    while hooks.authenticate(&anon, None).await != refused {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "new version not swapped in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.plugin_status()[0].swaps, 1);

    // A broken file is refused; the running version keeps answering.
    deploy(dir.path(), "auth.wasm", b"\0asm this is not a component");
    let start = Instant::now();
    while hooks.plugin_status()[0].swaps_refused == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "broken version not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.authenticate(&anon, None).await, refused);
    assert_eq!(hooks.plugin_status()[0].swaps, 1);
}

#[tokio::test]
async fn hot_swap_refuses_a_version_that_hangs_its_smoke_test() {
    let toml_text = r#"
        [[plugins]]
        name = "auth"
        path = "auth.wasm"
        timeout_ms = 50
        [plugins.config]
        allow_anonymous = true
        mode = "loop"
    "#;
    let (dir, config) = setup(toml_text, &[("auth.wasm", "auth_anonymous")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let anon = client("anon", None);
    deploy(
        dir.path(),
        "auth.wasm",
        &std::fs::read(wasm("misbehave")).expect("read"),
    );
    let start = Instant::now();
    while hooks.plugin_status()[0].swaps_refused == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "hanging version not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.authenticate(&anon, None).await, Decision::Allow);
}

#[tokio::test]
async fn required_plugin_that_fails_to_load_is_an_error_and_an_optional_one_is_left_out() {
    let toml_text = r#"
        [[plugins]]
        name = "refuses-to-start"
        path = "bad.wasm"
        required = true
        [plugins.config]
        mode = "fail-init"
    "#;
    let (_dir, config) = setup(toml_text, &[("bad.wasm", "misbehave")]);
    let err = Hooks::load(&config)
        .await
        .err()
        .expect("required plugin failing is an error");
    assert!(format!("{err:#}").contains("asked to fail"), "{err:#}");

    let (_dir, config) = setup(
        &toml_text.replace("required = true", "required = false"),
        &[("bad.wasm", "misbehave")],
    );
    let hooks = Hooks::load(&config)
        .await
        .expect("optional plugin failing is not an error");
    assert!(hooks.plugin_status().is_empty());

    let missing = r#"
        [[plugins]]
        name = "missing"
        path = "nowhere.wasm"
        required = true
    "#;
    let (_dir, config) = setup(missing, &[]);
    assert!(Hooks::load(&config).await.is_err());
}

#[tokio::test]
async fn reload_rereads_the_plugin_list() {
    let (dir, mut config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("c", None);
    assert_eq!(
        hooks
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        NOT_AUTHORIZED
    );
    let mut changed: Config =
        toml::from_str(&TABOO.replace("\"prohibited\", ", "\"forbidden\", ")).expect("toml");
    changed.base_dir = dir.path().to_path_buf();
    config = changed;
    hooks.reload(&config).await.expect("reload");
    assert_eq!(
        hooks
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        Decision::Defer
    );
    assert_eq!(
        hooks
            .authorize_publish(&c, "forbidden", QoS::AtMostOnce, false)
            .await,
        NOT_AUTHORIZED
    );
}

#[tokio::test]
async fn reload_adds_plugins_to_a_broker_started_without_any() {
    let (dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let empty = Config {
        base_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let hooks = Hooks::load(&empty).await.expect("load");
    let c = client("c", None);
    assert_eq!(
        hooks
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        Decision::Defer
    );
    hooks.reload(&config).await.expect("reload");
    assert_eq!(
        hooks
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        NOT_AUTHORIZED
    );
}

#[tokio::test]
async fn no_plugins_defer_everything() {
    let hooks = Hooks::load(&Config::default()).await.expect("load");
    let c = client("c", None);
    assert_eq!(hooks.authenticate(&c, None).await, Decision::Defer);
    assert_eq!(
        hooks.authorize_subscribe(&c, "#", QoS::AtMostOnce).await,
        Decision::Defer
    );
    assert!(!hooks.has_message_hooks());
    let payload = Bytes::from_static(b"x");
    assert_eq!(
        hooks
            .on_message(&c, "t", &payload, QoS::AtMostOnce, false)
            .await,
        MessageVerdict::Pass
    );
}

#[tokio::test]
async fn compiled_plugins_are_cached_on_disk_by_content_hash() {
    let (dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let cache = dir.path().join(".waspmq-cache/plugins");
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let first = Hooks::load(&config).await.expect("load");
    let cached = entries();
    assert_eq!(cached.len(), 1, "one compiled component: {cached:?}");
    let hash = &first.plugin_status()[0].hash;
    let name = cached[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        name.starts_with(hash.as_str()) && name.ends_with(".cwasm"),
        "{name}"
    );

    // A second broker start loads the cached compilation and behaves the same.
    let second = Hooks::load(&config).await.expect("load from cache");
    assert_eq!(entries().len(), 1);
    let c = client("c", None);
    assert_eq!(
        second
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        NOT_AUTHORIZED
    );
}

#[tokio::test]
async fn reload_with_a_required_plugin_that_fails_keeps_the_old_chain() {
    let (dir, config) = setup(TABOO, &[("taboo.wasm", "topic_taboo")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let broken = format!(
        "{TABOO}\n[[plugins]]\nname = \"broken\"\npath = \"missing.wasm\"\nrequired = true\n"
    );
    let mut broken: Config = toml::from_str(&broken).expect("toml");
    broken.base_dir = dir.path().to_path_buf();
    assert!(hooks.reload(&broken).await.is_err());
    let c = client("c", None);
    assert_eq!(
        hooks
            .authorize_publish(&c, "prohibited", QoS::AtMostOnce, false)
            .await,
        NOT_AUTHORIZED
    );
    assert_eq!(hooks.plugin_status().len(), 1);
}

#[tokio::test]
async fn notifications_never_wait_for_the_plugin() {
    let toml_text = r#"
        [[plugins]]
        name = "sqlite-conn-log"
        path = "connlog.wasm"
        sql = { connections = "clients.db" }
    "#;
    let (_dir, config) = setup(toml_text, &[("connlog.wasm", "sqlite_conn_log")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let started = Instant::now();
    for i in 0..200 {
        hooks.connected(&client(&format!("c{i}"), None));
    }
    // Queuing 200 notifications must not cost 200 SQLite inserts on the caller's path.
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(hooks.dropped_notifications(), 0);
}

#[tokio::test]
async fn kv_buckets_are_granted_per_plugin_and_outlive_instances() {
    let toml_text = r#"
        [[plugins]]
        name = "counting"
        path = "rewrite.wasm"
        kv = { counts = "message-counts" }
        [plugins.config]
        counter = "counts"
        prefix = ""
        [[plugins]]
        name = "not-granted"
        path = "rewrite.wasm"
        [plugins.config]
        counter = "counts"
        filters = ["denied/#"]
        prefix = ""
    "#;
    let (_dir, config) = setup(toml_text, &[("rewrite.wasm", "rewrite")]);
    let hooks = Hooks::load(&config).await.expect("load");
    let c = client("c", None);
    let payload = Bytes::from_static(b"m");
    for n in 1..=3 {
        let v = hooks
            .on_message(&c, "t", &payload, QoS::AtMostOnce, false)
            .await;
        let expected = Bytes::from(format!("M#{n}"));
        assert_eq!(
            v,
            MessageVerdict::Rewrite {
                topic: "t".into(),
                payload: expected
            }
        );
    }
    // The second plugin was granted no bucket: its rewrite of the first one's output says so.
    let v = hooks
        .on_message(&c, "denied/x", &payload, QoS::AtMostOnce, false)
        .await;
    let expected = Bytes::from_static(b"M#4#Error::AccessDenied");
    assert_eq!(
        v,
        MessageVerdict::Rewrite {
            topic: "denied/x".into(),
            payload: expected
        }
    );
}
