//! The MQTT wire protocol: packet types (`packet`) and the codec that turns bytes into packets
//! and back (`codec`), with every malformed-packet rule of MQTT 3.1, 3.1.1 and 5.0 enforced on
//! the way in. Nothing here does I/O.

pub mod codec;
mod connect;
mod disconnect;
pub mod packet;
pub mod properties;
mod publish;
mod subscribe;
pub mod topic;
mod wire;

#[cfg(test)]
mod codec_tests;

pub use codec::{decode, decode_from_server, encode, encoded_len, DecodeError};
pub use connect::connack_return_code;
pub use packet::*;
pub use subscribe::suback_return_code;
#[cfg(test)]
mod roundtrip_tests;
