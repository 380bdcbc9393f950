//! Validation of topic names and topic filters (UTF-8 already checked by the codec):
//! wildcard placement, empty strings, shared-subscription syntax.
