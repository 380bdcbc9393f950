//! Transports: TCP, TLS, WebSocket and secure WebSocket listeners, each turning its connections
//! into one byte stream ([`BoxStream`]) the broker reads MQTT from. The accept loop only
//! accepts; handshakes (PROXY header, TLS, WebSocket upgrade) run in the connection's own task
//! through [`Incoming::handshake`], so a slow or hostile client never stalls the listener.
//!
//! Layering of one connection, outermost first: TCP → optional PROXY header ([`proxy`]) →
//! TLS for `tls`/`wss` ([`tls`]) → WebSocket for `ws`/`wss` ([`ws`]) → MQTT bytes.

pub mod proxy;
pub mod tls;
pub mod ws;

#[cfg(test)]
pub(crate) mod testcerts;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ListenerConfig, ListenerType};

/// How long a client has to complete PROXY header + TLS + WebSocket handshakes together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Any byte stream a client connection runs over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Ready once a read may make progress, so an idle connection waits for data without
    /// holding a read buffer. Streams that buffer internally (TLS, WebSocket) may hold data
    /// the socket no longer signals, so by default they are always ready.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream
    for tokio_rustls::server::TlsStream<S>
{
}
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for ws::WsByteStream<S> {}

pub type BoxStream = Box<dyn Stream>;

/// What every connection of one listener needs for its handshake; shared, never mutated
/// (certificate reloads swap the acceptor inside [`tls::TlsAcceptorCell`]).
struct ListenerSettings {
    name: Arc<str>,
    kind: ListenerType,
    proxy_protocol: bool,
    /// Present for `tls` and `wss`.
    tls: Option<tls::TlsAcceptorCell>,
    use_identity_as_username: bool,
}

/// A bound listener of one of the configured types.
pub struct Listener {
    settings: Arc<ListenerSettings>,
    tcp: TcpListener,
    /// Live connections allowed; `None` = unlimited.
    limit: Option<Arc<Semaphore>>,
}

/// A TCP connection accepted but not yet handshaken.
pub struct Incoming {
    tcp: TcpStream,
    peer: SocketAddr,
    settings: Arc<ListenerSettings>,
    permit: Option<OwnedSemaphorePermit>,
    over_limit: bool,
}

/// A connection ready to carry MQTT.
pub struct Accepted {
    pub stream: BoxStream,
    /// The client's address (from the PROXY header when the listener expects one).
    pub peer: SocketAddr,
    /// The listener's name from the config.
    pub listener: Arc<str>,
    pub kind: ListenerType,
    /// The client certificate's CN when the listener has `use_identity_as_username`.
    pub tls_username: Option<String>,
    /// The listener was at `max_connections` when this connection arrived: the broker must
    /// refuse it (v5 CONNACK 0x97, else close) once it has read CONNECT.
    pub over_limit: bool,
    /// Holds the connection's slot under `max_connections` until dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Listener {
    /// Binds the listener described by `config`; `base_dir` resolves relative certificate paths.
    /// Certificates are loaded here, so a missing or bad file fails the bind with its name.
    pub async fn bind(
        name: &str,
        config: &ListenerConfig,
        base_dir: &Path,
    ) -> anyhow::Result<Listener> {
        let tls = match config.kind {
            ListenerType::Tls | ListenerType::Wss => Some(
                tls::TlsFiles::from_config(config, base_dir)
                    .and_then(tls::TlsAcceptorCell::load)
                    .map_err(|e| anyhow::anyhow!("listener {name}: {e:#}"))?,
            ),
            ListenerType::Tcp | ListenerType::Ws => None,
        };
        let tcp = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("listener {name}: cannot bind {}: {e}", config.bind))?;
        Ok(Listener {
            settings: Arc::new(ListenerSettings {
                name: name.into(),
                kind: config.kind,
                proxy_protocol: config.proxy_protocol,
                tls,
                use_identity_as_username: config.use_identity_as_username,
            }),
            tcp,
            limit: config.max_connections.map(|n| Arc::new(Semaphore::new(n))),
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn kind(&self) -> ListenerType {
        self.settings.kind
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Re-reads certfile/keyfile/cafile. New connections use the new certificates, live ones
    /// keep theirs; on failure the old certificates stay in use and the error is returned.
    /// A no-op for `tcp` and `ws`.
    pub fn reload_certificates(&self) -> anyhow::Result<()> {
        match &self.settings.tls {
            Some(cell) => cell
                .reload()
                .map_err(|e| anyhow::anyhow!("listener {}: {e:#}", self.settings.name)),
            None => Ok(()),
        }
    }

    /// Waits for the next connection. Errors are per-connection (e.g. EMFILE) and transient.
    pub async fn accept(&self) -> io::Result<Incoming> {
        let (tcp, peer) = self.tcp.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (permit, over_limit) = match &self.limit {
            None => (None, false),
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(permit) => (Some(permit), false),
                Err(_) => (None, true),
            },
        };
        Ok(Incoming {
            tcp,
            peer,
            settings: self.settings.clone(),
            permit,
            over_limit,
        })
    }
}

impl Incoming {
    /// The socket's peer; [`Accepted::peer`] may differ when a PROXY header names the client.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Runs the transport's handshakes (PROXY header, TLS, WebSocket upgrade as configured)
    /// within [`HANDSHAKE_TIMEOUT`]. Any failure only concerns this connection.
    pub async fn handshake(self) -> io::Result<Accepted> {
        self.handshake_within(HANDSHAKE_TIMEOUT).await
    }

    async fn handshake_within(self, limit: Duration) -> io::Result<Accepted> {
        match tokio::time::timeout(limit, self.handshake_inner()).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "transport handshake timed out",
            )),
        }
    }

    async fn handshake_inner(self) -> io::Result<Accepted> {
        let Incoming {
            mut tcp,
            mut peer,
            settings,
            permit,
            over_limit,
        } = self;
        if settings.proxy_protocol {
            if let proxy::ProxyHeader::Proxied { source, .. } = proxy::read_header(&mut tcp).await?
            {
                peer = source;
            }
        }
        let mut tls_username = None;
        let stream: BoxStream = match (&settings.tls, settings.kind) {
            (Some(cell), kind) => {
                let tls_stream = cell.acceptor().accept(tcp).await?;
                if settings.use_identity_as_username {
                    tls_username = tls::peer_common_name(&tls_stream);
                }
                if kind == ListenerType::Wss {
                    Box::new(ws::accept(tls_stream).await?)
                } else {
                    Box::new(tls_stream)
                }
            }
            (None, ListenerType::Ws) => Box::new(ws::accept(tcp).await?),
            (None, _) => Box::new(tcp),
        };
        Ok(Accepted {
            stream,
            peer,
            listener: settings.name.clone(),
            kind: settings.kind,
            tls_username,
            over_limit,
            permit,
        })
    }
}
