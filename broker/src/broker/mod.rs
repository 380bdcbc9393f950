//! The running broker: shared state behind cheap handles, the accept loop, one task per
//! connection feeding the session engine, wills, takeover and session expiry.
//!
//! - `shared`: [`Broker`], the handle to everything connections share.
//! - `server`: [`Broker::start`], the accept loops, [`RunningBroker::shutdown`].
//! - `connection` / `connect` / `subscribe`: one client's task — CONNECT admission, then the
//!   read / handle / write-one-batch loop.
//! - `wire`: framing a byte stream into packets, batching writes.
//! - `publish`: a PUBLISH's way through authorization, hooks, the retained store and fan-out.
//! - `sessions`: the sharded registry of sessions and each session's slot.
//! - `will`: wills, will delay and session expiry.
//! - `stats`: the counters `$SYS` reports.

mod connect;
mod connection;
mod publish;
mod server;
mod sessions;
mod shared;
mod stats;
mod subscribe;
mod will;
mod wire;

pub use server::RunningBroker;
pub use shared::Broker;
pub use stats::{Stats, StatsSnapshot};

#[cfg(test)]
mod tests;
