//! The byte layout of a [`StoredMessage`] inside the database (one BLOB per message) and of
//! subscription options (one integer). The layout is ours and versioned by its first byte;
//! decoding checks every length, so a damaged row gives an error, never a panic.
//!
//! Message blob, version 1: `1, qos, retain, topic (u32 BE length + UTF-8), payload (u32 BE
//! length + bytes)`, then properties as `tag, value` pairs until the end. Tags reuse the MQTT
//! property identifiers; strings and binary values are a u32 BE length + bytes. The expiry is
//! not in the blob: it is a column, so expired rows can be deleted by SQL.

use bytes::Bytes;

use crate::protocol::{Properties, QoS, RetainHandling, SubscriptionOptions};

use super::record::StoredMessage;

const LAYOUT_VERSION: u8 = 1;

const PAYLOAD_FORMAT: u8 = 0x01;
const MESSAGE_EXPIRY: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_ID: u8 = 0x0B;
const USER_PROPERTY: u8 = 0x26;

/// What is wrong with a stored value; the store turns it into a "corrupt" error naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

/// The message without its expiry (kept apart, see the module doc).
pub fn encode_message(msg: &StoredMessage) -> Vec<u8> {
    let p = &msg.properties;
    let mut out = Vec::with_capacity(16 + msg.topic.len() + msg.payload.len());
    out.push(LAYOUT_VERSION);
    out.push(msg.qos as u8);
    out.push(u8::from(msg.retain));
    put_bytes(&mut out, msg.topic.as_bytes());
    put_bytes(&mut out, &msg.payload);
    if let Some(v) = p.payload_format_indicator {
        out.push(PAYLOAD_FORMAT);
        out.push(v);
    }
    if let Some(v) = p.message_expiry_interval {
        out.push(MESSAGE_EXPIRY);
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = &p.content_type {
        out.push(CONTENT_TYPE);
        put_bytes(&mut out, v.as_bytes());
    }
    if let Some(v) = &p.response_topic {
        out.push(RESPONSE_TOPIC);
        put_bytes(&mut out, v.as_bytes());
    }
    if let Some(v) = &p.correlation_data {
        out.push(CORRELATION_DATA);
        put_bytes(&mut out, v);
    }
    for id in &p.subscription_identifiers {
        out.push(SUBSCRIPTION_ID);
        out.extend_from_slice(&id.to_be_bytes());
    }
    for (k, v) in &p.user_properties {
        out.push(USER_PROPERTY);
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v.as_bytes());
    }
    out
}

/// Inverse of [`encode_message`]; `expires_at` is left `None` for the caller to fill.
pub fn decode_message(blob: &[u8]) -> Result<StoredMessage, DecodeError> {
    let mut r = Reader { buf: blob };
    if r.u8()? != LAYOUT_VERSION {
        return Err(DecodeError("unknown message layout version"));
    }
    let qos = QoS::from_u8(r.u8()?).ok_or(DecodeError("invalid QoS"))?;
    let retain = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(DecodeError("invalid retain flag")),
    };
    let topic = r.string()?;
    let payload = Bytes::copy_from_slice(r.bytes()?);
    let mut properties = Properties::default();
    while !r.buf.is_empty() {
        match r.u8()? {
            PAYLOAD_FORMAT => properties.payload_format_indicator = Some(r.u8()?),
            MESSAGE_EXPIRY => properties.message_expiry_interval = Some(r.u32()?),
            CONTENT_TYPE => properties.content_type = Some(r.string()?),
            RESPONSE_TOPIC => properties.response_topic = Some(r.string()?),
            CORRELATION_DATA => {
                properties.correlation_data = Some(Bytes::copy_from_slice(r.bytes()?))
            }
            SUBSCRIPTION_ID => properties.subscription_identifiers.push(r.u32()?),
            USER_PROPERTY => {
                let k = r.string()?;
                let v = r.string()?;
                properties.user_properties.push((k, v));
            }
            _ => return Err(DecodeError("unknown property tag")),
        }
    }
    Ok(StoredMessage {
        topic,
        payload,
        qos,
        retain,
        properties,
        expires_at: None,
    })
}

