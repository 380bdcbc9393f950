//! Validation of topic names and topic filters (UTF-8 already checked by the codec):
//! wildcard placement, empty strings, shared-subscription syntax.
//!
//! A topic name ([MQTT-4.7.1-1], [MQTT-4.7.3-1]) is at least one character long and holds no
//! wildcard. A topic filter is at least one character long; `#` stands alone in the last level
//! ([MQTT-4.7.1-2]) and `+` stands alone in its level ([MQTT-4.7.1-3]). A shared subscription
//! `$share/{group}/{filter}` has a non-empty group without `/`, `+` or `#` followed by a valid
//! filter ([MQTT-4.8.2-1], [MQTT-4.8.2-2]).

const SHARE_PREFIX: &str = "$share/";

/// Whether `topic` may be published to: non-empty and free of wildcard characters.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// Whether `filter` may be subscribed to, shared-subscription syntax included.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.starts_with(SHARE_PREFIX) {
        parse_shared(filter).is_some()
    } else {
        valid_plain_filter(filter)
    }
}

/// Splits a valid `$share/{group}/{filter}` into `(group, filter)`. `None` for a filter that is
/// not a shared subscription or whose shared syntax is invalid.
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || group.contains(['+', '#']) || !valid_plain_filter(inner) {
        return None;
    }
    Some((group, inner))
}

fn valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" => return levels.peek().is_none(),
            "+" => {}
            other if other.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_must_not_be_empty_mqtt_4_7_3_1() {
        assert!(!valid_topic_name(""));
        assert!(valid_topic_name("/"));
        assert!(valid_topic_name("a/b"));
    }

    #[test]
    fn topic_name_must_not_contain_wildcards_mqtt_3_3_2_2() {
        assert!(!valid_topic_name("a/+"));
        assert!(!valid_topic_name("a/#"));
        assert!(!valid_topic_name("a+b"));
    }

    #[test]
    fn multi_level_wildcard_only_last_and_alone_mqtt_4_7_1_2() {
        assert!(valid_topic_filter("#"));
        assert!(valid_topic_filter("a/#"));
        assert!(valid_topic_filter("/#"));
        assert!(!valid_topic_filter("a/#/b"));
        assert!(!valid_topic_filter("a#"));
        assert!(!valid_topic_filter("a/b#"));
        assert!(!valid_topic_filter("##"));
    }

    #[test]
    fn single_level_wildcard_alone_in_level_mqtt_4_7_1_3() {
        assert!(valid_topic_filter("+"));
        assert!(valid_topic_filter("+/+"));
        assert!(valid_topic_filter("a/+/b"));
        assert!(valid_topic_filter("/+"));
        assert!(!valid_topic_filter("a+"));
        assert!(!valid_topic_filter("a/+b/c"));
        assert!(!valid_topic_filter("++"));
    }

    #[test]
    fn topic_filter_must_not_be_empty_mqtt_4_7_3_1() {
        assert!(!valid_topic_filter(""));
        assert!(valid_topic_filter("/"));
        assert!(valid_topic_filter("//"));
    }

    #[test]
    fn shared_subscription_syntax_mqtt_4_8_2_1_and_4_8_2_2() {
        assert_eq!(parse_shared("$share/g/a/+"), Some(("g", "a/+")));
        assert_eq!(parse_shared("$share/g/#"), Some(("g", "#")));
        assert_eq!(parse_shared("$share//a"), None, "empty group");
        assert_eq!(parse_shared("$share/g+/a"), None, "wildcard in group");
        assert_eq!(parse_shared("$share/g#/a"), None, "wildcard in group");
        assert_eq!(parse_shared("$share/g"), None, "no filter");
        assert_eq!(parse_shared("$share/g/"), None, "empty filter");
        assert_eq!(parse_shared("$share/g/a#"), None, "invalid filter");
        assert_eq!(parse_shared("a/b"), None, "not shared");
        assert!(valid_topic_filter("$share/g/a"));
        assert!(!valid_topic_filter("$share/g"));
        assert!(!valid_topic_filter("$share//a"));
        // `$share` without the slash is an ordinary level.
        assert!(valid_topic_filter("$share"));
        assert!(valid_topic_filter("$shared/x"));
    }
}
