//! The connection to the Docker Engine API: unix socket, TCP, or TCP with TLS client
//! certificates; Hyper.sh request signing when credentials are configured; and the API version
//! negotiated once the engine answers.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker, models::SystemVersion};
use bytes::Bytes;
use futures::FutureExt as _;
use http_body_util::{BodyExt as _, Either, Full};
use tokio::sync::OnceCell;

use crate::{
    config::{Config, Credentials, Endpoint},
    signing,
};

/// Seconds to wait for an engine's response headers; streams are not limited.
const REQUEST_TIMEOUT_SECONDS: u64 = 120;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the engine at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the engine at {endpoint} does not answer: {source}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// A Docker Engine API client and what was learnt of the engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    endpoint: String,
    /// What `/version` said, once the version is negotiated.
    version: Arc<OnceCell<SystemVersion>>,
}

impl Engine {
    /// A client of the configured endpoint; nothing is sent yet.
    pub fn new(config: &Config) -> Result<Engine, EngineError> {
        let (endpoint, docker) = match &config.endpoint {
            Endpoint::Unix(path) => {
                let endpoint = format!("unix://{}", path.display());
                let docker = Docker::connect_with_unix(
                    &endpoint,
                    REQUEST_TIMEOUT_SECONDS,
                    API_DEFAULT_VERSION,
                );
                (endpoint, docker)
            }
            Endpoint::Tcp { address, tls: None } => {
                let endpoint = format!("tcp://{address}");
                let docker = Docker::connect_with_http(
                    &endpoint,
                    REQUEST_TIMEOUT_SECONDS,
                    API_DEFAULT_VERSION,
                );
                (endpoint, docker)
            }
            Endpoint::Tcp {
                address,
                tls: Some(tls),
            } => {
                let endpoint = format!("tcp://{address}");
                let docker = Docker::connect_with_ssl(
                    &endpoint,
                    &tls.key,
                    &tls.cert,
                    &tls.ca,
                    REQUEST_TIMEOUT_SECONDS,
                    API_DEFAULT_VERSION,
                );
                (endpoint, docker)
            }
        };
        let mut docker = docker.map_err(|source| EngineError::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
        if let Some(credentials) = config.credentials.clone() {
            docker = docker.with_request_modifier(move |request| signed(&credentials, request));
        }
        Ok(Engine {
            docker,
            endpoint,
            version: Arc::default(),
        })
    }

    /// Pings the engine (`/_ping`) and, the first time it answers, settles the API version
    /// with `/version`: the lower of the engine's and this client's.
    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map_err(|source| self.unreachable(source))?;
        self.negotiate().await.map(drop)
    }

    /// Settles the API version once (the lower of the engine's and this client's), and learns
    /// what the engine is; later calls answer from memory.
    pub async fn negotiate(&self) -> Result<&SystemVersion, EngineError> {
        self.version
            .get_or_try_init(|| async {
                // The negotiated version is shared by every clone of the client.
                let negotiated = self
                    .docker
                    .clone()
                    .negotiate_version()
                    .await
                    .map_err(|source| self.unreachable(source))?;
                let version = self
                    .docker
                    .version()
                    .await
                    .map_err(|source| self.unreachable(source))?;
                log::info!(
                    "engine at {} ({}) speaks Docker Engine API {}",
                    self.endpoint,
                    if is_podman(&version) {
                        "Podman"
                    } else {
                        "Docker"
                    },
                    negotiated.client_version()
                );
                Ok(version)
            })
            .await
    }

    fn unreachable(&self, source: bollard::errors::Error) -> EngineError {
        EngineError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    /// Whether the engine is Podman, which (unlike Docker) lets containers join another's UTS
    /// namespace, so a pod's containers share its hostname. Known once [`Engine::negotiate`]
    /// succeeded.
    pub fn is_podman(&self) -> bool {
        self.version.get().is_some_and(is_podman)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the engine shares this host's network, so that pod IPs can be dialled directly.
    pub fn is_local(&self) -> bool {
        self.endpoint.starts_with("unix://")
    }
}

fn is_podman(version: &SystemVersion) -> bool {
    (version.components.iter().flatten()).any(|component| component.name.contains("Podman"))
}

/// `request` with Hyper.sh's signature headers. Bodies this provider sends are whole buffers;
/// a streamed body (never sent here) would be signed as empty and refused by the server.
fn signed(credentials: &Credentials, request: BollardRequest) -> BollardRequest {
    let (mut parts, body) = request.into_parts();
    let (bytes, body) = match body {
        Either::Left(full) => {
            let bytes = full
                .collect()
                .now_or_never()
                .map(|collected| collected.map(|c| c.to_bytes()).unwrap_or_default())
                .unwrap_or_default();
            (bytes.clone(), Either::Left(Full::new(bytes)))
        }
        streamed => (Bytes::new(), streamed),
    };
    signing::sign(
        credentials,
        &parts.method,
        &parts.uri,
        &mut parts.headers,
        &bytes,
        jiff::Timestamp::now(),
    );
    BollardRequest::from_parts(parts, body)
}
