//! The plugin host: the only way the broker calls plugins is through [`Hooks`], a cheap handle
//! the connection tasks hold. With no plugins configured every call returns at once with
//! [`Decision::Defer`], so the broker's own defaults apply.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

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
    // The Wasm plugin chain lands here (see the plugins task).
    _private: (),
}

impl Hooks {
    /// No plugins: every decision defers to the broker's default.
    pub fn none() -> Hooks {
        Hooks::default()
    }

    /// CONNECT: may this client in, with these credentials?
    pub async fn authenticate(&self, client: &ClientInfo, password: Option<&Bytes>) -> Decision {
        let _ = (client, password);
        Decision::Defer
    }

    /// May this client publish to `topic`?
    pub async fn authorize_publish(
        &self,
        client: &ClientInfo,
        topic: &str,
        qos: QoS,
        retain: bool,
    ) -> Decision {
        let _ = (client, topic, qos, retain);
        Decision::Defer
    }

    /// May this client subscribe to `filter`?
    pub async fn authorize_subscribe(
        &self,
        client: &ClientInfo,
        filter: &str,
        qos: QoS,
    ) -> Decision {
        let _ = (client, filter, qos);
        Decision::Defer
    }

    /// Whether any plugin wants to see PUBLISH messages at all (the fast path skips the call).
    pub fn has_message_hooks(&self) -> bool {
        false
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
        let _ = (client, topic, payload, qos, retain);
        MessageVerdict::Pass
    }

    /// Notifications: queued, never delay the client.
    pub fn connected(&self, client: &ClientInfo) {
        let _ = client;
    }

    pub fn disconnected(&self, client: &ClientInfo, reason: &str) {
        let _ = (client, reason);
    }

    pub fn subscribed(&self, client: &ClientInfo, filter: &str, qos: QoS) {
        let _ = (client, filter, qos);
    }

    pub fn unsubscribed(&self, client: &ClientInfo, filter: &str) {
        let _ = (client, filter);
    }

    pub fn session_expired(&self, client_id: &str) {
        let _ = client_id;
    }
}
