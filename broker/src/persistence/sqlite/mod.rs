//! [`SqliteStore`]: the durable [`Store`], one SQLite file (`waspmq.db`, WAL mode) in the data
//! folder.
//!
//! One writer thread owns the connection. Callers send their batches over a channel and get a
//! [`Commit`] back at once; the writer takes every batch waiting in the channel, applies them
//! all in ONE transaction and completes every waiter after its ONE commit (group commit): with
//! `sync = "always"` many acknowledged messages share one fsync, and the busier the broker the
//! more they share. If that shared transaction fails, it is rolled back and the batches are
//! retried one transaction each, so one batch that cannot be stored does not fail the others.
//!
//! With `sync = "periodic"` commits use `synchronous = NORMAL`: the WAL is written to the OS at
//! each commit (a killed broker loses nothing) and flushed to disk by a checkpoint every
//! `sync_interval_ms`: a power loss or OS crash can lose what was acknowledged in the last
//! interval.

mod apply;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::config::{PersistenceConfig, SyncPolicy};

use super::record::Snapshot;
use super::store::{Commit, Op, Store, StoreError, StoreStats};

pub use schema::SCHEMA_VERSION;

/// The database file's name inside the data folder.
pub const DB_FILE: &str = "waspmq.db";

/// Most batches joined into one transaction: bounds the time a waiter waits behind others.
const MAX_GROUP: usize = 1024;

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub sync: SyncPolicy,
    /// With [`SyncPolicy::Periodic`]: time between checkpoints (the flushes to disk).
    pub sync_interval: Duration,
    /// Cap on the file size, in MiB.
    pub max_size_mb: Option<u32>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions::from_config(&PersistenceConfig::default())
    }
}

impl SqliteOptions {
    pub fn from_config(config: &PersistenceConfig) -> SqliteOptions {
        SqliteOptions {
            sync: config.sync,
            // A zero interval would make the writer spin; 1 ms is the floor.
            sync_interval: Duration::from_millis(config.sync_interval_ms.max(1)),
            max_size_mb: config.max_size_mb,
        }
    }
}

type Done = oneshot::Sender<Result<(), StoreError>>;

enum Request {
    Commit {
        ops: Vec<Op>,
        done: Done,
    },
    Sync {
        done: Done,
    },
    Load {
        now: SystemTime,
        reply: mpsc::SyncSender<Result<Snapshot, StoreError>>,
    },
    /// Test hook: change the size cap of the open connection.
    #[cfg(test)]
    SetMaxPages {
        pages: i64,
        done: Done,
    },
}

/// The SQLite [`Store`]. Dropping it finishes the pending batches, checkpoints and closes the
/// file.
pub struct SqliteStore {
    path: PathBuf,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    stats: Arc<Mutex<StoreStats>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens `dir/waspmq.db`, creating the folder and the file if needed. Fails, naming the
    /// file, if it cannot be created or written, is not a WaspMQ database or is damaged, has
    /// a newer schema, or is in use by another broker.
    pub fn open(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unwritable {
            path: dir.to_path_buf(),
            detail: format!("cannot create the data folder: {e}"),
        })?;
        let path = dir.join(DB_FILE);
        let conn = schema::open(&path, options.sync, options.max_size_mb)?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(StoreStats::default()));
        let mut writer = Writer {
            conn,
            path: path.clone(),
            options,
            stats: stats.clone(),
            dirty: false,
        };
        let handle = std::thread::Builder::new()
            .name("waspmq-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Other {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            path,
            requests: Some(tx),
            writer: Some(handle),
            stats,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let closed = || StoreError::Closed {
            path: self.path.clone(),
        };
        self.requests
            .as_ref()
            .ok_or_else(closed)?
            .send(request)
            .map_err(|_| closed())
    }

    /// Lowers (or raises) the size cap of the open file, in pages, to provoke "full" in tests.
    #[cfg(test)]
    pub(crate) fn set_max_pages(&self, pages: i64) -> Commit {
        let (done, commit) = Commit::pending(self.path.clone());
        match self.send(Request::SetMaxPages { pages, done }) {
            Ok(()) => commit,
            Err(e) => Commit::ready(Err(e)),
        }
    }
}

impl Store for SqliteStore {
    fn commit(&self, ops: Vec<Op>) -> Commit {
        let (done, commit) = Commit::pending(self.path.clone());
        match self.send(Request::Commit { ops, done }) {
            Ok(()) => commit,
            Err(e) => Commit::ready(Err(e)),
        }
    }

