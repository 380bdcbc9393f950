//! DISCONNECT and AUTH (§3.14, §3.15): a reason code and properties, both optional on the wire
//! in MQTT 5 (remaining length 0 means success). In 3.x DISCONNECT is empty and AUTH does not
//! exist.

use bytes::{BufMut, BytesMut};

use super::codec::{DecodeError, Lens};
use super::packet::{Auth, Disconnect, ProtocolVersion, ReasonCode};
use super::properties::{
    decode_properties, properties_len, put_properties, with_prefix, PropertyContext, Sender,
};
use super::wire::Reader;

/// §3.14.2.1, the codes a client may send: 0x04 is client-only and 0x87, 0x89, 0x8B, 0x8D -
/// 0x8F and 0x9A - 0xA2 are server-only [MQTT-3.14.2-1].
const DISCONNECT_REASONS_FROM_CLIENT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];
/// §3.14.2.1, the codes a server may send.
const DISCONNECT_REASONS_FROM_SERVER: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// §3.15.2.1
const AUTH_REASONS: &[u8] = &[0x00, 0x18, 0x19];

/// Reason code and properties, each present only if bytes remain.
fn reason_and_properties(
    mut r: Reader,
    valid: &[u8],
    ctx: PropertyContext,
    sender: Sender,
) -> Result<(ReasonCode, super::packet::Properties), DecodeError> {
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = Default::default();
    if !r.is_empty() {
        let code = r.u8()?;
        if !valid.contains(&code) {
            return Err(DecodeError::Protocol("invalid reason code"));
        }
        reason = ReasonCode(code);
        if !r.is_empty() {
            properties = decode_properties(&mut r, ctx, sender)?;
        }
    }
    r.finish()?;
    Ok((reason, properties))
}

pub fn decode_disconnect(
    r: Reader,
    version: ProtocolVersion,
    sender: Sender,
) -> Result<Disconnect, DecodeError> {
    if !version.is_v5() {
        r.finish()?;
        return Ok(Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Default::default(),
        });
    }
    let valid = match sender {
        Sender::Client => DISCONNECT_REASONS_FROM_CLIENT,
        Sender::Server => DISCONNECT_REASONS_FROM_SERVER,
    };
    let (reason, properties) =
        reason_and_properties(r, valid, PropertyContext::Disconnect, sender)?;
    if sender == Sender::Server && properties.session_expiry_interval.is_some() {
        return Err(DecodeError::Protocol(
            "session expiry interval in a server DISCONNECT [MQTT-3.14.2-2]",
        ));
    }
    Ok(Disconnect { reason, properties })
}

pub fn decode_auth(r: Reader, sender: Sender) -> Result<Auth, DecodeError> {
    let (reason, properties) =
        reason_and_properties(r, AUTH_REASONS, PropertyContext::Auth, sender)?;
    Ok(Auth { reason, properties })
}

/// Length of a v5 "reason code then properties" body. The reason code is left out only when it
/// is 0x00 with no properties; the property length is always written after a reason code even
/// though the spec lets it go: some clients (rumqttc 0.25) cannot read DISCONNECT without it.
pub fn reason_body_len(
    reason: ReasonCode,
    properties: &super::packet::Properties,
    version: ProtocolVersion,
) -> Lens {
    if !version.is_v5() {
        return Lens { body: 0, props: 0 };
    }
    let props = properties_len(properties);
    let body = if props > 0 {
        1 + with_prefix(props)
    } else if reason != ReasonCode::SUCCESS {
        1 + with_prefix(0)
    } else {
        0
    };
    Lens { body, props }
}

pub fn put_reason_body(
    reason: ReasonCode,
    properties: &super::packet::Properties,
    lens: Lens,
    out: &mut BytesMut,
) {
    if lens.body > 0 {
        out.put_u8(reason.0);
    }
    if lens.body > 1 {
        put_properties(out, properties, lens.props);
    }
}
