//! The harness: start the real binary with a config, find its ports from its log, read its log,
//! and talk raw MQTT bytes to it with a tiny framer of our own (independent of the broker's codec).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const WAIT: Duration = Duration::from_secs(10);

/// The broker's log lines, shared with the thread that reads its stderr.
#[derive(Clone, Default)]
pub struct Log {
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Log {
    fn push(&self, line: String) {
        let (lines, changed) = &*self.lines;
        lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        changed.notify_all();
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a line containing `needle` appears (searching from the start).
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, changed) = &*self.lines;
        let mut guard = lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = guard.iter().find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// A running `waspmq` process, killed when dropped.
pub struct Broker {
    child: Child,
    pub dir: tempfile::TempDir,
    pub log: Log,
    listeners: HashMap<String, SocketAddr>,
}

/// The listeners part every test config starts from: TCP on an ephemeral loopback port.
pub const TCP_ONLY: &str = "[listeners.default]\ntype = \"tcp\"\nbind = \"127.0.0.1:0\"\n";

impl Broker {
    /// TCP only, defaults otherwise, `$SYS` off.
    pub fn start() -> Broker {
        Broker::with_config(&format!("sys_interval = 0\n{TCP_ONLY}"))
    }

    /// Starts the binary with this config (a `[log]` section is added unless present).
    pub fn with_config(toml: &str) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        Broker::in_dir(dir, toml, &[])
    }

    pub fn in_dir(dir: tempfile::TempDir, toml: &str, env: &[(&str, &str)]) -> Broker {
        Broker::in_dir_waiting(dir, toml, env, WAIT)
    }

    /// [`Broker::in_dir`], allowing `startup` for the broker to start (compiling a large
    /// plugin, such as a Python or JavaScript runtime, takes longer than [`WAIT`]).
    pub fn in_dir_waiting(
        dir: tempfile::TempDir,
        toml: &str,
        env: &[(&str, &str)],
        startup: Duration,
    ) -> Broker {
        let mut text = toml.to_owned();
        if !text.contains("[log]") {
            text.push_str("\n[log]\ndir = \"logs\"\n");
        }
        let config = dir.path().join("broker.toml");
        std::fs::write(&config, text).expect("write config");
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env_remove("MQTT_BIND_ADDRESS")
            .env_remove("MQTT_WS_BIND")
            .env_remove("ALLOW_ANONYMOUS")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn waspmq");
        let log = Log::default();
        for pipe in [
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(line) => log.push(line),
                        Err(_) => break,
                    }
                }
            });
        }
        let mut broker = Broker {
            child,
            dir,
            log,
            listeners: HashMap::new(),
        };
        if broker.log.wait_for(" started", startup).is_none() {
            let status = broker.child.try_wait().ok().flatten();
            panic!(
                "broker did not start (exit: {status:?}); log:\n{}",
                broker.log.lines().join("\n")
            );
        }
        for line in broker.log.lines() {
            if let Some((name, addr)) = parse_listener_line(&line) {
                broker.listeners.insert(name, addr);
            }
        }
        broker
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener("default")
    }

    pub fn listener(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.listeners))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Sends a signal (e.g. "HUP", "TERM", "KILL") to the broker.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(
            status.map(|s| s.success()).unwrap_or(false),
            "kill -{name} failed"
        );
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process and keeps its folder (for restarts on the same data).
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    pub fn dump_log(&self) -> String {
        self.log.lines().join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("broker log:\n{}", self.dump_log());
        }
    }
}

/// `... Listener default (tcp) listening on 127.0.0.1:35369`
fn parse_listener_line(line: &str) -> Option<(String, SocketAddr)> {
    let rest = &line[line.find("Listener ")? + "Listener ".len()..];
    let (name, rest) = rest.split_once(' ')?;
    let addr = rest.rsplit("listening on ").next()?.trim();
    Some((name.to_owned(), addr.parse().ok()?))
}

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_waspmq"))
}

