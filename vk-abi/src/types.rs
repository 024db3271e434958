//! The values that cross the boundary as JSON, shared by host and providers.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time};
use serde::{Deserialize, Serialize};

/// What a provider is built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInit {
    /// The `--provider-config` path, if one was given.
    #[serde(default)]
    pub config_path: Option<String>,
    /// The contents of that file; empty when none was given.
    #[serde(default)]
    pub config: String,
    /// The node this provider backs.
    pub node_name: String,
    /// The node's operating system (`Linux`, `Windows`).
    pub operating_system: String,
    /// The node's InternalIP, when known.
    #[serde(default)]
    pub internal_ip: Option<String>,
    /// The kubelet API port the node advertises.
    #[serde(default)]
    pub daemon_port: i32,
}

/// A pod as the kubelet would run it: environment variables are resolved to plain values in
/// `pod` and the contents of configMap, secret, downwardAPI and projected volumes are given.
/// A variable whose value came from a Secret keeps a `valueFrom.secretKeyRef` naming it beside
/// its resolved `value`, so that a provider can pass it on as a secret. An azureFile volume's
/// files are `azurestorageaccountname` and `azurestorageaccountkey` from its Secret, which are
/// never empty: the storage account to mount the share with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPod {
    pub pod: Pod,
    /// Files of each resolved volume, by volume name.
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeFiles>,
    /// The registry logins of the pod's `imagePullSecrets`, in their order.
    #[serde(default)]
    pub registry_credentials: Vec<RegistryCredential>,
}

/// A login to an image registry, from a `kubernetes.io/dockerconfigjson` or
/// `kubernetes.io/dockercfg` Secret.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCredential {
    /// The registry as the Secret names it: a host, `host/path`, or a URL.
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryCredential {
    // The password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The files of one volume, by path relative to the volume's root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeFiles {
    pub files: BTreeMap<String, VolumeFile>,
}

/// One file of a volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeFile {
    pub data: ByteString,
    /// Unix permission bits.
    pub mode: i32,
}

/// Why a provider will not run a pod as written (ABI 1.3). The host rejects the pod as the
/// kubelet's admission does: a Warning event, then phase Failed with this reason and message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// UpperCamelCase and stable, a kubelet rejection reason where one fits
    /// (`PodLevelResourcesNotSupported`), else the provider's own (`UnsupportedPodSpec`).
    pub reason: String,
    /// Names the field and why the backend cannot honour it, as
    /// `spec.hostUsers: false is not supported by ...`.
    pub message: String,
}

impl Refusal {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Which container's log to read, and how (the kubelet's `/containerLogs` parameters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogOptions {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    #[serde(default)]
    pub follow: bool,
    #[serde(default)]
    pub tail_lines: Option<i64>,
    #[serde(default)]
    pub since_seconds: Option<i64>,
    #[serde(default)]
    pub since_time: Option<Time>,
    #[serde(default)]
    pub limit_bytes: Option<i64>,
    #[serde(default)]
    pub timestamps: bool,
    #[serde(default)]
    pub previous: bool,
}

/// An exec or attach request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecOptions {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// Empty for attach.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub tty: bool,
    /// ABI 1.4: an exec that has not ended after this many seconds is abandoned (the call
    /// answers [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)), as a probe's
    /// `timeoutSeconds` asks. Providers before 1.4 ignore it; vk stops waiting all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// What a provider does itself (ABI 1.4), so that vk does not do it twice. Unknown fields are
/// ignored and missing ones are false, so both sides may add fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// The backend runs the pods' probes itself and reports `started` and `ready`; vk then
    /// runs none and takes those from the status.
    #[serde(default)]
    pub runs_probes: bool,
    /// The pod IPs the provider reports can be dialled from vk's host, so that vk's HTTP,
    /// TCP and gRPC probes and hooks connect to them straight instead of through
    /// `port_forward`.
    #[serde(default)]
    pub pod_ips_reachable: bool,
}

/// One port-forward connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortForwardOptions {
    pub namespace: String,
    pub pod: String,
    pub port: u16,
}

/// Something that happened to a pod, for the host to record as a Kubernetes event on it (the
/// kubelet's `Pulling`, `Started`, `BackOff`, ... or the backend's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEvent {
    pub namespace: String,
    pub name: String,
    /// The pod's UID: an event about a predecessor of the same name is dropped.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(rename = "type")]
    pub type_: EventType,
    /// UpperCamelCase, as `Pulled` or `BackOff`.
    pub reason: String,
    pub message: String,
    /// The part of the pod concerned, as `spec.containers{app}`.
    #[serde(default)]
    pub field_path: Option<String>,
}

/// A Kubernetes event's type; crosses as `"Normal"` or `"Warning"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[default]
    Normal,
    Warning,
}

impl EventType {
    /// As Kubernetes writes it in an event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

#[cfg(test)]
mod tests;
