//! What a probe or a lifecycle hook does to one container: run a command in it, send it an
//! HTTP GET, open a TCP connection or ask gRPC's health service, as the kubelet's
//! `pkg/probe/{exec,http,tcp,grpc}` do.
//!
//! Commands run through the provider's exec. Connections go straight to the pod IP when the
//! provider says vk can reach it, and otherwise through the provider's port-forward, so that
//! a remote backend is probed too.

use std::{net::IpAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::{
    api::core::v1::{Container, ExecAction, GRPCAction, HTTPGetAction, TCPSocketAction},
    apimachinery::pkg::util::intstr::IntOrString,
};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use vk_abi::{ExecOptions, PortForwardOptions, host::HostStreams};

use crate::{provider::Provider, streams::bridge};

#[cfg(test)]
mod tests;

/// The most of a command's output or a response body that is read, as the kubelet reads.
const OUTPUT_LIMIT: usize = 10 * 1024;
/// The `kube-probe/<major>.<minor>` and `kube-lifecycle/...` user agents name this version.
const KUBE_VERSION: &str = "1.36";

/// How a probe or hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success. An HTTP redirect (3xx) is one too, as it is not followed: the kubelet
    /// follows only redirects to the same host, and a redirect elsewhere is a success.
    Success,
    /// The container answered, and not as hoped: what it said.
    Failure(String),
    /// The check itself could not be made (no pod IP, the provider cannot exec, ...).
    Error(String),
}

/// What runs a probe or hook: a probe judges the HTTP status, a hook takes any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Probe,
    Hook,
}

impl Purpose {
    fn user_agent(self) -> String {
        match self {
            Purpose::Probe => format!("kube-probe/{KUBE_VERSION}"),
            Purpose::Hook => format!("kube-lifecycle/{KUBE_VERSION}"),
        }
    }
}

/// One container of one pod, as the target of probes and hooks.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Provider,
    pub namespace: String,
    pub pod: String,
    pub container: Arc<Container>,
    /// The pod's IP, once the provider reported one.
    pub pod_ip: Option<IpAddr>,
    /// The pod IP can be dialled from here.
    pub pod_ip_reachable: bool,
}

impl Target {
    /// Runs `command` in the container; success is exit code 0. The output goes into the
    /// outcome (and so into the event), as the kubelet's does.
    pub async fn exec(&self, action: &ExecAction, timeout: Duration) -> Outcome {
        let command = action.command.clone().unwrap_or_default();
        let options = ExecOptions {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            container: self.container.name.clone(),
            command,
            tty: false,
            timeout_seconds: Some(timeout.as_secs().max(1)),
        };
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = || {
            let output = output.clone();
            vk_abi::host::byte_sink(move |data| {
                let mut output = output.lock();
                let room = OUTPUT_LIMIT.saturating_sub(output.len());
                output.extend_from_slice(&data[..room.min(data.len())]);
                Ok(())
            })
        };
        let streams = HostStreams {
            stdout: Some(sink()),
            stderr: Some(sink()),
            ..HostStreams::default()
        };
        let call = self
            .provider
            .stream("exec", move |p| p.exec(&options, streams));
        // A provider before ABI 1.4 does not know the time limit: stop waiting all the same.
        let answered = tokio::time::timeout(timeout + Duration::from_secs(1), call).await;
        let text = String::from_utf8_lossy(&output.lock())
            .trim_end()
            .to_string();
        match answered {
            Ok(Ok(0)) => Outcome::Success,
            Ok(Ok(code)) if text.is_empty() => {
                Outcome::Failure(format!("command exited with code {code}"))
            }
            Ok(Ok(_)) => Outcome::Failure(text),
            Ok(Err(error)) if error.kind == vk_abi::ErrorKind::Unavailable => {
                Outcome::Failure(format!("command timed out after {}s", timeout.as_secs()))
            }
            Ok(Err(error)) => Outcome::Error(error.message),
            Err(_) => Outcome::Failure(format!("command timed out after {}s", timeout.as_secs())),
        }
    }

    /// Opens a TCP connection to the port; success once it is established.
    pub async fn tcp(&self, action: &TCPSocketAction, timeout: Duration) -> Outcome {
        let port = match self.port(&action.port) {
            Ok(port) => port,
            Err(error) => return Outcome::Error(error),
        };
        let host = action.host.clone();
        match tokio::time::timeout(timeout, self.connect(host.as_deref(), port)).await {
            Ok(Ok(_connection)) => Outcome::Success,
            Ok(Err(error)) => Outcome::Failure(error),
            Err(_) => Outcome::Failure(format!("dial tcp port {port}: i/o timeout")),
        }
    }

