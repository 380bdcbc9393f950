//! The plugin host: the only way the broker calls plugins is through [`Hooks`], a cheap handle
//! the connection tasks hold. With no plugins configured every call returns at once with
//! [`Decision::Defer`], so the broker's own defaults apply.
//!
//! Inside: `bindings` (the WIT contract), `engine` (wasmtime engine, epoch ticker, compile
//! cache), `host` (capabilities a plugin imports), `wasi` (the deny-by-default WASI 0.2 that
//! other languages' runtimes import), `sqlite` (granted databases), `kv` (granted buckets),
//! `filters` (a plugin's declared `authorize-publish-filters`, compiled),
//! `version` (a loaded component and its warm instances), `slot` (one configured plugin: swap,
//! failures, back-off), `loader` (entry -> version), `chain` (the ordered chain and
//! notifications), `enhanced` (MQTT 5 enhanced authentication exchanges) and `watch` (hot
//! swap on file change).

mod bindings;
mod chain;
mod engine;
mod enhanced;
mod filters;
mod host;
mod kv;
mod loader;
mod slot;
mod sqlite;
mod version;
mod wasi;
mod watch;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

pub use self::enhanced::{AuthExchange, AuthStep, MAX_AUTH_DATA};

use self::bindings::{wit, HookSet};
use self::chain::{Chain, Event};
use self::version::Call;
use crate::config::Config;
use crate::protocol::{ProtocolVersion, QoS, ReasonCode};

/// Who a hook is about: the connected client as the broker knows it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: Arc<str>,
    pub username: Option<Arc<str>>,
    pub peer: Option<SocketAddr>,
    /// The listener's name from the config (`default`, `ws`, ...).
    pub listener: Arc<str>,
    pub protocol: ProtocolVersion,
}

/// A decision hook's answer. Plugins are asked in config order; the first that does not defer
/// decides; if all defer, the broker's default applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refuse, with the MQTT 5 reason code (mapped to a 3.1.1 return code where one exists).
    Deny(ReasonCode),
    Defer,
}

/// What the message hooks did to a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageVerdict {
    /// Route it unchanged.
    Pass,
    /// Route it with a new topic and/or payload.
    Rewrite { topic: String, payload: Bytes },
    /// Drop it (it is still acknowledged to the publisher).
    Drop,
}

/// The plugin chain as the broker sees it.
#[derive(Clone, Default)]
pub struct Hooks {
    chain: Option<Arc<Chain>>,
}

/// One plugin's state and counters, for `$SYS` and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    pub name: String,
    /// The version the plugin reported from `init`.
    pub version: String,
    /// SHA-256 of the component file in service.
    pub hash: String,
    pub calls: u64,
    pub timeouts: u64,
    pub traps: u64,
    pub out_of_memory: u64,
    /// Calls that found no instance (instantiation or `init` failed).
    pub unavailable: u64,
    /// Calls answered by `on_error` while the plugin rested after repeated failures.
    pub rested: u64,
    pub swaps: u64,
    pub swaps_refused: u64,
}

impl Hooks {
    /// No plugins: every decision defers to the broker's default.
    pub fn none() -> Hooks {
        Hooks::default()
    }

    /// Loads the `[[plugins]]` chain of `config` (paths relative to `config.base_dir`) and
    /// starts watching the plugin files for hot swap. A `required` plugin that fails to load
    /// is an error; any other is logged and left out. Each plugin's config gets the broker's
    /// `[auth] allow_anonymous` as `allow_anonymous` unless it sets that key itself.
    pub async fn load(config: &Config) -> anyhow::Result<Hooks> {
        // A chain even without plugins, so SIGHUP can add some later.
        Ok(Hooks {
            chain: Some(Chain::start(config).await?),
        })
    }

    /// SIGHUP: re-reads the plugin list. Entries whose settings and file are unchanged keep
    /// their running version; on error (a `required` plugin fails) the old chain stays.
    /// (`Hooks::none()` has no chain to reload: it refuses a list with plugins.)
    pub async fn reload(&self, config: &Config) -> anyhow::Result<()> {
        match &self.chain {
            Some(chain) => chain.reload(config).await,
            None if config.plugins.is_empty() => Ok(()),
            None => anyhow::bail!("these hooks were made with Hooks::none(): use Hooks::load"),
        }
    }

