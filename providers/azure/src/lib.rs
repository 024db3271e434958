//! vk's azure provider (`libvk_azure.so`): the pods of a virtual node run as Azure Container
//! Instances container groups, one group named `<namespace>-<name>` per pod, in one resource
//! group, through ARM (`Microsoft.ContainerInstance`, API version 2026-05-01).
//!
//! The provider owns a tokio runtime; vk's blocking calls wait on it. A task on that runtime
//! polls the resource group and pushes status changes to vk (see [`poller`]).
#![forbid(unsafe_code)]

mod answer;
mod arm;
mod auth;
mod config;
mod events;
mod group;
mod model;
mod operation;
mod poller;
mod status;
mod streams;
mod tls;

use std::{sync::Arc, time::Duration};

use vk_abi::{
    Capabilities, ExecOptions, LogOptions, OutputStream, PodNotifier, Provider, ProviderError,
    ProviderInit, Refusal, ResolvedPod, Result, Streams, error_chain,
    k8s_openapi::api::core::v1::{
        Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo, Pod,
    },
};

use arm::{Arm, ArmError};
use auth::{AuthError, Credentials, TokenSource};
use config::Config;
use group::{GroupError, GroupSettings};
use poller::Poller;
use streams::StreamError;

vk_abi::export_provider!(AzureProvider, "azure");

/// How long create and delete wait for ARM's operation before leaving the rest to the poller
/// (vk's calls have a time limit, 30 s by default).
const OPERATION_PATIENCE: Duration = Duration::from_secs(20);
/// Time limit of each HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The azure provider.
#[derive(Debug)]
pub struct AzureProvider {
    runtime: tokio::runtime::Runtime,
    arm: Arm,
    poller: Arc<Poller>,
    config: Config,
    settings: GroupSettings,
    host_ip: String,
    tls: Arc<rustls::ClientConfig>,
}

impl From<ArmError> for ProviderError {
    fn from(error: ArmError) -> Self {
        let message = error_chain(&error);
        match &error {
            _ if error.is_transient() => ProviderError::unavailable(message),
            ArmError::Status { status, .. } if *status == 404 => ProviderError::not_found(message),
            ArmError::Status { status, .. } if (400..500).contains(status) => {
                ProviderError::invalid_input(message)
            }
            ArmError::Operation { .. } => ProviderError::invalid_input(message),
            _ => ProviderError::other(message),
        }
    }
}

impl From<GroupError> for ProviderError {
    fn from(error: GroupError) -> Self {
        ProviderError::invalid_input(error.to_string())
    }
}

impl From<StreamError> for ProviderError {
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::Arm(error) => error.into(),
            StreamError::Previous => ProviderError::invalid_input(error.to_string()),
            other => ProviderError::other(error_chain(&other)),
        }
    }
}

impl From<AuthError> for ProviderError {
    fn from(error: AuthError) -> Self {
        if error.is_transient() {
            ProviderError::unavailable(error_chain(&error))
        } else {
            ProviderError::invalid_input(error_chain(&error))
        }
    }
}

fn pod_names(pod: &Pod) -> Result<(&str, &str)> {
    match (&pod.metadata.namespace, &pod.metadata.name) {
        (Some(namespace), Some(name)) => Ok((namespace, name)),
        _ => Err(ProviderError::invalid_input("pod has no namespace or name")),
    }
}

impl AzureProvider {
    fn group_of(&self, namespace: &str, name: &str) -> String {
        group::group_name(namespace, name)
    }

    /// The pod of a group of this node: as last polled, else looked up now.
    fn pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>> {
        let group = self.group_of(namespace, name);
        if let Some(pod) = self.poller.pod(&group) {
            return Ok(Some(pod));
        }
        Ok(self.runtime.block_on(self.poller.refresh(&group))?)
    }

    /// Whether the container has stopped, as last polled.
    fn finished(poller: &Poller, group: &str, container: &str) -> bool {
        poller.pod(group).is_none_or(|pod| {
            pod.status
                .and_then(|s| s.container_statuses)
                .into_iter()
                .flatten()
                .any(|c| c.name == container && c.state.is_some_and(|s| s.terminated.is_some()))
        })
    }
}

impl Provider for AzureProvider {
    fn new(init: ProviderInit) -> Result<Self> {
        let env = |key: &str| std::env::var(key).ok();
        let config = Config::load(&init.config, env)
            .map_err(|error| ProviderError::invalid_input(error_chain(&error)))?;
        let credentials = Credentials::load(env)?;
        let tls = tls::client_config().map_err(|e| ProviderError::other(error_chain(&e)))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("vk-azure/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::other(error_chain(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vk-azure")
            .enable_all()
            .build()
            .map_err(|e| ProviderError::other(format!("cannot start the azure runtime: {e}")))?;
        let arm = Arm::new(
            http.clone(),
            TokenSource::new(http, credentials),
            &config.resource_group,
        );
        let host_ip = init.internal_ip.unwrap_or_else(|| "127.0.0.1".into());
        let poller = Arc::new(Poller::new(
            arm.clone(),
            init.node_name.clone(),
            host_ip.clone(),
        ));
        let settings = GroupSettings {
            node_name: init.node_name,
            region: config.region.clone(),
            os_type: config.os_type,
            subnet_id: config.subnet_id.clone(),
            dns: config.dns.clone(),
        };
        Ok(AzureProvider {
            runtime,
            arm,
            poller,
            config,
            settings,
            host_ip,
            tls,
        })
    }

