//! The generator's own minimal MQTT 3.1.1 / 5.0 packet codec: just the packets a load
//! generator sends or receives. Independent of the broker's codec on purpose.

use anyhow::{bail, ensure, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

impl Version {
    fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }
}

/// Packet types (upper nibble of the first header byte).
const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

/// Largest packet we accept from the broker; anything bigger means a broken stream.
const MAX_INCOMING: usize = 1 << 20;

/// A packet received from the broker.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    ConnAck {
        session_present: bool,
        code: u8,
        /// Receive Maximum announced by a 5.0 server (65535 when absent or 3.1.1).
        receive_maximum: u16,
    },
    Publish {
        qos: u8,
        packet_id: u16,
        payload: Bytes,
    },
    PubAck {
        packet_id: u16,
        code: u8,
    },
    PubRec {
        packet_id: u16,
        code: u8,
    },
    PubRel {
        packet_id: u16,
    },
    PubComp {
        packet_id: u16,
        code: u8,
    },
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    PingResp,
    Disconnect {
        code: u8,
    },
}

fn put_varint(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            break;
        }
    }
}

/// Reads a variable byte integer; `Ok(None)` when more bytes are needed.
fn get_varint(bytes: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    ensure!(bytes.len() < 4, "malformed variable byte integer");
    Ok(None)
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

fn put_header(buf: &mut BytesMut, first: u8, remaining: usize) {
    buf.put_u8(first);
    put_varint(buf, remaining);
}

/// CONNECT. `persistent`: a session that outlives the connection (3.1.1 Clean Session 0;
/// 5.0 Clean Start 0 with a Session Expiry Interval of one hour), else a clean one.
pub fn encode_connect(
    buf: &mut BytesMut,
    version: Version,
    client_id: &str,
    keep_alive: u16,
    persistent: bool,
) {
    let props = match (version, persistent) {
        (Version::V5, true) => 6,
        (Version::V5, false) => 1,
        _ => 0,
    };
    let remaining = 6 + 1 + 1 + 2 + props + 2 + client_id.len();
    put_header(buf, CONNECT << 4, remaining);
    put_str(buf, b"MQTT");
    buf.put_u8(version.level());
    buf.put_u8(if persistent { 0x00 } else { 0x02 }); // clean session / clean start
    buf.put_u16(keep_alive);
    if version == Version::V5 {
        if persistent {
            buf.put_u8(5);
            buf.put_u8(0x11); // Session Expiry Interval
            buf.put_u32(3600);
        } else {
            buf.put_u8(0); // no properties
        }
    }
    put_str(buf, client_id.as_bytes());
}

pub fn encode_publish(
    buf: &mut BytesMut,
    version: Version,
    topic: &str,
    qos: u8,
    packet_id: u16,
    payload: &[u8],
) {
    let id_len = if qos > 0 { 2 } else { 0 };
    let props = if version == Version::V5 { 1 } else { 0 };
    let remaining = 2 + topic.len() + id_len + props + payload.len();
    put_header(buf, (PUBLISH << 4) | (qos << 1), remaining);
    put_str(buf, topic.as_bytes());
    if qos > 0 {
        buf.put_u16(packet_id);
    }
    if version == Version::V5 {
        buf.put_u8(0);
    }
    buf.put_slice(payload);
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP in their short "success" form, valid in both versions.
fn encode_ack(buf: &mut BytesMut, kind: u8, flags: u8, packet_id: u16) {
    put_header(buf, (kind << 4) | flags, 2);
    buf.put_u16(packet_id);
}

pub fn encode_puback(buf: &mut BytesMut, packet_id: u16) {
    encode_ack(buf, PUBACK, 0, packet_id);
}

pub fn encode_pubrec(buf: &mut BytesMut, packet_id: u16) {
    encode_ack(buf, PUBREC, 0, packet_id);
}

pub fn encode_pubrel(buf: &mut BytesMut, packet_id: u16) {
    encode_ack(buf, PUBREL, 0x02, packet_id);
}

pub fn encode_pubcomp(buf: &mut BytesMut, packet_id: u16) {
    encode_ack(buf, PUBCOMP, 0, packet_id);
}

pub fn encode_subscribe(
    buf: &mut BytesMut,
    version: Version,
    packet_id: u16,
    filter: &str,
    qos: u8,
) {
    let props = if version == Version::V5 { 1 } else { 0 };
    let remaining = 2 + props + 2 + filter.len() + 1;
    put_header(buf, (SUBSCRIBE << 4) | 0x02, remaining);
    buf.put_u16(packet_id);
    if version == Version::V5 {
        buf.put_u8(0);
    }
    put_str(buf, filter.as_bytes());
    buf.put_u8(qos);
}

pub fn encode_pingreq(buf: &mut BytesMut) {
    put_header(buf, PINGREQ << 4, 0);
}

pub fn encode_disconnect(buf: &mut BytesMut) {
    put_header(buf, DISCONNECT << 4, 0);
}

/// Splits one complete packet off `buf`; `Ok(None)` when it holds only part of one.
pub fn decode(buf: &mut BytesMut, version: Version) -> Result<Option<Incoming>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let Some((remaining, len_bytes)) = get_varint(&buf[1..])? else {
        return Ok(None);
    };
    ensure!(
        remaining <= MAX_INCOMING,
        "incoming packet of {remaining} bytes is too large"
    );
    let total = 1 + len_bytes + remaining;
    if buf.len() < total {
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(1 + len_bytes);
    let body = buf.split_to(remaining).freeze();
    parse(first, body, version).map(Some)
}

fn need(body: &Bytes, n: usize, what: &str) -> Result<()> {
    ensure!(body.remaining() >= n, "truncated {what}");
    Ok(())
}

/// Reads the properties block of a 5.0 packet; returns the Receive Maximum if present.
fn read_properties(body: &mut Bytes) -> Result<Option<u16>> {
    let (len, n) = get_varint(body)?.context("truncated property length")?;
    body.advance(n);
    need(body, len, "properties")?;
    let mut props = body.split_to(len);
    let mut receive_maximum = None;
    while props.has_remaining() {
        let id = props.get_u8();
        let size = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0B => get_varint(&props)?.context("truncated property")?.1,
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                need(&props, 2, "property")?;
                2 + usize::from(u16::from_be_bytes([props[0], props[1]]))
            }
            0x26 => {
                need(&props, 2, "user property")?;
                let k = 2 + usize::from(u16::from_be_bytes([props[0], props[1]]));
                need(&props, k + 2, "user property")?;
                k + 2 + usize::from(u16::from_be_bytes([props[k], props[k + 1]]))
            }
            other => bail!("unknown property id {other:#04x}"),
        };
        need(&props, size, "property")?;
        if id == 0x21 {
            receive_maximum = Some(props.get_u16());
        } else {
            props.advance(size);
        }
    }
    Ok(receive_maximum)
}

