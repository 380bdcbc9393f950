//! MQTT 5 enhanced authentication with SCRAM-SHA-256 (RFC 5802 / RFC 7677): a client naming
//! the Authentication Method `SCRAM-SHA-256` sends its client-first-message in CONNECT's
//! Authentication Data, gets the server-first-message in AUTH 0x18, answers with its
//! client-final-message in AUTH 0x18 and, if its proof verifies, is let in with the
//! server-final-message (`v=...`, the server's proof) in CONNACK. The same exchange in AUTH
//! 0x19 re-authenticates. Other methods are left to the next plugin.
//!
//! Config (`[plugins.config]`):
//!
//! ```toml
//! iterations = 4096            # PBKDF2 rounds for plain-text passwords (4096 ..= 100000)
//! [plugins.config.users]
//! alice = "secret"             # plain text: keys derived at init with a per-user fixed salt
//! bob = { salt = "base64", iterations = 4096, stored_key = "base64", server_key = "base64" }
//! ```
//!
//! Unknown users get a decoy challenge and are refused at the end with 0x86 (Bad user name or
//! password), like a wrong password, so the exchange does not reveal which users exist.

mod scram;

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use waspmq_plugin_sdk::*;

pub use scram::{Credentials, ScramError, METHOD};
use scram::{Exchange, MAX_ITERATIONS, MIN_ITERATIONS};

/// One configured user.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserEntry {
    Password(String),
    Salted {
        salt: String,
        iterations: u32,
        stored_key: String,
        server_key: String,
    },
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    users: HashMap<String, UserEntry>,
    iterations: Option<u32>,
}

struct AuthScram {
    users: HashMap<String, Credentials>,
    iterations: u32,
}

fn key(name: &str, field: &str, value: &str) -> Result<[u8; 32], String> {
    B64.decode(value)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| format!("user {name}: {field} must be 32 bytes in base64"))
}

fn check_iterations(iterations: u32) -> Result<u32, String> {
    if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        Ok(iterations)
    } else {
        Err(format!(
            "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, not {iterations}"
        ))
    }
}

impl AuthScram {
    fn refusal(error: ScramError) -> AuthStep {
        match error {
            ScramError::BadProof => AuthStep::Deny(reason::BAD_USER_NAME_OR_PASSWORD),
            ScramError::Malformed(why) => {
                log::info(&format!("SCRAM exchange refused: {why}"));
                AuthStep::Deny(reason::NOT_AUTHORIZED)
            }
            ScramError::ChannelBindingUnsupported => {
                log::info("SCRAM exchange refused: channel binding is not supported");
                AuthStep::Deny(reason::NOT_AUTHORIZED)
            }
        }
    }

    fn credentials(&self, username: &str) -> (Credentials, bool) {
        match self.users.get(username) {
            Some(c) => (c.clone(), true),
            None => (Credentials::decoy(username, self.iterations), false),
        }
    }
}

/// 18 random bytes, base64: the server's half of the nonce.
fn server_nonce() -> Option<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).ok()?;
    Some(B64.encode(bytes))
}

impl Plugin for AuthScram {
    fn init(config: Config) -> Result<Self, String> {
        let settings: Settings = config.deserialize()?;
        let iterations = check_iterations(settings.iterations.unwrap_or(MIN_ITERATIONS))?;
        let mut users = HashMap::with_capacity(settings.users.len());
        for (name, entry) in settings.users {
            let credentials = match entry {
                UserEntry::Password(password) => Credentials::from_password(
                    &password,
                    &scram::deterministic_salt(&name),
                    iterations,
                ),
                UserEntry::Salted {
                    salt,
                    iterations,
                    stored_key,
                    server_key,
                } => Credentials {
                    salt: B64
                        .decode(&salt)
                        .map_err(|_| format!("user {name}: salt is not base64"))?,
                    iterations: check_iterations(iterations)?,
                    stored_key: key(&name, "stored_key", &stored_key)?,
                    server_key: key(&name, "server_key", &server_key)?,
                },
            };
            users.insert(name, credentials);
        }
        Ok(AuthScram { users, iterations })
    }

