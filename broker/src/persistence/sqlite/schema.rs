//! Opening `waspmq.db`: the connection settings (WAL, sync policy, size limit), the integrity
//! check that makes a damaged file refuse to open, the versioned schema, and the mapping of
//! SQLite errors onto [`StoreError`].

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::config::SyncPolicy;
use crate::persistence::store::StoreError;

/// The schema this broker writes; kept in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// Times in milliseconds since the Unix epoch; `expires_at` NULL = never. Messages are blobs
/// (see `encoding`). Every per-client table is keyed by client id first so deleting or loading
/// a session touches one range.
const SCHEMA_V1: &str = "
CREATE TABLE sessions (
    client_id TEXT PRIMARY KEY NOT NULL,
    expiry_interval INTEGER NOT NULL,
    disconnected_at INTEGER,
    will BLOB,
    will_expires_at INTEGER,
    will_delay INTEGER
) WITHOUT ROWID;
CREATE TABLE subscriptions (
    client_id TEXT NOT NULL,
    filter TEXT NOT NULL,
    options INTEGER NOT NULL,
    identifier INTEGER,
    PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
CREATE TABLE retained (
    topic TEXT PRIMARY KEY NOT NULL,
    message BLOB NOT NULL,
    expires_at INTEGER
);
CREATE TABLE queued (
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (client_id, seq)
);
CREATE TABLE inflight (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    state INTEGER NOT NULL,
    message BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (client_id, packet_id)
);
CREATE TABLE inbound_qos2 (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
";

/// Maps a SQLite error on `path` to the store's error kinds.
pub fn map_err(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full { path, detail },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt { path, detail }
        }
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure,
        ) => StoreError::Unwritable { path, detail },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Other {
            path,
            detail: format!("{detail} (is another broker using this data folder?)"),
        },
        _ => StoreError::Other { path, detail },
    }
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(
    path: &Path,
    sync: SyncPolicy,
    max_size_mb: Option<u32>,
) -> Result<Connection, StoreError> {
    let err = |e| map_err(path, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    // One broker per data folder: the exclusive lock is taken on first access and held until
    // the store closes, so a second broker fails at start instead of interleaving writes.
    conn.busy_timeout(Duration::from_millis(500)).map_err(err)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unwritable {
            path: path.to_path_buf(),
            detail: format!("cannot switch to WAL journal mode (got {mode})"),
        });
    }
    // FULL: the WAL is fsynced at every commit. NORMAL: only at checkpoints (still safe
    // against a process crash, not against power loss).
    let synchronous = match sync {
        SyncPolicy::Always => "FULL",
        SyncPolicy::Periodic => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(err)?;
    if let Some(mb) = max_size_mb {
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(err)?;
        let pages = (i64::from(mb) * 1024 * 1024 / page_size.max(512)).max(1);
        set_max_page_count(&conn, pages).map_err(err)?;
    }
    check_integrity(&conn, path)?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Caps the database size in pages (not persistent: applied at every open).
pub fn set_max_page_count(conn: &Connection, pages: i64) -> rusqlite::Result<()> {
    let _granted: i64 =
        conn.pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))?;
    Ok(())
}

/// `PRAGMA quick_check`: reads every page once, so a damaged file is refused at start rather
/// than failing some write later.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let first: String = conn
        .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
        .map_err(|e| map_err(path, e))?;
    if first == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: first,
        })
    }
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| map_err(path, e);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(err)?;
    match version {
        0 => {
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
                .map_err(err)?;
            if tables != 0 {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "not a WaspMQ database (tables without a schema version)".into(),
                });
            }
            let tx = conn.unchecked_transaction().map_err(err)?;
            tx.execute_batch(SCHEMA_V1).map_err(err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err)?;
            tx.commit().map_err(err)
        }
        SCHEMA_VERSION => Ok(()),
        found => Err(StoreError::UnsupportedSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
    }
}
