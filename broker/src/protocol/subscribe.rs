//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (§3.8 - §3.11): topic filter lists with their
//! subscription options, and the per-filter reason codes that answer them.

use bytes::{BufMut, BytesMut};

use super::codec::{DecodeError, Lens};
use super::packet::{
    ProtocolVersion, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions,
    UnsubAck, Unsubscribe,
};
use super::properties::{
    decode_properties, properties_len, put_properties, with_prefix, PropertyContext, Sender,
};
use super::publish::packet_id;
use super::topic::{parse_shared, valid_topic_filter};
use super::wire::{put_str, str_len, Reader};

fn topic_filter(r: &mut Reader) -> Result<String, DecodeError> {
    let filter = r.string()?;
    if !valid_topic_filter(&filter) {
        return Err(DecodeError::Malformed("invalid topic filter [MQTT-4.7.1]"));
    }
    Ok(filter)
}

fn subscription_options(
    byte: u8,
    version: ProtocolVersion,
) -> Result<SubscriptionOptions, DecodeError> {
    if !version.is_v5() {
        if byte & 0xFC != 0 {
            return Err(DecodeError::Malformed(
                "subscription options reserved bits set [MQTT-3.8.3-4]",
            ));
        }
        let qos = QoS::from_u8(byte)
            .ok_or(DecodeError::Malformed("subscription QoS 3 [MQTT-3.8.3-4]"))?;
        return Ok(SubscriptionOptions::qos(qos));
    }
    if byte & 0xC0 != 0 {
        return Err(DecodeError::Malformed(
            "subscription options reserved bits set [MQTT-3.8.3-5]",
        ));
    }
    // v5 §3.8.3.1 calls QoS 3 and retain handling 3 protocol errors.
    let qos =
        QoS::from_u8(byte & 0x03).ok_or(DecodeError::Protocol("subscription maximum QoS 3"))?;
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::Protocol("retain handling 3")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

fn options_byte(o: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut byte = o.qos as u8;
    if version.is_v5() {
        if o.no_local {
            byte |= 0x04;
        }
        if o.retain_as_published {
            byte |= 0x08;
        }
        byte |= match o.retain_handling {
            RetainHandling::SendAtSubscribe => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        } << 4;
    }
    byte
}

pub fn decode_subscribe(mut r: Reader, version: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = if version.is_v5() {
        decode_properties(&mut r, PropertyContext::Subscribe, Sender::Client)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = topic_filter(&mut r)?;
        let options = subscription_options(r.u8()?, version)?;
        if options.no_local && parse_shared(&filter).is_some() {
            return Err(DecodeError::Protocol(
                "no local on a shared subscription [MQTT-3.8.3-4]",
            ));
        }
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol(
            "SUBSCRIBE without topic filters [MQTT-3.8.3-3]",
        ));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

pub fn subscribe_len(s: &Subscribe, version: ProtocolVersion) -> Lens {
    let mut body = 2 + s.filters.iter().map(|(f, _)| str_len(f) + 1).sum::<usize>();
    let mut props = 0;
    if version.is_v5() {
        props = properties_len(&s.properties);
        body += with_prefix(props);
    }
    Lens { body, props }
}

pub fn put_subscribe(s: &Subscribe, version: ProtocolVersion, props: usize, out: &mut BytesMut) {
    out.put_u16(s.packet_id);
    if version.is_v5() {
        put_properties(out, &s.properties, props);
    }
    for (filter, options) in &s.filters {
        put_str(out, filter);
        out.put_u8(options_byte(options, version));
    }
}

/// §3.9.3
const SUBACK_REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// §3.11.3
const UNSUBACK_REASONS: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];

fn reason_list(
    r: &mut Reader,
    valid: &[u8],
    what: &'static str,
) -> Result<Vec<ReasonCode>, DecodeError> {
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = r.u8()?;
        if !valid.contains(&code) {
            return Err(DecodeError::Protocol(what));
        }
        reasons.push(ReasonCode(code));
    }
    if reasons.is_empty() {
        return Err(DecodeError::Protocol(
            "acknowledgement without reason codes",
        ));
    }
    Ok(reasons)
}

