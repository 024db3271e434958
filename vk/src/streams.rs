//! Exec, attach and port-forward: the upgraded connections of the kubelet API (SPDY here,
//! WebSocket in `websocket`), bridged to the provider's stream calls.
//!
//! Bytes move between the async streams and the provider's blocking calls through small
//! bounded channels, so a slow side makes the other wait instead of buffering without end.
//! Every task and provider handle is released when either side closes or the session idles
//! out.
//!
//! Here the entry points and the SPDY exec session; `handshake` negotiates SPDY upgrades,
//! `websocket` serves the WebSocket variants, `command` and `forward` hold what exec, attach
//! and port-forward do whichever carries them, and `bridge` moves the bytes.

pub(crate) mod bridge;
mod command;
mod forward;
mod handshake;
mod websocket;

use std::{sync::Arc, time::Duration};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncWriteExt;
use vk_abi::{ExecOptions, host::HostStreams};

use crate::{
    provider::Provider,
    response::{Body, text},
    spdy::{Connection, Stream},
};
use command::{StreamOptions, run_command, status_message};
use handshake::{PORT_FORWARD_PROTOCOL, REMOTE_COMMAND_PROTOCOLS, negotiate, upgrade};

/// Time limits of streaming sessions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to open the streams of a session.
    pub creation: Duration,
    /// How long a session may stay without traffic.
    pub idle: Duration,
}

/// `/exec` and `/attach` on `container` of `pod`, which the caller found.
pub fn remote_command(
    provider: &Provider,
    limits: Limits,
    request: Request<Incoming>,
    pod: Arc<Pod>,
    container: &str,
    attach: bool,
) -> Response<Body> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let options = match StreamOptions::parse(request.uri().query().unwrap_or("")) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    if !attach && options.command.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify a command to exec",
        );
    }
    let exec = ExecOptions {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod_name,
        container: container.to_string(),
        command: options.command.clone(),
        tty: options.tty,
        timeout_seconds: None,
    };
    if websocket::requested(request.headers()) {
        return websocket::remote_command(provider, limits.idle, request, exec, options, attach);
    }
    let protocol = match negotiate(request.headers(), &REMOTE_COMMAND_PROTOCOLS) {
        Ok(protocol) => protocol,
        Err(refusal) => return *refusal,
    };
    let session = RemoteCommand {
        provider: provider.clone(),
        creation: limits.creation,
        exec,
        streams: options,
        protocol,
        attach,
    };
    upgrade(request, protocol, limits.idle, move |connection| {
        session.run(connection)
    })
}

/// One exec or attach session.
struct RemoteCommand {
    provider: Provider,
    /// How long the client may take to open its streams.
    creation: Duration,
    exec: ExecOptions,
    streams: StreamOptions,
    protocol: &'static str,
    attach: bool,
}

/// The streams of a session, by `streamtype`.
#[derive(Default)]
struct SessionStreams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl RemoteCommand {
    /// How many streams the client opens: error, then those it asked for.
    fn expected_streams(&self) -> usize {
        let resize = self.streams.tty
            && self.protocol != "channel.k8s.io"
            && self.protocol != "v2.channel.k8s.io";
        1 + [
            self.streams.stdin,
            self.streams.stdout,
            self.streams.stderr,
            resize,
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    async fn accept_streams(&self, connection: &mut Connection) -> Option<SessionStreams> {
        let expected = self.expected_streams();
        let mut streams = SessionStreams::default();
        let mut accepted = 0;
        let accepting = async {
            while accepted < expected {
                let incoming = connection.accept().await?;
                let kind = incoming
                    .headers()
                    .get("streamtype")
                    .unwrap_or_default()
                    .to_string();
                let stream = incoming.reply();
                let slot = match kind.as_str() {
                    "error" => &mut streams.error,
                    "stdin" => &mut streams.stdin,
                    "stdout" => &mut streams.stdout,
                    "stderr" => &mut streams.stderr,
                    "resize" => &mut streams.resize,
                    other => {
                        log::debug!("ignoring a stream of unknown type {other:?}");
                        continue;
                    }
                };
                *slot = Some(stream);
                accepted += 1;
            }
            Some(())
        };
        match tokio::time::timeout(self.creation, accepting).await {
            Ok(Some(())) => Some(streams),
            Ok(None) => None,
            Err(_) => {
                log::debug!("exec session: the client did not open its streams in time");
                None
            }
        }
    }

    async fn run(self, mut connection: Connection) {
        let Some(streams) = self.accept_streams(&mut connection).await else {
            connection.close().await;
            return;
        };
        let mut host = HostStreams::default();
        let mut pumps = bridge::Pumps::default();
        if let Some(stdin) = streams.stdin {
            let (reader, _) = stdin.split();
            host.stdin = Some(bridge::source(reader, &mut pumps));
        }
        for (stream, slot) in [
            (streams.stdout, &mut host.stdout),
            (streams.stderr, &mut host.stderr),
        ] {
            if let Some(stream) = stream {
                let (_, writer) = stream.split();
                *slot = Some(bridge::sink(writer, &mut pumps));
            }
        }
        if let Some(resize) = streams.resize {
            let (reader, _) = resize.split();
            host.resize = Some(bridge::resizes(reader, &mut pumps));
        }
        let result = run_command(&self.provider, self.exec.clone(), self.attach, host).await;
        // The provider dropped its ends: the pumps flush and finish their streams.
        pumps.finish().await;
        if let Some(error_stream) = streams.error {
            let (_, mut writer) = error_stream.split();
            if let Some(status) = status_message(self.protocol, &result) {
                let _ = writer.write_all(status.as_bytes()).await;
            }
            let _ = writer.shutdown().await;
        }
        connection.close().await;
    }
}

/// `/portForward` to `pod`, which the caller found.
pub fn port_forward(
    provider: &Provider,
    limits: Limits,
    request: Request<Incoming>,
    pod: Arc<Pod>,
) -> Response<Body> {
    if websocket::requested(request.headers()) {
        return websocket::port_forward(provider, limits.idle, request, pod);
    }
    let protocol = match negotiate(request.headers(), &[PORT_FORWARD_PROTOCOL]) {
        Ok(protocol) => protocol,
        Err(refusal) => return *refusal,
    };
    let provider = provider.clone();
    upgrade(request, protocol, limits.idle, move |connection| {
        forward::forward_ports(provider, pod, connection)
    })
}
