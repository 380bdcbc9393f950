//! The server side of SCRAM-SHA-256 (RFC 5802, with the SHA-256 hash of RFC 7677), without
//! channel binding: parse the client's first message, build the server's, and check the
//! client's proof. Pure functions over bytes and strings; the plugin glue is in `lib.rs`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The Authentication Method clients name in CONNECT.
pub const METHOD: &str = "SCRAM-SHA-256";
/// RFC 7677 section 4: at least 4096 iterations.
pub const MIN_ITERATIONS: u32 = 4096;
/// Above this, `init` (which derives keys for every plain-text password) takes too long.
pub const MAX_ITERATIONS: u32 = 100_000;
/// Longest client message accepted: SCRAM messages are a few hundred bytes.
const MAX_MESSAGE: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// Why an exchange fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramError {
    /// The message does not follow RFC 5802's grammar.
    Malformed(&'static str),
    /// The client asked for channel binding (`p=`), which MQTT offers nothing to bind to.
    ChannelBindingUnsupported,
    /// Unknown user or wrong password: the proof does not verify.
    BadProof,
}

/// What the server keeps for a user: never the password (RFC 5802 section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl Credentials {
    /// SaltedPassword := Hi(password, salt, i); StoredKey := H(HMAC(SaltedPassword,
    /// "Client Key")); ServerKey := HMAC(SaltedPassword, "Server Key").
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Credentials {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        Credentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Stand-in credentials for an unknown user, so the server's first message does not tell
    /// which users exist; no proof verifies against them (the exchange is marked unknown).
    pub fn decoy(username: &str, iterations: u32) -> Credentials {
        Credentials {
            salt: deterministic_salt(username),
            iterations,
            stored_key: Sha256::digest(format!("unknown user {username}")).into(),
            server_key: [0; 32],
        }
    }
}

/// The salt of a user configured with a plain-text password: fixed per user name, so every
/// instance of the plugin (they are pooled) derives the same keys.
pub fn deterministic_salt(username: &str) -> Vec<u8> {
    let digest = Sha256::digest(format!("waspmq auth-scram salt\0{username}"));
    digest[..16].to_vec()
}

/// The client's first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` (or `y,,`): echoed, base64, in the client's final message.
    pub gs2_header: String,
    /// The message without the GS2 header, part of the AuthMessage.
    pub bare: String,
    pub username: String,
    pub nonce: String,
}

/// `saslname`: `=2C` stands for `,` and `=3D` for `=`; any other `=` is malformed.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

/// A nonce: printable ASCII except `,` (RFC 5802 section 7).
fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b',')
}

/// `gs2-header client-first-message-bare` (RFC 5802 section 7).
pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    if message.len() > MAX_MESSAGE {
        return Err(ScramError::Malformed("message too long"));
    }
    let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let mut parts = message.splitn(3, ',');
    let cbind = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    let mut attrs = bare.split(',');
    let username = match attrs.next().and_then(|a| a.strip_prefix("n=")) {
        Some(name) => decode_saslname(name)?,
        None => return Err(ScramError::Malformed("the first attribute must be n=")),
    };
    let nonce = match attrs.next().and_then(|a| a.strip_prefix("r=")) {
        Some(nonce) if valid_nonce(nonce) => nonce.to_owned(),
        _ => return Err(ScramError::Malformed("the second attribute must be r=")),
    };
    if !authzid.is_empty() {
        // An authorization identity other than the user is not supported.
        match authzid.strip_prefix("a=").map(decode_saslname) {
            Some(Ok(a)) if a == username => {}
            _ => {
                return Err(ScramError::Malformed(
                    "authorization identity not supported",
                ))
            }
        }
    }
    Ok(ClientFirst {
        gs2_header: format!("{cbind},{authzid},"),
        bare: bare.to_owned(),
        username,
        nonce,
    })
}

/// `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
pub fn server_first(client_nonce: &str, server_nonce: &str, credentials: &Credentials) -> String {
    format!(
        "r={client_nonce}{server_nonce},s={},i={}",
        B64.encode(&credentials.salt),
        credentials.iterations
    )
}

/// What the server remembers between its first message and the client's final one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub username: String,
    /// Whether the user is configured (an unknown user got decoy credentials).
    pub known: bool,
    pub gs2_header: String,
    pub client_first_bare: String,
    pub server_first: String,
}

