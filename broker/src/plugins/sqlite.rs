//! SQLite databases granted to plugins: the host owns the rusqlite connections; a plugin names
//! a database by the logical name its config entry grants and never sees a path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use parking_lot::Mutex;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;

use super::bindings::waspmq::plugin::sql;

/// Largest result (in bytes of values) a query may hand back to a plugin.
const MAX_RESULT_BYTES: usize = 4 << 20;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// One plugin's granted databases, by logical name.
#[derive(Clone, Default)]
pub struct SqlGrants {
    databases: Arc<BTreeMap<String, Arc<Mutex<Connection>>>>,
}

impl SqlGrants {
    /// Opens every granted database (relative paths against `base_dir`).
    pub fn open(grants: &BTreeMap<String, PathBuf>, base_dir: &Path) -> anyhow::Result<SqlGrants> {
        let mut databases = BTreeMap::new();
        for (name, file) in grants {
            let path = base_dir.join(file);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the folder of {}", path.display()))?;
            }
            let conn = Connection::open(&path)
                .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // A plugin may only use the file it was granted: no ATTACH of other files.
            conn.authorizer(Some(|ctx: rusqlite::hooks::AuthContext<'_>| {
                match ctx.action {
                    rusqlite::hooks::AuthAction::Attach { .. } => {
                        rusqlite::hooks::Authorization::Deny
                    }
                    _ => rusqlite::hooks::Authorization::Allow,
                }
            }))?;
            databases.insert(name.clone(), Arc::new(Mutex::new(conn)));
        }
        Ok(SqlGrants {
            databases: Arc::new(databases),
        })
    }

    /// Runs `statement` on the database granted as `database`, off the async workers.
    pub async fn run(
        &self,
        database: &str,
        statement: String,
        params: Vec<sql::Value>,
        want_rows: bool,
    ) -> Result<Outcome, sql::Error> {
        let Some(conn) = self.databases.get(database).cloned() else {
            return Err(sql::Error::AccessDenied);
        };
        let job = move || {
            let conn = conn.lock();
            run_blocking(&conn, &statement, params, want_rows)
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(outcome) => outcome,
            Err(e) => Err(sql::Error::Failed(format!("statement aborted: {e}"))),
        }
    }
}

/// What a statement produced.
pub enum Outcome {
    Changed(u64),
    Rows(sql::Rows),
}

fn run_blocking(
    conn: &Connection,
    statement: &str,
    params: Vec<sql::Value>,
    want_rows: bool,
) -> Result<Outcome, sql::Error> {
    let failed = |e: rusqlite::Error| sql::Error::Failed(e.to_string());
    let mut stmt = conn.prepare_cached(statement).map_err(failed)?;
    let params: Vec<SqlValue> = params.into_iter().map(to_sqlite).collect();
    let params = rusqlite::params_from_iter(params.iter());
    if !want_rows {
        let changed = stmt.execute(params).map_err(failed)?;
        return Ok(Outcome::Changed(changed as u64));
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let width = columns.len();
    let mut rows = stmt.query(params).map_err(failed)?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(failed)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let value = from_sqlite(row.get_ref(i).map_err(failed)?);
            bytes += value_size(&value);
            values.push(value);
        }
        if bytes > MAX_RESULT_BYTES {
            return Err(sql::Error::TooLarge);
        }
        out.push(values);
    }
    Ok(Outcome::Rows(sql::Rows { columns, rows: out }))
}

fn to_sqlite(v: sql::Value) -> SqlValue {
    match v {
        sql::Value::Null => SqlValue::Null,
        sql::Value::Integer(i) => SqlValue::Integer(i),
        sql::Value::Real(f) => SqlValue::Real(f),
        sql::Value::Text(s) => SqlValue::Text(s),
        sql::Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn from_sqlite(v: ValueRef<'_>) -> sql::Value {
    match v {
        ValueRef::Null => sql::Value::Null,
        ValueRef::Integer(i) => sql::Value::Integer(i),
        ValueRef::Real(f) => sql::Value::Real(f),
        ValueRef::Text(t) => sql::Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => sql::Value::Blob(b.to_vec()),
    }
}

fn value_size(v: &sql::Value) -> usize {
    match v {
        sql::Value::Text(s) => s.len(),
        sql::Value::Blob(b) => b.len(),
        _ => 8,
    }
}
