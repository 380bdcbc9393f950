//! Test-only: misbehaves on purpose so the host's limits can be tested. `mode` (config) picks
//! what `authenticate` and `authorize_publish` do:
//! - `loop`: spin forever (the host must cut it off at `timeout_ms`);
//! - `trap`: hit `unreachable`;
//! - `alloc`: allocate without bound (the host's memory limit must stop it);
//! - `deny`: refuse everything with 0x86 (a well-behaved "other version" for hot-swap tests);
//! - `fail-init`: refuse to start.
//!
//! On topics starting with `ok/` every mode answers `allow`, so a test can check that the
//! host keeps serving after a failure.

use std::hint::black_box;

use waspmq_plugin_sdk::*;

struct Misbehave {
    mode: String,
}

impl Misbehave {
    fn act(&self) -> Decision {
        match self.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "trap" => trap(),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            _ => Decision::Deny(reason::BAD_USER_NAME_OR_PASSWORD),
        }
    }
}

/// A wasm `unreachable` instruction: the purest trap there is.
#[cfg(target_arch = "wasm32")]
fn trap() -> Decision {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> Decision {
    std::process::abort()
}

impl Plugin for Misbehave {
    fn init(config: Config) -> Result<Self, String> {
        let mode = config.string("mode")?.unwrap_or_else(|| "deny".to_owned());
        if mode == "fail-init" {
            return Err("asked to fail".to_owned());
        }
        Ok(Misbehave { mode })
    }

    fn authenticate(&self, _client: &ClientInfo, _password: Option<&[u8]>) -> Decision {
        self.act()
    }

    fn authorize_publish(
        &self,
        _client: &ClientInfo,
        topic: &str,
        _qos: Qos,
        _retain: bool,
    ) -> Decision {
        if topic.starts_with("ok/") {
            return Decision::Allow;
        }
        self.act()
    }
}

export_plugin!(Misbehave, hooks = [AUTHENTICATE, AUTHORIZE_PUBLISH]);