    /// Sends an HTTP GET. A probe succeeds on a status from 200 to 399; a hook on any
    /// answer.
    pub async fn http_get(
        &self,
        action: &HTTPGetAction,
        timeout: Duration,
        purpose: Purpose,
    ) -> Outcome {
        let port = match self.port(&action.port) {
            Ok(port) => port,
            Err(error) => return Outcome::Error(error),
        };
        let exchange = self.http_exchange(action, port, purpose);
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failure(format!(
                "Get \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting \
                 headers)",
                self.url(action, port)
            )),
        }
    }

    async fn http_exchange(&self, action: &HTTPGetAction, port: u16, purpose: Purpose) -> Outcome {
        let url = self.url(action, port);
        let connection = match self.connect(action.host.as_deref(), port).await {
            Ok(connection) => connection,
            Err(error) => return Outcome::Failure(format!("Get \"{url}\": {error}")),
        };
        let https = action.scheme.as_deref() == Some("HTTPS");
        let answered = if https {
            match tls_connect(connection).await {
                Ok(tls) => get(tls, action, &self.host_header(action, port), purpose).await,
                Err(error) => Err(error),
            }
        } else {
            get(connection, action, &self.host_header(action, port), purpose).await
        };
        match answered {
            Err(error) => Outcome::Failure(format!("Get \"{url}\": {error}")),
            Ok(_) if purpose == Purpose::Hook => Outcome::Success,
            Ok((status, _)) if (200..400).contains(&status) => Outcome::Success,
            Ok((status, body)) if body.is_empty() => {
                Outcome::Failure(format!("HTTP probe failed with statuscode: {status}"))
            }
            Ok((status, body)) => Outcome::Failure(format!(
                "HTTP probe failed with statuscode: {status}: {body}"
            )),
        }
    }

    /// Calls `grpc.health.v1.Health/Check`; success only on `SERVING`.
    pub async fn grpc(&self, action: &GRPCAction, timeout: Duration) -> Outcome {
        let Ok(port) = u16::try_from(action.port) else {
            return Outcome::Error(format!("invalid port {}", action.port));
        };
        let service = action.service.clone().unwrap_or_default();
        let call = async {
            let connection = self.connect(None, port).await?;
            grpc_health(connection, &service).await
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(1)) => Outcome::Success,
            Ok(Ok(status)) => Outcome::Failure(format!(
                "service unhealthy (responded with \"{}\")",
                serving_status(status)
            )),
            Ok(Err(error)) => Outcome::Failure(error),
            Err(_) => Outcome::Failure(format!(
                "timeout: health rpc did not complete within {}s",
                timeout.as_secs()
            )),
        }
    }

    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        container_port(&self.container, port)
    }

    fn url(&self, action: &HTTPGetAction, port: u16) -> String {
        let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let path = action.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!("{scheme}://{}{path}", self.host_header(action, port))
    }

    fn host_header(&self, action: &HTTPGetAction, port: u16) -> String {
        let headers = action.http_headers.iter().flatten();
        if let Some(host) = headers
            .into_iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
        {
            return host.value.clone();
        }
        let host = match (&action.host, self.pod_ip) {
            (Some(host), _) => host.clone(),
            (None, Some(IpAddr::V6(ip))) => format!("[{ip}]"),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "localhost".into(),
        };
        format!("{host}:{port}")
    }

    /// A connection to `port` of `host` (default: the pod): dialled straight when it can be,
    /// else relayed by the provider's port-forward.
    async fn connect(&self, host: Option<&str>, port: u16) -> Result<Connection, String> {
        let address = match (host, self.pod_ip) {
            (Some(host), _) => Some(format!("{host}:{port}")),
            (None, Some(ip)) if self.pod_ip_reachable => Some(format!("{ip}:{port}")),
            (None, _) => None,
        };
        if let Some(address) = address {
            return tokio::net::TcpStream::connect(&address)
                .await
                .map(|stream| Box::new(stream) as Connection)
                .map_err(|error| format!("dial tcp {address}: {error}"));
        }
        Ok(Box::new(self.forward(port)))
    }

    /// One connection through the provider's port-forward, as an in-memory duplex.
    fn forward(&self, port: u16) -> tokio::io::DuplexStream {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (reader, writer) = tokio::io::split(theirs);
        let mut pumps = bridge::Pumps::default();
        let input = bridge::source(reader, &mut pumps);
        let output = bridge::sink(writer, &mut pumps);
        let options = PortForwardOptions {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            port,
        };
        let provider = self.provider.clone();
        tokio::spawn(async move {
            let relayed = provider
                .stream("port_forward", move |p| {
                    p.port_forward(&options, input, output)
                })
                .await;
            if let Err(error) = relayed {
                log::debug!("probe port-forward to port {port} ended: {error}");
            }
            pumps.finish().await;
        });
        ours
    }
}

