//! Exec, attach and port-forward: the upgraded connections of the kubelet API (SPDY here,
//! WebSocket in `websocket`), bridged to the provider's stream calls.
//!
//! Bytes move between the async streams and the provider's blocking calls through small
//! bounded channels, so a slow side makes the other wait instead of buffering without end.
//! Every task and provider handle is released when either side closes or the session idles
//! out.

mod bridge;
mod websocket;

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use vk_abi::{ExecOptions, PortForwardOptions, host::HostStreams};

use crate::{
    server::{Body, ServerState, full, has_container, text},
    spdy::{self, Connection, Stream},
};

/// Time limits of streaming sessions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to open the streams of a session.
    pub creation: Duration,
    /// How long a session may stay without traffic.
    pub idle: Duration,
}

/// The remote command protocols vk speaks over SPDY, newest first (v5 over SPDY is v4).
const REMOTE_COMMAND_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// Which streams an exec or attach asked for (`input`, `output`, `error`, `tty` = `1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

impl StreamOptions {
    pub(crate) fn parse(query: &str) -> Result<Self, &'static str> {
        let mut options = StreamOptions::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let on = value == "1";
            match key.as_ref() {
                "input" => options.stdin = on,
                "output" => options.stdout = on,
                "error" => options.stderr = on,
                "tty" => options.tty = on,
                "command" => options.command.push(value.into_owned()),
                _ => {}
            }
        }
        // With a tty, stderr is stdout.
        options.stderr &= !options.tty;
        if !(options.stdin || options.stdout || options.stderr) {
            return Err("you must specify at least 1 of stdin, stdout, stderr");
        }
        Ok(options)
    }
}

/// The protocols a client offers, in its order (one header line each, or comma-separated).
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn header_contains(headers: &HeaderMap, name: header::HeaderName, wanted: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(wanted))
}

/// Negotiates a SPDY upgrade as the kubelet does; the protocol, or the refusal to send back.
fn negotiate(
    headers: &HeaderMap,
    supported: &[&'static str],
) -> Result<&'static str, Box<Response<Body>>> {
    let offered = offered_protocols(headers);
    if offered.is_empty() {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: X-Stream-Protocol-Version is missing",
        )));
    }
    let Some(protocol) = offered
        .iter()
        .find_map(|p| supported.iter().find(|s| **s == p).copied())
    else {
        let mut refusal = text(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: no common stream protocol (offered {})",
                offered.join(", ")
            ),
        );
        for supported in supported {
            refusal.headers_mut().append(
                "x-accepted-stream-protocol-versions",
                HeaderValue::from_static(supported),
            );
        }
        return Err(Box::new(refusal));
    };
    if !header_contains(headers, header::CONNECTION, "upgrade")
        || !header_contains(headers, header::UPGRADE, "spdy/3.1")
    {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers for SPDY/3.1",
        )));
    }
    Ok(protocol)
}

/// Switches the connection to SPDY and runs `session` on it once hyper hands it over.
fn upgrade<F, Fut>(
    mut request: Request<Incoming>,
    protocol: &'static str,
    limits: Limits,
    session: F,
) -> Response<Body>
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => {
                let config = spdy::Config {
                    idle_timeout: Some(limits.idle),
                    ..spdy::Config::default()
                };
                session(Connection::new(TokioIo::new(upgraded), config)).await;
            }
            Err(error) => log::debug!("stream upgrade failed: {error}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_HEADER, protocol)
        .body(full(""))
        .expect("a valid response")
}

/// `/exec` and `/attach`.
pub async fn remote_command(
    state: &Arc<ServerState>,
    request: Request<Incoming>,
    pod: Arc<Pod>,
    container: &str,
    attach: bool,
) -> Response<Body> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    if !has_container(&pod, container) {
        return text(
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" not found in pod \"{pod_name}\""),
        );
    }
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
    };
    if websocket::requested(request.headers()) {
        return websocket::remote_command(state, request, exec, options, attach);
    }
    let protocol = match negotiate(request.headers(), &REMOTE_COMMAND_PROTOCOLS) {
        Ok(protocol) => protocol,
        Err(refusal) => return *refusal,
    };
    let session = RemoteCommand {
        state: state.clone(),
        exec,
        streams: options,
        protocol,
        attach,
    };
    upgrade(request, protocol, state.streams, move |connection| {
        session.run(connection)
    })
}

