//! The node controller: registers the Node (or adopts an existing one), renews its Lease every
//! 10 s and its status at least every minute, and registers it again when someone deletes it.
//! When the provider's ping fails it marks the node NotReady and stops both until the ping
//! answers again.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{
            DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec,
            NodeStatus, NodeSystemInfo, Taint,
        },
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use tokio::sync::{Notify, watch};

use crate::{
    backoff::WatchBackoff,
    events::{EventType, Recorder},
    metrics::{METRICS, OutcomeLabels},
    provider::Provider,
};

/// How long a lease lasts and how often it is renewed (the kubelet's values).
const LEASE_SECONDS: i32 = 40;
const HEARTBEAT: Duration = Duration::from_secs(10);
/// The longest time between two status updates.
const STATUS_PERIOD: Duration = Duration::from_secs(60);
const LEASE_NAMESPACE: &str = "kube-node-lease";
const FIELD_MANAGER: &str = "vk";
/// What `nodeInfo.kubeletVersion` says: the Kubernetes API level vk speaks, and vk's version.
pub const KUBELET_VERSION: &str = concat!("v1.36.0-vk-", env!("CARGO_PKG_VERSION"));
/// The node features (KEP-5328) that vk itself implements, whatever the provider: vk serves
/// exec, attach and port-forward over WebSocket itself, so a 1.36 apiserver may pass kubectl's
/// WebSockets through instead of translating. The other features of the registry are about
/// what the backend runs, and only the provider can declare them.
const VK_FEATURES: [&str; 1] = ["ExtendWebSocketsToKubelet"];
/// The apiserver's limit on a declared feature's name.
const FEATURE_NAME_MAX: usize = 253;
/// Why a node is not ready before the pod controller's first sync.
const NOT_SYNCED: &str = "the pod controller has not synced with the provider yet";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot register node {name}")]
    Register {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the provider cannot describe the node")]
    Provider(#[source] vk_abi::ProviderError),
}

/// What the node looks like before the provider fills it in.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub name: String,
    /// `linux` or `windows`.
    pub operating_system: String,
    pub internal_ip: Option<String>,
    pub kubelet_port: u16,
    pub taint: Option<Taint>,
}

impl NodeSettings {
    /// The Node vk registers: labels, taint, daemon endpoint and what vk knows of itself.
    pub fn template(&self) -> Node {
        let labels = BTreeMap::from(
            [
                ("type", "virtual-kubelet"),
                ("kubernetes.io/role", "agent"),
                ("kubernetes.io/hostname", self.name.as_str()),
                ("kubernetes.io/os", self.operating_system.as_str()),
                ("kubernetes.io/arch", "amd64"),
                (
                    "node.kubernetes.io/exclude-from-external-load-balancers",
                    "true",
                ),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: self.taint.clone().map(|t| vec![t]),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                daemon_endpoints: Some(NodeDaemonEndpoints {
                    kubelet_endpoint: Some(DaemonEndpoint {
                        port: i32::from(self.kubelet_port),
                    }),
                }),
                addresses: self.internal_ip.as_ref().map(|ip| {
                    vec![
                        NodeAddress {
                            type_: "InternalIP".into(),
                            address: ip.clone(),
                        },
                        NodeAddress {
                            type_: "Hostname".into(),
                            address: self.name.clone(),
                        },
                    ]
                }),
                node_info: Some(NodeSystemInfo {
                    kubelet_version: KUBELET_VERSION.into(),
                    operating_system: self.operating_system.clone(),
                    architecture: "amd64".into(),
                    ..NodeSystemInfo::default()
                }),
                declared_features: Some(VK_FEATURES.map(String::from).to_vec()),
                ..NodeStatus::default()
            }),
        }
    }
}

/// Labels a node identity may not set under NodeRestriction: any in the `kubernetes.io` and
/// `k8s.io` domains except the kubelet's own and the `kubelet.`/`node.kubernetes.io` prefixes.
pub fn restricted_label(key: &str) -> bool {
    const ALLOWED: [&str; 11] = [
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "node.kubernetes.io/instance-type",
        "beta.kubernetes.io/instance-type",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
    ];
    let Some((domain, _)) = key.split_once('/') else {
        return false;
    };
    let in_domain = |d: &str| domain == d || domain.ends_with(&format!(".{d}"));
    if in_domain("node-restriction.kubernetes.io") {
        return true;
    }
    if !(in_domain("kubernetes.io") || in_domain("k8s.io")) || ALLOWED.contains(&key) {
        return false;
    }
    !(in_domain("kubelet.kubernetes.io") || in_domain("node.kubernetes.io"))
}