/// The port number `port` names: a number, or a named port of `container`.
fn container_port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(number) => {
            u16::try_from(*number).map_err(|_| format!("invalid port number: {number}"))
        }
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("port {name:?} not found in container {}", container.name)),
    }
}

/// A connection to the container, whichever way it was made (dialled, or a port-forward).
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Connection = Box<dyn Io>;

/// One GET on `io` (HTTP/1.1, `Connection: close`); the status and the start of the body.
async fn get<T>(
    io: T,
    action: &HTTPGetAction,
    host: &str,
    purpose: Purpose,
) -> Result<(u16, String), String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = action.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut request = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, purpose.user_agent())
        .header(http::header::ACCEPT, "*/*")
        .header(http::header::CONNECTION, "close");
    for header in action.http_headers.iter().flatten() {
        if header.name.eq_ignore_ascii_case("host") {
            continue;
        }
        let headers = request.headers_mut().expect("a valid request so far");
        let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(header.name.as_str()),
            http::HeaderValue::try_from(header.value.as_str()),
        ) else {
            return Err(format!("invalid header {:?}", header.name));
        };
        // A header given in the probe replaces the default; an empty Accept removes it.
        if headers.contains_key(&name) && headers.get(&name) != Some(&value) {
            headers.remove(&name);
        }
        if !(name == http::header::ACCEPT && value.is_empty()) {
            headers.append(name, value);
        }
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), OUTPUT_LIMIT)
        .collect()
        .await
        .map(|body| String::from_utf8_lossy(&body.to_bytes()).into_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// TLS over `io` without checking the certificate, as the kubelet's HTTPS probes do.
async fn tls_connect(
    io: Connection,
) -> Result<tokio_rustls::client::TlsStream<Connection>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate::new()))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    // The name only goes into SNI; the certificate is not checked against it.
    let name = rustls::pki_types::ServerName::try_from("probe.invalid").expect("a valid name");
    connector
        .connect(name, io)
        .await
        .map_err(|error| error.to_string())
}

/// A verifier that accepts any server certificate (but still checks the handshake's
/// signatures, so the connection is TLS all the same).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AnyCertificate {
    fn new() -> Self {
        AnyCertificate(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `grpc.health.v1.Health/Check` for `service` over plaintext HTTP/2: the serving status.
async fn grpc_health(io: Connection, service: &str) -> Result<i32, String> {
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|error| format!("failed to connect service: {error}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::post("/grpc.health.v1.Health/Check")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(http::header::USER_AGENT, Purpose::Probe.user_agent())
        .body(Full::new(Bytes::from(grpc_frame(&health_request(service)))))
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("health rpc failed: {error}"))?;
    let collected = Limited::new(response.into_body(), OUTPUT_LIMIT)
        .collect()
        .await
        .map_err(|error| format!("health rpc failed: {error}"))?;
    if let Some(code) = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .filter(|code| *code != "0")
    {
        return Err(format!("health rpc failed: grpc-status {code}"));
    }
    let body = collected.to_bytes();
    let message = body
        .get(5..)
        .ok_or_else(|| "health rpc failed: empty response".to_string())?;
    Ok(health_status(message))
}

/// `HealthCheckRequest { service = 1 }` in protobuf.
fn health_request(service: &str) -> Vec<u8> {
    if service.is_empty() {
        return Vec::new();
    }
    let mut message = vec![0x0a];
    let mut length = service.len();
    while length >= 0x80 {
        message.push((length as u8 & 0x7f) | 0x80);
        length >>= 7;
    }
    message.push(length as u8);
    message.extend_from_slice(service.as_bytes());
    message
}

/// A gRPC message frame: not compressed, its length, the message.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The `status` (field 1, varint) of a `HealthCheckResponse`; 0 (`UNKNOWN`) when absent.
fn health_status(message: &[u8]) -> i32 {
    let mut rest = message;
    while let Some((&key, tail)) = rest.split_first() {
        let (value, tail) = varint(tail);
        match key {
            0x08 => return value as i32,
            // Any other varint field is skipped; other wire types are not in this message.
            key if key & 0x07 == 0 => rest = tail,
            _ => return 0,
        }
    }
    0
}

fn varint(bytes: &[u8]) -> (u64, &[u8]) {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, &bytes[i + 1..]);
        }
    }
    (value, &[])
}

fn serving_status(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}