    fn auth_start(
        &self,
        _client: &ClientInfo,
        method: &str,
        data: Option<&[u8]>,
        _reauth: bool,
    ) -> AuthStep {
        if method != METHOD {
            return AuthStep::Defer;
        }
        // SCRAM is client-first: the client-first-message must come with the request.
        let Some(data) = data else {
            return Self::refusal(ScramError::Malformed("no client-first-message"));
        };
        let first = match scram::parse_client_first(data) {
            Ok(first) => first,
            Err(e) => return Self::refusal(e),
        };
        let Some(nonce) = server_nonce() else {
            log::error("no randomness for the server nonce");
            return AuthStep::Deny(reason::UNSPECIFIED_ERROR);
        };
        let (credentials, known) = self.credentials(&first.username);
        let server_first = scram::server_first(&first.nonce, &nonce, &credentials);
        let exchange = Exchange {
            username: first.username,
            known,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
        };
        AuthStep::Challenge(Challenge {
            data: server_first.into_bytes(),
            state: exchange.encode(),
        })
    }

    fn auth_continue(
        &self,
        _client: &ClientInfo,
        method: &str,
        data: Option<&[u8]>,
        state: &[u8],
    ) -> AuthStep {
        if method != METHOD {
            return AuthStep::Defer;
        }
        let Some(exchange) = Exchange::decode(state) else {
            return AuthStep::Deny(reason::UNSPECIFIED_ERROR);
        };
        let Some(data) = data else {
            return Self::refusal(ScramError::Malformed("no client-final-message"));
        };
        let (credentials, _) = self.credentials(&exchange.username);
        match scram::verify_client_final(&exchange, &credentials, data) {
            Ok(server_final) => AuthStep::Success(Authenticated {
                username: Some(exchange.username),
                data: Some(server_final.into_bytes()),
            }),
            Err(e) => Self::refusal(e),
        }
    }
}

export_plugin!(AuthScram, hooks = [ENHANCED_AUTHENTICATE]);

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn client() -> ClientInfo {
        ClientInfo {
            client_id: "c".into(),
            username: None,
            peer: None,
            protocol_version: 5,
            listener: "default".into(),
        }
    }

    fn plugin() -> AuthScram {
        AuthScram::init(
            Config::from_json(r#"{"users": {"alice": "secret"}, "iterations": 4096}"#)
                .expect("json"),
        )
        .expect("init")
    }

    fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    /// The client side, as a test would write it: the final message for `password`.
    fn client_final(user: &str, server_first: &str, password: &str) -> String {
        let mut fields = server_first.split(',');
        let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).expect("r");
        let salt = B64
            .decode(fields.next().and_then(|f| f.strip_prefix("s=")).expect("s"))
            .expect("salt");
        let i: u32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .expect("i")
            .parse()
            .expect("i");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, i, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("n={user},r=cnonce,{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    fn exchange(p: &AuthScram, user: &str, password: &str) -> AuthStep {
        let first = format!("n,,n={user},r=cnonce");
        let AuthStep::Challenge(challenge) =
            p.auth_start(&client(), METHOD, Some(first.as_bytes()), false)
        else {
            panic!("expected a challenge")
        };
        let server_first = String::from_utf8(challenge.data).expect("utf8");
        let last = client_final(user, &server_first, password);
        p.auth_continue(&client(), METHOD, Some(last.as_bytes()), &challenge.state)
    }

    #[test]
    fn the_right_password_authenticates_as_the_scram_user() {
        let p = plugin();
        match exchange(&p, "alice", "secret") {
            AuthStep::Success(ok) => {
                assert_eq!(ok.username.as_deref(), Some("alice"));
                assert!(ok.data.expect("server final").starts_with(b"v="));
            }
            other => panic!("expected success, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_password_or_unknown_user_is_refused_with_0x86() {
        let p = plugin();
        assert_eq!(
            exchange(&p, "alice", "wrong"),
            AuthStep::Deny(reason::BAD_USER_NAME_OR_PASSWORD)
        );
        assert_eq!(
            exchange(&p, "mallory", "secret"),
            AuthStep::Deny(reason::BAD_USER_NAME_OR_PASSWORD)
        );
    }

    #[test]
    fn other_methods_are_left_to_the_next_plugin() {
        let p = plugin();
        assert_eq!(
            p.auth_start(&client(), "PLAIN", Some(b"x"), false),
            AuthStep::Defer
        );
    }

    #[test]
    fn too_few_iterations_refuse_the_config() {
        assert!(
            AuthScram::init(Config::from_json(r#"{"iterations": 10}"#).expect("json")).is_err()
        );
    }
}