/// One exec or attach session.
struct RemoteCommand {
    state: Arc<ServerState>,
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
        match tokio::time::timeout(self.state.streams.creation, accepting).await {
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
        let result = run_command(&self.state, self.exec.clone(), self.attach, host).await;
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

/// Runs the exec or attach on the provider; the exit code.
async fn run_command(
    state: &ServerState,
    options: ExecOptions,
    attach: bool,
    host: HostStreams,
) -> Result<i32, vk_abi::ProviderError> {
    if attach {
        state
            .provider
            .stream("attach", move |p| p.attach(&options, host))
            .await
    } else {
        state
            .provider
            .stream("exec", move |p| p.exec(&options, host))
            .await
    }
}

/// What the error stream carries at the end: v4's Status JSON, or (v1–v3) text on failure.
pub(crate) fn status_message(
    protocol: &str,
    result: &Result<i32, vk_abi::ProviderError>,
) -> Option<String> {
    let v4 = protocol == "v4.channel.k8s.io";
    match result {
        Ok(0) if v4 => Some(json!({"metadata": {}, "status": "Success"}).to_string()),
        Ok(0) => None,
        Ok(code) if v4 => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: exit status {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
            .to_string(),
        ),
        Ok(code) => Some(format!("command terminated with non-zero exit code: exit status {code}")),
        Err(error) if v4 => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {}", error.message),
                "reason": "InternalError",
                "details": {"causes": [{"message": error.message}]},
                "code": 500,
            })
            .to_string(),
        ),
        Err(error) => Some(error.message.clone()),
    }
}

/// `/portForward`.
pub async fn port_forward(
    state: &Arc<ServerState>,
    request: Request<Incoming>,
    pod: Arc<Pod>,
) -> Response<Body> {
    if websocket::requested(request.headers()) {
        return websocket::port_forward(state, request, pod);
    }
    let protocol = match negotiate(request.headers(), &[PORT_FORWARD_PROTOCOL]) {
        Ok(protocol) => protocol,
        Err(refusal) => return *refusal,
    };
    let state = state.clone();
    let limits = state.streams;
    upgrade(request, protocol, limits, move |connection| {
        forward_ports(state, pod, connection)
    })
}

/// The two streams of one forwarded connection.
#[derive(Default)]
struct PortPair {
    port: u16,
    data: Option<Stream>,
    error: Option<Stream>,
}

async fn forward_ports(state: Arc<ServerState>, pod: Arc<Pod>, mut connection: Connection) {
    let mut pairs: std::collections::HashMap<String, PortPair> = std::collections::HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    while let Some(incoming) = connection.accept().await {
        let headers = incoming.headers();
        let port = headers
            .get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
        let kind = headers.get("streamtype").unwrap_or_default().to_string();
        let (Some(port), "data" | "error") = (port, kind.as_str()) else {
            incoming.refuse();
            continue;
        };
        // Old clients send no request id: pair by stream id (the data stream follows its error
        // stream, two ids later).
        let request_id = match headers.get("requestid") {
            Some(id) => id.to_string(),
            None if kind == "error" => incoming.id().to_string(),
            None => incoming.id().saturating_sub(2).to_string(),
        };
        let stream = incoming.reply();
        let pair = pairs.entry(request_id.clone()).or_default();
        pair.port = port;
        let slot = if kind == "data" {
            &mut pair.data
        } else {
            &mut pair.error
        };
        if slot.replace(stream).is_some() {
            log::debug!("port-forward: a second {kind} stream for request {request_id}");
        }
        if pair.data.is_some() && pair.error.is_some() {
            let pair = pairs.remove(&request_id).expect("the pair is there");
            forwards.spawn(forward_one(state.clone(), pod.clone(), pair));
        }
    }
    forwards.shutdown().await;
    connection.close().await;
}

/// Relays one connection to the pod's port through the provider.
async fn forward_one(state: Arc<ServerState>, pod: Arc<Pod>, pair: PortPair) {
    let (Some(data), Some(error)) = (pair.data, pair.error) else {
        return;
    };
    let options = PortForwardOptions {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        port: pair.port,
    };
    let (reader, writer) = data.split();
    let mut pumps = bridge::Pumps::default();
    let input = bridge::source(reader, &mut pumps);
    let output = bridge::sink(writer, &mut pumps);
    let forwarding = options.clone();
    let result = state
        .provider
        .stream("port_forward", move |p| {
            p.port_forward(&forwarding, input, output)
        })
        .await;
    pumps.finish().await;
    let (_, mut error_writer) = error.split();
    if let Err(error) = result {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let message = format!(
            "error forwarding port {} to pod {}, uid {uid}: {}",
            options.port, options.pod, error.message
        );
        let _ = error_writer.write_all(message.as_bytes()).await;
    }
    let _ = error_writer.shutdown().await;
}

#[cfg(test)]
mod tests;
