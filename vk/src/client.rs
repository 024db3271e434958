//! The Kubernetes client vk talks through, with the `--kube-api-qps`/`--kube-api-burst` limits.

use std::path::Path;

use crate::{
    certificates::ClientIdentity,
    throttle::{Throttle, ThrottleLayer},
};
use kube::{
    Client, Config,
    client::ClientBuilder,
    config::{KubeConfigOptions, Kubeconfig},
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "cannot find cluster credentials (no --kubeconfig, $KUBECONFIG, ~/.kube/config or in-cluster service account)"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client")]
    Build(#[source] kube::Error),
    #[error("cannot build a Kubernetes client for the client certificate")]
    Identity(#[source] Box<crate::certificates::CertError>),
}

/// Loads the cluster configuration: `kubeconfig` when given, else the usual places.
pub async fn config(kubeconfig: Option<&Path>) -> Result<Config, ClientError> {
    match kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_error)
        }
        None => Config::infer().await.map_err(ClientError::Infer),
    }
}

/// A client allowing `burst` requests at once and `qps` per second over time, less while the
/// API server answers 429 (see [`crate::throttle`]). Watches count once, when they are opened. With `identity`, it authenticates with that rotating client
/// certificate instead of `config`'s credentials.
pub fn rate_limited(
    config: Config,
    identity: Option<&ClientIdentity>,
    qps: f64,
    burst: u32,
) -> Result<Client, ClientError> {
    let limit = ThrottleLayer(Throttle::new(qps, burst));
    Ok(match identity {
        None => ClientBuilder::try_from(config)
            .map_err(ClientError::Build)?
            .with_layer(&limit)
            .build(),
        Some(identity) => identity
            .client_builder(&config)
            .map_err(|error| ClientError::Identity(Box::new(error)))?
            .with_layer(&limit)
            .build(),
    })
}
