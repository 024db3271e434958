//! A pod as an ACI container group: name `<namespace>-<name>`, the tags that find it again,
//! containers, init containers, resources in ACI's units, probes, ports, volumes and network.
//! What ACI cannot express is a [`GroupError`] that names the field: vk's check before create
//! refuses the pod with it (see [`refusal`]), and a create that gets there anyway fails.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use vk_abi::{
    Refusal, RegistryCredential as PullSecretLogin, ResolvedPod, VolumeFiles,
    admission::has_pod_level_resources,
    k8s_openapi::{
        api::core::v1::{
            Container as PodContainer, ContainerPort, EnvVar, Pod, PodSpec, Probe as PodProbe,
            ResourceRequirements, Volume as PodVolume, VolumeMount as PodVolumeMount,
        },
        apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
    },
    quantity::{Amount, QuantityError},
};

use crate::{
    config::{ClusterDns, OsType},
    model::{
        Amounts, AzureFileVolume, Container, ContainerGroup, ContainerProperties, DnsConfig,
        EnvironmentVariable, ExecProbe, GitRepoVolume, GroupProperties, HttpGetProbe, HttpHeader,
        InitContainer, InitContainerProperties, IpAddress, Port, Probe, RegistryCredential,
        Resources, SubnetId, Volume, VolumeMount,
    },
};

/// Tags on every group: they list a node's groups and rebuild the pod after a restart.
pub const TAG_NODE: &str = "NodeName";
pub const TAG_NAMESPACE: &str = "Namespace";
pub const TAG_POD: &str = "PodName";
pub const TAG_UID: &str = "UID";
pub const TAG_CREATED: &str = "CreationTimestamp";
/// The annotation that asks for a public DNS name label.
pub const DNS_LABEL_ANNOTATION: &str = "virtualkubelet.io/dnsnamelabel";
/// Secret keys of an azureFile volume's account, as Kubernetes' azure file plugin names them.
pub const STORAGE_ACCOUNT_NAME: &str = "azurestorageaccountname";
pub const STORAGE_ACCOUNT_KEY: &str = "azurestorageaccountkey";

/// ACI's defaults and floors: requests default to 1 core and 1.5 GB; CPU goes in steps of
/// 0.01 core, memory in steps of 0.1 GB (decimal).
const DEFAULT_CPU: f64 = 1.0;
const DEFAULT_MEMORY_GB: f64 = 1.5;
const MIN_CPU: f64 = 0.01;
const MIN_MEMORY_GB: f64 = 0.1;
/// Bytes in ACI's memory step (0.1 GB).
const MEMORY_STEP: i64 = 100_000_000;

/// What in a pod ACI cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("pod has no namespace or name")]
    Unnamed,
    #[error("container group name {0:?} is longer than ACI's 63 characters")]
    NameTooLong(String),
    #[error("container {container}: {what} is not supported by Azure Container Instances")]
    Unsupported {
        container: String,
        what: &'static str,
    },
    #[error(
        "container {container}: args without command cannot be expressed in ACI, which replaces the image's entrypoint"
    )]
    ArgsWithoutCommand { container: String },
    #[error("container {container}: no image")]
    NoImage { container: String },
    #[error("container {container}: {resource}")]
    Quantity {
        container: String,
        resource: String,
        #[source]
        source: QuantityError,
    },
    #[error("container {container}: probe port {port:?} is not one of the container's ports")]
    ProbePort { container: String, port: String },
    #[error("volume {volume}: {kind} volumes are not supported by Azure Container Instances")]
    UnsupportedVolume { volume: String, kind: &'static str },
    #[error(
        "volume {volume}: file {file:?} is in a subdirectory; ACI secret volumes hold flat files"
    )]
    NestedFile { volume: String, file: String },
    /// vk resolves the account before calling the provider; only a host that breaks that
    /// contract gets here.
    #[error(
        "volume {volume}: no azurestorageaccountname or azurestorageaccountkey file from Secret {secret} in the resolved pod"
    )]
    StorageAccount { volume: String, secret: String },
    #[error("{field} is not supported by Azure Container Instances: {why}")]
    PodField { field: String, why: &'static str },
    #[error(
        "spec.resources: pod-level resources are not supported by Azure Container Instances, which sizes each container"
    )]
    PodLevelResources,
    #[error("container {container}: volume mount {volume} uses {what}, which ACI cannot mount")]
    Mount {
        container: String,
        volume: String,
        what: &'static str,
    },
}