/// The repository root (for examples and built plugins).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A raw MQTT connection: bytes in, whole packets out, framed by our own ten-line parser.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Sends bytes, ignoring a connection the broker already closed.
    pub async fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// The next whole packet (fixed header included), or `None` on close/timeout.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(len) = frame_len(&self.buf) {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Receives packets until one of type `kind` (upper nibble) arrives; others are skipped.
    pub async fn recv_type(&mut self, kind: u8, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let packet = self.recv(left).await?;
            if packet[0] >> 4 == kind {
                return Some(packet);
            }
        }
    }

    /// True if the broker closes the connection within `timeout` (packets before it are skipped).
    pub async fn closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    }

    /// Whatever packets arrived before the close, then true if closed.
    pub async fn packets_until_close(&mut self, timeout: Duration) -> (Vec<Vec<u8>>, bool) {
        let closed = self.closed(timeout).await;
        let mut packets = Vec::new();
        while let Some(len) = frame_len(&self.buf) {
            packets.push(self.buf.drain(..len).collect());
        }
        (packets, closed)
    }
}

fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        len |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    Some(buf.len().min(5))
}

/// Hand-built packets, byte by byte as the spec draws them.
pub mod bytes {
    pub fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    pub fn remaining_length(mut len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut byte = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if len == 0 {
                return out;
            }
        }
    }

    pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        out.extend(remaining_length(body.len()));
        out.extend_from_slice(body);
        out
    }

    /// CONNECT for 3.1.1 (level 4) with clean session and keep-alive 60.
    pub fn connect_v311(client_id: &str) -> Vec<u8> {
        let mut body = string("MQTT");
        body.extend([4, 0x02, 0, 60]);
        body.extend(string(client_id));
        packet(0x10, &body)
    }

    /// CONNECT for 5.0 with clean start, keep-alive 60 and no properties.
    pub fn connect_v5(client_id: &str) -> Vec<u8> {
        let mut body = string("MQTT");
        body.extend([5, 0x02, 0, 60, 0]);
        body.extend(string(client_id));
        packet(0x10, &body)
    }

    pub fn subscribe_v311(packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
        let mut body = packet_id.to_be_bytes().to_vec();
        body.extend(string(filter));
        body.push(qos);
        packet(0x82, &body)
    }

    pub fn publish_v311(topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = string(topic);
        body.extend_from_slice(payload);
        packet(0x30, &body)
    }

    pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];
    pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
}

/// A rumqttc MQTT 3.1.1 client whose event loop runs in a task; incoming packets land in a channel.
pub struct V3 {
    pub client: rumqttc::AsyncClient,
    pub incoming: tokio::sync::mpsc::UnboundedReceiver<rumqttc::Packet>,
    pub connack: rumqttc::ConnAck,
    task: tokio::task::JoinHandle<()>,
}

impl V3 {
    pub async fn connect(addr: SocketAddr, client_id: &str) -> V3 {
        V3::connect_with(addr, client_id, |_| {}).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        client_id: &str,
        configure: impl FnOnce(&mut rumqttc::MqttOptions),
    ) -> V3 {
        V3::try_connect_with(addr, client_id, configure)
            .await
            .expect("CONNACK accepted")
    }

