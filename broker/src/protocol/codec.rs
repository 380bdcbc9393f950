//! Decoding and encoding of MQTT control packets: the fixed header (§2.1), which packet types
//! may arrive when, and dispatch to one module per packet family (`connect`, `publish`,
//! `subscribe`, `disconnect`), which own the variable headers and payloads.

use bytes::{Buf, BufMut, BytesMut};

use super::connect::{
    connack_len, connect_len, decode_connack, decode_connect, put_connack, put_connect,
};
use super::disconnect::{decode_auth, decode_disconnect, put_reason_body, reason_body_len};
use super::packet::{Packet, ProtocolVersion, ReasonCode};
use super::properties::Sender;
use super::publish::{
    ack_len, decode_ack, decode_publish, publish_first_byte, publish_flags, publish_len, put_ack,
    put_publish, AckKind,
};
use super::subscribe::{
    decode_suback, decode_subscribe, decode_unsuback, decode_unsubscribe, put_suback,
    put_subscribe, put_unsuback, put_unsubscribe, suback_len, subscribe_len, unsuback_len,
    unsubscribe_len,
};
use super::wire::{parse_varint, put_varint, varint_len, Reader};

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

    /// For `UnsupportedProtocolVersion`: whether the refusing CONNACK uses the v5 layout
    /// (level 5) or the 3.x one (every other level).
    pub fn connack_is_v5(&self) -> bool {
        matches!(self, DecodeError::UnsupportedProtocolVersion(5))
    }
}

/// Body length and property length of a packet about to be encoded, so that properties are
/// measured once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lens {
    pub body: usize,
    pub props: usize,
}

pub const CONNECT: u8 = 1;
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBSCRIBE: u8 = 8;
pub const SUBACK: u8 = 9;
pub const UNSUBSCRIBE: u8 = 10;
pub const UNSUBACK: u8 = 11;
pub const PINGREQ: u8 = 12;
pub const PINGRESP: u8 = 13;
pub const DISCONNECT: u8 = 14;
pub const AUTH: u8 = 15;

/// Decodes one packet sent by a client from the front of `buf` if a whole one is buffered,
/// advancing `buf` past it. `version` is `None` until CONNECT has been read (then only CONNECT
/// is accepted). `max_packet_size` bounds the whole packet (fixed header included): a larger
/// one is refused as soon as its remaining length is known, before its body is buffered.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    decode_from(buf, version, max_packet_size, Sender::Client)
}

/// Decodes one packet sent by a server (CONNACK, SUBACK, ... as a client sees them), with the
/// same rules as `decode`. For test clients and tools; the broker itself never needs it.
pub fn decode_from_server(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    decode_from(buf, Some(version), max_packet_size, Sender::Server)
}