/// Packet id plus the optional 5.0 reason code of a PUBACK-like packet.
fn parse_ack(body: &mut Bytes) -> Result<(u16, u8)> {
    need(body, 2, "acknowledgement")?;
    let id = body.get_u16();
    let code = if body.has_remaining() {
        body.get_u8()
    } else {
        0
    };
    Ok((id, code))
}

fn parse(first: u8, mut body: Bytes, version: Version) -> Result<Incoming> {
    let v5 = version == Version::V5;
    Ok(match first >> 4 {
        CONNACK => {
            need(&body, 2, "CONNACK")?;
            let session_present = body.get_u8() & 1 == 1;
            let code = body.get_u8();
            let receive_maximum = if v5 && body.has_remaining() {
                read_properties(&mut body)?.unwrap_or(u16::MAX)
            } else {
                u16::MAX
            };
            Incoming::ConnAck {
                session_present,
                code,
                receive_maximum,
            }
        }
        PUBLISH => {
            let qos = (first >> 1) & 0x03;
            ensure!(qos < 3, "PUBLISH with QoS 3");
            need(&body, 2, "PUBLISH")?;
            let topic_len = usize::from(body.get_u16());
            need(&body, topic_len, "PUBLISH topic")?;
            body.advance(topic_len);
            let packet_id = if qos > 0 {
                need(&body, 2, "PUBLISH packet id")?;
                body.get_u16()
            } else {
                0
            };
            if v5 {
                read_properties(&mut body)?;
            }
            Incoming::Publish {
                qos,
                packet_id,
                payload: body,
            }
        }
        PUBACK => {
            let (packet_id, code) = parse_ack(&mut body)?;
            Incoming::PubAck { packet_id, code }
        }
        PUBREC => {
            let (packet_id, code) = parse_ack(&mut body)?;
            Incoming::PubRec { packet_id, code }
        }
        PUBREL => {
            let (packet_id, _) = parse_ack(&mut body)?;
            Incoming::PubRel { packet_id }
        }
        PUBCOMP => {
            let (packet_id, code) = parse_ack(&mut body)?;
            Incoming::PubComp { packet_id, code }
        }
        SUBACK => {
            need(&body, 2, "SUBACK")?;
            let packet_id = body.get_u16();
            if v5 {
                read_properties(&mut body)?;
            }
            Incoming::SubAck {
                packet_id,
                codes: body.to_vec(),
            }
        }
        PINGRESP => Incoming::PingResp,
        DISCONNECT => Incoming::Disconnect {
            code: if body.has_remaining() {
                body.get_u8()
            } else {
                0
            },
        },
        other => bail!("unexpected packet type {other} from broker"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_in_both_versions() {
        for version in [Version::V311, Version::V5] {
            let mut buf = BytesMut::new();
            encode_publish(&mut buf, version, "a/b", 1, 7, b"hello");
            // A partial packet is not decoded yet.
            let mut part = BytesMut::from(&buf[..buf.len() - 1]);
            assert_eq!(decode(&mut part, version).unwrap(), None);
            let got = decode(&mut buf, version).unwrap();
            assert_eq!(
                got,
                Some(Incoming::Publish {
                    qos: 1,
                    packet_id: 7,
                    payload: Bytes::from_static(b"hello")
                })
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn connack_v5_reads_receive_maximum_and_skips_other_properties() {
        // flags, reason, props: user property ("k","v"), receive maximum 20, max qos 1
        let body: &[u8] = &[0, 0, 12, 0x26, 0, 1, b'k', 0, 1, b'v', 0x21, 0, 20, 0x24, 1];
        let mut buf = BytesMut::new();
        put_header(&mut buf, CONNACK << 4, body.len());
        buf.put_slice(body);
        assert_eq!(
            decode(&mut buf, Version::V5).unwrap(),
            Some(Incoming::ConnAck {
                session_present: false,
                code: 0,
                receive_maximum: 20
            })
        );
    }

    #[test]
    fn oversized_remaining_length_is_an_error_not_a_panic() {
        let mut buf = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(decode(&mut buf, Version::V311).is_err());
    }

    #[test]
    fn v5_ack_carries_reason_code() {
        let mut buf = BytesMut::from(&[0x40u8, 3, 0, 9, 0x97][..]);
        assert_eq!(
            decode(&mut buf, Version::V5).unwrap(),
            Some(Incoming::PubAck {
                packet_id: 9,
                code: 0x97
            })
        );
    }
}
