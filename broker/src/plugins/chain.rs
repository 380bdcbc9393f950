//! The ordered plugin chain: asks the plugins in config order, queues notifications for a
//! background task, and replaces plugins on hot swap and SIGHUP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::bindings::{self, wit, HookSet};
use super::loader::{same_entry, smoke_test, watch_dirs, LoadContext};
use super::slot::PluginSlot;
use super::version::{Answer, Call};
use super::watch::PluginWatcher;
use super::{ClientInfo, Decision, MessageVerdict};
use crate::config::Config;

/// Notifications waiting for the plugins; beyond this they are dropped (and counted).
const EVENT_QUEUE: usize = 4096;
/// Largest payload handed to a message hook; a bigger PUBLISH gets the plugin's `on_error`.
pub const MAX_PLUGIN_PAYLOAD: usize = 256 * 1024;

pub struct Chain {
    loader: LoadContext,
    slots: ArcSwap<Vec<Arc<PluginSlot>>>,
    events: mpsc::Sender<Event>,
    pub dropped_events: AtomicU64,
    watcher: parking_lot::Mutex<Option<PluginWatcher>>,
    /// Serialises hot swaps and reloads.
    reloading: tokio::sync::Mutex<()>,
}

/// A queued notification.
pub enum Event {
    Connected(wit::ClientInfo),
    Disconnected(wit::ClientInfo, String),
    Subscribed(wit::ClientInfo, String, wit::Qos),
    Unsubscribed(wit::ClientInfo, String),
    SessionExpired(String),
}

impl Event {
    fn hook(&self) -> HookSet {
        match self {
            Event::Connected(..) => HookSet::CONNECTED,
            Event::Disconnected(..) => HookSet::DISCONNECTED,
            Event::Subscribed(..) => HookSet::SUBSCRIBED,
            Event::Unsubscribed(..) => HookSet::UNSUBSCRIBED,
            Event::SessionExpired(..) => HookSet::SESSION_EXPIRED,
        }
    }

    fn call(&self) -> Call<'_> {
        match self {
            Event::Connected(client) => Call::Connected { client },
            Event::Disconnected(client, reason) => Call::Disconnected { client, reason },
            Event::Subscribed(client, filter, qos) => Call::Subscribed {
                client,
                filter,
                qos: *qos,
            },
            Event::Unsubscribed(client, filter) => Call::Unsubscribed { client, filter },
            Event::SessionExpired(client_id) => Call::SessionExpired { client_id },
        }
    }
}

