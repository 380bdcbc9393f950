//! CONNECT and CONNACK (§3.1, §3.2): the protocol name and level that decide the version, the
//! connect flags rules, will and credentials; and the CONNACK return code mapping for 3.x.

use bytes::{BufMut, BytesMut};

use super::codec::{DecodeError, Lens};
use super::packet::{ConnAck, Connect, ProtocolVersion, QoS, ReasonCode, Will};
use super::properties::{
    decode_properties, properties_len, put_properties, with_prefix, PropertyContext, Sender,
};
use super::topic::valid_topic_name;
use super::wire::{bin_len, put_bin, put_str, str_len, Reader};

const NAME_V31: &str = "MQIsdp";
const NAME_V311_V5: &str = "MQTT";

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL_FLAG: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// Reads the body of a CONNECT. The protocol name and level in it pick the version.
pub fn decode_connect(mut r: Reader) -> Result<Connect, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    let protocol = match (name.as_str(), level) {
        (NAME_V311_V5, 4) => ProtocolVersion::V311,
        (NAME_V311_V5, 5) => ProtocolVersion::V5,
        (NAME_V31, 3) => ProtocolVersion::V31,
        // [MQTT-3.1.2-2]: answered with CONNACK "unacceptable protocol version".
        (NAME_V311_V5 | NAME_V31, other) => {
            return Err(DecodeError::UnsupportedProtocolVersion(other))
        }
        // [MQTT-3.1.2-1]: closed without CONNACK.
        _ => return Err(DecodeError::UnknownProtocolName),
    };
    let v5 = protocol.is_v5();

    let flags = r.u8()?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::Malformed(
            "CONNECT reserved flag set [MQTT-3.1.2-3]",
        ));
    }
    let will_flag = flags & WILL_FLAG != 0;
    let will_qos = (flags >> WILL_QOS_SHIFT) & 0x03;
    let will_retain = flags & WILL_RETAIN != 0;
    if !will_flag && will_qos != 0 {
        return Err(DecodeError::Malformed(
            "will QoS without will flag [MQTT-3.1.2-13]",
        ));
    }
    if !will_flag && will_retain {
        return Err(DecodeError::Malformed(
            "will retain without will flag [MQTT-3.1.2-15]",
        ));
    }
    let will_qos =
        QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3 [MQTT-3.1.2-14]"))?;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    if has_password && !has_username && !v5 {
        return Err(DecodeError::Malformed(
            "password without user name [MQTT-3.1.2-22]",
        ));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        decode_properties(&mut r, PropertyContext::Connect, Sender::Client)?
    } else {
        Default::default()
    };
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 {
            decode_properties(&mut r, PropertyContext::Will, Sender::Client)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        if !valid_topic_name(&topic) {
            return Err(DecodeError::TopicNameInvalid("will topic"));
        }
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

fn protocol_name(protocol: ProtocolVersion) -> &'static str {
    match protocol {
        ProtocolVersion::V31 => NAME_V31,
        ProtocolVersion::V311 | ProtocolVersion::V5 => NAME_V311_V5,
    }
}

/// CONNECT is encoded for `c.protocol`, the version it announces.
pub fn connect_len(c: &Connect) -> Lens {
    let v5 = c.protocol.is_v5();
    let props = if v5 { properties_len(&c.properties) } else { 0 };
    let mut body = str_len(protocol_name(c.protocol)) + 1 + 1 + 2 + str_len(&c.client_id);
    if v5 {
        body += with_prefix(props);
    }
    if let Some(will) = &c.will {
        if v5 {
            body += with_prefix(properties_len(&will.properties));
        }
        body += str_len(&will.topic) + bin_len(&will.payload);
    }
    body += c.username.as_deref().map_or(0, str_len);
    body += c.password.as_deref().map_or(0, bin_len);
    Lens { body, props }
}

