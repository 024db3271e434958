//! The kubelet API: HTTPS on `--listen-port`, every request authenticated and authorized as the
//! kubelet does it, then routed: logs, exec, attach, port-forward, pods, stats and metrics.

mod logs;
mod resource_metrics;
mod state;

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http::{Method, Request, Response, StatusCode, header};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use k8s_openapi::{
    List,
    api::core::v1::{Container, Pod, PodSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{
    auth::User,
    metrics::{METRICS, PhaseLabels},
    response::{Body, full, json, provider_error, text},
    streams,
};

pub use state::ServerState;

/// Serves the kubelet API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, state: Arc<ServerState>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                log::warn!("kubelet API: accept failed: {error}");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(acceptor, stream, peer, state).await {
                log::debug!("kubelet API connection from {peer} ended: {error}");
            }
        });
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<ServerState>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = acceptor.accept(stream).await?;
    // The handshake checked that the client holds the certificate's key; a certificate of the
    // client CA names the user, any other is ignored (as the kubelet's x509 authenticator does).
    let user = tls
        .get_ref()
        .1
        .peer_certificates()
        .filter(|chain| match state.client_ca.verify(chain) {
            Ok(()) => true,
            Err(error) => {
                log::debug!("kubelet API: ignoring the client certificate of {peer}: {error}");
                false
            }
        })
        .and_then(|chain| chain.first())
        .and_then(|cert| User::from_certificate(cert));
    let service = service_fn(move |request| {
        let state = state.clone();
        let user = user.clone();
        async move { Ok::<_, Infallible>(handle(&state, user.as_ref(), request).await) }
    });
    log::trace!("kubelet API connection from {peer}");
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn handle(
    state: &Arc<ServerState>,
    certificate_user: Option<&User>,
    request: Request<Incoming>,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let user = match state
        .auth
        .authenticate(certificate_user, request.headers())
        .await
    {
        Ok(user) => user,
        Err(denial) => {
            return text(
                StatusCode::from_u16(denial.status()).expect("a status"),
                denial.to_string(),
            );
        }
    };
    if let Err(denial) = state.auth.authorize(&user, request.method(), &path).await {
        log::debug!("kubelet API: {denial}");
        return text(
            StatusCode::from_u16(denial.status()).expect("a status"),
            denial.to_string(),
        );
    }
    route(state, request, &path).await
}

async fn route(state: &Arc<ServerState>, request: Request<Incoming>, path: &str) -> Response<Body> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    let read_only = |response: Response<Body>| {
        if method == Method::GET {
            response
        } else {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
    };
    match segments.as_slice() {
        ["healthz", ..] => read_only(text(StatusCode::OK, "ok")),
        ["pods"] | ["pods", ""] => read_only(pod_list(state)),
        ["runningpods", ..] => read_only(running_pods(state).await),
        ["stats", "summary"] | ["stats", "summary", ""]
            if method == Method::GET || method == Method::POST =>
        {
            match state
                .provider
                .call("stats_summary", |p| p.stats_summary())
                .await
            {
                Ok(summary) => json(&summary),
                Err(error) => provider_error(&error),
            }
        }
        ["metrics", "resource"] => read_only(resource_metrics::handle(state).await),
        ["metrics"] => read_only(own_metrics(state)),
        ["containerLogs", namespace, pod, container] => {
            read_only(logs::handle(state, &request, namespace, pod, container).await)
        }
        ["exec" | "attach", namespace, pod, container]
        | ["exec" | "attach", namespace, pod, _, container] => {
            let attach = segments[0] == "attach";
            match state.pod_with_container(namespace, pod, container) {
                Ok(pod) => {
                    let (provider, limits) = (&state.provider, state.streams);
                    streams::remote_command(provider, limits, request, pod, container, attach)
                }
                Err(refusal) => *refusal,
            }
        }
        ["portForward", namespace, pod] | ["portForward", namespace, pod, _] => {
            match state.bound_pod(namespace, pod) {
                Some(pod) => streams::port_forward(&state.provider, state.streams, request, pod),
                None => state::pod_not_found(namespace, pod),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn pod_list(state: &ServerState) -> Response<Body> {
    let items: Vec<Pod> = state.pods.state().iter().map(|pod| pod.pod()).collect();
    json(&List::<Pod> {
        items,
        ..List::default()
    })
}

/// The provider's pods, trimmed to what the kubelet shows: names, UIDs and container images.
async fn running_pods(state: &ServerState) -> Response<Body> {
    let pods = match state.provider.call("list_pods", |p| p.list_pods()).await {
        Ok(pods) => pods,
        Err(error) => return provider_error(&error),
    };
    let items: Vec<Pod> = pods
        .into_iter()
        .map(|pod| Pod {
            metadata: ObjectMeta {
                name: pod.metadata.name,
                namespace: pod.metadata.namespace,
                uid: pod.metadata.uid,
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: pod
                    .spec
                    .map(|spec| spec.containers)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| Container {
                        name: c.name,
                        image: c.image,
                        ..Container::default()
                    })
                    .collect(),
                ..PodSpec::default()
            }),
            status: None,
        })
        .collect();
    json(&List::<Pod> {
        items,
        ..List::default()
    })
}

/// `/metrics`: refreshes the scrape-time gauges, then renders every metric.
fn own_metrics(state: &ServerState) -> Response<Body> {
    let mut phases = std::collections::BTreeMap::<String, i64>::new();
    for pod in state.pods.state() {
        let phase = pod.phase().unwrap_or("Pending").to_string();
        *phases.entry(phase).or_default() += 1;
    }
    for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
        let count = phases.remove(phase).unwrap_or(0);
        METRICS
            .pods
            .get_or_create(&PhaseLabels {
                phase: phase.to_string(),
            })
            .set(count);
    }
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(full(METRICS.render()))
        .expect("a valid response")
}
