//! The broker's configuration: the TOML file (`waspmq --config broker.toml`), its defaults, and
//! the environment variables that override it (`MQTT_BIND_ADDRESS`, `MQTT_WS_BIND`,
//! `ALLOW_ANONYMOUS`, also read from a `.env` file in the working directory, as the seed did).
//! A bad config is refused at start with a message naming the key and the line.

mod env;
mod file;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use file::load;

/// Everything the broker reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seconds between `$SYS` updates; 0 disables them.
    pub sys_interval: u64,
    /// Cap on the keep-alive a client may ask for (sent as v5 Server Keep Alive when lowered).
    pub max_keepalive: Option<u16>,
    /// Listeners by name; `default` (TCP) and `ws` (WebSocket) exist unless configured away.
    pub listeners: BTreeMap<String, ListenerConfig>,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub limits: Limits,
    pub persistence: PersistenceConfig,
    /// The plugin chain, in order.
    pub plugins: Vec<PluginConfig>,
    /// The folder of the config file: relative paths in it are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Config {
        let mut listeners = BTreeMap::new();
        listeners.insert(
            "default".to_owned(),
            ListenerConfig::new(ListenerType::Tcp, "0.0.0.0:1883".parse().expect("valid")),
        );
        let mut ws = ListenerConfig::new(ListenerType::Ws, "0.0.0.0:8080".parse().expect("valid"));
        ws.max_connections = Some(100);
        listeners.insert("ws".to_owned(), ws);
        Config {
            sys_interval: 10,
            max_keepalive: None,
            listeners,
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            limits: Limits::default(),
            persistence: PersistenceConfig::default(),
            plugins: Vec::new(),
            base_dir: PathBuf::from("."),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerType {
    Tcp,
    Ws,
    Tls,
    Wss,
}

impl ListenerType {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerType::Tcp => "tcp",
            ListenerType::Ws => "ws",
            ListenerType::Tls => "tls",
            ListenerType::Wss => "wss",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    #[serde(rename = "type")]
    pub kind: ListenerType,
    pub bind: SocketAddr,
    /// Live connections allowed on this listener; more are refused (v5 CONNACK 0x97 or close).
    pub max_connections: Option<usize>,
    /// TLS / WSS: PEM certificate chain and private key.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// CA bundle for client certificates (mutual TLS).
    pub cafile: Option<PathBuf>,
    #[serde(default)]
    pub require_certificate: bool,
    /// The client certificate's CN becomes the username plugins see.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// Expect a HAProxy PROXY v1/v2 header before the first byte of MQTT.
    #[serde(default)]
    pub proxy_protocol: bool,
}

impl ListenerConfig {
    pub fn new(kind: ListenerType, bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            kind,
            bind,
            max_connections: None,
            certfile: None,
            keyfile: None,
            cafile: None,
            require_certificate: false,
            use_identity_as_username: false,
            proxy_protocol: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub allow_anonymous: bool,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            allow_anonymous: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Folder of the `broker_YYYYMMDD_HHMMSS.log` files; relative to the working directory.
    pub dir: PathBuf,
    /// A `tracing` filter such as `info` or `waspmq=debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// Write a log file at all (the console always gets the log).
    pub file: bool,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            dir: PathBuf::from("logs"),
            level: "info".to_owned(),
            file: true,
        }
    }
}

/// Explicit limits: every queue and buffer in the broker is bounded by one of these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest packet accepted from a client (v5 Maximum Packet Size in CONNACK).
    pub max_packet_size: u32,
    /// Messages queued for an offline (or slow) persistent session before new ones are dropped.
    pub max_queued_messages: usize,
    /// Outgoing QoS 1/2 messages unacknowledged at once per client (capped by its Receive Maximum).
    pub max_inflight: u16,
    /// Receive Maximum the broker announces: inbound QoS 1/2 publishes in flight per client.
    pub receive_maximum: u16,
    /// Topic aliases a v5 client may use towards the broker (Topic Alias Maximum in CONNACK).
    pub topic_alias_maximum: u16,
    /// Longest session expiry a client may ask for, in seconds.
    pub max_session_expiry: u32,
    /// Seconds a client has to send CONNECT after the connection opens.
    pub connect_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packet_size: 1024 * 1024,
            max_queued_messages: 1000,
            max_inflight: 20,
            receive_maximum: 100,
            topic_alias_maximum: 16,
            max_session_expiry: 7 * 24 * 3600,
            connect_timeout_secs: 10,
        }
    }
}

/// `[persistence]`: where and how durably sessions, queued, in-flight and retained messages
/// are kept across restarts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceConfig {
    /// Off: everything lives in memory and is lost when the broker stops.
    pub enabled: bool,
    /// The data folder (created if missing); the database is `waspmq.db` in it. Relative to
    /// the config file's folder.
    pub path: PathBuf,
    /// When a write counts as durable, i.e. when PUBACK/PUBREC may be sent.
    pub sync: SyncPolicy,
    /// With `sync = "periodic"`: milliseconds between forced flushes to disk.
    pub sync_interval_ms: u64,
    /// Largest size of the database in MiB; beyond it new QoS 1/2 messages are refused
    /// (0x97 Quota exceeded) instead of acknowledged. `None` = limited by the disk only.
    pub max_size_mb: Option<u32>,
}

impl Default for PersistenceConfig {
    fn default() -> PersistenceConfig {
        PersistenceConfig {
            enabled: false,
            path: PathBuf::from("data"),
            sync: SyncPolicy::default(),
            sync_interval_ms: 1000,
            max_size_mb: None,
        }
    }
}

/// How durable an acknowledged message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// Every acknowledged write is on disk (fsync) before the acknowledgement; concurrent
    /// writes share one fsync (group commit). Survives power loss and OS crashes.
    #[default]
    Always,
    /// Writes reach the OS at once (a killed broker loses nothing) but are flushed to disk
    /// only every `sync_interval_ms`: a power loss or OS crash can lose the acknowledged
    /// messages of the last interval. Faster on slow disks.
    Periodic,
}

/// What a plugin's failure (trap, timeout, out of memory) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    #[default]
    Deny,
    Allow,
    Skip,
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    /// The component (`.wasm`), relative to the config file's folder.
    pub path: PathBuf,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub required: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// SQLite grants: logical name -> database file (relative to the config file's folder).
    #[serde(default)]
    pub sql: BTreeMap<String, PathBuf>,
    /// Key-value bucket grants: logical name -> bucket.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
    /// Handed to the plugin's `init`, as it is.
    #[serde(default)]
    pub config: toml::Table,
}

fn default_timeout_ms() -> u64 {
    50
}

fn default_memory_mb() -> u64 {
    32
}
