//! Exec, attach and port-forward over WebSocket, as a 1.36 kubelet serves them to an apiserver
//! that passes kubectl's WebSockets through (`ExtendWebSocketsToKubelet`).
//!
//! - Exec and attach speak the channel protocols: every message is `[channel][payload]`
//!   (channels stdin 0, stdout 1, stderr 2, error 3, resize 4), as text with base64 payloads
//!   for the `base64` variants. `v5.channel.k8s.io` adds the client's close signal `FF <channel>`.
//!   The session ends with the status on the error channel and a close frame 1000, the only
//!   end kubectl takes for EOF.
//! - Port-forward is the SPDY session of `portforward.k8s.io`, tunnelled in binary messages
//!   (`SPDY/3.1+portforward.k8s.io`). The legacy channel port-forward (`?port=`) is refused.
//!
//! The socket is read by one task and written by another, so a client's pings are answered
//! (tungstenite does so while it reads) even while the provider makes the writer wait, and a
//! stdin that waits for the provider never holds up stdout.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use futures::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf},
    sync::mpsc,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{CloseFrame, Role, frame::coding::CloseCode},
    },
};
use vk_abi::{ExecOptions, ProviderError, host::HostStreams};

use super::{
    bridge,
    command::{StreamOptions, run_command, status_message},
    forward::forward_ports,
    handshake::header_contains,
};
use crate::{
    provider::Provider,
    response::{Body, full, text},
    spdy::{self, Connection},
};

/// The exec and attach subprotocols vk serves, those of the kubelet's CRI server and v5.
const REMOTE_COMMAND_PROTOCOLS: [&str; 6] = [
    V5,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "",
];
const V5: &str = "v5.channel.k8s.io";
/// SPDY port-forward tunnelled in binary messages.
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CHANNELS: usize = 5;
/// v5: the client writes no more on the channel in the next byte.
const CLOSE_SIGNAL: u8 = 0xff;

/// Bytes buffered between the socket and the provider's bridge, per channel.
const PIPE: usize = 64 * 1024;
/// Largest payload of one outgoing message; the kubelet writes at most 32 KiB at once.
const CHUNK: usize = 32 * 1024;
/// Messages queued for the writer.
const QUEUED: usize = 8;
/// How long the close frame and what precedes it may take to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client has to answer the close frame before the connection is dropped, so
/// that it reads the close rather than a reset.
const LINGER: Duration = Duration::from_secs(2);

/// Why a client's message was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum FrameError {
    #[error("a close signal must name one channel, got {0} bytes")]
    CloseLength(usize),
    #[error("a close signal for channel {0}, which does not exist")]
    CloseChannel(u8),
    #[error("invalid base64 on channel {0}")]
    Base64(u8),
}

/// Whether the request asks for a WebSocket (the apiserver passes kubectl's through to nodes
/// that declare `ExtendWebSocketsToKubelet`).
pub(super) fn requested(headers: &HeaderMap) -> bool {
    header_contains(headers, header::UPGRADE, "websocket")
}

/// The first protocol, in the client's order, that `supported` holds; `""` when the client
/// names none (§7.1).
fn negotiate(headers: &HeaderMap, supported: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return supported.contains(&"").then_some("");
    }
    offered
        .iter()
        .find_map(|p| supported.iter().find(|s| *s == p).copied())
}

fn refuse(headers: &HeaderMap, supported: &[&str]) -> Response<Body> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    text(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: requested protocol(s) are not supported: [{}]; supports {supported:?}",
            offered.join(", ")
        ),
    )
}

/// Answers the handshake with `protocol` and runs `session` on the socket once hyper hands the
/// connection over.
fn upgrade<F, Fut>(
    mut request: Request<Incoming>,
    protocol: &'static str,
    session: F,
) -> Response<Body>
where
    F: FnOnce(WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let headers = request.headers();
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: Sec-WebSocket-Key is missing",
        );
    };
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
        || !header_contains(headers, header::CONNECTION, "upgrade")
    {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: a WebSocket version 13 upgrade is required",
        );
    }
    let accept = derive_accept_key(key.as_bytes());
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => {
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(socket).await;
            }
            Err(error) => log::debug!("websocket upgrade failed: {error}"),
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    // The empty protocol is the absence of the header.
    if !protocol.is_empty() {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response.body(full("")).expect("a valid response")
}

/// `/exec` and `/attach` over WebSocket, the request already checked.
pub(super) fn remote_command(
    provider: &Provider,
    idle: Duration,
    request: Request<Incoming>,
    exec: ExecOptions,
    options: StreamOptions,
    attach: bool,
) -> Response<Body> {
    let Some(protocol) = negotiate(request.headers(), &REMOTE_COMMAND_PROTOCOLS) else {
        return refuse(request.headers(), &REMOTE_COMMAND_PROTOCOLS);
    };
    log::debug!(
        "{} {}/{}/{} over WebSocket ({protocol:?})",
        if attach { "attach" } else { "exec" },
        exec.namespace,
        exec.pod,
        exec.container
    );
    let provider = provider.clone();
    upgrade(request, protocol, move |socket| async move {
        let run = |host| run_command(&provider, exec, attach, host);
        serve_channels(socket, protocol, &options, idle, run).await;
    })
}

