//! How a topic filter is read by the tries: its levels as trie edges (`Level`), the
//! `$share/{group}/{filter}` split, and `filter_matches`, the plain one-pair matcher used where
//! a single filter is checked against a single topic (and as the tests' reference).

/// One level of a topic filter, as the tries see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level<'a> {
    /// A literal level (possibly the empty string).
    Literal(&'a str),
    /// `+`: exactly one level.
    SingleWildcard,
    /// `#` as the last level: the parent level and any number of levels below.
    MultiWildcard,
}

/// Splits a filter into levels. A `#` that is not the last level is not a valid filter (the
/// codec rejects it); it is read as a literal here so that nothing can panic on it.
pub(crate) fn levels(filter: &str) -> impl Iterator<Item = Level<'_>> {
    let mut parts = filter.split('/').peekable();
    std::iter::from_fn(move || {
        let part = parts.next()?;
        let last = parts.peek().is_none();
        Some(match part {
            "#" if last => Level::MultiWildcard,
            "+" => Level::SingleWildcard,
            other => Level::Literal(other),
        })
    })
}

/// A shared subscription filter `$share/{group}/{filter}`, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// Returns the group and inner filter of a `$share/{group}/{filter}` subscription, or `None`
/// for a plain filter. A `$share` filter without a non-empty group and filter is not a shared
/// subscription (the codec rejects it as malformed before it gets here).
pub fn split_shared(filter: &str) -> Option<SharedFilter<'_>> {
    let rest = filter.strip_prefix("$share/")?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || inner.is_empty() {
        return None;
    }
    Some(SharedFilter {
        group,
        filter: inner,
    })
}

/// Whether the plain (not `$share`) `filter` matches `topic`, per MQTT 4.7: `+` is one level,
/// a trailing `#` is the parent and any levels below, and a topic starting with `$` is not
/// matched by a filter starting with a wildcard [MQTT-4.7.2-1].
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut filter_levels = levels(filter);
    let mut topic_levels = topic.split('/');
    let mut first = true;
    loop {
        let dollar_guard = first && topic.starts_with('$');
        first = false;
        match (filter_levels.next(), topic_levels.next()) {
            (Some(Level::MultiWildcard), _) => return !dollar_guard,
            (Some(Level::SingleWildcard), Some(_)) if !dollar_guard => {}
            (Some(Level::Literal(f)), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_filter_is_split_into_group_and_filter_mqtt_4_8_2() {
        assert_eq!(
            split_shared("$share/g1/a/+/#"),
            Some(SharedFilter {
                group: "g1",
                filter: "a/+/#"
            })
        );
        assert_eq!(split_shared("$share/g1"), None);
        assert_eq!(split_shared("$share//a"), None);
        assert_eq!(split_shared("$share/g/"), None);
        assert_eq!(split_shared("a/$share/g/x"), None);
        assert_eq!(split_shared("$sharex/g/x"), None);
    }

    #[test]
    fn hash_not_last_is_read_as_a_literal_level() {
        let got: Vec<_> = levels("a/#/b").collect();
        assert_eq!(
            got,
            vec![
                Level::Literal("a"),
                Level::Literal("#"),
                Level::Literal("b")
            ]
        );
        let got: Vec<_> = levels("+/#").collect();
        assert_eq!(got, vec![Level::SingleWildcard, Level::MultiWildcard]);
    }

    #[test]
    fn reference_matcher_follows_mqtt_4_7() {
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("#", "a/b"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(!filter_matches("+/x", "$SYS/x"));
        assert!(filter_matches("$SYS/#", "$SYS/x"));
        assert!(filter_matches("+/+", "/x"));
        assert!(filter_matches("a//b", "a//b"));
        assert!(!filter_matches("a/+", "a"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(filter_matches("a/+", "a/"));
        assert!(!filter_matches("a", "a/b"));
    }
}