    /// Connects and returns the CONNACK, or the refusal as an error string.
    pub async fn try_connect_with(
        addr: SocketAddr,
        client_id: &str,
        configure: impl FnOnce(&mut rumqttc::MqttOptions),
    ) -> Result<V3, String> {
        let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        configure(&mut options);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
        let (tx, mut incoming) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(rumqttc::Packet::Disconnect);
                        let _ = e;
                        return;
                    }
                }
            }
        });
        let connack = tokio::time::timeout(WAIT, async {
            loop {
                match incoming.recv().await {
                    Some(rumqttc::Packet::ConnAck(ack)) => return Ok(ack),
                    Some(rumqttc::Packet::Disconnect) | None => {
                        return Err("connection closed before CONNACK".to_owned())
                    }
                    Some(_) => {}
                }
            }
        })
        .await
        .map_err(|_| "no CONNACK".to_owned())??;
        if connack.code != rumqttc::ConnectReturnCode::Success {
            task.abort();
            return Err(format!("{:?}", connack.code));
        }
        Ok(V3 {
            client,
            incoming,
            connack,
            task,
        })
    }

    /// The next PUBLISH (other packets are skipped), or None after `timeout`.
    pub async fn publish(&mut self, timeout: Duration) -> Option<rumqttc::Publish> {
        tokio::time::timeout(timeout, async {
            loop {
                match self.incoming.recv().await? {
                    rumqttc::Packet::Publish(p) => return Some(p),
                    _ => continue,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits for the next packet matching `pick`.
    pub async fn packet<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(rumqttc::Packet) -> Option<T>,
    ) -> Option<T> {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(found) = pick(self.incoming.recv().await?) {
                    return Some(found);
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) -> rumqttc::SubAck {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe queued");
        self.packet(WAIT, |p| match p {
            rumqttc::Packet::SubAck(ack) => Some(ack),
            _ => None,
        })
        .await
        .expect("SUBACK")
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.task.abort();
    }

    /// Drops the connection without DISCONNECT (the will fires).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// A rumqttc MQTT 5.0 client, same shape as [`V3`].
pub struct V5 {
    pub client: rumqttc::v5::AsyncClient,
    pub incoming: tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Packet>,
    pub connack: rumqttc::v5::mqttbytes::v5::ConnAck,
    task: tokio::task::JoinHandle<()>,
}

impl V5 {
    pub async fn connect(addr: SocketAddr, client_id: &str) -> V5 {
        V5::connect_with(addr, client_id, |_| {}).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        client_id: &str,
        configure: impl FnOnce(&mut rumqttc::v5::MqttOptions),
    ) -> V5 {
        V5::try_connect_with(addr, client_id, configure)
            .await
            .expect("CONNACK accepted")
    }

    pub async fn try_connect_with(
        addr: SocketAddr,
        client_id: &str,
        configure: impl FnOnce(&mut rumqttc::v5::MqttOptions),
    ) -> Result<V5, String> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        let mut options =
            rumqttc::v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        configure(&mut options);
        let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 1000);
        let (tx, mut incoming) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
                        let _ = tx.send(Packet::ConnAck(rumqttc::v5::mqttbytes::v5::ConnAck {
                            session_present: false,
                            code,
                            properties: None,
                        }));
                        return;
                    }
                    // rumqttc reports a server DISCONNECT as an error: hand it on as the packet.
                    Err(rumqttc::v5::ConnectionError::MqttState(
                        rumqttc::v5::StateError::ServerDisconnect { reason_code, .. },
                    )) => {
                        let _ = tx.send(Packet::Disconnect(
                            rumqttc::v5::mqttbytes::v5::Disconnect::new(reason_code),
                        ));
                        return;
                    }
                    Err(e) => {
                        eprintln!("v5 client error: {e:?}");
                        return;
                    }
                }
            }
        });
        let connack = tokio::time::timeout(WAIT, async {
            loop {
                match incoming.recv().await {
                    Some(Packet::ConnAck(ack)) => return Ok(ack),
                    Some(Packet::Disconnect(d)) => {
                        return Err(format!("DISCONNECT {:?} before CONNACK", d.reason_code))
                    }
                    None => return Err("connection closed before CONNACK".to_owned()),
                    Some(_) => {}
                }
            }
        })
        .await
        .map_err(|_| "no CONNACK".to_owned())??;
        if connack.code != rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success {
            task.abort();
            return Err(format!("{:?}", connack.code));
        }
        Ok(V5 {
            client,
            incoming,
            connack,
            task,
        })
    }

    pub async fn publish(
        &mut self,
        timeout: Duration,
    ) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
        self.packet(timeout, |p| match p {
            rumqttc::v5::mqttbytes::v5::Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    pub async fn packet<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(rumqttc::v5::mqttbytes::v5::Packet) -> Option<T>,
    ) -> Option<T> {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(found) = pick(self.incoming.recv().await?) {
                    return Some(found);
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
    ) -> rumqttc::v5::mqttbytes::v5::SubAck {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe queued");
        self.packet(WAIT, |p| match p {
            rumqttc::v5::mqttbytes::v5::Packet::SubAck(ack) => Some(ack),
            _ => None,
        })
        .await
        .expect("SUBACK")
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.task.abort();
    }

    pub fn abort(self) {
        self.task.abort();
    }
}
