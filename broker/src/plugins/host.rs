//! What a plugin instance's `Store` holds, and the host capabilities it imports: `log` into
//! tracing, `clock`, the `sql` databases its config grants, and the deny-by-default WASI of
//! [`super::wasi`]. Memory is capped here too.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::waspmq::plugin::{clock, kv, log, sql, types};
use super::kv::KvGrants;
use super::sqlite::{Outcome, SqlGrants};

/// Longest log line a plugin may write; the rest is cut.
const MAX_LOG_LINE: usize = 4096;

/// The per-instance state.
pub struct StoreState {
    pub plugin: Arc<str>,
    pub memory: MemoryLimit,
    pub sql: SqlGrants,
    pub kv: KvGrants,
    /// When the running call must stop; read by the epoch callback at every tick.
    pub deadline: Instant,
    /// What the guest's `wasi:*` imports see (see [`super::wasi::sandbox`]).
    pub wasi: WasiCtx,
    /// The guest's WASI resources (streams, pollables, descriptors).
    pub table: ResourceTable,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps an instance's linear memory at the plugin's `memory_mb`, and remembers it was hit so
/// the failure can be reported as out-of-memory rather than a plain trap.
pub struct MemoryLimit {
    pub max_bytes: usize,
    pub exceeded: bool,
}

/// Table elements an instance may have (function tables of ordinary guests are small).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps at once instead of letting the guest see a
            // failed allocation it might spin on.
            return Err(wasmtime::Error::msg(format!(
                "plugin memory limit of {} MiB reached",
                self.max_bytes >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl types::Host for StoreState {}

impl log::Host for StoreState {
    async fn log(&mut self, level: types::Level, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            types::Level::Trace => tracing::trace!(target: "waspmq::plugin", plugin, "{message}"),
            types::Level::Debug => tracing::debug!(target: "waspmq::plugin", plugin, "{message}"),
            types::Level::Info => tracing::info!(target: "waspmq::plugin", plugin, "{message}"),
            types::Level::Warn => tracing::warn!(target: "waspmq::plugin", plugin, "{message}"),
            types::Level::Error => tracing::error!(target: "waspmq::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl clock::Host for StoreState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(since.as_millis() as u64)
    }
}

impl sql::Host for StoreState {
    async fn execute(
        &mut self,
        database: String,
        statement: String,
        params: Vec<sql::Value>,
    ) -> wasmtime::Result<Result<u64, sql::Error>> {
        Ok(
            match self.sql.run(&database, statement, params, false).await {
                Ok(Outcome::Changed(n)) => Ok(n),
                Ok(Outcome::Rows(_)) => Ok(0),
                Err(e) => Err(e),
            },
        )
    }

    async fn query(
        &mut self,
        database: String,
        statement: String,
        params: Vec<sql::Value>,
    ) -> wasmtime::Result<Result<sql::Rows, sql::Error>> {
        Ok(
            match self.sql.run(&database, statement, params, true).await {
                Ok(Outcome::Rows(rows)) => Ok(rows),
                Ok(Outcome::Changed(_)) => Ok(sql::Rows {
                    columns: Vec::new(),
                    rows: Vec::new(),
                }),
                Err(e) => Err(e),
            },
        )
    }
}

impl kv::Host for StoreState {
    async fn get(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        Ok(self.kv.get(&bucket, &key))
    }

    async fn set(
        &mut self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(self.kv.set(&bucket, key, value))
    }

    async fn delete(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(self.kv.delete(&bucket, &key))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}
