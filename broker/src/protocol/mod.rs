//! The MQTT wire protocol: packet types (`packet`) and the codec that turns bytes into packets
//! and back (`codec`), with every malformed-packet rule of MQTT 3.1, 3.1.1 and 5.0 enforced on
//! the way in. Nothing here does I/O.

pub mod codec;
pub mod packet;
pub mod topic;

pub use codec::{decode, encode, DecodeError};
pub use packet::*;