impl GroupError {
    /// The reason to refuse the pod with before create; `None` for what depends on the files
    /// vk resolves for create, which a check of the bare pod cannot know.
    fn refusal_reason(&self) -> Option<&'static str> {
        match self {
            GroupError::StorageAccount { .. } | GroupError::NestedFile { .. } => None,
            GroupError::PodLevelResources => Some("PodLevelResourcesNotSupported"),
            _ => Some("UnsupportedPodSpec"),
        }
    }
}

/// Why ACI cannot run `pod` as written: the group it would become, made without the files
/// vk resolves for create, fails for a reason that names the field.
pub fn refusal(pod: &Pod, settings: &GroupSettings) -> Option<Refusal> {
    let bare = ResolvedPod {
        pod: pod.clone(),
        ..ResolvedPod::default()
    };
    let error = container_group(&bare, settings).err()?;
    let reason = error.refusal_reason()?;
    Some(Refusal::new(reason, error.to_string()))
}

/// The node-wide settings a group is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    pub node_name: String,
    pub region: String,
    pub os_type: OsType,
    pub subnet_id: Option<String>,
    pub dns: ClusterDns,
}

/// The group name of a pod.
pub fn group_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

/// The container group that runs `resolved`.
pub fn container_group(
    resolved: &ResolvedPod,
    settings: &GroupSettings,
) -> Result<(String, ContainerGroup), GroupError> {
    let pod = &resolved.pod;
    let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Err(GroupError::Unnamed);
    };
    let group = group_name(namespace, name);
    if group.len() > 63 {
        return Err(GroupError::NameTooLong(group));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    pod_fields(&spec)?;
    let volumes = volumes(&spec, &resolved.volumes)?;
    let mountable: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    let containers = spec
        .containers
        .iter()
        .map(|c| container(c, &mountable))
        .collect::<Result<Vec<_>, _>>()?;
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| init_container(c, &mountable))
        .collect::<Result<Vec<_>, _>>()?;
    let ports: Vec<Port> = containers
        .iter()
        .flat_map(|c| c.properties.ports.iter().cloned())
        .collect();
    let private = settings.subnet_id.is_some();
    let ip_address = (!ports.is_empty()).then(|| IpAddress {
        ports,
        kind: if private { "Private" } else { "Public" }.into(),
        ip: None,
        dns_name_label: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DNS_LABEL_ANNOTATION))
            .filter(|_| !private)
            .cloned(),
    });
    let dns_config = if private && settings.os_type == OsType::Linux {
        dns_config(namespace, &spec, &settings.dns)
    } else {
        None
    };
    Ok((
        group,
        ContainerGroup {
            location: Some(settings.region.clone()),
            tags: tags(pod, namespace, name, &settings.node_name),
            properties: GroupProperties {
                containers,
                init_containers,
                image_registry_credentials: registry_credentials(&resolved.registry_credentials),
                restart_policy: Some(spec.restart_policy.unwrap_or_else(|| "Always".into())),
                ip_address,
                os_type: settings.os_type.as_str().into(),
                volumes,
                subnet_ids: settings
                    .subnet_id
                    .iter()
                    .map(|id| SubnetId { id: id.clone() })
                    .collect(),
                dns_config,
                ..GroupProperties::default()
            },
            ..ContainerGroup::default()
        },
    ))
}

/// Pod-wide fields a container group has no counterpart for.
fn pod_fields(spec: &PodSpec) -> Result<(), GroupError> {
    let refuse = |field: &str, why| {
        Err(GroupError::PodField {
            field: field.into(),
            why,
        })
    };
    if spec.host_network == Some(true) {
        return refuse(
            "spec.hostNetwork: true",
            "a container group has its own network, never its host's",
        );
    }
    if spec.host_pid == Some(true) || spec.host_ipc == Some(true) {
        let field = if spec.host_pid == Some(true) {
            "spec.hostPID: true"
        } else {
            "spec.hostIPC: true"
        };
        return refuse(
            field,
            "a container group cannot share its host's namespaces",
        );
    }
    if spec.host_users == Some(false) {
        return refuse(
            "spec.hostUsers: false",
            "ACI offers no user namespaces to ask for",
        );
    }
    if has_pod_level_resources(spec) {
        return Err(GroupError::PodLevelResources);
    }
    if let Some(sidecar) = (spec.init_containers.iter().flatten())
        .find(|c| c.restart_policy.as_deref() == Some("Always"))
    {
        return refuse(
            &format!(
                "spec.initContainers[{}].restartPolicy: Always (a sidecar)",
                sidecar.name
            ),
            "ACI runs every init container to completion before the containers start",
        );
    }
    Ok(())
}