/// Subscription options packed as in the v5 SUBSCRIBE options byte.
pub fn encode_options(o: &SubscriptionOptions) -> i64 {
    let rh = match o.retain_handling {
        RetainHandling::SendAtSubscribe => 0,
        RetainHandling::SendIfNew => 1,
        RetainHandling::DoNotSend => 2,
    };
    i64::from(o.qos as u8)
        | (i64::from(o.no_local) << 2)
        | (i64::from(o.retain_as_published) << 3)
        | (rh << 4)
}

pub fn decode_options(v: i64) -> Result<SubscriptionOptions, DecodeError> {
    if !(0..=0x3F).contains(&v) {
        return Err(DecodeError("invalid subscription options"));
    }
    let qos = u8::try_from(v & 0x03)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or(DecodeError("invalid subscription QoS"))?;
    let retain_handling = match (v >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError("invalid retain handling")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: v & 0x04 != 0,
        retain_as_published: v & 0x08 != 0,
        retain_handling,
    })
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Stored values come from packets bounded by the maximum packet size, far below 4 GiB;
    // saturating keeps this total and the decoder would then reject the row.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated value"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.take(1)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| DecodeError("truncated value"))?;
        Ok(u32::from_be_bytes(arr))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError("length too large"))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError("invalid UTF-8 in a stored string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_with_every_stored_property_round_trips() {
        let mut msg = StoredMessage::new("a/b", &b"payload"[..], QoS::ExactlyOnce, true);
        msg.properties.payload_format_indicator = Some(1);
        msg.properties.message_expiry_interval = Some(60);
        msg.properties.content_type = Some("text/plain".into());
        msg.properties.response_topic = Some("reply/to".into());
        msg.properties.correlation_data = Some(Bytes::from_static(b"\x00\x01"));
        msg.properties.subscription_identifiers = vec![1, 268_435_455];
        msg.properties.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
        let back = decode_message(&encode_message(&msg)).expect("decodes");
        assert_eq!(back, msg);
    }

    #[test]
    fn every_truncation_of_a_blob_is_an_error_not_a_panic() {
        let mut msg = StoredMessage::new("t", &b"xyz"[..], QoS::AtLeastOnce, false);
        msg.properties.content_type = Some("c".into());
        let blob = encode_message(&msg);
        // Cutting inside the fixed header, topic, payload or a property must fail; cutting at
        // the end of the payload is a valid message without properties.
        let no_props_len = 3 + 4 + 1 + 4 + 3;
        for cut in 0..blob.len() {
            let result = decode_message(&blob[..cut]);
            if cut == no_props_len {
                assert!(result.is_ok());
            } else {
                assert!(result.is_err(), "cut at {cut} decoded");
            }
        }
    }

    #[test]
    fn garbage_blobs_are_rejected() {
        assert!(decode_message(&[9, 0, 0]).is_err());
        assert!(decode_message(&[1, 3, 0]).is_err());
        assert!(decode_message(&[1, 1, 2]).is_err());
        assert!(decode_message(&[1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(decode_message(&[1, 1, 0, 0, 0, 0, 1, 0xFF, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn every_subscription_option_combination_round_trips() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for rh in [
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendIfNew,
                RetainHandling::DoNotSend,
            ] {
                for (no_local, rap) in [(false, false), (true, false), (false, true), (true, true)]
                {
                    let o = SubscriptionOptions {
                        qos,
                        no_local,
                        retain_as_published: rap,
                        retain_handling: rh,
                    };
                    assert_eq!(decode_options(encode_options(&o)), Ok(o));
                }
            }
        }
        assert!(decode_options(3).is_err());
        assert!(decode_options(0x30).is_err());
        assert!(decode_options(-1).is_err());
    }
}
