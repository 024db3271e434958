//! vk's mock provider (`libvk_mock.so`): an in-memory backend for demos, tests and benchmarks.
//!
//! Pods are Running as soon as they are created and every change is notified; a container
//! killed by `restart_container` runs again after a crash-loop back-off; logs are
//! deterministic, a few built-in commands (`echo`, `cat`, `env`, `sleep N`, `exit N`) can be
//! exec'd, every port echoes what it is sent, and stats are synthesised per container.
#![forbid(unsafe_code)]

mod config;
mod contents;
mod pods;
mod stats;
mod streams;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU32, Ordering},
};

use parking_lot::RwLock;

use vk_abi::{
    EventType, ExecOptions, LogOptions, OutputStream, PodEvent, PodNotifier, PortForwardOptions,
    Provider, ProviderError, ProviderInit, ResolvedPod, Result, Streams,
    k8s_openapi::api::core::v1::{
        Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Pod, PodStatus,
    },
    stats::{PodStats, Summary},
};

use config::NodeConfig;
use contents::SharedContents;
use pods::MockPod;

vk_abi::export_provider!(MockProvider, "mock");

type PodKey = (String, String);

/// The mock provider.
#[derive(Debug)]
pub struct MockProvider {
    config: NodeConfig,
    node_name: String,
    operating_system: String,
    host_ip: String,
    /// Boxed: a table sized for 10,000 pods has 16,384 slots, each as large as a key and its
    /// value, where a `MockPod` is over 200 bytes.
    pods: RwLock<HashMap<PodKey, Box<MockPod>>>,
    contents: SharedContents,
    next_ip: AtomicU32,
    notifier: RwLock<Option<PodNotifier>>,
}

fn key(namespace: &str, name: &str) -> PodKey {
    (namespace.to_string(), name.to_string())
}

fn pod_key(pod: &Pod) -> Result<PodKey> {
    match (&pod.metadata.namespace, &pod.metadata.name) {
        (Some(namespace), Some(name)) => Ok(key(namespace, name)),
        _ => Err(ProviderError::invalid_input("pod has no namespace or name")),
    }
}

impl MockProvider {
    fn notify(&self, pod: &MockPod) {
        if let Some(notifier) = &*self.notifier.read() {
            notifier.notify(&pod.report(&self.host_ip));
        }
    }

    /// Runs `f` on the pod, or answers NotFound.
    fn with_pod<T>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&MockPod) -> Result<T>,
    ) -> Result<T> {
        let pods = self.pods.read();
        let pod = pods
            .get(&key(namespace, name))
            .ok_or_else(|| ProviderError::not_found(format!("pod {namespace}/{name} not found")))?;
        f(pod)
    }

    /// A copy of the pod's record, so that streams never hold the table's lock.
    fn snapshot(&self, namespace: &str, name: &str) -> Result<MockPod> {
        self.with_pod(namespace, name, |pod| Ok(pod.clone()))
    }

    /// A copy of the pod's record, if it has `container`.
    fn with_container(&self, namespace: &str, name: &str, container: &str) -> Result<MockPod> {
        let pod = self.snapshot(namespace, name)?;
        if pod.container(container).is_none() {
            return Err(ProviderError::not_found(format!(
                "container {container} not found in pod {namespace}/{name}"
            )));
        }
        Ok(pod)
    }

    fn store(&self, resolved: ResolvedPod) -> Result<()> {
        let key = pod_key(&resolved.pod)?;
        let ip = pods::pod_ip(self.next_ip.fetch_add(1, Ordering::Relaxed));
        let pod = MockPod::new(resolved, ip, &self.contents);
        // In the table before it is reported: whoever hears of it may exec into it at once.
        let replaced = self.pods.write().insert(key, Box::new(pod.clone()));
        if let Some(replaced) = replaced {
            self.contents.release(replaced.into_contents());
        }
        self.notify(&pod);
        Ok(())
    }
}

impl Provider for MockProvider {
    fn new(init: ProviderInit) -> Result<Self> {
        Ok(MockProvider {
            config: NodeConfig::parse(&init.config, &init.node_name)?,
            host_ip: init.internal_ip.unwrap_or_else(|| "127.0.0.1".into()),
            node_name: init.node_name,
            operating_system: init.operating_system,
            pods: RwLock::default(),
            contents: SharedContents::default(),
            next_ip: AtomicU32::new(0),
            notifier: RwLock::default(),
        })
    }

    fn create_pod(&self, pod: ResolvedPod) -> Result<()> {
        self.store(pod)
    }

    fn update_pod(&self, pod: ResolvedPod) -> Result<()> {
        let key = pod_key(&pod.pod)?;
        let mut pods = self.pods.write();
        let Some(existing) = pods.get_mut(&key) else {
            drop(pods);
            return self.store(pod);
        };
        let (started, ip) = (existing.started, existing.pod_ip.clone());
        let replaced = std::mem::replace(
            &mut **existing,
            MockPod {
                started,
                ..MockPod::new(pod, ip, &self.contents)
            },
        );
        let updated = MockPod::clone(existing);
        drop(pods);
        self.contents.release(replaced.into_contents());
        self.notify(&updated);
        Ok(())
    }

    fn resize_pod(&self, pod: Pod) -> Result<()> {
        let key = pod_key(&pod)?;
        let mut pods = self.pods.write();
        let existing = pods.get_mut(&key).ok_or_else(|| {
            ProviderError::not_found(format!("pod {}/{} not found", key.0, key.1))
        })?;
        existing.resize(&pod.spec.unwrap_or_default());
        let resized = existing.clone();
        drop(pods);
        self.notify(&resized);
        Ok(())
    }