    fn load(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Load { now, reply })?;
        answer.recv().unwrap_or(Err(StoreError::Closed {
            path: self.path.clone(),
        }))
    }

    fn sync(&self) -> Commit {
        let (done, commit) = Commit::pending(self.path.clone());
        match self.send(Request::Sync { done }) {
            Ok(()) => commit,
            Err(e) => Commit::ready(Err(e)),
        }
    }

    fn stats(&self) -> StoreStats {
        *self.stats.lock()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and stop.
        self.requests.take();
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!(path = %self.path.display(), "persistence writer thread panicked");
            }
        }
    }
}

/// The writer thread's state: the only user of the connection.
struct Writer {
    conn: Connection,
    path: PathBuf,
    options: SqliteOptions,
    stats: Arc<Mutex<StoreStats>>,
    /// Commits since the last checkpoint (periodic mode).
    dirty: bool,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Request>) {
        let mut last_flush = Instant::now();
        loop {
            let first = match self.options.sync {
                SyncPolicy::Always => match rx.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                },
                SyncPolicy::Periodic => {
                    let wait = self
                        .options
                        .sync_interval
                        .saturating_sub(last_flush.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(r) => r,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.flush_if_dirty();
                            last_flush = Instant::now();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            // Everything already waiting joins this round, up to MAX_GROUP batches.
            let mut group: Vec<(Vec<Op>, Done)> = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Commit { ops, done } => group.push((ops, done)),
                    other => {
                        // Keep the order: what was committed before a load or sync is
                        // applied before it.
                        self.commit_group(std::mem::take(&mut group));
                        self.handle(other);
                    }
                }
                if group.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_group(group);
            if self.options.sync == SyncPolicy::Periodic
                && last_flush.elapsed() >= self.options.sync_interval
            {
                self.flush_if_dirty();
                last_flush = Instant::now();
            }
        }
        // Clean shutdown: move the WAL into the main file and truncate it.
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(path = %self.path.display(), error = %e, "final checkpoint failed");
        }
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Commit { ops, done } => self.commit_group(vec![(ops, done)]),
            Request::Sync { done } => {
                let result = self.checkpoint();
                if result.is_ok() {
                    self.dirty = false;
                }
                let _ = done.send(result);
            }
            Request::Load { now, reply } => {
                let _ = reply.send(self.load(now));
            }
            #[cfg(test)]
            Request::SetMaxPages { pages, done } => {
                let result = schema::set_max_page_count(&self.conn, pages)
                    .map_err(|e| schema::map_err(&self.path, e));
                let _ = done.send(result);
            }
        }
    }

    /// Applies the batches in one transaction; on failure, one transaction per batch so each
    /// waiter gets its own outcome.
    fn commit_group(&mut self, group: Vec<(Vec<Op>, Done)>) {
        if group.is_empty() {
            return;
        }
        let result = self.transaction(group.iter().map(|(ops, _)| ops.as_slice()));
        match result {
            Ok(()) => {
                for (ops, done) in group {
                    self.complete(ops.len(), done, Ok(()));
                }
            }
            Err(e) if group.len() == 1 => {
                for (ops, done) in group {
                    self.complete(ops.len(), done, Err(e.clone()));
                }
            }
            Err(_) => {
                for (ops, done) in group {
                    let result = self.transaction(std::iter::once(ops.as_slice()));
                    self.complete(ops.len(), done, result);
                }
            }
        }
    }

    fn complete(&mut self, ops: usize, done: Done, result: Result<(), StoreError>) {
        {
            let mut stats = self.stats.lock();
            stats.commits += 1;
            match &result {
                Ok(()) => stats.ops += ops as u64,
                Err(_) => stats.failures += 1,
            }
        }
        // The caller may have stopped waiting; the write stands either way.
        let _ = done.send(result);
    }

    fn transaction<'a>(
        &mut self,
        batches: impl Iterator<Item = &'a [Op]>,
    ) -> Result<(), StoreError> {
        self.stats.lock().transactions += 1;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| schema::map_err(&path, e))?;
        for ops in batches {
            for op in ops {
                // Dropping `tx` on error rolls the whole transaction back.
                apply::apply(&tx, &path, op)?;
            }
        }
        tx.commit().map_err(|e| schema::map_err(&path, e))?;
        self.dirty = true;
        Ok(())
    }

    fn load(&mut self, now: SystemTime) -> Result<Snapshot, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| schema::map_err(&path, e))?;
        let snapshot = apply::load(&tx, &path, now)?;
        tx.commit().map_err(|e| schema::map_err(&path, e))?;
        self.dirty = true;
        Ok(snapshot)
    }

    /// Forces everything committed to disk: a checkpoint fsyncs the WAL, then the database.
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| schema::map_err(&self.path, e))
    }

    fn flush_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        match self.checkpoint() {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "periodic checkpoint failed")
            }
        }
    }
}