/// `status.declaredFeatures`: vk's own and those the provider declared for its backend,
/// sorted and without duplicates, as the apiserver demands. A name it would refuse is dropped
/// with a warning rather than fail the whole status update.
fn declared_features(provider: Option<Vec<String>>) -> Vec<String> {
    let mut features: BTreeSet<String> = VK_FEATURES.map(String::from).into();
    for name in provider.into_iter().flatten() {
        if valid_feature_name(&name) {
            features.insert(name);
        } else {
            log::warn!(
                "the provider declares the node feature {name:?}, which is not UpperCamelCase \
                 segments joined by '/'; it is left out"
            );
        }
    }
    features.into_iter().collect()
}

/// The apiserver's rule for a declared feature: UpperCamelCase segments joined by '/'.
fn valid_feature_name(name: &str) -> bool {
    name.len() <= FEATURE_NAME_MAX
        && name.split('/').all(|segment| {
            segment.starts_with(|c: char| c.is_ascii_uppercase())
                && segment.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// The node's Ready condition: ready when the provider says so and the pods have synced.
fn ready_condition(provider_ready: Option<&NodeCondition>, pods_synced: bool) -> NodeCondition {
    let (status, reason, message) = match provider_ready {
        Some(ready) if ready.status != "True" => (
            ready.status.clone(),
            ready
                .reason
                .clone()
                .unwrap_or_else(|| "KubeletNotReady".into()),
            ready
                .message
                .clone()
                .unwrap_or_else(|| "the provider is not ready".into()),
        ),
        _ if !pods_synced => ("False".into(), "KubeletNotReady".into(), NOT_SYNCED.into()),
        _ => (
            "True".into(),
            "KubeletReady".into(),
            "kubelet is posting ready status".into(),
        ),
    };
    NodeCondition {
        type_: "Ready".into(),
        status,
        reason: Some(reason),
        message: Some(message),
        ..NodeCondition::default()
    }
}

/// Keeps the node's Ready condition as the API has it while the pod controller has not synced:
/// a vk that takes a Ready node over (a standby, or a restart) finds the provider's pods running,
/// and reporting NotReady meanwhile would only tell the cluster to start evicting them.
fn keep_ready_while_syncing(desired: &mut [NodeCondition], current: &[NodeCondition]) {
    let syncing = desired
        .iter_mut()
        .find(|c| c.type_ == "Ready" && c.message.as_deref() == Some(NOT_SYNCED));
    let ready = current
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True");
    if let (Some(syncing), Some(ready)) = (syncing, ready) {
        *syncing = ready.clone();
    }
}

/// `conditions` with the Ready condition replaced by a False one saying `message`.
fn not_ready(mut conditions: Vec<NodeCondition>, message: String) -> Vec<NodeCondition> {
    let broken = NodeCondition {
        type_: "Ready".into(),
        status: "False".into(),
        reason: Some("KubeletNotReady".into()),
        message: Some(message),
        ..NodeCondition::default()
    };
    conditions.retain(|c| c.type_ != "Ready");
    conditions.insert(0, ready_condition(Some(&broken), true));
    conditions
}

/// Stamps heartbeat times on `conditions`, keeping each transition time while its status holds.
fn stamp_conditions(conditions: &mut [NodeCondition], previous: &[NodeCondition], now: Timestamp) {
    for condition in conditions {
        condition.last_heartbeat_time = Some(Time(now));
        let unchanged = previous
            .iter()
            .find(|p| p.type_ == condition.type_ && p.status == condition.status);
        condition.last_transition_time = unchanged
            .and_then(|p| p.last_transition_time.clone())
            .or(Some(Time(now)));
    }
}

/// The node controller.
#[derive(Debug)]
pub struct NodeController {
    nodes: Api<Node>,
    leases: Api<Lease>,
    provider: Provider,
    settings: NodeSettings,
    recorder: Recorder,
    pods_synced: watch::Receiver<bool>,
    /// The node as the provider last notified it.
    notified: Arc<parking_lot::Mutex<Option<Node>>>,
    changed: Arc<Notify>,
}

impl NodeController {
    pub fn new(
        client: Client,
        provider: Provider,
        settings: NodeSettings,
        recorder: Recorder,
        pods_synced: watch::Receiver<bool>,
    ) -> Self {
        NodeController {
            nodes: Api::all(client.clone()),
            leases: Api::namespaced(client, LEASE_NAMESPACE),
            provider,
            settings,
            recorder,
            pods_synced,
            notified: Arc::default(),
            changed: Arc::default(),
        }
    }

    /// The node as it should be now: the template, filled in by the provider, with vk's
    /// Ready condition.
    async fn desired(&self) -> Result<Node, NodeError> {
        let notified = self.notified.lock().clone();
        let mut node = match notified {
            Some(node) => node,
            None => {
                let template = self.settings.template();
                self.provider
                    .call("configure_node", move |p| p.configure_node(&template))
                    .await
                    .map_err(NodeError::Provider)?
            }
        };
        let status = node.status.get_or_insert_with(NodeStatus::default);
        let mut conditions = status.conditions.take().unwrap_or_default();
        let provider_ready = conditions
            .iter()
            .position(|c| c.type_ == "Ready")
            .map(|i| conditions.remove(i));
        conditions.insert(
            0,
            ready_condition(provider_ready.as_ref(), *self.pods_synced.borrow()),
        );
        status.conditions = Some(conditions);
        // vk owns these whatever the provider says.
        let template = self.settings.template();
        let template_status = template.status.unwrap_or_default();
        status.daemon_endpoints = template_status.daemon_endpoints;
        status.declared_features = Some(declared_features(status.declared_features.take()));
        let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
        info.kubelet_version = KUBELET_VERSION.into();
        if status.addresses.is_none() {
            status.addresses = template_status.addresses;
        }
        let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
        for (key, value) in template.metadata.labels.unwrap_or_default() {
            labels.entry(key).or_insert(value);
        }
        node.metadata.name = Some(self.settings.name.clone());
        Ok(node)
    }

    /// Creates the Node, or adopts the one that exists. Returns it as the API server has it.
    async fn register(&self) -> Result<Node, NodeError> {
        let registering = |source| NodeError::Register {
            name: self.settings.name.clone(),
            source,
        };
        let mut node = self.desired().await?;
        let status = node.status.take();
        let created = match self.nodes.create(&PostParams::default(), &node).await {
            Err(kube::Error::Api(response))
                if response.code == 403 && response.message.contains("labels") =>
            {
                let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
                let dropped: Vec<_> = labels
                    .keys()
                    .filter(|k| restricted_label(k))
                    .cloned()
                    .collect();
                labels.retain(|key, _| !restricted_label(key));
                log::warn!(
                    "node credentials may not set the labels {dropped:?} (NodeRestriction); registering without them"
                );
                self.nodes.create(&PostParams::default(), &node).await
            }
            other => other,
        };
        let registered = match created {
            Ok(node) => {
                log::info!("registered node {}", self.settings.name);
                node
            }
            Err(kube::Error::Api(response)) if response.code == 409 => {
                log::info!("adopting existing node {}", self.settings.name);
                self.adopt(&node).await.map_err(registering)?
            }
            Err(error) => return Err(registering(error)),
        };
        self.recorder
            .node(EventType::Normal, "Starting", "Starting vk.");
        node.status = status;
        if let Some(conditions) = node.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            let current = registered
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref());
            keep_ready_while_syncing(conditions, current.map_or(&[], Vec::as_slice));
        }
        self.patch_status(&registered, node)
            .await
            .map_err(registering)
    }

    /// Brings an existing Node's labels in line (taints are left alone: a node may not change
    /// them under NodeRestriction).
    async fn adopt(&self, desired: &Node) -> Result<Node, kube::Error> {
        let existing = self.nodes.get(&self.settings.name).await?;
        let current = existing.metadata.labels.clone().unwrap_or_default();
        let missing: BTreeMap<_, _> = desired
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(key, value)| current.get(*key) != Some(value) && !restricted_label(key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if missing.is_empty() {
            return Ok(existing);
        }
        let patch = serde_json::json!({"metadata": {"labels": missing}});
        self.nodes
            .patch(
                &self.settings.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
    }

    /// Writes `desired`'s status over `current`'s.
    async fn patch_status(&self, current: &Node, desired: Node) -> Result<Node, kube::Error> {
        let mut status = desired.status.unwrap_or_default();
        let previous = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if let Some(conditions) = status.conditions.as_mut() {
            stamp_conditions(conditions, &previous, Timestamp::now());
        }
        let patch = serde_json::json!({"status": status});
        self.nodes
            .patch_status(
                &self.settings.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
    }

    /// Writes the current conditions with Ready turned False for `message`.
    async fn report_not_ready(&self, current: &Node, message: String) -> Result<Node, kube::Error> {
        let conditions = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let desired = Node {
            status: Some(NodeStatus {
                conditions: Some(not_ready(conditions, message)),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        self.patch_status(current, desired).await
    }

    async fn update_status(&self, current: &Node) -> Result<Node, kube::Error> {
        match self.desired().await {
            Ok(desired) => self.patch_status(current, desired).await,
            Err(error) => {
                log::warn!("cannot compute node status: {error}");
                Ok(current.clone())
            }
        }
    }

    /// Renews the lease, creating it if needed, owned by the Node once its UID is known.
    async fn renew_lease(&self, node: &Node) -> Result<(), kube::Error> {
        let owner = node.metadata.uid.clone().map(|uid| OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.settings.name.clone(),
            uid,
            ..OwnerReference::default()
        });
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                owner_references: owner.map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.name.clone()),
                lease_duration_seconds: Some(LEASE_SECONDS),
                renew_time: Some(MicroTime(Timestamp::now())),
                ..LeaseSpec::default()
            }),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut value = serde_json::to_value(&lease).expect("a lease serialises");
        value["apiVersion"] = "coordination.k8s.io/v1".into();
        value["kind"] = "Lease".into();
        self.leases
            .patch(&self.settings.name, &params, &Patch::Apply(&value))
            .await
            .map(drop)
    }

    /// Hands provider node notifications to the controller.
    async fn watch_provider(&self) {
        let notified = self.notified.clone();
        let changed = self.changed.clone();
        let registered = self
            .provider
            .call("notify_node_status", move |p| {
                p.notify_node_status(move |node| {
                    *notified.lock() = Some(node);
                    changed.notify_one();
                })
            })
            .await;
        match registered {
            Ok(true) => log::debug!("the provider notifies node status changes"),
            Ok(false) => {
                log::debug!("the provider does not notify node status; it is asked every minute")
            }
            Err(error) => log::warn!("cannot register for node status notifications: {error}"),
        }
    }

    /// Watches this Node (the only one a node identity may watch) so that a deletion is noticed
    /// at once: the next status update then finds it gone and registers it again.
    fn watch_deletion(&self) -> tokio::task::JoinHandle<()> {
        let selector = format!("metadata.name={}", self.settings.name);
        let events = watcher(
            self.nodes.clone(),
            watcher::Config::default().fields(&selector),
        )
        .backoff(WatchBackoff::default());
        let changed = self.changed.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Delete(_)) => changed.notify_one(),
                    Ok(_) => {}
                    Err(error) => log::debug!("node watch failed, retrying: {error}"),
                }
            }
        })
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        self.watch_provider().await;
        let mut node = self.register().await?;
        let deletions = self.watch_deletion();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut last_status = tokio::time::Instant::now();
        let mut healthy = true;
        tokio::pin!(shutdown);
        loop {
            let mut status_due = tokio::select! {
                _ = &mut shutdown => {
                    deletions.abort();
                    return Ok(());
                }
                // Half a heartbeat of slack: the tick that comes a minute after the last update
                // is due, not the one after it (ticks land a hair under whole periods).
                _ = heartbeat.tick() => last_status.elapsed() + HEARTBEAT / 2 >= STATUS_PERIOD,
                _ = self.changed.notified() => true,
                changed = self.pods_synced.changed() => changed.is_ok(),
            };
            match self.provider.call("ping", |p| p.ping()).await {
                Ok(()) if !healthy => {
                    log::info!("the provider answers again; resuming heartbeats");
                    healthy = true;
                    status_due = true;
                }
                Ok(()) => {}
                Err(error) => {
                    if healthy {
                        log::warn!(
                            "the provider's ping fails, stopping heartbeats until it answers: {error}"
                        );
                        let message = format!("provider ping failed: {error}");
                        self.recorder
                            .node(EventType::Warning, "NodeNotReady", &message);
                        // Said at once, as a kubelet whose runtime is down does: the lease
                        // alone takes the node controller's grace period (50 s) to show.
                        match self.report_not_ready(&node, message).await {
                            Ok(updated) => node = updated,
                            Err(error) => log::warn!("cannot mark the node NotReady: {error}"),
                        }
                    }
                    healthy = false;
                    continue;
                }
            }
            let renewed = self.renew_lease(&node).await;
            let outcome = if renewed.is_ok() { "success" } else { "error" };
            METRICS
                .lease_renewals
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
            if let Err(error) = renewed {
                log::warn!("cannot renew the node lease: {error}");
            }
            if status_due {
                let updated = self.update_status(&node).await;
                METRICS.api_request("node_status", &updated);
                node = match updated {
                    Ok(updated) => {
                        last_status = tokio::time::Instant::now();
                        updated
                    }
                    Err(kube::Error::Api(response)) if response.code == 404 => {
                        log::warn!(
                            "node {} was deleted; registering it again",
                            self.settings.name
                        );
                        self.register().await?
                    }
                    Err(error) => {
                        log::warn!("cannot update node status: {error}");
                        node
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;
