//! Refuses publishing to and subscribing on the configured `topics` (filters with `+`/`#`):
//! a PUBLISH whose topic a taboo filter matches, and a SUBSCRIBE whose filter lies inside a
//! taboo filter, get 0x87 Not authorized (the broker drops a refused v3.1.1 PUBLISH silently
//! and answers a refused v3.1.1 SUBSCRIBE with 0x80).

use waspmq_plugin_sdk::*;

struct TopicTaboo {
    topics: Vec<String>,
}

impl Plugin for TopicTaboo {
    fn init(config: Config) -> Result<Self, String> {
        Ok(TopicTaboo {
            topics: config.strings("topics")?,
        })
    }

    fn authorize_publish(
        &self,
        _client: &ClientInfo,
        topic: &str,
        _qos: Qos,
        _retain: bool,
    ) -> Decision {
        match self.topics.iter().any(|taboo| topic::matches(taboo, topic)) {
            true => Decision::Deny(reason::NOT_AUTHORIZED),
            false => Decision::Defer,
        }
    }

    fn authorize_subscribe(&self, _client: &ClientInfo, filter: &str, _qos: Qos) -> Decision {
        match self.topics.iter().any(|taboo| topic::covers(taboo, filter)) {
            true => Decision::Deny(reason::NOT_AUTHORIZED),
            false => Decision::Defer,
        }
    }
}

export_plugin!(TopicTaboo, hooks = [AUTHORIZE_PUBLISH, AUTHORIZE_SUBSCRIBE]);
