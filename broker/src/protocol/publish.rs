//! PUBLISH and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (§3.3 - §3.7). The payload
//! is a slice of the read buffer, never copied.

use bytes::{BufMut, BytesMut};

use super::codec::{DecodeError, Lens};
use super::packet::{Ack, ProtocolVersion, Publish, QoS, ReasonCode};
use super::properties::{
    decode_properties, properties_len, put_properties, with_prefix, PropertyContext, Sender,
};
use super::wire::{put_str, str_len, Reader};

/// The PUBLISH fixed header flags: DUP, QoS, RETAIN. QoS 3 is malformed [MQTT-3.3.1-4] and so
/// is DUP on a QoS 0 message [MQTT-3.3.1-2].
pub fn publish_flags(flags: u8) -> Result<(bool, QoS, bool), DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0x03)
        .ok_or(DecodeError::Malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]"))?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed(
            "DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]",
        ));
    }
    Ok((dup, qos, flags & 0x01 != 0))
}

/// The first byte of a PUBLISH. DUP is never set on QoS 0 [MQTT-3.3.1-2].
pub fn publish_first_byte(p: &Publish) -> u8 {
    let mut byte = 0x30 | (p.qos as u8) << 1;
    if p.dup && p.qos != QoS::AtMostOnce {
        byte |= 0x08;
    }
    if p.retain {
        byte |= 0x01;
    }
    byte
}

/// A packet identifier, which is never 0 [MQTT-2.3.1-1].
pub fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Malformed("packet identifier 0 [MQTT-2.3.1-1]")),
        id => Ok(id),
    }
}

pub fn decode_publish(
    flags: u8,
    mut r: Reader,
    version: ProtocolVersion,
    sender: Sender,
) -> Result<Publish, DecodeError> {
    let (dup, qos, retain) = publish_flags(flags)?;
    let topic = r.string()?;
    // [MQTT-3.3.2-2]: no wildcards. An empty name is only usable in v5 with a topic alias;
    // whether the alias is there and known is the session engine's business.
    if topic.contains(['+', '#']) {
        return Err(DecodeError::TopicNameInvalid("wildcard in PUBLISH topic"));
    }
    if topic.is_empty() && !version.is_v5() {
        return Err(DecodeError::TopicNameInvalid("empty PUBLISH topic"));
    }
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(packet_id(&mut r)?)
    };
    let properties = if version.is_v5() {
        decode_properties(&mut r, PropertyContext::Publish, sender)?
    } else {
        Default::default()
    };
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

pub fn publish_len(p: &Publish, version: ProtocolVersion) -> Lens {
    let mut body = str_len(&p.topic) + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        body += 2;
    }
    let mut props = 0;
    if version.is_v5() {
        props = properties_len(&p.properties);
        body += with_prefix(props);
    }
    Lens { body, props }
}

/// A QoS > 0 PUBLISH without a packet identifier is an engine bug; it is written with 0 rather
/// than panicking.
pub fn put_publish(p: &Publish, version: ProtocolVersion, props: usize, out: &mut BytesMut) {
    put_str(out, &p.topic);
    if p.qos != QoS::AtMostOnce {
        out.put_u16(p.packet_id.unwrap_or(0));
    }
    if version.is_v5() {
        put_properties(out, &p.properties, props);
    }
    out.put_slice(&p.payload);
}

/// Which acknowledgement: they share a shape but not their reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// PUBACK
    Ack,
    /// PUBREC
    Rec,
    /// PUBREL
    Rel,
    /// PUBCOMP
    Comp,
}

impl AckKind {
    fn reasons(self) -> &'static [u8] {
        match self {
            // §3.4.2.1, §3.5.2.1
            AckKind::Ack | AckKind::Rec => &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
            // §3.6.2.1, §3.7.2.1
            AckKind::Rel | AckKind::Comp => &[0x00, 0x92],
        }
    }
}

/// v5 acks may stop after the packet identifier (reason 0, no properties) or after the reason
/// code (no properties) [MQTT-3.4.2-1].
pub fn decode_ack(
    kind: AckKind,
    mut r: Reader,
    version: ProtocolVersion,
) -> Result<Ack, DecodeError> {
    let mut ack = Ack::new(packet_id(&mut r)?);
    if version.is_v5() && !r.is_empty() {
        let code = r.u8()?;
        if !kind.reasons().contains(&code) {
            return Err(DecodeError::Protocol("invalid acknowledgement reason code"));
        }
        ack.reason = ReasonCode(code);
        if !r.is_empty() {
            ack.properties = decode_properties(&mut r, PropertyContext::Ack, Sender::Client)?;
        }
    }
    r.finish()?;
    Ok(ack)
}

pub fn ack_len(a: &Ack, version: ProtocolVersion) -> Lens {
    if !version.is_v5() {
        return Lens { body: 2, props: 0 };
    }
    let props = properties_len(&a.properties);
    let body = if props > 0 {
        3 + with_prefix(props)
    } else if a.reason != ReasonCode::SUCCESS {
        3
    } else {
        2
    };
    Lens { body, props }
}

pub fn put_ack(a: &Ack, lens: Lens, out: &mut BytesMut) {
    out.put_u16(a.packet_id);
    if lens.body > 2 {
        out.put_u8(a.reason.0);
    }
    if lens.body > 3 {
        put_properties(out, &a.properties, lens.props);
    }
}
