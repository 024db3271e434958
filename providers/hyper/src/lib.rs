//! vk's Docker Engine API provider (`libvk_hyper.so`): a pod becomes containers on Docker,
//! Podman or a Hyper.sh-style endpoint.
//!
//! Each pod gets an infra container that holds its network namespace and one container per
//! pod container joined to it, all labelled with the pod's identity, so the engine itself is
//! the record of what runs (and a restarted vk adopts it). Status follows the engine's event
//! stream. The configuration is described in the crate's README.
#![forbid(unsafe_code)]

mod admission;
mod backend;
mod config;
mod engine;
mod events;
mod images;
mod inventory;
mod messages;
mod pod_locks;
mod resize;
mod signing;
mod spec;
mod stats;
mod status;
mod streams;

use std::{sync::Arc, time::Duration};

use vk_abi::{
    Capabilities, ExecOptions, InputStream, LogOptions, OutputStream, PodNotifier,
    PortForwardOptions, Provider, ProviderError, ProviderInit, Refusal, ResolvedPod, Result,
    Streams,
    k8s_openapi::api::core::v1::{
        Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo, Pod,
    },
    stats::{PodStats, Summary},
};

use backend::{Backend, PodError};
use config::{Config, ProcessEnvironment};
use engine::Engine;
use images::ImageError;
use streams::StreamError;

vk_abi::export_provider!(HyperProvider, "hyper");

/// How long a ping may take before the engine counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider: its own runtime (never vk's) and the state its tasks share.
#[derive(Debug)]
pub struct HyperProvider {
    runtime: tokio::runtime::Runtime,
    backend: Arc<Backend>,
}

impl HyperProvider {
    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }
}

impl Provider for HyperProvider {
    fn new(init: ProviderInit) -> Result<Self> {
        let config = Config::parse(&init.config, &ProcessEnvironment)
            .map_err(|error| ProviderError::invalid_input(error.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vk-hyper")
            .enable_all()
            .build()
            .map_err(|error| ProviderError::other(format!("cannot start a runtime: {error}")))?;
        let engine = {
            let _entered = runtime.enter();
            Engine::new(&config).map_err(|error| ProviderError::invalid_input(error.to_string()))?
        };
        log::info!(
            "hyper provider for node {} on {}",
            init.node_name,
            engine.endpoint()
        );
        let backend = Arc::new(Backend::new(
            engine,
            config,
            init.node_name,
            init.internal_ip.unwrap_or_else(|| "127.0.0.1".into()),
        ));
        runtime.spawn(events::follow(backend.clone()));
        Ok(HyperProvider { runtime, backend })
    }

    fn create_pod(&self, pod: ResolvedPod) -> Result<()> {
        self.block_on(self.backend.create(pod)).map_err(pod_error)
    }

    fn check_pod(&self, pod: &Pod) -> Result<Option<Refusal>> {
        Ok(admission::refusal(pod))
    }

    fn update_pod(&self, pod: ResolvedPod) -> Result<()> {
        self.block_on(self.backend.update(pod)).map_err(pod_error)
    }

    fn resize_pod(&self, pod: Pod) -> Result<()> {
        self.block_on(self.backend.resize(&pod)).map_err(pod_error)
    }

    fn delete_pod(&self, pod: Pod, grace_period_seconds: i64) -> Result<()> {
        self.block_on(self.backend.delete(&pod, grace_period_seconds))
            .map_err(pod_error)
    }

    fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>> {
        self.block_on(self.backend.pod(namespace, name))
            .map_err(pod_error)
    }

    fn list_pods(&self) -> Result<Vec<Pod>> {
        self.block_on(self.backend.list()).map_err(pod_error)
    }

    fn notify_pods(&self, notifier: PodNotifier) -> bool {
        self.backend.set_notifier(notifier);
        true
    }

    fn configure_node(&self, mut node: Node) -> Result<Node> {
        // What the engine said when the version was negotiated: no request per status update.
        let version = self.block_on(self.backend.engine.negotiate()).ok().cloned();
        let status = node.status.get_or_insert_with(NodeStatus::default);
        status.capacity = Some(self.backend.config.capacity.clone());
        status.allocatable = Some(self.backend.config.capacity.clone());
        let now =
            vk_abi::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
        status.conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: Some(format!(
                "the engine at {} answers",
                self.backend.engine.endpoint()
            )),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now),
        }]);
        status.addresses = Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: self.backend.host_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: self.backend.node_name.clone(),
            },
        ]);
        let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
        if let Some(version) = version {
            info.operating_system = version.os.unwrap_or_else(|| "linux".into());
            info.architecture = version.arch.unwrap_or_default();
            info.kernel_version = version.kernel_version.unwrap_or_default();
            info.container_runtime_version =
                format!("docker://{}", version.version.unwrap_or_default());
            info.os_image = version
                .platform
                .map(|platform| platform.name)
                .unwrap_or_default();
        }
        Ok(node)
    }

    fn ping(&self) -> Result<()> {
        let ping = async { tokio::time::timeout(PING_TIMEOUT, self.backend.engine.ping()).await };
        match self.block_on(ping) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ProviderError::unavailable(error.to_string())),
            Err(_) => Err(ProviderError::unavailable(format!(
                "the engine at {} did not answer a ping within {}s",
                self.backend.engine.endpoint(),
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    fn restart_container(
        &self,
        pod: Pod,
        container: &str,
        grace_period_seconds: i64,
    ) -> Result<()> {
        self.block_on(
            self.backend
                .kill_container(&pod, container, grace_period_seconds),
        )
        .map_err(pod_error)
    }

    /// A local engine's pod addresses are routable from this host.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pod_ips_reachable: self.backend.engine.is_local(),
            ..Capabilities::default()
        }
    }

    fn container_logs(&self, options: LogOptions, sink: OutputStream) -> Result<()> {
        self.block_on(streams::logs(&self.backend, options, sink))
            .map_err(stream_error)
    }

    fn exec(&self, options: ExecOptions, streams: Streams) -> Result<i32> {
        self.block_on(streams::exec(&self.backend, options, streams))
            .map_err(stream_error)
    }

    fn attach(&self, options: ExecOptions, streams: Streams) -> Result<i32> {
        self.block_on(streams::attach(&self.backend, options, streams))
            .map_err(stream_error)
    }

    fn port_forward(
        &self,
        options: PortForwardOptions,
        input: InputStream,
        output: OutputStream,
    ) -> Result<()> {
        self.block_on(streams::port_forward(&self.backend, options, input, output))
            .map_err(stream_error)
    }

    fn stats_summary(&self) -> Result<Summary> {
        let backend = &self.backend;
        let inspect_failed = |error| pod_error(backend::engine_error("cannot inspect pods")(error));
        self.block_on(async {
            // One list for the node, then each pod's containers.
            let listed = inventory::list(&backend.engine, &backend.node_name, None)
                .await
                .map_err(inspect_failed)?;
            let mut stats = Vec::new();
            for containers in inventory::by_pod(listed).into_values() {
                match inventory::view_of(&backend.engine, containers).await {
                    Ok(Some(view)) => stats.push(stats::pod_stats(backend, &view).await),
                    Ok(None) => {}
                    // A pod whose containers cannot be read now (Podman's passing `stopped`
                    // state outlasting the retries) misses this scrape; the node's others do not.
                    Err(error) => log::debug!("stats: skipping a pod for now: {error}"),
                }
            }
            Ok(stats::summary(&backend.node_name, stats))
        })
    }

    fn pod_stats(&self, namespace: &str, name: &str) -> Result<Option<PodStats>> {
        self.block_on(self.pod_stats_of(namespace, name))
    }
}