/// `/portForward` over WebSocket: only the SPDY tunnel.
pub(super) fn port_forward(
    provider: &Provider,
    idle: Duration,
    request: Request<Incoming>,
    pod: Arc<Pod>,
) -> Response<Body> {
    if negotiate(request.headers(), &[TUNNEL_PROTOCOL]).is_none() {
        // kubectl only speaks the tunnel; legacy channel clients get a clear refusal.
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade: vk serves WebSocket port-forward only as {TUNNEL_PROTOCOL}, \
                 not the channel protocols"
            ),
        );
    }
    log::debug!(
        "port-forward {}/{} over WebSocket ({TUNNEL_PROTOCOL})",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let provider = provider.clone();
    upgrade(request, TUNNEL_PROTOCOL, move |socket| async move {
        let config = spdy::Config {
            idle_timeout: Some(idle),
            ..spdy::Config::default()
        };
        let connection = Connection::new(Tunnel::new(socket), config);
        forward_ports(provider, pod, connection).await;
    })
}

/// How a channel protocol frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Framing {
    /// Text messages: the channel as an ASCII digit, then base64.
    base64: bool,
    /// v5: the client may send `FF <channel>`.
    close_signal: bool,
    /// The SPDY protocol whose error stream content the error channel carries (§7.2).
    status_protocol: &'static str,
}

/// A message from the client, decoded.
#[derive(Debug, PartialEq, Eq)]
enum Inbound {
    Data { channel: u8, payload: Bytes },
    Close(u8),
    Empty,
}

impl Framing {
    fn of(protocol: &str) -> Framing {
        let v4 = protocol == V5 || protocol.starts_with("v4.");
        Framing {
            base64: protocol.contains("base64"),
            close_signal: protocol == V5,
            status_protocol: if v4 {
                "v4.channel.k8s.io"
            } else {
                "channel.k8s.io"
            },
        }
    }

    fn encode(self, channel: u8, payload: &[u8]) -> Message {
        if self.base64 {
            let digit = char::from(b'0' + channel);
            Message::text(format!("{digit}{}", BASE64.encode(payload)))
        } else {
            let mut message = Vec::with_capacity(1 + payload.len());
            message.push(channel);
            message.extend_from_slice(payload);
            Message::binary(message)
        }
    }

    /// Decodes a text or binary message's bytes; the server takes either kind.
    fn decode(self, data: Bytes) -> Result<Inbound, FrameError> {
        let Some(&first) = data.first() else {
            return Ok(Inbound::Empty);
        };
        if self.close_signal && first == CLOSE_SIGNAL {
            return match *data {
                [_, channel] if usize::from(channel) < CHANNELS => Ok(Inbound::Close(channel)),
                [_, channel] => Err(FrameError::CloseChannel(channel)),
                _ => Err(FrameError::CloseLength(data.len())),
            };
        }
        if !self.base64 {
            return Ok(Inbound::Data {
                channel: first,
                payload: data.slice(1..),
            });
        }
        let channel = first.wrapping_sub(b'0');
        let payload = BASE64
            .decode(&data[1..])
            .map_err(|_| FrameError::Base64(channel))?;
        Ok(Inbound::Data {
            channel,
            payload: payload.into(),
        })
    }
}

fn close_message(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: "".into(),
    }))
}

