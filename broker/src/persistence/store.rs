//! The storage interface the broker calls: [`Store`], the write operations ([`Op`]) it takes
//! in batches, the [`Commit`] future that resolves once a batch is durable, and [`StoreError`].
//!
//! The hot path builds the few ops a packet implies (say, one `Enqueue` per offline
//! subscriber), calls [`Store::commit`] and acknowledges the packet only when the returned
//! [`Commit`] resolves `Ok`. A failed commit means nothing of the batch is stored; the broker
//! then answers with [`StoreError::reason_code`] instead of acknowledging.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::protocol::ReasonCode;

use super::record::StoredSubscription;
use super::record::{InflightState, Snapshot, StoredInflight, StoredMessage, StoredSession};

/// One write. A batch of ops given to [`Store::commit`] is applied atomically, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates or replaces a session; its subscriptions become exactly `session.subscriptions`.
    /// Its queued, in-flight and inbound QoS 2 records are left as they are.
    SaveSession(StoredSession),
    /// Marks a session connected (`None`) or disconnected at a time, without rewriting it.
    SetDisconnected {
        client_id: String,
        at: Option<SystemTime>,
    },
    /// Sets or clears the pending will of a session.
    SetWill {
        client_id: String,
        will: Option<super::record::StoredWill>,
    },
    /// Removes a session with its subscriptions, queue, in-flight and inbound QoS 2 records.
    DeleteSession {
        client_id: String,
    },
    /// Adds a subscription, or replaces the one with the same filter.
    AddSubscription {
        client_id: String,
        subscription: StoredSubscription,
    },
    RemoveSubscription {
        client_id: String,
        filter: String,
    },
    /// Stores the retained message of `message.topic`, replacing the previous one.
    SetRetained(StoredMessage),
    ClearRetained {
        topic: String,
    },
    /// Appends a message to a session's queue; `seq` orders the queue and must grow.
    Enqueue {
        client_id: String,
        seq: u64,
        message: StoredMessage,
    },
    /// Removes one queued message (delivered at QoS 0, moved in flight, dropped or expired).
    Dequeue {
        client_id: String,
        seq: u64,
    },
    /// Stores an outbound in-flight message, replacing the one with the same packet id.
    PutInflight {
        client_id: String,
        entry: StoredInflight,
    },
    /// PUBREC received: the entry now waits for PUBCOMP.
    SetInflightState {
        client_id: String,
        packet_id: u16,
        state: InflightState,
    },
    /// PUBACK or PUBCOMP received (or the message was given up).
    RemoveInflight {
        client_id: String,
        packet_id: u16,
    },
    /// PUBREC sent for an inbound QoS 2 PUBLISH.
    AddInboundQos2 {
        client_id: String,
        packet_id: u16,
    },
    /// PUBREL received: the packet id is free again.
    RemoveInboundQos2 {
        client_id: String,
        packet_id: u16,
    },
}

/// Why a store could not do what was asked. Every variant names the file concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk, or the configured `max_size_mb`, is full (SQLITE_FULL).
    #[error("persistent storage is full: {path}: {detail}")]
    Full { path: PathBuf, detail: String },
    /// The file or its folder cannot be created or written (permissions, read-only file
    /// system, I/O error).
    #[error("persistent storage is not writable: {path}: {detail}")]
    Unwritable { path: PathBuf, detail: String },
    /// The file is not a WaspMQ database or is damaged.
    #[error("persistent storage is corrupt: {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// The file was written by a newer WaspMQ with a schema this one does not know.
    #[error("persistent storage {path} has schema version {found}; this broker supports up to {supported}")]
    UnsupportedSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The store's writer has stopped (after a panic or at shutdown).
    #[error("persistent storage {path} is closed")]
    Closed { path: PathBuf },
    /// Anything else SQLite reported.
    #[error("persistent storage error: {path}: {detail}")]
    Other { path: PathBuf, detail: String },
}

impl StoreError {
    /// What the broker answers instead of PUBACK/PUBREC (v5) when a message could not be
    /// stored: 0x97 Quota exceeded when full, 0x80 Unspecified error otherwise.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            StoreError::Full { .. } => ReasonCode::QUOTA_EXCEEDED,
            _ => ReasonCode::UNSPECIFIED_ERROR,
        }
    }
}

/// Counters of a store, for `$SYS` and for tests of group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Batches given to [`Store::commit`] that completed (successfully or not).
    pub commits: u64,
    /// Database transactions run for them (group commit makes this far lower than `commits`
    /// under load).
    pub transactions: u64,
    /// Ops applied successfully.
    pub ops: u64,
    /// Commits that failed.
    pub failures: u64,
}

