//! MQTT topic filter matching (`+` one level, `#` the rest), for plugins that keep topic lists.

/// Whether `topic` (a concrete topic name) matches `filter` (which may hold wildcards).
/// Topics starting with `$` never match a filter starting with a wildcard [MQTT-4.7.2-1].
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every topic the subscription filter `subscription` can match is also matched by
/// `filter`: the subscription lies wholly inside `filter` (`data/classified/#` covers
/// `data/classified/+`, but not `data/#`).
pub fn covers(filter: &str, subscription: &str) -> bool {
    if subscription.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut s = subscription.split('/');
    loop {
        match (f.next(), s.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(fl), Some(sl)) if fl == sl && sl != "+" && sl != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_per_mqtt_4_7_1() {
        assert!(matches("data/classified/#", "data/classified"));
        assert!(matches("data/classified/#", "data/classified/x/y"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(matches("prohibited", "prohibited"));
        assert!(!matches("prohibited", "prohibited/x"));
        assert!(matches("#", "anything/at/all"));
    }

    #[test]
    fn dollar_topics_do_not_match_leading_wildcards_mqtt_4_7_2_1() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker", "$SYS/broker"));
        assert!(matches("$SYS/#", "$SYS/broker"));
    }

    #[test]
    fn covered_subscriptions_are_detected() {
        assert!(covers("data/classified/#", "data/classified/+"));
        assert!(covers("data/classified/#", "data/classified"));
        assert!(covers("data/classified/#", "data/classified/#"));
        assert!(covers("prohibited", "prohibited"));
        assert!(covers("a/+", "a/b"));
        assert!(!covers("data/classified/#", "data/#"));
        assert!(!covers("data/classified/#", "#"));
        assert!(!covers("prohibited", "+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("#", "$SYS/x"));
    }
}
