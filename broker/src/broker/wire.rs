//! A connection's byte stream framed into MQTT packets: a read buffer decoded packet by packet
//! (the codec refuses a packet larger than the limit before its body is buffered) and a write
//! buffer that collects a whole batch of outgoing packets so they leave in one write.
//!
//! Buffers follow the traffic and are not held while idle: a read first waits until the
//! stream is readable and only then takes a read buffer, whose size doubles while reads fill
//! it and halves while they do not; a buffer drained by decoding is released while reads are
//! small, and so is a write buffer after a small batch (or a large one grown by a burst), so
//! an idle connection holds no buffer at all.

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
/// Bounds of the read size: small for idle clients, large for a publisher's bursts.
const MIN_READ: usize = 256;
const MAX_READ: usize = 64 * 1024;
/// A write buffer larger than this is released once flushed, not kept for the next batch.
const KEEP_WRITE_CAPACITY: usize = 16 * 1024;
/// A write buffer is kept for the next batch only after a batch at least this large: a
/// client sent little (an idle one: CONNACK, PINGRESP) does not hold one between batches.
const KEEP_WRITE_AFTER: usize = 1024;

pub(crate) struct Wire {
    stream: BoxStream,
    read_buf: BytesMut,
    /// How many bytes the next read makes room for (MIN_READ..=MAX_READ).
    read_size: usize,
    write_buf: BytesMut,
    max_packet_size: usize,
    broker: Broker,
}

impl Wire {
    pub fn new(stream: BoxStream, broker: Broker) -> Wire {
        Wire {
            stream,
            read_buf: BytesMut::new(),
            read_size: MIN_READ,
            write_buf: BytesMut::new(),
            max_packet_size: broker.config().limits.max_packet_size as usize,
            broker,
        }
    }

    /// Reads what the peer sent; `Ok(0)` when it closed the connection.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        // Idle connections wait here without a buffer: it is taken once there is data.
        let stream = &mut self.stream;
        std::future::poll_fn(move |cx| stream.poll_read_ready(cx)).await?;
        self.read_buf.reserve(self.read_size);
        let room = self.read_buf.capacity() - self.read_buf.len();
        let n = self.stream.read_buf(&mut self.read_buf).await?;
        if n >= room {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
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
        } else if self.read_buf.is_empty()
            && (self.read_size <= MIN_READ || self.read_buf.capacity() > 2 * self.read_size)
        {
            // Everything read was handled: a buffer is not kept while reads are small (the
            // next read takes one when data arrives), nor one a burst made large.
            self.read_buf = BytesMut::new();
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
        if len < KEEP_WRITE_AFTER || self.write_buf.capacity() > KEEP_WRITE_CAPACITY {
            self.write_buf = BytesMut::new();
        } else {
            self.write_buf.clear();
        }
        stats::add(&self.broker.shared.stats.bytes_sent, len as u64);
        Ok(())
    }

    /// Flushes what is pending and closes the stream, ignoring errors: the peer may be gone.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}
