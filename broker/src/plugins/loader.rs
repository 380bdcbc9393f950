//! Turns a `[[plugins]]` entry into a running [`PluginVersion`]: read the file, compile it (or
//! take it from the disk cache) off the async workers, open its SQLite grants, instantiate and
//! `init` it; for a hot swap, also smoke-test it before it may serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use wasmtime::Engine;

use super::bindings::{wit, HookSet};
use super::engine::{content_hash, CompileCache};
use super::kv::KvBuckets;
use super::sqlite::SqlGrants;
use super::version::{Call, PluginVersion, VersionSpec};
use crate::config::{Config, PluginConfig};

/// The client the smoke test calls decision hooks for.
const SMOKE_CLIENT_ID: &str = "$waspmq-smoke-test";
const SMOKE_TOPIC: &str = "$waspmq/smoke-test";

/// What the loader needs besides the entry.
#[derive(Clone)]
pub struct LoadContext {
    pub engine: Engine,
    pub cache: CompileCache,
    pub base_dir: PathBuf,
    /// `[auth] allow_anonymous`, offered to every plugin whose config does not set it.
    pub allow_anonymous: bool,
    /// The chain's key-value buckets (kept across reloads and hot swaps).
    pub kv: KvBuckets,
}

impl LoadContext {
    pub fn new(engine: Engine, config: &Config) -> LoadContext {
        LoadContext {
            engine,
            cache: CompileCache::new(Some(config.base_dir.join(".waspmq-cache").join("plugins"))),
            base_dir: config.base_dir.clone(),
            allow_anonymous: config.auth.allow_anonymous,
            kv: KvBuckets::default(),
        }
    }

    pub fn resolve(&self, entry: &PluginConfig) -> PathBuf {
        self.base_dir.join(&entry.path)
    }

    /// Reads `entry`'s file and loads it; the file's bytes are hashed to name the version.
    pub async fn load(&self, entry: &PluginConfig) -> anyhow::Result<PluginVersion> {
        let path = self.resolve(entry);
        let bytes = tokio::fs::read(&path)
            .await
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        self.load_bytes(entry, bytes).await
    }

    /// Loads a version from `bytes`.
    pub async fn load_bytes(
        &self,
        entry: &PluginConfig,
        bytes: Vec<u8>,
    ) -> anyhow::Result<PluginVersion> {
        let hash = content_hash(&bytes);
        let (engine, cache, base_dir) = (
            self.engine.clone(),
            self.cache.clone(),
            self.base_dir.clone(),
        );
        let grants = entry.sql.clone();
        let compile_hash = hash.clone();
        let (component, sql) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let component = cache
                .component(&engine, &compile_hash, &bytes)
                .context("not a valid WebAssembly component")?;
            let sql = SqlGrants::open(&grants, &base_dir)?;
            Ok((component, sql))
        })
        .await
        .context("plugin compilation aborted")??;
        let spec = VersionSpec {
            name: Arc::from(entry.name.as_str()),
            hash,
            config_json: self.config_json(entry)?,
            memory_bytes: usize::try_from(entry.memory_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            sql,
            kv: self.kv.grants(&entry.kv),
        };
        PluginVersion::load(&self.engine, &component, spec).await
    }

    /// The entry's `[plugins.config]` as the JSON `init` receives.
    fn config_json(&self, entry: &PluginConfig) -> anyhow::Result<String> {
        let mut value = serde_json::to_value(&entry.config)
            .context("plugin config is not representable as JSON")?;
        if let serde_json::Value::Object(map) = &mut value {
            map.entry("allow_anonymous")
                .or_insert(serde_json::Value::Bool(self.allow_anonymous));
        }
        Ok(value.to_string())
    }
}

/// Calls every decision hook the new version declares once, with a synthetic client, so a
/// version that traps or hangs is refused before it serves anyone.
pub async fn smoke_test(version: &PluginVersion, entry: &PluginConfig) -> anyhow::Result<()> {
    let client = wit::ClientInfo {
        client_id: SMOKE_CLIENT_ID.to_owned(),
        username: None,
        peer: None,
        protocol_version: 5,
        listener: "smoke-test".to_owned(),
    };
    let timeout = std::time::Duration::from_millis(entry.timeout_ms.max(1));
    let qos = wit::Qos::AtMostOnce;
    let mut calls = Vec::new();
    if version.wants(HookSet::AUTHENTICATE) {
        calls.push((
            "authenticate",
            Call::Authenticate {
                client: &client,
                password: None,
            },
        ));
    }
    if version.wants(HookSet::AUTHORIZE_PUBLISH) {
        calls.push((
            "authorize-publish",
            Call::AuthorizePublish {
                client: &client,
                topic: SMOKE_TOPIC,
                qos,
                retain: false,
            },
        ));
    }
    if version.wants(HookSet::AUTHORIZE_SUBSCRIBE) {
        calls.push((
            "authorize-subscribe",
            Call::AuthorizeSubscribe {
                client: &client,
                filter: SMOKE_TOPIC,
                qos,
            },
        ));
    }
    if version.wants(HookSet::MESSAGE) {
        calls.push((
            "on-publish",
            Call::Message {
                client: &client,
                topic: SMOKE_TOPIC,
                payload: &[],
                qos,
                retain: false,
            },
        ));
    }
    for (hook, call) in calls {
        if let Err(failure) = version.call(call, timeout).await {
            bail!(
                "smoke test of {hook} failed ({}): {:#}",
                failure.kind.as_str(),
                failure.error
            );
        }
    }
    Ok(())
}

/// Whether two entries configure a plugin identically.
pub fn same_entry(a: &PluginConfig, b: &PluginConfig) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// The folders to watch for the plugin files.
pub fn watch_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = paths
        .filter_map(|p| p.parent())
        .map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d.to_path_buf()
            }
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}
