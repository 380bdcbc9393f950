//! The primitive MQTT data types on the wire (§1.5): two and four byte integers, variable
//! byte integers, UTF-8 strings and binary data. `Reader` reads them from one packet's body,
//! never past its end; the `put_*` functions append them to an output buffer.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::DecodeError;

/// Largest value a variable byte integer can hold (four bytes of seven bits).
pub const MAX_VARINT: u32 = 268_435_455;

/// Largest length a string or binary field can have (two byte length prefix).
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

const PAST_END: DecodeError = DecodeError::Malformed("field runs past the end of the packet");

/// Parses a variable byte integer at the front of `bytes`: `Ok(None)` if more bytes are needed,
/// else the value and how many bytes it took. More than four bytes, or a non-minimal encoding
/// ([MQTT-1.5.5-1]), is malformed.
pub fn parse_varint(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(DecodeError::Malformed(
                    "variable byte integer not minimally encoded",
                ));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        Err(DecodeError::Malformed(
            "variable byte integer longer than four bytes",
        ))
    } else {
        Ok(None)
    }
}

/// Reads fields from the body of one packet.
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Trailing bytes after the last field make the packet malformed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "unexpected bytes after the last field",
            ))
        }
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, _) = self.buf.split_first().ok_or(PAST_END)?;
        self.advance(1);
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        match parse_varint(&self.buf)? {
            Some((value, used)) => {
                self.advance(used);
                Ok(value)
            }
            None => Err(PAST_END),
        }
    }

    /// Binary data: two byte length then that many bytes (shared, not copied).
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.bytes(len)
    }

    /// A UTF-8 encoded string: well-formed UTF-8 ([MQTT-1.5.3-1]) without U+0000
    /// ([MQTT-1.5.3-2]).
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let text = std::str::from_utf8(&raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
        if text.contains('\0') {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(text.to_owned())
    }

    /// The next `len` bytes, shared with the packet buffer.
    pub fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < len {
            return Err(PAST_END);
        }
        Ok(self.buf.split_to(len))
    }

    /// A sub-reader over the next `len` bytes (a property list).
    pub fn sub(&mut self, len: usize) -> Result<Reader, DecodeError> {
        self.bytes(len).map(Reader::new)
    }

    /// Everything left (a PUBLISH payload).
    pub fn rest(self) -> Bytes {
        self.buf
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let head: [u8; N] = self
            .buf
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or(PAST_END)?;
        self.advance(N);
        Ok(head)
    }

    fn advance(&mut self, len: usize) {
        let _ = self.buf.split_to(len.min(self.buf.len()));
    }
}

/// Bytes a variable byte integer takes.
pub fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends a variable byte integer. Values above `MAX_VARINT` cannot be represented; they are
/// clamped (callers bound packet sizes well below that).
pub fn put_varint(out: &mut BytesMut, value: usize) {
    let mut value = value.min(MAX_VARINT as usize);
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if value == 0 {
            return;
        }
    }
}

/// How many bytes of `s` go on the wire: all of it, or for a string longer than a field can
/// hold (only possible for strings built inside the broker or by a plugin, never decoded ones),
/// the longest prefix ending on a character boundary, so the result is still valid UTF-8.
pub fn str_wire_len(s: &str) -> usize {
    if s.len() <= MAX_FIELD_LEN {
        return s.len();
    }
    let mut end = MAX_FIELD_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Bytes a string field takes, length prefix included.
pub fn str_len(s: &str) -> usize {
    2 + str_wire_len(s)
}

/// Bytes a binary field takes, length prefix included (longer data is truncated).
pub fn bin_len(b: &[u8]) -> usize {
    2 + b.len().min(MAX_FIELD_LEN)
}

pub fn put_str(out: &mut BytesMut, s: &str) {
    let len = str_wire_len(s);
    out.put_u16(len as u16);
    out.put_slice(&s.as_bytes()[..len]);
}

pub fn put_bin(out: &mut BytesMut, b: &[u8]) {
    let len = b.len().min(MAX_FIELD_LEN);
    out.put_u16(len as u16);
    out.put_slice(&b[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_byte_integer_spec_boundaries_mqtt_1_5_5() {
        for (value, len) in [
            (0usize, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (268_435_455, 4),
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), len, "{value}");
            assert_eq!(varint_len(value), len);
            assert_eq!(parse_varint(&out), Ok(Some((value as u32, len))));
        }
        assert_eq!(
            parse_varint(&[0xFF, 0xFF, 0xFF, 0x7F]),
            Ok(Some((MAX_VARINT, 4)))
        );
    }

    #[test]
    fn variable_byte_integer_longer_than_four_bytes_is_malformed_mqtt_1_5_5() {
        assert!(matches!(
            parse_varint(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(parse_varint(&[0x80, 0x80, 0x80]), Ok(None));
    }

    #[test]
    fn non_minimal_variable_byte_integer_is_malformed_mqtt_1_5_5_1() {
        assert!(matches!(
            parse_varint(&[0x80, 0x00]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_varint(&[0x81, 0x80, 0x00]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn string_with_invalid_utf8_is_malformed_mqtt_1_5_3_1() {
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xC3, 0x28]));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        // An encoded surrogate (U+D800) is not well-formed UTF-8 either.
        let mut r = Reader::new(Bytes::from_static(&[0, 3, 0xED, 0xA0, 0x80]));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn string_with_null_character_is_malformed_mqtt_1_5_3_2() {
        let mut r = Reader::new(Bytes::from_static(&[0, 3, b'a', 0, b'b']));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn string_running_past_the_packet_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0, 5, b'a']));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn overlong_string_is_cut_on_a_char_boundary() {
        let s = "é".repeat(40_000);
        let len = str_wire_len(&s);
        assert!(len <= MAX_FIELD_LEN);
        assert!(s.is_char_boundary(len));
        let mut out = BytesMut::new();
        put_str(&mut out, &s);
        assert_eq!(out.len(), str_len(&s));
    }
}
