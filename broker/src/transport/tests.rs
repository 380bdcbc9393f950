//! End-to-end transport tests over real loopback sockets: a bound [`Listener`] on one side,
//! tokio-tungstenite / tokio-rustls / raw TCP clients on the other.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::testcerts::TestPki;
use super::{tls, Accepted, Listener};
use crate::config::{ListenerConfig, ListenerType};

/// A CONNECT packet (MQTT 3.1.1, client id "a") and two PINGREQs.
const CONNECT: [u8; 15] = [
    0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, b'a',
];
const PINGREQ: [u8; 2] = [0xc0, 0x00];

fn config(kind: ListenerType) -> ListenerConfig {
    ListenerConfig::new(kind, "127.0.0.1:0".parse().unwrap())
}

async fn bind(config: &ListenerConfig, base_dir: &Path) -> Listener {
    Listener::bind("test", config, base_dir).await.unwrap()
}

/// Accepts one connection and runs its handshake in a task, as the broker does.
fn accept_one(listener: &Arc<Listener>) -> tokio::task::JoinHandle<io::Result<Accepted>> {
    let listener = listener.clone();
    tokio::spawn(async move { listener.accept().await?.handshake().await })
}

async fn ws_client(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<WebSocketStream<TcpStream>, WsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    ws_client_over(tcp, "ws", path, protocols).await
}

async fn ws_client_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    scheme: &str,
    path: &str,
    protocols: Option<&str>,
) -> Result<WebSocketStream<S>, WsError> {
    let mut request = format!("{scheme}://localhost{path}")
        .into_client_request()
        .unwrap();
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    if protocols.is_some() {
        assert!(response.headers().get(SEC_WEBSOCKET_PROTOCOL).is_some());
    }
    Ok(ws)
}

async fn ws_listener() -> Arc<Listener> {
    Arc::new(bind(&config(ListenerType::Ws), Path::new(".")).await)
}

#[tokio::test]
async fn ws_packet_split_across_frames_and_packets_sharing_a_frame_read_in_order_mqtt_6_0_0_2() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let mut client = ws_client(listener.local_addr().unwrap(), "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.kind, ListenerType::Ws);

    // CONNECT split over two frames; the second frame also carries two whole PINGREQs.
    client
        .send(Message::Binary(CONNECT[..5].to_vec().into()))
        .await
        .unwrap();
    let mut second = CONNECT[5..].to_vec();
    second.extend_from_slice(&PINGREQ);
    second.extend_from_slice(&PINGREQ);
    client.send(Message::Binary(second.into())).await.unwrap();

    let mut received = [0u8; CONNECT.len() + 2 * PINGREQ.len()];
    accepted.stream.read_exact(&mut received).await.unwrap();
    assert_eq!(&received[..CONNECT.len()], &CONNECT);
    assert_eq!(&received[CONNECT.len()..], &[0xc0, 0x00, 0xc0, 0x00]);
}

