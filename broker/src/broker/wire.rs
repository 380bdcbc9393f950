//! A connection's byte stream framed into MQTT packets: a read buffer decoded packet by packet
//! (the codec refuses a packet larger than the limit before its body is buffered) and a write
//! buffer that collects a whole batch of outgoing packets so they leave in one write.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::shared::Broker;
use super::stats;
use crate::protocol::{self, DecodeError, Packet, ProtocolVersion};
use crate::transport::BoxStream;

/// A peer that takes longer than this to accept a batch is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Wire {
    stream: BoxStream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    max_packet_size: usize,
    broker: Broker,
}

impl Wire {
    pub fn new(stream: BoxStream, broker: Broker) -> Wire {
        Wire {
            stream,
            read_buf: BytesMut::with_capacity(8 * 1024),
            write_buf: BytesMut::with_capacity(8 * 1024),
            max_packet_size: broker.config().limits.max_packet_size as usize,
            broker,
        }
    }

    /// Reads what the peer sent; `Ok(0)` when it closed the connection.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        self.read_buf.reserve(4 * 1024);
        let n = self.stream.read_buf(&mut self.read_buf).await?;
        stats::add(&self.broker.shared.stats.bytes_received, n as u64);
        Ok(n)
    }

    /// The next whole packet already buffered, if any.
    pub fn next_packet(
        &mut self,
        version: Option<ProtocolVersion>,
    ) -> Result<Option<Packet>, DecodeError> {
        let packet = protocol::decode(&mut self.read_buf, version, self.max_packet_size)?;
        if packet.is_some() {
            stats::add(&self.broker.shared.stats.messages_received, 1);
        }
        Ok(packet)
    }

    /// Whether the buffered bytes start like an MQTT 5 CONNECT (fixed header, then protocol
    /// name "MQTT" and level 5), so a CONNECT the codec refused can still get a v5 CONNACK.
    pub fn looks_like_v5_connect(&self) -> bool {
        let buf = &self.read_buf[..];
        if buf.first() != Some(&0x10) {
            return false;
        }
        let mut i = 1;
        while i < buf.len() && i < 5 && buf[i] & 0x80 != 0 {
            i += 1;
        }
        buf.get(i + 1..i + 8) == Some(&[0, 4, b'M', b'Q', b'T', b'T', 5][..])
    }

    /// Encodes `packet` into the pending batch.
    pub fn queue(&mut self, packet: &Packet, version: ProtocolVersion) {
        protocol::encode(packet, version, &mut self.write_buf);
        let stats = &self.broker.shared.stats;
        stats::add(&stats.messages_sent, 1);
        if matches!(packet, Packet::Publish(_)) {
            stats::add(&stats.publish_sent, 1);
        }
    }

    /// Writes the whole pending batch with one write and one flush.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let len = self.write_buf.len();
        let write = async {
            self.stream.write_all(&self.write_buf).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
        self.write_buf.clear();
        stats::add(&self.broker.shared.stats.bytes_sent, len as u64);
        Ok(())
    }

    /// Flushes what is pending and closes the stream, ignoring errors: the peer may be gone.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}
