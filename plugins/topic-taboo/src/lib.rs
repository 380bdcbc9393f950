//! Refuses publishing to and subscribing on the configured `topics` (filters with `+`/`#`):
//! a PUBLISH whose topic a taboo filter matches, and a SUBSCRIBE whose filter lies inside a
//! taboo filter, get 0x87 Not authorized (the broker drops a refused v3.1.1 PUBLISH silently
//! and answers a refused v3.1.1 SUBSCRIBE with 0x80).
//!
//! The taboo filters are also its `authorize-publish-filters`: the broker only calls the plugin
//! for a PUBLISH whose topic one of them matches, so every other PUBLISH costs no Wasm call.

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

    fn authorize_publish_filters(&self) -> Vec<String> {
        self.topics.clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn taboo() -> TopicTaboo {
        let config = Config::from_json(r#"{"topics": ["prohibited", "data/classified/#"]}"#);
        TopicTaboo::init(config.expect("json")).expect("init")
    }

    fn client() -> ClientInfo {
        ClientInfo {
            client_id: "c".into(),
            username: None,
            peer: None,
            protocol_version: 4,
            listener: "default".into(),
        }
    }

    #[test]
    fn publish_to_a_taboo_topic_is_not_authorized_0x87() {
        let t = taboo();
        let deny = Decision::Deny(reason::NOT_AUTHORIZED);
        assert_eq!(
            t.authorize_publish(&client(), "data/classified/a", Qos::AtMostOnce, false),
            deny
        );
        assert_eq!(
            t.authorize_publish(&client(), "data/open", Qos::AtMostOnce, false),
            Decision::Defer
        );
    }

    #[test]
    fn taboo_topics_are_declared_so_the_broker_skips_the_rest() {
        assert_eq!(
            taboo().authorize_publish_filters(),
            vec!["prohibited".to_string(), "data/classified/#".to_string()]
        );
    }

    #[test]
    fn topics_must_be_a_list_of_strings() {
        let config = Config::from_json(r#"{"topics": "prohibited"}"#).expect("json");
        assert!(TopicTaboo::init(config).is_err());
    }
}