#[tokio::test]
async fn ws_subprotocol_mqtt_is_echoed_mqtt_6_0_0_4() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let mut request = "ws://localhost/mqtt".into_client_request().unwrap();
    request
        .headers_mut()
        .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("mqtt"));
    let (_ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).unwrap(),
        "mqtt"
    );
    server.await.unwrap().unwrap();

    // An older client offering something else first gets its MQTT choice echoed.
    let server = accept_one(&listener);
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let mut request = "ws://localhost/".into_client_request().unwrap();
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("chat, mqttv3.1"),
    );
    let (_ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).unwrap(),
        "mqttv3.1"
    );
    server.await.unwrap().unwrap();

    // `mqtt` is chosen whenever it is offered, even after a legacy name.
    let server = accept_one(&listener);
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let mut request = "ws://localhost/mqtt".into_client_request().unwrap();
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("mqttv3.1, mqtt"),
    );
    let (_ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).unwrap(),
        "mqtt"
    );
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn ws_wrong_path_gets_404_and_the_listener_keeps_accepting() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let error = ws_client(listener.local_addr().unwrap(), "/chat", Some("mqtt"))
        .await
        .unwrap_err();
    match error {
        WsError::Http(response) => assert_eq!(response.status(), 404),
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    assert!(server.await.unwrap().is_err());

    // An unsupported subprotocol list is refused too.
    let server = accept_one(&listener);
    let error = ws_client(listener.local_addr().unwrap(), "/mqtt", Some("chat"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, WsError::Http(ref r) if r.status() == 400),
        "{error:?}"
    );
    assert!(server.await.unwrap().is_err());

    let server = accept_one(&listener);
    ws_client(listener.local_addr().unwrap(), "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    server.await.unwrap().unwrap();

    // A client offering no subprotocol at all is let in (without a protocol header).
    let server = accept_one(&listener);
    ws_client(listener.local_addr().unwrap(), "/", None)
        .await
        .unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn ws_server_writes_arrive_as_one_binary_frame_per_flush() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let mut client = ws_client(listener.local_addr().unwrap(), "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();

    // CONNACK and SUBACK written separately, flushed once.
    accepted
        .stream
        .write_all(&[0x20, 0x02, 0x00, 0x00])
        .await
        .unwrap();
    accepted
        .stream
        .write_all(&[0x90, 0x03, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    accepted.stream.flush().await.unwrap();
    accepted.stream.write_all(&[0xd0, 0x00]).await.unwrap();
    accepted.stream.flush().await.unwrap();

    let first = client.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        Message::Binary(vec![0x20, 0x02, 0x00, 0x00, 0x90, 0x03, 0x00, 0x01, 0x00].into())
    );
    let second = client.next().await.unwrap().unwrap();
    assert_eq!(second, Message::Binary(vec![0xd0, 0x00].into()));
}

#[tokio::test]
async fn ws_ping_is_answered_and_close_reads_as_eof() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let mut client = ws_client(listener.local_addr().unwrap(), "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        accepted.stream.read_to_end(&mut all).await.map(|_| all)
    });

    client
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = client.next().await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));

    client
        .send(Message::Binary(PINGREQ.to_vec().into()))
        .await
        .unwrap();
    client.close(None).await.unwrap();
    let all = reader.await.unwrap().unwrap();
    assert_eq!(all, PINGREQ);
    // The server answered the close handshake before reporting EOF.
    match client.next().await {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the close reply, got {other:?}"),
    }
}