fn tags(pod: &Pod, namespace: &str, name: &str, node: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_NODE.to_string(), node.to_string()),
        (TAG_NAMESPACE.to_string(), namespace.to_string()),
        (TAG_POD.to_string(), name.to_string()),
    ]);
    if let Some(uid) = &pod.metadata.uid {
        tags.insert(TAG_UID.into(), uid.clone());
    }
    if let Some(created) = &pod.metadata.creation_timestamp {
        tags.insert(TAG_CREATED.into(), created.0.to_string());
    }
    tags
}

fn unsupported(container: &PodContainer, what: &'static str) -> GroupError {
    GroupError::Unsupported {
        container: container.name.clone(),
        what,
    }
}

fn container(c: &PodContainer, mountable: &[&str]) -> Result<Container, GroupError> {
    if c.lifecycle.is_some() {
        return Err(unsupported(c, "a lifecycle hook"));
    }
    if c.startup_probe.is_some() {
        return Err(unsupported(c, "a startup probe"));
    }
    let ports = c
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            port: p.container_port,
            protocol: Some(
                if p.protocol.as_deref() == Some("UDP") {
                    "UDP"
                } else {
                    "TCP"
                }
                .into(),
            ),
        })
        .collect();
    let probe = |probe: &Option<PodProbe>| probe.as_ref().map(|p| self::probe(c, p)).transpose();
    Ok(Container {
        name: c.name.clone(),
        properties: ContainerProperties {
            image: image(c)?,
            command: command(c)?,
            ports,
            environment_variables: environment(c)?,
            resources: resources(c)?,
            volume_mounts: mounts(c, mountable)?,
            liveness_probe: probe(&c.liveness_probe)?,
            readiness_probe: probe(&c.readiness_probe)?,
            instance_view: None,
        },
    })
}

/// Init containers run with the group's resources in ACI: their requests are not sent.
fn init_container(c: &PodContainer, mountable: &[&str]) -> Result<InitContainer, GroupError> {
    if c.ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(unsupported(c, "a port on an init container"));
    }
    if c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some() {
        return Err(unsupported(c, "a probe on an init container"));
    }
    if c.lifecycle.is_some() {
        return Err(unsupported(c, "a lifecycle hook"));
    }
    Ok(InitContainer {
        name: c.name.clone(),
        properties: InitContainerProperties {
            image: image(c)?,
            command: command(c)?,
            environment_variables: environment(c)?,
            volume_mounts: mounts(c, mountable)?,
            instance_view: None,
        },
    })
}

fn image(c: &PodContainer) -> Result<String, GroupError> {
    c.image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| GroupError::NoImage {
            container: c.name.clone(),
        })
}

/// ACI's `command` replaces the entrypoint: Kubernetes' command followed by its args.
fn command(c: &PodContainer) -> Result<Vec<String>, GroupError> {
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    if command.is_empty() && !args.is_empty() {
        return Err(GroupError::ArgsWithoutCommand {
            container: c.name.clone(),
        });
    }
    Ok(command.into_iter().chain(args).collect())
}

/// Plain variables as `value`; those vk resolved from a Secret (it keeps the `secretKeyRef`
/// beside the value) as `secureValue`, which ARM never returns.
fn environment(c: &PodContainer) -> Result<Vec<EnvironmentVariable>, GroupError> {
    c.env
        .iter()
        .flatten()
        .map(
            |EnvVar {
                 name,
                 value,
                 value_from,
             }| {
                let from_secret = value_from
                    .as_ref()
                    .is_some_and(|from| from.secret_key_ref.is_some());
                if value.is_none()
                    && value_from
                        .as_ref()
                        .is_some_and(|f| f.file_key_ref.is_some())
                {
                    return Err(unsupported(c, "an env variable from a file (fileKeyRef)"));
                }
                let value = value.clone().unwrap_or_default();
                Ok(EnvironmentVariable {
                    name: name.clone(),
                    secure_value: from_secret.then(|| value.clone()),
                    value: (!from_secret).then_some(value),
                })
            },
        )
        .collect()
}

