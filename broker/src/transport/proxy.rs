//! HAProxy PROXY protocol (v1 text and v2 binary): the header a load balancer sends before the
//! client's first byte to name the real client. Read before any TLS or WebSocket handshake,
//! byte-exact (nothing after the header is consumed), so the stream continues unchanged.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A v1 header is at most 107 bytes including its CRLF.
pub const V1_MAX_LEN: usize = 107;

/// The v2 fixed part: signature, version/command, family/protocol, body length.
pub const V2_FIXED_LEN: usize = 16;

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A relayed client connection.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy speaks for itself (v2 LOCAL, e.g. a health check) or the family is unknown
    /// (v1 UNKNOWN, v2 UNSPEC/UNIX): the socket's own peer address stands.
    Local,
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad PROXY header: {reason}"),
    )
}

/// Reads one v1 or v2 header from `reader`, consuming exactly its bytes.
pub async fn read_header<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<ProxyHeader> {
    // Six bytes tell the versions apart: "PROXY " versus the start of the v2 signature.
    let mut start = [0u8; 6];
    reader.read_exact(&mut start).await?;
    if &start == b"PROXY " {
        let mut line = Vec::with_capacity(V1_MAX_LEN);
        line.extend_from_slice(&start);
        // Byte by byte: reading ahead would swallow the client's first bytes. The header is
        // short and read once per connection.
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX_LEN {
                return Err(invalid("v1 line longer than 107 bytes"));
            }
            line.push(reader.read_u8().await?);
        }
        parse_v1(&line)
    } else if start[..] == V2_SIGNATURE[..6] {
        let mut fixed = [0u8; V2_FIXED_LEN];
        fixed[..6].copy_from_slice(&start);
        reader.read_exact(&mut fixed[6..]).await?;
        let body_len = v2_body_len(&fixed)?;
        let mut body = vec![0u8; body_len];
        reader.read_exact(&mut body).await?;
        parse_v2(&fixed, &body)
    } else {
        Err(invalid("the connection does not start with one"))
    }
}

/// Parses a whole v1 line, CRLF included: `PROXY TCP4|TCP6 src dst sport dport\r\n` or
/// `PROXY UNKNOWN ...\r\n`.
pub fn parse_v1(line: &[u8]) -> io::Result<ProxyHeader> {
    if line.len() > V1_MAX_LEN {
        return Err(invalid("v1 line longer than 107 bytes"));
    }
    let text = line
        .strip_suffix(b"\r\n")
        .ok_or_else(|| invalid("v1 line does not end in CRLF"))?;
    let text = std::str::from_utf8(text)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| invalid("v1 line is not ASCII"))?;
    let mut fields = text.split(' ');
    if fields.next() != Some("PROXY") {
        return Err(invalid("v1 line does not start with PROXY"));
    }
    let family = fields
        .next()
        .ok_or_else(|| invalid("v1 line has no family"))?;
    if family == "UNKNOWN" {
        // The rest of the line is to be ignored for UNKNOWN.
        return Ok(ProxyHeader::Local);
    }
    let parse_ip = |field: Option<&str>| -> io::Result<IpAddr> {
        let field = field.ok_or_else(|| invalid("v1 line is missing an address"))?;
        match family {
            "TCP4" => field.parse::<Ipv4Addr>().map(IpAddr::V4).ok(),
            "TCP6" => field.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
            _ => return Err(invalid("v1 family is not TCP4, TCP6 or UNKNOWN")),
        }
        .ok_or_else(|| invalid("v1 address does not match its family"))
    };
    let source_ip = parse_ip(fields.next())?;
    let destination_ip = parse_ip(fields.next())?;
    let source_port = parse_port(fields.next())?;
    let destination_port = parse_port(fields.next())?;
    if fields.next().is_some() {
        return Err(invalid("v1 line has extra fields"));
    }
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(source_ip, source_port),
        destination: SocketAddr::new(destination_ip, destination_port),
    })
}

