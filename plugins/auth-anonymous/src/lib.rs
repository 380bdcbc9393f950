//! Allows or refuses clients that connect without a username, per `allow_anonymous` (the
//! broker fills in `[auth] allow_anonymous` when the plugin's config does not say). Clients
//! with a username are left to the next plugin.

use waspmq_plugin_sdk::*;

struct AuthAnonymous {
    allow_anonymous: bool,
}

impl Plugin for AuthAnonymous {
    fn init(config: Config) -> Result<Self, String> {
        Ok(AuthAnonymous {
            allow_anonymous: config.bool("allow_anonymous")?.unwrap_or(true),
        })
    }

    fn authenticate(&self, client: &ClientInfo, _password: Option<&[u8]>) -> Decision {
        match (&client.username, self.allow_anonymous) {
            (Some(_), _) => Decision::Defer,
            (None, true) => Decision::Allow,
            (None, false) => Decision::Deny(reason::NOT_AUTHORIZED),
        }
    }
}

export_plugin!(AuthAnonymous, hooks = [AUTHENTICATE]);

#[cfg(test)]
mod tests {
    use super::*;

    fn client(username: Option<&str>) -> ClientInfo {
        ClientInfo {
            client_id: "c".into(),
            username: username.map(str::to_owned),
            peer: None,
            protocol_version: 5,
            listener: "default".into(),
        }
    }

    fn plugin(json: &str) -> AuthAnonymous {
        AuthAnonymous::init(Config::from_json(json).expect("json")).expect("init")
    }

    #[test]
    fn anonymous_clients_follow_allow_anonymous() {
        let refuse = plugin(r#"{"allow_anonymous": false}"#);
        assert_eq!(
            refuse.authenticate(&client(None), None),
            Decision::Deny(reason::NOT_AUTHORIZED)
        );
        let allow = plugin(r#"{"allow_anonymous": true}"#);
        assert_eq!(allow.authenticate(&client(None), None), Decision::Allow);
    }

    #[test]
    fn clients_with_a_username_are_left_to_the_next_plugin() {
        let refuse = plugin(r#"{"allow_anonymous": false}"#);
        assert_eq!(
            refuse.authenticate(&client(Some("alice")), None),
            Decision::Defer
        );
    }
}