/// Runs an exec or attach session on `socket`: `run` gets the provider's ends of the channels
/// the client asked for and returns the exit code.
async fn serve_channels<S, F, Fut>(
    socket: WebSocketStream<S>,
    protocol: &'static str,
    options: &StreamOptions,
    idle: Duration,
    run: F,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(HostStreams) -> Fut,
    Fut: Future<Output = Result<i32, ProviderError>>,
{
    let framing = Framing::of(protocol);
    let (sink, stream) = socket.split();
    let (queue, outgoing) = mpsc::channel(QUEUED);
    let mut writer = tokio::spawn(write_messages(sink, outgoing));
    // The ready signal old browser clients wait for, on the lowest channel they read.
    let ready = match (options.stdout, options.stderr) {
        (true, _) => STDOUT,
        (false, true) => STDERR,
        (false, false) => ERROR,
    };
    let _ = queue.send(framing.encode(ready, &[])).await;

    let mut host = HostStreams::default();
    let mut pumps = bridge::Pumps::default();
    let mut inputs: [Option<DuplexStream>; CHANNELS] = Default::default();
    if options.stdin {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        inputs[usize::from(STDIN)] = Some(ours);
        host.stdin = Some(bridge::source(theirs, &mut pumps));
    }
    if options.tty {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        inputs[usize::from(RESIZE)] = Some(ours);
        host.resize = Some(bridge::resizes(theirs, &mut pumps));
    }
    let mut forwarders = Vec::new();
    for (wanted, channel, slot) in [
        (options.stdout, STDOUT, &mut host.stdout),
        (options.stderr, STDERR, &mut host.stderr),
    ] {
        if wanted {
            let (ours, theirs) = tokio::io::duplex(PIPE);
            *slot = Some(bridge::sink(theirs, &mut pumps));
            forwarders.push(tokio::spawn(forward(ours, channel, framing, queue.clone())));
        }
    }
    let mut reader = tokio::spawn(read_messages(stream, framing, inputs, idle, queue.clone()));

    let result = run(host).await;
    // The provider dropped its ends: the bridge flushes into the pipes, the forwarders queue
    // the rest, and only then the status and the close follow.
    pumps.finish().await;
    for forwarder in forwarders {
        let _ = forwarder.await;
    }
    if let Some(status) = status_message(framing.status_protocol, &result) {
        let _ = queue.send(framing.encode(ERROR, status.as_bytes())).await;
    }
    let _ = queue.send(close_message(CloseCode::Normal)).await;
    drop(queue);
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    if tokio::time::timeout(LINGER, &mut reader).await.is_err() {
        reader.abort();
    }
}

/// Sends what is queued, flushing when the queue runs dry, until a close frame.
async fn write_messages<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut queue: mpsc::Receiver<Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = queue.recv().await {
        let last = matches!(message, Message::Close(_));
        if sink.feed(message).await.is_err() {
            return;
        }
        if (last || queue.is_empty()) && sink.flush().await.is_err() {
            return;
        }
        if last {
            return;
        }
    }
}

/// Queues what the provider writes into `pipe` as messages on `channel`.
async fn forward(
    mut pipe: DuplexStream,
    channel: u8,
    framing: Framing,
    queue: mpsc::Sender<Message>,
) {
    let mut buffer = vec![0; CHUNK];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // A client gone makes the pipe fail, and so the provider's writes.
                if queue
                    .send(framing.encode(channel, &buffer[..n]))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Reads the client's messages into the input pipes until the client closes, breaks the
/// protocol or stays silent for `idle`; dropping a pipe gives the provider EOF.
async fn read_messages<S>(
    mut stream: SplitStream<WebSocketStream<S>>,
    framing: Framing,
    mut inputs: [Option<DuplexStream>; CHANNELS],
    idle: Duration,
    queue: mpsc::Sender<Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let data = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => data,
            Ok(Some(Ok(Message::Text(text)))) => text.into(),
            // Pings are answered by tungstenite; a close is answered too and ends the stream.
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => {
                log::debug!("websocket session: {error}");
                return;
            }
            Ok(None) => return,
            Err(_) => {
                log::debug!("websocket session idle for {idle:?}, closing it");
                let _ = queue.send(close_message(CloseCode::Away)).await;
                return;
            }
        };
        match framing.decode(data) {
            Ok(Inbound::Data { channel, payload }) => {
                let Some(slot) = inputs.get_mut(usize::from(channel)) else {
                    continue;
                };
                // Data for a channel not asked for is dropped, as the kubelet does.
                if let Some(pipe) = slot
                    && pipe.write_all(&payload).await.is_err()
                {
                    *slot = None;
                }
            }
            Ok(Inbound::Close(channel)) => inputs[usize::from(channel)] = None,
            Ok(Inbound::Empty) => {}
            Err(error @ FrameError::Base64(_)) => log::debug!("websocket session: {error}"),
            Err(error) => {
                log::debug!("websocket session: {error}");
                return;
            }
        }
    }
}

/// A WebSocket as the byte stream of the SPDY session it tunnels: binary payloads in, binary
/// messages out; a close frame is EOF and shutting down sends a close frame 1000, the only EOF
/// client-go's tunnel takes.
struct Tunnel<S> {
    socket: WebSocketStream<S>,
    /// What is left of the last message read.
    pending: Bytes,
    close_sent: bool,
}

impl<S> Tunnel<S> {
    fn new(socket: WebSocketStream<S>) -> Self {
        Tunnel {
            socket,
            pending: Bytes::new(),
            close_sent: false,
        }
    }
}

fn io_error(error: tokio_tungstenite::tungstenite::Error) -> io::Error {
    match error {
        tokio_tungstenite::tungstenite::Error::Io(error) => error,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tunnel<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pending.is_empty() {
            match ready!(this.socket.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text message in a SPDY tunnel",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tunnel<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.socket.poll_ready_unpin(cx)).map_err(io_error)?;
        this.socket
            .start_send_unpin(Message::binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().socket.poll_flush_unpin(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            ready!(this.socket.poll_ready_unpin(cx)).map_err(io_error)?;
            this.socket
                .start_send_unpin(close_message(CloseCode::Normal))
                .map_err(io_error)?;
            this.close_sent = true;
        }
        this.socket.poll_close_unpin(cx).map_err(io_error)
    }
}

#[cfg(test)]
mod tests;
