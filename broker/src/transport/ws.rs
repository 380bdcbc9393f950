//! MQTT over WebSocket: the HTTP upgrade (paths `/mqtt` and `/`, subprotocol `mqtt`,
//! `mqttv3.1` or `mqttv3.1.1`) and [`WsByteStream`], which turns the binary frames of one
//! WebSocket into a plain byte stream. MQTT packets do not align with frames (a packet may
//! span frames, a frame may carry several packets), so the codec must see bytes, not messages.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream as FuturesStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// Largest WebSocket message or frame accepted: the broker's largest packet plus headroom.
pub const MAX_WS_MESSAGE_SIZE: usize = 2 * 1024 * 1024;

/// Buffered outgoing bytes at or above this are sent as a frame before more are taken, so a
/// writer that never flushes cannot grow the buffer without bound.
const WRITE_FRAME_TARGET: usize = 64 * 1024;

/// Subprotocols accepted, as named by MQTT 3.1.1 §6 (`mqtt`, preferred) and by older clients.
pub const SUBPROTOCOLS: [&str; 3] = ["mqtt", "mqttv3.1", "mqttv3.1.1"];

/// URL paths a client may upgrade on.
pub const PATHS: [&str; 2] = ["/mqtt", "/"];

/// The WebSocket limits every server connection uses.
pub fn server_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_WS_MESSAGE_SIZE))
}

/// Runs the server side of the HTTP upgrade on `stream` and returns the byte stream over it.
/// A wrong path gets HTTP 404, an offered subprotocol list without an MQTT one gets HTTP 400.
pub async fn accept<S>(stream: S) -> io::Result<WsByteStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, negotiate, Some(server_config()))
            .await
            .map_err(|e| ws_error_to_io(e, io::ErrorKind::InvalidData))?;
    Ok(WsByteStream::new(ws))
}

/// The upgrade callback: checks the path and picks the subprotocol, echoing it in the response
/// as RFC 6455 §4.2.2 requires. `mqtt` wins whenever offered [MQTT-6.0.0-4]; the 3.1-era names
/// are taken (in the client's order) only from clients that do not offer `mqtt`.
// The error type is fixed by tungstenite's `Callback` trait, so its size is not ours to change.
#[allow(clippy::result_large_err)]
fn negotiate(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let path = request.uri().path();
    if !PATHS.contains(&path) {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            "MQTT is served on /mqtt",
        ));
    }
    let offered: Vec<&str> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if offered.is_empty() {
        // Some clients offer no subprotocol at all; MQTT still works, so do not refuse them.
        return Ok(response);
    }
    let chosen = if offered.contains(&SUBPROTOCOLS[0]) {
        Some(SUBPROTOCOLS[0])
    } else {
        offered
            .iter()
            .find_map(|name| SUBPROTOCOLS.iter().find(|ours| *ours == name).copied())
    };
    match chosen {
        Some(name) => {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(name),
            );
            Ok(response)
        }
        None => Err(error_response(
            StatusCode::BAD_REQUEST,
            "no supported subprotocol offered (expected mqtt)",
        )),
    }
}

fn error_response(status: StatusCode, reason: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(reason.to_owned()));
    *response.status_mut() = status;
    response
}

/// Maps a WebSocket error to an I/O error; `fallback` is the kind for protocol violations.
fn ws_error_to_io(error: WsError, fallback: io::ErrorKind) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        other => io::Error::new(fallback, other),
    }
}

/// One WebSocket connection seen as a byte stream. Reads yield the payloads of binary frames in
/// order; a close frame (or the peer going away) reads as EOF; a text frame is an error since
/// MQTT requires binary frames. Writes are buffered and go out as one binary frame per flush.
pub struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    /// Unread rest of the last binary message.
    read_buf: Bytes,
    read_eof: bool,
    write_buf: BytesMut,
}

impl<S> WsByteStream<S> {
    pub fn new(ws: WebSocketStream<S>) -> WsByteStream<S> {
        WsByteStream {
            ws,
            read_buf: Bytes::new(),
            read_eof: false,
            write_buf: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsByteStream<S> {
    /// Hands the buffered bytes to the WebSocket as one binary frame (not yet flushed).
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx))
            .map_err(|e| ws_error_to_io(e, io::ErrorKind::Other))?;
        let frame = Message::Binary(self.write_buf.split().freeze());
        Pin::new(&mut self.ws)
            .start_send(frame)
            .map_err(|e| ws_error_to_io(e, io::ErrorKind::Other))?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.read_buf.is_empty() {
                let n = this.read_buf.len().min(buf.remaining());
                buf.put_slice(&this.read_buf[..n]);
                this.read_buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.read_eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // Polling the stream also sends queued pongs and close replies.
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(payload))) => this.read_buf = payload,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // tungstenite has queued the close reply: the next poll sends it and then
                // ends the stream, which lands in the arms below as EOF.
                Some(Ok(Message::Close(_))) => {}
                None => this.read_eof = true,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "websocket text frame: MQTT needs binary frames",
                    )))
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    this.read_eof = true
                }
                Some(Err(e)) => {
                    return Poll::Ready(Err(ws_error_to_io(e, io::ErrorKind::InvalidData)))
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_buf.len() >= WRITE_FRAME_TARGET {
            ready!(this.poll_send_buffered(cx))?;
        }
        // Take all of `data` so one packet written in one call stays in one frame.
        this.write_buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        Pin::new(&mut this.ws)
            .poll_flush(cx)
            .map_err(|e| ws_error_to_io(e, io::ErrorKind::Other))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        match ready!(Pin::new(&mut this.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(ws_error_to_io(e, io::ErrorKind::Other))),
        }
    }
}
