//! The Rust SDK for WaspMQ plugins: the guest bindings generated from `wit/`, the friendly
//! [`Plugin`] trait with a default (defer / pass / ignore) for every hook, and the
//! [`export_plugin!`] macro that turns an implementation into a component.
//!
//! ```ignore
//! use waspmq_plugin_sdk::*;
//!
//! struct DenyGuests;
//!
//! impl Plugin for DenyGuests {
//!     fn init(_config: Config) -> Result<Self, String> {
//!         Ok(DenyGuests)
//!     }
//!     fn authenticate(&self, client: &ClientInfo, _password: Option<&[u8]>) -> Decision {
//!         match client.username.as_deref() {
//!             Some("guest") => Decision::Deny(reason::NOT_AUTHORIZED),
//!             _ => Decision::Defer,
//!         }
//!     }
//! }
//!
//! export_plugin!(DenyGuests, hooks = [AUTHENTICATE]);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`.

// The generated export macro names this crate by its external name, also from inside it.
extern crate self as waspmq_plugin_sdk;

#[doc(hidden)]
pub mod adapter;
mod config;
mod host;
pub mod topic;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw bindings generated from `wit/plugin.wit` (world `plugin`).
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "waspmq_plugin_sdk::bindings",
        runtime_path: "waspmq_plugin_sdk::__wit_bindgen::rt",
        bitflags_path: "waspmq_plugin_sdk::__wit_bindgen::rt::bitflags",
        additional_derives: [PartialEq],
        generate_all,
    });
}

pub use adapter::{Adapter, Plugin};
pub use bindings::exports::waspmq::plugin::lifecycle::Hooks;
pub use bindings::waspmq::plugin::types::{ClientInfo, Decision, Level, Qos};
pub use config::Config;
pub use host::{clock, kv, log, sql};
pub use serde_json;

/// Enhanced authentication's answers: [`AuthStep::Success`] with an [`Authenticated`],
/// [`AuthStep::Challenge`] with a [`Challenge`], [`AuthStep::Deny`] or [`AuthStep::Defer`].
pub use bindings::exports::waspmq::plugin::enhanced_authn::{AuthStep, Authenticated, Challenge};

/// The message hook's answer.
pub use bindings::exports::waspmq::plugin::message::{Rewritten, Verdict};

/// MQTT 5 reason codes a plugin typically refuses with.
pub mod reason {
    /// 0x80: the server does not wish to reveal the reason, or none of the others apply.
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    /// 0x86: bad user name or password (CONNACK).
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    /// 0x87: not authorized (CONNACK, PUBACK, SUBACK).
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// 0x8A: banned (CONNACK).
    pub const BANNED: u8 = 0x8A;
    /// 0x8C: bad authentication method (CONNACK).
    pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    /// 0x8F: topic filter invalid (SUBACK).
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// 0x90: topic name invalid (PUBACK).
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// 0x97: quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 0x97;
}

/// Exports a [`Plugin`] implementation as the component's hooks.
///
/// `hooks = [...]` lists the hooks the broker should call, by their [`Hooks`] flag names:
/// `AUTHENTICATE`, `ENHANCED_AUTHENTICATE`, `AUTHORIZE_PUBLISH`, `AUTHORIZE_SUBSCRIBE`,
/// `MESSAGE`, `CONNECTED`, `DISCONNECTED`, `SUBSCRIBED`, `UNSUBSCRIBED`, `SESSION_EXPIRED`. Hooks not listed are never
/// called, whatever the trait implements.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, hooks = [$($hook:ident),* $(,)?]) => {
        impl $crate::adapter::Described for $plugin {
            const NAME: &'static str = env!("CARGO_PKG_NAME");
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
            const HOOKS: $crate::Hooks = $crate::Hooks::empty()$(.union($crate::Hooks::$hook))*;
        }
        // Exported only in the component: built for the host (`cargo build --workspace`) the
        // crate is a plain library whose hooks can be unit-tested.
        #[doc(hidden)]
        pub type __WaspmqPluginExport = $crate::Adapter<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_plugin_world!(__WaspmqPluginExport with_types_in $crate::bindings);
    };
}
