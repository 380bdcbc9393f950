//! Transports: TCP, TLS, WebSocket and secure WebSocket listeners, each turning its connections
//! into one byte stream ([`BoxStream`]) the broker reads MQTT from. The accept loop only
//! accepts; handshakes (TLS, WebSocket upgrade, PROXY header) run in the connection's own task
//! through [`Incoming::handshake`], so a slow client never stalls the listener.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ListenerConfig, ListenerType};

/// Any byte stream a client connection runs over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// A bound listener of one of the configured types.
pub struct Listener {
    name: Arc<str>,
    kind: ListenerType,
    tcp: TcpListener,
    /// Live connections allowed; `None` = unlimited.
    limit: Option<Arc<Semaphore>>,
}

/// A TCP connection accepted but not yet handshaken.
pub struct Incoming {
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    kind: ListenerType,
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
    pub async fn bind(
        name: &str,
        config: &ListenerConfig,
        base_dir: &Path,
    ) -> anyhow::Result<Listener> {
        let _ = base_dir;
        if config.kind != ListenerType::Tcp {
            anyhow::bail!(
                "listener {name}: type {} is not supported yet",
                config.kind.as_str()
            );
        }
        let tcp = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("listener {name}: cannot bind {}: {e}", config.bind))?;
        Ok(Listener {
            name: name.into(),
            kind: config.kind,
            tcp,
            limit: config.max_connections.map(|n| Arc::new(Semaphore::new(n))),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ListenerType {
        self.kind
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
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
            listener: self.name.clone(),
            kind: self.kind,
            permit,
            over_limit,
        })
    }
}

impl Incoming {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Runs the transport's handshake (none for plain TCP).
    pub async fn handshake(self) -> io::Result<Accepted> {
        Ok(Accepted {
            stream: Box::new(self.tcp),
            peer: self.peer,
            listener: self.listener,
            kind: self.kind,
            tls_username: None,
            over_limit: self.over_limit,
            permit: self.permit,
        })
    }
}
