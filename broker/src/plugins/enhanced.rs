//! MQTT 5 enhanced authentication through the chain (`waspmq:plugin/enhanced-authn`): the
//! plugins are asked in config order to start an exchange; the first that does not defer owns
//! it, and the broker keeps its opaque state and its slot ([`AuthExchange`]) until the client
//! answers. Same timeouts, `on_error` policy and failure counting as the other decision hooks.

use std::sync::Arc;

use bytes::Bytes;

use super::bindings::{enhanced_authn, wit, HookSet};
use super::slot::PluginSlot;
use super::version::{Answer, Call};
use super::{ClientInfo, Decision, Hooks};
use crate::protocol::ReasonCode;

/// Largest Authentication Data a plugin may send a client, and largest state it may ask the
/// broker to keep per connection. A bigger answer counts as the plugin failing (`on_error`).
pub const MAX_AUTH_DATA: usize = 64 * 1024;
/// Longest user name a plugin may name as the authenticated identity (an MQTT string).
const MAX_USERNAME: usize = 65_535;

/// What the plugins answered to one step of an exchange.
#[derive(Debug)]
pub enum AuthStep {
    /// Authenticated as `username` (`None`: keep the CONNECT user name); `data` goes to the
    /// client.
    Success {
        username: Option<String>,
        data: Option<Bytes>,
    },
    /// Send `data` in AUTH 0x18; hand `exchange` back with the client's answer.
    Challenge { data: Bytes, exchange: AuthExchange },
    /// Refused with this reason code (always an error code).
    Deny(ReasonCode),
    /// No plugin handles this method.
    Unsupported,
}

/// An exchange in progress: the plugin that owns it (kept even if the chain is reloaded
/// meanwhile) and the state it asked the broker to keep.
pub struct AuthExchange {
    slot: Arc<PluginSlot>,
    state: Vec<u8>,
}

impl std::fmt::Debug for AuthExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthExchange")
            .field("plugin", &self.slot.name)
            .field("state_len", &self.state.len())
            .finish()
    }
}

/// A plugin's refusal as an error reason code (lower codes become 0x80).
fn deny_code(code: u8) -> ReasonCode {
    if code >= 0x80 {
        ReasonCode(code)
    } else {
        ReasonCode::UNSPECIFIED_ERROR
    }
}

/// What one plugin said, `None` for defer; `Err` when the answer breaks the contract's limits.
fn step_of(
    slot: &Arc<PluginSlot>,
    step: enhanced_authn::AuthStep,
) -> Result<Option<AuthStep>, &'static str> {
    Ok(Some(match step {
        enhanced_authn::AuthStep::Defer => return Ok(None),
        enhanced_authn::AuthStep::Deny(code) => AuthStep::Deny(deny_code(code)),
        enhanced_authn::AuthStep::Success(ok) => {
            if ok.data.as_ref().is_some_and(|d| d.len() > MAX_AUTH_DATA) {
                return Err("authentication data over 64 KiB");
            }
            if ok
                .username
                .as_ref()
                .is_some_and(|u| u.len() > MAX_USERNAME || u.contains('\0') || u.is_empty())
            {
                return Err("user name empty, over 65,535 bytes or containing U+0000");
            }
            AuthStep::Success {
                username: ok.username,
                data: ok.data.map(Bytes::from),
            }
        }
        enhanced_authn::AuthStep::Challenge(c) => {
            if c.data.len() > MAX_AUTH_DATA || c.state.len() > MAX_AUTH_DATA {
                return Err("challenge data or state over 64 KiB");
            }
            AuthStep::Challenge {
                data: Bytes::from(c.data),
                exchange: AuthExchange {
                    slot: slot.clone(),
                    state: c.state,
                },
            }
        }
    }))
}

/// The `on_error` answer of a plugin that failed, as a step (`None`: skip it).
fn on_error_step(slot: &PluginSlot) -> Option<AuthStep> {
    match slot.on_error() {
        Decision::Allow => Some(AuthStep::Success {
            username: None,
            data: None,
        }),
        Decision::Deny(code) => Some(AuthStep::Deny(code)),
        Decision::Defer => None,
    }
}