    /// The loaded plugins, in chain order, with their counters.
    pub fn plugin_status(&self) -> Vec<PluginStatus> {
        let Some(chain) = &self.chain else {
            return Vec::new();
        };
        chain
            .slots()
            .iter()
            .map(|slot| {
                let version = slot.version();
                let c = &slot.counters;
                PluginStatus {
                    name: slot.name.to_string(),
                    version: version.info.version.clone(),
                    hash: version.spec.hash.clone(),
                    calls: c.calls.load(Ordering::Relaxed),
                    timeouts: c.timeouts.load(Ordering::Relaxed),
                    traps: c.traps.load(Ordering::Relaxed),
                    out_of_memory: c.out_of_memory.load(Ordering::Relaxed),
                    unavailable: c.unavailable.load(Ordering::Relaxed),
                    rested: c.rested.load(Ordering::Relaxed),
                    swaps: c.swaps.load(Ordering::Relaxed),
                    swaps_refused: c.swaps_refused.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Notifications dropped because the queue was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.chain
            .as_ref()
            .map_or(0, |c| c.dropped_events.load(Ordering::Relaxed))
    }

    /// CONNECT: may this client in, with these credentials?
    /// `Defer` when every plugin defers: the broker's default then applies (clients without a
    /// username per `[auth] allow_anonymous`, others allowed).
    pub async fn authenticate(&self, client: &ClientInfo, password: Option<&Bytes>) -> Decision {
        let Some(chain) = &self.chain else {
            return Decision::Defer;
        };
        let client = wit::ClientInfo::from(client);
        let password = password.map(|p| p.as_ref());
        chain
            .decide(
                HookSet::AUTHENTICATE,
                Call::Authenticate {
                    client: &client,
                    password,
                },
            )
            .await
    }

    /// May this client publish to `topic`? `Defer` when every plugin defers (allowed). Only
    /// the plugins whose `authorize-publish-filters` match `topic` are asked.
    pub async fn authorize_publish(
        &self,
        client: &ClientInfo,
        topic: &str,
        qos: QoS,
        retain: bool,
    ) -> Decision {
        let Some(chain) = &self.chain else {
            return Decision::Defer;
        };
        if !chain.asks_about_publish(topic) {
            return Decision::Defer;
        }
        // Boxed: the call's future holds a Wasm call's state; boxing keeps it out of the
        // connection task's future, so the common case above stays small and allocation-free.
        Box::pin(chain.authorize_publish(client, topic, qos.into(), retain)).await
    }

    /// May this client subscribe to `filter`? `Defer` when every plugin defers (allowed).
    pub async fn authorize_subscribe(
        &self,
        client: &ClientInfo,
        filter: &str,
        qos: QoS,
    ) -> Decision {
        let Some(chain) = &self.chain else {
            return Decision::Defer;
        };
        let client = wit::ClientInfo::from(client);
        let call = Call::AuthorizeSubscribe {
            client: &client,
            filter,
            qos: qos.into(),
        };
        chain.decide(HookSet::AUTHORIZE_SUBSCRIBE, call).await
    }

    /// Whether any plugin wants to see PUBLISH messages at all (the fast path skips the call).
    pub fn has_message_hooks(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.has_message_hooks())
    }

    /// Inspect, rewrite or drop a PUBLISH before it is routed.
    pub async fn on_message(
        &self,
        client: &ClientInfo,
        topic: &str,
        payload: &Bytes,
        qos: QoS,
        retain: bool,
    ) -> MessageVerdict {
        let Some(chain) = &self.chain else {
            return MessageVerdict::Pass;
        };
        let client = wit::ClientInfo::from(client);
        chain
            .on_message(&client, topic, payload, qos.into(), retain)
            .await
    }

    /// Notifications: queued, never delay the client.
    pub fn connected(&self, client: &ClientInfo) {
        if let Some(chain) = &self.chain {
            chain.notify(HookSet::CONNECTED, || Event::Connected(client.into()));
        }
    }

    pub fn disconnected(&self, client: &ClientInfo, reason: &str) {
        if let Some(chain) = &self.chain {
            chain.notify(HookSet::DISCONNECTED, || {
                Event::Disconnected(client.into(), reason.to_owned())
            });
        }
    }

    pub fn subscribed(&self, client: &ClientInfo, filter: &str, qos: QoS) {
        if let Some(chain) = &self.chain {
            chain.notify(HookSet::SUBSCRIBED, || {
                Event::Subscribed(client.into(), filter.to_owned(), qos.into())
            });
        }
    }

    pub fn unsubscribed(&self, client: &ClientInfo, filter: &str) {
        if let Some(chain) = &self.chain {
            chain.notify(HookSet::UNSUBSCRIBED, || {
                Event::Unsubscribed(client.into(), filter.to_owned())
            });
        }
    }

    pub fn session_expired(&self, client_id: &str) {
        if let Some(chain) = &self.chain {
            chain.notify(HookSet::SESSION_EXPIRED, || {
                Event::SessionExpired(client_id.to_owned())
            });
        }
    }
}
