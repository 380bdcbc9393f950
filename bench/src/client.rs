//! Connection set-up for the generator's own client: TCP connect, CONNECT/CONNACK and
//! SUBSCRIBE/SUBACK, returning the split stream for the scenario loops to drive.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::mqtt::{self, Incoming, Version};

/// How long the broker gets to answer CONNECT or SUBSCRIBE.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
pub const READ_BUF: usize = 256 * 1024;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub version: Version,
    pub keep_alive: u16,
    /// Connect with a persistent session (see `mqtt::encode_connect`).
    pub persistent: bool,
}

/// An MQTT session after a successful CONNACK.
pub struct Client {
    pub rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    /// Bytes read but not yet decoded.
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub version: Version,
    /// Receive Maximum the server announced (65535 when it did not).
    pub receive_maximum: u16,
}

impl Client {
    pub async fn connect(target: &Target, client_id: &str) -> Result<Client> {
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .with_context(|| format!("TCP connect to {}:{}", target.host, target.port))?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let mut client = Client {
            rd,
            wr,
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(4096),
            version: target.version,
            receive_maximum: u16::MAX,
        };
        mqtt::encode_connect(
            &mut client.wbuf,
            target.version,
            client_id,
            target.keep_alive,
            target.persistent,
        );
        client.flush().await?;
        match timeout(HANDSHAKE_TIMEOUT, client.next())
            .await
            .context("CONNACK timed out")??
        {
            Incoming::ConnAck {
                code: 0,
                receive_maximum,
                ..
            } => {
                client.receive_maximum = receive_maximum;
                Ok(client)
            }
            Incoming::ConnAck { code, .. } => bail!("broker refused CONNECT with code {code:#04x}"),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter and checks the grant.
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<()> {
        mqtt::encode_subscribe(&mut self.wbuf, self.version, 1, filter, qos);
        self.flush().await?;
        match timeout(HANDSHAKE_TIMEOUT, self.next())
            .await
            .context("SUBACK timed out")??
        {
            Incoming::SubAck {
                packet_id: 1,
                codes,
            } => match codes.first() {
                Some(&granted) if granted == qos => Ok(()),
                Some(&granted) if granted < 0x80 => {
                    bail!("broker granted QoS {granted} instead of {qos} on {filter}")
                }
                Some(&code) => bail!("broker rejected subscription to {filter}: {code:#04x}"),
                None => bail!("empty SUBACK"),
            },
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Writes out everything queued in `wbuf`.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.wr
                .write_all(&self.wbuf)
                .await
                .context("write to broker")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads more bytes into `rbuf`; an error when the broker closed the connection.
    pub async fn fill(&mut self) -> Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(READ_BUF);
        }
        let n = self
            .rd
            .read_buf(&mut self.rbuf)
            .await
            .context("read from broker")?;
        if n == 0 {
            bail!("broker closed the connection");
        }
        Ok(())
    }

    /// The next packet, reading as needed.
    pub async fn next(&mut self) -> Result<Incoming> {
        loop {
            if let Some(p) = mqtt::decode(&mut self.rbuf, self.version)? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }

    /// A decoded packet if `rbuf` already holds a complete one.
    pub fn try_decode(&mut self) -> Result<Option<Incoming>> {
        mqtt::decode(&mut self.rbuf, self.version)
    }

    /// Best-effort polite goodbye.
    pub async fn disconnect(mut self) {
        mqtt::encode_disconnect(&mut self.wbuf);
        let _ = self.flush().await;
        let _ = self.wr.shutdown().await;
    }
}