impl Exchange {
    /// Length-prefixed fields: kept by the broker between the two rounds.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.known)];
        for field in [
            &self.username,
            &self.gs2_header,
            &self.client_first_bare,
            &self.server_first,
        ] {
            out.extend((field.len() as u32).to_be_bytes());
            out.extend(field.as_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Exchange> {
        let (&known, mut rest) = bytes.split_first()?;
        let mut field = || -> Option<String> {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let value = rest.get(4..4usize.checked_add(len)?)?;
            rest = &rest[4 + len..];
            String::from_utf8(value.to_vec()).ok()
        };
        Some(Exchange {
            known: known == 1,
            username: field()?,
            gs2_header: field()?,
            client_first_bare: field()?,
            server_first: field()?,
        })
    }

    /// The combined nonce the server announced.
    fn nonce(&self) -> Option<&str> {
        self.server_first
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("r="))
    }
}

/// Checks `c=<gs2 header>,r=<nonce>[,extensions],p=<proof>` against the exchange; the
/// server's final message (`v=<ServerSignature>`) when the proof verifies.
pub fn verify_client_final(
    exchange: &Exchange,
    credentials: &Credentials,
    message: &[u8],
) -> Result<String, ScramError> {
    if message.len() > MAX_MESSAGE {
        return Err(ScramError::Malformed("message too long"));
    }
    let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let at = message
        .rfind(",p=")
        .ok_or(ScramError::Malformed("no proof"))?;
    let without_proof = &message[..at];
    let proof = B64
        .decode(&message[at + 3..])
        .map_err(|_| ScramError::Malformed("proof is not base64"))?;
    let mut attrs = without_proof.split(',');
    let binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(|c| B64.decode(c).ok())
        .ok_or(ScramError::Malformed("the first attribute must be c="))?;
    if binding != exchange.gs2_header.as_bytes() {
        return Err(ScramError::Malformed(
            "channel binding differs from the GS2 header",
        ));
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("the second attribute must be r="))?;
    if Some(nonce) != exchange.nonce() {
        return Err(ScramError::Malformed("nonce differs from the server's"));
    }
    if proof.len() != 32 {
        return Err(ScramError::BadProof);
    }
    let auth_message = format!(
        "{},{},{}",
        exchange.client_first_bare, exchange.server_first, without_proof
    );
    let signature = hmac(&credentials.stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
    let stored: [u8; 32] = Sha256::digest(&client_key).into();
    let matches: bool = stored.ct_eq(&credentials.stored_key).into();
    if !matches || !exchange.known {
        return Err(ScramError::BadProof);
    }
    let server_signature = hmac(&credentials.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3, the SCRAM-SHA-256 example exchange.
    #[test]
    fn rfc_7677_example_exchange_verifies() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let creds = Credentials::from_password("pencil", &salt, 4096);
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").expect("first");
        assert_eq!(first.username, "user");
        assert_eq!(first.gs2_header, "n,,");
        let server_first = server_first(&first.nonce, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", &creds);
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let exchange = Exchange {
            username: first.username,
            known: true,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first,
        };
        let exchange = Exchange::decode(&exchange.encode()).expect("state round trip");
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            verify_client_final(&exchange, &creds, client_final),
            Ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_owned())
        );
        let wrong = Credentials::from_password("pencil2", &salt, 4096);
        assert_eq!(
            verify_client_final(&exchange, &wrong, client_final),
            Err(ScramError::BadProof)
        );
        let unknown = Exchange {
            known: false,
            ..exchange
        };
        assert_eq!(
            verify_client_final(&unknown, &creds, client_final),
            Err(ScramError::BadProof)
        );
    }

    #[test]
    fn client_first_grammar_is_enforced() {
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=u,r=abc"),
            Err(ScramError::ChannelBindingUnsupported)
        );
        assert!(parse_client_first(b"n,,r=abc,n=u").is_err());
        assert!(parse_client_first(b"n,,n=u").is_err());
        assert!(parse_client_first(b"n,,n=u=41,r=abc").is_err());
        assert!(parse_client_first(b"n,a=other,n=u,r=abc").is_err());
        let escaped = parse_client_first(b"y,a=a=2Cb,n=a=2Cb,r=x").expect("escaped");
        assert_eq!(escaped.username, "a,b");
        assert_eq!(escaped.gs2_header, "y,a=a=2Cb,");
    }

    #[test]
    fn client_final_must_echo_the_header_and_the_nonce() {
        let creds = Credentials::from_password("pw", b"salt", 4096);
        let exchange = Exchange {
            username: "u".into(),
            known: true,
            gs2_header: "n,,".into(),
            client_first_bare: "n=u,r=abc".into(),
            server_first: "r=abcdef,s=c2FsdA==,i=4096".into(),
        };
        let proof = B64.encode([0u8; 32]);
        let other_nonce = format!("c=biws,r=abcxyz,p={proof}");
        assert!(matches!(
            verify_client_final(&exchange, &creds, other_nonce.as_bytes()),
            Err(ScramError::Malformed(_))
        ));
        let other_header = format!("c=eSws,r=abcdef,p={proof}");
        assert!(matches!(
            verify_client_final(&exchange, &creds, other_header.as_bytes()),
            Err(ScramError::Malformed(_))
        ));
        let good_shape = format!("c=biws,r=abcdef,p={proof}");
        assert_eq!(
            verify_client_final(&exchange, &creds, good_shape.as_bytes()),
            Err(ScramError::BadProof)
        );
        assert!(Exchange::decode(&[1, 0, 0, 0, 9, b'x']).is_none());
    }
}
