//! Routing: the subscription tree (which sessions want a topic) and the retained store (the
//! last retained message per topic). Both are shared by all connections and read on every
//! PUBLISH without a global lock.
//!
//! - `tree`: `SubscriptionTree`, the trie of topic filters, and the `Route`s it produces.
//! - `shared`: one `$share/{group}/...` group and its round-robin choice of member.
//! - `retained`: `RetainedStore`, the trie of retained messages.
//! - `filter`: how filters are split into levels, and a one-pair matcher.

mod filter;
mod retained;
mod shared;
mod tree;

#[cfg(test)]
mod reference_tests;

pub use filter::{filter_matches, split_shared, SharedFilter};
pub use retained::RetainedStore;
pub use tree::{ClientKey, Route, Subscription, SubscriptionTree};
