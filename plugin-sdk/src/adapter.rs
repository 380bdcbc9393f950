//! Bridges the friendly [`Plugin`] trait to the generated guest traits: one plugin value lives
//! in the instance (set by `init`), and each exported hook borrows it.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::exports::waspmq::plugin::{
    authn, authz, enhanced_authn, events, lifecycle, message,
};
use crate::bindings::waspmq::plugin::types::{ClientInfo, Decision, Qos};
use crate::Hooks;
use crate::{AuthStep, Config, Verdict};

/// A plugin. Every hook has a default that leaves the decision to others; implement the ones
/// you list in [`export_plugin!`](crate::export_plugin).
pub trait Plugin: Sized + 'static {
    /// Builds the plugin from its `[plugins.config]` table. An error refuses the plugin.
    fn init(config: Config) -> Result<Self, String>;

    /// Topic filters whose PUBLISH messages go to [`Plugin::on_publish`].
    fn message_filters(&self) -> Vec<String> {
        Vec::new()
    }

    /// Topic filters whose PUBLISHes go to [`Plugin::authorize_publish`]. The broker matches
    /// the topic itself and only calls the plugin on a match (a PUBLISH it is not asked about
    /// counts as [`Decision::Defer`]), so a plugin that guards a few topics costs nothing on
    /// the others. Empty (the default): every PUBLISH is asked about.
    fn authorize_publish_filters(&self) -> Vec<String> {
        Vec::new()
    }

    fn authenticate(&self, client: &ClientInfo, password: Option<&[u8]>) -> Decision {
        let _ = (client, password);
        Decision::Defer
    }

    /// MQTT 5 enhanced authentication: the client named `method` in CONNECT (`reauth` false)
    /// or sent AUTH 0x19 after CONNACK (`reauth` true). Answer [`AuthStep::Defer`] for a method
    /// this plugin does not implement.
    fn auth_start(
        &self,
        client: &ClientInfo,
        method: &str,
        data: Option<&[u8]>,
        reauth: bool,
    ) -> AuthStep {
        let _ = (client, method, data, reauth);
        AuthStep::Defer
    }

    /// The client answered this plugin's challenge; `state` is the one the challenge asked the
    /// broker to keep (instances are pooled: keep no per-client state in the plugin).
    fn auth_continue(
        &self,
        client: &ClientInfo,
        method: &str,
        data: Option<&[u8]>,
        state: &[u8],
    ) -> AuthStep {
        let _ = (client, method, data, state);
        AuthStep::Defer
    }

    fn authorize_publish(
        &self,
        client: &ClientInfo,
        topic: &str,
        qos: Qos,
        retain: bool,
    ) -> Decision {
        let _ = (client, topic, qos, retain);
        Decision::Defer
    }

    fn authorize_subscribe(&self, client: &ClientInfo, filter: &str, qos: Qos) -> Decision {
        let _ = (client, filter, qos);
        Decision::Defer
    }

    fn on_publish(
        &self,
        client: &ClientInfo,
        topic: &str,
        payload: Vec<u8>,
        qos: Qos,
        retain: bool,
    ) -> Verdict {
        let _ = (client, topic, payload, qos, retain);
        Verdict::Pass
    }

    fn connected(&self, client: &ClientInfo) {
        let _ = client;
    }

    fn disconnected(&self, client: &ClientInfo, reason: &str) {
        let _ = (client, reason);
    }

    fn subscribed(&self, client: &ClientInfo, filter: &str, qos: Qos) {
        let _ = (client, filter, qos);
    }

    fn unsubscribed(&self, client: &ClientInfo, filter: &str) {
        let _ = (client, filter);
    }

    fn session_expired(&self, client_id: &str) {
        let _ = client_id;
    }
}

/// Filled in by `export_plugin!` from the plugin crate's manifest and hook list.
#[doc(hidden)]
pub trait Described {
    const NAME: &'static str;
    const VERSION: &'static str;
    const HOOKS: Hooks;
}

