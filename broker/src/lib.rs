//! WaspMQ: an MQTT 3.1 / 3.1.1 / 5.0 broker whose behaviour is extended by sandboxed
//! WebAssembly components. See `ARCHITECTURE.md` for the map.

pub mod broker;
pub mod config;
pub mod fdlimit;
pub mod logging;
pub mod persistence;
pub mod plugins;
pub mod protocol;
pub mod routing;
pub mod session;
pub mod transport;
