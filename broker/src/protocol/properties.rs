//! MQTT 5 properties (§2.2.2): which packet may carry which property, decoding a property list
//! with every validity rule (unknown identifier, property not allowed here, duplicates, value
//! ranges), and encoding one. MQTT 3.x packets carry no properties at all.

use bytes::{BufMut, BytesMut};

use super::codec::DecodeError;
use super::packet::Properties;
use super::topic::valid_topic_name;
use super::wire::{bin_len, put_bin, put_str, put_varint, str_len, varint_len, Reader};

/// Who sent the packet being decoded: a few rules differ (a client may not put a subscription
/// identifier in PUBLISH, a server may put several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

/// The place a property list sits in: each property is allowed in some of them only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub const CONTENT_TYPE: u8 = 0x03;
pub const RESPONSE_TOPIC: u8 = 0x08;
pub const CORRELATION_DATA: u8 = 0x09;
pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub const SERVER_KEEP_ALIVE: u8 = 0x13;
pub const AUTHENTICATION_METHOD: u8 = 0x15;
pub const AUTHENTICATION_DATA: u8 = 0x16;
pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub const WILL_DELAY_INTERVAL: u8 = 0x18;
pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub const RESPONSE_INFORMATION: u8 = 0x1A;
pub const SERVER_REFERENCE: u8 = 0x1C;
pub const REASON_STRING: u8 = 0x1F;
pub const RECEIVE_MAXIMUM: u8 = 0x21;
pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub const TOPIC_ALIAS: u8 = 0x23;
pub const MAXIMUM_QOS: u8 = 0x24;
pub const RETAIN_AVAILABLE: u8 = 0x25;
pub const USER_PROPERTY: u8 = 0x26;
pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The contexts property `id` may appear in (table 2-4), `None` for an unknown identifier.
fn allowed_in(id: u32) -> Option<u16> {
    use PropertyContext::*;
    let message = Publish.bit() | Will.bit();
    let mask = match u8::try_from(id).ok()? {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => message,
        SUBSCRIPTION_IDENTIFIER => Publish.bit() | Subscribe.bit(),
        SESSION_EXPIRY_INTERVAL => Connect.bit() | ConnAck.bit() | Disconnect.bit(),
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => ConnAck.bit(),
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => Connect.bit() | ConnAck.bit() | Auth.bit(),
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => Connect.bit(),
        WILL_DELAY_INTERVAL => Will.bit(),
        SERVER_REFERENCE => ConnAck.bit() | Disconnect.bit(),
        REASON_STRING => {
            ConnAck.bit()
                | Ack.bit()
                | SubAck.bit()
                | UnsubAck.bit()
                | Disconnect.bit()
                | Auth.bit()
        }
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => {
            Connect.bit() | ConnAck.bit()
        }
        TOPIC_ALIAS => Publish.bit(),
        USER_PROPERTY => u16::MAX,
        _ => return None,
    };
    Some(mask)
}

/// Whether property `id` may appear in `ctx`.
pub fn allowed(id: u8, ctx: PropertyContext) -> bool {
    allowed_in(u32::from(id)).is_some_and(|mask| mask & ctx.bit() != 0)
}

fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("property included more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only values are 0 and 1.
fn flag(value: u8, what: &'static str) -> Result<u8, DecodeError> {
    if value > 1 {
        return Err(DecodeError::Protocol(what));
    }
    Ok(value)
}

fn non_zero_u16(value: u16, what: &'static str) -> Result<u16, DecodeError> {
    if value == 0 {
        return Err(DecodeError::Protocol(what));
    }
    Ok(value)
}

/// Reads a property length and that many bytes of properties allowed in `ctx`.
pub fn decode_properties(
    r: &mut Reader,
    ctx: PropertyContext,
    sender: Sender,
) -> Result<Properties, DecodeError> {
    let len = r.varint()? as usize;
    let mut p = r.sub(len)?;
    let mut props = Properties::default();
    while !p.is_empty() {
        let id = p.varint()?;
        let allowed =
            allowed_in(id).ok_or(DecodeError::Malformed("unknown property identifier"))?;
        if allowed & ctx.bit() == 0 {
            return Err(DecodeError::Malformed(
                "property not allowed in this packet",
            ));
        }
        // `allowed_in` accepted it, so it fits in a byte.
        match id as u8 {
            PAYLOAD_FORMAT_INDICATOR => once(
                &mut props.payload_format_indicator,
                flag(p.u8()?, "payload format indicator not 0 or 1")?,
            )?,
            MESSAGE_EXPIRY_INTERVAL => once(&mut props.message_expiry_interval, p.u32()?)?,
            CONTENT_TYPE => once(&mut props.content_type, p.string()?)?,
            RESPONSE_TOPIC => {
                let topic = p.string()?;
                // [MQTT-3.3.2-14]: the response topic is a topic name.
                if !valid_topic_name(&topic) {
                    return Err(DecodeError::Protocol("response topic is not a topic name"));
                }
                once(&mut props.response_topic, topic)?
            }
            CORRELATION_DATA => once(&mut props.correlation_data, p.binary()?)?,
            SUBSCRIPTION_IDENTIFIER => {
                let id = p.varint()?;
                if id == 0 {
                    return Err(DecodeError::Protocol("subscription identifier 0"));
                }
                match (ctx, sender) {
                    // [MQTT-3.3.4-6]: only the server puts them in PUBLISH.
                    (PropertyContext::Publish, Sender::Client) => {
                        return Err(DecodeError::Protocol(
                            "subscription identifier in a PUBLISH from a client",
                        ))
                    }
                    (PropertyContext::Publish, Sender::Server) => {}
                    _ if !props.subscription_identifiers.is_empty() => {
                        return Err(DecodeError::Protocol("property included more than once"))
                    }
                    _ => {}
                }
                props.subscription_identifiers.push(id);
            }
            SESSION_EXPIRY_INTERVAL => once(&mut props.session_expiry_interval, p.u32()?)?,
            ASSIGNED_CLIENT_IDENTIFIER => once(&mut props.assigned_client_identifier, p.string()?)?,
            SERVER_KEEP_ALIVE => once(&mut props.server_keep_alive, p.u16()?)?,
            AUTHENTICATION_METHOD => once(&mut props.authentication_method, p.string()?)?,
            AUTHENTICATION_DATA => once(&mut props.authentication_data, p.binary()?)?,
            REQUEST_PROBLEM_INFORMATION => once(
                &mut props.request_problem_information,
                flag(p.u8()?, "request problem information not 0 or 1")?,
            )?,
            WILL_DELAY_INTERVAL => once(&mut props.will_delay_interval, p.u32()?)?,
            REQUEST_RESPONSE_INFORMATION => once(
                &mut props.request_response_information,
                flag(p.u8()?, "request response information not 0 or 1")?,
            )?,
            RESPONSE_INFORMATION => once(&mut props.response_information, p.string()?)?,
            SERVER_REFERENCE => once(&mut props.server_reference, p.string()?)?,
            REASON_STRING => once(&mut props.reason_string, p.string()?)?,
            RECEIVE_MAXIMUM => once(
                &mut props.receive_maximum,
                non_zero_u16(p.u16()?, "receive maximum 0")?,
            )?,
            TOPIC_ALIAS_MAXIMUM => once(&mut props.topic_alias_maximum, p.u16()?)?,
            // Alias 0 is decoded: the session refuses it with 0x94 Topic Alias invalid, as
            // section 3.3.2.3.4 asks, which a codec error (0x82) could not say.
            TOPIC_ALIAS => once(&mut props.topic_alias, p.u16()?)?,
            MAXIMUM_QOS => once(
                &mut props.maximum_qos,
                flag(p.u8()?, "maximum QoS not 0 or 1")?,
            )?,
            RETAIN_AVAILABLE => once(
                &mut props.retain_available,
                flag(p.u8()?, "retain available not 0 or 1")?,
            )?,
            USER_PROPERTY => {
                let key = p.string()?;
                let value = p.string()?;
                props.user_properties.push((key, value));
            }
            MAXIMUM_PACKET_SIZE => {
                let size = p.u32()?;
                if size == 0 {
                    return Err(DecodeError::Protocol("maximum packet size 0"));
                }
                once(&mut props.maximum_packet_size, size)?
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => once(
                &mut props.wildcard_subscription_available,
                flag(p.u8()?, "wildcard subscription available not 0 or 1")?,
            )?,
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => once(
                &mut props.subscription_identifier_available,
                flag(p.u8()?, "subscription identifier available not 0 or 1")?,
            )?,
            SHARED_SUBSCRIPTION_AVAILABLE => once(
                &mut props.shared_subscription_available,
                flag(p.u8()?, "shared subscription available not 0 or 1")?,
            )?,
            _ => return Err(DecodeError::Malformed("unknown property identifier")),
        }
    }
    // §3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.3: data without a method is a protocol error.
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "authentication data without authentication method",
        ));
    }
    Ok(props)
}