impl HyperProvider {
    async fn pod_stats_of(&self, namespace: &str, name: &str) -> Result<Option<PodStats>> {
        let view = inventory::inspect_pod(
            &self.backend.engine,
            &self.backend.node_name,
            namespace,
            name,
        )
        .await
        .map_err(|error| pod_error(backend::engine_error("cannot inspect the pod")(error)))?;
        match view {
            Some(view) => Ok(Some(stats::pod_stats(&self.backend, &view).await)),
            None => Ok(None),
        }
    }
}

fn pod_error(error: PodError) -> ProviderError {
    let message = error.to_string();
    match error {
        PodError::Spec(_) | PodError::Image(ImageError::NeverPull(_)) => {
            ProviderError::invalid_input(message)
        }
        PodError::Image(_) | PodError::Unavailable(_) => ProviderError::unavailable(message),
        PodError::NotFound(_) => ProviderError::not_found(message),
        PodError::Engine { source, .. } => engine_error_kind(&source, message),
    }
}

fn stream_error(error: StreamError) -> ProviderError {
    let message = error.to_string();
    match error {
        StreamError::PodNotFound { .. } | StreamError::ContainerNotFound { .. } => {
            ProviderError::not_found(message)
        }
        StreamError::NoPrevious(_) | StreamError::NoPodIp(_) => {
            ProviderError::invalid_input(message)
        }
        StreamError::NoRelay { .. } => ProviderError::unsupported(message),
        StreamError::Connect { .. } | StreamError::TimedOut(_) => {
            ProviderError::unavailable(message)
        }
        StreamError::Engine { source, .. } => engine_error_kind(&source, message),
    }
}

/// The engine's answer as an error kind: its 4xx are the pod's fault, the rest the engine's.
fn engine_error_kind(source: &bollard::errors::Error, message: String) -> ProviderError {
    match source {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => ProviderError::not_found(message),
        bollard::errors::Error::DockerResponseServerError {
            status_code: 400..=499,
            ..
        } => ProviderError::invalid_input(message),
        _ => ProviderError::unavailable(message),
    }
}