#[tokio::test]
async fn ws_text_frame_is_a_read_error_mqtt_6_0_0_1() {
    let listener = ws_listener().await;
    let server = accept_one(&listener);
    let mut client = ws_client(listener.local_addr().unwrap(), "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    client.send(Message::Text("hello".into())).await.unwrap();
    let mut buf = [0u8; 8];
    let error = accepted.stream.read(&mut buf).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

// ---- TLS ----

async fn tls_connect(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(client)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn tls_config(pki: &TestPki, kind: ListenerType) -> ListenerConfig {
    let (certfile, keyfile) = pki.write_server("server", "first");
    let mut config = config(kind);
    config.certfile = Some(certfile);
    config.keyfile = Some(keyfile);
    config
}

/// Sends `bytes` from the client and reads them back through the accepted stream, then the
/// other way round.
async fn round_trip<C: AsyncRead + AsyncWrite + Unpin>(client: &mut C, accepted: &mut Accepted) {
    client.write_all(&CONNECT).await.unwrap();
    client.flush().await.unwrap();
    let mut got = [0u8; CONNECT.len()];
    accepted.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, CONNECT);
    accepted
        .stream
        .write_all(&[0x20, 0x02, 0x00, 0x00])
        .await
        .unwrap();
    accepted.stream.flush().await.unwrap();
    let mut connack = [0u8; 4];
    client.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
}

#[tokio::test]
async fn tls_client_round_trips_bytes() {
    let pki = TestPki::new("test CA");
    let listener = Arc::new(bind(&tls_config(&pki, ListenerType::Tls), pki.dir.path()).await);
    let server = accept_one(&listener);
    let mut client = tls_connect(listener.local_addr().unwrap(), pki.client_config(None))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.kind, ListenerType::Tls);
    assert_eq!(accepted.tls_username, None);
    round_trip(&mut client, &mut accepted).await;
}

#[tokio::test]
async fn tls_relative_paths_resolve_against_base_dir() {
    let pki = TestPki::new("test CA");
    pki.write_server("server", "first");
    let mut config = config(ListenerType::Tls);
    config.certfile = Some("server.crt".into());
    config.keyfile = Some("server.key".into());
    let listener = Arc::new(bind(&config, pki.dir.path()).await);
    let server = accept_one(&listener);
    let mut client = tls_connect(listener.local_addr().unwrap(), pki.client_config(None))
        .await
        .unwrap();
    round_trip(&mut client, &mut server.await.unwrap().unwrap()).await;
}

#[tokio::test]
async fn tls_required_client_certificate_refuses_a_client_without_one() {
    let pki = TestPki::new("test CA");
    let mut config = tls_config(&pki, ListenerType::Tls);
    config.cafile = Some(pki.ca_path());
    config.require_certificate = true;
    let listener = Arc::new(bind(&config, pki.dir.path()).await);

    let server = accept_one(&listener);
    // With TLS 1.3 the client may finish its side before the server refuses; either way no
    // byte gets through.
    if let Ok(mut client) =
        tls_connect(listener.local_addr().unwrap(), pki.client_config(None)).await
    {
        let _ = client.write_all(&CONNECT).await;
        let mut buf = [0u8; 1];
        assert!(!matches!(client.read(&mut buf).await, Ok(n) if n > 0));
    }
    assert!(server.await.unwrap().is_err());

    // A certificate from another CA is refused as well.
    let stranger = TestPki::new("other CA");
    let server = accept_one(&listener);
    let identity = stranger.client_identity("intruder");
    let _ = tls_connect(
        listener.local_addr().unwrap(),
        pki.client_config(Some(identity)),
    )
    .await;
    assert!(server.await.unwrap().is_err());

    // The listener is unaffected: a proper client gets in.
    let server = accept_one(&listener);
    let identity = pki.client_identity("sensor-17");
    let mut client = tls_connect(
        listener.local_addr().unwrap(),
        pki.client_config(Some(identity)),
    )
    .await
    .unwrap();
    round_trip(&mut client, &mut server.await.unwrap().unwrap()).await;
}

#[tokio::test]
async fn tls_optional_client_certificate_lets_anonymous_clients_in() {
    let pki = TestPki::new("test CA");
    let mut config = tls_config(&pki, ListenerType::Tls);
    config.cafile = Some(pki.ca_path());
    config.use_identity_as_username = true;
    let listener = Arc::new(bind(&config, pki.dir.path()).await);

    let server = accept_one(&listener);
    let mut client = tls_connect(listener.local_addr().unwrap(), pki.client_config(None))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.tls_username, None);
    round_trip(&mut client, &mut accepted).await;

    let server = accept_one(&listener);
    let identity = pki.client_identity("sensor-3");
    let _client = tls_connect(
        listener.local_addr().unwrap(),
        pki.client_config(Some(identity)),
    )
    .await
    .unwrap();
    let accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.tls_username.as_deref(), Some("sensor-3"));
}

#[tokio::test]
async fn tls_client_certificate_cn_becomes_tls_username() {
    let pki = TestPki::new("test CA");
    let mut config = tls_config(&pki, ListenerType::Tls);
    config.cafile = Some(pki.ca_path());
    config.require_certificate = true;
    config.use_identity_as_username = true;
    let listener = Arc::new(bind(&config, pki.dir.path()).await);
    let server = accept_one(&listener);
    let identity = pki.client_identity("sensor-17");
    let mut client = tls_connect(
        listener.local_addr().unwrap(),
        pki.client_config(Some(identity)),
    )
    .await
    .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.tls_username.as_deref(), Some("sensor-17"));
    round_trip(&mut client, &mut accepted).await;
}

