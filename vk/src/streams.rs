//! Exec, attach and port-forward: the upgraded connections of the kubelet API, bridged to the
//! provider's stream calls. (Being written.)

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use k8s_openapi::api::core::v1::Pod;

use crate::server::{Body, ServerState, text};

/// Time limits of streaming sessions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to open the streams of a session.
    pub creation: std::time::Duration,
    /// How long a session may stay without traffic.
    pub idle: std::time::Duration,
}

pub async fn remote_command(
    _state: &Arc<ServerState>,
    _request: Request<Incoming>,
    _pod: Arc<Pod>,
    _container: &str,
    _attach: bool,
) -> Response<Body> {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "exec and attach are not served yet",
    )
}

pub async fn port_forward(
    _state: &Arc<ServerState>,
    _request: Request<Incoming>,
    _pod: Arc<Pod>,
) -> Response<Body> {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "port-forward is not served yet",
    )
}
