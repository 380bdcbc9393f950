//! Fuzzes the MQTT decoder: arbitrary bytes, decoded as sent by a client (before CONNECT and in
//! every version) and as sent by a server, must never panic; and every packet accepted must
//! encode to bytes that decode back to the same packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use waspmq::protocol::{decode, decode_from_server, encode, Packet, ProtocolVersion};

const MAX_PACKET_SIZE: usize = 1 << 20;
const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

fn reencodes_equal(packet: Packet, version: ProtocolVersion, from_server: bool) {
    let mut out = BytesMut::new();
    encode(&packet, version, &mut out);
    assert_eq!(out.len(), waspmq::protocol::encoded_len(&packet, version));
    let again = if from_server {
        decode_from_server(&mut out, version, usize::MAX)
    } else if matches!(packet, Packet::Connect(_)) {
        decode(&mut out, None, usize::MAX)
    } else {
        decode(&mut out, Some(version), usize::MAX)
    };
    assert_eq!(again, Ok(Some(packet)));
    assert!(out.is_empty());
}

fuzz_target!(|data: &[u8]| {
    for version in [
        None,
        Some(VERSIONS[0]),
        Some(VERSIONS[1]),
        Some(VERSIONS[2]),
    ] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, MAX_PACKET_SIZE) {
            let version = match (&packet, version) {
                (Packet::Connect(c), _) => c.protocol,
                (_, Some(v)) => v,
                (_, None) => unreachable!("only CONNECT is accepted before CONNECT"),
            };
            reencodes_equal(packet, version, false);
        }
    }
    for version in VERSIONS {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode_from_server(&mut buf, version, MAX_PACKET_SIZE) {
            reencodes_equal(packet, version, true);
        }
    }
});