fn server_cn(client: &tokio_rustls::client::TlsStream<TcpStream>) -> Option<String> {
    let leaf = client.get_ref().1.peer_certificates()?.first()?;
    tls::common_name(leaf.as_ref())
}

#[tokio::test]
async fn tls_reload_serves_new_certificate_to_new_connections_only() {
    let pki = TestPki::new("test CA");
    let listener = Arc::new(bind(&tls_config(&pki, ListenerType::Tls), pki.dir.path()).await);
    let addr = listener.local_addr().unwrap();

    let server = accept_one(&listener);
    let mut old_client = tls_connect(addr, pki.client_config(None)).await.unwrap();
    let mut old = server.await.unwrap().unwrap();
    assert_eq!(server_cn(&old_client).as_deref(), Some("first"));

    pki.write_server("server", "second");
    listener.reload_certificates().unwrap();

    let server = accept_one(&listener);
    let mut new_client = tls_connect(addr, pki.client_config(None)).await.unwrap();
    let mut new = server.await.unwrap().unwrap();
    assert_eq!(server_cn(&new_client).as_deref(), Some("second"));
    round_trip(&mut new_client, &mut new).await;
    round_trip(&mut old_client, &mut old).await;

    // A broken file fails the reload, names the file, and keeps the certificate in use.
    let (certfile, _) = pki.write_server("server", "third");
    std::fs::write(&certfile, "not a certificate").unwrap();
    let error = listener.reload_certificates().unwrap_err();
    assert!(
        format!("{error:#}").contains(&certfile.display().to_string()),
        "{error:#}"
    );
    let server = accept_one(&listener);
    let client = tls_connect(addr, pki.client_config(None)).await.unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(server_cn(&client).as_deref(), Some("second"));
}

#[tokio::test]
async fn tls_missing_certificate_file_fails_bind_naming_it() {
    let pki = TestPki::new("test CA");
    let mut config = tls_config(&pki, ListenerType::Tls);
    let missing = pki.dir.path().join("absent.crt");
    config.certfile = Some(missing.clone());
    let error = Listener::bind("secure", &config, pki.dir.path())
        .await
        .err()
        .unwrap();
    let message = format!("{error:#}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("secure"), "{message}");

    let mut config = tls_config(&pki, ListenerType::Wss);
    config.keyfile = None;
    let error = Listener::bind("secure", &config, pki.dir.path())
        .await
        .err()
        .unwrap();
    let message = format!("{error:#}");
    assert!(
        message.contains("keyfile") && message.contains("secure"),
        "{message}"
    );

    let mut config = tls_config(&pki, ListenerType::Tls);
    config.require_certificate = true;
    let error = Listener::bind("secure", &config, pki.dir.path())
        .await
        .err()
        .unwrap();
    assert!(format!("{error:#}").contains("cafile"));
}

#[tokio::test]
async fn wss_end_to_end_with_client_certificate() {
    let pki = TestPki::new("test CA");
    let mut config = tls_config(&pki, ListenerType::Wss);
    config.cafile = Some(pki.ca_path());
    config.require_certificate = true;
    config.use_identity_as_username = true;
    let listener = Arc::new(bind(&config, pki.dir.path()).await);
    let server = accept_one(&listener);
    let tls = tls_connect(
        listener.local_addr().unwrap(),
        pki.client_config(Some(pki.client_identity("dashboard"))),
    )
    .await
    .unwrap();
    let mut client = ws_client_over(tls, "wss", "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.kind, ListenerType::Wss);
    assert_eq!(accepted.tls_username.as_deref(), Some("dashboard"));

    client
        .send(Message::Binary(CONNECT[..3].to_vec().into()))
        .await
        .unwrap();
    client
        .send(Message::Binary(CONNECT[3..].to_vec().into()))
        .await
        .unwrap();
    let mut got = [0u8; CONNECT.len()];
    accepted.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, CONNECT);
    accepted
        .stream
        .write_all(&[0x20, 0x02, 0x00, 0x00])
        .await
        .unwrap();
    accepted.stream.flush().await.unwrap();
    let reply = client.next().await.unwrap().unwrap();
    assert_eq!(reply, Message::Binary(vec![0x20, 0x02, 0x00, 0x00].into()));
}

// ---- PROXY protocol ----

async fn proxy_listener(kind: ListenerType) -> Arc<Listener> {
    let mut config = config(kind);
    config.proxy_protocol = true;
    Arc::new(bind(&config, Path::new(".")).await)
}

#[tokio::test]
async fn proxy_v1_header_sets_the_peer() {
    let listener = proxy_listener(ListenerType::Tcp).await;
    let server = accept_one(&listener);
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    client
        .write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 1883\r\n")
        .await
        .unwrap();
    client.write_all(&CONNECT).await.unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.peer, "203.0.113.9:40000".parse().unwrap());
    let mut got = [0u8; CONNECT.len()];
    accepted.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, CONNECT);
}

