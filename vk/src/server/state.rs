//! What the kubelet API's handlers share, and how they find the pod and container a request
//! names.

use std::sync::Arc;

use http::{Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;

use crate::{
    auth::Auth,
    provider::Provider,
    response::{Body, text},
    status::PodKey,
    store::PodStore,
    streams,
    tls::ClientCa,
};

#[cfg(test)]
mod tests;

/// What the handlers share.
#[derive(Debug)]
pub struct ServerState {
    pub auth: Auth,
    pub provider: Provider,
    pub pods: PodStore,
    pub streams: streams::Limits,
    /// Verifies the client certificates that the TLS handshake only asked for.
    pub client_ca: ClientCa,
}

impl ServerState {
    /// The pod, if it is bound to this node.
    pub(super) fn bound_pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let key = PodKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.pods.get(&key)
    }

    /// The bound pod that has `container`, or the kubelet's 404 for either missing.
    pub(super) fn pod_with_container(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
    ) -> Result<Arc<Pod>, Box<Response<Body>>> {
        let pod = self
            .bound_pod(namespace, name)
            .ok_or_else(|| Box::new(pod_not_found(namespace, name)))?;
        if !has_container(&pod, container) {
            return Err(Box::new(text(
                StatusCode::NOT_FOUND,
                format!("container \"{container}\" not found in pod \"{name}\""),
            )));
        }
        Ok(pod)
    }
}

pub(super) fn pod_not_found(namespace: &str, name: &str) -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        format!("pod \"{name}\" not found in namespace \"{namespace}\""),
    )
}

/// Whether `pod` has a container named `container` (regular, init or ephemeral).
fn has_container(pod: &Pod, container: &str) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == container)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == container)
}