fn resources(c: &PodContainer) -> Result<Resources, GroupError> {
    let spec = c.resources.clone().unwrap_or_default();
    if spec
        .limits
        .iter()
        .chain(spec.requests.iter())
        .any(|r| r.contains_key("nvidia.com/gpu"))
    {
        return Err(unsupported(c, "a GPU (nvidia.com/gpu)"));
    }
    let amount = |map: &Option<BTreeMap<String, Quantity>>, name: &str| {
        map.as_ref()
            .and_then(|m| m.get(name))
            .map(|q| {
                Amount::parse(&q.0).map_err(|source| GroupError::Quantity {
                    container: c.name.clone(),
                    resource: name.to_string(),
                    source,
                })
            })
            .transpose()
    };
    let ResourceRequirements {
        requests, limits, ..
    } = &spec;
    let requests = Amounts {
        cpu: amount(requests, "cpu")?.map_or(DEFAULT_CPU, |a| cores(a.ceil_milli())),
        memory_in_gb: amount(requests, "memory")?
            .map_or(DEFAULT_MEMORY_GB, |a| gigabytes(a.ceil_units())),
    };
    // A limit is not rounded to ACI's steps (it caps, it does not reserve), but never below
    // the request ACI will reserve.
    let limits = match limits {
        None => None,
        Some(_) => Some(Amounts {
            cpu: amount(limits, "cpu")?
                .map_or(requests.cpu, |a| a.ceil_milli() as f64 / 1000.0)
                .max(requests.cpu),
            memory_in_gb: amount(limits, "memory")?
                .map_or(requests.memory_in_gb, |a| gigabytes(a.ceil_units()))
                .max(requests.memory_in_gb),
        }),
    };
    Ok(Resources { requests, limits })
}

/// Millicores as cores in ACI's steps of 0.01, truncated, at least 0.01.
pub fn cores(milli: i64) -> f64 {
    ((milli / 10) as f64 / 100.0).max(MIN_CPU)
}

/// Bytes as decimal gigabytes in ACI's steps of 0.1, truncated, at least 0.1.
pub fn gigabytes(bytes: i64) -> f64 {
    ((bytes / MEMORY_STEP) as f64 / 10.0).max(MIN_MEMORY_GB)
}

/// The logins of the pod's image pull secrets, as ACI wants them: the registry's host.
fn registry_credentials(logins: &[PullSecretLogin]) -> Vec<RegistryCredential> {
    logins
        .iter()
        .map(|login| {
            let server = login
                .server
                .split_once("://")
                .map_or(login.server.as_str(), |(_, rest)| rest);
            let host = server.split('/').next().unwrap_or(server);
            RegistryCredential {
                server: host.to_string(),
                username: Some(login.username.clone()),
                password: Some(login.password.clone()),
            }
        })
        .collect()
}

fn probe(c: &PodContainer, p: &PodProbe) -> Result<Probe, GroupError> {
    if p.tcp_socket.is_some() {
        return Err(unsupported(c, "a tcpSocket probe"));
    }
    if p.grpc.is_some() {
        return Err(unsupported(c, "a grpc probe"));
    }
    let exec = p.exec.as_ref().map(|e| ExecProbe {
        command: e.command.clone().unwrap_or_default(),
    });
    let http_get = p
        .http_get
        .as_ref()
        .map(|h| {
            Ok::<_, GroupError>(HttpGetProbe {
                path: h.path.clone(),
                port: probe_port(c, &h.port)?,
                scheme: h.scheme.as_ref().map(|s| s.to_lowercase()),
                http_headers: h
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|header| HttpHeader {
                        name: header.name.clone(),
                        value: header.value.clone(),
                    })
                    .collect(),
            })
        })
        .transpose()?;
    if exec.is_none() && http_get.is_none() {
        return Err(unsupported(c, "a probe without exec or httpGet"));
    }
    Ok(Probe {
        exec,
        http_get,
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: p.period_seconds,
        failure_threshold: p.failure_threshold,
        success_threshold: p.success_threshold,
        timeout_seconds: p.timeout_seconds,
    })
}

/// A probe's port; a named port is looked up among the container's own.
fn probe_port(c: &PodContainer, port: &IntOrString) -> Result<i32, GroupError> {
    match port {
        IntOrString::Int(port) => Ok(*port),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|ContainerPort { name: n, .. }| n.as_deref() == Some(name))
            .map(|p| p.container_port)
            .ok_or_else(|| GroupError::ProbePort {
                container: c.name.clone(),
                port: name.clone(),
            }),
    }
}

fn mounts(c: &PodContainer, mountable: &[&str]) -> Result<Vec<VolumeMount>, GroupError> {
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let PodVolumeMount {
            name,
            mount_path,
            read_only,
            sub_path,
            sub_path_expr,
            ..
        } = m;
        let refuse = |what| GroupError::Mount {
            container: c.name.clone(),
            volume: name.clone(),
            what,
        };
        if sub_path.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(refuse("subPath"));
        }
        if sub_path_expr.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(refuse("subPathExpr"));
        }
        // A volume with no files has no ACI volume: its mount goes too.
        if mountable.contains(&name.as_str()) {
            mounts.push(VolumeMount {
                name: name.clone(),
                mount_path: mount_path.clone(),
                read_only: *read_only,
            });
        }
    }
    Ok(mounts)
}

