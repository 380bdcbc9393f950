//! Persistence: the storage interface for sessions, retained and queued messages, with an
//! in-memory implementation and a SQLite one.
//!
//! The broker holds one `Arc<dyn Store>` ([`open`] picks the implementation from the config).
//! At start it calls [`Store::load`] and rebuilds its sessions and retained messages from the
//! [`Snapshot`]; afterwards every state change that must survive a restart is sent as a batch
//! of [`Op`]s to [`Store::commit`], and PUBACK / PUBREC is sent only once that commit resolves
//! `Ok` (durable per `[persistence] sync`). A failed commit is answered with
//! [`StoreError::reason_code`] (0x97 when full, 0x80 otherwise) instead of an acknowledgement.

mod encoding;
mod memory;
mod record;
mod sqlite;
mod store;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use crate::config::PersistenceConfig;

pub use memory::MemoryStore;
pub use record::{
    InflightState, RestoredSession, Snapshot, StoredInflight, StoredMessage, StoredSession,
    StoredSubscription, StoredWill, NEVER_EXPIRES,
};
pub use sqlite::{SqliteOptions, SqliteStore, DB_FILE, SCHEMA_VERSION};
pub use store::{Commit, Op, Store, StoreError, StoreStats};

/// The store `config` asks for: SQLite in `base_dir/config.path` when enabled, memory
/// otherwise. An error (unwritable folder, corrupt or foreign file) names the file; the
/// broker refuses to start on it.
pub fn open(config: &PersistenceConfig, base_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    if !config.enabled {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let dir = base_dir.join(&config.path);
    let store = SqliteStore::open(&dir, SqliteOptions::from_config(config))?;
    tracing::info!(path = %store.path().display(), sync = ?config.sync, "persistence enabled");
    Ok(Arc::new(store))
}