fn parse_port(field: Option<&str>) -> io::Result<u16> {
    let field = field.ok_or_else(|| invalid("v1 line is missing a port"))?;
    // `u16::from_str` would also take a leading '+'.
    if field.is_empty() || field.len() > 5 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("v1 port is not a decimal number"));
    }
    field
        .parse::<u16>()
        .map_err(|_| invalid("v1 port is above 65535"))
}

/// Checks the v2 fixed part and returns how many body bytes follow it.
pub fn v2_body_len(fixed: &[u8; V2_FIXED_LEN]) -> io::Result<usize> {
    if fixed[..12] != V2_SIGNATURE {
        return Err(invalid("wrong v2 signature"));
    }
    if fixed[12] >> 4 != 2 {
        return Err(invalid("v2 version is not 2"));
    }
    Ok(usize::from(u16::from_be_bytes([fixed[14], fixed[15]])))
}

/// Parses a v2 header from its fixed part and its body (addresses, then TLVs we ignore).
pub fn parse_v2(fixed: &[u8; V2_FIXED_LEN], body: &[u8]) -> io::Result<ProxyHeader> {
    let body_len = v2_body_len(fixed)?;
    if body.len() != body_len {
        return Err(invalid("v2 body length does not match the header"));
    }
    match fixed[12] & 0x0f {
        0x0 => return Ok(ProxyHeader::Local),
        0x1 => {}
        _ => return Err(invalid("v2 command is neither LOCAL nor PROXY")),
    }
    let too_short = || invalid("v2 body too short for its address family");
    match fixed[13] >> 4 {
        // AF_INET: 4 + 4 address bytes, 2 + 2 port bytes.
        0x1 => {
            let a: [u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(too_short)?;
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(
                    IpAddr::from([a[0], a[1], a[2], a[3]]),
                    u16::from_be_bytes([a[8], a[9]]),
                ),
                destination: SocketAddr::new(
                    IpAddr::from([a[4], a[5], a[6], a[7]]),
                    u16::from_be_bytes([a[10], a[11]]),
                ),
            })
        }
        // AF_INET6: 16 + 16 address bytes, 2 + 2 port bytes.
        0x2 => {
            let a: [u8; 36] = body
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(too_short)?;
            let ip = |at: usize| -> io::Result<IpAddr> {
                let octets: [u8; 16] = a
                    .get(at..at + 16)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(too_short)?;
                Ok(IpAddr::from(octets))
            };
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0)?, u16::from_be_bytes([a[32], a[33]])),
                destination: SocketAddr::new(ip(16)?, u16::from_be_bytes([a[34], a[35]])),
            })
        }
        // AF_UNSPEC and AF_UNIX carry no IP address: keep the socket's.
        0x0 | 0x3 => Ok(ProxyHeader::Local),
        _ => Err(invalid("v2 address family is unknown")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.push(0x20 | command);
        header.push(family);
        header.extend_from_slice(&(body.len() as u16).to_be_bytes());
        header.extend_from_slice(body);
        header
    }

    async fn read_from(bytes: &[u8]) -> (io::Result<ProxyHeader>, Vec<u8>) {
        let mut reader = bytes;
        let header = read_header(&mut reader).await;
        (header, reader.to_vec())
    }

    #[test]
    fn v1_tcp4_names_the_client() {
        let header = parse_v1(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 1883\r\n").unwrap();
        assert_eq!(
            header,
            ProxyHeader::Proxied {
                source: "192.0.2.7:56324".parse().unwrap(),
                destination: "198.51.100.1:1883".parse().unwrap(),
            }
        );
    }

    #[test]
    fn v1_tcp6_names_the_client() {
        let header = parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 8883\r\n").unwrap();
        assert_eq!(
            header,
            ProxyHeader::Proxied {
                source: "[2001:db8::7]:4000".parse().unwrap(),
                destination: "[2001:db8::1]:8883".parse().unwrap(),
            }
        );
    }

    #[test]
    fn v1_unknown_keeps_the_socket_peer() {
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").unwrap(), ProxyHeader::Local);
        assert_eq!(
            parse_v1(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").unwrap(),
            ProxyHeader::Local
        );
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for line in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 1883\n"[..],
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 1883 9\r\n",
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 1\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +1 1\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 1 1\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 1\r\n",
            b"PROXY\r\n",
            b"HELLO TCP4 192.0.2.7 198.51.100.1 1 1\r\n",
        ] {
            assert!(
                parse_v1(line).is_err(),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn v2_inet_names_the_client() {
        let body = [192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x07, 0x5b];
        let header = v2(1, 0x11, &body);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert_eq!(
            parse_v2(&fixed, &header[16..]).unwrap(),
            ProxyHeader::Proxied {
                source: "192.0.2.7:56324".parse().unwrap(),
                destination: "198.51.100.1:1883".parse().unwrap(),
            }
        );
    }

    #[test]
    fn v2_inet6_with_tlvs_names_the_client() {
        let source: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let destination: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut body = source.octets().to_vec();
        body.extend_from_slice(&destination.octets());
        body.extend_from_slice(&4000u16.to_be_bytes());
        body.extend_from_slice(&8883u16.to_be_bytes());
        // A PP2_TYPE_NOOP TLV after the addresses is skipped.
        body.extend_from_slice(&[0x04, 0x00, 0x02, 0xaa, 0xbb]);
        let header = v2(1, 0x21, &body);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert_eq!(
            parse_v2(&fixed, &header[16..]).unwrap(),
            ProxyHeader::Proxied {
                source: "[2001:db8::7]:4000".parse().unwrap(),
                destination: "[2001:db8::1]:8883".parse().unwrap(),
            }
        );
    }

    #[test]
    fn v2_local_command_keeps_the_socket_peer() {
        let header = v2(0, 0x00, &[]);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert_eq!(parse_v2(&fixed, &[]).unwrap(), ProxyHeader::Local);
    }

    #[test]
    fn v2_malformed_headers_are_refused() {
        // Body too short for AF_INET.
        let header = v2(1, 0x11, &[1, 2, 3]);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert!(parse_v2(&fixed, &header[16..]).is_err());
        // Unknown command.
        let header = v2(2, 0x11, &[0; 12]);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert!(parse_v2(&fixed, &header[16..]).is_err());
        // Version 1 in the version nibble.
        let mut header = v2(1, 0x11, &[0; 12]);
        header[12] = 0x11;
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert!(parse_v2(&fixed, &header[16..]).is_err());
        // Unknown family.
        let header = v2(1, 0x41, &[0; 12]);
        let fixed: [u8; 16] = header[..16].try_into().unwrap();
        assert!(parse_v2(&fixed, &header[16..]).is_err());
    }

    #[tokio::test]
    async fn read_header_consumes_exactly_the_v1_header() {
        let mut bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 1883\r\n".to_vec();
        bytes.extend_from_slice(&[0x10, 0x0c, 0x00]);
        let (header, rest) = read_from(&bytes).await;
        assert!(matches!(header.unwrap(), ProxyHeader::Proxied { .. }));
        assert_eq!(rest, [0x10, 0x0c, 0x00]);
    }

    #[tokio::test]
    async fn read_header_consumes_exactly_the_v2_header() {
        let mut bytes = v2(1, 0x11, &[192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2]);
        bytes.extend_from_slice(&[0x10, 0x0c, 0x00]);
        let (header, rest) = read_from(&bytes).await;
        assert_eq!(
            header.unwrap(),
            ProxyHeader::Proxied {
                source: "192.0.2.7:1".parse().unwrap(),
                destination: "198.51.100.1:2".parse().unwrap(),
            }
        );
        assert_eq!(rest, [0x10, 0x0c, 0x00]);
    }

    #[tokio::test]
    async fn read_header_refuses_garbage_and_overlong_lines() {
        let (header, _) = read_from(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c").await;
        assert_eq!(header.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        long.extend_from_slice(b"\r\n");
        let (header, _) = read_from(&long).await;
        assert_eq!(header.unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A stream that ends inside the header is an error too, not a hang.
        let (header, _) = read_from(b"PROXY TCP4 1.2.3.4").await;
        assert!(header.is_err());
    }
}