    fn create_pod(&self, resolved: ResolvedPod) -> Result<()> {
        let (name, group) = group::container_group(&resolved, &self.settings)?;
        self.poller.remember(&name, resolved.pod);
        self.runtime.block_on(async {
            self.arm
                .put_group(&name, &group, OPERATION_PATIENCE)
                .await?;
            if let Some(created) = self.arm.get_group(&name).await? {
                self.poller.observe_now(&name, &created);
            }
            Ok(())
        })
    }

    fn check_pod(&self, pod: &Pod) -> Result<Option<Refusal>> {
        Ok(group::refusal(pod, &self.settings))
    }

    /// ACI runs the liveness and readiness probes the group is created with, and reports
    /// readiness itself.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            runs_probes: true,
            ..Capabilities::default()
        }
    }

    /// ACI cannot change a group in place, and recreating it would restart the pod: the
    /// fields Kubernetes lets change (images, through a new pod in practice) are left as is.
    fn update_pod(&self, resolved: ResolvedPod) -> Result<()> {
        let (namespace, name) = pod_names(&resolved.pod)?;
        let group = self.group_of(namespace, name);
        self.poller.remember(&group, resolved.pod.clone());
        Ok(())
    }

    /// ACI stops a group's containers at once: there is no grace period to honour.
    fn delete_pod(&self, pod: Pod, _grace_period_seconds: i64) -> Result<()> {
        let (namespace, name) = pod_names(&pod)?;
        let group = self.group_of(namespace, name);
        let existed = self
            .runtime
            .block_on(self.arm.delete_group(&group, OPERATION_PATIENCE))?;
        self.poller.gone(&group);
        if existed {
            Ok(())
        } else {
            Err(ProviderError::not_found(format!(
                "container group {group} not found"
            )))
        }
    }

    fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>> {
        self.pod(namespace, name)
    }

    /// One list of the resource group; the pods' status is the last polled one, or, for
    /// groups not polled yet, what the list tells (its provisioning state).
    ///
    /// With credentials that Azure AD refuses, nothing can be listed until vk restarts with
    /// better ones: that answers no pods rather than an error, because vk stops when its
    /// start-up list fails, and the node is to stay up and NotReady (`ping` says why). No
    /// group is touched meanwhile, so the next vk adopts them all.
    fn list_pods(&self) -> Result<Vec<Pod>> {
        let groups = match self.runtime.block_on(self.arm.list_groups()) {
            Ok(groups) => groups,
            Err(ArmError::Auth(error)) if !error.is_transient() => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        Ok(groups
            .iter()
            .filter(|g| self.poller.is_mine(g))
            .filter_map(|g| {
                let known = g.name.as_deref().and_then(|name| self.poller.pod(name));
                known.or_else(|| status::pod_from_group(g, &self.host_ip))
            })
            .collect())
    }

    fn notify_pods(&self, notifier: PodNotifier) -> bool {
        self.poller.set_notifier(notifier);
        self.runtime
            .spawn(self.poller.clone().run(self.config.status_interval));
        true
    }

    fn configure_node(&self, mut node: Node) -> Result<Node> {
        let problem = match self.poller.health() {
            Some(problem) => Some(problem),
            None => self
                .runtime
                .block_on(self.arm.authenticate())
                .err()
                .map(|e| error_chain(&e)),
        };
        let status = node.status.get_or_insert_with(NodeStatus::default);
        status.capacity = Some(self.config.capacity.clone());
        status.allocatable = Some(self.config.capacity.clone());
        status.conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: if problem.is_none() { "True" } else { "False" }.into(),
            reason: Some(
                if problem.is_none() {
                    "KubeletReady"
                } else {
                    "AzureUnavailable"
                }
                .into(),
            ),
            message: Some(
                problem.unwrap_or_else(|| "azure container instances are reachable".into()),
            ),
            ..NodeCondition::default()
        }]);
        status.addresses = Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: self.host_ip.clone(),
        }]);
        let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
        info.operating_system = self.config.os_type.as_str().to_lowercase();
        info.architecture = "amd64".into();
        info.container_runtime_version = format!("aci://{}", model::API_VERSION);
        info.kernel_version = "aci".into();
        info.os_image = format!("Azure Container Instances ({})", self.config.region);
        Ok(node)
    }

    /// Fails while the credentials give no token or the resource group cannot be listed.
    fn ping(&self) -> Result<()> {
        if let Some(problem) = self.poller.health() {
            return Err(ProviderError::unavailable(problem));
        }
        Ok(self.runtime.block_on(self.arm.authenticate())?)
    }

    fn container_logs(&self, options: LogOptions, sink: OutputStream) -> Result<()> {
        let group = self.group_of(&options.namespace, &options.pod);
        let poller = &self.poller;
        let finished = || Self::finished(poller, &group, &options.container);
        Ok(self
            .runtime
            .block_on(streams::logs(&self.arm, &group, &options, sink, finished))?)
    }

    fn exec(&self, options: ExecOptions, io: Streams) -> Result<i32> {
        let group = self.group_of(&options.namespace, &options.pod);
        Ok(self.runtime.block_on(streams::exec(
            &self.arm,
            &group,
            self.tls.clone(),
            &options,
            io,
        ))?)
    }
}
