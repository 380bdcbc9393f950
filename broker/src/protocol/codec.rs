//! Decoding and encoding of MQTT control packets (being written: see the codec task).

use bytes::BytesMut;

use super::packet::{Packet, ProtocolVersion, ReasonCode};

/// Why bytes could not become a packet. Ends the connection: v5 clients get a DISCONNECT (or
/// CONNACK, before CONNECT completed) with `reason()`, 3.x clients a plain close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("packet of {0} bytes exceeds the maximum packet size")]
    TooLarge(usize),
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocolVersion(u8),
    #[error("unknown protocol name")]
    UnknownProtocolName,
    #[error("invalid topic name: {0}")]
    TopicNameInvalid(&'static str),
}

impl DecodeError {
    pub fn reason(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) | DecodeError::UnknownProtocolName => {
                ReasonCode::MALFORMED_PACKET
            }
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TooLarge(_) => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::TopicNameInvalid(_) => ReasonCode::TOPIC_NAME_INVALID,
        }
    }
}

/// Decodes one packet from the front of `buf` if a whole one is buffered, advancing `buf` past
/// it. `version` is `None` until CONNECT has been read (then only CONNECT is accepted).
/// `max_packet_size` bounds the whole packet (fixed header included): a larger one is refused as
/// soon as its remaining length is known, before its body is buffered.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, version, max_packet_size);
    Err(DecodeError::Malformed("codec not written yet"))
}

/// Appends the encoding of `packet` for a peer speaking `version` to `out`.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    let _ = (packet, version, out);
}