fn v2_header(command: u8, body: &[u8]) -> Vec<u8> {
    let mut header = super::proxy::V2_SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(0x11);
    header.extend_from_slice(&(body.len() as u16).to_be_bytes());
    header.extend_from_slice(body);
    header
}

#[tokio::test]
async fn proxy_v2_header_sets_the_peer_before_the_websocket_upgrade() {
    let listener = proxy_listener(ListenerType::Ws).await;
    let server = accept_one(&listener);
    let mut tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    tcp.write_all(&v2_header(
        1,
        &[198, 51, 100, 20, 127, 0, 0, 1, 0x1f, 0x90, 0x07, 0x5b],
    ))
    .await
    .unwrap();
    let mut client = ws_client_over(tcp, "ws", "/mqtt", Some("mqtt"))
        .await
        .unwrap();
    let mut accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.peer, "198.51.100.20:8080".parse().unwrap());
    client
        .send(Message::Binary(PINGREQ.to_vec().into()))
        .await
        .unwrap();
    let mut got = [0u8; 2];
    accepted.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, PINGREQ);
}

#[tokio::test]
async fn proxy_v2_local_keeps_the_socket_peer() {
    let listener = proxy_listener(ListenerType::Tcp).await;
    let server = accept_one(&listener);
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    client.write_all(&v2_header(0, &[])).await.unwrap();
    let accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.peer, client.local_addr().unwrap());
}

#[tokio::test]
async fn proxy_garbage_header_closes_the_connection() {
    let listener = proxy_listener(ListenerType::Tcp).await;
    let server = accept_one(&listener);
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    client.write_all(&CONNECT).await.unwrap();
    let error = server.await.unwrap().err().unwrap();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    // The server dropped the socket: the client reads EOF (or a reset).
    let mut buf = [0u8; 1];
    assert!(!matches!(client.read(&mut buf).await, Ok(n) if n > 0));

    // The listener keeps serving proxied clients.
    let server = accept_one(&listener);
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    client
        .write_all(b"PROXY TCP6 2001:db8::5 ::1 5000 1883\r\n")
        .await
        .unwrap();
    let accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.peer, "[2001:db8::5]:5000".parse().unwrap());
}

#[tokio::test]
async fn a_silent_client_times_out_the_handshake() {
    let listener = proxy_listener(ListenerType::Ws).await;
    let server = {
        let listener = listener.clone();
        tokio::spawn(async move {
            let incoming = listener.accept().await?;
            incoming
                .handshake_within(std::time::Duration::from_millis(100))
                .await
        })
    };
    let _silent = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let error = server.await.unwrap().err().unwrap();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
}
