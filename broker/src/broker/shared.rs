//! [`Broker`]: the cheap-to-clone handle to everything connections share — the config, the
//! subscription tree, the retained store, the session registry, the plugin hooks, the
//! persistent store and the counters. Each part does its own fine-grained locking; there is no broker-wide lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::sessions::SessionRegistry;
use super::stats::Stats;
use crate::config::Config;
use crate::persistence::{MemoryStore, Store};
use crate::plugins::Hooks;
use crate::routing::{RetainedStore, SubscriptionTree};
use crate::session::{Message, SessionLimits};

/// The running broker's shared state. Clones share it.
#[derive(Clone)]
pub struct Broker {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: Config,
    pub limits: SessionLimits,
    pub tree: SubscriptionTree,
    pub retained: RetainedStore<Arc<Message>>,
    pub sessions: SessionRegistry,
    pub hooks: Hooks,
    pub stats: Stats,
    /// Where persistent sessions and retained messages are written.
    pub store: Arc<dyn Store>,
    /// Whether anything is written to `store` (false: persistence off, nothing is built).
    pub durable: bool,
    /// The next sequence number of a queued record in `store`.
    pub next_seq: AtomicU64,
    pub started: Instant,
    /// Flipped to `true` once, when the broker shuts down; every connection watches it.
    pub shutdown: watch::Sender<bool>,
    next_connection: AtomicU64,
}

impl Broker {
    /// The shared state for `config`, with no listener bound yet (see [`Broker::start`]),
    /// keeping everything in memory.
    pub fn new(config: Config, hooks: Hooks) -> Broker {
        Broker::build(config, hooks, Arc::new(MemoryStore::new()), false)
    }

    /// The shared state for `config`, writing persistent sessions and retained messages to
    /// `store` (with nothing restored from it yet).
    pub fn with_store(config: Config, hooks: Hooks, store: Arc<dyn Store>) -> Broker {
        Broker::build(config, hooks, store, true)
    }

    fn build(config: Config, hooks: Hooks, store: Arc<dyn Store>, durable: bool) -> Broker {
        let (shutdown, _) = watch::channel(false);
        let tree = SubscriptionTree::new();
        Broker {
            shared: Arc::new(Shared {
                limits: SessionLimits::from_config(&config.limits),
                config,
                sessions: SessionRegistry::new(tree.clone()),
                tree,
                retained: RetainedStore::new(),
                hooks,
                stats: Stats::default(),
                store,
                durable,
                next_seq: AtomicU64::new(1),
                started: Instant::now(),
                shutdown,
                next_connection: AtomicU64::new(1),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn hooks(&self) -> &Hooks {
        &self.shared.hooks
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Subscriptions held in the subscription tree.
    pub fn subscription_count(&self) -> usize {
        self.shared.tree.len()
    }

    /// Retained messages held.
    pub fn retained_count(&self) -> usize {
        self.shared.retained.len()
    }

    /// Sessions held, online or offline.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.len()
    }

    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    pub fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.shared.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Becomes `true` when the broker shuts down (for background tasks such as `$SYS`).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }
}
