//! The one wasmtime [`Engine`] of a plugin chain: epoch interruption driven by a ticker
//! thread, and compiled components cached on disk keyed by content hash.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How often the engine's epoch advances: the granularity of `timeout_ms` and of yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine and starts its epoch ticker (which stops when the engine is dropped).
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // No component-model async in the contract; turning it off makes every call cheaper.
    config.concurrency_support(false);
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("waspmq-plugin-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("cannot start the plugin epoch ticker")?;
    Ok(engine)
}

/// SHA-256 of a plugin file, hex: identifies a version.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiled components on disk: `<dir>/<sha256>-<engine compatibility>.cwasm`. Compiling a
/// component takes from tens of milliseconds (Rust) to seconds (Python, JS); loading a cached
/// one takes well under a millisecond.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// A cache in `dir`; `None` disables it.
    pub fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache { dir }
    }

    /// Compiles `bytes` (hash `hash`) or loads the cached compilation. Blocking: call it from
    /// `spawn_blocking`.
    pub fn component(
        &self,
        engine: &Engine,
        hash: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Component> {
        let Some(path) = self.entry(engine, hash) else {
            return Ok(Component::from_binary(engine, bytes)?);
        };
        if path.is_file() {
            // SAFETY: the cache folder holds only files this broker serialized itself (it
            // must be writable by the broker alone, as its data folder is); wasmtime still
            // checks the header and that the engine settings match.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring bad cache entry: {e:#}"),
            }
        }
        let component = Component::from_binary(engine, bytes)?;
        if let Err(e) = store_entry(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e:#}");
        }
        Ok(component)
    }

    fn entry(&self, engine: &Engine, hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{hash}-{:016x}.cwasm", hasher.finish())))
    }
}

fn store_entry(path: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