fn decode_from(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
    sender: Sender,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // The type and flags are judged before waiting for the rest, so a peer cannot make us
    // buffer a packet that will be refused anyway.
    check_fixed_header(first, version, sender)?;
    let Some((remaining, len_bytes)) = parse_varint(buf.get(1..).unwrap_or_default())? else {
        return Ok(None);
    };
    let total = 1 + len_bytes + remaining as usize;
    if total > max_packet_size {
        return Err(DecodeError::TooLarge(total));
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(1 + len_bytes);
    decode_body(first, Reader::new(frame), version, sender).map(Some)
}

/// The packet types each side may send, and the reserved flag bits [MQTT-2.2.2-2].
fn check_fixed_header(
    first: u8,
    version: Option<ProtocolVersion>,
    sender: Sender,
) -> Result<(), DecodeError> {
    let (kind, flags) = (first >> 4, first & 0x0F);
    let v5 = version.is_some_and(ProtocolVersion::is_v5);
    let expected_flags = match kind {
        0 => return Err(DecodeError::Malformed("reserved packet type 0")),
        AUTH if version.is_some() && !v5 => {
            return Err(DecodeError::Malformed("reserved packet type 15"))
        }
        PUBLISH => {
            return publish_flags(flags)
                .map(|_| ())
                .and(check_order(kind, version))
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags != expected_flags {
        return Err(DecodeError::Malformed(
            "reserved fixed header flags [MQTT-2.2.2-2]",
        ));
    }
    let allowed = match sender {
        Sender::Client => matches!(
            kind,
            CONNECT
                | PUBLISH
                | PUBACK
                | PUBREC
                | PUBREL
                | PUBCOMP
                | SUBSCRIBE
                | UNSUBSCRIBE
                | PINGREQ
                | DISCONNECT
                | AUTH
        ),
        Sender::Server => {
            matches!(
                kind,
                CONNACK
                    | PUBLISH
                    | PUBACK
                    | PUBREC
                    | PUBREL
                    | PUBCOMP
                    | SUBACK
                    | UNSUBACK
                    | PINGRESP
                    | AUTH
            ) || (kind == DISCONNECT && v5)
        }
    };
    if !allowed {
        return Err(DecodeError::Protocol(
            "packet type not sent in this direction",
        ));
    }
    check_order(kind, version)
}

/// CONNECT first and only once [MQTT-3.1.0-1], [MQTT-3.1.0-2].
fn check_order(kind: u8, version: Option<ProtocolVersion>) -> Result<(), DecodeError> {
    match (kind, version) {
        (CONNECT, None) => Ok(()),
        (_, None) => Err(DecodeError::Protocol(
            "first packet is not CONNECT [MQTT-3.1.0-1]",
        )),
        (CONNECT, Some(_)) => Err(DecodeError::Protocol("second CONNECT [MQTT-3.1.0-2]")),
        _ => Ok(()),
    }
}

fn decode_body(
    first: u8,
    r: Reader,
    version: Option<ProtocolVersion>,
    sender: Sender,
) -> Result<Packet, DecodeError> {
    let (kind, flags) = (first >> 4, first & 0x0F);
    let Some(version) = version else {
        // `check_fixed_header` let only CONNECT through.
        return decode_connect(r).map(|c| Packet::Connect(Box::new(c)));
    };
    Ok(match kind {
        CONNACK => Packet::ConnAck(decode_connack(r, version)?),
        PUBLISH => Packet::Publish(decode_publish(flags, r, version, sender)?),
        PUBACK => Packet::PubAck(decode_ack(AckKind::Ack, r, version)?),
        PUBREC => Packet::PubRec(decode_ack(AckKind::Rec, r, version)?),
        PUBREL => Packet::PubRel(decode_ack(AckKind::Rel, r, version)?),
        PUBCOMP => Packet::PubComp(decode_ack(AckKind::Comp, r, version)?),
        SUBSCRIBE => Packet::Subscribe(decode_subscribe(r, version)?),
        SUBACK => Packet::SubAck(decode_suback(r, version)?),
        UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r, version)?),
        UNSUBACK => Packet::UnsubAck(decode_unsuback(r, version)?),
        PINGREQ => {
            r.finish()?;
            Packet::PingReq
        }
        PINGRESP => {
            r.finish()?;
            Packet::PingResp
        }
        DISCONNECT => Packet::Disconnect(decode_disconnect(r, version, sender)?),
        AUTH => Packet::Auth(decode_auth(r, sender)?),
        _ => return Err(DecodeError::Protocol("unexpected packet type")),
    })
}

fn first_byte(packet: &Packet) -> u8 {
    let kind = match packet {
        Packet::Publish(p) => return publish_first_byte(p),
        Packet::PubRel(_) => return PUBREL << 4 | 0b0010,
        Packet::Subscribe(_) => return SUBSCRIBE << 4 | 0b0010,
        Packet::Unsubscribe(_) => return UNSUBSCRIBE << 4 | 0b0010,
        Packet::Connect(_) => CONNECT,
        Packet::ConnAck(_) => CONNACK,
        Packet::PubAck(_) => PUBACK,
        Packet::PubRec(_) => PUBREC,
        Packet::PubComp(_) => PUBCOMP,
        Packet::SubAck(_) => SUBACK,
        Packet::UnsubAck(_) => UNSUBACK,
        Packet::PingReq => PINGREQ,
        Packet::PingResp => PINGRESP,
        Packet::Disconnect(_) => DISCONNECT,
        Packet::Auth(_) => AUTH,
    };
    kind << 4
}

fn lens(packet: &Packet, version: ProtocolVersion) -> Lens {
    match packet {
        Packet::Connect(c) => connect_len(c),
        Packet::ConnAck(c) => connack_len(c, version),
        Packet::Publish(p) => publish_len(p, version),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack_len(a, version)
        }
        Packet::Subscribe(s) => subscribe_len(s, version),
        Packet::SubAck(s) => suback_len(s, version),
        Packet::Unsubscribe(u) => unsubscribe_len(u, version),
        Packet::UnsubAck(u) => unsuback_len(u, version),
        Packet::PingReq | Packet::PingResp => Lens { body: 0, props: 0 },
        Packet::Disconnect(d) => reason_body_len(d.reason, &d.properties, version),
        Packet::Auth(a) => reason_body_len(a.reason, &a.properties, version),
    }
}

/// The number of bytes `encode` appends for `packet`, fixed header included: what a peer's
/// Maximum Packet Size is compared with.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let body = lens(packet, version).body;
    1 + varint_len(body) + body
}

/// Appends the encoding of `packet` for a peer speaking `version` to `out`. Properties are
/// written for v5 only; 3.x reason codes are mapped (see `connack_return_code`,
/// `suback_return_code`). CONNECT is encoded for the version it names.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    let lens = lens(packet, version);
    out.reserve(1 + varint_len(lens.body) + lens.body);
    out.put_u8(first_byte(packet));
    put_varint(out, lens.body);
    match packet {
        Packet::Connect(c) => put_connect(c, lens.props, out),
        Packet::ConnAck(c) => put_connack(c, version, lens.props, out),
        Packet::Publish(p) => put_publish(p, version, lens.props, out),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            put_ack(a, lens, out)
        }
        Packet::Subscribe(s) => put_subscribe(s, version, lens.props, out),
        Packet::SubAck(s) => put_suback(s, version, lens.props, out),
        Packet::Unsubscribe(u) => put_unsubscribe(u, version, lens.props, out),
        Packet::UnsubAck(u) => put_unsuback(u, version, lens.props, out),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => put_reason_body(d.reason, &d.properties, lens, out),
        Packet::Auth(a) => put_reason_body(a.reason, &a.properties, lens, out),
    }
}
