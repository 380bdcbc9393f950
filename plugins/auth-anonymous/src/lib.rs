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
