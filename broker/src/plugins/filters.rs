//! A plugin's declared `authorize-publish-filters`, checked once at load and kept in a form
//! that answers "is this PUBLISH topic one the plugin asked about?" in a few nanoseconds, so
//! the chain can skip the Wasm call (and building its arguments) for every other topic.

use std::collections::HashSet;

use anyhow::bail;

use crate::protocol::topic::valid_topic_filter;
use crate::routing::filter_matches;

/// Beyond this many wildcard-free filters a hash set beats comparing them one by one.
const LINEAR_LITERALS: usize = 16;

/// The topics a plugin's `authorize-publish` wants to see.
#[derive(Debug, Clone, Default)]
pub struct PublishFilters {
    /// No filters declared: every PUBLISH is asked about.
    every_topic: bool,
    /// Filters without wildcards: equal to the topic or not.
    literals: Vec<Box<str>>,
    /// The literals again when there are many of them.
    literal_set: Option<HashSet<Box<str>>>,
    /// Filters with `+` or `#`, matched with the router's own matcher.
    wildcards: Vec<Box<str>>,
}

impl PublishFilters {
    /// Compiles the declared list. Empty means every topic. A filter that is not a valid MQTT
    /// topic filter, or a shared-subscription one (`$share/...`), is an error that refuses the
    /// plugin: silently matching nothing would let PUBLISHes through unchecked.
    pub fn compile(filters: &[String]) -> anyhow::Result<PublishFilters> {
        let mut compiled = PublishFilters {
            every_topic: filters.is_empty(),
            ..PublishFilters::default()
        };
        for filter in filters {
            if !valid_topic_filter(filter) {
                bail!("authorize-publish-filters: `{filter}` is not a valid topic filter");
            }
            if filter.starts_with("$share/") {
                bail!("authorize-publish-filters: `{filter}` is a shared subscription, not a topic filter");
            }
            if filter.contains(['+', '#']) {
                compiled.wildcards.push(filter.as_str().into());
            } else {
                compiled.literals.push(filter.as_str().into());
            }
        }
        compiled.literals.sort_unstable();
        compiled.literals.dedup();
        compiled.wildcards.dedup();
        if compiled.literals.len() > LINEAR_LITERALS {
            compiled.literal_set = Some(compiled.literals.iter().cloned().collect());
        }
        Ok(compiled)
    }

    /// Whether a PUBLISH to `topic` goes to the plugin.
    pub fn matches(&self, topic: &str) -> bool {
        if self.every_topic {
            return true;
        }
        let literal = match &self.literal_set {
            Some(set) => set.contains(topic),
            None => self.literals.iter().any(|l| **l == *topic),
        };
        literal || self.wildcards.iter().any(|f| filter_matches(f, topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(filters: &[&str]) -> PublishFilters {
        let owned: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        PublishFilters::compile(&owned).expect("valid filters")
    }

    #[test]
    fn no_declared_filters_means_every_publish_is_asked_about() {
        let every = compile(&[]);
        assert!(every.matches("a"));
        assert!(every.matches("sensors/t1"));
        assert!(every.matches("$internal/x"));
    }

    #[test]
    fn declared_filters_match_per_mqtt_4_7_1() {
        let taboo = compile(&["prohibited", "top-secret", "data/classified/#", "a/+/c"]);
        assert!(taboo.matches("prohibited"));
        assert!(taboo.matches("top-secret"));
        assert!(taboo.matches("data/classified"));
        assert!(taboo.matches("data/classified/x/y"));
        assert!(taboo.matches("a/b/c"));
        assert!(!taboo.matches("sensors/t1"));
        assert!(!taboo.matches("prohibited/x"));
        assert!(!taboo.matches("data/open"));
        assert!(!taboo.matches("a/b/c/d"));
    }

    #[test]
    fn dollar_topics_do_not_match_leading_wildcards_mqtt_4_7_2_1() {
        let all = compile(&["#", "+/status"]);
        assert!(all.matches("x/status"));
        assert!(!all.matches("$SYS/status"));
        assert!(compile(&["$SYS/#"]).matches("$SYS/status"));
    }

    #[test]
    fn many_literal_filters_use_the_hash_set_with_the_same_answers() {
        let names: Vec<String> = (0..40).map(|i| format!("t/{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let many = compile(&refs);
        assert!(many.literal_set.is_some());
        assert!(many.matches("t/0"));
        assert!(many.matches("t/39"));
        assert!(!many.matches("t/40"));
        assert!(!many.matches("t"));
    }

    #[test]
    fn invalid_or_shared_filters_refuse_the_plugin() {
        for bad in ["", "a/#/b", "a+", "$share/g/a"] {
            let result = PublishFilters::compile(&[bad.to_string()]);
            assert!(result.is_err(), "{bad:?} accepted");
        }
    }
}