    /// Kills the container at once; it runs again after its back-off, reported then.
    fn restart_container(
        &self,
        pod: Pod,
        container: &str,
        _grace_period_seconds: i64,
    ) -> Result<()> {
        let key = pod_key(&pod)?;
        let mut pods = self.pods.write();
        let existing = pods.get_mut(&key).ok_or_else(|| {
            ProviderError::not_found(format!("pod {}/{} not found", key.0, key.1))
        })?;
        if existing.container(container).is_none() {
            return Err(ProviderError::not_found(format!(
                "container {container} not found in pod {}/{}",
                key.0, key.1
            )));
        }
        let back_off = existing.kill(container);
        let killed = MockPod::clone(existing);
        drop(pods);
        self.notify(&killed);
        let notifier = self.notifier.read().clone();
        if let (Some(delay), Some(notifier)) = (back_off.filter(|d| !d.is_zero()), notifier) {
            notifier.event(&PodEvent {
                namespace: killed.namespace.clone(),
                name: killed.name.clone(),
                uid: Some(killed.uid.clone()),
                type_: EventType::Warning,
                reason: "BackOff".into(),
                message: format!(
                    "Back-off restarting failed container {container} in pod {}_{}({})",
                    killed.name, killed.namespace, killed.uid
                ),
                field_path: None,
            });
            let host_ip = self.host_ip.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                notifier.notify(&killed.report(&host_ip));
            });
        }
        Ok(())
    }

    fn delete_pod(&self, pod: Pod, _grace_period_seconds: i64) -> Result<()> {
        let removed = self.pods.write().remove(&pod_key(&pod)?);
        if let Some(mut pod) = removed {
            pod.terminated = true;
            self.notify(&pod);
            self.contents.release(pod.into_contents());
        }
        Ok(())
    }

    fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>> {
        let pods = self.pods.read();
        Ok(pods
            .get(&key(namespace, name))
            .map(|pod| pod.to_pod(&self.host_ip)))
    }

    fn get_pod_status(&self, namespace: &str, name: &str) -> Result<Option<PodStatus>> {
        let pods = self.pods.read();
        Ok(pods
            .get(&key(namespace, name))
            .map(|pod| pod.status(&self.host_ip)))
    }

    fn list_pods(&self) -> Result<Vec<Pod>> {
        let pods = self.pods.read();
        Ok(pods.values().map(|pod| pod.to_pod(&self.host_ip)).collect())
    }

    fn notify_pods(&self, notifier: PodNotifier) -> bool {
        *self.notifier.write() = Some(notifier);
        true
    }

    fn configure_node(&self, mut node: Node) -> Result<Node> {
        let capacity = self.config.capacity();
        let spec = node.spec.get_or_insert_with(NodeSpec::default);
        if self.config.provider_id.is_some() {
            spec.provider_id.clone_from(&self.config.provider_id);
        }
        let status = node.status.get_or_insert_with(NodeStatus::default);
        status.capacity = Some(capacity.clone());
        status.allocatable = Some(capacity);
        status.conditions = Some(node_conditions());
        (status.declared_features.get_or_insert_with(Vec::new))
            .extend(self.config.declared_features.iter().cloned());
        status.addresses = Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: self.host_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: self.node_name.clone(),
            },
        ]);
        let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
        info.operating_system = self.operating_system.to_lowercase();
        info.architecture = "amd64".into();
        info.container_runtime_version = "mock://1.0".into();
        info.kernel_version = "mock".into();
        info.os_image = "mock".into();
        Ok(node)
    }

    fn container_logs(&self, options: LogOptions, sink: OutputStream) -> Result<()> {
        let pod = self.with_container(&options.namespace, &options.pod, &options.container)?;
        let killed = pod
            .container(&options.container)
            .is_some_and(|c| c.last_terminated.is_some());
        // A killed container's previous instance wrote the same deterministic log.
        if options.previous && !killed {
            return Err(ProviderError::invalid_input(format!(
                "previous terminated container \"{}\" in pod \"{}\" not found",
                options.container, options.pod
            )));
        }
        // A client that went away ends the log; that is not an error.
        let _ = streams::write_log(&pod, &options, sink);
        Ok(())
    }

    fn exec(&self, options: ExecOptions, io: Streams) -> Result<i32> {
        let pod = self.with_container(&options.namespace, &options.pod, &options.container)?;
        let container = pod.container(&options.container).expect("checked above");
        let timeout = options.timeout_seconds.map(std::time::Duration::from_secs);
        streams::exec(&pod, container, &options.command, timeout, io)
    }

    fn attach(&self, options: ExecOptions, io: Streams) -> Result<i32> {
        self.with_container(&options.namespace, &options.pod, &options.container)?;
        Ok(streams::attach(io))
    }

    fn port_forward(
        &self,
        options: PortForwardOptions,
        input: vk_abi::InputStream,
        output: OutputStream,
    ) -> Result<()> {
        self.with_pod(&options.namespace, &options.pod, |_| Ok(()))?;
        let _ = streams::echo(input, output);
        Ok(())
    }

    fn stats_summary(&self) -> Result<Summary> {
        let pods = self.pods.read();
        Ok(stats::summary(
            &self.node_name,
            pods.values().map(Box::as_ref),
        ))
    }

    fn pod_stats(&self, namespace: &str, name: &str) -> Result<Option<PodStats>> {
        let pods = self.pods.read();
        let pod = pods.get(&key(namespace, name)).map(Box::as_ref);
        Ok(pod.map(stats::pod_stats))
    }
}

fn node_conditions() -> Vec<NodeCondition> {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..NodeCondition::default()
    };
    vec![
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "the mock provider is ready",
        ),
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "no memory pressure",
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "no disk pressure",
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "no PID pressure",
        ),
        condition(
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "the network is available",
        ),
    ]
}

#[cfg(test)]
mod tests;
