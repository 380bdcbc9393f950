//! The running broker: shared state behind cheap handles, the accept loop, one task per
//! connection feeding the session engine, wills, takeover and session expiry.
//!
//! - `shared`: [`Broker`], the handle to everything connections share.
//! - `server`: [`Broker::start`], the accept loops, [`RunningBroker::shutdown`].
//! - `connection` / `connect` / `subscribe`: one client's task — CONNECT admission, then the
//!   read / handle / write-one-batch loop.
//! - `auth`: MQTT 5 enhanced authentication (the AUTH exchange and re-authentication).
//! - `wire`: framing a byte stream into packets, batching writes.
//! - `publish`: a PUBLISH's way through authorization, hooks, the retained store and fan-out.
//! - `sessions`: the sharded registry of sessions and each session's slot.
//! - `will`: wills, will delay and session expiry.
//! - `durable`: what is written to the persistent store, and the restore at start.
//! - `stats`: the counters `$SYS` reports.
//!
//! The flow of a PUBLISH: the connection task reads bytes into its buffer and decodes every
//! whole packet; the session engine (`session::Session::receive_publish`, under the session's
//! short lock) resolves the topic alias, enforces Receive Maximum and spots QoS 2 duplicates;
//! then, with no lock held, `Hooks::authorize_publish` and the message hooks run, the retained
//! store is updated, and `SubscriptionTree::route` lists the matching clients. For each, the
//! sharded registry yields its slot and one `Arc<Message>` is pushed into its queue under that
//! slot's lock, waking its connection. The publisher gets its PUBACK / PUBREC; each
//! subscriber's task pulls what its inflight window allows (`Session::poll_transmit`), encodes
//! the batch into one buffer and writes it with one write and one flush.

mod auth;
mod connect;
mod connection;
mod durable;
mod publish;
mod server;
mod sessions;
mod shared;
mod stats;
mod subscribe;
mod will;
mod wire;

pub mod sys;

pub use server::RunningBroker;
pub use shared::Broker;
pub use stats::{Stats, StatsSnapshot};

#[cfg(test)]
mod tests;
