//! Routing: the subscription tree (which sessions want a topic) and the retained store (the
//! last retained message per topic). Both are shared by all connections and read on every
//! PUBLISH without a global lock.