/// The storage interface. Object safe: the broker holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// Applies `ops` atomically (all or none). The returned [`Commit`] resolves once the batch
    /// is durable per the configured sync policy. The batch is handed to the store when this
    /// is called, not when the `Commit` is first polled, so dropping it does not cancel it.
    fn commit(&self, ops: Vec<Op>) -> Commit;

    /// Everything stored, for start-up restore. Expired sessions, sessions with expiry 0,
    /// expired queued and retained messages, and records of sessions that no longer exist are
    /// left out and deleted. Sessions still marked connected get `disconnected_at = now`.
    /// Blocks the calling thread (call it at start-up, or from `spawn_blocking`).
    fn load(&self, now: SystemTime) -> Result<Snapshot, StoreError>;

    /// Resolves once everything committed so far is on disk, whatever the sync policy (for a
    /// clean shutdown in `periodic` mode).
    fn sync(&self) -> Commit;

    fn stats(&self) -> StoreStats;

    fn save_session(&self, session: StoredSession) -> Commit {
        self.commit(vec![Op::SaveSession(session)])
    }

    fn delete_session(&self, client_id: &str) -> Commit {
        self.commit(vec![Op::DeleteSession {
            client_id: client_id.to_owned(),
        }])
    }

    fn add_subscription(&self, client_id: &str, subscription: StoredSubscription) -> Commit {
        self.commit(vec![Op::AddSubscription {
            client_id: client_id.to_owned(),
            subscription,
        }])
    }

    fn remove_subscription(&self, client_id: &str, filter: &str) -> Commit {
        self.commit(vec![Op::RemoveSubscription {
            client_id: client_id.to_owned(),
            filter: filter.to_owned(),
        }])
    }

    fn set_retained(&self, message: StoredMessage) -> Commit {
        self.commit(vec![Op::SetRetained(message)])
    }

    fn clear_retained(&self, topic: &str) -> Commit {
        self.commit(vec![Op::ClearRetained {
            topic: topic.to_owned(),
        }])
    }

    fn enqueue(&self, client_id: &str, seq: u64, message: StoredMessage) -> Commit {
        self.commit(vec![Op::Enqueue {
            client_id: client_id.to_owned(),
            seq,
            message,
        }])
    }

    fn dequeue(&self, client_id: &str, seq: u64) -> Commit {
        self.commit(vec![Op::Dequeue {
            client_id: client_id.to_owned(),
            seq,
        }])
    }

    fn put_inflight(&self, client_id: &str, entry: StoredInflight) -> Commit {
        self.commit(vec![Op::PutInflight {
            client_id: client_id.to_owned(),
            entry,
        }])
    }

    fn set_inflight_state(&self, client_id: &str, packet_id: u16, state: InflightState) -> Commit {
        self.commit(vec![Op::SetInflightState {
            client_id: client_id.to_owned(),
            packet_id,
            state,
        }])
    }

    fn remove_inflight(&self, client_id: &str, packet_id: u16) -> Commit {
        self.commit(vec![Op::RemoveInflight {
            client_id: client_id.to_owned(),
            packet_id,
        }])
    }

    fn add_inbound_qos2(&self, client_id: &str, packet_id: u16) -> Commit {
        self.commit(vec![Op::AddInboundQos2 {
            client_id: client_id.to_owned(),
            packet_id,
        }])
    }

    fn remove_inbound_qos2(&self, client_id: &str, packet_id: u16) -> Commit {
        self.commit(vec![Op::RemoveInboundQos2 {
            client_id: client_id.to_owned(),
            packet_id,
        }])
    }
}

/// A commit in progress: a future resolving to its outcome. Works on any executor; outside
/// async code use [`Commit::wait`].
#[derive(Debug)]
#[must_use = "a commit must be awaited before the write is acknowledged"]
pub struct Commit {
    state: CommitState,
}

#[derive(Debug)]
enum CommitState {
    Ready(Option<Result<(), StoreError>>),
    Pending {
        rx: oneshot::Receiver<Result<(), StoreError>>,
        path: PathBuf,
    },
}

impl Commit {
    /// An already finished commit.
    pub fn ready(result: Result<(), StoreError>) -> Commit {
        Commit {
            state: CommitState::Ready(Some(result)),
        }
    }

    /// A commit completed later through `tx`; if `tx` is dropped unanswered the commit fails
    /// with [`StoreError::Closed`] naming `path`.
    pub(crate) fn pending(path: PathBuf) -> (oneshot::Sender<Result<(), StoreError>>, Commit) {
        let (tx, rx) = oneshot::channel();
        let commit = Commit {
            state: CommitState::Pending { rx, path },
        };
        (tx, commit)
    }

    /// Blocks the calling thread until the commit completes. Must not be called from inside
    /// an async task (it would stall the executor thread); `.await` the commit there.
    pub fn wait(self) -> Result<(), StoreError> {
        match self.state {
            CommitState::Ready(result) => result.unwrap_or(Ok(())),
            CommitState::Pending { rx, path } => rx
                .blocking_recv()
                .unwrap_or(Err(StoreError::Closed { path })),
        }
    }
}

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            // Polling again after completion yields Ok(()), like a fused future would not;
            // callers await a commit once.
            CommitState::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            CommitState::Pending { rx, path } => match Pin::new(rx).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::Closed { path: path.clone() })),
            },
        }
    }
}
