//! The broker's capabilities, wrapped for Rust: `log`, `clock`, and the granted `sql`
//! databases and `kv` buckets.

/// Writes into the broker's log (tagged with this plugin's name).
pub mod log {
    use crate::bindings::waspmq::plugin::log::log;
    use crate::bindings::waspmq::plugin::types::Level;

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }

    pub fn info(message: &str) {
        log(Level::Info, message)
    }

    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }

    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Wall-clock time from the broker.
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        crate::bindings::waspmq::plugin::clock::now_ms()
    }
}

/// SQLite databases granted in the plugin's config entry (`sql = { name = "file.db" }`).
pub mod sql {
    use crate::bindings::waspmq::plugin::sql as raw;
    pub use crate::bindings::waspmq::plugin::sql::{Error, Rows, Value};

    /// Runs a statement without result rows; returns the number of rows changed.
    pub fn execute(database: &str, statement: &str, params: &[Value]) -> Result<u64, Error> {
        raw::execute(database, statement, params)
    }

    /// Runs a query and returns its rows.
    pub fn query(database: &str, statement: &str, params: &[Value]) -> Result<Rows, Error> {
        raw::query(database, statement, params)
    }

    /// `Value::Text` from anything string-like.
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// `Value::Text`, or `Value::Null` for `None`.
    pub fn opt_text(s: Option<impl Into<String>>) -> Value {
        s.map(|s| Value::Text(s.into())).unwrap_or(Value::Null)
    }
}

/// Key-value buckets granted in the plugin's config entry (`kv = { name = "bucket" }`), kept in
/// the broker's memory across hot swaps (not across restarts).
pub mod kv {
    use crate::bindings::waspmq::plugin::kv as raw;
    pub use crate::bindings::waspmq::plugin::kv::Error;

    pub fn get(bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        raw::get(bucket, key)
    }

    pub fn set(bucket: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        raw::set(bucket, key, value)
    }

    pub fn delete(bucket: &str, key: &str) -> Result<(), Error> {
        raw::delete(bucket, key)
    }
}