pub fn put_connect(c: &Connect, props: usize, out: &mut BytesMut) {
    let v5 = c.protocol.is_v5();
    put_str(out, protocol_name(c.protocol));
    out.put_u8(c.protocol.level());
    let mut flags = 0;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(will) = &c.will {
        flags |= WILL_FLAG | (will.qos as u8) << WILL_QOS_SHIFT;
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v5 {
        put_properties(out, &c.properties, props);
    }
    put_str(out, &c.client_id);
    if let Some(will) = &c.will {
        if v5 {
            put_properties(out, &will.properties, properties_len(&will.properties));
        }
        put_str(out, &will.topic);
        put_bin(out, &will.payload);
    }
    if let Some(username) = &c.username {
        put_str(out, username);
    }
    if let Some(password) = &c.password {
        put_bin(out, password);
    }
}

/// The MQTT 3.x CONNACK return code standing for a v5 reason code. The five 3.x refusals map
/// one to one (0x84 -> 1, 0x85 -> 2, 0x88/0x89 -> 3, 0x86 -> 4, 0x87 -> 5); of the other v5
/// refusals, the authentication ones (0x8C bad authentication method) become 4 "bad user name
/// or password", 0x8A banned becomes 5 "not authorized", and every remaining error (unspecified,
/// malformed, quota, rate, server moved, ...) becomes 3 "server unavailable", the only 3.x code
/// that says "not now, not here" without blaming the client's identity or credentials.
pub fn connack_return_code(reason: ReasonCode) -> u8 {
    match reason.0 {
        0x00 => 0,
        0x84 => 1,
        0x85 => 2,
        0x88 | 0x89 => 3,
        0x86 | 0x8C => 4,
        0x87 | 0x8A => 5,
        _ => 3,
    }
}

fn reason_from_return_code(code: u8) -> Option<ReasonCode> {
    Some(match code {
        0 => ReasonCode::SUCCESS,
        1 => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        2 => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
        3 => ReasonCode::SERVER_UNAVAILABLE,
        4 => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        5 => ReasonCode::NOT_AUTHORIZED,
        _ => return None,
    })
}

/// The reason codes a v5 CONNACK may carry (§3.2.2.2).
const CONNACK_REASONS: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];

pub fn decode_connack(mut r: Reader, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // MQTT 3.1 leaves the whole first byte unused; later versions only bit 0.
    let flags = if version == ProtocolVersion::V31 {
        0
    } else {
        flags
    };
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("CONNACK reserved flags set"));
    }
    let code = r.u8()?;
    let (reason, properties) = if version.is_v5() {
        if !CONNACK_REASONS.contains(&code) {
            return Err(DecodeError::Protocol("invalid CONNACK reason code"));
        }
        let props = decode_properties(&mut r, PropertyContext::ConnAck, Sender::Server)?;
        (ReasonCode(code), props)
    } else {
        let reason = reason_from_return_code(code)
            .ok_or(DecodeError::Protocol("invalid CONNACK return code"))?;
        (reason, Default::default())
    };
    r.finish()?;
    let session_present = flags & 0x01 != 0;
    if session_present && reason.is_error() {
        return Err(DecodeError::Protocol(
            "session present with an error code [MQTT-3.2.2-4]",
        ));
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

pub fn connack_len(c: &ConnAck, version: ProtocolVersion) -> Lens {
    if version.is_v5() {
        let props = properties_len(&c.properties);
        Lens {
            body: 2 + with_prefix(props),
            props,
        }
    } else {
        Lens { body: 2, props: 0 }
    }
}

pub fn put_connack(c: &ConnAck, version: ProtocolVersion, props: usize, out: &mut BytesMut) {
    // Session present is 0 with a refusal ([MQTT-3.2.2-4], [MQTT-3.2.2-6]); MQTT 3.1 has no
    // session present flag at all.
    let session_present =
        c.session_present && !c.reason.is_error() && version != ProtocolVersion::V31;
    out.put_u8(u8::from(session_present));
    if version.is_v5() {
        out.put_u8(c.reason.0);
        put_properties(out, &c.properties, props);
    } else {
        out.put_u8(connack_return_code(c.reason));
    }
}
