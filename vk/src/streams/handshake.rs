//! The HTTP side of a SPDY upgrade, as the kubelet answers it: the stream protocol agreed from
//! the client's offer, then `101 Switching Protocols` and the session on the upgraded
//! connection.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::{
    response::{Body, full, text},
    spdy::{self, Connection},
};

#[cfg(test)]
mod tests;

/// The remote command protocols vk speaks over SPDY, newest first (v5 over SPDY is v4).
pub(super) const REMOTE_COMMAND_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
pub(super) const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

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

pub(super) fn header_contains(headers: &HeaderMap, name: header::HeaderName, wanted: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(wanted))
}

/// Negotiates a SPDY upgrade as the kubelet does; the protocol, or the refusal to send back.
pub(super) fn negotiate(
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
pub(super) fn upgrade<F, Fut>(
    mut request: Request<Incoming>,
    protocol: &'static str,
    idle: Duration,
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
                    idle_timeout: Some(idle),
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