/// A plugin's answer (or failure) as a step; `None` to ask the next plugin.
fn answered(slot: &Arc<PluginSlot>, answer: Result<Answer, ()>) -> Option<AuthStep> {
    match answer {
        Ok(Answer::AuthStep(step)) => match step_of(slot, step) {
            Ok(step) => step,
            Err(why) => {
                tracing::warn!(plugin = %slot.name, "enhanced authentication answer refused: {why}");
                on_error_step(slot)
            }
        },
        Ok(_) | Err(()) => on_error_step(slot),
    }
}

impl Hooks {
    /// A CONNECT with an Authentication Method (`reauth` false) or an AUTH 0x19 (`reauth`
    /// true): the first plugin exporting `enhanced-authn` that does not defer answers;
    /// [`AuthStep::Unsupported`] when none does (or no plugin is loaded).
    pub async fn auth_start(
        &self,
        client: &ClientInfo,
        method: &str,
        data: Option<&Bytes>,
        reauth: bool,
    ) -> AuthStep {
        let Some(chain) = &self.chain else {
            return AuthStep::Unsupported;
        };
        let client = wit::ClientInfo::from(client);
        let data = data.map(|d| d.as_ref());
        let slots = chain.slots();
        for slot in slots.iter() {
            if !slot.wants(HookSet::ENHANCED_AUTHENTICATE) {
                continue;
            }
            let version = slot.version();
            let call = Call::AuthStart {
                client: &client,
                method,
                data,
                reauth,
            };
            let answer = slot.call(&version, call, slot.decision_timeout()).await;
            if let Some(step) = answered(slot, answer) {
                return step;
            }
        }
        AuthStep::Unsupported
    }

    /// The client answered the challenge of `exchange` (AUTH 0x18): only the plugin that owns
    /// the exchange is asked. It may not defer now: a defer refuses with 0x87, a failure whose
    /// `on_error` skips refuses with 0x80.
    pub async fn auth_continue(
        &self,
        client: &ClientInfo,
        method: &str,
        data: Option<&Bytes>,
        exchange: AuthExchange,
    ) -> AuthStep {
        let AuthExchange { slot, state } = exchange;
        if !slot.wants(HookSet::ENHANCED_AUTHENTICATE) {
            // Hot-swapped meanwhile to a version without the hook.
            return AuthStep::Deny(ReasonCode::UNSPECIFIED_ERROR);
        }
        let client = wit::ClientInfo::from(client);
        let version = slot.version();
        let call = Call::AuthContinue {
            client: &client,
            method,
            data: data.map(|d| d.as_ref()),
            state: &state,
        };
        let answer = slot.call(&version, call, slot.decision_timeout()).await;
        let plugin_deferred = matches!(
            &answer,
            Ok(Answer::AuthStep(enhanced_authn::AuthStep::Defer))
        );
        match answered(&slot, answer) {
            Some(step) => step,
            None if plugin_deferred => AuthStep::Deny(ReasonCode::NOT_AUTHORIZED),
            None => AuthStep::Deny(ReasonCode::UNSPECIFIED_ERROR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_below_0x80_becomes_0x80() {
        assert_eq!(deny_code(0x00), ReasonCode::UNSPECIFIED_ERROR);
        assert_eq!(deny_code(0x18), ReasonCode::UNSPECIFIED_ERROR);
        assert_eq!(deny_code(0x86), ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    }

    #[tokio::test]
    async fn without_plugins_every_method_is_unsupported_mqtt_4_12_0_1() {
        let client = ClientInfo {
            client_id: Arc::from("c"),
            username: None,
            peer: None,
            listener: Arc::from("default"),
            protocol: crate::protocol::ProtocolVersion::V5,
        };
        let step = Hooks::none()
            .auth_start(&client, "SCRAM-SHA-256", None, false)
            .await;
        assert!(matches!(step, AuthStep::Unsupported));
    }
}