/// Bytes the properties themselves take (without the property length prefix).
pub fn properties_len(p: &Properties) -> usize {
    // Fast path: most packets carry no properties.
    if p.user_properties.is_empty()
        && p.subscription_identifiers.is_empty()
        && *p == Properties::default()
    {
        return 0;
    }
    let byte = |v: &Option<u8>| if v.is_some() { 2 } else { 0 };
    let two = |v: &Option<u16>| if v.is_some() { 3 } else { 0 };
    let four = |v: &Option<u32>| if v.is_some() { 5 } else { 0 };
    let string = |v: &Option<String>| v.as_deref().map_or(0, |s| 1 + str_len(s));
    let binary = |v: &Option<bytes::Bytes>| v.as_deref().map_or(0, |b| 1 + bin_len(b));
    byte(&p.payload_format_indicator)
        + four(&p.message_expiry_interval)
        + string(&p.content_type)
        + string(&p.response_topic)
        + binary(&p.correlation_data)
        + p.subscription_identifiers
            .iter()
            .map(|&id| 1 + varint_len(id as usize))
            .sum::<usize>()
        + four(&p.session_expiry_interval)
        + string(&p.assigned_client_identifier)
        + two(&p.server_keep_alive)
        + string(&p.authentication_method)
        + binary(&p.authentication_data)
        + byte(&p.request_problem_information)
        + four(&p.will_delay_interval)
        + byte(&p.request_response_information)
        + string(&p.response_information)
        + string(&p.server_reference)
        + string(&p.reason_string)
        + two(&p.receive_maximum)
        + two(&p.topic_alias_maximum)
        + two(&p.topic_alias)
        + byte(&p.maximum_qos)
        + byte(&p.retain_available)
        + p.user_properties
            .iter()
            .map(|(k, v)| 1 + str_len(k) + str_len(v))
            .sum::<usize>()
        + four(&p.maximum_packet_size)
        + byte(&p.wildcard_subscription_available)
        + byte(&p.subscription_identifier_available)
        + byte(&p.shared_subscription_available)
}

/// Bytes a property list takes on the wire, length prefix included, given `properties_len`.
pub fn with_prefix(props_len: usize) -> usize {
    varint_len(props_len) + props_len
}

/// Appends the property length `props_len` (from `properties_len`) and the properties.
pub fn put_properties(out: &mut BytesMut, p: &Properties, props_len: usize) {
    put_varint(out, props_len);
    if props_len == 0 {
        return;
    }
    let byte = |out: &mut BytesMut, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            out.put_u8(id);
            out.put_u8(v);
        }
    };
    let two = |out: &mut BytesMut, id: u8, v: Option<u16>| {
        if let Some(v) = v {
            out.put_u8(id);
            out.put_u16(v);
        }
    };
    let four = |out: &mut BytesMut, id: u8, v: Option<u32>| {
        if let Some(v) = v {
            out.put_u8(id);
            out.put_u32(v);
        }
    };
    let string = |out: &mut BytesMut, id: u8, v: &Option<String>| {
        if let Some(v) = v {
            out.put_u8(id);
            put_str(out, v);
        }
    };
    let binary = |out: &mut BytesMut, id: u8, v: &Option<bytes::Bytes>| {
        if let Some(v) = v {
            out.put_u8(id);
            put_bin(out, v);
        }
    };
    byte(out, PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
    four(out, MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
    string(out, CONTENT_TYPE, &p.content_type);
    string(out, RESPONSE_TOPIC, &p.response_topic);
    binary(out, CORRELATION_DATA, &p.correlation_data);
    for &id in &p.subscription_identifiers {
        out.put_u8(SUBSCRIPTION_IDENTIFIER);
        put_varint(out, id as usize);
    }
    four(out, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    string(
        out,
        ASSIGNED_CLIENT_IDENTIFIER,
        &p.assigned_client_identifier,
    );
    two(out, SERVER_KEEP_ALIVE, p.server_keep_alive);
    string(out, AUTHENTICATION_METHOD, &p.authentication_method);
    binary(out, AUTHENTICATION_DATA, &p.authentication_data);
    byte(
        out,
        REQUEST_PROBLEM_INFORMATION,
        p.request_problem_information,
    );
    four(out, WILL_DELAY_INTERVAL, p.will_delay_interval);
    byte(
        out,
        REQUEST_RESPONSE_INFORMATION,
        p.request_response_information,
    );
    string(out, RESPONSE_INFORMATION, &p.response_information);
    string(out, SERVER_REFERENCE, &p.server_reference);
    string(out, REASON_STRING, &p.reason_string);
    two(out, RECEIVE_MAXIMUM, p.receive_maximum);
    two(out, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    two(out, TOPIC_ALIAS, p.topic_alias);
    byte(out, MAXIMUM_QOS, p.maximum_qos);
    byte(out, RETAIN_AVAILABLE, p.retain_available);
    for (k, v) in &p.user_properties {
        out.put_u8(USER_PROPERTY);
        put_str(out, k);
        put_str(out, v);
    }
    four(out, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    byte(
        out,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        p.wildcard_subscription_available,
    );
    byte(
        out,
        SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        p.subscription_identifier_available,
    );
    byte(
        out,
        SHARED_SUBSCRIPTION_AVAILABLE,
        p.shared_subscription_available,
    );
}
