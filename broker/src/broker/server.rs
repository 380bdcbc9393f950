//! Starting and stopping the broker: bind every configured listener, run one accept loop per
//! listener (each connection gets its own task), and shut down gracefully — stop accepting,
//! tell every connection to close (v5 clients get DISCONNECT 0x8B), and wait for them.
//! With persistence on, the store is opened and its contents restored before any listener
//! is bound, and everything is flushed to disk at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::connection;
use super::shared::Broker;
use crate::config::{Config, ListenerType};
use crate::plugins::Hooks;
use crate::transport::Listener;

/// How long shutdown waits for connections to finish closing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often expired retained messages are swept out.
const RETAINED_SWEEP: Duration = Duration::from_secs(60);

/// A started broker: its shared state, its listeners and the tasks serving them.
pub struct RunningBroker {
    pub broker: Broker,
    /// Every listener bound: name, type, and the address actually bound (port 0 resolved).
    pub listeners: Vec<(String, ListenerType, SocketAddr)>,
    bound: Vec<Arc<Listener>>,
    accept_loops: Vec<JoinHandle<()>>,
    /// Yields `None` once every connection task (each holds a sender) has ended.
    connections_done: mpsc::Receiver<()>,
}

impl Broker {
    /// Opens the persistent store (`[persistence] enabled`) and restores what it holds, then
    /// binds every listener in `config.listeners` and starts serving. A store that cannot be
    /// opened (unwritable, corrupt) or a listener that cannot be bound is an error naming it.
    pub async fn start(config: Config, hooks: Hooks) -> anyhow::Result<RunningBroker> {
        let broker = if config.persistence.enabled {
            let store = crate::persistence::open(&config.persistence, &config.base_dir)
                .context("opening persistent storage")?;
            let now = std::time::SystemTime::now();
            let loading = store.clone();
            let snapshot = tokio::task::spawn_blocking(move || loading.load(now))
                .await
                .context("loading persistent storage")?
                .context("loading persistent storage")?;
            let broker = Broker::with_store(config, hooks, store);
            broker.restore(snapshot, now);
            broker
        } else {
            Broker::new(config, hooks)
        };
        let config = broker.config();
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for (name, listener_config) in &config.listeners {
            let listener = Listener::bind(name, listener_config, &config.base_dir)
                .await
                .with_context(|| format!("starting listener {name}"))?;
            let addr = listener
                .local_addr()
                .with_context(|| format!("listener {name}: reading its bound address"))?;
            info!(
                "Listener {name} ({}) listening on {addr}",
                listener.kind().as_str()
            );
            listeners.push((name.clone(), listener.kind(), addr));
            bound.push(Arc::new(listener));
        }
        let (done_tx, connections_done) = mpsc::channel(1);
        let accept_loops = bound
            .iter()
            .map(|listener| {
                tokio::spawn(accept_loop(
                    broker.clone(),
                    listener.clone(),
                    done_tx.clone(),
                ))
            })
            .collect();
        tokio::spawn(sweep_expired_retained(broker.clone()));
        info!("WaspMQ {} started", Broker::version());
        Ok(RunningBroker {
            broker,
            listeners,
            bound,
            accept_loops,
            connections_done,
        })
    }
}

async fn accept_loop(broker: Broker, listener: Arc<Listener>, done: mpsc::Sender<()>) {
    let mut shutdown = broker.shutdown_signal();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            incoming = listener.accept() => match incoming {
                Ok(incoming) => {
                    tokio::spawn(connection::serve(broker.clone(), incoming, done.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    warn!("listener {}: accept failed: {e}", listener.name());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Drops retained messages whose Message Expiry Interval has passed, once a minute, so they
/// stop counting (they are already never delivered once expired).
async fn sweep_expired_retained(broker: Broker) {
    let mut shutdown = broker.shutdown_signal();
    let mut tick = tokio::time::interval(RETAINED_SWEEP);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let now = std::time::Instant::now();
                broker
                    .shared
                    .retained
                    .retain_where(|_, message| !message.is_expired(now));
            }
        }
    }
}

impl RunningBroker {
    /// The bound listeners, e.g. to reload their certificates on SIGHUP.
    pub fn bound_listeners(&self) -> &[Arc<Listener>] {
        &self.bound
    }

    /// The address of the listener called `name`.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, addr)| *addr)
    }

    /// Stops accepting, closes every connection (v5: DISCONNECT 0x8B; wills are published as
    /// for any connection the server closes) and waits for them, at most a few seconds.
    pub async fn shutdown(mut self) {
        info!("WaspMQ shutting down");
        self.broker.shared.shutdown.send_replace(true);
        // Connections look at the signal when woken (connection.rs).
        self.broker.shared.sessions.wake_connections();
        for task in self.accept_loops.drain(..) {
            let _ = task.await;
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, self.connections_done.recv())
            .await
            .is_err()
        {
            warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
        }
        if self.broker.durable() {
            if let Err(e) = self.broker.store().sync().await {
                warn!("flushing persistent storage: {e}");
            }
        }
        info!("WaspMQ stopped");
    }
}