/// The type `export_plugin!` exports: implements the generated traits for any [`Plugin`].
#[doc(hidden)]
pub struct Adapter<P>(PhantomData<P>);

thread_local! {
    // A component instance is single-threaded; `init` runs before any hook.
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_plugin<P: Plugin, R>(default: R, f: impl FnOnce(&P) -> R) -> R {
    PLUGIN.with(|cell| {
        let slot = cell.borrow();
        match slot.as_ref().and_then(|p| p.downcast_ref::<P>()) {
            Some(plugin) => f(plugin),
            // Only reachable if the host calls a hook before `init`: do nothing harmful.
            None => default,
        }
    })
}

impl<P: Plugin + Described> lifecycle::Guest for Adapter<P> {
    fn init(config: String) -> Result<lifecycle::PluginInfo, String> {
        let config = Config::parse(&config)?;
        let plugin = P::init(config)?;
        let info = lifecycle::PluginInfo {
            name: P::NAME.to_owned(),
            version: P::VERSION.to_owned(),
            hooks: P::HOOKS,
            message_filters: plugin.message_filters(),
            authorize_publish_filters: plugin.authorize_publish_filters(),
        };
        PLUGIN.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
        Ok(info)
    }
}

impl<P: Plugin + Described> authn::Guest for Adapter<P> {
    fn authenticate(client: ClientInfo, password: Option<Vec<u8>>) -> Decision {
        with_plugin::<P, _>(Decision::Defer, |p| {
            p.authenticate(&client, password.as_deref())
        })
    }
}

impl<P: Plugin + Described> enhanced_authn::Guest for Adapter<P> {
    fn auth_start(
        client: ClientInfo,
        method: String,
        data: Option<Vec<u8>>,
        reauth: bool,
    ) -> AuthStep {
        with_plugin::<P, _>(AuthStep::Defer, |p| {
            p.auth_start(&client, &method, data.as_deref(), reauth)
        })
    }

    fn auth_continue(
        client: ClientInfo,
        method: String,
        data: Option<Vec<u8>>,
        state: Vec<u8>,
    ) -> AuthStep {
        with_plugin::<P, _>(AuthStep::Defer, |p| {
            p.auth_continue(&client, &method, data.as_deref(), &state)
        })
    }
}

impl<P: Plugin + Described> authz::Guest for Adapter<P> {
    fn authorize_publish(client: ClientInfo, topic: String, qos: Qos, retain: bool) -> Decision {
        with_plugin::<P, _>(Decision::Defer, |p| {
            p.authorize_publish(&client, &topic, qos, retain)
        })
    }

    fn authorize_subscribe(client: ClientInfo, filter: String, qos: Qos) -> Decision {
        with_plugin::<P, _>(Decision::Defer, |p| {
            p.authorize_subscribe(&client, &filter, qos)
        })
    }
}

impl<P: Plugin + Described> message::Guest for Adapter<P> {
    fn on_publish(
        client: ClientInfo,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
        retain: bool,
    ) -> Verdict {
        with_plugin::<P, _>(Verdict::Pass, |p| {
            p.on_publish(&client, &topic, payload, qos, retain)
        })
    }
}

impl<P: Plugin + Described> events::Guest for Adapter<P> {
    fn connected(client: ClientInfo) {
        with_plugin::<P, _>((), |p| p.connected(&client))
    }

    fn disconnected(client: ClientInfo, reason: String) {
        with_plugin::<P, _>((), |p| p.disconnected(&client, &reason))
    }

    fn subscribed(client: ClientInfo, filter: String, qos: Qos) {
        with_plugin::<P, _>((), |p| p.subscribed(&client, &filter, qos))
    }

    fn unsubscribed(client: ClientInfo, filter: String) {
        with_plugin::<P, _>((), |p| p.unsubscribed(&client, &filter))
    }

    fn session_expired(client_id: String) {
        with_plugin::<P, _>((), |p| p.session_expired(&client_id))
    }
}