fn volumes(
    spec: &PodSpec,
    resolved: &BTreeMap<String, VolumeFiles>,
) -> Result<Vec<Volume>, GroupError> {
    let mut volumes = Vec::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(volume) = volume(v, resolved.get(&v.name))? {
            volumes.push(volume);
        }
    }
    Ok(volumes)
}

/// One volume; `None` for a secret-like volume without files, which ACI cannot hold.
fn volume(v: &PodVolume, files: Option<&VolumeFiles>) -> Result<Option<Volume>, GroupError> {
    let named = Volume {
        name: v.name.clone(),
        ..Volume::default()
    };
    let refuse = |kind| GroupError::UnsupportedVolume {
        volume: v.name.clone(),
        kind,
    };
    if v.empty_dir.is_some() {
        return Ok(Some(Volume {
            empty_dir: Some(serde_json::Map::new()),
            ..named
        }));
    }
    if let Some(git) = &v.git_repo {
        return Ok(Some(Volume {
            git_repo: Some(GitRepoVolume {
                repository: git.repository.clone(),
                directory: git.directory.clone(),
                revision: git.revision.clone(),
            }),
            ..named
        }));
    }
    if let Some(azure) = &v.azure_file {
        let key = |key: &str| {
            files
                .and_then(|f| f.files.get(key))
                .map(|file| String::from_utf8_lossy(&file.data.0).trim().to_string())
        };
        let (Some(account), Some(account_key)) =
            (key(STORAGE_ACCOUNT_NAME), key(STORAGE_ACCOUNT_KEY))
        else {
            return Err(GroupError::StorageAccount {
                volume: v.name.clone(),
                secret: azure.secret_name.clone(),
            });
        };
        return Ok(Some(Volume {
            azure_file: Some(AzureFileVolume {
                share_name: azure.share_name.clone(),
                storage_account_name: account,
                storage_account_key: Some(account_key),
                read_only: azure.read_only,
            }),
            ..named
        }));
    }
    if v.secret.is_some()
        || v.config_map.is_some()
        || v.projected.is_some()
        || v.downward_api.is_some()
    {
        let Some(files) = files.filter(|f| !f.files.is_empty()) else {
            return Ok(None);
        };
        let mut secret = BTreeMap::new();
        for (path, file) in &files.files {
            if path.contains('/') {
                return Err(GroupError::NestedFile {
                    volume: v.name.clone(),
                    file: path.clone(),
                });
            }
            secret.insert(path.clone(), BASE64.encode(&file.data.0));
        }
        return Ok(Some(Volume {
            secret: Some(secret),
            ..named
        }));
    }
    let kind = if v.host_path.is_some() {
        "hostPath"
    } else if v.persistent_volume_claim.is_some() {
        "persistentVolumeClaim"
    } else if v.csi.is_some() {
        "csi"
    } else if v.nfs.is_some() {
        "nfs"
    } else if v.ephemeral.is_some() {
        "ephemeral"
    } else if v.image.is_some() {
        "image"
    } else {
        "this kind of"
    };
    Err(refuse(kind))
}

/// Cluster DNS for a group in a virtual network, as the kubelet writes resolv.conf: the
/// cluster's server first for ClusterFirst, then the pod's own; at most 3 servers, 6 search
/// domains.
fn dns_config(namespace: &str, spec: &PodSpec, dns: &ClusterDns) -> Option<DnsConfig> {
    let cluster_first = matches!(
        spec.dns_policy.as_deref(),
        None | Some("ClusterFirst") | Some("ClusterFirstWithHostNet")
    );
    let own = spec.dns_config.clone().unwrap_or_default();
    let mut servers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    if cluster_first && let Some(server) = &dns.server {
        servers.push(server.clone());
        let domain = &dns.domain;
        searches.extend([
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ]);
    }
    for server in own.nameservers.into_iter().flatten() {
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    for search in own.searches.into_iter().flatten() {
        if !searches.contains(&search) && search.len() <= 253 {
            searches.push(search);
        }
    }
    servers.truncate(3);
    searches.truncate(6);
    if servers.is_empty() {
        return None;
    }
    let options: Vec<String> = own
        .options
        .into_iter()
        .flatten()
        .map(|o| match o.value {
            Some(value) => format!("{}:{value}", o.name.unwrap_or_default()),
            None => o.name.unwrap_or_default(),
        })
        .collect();
    Some(DnsConfig {
        name_servers: servers,
        search_domains: (!searches.is_empty()).then(|| searches.join(" ")),
        options: (!options.is_empty()).then(|| options.join(" ")),
    })
}

#[cfg(test)]
mod tests;