impl Chain {
    /// Loads every configured plugin and starts the notification task and the file watcher.
    pub async fn start(config: &Config) -> anyhow::Result<Arc<Chain>> {
        let engine = super::engine::new_engine()?;
        let loader = LoadContext::new(engine, config);
        let slots = load_slots(&loader, config, &[]).await?;
        let (events, queue) = mpsc::channel(EVENT_QUEUE);
        let chain = Arc::new(Chain {
            loader,
            slots: ArcSwap::from_pointee(slots),
            events,
            dropped_events: AtomicU64::new(0),
            watcher: parking_lot::Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(deliver_events(Arc::downgrade(&chain), queue));
        chain.start_watching();
        Ok(chain)
    }

    pub fn slots(&self) -> Arc<Vec<Arc<PluginSlot>>> {
        self.slots.load_full()
    }

    /// SIGHUP: re-reads the plugin list; unchanged entries keep their loaded version.
    pub async fn reload(&self, config: &Config) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let mut loader = self.loader.clone();
        loader.allow_anonymous = config.auth.allow_anonymous;
        loader.base_dir = config.base_dir.clone();
        let old = self.slots.load_full();
        let slots = load_slots(&loader, config, &old).await?;
        self.slots.store(Arc::new(slots));
        self.rewatch();
        tracing::info!(plugins = self.slots.load().len(), "plugin list reloaded");
        Ok(())
    }

    /// Watches the folders of the current plugin files.
    fn rewatch(self: &Chain) {
        let slots = self.slots.load_full();
        let files: Vec<&std::path::Path> = slots.iter().map(|s| s.path.as_path()).collect();
        let dirs = watch_dirs(files.iter().copied());
        let mut watcher = self.watcher.lock();
        match watcher.as_mut() {
            Some(w) => w.watch(&files, &dirs),
            None => tracing::debug!("plugin watcher not started yet"),
        }
    }

    /// Installs the watcher (needs the chain's `Arc` for the swap task).
    pub fn start_watching(self: &Arc<Chain>) {
        match PluginWatcher::start(Arc::downgrade(self)) {
            Ok(w) => *self.watcher.lock() = Some(w),
            Err(e) => tracing::warn!("plugin hot swap disabled: cannot watch files: {e:#}"),
        }
        self.rewatch();
    }

    /// A plugin file may have changed: load each changed file as a new version, smoke-test it
    /// and swap it in; a version that fails leaves the old one serving.
    pub async fn check_files(&self) {
        let _one_at_a_time = self.reloading.lock().await;
        for slot in self.slots.load_full().iter() {
            let bytes = match tokio::fs::read(&slot.path).await {
                Ok(bytes) => bytes,
                // Mid-deploy (deleted before the new one is renamed in): wait for the next event.
                Err(_) => continue,
            };
            let hash = super::engine::content_hash(&bytes);
            if hash == slot.version().spec.hash {
                continue;
            }
            tracing::info!(plugin = %slot.name, path = %slot.path.display(), "plugin file changed: loading the new version");
            let loaded = match self.loader.load_bytes(&slot.entry, bytes).await {
                Ok(version) => match smoke_test(&version, &slot.entry).await {
                    Ok(()) => Ok(version),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match loaded {
                Ok(version) => {
                    tracing::info!(plugin = %slot.name, version = %version.info.version, hash = %hash.get(..12).unwrap_or(&hash), "plugin swapped");
                    slot.swap(version);
                }
                Err(e) => {
                    slot.counters.swaps_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(plugin = %slot.name, "new plugin version refused, the old one keeps serving: {e:#}");
                }
            }
        }
    }

    /// Asks the plugins that declared `hook`, in order; the first that does not defer decides.
    pub async fn decide(&self, hook: HookSet, call: Call<'_>) -> Decision {
        let slots = self.slots.load();
        for slot in slots.iter() {
            if !slot.wants(hook) {
                continue;
            }
            let version = slot.version();
            let decision = slot.decide(&version, call).await;
            if decision != Decision::Defer {
                return decision;
            }
        }
        Decision::Defer
    }

    /// Whether some plugin wants `authorize-publish` for a PUBLISH to `topic` (no call made).
    pub fn asks_about_publish(&self, topic: &str) -> bool {
        self.slots
            .load()
            .iter()
            .any(|slot| slot.asks_about_publish(topic))
    }

    /// `authorize-publish`: asks, in order, only the plugins whose declared filters match
    /// `topic`; the first that does not defer decides. The client's contract form is built
    /// only when some plugin is actually called, so a PUBLISH no plugin asked about costs a
    /// filter check per plugin and no allocation.
    pub async fn authorize_publish(
        &self,
        client: &ClientInfo,
        topic: &str,
        qos: wit::Qos,
        retain: bool,
    ) -> Decision {
        let slots = self.slots.load();
        let mut converted: Option<wit::ClientInfo> = None;
        for slot in slots.iter() {
            if !slot.asks_about_publish(topic) {
                continue;
            }
            let version = slot.version();
            // A hot swap between the check and here may have changed the filters.
            if !version.asks_about_publish(topic) {
                continue;
            }
            let client = converted.get_or_insert_with(|| wit::ClientInfo::from(client));
            let call = Call::AuthorizePublish {
                client,
                topic,
                qos,
                retain,
            };
            let decision = slot.decide(&version, call).await;
            if decision != Decision::Defer {
                return decision;
            }
        }
        Decision::Defer
    }

    pub fn has_message_hooks(&self) -> bool {
        self.slots.load().iter().any(|s| s.wants(HookSet::MESSAGE))
    }

    /// Runs the message hooks whose filters match, each seeing the previous one's rewrite.
    pub async fn on_message(
        &self,
        client: &wit::ClientInfo,
        topic: &str,
        payload: &Bytes,
        qos: wit::Qos,
        retain: bool,
    ) -> MessageVerdict {
        let slots = self.slots.load();
        let mut rewritten: Option<(String, Bytes)> = None;
        for slot in slots.iter() {
            let version = slot.version();
            if !version.wants(HookSet::MESSAGE) {
                continue;
            }
            let (cur_topic, cur_payload) = match &rewritten {
                Some((t, p)) => (t.as_str(), p),
                None => (topic, payload),
            };
            if !version
                .info
                .message_filters
                .iter()
                .any(|f| topic_matches(f, cur_topic))
            {
                continue;
            }
            let answer = if cur_payload.len() > MAX_PLUGIN_PAYLOAD {
                tracing::debug!(plugin = %slot.name, "payload too large for the message hook");
                Err(())
            } else {
                let call = Call::Message {
                    client,
                    topic: cur_topic,
                    payload: cur_payload,
                    qos,
                    retain,
                };
                slot.call(&version, call, slot.decision_timeout()).await
            };
            match answer {
                Ok(Answer::Verdict(v)) => match bindings::verdict(v) {
                    MessageVerdict::Pass => {}
                    MessageVerdict::Drop => return MessageVerdict::Drop,
                    MessageVerdict::Rewrite { topic, payload } => {
                        rewritten = Some((topic, payload))
                    }
                },
                Ok(_) | Err(()) => {
                    if let Decision::Deny(_) = slot.on_error() {
                        return MessageVerdict::Drop;
                    }
                }
            }
        }
        match rewritten {
            Some((topic, payload)) => MessageVerdict::Rewrite { topic, payload },
            None => MessageVerdict::Pass,
        }
    }

    /// Queues a notification if a plugin wants it; never waits. A full queue drops it and
    /// counts the drop. `event` is only built when some plugin wants `hook`.
    pub fn notify(&self, hook: HookSet, event: impl FnOnce() -> Event) {
        if !self.slots.load().iter().any(|s| s.wants(hook)) {
            return;
        }
        if self.events.try_send(event()).is_err() {
            let dropped = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "plugin notification queue full: notifications dropped"
                );
            }
        }
    }
}

/// The background task that hands queued notifications to the plugins, in order.
async fn deliver_events(chain: Weak<Chain>, mut queue: mpsc::Receiver<Event>) {
    while let Some(event) = queue.recv().await {
        let Some(chain) = chain.upgrade() else { return };
        let hook = event.hook();
        for slot in chain.slots().iter() {
            let version = slot.version();
            if version.wants(hook) {
                // Failures are logged and counted by the slot; events have no decision.
                let _ = slot
                    .call(&version, event.call(), slot.event_timeout())
                    .await;
            }
        }
    }
}

/// Loads the configured list, reusing `old` slots whose entry and file are unchanged.
async fn load_slots(
    loader: &LoadContext,
    config: &Config,
    old: &[Arc<PluginSlot>],
) -> anyhow::Result<Vec<Arc<PluginSlot>>> {
    let mut slots = Vec::with_capacity(config.plugins.len());
    for entry in &config.plugins {
        let path = loader.resolve(entry);
        let reusable = old
            .iter()
            .find(|s| same_entry(&s.entry, entry) && s.path == path);
        if let Some(slot) = reusable {
            let unchanged = match tokio::fs::read(&path).await {
                Ok(bytes) => super::engine::content_hash(&bytes) == slot.version().spec.hash,
                Err(_) => false,
            };
            if unchanged {
                slots.push(slot.clone());
                continue;
            }
        }
        match loader.load(entry).await {
            Ok(version) => {
                tracing::info!(
                    plugin = %entry.name,
                    version = %version.info.version,
                    hooks = ?version.info.hooks,
                    "plugin loaded"
                );
                slots.push(Arc::new(PluginSlot::new(entry.clone(), path, version)));
            }
            Err(e) if entry.required => {
                return Err(e.context(format!("required plugin `{}` failed to load", entry.name)));
            }
            Err(e) => tracing::error!(plugin = %entry.name, "plugin not loaded: {e:#}"),
        }
    }
    Ok(slots)
}

/// MQTT topic filter matching (`+` one level, `#` the rest; `$` topics never match a
/// leading wildcard [MQTT-4.7.2-1]).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// How long the watcher waits for a burst of file events to settle before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn message_filters_match_per_mqtt_4_7_1() {
        assert!(topic_matches("sensors/#", "sensors"));
        assert!(topic_matches("sensors/#", "sensors/a/b"));
        assert!(topic_matches("sensors/+/t", "sensors/a/t"));
        assert!(!topic_matches("sensors/+/t", "sensors/a/b/t"));
        assert!(!topic_matches("sensors/a", "sensors/a/b"));
        assert!(topic_matches("#", "anything"));
    }

    #[test]
    fn dollar_topics_do_not_match_leading_wildcards_mqtt_4_7_2_1() {
        assert!(!topic_matches("#", "$SYS/uptime"));
        assert!(!topic_matches("+/uptime", "$SYS/uptime"));
        assert!(topic_matches("$SYS/#", "$SYS/uptime"));
    }
}
