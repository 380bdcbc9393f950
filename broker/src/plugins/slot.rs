//! One configured plugin in the chain: its settings, the version in service (swapped
//! atomically on hot swap), its failure counters and its restart back-off.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::bindings::{self, HookSet};
use super::version::{Answer, Call, Failure, FailureKind, PluginVersion};
use super::Decision;
use crate::config::{OnError, PluginConfig};
use crate::protocol::ReasonCode;

/// Failures in a row before a plugin is rested (calls answer its `on_error` without running).
const FAILURES_BEFORE_BACKOFF: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Notification hooks get at least this long, whatever `timeout_ms` says: they run off the
/// clients' path and may write to a database.
const EVENT_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// A plugin as the chain holds it.
pub struct PluginSlot {
    pub name: Arc<str>,
    /// The entry as configured (compared on SIGHUP to see whether it changed).
    pub entry: PluginConfig,
    /// The component file, resolved against the config's folder.
    pub path: PathBuf,
    current: ArcSwap<PluginVersion>,
    health: Mutex<Health>,
    pub counters: Counters,
}

#[derive(Default)]
struct Health {
    failures_in_a_row: u32,
    resting_until: Option<Instant>,
}

/// What a plugin has done since it was loaded; read by [`super::Hooks::plugin_status`].
#[derive(Default)]
pub struct Counters {
    pub calls: AtomicU64,
    pub timeouts: AtomicU64,
    pub traps: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub unavailable: AtomicU64,
    /// Calls answered by `on_error` without running because the plugin was resting.
    pub rested: AtomicU64,
    pub swaps: AtomicU64,
    pub swaps_refused: AtomicU64,
}

impl PluginSlot {
    pub fn new(entry: PluginConfig, path: PathBuf, version: PluginVersion) -> PluginSlot {
        PluginSlot {
            name: Arc::from(entry.name.as_str()),
            entry,
            path,
            current: ArcSwap::from_pointee(version),
            health: Mutex::new(Health::default()),
            counters: Counters::default(),
        }
    }

    /// The version in service. Callers keep the `Arc` for the whole call, so a hot swap never
    /// disturbs a call in flight.
    pub fn version(&self) -> Arc<PluginVersion> {
        self.current.load_full()
    }

    /// Whether the version in service asked for `hook` (cheap: no reference count taken).
    pub fn wants(&self, hook: HookSet) -> bool {
        self.current.load().wants(hook)
    }

    /// Whether the version in service wants `authorize-publish` for a PUBLISH to `topic`
    /// (cheap: a filter check, no reference count taken).
    pub fn asks_about_publish(&self, topic: &str) -> bool {
        self.current.load().asks_about_publish(topic)
    }

    /// Puts a new version in service.
    pub fn swap(&self, version: PluginVersion) {
        self.current.store(Arc::new(version));
        *self.health.lock() = Health::default();
        self.counters.swaps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn decision_timeout(&self) -> Duration {
        Duration::from_millis(self.entry.timeout_ms.max(1))
    }

    pub fn event_timeout(&self) -> Duration {
        self.decision_timeout().max(EVENT_TIMEOUT_MIN)
    }

    /// The decision `on_error` gives when this plugin fails.
    pub fn on_error(&self) -> Decision {
        match self.entry.on_error {
            OnError::Deny => Decision::Deny(ReasonCode::UNSPECIFIED_ERROR),
            OnError::Allow => Decision::Allow,
            OnError::Skip => Decision::Defer,
        }
    }

    /// A decision hook's answer from this plugin on `version`, or its `on_error` decision when
    /// the call failed or answered something else.
    pub async fn decide(&self, version: &PluginVersion, call: Call<'_>) -> Decision {
        match self.call(version, call, self.decision_timeout()).await {
            Ok(Answer::Decision(d)) => bindings::decision(d),
            Ok(_) | Err(()) => self.on_error(),
        }
    }

    /// Calls the plugin on `version`, keeping count and resting it after repeated failures.
    /// `Err` means the plugin failed (or is resting): apply [`PluginSlot::on_error`].
    pub async fn call(
        &self,
        version: &PluginVersion,
        call: Call<'_>,
        timeout: Duration,
    ) -> Result<Answer, ()> {
        if self.resting() {
            self.counters.rested.fetch_add(1, Ordering::Relaxed);
            return Err(());
        }
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        match version.call(call, timeout).await {
            Ok(answer) => {
                let mut health = self.health.lock();
                if health.failures_in_a_row > 0 {
                    *health = Health::default();
                }
                Ok(answer)
            }
            Err(failure) => {
                self.failed(failure);
                Err(())
            }
        }
    }

    fn resting(&self) -> bool {
        let health = self.health.lock();
        matches!(health.resting_until, Some(until) if Instant::now() < until)
    }

    fn failed(&self, failure: Failure) {
        let counter = match failure.kind {
            FailureKind::Timeout => &self.counters.timeouts,
            FailureKind::OutOfMemory => &self.counters.out_of_memory,
            FailureKind::Trap => &self.counters.traps,
            FailureKind::Unavailable => &self.counters.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let rest = {
            let mut health = self.health.lock();
            health.failures_in_a_row = health.failures_in_a_row.saturating_add(1);
            let beyond = health
                .failures_in_a_row
                .saturating_sub(FAILURES_BEFORE_BACKOFF);
            if health.failures_in_a_row >= FAILURES_BEFORE_BACKOFF {
                let rest = BACKOFF_BASE
                    .saturating_mul(1u32 << beyond.min(16))
                    .min(BACKOFF_MAX);
                health.resting_until = Some(Instant::now() + rest);
                Some(rest)
            } else {
                None
            }
        };
        tracing::warn!(
            plugin = %self.name,
            kind = failure.kind.as_str(),
            on_error = ?self.entry.on_error,
            "plugin call failed, instance discarded: {:#}",
            failure.error
        );
        if let Some(rest) = rest {
            tracing::warn!(plugin = %self.name, "plugin keeps failing: resting it for {rest:?}");
        }
    }
}