pub fn decode_suback(mut r: Reader, version: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let (properties, reasons) = if version.is_v5() {
        let props = decode_properties(&mut r, PropertyContext::SubAck, Sender::Server)?;
        (
            props,
            reason_list(&mut r, SUBACK_REASONS, "invalid SUBACK reason code")?,
        )
    } else {
        let codes = reason_list(
            &mut r,
            &[0x00, 0x01, 0x02, 0x80],
            "invalid SUBACK return code",
        )?;
        (Default::default(), codes)
    };
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

/// The 3.x SUBACK return code for a reason: the granted QoS, or 0x80 for any failure.
pub fn suback_return_code(reason: ReasonCode) -> u8 {
    if reason.0 <= 2 {
        reason.0
    } else {
        0x80
    }
}

pub fn suback_len(s: &SubAck, version: ProtocolVersion) -> Lens {
    let mut body = 2 + s.reasons.len();
    let mut props = 0;
    if version.is_v5() {
        props = properties_len(&s.properties);
        body += with_prefix(props);
    }
    Lens { body, props }
}

pub fn put_suback(s: &SubAck, version: ProtocolVersion, props: usize, out: &mut BytesMut) {
    out.put_u16(s.packet_id);
    if version.is_v5() {
        put_properties(out, &s.properties, props);
        for reason in &s.reasons {
            out.put_u8(reason.0);
        }
    } else {
        for &reason in &s.reasons {
            out.put_u8(suback_return_code(reason));
        }
    }
}

pub fn decode_unsubscribe(
    mut r: Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = if version.is_v5() {
        decode_properties(&mut r, PropertyContext::Unsubscribe, Sender::Client)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(topic_filter(&mut r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol(
            "UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

pub fn unsubscribe_len(u: &Unsubscribe, version: ProtocolVersion) -> Lens {
    let mut body = 2 + u.filters.iter().map(|f| str_len(f)).sum::<usize>();
    let mut props = 0;
    if version.is_v5() {
        props = properties_len(&u.properties);
        body += with_prefix(props);
    }
    Lens { body, props }
}

pub fn put_unsubscribe(
    u: &Unsubscribe,
    version: ProtocolVersion,
    props: usize,
    out: &mut BytesMut,
) {
    out.put_u16(u.packet_id);
    if version.is_v5() {
        put_properties(out, &u.properties, props);
    }
    for filter in &u.filters {
        put_str(out, filter);
    }
}

/// A 3.x UNSUBACK is only a packet identifier; its reasons come back empty.
pub fn decode_unsuback(mut r: Reader, version: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    if !version.is_v5() {
        r.finish()?;
        return Ok(UnsubAck {
            packet_id,
            properties: Default::default(),
            reasons: Vec::new(),
        });
    }
    let properties = decode_properties(&mut r, PropertyContext::UnsubAck, Sender::Server)?;
    let reasons = reason_list(&mut r, UNSUBACK_REASONS, "invalid UNSUBACK reason code")?;
    Ok(UnsubAck {
        packet_id,
        properties,
        reasons,
    })
}

pub fn unsuback_len(u: &UnsubAck, version: ProtocolVersion) -> Lens {
    if !version.is_v5() {
        return Lens { body: 2, props: 0 };
    }
    let props = properties_len(&u.properties);
    Lens {
        body: 2 + with_prefix(props) + u.reasons.len(),
        props,
    }
}

pub fn put_unsuback(u: &UnsubAck, version: ProtocolVersion, props: usize, out: &mut BytesMut) {
    out.put_u16(u.packet_id);
    if version.is_v5() {
        put_properties(out, &u.properties, props);
        for reason in &u.reasons {
            out.put_u8(reason.0);
        }
    }
}
